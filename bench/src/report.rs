//! The machine the run happened on, and the markdown the results are written as.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::cases::{Growth, Results, Tool};
use crate::proc::{self, Measured, Runner};

/// Writes the markdown report to `out`, or to `bench/results/<prefix>-<UTC date>.md` of the
/// workspace `ws`; returns where it went.
pub fn write(
    out: Option<std::path::PathBuf>,
    ws: &Path,
    prefix: &str,
    md: &str,
) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context;
    let out = match out {
        Some(p) => p,
        None => {
            let mut date = Command::new("date");
            date.args(["-u", "+%Y-%m-%d"]);
            let date = proc::run(date)?;
            ws.join("bench/results")
                .join(format!("{prefix}-{}.md", date.trim()))
        }
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&out, md).with_context(|| format!("writing {}", out.display()))?;
    Ok(out)
}

pub fn bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if n >= unit {
            return if n % unit == 0 {
                format!("{} {name}", n / unit)
            } else {
                format!("{:.2} {name}", n as f64 / unit as f64)
            };
        }
    }
    format!("{n} B")
}

pub(crate) fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 10.0 {
        format!("{s:.1} s")
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.3} s")
    }
}

fn gbps(size: u64, d: Duration) -> String {
    format!("{:.2}", size as f64 / d.as_secs_f64().max(1e-9) / 1e9)
}

pub(crate) fn ratio(x: f64) -> String {
    if x >= 1000.0 {
        format!("{x:.1e}×")
    } else {
        format!("{x:.2}×")
    }
}

fn time_ratio(a: &Measured, b: &Measured) -> String {
    ratio(a.wall.as_secs_f64() / b.wall.as_secs_f64().max(1e-9))
}

fn growth(g: Growth, edited: u64) -> String {
    let mut s = format!(
        "{} ({})",
        bytes(g.total),
        ratio(g.total as f64 / edited.max(1) as f64)
    );
    if let Some(d) = g.detail {
        let _ = write!(s, ", manifests {}", bytes(d));
    }
    s
}

