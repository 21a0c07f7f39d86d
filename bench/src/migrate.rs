//! `dits-bench migrate`: rewriting a history of binary files, `git dits migrate import` against
//! `git lfs migrate import`, on the same machine in one run.
//!
//! One synthetic history is built once (untimed) with `git fast-import`: N commits over F
//! seeded binary files, each commit after the first editing a few of them (a few KiB
//! overwritten at a random offset, or a few KiB appended), so content-defined chunking can
//! deduplicate the edits. That is the PLAIN repository (the media as plain git blobs). Each
//! timed trial runs on a fresh copy of a source repository:
//!
//! - `lfs`: `git lfs migrate import --everything --include='*.bin'` on a copy of PLAIN;
//! - `dits`: `git dits migrate import --everything --include='*.bin'` on a copy of PLAIN;
//! - `adopt`: `git dits migrate import --everything` on a copy of the LFS repository, which is
//!   the result of the first `lfs` trial with the plain blobs garbage-collected away.
//!
//! Trials alternate (lfs, dits, adopt, lfs, dits, adopt, ...); medians of wall time, CPU and
//! peak RSS, the stores they leave (`.git/lfs/objects`, `.git/dits`) and the whole `.git` go to
//! a markdown report (see `migrate_report.rs`).

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::proc::{self, Measured, Runner};
use crate::{args, content, migrate_report, remote, report};

const USAGE: &str = "\
usage: dits-bench migrate [--commits N] [--files N] [--min-mib N] [--max-mib N] [--edits N]
                          [--runs N] [--cases LIST] [--quick] [--dir DIR] [--out FILE]
                          [--git PATH] [--dits-bin DIR] [--keep]

Builds one seeded history (untimed, with git fast-import), then times, each on a fresh copy:
  lfs    git lfs migrate import --everything --include='*.bin'    (history of plain blobs)
  dits   git dits migrate import --everything --include='*.bin'   (the same plain history)
  adopt  git dits migrate import --everything                     (the same history in Git LFS)
alternating lfs, dits, adopt, lfs, dits, adopt, ... The lfs trials then time `git lfs
checkout` apart (git lfs migrate import leaves the work tree's files as pointers).

  --commits N     commits in the history (default 2000)
  --files N       binary files (default 500)
  --min-mib N     size of the smallest file at the first commit, MiB (default 1)
  --max-mib N     size of the largest, MiB; sizes are spread evenly between (default 50)
  --edits N       each commit after the first edits 1 to N files (default 3)
  --runs N        trials per case; medians are reported (default 3)
  --cases LIST    comma-separated subset of lfs,dits,adopt (default all three)
  --quick         a smoke run: --commits 60 --files 20 --min-mib 1 --max-mib 4 --runs 1
                  unless given
  --dir DIR       scratch parent directory (default <workspace>/target)
  --out FILE      markdown report (default bench/results/migrate-local-<date>.md)
  --git PATH      git to run (default /usr/local/bin/git)
  --dits-bin DIR  directory holding git-dits and dits-filter (default <workspace>/target/release)
  --keep          keep the scratch directory and every trial's repository

Every version of every file is stored whole by Git LFS, so the scratch disk needs about three
times the history's bytes; the run says how much before it starts.";

/// The paths both tools are told to convert.
pub const PATTERN: &str = "*.bin";
const FILES_PER_DIR: usize = 25;
/// Domain of the BLAKE3 XOF behind every byte of the history.
const SEED_CONTEXT: &str = "dits-bench 2025-01-01 migrate history v1";
/// 2025-01-01T00:00:00Z; commit `c` is dated a minute after commit `c - 1`.
const EPOCH: u64 = 1_735_689_600;
const IDENT: &str = "Dits Bench <bench@dits.invalid>";
/// Set in the source repositories (and so in every copy): no automatic gc or maintenance in
/// the middle of a measured command.
const REPO_CONFIG: [(&str, &str); 2] = [("gc.auto", "0"), ("maintenance.auto", "false")];
/// A pointer of either kind is well below this; a file's own bytes (1 MiB or more) are not.
const POINTER_MAX: u64 = 300;
const LFS_POINTER: &str = "version https://git-lfs.github.com/spec/v1";
const DITS_POINTER: &str = "dits-pointer ";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// `git lfs migrate import --include` on the plain history.
    Lfs,
    /// `git dits migrate import --include` on the plain history.
    Dits,
    /// `git dits migrate import` on the history already in Git LFS.
    Adopt,
}

impl Case {
    /// In the order each run does them.
    pub const ALL: [Case; 3] = [Case::Lfs, Case::Dits, Case::Adopt];

