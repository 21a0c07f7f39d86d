//! `dits-bench locks`: what locks cost a studio, against a real `git dits serve` on
//! loopback, with two users (their own homes and tokens). In one run: lock and unlock of one
//! path and of 1,000 paths in one call, listing with 10,000 locks held, the server's push
//! check (its `update` hook) of a push changing 2,000 paths against those 10,000 locks, and
//! the read-only pass of a checkout that switches 2,000 lockable files. Each figure is the
//! median of `--runs` runs; where a figure is a difference (the push check, the read-only
//! pass), the two sides alternate run by run.
//!
//! No LFS server with locking installs from the package registries here, so the report
//! names Git LFS's published figures beside ours (git-lfs issue 2978: 1.5-6.6 s per lock
//! operation; 5897/5510: 6-8 s per checkout in 120k-file repositories).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::proc::{self, Runner};
use crate::{args, dits_serve, report};

const USAGE: &str = "\
usage: dits-bench locks [--runs N] [--locks N] [--batch N] [--changed N]
                        [--dir DIR] [--out FILE] [--git PATH] [--dits-bin DIR] [--keep]

Lock, unlock, list and push-check against `git dits serve` on loopback, two users.

  --runs N      runs of each measured step; medians are reported (default 5)
  --locks N     locks the other user holds while listing and push-checking (default 10000)
  --batch N     paths of the one-call lock and unlock (default 1000)
  --changed N   paths the checked push changes and the checkout switches (default 2000)
  --dir DIR     scratch parent directory (default <workspace>/target)
  --out FILE    markdown report (default bench/results/locks-local-<date>.md)
  --git PATH    git to run (default /usr/local/bin/git)
  --dits-bin DIR  directory holding git-dits, dits-filter and git-remote-dits
  --keep        keep the scratch directory";

const REPO: &str = "studio/game";

struct Args {
    common: args::Common,
    runs: usize,
    locks: usize,
    batch: usize,
    changed: usize,
    keep: bool,
}

