//! Result lines (JSON, one per run) and the comparison table built from them.

use std::collections::BTreeSet;
use std::path::Path;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::flows::{Stats, LEGS};
use crate::procstat::Cpu;

pub struct RunInfo<'a> {
    pub kind: &'a str,
    pub phase: &'a str,
    pub round: u32,
    pub transport: &'a str,
    pub window: usize,
    pub rate: f64,
    pub count: u64,
    pub proxied: bool,
    pub st: &'a Stats,
    pub cpu: Cpu,
    pub own_cpu_ns: u64,
    pub mem_before: (u64, u64),
    pub mem_after: (u64, u64),
    pub nprocs: usize,
}

fn lat(h: &Histogram<u64>) -> Value {
    let us = |v: u64| v as f64 / 1000.0;
    json!({
        "n": h.len(),
        "p50": us(h.value_at_quantile(0.50)),
        "p99": us(h.value_at_quantile(0.99)),
        "p999": us(h.value_at_quantile(0.999)),
        "max": us(h.max()),
        "mean": h.mean() / 1000.0,
    })
}

pub fn result_json(r: &RunInfo) -> Value {
    let st = r.st;
    let secs = st.elapsed.as_secs_f64().max(1e-9);
    let fwd = if r.proxied { st.msgs_in } else { 0 };
    let errors = st.bad_status
        + st.mismatches
        + st.unparsable
        + st.unexpected
        + st.send_errors
        + st.tcp_errors;
    let mut lat_legs = serde_json::Map::new();
    lat_legs.insert("all".into(), lat(&st.all));
    for (i, name) in LEGS.iter().enumerate() {
        lat_legs.insert((*name).into(), lat(&st.legs[i]));
    }
    let ticks = r.cpu.utime + r.cpu.stime;
    json!({
        "kind": r.kind, "phase": r.phase, "round": r.round, "transport": r.transport,
        "window": r.window, "rate": r.rate, "count": r.count,
        "started": st.started, "completed": st.completed, "timeouts": st.timeouts, "errors": errors,
        "mismatches": st.mismatches, "bad_status": st.bad_status, "unparsable": st.unparsable,
        "unexpected": st.unexpected, "late": st.late, "duplicates": st.duplicates,
        "send_errors": st.send_errors, "tcp_errors": st.tcp_errors,
        "closed_seen": st.closed_seen, "open_seen": st.open_seen,
        "elapsed_s": secs, "flows_per_s": st.completed as f64 / secs,
        "msgs_in": st.msgs_in, "fwd_msgs": fwd, "fwd_msgs_per_s": fwd as f64 / secs,
        "proxy_nprocs": r.nprocs,
        "proxy_cpu_ms": r.cpu.ns as f64 / 1e6,
        "proxy_cpu_util": r.cpu.ns as f64 / 1e9 / secs,
        "proxy_us_per_msg": if fwd > 0 && r.nprocs > 0 { r.cpu.ns as f64 / 1000.0 / fwd as f64 } else { 0.0 },
        "proxy_user_frac": if ticks > 0 { r.cpu.utime as f64 / ticks as f64 } else { 0.0 },
        "harness_cpu_util": r.own_cpu_ns as f64 / 1e9 / secs,
        "harness_us_per_flow": r.own_cpu_ns as f64 / 1000.0 / st.completed.max(1) as f64,
        "syscalls_per_flow": st.syscalls as f64 / st.completed.max(1) as f64,
        "pss_kb_before": r.mem_before.0, "pss_kb_after": r.mem_after.0,
        "rss_kb_before": r.mem_before.1, "rss_kb_after": r.mem_after.1,
        "lat_us": Value::Object(lat_legs),
    })
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(0.0)
}

pub fn summary_line(v: &Value) -> String {
    let l = &v["lat_us"]["all"];
    format!(
        "{} {} {} r{}: {}/{} flows in {:.2}s = {:.0} flows/s ({:.0} fwd msg/s); timeouts {} errors {} (mismatch {}, closed {}, open {}); \
         proxy cpu {:.0}% {:.2} us/msg; harness cpu {:.0}% {:.1} us/flow; lat p50 {:.0} p99 {:.0} p99.9 {:.0} us; pss {}->{} kB",
        v["kind"].as_str().unwrap_or("?"),
        v["transport"].as_str().unwrap_or("?"),
        v["phase"].as_str().unwrap_or("?"),
        v["round"],
        v["completed"],
        v["started"],
        f(v, "elapsed_s"),
        f(v, "flows_per_s"),
        f(v, "fwd_msgs_per_s"),
        v["timeouts"],
        v["errors"],
        v["mismatches"],
        v["closed_seen"],
        v["open_seen"],
        100.0 * f(v, "proxy_cpu_util"),
        f(v, "proxy_us_per_msg"),
        100.0 * f(v, "harness_cpu_util"),
        f(v, "harness_us_per_flow"),
        f(l, "p50"),
        f(l, "p99"),
        f(l, "p999"),
        v["pss_kb_before"],
        v["pss_kb_after"],
    )
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

const PP: &str = "presence-proxy";
const KAM: &str = "kamailio";

/// Median over rounds of one number of the runs of (kind, transport, phase).
struct Runs<'a>(&'a [Value]);

