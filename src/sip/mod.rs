//! The SIP wire layer: a zero-copy parser, typed accessors, a splicing editor and
//! locally generated responses. No policy and no I/O live here.
//!
//! A proxy must forward what it does not understand byte for byte (RFC 3261 §16.6),
//! so a parsed [`Message`] keeps the received [`bytes::Bytes`] and an index of spans
//! into it (a fixed-capacity inline array: parsing allocates nothing for the index);
//! the [`Editor`] splices the few changes a proxy makes into one new buffer and copies
//! every other byte as it came.
//!
//! See DESIGN.md "The wire layer"; RFC 4475 torture messages are the yardstick
//! (`tests/sip_torture.rs`).

mod edit;
mod error;
pub mod framing;
mod header;
mod index;
mod message;
mod method;
mod parse;
mod response;
mod spans;
pub mod uri;
mod values;

pub(crate) use edit::decimal;
pub use edit::Editor;
pub use error::ParseError;
pub use header::HeaderKind;
pub use message::{Header, Message, MAX_HEADERS_CAPACITY, MAX_MESSAGE_SPAN};
pub use method::Method;
pub use parse::{parse, parse_into};
pub use response::{bad_request, refusal, response};
pub use uri::Uri;
pub use values::{Event, NameAddr, SubscriptionState, Via};

/// Resource limits applied while parsing, so a hostile peer cannot make the proxy
/// buffer or scan without bound. Each breach is its own [`ParseError`] variant with
/// its own 400 reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole message in bytes (the largest UDP payload is 65 535). Values
    /// above [`MAX_MESSAGE_SPAN`] are treated as that span.
    pub max_message: usize,
    /// Most header lines (counting each line, not each comma-separated value).
    /// Values above [`MAX_HEADERS_CAPACITY`] are treated as that capacity.
    pub max_headers: usize,
    /// Longest physical line (start line or one header line, before unfolding).
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 65_535,
            max_headers: 96,
            max_line: 8_192,
        }
    }
}
