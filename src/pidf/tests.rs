//! Unit tests of the Offline rewrite, one per leak class and per odd document shape.
//! The run over every third-party document is `tests/pidf_rewrite.rs`.

use super::*;

fn rewrite(doc: &str) -> String {
    let r = offline(PIDF_CONTENT_TYPE, doc.as_bytes(), None).unwrap();
    assert_eq!(&*r.content_type, PIDF_CONTENT_TYPE);
    String::from_utf8(r.body).unwrap()
}

fn closed_tuple(id: &str) -> String {
    format!("<tuple id=\"{id}\"><status><basic>closed</basic></status></tuple>")
}

fn expected(entity: &str, ids: &[&str]) -> String {
    let tuples: String = ids.iter().map(|id| closed_tuple(id)).collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"{entity}\">{tuples}</presence>"
    )
}

const RPID_DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"
    xmlns:cl="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr" entity="sip:alice@example.com">
  <tuple id="t1">
    <status><basic>open</basic>
      <gp:geopriv><gp:location-info><cl:civicAddress><cl:A1>Lyon</cl:A1></cl:civicAddress></gp:location-info></gp:geopriv>
    </status>
    <rpid:user-input idle-threshold="600">idle</rpid:user-input>
    <contact priority="0.8">sip:alice@10.0.0.7:5060</contact>
    <note>In a meeting with Bob</note>
    <timestamp>2026-11-22T01:00:00Z</timestamp>
  </tuple>
  <note>Back at 3</note>
  <dm:person id="p1">
    <rpid:activities><rpid:meeting/></rpid:activities>
    <rpid:mood><rpid:angry/></rpid:mood>
    <rpid:place-is><rpid:audio><rpid:noisy/></rpid:audio></rpid:place-is>
    <rpid:place-type>hotel</rpid:place-type>
    <rpid:privacy><rpid:quiet/></rpid:privacy>
    <rpid:sphere>work</rpid:sphere>
    <rpid:time-offset>-240</rpid:time-offset>
    <rpid:class>business</rpid:class>
    <dm:note>Scoring 120</dm:note>
    <dm:timestamp>2026-11-22T01:00:00Z</dm:timestamp>
  </dm:person>
  <dm:device id="d1"><rpid:user-input>active</rpid:user-input><dm:deviceID>mac:00aa</dm:deviceID></dm:device>
</presence>"#;

#[test]
fn rpid_document_keeps_entity_and_tuple_ids_only() {
    assert_eq!(
        rewrite(RPID_DOC),
        expected("sip:alice@example.com", &["t1"])
    );
}

#[test]
fn every_leak_class_is_gone() {
    let out = rewrite(RPID_DOC);
    for leak in [
        "note",
        "meeting",
        "Bob",
        "Back at 3",
        "activities",
        "mood",
        "place",
        "privacy",
        "sphere",
        "time-offset",
        "class",
        "person",
        "device",
        "geopriv",
        "Lyon",
        "timestamp",
        "contact",
        "10.0.0.7",
        "user-input",
        "idle",
        "open",
        "rpid",
        "data-model",
    ] {
        assert!(!out.contains(leak), "{leak:?} leaked into {out}");
    }
}

#[test]
fn prefixed_pidf_namespace_is_recognised() {
    let doc = r#"<impp:presence xmlns:impp="urn:ietf:params:xml:ns:pidf" entity="pres:someone@example.com">
      <impp:tuple id="mobile-im"><impp:status><impp:basic>open</impp:basic></impp:status>
      <impp:contact priority="0.8">tel:+09012345678</impp:contact></impp:tuple></impp:presence>"#;
    assert_eq!(
        rewrite(doc),
        expected("pres:someone@example.com", &["mobile-im"])
    );
}

#[test]
fn odd_prefixes_and_redeclared_defaults() {
    // `x:` is bound to PIDF; the default namespace is something else entirely, so the
    // unprefixed <tuple> is not a PIDF tuple and must not be taken for one.
    let doc = r#"<x:presence xmlns:x="urn:ietf:params:xml:ns:pidf" xmlns="urn:example:other" entity="sip:a@b">
      <tuple id="fake"/>
      <x:tuple id="real"><x:status><x:basic>open</x:basic></x:status></x:tuple>
      <x:tuple id="re-bound" xmlns:x="urn:example:not-pidf"/>
      <y:tuple xmlns:y="urn:ietf:params:xml:ns:pidf" id="y-prefix"><y:status><y:basic>open</y:basic></y:status></y:tuple>
    </x:presence>"#;
    assert_eq!(rewrite(doc), expected("sip:a@b", &["real", "y-prefix"]));
}

