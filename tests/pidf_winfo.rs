//! Watcher-info documents (RFC 3858): what the proxy's winfo notifier sends the owner.

use presence_proxy::pidf::winfo::{
    DocState, VersionCounter, WatcherEntry, WatcherEvent, WatcherInfo, WatcherList, WatcherStatus,
    WATCHERINFO_NS,
};
use presence_proxy::pidf::PidfError;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

fn owner_doc() -> WatcherInfo {
    let mut active = WatcherEntry::new(
        "8ajksjda7s",
        "sip:userA@example.net",
        WatcherStatus::Active,
        WatcherEvent::Approved,
    );
    active.duration_subscribed = Some(509);
    active.expiration = Some(3091);
    let mut pending = WatcherEntry::new(
        "hh8juja87s997-ass7",
        "sip:userB@example.org",
        WatcherStatus::Pending,
        WatcherEvent::Subscribe,
    );
    pending.display_name = Some("Mr. \"Subscriber\" & <co>".into());
    let waiting = WatcherEntry::new(
        "w3",
        "sip:a&b@example.org",
        WatcherStatus::Waiting,
        WatcherEvent::Giveup,
    );
    WatcherInfo::presence(
        0,
        DocState::Full,
        "sip:professor@example.net",
        vec![active, pending, waiting],
    )
}

/// Reads a serialised document with plain quick-xml and checks RFC 3858 §5's
/// structure: namespace on every element, root attributes, list attributes, watcher
/// attributes with schema tokens, URI content. Returns (version, state, watcher count).
fn check_structure(xml: &[u8]) -> (String, String, usize) {
    let text = std::str::from_utf8(xml).unwrap();
    let mut r = NsReader::from_str(text);
    let mut stack: Vec<String> = Vec::new();
    let (mut version, mut state, mut watchers) = (String::new(), String::new(), 0);
    loop {
        let (res, ev) = r.read_resolved_event().expect("parses");
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                match res {
                    ResolveResult::Bound(ns) => assert_eq!(ns.as_ref(), WATCHERINFO_NS.as_bytes()),
                    other => panic!("element outside the winfo namespace: {other:?}"),
                }
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let attr = |n: &str| {
                    e.try_get_attribute(n)
                        .unwrap()
                        .map(|a| a.unescape_value().unwrap().into_owned())
                };
                match (stack.len(), local.as_str()) {
                    (0, "watcherinfo") => {
                        version = attr("version").expect("version");
                        assert!(version.parse::<u32>().is_ok());
                        state = attr("state").expect("state");
                        assert!(state == "full" || state == "partial");
                    }
                    (1, "watcher-list") => {
                        assert!(attr("resource").unwrap().starts_with("sip:"));
                        assert_eq!(attr("package").as_deref(), Some("presence"));
                    }
                    (2, "watcher") => {
                        assert!(!attr("id").unwrap().is_empty());
                        let status = attr("status").unwrap();
                        assert!(["pending", "active", "waiting", "terminated"]
                            .contains(&status.as_str()));
                        let event = attr("event").unwrap();
                        assert!([
                            "subscribe",
                            "approved",
                            "deactivated",
                            "probation",
                            "rejected",
                            "timeout",
                            "giveup",
                            "noresource"
                        ]
                        .contains(&event.as_str()));
                        assert!(matches!(ev, Event::Start(_)), "a watcher carries its URI");
                        watchers += 1;
                    }
                    (d, l) => panic!("<{l}> at depth {d}"),
                }
                if matches!(ev, Event::Start(_)) {
                    stack.push(local);
                }
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Text(t) => {
                let t = t.unescape().unwrap();
                if stack.last().map(String::as_str) == Some("watcher") {
                    assert!(t.starts_with("sip:"), "watcher content is its URI: {t:?}");
                } else {
                    assert!(t.trim().is_empty());
                }
            }
            Event::Decl(_) => {}
            Event::Eof => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    (version, state, watchers)
}

#[test]
fn full_document_has_rfc3858_structure_and_round_trips() {
    let doc = owner_doc();
    let xml = doc.to_xml();
    assert_eq!(check_structure(&xml), ("0".into(), "full".into(), 3));
    assert_eq!(WatcherInfo::parse(&xml).unwrap(), doc);
    let text = String::from_utf8(xml).unwrap();
    assert!(text.contains(
        "<watcher id=\"8ajksjda7s\" status=\"active\" event=\"approved\" duration-subscribed=\"509\" expiration=\"3091\">sip:userA@example.net</watcher>"
    ));
    assert!(text.contains("display-name=\"Mr. &quot;Subscriber&quot; &amp; &lt;co&gt;\""));
    assert!(text.contains(">sip:a&amp;b@example.org</watcher>"));
}

#[test]
fn partial_document_carries_only_the_changed_watcher() {
    let mut counter = VersionCounter::new();
    let full = WatcherInfo::presence(counter.next_version(), DocState::Full, "sip:p@x", vec![]);
    let partial = WatcherInfo::presence(
        counter.next_version(),
        DocState::Partial,
        "sip:p@x",
        vec![WatcherEntry::new(
            "w9",
            "sip:new@y",
            WatcherStatus::Pending,
            WatcherEvent::Subscribe,
        )],
    );
    assert_eq!(
        check_structure(&full.to_xml()),
        ("0".into(), "full".into(), 0)
    );
    assert_eq!(
        check_structure(&partial.to_xml()),
        ("1".into(), "partial".into(), 1)
    );
    assert_eq!(counter.next_version(), 2);
    assert_eq!(WatcherInfo::parse(&partial.to_xml()).unwrap(), partial);
}

#[test]
fn several_lists_and_every_token_serialise() {
    let statuses = [
        WatcherStatus::Pending,
        WatcherStatus::Active,
        WatcherStatus::Waiting,
        WatcherStatus::Terminated,
    ];
    let events = [
        WatcherEvent::Subscribe,
        WatcherEvent::Approved,
        WatcherEvent::Deactivated,
        WatcherEvent::Probation,
        WatcherEvent::Rejected,
        WatcherEvent::Timeout,
        WatcherEvent::Giveup,
        WatcherEvent::Noresource,
    ];
    let watchers: Vec<_> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            WatcherEntry::new(format!("id{i}"), format!("sip:w{i}@x"), statuses[i % 4], *e)
        })
        .collect();
    let doc = WatcherInfo {
        version: 7,
        state: DocState::Full,
        lists: vec![
            WatcherList {
                resource: "sip:a@x".into(),
                package: "presence".into(),
                watchers: watchers.clone(),
            },
            WatcherList {
                resource: "sip:b@x".into(),
                package: "presence".into(),
                watchers,
            },
        ],
    };
    let xml = doc.to_xml();
    assert_eq!(check_structure(&xml), ("7".into(), "full".into(), 16));
    assert_eq!(WatcherInfo::parse(&xml).unwrap(), doc);
    for s in statuses {
        assert_eq!(WatcherStatus::from_token(s.as_str()), Some(s));
    }
    for e in events {
        assert_eq!(WatcherEvent::from_token(&e.to_string()), Some(e));
    }
}

