//! `dits-bench media` (issue 4, video-aware chunking): in one run, side by side,
//! - the new bytes an edit of a real MP4 stores with Dits chunking MP4-aware (`dits.mp4 true`),
//!   Dits chunking plain bytes (`dits.mp4 false`) and Git LFS, for each case that
//!   `tests/fixtures/media.sh` makes (metadata edit, faststart, remux, trim, ...);
//! - what the awareness costs: `git add` of a ~1 GiB MP4 made by ffmpeg, aware against plain,
//!   with Git LFS for reference (`media_add.rs`; the report is `media_report.rs`).
//!
//! Every (variant, case) gets its own repository: the original is committed, the edited file
//! replaces it and is committed, and the store's growth is the cost. Both versions are then
//! checked out again and compared byte for byte.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cases::Tool;
use crate::media_add::Throughput;
use crate::proc::{self, Runner};
use crate::{args, content, media_add, media_report, report};

const USAGE: &str = "\
usage: dits-bench media [--seconds S] [--resolution WxH] [--bitrate B] [--big-mib N] [--runs K]
                        [--dir DIR] [--out FILE] [--git PATH] [--dits-bin DIR] [--keep]

  --seconds S       length of the fixture videos (default 60)
  --resolution WxH  their frame size (default 1280x720)
  --bitrate B       their video bitrate, as ffmpeg takes it (default 8M)
  --big-mib N       size of the MP4 whose `git add` is timed (default 1024; 0 skips that part;
                    --size-mib is the same)
  --runs K          timed `git add` runs per variant, alternating aware and plain (default 5)
  --dir DIR         scratch parent directory (default <workspace>/target)
  --out FILE        also write the markdown report to FILE (it always goes to stdout)
  --git PATH        git to run (default /usr/local/bin/git)
  --dits-bin DIR    directory holding git-dits and dits-filter (default <workspace>/target/release)
  --keep            keep the scratch directory and the edit cases' repositories

The fixtures come from `bash tests/fixtures/media.sh OUTDIR S WxH B`.";

const FIXTURES: &str = "tests/fixtures/media.sh";

pub struct Args {
    pub seconds: u32,
    pub resolution: String,
    pub bitrate: String,
    pub big_mib: u64,
    pub runs: usize,
    keep: bool,
    common: args::Common,
}

fn parse_args(argv: Vec<OsString>) -> Result<Args> {
    let mut common = args::Common::default();
    let (mut seconds, mut resolution, mut bitrate) = (60, "1280x720".to_string(), "8M".to_string());
    let (mut big_mib, mut runs, mut keep) = (None, 5, false);
    args::parse(argv.into_iter(), USAGE, &mut common, |flag, value| {
        let mut text = || Ok::<_, anyhow::Error>(value()?.to_string_lossy().into_owned());
        match flag {
            "--seconds" => seconds = text()?.parse().context("--seconds")?,
            "--resolution" => resolution = text()?,
            "--bitrate" => bitrate = text()?,
            "--big-mib" => big_mib = Some(text()?.parse().context("--big-mib")?),
            "--runs" => runs = text()?.parse().context("--runs")?,
            "--keep" => keep = true,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let big_mib = big_mib.unwrap_or(common.size_mib);
    if seconds == 0 || runs == 0 {
        bail!("--seconds and --runs must be at least 1\n{USAGE}");
    }
    if big_mib != 0 && big_mib < 16 {
        bail!("--big-mib must be 0 (skip) or at least 16\n{USAGE}");
    }
    Ok(Args {
        seconds,
        resolution,
        bitrate,
        big_mib,
        runs,
        keep,
        common,
    })
}

/// Bits per second of an ffmpeg-style bitrate (`8M`, `2500k`, `800000`).
fn bits_per_second(b: &str) -> Option<u64> {
    let (num, mult) = match b.as_bytes().last()? {
        b'k' | b'K' => (&b[..b.len() - 1], 1e3),
        b'm' | b'M' => (&b[..b.len() - 1], 1e6),
        b'g' | b'G' => (&b[..b.len() - 1], 1e9),
        _ => (b, 1.0),
    };
    let v = num.parse::<f64>().ok()? * mult;
    (v.is_finite() && v > 0.0).then_some(v as u64)
}

/// The three ways a file is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Aware,
    Plain,
    Lfs,
}

impl Variant {
    pub const ALL: [Variant; 3] = [Variant::Aware, Variant::Plain, Variant::Lfs];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Aware => "Dits MP4-aware",
            Variant::Plain => "Dits plain CDC",
            Variant::Lfs => "Git LFS",
        }
    }

    pub fn slug(self) -> &'static str {
        match self {
            Variant::Aware => "aware",
            Variant::Plain => "plain",
            Variant::Lfs => "lfs",
        }
    }

    pub fn init(self, runner: &Runner, repo: &Path, patterns: &[&str]) -> Result<()> {
        match self {
            Variant::Lfs => Tool::Lfs.init(runner, repo, patterns),
            Variant::Aware | Variant::Plain => {
                Tool::Dits.init(runner, repo, patterns)?;
                let on = if self == Variant::Aware {
                    "true"
                } else {
                    "false"
                };
                runner.git(repo, &["config", "dits.mp4", on])?;
                Ok(())
            }
        }
    }

    /// What the store holds: `git dits stats` "stored bytes: ... (N B)" for Dits, the apparent
    /// size of `.git/lfs/objects` (as `du -sb`) for LFS.
    pub fn stored(self, runner: &Runner, repo: &Path) -> Result<u64> {
        if self == Variant::Lfs {
            return content::dir_bytes(&repo.join(".git/lfs/objects"));
        }
        let out = runner.git(repo, &["dits", "stats"])?;
        out.lines()
            .find_map(|l| l.strip_prefix("stored bytes:"))
            .and_then(|r| r.split_once(" B)"))
            .and_then(|(head, _)| head.rsplit_once('('))
            .and_then(|(_, n)| n.trim().parse().ok())
            .with_context(|| format!("no `stored bytes: ... (N B)` in `git dits stats`:\n{out}"))
    }
}

