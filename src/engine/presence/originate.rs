//! NOTIFYs the proxy sends on its own: injected when a decision changes, delivered
//! when a paced one falls due, `terminated;reason=giveup` or `deactivated`, and
//! watcher-info. Each
//! is a non-INVITE client transaction (RFC 3261 §17.1.2): retransmitted over UDP
//! from the engine's `now`, ended by its final response or Timer F.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use dashmap::DashMap;

use super::dialogs::{DialogKey, Peer};
use super::retransmit::{ClientTimers, Due};
use super::view::View;
use super::{bump, Presence};
use crate::engine::{Transmit, Transport};
use crate::pidf;
use crate::sip::{self, Message};

/// Via branch prefix of the proxy's own requests (RFC 3261 §8.1.1.7 magic cookie
/// first), so their responses are recognised and end here.
pub const BRANCH_PREFIX: &str = "z9hG4bKppown";

/// What a proxy-originated NOTIFY in a presence dialog carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A change of decision: the watcher now sees this. `Show(View::Real)` for a
    /// dialog that holds no real state ([`Dialog::body_dropped`]) ends the
    /// watcher's subscription with `terminated;reason=deactivated` instead, so the
    /// watcher re-subscribes at once and the notifier sends its full state in the
    /// new subscription (RFC 6665 §4.2.2, §4.2.1.2).
    ///
    /// [`Dialog::body_dropped`]: super::dialogs::Dialog::body_dropped
    Show(View),
    /// A paced NOTIFY falls due: the newest state, shown by the current decision.
    Current,
    /// The pending request timed out (RFC 6665 §4.1.3 `giveup`).
    Giveup,
}

/// Who the transaction belongs to, for what its timeout ends.
#[derive(Debug, Clone)]
pub(super) enum Owner {
    /// A NOTIFY in a live dialog (or giveup, whose tombstone outlives it).
    Dialog(DialogKey),
    /// The `deactivated` NOTIFY that ended the watcher's subscription: the dialog
    /// is forgotten when this transaction ends, however it ends. Until then it is a
    /// tombstone, so a notifier NOTIFY crossing the terminating one is answered 481
    /// rather than passed to a watcher told the subscription is over; after it the
    /// watcher's new SUBSCRIBE is a new dialog, and a later notifier NOTIFY in the
    /// old one is untracked: the watcher answers it 481 and the notifier ends that
    /// subscription (RFC 6665 §4.1.3), or its expiry does.
    Ended(DialogKey),
    Winfo(super::winfo::WinfoKey),
}

#[derive(Debug)]
struct Outgoing {
    owner: Owner,
    data: Bytes,
    peer: Peer,
    timers: ClientTimers,
}

/// The proxy's own client transactions, by Via branch.
#[derive(Debug, Default)]
pub(super) struct Originated {
    txs: DashMap<Bytes, Outgoing, ahash::RandomState>,
    seq: AtomicU64,
}

impl Originated {
    pub(super) fn branch(&self) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("{BRANCH_PREFIX}{n:x}")
    }

    /// Sends a request and keeps it for retransmission.
    pub(super) fn send(
        &self,
        now_ms: u64,
        branch: &str,
        data: Bytes,
        peer: Peer,
        owner: Owner,
        out: &mut Vec<Transmit>,
    ) {
        out.push(transmit(&peer, data.clone()));
        let reliable = peer.transport != Transport::Udp;
        self.txs.insert(
            Bytes::copy_from_slice(branch.as_bytes()),
            Outgoing {
                owner,
                data,
                peer,
                timers: ClientTimers::new(now_ms, reliable),
            },
        );
    }

    pub(super) fn deadline(&self) -> Option<u64> {
        self.txs.iter().map(|t| t.timers.deadline()).min()
    }
}

fn transmit(peer: &Peer, data: Bytes) -> Transmit {
    Transmit {
        data,
        destination: peer.addr,
        transport: peer.transport,
        conn: peer.conn,
    }
}

