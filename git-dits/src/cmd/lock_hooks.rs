//! Locks at push time. Four places ask the same question (does this push change a path
//! someone else has locked?) with the same answer (`git_remote_dits::locks`):
//! - `update`, run by the Dits server's own receive-pack for a `dits://` push, reads the
//!   lock database directly (the server passes the pusher in `DITS_USER`);
//! - `post-receive` there releases the locks a push landed changes to, where asked;
//! - `pre-push` on a client whose Git host is not the Dits server asks the server;
//! - `pre-receive` on a self-hosted Git server (Gitea, GitLab, bare ssh) asks the server
//!   on behalf of the pusher, with an admin token: the enforcing path for such hosts.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use dits_core::locks::{CheckRequest, ListRequest, LockCall, LockReply};
use git_remote_dits::helper::is_zero;
use git_remote_dits::locks::{changed_paths, db_path, push_refusal, LockDb};

use super::lock::show_notices;
use crate::git::{git, AttrSource};

/// One ref a push moves.
pub struct RefUpdate {
    pub old: String,
    pub new: String,
    pub name: String,
}

/// What `git dits serve` tells its hooks about the push.
struct ServerPush {
    root: PathBuf,
    repo: String,
    user: String,
}

impl ServerPush {
    fn from_env() -> Option<ServerPush> {
        let var = |k| std::env::var(k).ok().filter(|v| !v.is_empty());
        Some(ServerPush {
            root: PathBuf::from(var("DITS_SERVER_ROOT")?),
            repo: var("DITS_REPO")?,
            user: var("DITS_USER")?,
        })
    }

    fn db(&self) -> Result<LockDb> {
        Ok(LockDb::open(&db_path(&self.root))?)
    }
}

/// A boolean `git config` of the repository the hook runs in.
fn config_bool(key: &str) -> Result<bool> {
    Ok(git(&["config", "--bool", key])
        .optional()?
        .is_some_and(|v| v.trim_ascii() == b"true"))
}

/// Which of `paths` are `lockable` in `commit` (by that commit's .gitattributes, read
/// through a temporary index, so it works in a bare repository).
fn lockable_at(commit: &str, paths: &[String]) -> Result<Vec<String>> {
    let tmp = tempfile::Builder::new()
        .prefix("dits-attr-index")
        .tempdir()
        .context("creating a temporary index")?;
    let index = tmp.path().join("index");
    git(&["read-tree", commit])
        .env("GIT_INDEX_FILE", &index)
        .output()?;
    let cwd = std::env::current_dir()?;
    crate::lockable::lockable_in(&cwd, paths, AttrSource::IndexFile(&index))
}

/// Server side, for each ref of a `dits://` push (`update <ref> <old> <new>`): why it must
/// be refused, if it must. Paths only commits new to the server change are looked at.
pub fn server_update_check(refname: &str, new: &str) -> Result<Option<String>> {
    let Some(push) = ServerPush::from_env() else {
        return Ok(None);
    };
    if !refname.starts_with("refs/heads/") {
        return Ok(None);
    }
    let db = push.db()?;
    let strict = config_bool("dits.lockStrict")?;
    // A repository nobody locks in has nothing to check (the first push of a long history
    // would otherwise list every path of every commit).
    if !strict && !db.any(&push.repo)? {
        return Ok(None);
    }
    let paths = changed_paths(None, &[new.to_owned()], &["--all".to_owned()])?;
    if paths.is_empty() {
        return Ok(None);
    }
    let held = db.conflicts(&push.repo, &push.user, refname, &paths)?;
    if !held.is_empty() {
        return Ok(Some(push_refusal(refname, &held)));
    }
    if strict {
        let lockable = lockable_at(new, &paths)?;
        if !lockable.is_empty() {
            let mine: std::collections::HashSet<String> = db
                .on_paths(&push.repo, &lockable)?
                .into_iter()
                .filter(|l| l.owner == push.user)
                .map(|l| dits_core::locks::lock_key(&l.path))
                .collect();
            let unlocked: Vec<&String> = lockable
                .iter()
                .filter(|p| !mine.contains(&dits_core::locks::lock_key(p)))
                .collect();
            if !unlocked.is_empty() {
                let mut names: Vec<&str> = unlocked.iter().map(|p| p.as_str()).take(10).collect();
                if unlocked.len() > 10 {
                    names.push("...");
                }
                return Ok(Some(format!(
                    "this repository requires a lock to change a lockable file, and {} does not hold one on: {}\nhint: git dits lock {}, then push again",
                    push.user,
                    names.join(", "),
                    unlocked[0]
                )));
            }
        }
    }
    Ok(None)
}