#[test]
fn nested_tuple_lookalikes_are_not_tuples() {
    let doc = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b">
      <tuple id="t1"><status><basic>open</basic></status><tuple id="inner"/></tuple>
      <ext xmlns="urn:example:ext"><tuple xmlns="urn:ietf:params:xml:ns:pidf" id="deep"/></ext>
    </presence>"#;
    assert_eq!(rewrite(doc), expected("sip:a@b", &["t1"]));
}

#[test]
fn cdata_comments_and_processing_instructions_are_dropped() {
    let doc = "<?xml version='1.0'?><!-- owner is in Paris --><?app hint?>\
        <presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:a@b'><!-- secret -->\
        <tuple id='t'><status><basic>open</basic></status>\
        <note><![CDATA[<b>at the dentist</b>]]></note><?pi leak?></tuple></presence><!-- tail -->";
    let out = rewrite(doc);
    assert_eq!(out, expected("sip:a@b", &["t"]));
}

#[test]
fn entity_and_ids_are_reescaped() {
    let doc = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a&amp;b@c?x=&quot;1&quot;">
      <tuple id="a&lt;b"/></presence>"#;
    assert_eq!(
        rewrite(doc),
        expected("sip:a&amp;b@c?x=&quot;1&quot;", &["a&lt;b"])
    );
}

#[test]
fn document_without_tuples_gets_one_closed_tuple() {
    let doc = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
        entity="sip:a@b"><dm:person id="p"><dm:note>busy</dm:note></dm:person></presence>"#;
    assert_eq!(rewrite(doc), expected("sip:a@b", &["offline"]));
}

#[test]
fn tuple_without_id_gets_one() {
    let doc = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><tuple/><tuple id="x"/></presence>"#;
    assert_eq!(rewrite(doc), expected("sip:a@b", &["t1", "x"]));
}

#[test]
fn missing_entity_uses_the_hint_or_fails() {
    let doc = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf"><tuple id="t"/></presence>"#;
    let r = offline(
        PIDF_CONTENT_TYPE,
        doc.as_bytes(),
        Some("sip:owner@example.com"),
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        expected("sip:owner@example.com", &["t"])
    );
    assert_eq!(
        offline(PIDF_CONTENT_TYPE, doc.as_bytes(), None),
        Err(PidfError::MissingEntity)
    );
    // An empty entity counts as missing.
    let empty = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity=" "/>"#;
    assert_eq!(
        offline(PIDF_CONTENT_TYPE, empty.as_bytes(), None),
        Err(PidfError::MissingEntity)
    );
    let r = offline(PIDF_CONTENT_TYPE, empty.as_bytes(), Some("sip:h@x")).unwrap();
    assert!(String::from_utf8(r.body)
        .unwrap()
        .contains("entity=\"sip:h@x\""));
    // The document's own entity wins over the hint.
    let own = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:doc@x"/>"#;
    let r = offline(PIDF_CONTENT_TYPE, own.as_bytes(), Some("sip:hint@x")).unwrap();
    assert!(String::from_utf8(r.body)
        .unwrap()
        .contains("entity=\"sip:doc@x\""));
}

#[test]
fn content_type_parameters_and_case_are_accepted_and_dropped() {
    let doc = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"/>"#;
    let r = offline(
        b"Application/PIDF+XML; charset=\"UTF-8\"",
        doc.as_bytes(),
        None,
    )
    .unwrap();
    assert_eq!(&*r.content_type, b"application/pidf+xml");
}

#[test]
fn cpim_pidf_keeps_its_type_and_namespace() {
    let pidf_ns = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:a@b"><tuple id="t"><status><basic>open</basic></status><note>x</note></tuple></presence>"#;
    let r = offline(CPIM_PIDF_CONTENT_TYPE, pidf_ns.as_bytes(), None).unwrap();
    assert_eq!(&*r.content_type, CPIM_PIDF_CONTENT_TYPE);
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        expected("pres:a@b", &["t"])
    );

    let cpim_ns = r#"<presence xmlns="urn:ietf:params:xml:ns:cpim-pidf" entity="pres:a@b"><tuple id="t"><status><basic>open</basic></status></tuple></presence>"#;
    let r = offline(CPIM_PIDF_CONTENT_TYPE, cpim_ns.as_bytes(), None).unwrap();
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        expected("pres:a@b", &["t"]).replace(PIDF_NS, CPIM_PIDF_NS)
    );
}

