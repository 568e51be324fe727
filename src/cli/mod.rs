//! The command line: `run` (the default), `policy`, `user` and `replay`.
//!
//! This is the binary edge: errors are `anyhow` here and become exit codes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod admin;
pub mod policy;
pub mod replay;
pub mod run;
pub mod user;

/// Exit codes the scripts and tests rely on.
pub mod exit {
    pub const OK: u8 = 0;
    pub const USAGE: u8 = 2;
    pub const INVALID: u8 = 3;
    pub const STORE: u8 = 4;
}

#[derive(Debug, Parser)]
#[command(
    name = "presence-proxy",
    version,
    about = "Inline SIP/SIMPLE proxy that enforces presence privacy"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `run`'s options, so `presence-proxy --listen ...` runs the proxy.
    #[command(flatten)]
    pub run: run::RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy (the default).
    Run(run::RunArgs),
    /// Manage privacy policies (through the admin API when a proxy is running).
    Policy(policy::PolicyArgs),
    /// Manage User Options accounts.
    User(user::UserArgs),
    /// Run a pcap capture through the engine.
    Replay(replay::ReplayArgs),
}

/// The data directory for the commands that open the store: `--data`, else the
/// configuration file's `[store] data` (the key the proxy itself uses), else the
/// default `./presence-data`. A configuration file that cannot be loaded is an error
/// naming the key and reason, as at proxy start.
pub fn data_dir(
    flag: Option<std::path::PathBuf>,
    config: Option<&std::path::Path>,
) -> Result<std::path::PathBuf, String> {
    if let Some(d) = flag {
        return Ok(d);
    }
    match config {
        Some(file) => crate::config::Config::load(file)
            .map(|c| c.store.data)
            .map_err(|e| e.to_string()),
        None => Ok(crate::config::Config::default().store.data),
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        None => run::main(cli.run),
        Some(Command::Run(args)) => run::main(args),
        Some(Command::Policy(args)) => policy::main(args),
        Some(Command::User(args)) => user::main(args),
        Some(Command::Replay(args)) => replay::main(args),
    }
}
