//! `presence-proxy user`: User Options accounts from the shell.
//!
//! Opens the data directory's store directly; when a running proxy holds it (sled
//! lock), reads `<data>/proxy.json` and goes through the admin API instead
//! (`POST /api/v1/admin/users`, `PUT|DELETE /api/v1/admin/users/{aor}`,
//! `GET /api/v1/admin/users`), as ADMIN_API.md describes.
//!
//! Exit codes (`cli::exit`): 0 done, 2 usage, 3 refused (bad address, short
//! password, account exists or is missing), 4 store or proxy failure.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::admin::AdminEndpoint;
use super::exit;
use crate::policy::Aor;
use crate::store::{SledStore, Store, StoreError};
use crate::web::accounts::{self, AccountError};

#[derive(Debug, Args)]
pub struct UserArgs {
    /// The data directory (default: the config file's `[store] data`, else ./presence-data).
    #[arg(long, value_name = "DIR", global = true)]
    pub data: Option<PathBuf>,
    /// The configuration file (only its `[store] data` is used here).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account (and, if absent, a policy with the product defaults).
    Add {
        aor: String,
        /// Class of service from the org settings (default: `default`).
        #[arg(long)]
        class: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password (the user's web sessions end).
    Passwd {
        aor: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove the account and the user's policy.
    Remove { aor: String },
    /// List users: address, class, whether they have an account.
    List,
}

enum Failure {
    Refused(String),
    Store(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Store(e)
    }
}

impl From<AccountError> for Failure {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Store(StoreError::Invalid(errs)) => Failure::Refused(
                errs.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            AccountError::Store(s) => Failure::Store(anyhow::Error::new(s)),
            AccountError::Hash(h) => Failure::Store(anyhow!(h)),
            other => Failure::Refused(other.to_string()),
        }
    }
}

pub fn main(args: UserArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(Failure::Refused(msg)) => {
            eprintln!("refused: {msg}");
            ExitCode::from(exit::INVALID)
        }
        Err(Failure::Store(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::STORE)
        }
    }
}

fn aor_arg(s: &str) -> Result<Aor, Failure> {
    Aor::parse(s).map_err(|e| Failure::Refused(format!("AOR: {e}")))
}

fn run(args: UserArgs) -> Result<(), Failure> {
    let data = super::data_dir(args.data, args.config.as_deref()).map_err(Failure::Refused)?;
    // Arguments and the password are read before the store is touched.
    let op = match args.command {
        UserCommand::Add {
            aor,
            class,
            password_stdin,
        } => Op::Add {
            aor: aor_arg(&aor)?,
            class,
            password: read_password(password_stdin)?,
        },
        UserCommand::Passwd {
            aor,
            password_stdin,
        } => Op::Passwd {
            aor: aor_arg(&aor)?,
            password: read_password(password_stdin)?,
        },
        UserCommand::Remove { aor } => Op::Remove {
            aor: aor_arg(&aor)?,
        },
        UserCommand::List => Op::List,
    };
    match SledStore::open(&data) {
        Ok(store) => op.direct(&store),
        Err(StoreError::Locked(_)) => op.remote(&AdminClient::discover(&data)?),
        Err(e) => Err(Failure::Store(anyhow::Error::new(e))),
    }
}

enum Op {
    Add {
        aor: Aor,
        class: Option<String>,
        password: String,
    },
    Passwd {
        aor: Aor,
        password: String,
    },
    Remove {
        aor: Aor,
    },
    List,
}

impl Op {
    fn direct(self, store: &SledStore) -> Result<(), Failure> {
        match self {
            Op::Add {
                aor,
                class,
                password,
            } => {
                accounts::add_user(store, &aor, &password, class.as_deref())?;
                println!("added {aor}");
            }
            Op::Passwd { aor, password } => {
                accounts::set_password(store, &aor, &password)?;
                println!("password changed for {aor}");
            }
            Op::Remove { aor } => {
                accounts::remove_user(store, &aor)?;
                println!("removed {aor}");
            }
            Op::List => {
                let with_account: std::collections::BTreeSet<Aor> =
                    store.accounts().into_iter().collect();
                let mut rows: std::collections::BTreeMap<String, (String, bool)> =
                    std::collections::BTreeMap::new();
                for u in store.users() {
                    rows.insert(
                        u.aor.to_string(),
                        (u.class.clone(), with_account.contains(&u.aor)),
                    );
                }
                for a in &with_account {
                    rows.entry(a.to_string()).or_insert(("-".to_string(), true));
                }
                for (aor, (class, account)) in rows {
                    print_row(&aor, &class, account);
                }
            }
        }
        Ok(())
    }

