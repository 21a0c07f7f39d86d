//! The two things the client asks git for: configuration (pins, CA file, timeouts) and
//! credentials.
//! Both go through the `git` program so every config scope, include and credential helper
//! the user set up applies, exactly as for git's own transports.

use std::io::Write;
use std::process::{Command, Stdio};

/// Every `dits.*` setting and the few git settings the client reads, from one `git config`
/// run (so every scope, include, `git -c` and `GIT_CONFIG_*` applies, as for git's own
/// transports). Keys are lowercased except for subsections, as git prints them.
pub fn config_snapshot() -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(run) = Command::new("git")
        .args([
            "config",
            "-z",
            "--get-regexp",
            r"^(dits\.|credential\.usehttppath$)",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    else {
        return out;
    };
    for entry in run.stdout.split(|&b| b == 0).filter(|e| !e.is_empty()) {
        let text = String::from_utf8_lossy(entry);
        let (key, value) = text.split_once('\n').unwrap_or((&text, ""));
        // Later scopes win, as in git.
        out.insert(key.to_owned(), value.to_owned());
    }
    out
}

/// Writes KEY in the current repository's config.
pub fn config_set_local(key: &str, value: &str) -> std::io::Result<()> {
    let status = Command::new("git")
        .args(["config", "--local", key, value])
        // stdout and stdin may be git's protocol pipes (helper, filter).
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "`git config --local {key}` failed"
        )))
    }
}

/// A username and password (the token) from `git credential fill`.
#[derive(Clone)]
pub struct Credential {
    request: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({})", self.username)
    }
}

/// Like git does for https, the repository path is part of the request only with
/// `credential.useHttpPath`: by default one token per server, as users expect of helpers.
fn credential_request(authority: &str, repo: &str, use_path: bool) -> String {
    if use_path {
        format!("protocol=dits\nhost={authority}\npath={repo}\n")
    } else {
        format!("protocol=dits\nhost={authority}\n")
    }
}

/// Asks git's credential helpers (or the user, on a terminal) for a token. `None` if there is
/// none to be had; git has already told the user why on stderr.
pub fn credential_fill(authority: &str, repo: &str, use_path: bool) -> Option<Credential> {
    let request = credential_request(authority, repo, use_path);
    let mut child = Command::new("git")
        .args(["credential", "fill"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    stdin.write_all(format!("{request}\n").as_bytes()).ok()?;
    drop(stdin);
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_owned)
    };
    Some(Credential {
        request,
        username: field("username").unwrap_or_default(),
        password: field("password")?,
    })
}

/// Tells git's helpers the credential worked (`approve`) or did not (`reject`).
pub fn credential_report(cred: &Credential, worked: bool) {
    let action = if worked { "approve" } else { "reject" };
    let spawned = Command::new("git")
        .args(["credential", action])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn();
    let Ok(mut child) = spawned else { return };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(
            format!(
                "{}username={}\npassword={}\n\n",
                cred.request, cred.username, cred.password
            )
            .as_bytes(),
        );
    }
    let _ = child.wait();
}
