//! The NOTIFYs of a presence dialog on their way to the watcher, transformed by the
//! current decision (a cache read per NOTIFY): Allow passes, Block gets the Offline
//! document (polite block, RFC 5025), Pending follows the org's pending view
//! (DESIGN.md "NOTIFY in such a dialog").

use bytes::Bytes;

use super::dialogs::DialogKey;
use super::view::View;
use super::{bump, Enforced, Presence, Step};
use crate::engine::{Handled, Received, Transmit};
use crate::pidf;
use crate::policy::{Aor, PendingView};
use crate::sip::{self, Editor, Message};

/// What to do with one notifier NOTIFY of a tracked dialog.
enum Plan {
    /// The proxy ended this subscription (giveup): tell the notifier it is gone.
    Gone,
    /// Answer 200 and pass nothing on (nothing new for a held watcher, or paced).
    Swallow { paced_until: Option<u64> },
    /// Pass it on, shown as `view`, renumbered to `cseq`.
    Forward { view: View, cseq: u32, last: bool },
}

fn is_multipart(content_type: Option<&[u8]>) -> bool {
    content_type.is_some_and(|c| c.len() >= 10 && c[..10].eq_ignore_ascii_case(b"multipart/"))
}

impl Presence {
    pub(super) fn notify(
        &self,
        now_ms: u64,
        rx: &Received,
        msg: &Message,
        ed: &mut Editor<'_>,
        out: &mut Vec<Transmit>,
    ) -> Enforced {
        let (Some(call_id), Some(tag), Some((cseq, _))) =
            (msg.call_id(), msg.to().and_then(|t| t.tag), msg.cseq())
        else {
            return self.notify_untracked(msg, ed);
        };
        let key = DialogKey::new(call_id, tag);
        let last = msg
            .subscription_state()
            .is_some_and(|s| s.state.eq_ignore_ascii_case(b"terminated"));
        // One visit to the dialog: the decision for its pair, what to do, and what
        // to keep (the store is read under the dialog's lock; it never touches the
        // dialog table).
        let Some((watcher, owner, verdict, pending_view, plan)) = self.dialogs.with(&key, |d| {
            let ctx = self.store.decide_in_context(&d.owner, &d.watcher);
            let (verdict, pending_view) = (ctx.verdict, ctx.pending_view);
            let view = if ctx.owner_is_ours {
                View::of(verdict.decision, pending_view)
            } else {
                View::Real
            };
            let plan = self.plan(now_ms, d, cseq, view, last);
            // The body is the last real state only while the watcher is not shown it.
            match plan {
                Plan::Gone => {}
                Plan::Forward {
                    view: View::Real, ..
                } if !d.held => {
                    d.template = Some(super::template::header_template(msg));
                    d.body_dropped = !msg.body().is_empty();
                }
                _ => {
                    d.template = Some(Box::from(&msg.raw()[..]));
                    d.body_dropped = false;
                }
            }
            (
                d.watcher.clone(),
                d.owner.clone(),
                verdict,
                pending_view,
                plan,
            )
        }) else {
            return self.notify_untracked(msg, ed);
        };
        match plan {
            Plan::Gone => {
                reply_to(rx, msg, 481, "Subscription Does Not Exist", out);
                Enforced::step(Step::Done(Handled::Answered))
                    .because("subscription given up")
                    .about_owned(watcher, owner, Some(verdict))
            }
            Plan::Swallow { paced_until } => {
                reply_to(rx, msg, 200, "OK", out);
                if let Some(due) = paced_until {
                    bump(&self.counters.notifies_coalesced);
                    if let Ok(mut p) = self.paced.lock() {
                        p.insert((due, key));
                    }
                    Enforced::step(Step::Done(Handled::Answered))
                        .because("coalesced into the next NOTIFY")
                        .about_owned(watcher, owner, Some(verdict))
                } else {
                    bump(&self.counters.notifies_swallowed);
                    Enforced::step(Step::Done(Handled::Answered))
                        .because("pending: nothing to tell")
                        .about_owned(watcher, owner, Some(verdict))
                }
            }
            Plan::Forward {
                view,
                cseq: w,
                last,
            } => {
                if last {
                    self.dialogs.remove(&key);
                }
                let mut changed = w != cseq;
                if changed {
                    ed.set_cseq_number(w);
                }
                changed |= self.shape(msg, ed, view, &owner, &watcher, pending_view);
                if changed {
                    bump(&self.counters.notifies_rewritten);
                    Enforced::step(Step::Rewritten).about_owned(watcher, owner, Some(verdict))
                } else {
                    Enforced::route().about_owned(watcher, owner, Some(verdict))
                }
            }
        }
    }

