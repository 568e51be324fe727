//! Instant messages (RFC 3428) and calls from a watcher to an owner: a blocked or
//! pending watcher's MESSAGE is answered as an offline user's would be (480, or
//! 403 by config) so the block itself is not revealed; an unknown watcher's
//! MESSAGE or INVITE asks the owner for access (ShoreTel: "adding a contact,
//! calling and messaging all ask"); the INVITE itself passes.

use bytes::Bytes;

use super::identity::IdentitySource;
use super::{bump, target_of, Enforced, Presence, Step};
use crate::engine::{Direction, Handled, Received, Transmit};
use crate::policy::{Decision, PendingHow};
use crate::sip::Message;

impl Presence {
    pub(super) fn message(
        &self,
        now_ms: u64,
        rx: &Received,
        msg: &Message,
        direction: Direction,
        out: &mut Vec<Transmit>,
    ) -> Enforced {
        let key = msg
            .call_id()
            .zip(msg.cseq())
            .map(|(c, (n, _))| (Bytes::copy_from_slice(c), n));
        // The leg back down from the upstream of a MESSAGE judged on its way up.
        if direction == Direction::Upstream && key.as_ref().is_some_and(|k| self.judged.contains(k))
        {
            return Enforced::route();
        }
        let Some(owner) = target_of(msg, direction) else {
            return Enforced::route();
        };
        if !self.owns(&owner) {
            return Enforced::route();
        }
        let (watcher, identity) = self.identify(rx, msg, now_ms);
        let verdict = self.store.decide(&owner, &watcher);
        let about = |e: Enforced| e.about(&watcher, &owner, Some(verdict));
        match verdict.decision {
            Decision::Allow => {
                if let Some(k) = key {
                    self.judged.insert(k);
                }
                about(Enforced::route())
            }
            Decision::Block | Decision::Pending => {
                if verdict.decision == Decision::Pending && identity != IdentitySource::Anonymous {
                    self.record_pending(now_ms, &owner, &watcher, PendingHow::Message, out);
                }
                bump(&self.counters.messages_refused);
                let (status, reason) = match self.cfg.message_block_status {
                    403 => (403, "Forbidden"),
                    _ => (480, "Temporarily Unavailable"),
                };
                tracing::debug!(%owner, %watcher, status, rule = verdict.rule.as_str(), "MESSAGE not delivered");
                let tag = super::winfo::local_tag(msg);
                let data =
                    crate::sip::response(msg, status, reason, Some(tag.as_bytes()), &[], b"");
                super::reply(rx, data, out);
                about(
                    Enforced::step(Step::Done(Handled::Answered))
                        .because("message refused by policy"),
                )
            }
        }
    }

    /// An INVITE from a watcher the owner has not answered asks for access; the
    /// call itself is not the presence policy's business.
    pub(super) fn invite(
        &self,
        now_ms: u64,
        rx: &Received,
        msg: &Message,
        out: &mut Vec<Transmit>,
    ) -> Enforced {
        if msg.to().and_then(|t| t.tag).is_some() {
            return Enforced::route(); // re-INVITE
        }
        let Some(owner) = target_of(msg, Direction::Downstream) else {
            return Enforced::route();
        };
        if !self.owns(&owner) {
            return Enforced::route();
        }
        let (watcher, identity) = self.identify(rx, msg, now_ms);
        let verdict = self.store.decide(&owner, &watcher);
        if verdict.decision == Decision::Pending && identity != IdentitySource::Anonymous {
            self.record_pending(now_ms, &owner, &watcher, PendingHow::Call, out);
        }
        Enforced::route().about_owned(watcher, owner, Some(verdict))
    }
}
