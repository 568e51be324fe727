//! The policy document (JSON, version 1): import, export, backups, test fixtures.

use serde::{Deserialize, Serialize};

use super::model::{Org, UserPolicy};

/// The whole policy set. `version` is 1; anything else is refused on import.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    pub version: u32,
    #[serde(default)]
    pub org: Org,
    #[serde(default)]
    pub users: Vec<UserPolicy>,
}

impl PolicyDocument {
    pub const VERSION: u32 = 1;
}
