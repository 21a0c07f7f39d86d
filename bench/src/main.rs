//! `dits-bench`: `git add` and checkout of one large seeded file with Dits, Git LFS, plain git
//! and `cp` on the same disk in the same run, then the store growth of a sequence of edits.
//! Results go to stdout and, with the machine they ran on, to a markdown file.
//!
//! `dits-bench remote ...` is the second mode: push and clone against a server on loopback,
//! Dits against Git LFS + giftless (see `remote.rs`). `dits-bench mount ...` reads a file
//! through `git dits mount` against the same file on disk (see `mount.rs`). `dits-bench media
//! ...` measures what MP4 edits store with MP4-aware chunking, plain CDC and Git LFS, and what
//! the awareness costs in `git add` (see `media.rs`). `dits-bench transport ...` pushes and
//! clones with Dits over QUIC and over TLS over TCP, alternating, side by side (see
//! `transport.rs`). `dits-bench migrate ...` rewrites one seeded history with `git dits
//! migrate import` and with `git lfs migrate import`, alternating (see `migrate.rs`).
//! `dits-bench files ...` times add, commit, status, switch and checkout of thousands of
//! files with Dits and with Git LFS, alternating (see `files.rs`). `dits-bench locks ...`
//! times lock, unlock, listing, the push check and the read-only checkout (see `locks.rs`).

mod args;
mod cases;
mod content;
mod dits_serve;
mod files;
mod files_report;
mod giftless;
mod locks;
mod media;
mod media_add;
mod media_report;
mod migrate;
mod migrate_report;
mod mount;
mod proc;
mod remote;
mod remote_report;
mod report;
mod server;
mod transport;
mod transport_report;
mod wire;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

const USAGE: &str = "\
usage: dits-bench [--size-mib N] [--repeat K] [--dir DIR] [--out FILE]
                  [--git PATH] [--dits-bin DIR] [--tools LIST] [--keep]
       dits-bench remote --help   (push and clone over loopback, Dits vs Git LFS + giftless)
       dits-bench mount --help    (reading through git dits mount vs the file on disk)
       dits-bench media --help    (MP4 edits and add throughput: MP4-aware vs plain CDC vs Git LFS)
       dits-bench transport --help  (push and clone over QUIC vs TLS over TCP, alternating)
       dits-bench migrate --help    (rewriting a history: git dits vs git lfs migrate import)
       dits-bench files --help      (many files: add, status, switch, checkout; Dits vs Git LFS)
       dits-bench locks --help      (lock, unlock, list, push check, read-only checkout)

  --size-mib N    size of the seeded file (default 1024)
  --repeat K      run each headline operation K times and report the median (default 1)
  --dir DIR       scratch parent directory, on the disk to measure (default <workspace>/target)
  --out FILE      markdown report (default bench/results/local-<date>.md)
  --git PATH      git to run (default /usr/local/bin/git)
  --dits-bin DIR  directory holding git-dits and dits-filter (default <workspace>/target/release)
  --tools LIST    comma-separated subset of git,lfs,dits (default all three)
  --keep          keep the scratch directory and repositories";

struct Args {
    common: args::Common,
    repeat: usize,
    tools: Vec<cases::Tool>,
    keep: bool,
}

fn parse_args() -> Result<Args> {
    let mut common = args::Common::default();
    let (mut repeat, mut tools, mut keep) = (1, cases::Tool::ALL.to_vec(), false);
    args::parse(
        std::env::args_os().skip(1),
        USAGE,
        &mut common,
        |flag, value| {
            match flag {
                "--repeat" => repeat = value()?.to_string_lossy().parse().context("--repeat")?,
                "--tools" => {
                    tools = value()?
                        .to_string_lossy()
                        .split(',')
                        .map(|t| {
                            cases::Tool::ALL
                                .into_iter()
                                .find(|tool| tool.slug() == t)
                                .with_context(|| format!("unknown tool {t:?} in --tools\n{USAGE}"))
                        })
                        .collect::<Result<_>>()?;
                }
                "--keep" => keep = true,
                _ => return Ok(false),
            }
            Ok(true)
        },
    )?;
    if common.size_mib < 16 || repeat == 0 {
        bail!("--size-mib must be at least 16 and --repeat at least 1");
    }
    Ok(Args {
        common,
        repeat,
        tools,
        keep,
    })
}

