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
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: "127.0.0.1:8080".to_string(),
            idle_timeout_s: 1800,
            admin_token: None,
        }
    }
}
