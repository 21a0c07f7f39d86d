//! `dits-bench transport`: the same push and clone over Dits' two transports, QUIC and TLS 1.3
//! over TCP (yamux), side by side: for each workload, N runs of push + clone with
//! `dits.transport=quic` and with `dits.transport=tcp`, alternating (QUIC, TCP, QUIC, TCP, ...),
//! each push into a fresh `git dits serve --transport both` on loopback. The server, the timed
//! step and the checks are those of `dits-bench remote` (see `remote.rs`).

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::proc::Runner;
use crate::remote::{self, Step, REPO};
use crate::wire::IpCounters;
use crate::{args, content, dits_serve, report, transport_report};

const USAGE: &str = "\
usage: dits-bench transport [--runs N] [--size-mib N] [--files N] [--file-kib K]
                            [--workloads LIST] [--quick] [--dir DIR] [--out FILE]
                            [--git PATH] [--dits-bin DIR] [--keep]

Push and clone with dits.transport=quic and with dits.transport=tcp against the same
`git dits serve --transport both` on loopback, alternating QUIC, TCP, QUIC, TCP, ...

  --runs N          push + clone runs per transport and workload; medians are reported
                    (default 5)
  --size-mib N      size of the one-file workload (default 1024)
  --files N         number of files of the many-files workload (default 2000)
  --file-kib K      size of each of them, KiB (default 200)
  --workloads LIST  comma-separated subset of big,small (default both)
  --quick           a smoke run: --runs 1 --size-mib 64 --files 200 unless given
  --dir DIR         scratch parent directory (default <workspace>/target)
  --out FILE        markdown report (default bench/results/transport-local-<date>.md)
  --git PATH        git to run (default /usr/local/bin/git)
  --dits-bin DIR    directory holding git-dits, dits-filter and git-remote-dits
                    (default <workspace>/target/release)
  --keep            keep the scratch directory, repositories and server stores

Pushes and clones go over loopback: nothing else should use the network during the run.";

/// The server side of every trial: both transports on one port (UDP and TCP).
const SERVE_ARGS: [&str; 2] = ["--transport", "both"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Quic,
    Tcp,
}

impl Transport {
    /// In the order each run does them.
    pub const BOTH: [Transport; 2] = [Transport::Quic, Transport::Tcp];

    /// The value of `dits.transport`.
    pub fn config(self) -> &'static str {
        match self {
            Transport::Quic => "quic",
            Transport::Tcp => "tcp",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Transport::Quic => "QUIC",
            Transport::Tcp => "TCP",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One large file.
    Big,
    /// Many small files.
    Small,
}

impl Kind {
    fn slug(self) -> &'static str {
        match self {
            Kind::Big => "big",
            Kind::Small => "small",
        }
    }
}

/// What one workload's commit holds: `files` seeded files of `file_size` bytes each.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub kind: Kind,
    pub files: u64,
    pub file_size: u64,
}

impl Workload {
    pub fn total(&self) -> u64 {
        self.files * self.file_size
    }

    pub fn label(&self) -> String {
        match self.kind {
            Kind::Big => format!("one file of {}", report::bytes(self.file_size)),
            Kind::Small => format!(
                "{} files of {} ({} in all)",
                self.files,
                report::bytes(self.file_size),
                report::bytes(self.total())
            ),
        }
    }

    /// Path in the repository of file `i`, and the seed of its bytes.
    fn file(&self, i: u64) -> (String, String) {
        match self.kind {
            // The seed of the remote benchmark's file: the same bytes.
            Kind::Big => ("big.bin".into(), "source".into()),
            Kind::Small => (format!("small/f{i:05}.bin"), format!("small-{i}")),
        }
    }
}

struct Args {
    common: args::Common,
    runs: usize,
    files: u64,
    file_kib: u64,
    kinds: Vec<Kind>,
    keep: bool,
}

const NOT_GIVEN: u64 = u64::MAX;

