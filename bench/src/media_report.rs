//! The markdown report of `dits-bench media`.

use std::fmt::Write as _;
use std::time::Duration;

use crate::media::{Args, Figures, Variant};
use crate::media_add::Throughput;
use crate::proc::{self, Measured};
use crate::report::{bytes, secs};

/// Issue 4's ceiling on an MP4-aware edit's new bytes, in % of the edited file, by kind.
fn target(kind: &str) -> Option<f64> {
    match kind {
        // exiftool rewrites metadata only: a metadata edit made by another program.
        "metadata" | "exiftool" | "faststart" | "remux" => Some(2.0),
        "trim" => Some(1.0),
        "reinterleave" => Some(5.0),
        _ => None,
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    part as f64 * 100.0 / whole.max(1) as f64
}

fn pct(p: f64) -> String {
    if p < 10.0 {
        format!("{p:.2}%")
    } else {
        format!("{p:.1}%")
    }
}

fn mbps(size: u64, d: Duration) -> f64 {
    size as f64 / d.as_secs_f64().max(1e-9) / 1e6
}

pub fn render(args: &Args, f: &Figures) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Video-aware chunking (issue 4): Dits MP4-aware vs plain CDC vs Git LFS\n"
    );
    let _ = writeln!(s, "Command: `{}`\n", f.command);
    for (k, v) in &f.machine {
        let _ = writeln!(s, "- {k}: {v}");
    }
    let _ = writeln!(
        s,
        "- fixtures: `{}` ({} s of {} at {} video; made in {})",
        f.fixtures_cmd,
        args.seconds,
        args.resolution,
        args.bitrate,
        secs(f.fixtures_time)
    );
    let show = |e: &Option<String>| {
        e.as_ref()
            .map_or("not listed by this build".to_string(), |l| format!("`{l}`"))
    };
    let _ = writeln!(
        s,
        "- `git dits env` on `dits.mp4`: aware repositories {}, plain repositories {}",
        show(&f.mp4_env[0]),
        show(&f.mp4_env[1])
    );
    if f.mp4_env[0].is_none() {
        let _ = writeln!(
            s,
            "\n**This build does not know `dits.mp4`: both Dits columns are the same chunker.**"
        );
    }

    let _ = writeln!(
        s,
        "\n## New bytes stored by one edit (% of the edited file)\n"
    );
    let _ = writeln!(
        s,
        "| case | kind | edited size | {} new | {} new | {} new | target (MP4-aware) | |",
        Variant::Aware.name(),
        Variant::Plain.name(),
        Variant::Lfs.name()
    );
    let _ = writeln!(s, "|---|---|--:|--:|--:|--:|--:|---|");
    let (mut met, mut missed) = (0, 0);
    for e in &f.edits {
        let cell = |n: u64| format!("{} ({})", bytes(n), pct(percent(n, e.edited_size)));
        let aware = percent(e.new_bytes[0], e.edited_size);
        let (goal, verdict) = match target(&e.case.kind) {
            Some(t) if aware <= t => {
                met += 1;
                (format!("≤ {t}%"), "met")
            }
            Some(t) => {
                missed += 1;
                (format!("≤ {t}%"), "**missed**")
            }
            None => ("—".to_string(), ""),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {goal} | {verdict} |",
            e.case.name,
            e.case.kind,
            bytes(e.edited_size),
            cell(e.new_bytes[0]),
            cell(e.new_bytes[1]),
            cell(e.new_bytes[2]),
        );
    }
    let _ = writeln!(s, "\nTargets met: {met} of {}.", met + missed);

    if let Some(t) = &f.throughput {
        throughput(&mut s, args, t);
    }
    notes(&mut s, f.throughput.is_some());
    s
}

