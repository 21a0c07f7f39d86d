//! Lockable files in the work tree (`lockable` in .gitattributes): read-only unless you
//! hold their lock, so nobody starts a day's work on a file someone else is editing. The
//! locks you hold are remembered in `.git/dits-locks` (one path per line), refreshed by
//! every `git dits lock`, `unlock` and `locks --mine`; checkouts consult it and touch only
//! the paths the checkout changed.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::git::{check_attr, git, AttrSource};
use crate::repo::Repo;

fn mine_path(repo: &Repo) -> PathBuf {
    repo.common_dir().join("dits-locks")
}

/// The paths this clone's user holds locks on, as last heard from the server.
pub fn mine(repo: &Repo) -> BTreeSet<String> {
    std::fs::read_to_string(mine_path(repo))
        .map(|t| t.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Records that the user now holds `added` and no longer holds `removed`.
pub fn remember(repo: &Repo, added: &[String], removed: &[String]) -> Result<()> {
    let mut held = mine(repo);
    held.extend(added.iter().cloned());
    for r in removed {
        held.remove(r);
    }
    replace(repo, &held)
}

/// Records that the user holds exactly `held`.
pub fn replace(repo: &Repo, held: &BTreeSet<String>) -> Result<()> {
    let path = mine_path(repo);
    let mut text = String::new();
    for p in held {
        text.push_str(p);
        text.push('\n');
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .with_context(|| format!("writing {}", path.display()))
}

/// Which of `paths` (repository-relative) are lockable, by the work tree's attributes.
pub fn lockable(repo: &Repo, paths: &[String]) -> Result<Vec<String>> {
    lockable_in(repo.work_tree()?, paths, AttrSource::WorkTree)
}

/// Which of `paths` are lockable, by the attributes git reads in `dir` from `from`.
pub fn lockable_in(dir: &Path, paths: &[String], from: AttrSource<'_>) -> Result<Vec<String>> {
    let values = check_attr(dir, crate::cmd::LOCKABLE, paths, from)?;
    Ok(paths
        .iter()
        .zip(values)
        .filter(|(_, v)| v == b"set")
        .map(|(p, _)| p.clone())
        .collect())
}

/// Makes `path` writable for its owner (or read-only for everyone); false if it is not a
/// file or already was.
pub fn set_writable(path: &Path, writable: bool) -> std::io::Result<bool> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => m,
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let mode = meta.permissions().mode();
    let new = if writable {
        mode | 0o200
    } else {
        mode & !0o222
    };
    if new == mode {
        return Ok(false);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(new))?;
    Ok(true)
}

/// Gives the lockable files among `paths` the mode they should have: writable if the user
/// holds their lock, read-only otherwise. Returns how many changed.
pub fn apply(repo: &Repo, paths: &[String]) -> Result<usize> {
    let lockable = lockable(repo, paths)?;
    if lockable.is_empty() {
        return Ok(0);
    }
    let held = mine(repo);
    set_modes(
        repo,
        lockable.into_iter().map(|p| {
            let writable = held.contains(&p);
            (p, writable)
        }),
    )
}

/// Makes each path writable or read-only, and tells git's index that only the mode changed
/// (see `index_stat::record_mode_change`). Returns how many changed.
pub fn set_modes(repo: &Repo, modes: impl IntoIterator<Item = (String, bool)>) -> Result<usize> {
    let work_tree = repo.work_tree()?;
    let mut changed = Vec::new();
    for (p, writable) in modes {
        let abs = work_tree.join(&p);
        if set_writable(&abs, writable)
            .with_context(|| format!("setting the mode of {}", abs.display()))?
        {
            changed.push(p);
        }
    }
    crate::index_stat::record_mode_change(repo, &changed)?;
    Ok(changed.len())
}

/// After a checkout or merge from `old` to `new`: the paths it changed get their mode (all
/// files of `new` after a clone, where `old` is the null commit).
pub fn after_checkout(repo: &Repo, old: &str, new: &str) -> Result<usize> {
    let changed = if git_remote_dits::helper::is_zero(old) {
        git(&["ls-tree", "-r", "-z", "--name-only", "--full-tree", new]).output()?
    } else {
        git(&[
            "diff-tree",
            "-r",
            "-z",
            "--name-only",
            "--no-renames",
            old,
            new,
        ])
        .output()?
    };
    let paths: Vec<String> = changed
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    apply(repo, &paths)
}
