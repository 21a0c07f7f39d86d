//! The markdown of `dits-bench remote`: push, clone, edit pushes and pull, Dits against Git LFS
//! + giftless, with the targets beside the results.

use std::fmt::Write as _;
use std::time::Duration;

use crate::cases::Tool;
use crate::content::MIB;
use crate::remote::{Outcome, Results, SideResult, Step};
use crate::report::{bytes, ratio, secs};

/// Targets for Dits: throughput of the first push and of a clone, in MB/s (10^6 B/s).
const TARGET_MBPS: f64 = 300.0;
/// Dits at least this many times as fast as Git LFS + giftless (first push, clone).
const TARGET_SPEEDUP: f64 = 2.0;
/// An edit's push may move at most the edited bytes plus this.
const TARGET_EDIT_SLACK: u64 = MIB;
/// Peak RSS of a clone, KiB.
const TARGET_CLONE_RSS_KIB: u64 = 512 * 1024;

fn mbps(size: u64, d: Duration) -> f64 {
    size as f64 / d.as_secs_f64().max(1e-9) / 1e6
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

fn side_name(t: Tool) -> &'static str {
    match t {
        Tool::Lfs => "Git LFS + giftless",
        other => other.name(),
    }
}

/// Wall-time speed-up of `fast` over `slow` (slow's time / fast's time).
fn speedup(fast: &Step, slow: &Step) -> f64 {
    slow.run.wall.as_secs_f64() / fast.run.wall.as_secs_f64().max(1e-9)
}

pub fn render(machine: &[(String, String)], r: &Results) -> String {
    let mut s = String::new();
    let size = r.size;
    let _ = writeln!(
        s,
        "# Dits remote benchmark: {} random file, push and clone over loopback\n",
        bytes(size)
    );
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
    for o in &r.outcomes {
        match o {
            Outcome::Ran(side) => {
                let _ = writeln!(s, "| {} server | {} |", side_name(side.tool), side.server);
            }
            Outcome::Skipped { tool, why } => {
                let _ = writeln!(s, "| {} | **skipped**: {why} |", side_name(*tool));
            }
        }
    }
    let _ = writeln!(s, "| repetitions | 1 (each push and clone ran once) |");

    let sides: Vec<&SideResult> = r
        .outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Ran(side) => Some(&**side),
            Outcome::Skipped { .. } => None,
        })
        .collect();
    let lfs = r.ran(Tool::Lfs);
    let dits = r.ran(Tool::Dits);

    targets(&mut s, size, lfs, dits);

    let _ = writeln!(
        s,
        "\n## First push (`git push -u origin main` of one commit holding the file)\n"
    );
    let _ = writeln!(
        s,
        "| | wall | MB/s | on the wire | wire / file | client peak RSS | client CPU | server CPU |\n|---|--:|--:|--:|--:|--:|--:|--:|"
    );
    for side in &sides {
        let p = &side.push;
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} |",
            side_name(side.tool),
            secs(p.run.wall),
            mbps(size, p.run.wall),
            bytes(p.wire),
            ratio(p.wire as f64 / size as f64),
            mib(p.run.max_rss_kib),
            secs(p.run.cpu()),
            secs(p.server_cpu)
        );
    }

    let _ = writeln!(s, "\n## Fresh clone with checkout, into a new directory\n");
    let _ = writeln!(
        s,
        "| | how | wall | MB/s | on the wire | client peak RSS | client CPU | server CPU | clone on disk | of which `.git` |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"
    );
    for side in &sides {
        for c in &side.clones {
            let st = &c.step;
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |",
                side_name(side.tool),
                c.how,
                secs(st.run.wall),
                mbps(size, st.run.wall),
                bytes(st.wire),
                mib(st.run.max_rss_kib),
                secs(st.run.cpu()),
                secs(st.server_cpu),
                bytes(c.disk.total),
                bytes(c.disk.git)
            );
        }
    }

    let _ = writeln!(
        s,
        "\n## Edits, each committed and pushed in sequence (`git push`): wall time and bytes on the wire (× edited bytes)\n"
    );
    let _ = write!(s, "| edit | edited bytes |");
    for side in &sides {
        let _ = write!(s, " {0} push | {0} on the wire |", side_name(side.tool));
    }
    let _ = writeln!(s, "\n|---|--:|{}", "--:|--:|".repeat(sides.len()));
    let letters = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    if let Some(first) = sides.first() {
        for (i, e) in first.edits.iter().enumerate() {
            let letter = letters.get(i).copied().unwrap_or('?');
            let edited = e.edit.edited_bytes();
            let _ = write!(s, "| ({letter}) {} | {} |", e.edit.label(), bytes(edited));
            for side in &sides {
                if let Some(se) = side.edits.get(i) {
                    let _ = write!(
                        s,
                        " {} | {} ({}) |",
                        secs(se.push.run.wall),
                        bytes(se.push.wire),
                        ratio(se.push.wire as f64 / edited.max(1) as f64)
                    );
                }
            }
            let _ = writeln!(s);
        }
    }

    let _ = writeln!(
        s,
        "\n## `git pull` of the five edits into the fresh clone (ends on the last version, verified)\n"
    );
    let _ = writeln!(
        s,
        "| | wall | on the wire | client peak RSS | client CPU | server CPU |\n|---|--:|--:|--:|--:|--:|"
    );
    for side in &sides {
        let p = &side.pull;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            side_name(side.tool),
            secs(p.run.wall),
            bytes(p.wire),
            mib(p.run.max_rss_kib),
            secs(p.run.cpu()),
            secs(p.server_cpu)
        );
    }

    if let (Some(l), Some(d)) = (lfs, dits) {
        ratios(&mut s, l, d);
    }

    let _ = writeln!(s, "\n## Servers at the end of the run\n");
    let _ = writeln!(
        s,
        "| | store on disk | server peak RSS (whole run) |\n|---|--:|--:|"
    );
    for side in &sides {
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            side_name(side.tool),
            bytes(side.server_store),
            mib(side.server_peak_rss_kib)
        );
    }
    notes(&mut s);
    s
}