#[test]
fn empty_body_stays_empty() {
    let r = offline(b"application/pidf+xml", b"", None).unwrap();
    assert!(r.body.is_empty());
    assert_eq!(&*r.content_type, b"application/pidf+xml");
    let r = offline_or_document(b"application/pidf+xml", b"", "sip:a@b");
    assert!(r.body.is_empty());
}

#[test]
fn non_pidf_roots_are_refused() {
    let dialog = r#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:a@b"/>"#;
    assert!(matches!(
        offline(PIDF_CONTENT_TYPE, dialog.as_bytes(), None),
        Err(PidfError::WrongRoot { .. })
    ));
    let no_ns = r#"<presence entity="sip:a@b"><tuple id="t"/></presence>"#;
    assert!(matches!(
        offline(PIDF_CONTENT_TYPE, no_ns.as_bytes(), None),
        Err(PidfError::WrongRoot { .. })
    ));
}

#[test]
fn malformed_bodies_say_what_is_wrong() {
    for (doc, what) in [
        (
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='a'><tuple id='t'></presence>",
            "tuple",
        ),
        (
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='a'>",
            "ends inside",
        ),
        (
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='a'/><presence/>",
            "second root",
        ),
        (
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='a'><p:x/></presence>",
            "undeclared prefix",
        ),
    ] {
        match offline(PIDF_CONTENT_TYPE, doc.as_bytes(), None) {
            Err(e @ PidfError::Malformed { .. }) => {
                assert!(e.to_string().contains(what), "{e} lacks {what:?}")
            }
            other => panic!("{doc}: {other:?}"),
        }
    }
}

#[test]
fn deep_documents_are_refused_and_bounded_ones_pass() {
    let open = "<x:e xmlns:x='urn:example:e'>";
    let close = "</x:e>";
    let make = |n: usize| {
        format!(
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:a@b'><tuple id='t'>{}{}</tuple></presence>",
            open.repeat(n),
            close.repeat(n)
        )
    };
    assert!(offline(PIDF_CONTENT_TYPE, make(MAX_DEPTH - 2).as_bytes(), None).is_ok());
    assert_eq!(
        offline(PIDF_CONTENT_TYPE, make(MAX_DEPTH).as_bytes(), None),
        Err(PidfError::TooDeep)
    );
    // A deep but unclosed document fails on depth, not by recursing.
    let hostile = format!(
        "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:a@b'>{}",
        open.repeat(10_000)
    );
    assert_eq!(
        offline(PIDF_CONTENT_TYPE, hostile.as_bytes(), None),
        Err(PidfError::TooDeep)
    );
}

#[test]
fn huge_documents_are_bounded() {
    let mut doc = String::from("<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:a@b'>");
    for i in 0..2000 {
        doc.push_str(&format!(
            "<tuple id='t{i}'><status><basic>open</basic></status><note>n{i}</note></tuple>"
        ));
    }
    doc.push_str("</presence>");
    let out = rewrite(&doc);
    assert_eq!(out.matches("<basic>closed</basic>").count(), 2000);
    assert!(!out.contains("note"));
    let too_big = vec![b' '; MAX_BODY + 1];
    assert_eq!(
        offline(PIDF_CONTENT_TYPE, &too_big, None),
        Err(PidfError::TooLarge(MAX_BODY + 1))
    );
}

#[test]
fn declared_latin1_entity_is_transcoded_to_utf8() {
    let mut doc = b"<?xml version='1.0' encoding='ISO-8859-1'?><presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:ren".to_vec();
    doc.push(0xe9); // é in ISO-8859-1
    doc.extend_from_slice(b"@b'><tuple id='t'><note>caf\xe9</note></tuple></presence>");
    let r = offline(PIDF_CONTENT_TYPE, &doc, None).unwrap();
    let out = String::from_utf8(r.body).unwrap();
    assert_eq!(out, expected("sip:ren\u{e9}@b", &["t"]));
}

#[test]
fn utf16_documents_are_read() {
    let doc = "<?xml version='1.0' encoding='UTF-16'?><presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:a@b'><tuple id='t'/></presence>";
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(doc.encode_utf16().flat_map(|u| u.to_le_bytes()));
    let r = offline(PIDF_CONTENT_TYPE, &bytes, None).unwrap();
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        expected("sip:a@b", &["t"])
    );
}

