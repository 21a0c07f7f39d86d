//! `git dits`: the porcelain of Dits. The binary in `src/bin/git-dits.rs` only calls [`run`].

mod cli;
mod cmd;
pub mod filter;
mod git;
pub mod helper;
mod index_stat;
mod lockable;
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
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

/// An error and its causes on one line, as anyhow's `{:#}` prints them, except that a cause
/// whose text the line already holds is not repeated: many of our errors name their cause in
/// their own message ("listening on ADDR: Address already in use") and keep it as the source.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn causes_already_in_the_message_are_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        #[derive(Debug, thiserror::Error)]
        #[error("listening on 127.0.0.1:1 (UDP): {source}")]
        struct Listen {
            source: std::io::Error,
        }
        let e = anyhow::Error::new(Listen { source: io }).context("serving");
        assert_eq!(
            one_line(&e),
            "serving: listening on 127.0.0.1:1 (UDP): Address already in use"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(one_line(&plain), "outer: inner");
    }
}
