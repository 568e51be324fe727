//! Counts of what presence enforcement did, rendered for `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts of what enforcement did (exported with the engine's metrics).
#[derive(Debug, Default)]
pub struct Counters {
    pub notifies_rewritten: AtomicU64,
    pub notifies_swallowed: AtomicU64,
    pub notifies_coalesced: AtomicU64,
    pub notifies_injected: AtomicU64,
    pub retransmissions: AtomicU64,
    pub transaction_timeouts: AtomicU64,
    pub messages_refused: AtomicU64,
    pub pending_recorded: AtomicU64,
    pub giveups: AtomicU64,
    pub contacts_learned: AtomicU64,
    pub contacts_not_learned: AtomicU64,
    pub pai_stripped: AtomicU64,
    pub store_errors: AtomicU64,
}

impl Counters {
    /// Prometheus text exposition: one counter family with an `event` label, plus
    /// the live dialog gauge and the cap evictions.
    pub fn render(&self, out: &mut String, dialogs: usize, evicted: u64) {
        let rows: [(&str, &AtomicU64); 13] = [
            ("notify_rewritten", &self.notifies_rewritten),
            ("notify_swallowed", &self.notifies_swallowed),
            ("notify_coalesced", &self.notifies_coalesced),
            ("notify_injected", &self.notifies_injected),
            ("retransmission", &self.retransmissions),
            ("transaction_timeout", &self.transaction_timeouts),
            ("message_refused", &self.messages_refused),
            ("pending_recorded", &self.pending_recorded),
            ("giveup", &self.giveups),
            ("contact_learned", &self.contacts_learned),
            ("contact_not_learned", &self.contacts_not_learned),
            ("pai_stripped", &self.pai_stripped),
            ("store_error", &self.store_errors),
        ];
        out.push_str("# HELP presence_proxy_enforcement_total What presence enforcement did.\n");
        out.push_str("# TYPE presence_proxy_enforcement_total counter\n");
        for (event, n) in rows {
            let _ = writeln!(
                out,
                "presence_proxy_enforcement_total{{event=\"{event}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP presence_proxy_dialogs Presence subscription dialogs tracked.\n");
        out.push_str("# TYPE presence_proxy_dialogs gauge\n");
        let _ = writeln!(out, "presence_proxy_dialogs {dialogs}");
        out.push_str("# HELP presence_proxy_dialogs_evicted_total Dialogs dropped to stay within the caps.\n");
        out.push_str("# TYPE presence_proxy_dialogs_evicted_total counter\n");
        let _ = writeln!(out, "presence_proxy_dialogs_evicted_total {evicted}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_counter_with_its_value() {
        let c = Counters::default();
        c.giveups.fetch_add(2, Ordering::Relaxed);
        let mut out = String::new();
        c.render(&mut out, 5, 1);
        assert!(
            out.contains("presence_proxy_enforcement_total{event=\"giveup\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("presence_proxy_dialogs 5\n"));
        assert!(out.contains("presence_proxy_dialogs_evicted_total 1\n"));
        assert_eq!(out.matches("presence_proxy_enforcement_total{").count(), 13);
    }
}
