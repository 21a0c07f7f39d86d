//! Tunnelling git's own pack protocol: the stream's bytes go to a real `git upload-pack` or
//! `git receive-pack` on the server's bare repository and back. Git objects therefore stay
//! real Git end to end, with git's own negotiation, checks and hooks.

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::error::NetError;
use crate::transport::{RecvHalf, SendHalf};

/// Whether `value` is a plausible `GIT_PROTOCOL` (e.g. `version=2`); anything else is dropped
/// rather than passed into git's environment.
fn plausible_protocol(value: &str) -> bool {
    value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b':' | b'.' | b'-' | b'_'))
}

/// Who pushes, for the hooks (`DITS_USER`, `DITS_REPO`, `DITS_SERVER_ROOT`): they check
/// and release locks in the server's database.
pub struct Pusher<'a> {
    pub user: &'a str,
    pub repo: &'a str,
    pub root: &'a Path,
}

/// Runs `service` (`upload-pack` or `receive-pack`) on `dir` with the stream as its stdio.
/// Returns once git exits and its output is flushed to the stream.
#[allow(clippy::too_many_arguments)]
pub async fn tunnel(
    service: &str,
    dir: &Path,
    hooks: &Path,
    pusher: Pusher<'_>,
    protocol: &str,
    mut send: SendHalf,
    mut recv: RecvHalf,
    label: String,
) -> Result<(), NetError> {
    let mut cmd = tokio::process::Command::new("git");
    // The integrity hook runs whatever the repository's own config says (a repository whose
    // creation was interrupted, a root moved elsewhere).
    cmd.arg("-c")
        .arg(format!("core.hooksPath={}", hooks.display()))
        .arg(service)
        .arg(dir);
    if service == "upload-pack" {
        cmd.arg("--strict");
    }
    cmd.env("DITS_USER", pusher.user)
        .env("DITS_REPO", pusher.repo)
        .env("DITS_SERVER_ROOT", pusher.root);
    if !protocol.is_empty() && plausible_protocol(protocol) {
        cmd.env("GIT_PROTOCOL", protocol);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| NetError::io(format!("starting git {service}"), e))?;
    let (Some(mut stdin), Some(mut stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(NetError::io(
            format!("starting git {service}"),
            std::io::Error::other("no pipes"),
        ));
    };
    let up = async {
        // The client closing its side ends git's input; git then finishes on its own.
        let _ = tokio::io::copy(&mut recv, &mut stdin).await;
        let _ = stdin.shutdown().await;
        drop(stdin);
    };
    let down = async {
        let copied = tokio::io::copy(&mut stdout, &mut send).await;
        send.finish().await;
        copied
    };
    let log = async {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!("{label}: git {service}: {line}");
        }
    };
    let ((), copied, ()) = tokio::join!(up, down, log);
    let status = child
        .wait()
        .await
        .map_err(|e| NetError::io(format!("waiting for git {service}"), e))?;
    if let Err(e) = copied {
        tracing::debug!("{label}: git {service}: stream ended: {e}");
    }
    if !status.success() {
        tracing::info!("{label}: git {service} exited with {status}");
    }
    // Wait for the client to read everything before the stream is dropped.
    send.delivered().await;
    Ok(())
}