    pub fn slug(self) -> &'static str {
        match self {
            Case::Lfs => "lfs",
            Case::Dits => "dits",
            Case::Adopt => "adopt",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Case::Lfs => "Git LFS (plain → LFS)",
            Case::Dits => "Dits (plain → Dits)",
            Case::Adopt => "Dits (LFS → Dits)",
        }
    }

    /// The git arguments of the timed command.
    fn args(self) -> Vec<String> {
        let include = format!("--include={PATTERN}");
        let v: Vec<&str> = match self {
            Case::Lfs => vec!["lfs", "migrate", "import", "--everything", &include],
            Case::Dits => vec!["dits", "migrate", "import", "--everything", &include],
            Case::Adopt => vec!["dits", "migrate", "import", "--everything"],
        };
        v.into_iter().map(String::from).collect()
    }

    /// The timed command as a user would type it.
    pub fn command(self) -> String {
        let mut s = String::from("git");
        for a in self.args() {
            s.push(' ');
            match a.strip_prefix("--include=") {
                Some(p) => s.push_str(&format!("--include='{p}'")),
                None => s.push_str(&a),
            }
        }
        s
    }

    /// What the trial's copy is made from.
    pub fn input(self) -> &'static str {
        match self {
            Case::Lfs | Case::Dits => "plain blobs",
            Case::Adopt => "Git LFS pointers + .git/lfs/objects",
        }
    }
}

/// The shape of the history.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub commits: u64,
    pub files: u64,
    /// Smallest and largest file at the first commit, bytes.
    pub min: u64,
    pub max: u64,
    /// Most files one commit edits.
    pub edits: u64,
}

struct Args {
    common: args::Common,
    spec: Spec,
    runs: usize,
    cases: Vec<Case>,
    keep: bool,
}

const NOT_GIVEN: u64 = u64::MAX;

