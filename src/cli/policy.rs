//! `presence-proxy policy`.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct PolicyArgs {}

pub fn main(_args: PolicyArgs) -> ExitCode {
    eprintln!("presence-proxy policy: not built yet");
    ExitCode::from(super::exit::USAGE)
}
