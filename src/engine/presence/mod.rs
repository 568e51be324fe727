//! Presence enforcement (DESIGN.md "The engine", Presence enforcement): every
//! privacy decision becomes a transformation of the NOTIFYs of a subscription
//! dialog, a gated MESSAGE, or a NOTIFY the proxy originates.

pub mod coalesce;
pub mod cseq;
pub mod dialogs;
pub mod identity;
pub mod retransmit;
pub mod view;
pub mod wheel;
