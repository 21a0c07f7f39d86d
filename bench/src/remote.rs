//! `dits-bench remote`: push to and clone from a real server on loopback, Git LFS + giftless
//! against Dits (`git dits serve`), in one run on the same seeded file and the same edits as
//! the local benchmark.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::cases::Tool;
use crate::content::{self, Edit};
use crate::proc::{self, Measured, Runner};
use crate::server::Server;
use crate::{args, dits_serve, giftless, remote_report, report, wire};

const USAGE: &str = "\
usage: dits-bench remote [--size-mib N] [--dir DIR] [--out FILE] [--git PATH]
                         [--dits-bin DIR] [--venv DIR] [--tools LIST] [--keep]

  --size-mib N    size of the seeded file (default 1024)
  --dir DIR       scratch parent directory (default <workspace>/target)
  --out FILE      markdown report (default bench/results/remote-local-<date>.md)
  --git PATH      git to run (default /usr/local/bin/git)
  --dits-bin DIR  directory holding git-dits, dits-filter and git-remote-dits
                  (default <workspace>/target/release)
  --venv DIR      virtual environment with giftless, made by bench/giftless/setup.sh
                  (default <workspace>/target/bench-venv)
  --tools LIST    comma-separated subset of lfs,dits (default both)
  --keep          keep the scratch directory, repositories and server stores

Pushes and clones go over loopback: nothing else should use loopback during the run.";

/// The repository path on both servers.
pub const REPO: &str = "bench/film";
const FILE: &str = "big.bin";

struct Args {
    common: args::Common,
    venv: Option<PathBuf>,
    tools: Vec<Tool>,
    keep: bool,
}