/// One line of `cases.tsv`: paths relative to the fixtures directory.
pub struct Case {
    pub name: String,
    pub original: PathBuf,
    pub edited: PathBuf,
    pub kind: String,
}

fn read_cases(dir: &Path) -> Result<Vec<Case>> {
    let tsv = dir.join("cases.tsv");
    let text = fs::read_to_string(&tsv).with_context(|| format!("reading {}", tsv.display()))?;
    let mut cases = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let f: Vec<&str> = line.split('\t').collect();
        let [name, original, edited, kind] = f[..] else {
            bail!(
                "{}: expected case<TAB>original<TAB>edited<TAB>kind, got {line:?}",
                tsv.display()
            );
        };
        cases.push(Case {
            name: name.to_string(),
            original: dir.join(original),
            edited: dir.join(edited),
            kind: kind.to_string(),
        });
    }
    if cases.is_empty() {
        bail!("{} lists no cases", tsv.display());
    }
    Ok(cases)
}

/// `*.ext` for every extension among the cases' files: what the repositories track.
fn patterns(cases: &[Case]) -> Vec<String> {
    let mut pats: Vec<String> = cases
        .iter()
        .flat_map(|c| [&c.original, &c.edited])
        .map(|p| match p.extension() {
            Some(ext) => format!("*.{}", ext.to_string_lossy()),
            None => p
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into()),
        })
        .collect();
    pats.sort();
    pats.dedup();
    pats
}

/// What one edit stored, per variant, in the order of `Variant::ALL`.
pub struct EditCost {
    pub case: Case,
    pub edited_size: u64,
    pub new_bytes: [u64; 3],
}

pub fn file_size(p: &Path) -> Result<u64> {
    Ok(fs::metadata(p)
        .with_context(|| format!("reading the size of {}", p.display()))?
        .len())
}

fn check_out(
    runner: &Runner,
    repo: &Path,
    rev: &str,
    name: &str,
    want: &blake3::Hash,
) -> Result<()> {
    let file = repo.join(name);
    fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
    runner.git(repo, &["checkout", rev, "--", name])?;
    let got = content::hash_file(&file)?;
    if got != *want {
        bail!(
            "WRONG BYTES: checkout of {rev}:{name} in {} has BLAKE3 {got}, expected {want}",
            repo.display()
        );
    }
    Ok(())
}

/// Commits the original, then the edited file in its place; returns the store's growth from
/// the second commit. Both versions are then checked out and verified.
fn edit_cost(runner: &Runner, v: Variant, repo: &Path, case: &Case, pats: &[&str]) -> Result<u64> {
    v.init(runner, repo, pats)?;
    let name = case
        .original
        .file_name()
        .with_context(|| format!("no file name in {}", case.original.display()))?
        .to_string_lossy()
        .into_owned();
    let file = repo.join(&name);
    fs::copy(&case.original, &file)
        .with_context(|| format!("copying {}", case.original.display()))?;
    runner.git(repo, &["add", &name])?;
    runner.git(repo, &["commit", "-q", "-m", "original"])?;
    let before = v.stored(runner, repo)?;
    fs::copy(&case.edited, &file).with_context(|| format!("copying {}", case.edited.display()))?;
    runner.git(repo, &["add", &name])?;
    runner.git(repo, &["commit", "-q", "-m", &case.name])?;
    let after = v.stored(runner, repo)?;
    check_out(
        runner,
        repo,
        "HEAD~1",
        &name,
        &content::hash_file(&case.original)?,
    )?;
    check_out(
        runner,
        repo,
        "HEAD",
        &name,
        &content::hash_file(&case.edited)?,
    )?;
    Ok(after.saturating_sub(before))
}

