//! Presence enforcement (DESIGN.md "The engine", Presence enforcement): every
//! privacy decision becomes a transformation of the NOTIFYs of a subscription
//! dialog, a gated MESSAGE, or a NOTIFY the proxy originates itself.
//!
//! The routing half of the engine calls [`Presence::request`] and
//! [`Presence::response`] for every message before it routes it; they add their
//! edits to the routing editor, or answer the message themselves. Decision changes
//! arrive through [`Presence::policy_changed`]; retransmissions, pacing, expiry and
//! the pending-request timeout run from [`Presence::handle_timeout`]. Sans-IO: time
//! is always the caller's `now_ms`.

pub mod coalesce;
mod counters;
pub mod cseq;
pub mod dialogs;
pub mod identity;
mod judged;
mod learn;
mod message;
mod notify;
mod originate;
pub mod retransmit;
mod subscribe;
mod template;
pub mod view;
pub mod wheel;
mod winfo;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

pub use self::counters::Counters;
use self::dialogs::{Caps, DialogKey, DialogTable};
use self::identity::{Flow, Identities, IdentitySource};
use self::originate::Originated;
use self::winfo::WinfoSubs;
use crate::engine::{ConnId, Direction, Handled, Received, Transmit};
use crate::policy::{Aor, Verdict};
use crate::sip::{self, Editor, Message, Method};
use crate::store::Store;

pub use self::originate::BRANCH_PREFIX as ORIGINATED_BRANCH_PREFIX;

/// Whether a peer is in the trust domain (RFC 3325 §2.3): its P-Asserted-Identity
/// is believed.
pub type TrustedPeer = Arc<dyn Fn(SocketAddr) -> bool + Send + Sync>;

/// The switches of presence enforcement.
#[derive(Clone)]
pub struct PresenceConfig {
    /// 480 (default: what an offline user answers) or 403, for a MESSAGE the
    /// policy refuses.
    pub message_block_status: u16,
    /// Believe From as the watcher's identity (labs only).
    pub trust_from: bool,
    pub trusted_peer: TrustedPeer,
    pub caps: Caps,
    pub limits: sip::Limits,
    /// How often the store is asked for pending requests past their timeout.
    pub pending_check_ms: u64,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            message_block_status: 480,
            trust_from: false,
            trusted_peer: Arc::new(|_| false),
            caps: Caps::default(),
            limits: sip::Limits::default(),
            pending_check_ms: 5_000,
        }
    }
}

impl std::fmt::Debug for PresenceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresenceConfig")
            .field("message_block_status", &self.message_block_status)
            .field("trust_from", &self.trust_from)
            .field("caps", &self.caps)
            .finish_non_exhaustive()
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// What enforcement did with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Route it, with only routing edits (and a stripped P-Asserted-Identity).
    Route,
    /// Route it; its body, Subscription-State or CSeq was changed by the policy.
    Rewritten,
    /// Not routed: enforcement already pushed what must be sent (or nothing).
    Done(Handled),
}

/// The step, and who and what it was about (the engine's [`crate::engine::Outcome`] fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enforced {
    pub step: Step,
    pub watcher: Option<Aor>,
    pub owner: Option<Aor>,
    pub verdict: Option<Verdict>,
    pub reason: Option<&'static str>,
}

impl Enforced {
    pub fn route() -> Self {
        Enforced {
            step: Step::Route,
            watcher: None,
            owner: None,
            verdict: None,
            reason: None,
        }
    }

    fn step(step: Step) -> Self {
        Enforced {
            step,
            ..Enforced::route()
        }
    }

    fn about(mut self, watcher: &Aor, owner: &Aor, verdict: Option<Verdict>) -> Self {
        self.watcher = Some(watcher.clone());
        self.owner = Some(owner.clone());
        self.verdict = verdict;
        self
    }

    fn about_owned(mut self, watcher: Aor, owner: Aor, verdict: Option<Verdict>) -> Self {
        self.watcher = Some(watcher);
        self.owner = Some(owner);
        self.verdict = verdict;
        self
    }

