//! `presence-proxy policy`: read and change privacy policies from the shell.
//!
//! The commands open the data directory's sled store directly. While a proxy runs,
//! sled's lock keeps them out; then they read `<data>/proxy.json` and send the same
//! operation to the proxy's admin API (`/work/brief/ADMIN_API.md`), so a change made
//! here reaches the live proxy's cache at once.
//!
//! Exit codes (`cli::exit`): 0 done, 2 usage, 3 invalid input (stderr says what and
//! where), 4 store failure.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use super::admin::AdminEndpoint;
use super::exit;
use crate::policy::{
    validate, Action, Aor, Change, DefaultExternal, DefaultInternal, Domain, PolicyDocument,
    ValidationError,
};
use crate::store::{SledStore, Store, StoreError};

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// The data directory (default: the config file's `[store] data`, else ./presence-data).
    #[arg(long, value_name = "DIR", global = true)]
    pub data: Option<PathBuf>,
    /// The configuration file (only its `[store] data` is used here).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Replace the whole policy set with a policy document (all or nothing).
    Import {
        /// A policy document, JSON version 1.
        file: PathBuf,
    },
    /// Write the whole policy set as a policy document (to stdout without FILE).
    Export { file: Option<PathBuf> },
    /// Say what WATCHER gets of OWNER's presence and which rule decided it.
    Explain {
        owner: String,
        watcher: String,
        /// One line of JSON: {"decision":"allow|block|pending","rule":"..."}.
        #[arg(long)]
        json: bool,
    },
    /// Set the owner's default for internal (allow|block) or external (block|ask) watchers.
    SetDefault {
        owner: String,
        which: Audience,
        value: String,
    },
    /// Add (or change) an exception: allow or block one user or a whole domain.
    Except {
        owner: String,
        kind: ExceptionKind,
        value: String,
        action: ActionArg,
    },
    /// Remove an exception.
    Unexcept {
        owner: String,
        kind: ExceptionKind,
        value: String,
    },
    /// Add or remove a contact on the owner's contact list.
    Contact {
        op: ContactOp,
        owner: String,
        aor: String,
        /// Alternate name (nickname) shown on clients.
        #[arg(long)]
        name: Option<String>,
    },
    /// Apply changes given as JSON lines (stdin without FILE or with `-`): each line
    /// one change or an array of changes applied all-or-nothing, in the admin API's
    /// form (`{"op":"add_contact",...}`). Prints `applied N` once line N is durable.
    Apply { file: Option<PathBuf> },
    /// The owner's answer to a pending request (stored as a user exception).
    Answer {
        owner: String,
        watcher: String,
        action: ActionArg,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Audience {
    Internal,
    External,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExceptionKind {
    User,
    Domain,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ContactOp {
    Add,
    Remove,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ActionArg {
    Allow,
    Block,
}

impl From<ActionArg> for Action {
    fn from(a: ActionArg) -> Action {
        match a {
            ActionArg::Allow => Action::Allow,
            ActionArg::Block => Action::Block,
        }
    }
}

/// Why a command failed, and so which exit code it ends with.
#[derive(Debug)]
enum Failure {
    Invalid(Vec<ValidationError>),
    Store(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Store(e)
    }
}

fn invalid(path: &str, message: impl Into<String>) -> Failure {
    Failure::Invalid(vec![ValidationError::new(path, message)])
}

pub fn main(args: PolicyArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(Failure::Invalid(errors)) => {
            for e in &errors {
                eprintln!("invalid: {}: {}", e.path, e.message);
            }
            ExitCode::from(exit::INVALID)
        }
        Err(Failure::Store(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::STORE)
        }
    }
}

fn run(args: PolicyArgs) -> Result<(), Failure> {
    let data =
        super::data_dir(args.data, args.config.as_deref()).map_err(|e| invalid("--config", e))?;
    // Check the arguments before touching the store, so bad input never waits on
    // or disturbs it.
    let op = Op::from_command(args.command)?;
    let target = Target::open(&data)?;
    op.run(&target)
}

/// A command with its arguments checked.
enum Op {
    Import(PolicyDocument),
    Export(Option<PathBuf>),
    Explain {
        owner: Aor,
        watcher: Aor,
        json: bool,
    },
    Apply(Change),
    ApplyLines(Option<PathBuf>),
}

fn aor_arg(s: &str, name: &str) -> Result<Aor, Failure> {
    validate::parse_aor(s, name).map_err(|e| Failure::Invalid(vec![e]))
}

fn domain_arg(s: &str, name: &str) -> Result<Domain, Failure> {
    validate::parse_domain(s, name).map_err(|e| Failure::Invalid(vec![e]))
}

impl Op {
    fn from_command(cmd: PolicyCommand) -> Result<Op, Failure> {
        Ok(match cmd {
            PolicyCommand::Import { file } => {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| invalid("FILE", format!("cannot read {}: {e}", file.display())))?;
                Op::Import(PolicyDocument::from_json(&text).map_err(Failure::Invalid)?)
            }
            PolicyCommand::Export { file } => Op::Export(file),
            PolicyCommand::Explain {
                owner,
                watcher,
                json,
            } => Op::Explain {
                owner: aor_arg(&owner, "OWNER")?,
                watcher: aor_arg(&watcher, "WATCHER")?,
                json,
            },
            PolicyCommand::SetDefault {
                owner,
                which,
                value,
            } => {
                let owner = aor_arg(&owner, "OWNER")?;
                let v = value.to_ascii_lowercase();
                match which {
                    Audience::Internal => {
                        let internal = match v.as_str() {
                            "allow" => DefaultInternal::Allow,
                            "block" => DefaultInternal::Block,
                            _ => {
                                return Err(invalid(
                                    "VALUE",
                                    format!("`{value}`: internal default is allow or block"),
                                ))
                            }
                        };
                        Op::Apply(Change::SetDefaults {
                            owner,
                            internal: Some(internal),
                            external: None,
                        })
                    }
                    Audience::External => {
                        let external = match v.as_str() {
                            "block" => DefaultExternal::Block,
                            "ask" | "ask-me" | "askme" => DefaultExternal::Ask,
                            "allow" => {
                                return Err(Failure::Invalid(vec![
                                    validate::external_default_allow("VALUE"),
                                ]))
                            }
                            _ => {
                                return Err(invalid(
                                    "VALUE",
                                    format!("`{value}`: external default is block or ask"),
                                ))
                            }
                        };
                        Op::Apply(Change::SetDefaults {
                            owner,
                            internal: None,
                            external: Some(external),
                        })
                    }
                }
            }
            PolicyCommand::Except {
                owner,
                kind,
                value,
                action,
            } => {
                let owner = aor_arg(&owner, "OWNER")?;
                let action = action.into();
                Op::Apply(match kind {
                    ExceptionKind::User => Change::AddUserException {
                        owner,
                        watcher: aor_arg(&value, "VALUE")?,
                        action,
                    },
                    ExceptionKind::Domain => Change::AddDomainException {
                        owner,
                        domain: domain_arg(&value, "VALUE")?,
                        action,
                    },
                })
            }
            PolicyCommand::Unexcept { owner, kind, value } => {
                let owner = aor_arg(&owner, "OWNER")?;
                Op::Apply(match kind {
                    ExceptionKind::User => Change::RemoveUserException {
                        owner,
                        watcher: aor_arg(&value, "VALUE")?,
                    },
                    ExceptionKind::Domain => Change::RemoveDomainException {
                        owner,
                        domain: domain_arg(&value, "VALUE")?,
                    },
                })
            }
            PolicyCommand::Contact {
                op,
                owner,
                aor,
                name,
            } => {
                let owner = aor_arg(&owner, "OWNER")?;
                let contact = aor_arg(&aor, "AOR")?;
                match op {
                    ContactOp::Add => {
                        if let Some(e) = validate::contact_name(name.as_deref(), "--name") {
                            return Err(Failure::Invalid(vec![e]));
                        }
                        Op::Apply(Change::AddContact {
                            owner,
                            contact,
                            name,
                            learned: false,
                        })
                    }
                    ContactOp::Remove => {
                        if name.is_some() {
                            return Err(invalid("--name", "--name only goes with `contact add`"));
                        }
                        Op::Apply(Change::RemoveContact { owner, contact })
                    }
                }
            }
            PolicyCommand::Apply { file } => Op::ApplyLines(file.filter(|f| f.as_os_str() != "-")),
            PolicyCommand::Answer {
                owner,
                watcher,
                action,
            } => Op::Apply(Change::Answer {
                owner: aor_arg(&owner, "OWNER")?,
                watcher: aor_arg(&watcher, "WATCHER")?,
                action: action.into(),
            }),
        })
    }

    fn run(self, target: &Target) -> Result<(), Failure> {
        match self {
            Op::Import(doc) => {
                let n = doc.users.len();
                target.import(doc)?;
                out(&format!("imported {n} users"))?;
            }
            Op::Export(file) => {
                let text = target.export()?.to_json_pretty();
                match file {
                    Some(f) => std::fs::write(&f, text + "\n")
                        .with_context(|| format!("cannot write {}", f.display()))?,
                    None => out(&text)?,
                }
            }
            Op::Explain {
                owner,
                watcher,
                json,
            } => {
                let (decision, rule) = target.explain(&owner, &watcher)?;
                if json {
                    out(&serde_json::json!({ "decision": decision, "rule": rule }).to_string())?;
                } else {
                    out(&format!("{decision} ({rule}): {watcher} watching {owner}"))?;
                }
            }
            Op::Apply(change) => target.apply(vec![change])?,
            Op::ApplyLines(file) => apply_lines(target, file.as_deref())?,
        }
        Ok(())
    }
}

/// `policy apply`: one transaction per line, acknowledged on stdout as it lands.
/// A bad line stops the run (exit 3) naming the line; the lines before it stay
/// applied, as their acknowledgements said.
fn apply_lines(target: &Target, file: Option<&Path>) -> Result<(), Failure> {
    use std::io::BufRead;
    let input: Box<dyn BufRead> = match file {
        Some(f) => Box::new(std::io::BufReader::new(std::fs::File::open(f).map_err(
            |e| invalid("FILE", format!("cannot read {}: {e}", f.display())),
        )?)),
        None => Box::new(std::io::stdin().lock()),
    };
    for (i, line) in input.lines().enumerate() {
        let n = i + 1;
        let line = line.with_context(|| format!("cannot read line {n}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let changes = match serde_json::from_str::<Vec<Change>>(&line) {
            Ok(list) => list,
            Err(_) => match serde_json::from_str::<Change>(&line) {
                Ok(one) => vec![one],
                Err(e) => return Err(invalid(&format!("line {n}"), format!("not a change: {e}"))),
            },
        };
        target.apply(changes).map_err(|f| match f {
            Failure::Invalid(errs) => Failure::Invalid(
                errs.into_iter()
                    .map(|e| ValidationError::new(format!("line {n}: {}", e.path), e.message))
                    .collect(),
            ),
            other => other,
        })?;
        out(&format!("applied {n}"))?;
    }
    Ok(())
}

/// One line to stdout. A closed pipe (`| head`) is not a failure; a full disk is.
fn out(line: &str) -> Result<(), Failure> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{line}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::Store(
            anyhow::Error::new(e).context("cannot write to stdout"),
        )),
        _ => Ok(()),
    }
}