impl Runs<'_> {
    fn med(&self, kind: &str, tr: &str, phase: &str, get: impl Fn(&Value) -> f64) -> Option<f64> {
        median(
            self.0
                .iter()
                .filter(|v| v["kind"] == kind && v["transport"] == tr && v["phase"] == phase)
                .map(get)
                .collect(),
        )
    }
    fn sum(&self, kind: &str, tr: &str, key: &str) -> u64 {
        self.0
            .iter()
            .filter(|v| v["kind"] == kind && v["transport"] == tr)
            .map(|v| v[key].as_u64().unwrap_or(0))
            .sum()
    }
}

/// Prints the table of issue 7 for each transport that has runs.
pub fn table(file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)?;
    let runs: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let r = Runs(&runs);
    let transports: BTreeSet<&str> = runs
        .iter()
        .filter_map(|v| v["transport"].as_str())
        .collect();
    // UDP first: it is the transport the goals are stated for.
    for tr in ["udp", "tcp"]
        .into_iter()
        .filter(|t| transports.contains(t))
    {
        let rounds = runs
            .iter()
            .filter(|v| v["transport"] == tr && v["phase"] == "sat")
            .count()
            / 2;
        println!(
            "\n## {} (median of runs; saturation runs per proxy ≈ {})\n",
            tr.to_uppercase(),
            rounds.max(1)
        );
        println!("| metric | presence-proxy | Kamailio 5.6 -x tlsf | ratio pp/kam |");
        println!("| --- | ---: | ---: | ---: |");
        let row = |name: &str, pp: Option<f64>, kam: Option<f64>, prec: usize| {
            let fmt = |x: Option<f64>| {
                x.map(|x| format!("{x:.prec$}"))
                    .unwrap_or_else(|| "-".into())
            };
            let ratio = match (pp, kam) {
                (Some(a), Some(b)) if b != 0.0 => format!("{:.2}", a / b),
                _ => "-".into(),
            };
            println!("| {name} | {} | {} | {ratio} |", fmt(pp), fmt(kam));
        };
        let both = |phase: &str, get: &dyn Fn(&Value) -> f64| {
            (r.med(PP, tr, phase, get), r.med(KAM, tr, phase, get))
        };
        let (a, b) = both("sat", &|v| f(v, "flows_per_s"));
        row("flows/s at saturation (4 msgs each)", a, b, 0);
        let (a, b) = both("sat", &|v| f(v, "fwd_msgs_per_s"));
        row("forwarded msgs/s at saturation", a, b, 0);
        let (a, b) = both("sat", &|v| 100.0 * f(v, "proxy_cpu_util"));
        row("proxy CPU % of its core at saturation", a, b, 0);
        let (a, b) = both("sat", &|v| f(v, "proxy_us_per_msg"));
        row("proxy CPU µs per forwarded message (saturation)", a, b, 2);
        // The split shows the floor under the CPU goal: the kernel part is the
        // socket and loopback path every proxy pays, whatever its own code costs.
        let (a, b) = both("sat", &|v| {
            f(v, "proxy_us_per_msg") * (1.0 - f(v, "proxy_user_frac"))
        });
        row("  of which in the kernel (system time)", a, b, 2);
        let (a, b) = both("sat", &|v| {
            f(v, "proxy_us_per_msg") * f(v, "proxy_user_frac")
        });
        row("  of which in the proxy's own code (user time)", a, b, 2);
        let (a, b) = both("lat", &|v| f(v, "proxy_us_per_msg"));
        row("proxy CPU µs per forwarded message (50 % load)", a, b, 2);
        let (a, b) = both("sat", &|v| 1e6 / f(v, "proxy_us_per_msg").max(1e-9));
        row("forwarded msgs per proxy CPU-second", a, b, 0);
        let (a, b) = both("lat", &|v| f(v, "flows_per_s"));
        row("offered flows/s for the latency runs (50 %)", a, b, 0);
        for (q, key) in [("p50", "p50"), ("p99", "p99"), ("p99.9", "p999")] {
            let added = |kind: &str| {
                let with = r.med(kind, tr, "lat", |v| f(&v["lat_us"]["all"], key))?;
                let base = r
                    .med("direct", "udp", &format!("base-{kind}"), |v| {
                        f(&v["lat_us"]["all"], key)
                    })
                    .unwrap_or(0.0);
                Some(with - base)
            };
            row(
                &format!("added latency {q} µs per message (50 % load)"),
                added(PP),
                added(KAM),
                1,
            );
        }
        for (q, key) in [("p50", "p50"), ("p99", "p99"), ("p99.9", "p999")] {
            let (a, b) = both("lat", &|v| f(&v["lat_us"]["all"], key));
            row(
                &format!("  one-way latency {q} µs with proxy (raw)"),
                a,
                b,
                1,
            );
        }
        let (a, b) = both("mem", &|v| f(v, "pss_kb_after") / 1024.0);
        row(
            "proxy memory (PSS) MiB with the subscriptions active",
            a,
            b,
            1,
        );
        let (a, b) = both("mem", &|v| f(v, "completed"));
        row("  active subscriptions created in that run", a, b, 0);
        let (a, b) = both("mem", &|v| {
            (f(v, "pss_kb_after") - f(v, "pss_kb_before")) * 1024.0 / f(v, "completed").max(1.0)
        });
        row("  memory growth bytes per subscription", a, b, 0);
        let (a, b) = both("sat", &|v| 100.0 * f(v, "harness_cpu_util"));
        row("harness CPU % (its own core) at saturation", a, b, 0);
        for key in ["timeouts", "errors", "mismatches"] {
            row(
                &format!("{key} (all runs)"),
                Some(r.sum(PP, tr, key) as f64),
                Some(r.sum(KAM, tr, key) as f64),
                0,
            );
        }
    }
    Ok(())
}
