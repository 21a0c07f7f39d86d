//! `git dits lock`, `unlock` and `locks`: locks on the Dits server, over the same
//! authenticated connection as everything else (see `git_remote_dits::locks`).

use std::path::{Component, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use dits_core::locks::{
    lock_path, ListRequest, LockAsk, LockCall, LockInfo, LockReply, LockRequest, UnlockRequest,
};
use git_remote_dits::locks::{self as remote_locks, describe};
use git_remote_dits::Session;

use crate::git::git;
use crate::lockable;
use crate::remote::{self, DitsServer};
use crate::repo::Repo;

/// Exit code for bad input (a path outside the repository, a directory, no server).
const BAD_INPUT: u8 = 2;

/// Exit code of an unlock refused because the work on the file is not on the server yet.
const UNSAVED: u8 = 6;

/// An error the user must fix before trying again: printed, exit code 2.
fn bad_input(message: String) -> Result<ExitCode> {
    eprintln!("error: {message}");
    Ok(ExitCode::from(BAD_INPUT))
}

fn connect(repo: &Repo) -> Result<(DitsServer, Session)> {
    let Some(server) = remote::server_for(repo, None, true)? else {
        bail!("no Dits server is configured for this repository; hint: a dits:// remote, or `git config dits.url dits://host/repo` (or commit it in .ditsconfig)");
    };
    let session = remote::connect(repo, &server, true, None)?;
    Ok((server, session))
}

/// Whether the server holds the Git repository too (a `dits://` remote), so it can tell
/// whether a copy is behind its branch.
fn hosts_git(server: &DitsServer) -> bool {
    server.origin.starts_with("remote ")
}

/// `PATH` arguments as repository-relative paths, checked as lock paths.
fn repo_paths(repo: &Repo, args: &[PathBuf]) -> std::result::Result<Vec<String>, String> {
    let top = repo.work_tree().map_err(|e| e.to_string())?;
    let top = std::fs::canonicalize(top).unwrap_or_else(|_| top.to_owned());
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let cwd = std::fs::canonicalize(&cwd).unwrap_or(cwd);
    let mut out = Vec::new();
    for arg in args {
        let joined = if arg.is_absolute() {
            arg.clone()
        } else {
            cwd.join(arg)
        };
        // Lexically: the file need not exist (unlocking a file deleted since).
        let mut clean = PathBuf::new();
        for c in joined.components() {
            match c {
                Component::ParentDir => {
                    clean.pop();
                }
                Component::CurDir => {}
                other => clean.push(other),
            }
        }
        let rel = clean.strip_prefix(&top).map_err(|_| {
            format!(
                "{} is outside the repository at {}",
                arg.display(),
                top.display()
            )
        })?;
        let rel = rel
            .to_str()
            .ok_or_else(|| format!("{}: the path is not valid UTF-8", arg.display()))?;
        let checked = lock_path(rel).map_err(|e| e.to_string())?;
        out.push(checked);
    }
    Ok(out)
}

/// The branch a lock is for (the server's name of the current branch), and the remote's
/// branch as this clone last saw it.
fn branch_and_upstream() -> Result<(String, Option<String>)> {
    let head = git(&["symbolic-ref", "-q", "HEAD"]).optional()?;
    let Some(head) = head.map(|h| String::from_utf8_lossy(&h).trim().to_owned()) else {
        bail!("HEAD is detached; locks are taken for a branch; hint: git switch <branch>");
    };
    let short = head.strip_prefix("refs/heads/").unwrap_or(&head);
    let merge = git(&["config", &format!("branch.{short}.merge")])
        .optional()?
        .map(|m| String::from_utf8_lossy(&m).trim().to_owned())
        .filter(|m| !m.is_empty());
    let upstream = git(&[
        "rev-parse",
        "--verify",
        "-q",
        "--symbolic-full-name",
        "@{upstream}",
    ])
    .optional()?
    .map(|u| String::from_utf8_lossy(&u).trim().to_owned())
    .filter(|u| !u.is_empty());
    Ok((merge.unwrap_or(head), upstream))
}

/// Prints the server's notices (a lock of yours broken by an admin).
pub(super) fn show_notices(notices: &[String]) {
    for n in notices {
        eprintln!("dits: notice: {n}");
    }
}

fn print_json(reply: &LockReply) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(reply)?);
    Ok(())
}