fn parse_args(args: impl Iterator<Item = std::ffi::OsString>) -> Result<Args> {
    let mut common = args::Common::default();
    let (mut venv, mut tools, mut keep) = (None, vec![Tool::Lfs, Tool::Dits], false);
    args::parse(args, USAGE, &mut common, |flag, value| {
        match flag {
            "--venv" => venv = Some(value()?.into()),
            "--tools" => {
                tools = value()?
                    .to_string_lossy()
                    .split(',')
                    .map(|t| match t {
                        "lfs" => Ok(Tool::Lfs),
                        "dits" => Ok(Tool::Dits),
                        _ => bail!("unknown tool {t:?} in --tools (lfs or dits)\n{USAGE}"),
                    })
                    .collect::<Result<_>>()?;
            }
            "--keep" => keep = true,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if common.size_mib < 16 {
        bail!("--size-mib must be at least 16");
    }
    if tools.is_empty() {
        bail!("--tools names no tool\n{USAGE}");
    }
    Ok(Args {
        common,
        venv,
        tools,
        keep,
    })
}

/// One measured client command against a server.
#[derive(Debug, Clone)]
pub struct Step {
    pub run: Measured,
    /// Loopback bytes transmitted while it ran (both directions, headers included).
    pub wire: u64,
    /// CPU the server used while it ran.
    pub server_cpu: Duration,
}

/// Allocated disk of a clone.
#[derive(Debug, Clone, Copy)]
pub struct Disk {
    /// Work tree and `.git`.
    pub total: u64,
    pub git: u64,
}

pub struct EditPush {
    pub edit: Edit,
    pub push: Step,
}

pub struct CloneResult {
    pub how: String,
    pub step: Step,
    pub disk: Disk,
}

pub struct SideResult {
    pub tool: Tool,
    pub push: Step,
    /// The plain `git clone`; for LFS also the skip-smudge clone followed by `git lfs pull`.
    pub clones: Vec<CloneResult>,
    pub edits: Vec<EditPush>,
    /// `git pull` of the five edits into the first fresh clone.
    pub pull: Step,
    /// Allocated disk of the server's store at the end.
    pub server_store: u64,
    pub server_peak_rss_kib: u64,
    pub server: String,
}

pub enum Outcome {
    Ran(Box<SideResult>),
    Skipped { tool: Tool, why: String },
}

pub struct Results {
    pub size: u64,
    pub source_hash: blake3::Hash,
    pub outcomes: Vec<Outcome>,
}

impl Results {
    pub fn ran(&self, tool: Tool) -> Option<&SideResult> {
        self.outcomes.iter().find_map(|o| match o {
            Outcome::Ran(r) if r.tool == tool => Some(&**r),
            _ => None,
        })
    }
}

struct Ctx {
    work: PathBuf,
    git: PathBuf,
    bin: PathBuf,
    venv: PathBuf,
    source: PathBuf,
    source_hash: blake3::Hash,
    keep: bool,
    dits_missing: Option<String>,
}

/// Entry point of the mode; `args` are those after `remote`.
pub fn run(args: impl Iterator<Item = std::ffi::OsString>) -> Result<()> {
    let args = parse_args(args)?;
    let ws = crate::workspace();
    let dits_bin = args.common.dits_bin_dir(&ws);
    let venv = args.venv.unwrap_or_else(|| ws.join("target/bench-venv"));
    if args.tools.contains(&Tool::Lfs) {
        giftless::flask(&venv)?;
    }
    let size = args.common.size_mib * content::MIB;
    let parent = args.common.dir.unwrap_or_else(|| ws.join("target"));
    // Git LFS is the larger case: the input, the client's work tree and six versions in its
    // .git/lfs, six versions on the server, two clones of two copies each, one more on pull.
    let scratch = crate::scratch_dir(&parent, 20 * size, "dits-bench-remote-")?;
    // With --keep the directory stays whatever happens, failures included.
    let (work, _scratch) = if args.keep {
        let kept = scratch.keep();
        eprintln!("keeping {}", kept.display());
        (kept, None)
    } else {
        (scratch.path().to_path_buf(), Some(scratch))
    };
    // Without the Dits programs the Dits side is reported as skipped, not the run failed.
    const DITS: [&str; 3] = ["git-dits", "dits-filter", "git-remote-dits"];
    let dits_missing = DITS
        .iter()
        .map(|name| dits_bin.join(name))
        .find(|p| args.tools.contains(&Tool::Dits) && !p.is_file())
        .map(|p| {
            format!(
                "{} not found; hint: run `cargo build --release --bins` in {}",
                p.display(),
                ws.display()
            )
        });
    let wanted: &[&str] = if args.tools.contains(&Tool::Dits) && dits_missing.is_none() {
        &DITS
    } else {
        &[]
    };
    let bin = crate::snapshot_bins(&dits_bin, &work, wanted)?;

    let home = work.join("home");
    fs::create_dir_all(&home).context("creating the temporary HOME")?;
    let runner = Runner::new(&args.common.git, &bin, &home)?;
    let mut machine = report::machine(&runner, &work, &args.common.git, &ws, &dits_bin);
    if args.tools.contains(&Tool::Lfs) {
        machine.push(("giftless".into(), giftless::version(&venv)));
    }

    let source = work.join("source.bin");
    eprintln!(
        "generating {} of seeded content in {}",
        report::bytes(size),
        source.display()
    );
    content::create_seeded(&source, "source", size)?;
    let source_hash = content::hash_file(&source)?;
    let ctx = Ctx {
        work: work.clone(),
        git: args.common.git.clone(),
        bin,
        venv,
        source,
        source_hash,
        keep: args.keep,
        dits_missing,
    };
    let mut outcomes = Vec::new();
    for &tool in &args.tools {
        outcomes.push(run_side(&ctx, tool)?);
    }
    let results = Results {
        size,
        source_hash,
        outcomes,
    };

    let md = remote_report::render(&machine, &results);
    println!("{md}");
    let out = report::write(args.common.out, &ws, "remote-local", &md)?;
    eprintln!("report written to {}", out.display());
    if args.keep {
        eprintln!("kept {}", work.display());
    }
    Ok(())
}

/// Runs `cmd` measured, with the loopback bytes and the server's CPU around it. A `sync`
/// (untimed) first, so earlier writeback does not land in it.
pub fn step(cmd: Command, server: &Server) -> Result<Step> {
    proc::sync()?;
    let before = server.usage();
    let tx = wire::lo_tx_bytes()?;
    let run = proc::measure(cmd)?;
    let wire = wire::lo_tx_bytes()?.saturating_sub(tx);
    let server_cpu = server.usage().cpu_since(&before);
    Ok(Step {
        run,
        wire,
        server_cpu,
    })
}

/// Fails (WRONG BYTES) unless `file` has the BLAKE3 hash `want`.
pub fn verify(file: &Path, want: &blake3::Hash, what: &str) -> Result<()> {
    let size = fs::metadata(file)
        .with_context(|| format!("{what}: no file at {}", file.display()))?
        .len();
    let got = content::hash_file(file)?;
    if got != *want {
        bail!(
            "WRONG BYTES: {what} left {} ({size} bytes) with BLAKE3 {got}, expected {want}",
            file.display()
        );
    }
    Ok(())
}

/// The running server of one side, and what its clients need to reach it.
enum Running {
    Lfs {
        server: giftless::Giftless,
        remote: PathBuf,
    },
    Dits(dits_serve::DitsServer),
}

impl Running {
    fn server(&self) -> &Server {
        match self {
            Running::Lfs { server, .. } => &server.server,
            Running::Dits(d) => &d.server,
        }
    }

    fn url(&self) -> String {
        match self {
            Running::Lfs { remote, .. } => remote.display().to_string(),
            Running::Dits(d) => d.url(REPO),
        }
    }

    fn store(&self) -> &Path {
        match self {
            Running::Lfs { server, .. } => &server.storage,
            Running::Dits(d) => &d.root,
        }
    }

    fn describe(&self) -> String {
        match self {
            Running::Lfs { server, remote } => format!(
                "giftless (`flask run`, basic streaming transfer, local storage) on \
                 127.0.0.1:{}, LFS URL `{}`; Git remote: the bare repository {}",
                server.port,
                server.lfs_url(REPO),
                remote.display()
            ),
            Running::Dits(d) => format!(
                "`git dits serve` on 127.0.0.1:{} (UDP), remote `{}`",
                d.port,
                d.url(REPO)
            ),
        }
    }
}

fn run_side(ctx: &Ctx, tool: Tool) -> Result<Outcome> {
    let name = tool.name();
    let dir = ctx.work.join(tool.slug());
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Each side has its own HOME: its own global config, credentials and trust store.
    let home = dir.join("home");
    fs::create_dir_all(&home).context("creating the side's HOME")?;
    let runner = Runner::new(&ctx.git, &ctx.bin, &home)?;

    // The server, and the user-wide set-up a person would have done once.
    let running = match tool {
        Tool::Lfs => {
            runner.git(&dir, &["lfs", "install", "--skip-repo"])?;
            eprintln!("{name}: starting giftless");
            let server = giftless::start(&ctx.venv, &dir, |p| runner.command(p, &dir))?;
            let remote = dir.join("remote.git");
            runner.git(&dir, &["init", "-q", "--bare", "-b", "main", "remote.git"])?;
            Running::Lfs { server, remote }
        }
        Tool::Dits => {
            let why = ctx
                .dits_missing
                .clone()
                .or_else(|| dits_serve::unavailable(&runner, &dir));
            if let Some(why) = why {
                eprintln!("Dits: SKIPPED: {why}");
                return Ok(Outcome::Skipped { tool, why });
            }
            runner.git(&dir, &["dits", "install", "--global", "-q"])?;
            eprintln!("{name}: starting git dits serve");
            let server = dits_serve::start_for_client(&runner, &ctx.bin, &dir, REPO)?;
            Running::Dits(server)
        }
        Tool::Git => bail!("plain git has no remote case"),
    };
    let result = side_cases(ctx, &runner, tool, &dir, &running);
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            return Err(anyhow::anyhow!(
                "{name}: {e:#}\n{}",
                running.server().log_tail()
            ))
        }
    };
    drop(running);
    if !ctx.keep {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(Outcome::Ran(Box::new(result)))
}

fn side_cases(
    ctx: &Ctx,
    runner: &Runner,
    tool: Tool,
    dir: &Path,
    running: &Running,
) -> Result<SideResult> {
    let name = tool.name();
    let server = running.server();
    let client = dir.join("client");
    let file = client.join(FILE);

    // The client repository, its first commit and the file, committed untimed.
    fs::create_dir_all(&client).with_context(|| format!("creating {}", client.display()))?;
    runner.git(&client, &["init", "-q", "-b", "main"])?;
    runner.git(&client, &["config", "gc.auto", "0"])?;
    runner.git(&client, &["config", "maintenance.auto", "false"])?;
    match running {
        Running::Lfs { server, .. } => {
            runner.git(&client, &["lfs", "install", "--local"])?;
            runner.git(&client, &["lfs", "track", "*.bin"])?;
            // The LFS endpoint travels with the repository, so a clone finds it.
            let lfsconfig = format!("[lfs]\n\turl = {}\n", server.lfs_url(REPO));
            fs::write(client.join(".lfsconfig"), lfsconfig).context("writing .lfsconfig")?;
            runner.git(&client, &["add", ".lfsconfig"])?;
            // giftless has no locking API; without this each push first asks for it (404).
            runner.git(&client, &["config", "lfs.locksverify", "false"])?;
        }
        Running::Dits(_) => {
            runner.git(&client, &["dits", "install", "--local", "-q"])?;
            runner.git(&client, &["dits", "track", "*.bin"])?;
        }
    }
    runner.git(&client, &["add", ".gitattributes"])?;
    runner.git(&client, &["commit", "-q", "-m", "init"])?;
    runner.git(&client, &["remote", "add", "origin", &running.url()])?;
    fs::copy(&ctx.source, &file).with_context(|| format!("copying to {}", file.display()))?;
    eprintln!("{name}: git add + commit (untimed)");
    runner.git(&client, &["add", FILE])?;
    runner.git(&client, &["commit", "-q", "-m", "v0"])?;

    // (a) The first push.
    eprintln!("{name}: first push");
    let push = step(
        runner.git_command(&client, &["push", "-q", "-u", "origin", "main"]),
        server,
    )?;

    // (b) A fresh clone with checkout, verified byte for byte; (d) its disk use.
    eprintln!("{name}: fresh clone");
    let url = running.url();
    let clone = dir.join("clone");
    let mut cmd = runner.git_command(dir, &["clone", "-q", &url]);
    cmd.arg(&clone);
    let clone_step = step(cmd, server)?;
    if runner
        .git(&clone, &["rev-parse", "-q", "--verify", "HEAD"])
        .is_err()
    {
        bail!(
            "`git clone {url}` checked out no commit: the server's HEAD does not name a pushed \
             branch (the clone has: {:?})",
            runner
                .git(&clone, &["branch", "-a"])
                .unwrap_or_default()
                .trim()
        );
    }
    verify(
        &clone.join(FILE),
        &ctx.source_hash,
        &format!("{name} clone"),
    )?;
    let (total, git) = wire::clone_disk(&clone)?;
    let mut clones = vec![CloneResult {
        how: "`git clone`".into(),
        step: clone_step,
        disk: Disk { total, git },
    }];
    if tool == Tool::Dits {
        // Keeping a clone near 1x: a second clone, then `git dits prune --now` (timed alone;
        // the disk column is after the prune). A separate clone, because pruned content
        // would be fetched again by the pulls measured below.
        eprintln!("{name}: second clone + git dits prune --now");
        let alt = dir.join("clone-prune");
        let mut cmd = runner.git_command(dir, &["clone", "-q", &url]);
        cmd.arg(&alt);
        step(cmd, server)?;
        let cmd = runner.git_command(&alt, &["dits", "prune", "--now", "-q"]);
        let prune_step = step(cmd, server)?;
        verify(&alt.join(FILE), &ctx.source_hash, "Dits clone after prune")?;
        let (total, git) = wire::clone_disk(&alt)?;
        clones.push(CloneResult {
            how: "`git clone`, then `git dits prune --now` (the prune alone is timed)".into(),
            step: prune_step,
            disk: Disk { total, git },
        });
        fs::remove_dir_all(&alt).with_context(|| format!("removing {}", alt.display()))?;
    }
    if tool == Tool::Lfs {
        // The other way to clone with LFS: pointers first, then a batch download that writes
        // the files itself, outside git (no smudge through git's memory).
        eprintln!("{name}: skip-smudge clone + git lfs pull");
        let alt = dir.join("clone-pull");
        let mut cmd = runner.command("sh", dir);
        cmd.args([
            "-c",
            r#"GIT_LFS_SKIP_SMUDGE=1 "$1" clone -q "$2" "$3" && cd "$3" && "$1" lfs pull"#,
            "sh",
        ])
        .arg(&ctx.git)
        .arg(&url)
        .arg(&alt);
        let alt_step = step(cmd, server)?;
        verify(
            &alt.join(FILE),
            &ctx.source_hash,
            "LFS skip-smudge clone + pull",
        )?;
        let (total, git) = wire::clone_disk(&alt)?;
        clones.push(CloneResult {
            how: "`GIT_LFS_SKIP_SMUDGE=1 git clone` + `git lfs pull`".into(),
            step: alt_step,
            disk: Disk { total, git },
        });
        fs::remove_dir_all(&alt).with_context(|| format!("removing {}", alt.display()))?;
    }
    // What a person does in a new clone (untimed): the tool's hooks.
    match tool {
        Tool::Dits => runner.git(&clone, &["dits", "install", "--local", "-q"])?,
        _ => runner.git(&clone, &["lfs", "install", "--local"])?,
    };

    // (c) The edit sequence, each committed (untimed) and pushed (timed).
    let mut edits = Vec::new();
    for (i, edit) in Edit::sequence().into_iter().enumerate() {
        eprintln!("{name}: edit {}, commit, push", edit.label());
        edit.apply(&file, &format!("edit-{i}"))?;
        runner.git(&client, &["add", FILE])?;
        runner.git(&client, &["commit", "-q", "-m", &edit.label()])?;
        let push = step(runner.git_command(&client, &["push", "-q"]), server)?;
        edits.push(EditPush { edit, push });
    }
    let final_hash = content::hash_file(&file)?;

    // The clone pulls all five edits and ends with the last version, byte for byte.
    eprintln!("{name}: pull of the five edits into the clone");
    let pull = step(
        runner.git_command(&clone, &["pull", "-q", "--ff-only"]),
        server,
    )?;
    verify(&clone.join(FILE), &final_hash, &format!("{name} pull"))?;

    let server_store = wire::allocated_bytes(running.store())?;
    let server_peak_rss_kib = server.usage().peak_rss_kib;
    Ok(SideResult {
        tool,
        push,
        clones,
        edits,
        pull,
        server_store,
        server_peak_rss_kib,
        server: running.describe(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Args> {
        parse_args(v.iter().map(std::ffi::OsString::from))
    }

    #[test]
    fn tools_flag() -> Result<()> {
        assert_eq!(args(&[])?.tools, vec![Tool::Lfs, Tool::Dits]);
        assert_eq!(args(&["--tools", "lfs"])?.tools, vec![Tool::Lfs]);
        assert!(args(&["--tools", "git"]).is_err());
        assert_eq!(args(&["--size-mib", "100"])?.common.size_mib, 100);
        assert!(args(&["--size-mib", "1"]).is_err());
        Ok(())
    }
}
