//! The markdown of `dits-bench migrate`: the targets beside the medians, the medians
//! of every case with the Dits / LFS ratios, then every run in the order it ran.

use std::fmt::Write as _;

use crate::migrate::{Case, Results, Trial, PATTERN};
use crate::proc::median_of;
use crate::report::{bytes, ratio};

/// Targets of the issue.
const TIME_TARGET: f64 = 0.5;
const STORE_TARGET: f64 = 0.5;
const RSS_TARGET_MIB: f64 = 512.0;

#[derive(Clone, Copy)]
enum Unit {
    Secs,
    Bytes,
    Kib,
}

fn show(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Secs => format!("{v:.2} s"),
        Unit::Bytes => bytes(v as u64),
        Unit::Kib => format!("{:.1} MiB", v / 1024.0),
    }
}

type Metric = fn(&Trial) -> Option<f64>;

fn wall(t: &Trial) -> Option<f64> {
    Some(t.import.wall.as_secs_f64())
}

/// Until the work tree has the files' bytes again: for Git LFS, `git lfs checkout` too.
fn wall_to_files(t: &Trial) -> Option<f64> {
    Some(t.import.wall.as_secs_f64() + t.checkout.as_ref().map_or(0.0, |c| c.wall.as_secs_f64()))
}

fn cpu(t: &Trial) -> Option<f64> {
    Some(t.import.cpu().as_secs_f64())
}

fn rss(t: &Trial) -> Option<f64> {
    Some(t.import.max_rss_kib as f64)
}

fn store(t: &Trial) -> Option<f64> {
    Some(t.store() as f64)
}

fn median(r: &Results, case: Case, f: Metric) -> Option<f64> {
    median_of(r.trials.iter().filter(|t| t.case == case).filter_map(f))
}

/// The median over runs of `case`'s value divided by that of the LFS trial of the same run
/// (they ran back to back).
fn paired(r: &Results, case: Case, f: Metric) -> Option<f64> {
    median_of(r.trials.iter().filter(|t| t.case == case).filter_map(|t| {
        let lfs = r
            .trials
            .iter()
            .find(|l| l.run == t.run && l.case == Case::Lfs)?;
        Some(f(t)? / f(lfs)?.max(1e-12))
    }))
}

fn of_medians(r: &Results, case: Case, f: Metric) -> Option<f64> {
    Some(median(r, case, f)? / median(r, Case::Lfs, f)?.max(1e-12))
}

fn cell(v: Option<f64>, unit: Unit) -> String {
    v.map_or("–".into(), |v| show(unit, v))
}

fn ratio_cell(v: Option<f64>) -> String {
    v.map_or("–".into(), ratio)
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "–",
    }
}

