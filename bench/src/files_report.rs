//! The markdown of `dits-bench files`: per step, the median wall time of each tool and the
//! ratio Dits / Git LFS, then every run's figures.

use std::fmt::Write as _;

use crate::cases::Tool;
use crate::files::{Results, Trial, STEPS};
use crate::proc;
use crate::report;

fn medians(r: &Results, tool: Tool) -> Vec<Option<f64>> {
    let trials: Vec<&Trial> = r.trials.iter().filter(|t| t.tool == tool).collect();
    (0..STEPS.len())
        .map(|i| proc::median_of(trials.iter().map(|t| t.steps[i].wall.as_secs_f64())))
        .collect()
}

fn secs(v: Option<f64>) -> String {
    v.map_or("–".into(), |s| format!("{s:.2} s"))
}

pub fn render(machine: &[(String, String)], r: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# dits-bench files\n");
    let _ = writeln!(
        s,
        "{} files of {}–{} in nested folders ({} in all), tracked by Dits and by Git LFS; \
         {} run(s); in each, both repositories side by side and every step done for one tool then the other, order swapped each run; medians of wall time.\n",
        r.files,
        report::bytes(r.min),
        report::bytes(r.max),
        report::bytes(r.bytes),
        r.trials.len() / 2
    );
    let _ = writeln!(s, "| what | value |\n|---|---|");
    for (k, v) in machine {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    let dits = medians(r, Tool::Dits);
    let lfs = medians(r, Tool::Lfs);
    let _ = writeln!(
        s,
        "\n| step | Git LFS | Dits | Dits / LFS |\n|---|--:|--:|--:|"
    );
    for (i, step) in STEPS.iter().enumerate() {
        let ratio = match (dits[i], lfs[i]) {
            (Some(d), Some(l)) if l > 0.0 => format!("{:.2}×", d / l),
            _ => "–".into(),
        };
        let _ = writeln!(
            s,
            "| {step} | {} | {} | {ratio} |",
            secs(lfs[i]),
            secs(dits[i])
        );
    }
    let store = |tool: Tool| {
        proc::median_of(
            r.trials
                .iter()
                .filter(|t| t.tool == tool)
                .map(|t| t.store_bytes),
        )
        .map_or("–".into(), report::bytes)
    };
    let _ = writeln!(
        s,
        "| store after add | {} | {} | |",
        store(Tool::Lfs),
        store(Tool::Dits)
    );
    let _ = writeln!(s, "\n## Every run\n");
    let _ = writeln!(
        s,
        "| tool | {} |\n|---|{}",
        STEPS.join(" | "),
        "--:|".repeat(STEPS.len())
    );
    for t in &r.trials {
        let cells: Vec<String> = t
            .steps
            .iter()
            .map(|m| format!("{:.2}", m.wall.as_secs_f64()))
            .collect();
        let _ = writeln!(s, "| {} | {} |", t.tool.name(), cells.join(" | "));
    }
    let _ = writeln!(
        s,
        "\nEvery status was checked empty (no phantom modifications) and every file hashed \
         as written after the switch and the checkout. Each step starts after `sync`; the \
         page cache is warm, as on a working machine."
    );
    s
}