fn parse_args(args: impl Iterator<Item = std::ffi::OsString>) -> Result<Args> {
    let mut common = args::Common {
        size_mib: NOT_GIVEN,
        ..args::Common::default()
    };
    let (mut commits, mut files, mut min, mut max) = (None, None, None, None);
    let (mut edits, mut runs, mut quick, mut keep) = (3, None, false, false);
    let mut cases = Case::ALL.to_vec();
    let number = |v: std::ffi::OsString, flag: &str| -> Result<u64> {
        v.to_string_lossy()
            .parse()
            .with_context(|| format!("{flag} needs a whole number\n{USAGE}"))
    };
    args::parse(args, USAGE, &mut common, |flag, value| {
        match flag {
            "--commits" => commits = Some(number(value()?, flag)?),
            "--files" => files = Some(number(value()?, flag)?),
            "--min-mib" => min = Some(number(value()?, flag)?),
            "--max-mib" => max = Some(number(value()?, flag)?),
            "--edits" => edits = number(value()?, flag)?,
            "--runs" => runs = Some(number(value()?, flag)?),
            "--cases" => {
                cases = value()?
                    .to_string_lossy()
                    .split(',')
                    .map(|c| {
                        Case::ALL
                            .into_iter()
                            .find(|k| k.slug() == c)
                            .with_context(|| {
                                format!("unknown case {c:?} in --cases (lfs, dits, adopt)\n{USAGE}")
                            })
                    })
                    .collect::<Result<_>>()?;
            }
            "--quick" => quick = true,
            "--keep" => keep = true,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if common.size_mib != NOT_GIVEN {
        bail!("--size-mib does not apply here; file sizes are --min-mib and --max-mib\n{USAGE}");
    }
    let pick = |given: Option<u64>, quick_v: u64, full: u64| {
        given.unwrap_or(if quick { quick_v } else { full })
    };
    let spec = Spec {
        commits: pick(commits, 60, 2000),
        files: pick(files, 20, 500),
        min: pick(min, 1, 1) * content::MIB,
        max: pick(max, 4, 50) * content::MIB,
        edits,
    };
    let runs = pick(runs, 1, 3);
    if spec.commits == 0 || spec.files == 0 || spec.min == 0 || spec.edits == 0 || runs == 0 {
        bail!("--commits, --files, --min-mib, --edits and --runs must be at least 1\n{USAGE}");
    }
    if spec.max < spec.min {
        bail!("--max-mib must be at least --min-mib\n{USAGE}");
    }
    // Keep the order of a run whatever order the list was given in; no case twice.
    let cases: Vec<Case> = Case::ALL
        .into_iter()
        .filter(|c| cases.contains(c))
        .collect();
    if cases.is_empty() {
        bail!("--cases names no case\n{USAGE}");
    }
    Ok(Args {
        common,
        spec,
        runs: usize::try_from(runs).context("--runs")?,
        cases,
        keep,
    })
}

/// splitmix64: a fixed sequence from a fixed seed, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// In `0..n` (`n` at least 1).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    /// `len` new bytes over the old ones at `offset`; the size stays.
    Overwrite { offset: u64, len: u64 },
    /// `len` new bytes at the end.
    Append { len: u64 },
}

#[derive(Debug, Clone, Copy)]
struct Change {
    file: usize,
    op: Op,
}

/// Everything the history will hold, worked out before any byte is written.
pub struct Plan {
    initial: Vec<u64>,
    /// The changes of commit `c`, 2 ≤ c ≤ commits, at index `c - 2`.
    changes: Vec<Vec<Change>>,
    /// Commits with a lightweight tag `v<c>` (an annotated `release` tags the last one too).
    tagged: Vec<u64>,
    /// Distinct `.bin` blobs in the history (file versions).
    pub versions: u64,
    /// Their bytes: what Git LFS stores, one object per version.
    pub history_bytes: u64,
    /// Bytes of the files at the first commit and at the last.
    pub initial_bytes: u64,
    pub final_bytes: u64,
    /// Bytes written by all the edits (overwritten or appended).
    pub edited_bytes: u64,
}

impl Plan {
    pub fn tags(&self) -> usize {
        self.tagged.len() + 1
    }
}

fn path(i: usize) -> String {
    format!("media/d{:02}/f{i:04}.bin", i / FILES_PER_DIR)
}

pub fn plan(spec: &Spec) -> Plan {
    let n = usize::try_from(spec.files).unwrap_or(usize::MAX);
    let initial: Vec<u64> = (0..n)
        .map(|i| {
            if n == 1 {
                spec.min
            } else {
                spec.min + (spec.max - spec.min) * i as u64 / (spec.files - 1)
            }
        })
        .collect();
    let mut sizes = initial.clone();
    let mut rng = Rng(0x0D17_5BE4_C0DE_2025);
    let initial_bytes: u64 = initial.iter().sum();
    let (mut versions, mut history_bytes, mut edited_bytes) = (spec.files, initial_bytes, 0);
    let mut changes = Vec::new();
    for _ in 2..=spec.commits {
        let k = (1 + rng.below(spec.edits)).min(spec.files);
        let mut picked: Vec<usize> = Vec::new();
        while (picked.len() as u64) < k {
            let i = rng.below(spec.files) as usize;
            if !picked.contains(&i) {
                picked.push(i);
            }
        }
        let mut commit = Vec::new();
        for file in picked {
            let op = if rng.below(4) == 0 {
                Op::Append {
                    len: 4096 * (1 + rng.below(16)),
                }
            } else {
                let len = (1024 * (1 + rng.below(16))).min(sizes[file]);
                Op::Overwrite {
                    offset: rng.below(sizes[file] - len + 1),
                    len,
                }
            };
            match op {
                Op::Append { len } => {
                    sizes[file] += len;
                    edited_bytes += len;
                }
                Op::Overwrite { len, .. } => edited_bytes += len,
            }
            versions += 1;
            history_bytes += sizes[file];
            commit.push(Change { file, op });
        }
        changes.push(commit);
    }
    let step = (spec.commits / 10).max(1);
    let tagged = (1..spec.commits).filter(|c| c % step == 0).collect();
    Plan {
        initial,
        changes,
        tagged,
        versions,
        history_bytes,
        initial_bytes,
        final_bytes: sizes.iter().sum(),
        edited_bytes,
    }
}

/// `len` bytes of the XOF of `seed`.
fn seeded(seed: &str, len: u64) -> Vec<u8> {
    let mut h = blake3::Hasher::new_derive_key(SEED_CONTEXT);
    h.update(seed.as_bytes());
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
    h.finalize_xof().fill(&mut buf);
    buf
}

/// A new file of `len` bytes of the XOF of `seed`, written 1 MiB at a time.
fn create_seeded(path: &Path, seed: &str, len: u64) -> Result<()> {
    let mut h = blake3::Hasher::new_derive_key(SEED_CONTEXT);
    h.update(seed.as_bytes());
    let mut xof = h.finalize_xof();
    let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        xof.fill(&mut buf[..n]);
        w.write_all(&buf[..n])
            .with_context(|| format!("writing {}", path.display()))?;
        left -= n as u64;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))
}

fn apply(path: &Path, op: Op, seed: &str) -> Result<()> {
    let ctx = || format!("editing {}", path.display());
    match op {
        Op::Overwrite { offset, len } => {
            let mut f = OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(ctx)?;
            f.seek(SeekFrom::Start(offset)).with_context(ctx)?;
            f.write_all(&seeded(seed, len)).with_context(ctx)
        }
        Op::Append { len } => {
            let mut f = OpenOptions::new()
                .append(true)
                .open(path)
                .with_context(ctx)?;
            f.write_all(&seeded(seed, len)).with_context(ctx)
        }
    }
}