/// Every case with every variant, each in a repository of its own; also what `git dits env`
/// says about `dits.mp4` in the first aware and plain repositories.
fn edit_costs(
    runner: &Runner,
    work: &Path,
    cases: Vec<Case>,
    pats: &[&str],
    keep: bool,
) -> Result<(Vec<EditCost>, [Option<String>; 2])> {
    let mut edits = Vec::new();
    let mut mp4_env = [None, None];
    for case in cases {
        let mut new_bytes = [0; 3];
        for (i, v) in Variant::ALL.into_iter().enumerate() {
            eprintln!("{} ({}): {}", case.name, case.kind, v.name());
            let repo = work
                .join("cases")
                .join(format!("{}-{}", case.name, v.slug()));
            new_bytes[i] = edit_cost(runner, v, &repo, &case, pats)
                .with_context(|| format!("case {} with {}", case.name, v.name()))?;
            if edits.is_empty() && i < 2 {
                mp4_env[i] = mp4_setting(runner, &repo);
            }
            if !keep {
                fs::remove_dir_all(&repo)
                    .with_context(|| format!("removing {}", repo.display()))?;
            }
        }
        edits.push(EditCost {
            edited_size: file_size(&case.edited)?,
            case,
            new_bytes,
        });
    }
    Ok((edits, mp4_env))
}

/// What `git dits env` says about `dits.mp4` in a repository, if it lists it.
fn mp4_setting(runner: &Runner, repo: &Path) -> Option<String> {
    let env = runner.git(repo, &["dits", "env"]).ok()?;
    env.lines()
        .find(|l| l.starts_with("dits.mp4 ") || l.starts_with("dits.mp4="))
        .map(|l| l.split('#').next().unwrap_or(l).trim().to_string())
}

pub struct Figures {
    pub command: String,
    pub machine: Vec<(String, String)>,
    pub fixtures_cmd: String,
    pub fixtures_time: Duration,
    /// `git dits env`'s line for `dits.mp4` in an aware and a plain repository.
    pub mp4_env: [Option<String>; 2],
    pub edits: Vec<EditCost>,
    pub throughput: Option<Throughput>,
}

fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

pub fn run(argv: impl Iterator<Item = OsString>) -> Result<()> {
    let argv: Vec<OsString> = argv.collect();
    let command = std::iter::once("target/release/dits-bench media".to_string())
        .chain(argv.iter().map(|a| shell_word(&a.to_string_lossy())))
        .collect::<Vec<_>>()
        .join(" ");
    let args = parse_args(argv)?;
    let ws = crate::workspace();
    let script = ws.join(FIXTURES);
    if !script.is_file() {
        bail!(
            "{} not found; the media fixtures come from it",
            script.display()
        );
    }
    let dits_bin = args.common.dits_bin_dir(&ws);
    let parent = args.common.dir.clone().unwrap_or_else(|| ws.join("target"));
    let fixture =
        bits_per_second(&args.bitrate).unwrap_or(50_000_000) / 8 * u64::from(args.seconds);
    let big = args.big_mib * content::MIB;
    // The fixtures (some thirty files, the ProRes ones larger), and the big MP4 with one
    // store of it at a time.
    let scratch = crate::scratch_dir(&parent, 40 * fixture + 3 * big, "dits-bench-media-")?;
    let work = scratch.path().to_path_buf();
    let bin = crate::snapshot_bins(&dits_bin, &work, &["git-dits", "dits-filter"])?;
    let home = work.join("home");
    fs::create_dir_all(&home).context("creating the temporary HOME")?;
    let runner = Runner::new(&args.common.git, &bin, &home)?;
    let machine = report::machine(&runner, &work, &args.common.git, &ws, &dits_bin);

    let fixtures = work.join("fixtures");
    let res = (
        args.seconds.to_string(),
        args.resolution.clone(),
        args.bitrate.clone(),
    );
    let fixtures_cmd = format!("bash {FIXTURES} OUTDIR {} {} {}", res.0, res.1, res.2);
    eprintln!("making the fixtures: {fixtures_cmd}");
    let start = Instant::now();
    let mut cmd = runner.command("bash", &ws);
    cmd.arg(&script)
        .arg(&fixtures)
        .args([&res.0, &res.1, &res.2]);
    proc::run(cmd).context("making the media fixtures")?;
    let fixtures_time = start.elapsed();
    let cases = read_cases(&fixtures)?;
    let pats = patterns(&cases);
    let pats: Vec<&str> = pats.iter().map(String::as_str).collect();

    let (edits, mp4_env) = edit_costs(&runner, &work, cases, &pats, args.keep)?;

    let throughput = if big == 0 {
        None
    } else {
        Some(media_add::run(&runner, &work, big, args.runs)?)
    };
    let figures = Figures {
        command,
        machine,
        fixtures_cmd,
        fixtures_time,
        mp4_env,
        edits,
        throughput,
    };
    let md = media_report::render(&args, &figures);
    println!("{md}");
    if let Some(out) = args.common.out {
        let out = report::write(Some(out), &ws, "media", &md)?;
        eprintln!("report written to {}", out.display());
    }
    if args.keep {
        eprintln!("kept {}", scratch.keep().display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::bits_per_second;

    #[test]
    fn bitrates() {
        assert_eq!(bits_per_second("8M"), Some(8_000_000));
        assert_eq!(bits_per_second("2500k"), Some(2_500_000));
        assert_eq!(bits_per_second("800000"), Some(800_000));
        assert_eq!(bits_per_second("fast"), None);
    }
}
