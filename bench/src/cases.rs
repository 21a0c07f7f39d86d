//! The cases: the `cp` floor, and one repository each for plain git, Git LFS and Dits, all fed
//! the same seeded file and the same edits.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::content::{self, Edit};
use crate::proc::{self, Measured, Runner};

pub struct Config {
    pub size: u64,
    pub repeat: usize,
    /// Scratch directory, on the disk being measured; everything happens under it.
    pub work: PathBuf,
    pub tools: Vec<Tool>,
    pub keep: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Git,
    Lfs,
    Dits,
}

impl Tool {
    pub const ALL: [Tool; 3] = [Tool::Git, Tool::Lfs, Tool::Dits];

    pub fn name(self) -> &'static str {
        match self {
            Tool::Git => "plain git",
            Tool::Lfs => "Git LFS",
            Tool::Dits => "Dits",
        }
    }

    pub fn slug(self) -> &'static str {
        match self {
            Tool::Git => "git",
            Tool::Lfs => "lfs",
            Tool::Dits => "dits",
        }
    }

    /// Part of the store worth reporting on its own (Dits: per-version manifests).
    pub fn detail_dir(self) -> Option<&'static str> {
        match self {
            Tool::Dits => Some(".git/dits/manifests"),
            _ => None,
        }
    }

    /// The directory whose growth is the tool's storage cost.
    pub fn store_dir(self) -> &'static str {
        match self {
            Tool::Git => ".git/objects",
            Tool::Lfs => ".git/lfs/objects",
            Tool::Dits => ".git/dits",
        }
    }

    /// A new repository at `repo` with the tool installed locally, tracking `patterns`, and an
    /// empty first commit (with `.gitattributes` when the tool wrote one).
    pub fn init(self, runner: &Runner, repo: &Path, patterns: &[&str]) -> Result<()> {
        fs::create_dir_all(repo).with_context(|| format!("creating {}", repo.display()))?;
        runner.git(repo, &["init", "-q", "-b", "main"])?;
        // No background gc or auto-packing in the middle of a measurement.
        runner.git(repo, &["config", "gc.auto", "0"])?;
        runner.git(repo, &["config", "maintenance.auto", "false"])?;
        match self {
            Tool::Git => {}
            Tool::Lfs => {
                runner.git(repo, &["lfs", "install", "--local"])?;
                runner.git(repo, &[&["lfs", "track"][..], patterns].concat())?;
            }
            Tool::Dits => {
                runner.git(repo, &["dits", "install", "--local"])?;
                runner.git(repo, &[&["dits", "track"][..], patterns].concat())?;
            }
        }
        if repo.join(".gitattributes").exists() {
            runner.git(repo, &["add", ".gitattributes"])?;
        }
        runner.git(repo, &["commit", "-q", "--allow-empty", "-m", "init"])?;
        Ok(())
    }
}

pub struct Floor {
    pub cp: Measured,
    pub cp_fsync: Measured,
}

/// How much a store grew, and how much of that was in the tool's detail directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct Growth {
    pub total: u64,
    pub detail: Option<u64>,
}

pub struct EditResult {
    pub edit: Edit,
    pub add: Measured,
    pub growth: Growth,
}

pub struct StatusCheck {
    pub run: Measured,
    /// `git status --porcelain` output; empty when the checkout left a clean tree.
    pub porcelain: String,
}

pub struct ToolResult {
    pub tool: Tool,
    pub add: Measured,
    pub add_growth: Growth,
    pub checkout: Measured,
    pub status: StatusCheck,
    pub edits: Vec<EditResult>,
    pub known: Measured,
    pub known_growth: Growth,
    pub store_final: u64,
    /// Anything the tool printed about itself (`git dits stats`).
    pub stats: Option<String>,
}

pub struct Results {
    pub source_hash: blake3::Hash,
    pub floor: Floor,
    pub tools: Vec<ToolResult>,
}

