//! presence-proxy: an inline SIP/SIMPLE proxy that enforces each user's presence privacy.
//!
//! The crate is layered as `../shared/DESIGN.md` draws it; each module uses only the
//! layers below it:
//!
//! | layer   | modules                                   |
//! |---------|-------------------------------------------|
//! | drivers | [`transport`], [`replay`], [`cli`], `main` |
//! | web     | [`web`]                                   |
//! | engine  | [`engine`] (sans-IO: no sockets, no clock) |
//! | store   | [`store`]                                 |
//! | policy  | [`policy`] (pure)                         |
//! | wire    | [`sip`], [`pidf`]                         |

pub mod cli;
pub mod config;
pub mod engine;
pub mod pidf;
pub mod policy;
pub mod replay;
pub mod sip;
pub mod store;
pub mod transport;
pub mod web;
