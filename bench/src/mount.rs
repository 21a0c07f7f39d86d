//! `dits-bench mount`: reading a large file through `git dits mount` against reading the
//! same file hydrated on disk, in one run, with a `git dits serve` on loopback.
//!
//! Measured (page cache dropped before each cold step when run as root):
//! - time to first byte: open + read of 4 KiB at the start and at the middle;
//! - bytes fetched by 1 MiB reads at ten seeded offsets, against the bytes read;
//! - cold sequential read (every chunk fetched from the server) of a fresh skip-smudge clone;
//! - warm sequential read of the same mount once its chunks are local.

use std::fs;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::proc::Runner;
use crate::{args, content, dits_serve, report};

const USAGE: &str = "\
usage: dits-bench mount [--size-mib N] [--dir DIR] [--out FILE] [--git PATH] [--dits-bin DIR]

  --size-mib N    size of the seeded file (default 1024)
  --dir DIR       scratch parent directory (default <workspace>/target)
  --out FILE      markdown report (default bench/results/mount-<date>.md)
  --git PATH      git to run (default /usr/local/bin/git)
  --dits-bin DIR  directory holding the Dits binaries (default <workspace>/target/release)";

const REPO: &str = "bench/mount";
const RANDOM_READS: u64 = 10;
const RANDOM_LEN: u64 = 1 << 20;

fn parse_args(args: impl Iterator<Item = std::ffi::OsString>) -> Result<args::Common> {
    let mut common = args::Common::default();
    args::parse(args, USAGE, &mut common, |_, _| Ok(false))?;
    if common.size_mib < 64 {
        bail!("--size-mib must be at least 64 (ten 1 MiB random reads need room)");
    }
    Ok(common)
}

/// One mount of one clone, unmounted on drop.
struct Mount {
    dir: PathBuf,
    clone: PathBuf,
    pid: u32,
}

impl Mount {
    fn start(runner: &Runner, clone: &Path, dir: &Path) -> Result<Mount> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut cmd = runner.git_command(clone, &["dits", "mount"]);
        cmd.arg(dir);
        let out = cmd.output().context("running git dits mount")?;
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!("git dits mount failed: {err}");
        }
        let pid = err
            .split_once("pid ")
            .and_then(|(_, r)| r.split(',').next())
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("no pid in the output of git dits mount: {err}"))?;
        Ok(Mount {
            dir: dir.to_path_buf(),
            clone: clone.to_path_buf(),
            pid,
        })
    }

    /// Chunk payload the mount has fetched so far (its log's `fetched ... bytes=` lines).
    fn fetched(&self) -> u64 {
        let log = fs::read_to_string(self.clone.join(".git/dits/mount.log")).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("fetched chunks="))
            .filter_map(|l| l.rsplit_once("bytes="))
            .filter_map(|(_, b)| b.trim().parse::<u64>().ok())
            .sum()
    }

    /// Waits until the fetched total stops changing (readahead finished).
    fn settled(&self) -> u64 {
        let mut last = self.fetched();
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let now = self.fetched();
            if now == last {
                return now;
            }
            last = now;
        }
    }

    /// Peak resident memory of the mount process, MiB.
    fn peak_rss_mib(&self) -> f64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("fusermount3")
            .args(["-u", "-z", "-q"])
            .arg(&self.dir)
            .status();
    }
}

/// Drops the page cache so the next read comes from the disk (or, through the mount, from
/// the store and the server); returns whether it could (root only).
fn drop_caches() -> bool {
    let _ = crate::proc::sync();
    fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

/// Open + read 4 KiB at `offset`: time to first byte.
fn first_byte(path: &Path, offset: u64) -> Result<Duration> {
    let start = Instant::now();
    let f = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut buf = vec![0u8; 4096];
    f.read_exact_at(&mut buf, offset)
        .with_context(|| format!("reading {} at {offset}", path.display()))?;
    Ok(start.elapsed())
}

/// Reads the whole file with 1 MiB reads; returns the time and its BLAKE3.
fn sequential(path: &Path) -> Result<(Duration, blake3::Hash)> {
    let start = Instant::now();
    let mut f = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut hash_time = Duration::ZERO;
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        // Hashing proves the bytes right but is not part of reading: its time is taken out.
        let t = Instant::now();
        h.update(&buf[..n]);
        hash_time += t.elapsed();
    }
    Ok((start.elapsed() - hash_time, h.finalize()))
}

