//! The privacy model: who may see an owner's presence. Pure: no SIP, no storage, no I/O.
//!
//! Everything the proxy enforces comes out of one function, [`decide`], whose
//! precedence is `../shared/DESIGN.md` "The privacy model", taken from the Cisco
//! Unified CM IM and Presence 9.0 User Options guide and the ShoreTel Communicator
//! IM Presence Privacy chapter (`../shared/seeds/`).

mod aor;
mod change;
mod decide;
mod document;
mod model;
pub mod validate;

pub use aor::{Aor, AorError, Domain};
pub use change::{Change, PolicySet, ValidationError};
pub use decide::{decide, decide_facts, decide_unnamed, Decision, OwnerFacts, Rule, Verdict};
pub use document::PolicyDocument;
pub use model::{
    Action, ClassOfService, Contact, DefaultExternal, DefaultInternal, DomainException, Exceptions,
    Org, PendingHow, PendingRequest, PendingState, PendingView, UserException, UserPolicy,
    REFRESH_RANGE,
};