fn parse_args(args: impl Iterator<Item = std::ffi::OsString>) -> Result<Args> {
    let mut common = args::Common::default();
    let (mut runs, mut locks, mut batch, mut changed, mut keep) = (5, 10_000, 1000, 2000, false);
    args::parse(args, USAGE, &mut common, |flag, value| {
        let mut number = || -> Result<usize> {
            value()?
                .to_string_lossy()
                .parse()
                .with_context(|| format!("{flag} needs a whole number\n{USAGE}"))
        };
        match flag {
            "--runs" => runs = number()?,
            "--locks" => locks = number()?,
            "--batch" => batch = number()?,
            "--changed" => changed = number()?,
            "--keep" => keep = true,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if runs == 0 || locks == 0 || batch == 0 || changed == 0 {
        bail!("--runs, --locks, --batch and --changed must be at least 1\n{USAGE}");
    }
    Ok(Args {
        common,
        runs,
        locks,
        batch,
        changed,
        keep,
    })
}

/// One user: a runner with their own HOME, logged in to the server.
struct User {
    runner: Runner,
}

fn user(
    git: &Path,
    bin: &Path,
    work: &Path,
    server: &dits_serve::DitsServer,
    name: &str,
) -> Result<User> {
    let home = work.join(format!("home-{name}"));
    std::fs::create_dir_all(&home).context("creating a HOME")?;
    let runner = Runner::new(git, bin, &home)?;
    let token = dits_serve::add_token_for(&runner, &server.root, REPO, name)?;
    let creds = home.join("creds");
    std::fs::write(&creds, dits_serve::credential_line(server.port, &token))?;
    runner.git(
        &home,
        &[
            "config",
            "--global",
            "credential.helper",
            &format!("store --file='{}'", creds.display()),
        ],
    )?;
    if let Some(fp) = &server.fingerprint {
        let key = format!("dits.127.0.0.1:{}.fingerprint", server.port);
        runner.git(&home, &["config", "--global", &key, fp])?;
    }
    runner.git(&home, &["dits", "install", "--global", "-q"])?;
    Ok(User { runner })
}

/// Wall time of `args` run by `who` in `dir`.
fn timed(who: &Runner, dir: &Path, args: &[&str]) -> Result<Duration> {
    Ok(proc::measure(who.git_command(dir, args))?.wall)
}

fn median(v: &[Duration]) -> Duration {
    proc::median_of(v.iter().copied()).unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// `git dits lock` / `unlock` of `paths` in one call, as an argument list.
fn with_paths<'a>(verb: &'a str, paths: &'a [String]) -> Vec<&'a str> {
    let mut v = vec!["dits", verb, "-q"];
    v.extend(paths.iter().map(String::as_str));
    v
}

struct Row {
    what: String,
    ours: Duration,
    target: &'static str,
    lfs: &'static str,
}

pub fn run(args: impl Iterator<Item = std::ffi::OsString>) -> Result<()> {
    let args = parse_args(args)?;
    let ws = crate::workspace();
    let dits_bin = args.common.dits_bin_dir(&ws);
    const DITS: [&str; 3] = ["git-dits", "dits-filter", "git-remote-dits"];
    let parent = args.common.dir.clone().unwrap_or_else(|| ws.join("target"));
    let scratch = crate::scratch_dir(&parent, 512 << 20, "dits-bench-locks-")?;
    let work: PathBuf = if args.keep {
        scratch.keep()
    } else {
        scratch.path().to_path_buf()
    };
    let bin = crate::snapshot_bins(&dits_bin, &work, &DITS)?;
    let admin_home = work.join("home");
    std::fs::create_dir_all(&admin_home)?;
    let admin = Runner::new(&args.common.git, &bin, &admin_home)?;
    let root = work.join("server");
    std::fs::create_dir_all(&root)?;
    let server = dits_serve::start(&admin, &bin, &root, &work.join("serve.log"), &[])?;
    let me = user(&args.common.git, &bin, &work, &server, "artist")?;
    let other = user(&args.common.git, &bin, &work, &server, "lead")?;
    let machine = report::machine(&admin, &work, &args.common.git, &ws, &dits_bin);

    // The project: lockable files only (the lockable attribute alone: what is measured is
    // the locks, not the content's transfer).
    eprintln!(
        "setting up: {} + {} + {} lockable files",
        args.locks, args.batch, args.changed
    );
    let mine = work.join("artist");
    me.runner.git(
        &work,
        &[
            "init",
            "-q",
            "-b",
            "main",
            mine.to_str().unwrap_or_default(),
        ],
    )?;
    std::fs::write(mine.join(".gitattributes"), "*.psd lockable\n")?;
    let group = |dir: &str, n: usize| -> Vec<String> {
        (0..n).map(|i| format!("{dir}/f{i:05}.psd")).collect()
    };
    let held = group("held", args.locks);
    let batch = group("batch", args.batch);
    let changed = group("changed", args.changed);
    for p in held
        .iter()
        .chain(&batch)
        .chain(&changed)
        .chain(std::iter::once(&"one.psd".to_owned()))
    {
        let path = mine.join(p);
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(&path, format!("{p} v1\n"))?;
    }
    me.runner.git(&mine, &["add", "-A"])?;
    me.runner.git(&mine, &["commit", "-q", "-m", "project"])?;
    me.runner
        .git(&mine, &["remote", "add", "origin", &server.url(REPO)])?;
    me.runner
        .git(&mine, &["push", "-q", "-u", "origin", "main"])?;
    let theirs = work.join("lead");
    other.runner.git(
        &work,
        &[
            "clone",
            "-q",
            &server.url(REPO),
            theirs.to_str().unwrap_or_default(),
        ],
    )?;

    let mut rows = Vec::new();
    // One path and one call of many, lock then unlock, `runs` times.
    let (mut l1, mut u1, mut ln, mut un) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.runs {
        l1.push(timed(
            &me.runner,
            &mine,
            &["dits", "lock", "-q", "one.psd"],
        )?);
        u1.push(timed(
            &me.runner,
            &mine,
            &["dits", "unlock", "-q", "one.psd"],
        )?);
        ln.push(timed(&me.runner, &mine, &with_paths("lock", &batch))?);
        un.push(timed(&me.runner, &mine, &with_paths("unlock", &batch))?);
    }
    rows.push(Row {
        what: "lock 1 path (whole command)".into(),
        ours: median(&l1),
        target: "<= 50 ms",
        lfs: "1.5-6.6 s per lock operation (git-lfs #2978)",
    });
    rows.push(Row {
        what: "unlock 1 path".into(),
        ours: median(&u1),
        target: "<= 50 ms",
        lfs: "1.5-6.6 s",
    });
    rows.push(Row {
        what: format!("lock {} paths in one call", args.batch),
        ours: median(&ln),
        target: "<= 500 ms",
        lfs: "one request per path",
    });
    rows.push(Row {
        what: format!("unlock {} paths in one call", args.batch),
        ours: median(&un),
        target: "<= 500 ms",
        lfs: "one request per path",
    });

    // The other user takes the many locks (once, timed as one more figure).
    let took = timed(&other.runner, &theirs, &with_paths("lock", &held))?;
    rows.push(Row {
        what: format!("lock {} paths in one call (once)", args.locks),
        ours: took,
        target: "",
        lfs: "",
    });
    let mut listing = Vec::new();
    for _ in 0..args.runs {
        listing.push(timed(&me.runner, &mine, &["dits", "locks"])?);
    }
    let listed = me.runner.git(&mine, &["dits", "locks"])?.lines().count();
    if listed != args.locks {
        bail!(
            "`git dits locks` listed {listed} locks, {} are held",
            args.locks
        );
    }
    rows.push(Row {
        what: format!("list {} locks (paged by the server)", args.locks),
        ours: median(&listing),
        target: "<= 300 ms",
        lfs: "",
    });

    // The push check: the server's update hook for a push changing `changed` paths, with the
    // lock check (10,000 locks of another user) and without it (no pusher given), alternating.
    for p in &changed {
        std::fs::write(mine.join(p), format!("{p} v2\n"))?;
    }
    me.runner.git(&mine, &["commit", "-q", "-am", "edit"])?;
    me.runner
        .git(&mine, &["push", "-q", "origin", "HEAD:refs/heads/staging"])?;
    let bare = root.join("repos").join(format!("{REPO}.git"));
    // The objects stay on the server, the ref goes: to the hook the commit is new again.
    let unref = |name: &str| -> Result<()> {
        let mut cmd = admin.git_command(&bare, &["update-ref", "-d", name]);
        cmd.env("GIT_DIR", &bare);
        proc::run(cmd).map(drop)
    };
    unref("refs/heads/staging")?;
    let old = me
        .runner
        .git(&mine, &["rev-parse", "HEAD~1"])?
        .trim()
        .to_owned();
    let new = me
        .runner
        .git(&mine, &["rev-parse", "HEAD"])?
        .trim()
        .to_owned();
    let hook = |check: bool| -> Result<Duration> {
        let mut cmd = admin.command(bin.join("git-dits"), &bare);
        cmd.args(["hook", "update", "refs/heads/main", &old, &new])
            .env("GIT_DIR", &bare);
        if check {
            cmd.env("DITS_SERVER_ROOT", &root)
                .env("DITS_REPO", REPO)
                .env("DITS_USER", "artist");
        }
        Ok(proc::measure(cmd)?.wall)
    };
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        with.push(hook(true)?);
        without.push(hook(false)?);
    }
    let check = median(&with).saturating_sub(median(&without));
    rows.push(Row { what: format!("push check: {} changed paths against {} locks (update hook with the check {} - without {})", args.changed, args.locks, ms(median(&with)), ms(median(&without))), ours: check, target: "<= 100 ms added", lfs: "client-side only, skippable" });
    let mut pushes = Vec::new();
    for i in 0..args.runs {
        let refspec = format!("HEAD:refs/heads/push-{i}");
        pushes.push(timed(
            &me.runner,
            &mine,
            &["push", "-q", "origin", &refspec],
        )?);
        unref(&format!("refs/heads/push-{i}"))?;
    }
    rows.push(Row {
        what: format!(
            "a whole push of those {} changes (new branch, {} locks held)",
            args.changed, args.locks
        ),
        ours: median(&pushes),
        target: "",
        lfs: "",
    });

    // The read-only pass of a checkout switching `changed` lockable files: the hook that runs
    // it, and the whole checkout, alternating directions.
    let (mut pass, mut checkout) = (Vec::new(), Vec::new());
    for i in 0..args.runs {
        let (from, to) = if i % 2 == 0 {
            (&new, &old)
        } else {
            (&old, &new)
        };
        checkout.push(timed(&me.runner, &mine, &["checkout", "-q", to])?);
        // Writable again (untimed), so the pass below has every mode to change.
        for p in &changed {
            let path = mine.join(p);
            let mut perm = std::fs::metadata(&path)?.permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o644);
            std::fs::set_permissions(&path, perm)?;
        }
        pass.push(timed(
            &me.runner,
            &mine,
            &["dits", "hook", "post-checkout", from, to, "1"],
        )?);
    }
    let sample = mine.join(&changed[0]);
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&sample)?.permissions());
    if mode & 0o222 != 0 {
        bail!(
            "{} is writable after the checkout; the read-only pass did not run",
            sample.display()
        );
    }
    rows.push(Row {
        what: format!(
            "read-only pass of a checkout switching {} lockable files (post-checkout hook)",
            args.changed
        ),
        ours: median(&pass),
        target: "<= 200 ms",
        lfs: "6-8 s per checkout at 120k files (git-lfs #5897, #5510)",
    });
    rows.push(Row {
        what: format!(
            "the whole `git checkout` of those {} files, hook included",
            args.changed
        ),
        ours: median(&checkout),
        target: "",
        lfs: "",
    });

    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Dits locks over loopback: lock, unlock, list, push check, read-only checkout\n"
    );
    let _ = writeln!(md, "| machine | |\n|---|---|");
    for (k, v) in &machine {
        let _ = writeln!(md, "| {k} | {v} |");
    }
    let _ = writeln!(md, "| server | `git dits serve` on 127.0.0.1, locks in its SQLite database (WAL, full fsync) |");
    let _ = writeln!(
        md,
        "| runs | {} per step, medians; the push check and the hook alternate with and without |\n",
        args.runs
    );
    let _ = writeln!(
        md,
        "| step | Dits (median) | target | Git LFS, published |\n|---|---|---|---|"
    );
    for r in &rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            r.what,
            ms(r.ours),
            r.target,
            r.lfs
        );
    }
    let _ = writeln!(md, "\nEvery `lock`/`unlock`/`locks` figure is a whole `git dits` command: process start, git calls, a QUIC connection with its TLS handshake and token check, the request, the server's database commit (fsync).");
    println!("{md}");
    let out = report::write(args.common.out, &ws, "locks-local", &md)?;
    eprintln!("report written to {}", out.display());
    drop(server);
    if args.keep {
        eprintln!("kept {}", work.display());
    }
    Ok(())
}
