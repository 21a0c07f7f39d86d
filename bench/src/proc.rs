//! Running commands: a hermetic git environment, and a measured run that reports wall time,
//! user+sys CPU and peak RSS of the whole process tree it started.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// What one measured command cost.
#[derive(Debug, Clone)]
pub struct Measured {
    pub wall: Duration,
    /// Largest resident set of any process in the tree (the command and every descendant it
    /// waited for: git, its hooks, dits-filter or git-lfs), in KiB as Linux reports it.
    pub max_rss_kib: u64,
    pub user: Duration,
    pub sys: Duration,
    pub stdout: String,
}

impl Measured {
    pub fn cpu(&self) -> Duration {
        self.user + self.sys
    }

    pub fn max_rss_mib(&self) -> f64 {
        self.max_rss_kib as f64 / 1024.0
    }
}

/// The run, of several, whose wall time is the median (the lower middle for an even count).
pub fn median(mut runs: Vec<Measured>) -> Result<Measured> {
    runs.sort_by_key(|m| m.wall);
    let mid = middle(runs.len());
    runs.into_iter()
        .nth(mid)
        .context("no runs to take the median of")
}

/// The median of `values` (the lower middle for an even count, as [`median`]); `None` if empty.
pub fn median_of<T: PartialOrd + Copy>(values: impl IntoIterator<Item = T>) -> Option<T> {
    let mut v: Vec<T> = values.into_iter().collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(middle(v.len())).copied()
}

fn middle(n: usize) -> usize {
    n.saturating_sub(1) / 2
}

/// Runs git (and anything else) with a throw-away `HOME`, no system config, fixed identity and
/// dates, and the Dits binaries first on `PATH`. Nothing else from the caller's environment
/// leaks in (no `GIT_DIR`, no `DITS_LOG`).
pub struct Runner {
    git: PathBuf,
    env: Vec<(OsString, OsString)>,
}

impl Runner {
    pub fn new(git: &Path, dits_bin: &Path, home: &Path) -> Result<Self> {
        let inherited = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
        let path = std::env::join_paths(
            std::iter::once(dits_bin.to_path_buf()).chain(std::env::split_paths(&inherited)),
        )
        .context("building PATH")?;
        let mut env: Vec<(OsString, OsString)> = vec![
            ("PATH".into(), path),
            ("HOME".into(), home.into()),
            ("LANG".into(), "C".into()),
            ("LC_ALL".into(), "C".into()),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
            ("GIT_TERMINAL_PROMPT".into(), "0".into()),
            ("GIT_AUTHOR_NAME".into(), "Dits Bench".into()),
            ("GIT_AUTHOR_EMAIL".into(), "bench@dits.invalid".into()),
            ("GIT_COMMITTER_NAME".into(), "Dits Bench".into()),
            ("GIT_COMMITTER_EMAIL".into(), "bench@dits.invalid".into()),
            ("GIT_AUTHOR_DATE".into(), "2025-01-01T00:00:00Z".into()),
            ("GIT_COMMITTER_DATE".into(), "2025-01-01T00:00:00Z".into()),
        ];
        if let Some(tmp) = std::env::var_os("TMPDIR") {
            env.push(("TMPDIR".into(), tmp));
        }
        Ok(Runner {
            git: git.to_path_buf(),
            env,
        })
    }

    /// A command with the hermetic environment, run in `dir`.
    pub fn command(&self, program: impl AsRef<OsStr>, dir: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .envs(self.env.iter().cloned())
            .current_dir(dir);
        cmd
    }

    pub fn git_command<S: AsRef<OsStr>>(&self, dir: &Path, args: &[S]) -> Command {
        let mut cmd = self.command(&self.git, dir);
        cmd.args(args);
        cmd
    }

    /// Runs git to completion, failing with both streams if it does not succeed.
    pub fn git<S: AsRef<OsStr>>(&self, dir: &Path, args: &[S]) -> Result<String> {
        run(self.git_command(dir, args))
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs a command to completion and returns its stdout; a failure carries both streams.
pub fn run(mut cmd: Command) -> Result<String> {
    let what = describe(&cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start `{what}`"))?;
    if !out.status.success() {
        bail!(
            "`{what}` failed ({})\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command and measures it. Streams go to temporary files (no pipe to drain, so no
/// deadlock and no reader thread in the measurement); a failure carries both streams.
pub fn measure(mut cmd: Command) -> Result<Measured> {
    let what = describe(&cmd);
    let mut out = tempfile::tempfile().context("temporary file for stdout")?;
    let mut err = tempfile::tempfile().context("temporary file for stderr")?;
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().context("duplicating stdout file")?)
        .stderr(err.try_clone().context("duplicating stderr file")?);
    let start = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{what}`"))?;
    let waited = wait_with_rusage(child.id());
    let wall = start.elapsed();
    // `child` was reaped by wait4 above; dropping it neither waits nor kills.
    drop(child);
    let (status, usage) = waited.with_context(|| format!("waiting for `{what}`"))?;
    let mut stdout = String::new();
    let mut stderr = String::new();
    out.rewind()?;
    out.read_to_string(&mut stdout)
        .context("reading stdout of a measured command")?;
    err.rewind()?;
    err.read_to_string(&mut stderr)
        .context("reading stderr of a measured command")?;
    if status != 0 {
        bail!(
            "`{what}` failed (wait status {status:#x})\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        );
    }
    Ok(Measured {
        wall,
        max_rss_kib: usage.max_rss_kib,
        user: usage.user,
        sys: usage.sys,
        stdout,
    })
}

struct Usage {
    max_rss_kib: u64,
    user: Duration,
    sys: Duration,
}

/// `wait4` on one child: the rusage it returns is the child's own plus that of every
/// descendant the child waited for (Linux fills it as `RUSAGE_BOTH` of the child), i.e. what a
/// wrapper process would read with `getrusage(RUSAGE_CHILDREN)` after waiting, without the
/// wrapper. `ru_maxrss` is the largest single process in that tree, not a sum.
#[allow(unsafe_code)]
fn wait_with_rusage(pid: u32) -> std::io::Result<(i32, Usage)> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data, valid when zeroed.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own un-reaped child (std did not wait for it), and both
        // out-pointers refer to live locals of the right types.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    Ok((
        status,
        Usage {
            max_rss_kib: u64::try_from(ru.ru_maxrss).unwrap_or(0),
            user: tv(ru.ru_utime),
            sys: tv(ru.ru_stime),
        },
    ))
}

/// Flushes dirty pages (untimed) so that one step's writeback does not land in the next
/// step's measurement.
pub fn sync() -> Result<()> {
    let st = Command::new("sync").status().context("cannot run sync")?;
    if !st.success() {
        bail!("sync failed: {st}");
    }
    Ok(())
}
