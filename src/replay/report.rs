//! The replay's decision report: one JSON line per SIP message in capture order
//! (issue 6: `time`, `direction`, `method` or `status`, `call_id`, `watcher`,
//! `owner`, `decision`, `rule`, `action`, and `reason` when dropped or refused),
//! and the summary table printed at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write;

use serde::Serialize;

use super::capture::{CaptureStats, CapturedMessage};
use super::framing::{self, StartLine};
use crate::engine::{Direction, Handled, Outcome};
use crate::policy::Decision;

/// Watcher/owner pairs listed by name in the summary; the rest are counted.
const MAX_LISTED: usize = 50;

/// One line of REPORT.json.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportLine {
    /// Seconds since the Unix epoch, capture clock.
    pub time: f64,
    pub direction: Direction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub call_id: Option<String>,
    pub watcher: Option<String>,
    pub owner: Option<String>,
    pub decision: Option<Decision>,
    pub rule: Option<&'static str>,
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ReportLine {
    /// The line for a captured message and what the engine did with it.
    pub fn new(msg: &CapturedMessage, outcome: &Outcome) -> ReportLine {
        let (method, status) = match StartLine::of(&msg.data) {
            Some(StartLine::Request(m)) => (Some(m.to_string()), None),
            Some(StartLine::Response(s)) => (None, Some(s)),
            None => (None, None),
        };
        let call_id = framing::header(&msg.data, "call-id", Some("i"))
            .map(|v| String::from_utf8_lossy(v).into_owned());
        let reason = match outcome.action {
            Handled::Dropped | Handled::Refused => Some(
                outcome
                    .reason
                    .clone()
                    .unwrap_or_else(|| "no reason given".to_string()),
            ),
            _ => None,
        };
        ReportLine {
            time: msg.time_us as f64 / 1e6,
            direction: outcome.direction,
            method,
            status,
            call_id,
            watcher: outcome.watcher.as_ref().map(ToString::to_string),
            owner: outcome.owner.as_ref().map(ToString::to_string),
            decision: outcome.decision,
            rule: outcome.rule.map(|r| r.as_str()),
            action: outcome.action.as_str(),
            reason,
        }
    }
}

/// Writes report lines as JSON Lines.
pub struct ReportWriter<W: Write> {
    out: W,
}

impl<W: Write> ReportWriter<W> {
    pub fn new(out: W) -> Self {
        ReportWriter { out }
    }

    pub fn write(&mut self, line: &ReportLine) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, line)?;
        self.out.write_all(b"\n")
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Counts for the terminal summary.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub messages: u64,
    pub by_action: BTreeMap<&'static str, u64>,
    pub by_decision: BTreeMap<&'static str, u64>,
    /// (watcher, owner) pairs that would have been blocked / held pending.
    pub blocked: BTreeSet<(String, String)>,
    pub held: BTreeSet<(String, String)>,
    /// Pairs beyond [`MAX_LISTED`], counted only (keeps memory bounded).
    pub blocked_more: u64,
    pub held_more: u64,
    /// Messages the replay did not feed to the engine, by why.
    pub skipped: BTreeMap<&'static str, u64>,
}

impl Summary {
    pub fn add(&mut self, line: &ReportLine) {
        self.messages += 1;
        *self.by_action.entry(line.action).or_default() += 1;
        let decision = line.decision.map_or("none", Decision::as_str);
        *self.by_decision.entry(decision).or_default() += 1;
        if let (Some(w), Some(o)) = (&line.watcher, &line.owner) {
            let (set, more) = match line.decision {
                Some(Decision::Block) => (&mut self.blocked, &mut self.blocked_more),
                Some(Decision::Pending) => (&mut self.held, &mut self.held_more),
                _ => return,
            };
            let pair = (w.clone(), o.clone());
            if !set.contains(&pair) {
                if set.len() < MAX_LISTED {
                    set.insert(pair);
                } else {
                    *more += 1;
                }
            }
        }
    }

    pub fn skip(&mut self, why: &'static str) {
        *self.skipped.entry(why).or_default() += 1;
    }

