//! `presence-proxy user`.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct UserArgs {}

pub fn main(_args: UserArgs) -> ExitCode {
    eprintln!("presence-proxy user: not built yet");
    ExitCode::from(super::exit::USAGE)
}
