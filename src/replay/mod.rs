//! The replay driver: SIP messages out of pcap/pcapng captures, run through the
//! same engine as the live proxy with the capture's clock (DESIGN.md "Replay").
//!
//! - [`source`]: pcap/pcapng records in bounded memory, with byte offsets;
//! - [`link`], [`ip`], [`tcp`], [`framing`]: link layers, IP fragments, TCP
//!   streams and Content-Length framing;
//! - [`capture`]: all of the above as a stream of [`capture::CapturedMessage`].

pub mod capture;
pub mod correlate;
pub mod error;
pub mod framing;
pub mod ip;
pub mod link;
pub mod live;
pub mod report;
pub mod run;
pub mod sides;
pub mod source;
pub mod tcp;
pub mod writer;

pub use capture::{CaptureReader, CaptureStats, CapturedMessage};
pub use error::CaptureError;
