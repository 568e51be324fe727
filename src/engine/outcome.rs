//! What the engine did with one message: the replay report's row, the metrics'
//! labels and the debug log's fields.

use serde::Serialize;

use crate::policy::{Aor, Decision, Rule};

/// Which way a message travels: `downstream` phone→upstream, `upstream`
/// upstream→phone (the replay report's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Downstream,
    Upstream,
}

/// What happened to the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Handled {
    /// Sent on with only the routing headers changed.
    Forwarded,
    /// Sent on with its body or Subscription-State changed by the policy.
    Rewritten,
    /// Answered by the proxy itself (winfo, a swallowed NOTIFY, a gated MESSAGE).
    Answered,
    /// Refused with an error response (400, 482, 483 ...).
    Refused,
    /// Nothing sent (malformed response, unroutable ...).
    Dropped,
}

impl Handled {
    pub fn as_str(self) -> &'static str {
        match self {
            Handled::Forwarded => "forwarded",
            Handled::Rewritten => "rewritten",
            Handled::Answered => "answered",
            Handled::Refused => "refused",
            Handled::Dropped => "dropped",
        }
    }
}

/// The engine's account of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub direction: Direction,
    pub action: Handled,
    pub watcher: Option<Aor>,
    pub owner: Option<Aor>,
    pub decision: Option<Decision>,
    pub rule: Option<Rule>,
    /// Why it was refused or dropped.
    pub reason: Option<String>,
}

impl Outcome {
    pub fn new(direction: Direction, action: Handled) -> Self {
        Outcome {
            direction,
            action,
            watcher: None,
            owner: None,
            decision: None,
            rule: None,
            reason: None,
        }
    }

    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}