const FILE: &str = "big.bin";
const KNOWN: &str = "known.bin";

fn repeat<F: FnMut(usize) -> Result<Measured>>(n: usize, mut f: F) -> Result<Measured> {
    let runs = (0..n).map(&mut f).collect::<Result<Vec<_>>>()?;
    proc::median(runs)
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn remove_dir(dir: &Path) -> Result<()> {
    fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))
}

pub fn run(cfg: &Config, runner: &Runner) -> Result<Results> {
    let source = cfg.work.join("source.bin");
    eprintln!(
        "generating {} of seeded content in {}",
        crate::report::bytes(cfg.size),
        source.display()
    );
    content::create_seeded(&source, "source", cfg.size)?;
    let source_hash = content::hash_file(&source)?;

    let floor = run_floor(cfg, runner, &source)?;
    let mut tools = Vec::new();
    for &tool in &cfg.tools {
        tools.push(run_tool(cfg, runner, tool, &source, &source_hash)?);
    }
    Ok(Results {
        source_hash,
        floor,
        tools,
    })
}

fn run_floor(cfg: &Config, runner: &Runner, source: &Path) -> Result<Floor> {
    eprintln!("cp floor");
    let dir = cfg.work.join("cp");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dst = dir.join("copy.bin");
    // One untimed copy first, so the floor does not pay for a cold first run.
    copy(source, &dst)?;
    let timed = |with_fsync: bool| {
        repeat(cfg.repeat, |_| {
            let _ = fs::remove_file(&dst);
            proc::sync()?;
            let mut cmd = runner.command("sh", &dir);
            let script = if with_fsync {
                r#"cp "$1" "$2" && sync "$2""#
            } else {
                r#"cp "$1" "$2""#
            };
            cmd.args(["-c", script, "sh"]).arg(source).arg(&dst);
            proc::measure(cmd)
        })
    };
    let cp = timed(false)?;
    let cp_fsync = timed(true)?;
    remove_dir(&dir)?;
    Ok(Floor { cp, cp_fsync })
}

/// Times `git add <name>` and reports how much the store grew.
fn timed_add(runner: &Runner, tool: Tool, repo: &Path, name: &str) -> Result<(Measured, Growth)> {
    let sizes = || -> Result<(u64, Option<u64>)> {
        let total = content::dir_bytes(&repo.join(tool.store_dir()))?;
        let detail = match tool.detail_dir() {
            Some(d) => Some(content::dir_bytes(&repo.join(d))?),
            None => None,
        };
        Ok((total, detail))
    };
    proc::sync()?;
    let before = sizes()?;
    let m = proc::measure(runner.git_command(repo, &["add", name]))?;
    let after = sizes()?;
    let growth = Growth {
        total: after.0.saturating_sub(before.0),
        detail: after.1.zip(before.1).map(|(a, b)| a.saturating_sub(b)),
    };
    Ok((m, growth))
}