fn via(peer: &Peer, branch: &str) -> Vec<u8> {
    let t = match peer.transport {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
    };
    format!("SIP/2.0/{t} {};branch={branch};rport", peer.local).into_bytes()
}

/// Why a NOTIFY of the proxy's own ends the watcher's subscription, if it does: the
/// `reason` of its `Subscription-State: terminated` (RFC 6665 §4.2.2).
fn ending(kind: Kind, body_dropped: bool) -> Option<&'static [u8]> {
    match kind {
        Kind::Giveup => Some(b"terminated;reason=giveup"),
        Kind::Show(View::Real) if body_dropped => Some(b"terminated;reason=deactivated"),
        _ => None,
    }
}

/// `Subscription-State` for the proxy's NOTIFY: the notifier's state word (pending
/// stays pending) with the time left.
fn state_for(template: &Message, view: View, left_s: u64) -> Vec<u8> {
    let notifier_pending = template
        .subscription_state()
        .is_some_and(|s| s.state.eq_ignore_ascii_case(b"pending"));
    let word = if view == View::Held || notifier_pending {
        "pending"
    } else {
        "active"
    };
    format!("{word};expires={left_s}").into_bytes()
}

impl Presence {
    /// Builds and sends a NOTIFY of the proxy's own into a presence dialog, copying
    /// the dialog's headers from the notifier's last NOTIFY and taking the next
    /// CSeq on the watcher's side (later notifier NOTIFYs are shifted above it).
    pub(super) fn originate_notify(
        &self,
        now_ms: u64,
        key: &DialogKey,
        kind: Kind,
        out: &mut Vec<Transmit>,
    ) {
        let Some((watcher, owner)) = self
            .dialogs
            .with(key, |d| (d.watcher.clone(), d.owner.clone()))
        else {
            return;
        };
        let pv = self.store.org().pending_view;
        let view = match kind {
            Kind::Show(v) => v,
            Kind::Current | Kind::Giveup => {
                if self.owns(&owner) {
                    View::of(self.store.decide(&owner, &watcher).decision, pv)
                } else {
                    View::Real
                }
            }
        };
        let Some((template, end, cseq, peer, routes, left_s)) = self
            .dialogs
            .with(key, |d| {
                if d.terminated {
                    return None;
                }
                let template = d.template.clone()?;
                let end = ending(kind, d.body_dropped);
                let cseq = d.cseq.originate();
                d.pacer.sent(now_ms);
                d.held = false;
                d.shown = Some(view);
                d.terminated = end.is_some();
                Some((
                    template,
                    end,
                    cseq,
                    d.watcher_peer,
                    d.route_set.clone(),
                    d.expires_ms.saturating_sub(now_ms) / 1000,
                ))
            })
            .flatten()
        else {
            return;
        };
        if end.is_some() {
            // Keep a tombstone long enough to answer the notifier's next NOTIFY with
            // 481 (a `deactivated` one goes sooner, with its transaction: Owner::Ended).
            self.dialogs.set_expiry(key, now_ms + super::TRANSACTION_MS);
        }
        let Ok(tmpl) = sip::parse(Bytes::from(template), &self.cfg.limits) else {
            return;
        };
        let branch = self.originated.branch();
        let mut ed = tmpl.edit();
        ed.remove_header("Via")
            .push_via(&via(&peer, &branch))
            .remove_header("Route")
            .remove_header("Record-Route")
            .set_max_forwards(70)
            .set_cseq_number(cseq);
        if let Some(routes) = &routes {
            ed.set_header("Route", routes);
        }
        let body = tmpl.body();
        let ct = tmpl.content_type();
        match (end, view) {
            (Some(state), _) => {
                ed.set_header("Subscription-State", state);
                ed.set_body(None, b"");
            }
            (_, View::Held) => {
                ed.set_header("Subscription-State", &state_for(&tmpl, view, left_s));
                ed.set_body(None, b"");
            }
            (_, View::Offline) => {
                ed.set_header("Subscription-State", &state_for(&tmpl, view, left_s));
                let r = if body.is_empty() {
                    pidf::offline_document(owner.as_str())
                } else {
                    pidf::offline_or_document(ct.unwrap_or_default(), body, owner.as_str())
                };
                ed.set_body(Some(&r.content_type), &r.body);
            }
            (_, View::Real) => {
                ed.set_header("Subscription-State", &state_for(&tmpl, view, left_s));
                let multipart = ct
                    .is_some_and(|c| c.len() >= 10 && c[..10].eq_ignore_ascii_case(b"multipart/"));
                if multipart && !body.is_empty() {
                    let r = self
                        .rlmi_for(ct.unwrap_or_default(), body, &watcher, pv)
                        .unwrap_or_else(|| pidf::offline_document(owner.as_str()));
                    ed.set_body(Some(&r.content_type), &r.body);
                }
            }
        }
        let data = ed.finish();
        bump(&self.counters.notifies_injected);
        let tx_owner = if matches!(kind, Kind::Show(_)) && end.is_some() {
            tracing::info!(%owner, %watcher, "allowed again with no real state held: subscription deactivated for the watcher to renew");
            Owner::Ended(*key)
        } else {
            Owner::Dialog(*key)
        };
        tracing::debug!(%owner, %watcher, ?kind, view = view.as_str(), cseq, "NOTIFY originated");
        self.originated
            .send(now_ms, &branch, data, peer, tx_owner, out);
    }