#[test]
fn unsupported_encodings_are_errors_not_guesses() {
    let doc = b"<?xml version='1.0' encoding='EBCDIC-US'?><presence/>";
    assert_eq!(
        offline(PIDF_CONTENT_TYPE, doc, None),
        Err(PidfError::UnsupportedEncoding("EBCDIC-US".into()))
    );
    // Invalid UTF-8 with no declaration.
    let bad = b"<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:\xff@b'/>";
    assert!(matches!(
        offline(PIDF_CONTENT_TYPE, bad, None),
        Err(PidfError::BadEncoding { .. })
    ));
}

#[test]
fn unknown_types_error_and_the_fallback_replaces_them() {
    let body = b"Hi there, please don't read this part.";
    assert!(matches!(
        offline(b"text/plain", body, None),
        Err(PidfError::UnsupportedContentType(_))
    ));
    let r = offline_or_document(b"text/plain", body, "sip:owner@example.com");
    assert_eq!(r, offline_document("sip:owner@example.com"));
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        expected("sip:owner@example.com", &["offline"])
    );
    assert_eq!(&*r.content_type, b"application/pidf+xml");
    // Malformed PIDF is replaced, not passed.
    let r = offline_or_document(PIDF_CONTENT_TYPE, b"<presence", "sip:o@x");
    assert_eq!(r, offline_document("sip:o@x"));
}

#[test]
fn is_rewritable_names_the_supported_types() {
    assert!(is_rewritable(b"application/pidf+xml"));
    assert!(is_rewritable(b"application/cpim-pidf+xml;charset=utf-8"));
    assert!(is_rewritable(b"APPLICATION/XPIDF+XML"));
    assert!(is_rewritable(
        b"multipart/related;type=\"application/rlmi+xml\";boundary=x"
    ));
    assert!(!is_rewritable(b"multipart/mixed;boundary=x"));
    assert!(!is_rewritable(b"text/plain"));
    assert!(!is_rewritable(b"garbage"));
}

const XPIDF_DOC: &str = r#"<?xml version="1.0" encoding="ISO-8859-1"?>
<!DOCTYPE presence PUBLIC "-//IETF//DTD RFCxxxx XPIDF 1.0//EN" "xpidf.dtd">
<presence>
<presentity uri="sip:bob@example.com;method=SUBSCRIBE" />
<atom id="bob">
<address uri="sip:bob@192.0.2.7:5060;user=ip" priority="0.800000">
<status status="inuse" />
<msnsubstatus substatus="onthephone" />
<note>On a call with the CEO</note>
</address>
</atom>
</presence>"#;

#[test]
fn xpidf_becomes_closed_offline_with_no_device_address() {
    let r = offline(XPIDF_CONTENT_TYPE, XPIDF_DOC.as_bytes(), None).unwrap();
    assert_eq!(&*r.content_type, XPIDF_CONTENT_TYPE);
    let out = String::from_utf8(r.body).unwrap();
    assert_eq!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE presence PUBLIC \"-//IETF//DTD RFCxxxx XPIDF 1.0//EN\" \"xpidf.dtd\">\n\
         <presence><presentity uri=\"sip:bob@example.com;method=SUBSCRIBE\"/>\
         <atom id=\"bob\"><address uri=\"sip:bob@example.com\" priority=\"0.800000\">\
         <status status=\"closed\"/><msnsubstatus substatus=\"offline\"/></address></atom></presence>"
    );
    for leak in ["192.0.2.7", "inuse", "onthephone", "CEO", "note"] {
        assert!(!out.contains(leak), "{leak} leaked");
    }
}

#[test]
fn xpidf_without_presentity_uses_hint_and_refuses_pidf() {
    let doc = "<presence><atom id='a'><address uri='sip:x@10.1.1.1'><status status='open'/></address></atom></presence>";
    let r = offline(
        XPIDF_CONTENT_TYPE,
        doc.as_bytes(),
        Some("sip:o@example.com"),
    )
    .unwrap();
    let out = String::from_utf8(r.body).unwrap();
    assert!(out.contains("<presentity uri=\"sip:o@example.com\"/>"));
    assert!(!out.contains("10.1.1.1"));
    assert_eq!(
        offline(XPIDF_CONTENT_TYPE, doc.as_bytes(), None),
        Err(PidfError::MissingEntity)
    );
    let pidf = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"/>"#;
    assert!(matches!(
        offline(XPIDF_CONTENT_TYPE, pidf.as_bytes(), None),
        Err(PidfError::WrongRoot { .. })
    ));
}