fn growth_plain(g: Growth) -> String {
    match g.detail {
        Some(d) => format!("{}, manifests {}", bytes(g.total), bytes(d)),
        None => bytes(g.total),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

fn capture(cmd: Command) -> String {
    match proc::run(cmd) {
        Ok(s) => s.trim().to_string(),
        Err(e) => format!("unknown ({})", first_line(&e.to_string())),
    }
}

fn from_file(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// Where and with what the run happened, as `(what, value)` rows.
pub fn machine(
    runner: &Runner,
    work: &Path,
    git: &Path,
    workspace: &Path,
    dits_bin: &Path,
) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut row = |k: &str, v: String| rows.push((k.to_string(), v));
    row(
        "date (UTC)",
        capture({
            let mut c = Command::new("date");
            c.args(["-u", "+%Y-%m-%d %H:%M:%S"]);
            c
        }),
    );
    row(
        "CPU",
        format!(
            "{} × {}",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            from_file("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into())
        ),
    );
    row(
        "memory",
        from_file("/proc/meminfo", "MemTotal").unwrap_or_else(|| "unknown".into()),
    );
    row(
        "load average at start",
        std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "unknown".into()),
    );
    row(
        "kernel",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into()),
    );
    let df = capture({
        let mut c = Command::new("df");
        c.args(["-h", "--output=source,fstype,size,avail"])
            .arg(work);
        c
    });
    row(
        "disk (scratch dir)",
        format!(
            "{} — {}",
            work.display(),
            df.lines()
                .last()
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        ),
    );
    row(
        "git",
        first_line(&capture(runner.git_command(work, &["--version"])))
            + &format!(" ({})", git.display()),
    );
    row(
        "git-lfs",
        first_line(&capture(runner.git_command(work, &["lfs", "version"]))),
    );
    let commit = capture({
        let mut c = Command::new(git);
        c.arg("-C")
            .arg(workspace)
            .args(["rev-parse", "--short", "HEAD"]);
        c
    });
    let dirty = capture({
        let mut c = Command::new(git);
        c.arg("-C")
            .arg(workspace)
            .args(["status", "--porcelain", "--untracked-files=no"]);
        c
    });
    row(
        "Dits build",
        format!(
            "{commit}{} (release; git-dits built {})",
            if dirty.is_empty() {
                ""
            } else {
                " + uncommitted changes"
            },
            capture({
                let mut c = Command::new("date");
                c.arg("-u")
                    .arg("-r")
                    .arg(dits_bin.join("git-dits"))
                    .arg("+%Y-%m-%d %H:%M:%S");
                c
            })
        ),
    );
    rows
}

pub struct Params {
    pub size: u64,
    pub repeat: usize,
}

pub fn render(machine: &[(String, String)], params: &Params, r: &Results) -> String {
    let mut s = String::new();
    let size = params.size;
    let _ = writeln!(s, "# Dits benchmark: {} random file\n", bytes(size));
    let _ = writeln!(s, "| machine | |\n|---|---|");
    for (k, v) in machine {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    let _ = writeln!(
        s,
        "| input | {} of BLAKE3-XOF seeded bytes, BLAKE3 `{}` |",
        bytes(size),
        r.source_hash
    );
    let _ = writeln!(
        s,
        "| repetitions | {} (the run with the median wall time is shown) |\n",
        params.repeat
    );

    let _ = writeln!(s, "## `git add` and fresh checkout\n");
    let _ = writeln!(
        s,
        "| | add wall | add GB/s | add CPU | add peak RSS | checkout wall | checkout GB/s | checkout CPU | checkout peak RSS | store growth on add |"
    );
    let _ = writeln!(s, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    let floor_row = |s: &mut String, name: &str, m: &Measured| {
        let cells = format!(
            "{} | {} | {} | {:.1} MiB",
            secs(m.wall),
            gbps(size, m.wall),
            secs(m.cpu()),
            m.max_rss_mib()
        );
        let _ = writeln!(s, "| {name} | {cells} | {cells} | {} |", bytes(size));
    };
    floor_row(&mut s, "`cp` (no fsync)", &r.floor.cp);
    floor_row(&mut s, "`cp` + `sync FILE`", &r.floor.cp_fsync);
    for t in &r.tools {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.1} MiB | {} | {} | {} | {:.1} MiB | {} |",
            t.tool.name(),
            secs(t.add.wall),
            gbps(size, t.add.wall),
            secs(t.add.cpu()),
            t.add.max_rss_mib(),
            secs(t.checkout.wall),
            gbps(size, t.checkout.wall),
            secs(t.checkout.cpu()),
            t.checkout.max_rss_mib(),
            growth_plain(t.add_growth)
        );
    }
    let find = |tool: Tool| r.tools.iter().find(|t| t.tool == tool);
    if let Some(dits) = find(Tool::Dits) {
        let _ = writeln!(s, "\n| wall-time ratio | add | checkout |\n|---|--:|--:|");
        let _ = writeln!(
            s,
            "| Dits / `cp` | {} | {} |",
            time_ratio(&dits.add, &r.floor.cp),
            time_ratio(&dits.checkout, &r.floor.cp)
        );
        let _ = writeln!(
            s,
            "| Dits / `cp` + fsync | {} | {} |",
            time_ratio(&dits.add, &r.floor.cp_fsync),
            time_ratio(&dits.checkout, &r.floor.cp_fsync)
        );
        for peer in [Tool::Lfs, Tool::Git] {
            if let Some(p) = find(peer) {
                let _ = writeln!(
                    s,
                    "| Dits / {} | {} | {} |",
                    peer.name(),
                    time_ratio(&dits.add, &p.add),
                    time_ratio(&dits.checkout, &p.checkout)
                );
            }
        }
    }
    let _ = writeln!(s, "\n`git status --porcelain` right after the checkout:\n");
    for t in &r.tools {
        let state = if t.status.porcelain.trim().is_empty() {
            "clean".to_string()
        } else {
            format!(
                "**not clean**: `{}`",
                t.status.porcelain.trim().replace('\n', "; ")
            )
        };
        let _ = writeln!(
            s,
            "- {}: {state}, {} (CPU {}, peak RSS {:.1} MiB)",
            t.tool.name(),
            secs(t.status.run.wall),
            secs(t.status.run.cpu()),
            t.status.run.max_rss_mib()
        );
    }

    let _ = writeln!(
        s,
        "\n## Edits, each committed in sequence: `git add` wall time and store growth (× edited bytes)\n"
    );
    let _ = write!(s, "| edit | edited bytes |");
    for t in &r.tools {
        let _ = write!(s, " {0} add | {0} growth |", t.tool.name());
    }
    let _ = writeln!(s, "\n|---|--:|{}", "--:|--:|".repeat(r.tools.len()));
    let letters = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    if let Some(first) = r.tools.first() {
        for (i, e) in first.edits.iter().enumerate() {
            let letter = letters.get(i).copied().unwrap_or('?');
            let edited = e.edit.edited_bytes();
            let _ = write!(s, "| ({letter}) {} | {} |", e.edit.label(), bytes(edited));
            for t in &r.tools {
                if let Some(te) = t.edits.get(i) {
                    let _ = write!(
                        s,
                        " {} | {} |",
                        secs(te.add.wall),
                        growth(te.growth, edited)
                    );
                }
            }
            let _ = writeln!(s);
        }
    }

    let _ = writeln!(
        s,
        "\n## `git add` of a mostly-known file (the original with 1 MiB overwritten in the middle)\n"
    );
    let _ = writeln!(
        s,
        "| | wall | GB/s | CPU | peak RSS | store growth |\n|---|--:|--:|--:|--:|--:|"
    );
    for t in &r.tools {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.1} MiB | {} |",
            t.tool.name(),
            secs(t.known.wall),
            gbps(size, t.known.wall),
            secs(t.known.cpu()),
            t.known.max_rss_mib(),
            growth_plain(t.known_growth)
        );
    }

    let _ = writeln!(s, "\n## Store size at the end\n");
    for t in &r.tools {
        let _ = writeln!(
            s,
            "- {} `{}`: {}",
            t.tool.name(),
            t.tool.store_dir(),
            bytes(t.store_final)
        );
    }
    for t in &r.tools {
        if let Some(stats) = &t.stats {
            let _ = writeln!(
                s,
                "\n`git dits stats` and `git dits env` (effective settings):\n\n```\n{}\n```",
                stats.trim_end()
            );
        }
    }
    notes(&mut s);
    s
}