fn random_offsets(size: u64) -> Vec<u64> {
    // A fixed LCG: the same offsets every run, spread over the file, 4 KiB aligned.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..RANDOM_READS)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((x >> 11) % (size - RANDOM_LEN)) & !4095
        })
        .collect()
}

struct Figures {
    size: u64,
    cache_dropped: bool,
    ttfb_mount: [Duration; 2],
    ttfb_disk: [Duration; 2],
    random_read: u64,
    random_fetched: u64,
    random_chunk_bound: u64,
    random_time: Duration,
    cold_mount: Duration,
    cold_disk: Duration,
    warm_mount: Duration,
    rss_mib: f64,
}

pub fn run(args: impl Iterator<Item = std::ffi::OsString>) -> Result<()> {
    let args = parse_args(args)?;
    let ws = crate::workspace();
    let dits_bin = args.dits_bin.unwrap_or_else(|| ws.join("target/release"));
    let size = args.size_mib * content::MIB;
    let parent = args.dir.unwrap_or_else(|| ws.join("target"));
    // The input, the server's copy, a hydrated clone and two clones' fetched chunks.
    let scratch = crate::scratch_dir(&parent, 8 * size, "dits-bench-mount-")?;
    let work = scratch.path().to_path_buf();
    let bin = crate::snapshot_bins(
        &dits_bin,
        &work,
        &["git-dits", "dits-filter", "git-remote-dits"],
    )?;
    let home = work.join("home");
    fs::create_dir_all(&home)?;
    let runner = Runner::new(&args.git, &bin, &home)?;
    let machine = report::machine(&runner, &work, &args.git, &ws, &dits_bin);

    // Server, token, trust.
    let server = dits_serve::start_for_client(&runner, &bin, &work, REPO)?;
    runner.git(&work, &["dits", "install", "--global", "-q"])?;

    // The repository, pushed.
    let src = work.join("src");
    fs::create_dir_all(&src)?;
    runner.git(&src, &["init", "-q"])?;
    runner.git(&src, &["dits", "track", "-q", "*.bin"])?;
    eprintln!("generating and pushing {}", report::bytes(size));
    content::create_seeded(&src.join("media.bin"), "mount", size)?;
    let want = content::hash_file(&src.join("media.bin"))?;
    runner.git(&src, &["add", "-A"])?;
    runner.git(&src, &["commit", "-q", "-m", "media"])?;
    let url = server.url(REPO);
    runner.git(&src, &["push", "-q", &url, "HEAD:refs/heads/main"])?;

    // The same file hydrated on disk: a full clone.
    runner.git(&work, &["clone", "-q", &url, "hydrated"])?;
    let disk_file = work.join("hydrated/media.bin");
    let skip_clone = |name: &str| -> Result<PathBuf> {
        let mut cmd = runner.git_command(&work, &["clone", "-q", &url, name]);
        cmd.env("GIT_DITS_SKIP_SMUDGE", "1");
        crate::proc::run(cmd)?;
        Ok(work.join(name))
    };

    // Random reads and first bytes on a fresh skip-smudge clone.
    let a = Mount::start(&runner, &skip_clone("lazy-a")?, &work.join("mnt-a"))?;
    let mounted = a.dir.join("media.bin");
    let cache_dropped = drop_caches();
    let ttfb_mount = [first_byte(&mounted, 0)?, first_byte(&mounted, size / 2)?];
    drop_caches();
    let ttfb_disk = [
        first_byte(&disk_file, 0)?,
        first_byte(&disk_file, size / 2)?,
    ];
    let before = a.settled();
    let f = fs::File::open(&mounted)?;
    let d = fs::File::open(&disk_file)?;
    let mut buf = vec![0u8; RANDOM_LEN as usize];
    let mut expect = vec![0u8; RANDOM_LEN as usize];
    let start = Instant::now();
    for &o in &random_offsets(size) {
        f.read_exact_at(&mut buf, o)?;
        d.read_exact_at(&mut expect, o)?;
        if buf != expect {
            bail!("WRONG BYTES: the mount's 1 MiB at {o} differs from the file");
        }
    }
    let random_time = start.elapsed();
    let random_fetched = a.settled() - before;
    drop(a);

    // Cold then warm sequential reads on a second fresh clone.
    let b = Mount::start(&runner, &skip_clone("lazy-b")?, &work.join("mnt-b"))?;
    let mounted = b.dir.join("media.bin");
    drop_caches();
    let (cold_mount, got) = sequential(&mounted)?;
    if got != want {
        bail!("WRONG BYTES: the cold read through the mount has BLAKE3 {got}, expected {want}");
    }
    drop_caches();
    let (cold_disk, _) = sequential(&disk_file)?;
    b.settled();
    drop_caches();
    let (warm_mount, got) = sequential(&mounted)?;
    if got != want {
        bail!("WRONG BYTES: the warm read through the mount has BLAKE3 {got}, expected {want}");
    }
    let rss_mib = b.peak_rss_mib();
    drop(b);

    let figures = Figures {
        size,
        cache_dropped,
        ttfb_mount,
        ttfb_disk,
        random_read: RANDOM_READS * RANDOM_LEN,
        random_fetched,
        // The target: at most twice the bytes read plus one chunk (max 256 KiB) per read.
        random_chunk_bound: 2 * RANDOM_READS * RANDOM_LEN + RANDOM_READS * (256 << 10),
        random_time,
        cold_mount,
        cold_disk,
        warm_mount,
        rss_mib,
    };
    let md = render(&machine, &figures);
    println!("{md}");
    let out = report::write(args.out, &ws, "mount", &md)?;
    eprintln!("report written to {}", out.display());
    Ok(())
}