/// A refusal, told to a person; the exit code scripts rely on.
fn refused(reply: &LockReply, json: bool, hint: &str) -> Result<ExitCode> {
    let LockReply::Refused {
        why,
        message,
        locks,
        ..
    } = reply
    else {
        return Ok(ExitCode::SUCCESS);
    };
    if json {
        print_json(reply)?;
    } else {
        if locks.is_empty() {
            eprintln!("error: {message}");
        } else {
            eprintln!("error: refused:");
            for l in locks {
                eprintln!("  {}", describe(l));
            }
        }
        if !hint.is_empty() {
            eprintln!("hint: {hint}");
        }
    }
    Ok(ExitCode::from(why.exit_code()))
}

pub fn lock(
    args: &[PathBuf],
    reason: &str,
    release_on_push: bool,
    json: bool,
    quiet: bool,
) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let paths = match repo_paths(&repo, args) {
        Ok(p) => p,
        Err(e) => return bad_input(e),
    };
    let top = repo.work_tree()?.to_owned();
    let (branch, upstream) = branch_and_upstream()?;
    let head = remote_locks::resolve_commit(None, "HEAD");
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let at_head = match &head {
        Some(h) => remote_locks::blobs_at(None, h, &refs)?,
        None => Default::default(),
    };
    for p in &paths {
        let abs = top.join(p);
        if abs.is_dir() {
            return bad_input(format!(
                "{p} is a directory; locks are taken on files; hint: git dits lock '{p}'/*"
            ));
        }
        if !abs.exists() && !at_head.contains_key(p) {
            return bad_input(format!(
                "{p} does not exist here nor in HEAD; hint: add and commit it first, or check the spelling"
            ));
        }
    }
    let asks: Vec<LockAsk> = paths
        .iter()
        .map(|p| LockAsk {
            path: p.clone(),
            blob: at_head.get(p).cloned(),
        })
        .collect();
    let base = match (&head, &upstream) {
        (Some(h), Some(u)) => git(&["merge-base", h, u])
            .optional()?
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned()),
        _ => None,
    };
    let (server, session) = connect(&repo)?;
    if !hosts_git(&server) {
        // The Git host is elsewhere: compare with its branch as this clone last fetched it.
        if let Some(tip) = upstream
            .as_deref()
            .and_then(|u| remote_locks::resolve_commit(None, u))
        {
            let behind = remote_locks::behind(None, &tip, base.as_deref(), &asks)?;
            if !behind.is_empty() {
                let reply = LockReply::Refused {
                    why: dits_core::locks::Refusal::Behind,
                    message: format!(
                        "your copy of {} is older than {} (as last fetched)",
                        behind.join(", "),
                        upstream.as_deref().unwrap_or("the remote branch")
                    ),
                    locks: Vec::new(),
                    paths: behind,
                };
                return refused(&reply, json, "git pull, then lock again");
            }
        }
    }
    let reply = session.locks(LockCall::Lock(LockRequest {
        branch,
        paths: asks,
        reason: reason.to_owned(),
        base,
        release_on_push,
    }))?;
    match &reply {
        LockReply::Ok { locks, notices, .. } => {
            show_notices(notices);
            let taken: Vec<String> = locks.iter().map(|l| l.path.clone()).collect();
            lockable::remember(&repo, &taken, &[])?;
            lockable::set_modes(&repo, taken.iter().map(|p| (p.clone(), true)))?;
            if json {
                print_json(&reply)?;
            } else if !quiet {
                for p in &taken {
                    eprintln!("Locked {p}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        LockReply::Refused { why, .. } => {
            let hint = match why {
                dits_core::locks::Refusal::Behind => "git pull, then lock again",
                _ => "ask the holder to unlock when done (`git dits locks` lists every lock)",
            };
            refused(&reply, json, hint)
        }
    }
}

pub fn unlock(
    args: &[PathBuf],
    force: bool,
    reason: &str,
    json: bool,
    quiet: bool,
) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let paths = match repo_paths(&repo, args) {
        Ok(p) => p,
        Err(e) => return bad_input(e),
    };
    if force && reason.trim().is_empty() {
        return bad_input(
            "breaking a lock is recorded with a reason; hint: add --reason TEXT".into(),
        );
    }
    if !force {
        if let Some(why) = unsaved_work(&paths)? {
            eprintln!("error: {why}");
            eprintln!("hint: commit and push first (someone else could lock and edit the file before your change lands), or give up the change: git dits unlock --force --reason TEXT");
            return Ok(ExitCode::from(UNSAVED));
        }
    }
    let (_server, session) = connect(&repo)?;
    let reply = session.locks(LockCall::Unlock(UnlockRequest {
        paths,
        force,
        reason: reason.to_owned(),
    }))?;
    match &reply {
        LockReply::Ok { locks, notices, .. } => {
            show_notices(notices);
            let released: Vec<String> = locks.iter().map(|l| l.path.clone()).collect();
            lockable::remember(&repo, &[], &released)?;
            lockable::apply(&repo, &released)?;
            if json {
                print_json(&reply)?;
            } else if !quiet {
                for l in locks {
                    eprintln!("Unlocked {} (was {}'s)", l.path, l.owner);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        LockReply::Refused { why, .. } => {
            let hint = match why {
                dits_core::locks::Refusal::NotYours if force => {
                    "breaking another user's lock needs an admin token (`git dits serve token add --admin`)"
                }
                dits_core::locks::Refusal::NotYours => {
                    "ask the holder to unlock; an admin can break it: git dits unlock --force --reason TEXT PATH"
                }
                _ => "`git dits locks` lists every lock",
            };
            refused(&reply, json, hint)
        }
    }
}

/// Why unlocking `paths` would lose work: changes not committed, or commits not pushed
/// (to the branch's upstream, as this clone last saw it).
fn unsaved_work(paths: &[String]) -> Result<Option<String>> {
    let mut args = vec!["status", "--porcelain", "-z", "--untracked-files=no", "--"];
    args.extend(paths.iter().map(String::as_str));
    let dirty = git(&args).output()?;
    if let Some(first) = dirty.split(|&b| b == 0).find(|e| e.len() > 3) {
        return Ok(Some(format!(
            "{} has changes that are not committed",
            String::from_utf8_lossy(&first[3..])
        )));
    }
    let (_, upstream) = branch_and_upstream()?;
    if let Some(upstream) = upstream {
        let mut args = vec!["log", "--format=%h", "-1", "--no-renames"];
        let range = format!("{upstream}..HEAD");
        args.push(&range);
        args.push("--");
        args.extend(paths.iter().map(String::as_str));
        let unpushed = git(&args).text()?;
        if !unpushed.trim().is_empty() {
            return Ok(Some(format!(
                "commit {} changes {} and is not pushed to {upstream}",
                unpushed.trim(),
                if paths.len() == 1 {
                    paths[0].as_str()
                } else {
                    "these files"
                }
            )));
        }
    }
    Ok(None)
}

pub fn list(mine: bool, prefix: &str, user: Option<&str>, json: bool) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        // A prefix may end in '/', which a lock path may not: check it without.
        let trimmed = prefix.trim_end_matches('/');
        match repo_paths(&repo, &[PathBuf::from(trimmed)]) {
            Ok(mut p) => {
                let mut p = p.remove(0);
                if prefix.ends_with('/') {
                    p.push('/');
                }
                p
            }
            Err(e) => return bad_input(e),
        }
    };
    let (_server, session) = connect(&repo)?;
    let mut all: Vec<LockInfo> = Vec::new();
    let mut notices = Vec::new();
    let mut after = None;
    loop {
        let reply = session.locks(LockCall::List(ListRequest {
            prefix: prefix.clone(),
            owner: user.map(str::to_owned),
            mine,
            after: after.take(),
            limit: 0,
        }))?;
        match reply {
            LockReply::Ok {
                locks,
                next,
                notices: n,
            } => {
                all.extend(locks);
                notices.extend(n);
                match next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            refusal @ LockReply::Refused { .. } => return refused(&refusal, json, ""),
        }
    }
    show_notices(&notices);
    if mine && prefix.is_empty() {
        lockable::replace(&repo, &all.iter().map(|l| l.path.clone()).collect())?;
    }
    if json {
        print_json(&LockReply::Ok {
            locks: all,
            next: None,
            notices: Vec::new(),
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    for l in &all {
        use std::io::Write;
        let branch = remote_locks::short_branch(&l.branch);
        let line = format!(
            "{}\t{}\t{}\t{}\t{}",
            l.path,
            l.owner,
            remote_locks::format_time(l.since),
            branch,
            l.reason
        );
        // A closed pipe (`| head`) ends the listing quietly.
        if writeln!(out, "{}", line.trim_end()).is_err() {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}