    /// The table printed at the end of a replay.
    pub fn render(&self, capture: &CaptureStats) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{:<28}{:>10}", "SIP messages replayed", self.messages);
        for (k, v) in &self.by_action {
            let _ = writeln!(s, "  {:<26}{:>10}", k, v);
        }
        let _ = writeln!(s, "{:<28}", "decisions");
        for (k, v) in &self.by_decision {
            let _ = writeln!(s, "  {:<26}{:>10}", k, v);
        }
        for (k, v) in &self.skipped {
            let _ = writeln!(s, "{:<28}{:>10}", format!("not replayed: {k}"), v);
        }
        let t = &capture.tcp;
        let rows: [(&str, u64); 12] = [
            ("packets read", capture.packets),
            ("non-SIP datagrams", capture.non_sip_datagrams),
            (
                "not IP / unknown link",
                capture.not_ip + capture.unsupported_link,
            ),
            ("malformed packets", capture.malformed),
            ("other IP protocols", capture.other_protocol),
            ("IP fragments (reassembled)", capture.fragments),
            ("  datagrams lost", capture.fragments_lost),
            ("TCP retransmitted segments", t.retransmitted_segments),
            ("TCP out-of-order segments", t.out_of_order_segments),
            ("TCP gaps (bytes lost)", t.gaps),
            (
                "TCP bytes skipped to resync",
                t.resync_bytes + t.unfinished_bytes,
            ),
            ("keep-alives", capture.udp_keepalives + t.keepalives),
        ];
        for (k, v) in rows {
            if v > 0 || k == "packets read" {
                let _ = writeln!(s, "{:<28}{:>10}", k, v);
            }
        }
        list(&mut s, "would be blocked", &self.blocked, self.blocked_more);
        list(&mut s, "would be held pending", &self.held, self.held_more);
        s
    }
}

fn list(s: &mut String, title: &str, pairs: &BTreeSet<(String, String)>, more: u64) {
    if pairs.is_empty() {
        return;
    }
    let _ = writeln!(s, "watchers who {title}:");
    for (w, o) in pairs {
        let _ = writeln!(s, "  {w} -> {o}");
    }
    if more > 0 {
        let _ = writeln!(s, "  ... and {more} more");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Transport;
    use crate::policy::{Aor, Rule};
    use bytes::Bytes;

    fn captured(first: &str) -> CapturedMessage {
        CapturedMessage {
            packet: 3,
            time_us: 1_700_000_000_250_000,
            src: "10.0.0.5:5062".parse().unwrap(),
            dst: "10.0.0.1:5060".parse().unwrap(),
            transport: Transport::Udp,
            data: Bytes::from(format!(
                "{first}\r\nCall-ID: c1@x\r\nContent-Length: 0\r\n\r\n"
            )),
            conn: None,
            linktype: 1,
        }
    }

    #[test]
    fn request_lines_have_exactly_the_issue_keys() {
        let mut o = Outcome::new(Direction::Upstream, Handled::Rewritten);
        o.watcher = Aor::parse("bob@example.com").ok();
        o.owner = Aor::parse("alice@example.com").ok();
        o.decision = Some(Decision::Block);
        o.rule = Some(Rule::UserException);
        let line = ReportLine::new(&captured("NOTIFY sip:bob@10.0.0.5 SIP/2.0"), &o);
        let v: serde_json::Value = serde_json::to_value(&line).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "action",
                "call_id",
                "decision",
                "direction",
                "method",
                "owner",
                "rule",
                "time",
                "watcher"
            ]
        );
        assert_eq!(v["time"], 1_700_000_000.25);
        assert_eq!(v["direction"], "upstream");
        assert_eq!(v["decision"], "block");
        assert_eq!(v["rule"], "user-exception");
        assert_eq!(v["action"], "rewritten");
        assert_eq!(v["call_id"], "c1@x");
        let mut summary = Summary::default();
        summary.add(&line);
        assert!(summary
            .render(&CaptureStats::default())
            .contains("bob@example.com -> alice@example.com"));
    }

    #[test]
    fn responses_carry_status_and_refusals_a_reason() {
        let o = Outcome::new(Direction::Downstream, Handled::Dropped).because("no Via");
        let line = ReportLine::new(&captured("SIP/2.0 200 OK"), &o);
        let v: serde_json::Value = serde_json::to_value(&line).unwrap();
        assert_eq!(v["status"], 200);
        assert!(v.get("method").is_none());
        assert_eq!(v["reason"], "no Via");
        assert_eq!(v["decision"], serde_json::Value::Null);
        assert_eq!(v["watcher"], serde_json::Value::Null);
    }
}