/// The fast-import stream of the whole history, the files' current versions kept (and edited)
/// in `repo`'s work tree as it goes.
fn write_stream(w: &mut impl Write, repo: &Path, spec: &Spec, plan: &Plan) -> Result<()> {
    let mut mark = 0u64;
    let blob = |w: &mut dyn Write, mark: u64, file: &Path| -> Result<()> {
        let len = fs::metadata(file)
            .with_context(|| format!("stat {}", file.display()))?
            .len();
        write!(w, "blob\nmark :{mark}\ndata {len}\n")?;
        let mut f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
        let copied = std::io::copy(&mut f, w).context("writing to git fast-import")?;
        if copied != len {
            bail!("{} changed while it was read", file.display());
        }
        w.write_all(b"\n")?;
        Ok(())
    };
    let commit = |w: &mut dyn Write, mark: u64, c: u64, msg: &str, entries: &[(u64, usize)]| {
        let ts = EPOCH + 60 * c;
        write!(
            w,
            "commit refs/heads/main\nmark :{mark}\nauthor {IDENT} {ts} +0000\ncommitter {IDENT} {ts} +0000\ndata {}\n{msg}\n",
            msg.len() + 1
        )?;
        for &(m, i) in entries {
            writeln!(w, "M 100644 :{m} {}", path(i))?;
        }
        let notes = format!("commit {c} of {}\n", spec.commits);
        write!(
            w,
            "M 100644 inline notes.txt\ndata {}\n{notes}\n",
            notes.len()
        )?;
        anyhow::Ok(())
    };

    let mut entries = Vec::new();
    for (i, &size) in plan.initial.iter().enumerate() {
        let file = repo.join(path(i));
        if let Some(d) = file.parent() {
            fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        create_seeded(&file, &format!("file {i}"), size)?;
        mark += 1;
        blob(w, mark, &file)?;
        entries.push((mark, i));
    }
    mark += 1;
    commit(
        w,
        mark,
        1,
        &format!("Add {} media files", spec.files),
        &entries,
    )?;
    let progress = (spec.commits / 10).max(1);
    for (c, changes) in (2..).zip(&plan.changes) {
        let mut entries = Vec::new();
        let mut names = Vec::new();
        for ch in changes {
            let file = repo.join(path(ch.file));
            apply(&file, ch.op, &format!("commit {c} file {}", ch.file))?;
            mark += 1;
            blob(w, mark, &file)?;
            entries.push((mark, ch.file));
            names.push(format!("f{:04}", ch.file));
        }
        mark += 1;
        commit(w, mark, c, &format!("Edit {}", names.join(", ")), &entries)?;
        if plan.tagged.contains(&c) {
            write!(w, "reset refs/tags/v{c}\nfrom :{mark}\n\n")?;
        }
        if c % progress == 0 {
            eprintln!("  commit {c}/{}", spec.commits);
        }
    }
    let msg = "Release\n";
    write!(
        w,
        "tag release\nfrom :{mark}\ntagger {IDENT} {} +0000\ndata {}\n{msg}\ndone\n",
        EPOCH + 60 * spec.commits,
        msg.len()
    )?;
    w.flush().context("writing to git fast-import")?;
    Ok(())
}

/// The PLAIN repository at `repo`: the history in one pack of whole blobs, the last commit
/// checked out. Returns each file of the last commit with the BLAKE3 of its bytes.
fn generate(
    runner: &Runner,
    repo: &Path,
    spec: &Spec,
    plan: &Plan,
) -> Result<Vec<(String, blake3::Hash)>> {
    fs::create_dir_all(repo).with_context(|| format!("creating {}", repo.display()))?;
    runner.git(repo, &["init", "-q", "-b", "main"])?;
    for (k, v) in REPO_CONFIG {
        runner.git(repo, &["config", k, v])?;
    }
    // Whole blobs, stored (the seeded bytes do not compress), no delta search: fast to build,
    // and what each tool reads is each version's bytes.
    let mut cmd = runner.git_command(
        repo,
        &[
            "-c",
            "core.compression=0",
            "-c",
            "pack.compression=0",
            "fast-import",
            "--quiet",
            "--done",
            "--big-file-threshold=1k",
        ],
    );
    cmd.stdin(Stdio::piped()).stdout(Stdio::null());
    let mut child = cmd.spawn().context("cannot start git fast-import")?;
    let stdin = child.stdin.take().context("git fast-import stdin")?;
    let mut w = BufWriter::with_capacity(1 << 20, stdin);
    let written = write_stream(&mut w, repo, spec, plan);
    drop(w);
    let status = child.wait().context("waiting for git fast-import")?;
    written?;
    if !status.success() {
        bail!("git fast-import failed ({status})");
    }
    // The index from the last commit; the files are already its versions.
    runner.git(repo, &["reset", "-q"])?;
    runner.git(repo, &["checkout", "HEAD", "--", "notes.txt"])?;
    let dirty = runner.git(repo, &["status", "--porcelain"])?;
    if !dirty.trim().is_empty() {
        bail!("the generated work tree differs from the generated history:\n{dirty}");
    }
    (0..plan.initial.len())
        .map(|i| {
            let rel = path(i);
            let hash = content::hash_file(&repo.join(&rel))?;
            Ok((rel, hash))
        })
        .collect()
}

/// Copies repository `src` to `dst`: git's and Git LFS's object files (which nothing ever
/// writes to in place) as hard links, everything else (work tree, index, refs, config,
/// hooks) as new files.
fn copy_repo(src: &Path, dst: &Path) -> Result<()> {
    copy_tree(src, dst, Path::new(""))
}

fn copy_tree(src: &Path, dst: &Path, rel: &Path) -> Result<()> {
    let from = src.join(rel);
    let to = dst.join(rel);
    fs::create_dir_all(&to).with_context(|| format!("creating {}", to.display()))?;
    for entry in fs::read_dir(&from).with_context(|| format!("listing {}", from.display()))? {
        let entry = entry.with_context(|| format!("listing {}", from.display()))?;
        let rel = rel.join(entry.file_name());
        let (s, d) = (src.join(&rel), dst.join(&rel));
        let ft = entry
            .file_type()
            .with_context(|| format!("stat {}", s.display()))?;
        if ft.is_dir() {
            copy_tree(src, dst, &rel)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&s).with_context(|| format!("reading {}", s.display()))?;
            std::os::unix::fs::symlink(target, &d)
                .with_context(|| format!("creating {}", d.display()))?;
        } else if rel.starts_with(".git/objects") || rel.starts_with(".git/lfs/objects") {
            fs::hard_link(&s, &d).with_context(|| format!("linking {}", d.display()))?;
        } else {
            fs::copy(&s, &d).with_context(|| format!("copying {}", s.display()))?;
        }
    }
    Ok(())
}

