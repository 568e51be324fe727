//! Busy polling: after traffic, the runtime keeps polling its sockets for a short
//! window instead of sleeping in `epoll_wait`.
//!
//! Why: in a virtual machine an idle vCPU is halted, and the next packet first has
//! to get the vCPU scheduled again by the host. On the benchmark VM that wake-up
//! dominated the added latency at half load (p99 ≈ 6 ms with the proxy's core idle
//! between bursts, ≈ 1 ms with it kept busy; BENCHMARKS.md "Latency"). HAProxy
//! offers the same trade for the same reason (`busy-polling`: "the processor goes
//! back to sleep or is offered to another VM for a long time, and it causes
//! excessively high latencies"): a core spins while traffic flows, and sleeps once
//! the proxy has been idle for the window. Off (`sip.busy_poll_us = 0`) by default,
//! because the spinning costs CPU an operator may want for something else.
//!
//! How: one task yields in a loop while traffic was seen within the window. Tokio
//! polls its I/O driver with a zero timeout before it runs a yielded task again
//! (`tokio::task::yield_now`), so every socket's readiness is picked up at once and
//! the worker never parks. Receive paths call [`BusyPoll::touch`] once per batch or
//! read; once the window passes with no touch the task waits to be woken by one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

/// The spinning state shared by the receive paths and the polling task.
pub(crate) struct BusyPoll {
    window: Duration,
    /// Traffic since the polling task last looked.
    seen: AtomicBool,
    /// The polling task waits on `wake` (set before it checks `seen` one last time).
    parked: AtomicBool,
    wake: Notify,
}

impl BusyPoll {
    /// `None` when the window is zero: nothing spins and [`BusyPoll::touch`] is
    /// never called.
    pub(crate) fn new(window: Duration) -> Option<BusyPoll> {
        (!window.is_zero()).then(|| BusyPoll {
            window,
            seen: AtomicBool::new(false),
            parked: AtomicBool::new(true),
            wake: Notify::new(),
        })
    }

    /// Traffic arrived: keep (or start) spinning.
    ///
    /// `SeqCst` on both sides: this stores `seen` then loads `parked`, the task
    /// stores `parked` then loads `seen`; with weaker orderings both loads could
    /// see the old value and the wake-up would be lost until the next packet.
    pub(crate) fn touch(&self) {
        self.seen.store(true, Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }

    /// Spins while traffic flows, sleeps when the window passes idle; ends at
    /// shutdown.
    pub(crate) async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        loop {
            self.parked.store(true, Ordering::SeqCst);
            if !self.seen.swap(false, Ordering::SeqCst) {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = self.wake.notified() => {}
                }
            }
            self.parked.store(false, Ordering::SeqCst);
            let mut idle_since = Instant::now();
            loop {
                tokio::task::yield_now().await;
                if self.seen.swap(false, Ordering::SeqCst) {
                    idle_since = Instant::now();
                } else if idle_since.elapsed() >= self.window {
                    break;
                }
                if shutdown.has_changed().unwrap_or(true) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn zero_window_means_no_busy_polling() {
        assert!(BusyPoll::new(Duration::ZERO).is_none());
        assert!(BusyPoll::new(Duration::from_micros(1)).is_some());
    }

    /// The task spins after a touch, parks once the window passes idle, and a later
    /// touch wakes it again; shutdown ends it whether spinning or parked.
    #[tokio::test(flavor = "current_thread")]
    async fn spins_after_traffic_then_parks_and_wakes_again() {
        let bp = Arc::new(BusyPoll::new(Duration::from_millis(20)).expect("non-zero window"));
        let (stop, shutdown) = watch::channel(false);
        let task = tokio::spawn({
            let bp = bp.clone();
            async move { bp.run(shutdown).await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(bp.parked.load(Ordering::SeqCst), "no traffic yet: parked");

        bp.touch();
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        assert!(!bp.parked.load(Ordering::SeqCst), "traffic: spinning");

        let deadline = Instant::now() + Duration::from_secs(5);
        while !bp.parked.load(Ordering::SeqCst) && Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
        assert!(
            bp.parked.load(Ordering::SeqCst),
            "idle past the window: parked again"
        );

        bp.touch();
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        assert!(!bp.parked.load(Ordering::SeqCst), "woken by new traffic");

        stop.send(true).expect("task holds the receiver");
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("shutdown ends the task")
            .expect("task did not panic");
    }
}
