//! `git dits serve`: run the Dits server, and manage its tokens.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use dits_core::wire::Rights;
use git_remote_dits::server::{self, auth, ServeOptions};

use crate::cli::{ServeAction, TokenAction};

pub fn run(
    root: Option<&Path>,
    listen: &str,
    transport: &str,
    cert: Option<&Path>,
    key: Option<&Path>,
    action: Option<&ServeAction>,
) -> Result<ExitCode> {
    let root = root.context(
        "--root DIR is required: where the server keeps repositories, chunks and tokens",
    )?;
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let root = std::fs::canonicalize(root)?;
    match action {
        None => serve(&root, listen, transport, cert, key),
        Some(ServeAction::Fingerprint) => {
            let fp = match cert.zip(key) {
                Some((c, k)) => git_remote_dits::tls::ServerIdentity::load(c, k)?.fingerprint(),
                None => server::fingerprint(&root)?,
            };
            println!("{fp}");
            Ok(ExitCode::SUCCESS)
        }
        Some(ServeAction::Token { action }) => token(&root, action),
    }
}

fn serve(
    root: &Path,
    listen: &str,
    transport: &str,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<ExitCode> {
    let listen = listen.parse().with_context(|| {
        format!("--listen {listen:?}: expected ADDRESS:PORT, e.g. 0.0.0.0:7418")
    })?;
    let hook_program: PathBuf =
        std::env::current_exe().context("locating the git-dits program for the server hook")?;
    let opts = ServeOptions {
        root: root.to_owned(),
        listen,
        identity: cert.zip(key).map(|(c, k)| (c.to_owned(), k.to_owned())),
        hook_program,
        quic: transport != "tcp",
        tcp: transport != "quic",
        limits: server::Limits::default(),
    };
    server::run(opts, |addr, fp| {
        // Scripts (and the tests) read these two lines to learn the port and the pin.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening {addr}");
        let _ = writeln!(out, "fingerprint {fp}");
        let _ = out.flush();
        let how = match transport {
            "quic" => "QUIC (UDP) only",
            "tcp" => "TLS over TCP only",
            _ => "QUIC (UDP) and TLS over TCP",
        };
        eprintln!(
            "dits: serving {} on {addr} ({how}); clients pin certificate {fp}",
            root.display()
        );
    })?;
    Ok(ExitCode::SUCCESS)
}

fn token(root: &Path, action: &TokenAction) -> Result<ExitCode> {
    match action {
        TokenAction::Add { repo, write, label } => {
            let rights = if *write { Rights::Write } else { Rights::Read };
            let token = auth::add(root, repo, rights, label)?;
            println!("{token}");
            eprintln!(
                "dits: new {} token for {repo}; it is shown only now. Clients store it with git's credential system (protocol=dits, password=<token>).",
                if *write { "write" } else { "read" }
            );
        }
        TokenAction::List => {
            for e in auth::load(root)? {
                let rights = match e.rights {
                    Rights::Read => "read",
                    Rights::Write => "write",
                };
                let short = e.hash.get(..12).unwrap_or(&e.hash);
                println!("{short} {rights:5} {} {}", e.pattern, e.label);
            }
        }
        TokenAction::Revoke { which } => {
            let n = auth::revoke(root, which)?;
            if n == 0 {
                eprintln!("error: no token has the label or hash prefix {which:?}; hint: `git dits serve token list`");
                return Ok(ExitCode::from(1));
            }
            eprintln!("dits: revoked {n} token(s)");
        }
    }
    Ok(ExitCode::SUCCESS)
}
