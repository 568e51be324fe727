//! Presence documents on the wire: the Offline rewrite a blocked watcher sees (the
//! `polite-block` sub-handling of RFC 5025 §3.2.1: the watcher is told the
//! presentity is offline rather than that it is refused) and the watcher-info
//! documents the owner reads.
//!
//! This layer knows document formats only. It never decides who is blocked: the
//! engine asks the policy and hands plain data in (a content type, a body, an
//! entity, a `&dyn Fn(&str) -> bool` for list resources).
//!
//! The Offline rewrite is built by *whitelist*: the input is streamed once through
//! quick-xml (to check it is well-formed and to pick up the `entity` and the tuple
//! ids) and the output is written from scratch with only `presence`/`tuple`/`status`/
//! `basic` (or the XPIDF equivalents). Nothing from the input reaches the output
//! except the entity and the tuple ids, so an extension element this code has never
//! heard of (RPID, CIPID, geopriv, a vendor's) cannot leak through.
//!
//! Bodies the engine meets and what to call:
//!
//! | body | call |
//! |------|------|
//! | empty (nothing published yet: no state to hide) | nothing: it stays empty; [`offline`] also returns it unchanged |
//! | `application/pidf+xml`, `application/cpim-pidf+xml`, `application/xpidf+xml` | [`offline`] |
//! | `multipart/related` RLMI (RFC 4662) | [`rewrite_rlmi`] with the blocked-resource test |
//! | anything else, or an [`offline`] error | replace with [`offline_document`] |
//!
//! [`offline_or_document`] does the last two rows in one call.
//!
//! ```
//! use presence_proxy::pidf;
//!
//! let real = br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com">
//!   <tuple id="t1"><status><basic>open</basic></status><note>At the dentist</note></tuple>
//! </presence>"#;
//! let offline = pidf::offline(b"application/pidf+xml", real, Some("sip:alice@example.com")).unwrap();
//! assert_eq!(&*offline.content_type, b"application/pidf+xml");
//! let body = String::from_utf8(offline.body).unwrap();
//! assert!(body.contains(r#"<tuple id="t1"><status><basic>closed</basic></status></tuple>"#));
//! assert!(!body.contains("dentist"));
//!
//! // Whatever cannot be rewritten is replaced, never forwarded.
//! let replaced = pidf::offline_or_document(b"text/plain", b"gone fishing", "sip:alice@example.com");
//! assert_eq!(replaced, pidf::offline_document("sip:alice@example.com"));
//! ```

mod attrs;
mod charset;
mod fastscan;
mod media;
pub mod multipart;
mod presence;
mod rlmi;
pub mod winfo;
mod xml;
mod xpidf;

use std::borrow::Cow;

pub use media::MediaType;
pub use rlmi::rewrite_rlmi;

/// `application/pidf+xml` (RFC 3863 §7.1): the Offline document's Content-Type,
/// exactly, with no parameters, because some phones compare the whole header value
/// (DESIGN.md "PIDF and friends").
pub const PIDF_CONTENT_TYPE: &[u8] = b"application/pidf+xml";
/// `application/cpim-pidf+xml`: the pre-RFC 3863 name of the same format.
pub const CPIM_PIDF_CONTENT_TYPE: &[u8] = b"application/cpim-pidf+xml";
/// `application/xpidf+xml`: the pre-standard XPIDF of older phones.
pub const XPIDF_CONTENT_TYPE: &[u8] = b"application/xpidf+xml";
/// `application/watcherinfo+xml` (RFC 3858).
pub const WATCHERINFO_CONTENT_TYPE: &[u8] = b"application/watcherinfo+xml";

/// The PIDF namespace (RFC 3863 §4.1).
pub const PIDF_NS: &str = "urn:ietf:params:xml:ns:pidf";
/// The namespace of draft-ietf-impp-cpim-pidf, still sent by some
/// `application/cpim-pidf+xml` clients; accepted on input and kept on output.
pub const CPIM_PIDF_NS: &str = "urn:ietf:params:xml:ns:cpim-pidf";

/// Deepest element nesting accepted. Real presence documents stay under ten levels;
/// the bound keeps a hostile document from costing more than its length.
pub const MAX_DEPTH: usize = 64;
/// Largest body the rewrite reads (1 MiB). SIP over UDP cannot carry more than 64 KiB;
/// the margin is for TCP and RLMI bundles of large lists.
pub const MAX_BODY: usize = 1 << 20;

/// A rewritten body and the Content-Type it must be sent with. The caller sets
/// Content-Length from `body.len()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// The full Content-Type header value.
    pub content_type: Cow<'static, [u8]>,
    /// The new body.
    pub body: Vec<u8>,
}

impl Rewritten {
    /// The content type as text (lossy: a content type is ASCII on the wire).
    pub fn content_type_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.content_type)
    }
}

/// Why a body could not be rewritten. The engine's answer to every one of them is
/// the same: replace the body with [`offline_document`] (never forward it as it is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PidfError {
    /// The XML is not well-formed (or not namespace-well-formed).
    #[error("malformed XML at byte {position}: {message}")]
    Malformed { position: u64, message: String },
    /// More than [`MAX_DEPTH`] nested elements.
    #[error("document nests deeper than {MAX_DEPTH} elements")]
    TooDeep,
    /// The body is larger than [`MAX_BODY`].
    #[error("body of {0} bytes is larger than the {MAX_BODY} byte limit")]
    TooLarge(usize),
    /// The root element is not the one the content type promises.
    #[error("root element is {found}, expected {expected}")]
    WrongRoot {
        expected: &'static str,
        found: String,
    },
    /// A PIDF without `entity` (RFC 3863 §4.1.1 makes it mandatory) or an XPIDF
    /// without `<presentity uri>`, and no entity hint from the caller.
    #[error("document names no presentity and no entity hint was given")]
    MissingEntity,
    /// A declared or detected character encoding this code does not read.
    #[error("unsupported character encoding {0:?}")]
    UnsupportedEncoding(String),
    /// The body is not UTF-8 although it says it is (or says nothing).
    #[error("body is not valid {encoding}: {message}")]
    BadEncoding {
        encoding: &'static str,
        message: String,
    },
    /// A content type this module cannot rewrite.
    #[error("content type {0:?} cannot be rewritten")]
    UnsupportedContentType(String),
    /// A `multipart/*` body that does not follow RFC 2046 §5.1 or RFC 4662 §5.
    #[error("multipart body: {0}")]
    Multipart(String),
}