    fn because(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }
}

/// Presence enforcement state: dialogs, identities, the proxy's own transactions
/// and watcher-info subscriptions. All methods take `&self`.
pub struct Presence {
    cfg: PresenceConfig,
    store: Arc<dyn Store>,
    dialogs: DialogTable,
    ids: Identities,
    originated: Originated,
    winfo: WinfoSubs,
    /// Dialogs holding a paced NOTIFY, by due time.
    paced: Mutex<BTreeSet<(u64, DialogKey)>>,
    /// MESSAGE transactions already judged on their way from the sender (Call-ID,
    /// CSeq → when), so the leg back down from the upstream is not judged again.
    judged: judged::Judged,
    next_pending_check: AtomicU64,
    /// Learned contacts waiting to be written off the packet path.
    learn: learn::LearnQueue,
    counters: Counters,
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence")
            .field("cfg", &self.cfg)
            .field("dialogs", &self.dialogs.len())
            .finish_non_exhaustive()
    }
}

/// How long a request is remembered while its transaction may still be alive
/// (RFC 3261 Timer F, 64*T1).
const TRANSACTION_MS: u64 = retransmit::TIMEOUT_MS;

/// `user@host` of a URI, if it names one.
fn aor_of(uri: &[u8]) -> Option<Aor> {
    Aor::parse(std::str::from_utf8(uri).ok()?).ok()
}

/// The resource a request is about: the Request-URI, or To when the Request-URI
/// names no user (a phone that puts the proxy's address there). On its way down
/// from the upstream the Request-URI is already the phone's Contact (RFC 3261
/// §16.5 retargeting), so there the AoR is To's.
fn target_of(msg: &Message, direction: Direction) -> Option<Aor> {
    let to = || msg.to().and_then(|t| aor_of(t.uri));
    match direction {
        Direction::Upstream => to(),
        Direction::Downstream => msg.request_uri().and_then(aor_of).or_else(to),
    }
}

fn reply(rx: &Received, data: Bytes, out: &mut Vec<Transmit>) {
    out.push(Transmit {
        data,
        destination: rx.source,
        transport: rx.transport,
        conn: rx.conn,
    });
}

