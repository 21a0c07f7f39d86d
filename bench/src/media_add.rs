//! `dits-bench media`, second part: what MP4 awareness costs in `git add` of a large MP4,
//! Dits MP4-aware against plain CDC, with Git LFS for reference.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::media::Variant;
use crate::proc::{self, Measured, Runner};
use crate::{content, report};

/// The timed `git add` of the big file, per variant.
pub struct Throughput {
    pub size: u64,
    pub duration: String,
    pub made_in: Duration,
    /// Every run per variant, in the order of `Variant::ALL`.
    pub runs: [Vec<Measured>; 3],
    pub stored: [u64; 3],
    /// The load average before and after the timed runs (the machine may be shared).
    pub load: [String; 2],
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".into(),
        |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

/// A ~`bytes` H.264 + AAC MP4 of unique frames (testsrc2 carries a frame counter), encoded at
/// a high bitrate with `-preset ultrafast` and cut at `bytes` by ffmpeg's `-fs`.
fn make_big(runner: &Runner, work: &Path, bytes: u64) -> Result<PathBuf> {
    let out = work.join("big.mp4");
    // ultrafast 1080p testsrc2 comes out near 40 Mbit/s; -t only bounds it, -fs stops it.
    let seconds = (bytes * 8 / 10_000_000).max(60);
    let mut cmd = runner.command("ffmpeg", work);
    cmd.args(["-nostdin", "-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string(), "-fs", &bytes.to_string()])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-b:v", "200M"])
        .args(["-maxrate", "200M", "-bufsize", "400M", "-g", "60"])
        .args(["-c:a", "aac", "-b:a", "128k"])
        .arg(&out);
    proc::run(cmd).context("making the big MP4 with ffmpeg")?;
    Ok(out)
}

fn probe_duration(runner: &Runner, work: &Path, file: &Path) -> String {
    let mut cmd = runner.command("ffprobe", work);
    cmd.args([
        "-v",
        "error",
        "-show_entries",
        "format=duration",
        "-of",
        "csv=p=0",
    ])
    .arg(file);
    proc::run(cmd)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .map_or_else(|| "unknown length".into(), |s| format!("{s:.1} s"))
}

pub fn run(runner: &Runner, work: &Path, bytes: u64, runs: usize) -> Result<Throughput> {
    eprintln!("making a {} MP4 with ffmpeg", report::bytes(bytes));
    let start = Instant::now();
    let big = make_big(runner, work, bytes)?;
    let made_in = start.elapsed();
    let size = crate::media::file_size(&big)?;
    let duration = probe_duration(runner, work, &big);
    let mut measured: [Vec<Measured>; 3] = Default::default();
    let mut stored = [0; 3];
    let load_before = load_average();
    for i in 0..runs {
        // Alternate which Dits variant goes first; LFS last.
        let order = if i % 2 == 0 {
            [Variant::Aware, Variant::Plain, Variant::Lfs]
        } else {
            [Variant::Plain, Variant::Aware, Variant::Lfs]
        };
        for v in order {
            eprintln!("run {}/{runs}: {} git add", i + 1, v.name());
            let repo = work.join(format!("big-{}-{i}", v.slug()));
            v.init(runner, &repo, &["*.mp4"])?;
            fs::hard_link(&big, repo.join("big.mp4")).context("linking the big MP4")?;
            // Hot page cache, the same for every run: read the whole file, flush earlier writes.
            content::hash_file(&big)?;
            proc::sync()?;
            let before = v.stored(runner, &repo)?;
            let m = proc::measure(runner.git_command(&repo, &["add", "big.mp4"]))?;
            let idx = Variant::ALL.iter().position(|x| *x == v).unwrap_or(0);
            stored[idx] = v.stored(runner, &repo)?.saturating_sub(before);
            measured[idx].push(m);
            fs::remove_dir_all(&repo).with_context(|| format!("removing {}", repo.display()))?;
        }
    }
    let load = [load_before, load_average()];
    fs::remove_file(&big).context("removing the big MP4")?;
    Ok(Throughput {
        size,
        duration,
        made_in,
        runs: measured,
        stored,
        load,
    })
}
