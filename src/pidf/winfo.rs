//! Watcher-information documents (RFC 3858, `application/watcherinfo+xml`), which the
//! proxy's own `presence.winfo` notifier sends the owner (RFC 3857): who watches, who
//! waits for an answer.
//!
//! Plain data in, bytes out ([`WatcherInfo::to_xml`]); and the reverse
//! ([`WatcherInfo::parse`]) so tests and tools can check what was sent.
//!
//! ```text
//! <watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full">
//!   <watcher-list resource="sip:owner@example.com" package="presence">
//!     <watcher id="w1" status="pending" event="subscribe">sip:w@example.org</watcher>
//!   </watcher-list>
//! </watcherinfo>
//! ```

use super::xml::{push_attr, push_text, scan_nodes, Node};
use super::{charset, PidfError};
use std::fmt;

/// The watcher-info namespace (RFC 3858 §3).
pub const WATCHERINFO_NS: &str = "urn:ietf:params:xml:ns:watcherinfo";

/// A watcher subscription's state (RFC 3857's watcher state machine; RFC 3858 §3 `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatcherStatus {
    /// Awaiting the owner's authorization.
    Pending,
    /// Authorized and receiving state.
    Active,
    /// Was pending, then gave up or timed out; remembered so the owner can still answer.
    Waiting,
    /// Ended.
    Terminated,
}

/// The event that moved the watcher into its status (RFC 3857; RFC 3858 §3 `event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatcherEvent {
    /// A new subscription arrived (→ pending or active).
    Subscribe,
    /// The owner authorized it (pending → active).
    Approved,
    /// The subscription was ended by policy, to be retried (active → terminated).
    Deactivated,
    /// Ended, the watcher may retry later.
    Probation,
    /// The owner refused it.
    Rejected,
    /// It expired without refresh.
    Timeout,
    /// Nobody answered the pending request in time (pending → waiting/terminated).
    Giveup,
    /// The resource no longer exists.
    Noresource,
}

macro_rules! wire_names {
    ($ty:ident { $($v:ident = $s:literal),* $(,)? }) => {
        impl $ty {
            /// The token RFC 3858's schema uses.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$v => $s),* }
            }
            /// The value for a schema token, if it is one.
            pub fn from_token(s: &str) -> Option<Self> {
                match s { $($s => Some($ty::$v),)* _ => None }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_names!(WatcherStatus {
    Pending = "pending",
    Active = "active",
    Waiting = "waiting",
    Terminated = "terminated",
});

wire_names!(WatcherEvent {
    Subscribe = "subscribe",
    Approved = "approved",
    Deactivated = "deactivated",
    Probation = "probation",
    Rejected = "rejected",
    Timeout = "timeout",
    Giveup = "giveup",
    Noresource = "noresource",
});

/// One `<watcher>` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherEntry {
    /// Stable per watcher subscription across documents (RFC 3858 §4): a partial
    /// document's entry replaces the earlier one with the same id.
    pub id: String,
    /// The watcher's URI (element content).
    pub uri: String,
    pub status: WatcherStatus,
    pub event: WatcherEvent,
    pub display_name: Option<String>,
    /// Seconds the watcher has been subscribed.
    pub duration_subscribed: Option<u64>,
    /// Seconds until the subscription expires.
    pub expiration: Option<u64>,
}

impl WatcherEntry {
    /// An entry with only the mandatory fields.
    pub fn new(
        id: impl Into<String>,
        uri: impl Into<String>,
        status: WatcherStatus,
        event: WatcherEvent,
    ) -> Self {
        WatcherEntry {
            id: id.into(),
            uri: uri.into(),
            status,
            event,
            display_name: None,
            duration_subscribed: None,
            expiration: None,
        }
    }
}

/// `<watcher-list>`: the watchers of one resource for one event package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherList {
    /// The watched resource (the owner's AoR).
    pub resource: String,
    /// The event package watched, `presence` here.
    pub package: String,
    pub watchers: Vec<WatcherEntry>,
}

/// `state` of the document (RFC 3858 §3, applied as §4 describes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocState {
    /// The complete list: the receiver replaces what it had.
    Full,
    /// Only the watchers that changed since the previous document.
    Partial,
}

/// A whole `<watcherinfo>` document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherInfo {
    /// Per subscription: 0 in the first document, then +1 per document sent
    /// (RFC 3858 §3-4), so the owner's client can detect a lost partial one. Use a
    /// [`VersionCounter`] per winfo subscription.
    pub version: u32,
    pub state: DocState,
    pub lists: Vec<WatcherList>,
}

impl WatcherInfo {
    /// The usual document: one presence watcher list for `resource`.
    pub fn presence(
        version: u32,
        state: DocState,
        resource: impl Into<String>,
        watchers: Vec<WatcherEntry>,
    ) -> Self {
        WatcherInfo {
            version,
            state,
            lists: vec![WatcherList {
                resource: resource.into(),
                package: "presence".into(),
                watchers,
            }],
        }
    }

