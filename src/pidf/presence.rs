//! The Offline rewrite of a PIDF document (RFC 3863), with whatever RPID (RFC 4480),
//! data-model (RFC 4479), CIPID (RFC 4482), geopriv (RFC 4119) or vendor extensions
//! it carries.
//!
//! What survives: the root's namespace (PIDF or the older CPIM-PIDF), its `entity`
//! (RFC 3863 §4.1.1), and each top-level `<tuple>`'s `id` (§4.1.2), each tuple now
//! holding only `<status><basic>closed</basic></status>` (§4.1.4). Everything else,
//! at every level, is gone: `<note>`, `<timestamp>`, `<contact>`, tuple and status
//! extensions, `<dm:person>`, `<dm:device>`, `<gp:geopriv>`. A document with no tuple
//! at all (a bare RFC 4479 person) gets one, so the watcher sees a closed service
//! rather than nothing.

use super::xml::{push_attr, scan};
use super::{PidfError, CPIM_PIDF_NS, PIDF_NS};
use std::borrow::Cow;

/// Reads a PIDF document and writes its Offline form.
pub(crate) fn offline(text: &str, entity_hint: Option<&str>) -> Result<Vec<u8>, PidfError> {
    let mut ns: &'static str = PIDF_NS;
    let mut entity: Option<Cow<'_, str>> = None;
    // Six tuples (the 4 KiB benchmark document) without growing.
    let mut ids: Vec<Cow<'_, str>> = Vec::with_capacity(8);
    scan(text, &[PIDF_NS, CPIM_PIDF_NS], 2, |el| {
        if el.depth == 0 {
            ns = if el.is(PIDF_NS, "presence") {
                PIDF_NS
            } else if el.is(CPIM_PIDF_NS, "presence") {
                CPIM_PIDF_NS
            } else {
                return Err(PidfError::WrongRoot {
                    expected: "{urn:ietf:params:xml:ns:pidf}presence",
                    found: el.describe(),
                });
            };
            entity = el.attr("entity")?;
        } else if el.depth == 1 && el.is(ns, "tuple") {
            let id = match el.attr("id")? {
                Some(id) => id,
                // RFC 3863 makes `id` mandatory; one is made up rather than the
                // tuple dropped, so the watcher still sees a closed service.
                None => Cow::Owned(format!("t{}", ids.len() + 1)),
            };
            ids.push(id);
        }
        Ok(())
    })?;
    // An empty `entity` is as good as none (it must be a URI, RFC 3863 §4.1.1).
    let entity = match (
        entity.as_deref().filter(|e| !e.trim().is_empty()),
        entity_hint,
    ) {
        (Some(e), _) => e,
        (None, Some(h)) => h,
        (None, None) => return Err(PidfError::MissingEntity),
    };
    if ids.is_empty() {
        ids.push(Cow::Borrowed("offline"));
    }
    let mut out = Vec::with_capacity(120 + entity.len() + ids.len() * 80);
    write_offline(&mut out, ns, entity, &ids);
    Ok(out)
}

/// Writes the Offline PIDF: `entity`, one closed tuple per id, in the default
/// namespace `ns`.
pub(crate) fn write_offline<S: AsRef<str>>(out: &mut Vec<u8>, ns: &str, entity: &str, ids: &[S]) {
    out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"");
    push_attr(out, ns);
    out.extend_from_slice(b"\" entity=\"");
    push_attr(out, entity);
    out.extend_from_slice(b"\">");
    for id in ids {
        out.extend_from_slice(b"<tuple id=\"");
        push_attr(out, id.as_ref());
        out.extend_from_slice(b"\"><status><basic>closed</basic></status></tuple>");
    }
    out.extend_from_slice(b"</presence>");
}
