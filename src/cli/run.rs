//! `presence-proxy run`.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct RunArgs {}

pub fn main(_args: RunArgs) -> ExitCode {
    eprintln!("presence-proxy run: not built yet");
    ExitCode::from(super::exit::USAGE)
}