fn parse_args(args: impl Iterator<Item = std::ffi::OsString>) -> Result<Args> {
    let mut common = args::Common {
        // Not given (no one passes this), so that --quick can tell.
        size_mib: NOT_GIVEN,
        ..args::Common::default()
    };
    let (mut runs, mut files, mut file_kib) = (None, None, 200);
    let (mut kinds, mut quick, mut keep) = (vec![Kind::Big, Kind::Small], false, false);
    let number = |v: std::ffi::OsString, flag: &str| -> Result<u64> {
        v.to_string_lossy()
            .parse()
            .with_context(|| format!("{flag} needs a whole number\n{USAGE}"))
    };
    args::parse(args, USAGE, &mut common, |flag, value| {
        match flag {
            "--runs" => runs = Some(number(value()?, flag)?),
            "--files" => files = Some(number(value()?, flag)?),
            "--file-kib" => file_kib = number(value()?, flag)?,
            "--workloads" => {
                kinds = value()?
                    .to_string_lossy()
                    .split(',')
                    .map(|w| match w {
                        "big" => Ok(Kind::Big),
                        "small" => Ok(Kind::Small),
                        _ => bail!("unknown workload {w:?} in --workloads (big or small)\n{USAGE}"),
                    })
                    .collect::<Result<_>>()?;
            }
            "--quick" => quick = true,
            "--keep" => keep = true,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if common.size_mib == NOT_GIVEN {
        common.size_mib = if quick { 64 } else { 1024 };
    }
    let runs = runs.unwrap_or(if quick { 1 } else { 5 });
    let files = files.unwrap_or(if quick { 200 } else { 2000 });
    if runs == 0 || files == 0 || file_kib == 0 || common.size_mib == 0 {
        bail!("--runs, --size-mib, --files and --file-kib must be at least 1\n{USAGE}");
    }
    if kinds.is_empty() {
        bail!("--workloads names no workload\n{USAGE}");
    }
    Ok(Args {
        common,
        runs: usize::try_from(runs).context("--runs")?,
        files,
        file_kib,
        kinds,
        keep,
    })
}

/// One push and the clone of what it pushed, over one transport, into a fresh server.
#[derive(Debug, Clone)]
pub struct Trial {
    /// 1-based.
    pub run: usize,
    pub transport: Transport,
    pub push: Step,
    pub clone: Step,
    pub push_ip: IpCounters,
    pub clone_ip: IpCounters,
    /// `VmHWM` of the server at the end of the trial (push and clone).
    pub server_peak_rss_kib: u64,
}

pub struct WorkloadResult {
    pub workload: Workload,
    /// In the order they ran.
    pub trials: Vec<Trial>,
}

pub struct Results {
    pub runs: usize,
    pub workloads: Vec<WorkloadResult>,
}

/// Entry point of the mode; `args` are those after `transport`.
pub fn run(args: impl Iterator<Item = std::ffi::OsString>) -> Result<()> {
    let args = parse_args(args)?;
    let ws = crate::workspace();
    let dits_bin = args.common.dits_bin_dir(&ws);
    const DITS: [&str; 3] = ["git-dits", "dits-filter", "git-remote-dits"];
    if let Some(p) = DITS.iter().map(|n| dits_bin.join(n)).find(|p| !p.is_file()) {
        bail!(
            "{} not found; hint: run `cargo build --release --bins` in {}",
            p.display(),
            ws.display()
        );
    }
    let workloads: Vec<Workload> = args
        .kinds
        .iter()
        .map(|&kind| match kind {
            Kind::Big => Workload {
                kind,
                files: 1,
                file_size: args.common.size_mib * content::MIB,
            },
            Kind::Small => Workload {
                kind,
                files: args.files,
                file_size: args.file_kib * 1024,
            },
        })
        .collect();
    // One workload at a time: the client's work tree and store, one server's store and one
    // clone's work tree and store, about 5x the content; and slack for git's own files.
    let largest = workloads.iter().map(Workload::total).max().unwrap_or(0);
    let parent = args.common.dir.clone().unwrap_or_else(|| ws.join("target"));
    let scratch = crate::scratch_dir(&parent, 6 * largest + 256 * content::MIB, "dits-bench-tr-")?;
    let (work, _scratch) = if args.keep {
        let kept = scratch.keep();
        eprintln!("keeping {}", kept.display());
        (kept, None)
    } else {
        (scratch.path().to_path_buf(), Some(scratch))
    };
    let bin = crate::snapshot_bins(&dits_bin, &work, &DITS)?;
    let home = work.join("home");
    fs::create_dir_all(&home).context("creating the temporary HOME")?;
    let runner = Runner::new(&args.common.git, &bin, &home)?;
    if let Some(why) = dits_serve::unavailable(&runner, &work) {
        bail!("{why}");
    }
    runner.git(&work, &["dits", "install", "--global", "-q"])?;
    let machine = report::machine(&runner, &work, &args.common.git, &ws, &dits_bin);

    let mut results = Results {
        runs: args.runs,
        workloads: Vec::new(),
    };
    for w in workloads {
        let trials = run_workload(&runner, &bin, &work, &w, args.runs, args.keep)?;
        results.workloads.push(WorkloadResult {
            workload: w,
            trials,
        });
    }

    let md = transport_report::render(&machine, &results);
    println!("{md}");
    let out = report::write(args.common.out, &ws, "transport-local", &md)?;
    eprintln!("report written to {}", out.display());
    if args.keep {
        eprintln!("kept {}", work.display());
    }
    Ok(())
}

/// The workload's client repository, committed once (untimed), then the runs.
fn run_workload(
    runner: &Runner,
    bin: &Path,
    work: &Path,
    w: &Workload,
    runs: usize,
    keep: bool,
) -> Result<Vec<Trial>> {
    let dir = work.join(w.kind.slug());
    let client = dir.join("client");
    fs::create_dir_all(&client).with_context(|| format!("creating {}", client.display()))?;
    runner.git(&client, &["init", "-q", "-b", "main"])?;
    runner.git(&client, &["config", "gc.auto", "0"])?;
    runner.git(&client, &["config", "maintenance.auto", "false"])?;
    runner.git(&client, &["dits", "install", "--local", "-q"])?;
    runner.git(&client, &["dits", "track", "*.bin"])?;
    runner.git(&client, &["add", ".gitattributes"])?;
    runner.git(&client, &["commit", "-q", "-m", "init"])?;
    eprintln!("{}: generating seeded content", w.label());
    let mut files = Vec::new();
    for i in 0..w.files {
        let (rel, seed) = w.file(i);
        let path = client.join(&rel);
        if let Some(d) = path.parent() {
            fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        content::create_seeded(&path, &seed, w.file_size)?;
        files.push((rel, content::hash_file(&path)?));
    }
    eprintln!("{}: git add + commit (untimed)", w.label());
    runner.git(&client, &["add", "-A"])?;
    runner.git(&client, &["commit", "-q", "-m", "content"])?;

    let mut trials = Vec::new();
    for run in 1..=runs {
        for t in Transport::BOTH {
            let trial = run_trial(runner, bin, &dir, &client, w, &files, run, t, keep)?;
            eprintln!(
                "{}: run {run}/{runs} {}: push {}, clone {}",
                w.label(),
                t.name(),
                report::secs(trial.push.run.wall),
                report::secs(trial.clone.run.wall)
            );
            trials.push(trial);
        }
    }
    if !keep {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(trials)
}

/// A fresh server; the client's commit pushed to it (timed), then cloned from it (timed) and
/// verified byte for byte, both with `git -c dits.transport=<t>`.
#[allow(clippy::too_many_arguments)]
fn run_trial(
    runner: &Runner,
    bin: &Path,
    dir: &Path,
    client: &Path,
    w: &Workload,
    files: &[(String, blake3::Hash)],
    run: usize,
    t: Transport,
    keep: bool,
) -> Result<Trial> {
    let tdir = dir.join(format!("run{run}-{}", t.config()));
    fs::create_dir_all(&tdir).with_context(|| format!("creating {}", tdir.display()))?;
    let mut server = dits_serve::start_for_client_with(runner, bin, &tdir, REPO, &SERVE_ARGS)?;
    // QUIC shows itself in the QUIC trials (dits.transport=quic has no fallback); TCP here.
    server
        .server
        .wait_for_tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, server.port)))?;
    let result = trial_steps(runner, &server, &tdir, client, w, files, run, t);
    let result = result.map_err(|e| {
        anyhow::anyhow!(
            "{}, run {run}, {}: {e:#}\n{}",
            w.label(),
            t.name(),
            server.server.log_tail()
        )
    });
    drop(server);
    if !keep {
        fs::remove_dir_all(&tdir).with_context(|| format!("removing {}", tdir.display()))?;
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn trial_steps(
    runner: &Runner,
    server: &dits_serve::DitsServer,
    tdir: &Path,
    client: &Path,
    w: &Workload,
    files: &[(String, blake3::Hash)],
    run: usize,
    t: Transport,
) -> Result<Trial> {
    let setting = format!("dits.transport={}", t.config());
    let url = server.url(REPO);
    // A remote of its own per trial: no remote-tracking refs from an earlier push.
    let remote = format!("run{run}-{}", t.config());
    runner.git(client, &["remote", "add", &remote, &url])?;

    let before = IpCounters::read()?;
    let push = remote::step(
        runner.git_command(client, &["-c", &setting, "push", "-q", &remote, "main"]),
        &server.server,
    )?;
    let push_ip = IpCounters::read()?.since(&before);
    check_moved(&push, w, t, "push")?;
    check_transport(push_ip, t, "push")?;

    let clone_dir: PathBuf = tdir.join("clone");
    let before = IpCounters::read()?;
    let mut cmd = runner.git_command(tdir, &["-c", &setting, "clone", "-q", &url]);
    cmd.arg(&clone_dir);
    let clone = remote::step(cmd, &server.server)?;
    let clone_ip = IpCounters::read()?.since(&before);
    check_moved(&clone, w, t, "clone")?;
    check_transport(clone_ip, t, "clone")?;
    if runner
        .git(&clone_dir, &["rev-parse", "-q", "--verify", "HEAD"])
        .is_err()
    {
        bail!("`git clone {url}` checked out no commit");
    }
    for (rel, hash) in files {
        remote::verify(
            &clone_dir.join(rel),
            hash,
            &format!("clone over {}", t.name()),
        )?;
    }
    runner.git(client, &["remote", "remove", &remote])?;
    Ok(Trial {
        run,
        transport: t,
        push,
        clone,
        push_ip,
        clone_ip,
        server_peak_rss_kib: server.server.usage().peak_rss_kib,
    })
}

/// Every trial goes to an empty server, so each push and clone moves all the content.
fn check_moved(step: &Step, w: &Workload, t: Transport, what: &str) -> Result<()> {
    if step.wire < w.total() {
        bail!(
            "the {what} over {} put {} on loopback, less than the {} of content: it did not \
             move everything, so it would not measure the transport",
            t.name(),
            report::bytes(step.wire),
            report::bytes(w.total())
        );
    }
    Ok(())
}

/// The transport asked for is the one whose packets grew the most.
fn check_transport(ip: IpCounters, t: Transport, what: &str) -> Result<()> {
    let (udp, tcp) = (ip.udp_out_datagrams, ip.tcp_out_segs);
    let ok = match t {
        Transport::Quic => udp > tcp,
        Transport::Tcp => tcp > udp,
    };
    if !ok {
        bail!(
            "the {what} with dits.transport={} sent {udp} UDP datagrams and {tcp} TCP segments: \
             it did not go over {}",
            t.config(),
            t.name()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Args> {
        parse_args(v.iter().map(std::ffi::OsString::from))
    }

    #[test]
    fn defaults_and_quick() -> Result<()> {
        let a = args(&[])?;
        assert_eq!(
            (a.runs, a.common.size_mib, a.files, a.file_kib),
            (5, 1024, 2000, 200)
        );
        let q = args(&["--quick"])?;
        assert_eq!((q.runs, q.common.size_mib, q.files), (1, 64, 200));
        let q = args(&["--size-mib", "32", "--quick", "--runs", "3"])?;
        assert_eq!((q.runs, q.common.size_mib, q.files), (3, 32, 200));
        assert_eq!(args(&["--workloads", "small"])?.kinds, vec![Kind::Small]);
        assert!(args(&["--workloads", "huge"]).is_err());
        assert!(args(&["--runs", "0"]).is_err());
        assert!(args(&["--size-mib", "0"]).is_err());
        Ok(())
    }
}
