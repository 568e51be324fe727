//! The one streaming pass every reader in this module shares: quick-xml over the
//! whole document, checking what makes it well-formed (XML 1.0 §2.1: one root,
//! matching and nested tags, no text outside the root, valid references) within
//! [`MAX_DEPTH`], and handing each *shallow* element start to the caller with its
//! depth and resolved namespace. No tree is built.
//!
//! Namespaces (Namespaces in XML §6) are resolved only for elements shallower than
//! the caller's `resolve_depth`: the rewrite looks at the root and its children
//! (RLMI and watcher-info one level more), and everything deeper is dropped anyway.
//! Skipping attribute and namespace work below that depth halves the cost of a
//! pass; deeper elements are still checked for tag balance and references. The
//! namespace names a caller cares about are passed in as `known`, so resolution
//! compares against them instead of storing strings.

use super::attrs::Attrs;
use super::fastscan::{shallow_marks_with, Classify, Mark, Native};
use super::{PidfError, MAX_DEPTH};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::borrow::Cow;

/// The namespace an element resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ns {
    /// No namespace (no prefix and no default namespace in scope).
    None,
    /// `known[i]`.
    Known(usize),
    /// Some other namespace.
    Other,
}

/// One element start, as the scan hands it to its visitor.
pub(crate) struct Element<'a, 'i> {
    /// 0 for the root element.
    pub depth: usize,
    pub ns: Ns,
    /// The local part of its name.
    pub local: &'a [u8],
    pub start: &'a BytesStart<'i>,
    /// Its attributes as [`declare`] split and checked them, when it did (else
    /// quick-xml reads them).
    attrs: Option<&'a [(&'i str, &'i str)]>,
    /// The whole document, so attribute values without references can be lent out
    /// for as long as the document lives.
    input: &'i str,
    known: &'a [&'a str],
    /// Byte offset of the start tag, for error messages.
    position: u64,
}

impl<'i> Element<'_, 'i> {
    /// Whether the element is `{ns}local`; `ns` must be one of the scan's `known`.
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.local == local.as_bytes() && matches!(self.ns, Ns::Known(i) if self.known[i] == ns)
    }

    /// Whether the element is in no namespace.
    pub fn in_no_namespace(&self) -> bool {
        self.ns == Ns::None
    }

    /// The unescaped value of the unprefixed attribute `name` (attributes without a
    /// prefix are in no namespace, Namespaces in XML §6.2).
    /// A value without references borrows from the document.
    pub fn attr(&self, name: &str) -> Result<Option<Cow<'i, str>>, PidfError> {
        if let Some(attrs) = self.attrs {
            match attrs.iter().find(|(key, _)| *key == name) {
                None => return Ok(None),
                Some((_, value)) => {
                    if let Ok(value) = unescape(value) {
                        return Ok(Some(value));
                    }
                }
            }
        }
        self.attr_quick_xml(name)
    }

    /// [`attr`](Self::attr) read by quick-xml, which decides (and names the error)
    /// whenever the split attributes are not there or not sure.
    fn attr_quick_xml(&self, name: &str) -> Result<Option<Cow<'i, str>>, PidfError> {
        for a in self.start.attributes() {
            let a = a.map_err(|e| malformed(self.position, e))?;
            if a.key.as_ref() == name.as_bytes() {
                let value = a
                    .unescape_value()
                    .map_err(|e| malformed(self.position, e))?;
                return Ok(Some(match value {
                    Cow::Borrowed(v) => match reborrow(self.input.as_bytes(), v.as_bytes()) {
                        // `v` is a `str` at the same place in `input`, so the slice is too.
                        Some(_) => {
                            let at = v.as_ptr() as usize - self.input.as_ptr() as usize;
                            Cow::Borrowed(&self.input[at..at + v.len()])
                        }
                        None => Cow::Owned(v.to_owned()),
                    },
                    Cow::Owned(v) => Cow::Owned(v),
                }));
            }
        }
        Ok(None)
    }

    /// `{namespace}local` for error messages. An unknown namespace is named when the
    /// element declares it itself (always the case for a root element).
    pub fn describe(&self) -> String {
        let local = String::from_utf8_lossy(self.local);
        match self.ns {
            Ns::None => local.into_owned(),
            Ns::Known(i) => format!("{{{}}}{local}", self.known[i]),
            Ns::Other => {
                let name = self.start.name();
                let want: Vec<u8> = match name.prefix() {
                    Some(p) => [b"xmlns:".as_slice(), p.as_ref()].concat(),
                    None => b"xmlns".to_vec(),
                };
                let own = self
                    .start
                    .attributes()
                    .flatten()
                    .find(|a| a.key.as_ref() == want.as_slice())
                    .map(|a| String::from_utf8_lossy(&a.value).into_owned());
                match own {
                    Some(ns) => format!("{{{ns}}}{local}"),
                    None => format!("{{another namespace}}{local}"),
                }
            }
        }
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
    /// Character data (text, unescaped, or CDATA) directly inside a shallow element
    /// at `depth`.
    Text {
        depth: usize,
        text: Cow<'a, str>,
    },
    /// The shallow element at `depth` has ended (also sent for empty elements).
    End {
        depth: usize,
    },
}

