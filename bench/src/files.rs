//! `dits-bench files`: a studio-sized tree of many tracked files, Dits against Git LFS in the
//! same run. Each run makes a fresh repository per tool from the same seeded tree and times
//! the everyday operations on them: `git add`, `git commit`, `git status` (clean, after a
//! `touch` of every file, and again), `git switch` to a branch where a tenth of the files
//! changed, and `git checkout -- .` after removing every file. Each step is done for one tool
//! and then for the other, the order swapped between runs; medians are reported. Every result is checked: status must be empty (no
//! phantom modifications) and the files after switch and checkout must hash as written.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::cases::Tool;
use crate::proc::{self, Measured, Runner};
use crate::{args, content, report};

const USAGE: &str = "\
usage: dits-bench files [--runs N] [--files N] [--min-kib A] [--max-kib B] [--dir DIR]
                        [--out FILE] [--git PATH] [--dits-bin DIR] [--keep]

Many tracked files in nested folders, Dits against Git LFS on the same tree: add, commit,
status (clean, after touching every file, again), switch with a tenth of the files changed,
and checkout after removing everything. Tools alternate; medians are reported.

  --runs N       runs per tool (default 3)
  --files N      files in the tree (default 3000)
  --min-kib A    smallest file, KiB (default 50)
  --max-kib B    largest file, KiB (default 350)
  --dir DIR      scratch parent directory, on the disk to measure (default <workspace>/target)
  --out FILE     markdown report (default bench/results/files-local-<date>.md)
  --git PATH     git to run (default /usr/local/bin/git)
  --dits-bin DIR directory holding git-dits and dits-filter (default <workspace>/target/release)
  --keep         keep the scratch directory";

struct Args {
    common: args::Common,
    runs: usize,
    files: usize,
    min: u64,
    max: u64,
    keep: bool,
}

