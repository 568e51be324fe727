//! Real-time scheduling for the threads that carry SIP (`sip.realtime_priority`).
//!
//! Why: under the kernel's fair scheduler any other runnable task on the proxy's
//! core takes turns with it, and a turn is milliseconds long. On the benchmark VM
//! the kernel's own `kdamond.0` (DAMON) preempted the proxy for up to 11 ms at a
//! time, which set the added p99 latency at half load (4–15 ms; BENCHMARKS.md
//! "Latency"). A `SCHED_FIFO` thread is only preempted by a higher real-time
//! priority. Kamailio offers the same knob (`rt_prio`, `rt_policy`).
//!
//! Only the runtime's worker threads, which run every receive loop, get it: they
//! set it on themselves the first time they park (tokio calls that hook on
//! workers only). `SCHED_RESET_ON_FORK` keeps it from passing to the threads they
//! start, so tokio's blocking pool (disk flushes, password hashing) and sled's
//! threads stay under the fair scheduler and can never hold a worker's core.
//! The kernel's real-time throttling (`sched_rt_runtime_us`, 95 % by default)
//! still leaves the rest of the system a share if a worker ever ran away; for the
//! same reason busy polling and a real-time priority are refused together
//! (`config`): a spinning real-time thread runs into that throttle and is then
//! stopped for the rest of the period.

use std::cell::Cell;
use std::io;

/// Highest `SCHED_FIFO` priority Linux accepts.
pub const MAX_PRIORITY: u8 = 99;

/// Puts the calling thread under `SCHED_FIFO` at `priority` (1..=99), reset to
/// the default policy in any thread or process it starts.
pub fn set_current_thread(priority: u8) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: plain system call; pid 0 is the calling thread, `param` lives
    // across the call and is only read.
    let r = unsafe {
        libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param)
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether this process may use `priority`: tried on a short-lived thread, so a
/// refusal (no `CAP_SYS_NICE`, `RLIMIT_RTPRIO` too low) is reported before the
/// proxy starts instead of by every worker.
pub fn check(priority: u8) -> io::Result<()> {
    std::thread::spawn(move || set_current_thread(priority))
        .join()
        .map_err(|_| io::Error::other("the probe thread panicked"))?
}

thread_local! {
    static DONE: Cell<bool> = const { Cell::new(false) };
}

/// The worker-park hook: the first call on each worker thread raises it.
pub fn on_worker_park(priority: u8) {
    if DONE.with(|d| d.replace(true)) {
        return;
    }
    if let Err(e) = set_current_thread(priority) {
        tracing::warn!(priority, error = %e, "worker thread keeps the default scheduling policy");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the calling thread's policy, without the reset-on-fork flag.
    fn policy() -> i32 {
        // SAFETY: plain system call on the calling thread.
        unsafe { libc::sched_getscheduler(0) & !libc::SCHED_RESET_ON_FORK }
    }

    /// Where the test runs with the privilege (as root here, and in CI): the
    /// thread gets FIFO, and a thread it starts does not.
    #[test]
    fn fifo_for_the_thread_and_not_for_what_it_starts() {
        if check(1).is_err() {
            // Without CAP_SYS_NICE the refusal is what must be reported.
            let e = check(1).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
            return;
        }
        let (mine, child) = std::thread::spawn(|| {
            set_current_thread(1).unwrap();
            let child = std::thread::spawn(policy).join().unwrap();
            (policy(), child)
        })
        .join()
        .unwrap();
        assert_eq!(mine, libc::SCHED_FIFO);
        assert_eq!(child, libc::SCHED_OTHER);
    }

    #[test]
    fn an_out_of_range_priority_is_refused() {
        assert!(check(MAX_PRIORITY + 1).is_err());
    }
}
