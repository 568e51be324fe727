//! The User Options web interface, the REST and admin API, `/metrics` and
//! `/healthz` (axum, same process, own port).

pub mod config;

pub use config::WebConfig;