/// Server side, after a `dits://` push: releases the pusher's locks on the paths the push
/// changed on the lock's branch, for locks taken with `--release-on-push` (all of them if
/// the repository sets `dits.releaseLocksOnPush`). Stdin: `<old> <new> <ref>` lines.
pub fn post_receive() -> Result<ExitCode> {
    let Some(push) = ServerPush::from_env() else {
        return Ok(ExitCode::SUCCESS);
    };
    // Read first: git writes every ref to this hook whatever it then does.
    let lines: Vec<String> = std::io::stdin().lock().lines().collect::<Result<_, _>>()?;
    let all = config_bool("dits.releaseLocksOnPush")?;
    let db = push.db()?;
    if !db.any(&push.repo)? {
        return Ok(ExitCode::SUCCESS);
    }
    for line in lines {
        let [old, new, name] = line.split_whitespace().collect::<Vec<_>>()[..] else {
            continue;
        };
        if is_zero(new) || !name.starts_with("refs/heads/") {
            continue;
        }
        let exclude = if is_zero(old) {
            vec![format!("--exclude={name}"), "--all".to_owned()]
        } else {
            vec![old.to_owned()]
        };
        let paths = changed_paths(None, &[new.to_owned()], &exclude)?;
        for l in db.release_pushed(&push.repo, &push.user, name, &paths, all)? {
            eprintln!(
                "dits: released {}'s lock on {} (the push landed it)",
                l.owner, l.path
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Client side, for a Git host that is not the Dits server: asks the server whether the
/// push breaks locks. The refusal text if it does.
pub fn pre_push_check(
    session: &git_remote_dits::Session,
    remote: &str,
    updates: &[RefUpdate],
) -> Result<Option<String>> {
    // One question first: with no lock in the repository, the pushed commits' paths need
    // not be listed (a first push of a long history would walk all of it).
    let any = session.locks(LockCall::List(ListRequest {
        limit: 1,
        ..ListRequest::default()
    }))?;
    match any {
        LockReply::Ok { locks, notices, .. } => {
            show_notices(&notices);
            if locks.is_empty() {
                return Ok(None);
            }
        }
        LockReply::Refused { message, .. } => return Ok(Some(message)),
    }
    for u in updates.iter().filter(|u| u.name.starts_with("refs/heads/")) {
        let mut exclude = Vec::new();
        if !is_zero(&u.old) && git_remote_dits::locks::resolve_commit(None, &u.old).is_some() {
            exclude.push(u.old.clone());
        }
        if !remote.is_empty() && !remote.contains('/') && !remote.contains(':') {
            exclude.push(format!("--remotes={remote}"));
        }
        let paths = changed_paths(None, std::slice::from_ref(&u.new), &exclude)?;
        if let Some(refusal) = check(session, &u.name, paths, None)? {
            return Ok(Some(refusal));
        }
    }
    Ok(None)
}

/// Asks the server about a push to `branch` changing `paths`; the refusal, if any.
fn check(
    session: &git_remote_dits::Session,
    branch: &str,
    paths: Vec<String>,
    pusher: Option<String>,
) -> Result<Option<String>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let reply = session.locks(LockCall::Check(CheckRequest {
        branch: branch.to_owned(),
        paths,
        pusher,
    }))?;
    match reply {
        LockReply::Ok { locks, notices, .. } => {
            show_notices(&notices);
            Ok((!locks.is_empty()).then(|| push_refusal(branch, &locks)))
        }
        LockReply::Refused { message, .. } => Ok(Some(message)),
    }
}

/// The pusher as a Git host names them to its hooks.
fn host_pusher() -> Option<String> {
    [
        "DITS_PUSHER",
        "GL_USERNAME",
        "GITEA_PUSHER_NAME",
        "REMOTE_USER",
        "USER",
    ]
    .iter()
    .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// `pre-receive` on a self-hosted Git server: refuses a push that changes paths locked by
/// someone else, asking the Dits server named by the repository's `dits.url` with the
/// token git's credential system (or `DITS_TOKEN`) gives; an admin token, since it asks for
/// the pusher. A server that cannot be asked refuses the push: enforcement that fails open
/// is advisory.
pub fn pre_receive() -> Result<ExitCode> {
    let mut updates = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        if let [old, new, name] = line.split_whitespace().collect::<Vec<_>>()[..] {
            if !is_zero(new) && name.starts_with("refs/heads/") {
                updates.push((old.to_owned(), new.to_owned(), name.to_owned()));
            }
        }
    }
    if updates.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let Some(pusher) = host_pusher() else {
        eprintln!("dits: refusing the push: the Git host did not say who pushes (set DITS_PUSHER in the hook's environment)");
        return Ok(ExitCode::from(1));
    };
    let repo = crate::repo::Repo::discover()?;
    let Some(server) = crate::remote::server_for(&repo, None, false)? else {
        eprintln!("dits: refusing the push: this repository has no dits.url, so locks cannot be checked; hint: git config dits.url dits://host/repo in the repository on the Git server");
        return Ok(ExitCode::from(1));
    };
    let mut settings = repo.net_settings()?;
    if let Ok(t) = std::env::var("DITS_TOKEN") {
        settings.token = Some(t);
    }
    let session = match git_remote_dits::Session::connect(&server.url, &settings) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "dits: refusing the push: cannot ask the Dits server at {} about locks: {e}",
                server.url
            );
            return Ok(ExitCode::from(1));
        }
    };
    for (_old, new, name) in &updates {
        // Commits the host already has passed this hook; the quarantined new ones did not.
        let paths = changed_paths(None, std::slice::from_ref(new), &["--all".to_owned()])?;
        if let Some(refusal) = check(&session, name, paths, Some(pusher.clone()))? {
            for line in refusal.lines() {
                eprintln!("dits: {line}");
            }
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}