fn rate(bytes: u64, d: Duration) -> String {
    format!("{:.0} MB/s", bytes as f64 / d.as_secs_f64() / 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn render(machine: &[(String, String)], f: &Figures) -> String {
    use std::fmt::Write as _;
    let mut md = String::new();
    let _ = writeln!(md, "# git dits mount vs the hydrated file on disk\n");
    for (k, v) in machine {
        let _ = writeln!(md, "- {k}: {v}");
    }
    let _ = writeln!(
        md,
        "- file: {} of seeded random bytes; server `git dits serve` on 127.0.0.1; page cache {}\n",
        report::bytes(f.size),
        if f.cache_dropped {
            "dropped before each cold step"
        } else {
            "NOT dropped (not root): cold figures are warm"
        }
    );
    let _ = writeln!(md, "| measure | mount | on disk | mount / disk | target |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    let names = ["first byte at 0 (open + 4 KiB)", "first byte at the middle"];
    for (i, name) in names.iter().enumerate() {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1}× | < 50 ms |",
            name,
            ms(f.ttfb_mount[i]),
            ms(f.ttfb_disk[i]),
            f.ttfb_mount[i].as_secs_f64() / f.ttfb_disk[i].as_secs_f64()
        );
    }
    let _ = writeln!(
        md,
        "| sequential read, cold (chunks from the server) | {} | {} (cold disk) | {:.2}× | ≥ 300 MB/s |",
        rate(f.size, f.cold_mount),
        rate(f.size, f.cold_disk),
        f.cold_disk.as_secs_f64() / f.cold_mount.as_secs_f64()
    );
    let _ = writeln!(
        md,
        "| sequential read, warm (chunks local, page cache dropped) | {} | {} (cold disk) | {:.2}× | ≥ 1 GB/s |",
        rate(f.size, f.warm_mount),
        rate(f.size, f.cold_disk),
        f.cold_disk.as_secs_f64() / f.warm_mount.as_secs_f64()
    );
    let _ = writeln!(
        md,
        "| {RANDOM_READS} random reads of 1 MiB: bytes fetched | {} in {} | {} read | {:.2}× the bytes read | ≤ {} |",
        report::bytes(f.random_fetched),
        ms(f.random_time),
        report::bytes(f.random_read),
        f.random_fetched as f64 / f.random_read as f64,
        report::bytes(f.random_chunk_bound)
    );
    let _ = writeln!(
        md,
        "\nPeak RSS of the mount process during the sequential reads: {:.1} MiB.\n\nReproduce: `cargo build --release --bins -p dits -p dits-bench && target/release/dits-bench mount --size-mib {}` (as root, for the page-cache drops).",
        f.rss_mib,
        f.size >> 20
    );
    md
}
