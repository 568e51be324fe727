//! The `[web]` section of the configuration file.

use serde::{Deserialize, Serialize};

/// Settings of the HTTP side. Every key has a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Where the User Options pages and the API listen.
    pub listen: String,
    /// Cisco User Options: "you will be automatically signed out of User Options
    /// after thirty minutes of inactivity".
    pub idle_timeout_s: u64,
    /// Bearer token for the admin API. When unset, the proxy generates one at start
    /// and writes it to the data directory for the command line.
    pub admin_token: Option<String>,
    /// Wrong passwords, per account and per client address, before sign-in is
    /// refused with 429 (guessing passwords must be slow).
    pub signin_max_failures: u32,
    /// How long a locked account or address stays locked, and the window in which
    /// failures are counted.
    pub signin_lockout_s: u64,
    /// Mark cookies `Secure`: set when the pages are served over TLS (by this
    /// process or by a TLS-terminating reverse proxy in front of it).
    pub cookie_secure: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: "127.0.0.1:8080".to_string(),
            idle_timeout_s: 1800,
            admin_token: None,
            signin_max_failures: 10,
            signin_lockout_s: 300,
            cookie_secure: false,
        }
    }
}