fn count_files(dir: &Path) -> Result<u64> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    let mut n = 0;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        if entry.file_type()?.is_dir() {
            n += count_files(&entry.path())?;
        } else {
            n += 1;
        }
    }
    Ok(n)
}

/// One timed migration on a fresh copy, and what it left.
#[derive(Debug, Clone)]
pub struct Trial {
    /// 1-based.
    pub run: usize,
    pub case: Case,
    pub import: Measured,
    /// `git lfs checkout` afterwards (LFS): `git lfs migrate import` leaves the work tree's
    /// files as pointers, and its manual has the user run this to get the content back.
    pub checkout: Option<Measured>,
    /// `git dits migrate verify` afterwards (Dits cases), untimed in the headline figures.
    pub verify: Option<Measured>,
    /// Apparent size of `.git` before and after the migration.
    pub git_before: u64,
    pub git_after: u64,
    pub lfs_objects: u64,
    pub lfs_object_files: u64,
    pub dits_store: u64,
}

impl Trial {
    /// The store the tool put the file versions in.
    pub fn store(&self) -> u64 {
        match self.case {
            Case::Lfs => self.lfs_objects,
            Case::Dits | Case::Adopt => self.dits_store,
        }
    }
}

/// A source repository's `.git` as the trials found it.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    pub git: u64,
    pub lfs_objects: u64,
    pub work_tree: u64,
}

pub struct Results {
    pub spec: Spec,
    pub plan: Plan,
    pub runs: usize,
    pub cases: Vec<Case>,
    pub generate_wall: Duration,
    pub plain: Source,
    /// The LFS repository of the `adopt` trials, and where it came from.
    pub lfs_source: Option<(Source, String)>,
    /// In the order they ran.
    pub trials: Vec<Trial>,
}

struct Ctx<'a> {
    runner: &'a Runner,
    work: &'a Path,
    spec: &'a Spec,
    plan: &'a Plan,
    files: &'a [(String, blake3::Hash)],
}

fn source(repo: &Path) -> Result<Source> {
    let git = content::dir_bytes(&repo.join(".git"))?;
    Ok(Source {
        git,
        lfs_objects: content::dir_bytes(&repo.join(".git/lfs/objects"))?,
        work_tree: content::dir_bytes(repo)?.saturating_sub(git),
    })
}

