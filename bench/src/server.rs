//! Servers the remote benchmark starts itself: a child process whose output goes to a log file,
//! killed and reaped when its guard is dropped, and what it cost as read from `/proc`.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long a server may take to start answering before the run gives up.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running server. Dropping it kills the server's whole process group (SIGKILL), so a
/// wrapper's children go too, and reaps it, on every path out of the run, including errors.
pub struct Server {
    name: String,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Server {
    /// Starts `cmd` in a process group of its own, stdin closed, stdout to `<log>.out` and
    /// stderr to `<log>.err`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Server> {
        let with_ext = |ext: &str| {
            let mut p = log.as_os_str().to_owned();
            p.push(ext);
            PathBuf::from(p)
        };
        let (stdout, stderr) = (with_ext(".out"), with_ext(".err"));
        let create =
            |p: &Path| File::create(p).with_context(|| format!("creating {}", p.display()));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(create(&stdout)?)
            .stderr(create(&stderr)?)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start the {name} server"))?;
        Ok(Server {
            name: name.to_string(),
            child,
            stdout,
            stderr,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of the server's stdout and stderr, for error messages.
    pub fn log_tail(&self) -> String {
        let tail = |p: &Path| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(30);
            lines[from..].join("\n")
        };
        format!(
            "--- {} server stdout ({}), last lines:\n{}\n--- {} server stderr ({}), last lines:\n{}",
            self.name,
            self.stdout.display(),
            tail(&self.stdout),
            self.name,
            self.stderr.display(),
            tail(&self.stderr)
        )
    }

    /// Fails, with the log, if the server has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait().context("polling the server")? {
            bail!(
                "the {} server exited ({status})\n{}",
                self.name,
                self.log_tail()
            );
        }
        Ok(())
    }

    /// Waits until a TCP connection to `addr` succeeds.
    pub fn wait_for_tcp(&mut self, addr: SocketAddr) -> Result<()> {
        let start = Instant::now();
        loop {
            self.check_alive()?;
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if start.elapsed() > START_TIMEOUT {
                bail!(
                    "the {} server did not answer on {addr} within {:?}\n{}",
                    self.name,
                    START_TIMEOUT,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the first line of the server's stdout is complete and returns it.
    pub fn wait_for_first_line(&mut self) -> Result<String> {
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.stdout).unwrap_or_default();
            if let Some((line, _)) = text.split_once('\n') {
                return Ok(line.trim_end_matches('\r').to_string());
            }
            self.check_alive()?;
            if start.elapsed() > START_TIMEOUT {
                bail!(
                    "the {} server printed no complete line on stdout within {:?}\n{}",
                    self.name,
                    START_TIMEOUT,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The first complete stdout line that `want` accepts, waiting up to `patience` for it.
    pub fn wait_for_stdout_line(
        &self,
        want: impl Fn(&str) -> bool,
        patience: Duration,
    ) -> Option<String> {
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.stdout).unwrap_or_default();
            let complete = text.rsplit_once('\n').map_or("", |(done, _)| done);
            if let Some(l) = complete.lines().find(|l| want(l)) {
                return Some(l.trim_end_matches('\r').to_string());
            }
            if start.elapsed() > patience {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// CPU time and memory high-water mark of the server so far.
    pub fn usage(&self) -> ServerUsage {
        ServerUsage::of(self.pid())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        kill_group(self.pid());
        // Already-exited is fine; either way the child is reaped so no zombie is left behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIGKILL to the process group `pgid` (the server and anything it started).
#[allow(unsafe_code)]
fn kill_group(pgid: u32) {
    if let Ok(pgid) = libc::pid_t::try_from(pgid) {
        if pgid > 1 {
            // SAFETY: kill(2) with a negative pid signals that process group; no memory is
            // involved. The group is the one `spawn` created for our own, not yet reaped, child,
            // so its id cannot have been reused.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago (the listener is closed before returning).
pub fn free_tcp_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0 to find a free port")?;
    Ok(l.local_addr()
        .context("local address of a listener")?
        .port())
}

/// What a server process had used at one moment, from `/proc/PID/stat` and `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerUsage {
    /// User + system time of the process and of the children it has waited for.
    pub cpu: Duration,
    /// `VmHWM`: the largest resident set the process has had since it started.
    pub peak_rss_kib: u64,
}

impl ServerUsage {
    fn of(pid: u32) -> ServerUsage {
        let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                // The command name (field 2) may hold spaces; fields after it are fixed.
                let rest = &s[s.rfind(')')? + 1..];
                let f: Vec<&str> = rest.split_whitespace().collect();
                // utime, stime, cutime, cstime are fields 14–17, i.e. 11–14 after the name.
                let ticks: u64 = f
                    .get(11..15)?
                    .iter()
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum();
                Some(Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
            })
            .unwrap_or_default();
        let peak_rss_kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0);
        ServerUsage { cpu, peak_rss_kib }
    }

    /// CPU used between `before` and `self`.
    pub fn cpu_since(&self, before: &ServerUsage) -> Duration {
        self.cpu.saturating_sub(before.cpu)
    }
}

fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}
