//! The attributes of a start tag, split as quick-xml 0.37 splits them in XML mode
//! (`events/attributes.rs`, `IterState::next`), without its per-byte iterator
//! adapters or the vector its duplicate check allocates on every tag.
//!
//! It is only ever a shortcut: whenever quick-xml would report an error (no `=`, an
//! unquoted or unterminated value), this answers "not sure" and the caller asks
//! quick-xml, whose verdict and message are then the answer. When it does answer,
//! the keys and values are the ones quick-xml gives; the test
//! `splits_like_quick_xml` holds it to that.

/// quick-xml's whitespace (`utils::is_whitespace`).
const fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\r' | b'\n' | b'\t')
}

/// The attributes in `raw` (a start tag's content after its name) as `(key, raw
/// value)` pairs, in order. Yields `None` once, then stops, where quick-xml would
/// report an error.
pub(crate) struct Attrs<'i> {
    raw: &'i str,
    at: usize,
}

impl<'i> Attrs<'i> {
    pub(crate) fn new(raw: &'i str) -> Self {
        Attrs { raw, at: 0 }
    }

    fn fail(&mut self) -> Option<Option<(&'i str, &'i str)>> {
        self.at = self.raw.len();
        Some(None)
    }
}

impl<'i> Iterator for Attrs<'i> {
    type Item = Option<(&'i str, &'i str)>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.raw.as_bytes();
        let mut i = self.at;
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        if i == b.len() {
            self.at = i;
            return None;
        }
        let key_start = i;
        // The key's first byte is taken whatever it is, as quick-xml does.
        i += 1;
        while i < b.len() && b[i] != b'=' && !is_space(b[i]) {
            i += 1;
        }
        let key_end = i;
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        if b.get(i) != Some(&b'=') {
            return self.fail();
        }
        i += 1;
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        let Some(&quote @ (b'"' | b'\'')) = b.get(i) else {
            return self.fail();
        };
        let value_start = i + 1;
        let Some(len) = memchr::memchr(quote, &b[value_start..]) else {
            return self.fail();
        };
        let value_end = value_start + len;
        self.at = value_end + 1;
        // Every boundary is next to an ASCII byte, so these slices cannot fail.
        match (
            self.raw.get(key_start..key_end),
            self.raw.get(value_start..value_end),
        ) {
            (Some(key), Some(value)) => Some(Some((key, value))),
            _ => self.fail(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use quick_xml::events::BytesStart;

    /// quick-xml's split, `None` at its first error.
    fn quick_xml(raw: &str) -> Vec<Option<(String, String)>> {
        let tag = format!("t{raw}");
        let start = BytesStart::from_content(tag.as_str(), 1);
        let mut out = Vec::new();
        for a in start.attributes().with_checks(false) {
            match a {
                Ok(a) => out.push(Some((
                    String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                    String::from_utf8(a.value.to_vec()).unwrap(),
                ))),
                Err(_) => {
                    out.push(None);
                    break;
                }
            }
        }
        out
    }

    fn ours(raw: &str) -> Vec<Option<(String, String)>> {
        Attrs::new(raw)
            .map(|a| a.map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect()
    }

    #[test]
    fn splits_the_usual_shapes() {
        assert_eq!(
            ours(r#" a="1" b = '2'c="x'y""#),
            vec![
                Some(("a".into(), "1".into())),
                Some(("b".into(), "2".into())),
                Some(("c".into(), "x'y".into()))
            ]
        );
        assert_eq!(ours(" a"), vec![None]);
        assert_eq!(ours(" a=1"), vec![None]);
        assert_eq!(ours(" a='1"), vec![None]);
        assert_eq!(ours("  "), vec![]);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4000, failure_persistence: None, ..ProptestConfig::default() })]

        /// Wherever this answers, it answers what quick-xml answers, and it gives
        /// up exactly where quick-xml reports an error.
        #[test]
        fn splits_like_quick_xml(raw in r#"([ \t\r\n=a:"'<>&;é/x-]|xmlns|="v"|='w'){0,24}"#) {
            prop_assert_eq!(ours(&raw), quick_xml(&raw));
        }
    }
}