fn parse_args(it: impl Iterator<Item = std::ffi::OsString>) -> Result<Args> {
    let mut common = args::Common::default();
    let (mut runs, mut files, mut min, mut max, mut keep) = (3, 3000, 50 * 1024, 350 * 1024, false);
    args::parse(it, USAGE, &mut common, |flag, value| {
        let mut num = |what: &str| -> Result<u64> {
            value()?
                .to_string_lossy()
                .parse()
                .with_context(|| format!("{what} needs a number"))
        };
        match flag {
            "--runs" => runs = num("--runs")? as usize,
            "--files" => files = num("--files")? as usize,
            "--min-kib" => min = num("--min-kib")? * 1024,
            "--max-kib" => max = num("--max-kib")? * 1024,
            "--keep" => keep = true,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if runs == 0 || files == 0 || min == 0 || min > max {
        bail!("--runs and --files must be above 0, and 0 < --min-kib <= --max-kib\n{USAGE}");
    }
    Ok(Args {
        common,
        runs,
        files,
        min,
        max,
        keep,
    })
}

/// The timed steps, in the order each trial runs them.
pub const STEPS: [&str; 7] = [
    "git add",
    "git commit",
    "git status (clean)",
    "git status (after touch of all)",
    "git status (again)",
    "git switch (10% changed)",
    "rm + git checkout -- .",
];

/// One tool's trial: the wall time of each step, and the store after the add.
pub struct Trial {
    pub tool: Tool,
    pub steps: Vec<Measured>,
    pub store_bytes: u64,
}

pub struct Results {
    pub files: usize,
    pub bytes: u64,
    pub min: u64,
    pub max: u64,
    pub trials: Vec<Trial>,
}

/// Relative path and length of file `i`: three levels of folders, lengths spread evenly
/// between `min` and `max` by a seeded hash.
fn layout(i: usize, min: u64, max: u64) -> (PathBuf, u64) {
    let h = blake3::hash(&(i as u64).to_le_bytes());
    let r = u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap_or([0; 8]));
    let len = min + r % (max - min + 1);
    let rel = PathBuf::from(format!("d{}/e{}/f{}/asset{i}.bin", i % 7, i % 11, i % 13));
    (rel, len)
}

/// Writes the seeded tree once; trials hard-link it into their work trees.
fn make_source(dir: &Path, a: &Args) -> Result<(Vec<(PathBuf, blake3::Hash)>, u64)> {
    let mut files = Vec::with_capacity(a.files);
    let mut total = 0;
    for i in 0..a.files {
        let (rel, len) = layout(i, a.min, a.max);
        let path = dir.join(&rel);
        if let Some(p) = path.parent() {
            fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
        }
        content::create_seeded(&path, &format!("files-{i}"), len)?;
        files.push((rel, content::hash_file(&path)?));
        total += len;
    }
    Ok((files, total))
}

/// Hard-links every file of `from` into `to` (same tree), so a trial's work tree costs no
/// copy; git replaces files on checkout, and edits below unlink first, so `from` is never
/// changed.
fn link_tree(from: &Path, to: &Path, files: &[(PathBuf, blake3::Hash)]) -> Result<()> {
    for (rel, _) in files {
        let dst = to.join(rel);
        if let Some(p) = dst.parent() {
            fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
        }
        fs::hard_link(from.join(rel), &dst)
            .with_context(|| format!("linking {}", dst.display()))?;
    }
    Ok(())
}

fn check_tree(repo: &Path, want: &BTreeMap<PathBuf, blake3::Hash>, what: &str) -> Result<()> {
    for (rel, hash) in want {
        let got = content::hash_file(&repo.join(rel))?;
        if got != *hash {
            bail!("{what}: {} has the wrong content", rel.display());
        }
    }
    Ok(())
}

fn check_clean(m: &Measured, tool: Tool, what: &str) -> Result<()> {
    if !m.stdout.trim().is_empty() {
        let first: Vec<&str> = m.stdout.lines().take(3).collect();
        bail!(
            "{}: {what} is not clean ({} lines, e.g. {first:?}): phantom modifications",
            tool.name(),
            m.stdout.lines().count()
        );
    }
    Ok(())
}

/// One tool's repository in a run, and what its steps measured so far.
struct Side {
    tool: Tool,
    repo: PathBuf,
    trial: Trial,
}

/// One run: both tools' repositories made from the same tree, then every step done for one
/// tool and at once for the other (in `order`), so both meet the same state of the machine
/// (the file system's inode tables after the previous run's deletions weigh on `git add` and
/// checkout alike).
fn run_once(
    runner: &Runner,
    work: &Path,
    source: &Path,
    files: &[(PathBuf, blake3::Hash)],
    order: [Tool; 2],
    run: usize,
) -> Result<Vec<Trial>> {
    let mut sides = Vec::new();
    for tool in order {
        let repo = work.join(format!("{}-{run}", tool.slug()));
        tool.init(runner, &repo, &["*.bin"])?;
        link_tree(source, &repo, files)?;
        sides.push(Side {
            tool,
            repo,
            trial: Trial {
                tool,
                steps: Vec::new(),
                store_bytes: 0,
            },
        });
    }
    let timed = |side: &mut Side, args: &[&str]| -> Result<Measured> {
        proc::sync()?;
        let m = proc::measure(runner.git_command(&side.repo, args))?;
        side.trial.steps.push(m.clone());
        Ok(m)
    };
    for side in &mut sides {
        timed(side, &["add", "-A"])?;
        side.trial.store_bytes = content::dir_bytes(&side.repo.join(side.tool.store_dir()))?;
    }
    for side in &mut sides {
        timed(side, &["commit", "-q", "-m", "assets"])?;
    }
    for side in &mut sides {
        let clean = timed(side, &["status", "--porcelain"])?;
        check_clean(&clean, side.tool, "status after commit")?;
    }
    for side in &mut sides {
        for (rel, _) in files {
            let f = fs::File::options()
                .write(true)
                .open(side.repo.join(rel))
                .with_context(|| format!("touching {}", rel.display()))?;
            f.set_modified(std::time::SystemTime::now())
                .with_context(|| format!("touching {}", rel.display()))?;
        }
    }
    for side in &mut sides {
        let touched = timed(side, &["status", "--porcelain"])?;
        check_clean(&touched, side.tool, "status after touching every file")?;
    }
    for side in &mut sides {
        let again = timed(side, &["status", "--porcelain"])?;
        check_clean(&again, side.tool, "status run again")?;
    }

    // A branch on which every tenth file changed (untimed), then the switch to it.
    let base: BTreeMap<PathBuf, blake3::Hash> = files.iter().cloned().collect();
    let mut edited = base.clone();
    for (i, (rel, _)) in files.iter().enumerate().filter(|(i, _)| i % 10 == 0) {
        let mut hash = None;
        for side in &sides {
            let path = side.repo.join(rel);
            // Unlink first: the file is a hard link to the shared source tree.
            fs::remove_file(&path).with_context(|| format!("replacing {}", path.display()))?;
            let len = 20_000 + (i as u64 % 50) * 1_000;
            content::create_seeded(&path, &format!("edit-{i}"), len)?;
            hash = Some(content::hash_file(&path)?);
        }
        if let Some(h) = hash {
            edited.insert(rel.clone(), h);
        }
    }
    for side in &sides {
        runner.git(&side.repo, &["switch", "-q", "-c", "edit"])?;
        runner.git(&side.repo, &["commit", "-q", "-a", "-m", "a tenth changed"])?;
        runner.git(&side.repo, &["switch", "-q", "main"])?;
        check_tree(&side.repo, &base, "switch back to main")?;
    }
    for side in &mut sides {
        timed(side, &["switch", "-q", "edit"])?;
        check_tree(&side.repo, &edited, "switch to the edited branch")?;
    }

    for side in &sides {
        let entries =
            fs::read_dir(&side.repo).with_context(|| format!("listing {}", side.repo.display()))?;
        for entry in entries {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('d') && entry.path().is_dir() {
                fs::remove_dir_all(entry.path())?;
            }
        }
    }
    for side in &mut sides {
        timed(side, &["checkout", "--", "."])?;
        check_tree(&side.repo, &edited, "checkout after rm")?;
        let after = proc::measure(runner.git_command(&side.repo, &["status", "--porcelain"]))?;
        check_clean(&after, side.tool, "status after checkout")?;
    }
    // The repositories stay until the scratch directory goes: thousands of deleted inodes
    // make ext4 slow to allocate new ones for a while, which would weigh on the next run.
    Ok(sides.into_iter().map(|s| s.trial).collect())
}

pub fn run(args: impl Iterator<Item = std::ffi::OsString>) -> Result<()> {
    let a = parse_args(args)?;
    let ws = crate::workspace();
    let dits_bin = a.common.dits_bin_dir(&ws);
    let parent = a.common.dir.clone().unwrap_or_else(|| ws.join("target"));
    // The source tree, and per run and tool a work tree, a store and git's copy of the edits.
    let need = (1 + 3 * 2 * a.runs as u64) * a.files as u64 * a.max + 512 * content::MIB;
    let scratch = crate::scratch_dir(&parent, need, "dits-bench-files-")?;
    let work = scratch.path().to_path_buf();
    let bin = crate::snapshot_bins(&dits_bin, &work, &["git-dits", "dits-filter"])?;
    let home = work.join("home");
    fs::create_dir_all(&home).context("creating the temporary HOME")?;
    let runner = Runner::new(&a.common.git, &bin, &home)?;
    let machine = report::machine(&runner, &work, &a.common.git, &ws, &dits_bin);
    let source = work.join("source");
    eprintln!("writing {} files", a.files);
    let (files, bytes) = make_source(&source, &a)?;

    let mut trials = Vec::new();
    for run in 0..a.runs {
        let order = if run % 2 == 0 {
            [Tool::Dits, Tool::Lfs]
        } else {
            [Tool::Lfs, Tool::Dits]
        };
        eprintln!("run {}/{}", run + 1, a.runs);
        trials.extend(run_once(&runner, &work, &source, &files, order, run)?);
    }
    let results = Results {
        files: a.files,
        bytes,
        min: a.min,
        max: a.max,
        trials,
    };
    let md = crate::files_report::render(&machine, &results);
    println!("{md}");
    let out = report::write(a.common.out, &ws, "files-local", &md)?;
    eprintln!("report written to {}", out.display());
    if a.keep {
        eprintln!("kept {}", scratch.keep().display());
    }
    Ok(())
}