/// The store itself, or the running proxy that holds it.
enum Target {
    Local(SledStore),
    Remote(Admin),
}

impl Target {
    fn open(data: &Path) -> Result<Target, Failure> {
        match SledStore::open(data) {
            Ok(s) => Ok(Target::Local(s)),
            Err(StoreError::Locked(_)) => Ok(Target::Remote(Admin::discover(data)?)),
            Err(e) => Err(Failure::Store(anyhow::Error::new(e))),
        }
    }

    fn apply(&self, changes: Vec<Change>) -> Result<(), Failure> {
        match self {
            Target::Local(s) => s.apply_all(changes).map_err(store_failure),
            Target::Remote(a) => a.changes(changes),
        }
    }

    fn import(&self, doc: PolicyDocument) -> Result<(), Failure> {
        match self {
            Target::Local(s) => s.import(doc).map_err(store_failure),
            Target::Remote(a) => a.put_policy(&doc),
        }
    }

    fn export(&self) -> Result<PolicyDocument, Failure> {
        match self {
            Target::Local(s) => Ok(s.export()),
            Target::Remote(a) => a.get_policy(),
        }
    }

    fn explain(&self, owner: &Aor, watcher: &Aor) -> Result<(String, String), Failure> {
        match self {
            Target::Local(s) => {
                let v = s.decide(owner, watcher);
                Ok((v.decision.as_str().to_string(), v.rule.as_str().to_string()))
            }
            Target::Remote(a) => a.explain(owner, watcher),
        }
    }
}