/// Which presence format a content type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Pidf,
    CpimPidf,
    Xpidf,
    MultipartRelated,
}

fn format_of(mt: &MediaType<'_>) -> Option<Format> {
    let ty = mt.essence();
    if ty.eq_ignore_ascii_case("application/pidf+xml") {
        Some(Format::Pidf)
    } else if ty.eq_ignore_ascii_case("application/cpim-pidf+xml") {
        Some(Format::CpimPidf)
    } else if ty.eq_ignore_ascii_case("application/xpidf+xml") {
        Some(Format::Xpidf)
    } else if ty.eq_ignore_ascii_case("multipart/related") {
        Some(Format::MultipartRelated)
    } else {
        None
    }
}

/// Whether [`offline`] can rewrite bodies of this Content-Type (parameters ignored).
pub fn is_rewritable(content_type: &[u8]) -> bool {
    MediaType::parse(content_type)
        .ok()
        .and_then(|mt| format_of(&mt))
        .is_some()
}

/// The Offline rewrite of one presence body: same presentity, every tuple (XPIDF:
/// atom) kept by id with status closed, everything else gone.
///
/// * `application/pidf+xml` → `application/pidf+xml` exactly.
/// * `application/cpim-pidf+xml` → `application/cpim-pidf+xml`. RFC 3863 §7.1
///   registers only `application/pidf+xml`; `cpim-pidf` is the draft name that
///   RFC 3860 (CPIM presence) clients negotiated. A watcher that sent
///   `Accept: application/cpim-pidf+xml` must get a NOTIFY body of a type it
///   accepted (RFC 6665: NOTIFY bodies follow the SUBSCRIBE's Accept), and the document format is identical, so the
///   type it was sent is the type it gets back.
/// * `application/xpidf+xml` → `application/xpidf+xml` (the phone asked for it).
/// * `multipart/related` → every part rewritten, as [`rewrite_rlmi`] with every
///   resource blocked.
/// * An empty body is returned empty with its content type: a presentity that never
///   published is indistinguishable from an offline one, and a body would claim
///   more than the real NOTIFY did.
///
/// `entity_hint` (the presentity the dialog is about) is used only when the document
/// itself names no presentity.
pub fn offline(
    content_type: &[u8],
    body: &[u8],
    entity_hint: Option<&str>,
) -> Result<Rewritten, PidfError> {
    if body.is_empty() {
        return Ok(Rewritten {
            content_type: Cow::Owned(content_type.to_vec()),
            body: Vec::new(),
        });
    }
    if body.len() > MAX_BODY {
        return Err(PidfError::TooLarge(body.len()));
    }
    let mt = MediaType::parse(content_type)?;
    let format = format_of(&mt).ok_or_else(|| {
        PidfError::UnsupportedContentType(String::from_utf8_lossy(content_type).into_owned())
    })?;
    match format {
        Format::Pidf | Format::CpimPidf => {
            let text = charset::to_utf8(body, mt.param("charset"))?;
            let out = presence::offline(&text, entity_hint)?;
            Ok(Rewritten {
                content_type: Cow::Borrowed(if format == Format::Pidf {
                    PIDF_CONTENT_TYPE
                } else {
                    CPIM_PIDF_CONTENT_TYPE
                }),
                body: out,
            })
        }
        Format::Xpidf => {
            let text = charset::to_utf8(body, mt.param("charset"))?;
            Ok(Rewritten {
                content_type: Cow::Borrowed(XPIDF_CONTENT_TYPE),
                body: xpidf::offline(&text, entity_hint)?,
            })
        }
        Format::MultipartRelated => rewrite_rlmi(content_type, body, &|_| true),
    }
}

/// The Offline rewrite that cannot fail: [`offline`], and when that returns an error
/// (unknown type, malformed XML, ...), [`offline_document`] for `entity`. An empty
/// body stays empty. This is the whole rule for a blocked watcher's NOTIFY body.
pub fn offline_or_document(content_type: &[u8], body: &[u8], entity: &str) -> Rewritten {
    match offline(content_type, body, Some(entity)) {
        Ok(r) => r,
        Err(err) => {
            tracing::debug!(%err, entity, "presence body replaced by the Offline document");
            offline_document(entity)
        }
    }
}

/// The empty Offline PIDF for `entity`: one tuple, `<basic>closed</basic>`, nothing
/// else; Content-Type `application/pidf+xml`. Used for bodies that cannot be
/// rewritten and for NOTIFYs the proxy injects itself.
pub fn offline_document(entity: &str) -> Rewritten {
    let mut body = Vec::with_capacity(160 + entity.len());
    presence::write_offline(&mut body, PIDF_NS, entity, &["offline"]);
    Rewritten {
        content_type: Cow::Borrowed(PIDF_CONTENT_TYPE),
        body,
    }
}

#[cfg(test)]
mod tests;