    fn remote(self, admin: &AdminClient) -> Result<(), Failure> {
        match self {
            Op::Add {
                aor,
                class,
                password,
            } => {
                admin.send(
                    reqwest::Method::POST,
                    "/api/v1/admin/users",
                    Some(json!({"aor": aor, "password": password, "class": class})),
                )?;
                println!("added {aor} (through the running proxy)");
            }
            Op::Passwd { aor, password } => {
                admin.send(
                    reqwest::Method::PUT,
                    &format!("/api/v1/admin/users/{aor}"),
                    Some(json!({"password": password})),
                )?;
                println!("password changed for {aor} (through the running proxy)");
            }
            Op::Remove { aor } => {
                admin.send(
                    reqwest::Method::DELETE,
                    &format!("/api/v1/admin/users/{aor}"),
                    None,
                )?;
                println!("removed {aor} (through the running proxy)");
            }
            Op::List => {
                let v = admin.send(reqwest::Method::GET, "/api/v1/admin/users", None)?;
                for u in v["users"].as_array().into_iter().flatten() {
                    print_row(
                        u["aor"].as_str().unwrap_or("?"),
                        u["class"].as_str().unwrap_or("-"),
                        u["account"].as_bool().unwrap_or(false),
                    );
                }
            }
        }
        Ok(())
    }
}

fn print_row(aor: &str, class: &str, account: bool) {
    println!(
        "{aor}\tclass={class}\taccount={}",
        if account { "yes" } else { "no" }
    );
}

/// The password from stdin's first line (`--password-stdin`), or typed at the
/// terminal without echo (twice, to catch typos).
fn read_password(from_stdin: bool) -> Result<String, Failure> {
    let stdin = std::io::stdin();
    if from_stdin || !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let first = prompt_hidden("Password: ")?;
    let second = prompt_hidden("Again: ")?;
    if first != second {
        return Err(Failure::Refused("the two passwords differ".to_string()));
    }
    Ok(first)
}

/// Reads one line from the terminal with echo turned off (termios).
fn prompt_hidden(prompt: &str) -> Result<String, Failure> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain data; tcgetattr fills it for a terminal fd and we
    // restore the saved state before returning.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    let have_tty = unsafe { libc::tcgetattr(fd, &mut saved) } == 0;
    if have_tty {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if have_tty {
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    }
    eprintln!();
    read.context("cannot read the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// The running proxy's admin API, found through `<data>/proxy.json`.
struct AdminClient {
    ep: AdminEndpoint,
}

impl AdminClient {
    fn discover(data: &Path) -> Result<AdminClient, Failure> {
        Ok(AdminClient {
            ep: AdminEndpoint::discover(data)?,
        })
    }

    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let mut req = self.ep.request(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().map_err(|e| self.ep.unreachable(e))?;
        let status = resp.status();
        let v: Value = if status == reqwest::StatusCode::NO_CONTENT {
            Value::Null
        } else {
            resp.json().unwrap_or(Value::Null)
        };
        if status.is_success() {
            return Ok(v);
        }
        let msg = v["error"].as_str().unwrap_or("refused").to_string();
        if status.is_client_error() {
            Err(Failure::Refused(msg))
        } else {
            Err(Failure::Store(anyhow!(
                "the proxy at {} answered {status}: {msg}",
                self.ep.base
            )))
        }
    }
}