fn notes(s: &mut String) {
    let _ = writeln!(
        s,
        "\n## How this was measured\n\n\
- Warm page cache: caches were not dropped; the input was just written. `sync` runs (untimed) \
before every timed command, so earlier writeback does not land in it; timed commands are not \
followed by a sync. Each tool keeps its own default durability: `cp` never fsyncs (the second \
floor row adds `sync FILE`; one untimed `cp` runs first), git fsyncs packs but not loose objects by default.\n\
- Wall time is from spawn to reap of the command; CPU is user+sys and peak RSS the largest single \
process, both from `wait4` of the command, which covers every descendant it waited for \
(git, hooks, `dits-filter`, `git-lfs`).\n\
- Each case has its own repository; with repetitions, each `git add` repetition uses a fresh \
repository. Checkout = delete the work-tree file, `git checkout -- big.bin`, then BLAKE3 of the \
result is compared with the input (the run stops on any mismatch). The edits run once; at the \
end every edited version is checked out again and compared the same way.\n\
- Store growth is the apparent size of `.git/objects` (plain git), `.git/lfs/objects` (LFS) and \
`.git/dits` (Dits) before and after `git add`. Plain git writes files above \
`core.bigFileThreshold` (512 MiB) straight into a pack and smaller ones as loose zlib objects; \
neither deltas at add time, so each edit stores the whole file again.\n\
- Dits writes smudged files of at least `dits.smudge.inlineLimit` (64 MiB by default) itself, \
after git has written the others; git waits for the filter to exit, so that write is inside the \
timed checkout. Plain git and LFS smudge through git, which holds the whole blob in memory \
(see their checkout peak RSS).\n\
- GB/s is 10^9 bytes per second of wall time, over the input size."
    );
}
