//! `/metrics` in the Prometheus text format (version 0.0.4): the web's own
//! counters (HTTP requests, sign-ins, sessions, store write latency) plus whatever
//! the proxy's [`MetricsSource`] renders (the engine's message, decision, rewrite,
//! subscription, refusal and drop counters).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;

/// Something that appends more metrics, already in the text format, to the page.
/// The proxy passes the engine's counters as one; a closure will do.
pub trait MetricsSource: Send + Sync + 'static {
    fn render(&self, out: &mut String);
}

impl<F> MetricsSource for F
where
    F: Fn(&mut String) + Send + Sync + 'static,
{
    fn render(&self, out: &mut String) {
        self(out)
    }
}

/// Upper bounds (seconds) of the store-latency histogram buckets.
const BUCKETS: [f64; 10] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0,
];

/// A cumulative histogram of durations, lock-free.
#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, le) in BUCKETS.iter().enumerate() {
            let n = self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {n}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// The web side's own counters.
#[derive(Default)]
pub struct WebMetrics {
    /// (route, method, status) → requests.
    http: DashMap<(String, String, u16), AtomicU64>,
    signin_ok: AtomicU64,
    signin_failed: AtomicU64,
    signin_locked: AtomicU64,
    store_write: Histogram,
}

/// How a sign-in attempt ended, for the counter's `result` label.
#[derive(Debug, Clone, Copy)]
pub enum SignInResult {
    Ok,
    Failed,
    Locked,
}

impl WebMetrics {
    pub fn http_request(&self, route: &str, method: &str, status: u16) {
        let key = (route.to_string(), method.to_string(), status);
        // A known series needs only the shard's read lock; `entry` takes the
        // write lock, so it is left for the first request of a series.
        if let Some(c) = self.http.get(&key) {
            c.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.http
            .entry(key)
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn signin(&self, result: SignInResult) {
        let c = match result {
            SignInResult::Ok => &self.signin_ok,
            SignInResult::Failed => &self.signin_failed,
            SignInResult::Locked => &self.signin_locked,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Time one acknowledged (flushed) store write took.
    pub fn store_write(&self, d: Duration) {
        self.store_write.observe(d);
    }

    /// The whole page: these counters, `sessions` live sessions, then `extra`.
    pub fn render(&self, sessions: usize, extra: Option<&dyn MetricsSource>) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP presence_proxy_http_requests_total HTTP requests by route, method and status.\n");
        out.push_str("# TYPE presence_proxy_http_requests_total counter\n");
        let mut rows: Vec<_> = self
            .http
            .iter()
            .map(|e| (e.key().clone(), e.value().load(Ordering::Relaxed)))
            .collect();
        rows.sort();
        for ((route, method, status), n) in rows {
            let _ = writeln!(
                out,
                "presence_proxy_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                escape_label(&route),
                escape_label(&method)
            );
        }
        out.push_str(
            "# HELP presence_proxy_signins_total User Options sign-in attempts by result.\n",
        );
        out.push_str("# TYPE presence_proxy_signins_total counter\n");
        for (label, c) in [
            ("ok", &self.signin_ok),
            ("failed", &self.signin_failed),
            ("locked", &self.signin_locked),
        ] {
            let _ = writeln!(
                out,
                "presence_proxy_signins_total{{result=\"{label}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP presence_proxy_web_sessions Signed-in User Options sessions.\n");
        out.push_str("# TYPE presence_proxy_web_sessions gauge\n");
        let _ = writeln!(out, "presence_proxy_web_sessions {sessions}");
        out.push_str("# HELP presence_proxy_store_write_seconds Time to validate, write and flush one change from the web.\n");
        out.push_str("# TYPE presence_proxy_store_write_seconds histogram\n");
        self.store_write
            .render(&mut out, "presence_proxy_store_write_seconds", "");
        if let Some(extra) = extra {
            extra.render(&mut out);
        }
        out
    }
}

/// Escapes a label value (backslash, double quote, newline).
pub fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_extra() {
        let m = WebMetrics::default();
        m.http_request("/api/v1/me/policy", "GET", 200);
        m.http_request("/api/v1/me/policy", "GET", 200);
        m.signin(SignInResult::Failed);
        m.store_write(Duration::from_micros(300));
        let extra = |out: &mut String| out.push_str("engine_x 7\n");
        let text = m.render(3, Some(&extra));
        assert!(text.contains(
            "presence_proxy_http_requests_total{route=\"/api/v1/me/policy\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains("presence_proxy_signins_total{result=\"failed\"} 1"));
        assert!(text.contains("presence_proxy_web_sessions 3"));
        assert!(text.contains("presence_proxy_store_write_seconds_bucket{le=\"0.00025\"} 0"));
        assert!(text.contains("presence_proxy_store_write_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("presence_proxy_store_write_seconds_count 1"));
        assert!(text.ends_with("engine_x 7\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\n"), "a\\\"b\\\\c\\n");
    }
}
