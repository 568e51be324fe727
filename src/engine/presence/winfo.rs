//! The proxy's own watcher-info notifier (RFC 3857, documents RFC 3858): an owner
//! subscribing to `presence.winfo` for their own AoR is answered here with the
//! watchers the proxy knows (pending, waiting, active), and told at once of each
//! new pending request (DESIGN.md "Owner notification").

use std::hash::{DefaultHasher, Hash, Hasher};

use bytes::Bytes;
use dashmap::DashMap;

use super::dialogs::{DialogKey, Peer};
use super::identity::IdentitySource;
use super::originate::Owner;
use super::{target_of, Enforced, Presence, Step};
use crate::engine::{Handled, Received, Transmit, Transport};
use crate::pidf::winfo::{DocState, WatcherEntry, WatcherEvent, WatcherInfo, WatcherStatus};
use crate::pidf::WATCHERINFO_CONTENT_TYPE;
use crate::policy::{Aor, Decision, PendingState};
use crate::sip::Message;

/// Call-ID and the subscriber's tag.
pub(super) type WinfoKey = DialogKey;

/// RFC 3857 §5.2: the default (and here the longest) winfo subscription.
const DEFAULT_EXPIRES_S: u32 = 3_600;

#[derive(Debug, Clone)]
struct WinfoSub {
    owner: Aor,
    our_tag: String,
    /// The SUBSCRIBE's From and To values: To and (with our tag) From of our NOTIFYs.
    their_from: Bytes,
    their_to: Bytes,
    call_id: Bytes,
    /// The subscriber's Contact: the Request-URI of our NOTIFYs.
    target: Bytes,
    /// The SUBSCRIBE's Record-Route entries: the route set of our NOTIFYs (RFC 3261
    /// §12.1.1, the UAS side), as one `Route` value.
    route_set: Option<Box<[u8]>>,
    peer: Peer,
    cseq: u32,
    version: u32,
    expires_ms: u64,
}

/// Live watcher-info subscriptions.
#[derive(Debug, Default)]
pub(super) struct WinfoSubs {
    subs: DashMap<WinfoKey, WinfoSub, ahash::RandomState>,
}

impl WinfoSubs {
    pub(super) fn owners(&self) -> Vec<Aor> {
        let mut v: Vec<Aor> = self.subs.iter().map(|s| s.owner.clone()).collect();
        v.sort();
        v.dedup();
        v
    }

    pub(super) fn remove(&self, key: &WinfoKey) {
        self.subs.remove(key);
    }

    pub(super) fn next_deadline(&self) -> Option<u64> {
        self.subs.iter().map(|s| s.expires_ms).min()
    }

    fn keys_of(&self, owner: &Aor) -> Vec<WinfoKey> {
        self.subs
            .iter()
            .filter(|s| &s.owner == owner)
            .map(|s| *s.key())
            .collect()
    }
}

/// A To tag for the proxy's own answers, the same for every retransmission of the
/// request (so a retransmitted SUBSCRIBE lands in the same dialog).
pub(super) fn local_tag(msg: &Message) -> String {
    let mut h = DefaultHasher::new();
    msg.call_id().hash(&mut h);
    msg.from().and_then(|f| f.tag).hash(&mut h);
    format!("ppw{:012x}", h.finish() & 0xffff_ffff_ffff)
}

fn entry_id(watcher: &Aor) -> String {
    let mut h = DefaultHasher::new();
    watcher.as_str().hash(&mut h);
    format!("w{:016x}", h.finish())
}