/// Streams `text` and calls `visit` for every element start (and empty element)
/// shallower than `resolve_depth`. Returns an error for the first well-formedness
/// problem found or the first error `visit` returns.
///
/// The well-formedness check runs first as [`fastscan`](super::fastscan), which
/// hands back the shallow tags; only when it is not sure does quick-xml read the
/// document, and then quick-xml's verdict (and error) is the answer.
pub(crate) fn scan<'i>(
    text: &'i str,
    known: &[&str],
    resolve_depth: usize,
    visit: impl FnMut(&Element<'_, 'i>) -> Result<(), PidfError>,
) -> Result<(), PidfError> {
    scan_with::<Native>(text, known, resolve_depth, visit)
}

/// [`scan`] with the quick pass classifying bytes with `C`.
fn scan_with<'i, C: Classify>(
    text: &'i str,
    known: &[&str],
    resolve_depth: usize,
    mut visit: impl FnMut(&Element<'_, 'i>) -> Result<(), PidfError>,
) -> Result<(), PidfError> {
    // Root, children and their ends of a typical document without growing.
    let mut marks = Vec::with_capacity(32);
    if shallow_marks_with::<C>(text, resolve_depth, &mut marks) {
        return replay(text, known, &marks, &mut visit);
    }
    scan_impl(text, known, resolve_depth, false, &mut |node| match node {
        Node::Start(el) => visit(el),
        _ => Ok(()),
    })
}

/// Resolves and visits the shallow elements [`shallow_marks_with`] found, as
/// [`scan_impl`] does when it meets them.
fn replay<'i>(
    text: &'i str,
    known: &[&str],
    marks: &[Mark],
    visit: &mut dyn FnMut(&Element<'_, 'i>) -> Result<(), PidfError>,
) -> Result<(), PidfError> {
    let mut scope: Vec<Binding<'i>> = Vec::new();
    for mark in marks {
        match mark {
            Mark::Start {
                depth,
                content,
                name_len,
                position,
                ..
            } => {
                let Some(content) = text.get(content.clone()) else {
                    return Err(malformed(*position, "tag outside the input"));
                };
                let e = BytesStart::from_content(content, *name_len);
                start_element(
                    text,
                    &e,
                    *depth,
                    known,
                    &mut scope,
                    *position,
                    &mut |node| match node {
                        Node::Start(el) => visit(el),
                        _ => Ok(()),
                    },
                )?;
            }
            Mark::End { depth } => scope.retain(|b| b.depth < *depth),
        }
    }
    Ok(())
}

/// [`scan`] that also reports character data and element ends of shallow elements,
/// for the readers that need element content (watcher-info).
pub(crate) fn scan_nodes(
    text: &str,
    known: &[&str],
    resolve_depth: usize,
    mut visit: impl FnMut(Node<'_, '_>) -> Result<(), PidfError>,
) -> Result<(), PidfError> {
    scan_impl(text, known, resolve_depth, true, &mut visit)
}

/// A namespace declaration in scope: declared on the element at `depth`, binding
/// `prefix` (`None`: the default namespace) to `ns`.
#[derive(Debug, PartialEq, Eq)]
struct Binding<'i> {
    depth: usize,
    prefix: Option<&'i [u8]>,
    ns: Ns,
}

/// `part` (a slice the reader handed out) as a slice of `text` itself, so it can
/// outlive the event it came from. quick-xml borrows from the input when reading
/// from a `&str`; the `None` arm is for the day it does not.
fn reborrow<'i>(text: &'i [u8], part: &[u8]) -> Option<&'i [u8]> {
    let start = (part.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    text.get(start..start.checked_add(part.len())?)
}

const XML_NS_PREFIX: &[u8] = b"xml";

