//! Resource-list NOTIFY bodies (RFC 4662 §5): a `multipart/related` whose root part
//! is the RLMI document (`application/rlmi+xml`) naming each resource and, per
//! instance, the Content-ID of the part that carries its state (`<instance cid>`).
//!
//! Only the parts of resources the caller says are blocked are rewritten; every other
//! byte (boundaries, the RLMI root, other resources' parts, preamble, epilogue) is
//! copied. A part that is itself a list (a nested `multipart/related`, RFC 4662 §5)
//! is descended into. A blocked part that cannot be rewritten (unknown type, a
//! transfer encoding, malformed XML) is replaced by the Offline document for its
//! resource, never passed on.

use super::multipart::{split, strip_angles, Part};
use super::xml::scan;
use super::{offline_document, MediaType, PidfError, Rewritten};
use std::borrow::Cow;
use std::collections::HashMap;

/// The RLMI namespace (RFC 4662 §5).
pub const RLMI_NS: &str = "urn:ietf:params:xml:ns:rlmi";

/// Nested lists deeper than this are refused (each level is a whole multipart body).
const MAX_NESTING: usize = 8;

/// Rewrites the parts of blocked resources in an RLMI `multipart/related` body.
/// `is_blocked` gets each resource URI as the RLMI document spells it. The
/// Content-Type stays as it was (same boundary). An empty body stays empty.
pub fn rewrite_rlmi(
    content_type: &[u8],
    body: &[u8],
    is_blocked: &dyn Fn(&str) -> bool,
) -> Result<Rewritten, PidfError> {
    let body = if body.is_empty() {
        Vec::new()
    } else {
        if body.len() > super::MAX_BODY {
            return Err(PidfError::TooLarge(body.len()));
        }
        rewrite(content_type, body, is_blocked, 0)?.into_owned()
    };
    Ok(Rewritten {
        content_type: Cow::Owned(content_type.to_vec()),
        body,
    })
}

fn rewrite<'b>(
    content_type: &[u8],
    body: &'b [u8],
    is_blocked: &dyn Fn(&str) -> bool,
    nesting: usize,
) -> Result<Cow<'b, [u8]>, PidfError> {
    if nesting > MAX_NESTING {
        return Err(PidfError::Multipart(format!(
            "lists nested deeper than {MAX_NESTING}"
        )));
    }
    let mt = MediaType::parse(content_type)?;
    if !mt.essence().eq_ignore_ascii_case("multipart/related") {
        return Err(PidfError::UnsupportedContentType(
            String::from_utf8_lossy(content_type).into_owned(),
        ));
    }
    let parts = split(content_type, body)?;
    let root_idx = match mt.param("start") {
        Some(start) => {
            let start = strip_angles(start);
            parts
                .iter()
                .position(|p| p.content_id() == Some(start))
                .ok_or_else(|| {
                    PidfError::Multipart(format!("no part has the start Content-ID <{start}>"))
                })?
        }
        None if parts.is_empty() => return Err(PidfError::Multipart("no parts".into())),
        None => 0,
    };
    let root = &parts[root_idx];
    let root_type = MediaType::parse(root.content_type().as_bytes())?;
    if !root_type
        .essence()
        .eq_ignore_ascii_case("application/rlmi+xml")
    {
        return Err(PidfError::Multipart(format!(
            "root part is {}, not application/rlmi+xml",
            root_type.essence()
        )));
    }
    let text = super::charset::to_utf8(&body[root.body.clone()], root_type.param("charset"))?;
    let instances = read_rlmi(&text)?;
    // Content-ID → resource; a map because a large list has thousands of both.
    let resource_of: HashMap<&str, &str> = instances
        .iter()
        .map(|(cid, uri)| (cid.as_str(), uri.as_str()))
        .collect();

    let mut out: Option<Vec<u8>> = None;
    let mut copied_to = 0;
    for (i, part) in parts.iter().enumerate() {
        if i == root_idx {
            continue;
        }
        let Some(cid) = part.content_id() else {
            continue;
        };
        let Some(&uri) = resource_of.get(cid) else {
            continue;
        };
        let blocked = is_blocked(uri);
        let part_type = part.content_type().as_bytes();
        let part_body = &body[part.body.clone()];
        let nested = MediaType::parse(part_type)
            .map(|m| m.essence().eq_ignore_ascii_case("multipart/related"))
            .unwrap_or(false);
        let replacement: Option<Vec<u8>> = if nested {
            let all = |_: &str| true;
            let inner: &dyn Fn(&str) -> bool = if blocked { &all } else { is_blocked };
            match rewrite(part_type, part_body, inner, nesting + 1) {
                Ok(Cow::Borrowed(_)) => None,
                Ok(Cow::Owned(new)) => Some(rebuild(body, part, None, &new)),
                Err(err) if blocked => {
                    tracing::debug!(%err, uri, "blocked sub-list replaced by the Offline document");
                    let doc = offline_document(uri);
                    Some(rebuild(body, part, Some(&doc.content_type), &doc.body))
                }
                Err(err) => return Err(err),
            }
        } else if blocked {
            let doc = if identity_encoding(part) {
                super::offline(part_type, part_body, Some(uri))
                    .unwrap_or_else(|_| offline_document(uri))
            } else {
                offline_document(uri)
            };
            Some(rebuild(body, part, Some(&doc.content_type), &doc.body))
        } else {
            None
        };
        if let Some(new_part) = replacement {
            let out = out.get_or_insert_with(|| Vec::with_capacity(body.len()));
            out.extend_from_slice(&body[copied_to..part.range.start]);
            out.extend_from_slice(&new_part);
            copied_to = part.range.end;
        }
    }
    Ok(match out {
        None => Cow::Borrowed(body),
        Some(mut out) => {
            out.extend_from_slice(&body[copied_to..]);
            Cow::Owned(out)
        }
    })
}

