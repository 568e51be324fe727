//! The one streaming pass every reader in this module shares: quick-xml over the
//! whole document, checking what makes a document well-formed and
//! namespace-well-formed (XML 1.0 §2.1, Namespaces in XML §5) within
//! [`MAX_DEPTH`], and handing each element start to the caller with its depth and
//! resolved namespace. No tree is built.

use super::{PidfError, MAX_DEPTH};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use std::borrow::Cow;

/// One element start, as the scan hands it to its visitor.
pub(crate) struct Element<'a, 'i> {
    /// 0 for the root element.
    pub depth: usize,
    /// The element's namespace name; `None` when it is in no namespace.
    pub ns: Option<&'a [u8]>,
    /// The local part of its name.
    pub local: &'a [u8],
    pub start: &'a BytesStart<'i>,
}

impl Element<'_, '_> {
    /// Whether the element is `{ns}local`.
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.local == local.as_bytes() && self.ns == Some(ns.as_bytes())
    }

    /// The unescaped value of the unprefixed attribute `name` (attributes without a
    /// prefix are in no namespace, Namespaces in XML §6.2).
    pub fn attr(&self, name: &str) -> Result<Option<Cow<'_, str>>, PidfError> {
        for a in self.start.attributes() {
            let a = a.map_err(|e| malformed(0, e))?;
            if a.key.as_ref() == name.as_bytes() {
                return a.unescape_value().map(Some).map_err(|e| malformed(0, e));
            }
        }
        Ok(None)
    }
}

pub(crate) fn malformed(position: u64, e: impl std::fmt::Display) -> PidfError {
    PidfError::Malformed {
        position,
        message: e.to_string(),
    }
}

/// What [`scan_nodes`] hands its visitor.
pub(crate) enum Node<'a, 'i> {
    Start(&'a Element<'a, 'i>),
    /// Character data (text, unescaped, or CDATA) directly inside an element at `depth`.
    Text {
        depth: usize,
        text: Cow<'a, str>,
    },
    /// The element at `depth` has ended (also sent for empty elements).
    End {
        depth: usize,
    },
}

/// Streams `text` and calls `visit` for every element start (and empty element).
/// Returns an error for the first well-formedness problem found or the first error
/// `visit` returns.
pub(crate) fn scan(
    text: &str,
    mut visit: impl FnMut(&Element<'_, '_>) -> Result<(), PidfError>,
) -> Result<(), PidfError> {
    scan_impl(text, false, &mut |node| match node {
        Node::Start(el) => visit(el),
        _ => Ok(()),
    })
}

/// [`scan`] that also reports character data and element ends, for the readers that
/// need element content (watcher-info).
pub(crate) fn scan_nodes(
    text: &str,
    mut visit: impl FnMut(Node<'_, '_>) -> Result<(), PidfError>,
) -> Result<(), PidfError> {
    scan_impl(text, true, &mut visit)
}

fn scan_impl(
    text: &str,
    nodes: bool,
    visit: &mut dyn FnMut(Node<'_, '_>) -> Result<(), PidfError>,
) -> Result<(), PidfError> {
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_comments = true;
    let mut depth = 0usize;
    let mut root_seen = false;
    loop {
        let pos = reader.buffer_position();
        let (res, ev) = match reader.read_resolved_event() {
            Ok(x) => x,
            Err(e) => return Err(malformed(reader.error_position(), e)),
        };
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if depth == 0 && root_seen {
                    return Err(malformed(pos, "a second root element"));
                }
                root_seen = true;
                if depth >= MAX_DEPTH {
                    return Err(PidfError::TooDeep);
                }
                let ns = match res {
                    ResolveResult::Bound(ns) => Some(ns.into_inner()),
                    ResolveResult::Unbound => None,
                    ResolveResult::Unknown(p) => {
                        return Err(malformed(
                            pos,
                            format_args!("undeclared prefix {:?}", String::from_utf8_lossy(&p)),
                        ))
                    }
                };
                // Attribute syntax and duplicates are only checked when iterated.
                for a in e.attributes() {
                    let a = a.map_err(|err| malformed(pos, err))?;
                    if a.value.contains(&b'&') {
                        a.unescape_value().map_err(|err| malformed(pos, err))?;
                    }
                }
                let name = e.name();
                visit(Node::Start(&Element {
                    depth,
                    ns,
                    local: name.local_name().into_inner(),
                    start: e,
                }))?;
                if matches!(ev, Event::Start(_)) {
                    depth += 1;
                } else if nodes {
                    visit(Node::End { depth })?;
                }
            }
            Event::End(_) => {
                // quick-xml has matched the end name against the open start tag.
                depth = depth.saturating_sub(1);
                if nodes {
                    visit(Node::End { depth })?;
                }
            }
            Event::Text(t) => {
                if depth == 0 {
                    if t.iter().any(|b| !b.is_ascii_whitespace()) {
                        return Err(malformed(pos, "text outside the root element"));
                    }
                } else if nodes {
                    let text = t.unescape().map_err(|err| malformed(pos, err))?;
                    visit(Node::Text {
                        depth: depth - 1,
                        text,
                    })?;
                } else if t.contains(&b'&') {
                    t.unescape().map_err(|err| malformed(pos, err))?;
                }
            }
            Event::CData(_) if depth == 0 => {
                return Err(malformed(pos, "CDATA outside the root element"));
            }
            Event::CData(c) if nodes => {
                let text = std::str::from_utf8(c.into_inner().as_ref())
                    .map(|s| Cow::Owned(s.to_owned()))
                    .map_err(|err| malformed(pos, err))?;
                visit(Node::Text {
                    depth: depth - 1,
                    text,
                })?;
            }
            Event::DocType(_) if root_seen => {
                return Err(malformed(pos, "DOCTYPE after the root element"));
            }
            Event::CData(_) | Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::DocType(_) => {}
            Event::Eof => {
                if !root_seen {
                    return Err(malformed(pos, "no root element"));
                }
                if depth != 0 {
                    return Err(malformed(pos, "document ends inside an element"));
                }
                return Ok(());
            }
        }
    }
}

