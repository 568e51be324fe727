//! Client-transaction timers for NOTIFYs the proxy originates (injected on a
//! decision change, delivered after coalescing, winfo): RFC 3261 §17.1.2.2.
//!
//! Timer E starts at T1 and doubles up to T2 over an unreliable transport; after a
//! provisional response it fires every T2; Timer F ends the transaction after
//! 64*T1. Over TCP nothing is retransmitted, but Timer F still applies.

/// RFC 3261 §17.1.1.1: round-trip estimate.
pub const T1_MS: u64 = 500;
/// RFC 3261 §17.1.2.2: the longest retransmit interval for non-INVITE requests.
pub const T2_MS: u64 = 4_000;
/// RFC 3261 Timer F.
pub const TIMEOUT_MS: u64 = 64 * T1_MS;

/// What a transaction's timers want at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Nothing,
    Retransmit,
    TimedOut,
}

/// Timers of one non-INVITE client transaction.
#[derive(Debug, Clone)]
pub struct ClientTimers {
    started_ms: u64,
    /// Next Timer E firing; `None` over a reliable transport.
    next_ms: Option<u64>,
    interval_ms: u64,
}

impl ClientTimers {
    pub fn new(now_ms: u64, reliable: bool) -> Self {
        ClientTimers {
            started_ms: now_ms,
            next_ms: (!reliable).then_some(now_ms + T1_MS),
            interval_ms: T1_MS,
        }
    }

    /// A provisional response moves the transaction to Proceeding: retransmit every T2.
    pub fn provisional(&mut self, now_ms: u64) {
        if self.next_ms.is_some() {
            self.interval_ms = T2_MS;
            self.next_ms = Some(now_ms + T2_MS);
        }
    }

    /// When the driver must call back next.
    pub fn deadline(&self) -> u64 {
        let f = self.started_ms + TIMEOUT_MS;
        self.next_ms.map_or(f, |e| e.min(f))
    }

    /// Advances the timers to `now`.
    pub fn poll(&mut self, now_ms: u64) -> Due {
        if now_ms >= self.started_ms + TIMEOUT_MS {
            return Due::TimedOut;
        }
        match self.next_ms {
            Some(e) if now_ms >= e => {
                self.interval_ms = (self.interval_ms * 2).min(T2_MS);
                self.next_ms = Some(now_ms + self.interval_ms);
                Due::Retransmit
            }
            _ => Due::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn firings(reliable: bool) -> (Vec<u64>, u64) {
        let mut t = ClientTimers::new(0, reliable);
        let mut at = Vec::new();
        let mut now = 0;
        loop {
            now = t.deadline().max(now);
            match t.poll(now) {
                Due::Retransmit => at.push(now),
                Due::TimedOut => return (at, now),
                Due::Nothing => now += 1,
            }
        }
    }

    #[test]
    fn udp_doubles_to_t2_then_times_out_at_64_t1() {
        let (at, end) = firings(false);
        assert_eq!(&at[..5], &[500, 1_500, 3_500, 7_500, 11_500]);
        assert!(at.windows(2).all(|w| w[1] - w[0] <= T2_MS));
        assert_eq!(end, 32_000);
    }

    #[test]
    fn tcp_never_retransmits_but_times_out() {
        let (at, end) = firings(true);
        assert!(at.is_empty());
        assert_eq!(end, 32_000);
    }

    #[test]
    fn provisional_slows_to_t2() {
        let mut t = ClientTimers::new(0, false);
        t.provisional(100);
        assert_eq!(t.poll(600), Due::Nothing);
        assert_eq!(t.poll(4_100), Due::Retransmit);
        assert_eq!(t.deadline(), 8_100);
    }
}