/// `(cid, resource uri)` for every `<instance cid>` of every `<resource uri>`.
fn read_rlmi(text: &str) -> Result<Vec<(String, String)>, PidfError> {
    let mut out = Vec::new();
    let mut resource: Option<String> = None;
    scan(text, &[RLMI_NS], 3, |el| {
        if el.depth == 0 && !el.is(RLMI_NS, "list") {
            return Err(PidfError::WrongRoot {
                expected: "{urn:ietf:params:xml:ns:rlmi}list",
                found: el.describe(),
            });
        }
        if el.depth == 1 {
            resource = if el.is(RLMI_NS, "resource") {
                el.attr("uri")?.map(Cow::into_owned)
            } else {
                None
            };
        } else if el.depth == 2 && el.is(RLMI_NS, "instance") {
            if let (Some(uri), Some(cid)) = (&resource, el.attr("cid")?) {
                out.push((strip_angles(&cid).to_owned(), uri.clone()));
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// Whether the part's content is sent as is (RFC 2045 §6.1: 7bit, 8bit, binary).
fn identity_encoding(part: &Part<'_>) -> bool {
    part.header("Content-Transfer-Encoding")
        .map(|v| {
            let v = v.trim();
            ["7bit", "8bit", "binary"]
                .iter()
                .any(|e| v.eq_ignore_ascii_case(e))
        })
        .unwrap_or(true)
}

/// The part with `new_body` and, if given, a new Content-Type. Other header lines are
/// copied byte for byte; Content-Length (rare in MIME, but seen) is recomputed; a
/// Content-Transfer-Encoding other than the identity ones becomes `binary`, since the
/// new body is not encoded.
fn rebuild(body: &[u8], part: &Part<'_>, content_type: Option<&[u8]>, new_body: &[u8]) -> Vec<u8> {
    let nl = part.line_ending;
    let mut out = Vec::with_capacity(part.range.len() + new_body.len());
    let mut wrote_type = false;
    for h in &part.headers {
        let is = |name: &str| h.name.eq_ignore_ascii_case(name);
        match content_type {
            Some(ct) if is("Content-Type") => {
                out.extend_from_slice(b"Content-Type: ");
                out.extend_from_slice(ct);
                wrote_type = true;
            }
            _ if is("Content-Length") => {
                out.extend_from_slice(format!("Content-Length: {}", new_body.len()).as_bytes());
            }
            _ if is("Content-Transfer-Encoding") && !identity_encoding(part) => {
                out.extend_from_slice(b"Content-Transfer-Encoding: binary");
            }
            _ => out.extend_from_slice(&body[h.raw.clone()]),
        }
        out.extend_from_slice(nl);
    }
    if let (false, Some(ct)) = (wrote_type, content_type) {
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(ct);
        out.extend_from_slice(nl);
    }
    out.extend_from_slice(nl);
    out.extend_from_slice(new_body);
    out
}