fn throughput(s: &mut String, args: &Args, t: &Throughput) {
    let _ = writeln!(
        s,
        "\n## `git add` of a {} MP4 ({}; hot page cache; {} run(s) per variant)\n",
        bytes(t.size),
        t.duration,
        args.runs
    );
    let _ = writeln!(
        s,
        "| | median wall | MB/s | best wall | MB/s | CPU (median run) | peak RSS | stored | every run: wall (CPU) |\n\
         |---|--:|--:|--:|--:|--:|--:|--:|---|"
    );
    // Per variant: the median run and the fastest.
    let mut picked: Vec<Option<(Measured, Measured)>> = Vec::new();
    for (i, v) in Variant::ALL.into_iter().enumerate() {
        let runs = &t.runs[i];
        let all = runs
            .iter()
            .map(|m| format!("{} ({})", secs(m.wall), secs(m.cpu())))
            .collect::<Vec<_>>()
            .join(", ");
        let median = proc::median(runs.clone()).ok();
        let best = runs.iter().min_by_key(|m| m.wall).cloned();
        let rss = runs.iter().map(Measured::max_rss_mib).fold(0.0, f64::max);
        if let (Some(m), Some(b)) = (&median, &best) {
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {} | {:.0} | {} | {rss:.1} MiB | {} | {all} |",
                v.name(),
                secs(m.wall),
                mbps(t.size, m.wall),
                secs(b.wall),
                mbps(t.size, b.wall),
                secs(m.cpu()),
                bytes(t.stored[i])
            );
        }
        picked.push(median.zip(best));
    }
    if let (Some(Some((aware, aware_best))), Some(Some((plain, plain_best)))) =
        (picked.first(), picked.get(1))
    {
        let of = |p: Duration, a: Duration| p.as_secs_f64() / a.as_secs_f64().max(1e-9) * 100.0;
        let ratio = of(plain.wall, aware.wall);
        let _ = writeln!(
            s,
            "\nThroughput MP4-aware / plain CDC, median wall: **{ratio:.0}%** (target ≥ 80%): {}. \
             Best wall: {:.0}%. CPU time of the median runs: {:.0}%.",
            if ratio >= 80.0 { "met" } else { "**missed**" },
            of(plain_best.wall, aware_best.wall),
            of(plain.cpu(), aware.cpu())
        );
    }
    let _ = writeln!(
        s,
        "\nLoad average (1, 5, 15 min) before the timed runs: {}; after: {}.",
        t.load[0], t.load[1]
    );
    let _ = writeln!(
        s,
        "\nThe MP4: ffmpeg `testsrc2` 1920x1080 30 fps (a frame counter: no two frames alike) \
         + 440 Hz AAC, libx264 `-preset ultrafast` at up to 200 Mbit/s, cut at {} by `-fs`; \
         made in {}.",
        bytes(args.big_mib << 20),
        secs(t.made_in)
    );
}

fn notes(s: &mut String, throughput: bool) {
    let _ = writeln!(
        s,
        "\n## How this was measured\n\n\
- Each (variant, case) has a fresh repository (`git dits install --local` or `git lfs install \
--local`, the fixtures' extensions tracked; `git config dits.mp4 true|false` for Dits). The \
original is committed, the store measured, the edited file copied over the original's path and \
committed, the store measured again. New bytes = the growth: Dits `git dits stats` \"stored \
bytes\" (pack bytes, after compression), Git LFS the apparent size of `.git/lfs/objects` (as \
`du -sb`). Then both versions are checked out again and compared by BLAKE3 (the run stops on \
a mismatch).\n\
- Targets are issue 4's, applied to the MP4-aware column: metadata edit (here also the \
`exiftool` case, a metadata edit by another program), faststart and remux ≤ 2%, trim ≤ 1%, \
re-interleaving remux ≤ 5%; the other kinds have none."
    );
    if !throughput {
        return;
    }
    let _ = writeln!(
        s,
        "- Throughput: every run uses a fresh repository holding a hard link to the same MP4. Before \
each timed `git add` the whole file is read (so it is in the page cache for every run alike: \
the comparison is the chunker's cost, not the disk's) and `sync` flushes earlier writes; the \
timed command is not followed by a sync. Runs alternate which Dits variant goes first; Git LFS \
runs last. Wall time is spawn to reap; CPU (user+sys) and peak RSS (the largest single process) \
come from `wait4` of `git add`, covering `dits-filter` and `git-lfs`. MB/s is 10^6 bytes per \
second of the median wall time; the ratio is plain wall / aware wall."
    );
}
