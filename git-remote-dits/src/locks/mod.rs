//! Locks beyond their vocabulary (`dits_core::locks`): the server's database ([`db`]), and
//! the questions a lock asks git, answered the same way by the server, its hooks and the
//! client: which paths a push changes, and whether someone's copy of a path is behind.

pub mod db;

use std::path::Path;
use std::process::Command;

use dits_core::locks::{LockAsk, LockInfo};

pub use db::{db_path, AuditEntry, LockDb, Outcome};

use crate::error::NetError;

/// `secs` since the epoch as `2026-12-04 21:30 UTC`.
pub fn format_time(secs: u64) -> String {
    jiff::Timestamp::from_second(secs as i64)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| format!("{secs}s after 1970"))
}

/// One lock in a sentence: `art/hero.psd is locked by alice since … (reason)`.
pub fn describe(l: &LockInfo) -> String {
    let mut s = format!(
        "{} is locked by {} since {}",
        l.path,
        l.owner,
        format_time(l.since)
    );
    if !l.branch.is_empty() {
        s.push_str(&format!(" on {}", short_branch(&l.branch)));
    }
    if !l.reason.is_empty() {
        s.push_str(&format!(" ({})", l.reason));
    }
    s
}

/// `refs/heads/main` as `main`.
pub fn short_branch(branch: &str) -> &str {
    branch.strip_prefix("refs/heads/").unwrap_or(branch)
}

/// What a push refused for locks says: each lock in the way and how to go on.
pub fn push_refusal(branch: &str, held: &[LockInfo]) -> String {
    let mut s = format!(
        "push to {} changes {} locked file(s):\n",
        short_branch(branch),
        held.len()
    );
    for l in held.iter().take(20) {
        s.push_str(&format!("  {}\n", describe(l)));
    }
    if held.len() > 20 {
        s.push_str(&format!("  ... and {} more\n", held.len() - 20));
    }
    s.push_str(
        "hint: ask the holder to push their change and unlock; then pull, redo your change and push again\n\
         hint: an admin can break a lock of someone who left: git dits unlock --force --reason TEXT PATH",
    );
    s
}

fn git_in(dir: Option<&Path>) -> Command {
    let mut cmd = Command::new("git");
    if let Some(dir) = dir {
        cmd.arg("-C").arg(dir);
    }
    // Paths are paths, never patterns.
    cmd.env("GIT_LITERAL_PATHSPECS", "1");
    cmd
}

fn run(mut cmd: Command, what: &str) -> Result<Vec<u8>, NetError> {
    let out = cmd
        .output()
        .map_err(|e| NetError::io(format!("running git for {what}"), e))?;
    if !out.status.success() {
        return Err(NetError::io(
            what,
            std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        ));
    }
    Ok(out.stdout)
}

fn nul_paths(bytes: &[u8]) -> Vec<String> {
    let mut paths: Vec<String> = bytes
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| {
            String::from_utf8_lossy(p)
                .trim_start_matches('\n')
                .to_owned()
        })
        .filter(|p| !p.is_empty())
        .collect();
    paths.sort_unstable();
    paths.dedup();
    paths
}

/// The paths that the commits reachable from `tips` and not from `exclude` (revisions or
/// options such as `--all`, `--remotes=origin`) add, modify, delete or rename (both names),
/// each commit against its first parent, so a merge counts what it brings in. In `dir`, or
/// the current repository.
pub fn changed_paths(
    dir: Option<&Path>,
    tips: &[String],
    exclude: &[String],
) -> Result<Vec<String>, NetError> {
    if tips.is_empty() {
        return Ok(Vec::new());
    }
    let mut cmd = git_in(dir);
    cmd.args([
        "log",
        "--format=",
        "--name-only",
        "-z",
        "--no-renames",
        "--diff-merges=first-parent",
    ])
    .args(tips);
    if !exclude.is_empty() {
        cmd.arg("--not").args(exclude);
    }
    cmd.arg("--");
    Ok(nul_paths(&run(cmd, "listing the paths a push changes")?))
}

/// The commit `rev` names in `dir`, if it names one.
pub fn resolve_commit(dir: Option<&Path>, rev: &str) -> Option<String> {
    let mut cmd = git_in(dir);
    cmd.args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
        .arg(format!("{rev}^{{commit}}"));
    let out = cmd.output().ok()?;
    let oid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !oid.is_empty()).then_some(oid)
}

/// The blob of each of `paths` at `commit` (absent: not in it).
pub fn blobs_at(
    dir: Option<&Path>,
    commit: &str,
    paths: &[&str],
) -> Result<std::collections::HashMap<String, String>, NetError> {
    let mut cmd = git_in(dir);
    cmd.args(["ls-tree", "-r", "-z", "--full-tree", commit, "--"]);
    // A few paths are looked up by name; many by one pass over the whole tree (git matches
    // every entry against every pathspec, which grows as their product).
    let wanted: Option<std::collections::HashSet<&str>> = if paths.len() > 64 {
        Some(paths.iter().copied().collect())
    } else {
        cmd.args(paths);
        None
    };
    let mut out = std::collections::HashMap::new();
    for entry in run(cmd, "reading the tree of the branch")?.split(|&b| b == 0) {
        // `<mode> SP <type> SP <oid> TAB <path>`
        let entry = String::from_utf8_lossy(entry);
        if let Some((head, path)) = entry.split_once('\t') {
            if wanted.as_ref().is_some_and(|w| !w.contains(path)) {
                continue;
            }
            if let Some(oid) = head.split(' ').nth(2) {
                out.insert(path.to_owned(), oid.to_owned());
            }
        }
    }
    Ok(out)
}

/// Which of `asks` are behind `tip`, the branch on the server: the asker's blob differs
/// from the tip's and the path changed between `base` (the newest commit of the branch the
/// asker has) and the tip. Without a base the server knows, any difference counts: the
/// asker cannot show that their version is the newer one.
pub fn behind(
    dir: Option<&Path>,
    tip: &str,
    base: Option<&str>,
    asks: &[LockAsk],
) -> Result<Vec<String>, NetError> {
    let paths: Vec<&str> = asks.iter().map(|a| a.path.as_str()).collect();
    let at_tip = blobs_at(dir, tip, &paths)?;
    let differ: Vec<&LockAsk> = asks
        .iter()
        .filter(|a| at_tip.get(&a.path) != a.blob.as_ref())
        .collect();
    if differ.is_empty() {
        return Ok(Vec::new());
    }
    let Some(base) = base.and_then(|b| resolve_commit(dir, b)) else {
        return Ok(differ.into_iter().map(|a| a.path.clone()).collect());
    };
    let mut cmd = git_in(dir);
    cmd.args([
        "diff-tree",
        "-r",
        "-z",
        "--name-only",
        "--no-renames",
        &base,
        tip,
        "--",
    ]);
    // As in `blobs_at`: many paths are found in one pass over the whole difference.
    if differ.len() <= 64 {
        cmd.args(differ.iter().map(|a| a.path.as_str()));
    }
    let changed: std::collections::HashSet<String> =
        nul_paths(&run(cmd, "comparing the branch with your copy")?)
            .into_iter()
            .collect();
    Ok(differ
        .into_iter()
        .filter(|a| changed.contains(&a.path))
        .map(|a| a.path.clone())
        .collect())
}