fn scan_impl<'i>(
    text: &'i str,
    known: &[&str],
    resolve_depth: usize,
    nodes: bool,
    visit: &mut dyn FnMut(Node<'_, 'i>) -> Result<(), PidfError>,
) -> Result<(), PidfError> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_comments = true;
    let mut scope: Vec<Binding<'i>> = Vec::new();
    let mut depth = 0usize;
    let mut root_seen = false;
    loop {
        let pos = reader.buffer_position();
        let ev = match reader.read_event() {
            Ok(ev) => ev,
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
                let empty = matches!(ev, Event::Empty(_));
                if depth < resolve_depth {
                    start_element(text, e, depth, known, &mut scope, pos, visit)?;
                    if empty {
                        scope.retain(|b| b.depth < depth);
                        if nodes {
                            visit(Node::End { depth })?;
                        }
                    }
                }
                if !empty {
                    depth += 1;
                }
            }
            Event::End(_) => {
                // quick-xml has matched the end name against the open start tag.
                depth = depth.saturating_sub(1);
                if depth < resolve_depth {
                    scope.retain(|b| b.depth < depth);
                    if nodes {
                        visit(Node::End { depth })?;
                    }
                }
            }
            Event::Text(t) => {
                if depth == 0 {
                    if t.iter().any(|b| !b.is_ascii_whitespace()) {
                        return Err(malformed(pos, "text outside the root element"));
                    }
                } else if nodes && depth <= resolve_depth {
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
            Event::CData(c) if nodes && depth <= resolve_depth => {
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

/// Declares the namespaces of a shallow element, resolves its name and visits it.
fn start_element<'i>(
    text: &'i str,
    e: &BytesStart<'i>,
    depth: usize,
    known: &[&str],
    scope: &mut Vec<Binding<'i>>,
    pos: u64,
    visit: &mut dyn FnMut(Node<'_, 'i>) -> Result<(), PidfError>,
) -> Result<(), PidfError> {
    let mut attrs = [("", ""); QUICK_ATTRS];
    let split = declare(text, e, depth, known, scope, pos, &mut attrs)?;
    let name = e.name();
    let (local, prefix) = name.decompose();
    let ns = match prefix {
        Some(p) if p.as_ref() == XML_NS_PREFIX => Ns::Other,
        Some(p) => scope
            .iter()
            .rev()
            .find(|b| b.prefix == Some(p.as_ref()))
            .map(|b| b.ns)
            .ok_or_else(|| {
                malformed(
                    pos,
                    format_args!(
                        "undeclared prefix {:?}",
                        String::from_utf8_lossy(p.as_ref())
                    ),
                )
            })?,
        None => scope
            .iter()
            .rev()
            .find(|b| b.prefix.is_none())
            .map(|b| b.ns)
            .unwrap_or(Ns::None),
    };
    visit(Node::Start(&Element {
        depth,
        ns,
        local: local.into_inner(),
        start: e,
        attrs: split.map(|n| &attrs[..n]),
        input: text,
        known,
        position: pos,
    }))
}

/// Most attributes a tag may have for the quick readers below; more go to quick-xml.
const QUICK_ATTRS: usize = 8;

/// `value` with its references replaced, as quick-xml's `unescape_value`: borrowed
/// when it has none (checked inline, cheaper than the search `unescape` starts with).
fn unescape(value: &str) -> Result<Cow<'_, str>, quick_xml::escape::EscapeError> {
    if value.bytes().any(|c| c == b'&') {
        quick_xml::escape::unescape(value)
    } else {
        Ok(Cow::Borrowed(value))
    }
}

/// What follows the name in a start tag, as a slice of the document (quick-xml
/// borrows tags from a `&str` input, and the quick pass builds them from it).
fn content_after_name<'i>(text: &'i str, e: &BytesStart<'_>) -> Option<&'i str> {
    let raw = reborrow(text.as_bytes(), e.attributes_raw())?;
    let start = raw.as_ptr() as usize - text.as_ptr() as usize;
    text.get(start..start + raw.len())
}

/// Splits the attributes of a tag into `attrs` as [`Attrs`] splits them, with no key
/// twice, and says how many there are: `None` when quick-xml must decide (a syntax
/// error, a repeated key, too many attributes).
fn split<'i>(raw: &'i str, attrs: &mut [(&'i str, &'i str); QUICK_ATTRS]) -> Option<usize> {
    let mut n = 0;
    for a in Attrs::new(raw) {
        let (key, value) = a?;
        if n >= QUICK_ATTRS || attrs[..n].iter().any(|(k, _)| *k == key) {
            return None;
        }
        attrs[n] = (key, value);
        n += 1;
    }
    Some(n)
}

/// Checks the attributes of a shallow element (syntax, duplicates, references) and
/// pushes its namespace declarations onto `scope`. When the quick readers could, the
/// attributes are left split in the first `n` entries of `attrs` and `Some(n)` is
/// returned, so [`Element::attr`] need not read them again.
fn declare<'i>(
    text: &'i str,
    e: &BytesStart<'_>,
    depth: usize,
    known: &[&str],
    scope: &mut Vec<Binding<'i>>,
    pos: u64,
    attrs: &mut [(&'i str, &'i str); QUICK_ATTRS],
) -> Result<Option<usize>, PidfError> {
    let before = scope.len();
    if let Some(n) = content_after_name(text, e).and_then(|raw| split(raw, attrs)) {
        if declare_fast(&attrs[..n], depth, known, scope) {
            return Ok(Some(n));
        }
        scope.truncate(before);
    }
    declare_quick_xml(text.as_bytes(), e, depth, known, scope, pos)?;
    Ok(None)
}