/// Entry point of the mode; `args` are those after `migrate`.
pub fn run(args: impl Iterator<Item = std::ffi::OsString>) -> Result<()> {
    let args = parse_args(args)?;
    let ws = crate::workspace();
    let dits_bin = args.common.dits_bin_dir(&ws);
    const DITS: [&str; 2] = ["git-dits", "dits-filter"];
    if let Some(p) = DITS.iter().map(|n| dits_bin.join(n)).find(|p| !p.is_file()) {
        bail!(
            "{} not found; hint: run `cargo build --release --bins` in {}",
            p.display(),
            ws.display()
        );
    }
    let spec = args.spec;
    let plan = plan(&spec);
    let (h, w) = (plan.history_bytes, plan.final_bytes);
    // PLAIN (pack + work tree), the LFS repository (objects + work tree), one trial at a time
    // (a work tree and at most the history again); all of it per trial with --keep.
    let per_trial = h + w;
    let mut need = 2 * (h + w) + per_trial + 512 * content::MIB;
    if args.keep {
        need += per_trial * (args.runs * args.cases.len()) as u64;
    }
    eprintln!(
        "history: {} commits over {} files ({} to {}), {} file versions, {} of them in all \
         ({} edited); {} at the last commit, {} tags; scratch needs about {}",
        spec.commits,
        spec.files,
        report::bytes(spec.min),
        report::bytes(spec.max),
        plan.versions,
        report::bytes(h),
        report::bytes(plan.edited_bytes),
        report::bytes(w),
        plan.tags(),
        report::bytes(need)
    );
    let parent = args.common.dir.clone().unwrap_or_else(|| ws.join("target"));
    fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let free = crate::free_bytes(&parent)?;
    if free < need {
        bail!(
            "{} has {} free, the run needs about {}; hint: pass --dir on a larger disk, or make \
             the history smaller with --commits, --files, --max-mib or --edits",
            parent.display(),
            report::bytes(free),
            report::bytes(need)
        );
    }
    let scratch = crate::scratch_dir(&parent, need, "dits-bench-mig-")?;
    let (work, _scratch) = if args.keep {
        let kept = scratch.keep();
        eprintln!("keeping {}", kept.display());
        (kept, None)
    } else {
        (scratch.path().to_path_buf(), Some(scratch))
    };
    let bin = crate::snapshot_bins(&dits_bin, &work, &DITS)?;
    let home = work.join("home");
    fs::create_dir_all(&home).context("creating the temporary HOME")?;
    let runner = Runner::new(&args.common.git, &bin, &home)?;
    let machine = report::machine(&runner, &work, &args.common.git, &ws, &dits_bin);

    eprintln!("building the plain history with git fast-import (untimed)");
    let plain = work.join("plain");
    let start = Instant::now();
    let files = generate(&runner, &plain, &spec, &plan)?;
    let generate_wall = start.elapsed();
    let plain_source = source(&plain)?;
    eprintln!(
        "built in {}: .git {}, work tree {}",
        report::secs(generate_wall),
        report::bytes(plain_source.git),
        report::bytes(plain_source.work_tree)
    );

    let ctx = Ctx {
        runner: &runner,
        work: &work,
        spec: &spec,
        plan: &plan,
        files: &files,
    };
    let lfs_dir = work.join("lfs-source");
    let mut lfs_source: Option<(Source, String)> = None;
    if args.cases.contains(&Case::Adopt) && !args.cases.contains(&Case::Lfs) {
        eprintln!("building the LFS history with git lfs migrate import (untimed)");
        copy_repo(&plain, &lfs_dir)?;
        runner.git(&lfs_dir, &["lfs", "install", "--local"])?;
        proc::run(runner.git_command(&lfs_dir, &Case::Lfs.args()))?;
        runner.git(&lfs_dir, &["lfs", "checkout"])?;
        check(&ctx, &lfs_dir, Case::Lfs)?;
        lfs_source = Some((
            finish_lfs_source(&runner, &lfs_dir)?,
            "an untimed `git lfs migrate import` of the plain history".into(),
        ));
    }

    let mut trials = Vec::new();
    for run in 1..=args.runs {
        for &case in &args.cases {
            let src = match case {
                Case::Lfs | Case::Dits => &plain,
                Case::Adopt => &lfs_dir,
            };
            let (trial, dir) = run_trial(&ctx, case, run, src)
                .with_context(|| format!("run {run}, {}", case.name()))?;
            eprintln!(
                "run {run}/{}: {:<22} wall {}, CPU {}, peak RSS {:.0} MiB, store {}{}",
                args.runs,
                case.name(),
                report::secs(trial.import.wall),
                report::secs(trial.import.cpu()),
                trial.import.max_rss_mib(),
                report::bytes(trial.store()),
                match (&trial.checkout, &trial.verify) {
                    (Some(c), _) => format!(", then `git lfs checkout` {}", report::secs(c.wall)),
                    (_, Some(v)) => {
                        format!(", `git dits migrate verify` ok in {}", report::secs(v.wall))
                    }
                    _ => String::new(),
                }
            );
            if case == Case::Lfs && lfs_source.is_none() && args.cases.contains(&Case::Adopt) {
                fs::rename(&dir, &lfs_dir).with_context(|| {
                    format!("moving {} to {}", dir.display(), lfs_dir.display())
                })?;
                lfs_source = Some((
                    finish_lfs_source(&runner, &lfs_dir)?,
                    format!("the result of run {run}'s `git lfs migrate import`"),
                ));
            } else if !args.keep {
                fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
            }
            trials.push(trial);
        }
    }

    let results = Results {
        spec,
        plan,
        runs: args.runs,
        cases: args.cases,
        generate_wall,
        plain: plain_source,
        lfs_source,
        trials,
    };
    let md = migrate_report::render(&machine, &results);
    println!("{md}");
    let out = report::write(args.common.out, &ws, "migrate-local", &md)?;
    eprintln!("report written to {}", out.display());
    if args.keep {
        eprintln!("kept {}", work.display());
    }
    Ok(())
}

