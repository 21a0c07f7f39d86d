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
        Some(ServeAction::Audit { repo }) => audit(&root, repo.as_deref()),
        Some(ServeAction::BackupLocks { to }) => {
            use git_remote_dits::locks::{db_path, LockDb};
            LockDb::open(&db_path(&root))?.backup_to(to)?;
            eprintln!("dits: lock database copied to {}", to.display());
            Ok(ExitCode::SUCCESS)
        }
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

fn audit(root: &Path, repo: Option<&str>) -> Result<ExitCode> {
    use git_remote_dits::locks::{db_path, format_time, LockDb};
    let db = LockDb::open(&db_path(root))?;
    let mut out = std::io::stdout().lock();
    for e in db.audit_log(repo)? {
        let line = format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            format_time(e.at),
            e.repo,
            e.action,
            e.lock.path,
            e.lock.owner,
            e.actor,
            e.reason
        );
        if writeln!(out, "{}", line.trim_end()).is_err() {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn token(root: &Path, action: &TokenAction) -> Result<ExitCode> {
    match action {
        TokenAction::Add {
            repo,
            write,
            admin,
            user,
            label,
        } => {
            let rights = match (*admin, *write) {
                (true, _) => Rights::Admin,
                (false, true) => Rights::Write,
                (false, false) => Rights::Read,
            };
            let user = match user.as_deref() {
                Some(u) => u.to_owned(),
                None if !label.is_empty() => label.split(' ').next().unwrap_or("").to_owned(),
                None => anyhow::bail!(
                    "a token needs a user, who owns the locks it takes; hint: add --user NAME"
                ),
            };
            let token = auth::add(root, repo, rights, &user, label)?;
            println!("{token}");
            eprintln!(
                "dits: new {} token of {user} for {repo}; it is shown only now. Clients store it with git's credential system (protocol=dits, password=<token>).",
                rights.as_str()
            );
        }
        TokenAction::List => {
            for e in auth::load(root)? {
                let short = e.hash.get(..12).unwrap_or(&e.hash);
                println!(
                    "{short} {:5} {} {} {}",
                    e.rights.as_str(),
                    e.pattern,
                    e.user,
                    e.label
                );
            }
        }
        TokenAction::Revoke { which } => {
            let n = auth::revoke(root, which)?;
            if n == 0 {
                eprintln!("error: no token has the label, user or hash prefix {which:?}; hint: `git dits serve token list`");
                return Ok(ExitCode::from(1));
            }
            eprintln!("dits: revoked {n} token(s)");
        }
    }
    Ok(ExitCode::SUCCESS)
}