fn targets(s: &mut String, size: u64, lfs: Option<&SideResult>, dits: Option<&SideResult>) {
    let _ = writeln!(
        s,
        "\n## Targets (for Dits; Git LFS + giftless shown against the same bar for reference)\n"
    );
    let _ = writeln!(
        s,
        "| target | Dits | Dits vs target | Git LFS + giftless | LFS vs the same bar |\n|---|--:|---|--:|---|"
    );
    let dash = || ("–".to_string(), "–".to_string());
    let cell_mbps = |step: Option<&Step>| match step {
        Some(st) => {
            let v = mbps(size, st.run.wall);
            (format!("{v:.0} MB/s"), met(v >= TARGET_MBPS).to_string())
        }
        None => dash(),
    };
    let row = |s: &mut String, what: &str, d: (String, String), l: (String, String)| {
        let _ = writeln!(s, "| {what} | {} | {} | {} | {} |", d.0, d.1, l.0, l.1);
    };
    let lfs_clone = |i: usize| lfs.and_then(|l| l.clones.get(i));
    row(
        s,
        &format!("first push ≥ {TARGET_MBPS:.0} MB/s"),
        cell_mbps(dits.map(|d| &d.push)),
        cell_mbps(lfs.map(|l| &l.push)),
    );
    row(
        s,
        &format!("clone ≥ {TARGET_MBPS:.0} MB/s"),
        cell_mbps(dits.and_then(|d| d.clones.first()).map(|c| &c.step)),
        cell_mbps(lfs_clone(0).map(|c| &c.step)),
    );
    let vs = |d: Option<&Step>, l: Option<&Step>| match (d, l) {
        (Some(d), Some(l)) => {
            let x = speedup(d, l);
            (
                format!("{x:.2}× as fast"),
                met(x >= TARGET_SPEEDUP).to_string(),
            )
        }
        _ => dash(),
    };
    row(
        s,
        &format!("first push ≥ {TARGET_SPEEDUP:.0}× as fast as LFS"),
        vs(dits.map(|d| &d.push), lfs.map(|l| &l.push)),
        dash(),
    );
    for (i, how) in ["`git clone`", "skip-smudge clone + `git lfs pull`"]
        .iter()
        .enumerate()
    {
        if lfs_clone(i).is_some() || (i == 0 && lfs.is_none()) {
            row(
                s,
                &format!("clone ≥ {TARGET_SPEEDUP:.0}× as fast as LFS ({how})"),
                vs(
                    dits.and_then(|d| d.clones.first()).map(|c| &c.step),
                    lfs_clone(i).map(|c| &c.step),
                ),
                dash(),
            );
        }
    }
    let edits_cell = |side: Option<&SideResult>| match side {
        Some(side) => {
            let over: Vec<String> = side
                .edits
                .iter()
                .filter(|e| e.push.wire > e.edit.edited_bytes() + TARGET_EDIT_SLACK)
                .map(|e| e.edit.label())
                .collect();
            let worst = side
                .edits
                .iter()
                .map(|e| e.push.wire.saturating_sub(e.edit.edited_bytes()))
                .max()
                .unwrap_or(0);
            let verdict = if over.is_empty() {
                met(true).to_string()
            } else {
                format!("{} ({} of 5)", met(false), over.len())
            };
            (format!("worst: edited + {}", bytes(worst)), verdict)
        }
        None => dash(),
    };
    row(
        s,
        &format!(
            "each edit's push ≤ edited bytes + {}",
            bytes(TARGET_EDIT_SLACK)
        ),
        edits_cell(dits),
        edits_cell(lfs),
    );
    let rss_cell = |c: Option<&Step>| match c {
        Some(st) => (
            mib(st.run.max_rss_kib),
            met(st.run.max_rss_kib < TARGET_CLONE_RSS_KIB).to_string(),
        ),
        None => dash(),
    };
    row(
        s,
        &format!("clone peak RSS < {}", bytes(TARGET_CLONE_RSS_KIB * 1024)),
        rss_cell(dits.and_then(|d| d.clones.first()).map(|c| &c.step)),
        rss_cell(lfs_clone(0).map(|c| &c.step)),
    );
}