    /// Serialises the document (UTF-8, send with [`super::WATCHERINFO_CONTENT_TYPE`]).
    pub fn to_xml(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            200 + self
                .lists
                .iter()
                .map(|l| 120 * l.watchers.len())
                .sum::<usize>(),
        );
        out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<watcherinfo xmlns=\"");
        out.extend_from_slice(WATCHERINFO_NS.as_bytes());
        out.extend_from_slice(format!("\" version=\"{}\" state=\"", self.version).as_bytes());
        out.extend_from_slice(match self.state {
            DocState::Full => b"full",
            DocState::Partial => b"partial",
        });
        out.extend_from_slice(b"\">\n");
        for list in &self.lists {
            out.extend_from_slice(b"  <watcher-list resource=\"");
            push_attr(&mut out, &list.resource);
            out.extend_from_slice(b"\" package=\"");
            push_attr(&mut out, &list.package);
            out.extend_from_slice(b"\">\n");
            for w in &list.watchers {
                out.extend_from_slice(b"    <watcher id=\"");
                push_attr(&mut out, &w.id);
                out.extend_from_slice(b"\" status=\"");
                out.extend_from_slice(w.status.as_str().as_bytes());
                out.extend_from_slice(b"\" event=\"");
                out.extend_from_slice(w.event.as_str().as_bytes());
                out.push(b'"');
                if let Some(name) = &w.display_name {
                    out.extend_from_slice(b" display-name=\"");
                    push_attr(&mut out, name);
                    out.push(b'"');
                }
                if let Some(d) = w.duration_subscribed {
                    out.extend_from_slice(format!(" duration-subscribed=\"{d}\"").as_bytes());
                }
                if let Some(e) = w.expiration {
                    out.extend_from_slice(format!(" expiration=\"{e}\"").as_bytes());
                }
                out.push(b'>');
                push_text(&mut out, &w.uri);
                out.extend_from_slice(b"</watcher>\n");
            }
            out.extend_from_slice(b"  </watcher-list>\n");
        }
        out.extend_from_slice(b"</watcherinfo>\n");
        out
    }

    /// Reads a watcher-info document, checking what the RFC 3858 schema requires:
    /// the root and namespace, `version` and `state`, `resource` and `package` on
    /// each list, `id`, `status` and `event` with known tokens on each watcher.
    /// Unknown elements and attributes (extensions) are ignored.
    pub fn parse(body: &[u8]) -> Result<Self, PidfError> {
        let text = charset::to_utf8(body, None)?;
        let bad = |m: String| PidfError::Malformed {
            position: 0,
            message: m,
        };
        let mut info: Option<WatcherInfo> = None;
        let mut current: Option<WatcherEntry> = None;
        scan_nodes(&text, &[WATCHERINFO_NS], 3, |node| {
            match node {
                Node::Start(el) => {
                    let wi = |local| el.is(WATCHERINFO_NS, local);
                    let req = |name: &str| -> Result<String, PidfError> {
                        el.attr(name)?.map(|v| v.into_owned()).ok_or_else(|| {
                            bad(format!(
                                "<{}> without {name}",
                                String::from_utf8_lossy(el.local)
                            ))
                        })
                    };
                    match el.depth {
                        0 if wi("watcherinfo") => {
                            let version = req("version")?;
                            let version = version
                                .trim()
                                .parse()
                                .map_err(|_| bad(format!("version {version:?} is not a number")))?;
                            let state = match req("state")?.as_str() {
                                "full" => DocState::Full,
                                "partial" => DocState::Partial,
                                other => return Err(bad(format!("state {other:?}"))),
                            };
                            info = Some(WatcherInfo {
                                version,
                                state,
                                lists: Vec::new(),
                            });
                        }
                        0 => {
                            return Err(PidfError::WrongRoot {
                                expected: "{urn:ietf:params:xml:ns:watcherinfo}watcherinfo",
                                found: el.describe(),
                            })
                        }
                        1 if wi("watcher-list") => {
                            let list = WatcherList {
                                resource: req("resource")?,
                                package: req("package")?,
                                watchers: Vec::new(),
                            };
                            if let Some(info) = info.as_mut() {
                                info.lists.push(list);
                            }
                        }
                        2 if wi("watcher") => {
                            let status = req("status")?;
                            let event = req("event")?;
                            let number = |name: &str| -> Result<Option<u64>, PidfError> {
                                el.attr(name)?
                                    .map(|v| {
                                        v.trim().parse().map_err(|_| {
                                            bad(format!("{name} {v:?} is not a number"))
                                        })
                                    })
                                    .transpose()
                            };
                            current = Some(WatcherEntry {
                                id: req("id")?,
                                uri: String::new(),
                                status: WatcherStatus::from_token(&status)
                                    .ok_or_else(|| bad(format!("watcher status {status:?}")))?,
                                event: WatcherEvent::from_token(&event)
                                    .ok_or_else(|| bad(format!("watcher event {event:?}")))?,
                                display_name: el.attr("display-name")?.map(|v| v.into_owned()),
                                duration_subscribed: number("duration-subscribed")?,
                                expiration: number("expiration")?,
                            });
                        }
                        _ => {}
                    }
                }
                Node::Text { depth: 2, text } => {
                    if let Some(w) = current.as_mut() {
                        w.uri.push_str(&text);
                    }
                }
                Node::Text { .. } => {}
                Node::End { depth: 2 } => {
                    if let Some(mut w) = current.take() {
                        w.uri = w.uri.trim().to_owned();
                        if w.uri.is_empty() {
                            return Err(bad(format!("watcher {:?} has no URI", w.id)));
                        }
                        if let Some(list) = info.as_mut().and_then(|i| i.lists.last_mut()) {
                            list.watchers.push(w);
                        }
                    }
                }
                Node::End { .. } => {}
            }
            Ok(())
        })?;
        info.ok_or_else(|| bad("no watcherinfo root".into()))
    }
}

/// The `version` sequence of one winfo subscription: 0, 1, 2, ... (RFC 3858 §3-4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionCounter {
    next: u32,
}

impl VersionCounter {
    /// Starts at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The version for the next document sent, then advances. Wraps at `u32::MAX`
    /// (the schema's type is unbounded; a subscription never gets near it).
    pub fn next_version(&mut self) -> u32 {
        let v = self.next;
        self.next = self.next.wrapping_add(1);
        v
    }
}
