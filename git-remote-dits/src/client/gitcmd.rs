//! The two things the client asks git for: configuration (pins, CA file, timeouts) and
//! credentials.
//! Both go through the `git` program so every config scope, include and credential helper
//! the user set up applies, exactly as for git's own transports.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

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
    /// Typed at the prompt just now, with this long a stay in git's credential cache.
    typed: Option<Duration>,
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

/// The username Dits puts in a prompt's request: the server reads only the token, so git
/// must not ask for a name.
const PROMPT_USERNAME: &str = "token";

/// A token for the server: from the user's credential helpers, else from git's in-memory
/// credential cache where an earlier prompt left it (`cache`), else asked for on the terminal
/// (the token only, once: the cache then serves the command's other processes). `None` if
/// there is none to be had; git has then told the user why on stderr.
pub fn credential_fill(
    authority: &str,
    repo: &str,
    use_path: bool,
    cache: Option<Duration>,
) -> Option<Credential> {
    let request = credential_request(authority, repo, use_path);
    if let Some(c) = fill(&["credential", "fill"], &request, false) {
        return Some(c);
    }
    if cache.is_some() {
        if let Some(mut c) = fill(&["credential-cache", "get"], &request, false) {
            // Refreshed if it works, erased if the server refuses it.
            c.typed = cache;
            return Some(c);
        }
    }
    let ask = format!("{request}username={PROMPT_USERNAME}\n");
    let mut typed = fill(&["credential", "fill"], &ask, true)?;
    typed.request = request;
    typed.typed = cache.or(Some(Duration::ZERO));
    Some(typed)
}

/// Runs `git ARGS` with `request` on stdin and reads the credential it prints. Without
/// `prompt`, git may not ask on the terminal and its complaints are dropped.
fn fill(args: &[&str], request: &str, prompt: bool) -> Option<Credential> {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(if prompt {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
    if !prompt {
        cmd.env("GIT_TERMINAL_PROMPT", "0");
    }
    let mut child = cmd.spawn().ok()?;
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
        request: request.to_owned(),
        username: field("username").unwrap_or_default(),
        password: field("password").filter(|p| !p.is_empty())?,
        typed: None,
    })
}

/// Tells git's helpers the credential worked (`approve`) or did not (`reject`); a token typed
/// at the prompt that worked also goes into git's in-memory cache, one that did not out of it.
///
/// An approval only confirms what the helpers gave (or stores what was typed): it runs
/// while the command goes on, and the returned child is waited for by the caller later
/// (a child nobody waits for stays a zombie where init does not reap). A rejection is waited
/// for here, so the next attempt cannot be handed the same bad token.
pub fn credential_report(cred: &Credential, worked: bool) -> Option<std::process::Child> {
    let text = format!(
        "{}username={}\npassword={}\n\n",
        cred.request, cred.username, cred.password
    );
    let action = if worked { "approve" } else { "reject" };
    let mut cmd = Command::new("git");
    cmd.args(["credential", action]);
    let running = feed(cmd, &text, !worked);
    if let Some(stay) = cred.typed.filter(|d| !d.is_zero()) {
        if worked {
            let timeout = format!("--timeout={}", stay.as_secs());
            // In a process group of its own, so the cache daemon it starts outlives the
            // terminal's hang-up signal when this command's session ends.
            let mut store = Command::new("git");
            store.args(["credential-cache", &timeout, "store"]);
            std::os::unix::process::CommandExt::process_group(&mut store, 0);
            let _ = feed(store, &text, true);
        } else {
            run_with_input(&["credential-cache", "erase"], &text);
        }
    }
    running
}

/// Runs `git ARGS` with `input` on stdin, its output dropped (stdout may be git's protocol
/// pipe; the cache daemon it may start must not hold our stderr open either).
fn run_with_input(args: &[&str], input: &str) {
    let mut cmd = Command::new("git");
    cmd.args(args);
    let _ = feed(cmd, input, true);
}

/// Starts `cmd` with `input` on its stdin and output dropped; waits for it if `wait`, else
/// returns it running (the input is in the pipe and the pipe closed) for the caller to wait.
fn feed(mut cmd: Command, input: &str, wait: bool) -> Option<std::process::Child> {
    let spawned = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = spawned else { return None };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    if wait {
        let _ = child.wait();
        return None;
    }
    Some(child)
}