/// Appends `value` escaped for a double-quoted attribute. Tabs and line breaks become
/// character references so attribute-value normalisation (XML 1.0 §3.3.3) gives back
/// the same value, and so the output never contains a raw line break (which keeps it
/// clear of any multipart boundary line).
pub(crate) fn push_attr(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    let mut last = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let rep: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'"' => b"&quot;",
            b'\t' => b"&#9;",
            b'\n' => b"&#10;",
            b'\r' => b"&#13;",
            _ => continue,
        };
        out.extend_from_slice(&bytes[last..i]);
        out.extend_from_slice(rep);
        last = i + 1;
    }
    out.extend_from_slice(&bytes[last..]);
}

/// Appends `value` escaped as character data.
pub(crate) fn push_text(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    let mut last = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let rep: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'\r' => b"&#13;",
            _ => continue,
        };
        out.extend_from_slice(&bytes[last..i]);
        out.extend_from_slice(rep);
        last = i + 1;
    }
    out.extend_from_slice(&bytes[last..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(text: &str) -> Result<usize, PidfError> {
        let mut n = 0;
        scan(text, |_| {
            n += 1;
            Ok(())
        })?;
        Ok(n)
    }

    #[test]
    fn well_formed_documents_pass() {
        assert_eq!(
            count("<?xml version='1.0'?>\n<!-- c --><a><b/><?pi x?><![CDATA[<x>]]></a>\n").unwrap(),
            2
        );
    }

    #[test]
    fn well_formedness_errors_are_reported() {
        for bad in [
            "",
            "   ",
            "<a>",
            "<a></b>",
            "<a/><b/>",
            "text<a/>",
            "<a/>tail",
            "<a x='1' x='2'/>",
            "<a x=1/>",
            "<p:a/>",
            "<a>&bogus;</a>",
            "<a x='&bogus;'/>",
            "<a><!-- a -- b --></a>",
            "<a/><!DOCTYPE a>",
        ] {
            assert!(
                matches!(count(bad), Err(PidfError::Malformed { .. })),
                "{bad:?} gave {:?}",
                count(bad)
            );
        }
    }

    #[test]
    fn depth_is_bounded() {
        let ok = "<a>".repeat(MAX_DEPTH) + &"</a>".repeat(MAX_DEPTH);
        assert_eq!(count(&ok).unwrap(), MAX_DEPTH);
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert_eq!(count(&deep), Err(PidfError::TooDeep));
        let deep_empty = "<a>".repeat(MAX_DEPTH) + "<b/>" + &"</a>".repeat(MAX_DEPTH);
        assert_eq!(count(&deep_empty), Err(PidfError::TooDeep));
    }

    #[test]
    fn escaping_round_trips_through_the_reader() {
        let nasty = "a&b<c>d\"e'f\tg\nh\ri";
        let mut doc = b"<x a=\"".to_vec();
        push_attr(&mut doc, nasty);
        doc.extend_from_slice(b"\">");
        push_text(&mut doc, nasty);
        doc.extend_from_slice(b"</x>");
        assert!(!doc.contains(&b'\n') || doc.iter().filter(|b| **b == b'\n').count() == 1);
        let text = std::str::from_utf8(&doc).unwrap();
        let mut got = None;
        scan(text, |e| {
            got = e.attr("a")?.map(Cow::into_owned);
            Ok(())
        })
        .unwrap();
        assert_eq!(got.as_deref(), Some(nasty));
    }
}