/// [`declare`] over split attributes: `false` when quick-xml must decide (and name
/// the error): a reference that does not resolve, an empty prefixed namespace.
fn declare_fast<'i>(
    attrs: &[(&'i str, &'i str)],
    depth: usize,
    known: &[&str],
    scope: &mut Vec<Binding<'i>>,
) -> bool {
    for &(key, value) in attrs {
        let prefix = if key == "xmlns" {
            None
        } else if let Some(p) = key.strip_prefix("xmlns:") {
            Some(p.as_bytes())
        } else {
            if unescape(value).is_err() {
                return false;
            }
            continue;
        };
        let Ok(value) = unescape(value) else {
            return false;
        };
        let Some(ns) = namespace_of(&value, prefix.is_some(), known) else {
            return false;
        };
        scope.push(Binding { depth, prefix, ns });
    }
    true
}

/// The namespace an `xmlns` or `xmlns:prefix` attribute with `value` binds, or
/// `None` when it may not: Namespaces in XML 1.0 §3, a prefix cannot be undeclared.
fn namespace_of(value: &str, prefixed: bool, known: &[&str]) -> Option<Ns> {
    if value.is_empty() {
        return (!prefixed).then_some(Ns::None);
    }
    Some(
        known
            .iter()
            .position(|k| *k == value)
            .map_or(Ns::Other, Ns::Known),
    )
}

