//! The Dits side's server: `git dits serve`, on loopback, with one write token for the
//! benchmark's repository handed to git through its credential store.
//!
//! The interface this relies on:
//! - `git dits serve --help` succeeds when the server exists (otherwise Dits is skipped);
//! - `git dits serve token add --root DIR --repo ORG/NAME --write` prints the token, one line,
//!   on stdout, and works before the server has ever run on DIR (an empty directory);
//! - `git dits serve --root DIR --listen 127.0.0.1:0` runs until killed (SIGKILL, to its process
//!   group), and its first stdout line is `listening 127.0.0.1:PORT`; the benchmark starts it
//!   as `git-dits serve ...` directly, the program git itself would run;
//! - if a later stdout line (read for up to 2 s) is `fingerprint FP`, the client is made to
//!   trust that certificate with `git config --global dits.127.0.0.1:PORT.fingerprint FP`;
//!   without one, the client must trust the server on first use by itself;
//! - the client authenticates through git's credential helpers as user `dits` with the token as
//!   password, for `dits://127.0.0.1:PORT`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::proc::Runner;
use crate::server::Server;

/// The Dits server for one run. Dropping it stops the server.
pub struct DitsServer {
    pub server: Server,
    pub port: u16,
    pub root: PathBuf,
    /// The certificate fingerprint the server printed, if it printed one.
    pub fingerprint: Option<String>,
}

impl DitsServer {
    pub fn url(&self, repo: &str) -> String {
        format!("dits://127.0.0.1:{}/{repo}", self.port)
    }
}

/// `Ok(None)` when the server is available; `Ok(Some(why))` when it is not, so Dits is skipped.
pub fn unavailable(runner: &Runner, dir: &Path) -> Option<String> {
    let out = runner
        .git_command(dir, &["dits", "serve", "--help"])
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => None,
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            let first = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            Some(format!(
                "`git dits serve --help` failed ({}): {}",
                o.status,
                first.trim()
            ))
        }
        Err(e) => Some(format!("cannot run `git dits serve --help`: {e}")),
    }
}

/// Adds a write token for `repo` under `root` and returns it.
pub fn add_token(runner: &Runner, root: &Path, repo: &str) -> Result<String> {
    add_token_for(runner, root, repo, "bench")
}

/// Adds a write token of `user` for `repo` under `root` and returns it.
pub fn add_token_for(runner: &Runner, root: &Path, repo: &str, user: &str) -> Result<String> {
    let mut cmd = runner.git_command(root, &["dits", "serve", "token", "add", "--root"]);
    cmd.arg(root)
        .args(["--repo", repo, "--write", "--user", user]);
    let out = crate::proc::run(cmd)?;
    let token = out.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        bail!("`git dits serve token add` printed {out:?}, expected one token on one line");
    }
    Ok(token.to_string())
}

/// Starts `git dits serve` on an ephemeral loopback port of its choosing and waits for its
/// `listening` line. It runs as `<bin>/git-dits serve`, what git would run, without git in
/// between, so that the process the benchmark watches (CPU, memory) is the server itself.
/// `serve_args` go after the benchmark's own (e.g. `--transport both`).
pub fn start(
    runner: &Runner,
    bin: &Path,
    root: &Path,
    log: &Path,
    serve_args: &[&str],
) -> Result<DitsServer> {
    let mut cmd = runner.command(bin.join("git-dits"), root);
    cmd.args(["serve", "--root"])
        .arg(root)
        .args(["--listen", "127.0.0.1:0"])
        .args(serve_args);
    let mut server = Server::spawn("Dits", cmd, log)?;
    let line = server.wait_for_first_line()?;
    let port = parse_listening(&line).with_context(|| {
        format!(
            "the first line of `git dits serve` was {line:?}, expected `listening 127.0.0.1:PORT`"
        )
    })?;
    let fingerprint = server
        .wait_for_stdout_line(|l| l.starts_with("fingerprint "), Duration::from_secs(2))
        .and_then(|l| parse_fingerprint(&l));
    Ok(DitsServer {
        server,
        port,
        root: root.to_path_buf(),
        fingerprint,
    })
}

/// A server under `dir/server` with a write token for `repo`, and the client side of `runner`
/// set up as a user would: the token in git's credential store (`dir/creds`), the server's
/// certificate pinned.
pub fn start_for_client(runner: &Runner, bin: &Path, dir: &Path, repo: &str) -> Result<DitsServer> {
    start_for_client_with(runner, bin, dir, repo, &[])
}

/// [`start_for_client`] with extra `git dits serve` arguments (see [`start`]).
pub fn start_for_client_with(
    runner: &Runner,
    bin: &Path,
    dir: &Path,
    repo: &str,
    serve_args: &[&str],
) -> Result<DitsServer> {
    let root = dir.join("server");
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let token = add_token(runner, &root, repo)?;
    let server = start(runner, bin, &root, &dir.join("serve"), serve_args)?;
    let creds = dir.join("creds");
    std::fs::write(&creds, credential_line(server.port, &token))
        .with_context(|| format!("writing {}", creds.display()))?;
    // git runs the helper through the shell: the path is single-quoted.
    let creds_path = creds.display().to_string();
    if creds_path.contains('\'') {
        bail!("the scratch path {creds_path:?} holds a single quote");
    }
    runner.git(
        dir,
        &[
            "config",
            "--global",
            "credential.helper",
            &format!("store --file='{creds_path}'"),
        ],
    )?;
    if let Some(fp) = &server.fingerprint {
        // Trust this server's certificate, as its operator would tell a user to.
        let key = format!("dits.127.0.0.1:{}.fingerprint", server.port);
        runner.git(dir, &["config", "--global", &key, fp])?;
    }
    Ok(server)
}

fn parse_fingerprint(line: &str) -> Option<String> {
    let fp = line.trim().strip_prefix("fingerprint ")?.trim();
    (!fp.is_empty() && !fp.contains(char::is_whitespace)).then(|| fp.to_string())
}

fn parse_listening(line: &str) -> Option<u16> {
    let addr = line.trim().strip_prefix("listening ")?;
    let (_, port) = addr.trim().rsplit_once(':')?;
    port.parse().ok().filter(|&p| p != 0)
}

/// The git credential-store line that hands `token` to git for the server on `port` (the
/// token percent-encoded, as the store's URL format wants).
pub fn credential_line(port: u16, token: &str) -> String {
    let mut enc = String::new();
    for b in token.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            enc.push(char::from(b));
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    format!("dits://dits:{enc}@127.0.0.1:{port}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_line() {
        assert_eq!(parse_listening("listening 127.0.0.1:4433"), Some(4433));
        assert_eq!(parse_listening("listening 127.0.0.1:4433\r"), Some(4433));
        assert_eq!(parse_listening("listening [::1]:9"), Some(9));
        assert_eq!(parse_listening("listening 127.0.0.1:0"), None);
        assert_eq!(parse_listening("ready"), None);
    }

    #[test]
    fn fingerprint_line() {
        assert_eq!(
            parse_fingerprint("fingerprint blake3:ab12\n").as_deref(),
            Some("blake3:ab12")
        );
        assert_eq!(parse_fingerprint("fingerprint "), None);
    }

    #[test]
    fn credential_line_encodes_the_token() {
        assert_eq!(
            credential_line(7, "ab+/c=_~"),
            "dits://dits:ab%2B%2Fc%3D_~@127.0.0.1:7\n"
        );
    }
}