impl Presence {
    /// A `presence.winfo` SUBSCRIBE from a phone. `None` when it is not the owner
    /// subscribing to their own watchers (it then goes upstream like any other).
    pub(super) fn winfo_subscribe(
        &self,
        now_ms: u64,
        rx: &Received,
        msg: &Message,
        out: &mut Vec<Transmit>,
    ) -> Option<Enforced> {
        let owner = target_of(msg, crate::engine::Direction::Downstream)?;
        let (who, identity) = self.identify(rx, msg, now_ms);
        if identity == IdentitySource::Anonymous || who != owner || !self.owns(&owner) {
            return None;
        }
        let call_id = msg.call_id()?;
        let from = msg.from()?;
        let key = DialogKey::new(call_id, from.tag?);
        let expires_s = msg
            .expires()
            .unwrap_or(DEFAULT_EXPIRES_S)
            .min(DEFAULT_EXPIRES_S);
        let to_tag = msg.to().and_then(|t| t.tag);
        let our_tag = local_tag(msg);
        let exists = self.winfo.subs.contains_key(&key);
        if to_tag.is_some_and(|t| t != our_tag.as_bytes()) || (to_tag.is_some() && !exists) {
            super::notify::reply_to(rx, msg, 481, "Subscription Does Not Exist", out);
            return Some(
                Enforced::step(Step::Done(Handled::Refused))
                    .because("unknown watcher-info subscription"),
            );
        }
        if !exists {
            let target = msg
                .contact_uri()
                .unwrap_or_else(|| msg.request_uri().unwrap_or_default());
            self.winfo.subs.insert(
                key,
                WinfoSub {
                    owner: owner.clone(),
                    our_tag: our_tag.clone(),
                    their_from: Bytes::copy_from_slice(msg.header("From").unwrap_or_default()),
                    their_to: Bytes::copy_from_slice(msg.header("To").unwrap_or_default()),
                    call_id: Bytes::copy_from_slice(call_id),
                    target: Bytes::copy_from_slice(target),
                    route_set: super::subscribe::route_set(msg),
                    peer: Peer {
                        addr: rx.source,
                        transport: rx.transport,
                        conn: rx.conn,
                        local: rx.local,
                    },
                    cseq: 0,
                    version: 0,
                    expires_ms: 0,
                },
            );
        }
        if let Some(mut s) = self.winfo.subs.get_mut(&key) {
            s.expires_ms = now_ms + u64::from(expires_s) * 1000;
        }
        let contact = format!(
            "<sip:{}{}>",
            rx.local,
            if rx.transport == Transport::Tcp {
                ";transport=tcp"
            } else {
                ""
            }
        );
        let expires = expires_s.to_string();
        // RFC 3261 §12.1.1: the UAS copies every Record-Route of the request into
        // its 2xx, so the subscriber's route set runs through the same proxies.
        let record_route = msg
            .header_values("Record-Route")
            .collect::<Vec<_>>()
            .join(&b", "[..]);
        let mut extra: Vec<(&str, &[u8])> = vec![
            ("Contact", contact.as_bytes()),
            ("Expires", expires.as_bytes()),
        ];
        if !record_route.is_empty() {
            extra.push(("Record-Route", &record_route));
        }
        let data = crate::sip::response(msg, 200, "OK", Some(our_tag.as_bytes()), &extra, b"");
        super::reply(rx, data, out);
        // RFC 6665 §4.2.1.2: every accepted SUBSCRIBE is followed by a full-state NOTIFY.
        let state = if expires_s == 0 {
            "terminated;reason=timeout".to_string()
        } else {
            format!("active;expires={expires_s}")
        };
        self.winfo_send(now_ms, &key, DocState::Full, None, &state, out);
        if expires_s == 0 {
            self.winfo.remove(&key);
        }
        tracing::debug!(%owner, expires_s, "watcher-info subscription answered");
        Some(Enforced::step(Step::Done(Handled::Answered)).about(&owner, &owner, None))
    }

    /// Something changed for one watcher of `owner`: a partial-state NOTIFY to each
    /// of the owner's winfo subscriptions.
    pub(super) fn winfo_changed(
        &self,
        now_ms: u64,
        owner: &Aor,
        watcher: &Aor,
        out: &mut Vec<Transmit>,
    ) {
        for key in self.winfo.keys_of(owner) {
            let left = self
                .winfo
                .subs
                .get(&key)
                .map_or(0, |s| s.expires_ms.saturating_sub(now_ms) / 1000);
            self.winfo_send(
                now_ms,
                &key,
                DocState::Partial,
                Some(watcher),
                &format!("active;expires={left}"),
                out,
            );
        }
    }

    /// The whole list again (after a decision change).
    pub(super) fn winfo_refresh(&self, now_ms: u64, owner: &Aor, out: &mut Vec<Transmit>) {
        for key in self.winfo.keys_of(owner) {
            let left = self
                .winfo
                .subs
                .get(&key)
                .map_or(0, |s| s.expires_ms.saturating_sub(now_ms) / 1000);
            self.winfo_send(
                now_ms,
                &key,
                DocState::Full,
                None,
                &format!("active;expires={left}"),
                out,
            );
        }
    }

    /// Subscriptions past their expiry get their last NOTIFY (RFC 6665 §4.2.2).
    pub(super) fn winfo_expire(&self, now_ms: u64, out: &mut Vec<Transmit>) {
        let expired: Vec<WinfoKey> = self
            .winfo
            .subs
            .iter()
            .filter(|s| s.expires_ms <= now_ms)
            .map(|s| *s.key())
            .collect();
        for key in expired {
            self.winfo_send(
                now_ms,
                &key,
                DocState::Full,
                None,
                "terminated;reason=timeout",
                out,
            );
            self.winfo.remove(&key);
        }
    }