    /// A response to one of the proxy's own requests: a final one ends the
    /// transaction; 481 or 408 mean the watcher's side is gone (RFC 6665 §4.1.3).
    pub(super) fn originated_answered(
        &self,
        now_ms: u64,
        branch: &[u8],
        status: u16,
        _out: &mut Vec<Transmit>,
    ) {
        if status < 200 {
            if let Some(mut t) = self.originated.txs.get_mut(branch) {
                t.timers.provisional(now_ms);
            }
            return;
        }
        let Some((_, tx)) = self.originated.txs.remove(branch) else {
            return;
        };
        self.originated_ended(&tx.owner, matches!(status, 408 | 481) || status >= 500);
    }

    /// One of the proxy's own transactions ended; `failed` when the watcher's side
    /// is gone (an error response or Timer F).
    fn originated_ended(&self, owner: &Owner, failed: bool) {
        match owner {
            Owner::Dialog(key) if failed => {
                self.dialogs.remove(key);
            }
            Owner::Ended(key) => {
                // Unless a new subscription took the key meanwhile.
                if self.dialogs.with(key, |d| d.terminated) == Some(true) {
                    self.dialogs.remove(key);
                }
            }
            Owner::Winfo(key) if failed => {
                self.winfo.remove(key);
            }
            Owner::Dialog(_) | Owner::Winfo(_) => {}
        }
    }

    /// Retransmits what is due and ends what timed out (Timer F).
    pub(super) fn originated_timers(&self, now_ms: u64, out: &mut Vec<Transmit>) {
        let mut dead = Vec::new();
        for mut t in self.originated.txs.iter_mut() {
            match t.timers.poll(now_ms) {
                Due::Nothing => {}
                Due::Retransmit => {
                    bump(&self.counters.retransmissions);
                    out.push(transmit(&t.peer, t.data.clone()));
                }
                Due::TimedOut => dead.push(t.key().clone()),
            }
        }
        for branch in dead {
            if let Some((_, tx)) = self.originated.txs.remove(&branch) {
                bump(&self.counters.transaction_timeouts);
                tracing::info!(owner = ?tx.owner, "NOTIFY of the proxy's own timed out: subscription ended");
                self.originated_ended(&tx.owner, true);
            }
        }
    }
}
