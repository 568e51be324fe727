//! The Offline rewrite of XPIDF (`application/xpidf+xml`, draft-rosenberg-impp-pidf-00,
//! the format of Windows Messenger era phones and still asked for by Cisco and Polycom
//! sets): `<presence><presentity uri/><atom id><address uri><status status/>
//! <msnsubstatus substatus/></address></atom></presence>`, in no namespace.
//!
//! What survives: the presentity URI and each atom's id. Each atom gets one address
//! whose URI is the presentity's (the original address is a device contact and may
//! carry its IP address), `status="closed"`, and `msnsubstatus substatus="offline"`,
//! the pair Asterisk's own XPIDF body uses for an unavailable extension, because
//! Messenger-derived clients read the substatus before the status. Notes, display
//! names, features and any other element are gone.

use super::xml::{push_attr, scan};
use super::PidfError;
use std::borrow::Cow;

const DOCTYPE: &[u8] =
    b"<!DOCTYPE presence PUBLIC \"-//IETF//DTD RFCxxxx XPIDF 1.0//EN\" \"xpidf.dtd\">";

pub(crate) fn offline(text: &str, entity_hint: Option<&str>) -> Result<Vec<u8>, PidfError> {
    let mut presentity: Option<Cow<'_, str>> = None;
    let mut atoms: Vec<Cow<'_, str>> = Vec::new();
    scan(text, &[], 2, |el| {
        if el.depth == 0 {
            if !el.in_no_namespace() || el.local != b"presence" {
                return Err(PidfError::WrongRoot {
                    expected: "presence (XPIDF, no namespace)",
                    found: el.describe(),
                });
            }
        } else if el.depth == 1 && el.in_no_namespace() {
            match el.local {
                b"presentity" if presentity.is_none() => {
                    presentity = el.attr("uri")?;
                }
                b"atom" => atoms.push(match el.attr("id")? {
                    Some(id) => id,
                    None => Cow::Owned(format!("a{}", atoms.len() + 1)),
                }),
                _ => {}
            }
        }
        Ok(())
    })?;
    let uri = match (presentity.as_deref(), entity_hint) {
        (Some(p), _) if !p.trim().is_empty() => p,
        (_, Some(h)) => h,
        _ => return Err(PidfError::MissingEntity),
    };
    if atoms.is_empty() {
        atoms.push(Cow::Borrowed("offline"));
    }
    let address = strip_params(uri);
    let mut out = Vec::with_capacity(300 + atoms.len() * (120 + address.len()));
    out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.extend_from_slice(DOCTYPE);
    out.extend_from_slice(b"\n<presence><presentity uri=\"");
    push_attr(&mut out, uri);
    out.extend_from_slice(b"\"/>");
    for id in &atoms {
        out.extend_from_slice(b"<atom id=\"");
        push_attr(&mut out, id);
        out.extend_from_slice(b"\"><address uri=\"");
        push_attr(&mut out, address);
        out.extend_from_slice(
            b"\" priority=\"0.800000\"><status status=\"closed\"/>\
              <msnsubstatus substatus=\"offline\"/></address></atom>",
        );
    }
    out.extend_from_slice(b"</presence>");
    Ok(out)
}

/// The URI without its `;param` tail (`sip:bob@host;method=SUBSCRIBE` →
/// `sip:bob@host`). Parameters start after the host, so the search starts after
/// the last `@` (a user part may itself contain `;`, RFC 3261 §19.1.1).
fn strip_params(uri: &str) -> &str {
    let from = uri.rfind('@').unwrap_or(0);
    match uri[from..].find(';') {
        Some(i) => &uri[..from + i],
        None => uri,
    }
}

#[cfg(test)]
mod tests {
    use super::strip_params;

    #[test]
    fn params_are_stripped_after_the_host_only() {
        assert_eq!(strip_params("sip:bob@h;method=SUBSCRIBE"), "sip:bob@h");
        assert_eq!(strip_params("sip:a;b@h;user=ip"), "sip:a;b@h");
        assert_eq!(strip_params("sip:h"), "sip:h");
    }
}