fn workspace() -> PathBuf {
    let bench = Path::new(env!("CARGO_MANIFEST_DIR"));
    bench.parent().unwrap_or(bench).to_path_buf()
}

fn free_bytes(dir: &Path) -> Result<u64> {
    let mut cmd = Command::new("df");
    cmd.args(["-B1", "--output=avail"]).arg(dir);
    let out = proc::run(cmd)?;
    out.lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| {
            format!(
                "cannot read free space of {} from df: {out:?}",
                dir.display()
            )
        })
}

/// Copies the Dits programs `names` from `from` into a new `<work>/bin` and returns it: a
/// snapshot, so a rebuild during the run cannot change what is measured.
fn snapshot_bins(from: &Path, work: &Path, names: &[&str]) -> Result<PathBuf> {
    let bin = work.join("bin");
    std::fs::create_dir_all(&bin).context("creating the binaries' snapshot directory")?;
    for name in names {
        let src = from.join(name);
        std::fs::copy(&src, bin.join(name)).with_context(|| {
            format!(
                "copying {}; hint: run `cargo build --release --bins`",
                src.display()
            )
        })?;
    }
    Ok(bin)
}

/// A scratch directory under `parent` (created if needed), once it is known to have `need`
/// bytes free.
fn scratch_dir(parent: &Path, need: u64, prefix: &str) -> Result<tempfile::TempDir> {
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let free = free_bytes(parent)?;
    if free < need {
        bail!(
            "{} has {} free, the run needs about {}; hint: pass --dir on a larger disk or a smaller --size-mib",
            parent.display(),
            report::bytes(free),
            report::bytes(need)
        );
    }
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(parent)
        .with_context(|| format!("creating a scratch directory in {}", parent.display()))
}

fn run() -> Result<()> {
    let args = parse_args()?;
    let ws = workspace();
    let dits_bin = args.common.dits_bin_dir(&ws);
    let dits_bins = if args.tools.contains(&cases::Tool::Dits) {
        &["git-dits", "dits-filter"][..]
    } else {
        &[]
    };
    for bin in dits_bins {
        if !dits_bin.join(bin).is_file() {
            bail!(
                "{} not found; hint: run `cargo build --release --bins` in {}",
                dits_bin.join(bin).display(),
                ws.display()
            );
        }
    }
    let size = args.common.size_mib * content::MIB;
    let parent = args.common.dir.unwrap_or_else(|| ws.join("target"));
    // At most the input plus one case (work tree, six versions in plain git, the known file).
    let scratch = scratch_dir(&parent, 12 * size, "dits-bench-")?;
    let home = scratch.path().join("home");
    std::fs::create_dir_all(&home).context("creating the temporary HOME")?;
    let bin = snapshot_bins(&dits_bin, scratch.path(), dits_bins)?;
    let runner = proc::Runner::new(&args.common.git, &bin, &home)?;

    let machine = report::machine(&runner, scratch.path(), &args.common.git, &ws, &dits_bin);
    let cfg = cases::Config {
        size,
        repeat: args.repeat,
        work: scratch.path().to_path_buf(),
        tools: args.tools,
        keep: args.keep,
    };
    let results = cases::run(&cfg, &runner)?;
    let params = report::Params {
        size,
        repeat: args.repeat,
    };
    let md = report::render(&machine, &params, &results);
    println!("{md}");

    let out = report::write(args.common.out, &ws, "local", &md)?;
    eprintln!("report written to {}", out.display());
    if args.keep {
        eprintln!("kept {}", scratch.keep().display());
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1).peekable();
    let result = if args.peek().is_some_and(|a| a == "remote") {
        remote::run(args.skip(1))
    } else if args.peek().is_some_and(|a| a == "mount") {
        mount::run(args.skip(1))
    } else if args.peek().is_some_and(|a| a == "media") {
        media::run(args.skip(1))
    } else if args.peek().is_some_and(|a| a == "transport") {
        transport::run(args.skip(1))
    } else if args.peek().is_some_and(|a| a == "migrate") {
        migrate::run(args.skip(1))
    } else if args.peek().is_some_and(|a| a == "files") {
        files::run(args.skip(1))
    } else if args.peek().is_some_and(|a| a == "locks") {
        locks::run(args.skip(1))
    } else {
        run()
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dits-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