impl Presence {
    pub fn new(cfg: PresenceConfig, store: Arc<dyn Store>) -> Self {
        Presence {
            dialogs: DialogTable::new(cfg.caps),
            ids: Identities::new(cfg.trust_from),
            originated: Originated::default(),
            winfo: WinfoSubs::default(),
            paced: Mutex::new(BTreeSet::new()),
            judged: judged::Judged::default(),
            next_pending_check: AtomicU64::new(0),
            learn: learn::LearnQueue::default(),
            counters: Counters::default(),
            cfg,
            store,
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Appends the enforcement counters and gauges in the Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        self.counters
            .render(out, self.dialogs.len(), self.dialogs.evicted());
    }

    /// Subscription dialogs tracked now.
    pub fn dialog_count(&self) -> usize {
        self.dialogs.len()
    }

    /// Dialogs evicted to stay within the caps since start.
    pub fn evicted(&self) -> u64 {
        self.dialogs.evicted()
    }

    /// Whether the proxy enforces this owner's privacy: a user here, or an AoR in a
    /// local domain (who gets the default policy). Others' presence is not ours to guard.
    fn owns(&self, owner: &Aor) -> bool {
        self.store.user(owner).is_some() || self.store.org().is_internal(owner)
    }

    /// Who sent the request (DESIGN.md "Identity").
    fn identify(&self, rx: &Received, msg: &Message, now_ms: u64) -> (Aor, IdentitySource) {
        let trusted = (self.cfg.trusted_peer)(rx.source);
        let asserted = msg.p_asserted_identity().and_then(aor_of);
        let from = msg.from().and_then(|f| aor_of(f.uri));
        self.ids.resolve(
            trusted,
            Flow::of(rx.source, rx.transport, rx.conn),
            asserted,
            from,
            now_ms,
        )
    }

    /// Enforcement for a request, before routing. Edits go into the routing
    /// editor `ed`; answers and NOTIFYs of the proxy's own into `out`.
    pub fn request(
        &self,
        now_ms: u64,
        rx: &Received,
        msg: &Message,
        direction: Direction,
        ed: &mut Editor<'_>,
        out: &mut Vec<Transmit>,
    ) -> Enforced {
        // RFC 3325 §5: an identity asserted by a peer outside the trust domain is
        // removed, so nothing behind the proxy believes it either.
        if msg
            .first_of_kind(sip::HeaderKind::PAssertedIdentity)
            .is_some()
            && !(self.cfg.trusted_peer)(rx.source)
        {
            ed.remove_header("P-Asserted-Identity");
            bump(&self.counters.pai_stripped);
        }
        let package = msg.event().map(|e| e.package);
        match msg.method() {
            Some(Method::Register) if direction == Direction::Downstream => {
                if let (Some(call_id), Some((cseq, _)), Some(aor)) = (
                    msg.call_id(),
                    msg.cseq(),
                    msg.to().and_then(|t| aor_of(t.uri)),
                ) {
                    let flow = Flow::of(rx.source, rx.transport, rx.conn);
                    self.ids
                        .register_sent_for(call_id, cseq, flow, aor, msg.contact_uri(), now_ms);
                }
                Enforced::route()
            }
            Some(Method::Subscribe) if package == Some(&b"presence"[..]) => {
                self.subscribe(now_ms, rx, msg, direction)
            }
            Some(Method::Subscribe)
                if package == Some(&b"presence.winfo"[..])
                    && direction == Direction::Downstream =>
            {
                self.winfo_subscribe(now_ms, rx, msg, out)
                    .unwrap_or_else(Enforced::route)
            }
            Some(Method::Notify)
                if package == Some(&b"presence"[..]) && direction == Direction::Upstream =>
            {
                self.notify(now_ms, rx, msg, ed, out)
            }
            Some(Method::Message) => self.message(now_ms, rx, msg, direction, out),
            Some(Method::Invite) if direction == Direction::Downstream => {
                self.invite(now_ms, rx, msg, out)
            }
            _ => Enforced::route(),
        }
    }

    /// Enforcement for a response, before routing: responses to the proxy's own
    /// NOTIFYs end there; the watcher's responses in a renumbered dialog get their
    /// CSeq back; 2xx to SUBSCRIBE and REGISTER are noted.
    pub fn response(
        &self,
        now_ms: u64,
        _rx: &Received,
        msg: &Message,
        direction: Direction,
        ed: &mut Editor<'_>,
        out: &mut Vec<Transmit>,
    ) -> Enforced {
        let status = msg.status().unwrap_or(0);
        if let Some(branch) = msg.top_via().and_then(|v| v.branch) {
            if branch.starts_with(originate::BRANCH_PREFIX.as_bytes()) {
                self.originated_answered(now_ms, branch, status, out);
                return Enforced::step(Step::Done(Handled::Dropped))
                    .because("response to a NOTIFY of the proxy's own");
            }
        }
        let (Some(call_id), Some((cseq, method))) = (msg.call_id(), msg.cseq()) else {
            return Enforced::route();
        };
        match (method, direction) {
            (b"SUBSCRIBE", Direction::Upstream) => {
                if let Some(tag) = msg.from().and_then(|f| f.tag) {
                    self.subscribe_answered(now_ms, DialogKey::new(call_id, tag), msg, out);
                }
                Enforced::route()
            }
            (b"REGISTER", Direction::Upstream) => {
                self.ids.register_answered_with(
                    call_id,
                    cseq,
                    status,
                    |contact| registered_expiry(msg, contact),
                    now_ms,
                );
                Enforced::route()
            }
            (b"NOTIFY", Direction::Downstream) => {
                let Some(tag) = msg.to().and_then(|t| t.tag) else {
                    return Enforced::route();
                };
                let key = DialogKey::new(call_id, tag);
                let back = self.dialogs.with(&key, |d| d.cseq.back(cseq));
                if status == 481 {
                    // RFC 6665 §4.1.3: the watcher no longer knows the subscription.
                    self.dialogs.remove(&key);
                }
                match back {
                    Some(n) if n != cseq => {
                        ed.set_cseq_number(n);
                        Enforced::step(Step::Rewritten)
                    }
                    _ => Enforced::route(),
                }
            }
            _ => Enforced::route(),
        }
    }

    /// A decision may have changed for `owner`'s watchers (every owner when `None`):
    /// each live dialog whose view changed gets a NOTIFY now (DESIGN.md "Decisions
    /// change"), and the owner's watcher-info subscribers get the new list.
    ///
    /// "The kept real state when W is now allowed" is kept only where the watcher
    /// was not shown it (a NOTIFY arrived while blocked or held): a dialog shown the
    /// real state keeps its headers alone (`template`, issue 7 memory). Allowed again
    /// with nothing newer, its watcher gets `terminated;reason=deactivated` instead,
    /// re-subscribes at once and sees the notifier's full state in the new
    /// subscription (RFC 6665 §4.2.2, §4.2.1.2).
    pub fn policy_changed(&self, now_ms: u64, owner: Option<&Aor>, out: &mut Vec<Transmit>) {
        let keys = match owner {
            Some(o) => self.dialogs.keys_of(o),
            None => self.dialogs.keys(),
        };
        let pending_view = self.store.org().pending_view;
        for key in keys {
            let Some((w, p, shown, live)) = self.dialogs.with(&key, |d| {
                (
                    d.watcher.clone(),
                    d.owner.clone(),
                    d.shown,
                    d.template.is_some() && !d.terminated,
                )
            }) else {
                continue;
            };
            if !live {
                continue;
            }
            let view = view::View::of(self.store.decide(&p, &w).decision, pending_view);
            if shown != Some(view) {
                tracing::info!(owner = %p, watcher = %w, view = view.as_str(), "decision changed: NOTIFY injected");
                self.originate_notify(now_ms, &key, originate::Kind::Show(view), out);
            }
        }
        match owner {
            Some(o) => self.winfo_refresh(now_ms, o, out),
            None => {
                for o in self.winfo.owners() {
                    self.winfo_refresh(now_ms, &o, out);
                }
            }
        }
    }

    /// The next time [`Presence::handle_timeout`] has work (unix ms).
    pub fn poll_timeout(&self) -> Option<u64> {
        let paced = self
            .paced
            .lock()
            .ok()
            .and_then(|p| p.first().map(|(t, _)| *t));
        // Pending requests time out whether or not a dialog is live (they also come
        // from MESSAGEs and calls).
        let pending = Some(self.next_pending_check.load(Ordering::Relaxed));
        [
            self.originated.deadline(),
            paced,
            self.dialogs.next_deadline(),
            self.winfo.next_deadline(),
            pending,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs what is due at `now`: retransmissions and timeouts of the proxy's own
    /// NOTIFYs, paced NOTIFYs, dialog and watcher-info expiry, pending timeouts.
    pub fn handle_timeout(&self, now_ms: u64, out: &mut Vec<Transmit>) {
        self.originated_timers(now_ms, out);
        let due: Vec<DialogKey> = match self.paced.lock() {
            Ok(mut p) => {
                let mut due = Vec::new();
                while let Some(first) = p.first().cloned() {
                    if first.0 > now_ms {
                        break;
                    }
                    p.remove(&first);
                    due.push(first.1);
                }
                due
            }
            Err(_) => Vec::new(),
        };
        for key in due {
            let held = self.dialogs.with(&key, |d| {
                d.held && d.pacer.due().is_some_and(|t| t <= now_ms)
            });
            if held == Some(true) {
                self.originate_notify(now_ms, &key, originate::Kind::Current, out);
            }
        }
        for (_, d) in self.dialogs.expire(now_ms) {
            tracing::debug!(owner = %d.owner, watcher = %d.watcher, "subscription dialog expired");
        }
        self.winfo_expire(now_ms, out);
        if now_ms >= self.next_pending_check.load(Ordering::Relaxed) {
            self.next_pending_check
                .store(now_ms + self.cfg.pending_check_ms, Ordering::Relaxed);
            self.pending_timeouts(now_ms, out);
        }
        self.judged.expire(now_ms, TRANSACTION_MS);
    }

    /// A TCP connection closed: the registration it carried proves nothing now.
    pub fn connection_closed(&self, conn: ConnId) {
        self.ids.flow_closed(Flow::Tcp(conn));
    }

    /// Pending requests nobody answered in time become `waiting` (RFC 3857) and
    /// their dialogs are ended with `reason=giveup`.
    fn pending_timeouts(&self, now_ms: u64, out: &mut Vec<Transmit>) {
        let expired = match self.store.expire_pending(now_ms) {
            Ok(v) => v,
            Err(err) => {
                bump(&self.counters.store_errors);
                tracing::warn!(%err, "pending requests could not be expired");
                return;
            }
        };
        for req in expired {
            for key in self.dialogs.keys_of(&req.owner) {
                let hit = self
                    .dialogs
                    .with(&key, |d| d.watcher == req.watcher && !d.terminated);
                if hit == Some(true) {
                    bump(&self.counters.giveups);
                    tracing::info!(owner = %req.owner, watcher = %req.watcher, "pending request timed out: subscription given up");
                    self.originate_notify(now_ms, &key, originate::Kind::Giveup, out);
                }
            }
            self.winfo_changed(now_ms, &req.owner, &req.watcher, out);
        }
    }

    /// Records a pending request (once the upstream accepted the SUBSCRIBE, or a
    /// MESSAGE/INVITE arrived) and tells the owner's watcher-info subscribers.
    fn record_pending(
        &self,
        now_ms: u64,
        owner: &Aor,
        watcher: &Aor,
        how: crate::policy::PendingHow,
        out: &mut Vec<Transmit>,
    ) {
        match self.store.record_pending(owner, watcher, how, now_ms) {
            Ok(true) => {
                bump(&self.counters.pending_recorded);
                tracing::info!(%owner, %watcher, ?how, "new pending request");
                self.winfo_changed(now_ms, owner, watcher, out);
            }
            Ok(false) => {}
            Err(err) => {
                bump(&self.counters.store_errors);
                tracing::warn!(%err, %owner, %watcher, "pending request not recorded");
            }
        }
    }
}

/// What the registrar granted in a 2xx to REGISTER for the binding of `contact`
/// (the REGISTER's Contact URI): the 2xx lists every current binding of the AoR,
/// each with its own `expires` parameter (RFC 3261 §10.3 step 8), so the flow's
/// expiry is its own binding's, not another device's. That binding without an
/// `expires` parameter takes the Expires header; when it cannot be found (no
/// Contact noted, or the registrar rewrote it) the largest `expires` listed, else
/// the Expires header.
fn registered_expiry(msg: &Message, contact: Option<&[u8]>) -> Option<u32> {
    let expires_param = |na: &sip::NameAddr<'_>| {
        na.param("expires")
            .flatten()
            .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u32>().ok())
    };
    let bindings = || {
        msg.header_values("Contact")
            .filter_map(sip::NameAddr::parse)
    };
    if let Some(ours) = contact {
        if let Some(na) = bindings().find(|na| na.uri.eq_ignore_ascii_case(ours)) {
            return expires_param(&na).or_else(|| msg.expires());
        }
    }
    bindings()
        .filter_map(|na| expires_param(&na))
        .max()
        .or_else(|| msg.expires())
}
