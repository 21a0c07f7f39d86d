//! Hooks: `pre-push` on clients (content before commits), `update` on the server (refuse a
//! ref whose commits reference content the server lacks), and the checkout hooks.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use dits_core::store::{ChunkSource, DiskStore};
use dits_core::transfer::import_file;
use git_remote_dits::helper::is_zero;

use crate::git::git;
use crate::reachable;
use crate::remote::configured_url;
use crate::repo::Repo;
use crate::uploaded::Uploaded;

pub fn run(name: &str, args: &[String]) -> Result<ExitCode> {
    match name {
        "post-checkout" => {
            let code = super::checkout::run(&[], true, None, true)?;
            // `post-checkout <old> <new> <1: branch checkout>`; file checkouts keep modes.
            if let [old, new, flag] = args {
                if flag == "1" {
                    read_only_pass(old, new);
                }
            }
            Ok(code)
        }
        "post-merge" => {
            let code = super::checkout::run(&[], true, None, true)?;
            read_only_pass("ORIG_HEAD", "HEAD");
            Ok(code)
        }
        "pre-push" => pre_push(args),
        "update" => update(args),
        "post-update" => post_update(args),
        "post-receive" => super::lock_hooks::post_receive(),
        "pre-receive" => super::lock_hooks::pre_receive(),
        other => {
            tracing::debug!("no Dits action for hook {other}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Lockable files the checkout changed become read-only (or writable, if locked by this
/// user). A failure here must not fail the checkout: it is reported.
fn read_only_pass(old: &str, new: &str) {
    let done = Repo::discover().and_then(|repo| crate::lockable::after_checkout(&repo, old, new));
    if let Err(e) = done {
        eprintln!(
            "warning: cannot set the modes of lockable files: {}",
            crate::one_line(&e)
        );
    }
}

/// `pre-push <remote> <url>`, stdin: `<local ref> <local oid> <remote ref> <remote oid>`.
/// Makes sure the content of every tracked file the pushed commits add exists somewhere the
/// remote's users can get it, before git sends anything.
fn pre_push(args: &[String]) -> Result<ExitCode> {
    let remote = args.first().cloned().unwrap_or_default();
    let url = args.get(1).cloned().unwrap_or_else(|| remote.clone());
    if url.starts_with("dits://") {
        // The remote helper uploads the content itself, on the same connection.
        return Ok(ExitCode::SUCCESS);
    }
    let (mut include, mut exclude, mut updates) = (Vec::new(), Vec::new(), Vec::new());
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [_, local, remote_ref, remote_oid] = f[..] {
            if !is_zero(local) {
                include.push(local.to_owned());
                updates.push(super::lock_hooks::RefUpdate {
                    old: remote_oid.to_owned(),
                    new: local.to_owned(),
                    name: remote_ref.to_owned(),
                });
            }
            if !is_zero(remote_oid) {
                exclude.push(remote_oid.to_owned());
            }
        }
    }
    let repo = Repo::discover()?;
    // The team's Dits server if one is named; else a repository on this machine gets the
    // content in its own store; else there is nowhere to put it.
    let Some((server, origin)) = configured_url(&repo)? else {
        if !remote.contains('/') && !remote.contains(':') {
            exclude.push(format!("--remotes={remote}"));
        }
        let found = with_content(&include, &exclude)?;
        if found.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(dest) = local_store_of(&repo, &url) {
            return copy_to_local(&repo, &dest, &found);
        }
        let mut names: Vec<&str> = found.iter().map(|f| f.path.as_str()).take(5).collect();
        if found.len() > 5 {
            names.push("...");
        }
        eprintln!(
            "error: this push would publish {} tracked file(s) whose content exists only on this machine: {}\nhint: name your Dits server with `git config dits.url dits://host[:port]/repo` (or commit that in .ditsconfig) and push again\nhint: `git push --no-verify` skips this check",
            found.len(),
            names.join(", ")
        );
        return Ok(ExitCode::from(1));
    };
    // What the Git host has is not excluded: it may hold commits pushed without their
    // content (from a clone without hooks, or with --no-verify). What is behind a commit
    // whose content went to this server is.
    let url = git_remote_dits::DitsUrl::parse(&server).context(origin)?;
    let uploaded = Uploaded::for_server(&repo, &url);
    let found = with_content(&include, &uploaded.tips())?;
    let server = crate::remote::DitsServer {
        url,
        origin: origin.to_owned(),
    };
    // The Git host cannot ask the Dits server about locks: this hook does (a hook can be
    // skipped; a Git host that runs `git dits hook pre-receive` enforces it for everyone).
    let session = match crate::remote::connect(&repo, &server, true, None) {
        Ok(s) => s,
        // Nothing to upload: a server that cannot be reached does not stop the push, but
        // nobody could check locks, and that is said.
        Err(e) if found.is_empty() => {
            eprintln!(
                "warning: cannot reach the Dits server to check locks, pushing anyway: {}",
                crate::one_line(&e)
            );
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e),
    };
    if let Some(refusal) = super::lock_hooks::pre_push_check(&session, &remote, &updates)? {
        eprintln!("error: {refusal}");
        eprintln!("hint: `git push --no-verify` skips this check; a Git host that runs Dits's pre-receive hook refuses such a push anyway");
        return Ok(ExitCode::from(1));
    }
    if !found.is_empty() {
        let talk = git_remote_dits::helper::Verbosity {
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            quiet: false,
        };
        crate::helper::upload_found(&repo, &session, &found, talk)?;
    }
    uploaded.record(&include)?;
    Ok(ExitCode::SUCCESS)
}

/// Tracked files with content (not empty) in `include` but not `exclude`.
fn with_content(include: &[String], exclude: &[String]) -> Result<Vec<reachable::Found>> {
    Ok(reachable::pointers(include, exclude)?
        .into_iter()
        .filter(|f| f.pointer.size > 0)
        .collect())
}

/// The Dits store of a remote that is a repository on this machine (a path or file:// URL).
fn local_store_of(repo: &Repo, url: &str) -> Option<PathBuf> {
    let path = match url.strip_prefix("file://") {
        Some(p) => PathBuf::from(p),
        None if url.contains("://") || url.contains(':') && !url.starts_with('/') => return None,
        None => PathBuf::from(url),
    };
    let path = if path.is_absolute() {
        path
    } else {
        repo.work_tree().ok()?.join(path)
    };
    if path.join(".git").is_dir() {
        Some(path.join(".git").join("dits"))
    } else if path.join("HEAD").is_file() {
        Some(path.join("dits"))
    } else {
        None
    }
}

fn copy_to_local(
    repo: &Repo,
    dest: &std::path::Path,
    found: &[reachable::Found],
) -> Result<ExitCode> {
    let local = repo.open_store()?;
    let target = DiskStore::open(dest, local.options())
        .with_context(|| format!("opening the Dits store at {}", dest.display()))?;
    for f in found {
        if target.has_manifest(&f.pointer.id) {
            continue;
        }
        let mut writer = target.writer()?;
        import_file(&local, &mut writer, &f.pointer.id).with_context(|| {
            format!(
                "cannot copy the content of {} ({}) to {}",
                f.path,
                f.pointer.id,
                dest.display()
            )
        })?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Server side, run by `git receive-pack` once per ref: `update <ref> <old> <new>`. The
/// objects of the push are visible (git's quarantine); the ref moves only if we exit 0.
fn update(args: &[String]) -> Result<ExitCode> {
    let [refname, _old, new] = args else {
        anyhow::bail!("usage: git dits hook update <ref> <old> <new>");
    };
    if is_zero(new) {
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(refusal) = super::lock_hooks::server_update_check(refname, new)? {
        for line in refusal.lines() {
            eprintln!("dits: {line}");
        }
        return Ok(ExitCode::from(1));
    }
    let git_dir = PathBuf::from(std::env::var_os("GIT_DIR").unwrap_or_else(|| ".".into()));
    let store = DiskStore::open_existing(git_dir.join("dits"));
    // Refs that exist already satisfy the rule (they passed this hook), so only what the new
    // commits add is checked.
    let found = reachable::pointers(std::slice::from_ref(new), &["--all".to_owned()])?;
    let missing: Vec<_> = found
        .iter()
        .filter(|f| f.pointer.size > 0)
        .filter(|f| {
            !store
                .as_ref()
                .is_some_and(|s| s.has_manifest(&f.pointer.id))
        })
        .collect();
    if missing.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "dits: refusing {refname}: the content of {} tracked file(s) is not on this server:",
        missing.len()
    );
    for f in missing.iter().take(20) {
        eprintln!("dits:   {} (file {})", f.path, f.pointer.id.short());
    }
    if missing.len() > 20 {
        eprintln!("dits:   ... and {} more", missing.len() - 20);
    }
    eprintln!("dits: hint: push with git-dits installed so content goes first (`git dits push`), or fetch the missing content with `git dits pull` and push again");
    Ok(ExitCode::from(1))
}

/// Server side, after a push: a repository created by this push has an unborn HEAD (git's
/// default branch name need not be what was pushed), so clones would check out nothing.
/// Point it at `main`, `master` or the first branch pushed.
fn post_update(refs: &[String]) -> Result<ExitCode> {
    let born = git(&["rev-parse", "--verify", "-q", "HEAD"])
        .optional()?
        .is_some();
    if born {
        return Ok(ExitCode::SUCCESS);
    }
    let branches: Vec<&String> = refs
        .iter()
        .filter(|r| r.starts_with("refs/heads/"))
        .collect();
    let pick = ["refs/heads/main", "refs/heads/master"]
        .iter()
        .find_map(|p| branches.iter().find(|b| b.as_str() == *p))
        .or(branches.first());
    if let Some(branch) = pick {
        git(&["symbolic-ref", "HEAD", branch.as_str()]).output()?;
    }
    Ok(ExitCode::SUCCESS)
}
