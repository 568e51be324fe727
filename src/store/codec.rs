//! How records are laid out in sled: keys, and values as a version byte followed by
//! the record's serde JSON, so a later build can tell old records from new ones.

use serde::{de::DeserializeOwned, Serialize};

use super::StoreError;
use crate::policy::Aor;

/// The version byte every value starts with. Bump it (and teach `decode` the old
/// layout) when a record's shape changes incompatibly.
pub const RECORD_VERSION: u8 = 1;

/// The schema version of the whole data directory, stored in the `meta` tree.
pub const SCHEMA_VERSION: u32 = 1;

pub const TREE_META: &str = "meta";
pub const TREE_ORG: &str = "org";
pub const TREE_USERS: &str = "users";
pub const TREE_PENDING: &str = "pending";
pub const TREE_ACCOUNTS: &str = "accounts";

pub const KEY_SCHEMA: &[u8] = b"schema";
pub const KEY_ORG: &[u8] = b"org";

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![RECORD_VERSION];
    // Serializing our own model types to JSON cannot fail: no maps with non-string
    // keys, no custom serializers that error.
    if let Err(e) = serde_json::to_writer(&mut out, value) {
        tracing::error!(error = %e, "record failed to serialize");
    }
    out
}

pub fn decode<T: DeserializeOwned>(tree: &str, bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&RECORD_VERSION, body)) => {
            serde_json::from_slice(body).map_err(|e| StoreError::Corrupt {
                tree: tree.to_string(),
                reason: e.to_string(),
            })
        }
        Some((v, _)) => Err(StoreError::Corrupt {
            tree: tree.to_string(),
            reason: format!(
                "record version {v} is not understood by this build (it reads {RECORD_VERSION})"
            ),
        }),
        None => Err(StoreError::Corrupt {
            tree: tree.to_string(),
            reason: "empty record".to_string(),
        }),
    }
}

/// Pending requests are keyed `owner NUL watcher`, so one owner's are adjacent.
pub fn pending_key(owner: &Aor, watcher: &Aor) -> Vec<u8> {
    let mut k = Vec::with_capacity(owner.as_str().len() + watcher.as_str().len() + 1);
    k.extend_from_slice(owner.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(watcher.as_str().as_bytes());
    k
}