#[test]
fn the_rfc3858_example_parses() {
    let example = br#"<?xml version="1.0"?>
   <watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo"
                version="0" state="full">
     <watcher-list resource="sip:professor@example.net" package="presence">
       <watcher status="active"
                id="8ajksjda7s"
                duration-subscribed="509"
                event="approved" >sip:userA@example.net</watcher>
       <watcher status="pending"
                id="hh8juja87s997-ass7"
                display-name="Mr. Subscriber"
                event="subscribe">sip:userB@example.org</watcher>
     </watcher-list>
   </watcherinfo>"#;
    let info = WatcherInfo::parse(example).unwrap();
    assert_eq!(info.version, 0);
    assert_eq!(info.state, DocState::Full);
    let w = &info.lists[0].watchers;
    assert_eq!(w.len(), 2);
    assert_eq!(w[0].duration_subscribed, Some(509));
    assert_eq!(w[1].display_name.as_deref(), Some("Mr. Subscriber"));
    assert_eq!(w[1].uri, "sip:userB@example.org");
    assert_eq!(w[1].status, WatcherStatus::Pending);
}

#[test]
fn invalid_documents_are_refused_with_a_reason() {
    let wrap = |watcher: &str| {
        format!(
            "<watcherinfo xmlns='urn:ietf:params:xml:ns:watcherinfo' version='1' state='full'>\
             <watcher-list resource='sip:p@x' package='presence'>{watcher}</watcher-list></watcherinfo>"
        )
    };
    for (doc, why) in [
        (wrap("<watcher status='active' event='approved'>sip:a@x</watcher>"), "without id"),
        (wrap("<watcher id='1' status='happy' event='approved'>sip:a@x</watcher>"), "status"),
        (wrap("<watcher id='1' status='active' event='party'>sip:a@x</watcher>"), "event"),
        (wrap("<watcher id='1' status='active' event='approved'/>"), "no URI"),
        (wrap("<watcher id='1' status='active' event='approved' expiration='soon'>sip:a@x</watcher>"), "not a number"),
        (
            "<watcherinfo xmlns='urn:ietf:params:xml:ns:watcherinfo' version='x' state='full'/>".into(),
            "version",
        ),
        (
            "<watcherinfo xmlns='urn:ietf:params:xml:ns:watcherinfo' version='1' state='some'/>".into(),
            "state",
        ),
        (
            "<watcherinfo xmlns='urn:ietf:params:xml:ns:watcherinfo' version='1' state='full'><watcher-list package='presence'/></watcherinfo>".into(),
            "without resource",
        ),
    ] {
        match WatcherInfo::parse(doc.as_bytes()) {
            Err(e @ PidfError::Malformed { .. }) => assert!(e.to_string().contains(why), "{e} lacks {why:?}"),
            other => panic!("{doc}: {other:?}"),
        }
    }
    assert!(matches!(
        WatcherInfo::parse(b"<watcherinfo version='1' state='full'/>"),
        Err(PidfError::WrongRoot { .. })
    ));
    assert!(matches!(
        WatcherInfo::parse(b"<watcherinfo"),
        Err(PidfError::Malformed { .. })
    ));
}
