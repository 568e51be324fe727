//! What a watcher is shown, from the decision and the org's pending view
//! (DESIGN.md "NOTIFY in such a dialog, by the current decision").

use crate::policy::{Decision, PendingView};

/// The three things a watcher can see of an owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    /// The notifier's NOTIFY as it came.
    Real,
    /// Polite block (RFC 5025): the Offline document, subscription otherwise as the notifier set it.
    Offline,
    /// `Subscription-State: pending` and no body: the watcher learns nothing.
    Held,
}

impl View {
    /// Allow → real; Block → Offline; Pending → the org's pending view.
    pub fn of(decision: Decision, pending: PendingView) -> View {
        match (decision, pending) {
            (Decision::Allow, _) => View::Real,
            (Decision::Block, _) => View::Offline,
            (Decision::Pending, PendingView::Hold) => View::Held,
            (Decision::Pending, PendingView::Offline) => View::Offline,
            (Decision::Pending, PendingView::Show) => View::Real,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            View::Real => "real",
            View::Offline => "offline",
            View::Held => "held",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_decision_and_pending_view() {
        for pv in [PendingView::Hold, PendingView::Offline, PendingView::Show] {
            assert_eq!(View::of(Decision::Allow, pv), View::Real);
            assert_eq!(View::of(Decision::Block, pv), View::Offline);
        }
        assert_eq!(View::of(Decision::Pending, PendingView::Hold), View::Held);
        assert_eq!(
            View::of(Decision::Pending, PendingView::Offline),
            View::Offline
        );
        assert_eq!(View::of(Decision::Pending, PendingView::Show), View::Real);
    }
}