pub fn render(machine: &[(String, String)], r: &Results) -> String {
    let mut s = String::new();
    let (spec, plan) = (&r.spec, &r.plan);
    let _ = writeln!(
        s,
        "# Migrating a history: `git dits migrate import` against `git lfs migrate import`\n"
    );
    let _ = writeln!(s, "| machine | |\n|---|---|");
    for (k, v) in machine {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    let _ = writeln!(
        s,
        "| history | {} commits on `main`, {} tags ({} lightweight `v<n>` + an annotated \
         `release`); {} files `media/dNN/fNNNN.bin` of {} to {} at the first commit, spread \
         evenly; each later commit edits 1 to {} of them (¾ overwrite 1–16 KiB at a random \
         offset, ¼ append 4–64 KiB) and `notes.txt` |",
        spec.commits,
        plan.tags(),
        plan.tags() - 1,
        spec.files,
        bytes(spec.min),
        bytes(spec.max),
        spec.edits
    );
    let _ = writeln!(
        s,
        "| file versions | {} distinct `.bin` blobs, {} in all ({} of them written by edits); \
         {} at the first commit, {} at the last |",
        plan.versions,
        bytes(plan.history_bytes),
        bytes(plan.edited_bytes),
        bytes(plan.initial_bytes),
        bytes(plan.final_bytes)
    );
    let _ = writeln!(
        s,
        "| plain repository | `.git` {} (one pack of whole blobs), work tree {}; built by `git \
         fast-import` in {} (untimed) |",
        bytes(r.plain.git),
        bytes(r.plain.work_tree),
        crate::report::secs(r.generate_wall)
    );
    if let Some((src, how)) = &r.lfs_source {
        let _ = writeln!(
            s,
            "| LFS repository | `.git` {} of which `.git/lfs/objects` {}, work tree {}: {how}, \
             then `git reflog expire --expire=now --all` and `git gc --prune=now` |",
            bytes(src.git),
            bytes(src.lfs_objects),
            bytes(src.work_tree)
        );
    }
    for &case in &r.cases {
        let _ = writeln!(
            s,
            "| {} | `{}` on a fresh copy of the repository with {} |",
            case.name(),
            case.command(),
            case.input()
        );
    }
    let order: Vec<&str> = r.cases.iter().map(|c| c.slug()).collect();
    let _ = writeln!(
        s,
        "| runs | {} per case, alternating {}, ... |",
        r.runs,
        order.join(", ")
    );

    targets(&mut s, r);
    medians(&mut s, r);
    every_run(&mut s, r);
    notes(&mut s);
    s
}

fn targets(s: &mut String, r: &Results) {
    let _ = writeln!(
        s,
        "\n## Against the targets (medians of {} run{})\n",
        r.runs,
        if r.runs == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        s,
        "| | Dits | Git LFS | Dits / LFS | target | |\n|---|--:|--:|--:|--:|---|"
    );
    for case in [Case::Dits, Case::Adopt] {
        if !r.cases.contains(&case) {
            continue;
        }
        let from = match case {
            Case::Adopt => " (from the LFS repository)",
            _ => "",
        };
        let time = of_medians(r, case, wall);
        let _ = writeln!(
            s,
            "| {}: wall time{from} | {} | {} | {} | ≤ {}× | {} |",
            case.name(),
            cell(median(r, case, wall), Unit::Secs),
            cell(median(r, Case::Lfs, wall), Unit::Secs),
            ratio_cell(time),
            TIME_TARGET,
            verdict(time.map(|x| x <= TIME_TARGET))
        );
        let total = of_medians(r, case, wall_to_files);
        let _ = writeln!(
            s,
            "| {}: wall time, LFS with `git lfs checkout`{from} | {} | {} | {} | ≤ {}× | {} |",
            case.name(),
            cell(median(r, case, wall_to_files), Unit::Secs),
            cell(median(r, Case::Lfs, wall_to_files), Unit::Secs),
            ratio_cell(total),
            TIME_TARGET,
            verdict(total.map(|x| x <= TIME_TARGET))
        );
        let st = of_medians(r, case, store);
        let _ = writeln!(
            s,
            "| {}: store, `.git/dits` vs `.git/lfs/objects` | {} | {} | {} | ≤ {}× | {} |",
            case.name(),
            cell(median(r, case, store), Unit::Bytes),
            cell(median(r, Case::Lfs, store), Unit::Bytes),
            ratio_cell(st),
            STORE_TARGET,
            verdict(st.map(|x| x <= STORE_TARGET))
        );
        let peak = median(r, case, rss);
        let _ = writeln!(
            s,
            "| {}: peak RSS | {} | {} | {} | ≤ {RSS_TARGET_MIB:.0} MiB | {} |",
            case.name(),
            cell(peak, Unit::Kib),
            cell(median(r, Case::Lfs, rss), Unit::Kib),
            ratio_cell(of_medians(r, case, rss)),
            verdict(peak.map(|k| k / 1024.0 <= RSS_TARGET_MIB))
        );
    }
    if r.cases.contains(&Case::Adopt) {
        let _ = writeln!(
            s,
            "\nThe LFS → Dits rows start from another repository than Git LFS did (its input is \
             Git LFS's output); the plain → Dits rows are the like-for-like comparison."
        );
    }
}

fn medians(s: &mut String, r: &Results) {
    let _ = writeln!(s, "\n## Medians\n");
    let dits_cases: Vec<Case> = [Case::Dits, Case::Adopt]
        .into_iter()
        .filter(|c| r.cases.contains(c) && r.cases.contains(&Case::Lfs))
        .collect();
    let _ = write!(s, "|");
    for c in &r.cases {
        let _ = write!(s, " | {}", c.name());
    }
    for c in &dits_cases {
        let _ = write!(
            s,
            " | {} / LFS (of the medians) | {} / LFS (per-run pairs)",
            c.name(),
            c.name()
        );
    }
    let _ = writeln!(
        s,
        " |\n|---|{}",
        "--:|".repeat(r.cases.len() + 2 * dits_cases.len())
    );
    let history = r.plan.history_bytes as f64;
    let metrics: [(&str, Unit, Metric); 12] = [
        ("wall time", Unit::Secs, wall),
        ("`git lfs checkout` afterwards (LFS)", Unit::Secs, |t| {
            t.checkout.as_ref().map(|c| c.wall.as_secs_f64())
        }),
        (
            "wall time until the work tree has the files (LFS: + `git lfs checkout`)",
            Unit::Secs,
            wall_to_files,
        ),
        ("CPU (user+sys)", Unit::Secs, cpu),
        (
            "CPU (user+sys), LFS with `git lfs checkout`",
            Unit::Secs,
            |t| {
                Some(
                    t.import.cpu().as_secs_f64()
                        + t.checkout.as_ref().map_or(0.0, |c| c.cpu().as_secs_f64()),
                )
            },
        ),
        ("peak RSS (largest process)", Unit::Kib, rss),
        ("store of the file versions", Unit::Bytes, store),
        ("`.git/lfs/objects` after", Unit::Bytes, |t| {
            Some(t.lfs_objects as f64)
        }),
        ("`.git/dits` after", Unit::Bytes, |t| {
            Some(t.dits_store as f64)
        }),
        ("`.git` after (no gc)", Unit::Bytes, |t| {
            Some(t.git_after as f64)
        }),
        ("`.git` growth", Unit::Bytes, |t| {
            Some(t.git_after.saturating_sub(t.git_before) as f64)
        }),
        (
            "`git dits migrate verify` afterwards (not in the wall time)",
            Unit::Secs,
            |t| t.verify.as_ref().map(|v| v.wall.as_secs_f64()),
        ),
    ];
    // Rows whose Dits / LFS ratio means nothing: one side is zero by construction.
    let no_ratio = ["`.git/lfs/objects` after", "`.git/dits` after"];
    for (name, unit, f) in metrics {
        let _ = write!(s, "| {name}");
        for &c in &r.cases {
            let _ = write!(s, " | {}", cell(median(r, c, f), unit));
        }
        for &c in &dits_cases {
            if no_ratio.contains(&name) {
                let _ = write!(s, " | – | –");
                continue;
            }
            let _ = write!(
                s,
                " | {} | {}",
                ratio_cell(of_medians(r, c, f)),
                ratio_cell(paired(r, c, f))
            );
        }
        let _ = writeln!(s, " |");
        if name == "wall time" {
            let _ = write!(s, "| MB/s of file versions (of the median wall)");
            for &c in &r.cases {
                let v = median(r, c, wall).map(|w| history / w.max(1e-9) / 1e6);
                let _ = write!(s, " | {}", v.map_or("–".into(), |v| format!("{v:.0}")));
            }
            let _ = writeln!(s, "{} |", " | ".repeat(2 * dits_cases.len()));
        }
    }
}

fn every_run(s: &mut String, r: &Results) {
    let _ = writeln!(s, "\n## Every run, in the order it ran\n");
    let _ = writeln!(
        s,
        "| run | case | wall | CPU | peak RSS | store | files in `.git/lfs/objects` | `.git` before → after | `git lfs checkout` / `git dits migrate verify` |\n|--:|---|--:|--:|--:|--:|--:|--:|--:|"
    );
    for t in &r.trials {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.1} MiB | {} | {} | {} → {} | {} |",
            t.run,
            t.case.name(),
            show(Unit::Secs, t.import.wall.as_secs_f64()),
            show(Unit::Secs, t.import.cpu().as_secs_f64()),
            t.import.max_rss_mib(),
            bytes(t.store()),
            t.lfs_object_files,
            bytes(t.git_before),
            bytes(t.git_after),
            t.checkout
                .as_ref()
                .map(|c| format!("checkout {}", show(Unit::Secs, c.wall.as_secs_f64())))
                .or_else(|| t
                    .verify
                    .as_ref()
                    .map(|v| format!("verify ok, {}", show(Unit::Secs, v.wall.as_secs_f64()))))
                .unwrap_or_else(|| "–".into())
        );
    }
}