    /// The watchers of `owner` as RFC 3858 entries; `only` limits it to one watcher.
    fn winfo_entries(&self, now_ms: u64, owner: &Aor, only: Option<&Aor>) -> Vec<WatcherEntry> {
        let mut entries: Vec<WatcherEntry> = Vec::new();
        let mut seen: Vec<Aor> = Vec::new();
        for req in self.store.pending(owner) {
            if only.is_some_and(|w| *w != req.watcher) || seen.contains(&req.watcher) {
                continue;
            }
            let (status, event) = match req.state {
                PendingState::Pending => (WatcherStatus::Pending, WatcherEvent::Subscribe),
                PendingState::Waiting => (WatcherStatus::Waiting, WatcherEvent::Giveup),
            };
            let mut e = WatcherEntry::new(
                entry_id(&req.watcher),
                format!("sip:{}", req.watcher),
                status,
                event,
            );
            e.duration_subscribed = Some(now_ms.saturating_sub(req.first_seen_ms) / 1000);
            entries.push(e);
            seen.push(req.watcher);
        }
        for key in self.dialogs.keys_of(owner) {
            let Some((w, created, expires, live)) = self.dialogs.with(&key, |d| {
                (
                    d.watcher.clone(),
                    d.created_ms,
                    d.expires_ms,
                    d.confirmed && !d.terminated,
                )
            }) else {
                continue;
            };
            if !live
                || only.is_some_and(|o| *o != w)
                || seen.contains(&w)
                || w.as_str() == crate::policy::Aor::anonymous().as_str()
            {
                continue;
            }
            let (status, event) = match self.store.decide(owner, &w).decision {
                Decision::Allow => (WatcherStatus::Active, WatcherEvent::Approved),
                Decision::Pending => (WatcherStatus::Pending, WatcherEvent::Subscribe),
                Decision::Block => (WatcherStatus::Terminated, WatcherEvent::Rejected),
            };
            let mut e = WatcherEntry::new(entry_id(&w), format!("sip:{w}"), status, event);
            e.duration_subscribed = Some(now_ms.saturating_sub(created) / 1000);
            e.expiration = Some(expires.saturating_sub(now_ms) / 1000);
            entries.push(e);
            seen.push(w);
        }
        entries
    }

    fn winfo_send(
        &self,
        now_ms: u64,
        key: &WinfoKey,
        state: DocState,
        only: Option<&Aor>,
        sub_state: &str,
        out: &mut Vec<Transmit>,
    ) {
        let Some(sub) = self.winfo.subs.get_mut(key).map(|mut s| {
            s.cseq += 1;
            let snapshot = s.clone();
            s.version += 1;
            snapshot
        }) else {
            return;
        };
        let entries = self.winfo_entries(now_ms, &sub.owner, only);
        let doc = WatcherInfo::presence(sub.version, state, format!("sip:{}", sub.owner), entries)
            .to_xml();
        let branch = self.originated.branch();
        let t = if sub.peer.transport == Transport::Tcp {
            "TCP"
        } else {
            "UDP"
        };
        let contact_t = if sub.peer.transport == Transport::Tcp {
            ";transport=tcp"
        } else {
            ""
        };
        let mut m = Vec::with_capacity(600 + doc.len());
        m.extend_from_slice(b"NOTIFY ");
        m.extend_from_slice(&sub.target);
        m.extend_from_slice(b" SIP/2.0\r\n");
        m.extend_from_slice(
            format!(
                "Via: SIP/2.0/{t} {};branch={branch};rport\r\n",
                sub.peer.local
            )
            .as_bytes(),
        );
        if let Some(routes) = &sub.route_set {
            m.extend_from_slice(b"Route: ");
            m.extend_from_slice(routes);
            m.extend_from_slice(b"\r\n");
        }
        m.extend_from_slice(b"Max-Forwards: 70\r\nFrom: ");
        m.extend_from_slice(&sub.their_to);
        m.extend_from_slice(format!(";tag={}\r\nTo: ", sub.our_tag).as_bytes());
        m.extend_from_slice(&sub.their_from);
        m.extend_from_slice(b"\r\nCall-ID: ");
        m.extend_from_slice(&sub.call_id);
        m.extend_from_slice(
            format!(
                "\r\nCSeq: {} NOTIFY\r\nContact: <sip:{}{contact_t}>\r\nEvent: presence.winfo\r\nSubscription-State: {sub_state}\r\nContent-Type: ",
                sub.cseq, sub.peer.local
            )
            .as_bytes(),
        );
        m.extend_from_slice(WATCHERINFO_CONTENT_TYPE);
        m.extend_from_slice(format!("\r\nContent-Length: {}\r\n\r\n", doc.len()).as_bytes());
        m.extend_from_slice(&doc);
        self.originated.send(
            now_ms,
            &branch,
            Bytes::from(m),
            sub.peer,
            Owner::Winfo(*key),
            out,
        );
    }
}