/// The LFS repository as a clone of it would be: the plain blobs the migration replaced (and
/// its reflogs) gone, so only pointers, trees and commits are in `.git/objects`.
fn finish_lfs_source(runner: &Runner, repo: &Path) -> Result<Source> {
    runner.git(repo, &["reflog", "expire", "--expire=now", "--all"])?;
    runner.git(repo, &["gc", "-q", "--prune=now"])?;
    let dirty = runner.git(repo, &["status", "--porcelain", "--untracked-files=no"])?;
    if !dirty.trim().is_empty() {
        bail!("the LFS repository is not clean after gc:\n{dirty}");
    }
    let s = source(repo)?;
    eprintln!(
        "LFS repository for the adopt trials: .git {} (.git/lfs/objects {}), work tree {}",
        report::bytes(s.git),
        report::bytes(s.lfs_objects),
        report::bytes(s.work_tree)
    );
    Ok(s)
}

fn run_trial(ctx: &Ctx, case: Case, run: usize, src: &Path) -> Result<(Trial, PathBuf)> {
    let runner = ctx.runner;
    let dir = ctx
        .work
        .join("trials")
        .join(format!("run{run}-{}", case.slug()));
    copy_repo(src, &dir)?;
    match case {
        Case::Lfs => runner.git(&dir, &["lfs", "install", "--local"])?,
        // The LFS repository keeps its LFS set-up; Dits' hooks replace LFS's.
        Case::Dits | Case::Adopt => {
            runner.git(&dir, &["dits", "install", "--local", "--force", "-q"])?
        }
    };
    // The copy's files have new inodes and ctimes: refresh the index now (untimed, and
    // through the LFS clean filter for the LFS repository), not inside the measured command.
    let dirty = runner.git(&dir, &["status", "--porcelain", "--untracked-files=no"])?;
    if !dirty.trim().is_empty() {
        bail!("the copy of {} is not clean:\n{dirty}", src.display());
    }
    let git_before = content::dir_bytes(&dir.join(".git"))?;
    proc::sync()?;
    let import = proc::measure(runner.git_command(&dir, &case.args()))?;
    let checkout = match case {
        Case::Lfs => {
            proc::sync()?;
            Some(proc::measure(
                runner.git_command(&dir, &["lfs", "checkout"]),
            )?)
        }
        Case::Dits | Case::Adopt => None,
    };
    check(ctx, &dir, case)?;
    let verify = match case {
        Case::Lfs => None,
        Case::Dits | Case::Adopt => Some(
            proc::measure(runner.git_command(&dir, &["dits", "migrate", "verify"]))
                .context("`git dits migrate verify` after the import")?,
        ),
    };
    let trial = Trial {
        run,
        case,
        import,
        checkout,
        verify,
        git_before,
        git_after: content::dir_bytes(&dir.join(".git"))?,
        lfs_objects: content::dir_bytes(&dir.join(".git/lfs/objects"))?,
        lfs_object_files: count_files(&dir.join(".git/lfs/objects"))?,
        dits_store: content::dir_bytes(&dir.join(".git/dits"))?,
    };
    Ok((trial, dir))
}

