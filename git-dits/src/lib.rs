//! `git dits`: the porcelain of Dits. The binary in `src/bin/git-dits.rs` only calls [`run`].

mod cli;
mod cmd;
pub mod filter;
mod git;
pub mod helper;
mod index_stat;
mod mount;
mod progress;
pub mod reachable;
pub mod remote;
pub mod repo;
mod setup;
pub mod tracked;
mod uploaded;

use std::process::ExitCode;

use clap::Parser;

pub use cli::Cli;

/// Runs `git dits` with the process arguments; the exit code scripts can rely on.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cmd::dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
