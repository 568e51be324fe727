//! `Event: presence` SUBSCRIBEs and their responses: the dialog is noted when the
//! SUBSCRIBE passes and confirmed by the upstream's 2xx; acceptance records a
//! pending request and teaches the subscriber's contact list
//! (DESIGN.md "SUBSCRIBE with `Event: presence`", "Learned contacts").

use super::dialogs::{Dialog, DialogKey, Peer};
use super::{target_of, Enforced, Presence, TRANSACTION_MS};
use crate::engine::{Direction, Received, Transmit};
use crate::policy::{Decision, PendingHow};
use crate::sip::Message;

use super::coalesce::Pacer;
use super::cseq::CseqShift;
use super::identity::IdentitySource;

/// RFC 3856 §6.4: the default presence subscription duration.
const DEFAULT_EXPIRES_S: u64 = 3_600;

impl Presence {
    pub(super) fn subscribe(
        &self,
        now_ms: u64,
        rx: &Received,
        msg: &Message,
        direction: Direction,
    ) -> Enforced {
        // The proxy guards the watcher's leg; a SUBSCRIBE the upstream relays to a
        // phone acting as its own notifier belongs to a dialog noted on that leg.
        if direction != Direction::Downstream {
            return Enforced::route();
        }
        let (Some(call_id), Some(tag)) = (msg.call_id(), msg.from().and_then(|f| f.tag)) else {
            return Enforced::route();
        };
        let key = DialogKey::new(call_id, tag);
        let in_dialog = msg.to().and_then(|t| t.tag).is_some();
        // A SUBSCRIBE without a To tag for a dialog the proxy ended is a new
        // subscription that happens to reuse its Call-ID and tag (the watcher
        // renewing after `deactivated`): it replaces the tombstone.
        if let Some((w, p)) = self
            .dialogs
            .with(&key, |d| {
                (in_dialog || !d.terminated).then(|| (d.watcher.clone(), d.owner.clone()))
            })
            .flatten()
        {
            // A refresh, an un-SUBSCRIBE or a retransmission: the 2xx moves the expiry.
            return Enforced::route().about(&w, &p, None);
        }
        let Some(owner) = target_of(msg, direction) else {
            return Enforced::route();
        };
        let (watcher, identity) = self.identify(rx, msg, now_ms);
        let verdict = self.store.decide(&owner, &watcher);
        tracing::debug!(
            %owner, %watcher, identity = identity.as_str(), decision = verdict.decision.as_str(),
            rule = verdict.rule.as_str(), in_dialog, "presence SUBSCRIBE"
        );
        let dialog = Dialog {
            watcher: watcher.clone(),
            owner: owner.clone(),
            identity,
            created_ms: now_ms,
            // Until the upstream answers: a SUBSCRIBE it never accepts is forgotten.
            expires_ms: now_ms + TRANSACTION_MS,
            confirmed: false,
            watcher_peer: Peer {
                addr: rx.source,
                transport: rx.transport,
                conn: rx.conn,
                local: rx.local,
            },
            route_set: route_set(msg),
            template: None,
            body_dropped: false,
            shown: None,
            cseq: CseqShift::default(),
            pacer: Pacer::default(),
            held: false,
            terminated: false,
        };
        self.dialogs.insert(key, dialog);
        Enforced::route().about_owned(watcher, owner, Some(verdict))
    }

    /// The upstream's response to a SUBSCRIBE of a tracked dialog.
    pub(super) fn subscribe_answered(
        &self,
        now_ms: u64,
        key: DialogKey,
        msg: &Message,
        out: &mut Vec<Transmit>,
    ) {
        let status = msg.status().unwrap_or(0);
        if status < 200 {
            return;
        }
        if status >= 300 {
            // Refused (or a refresh the notifier no longer knows, RFC 6665 §4.1.2.2).
            let drop = self
                .dialogs
                .with(&key, |d| !d.confirmed || status == 481)
                .unwrap_or(false);
            if drop {
                self.dialogs.remove(&key);
            }
            return;
        }
        let expires_s = msg.expires().map_or(DEFAULT_EXPIRES_S, u64::from);
        // An un-SUBSCRIBE (0) still gets its final NOTIFY: keep the dialog that long.
        let until = if expires_s == 0 {
            now_ms + TRANSACTION_MS
        } else {
            now_ms + expires_s * 1000
        };
        let Some(first) = self.dialogs.with(&key, |d| {
            let first = !d.confirmed;
            d.confirmed = true;
            first.then(|| (d.watcher.clone(), d.owner.clone(), d.identity))
        }) else {
            return;
        };
        self.dialogs.set_expiry(&key, until);
        if let Some((watcher, owner, identity)) = first {
            self.subscription_accepted(now_ms, &watcher, &owner, identity, out);
        }
    }

    fn subscription_accepted(
        &self,
        now_ms: u64,
        watcher: &crate::policy::Aor,
        owner: &crate::policy::Aor,
        identity: IdentitySource,
        out: &mut Vec<Transmit>,
    ) {
        // Nobody can answer for an anonymous watcher: allowing "anonymous" would
        // allow everyone without an identity.
        if identity == IdentitySource::Anonymous || watcher == owner {
            return;
        }
        // One slot read for both questions (is the owner ours, is this pending).
        let ctx = self.store.decide_in_context(owner, watcher);
        if ctx.owner_is_ours && ctx.verdict.decision == Decision::Pending {
            self.record_pending(now_ms, owner, watcher, PendingHow::Subscribe, out);
        }
        // "Anyone in your contact list (being watched by you)": the subscriber is the
        // owner of a contact list here, the resource joins it.
        let Some(policy) = self.store.user(watcher) else {
            return;
        };
        if policy.has_contact(owner) {
            return;
        }
        self.learn_later(watcher, owner);
    }
}

/// The route set of requests the proxy sends the watcher in this dialog: the
/// SUBSCRIBE's Record-Route entries in order (RFC 3261 §12.1.1, the UAS side), as
/// the one `Route` value they make; `None` when there are none.
pub(super) fn route_set(msg: &Message) -> Option<Box<[u8]>> {
    let mut joined = Vec::new();
    for r in msg.record_routes() {
        if !joined.is_empty() {
            joined.extend_from_slice(b", ");
        }
        joined.push(b'<');
        joined.extend_from_slice(r);
        joined.push(b'>');
    }
    (!joined.is_empty()).then(|| joined.into_boxed_slice())
}