fn ratios(s: &mut String, l: &SideResult, d: &SideResult) {
    let _ = writeln!(
        s,
        "\n## Dits / Git LFS + giftless (below 1× means Dits took less)\n"
    );
    let _ = writeln!(s, "| | wall time | bytes on the wire |\n|---|--:|--:|");
    let row = |s: &mut String, what: &str, d: &Step, l: &Step| {
        let _ = writeln!(
            s,
            "| {what} | {} | {} |",
            ratio(d.run.wall.as_secs_f64() / l.run.wall.as_secs_f64().max(1e-9)),
            ratio(d.wire as f64 / l.wire.max(1) as f64)
        );
    };
    row(s, "first push", &d.push, &l.push);
    if let Some(dc) = d.clones.first() {
        for lc in &l.clones {
            row(s, &format!("clone (LFS: {})", lc.how), &dc.step, &lc.step);
        }
    }
    for (de, le) in d.edits.iter().zip(&l.edits) {
        row(
            s,
            &format!("push of edit: {}", de.edit.label()),
            &de.push,
            &le.push,
        );
    }
    row(s, "pull of the five edits", &d.pull, &l.pull);
}

fn notes(s: &mut String) {
    let _ = writeln!(
        s,
        "\n## How this was measured\n\n\
- One run, both tools, the same seeded file and the same five edits as the local benchmark \
(`dits-bench`), each edit committed (untimed) and pushed (timed) before the next. Servers run \
on 127.0.0.1 on this machine, started by the benchmark with a fresh store; each tool has its \
own temporary `HOME` (`GIT_CONFIG_NOSYSTEM=1`) holding its user-wide set-up \
(`git lfs install --skip-repo`; `git dits install --global` and the token in a \
`credential.helper store` file).\n\
- **Bytes on the wire** are the growth of `/sys/class/net/lo/statistics/tx_bytes` around the \
command: both directions of every connection on loopback, with HTTP/TLS/QUIC, TCP/UDP and IP \
headers, so protocol overhead is included, and so is anything else that used loopback at the \
time (nothing else should run during a measurement). For Git LFS the Git remote is a bare \
repository on a local path, so git's own pack (pointers and commits, a few KiB) goes through a \
pipe and is not counted; for Dits everything, git objects included, goes over `dits://`.\n\
- Wall time is from spawn to reap of the client command; client CPU is user+sys and client \
peak RSS the largest single process, both from `wait4`, which covers every descendant it \
waited for (git, `git-lfs` in the pre-push hook and the smudge filter, `git-remote-dits`, \
`dits-filter`). Server CPU is the growth of the server process' utime+stime (+ waited-for \
children) from `/proc`, and its peak RSS is `VmHWM` at the end of the run. `sync` runs \
(untimed) before every timed command; caches are not dropped.\n\
- MB/s is 10^6 bytes of the file per second of wall time. Clones are verified byte for byte \
with BLAKE3 (the run stops on any mismatch), and so is the last version after the pull.\n\
- Disk use is allocated blocks (`du`), work tree plus `.git`, a hard-linked file counted once. \
Git LFS keeps each file twice in a clone: in the work tree and in `.git/lfs/objects`.\n\
- giftless runs under Flask's built-in server (`flask run`, threaded), as its documentation \
shows for local use, not behind uWSGI; Git LFS uses its defaults (`lfs.concurrenttransfers` \
8), with `lfs.locksverify false` because giftless has no locking API. giftless 0.6.2 answers \
a download with the open file as the response body, which Flask's server writes out one \
newline-delimited piece at a time (about 4 million writes per GiB of random bytes): its \
downloads are bound by the server's CPU (see the server CPU of the clone and the pull)."
    );
}