fn notes(s: &mut String) {
    let _ = writeln!(
        s,
        "\n## How this was measured\n\n\
- One history is built once, untimed, by streaming every blob and commit into `git \
fast-import` (`--big-file-threshold=1k`, compression 0: one pack of whole blobs, no deltas; \
the BLAKE3-XOF seeded bytes do not compress), then checked out. A repository whose owner had \
run `git gc` would hold the edited versions as deltas, which both tools would have to resolve.\n\
- Each trial runs on a fresh copy of its source repository: the work tree, index, refs, config \
and hooks are copied, the files under `.git/objects` and `.git/lfs/objects` (which git and \
Git LFS never write in place) hard-linked. The copy gets `git lfs install --local` (LFS trial) \
or `git dits install --local --force` (Dits trials; the LFS repository keeps its LFS set-up \
too), and an untimed `git status` refreshes its index, so the measured command does not \
re-hash the work tree because the copy has new inodes. `gc.auto=0` and \
`maintenance.auto=false` are set in every repository.\n\
- The timed command is the one in the table above, run to completion in the copy's work \
tree after an untimed `sync`. Dits' import ends by checking the new pointers out, smudging \
every file's bytes back into the work tree, and by the verification it always does; Git LFS's \
leaves the work tree's files as LFS pointers (its manual says to run `git lfs checkout` \
then), so `git lfs checkout` is timed as a second step, after another `sync`, and the rows \
\"with `git lfs checkout`\" add it to Git LFS's figures. Wall time is from spawn to reap; CPU is user+sys and peak RSS the largest single \
process, both from `wait4`, covering every process the command waited for (git fast-export / \
fast-import, cat-file, the filters). Caches are not dropped: the source was just built or \
copied.\n\
- After each trial (untimed) the run checks that `main` still has every commit and every tag \
is there, that every `.bin` of the first and the last commit is a pointer of the tool's kind \
and `.gitattributes` names its filter, that the work tree is clean with every file's original \
bytes (BLAKE3), that Git LFS stored one object per file version, and that `git dits migrate \
verify` exits 0 after each Dits import (its time is shown apart).\n\
- Sizes are apparent bytes (`du -sb`) without any gc: the store is `.git/lfs/objects` for Git \
LFS and `.git/dits` for Dits; `.git` counts the old pack too (both tools leave the plain \
blobs in it until a gc), and for the LFS → Dits trials the LFS objects it started from. \
Medians are per metric over the runs of one case (the lower middle for an even count); \
\"per-run pairs\" is the median of Dits / LFS within each run, whose trials ran back to back. \
Both tools are given `--include='{PATTERN}'` on the plain history."
    );
}
