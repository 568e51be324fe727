//! The policy document (JSON, version 1): import, export, backups, test fixtures.
//!
//! [`PolicyDocument::from_json`] reads a document field by field instead of in one
//! serde call, so that one bad entry does not hide the others: it reports EVERY
//! error, syntax and meaning alike, each with its JSON path
//! (`users[3].exceptions.users[0].aor`).

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::aor::{Aor, Domain};
use super::change::ValidationError;
use super::model::{
    ClassOfService, Contact, DefaultExternal, DomainException, Exceptions, Org, UserException,
    UserPolicy,
};
use super::validate;

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

    /// Parses and validates a document. On error, every problem found, each with
    /// its JSON path; nothing is half-accepted.
    pub fn from_json(text: &str) -> Result<PolicyDocument, Vec<ValidationError>> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            vec![ValidationError::new(
                "$",
                format!(
                    "not valid JSON (line {}, column {}): {e}",
                    e.line(),
                    e.column()
                ),
            )]
        })?;
        let mut r = Reader::default();
        let parsed = r.document(&value);
        let mut errors = r.errors;
        if let Some((version, org, users)) = parsed {
            // Meaning checks run on whatever parsed, so they are reported alongside
            // the syntax errors of other entries.
            errors.extend(validate::validate_org(&org, "org"));
            errors.extend(validate::validate_users(
                &org,
                users.iter().map(|(i, u)| (*i, u)),
            ));
            if errors.is_empty() {
                let users = users.into_iter().map(|(_, u)| u).collect();
                return Ok(PolicyDocument {
                    version,
                    org,
                    users,
                });
            }
        }
        Err(errors)
    }

    /// The document as pretty JSON (what `policy export` writes).
    pub fn to_json_pretty(&self) -> String {
        // Serializing the model cannot fail (string keys, plain values).
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Walks a JSON value, collecting errors with paths.
#[derive(Default)]
struct Reader {
    errors: Vec<ValidationError>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl Reader {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ValidationError::new(path, message));
    }

    fn object<'v>(
        &mut self,
        v: &'v Value,
        path: &str,
        allowed: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Some(obj) = v.as_object() else {
            self.err(
                if path.is_empty() { "$" } else { path },
                "expected a JSON object",
            );
            return None;
        };
        for k in obj.keys() {
            if !allowed.contains(&k.as_str()) {
                self.err(
                    join(path, k),
                    format!(
                        "unknown field `{k}` (expected one of: {})",
                        allowed.join(", ")
                    ),
                );
            }
        }
        Some(obj)
    }

    /// One field through serde, its error reported at `path.key`.
    fn field<T: DeserializeOwned>(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<T> {
        let v = obj.get(key)?;
        match serde_json::from_value::<T>(v.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                self.err(join(path, key), e.to_string());
                None
            }
        }
    }

    fn required<T: DeserializeOwned>(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<T> {
        if !obj.contains_key(key) {
            self.err(join(path, key), format!("missing field `{key}`"));
            return None;
        }
        self.field(obj, path, key)
    }

    /// A list whose elements are read one by one, so each bad one has its index.
    fn list<T>(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        key: &str,
        mut item: impl FnMut(&mut Self, &Value, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        let v = obj.get(key)?;
        let p = join(path, key);
        let Some(arr) = v.as_array() else {
            self.err(p, "expected a JSON array");
            return None;
        };
        // The elements that parsed; the others have left their errors.
        Some(
            arr.iter()
                .enumerate()
                .filter_map(|(i, e)| item(self, e, &format!("{p}[{i}]")))
                .collect(),
        )
    }

    fn scalar<T: DeserializeOwned>(&mut self, v: &Value, path: &str) -> Option<T> {
        match serde_json::from_value::<T>(v.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                self.err(path, e.to_string());
                None
            }
        }
    }

    /// The version, the org and the users whose `aor` parsed (with their index).
    /// Entries with errors are kept as far as they parsed; the errors are in `self`.
    #[allow(clippy::type_complexity)]
    fn document(&mut self, v: &Value) -> Option<(u32, Org, Vec<(usize, UserPolicy)>)> {
        let obj = self.object(v, "", &["version", "org", "users"])?;
        let version: Option<u32> = self.required(obj, "", "version");
        if let Some(ver) = version {
            if ver != PolicyDocument::VERSION {
                self.err(
                    "version",
                    format!(
                        "unsupported policy document version {ver} (this build reads {})",
                        PolicyDocument::VERSION
                    ),
                );
            }
        }
        let org = match obj.get("org") {
            Some(o) => self.org(o, "org").unwrap_or_default(),
            None => Org::default(),
        };
        let mut users = Vec::new();
        if let Some(list) = obj.get("users") {
            match list.as_array() {
                Some(arr) => {
                    for (i, u) in arr.iter().enumerate() {
                        if let Some(u) = self.user(u, &format!("users[{i}]")) {
                            users.push((i, u));
                        }
                    }
                }
                None => self.err("users", "expected a JSON array"),
            }
        }
        Some((version.unwrap_or(PolicyDocument::VERSION), org, users))
    }

    fn org(&mut self, v: &Value, path: &str) -> Option<Org> {
        let obj = self.object(
            v,
            path,
            &[
                "local_domains",
                "federated_domains",
                "blocked_users",
                "blocked_domains",
                "classes",
                "pending_view",
                "pending_timeout_s",
            ],
        )?;
        let mut org = Org::default();
        let domain = |r: &mut Self, v: &Value, p: &str| r.scalar::<Domain>(v, p);
        if let Some(l) = self.list(obj, path, "local_domains", domain) {
            org.local_domains = l;
        }
        if let Some(l) = self.list(obj, path, "federated_domains", domain) {
            org.federated_domains = l;
        }
        if let Some(l) = self.list(obj, path, "blocked_users", |r, v, p| r.scalar::<Aor>(v, p)) {
            org.blocked_users = l;
        }
        if let Some(l) = self.list(obj, path, "blocked_domains", domain) {
            org.blocked_domains = l;
        }
        if let Some(c) = obj.get("classes") {
            let cp = join(path, "classes");
            match c.as_object() {
                Some(map) => {
                    let mut classes = BTreeMap::new();
                    for (name, cv) in map {
                        if let Some(class) = self.class(cv, &format!("{cp}.{name}")) {
                            classes.insert(name.clone(), class);
                        }
                    }
                    org.classes = classes;
                }
                None => self.err(cp, "expected a JSON object of classes by name"),
            }
        }
        if let Some(pv) = self.field(obj, path, "pending_view") {
            org.pending_view = pv;
        }
        if let Some(t) = self.field(obj, path, "pending_timeout_s") {
            org.pending_timeout_s = t;
        }
        Some(org)
    }

    fn class(&mut self, v: &Value, path: &str) -> Option<ClassOfService> {
        let obj = self.object(v, path, &["auto_authorize", "contact_limit"])?;
        let before = self.errors.len();
        let mut c = ClassOfService::default();
        if let Some(a) = self.field(obj, path, "auto_authorize") {
            c.auto_authorize = a;
        }
        if let Some(l) = self.field(obj, path, "contact_limit") {
            c.contact_limit = l;
        }
        (self.errors.len() == before).then_some(c)
    }

    fn user(&mut self, v: &Value, path: &str) -> Option<UserPolicy> {
        let obj = self.object(
            v,
            path,
            &[
                "aor",
                "class",
                "default_internal",
                "default_external",
                "exceptions",
                "contacts",
                "refresh_interval_s",
            ],
        )?;
        let aor: Option<Aor> = self.required(obj, path, "aor");
        let mut u = UserPolicy::new(aor.clone().unwrap_or_else(Aor::anonymous));
        if let Some(c) = self.field(obj, path, "class") {
            u.class = c;
        }
        if let Some(d) = self.field(obj, path, "default_internal") {
            u.default_internal = d;
        }
        match obj.get("default_external") {
            Some(Value::String(s)) if s.eq_ignore_ascii_case("allow") => {
                self.errors.push(validate::external_default_allow(&join(
                    path,
                    "default_external",
                )));
            }
            Some(_) => {
                if let Some(d) = self.field::<DefaultExternal>(obj, path, "default_external") {
                    u.default_external = d;
                }
            }
            None => {}
        }
        if let Some(e) = obj.get("exceptions") {
            if let Some(e) = self.exceptions(e, &join(path, "exceptions")) {
                u.exceptions = e;
            }
        }
        if let Some(c) = self.list(obj, path, "contacts", |r, v, p| {
            let o = r.object(v, p, &["aor", "name", "learned"])?;
            let aor = r.required(o, p, "aor");
            let name = r.field::<Option<String>>(o, p, "name").flatten();
            let learned = r.field(o, p, "learned").unwrap_or(false);
            Some(Contact {
                aor: aor?,
                name,
                learned,
            })
        }) {
            u.contacts = c;
        }
        if let Some(s) = self.field(obj, path, "refresh_interval_s") {
            u.refresh_interval_s = s;
        }
        // Without its AoR the entry cannot be checked further; otherwise keep what
        // parsed for the meaning checks.
        aor.map(|_| u)
    }

    fn exceptions(&mut self, v: &Value, path: &str) -> Option<Exceptions> {
        let obj = self.object(v, path, &["users", "domains"])?;
        let users = self.list(obj, path, "users", |r, v, p| {
            let o = r.object(v, p, &["aor", "action"])?;
            let aor = r.required(o, p, "aor");
            let action = r.required(o, p, "action");
            Some(UserException {
                aor: aor?,
                action: action?,
            })
        });
        let domains = self.list(obj, path, "domains", |r, v, p| {
            let o = r.object(v, p, &["domain", "action"])?;
            let domain = r.required(o, p, "domain");
            let action = r.required(o, p, "action");
            Some(DomainException {
                domain: domain?,
                action: action?,
            })
        });
        Some(Exceptions {
            users: users.unwrap_or_default(),
            domains: domains.unwrap_or_default(),
        })
    }
}
