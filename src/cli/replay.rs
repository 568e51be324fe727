//! `presence-proxy replay`.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {}

pub fn main(_args: ReplayArgs) -> ExitCode {
    eprintln!("presence-proxy replay: not built yet");
    ExitCode::from(super::exit::USAGE)
}