/// What a finished migration must have left in `repo`: every commit and tag rewritten, every
/// `.bin` of the first and the last commit a pointer of the tool's kind, the attributes
/// saying so, a clean work tree with every file's original bytes, and for LFS one object per
/// file version.
fn check(ctx: &Ctx, repo: &Path, case: Case) -> Result<()> {
    let runner = ctx.runner;
    let dirty = runner.git(repo, &["status", "--porcelain", "--untracked-files=no"])?;
    if !dirty.trim().is_empty() {
        bail!("the migration left the work tree dirty:\n{dirty}");
    }
    let count: u64 = runner
        .git(repo, &["rev-list", "--count", "refs/heads/main"])?
        .trim()
        .parse()
        .context("reading `git rev-list --count`")?;
    if count != ctx.spec.commits {
        bail!(
            "main has {count} commits after the migration, not {}",
            ctx.spec.commits
        );
    }
    let tags = runner.git(repo, &["tag", "-l"])?.lines().count();
    if tags != ctx.plan.tags() {
        bail!("{tags} tags after the migration, not {}", ctx.plan.tags());
    }
    let (prefix, filter) = match case {
        Case::Lfs => (LFS_POINTER, "filter=lfs"),
        Case::Dits | Case::Adopt => (DITS_POINTER, "filter=dits"),
    };
    let root = runner.git(repo, &["rev-list", "--max-parents=0", "refs/heads/main"])?;
    for rev in ["refs/heads/main", root.trim()] {
        let attributes = runner.git(
            repo,
            &["cat-file", "blob", &format!("{rev}:.gitattributes")],
        )?;
        if !attributes.contains(filter) {
            bail!("{rev}:.gitattributes has no {filter}:\n{attributes}");
        }
        let first = runner.git(repo, &["cat-file", "blob", &format!("{rev}:{}", path(0))])?;
        if !first.starts_with(prefix) {
            bail!(
                "{rev}:{} is not a {prefix:?} pointer: {first:.200}",
                path(0)
            );
        }
        let tree = runner.git(repo, &["ls-tree", "-r", "-l", rev])?;
        let mut bins = 0;
        for line in tree.lines() {
            let Some((meta, name)) = line.split_once('\t') else {
                continue;
            };
            if !name.ends_with(".bin") {
                continue;
            }
            bins += 1;
            let size: u64 = meta
                .split_whitespace()
                .nth(3)
                .and_then(|s| s.parse().ok())
                .with_context(|| format!("reading `git ls-tree -l`: {line}"))?;
            if size > POINTER_MAX {
                bail!("{rev}:{name} still holds the file itself ({size} bytes), not a pointer");
            }
        }
        if bins != ctx.spec.files {
            bail!("{rev} has {bins} .bin files, not {}", ctx.spec.files);
        }
    }
    for (rel, hash) in ctx.files {
        remote::verify(&repo.join(rel), hash, "the work tree after the migration")?;
    }
    if case == Case::Lfs {
        let objects = count_files(&repo.join(".git/lfs/objects"))?;
        if objects != ctx.plan.versions {
            bail!(
                ".git/lfs/objects holds {objects} objects, the history {} file versions",
                ctx.plan.versions
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Args> {
        parse_args(v.iter().map(std::ffi::OsString::from))
    }

    #[test]
    fn defaults_and_quick() -> Result<()> {
        let a = args(&[])?;
        assert_eq!(
            (a.spec.commits, a.spec.files, a.spec.min, a.spec.max, a.runs),
            (2000, 500, content::MIB, 50 * content::MIB, 3)
        );
        let q = args(&["--quick", "--files", "5"])?;
        assert_eq!((q.spec.commits, q.spec.files, q.runs), (60, 5, 1));
        assert_eq!(
            args(&["--cases", "adopt,lfs"])?.cases,
            vec![Case::Lfs, Case::Adopt]
        );
        assert!(args(&["--cases", "svn"]).is_err());
        assert!(args(&["--min-mib", "5", "--max-mib", "4"]).is_err());
        assert!(args(&["--size-mib", "5"]).is_err());
        Ok(())
    }

    #[test]
    fn plan_is_deterministic_and_adds_up() {
        let spec = Spec {
            commits: 50,
            files: 7,
            min: content::MIB,
            max: 3 * content::MIB,
            edits: 3,
        };
        let (a, b) = (plan(&spec), plan(&spec));
        assert_eq!((a.versions, a.history_bytes), (b.versions, b.history_bytes));
        let edits: usize = a.changes.iter().map(Vec::len).sum();
        assert_eq!(a.versions, 7 + edits as u64);
        assert_eq!(a.initial[0], content::MIB);
        assert_eq!(a.initial[6], 3 * content::MIB);
        assert!(a.changes.iter().all(|c| (1..=3).contains(&c.len())));
        assert_eq!(a.tags(), a.tagged.len() + 1);
    }
}