fn store_failure(e: StoreError) -> Failure {
    match e {
        StoreError::Invalid(errors) => Failure::Invalid(errors),
        other => Failure::Store(anyhow::Error::new(other)),
    }
}

/// The running proxy's admin API.
struct Admin {
    ep: AdminEndpoint,
}

impl Admin {
    fn discover(data: &Path) -> Result<Admin, Failure> {
        Ok(Admin {
            ep: AdminEndpoint::discover(data)?,
        })
    }

    fn send(
        &self,
        req: reqwest::blocking::RequestBuilder,
    ) -> Result<reqwest::blocking::Response, Failure> {
        let resp = req.send().map_err(|e| self.ep.unreachable(e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body: serde_json::Value = resp.json().unwrap_or(serde_json::Value::Null);
        if status.as_u16() == 422 || status.as_u16() == 400 {
            let mut errors: Vec<ValidationError> = body
                .get("errors")
                .and_then(|e| serde_json::from_value::<Vec<RemoteError>>(e.clone()).ok())
                .unwrap_or_default()
                .into_iter()
                .map(|e| ValidationError::new(e.path, e.message))
                .collect();
            if errors.is_empty() {
                let field = body
                    .get("field")
                    .and_then(|f| f.as_str())
                    .unwrap_or("request");
                let msg = body
                    .get("error")
                    .and_then(|f| f.as_str())
                    .unwrap_or("refused by the proxy");
                errors.push(ValidationError::new(field, msg));
            }
            return Err(Failure::Invalid(errors));
        }
        let msg = body
            .get("error")
            .and_then(|f| f.as_str())
            .unwrap_or("")
            .to_string();
        Err(Failure::Store(anyhow::anyhow!(
            "the proxy at {} answered {status}: {msg}",
            self.ep.base
        )))
    }

    fn changes(&self, changes: Vec<Change>) -> Result<(), Failure> {
        self.send(
            self.ep
                .request(reqwest::Method::POST, "/api/v1/admin/changes")
                .json(&changes),
        )?;
        Ok(())
    }

    fn put_policy(&self, doc: &PolicyDocument) -> Result<(), Failure> {
        self.send(
            self.ep
                .request(reqwest::Method::PUT, "/api/v1/admin/policy")
                .json(doc),
        )?;
        Ok(())
    }

    fn get_policy(&self) -> Result<PolicyDocument, Failure> {
        let resp = self.send(
            self.ep
                .request(reqwest::Method::GET, "/api/v1/admin/policy"),
        )?;
        Ok(resp
            .json()
            .context("the proxy sent a policy document this build cannot read")?)
    }

    fn explain(&self, owner: &Aor, watcher: &Aor) -> Result<(String, String), Failure> {
        let resp = self.send(
            self.ep
                .request(reqwest::Method::GET, "/api/v1/admin/explain")
                .query(&[("owner", owner.as_str()), ("watcher", watcher.as_str())]),
        )?;
        let v: RemoteVerdict = resp
            .json()
            .context("the proxy sent an explain answer this build cannot read")?;
        Ok((v.decision, v.rule))
    }
}

#[derive(serde::Deserialize)]
struct RemoteError {
    path: String,
    message: String,
}

#[derive(serde::Deserialize)]
struct RemoteVerdict {
    decision: String,
    rule: String,
}