    /// What to do with notifier NOTIFY `cseq` in dialog `d`, shown as `view`;
    /// updates the dialog's CSeq map, pacing and what it was shown.
    fn plan(
        &self,
        now_ms: u64,
        d: &mut super::dialogs::Dialog,
        cseq: u32,
        view: View,
        last: bool,
    ) -> Plan {
        if d.terminated {
            return Plan::Gone;
        }
        // A UDP retransmission of a NOTIFY already passed on goes the same way.
        if let Some(w) = d.cseq.forwarded_as(cseq) {
            return Plan::Forward {
                view,
                cseq: w,
                last,
            };
        }
        if cseq <= d.cseq.last_notifier() && d.shown.is_some() {
            return Plan::Swallow { paced_until: None };
        }
        if !last && view == View::Held && d.shown == Some(View::Held) {
            d.cseq.swallowed(cseq);
            return Plan::Swallow { paced_until: None };
        }
        // The first NOTIFY, a change of view and the last NOTIFY are never paced.
        if !last && d.shown == Some(view) {
            let interval = self
                .store
                .user(&d.watcher)
                .map(|u| u64::from(u.refresh_interval_s) * 1000);
            if let super::coalesce::Pace::HoldUntil(due) = d.pacer.offer(now_ms, interval) {
                d.cseq.swallowed(cseq);
                d.held = true;
                return Plan::Swallow {
                    paced_until: Some(due),
                };
            }
        }
        let w = d.cseq.forward(cseq);
        d.pacer.sent(now_ms);
        d.held = false;
        d.shown = Some(view);
        Plan::Forward {
            view,
            cseq: w,
            last,
        }
    }

    /// A presence NOTIFY of a dialog the proxy does not know (evicted, or from
    /// before a restart). Its To is only what the subscriber claimed, so the watcher
    /// is anonymous unless From-trust is on: an unknown party gains nothing.
    fn notify_untracked(&self, msg: &Message, ed: &mut Editor<'_>) -> Enforced {
        let Some(owner) = msg.from().and_then(|f| super::aor_of(f.uri)) else {
            return Enforced::route();
        };
        if !self.owns(&owner) {
            return Enforced::route();
        }
        let watcher = match msg.to().and_then(|t| super::aor_of(t.uri)) {
            Some(w) if self.cfg.trust_from => w,
            _ => Aor::anonymous(),
        };
        let verdict = self.store.decide(&owner, &watcher);
        let pending_view = self.store.org().pending_view;
        let view = View::of(verdict.decision, pending_view);
        let step = if self.shape(msg, ed, view, &owner, &watcher, pending_view) {
            bump(&self.counters.notifies_rewritten);
            Step::Rewritten
        } else {
            Step::Route
        };
        Enforced::step(step)
            .about_owned(watcher, owner, Some(verdict))
            .because("untracked dialog")
    }

    /// Edits a notifier NOTIFY to show `view`; true when anything changed.
    fn shape(
        &self,
        msg: &Message,
        ed: &mut Editor<'_>,
        view: View,
        owner: &Aor,
        watcher: &Aor,
        pv: PendingView,
    ) -> bool {
        let content_type = msg.content_type();
        let body = msg.body();
        match view {
            View::Real if is_multipart(content_type) && !body.is_empty() => {
                // RLMI (RFC 4662): the list is visible, each resource by its own decision.
                let ct = content_type.unwrap_or_default();
                let r = self
                    .rlmi_for(ct, body, watcher, pv)
                    .unwrap_or_else(|| pidf::offline_document(owner.as_str()));
                if r.body.as_slice() == body {
                    return false;
                }
                ed.set_body(Some(&r.content_type), &r.body);
                true
            }
            View::Real => false,
            View::Offline => {
                if body.is_empty() {
                    // Never published: indistinguishable from offline already.
                    return false;
                }
                let ct = content_type.unwrap_or_default();
                let r = pidf::offline_or_document(ct, body, owner.as_str());
                ed.set_body(Some(&r.content_type), &r.body);
                true
            }
            View::Held => {
                let state = held_state(msg);
                ed.set_header("Subscription-State", &state);
                ed.set_body(None, b"");
                true
            }
        }
    }

    /// Rewrites the parts of resources this watcher may not see; `None` when the
    /// bundle cannot be read (it is then replaced, never passed).
    pub(super) fn rlmi_for(
        &self,
        ct: &[u8],
        body: &[u8],
        watcher: &Aor,
        pv: PendingView,
    ) -> Option<pidf::Rewritten> {
        let blocked = |uri: &str| match Aor::parse(uri) {
            Ok(r) => View::of(self.store.decide(&r, watcher).decision, pv) != View::Real,
            Err(_) => true,
        };
        match pidf::rewrite_rlmi(ct, body, &blocked) {
            Ok(r) => Some(r),
            Err(err) => {
                tracing::debug!(%err, "RLMI bundle replaced by the Offline document");
                None
            }
        }
    }
}

/// `pending` with the notifier's `expires`, or `terminated` as the notifier said.
fn held_state(msg: &Message) -> Vec<u8> {
    match msg.subscription_state() {
        Some(s) if s.state.eq_ignore_ascii_case(b"terminated") => {
            let mut v = b"terminated".to_vec();
            if let Some(r) = s.reason {
                v.extend_from_slice(b";reason=");
                v.extend_from_slice(r);
            }
            v
        }
        Some(s) => match s.expires {
            Some(e) => format!("pending;expires={e}").into_bytes(),
            None => b"pending".to_vec(),
        },
        None => b"pending".to_vec(),
    }
}

/// Answers a request the proxy does not pass on, where it came from.
pub(super) fn reply_to(
    rx: &Received,
    msg: &Message,
    status: u16,
    reason: &str,
    out: &mut Vec<Transmit>,
) {
    let data: Bytes = sip::response(msg, status, reason, None, &[], b"");
    super::reply(rx, data, out);
}
