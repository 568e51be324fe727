//! Reaching a running proxy's admin API from the command line.
//!
//! While a proxy holds the data directory (sled locks it), the `policy` and `user`
//! commands send their operation to that proxy instead. The proxy writes where it
//! listens and its admin token to `<data>/proxy.json` (mode 0600) once its HTTP
//! side is up, and removes the file on a clean shutdown.

use std::path::Path;

use anyhow::{anyhow, Context as _};

/// What a running proxy writes to `<data>/proxy.json`.
#[derive(Debug, serde::Deserialize)]
struct ProxyFile {
    http: String,
    admin_token: String,
}

/// The admin API of the proxy that holds a data directory.
pub struct AdminEndpoint {
    pub base: String,
    token: String,
    client: reqwest::blocking::Client,
}

impl AdminEndpoint {
    /// Reads `<data>/proxy.json`; an error says the directory is locked and why no
    /// proxy could be found for it.
    pub fn discover(data: &Path) -> anyhow::Result<AdminEndpoint> {
        let file = data.join("proxy.json");
        let text = std::fs::read_to_string(&file).map_err(|_| {
            anyhow!(
                "the data directory {} is in use by another process, and {} is missing: \
                 is a proxy running there? Stop it, or start it with its HTTP side",
                data.display(),
                file.display()
            )
        })?;
        let info: ProxyFile = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a proxy.json file", file.display()))?;
        let client = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .context("cannot build an HTTP client")?;
        let base = if info.http.contains("://") {
            info.http.trim_end_matches('/').to_string()
        } else {
            format!("http://{}", info.http)
        };
        Ok(AdminEndpoint {
            base,
            token: info.admin_token,
            client,
        })
    }

    /// A request to `path` (e.g. `/api/v1/admin/changes`) carrying the admin token.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::blocking::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// The error for a proxy that holds the directory but does not answer.
    pub fn unreachable(&self, e: reqwest::Error) -> anyhow::Error {
        anyhow!(
            "the data directory is locked (a proxy holds it) and no proxy answers at {}: {e}",
            self.base
        )
    }
}