/// [`declare`] read by quick-xml.
fn declare_quick_xml<'i>(
    text: &'i [u8],
    e: &BytesStart<'_>,
    depth: usize,
    known: &[&str],
    scope: &mut Vec<Binding<'i>>,
    pos: u64,
) -> Result<(), PidfError> {
    for a in e.attributes() {
        let a = a.map_err(|err| malformed(pos, err))?;
        let key = a.key.as_ref();
        let prefix = if key == b"xmlns" {
            None
        } else if let Some(p) = key.strip_prefix(b"xmlns:") {
            Some(reborrow(text, p).ok_or_else(|| malformed(pos, "attribute outside the input"))?)
        } else {
            if a.value.contains(&b'&') {
                a.unescape_value().map_err(|err| malformed(pos, err))?;
            }
            continue;
        };
        let value = a.unescape_value().map_err(|err| malformed(pos, err))?;
        let ns = namespace_of(&value, prefix.is_some(), known)
            .ok_or_else(|| malformed(pos, "empty namespace name for a prefix"))?;
        scope.push(Binding { depth, prefix, ns });
    }
    Ok(())
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
        scan(text, &[], MAX_DEPTH, |_| {
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

    /// Which pass [`trace`] runs.
    #[derive(Clone, Copy)]
    enum Pass {
        /// [`scan`]: the quick pass with this target's classifier, else quick-xml.
        Native,
        /// The same with the portable classifier.
        Portable,
        /// quick-xml alone.
        QuickXml,
    }

    /// Everything a scan reports: each shallow element with its namespace and its
    /// attributes as `attr` reads them, then the result (errors with their text).
    fn trace(text: &str, pass: Pass) -> Vec<String> {
        const KNOWN: &[&str] = &["urn:ietf:params:xml:ns:pidf", "urn:example:e"];
        let mut seen = Vec::new();
        let mut visit = |el: &Element<'_, '_>| {
            let attrs: Vec<String> = ["entity", "id", "uri", "x"]
                .iter()
                .map(|n| format!("{n}={:?}", el.attr(n)))
                .collect();
            seen.push(format!(
                "{} {:?} {} {attrs:?} {}",
                el.depth,
                el.ns,
                String::from_utf8_lossy(el.local),
                el.describe()
            ));
            Ok(())
        };
        let result = match pass {
            Pass::QuickXml => scan_impl(text, KNOWN, 2, false, &mut |node| match node {
                Node::Start(el) => visit(el),
                _ => Ok(()),
            }),
            Pass::Native => scan(text, KNOWN, 2, &mut visit),
            Pass::Portable => {
                scan_with::<crate::pidf::fastscan::Portable>(text, KNOWN, 2, &mut visit)
            }
        };
        seen.push(format!("{result:?}"));
        seen
    }

    const SAMPLES: &[&str] = &[
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- c -->\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
         xmlns:e=\"urn:example:e\" entity=\"sip:a@b\"><tuple id=\"t&amp;1\"><status><basic>open</basic>\
         </status><e:x x='1 > 2' y=\"'\">a &lt; b &#65; c</e:x></tuple><e:person id='p'><e:n/></e:person>\
         <?pi data?><note xml:lang=\"en\">x</note ></presence>\n",
        "<!DOCTYPE presence PUBLIC \"-//IETF//DTD RFCxxxx XPIDF 1.0//EN\" \"xpidf.dtd\">\n<presence>\
         <presentity uri=\"sip:b@h;method=SUBSCRIBE\"/><atom id=\"b\"><address uri=\"sip:b@h\">\
         <status status=\"open\"/></address></atom></presence>",
        "<p:presence xmlns:p='urn:ietf:params:xml:ns:pidf' entity='e'><p:tuple id='1'/><q:t xmlns:q='urn:example:e'/>\
         <![CDATA[<x>]]><!----><!-- a - b --></p:presence>",
    ];

    /// The quick pass, with either classifier, reports what quick-xml reports.
    fn agree(doc: &str, what: &dyn std::fmt::Display) {
        let want = trace(doc, Pass::QuickXml);
        assert_eq!(trace(doc, Pass::Native), want, "{what}: {doc}");
        assert_eq!(trace(doc, Pass::Portable), want, "{what}: {doc}");
    }

    /// The quick pass may only say yes where quick-xml does, and the scan must then
    /// visit the same elements and fail with the same error: checked on samples and
    /// on every truncation, every deletion of one byte and every replacement of one
    /// byte by a markup character.
    #[test]
    fn fast_scan_agrees_with_quick_xml() {
        let mut docs: Vec<String> = Vec::new();
        for sample in SAMPLES {
            let bytes = sample.as_bytes();
            for cut in 0..=bytes.len() {
                docs.extend(String::from_utf8(bytes[..cut].to_vec()).ok());
                let mut v = bytes.to_vec();
                if cut < v.len() {
                    v.remove(cut);
                    docs.extend(String::from_utf8(v).ok());
                    for c in b"<>&\"'/!?-=; x:[]#" {
                        let mut v = bytes.to_vec();
                        v[cut] = *c;
                        docs.extend(String::from_utf8(v).ok());
                    }
                }
            }
        }
        for doc in &docs {
            agree(doc, doc);
        }
    }

    /// The same over the third-party documents of `../shared/xml/` and the sipp
    /// scenarios of `../shared/sipp/` (XML too), and mutations of them (truncated
    /// before and after each markup byte, or without it).
    #[test]
    fn fast_scan_agrees_with_quick_xml_on_shared_documents() {
        for sub in ["xml", "sipp"] {
            agree_on_shared(sub);
        }
    }

    fn agree_on_shared(sub: &str) {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared")).join(sub);
        let mut stack = vec![dir.to_path_buf()];
        let mut files = 0;
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let Ok(doc) = std::fs::read_to_string(&path) else {
                    continue;
                };
                files += 1;
                let bytes = doc.as_bytes();
                let markup = |i: usize| b"<>/!?-=\"'&:".contains(&bytes[i]);
                for cut in (0..bytes.len()).filter(|&i| markup(i)) {
                    let mut v = bytes.to_vec();
                    v.remove(cut);
                    let variants = [bytes[..cut].to_vec(), bytes[..=cut].to_vec(), v];
                    for v in variants
                        .into_iter()
                        .filter_map(|v| String::from_utf8(v).ok())
                    {
                        agree(&v, &path.display());
                    }
                }
            }
        }
        assert!(
            files > 0 || !dir.exists(),
            "no document read from {}",
            dir.display()
        );
    }

    /// Markup fragments the generated documents are made of: pieces of tags,
    /// references good and bad, comments, declarations, and text.
    const FRAGMENTS: &[&str] = &[
        "<a>",
        "</a>",
        "<b x='1'>",
        "</b >",
        "<e:c/>",
        "<a y=\"&amp;\" z='>'/>",
        "<p:a>",
        "text",
        " ",
        "\n",
        "&lt;",
        "&bogus;",
        "&#65;",
        "&",
        "<",
        ">",
        "\"",
        "'",
        "/",
        "=",
        "<!-- c -->",
        "<!--",
        "-->",
        "<?pi x?>",
        "<?",
        "<![CDATA[x]]>",
        "<!DOCTYPE a>",
        "é",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 2000,
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Garbage and near-documents: the samples (some over several 64-byte blocks)
        /// with fragments inserted and bytes removed anywhere, and strings of
        /// fragments alone. Whatever the input, both classifiers report what
        /// quick-xml reports.
        #[test]
        fn fast_scan_agrees_with_quick_xml_on_generated_documents(
            sample in 0..SAMPLES.len() + 1,
            edits in proptest::collection::vec(
                (0usize..4096, 0..FRAGMENTS.len(), proptest::prelude::any::<bool>()),
                0..6,
            ),
        ) {
            let mut doc = SAMPLES.get(sample).copied().unwrap_or_default().to_owned();
            for (at, frag, remove) in edits {
                let mut at = if doc.is_empty() { 0 } else { at % (doc.len() + 1) };
                while !doc.is_char_boundary(at) {
                    at -= 1;
                }
                if remove && at < doc.len() {
                    doc.remove(at);
                } else {
                    doc.insert_str(at, FRAGMENTS[frag]);
                }
            }
            agree(&doc, &"generated");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 4000,
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// The quick attribute readers answer what the quick-xml ones answer, errors
        /// included, on generated tags: namespace declarations good and bad, repeated
        /// keys, references, broken syntax.
        #[test]
        fn attribute_readers_agree_with_quick_xml(
            raw in r#"( |\t|=|a|b|x|xmlns|xmlns:a|:|"|'|="v"|='w'|="urn:example:e"|=""|="&amp;"|="&bad;"|<|>|é){0,20}"#,
        ) {
            const KNOWN: &[&str] = &["urn:ietf:params:xml:ns:pidf", "urn:example:e"];
            let text = format!("t{raw}");
            let start = BytesStart::from_content(text.as_str(), 1);
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            let mut attrs = [("", ""); QUICK_ATTRS];
            let fast_result = declare(&text, &start, 1, KNOWN, &mut fast, 0, &mut attrs);
            let slow_result = declare_quick_xml(text.as_bytes(), &start, 1, KNOWN, &mut slow, 0);
            proptest::prop_assert_eq!(
                format!("{:?}", fast_result.as_ref().map(|_| ())),
                format!("{slow_result:?}")
            );
            // A scan visits (and the visitor reads attributes of) only elements
            // whose attributes `declare` accepted.
            let Ok(split) = fast_result else {
                return Ok(());
            };
            proptest::prop_assert_eq!(fast, slow);
            let el = Element {
                depth: 0,
                ns: Ns::None,
                local: b"t",
                start: &start,
                attrs: split.map(|n| &attrs[..n]),
                input: &text,
                known: KNOWN,
                position: 0,
            };
            for name in ["a", "b", "x", "xmlns", "xmlns:a"] {
                proptest::prop_assert_eq!(
                    format!("{:?}", el.attr(name)),
                    format!("{:?}", el.attr_quick_xml(name)),
                    "{}", name
                );
            }
        }
    }

    #[test]
    fn fast_scan_takes_the_common_shapes() {
        for doc in &SAMPLES[..2] {
            let mut marks = Vec::new();
            assert!(shallow_marks_with::<Native>(doc, 2, &mut marks), "{doc}");
            assert!(matches!(trace(doc, Pass::Native).last(), Some(r) if r == "Ok(())"));
        }
        let mut marks = Vec::new();
        assert!(
            !shallow_marks_with::<Native>(SAMPLES[2], 2, &mut marks),
            "CDATA goes to quick-xml"
        );
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
        scan(text, &[], 1, |e| {
            got = e.attr("a")?.map(Cow::into_owned);
            Ok(())
        })
        .unwrap();
        assert_eq!(got.as_deref(), Some(nasty));
    }
}