fn run_tool(
    cfg: &Config,
    runner: &Runner,
    tool: Tool,
    source: &Path,
    source_hash: &blake3::Hash,
) -> Result<ToolResult> {
    let name = tool.name();
    let repo = cfg.work.join(tool.slug());
    let file = repo.join(FILE);

    // 1. `git add` of the whole file, in a fresh repository each repetition; the first
    //    repository stays for the rest of the case.
    eprintln!("{name}: add");
    let mut growth = Growth::default();
    let add = repeat(cfg.repeat, |i| {
        let dir = if i == 0 {
            repo.clone()
        } else {
            cfg.work.join(format!("{}-rep{i}", tool.slug()))
        };
        tool.init(runner, &dir, &["*.bin"])?;
        copy(source, &dir.join(FILE))?;
        let (m, g) = timed_add(runner, tool, &dir, FILE)?;
        if i == 0 {
            growth = g;
        } else {
            remove_dir(&dir)?;
        }
        Ok(m)
    })?;
    runner.git(&repo, &["commit", "-q", "-m", "v0"])?;

    // 2. A fresh checkout: delete the work-tree file, check it out again, verify every byte.
    eprintln!("{name}: checkout");
    let checkout = repeat(cfg.repeat, |_| {
        fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
        proc::sync()?;
        let m = proc::measure(runner.git_command(&repo, &["checkout", "--", FILE]))?;
        verify(&file, source_hash, tool)?;
        Ok(m)
    })?;
    let run = proc::measure(runner.git_command(&repo, &["status", "--porcelain"]))?;
    let status = StatusCheck {
        porcelain: run.stdout.clone(),
        run,
    };

    // 3. The edit sequence, each edit committed before the next.
    let mut edits = Vec::new();
    let mut versions = Vec::new();
    for (i, edit) in Edit::sequence().into_iter().enumerate() {
        eprintln!("{name}: edit {}", edit.label());
        edit.apply(&file, &format!("edit-{i}"))?;
        let (m, g) = timed_add(runner, tool, &repo, FILE)?;
        runner.git(&repo, &["commit", "-q", "-m", &edit.label()])?;
        let commit = runner.git(&repo, &["rev-parse", "HEAD"])?;
        versions.push((commit.trim().to_string(), content::hash_file(&file)?));
        edits.push(EditResult {
            edit,
            add: m,
            growth: g,
        });
    }

    // 4. A mostly-known file: the original with 1 MiB overwritten (new bytes each repetition).
    eprintln!("{name}: add of a mostly-known file");
    let known_path = repo.join(KNOWN);
    let mut known_growth = Growth::default();
    let known = repeat(cfg.repeat, |i| {
        copy(source, &known_path)?;
        Edit::sequence()[0].apply(&known_path, &format!("known-{i}"))?;
        let (m, g) = timed_add(runner, tool, &repo, KNOWN)?;
        if i == 0 {
            known_growth = g;
        }
        runner.git(&repo, &["rm", "-q", "--cached", KNOWN])?;
        Ok(m)
    })?;

    // 5. Every edited version comes back byte for byte (untimed).
    eprintln!("{name}: verifying every edited version");
    for (commit, hash) in &versions {
        fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
        runner.git(&repo, &["checkout", commit.as_str(), "--", FILE])?;
        verify(&file, hash, tool).with_context(|| format!("version {commit}"))?;
    }

    let store_final = content::dir_bytes(&repo.join(tool.store_dir()))?;
    let stats = match tool {
        Tool::Dits => {
            let env = runner.git(&repo, &["dits", "env"])?;
            let effective = env.lines().find(|l| l.starts_with("effective:"));
            let stats = runner.git(&repo, &["dits", "stats"])?;
            Some(format!("{}\n{}", stats.trim_end(), effective.unwrap_or("")))
        }
        _ => None,
    };
    if !cfg.keep {
        remove_dir(&repo)?;
    }
    Ok(ToolResult {
        tool,
        add,
        add_growth: growth,
        checkout,
        status,
        edits,
        known,
        known_growth,
        store_final,
        stats,
    })
}

fn verify(file: &Path, want: &blake3::Hash, tool: Tool) -> Result<()> {
    let size = fs::metadata(file)
        .with_context(|| {
            format!(
                "{}: checkout left no file at {}",
                tool.name(),
                file.display()
            )
        })?
        .len();
    let got = content::hash_file(file)?;
    if got != *want {
        let head = if size <= 1024 {
            format!(
                "; content: {:?}",
                String::from_utf8_lossy(&fs::read(file).unwrap_or_default())
            )
        } else {
            String::new()
        };
        bail!(
            "WRONG BYTES: {} checkout wrote {} ({size} bytes) with BLAKE3 {got}, expected {want}{head}",
            tool.name(),
            file.display()
        );
    }
    Ok(())
}
