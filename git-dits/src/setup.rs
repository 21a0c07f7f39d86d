//! Set-up mistakes that make Dits fail silently, found before they cost a team its media:
//! no Dits filter in git's config (so `git add` stores raw content and checkouts leave
//! pointers), `.gitattributes` patterns that were never committed (so no clone uses Dits for
//! them), and files under Dits patterns committed as ordinary blobs. Each problem says what
//! to run.

use anyhow::Result;
use bstr::ByteSlice;

use crate::git::git;
use crate::repo::Repo;
use crate::tracked::blob_pointer;

pub struct Problem {
    pub what: String,
    pub fix: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\nhint: {}", self.what, self.fix)
    }
}

/// The filter git runs for `filter=dits`, if it is not Dits's.
pub fn filter_problem(repo: &Repo) -> Option<Problem> {
    let cfg = repo.repo.config_snapshot();
    let process = cfg.string("filter.dits.process").map(|v| v.to_string());
    let clean = cfg.string("filter.dits.clean").map(|v| v.to_string());
    let fix = "git dits install --global   (once per user; `git dits install` sets up only this repository)".to_owned();
    match (process, clean) {
        (None, None) => Some(Problem {
            what: "git has no Dits filter configured (filter.dits.process is not set): `git add` would store tracked files as ordinary Git blobs, and checkouts would leave pointers".into(),
            fix,
        }),
        (Some(v), _) | (None, Some(v)) if !v.contains("dits-filter") => Some(Problem {
            what: format!(
                "git's filter for Dits-tracked files is {v:?}, not Dits's (dits-filter): tracked files would not go through Dits"
            ),
            fix,
        }),
        _ => None,
    }
}

/// `.gitattributes` files with Dits patterns that are not committed as they are.
pub fn attributes_problem(repo: &Repo) -> Result<Option<Problem>> {
    let work_tree = repo.work_tree()?;
    let out = git(&[
        "status",
        "--porcelain",
        "-z",
        "--untracked-files=all",
        "--",
        ":(glob)**/.gitattributes",
    ])
    .current_dir(work_tree)
    .output()?;
    let mut files = Vec::new();
    for entry in out.split_str("\0").filter(|e| e.len() > 3) {
        let path = entry[3..].to_str_lossy().into_owned();
        let text = std::fs::read_to_string(work_tree.join(&path)).unwrap_or_default();
        if text.contains("filter=dits") {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Ok(None);
    }
    Ok(Some(Problem {
        what: format!(
            "{} holds Dits patterns that are not committed: clones and teammates do not use Dits for them yet",
            files.join(", ")
        ),
        fix: format!(
            "git add {} && git commit -m 'Track media with Dits'",
            files.join(" ")
        ),
    }))
}

/// Files in the index under a Dits pattern whose blob is ordinary content, not a pointer.
pub fn raw_blobs(repo: &Repo) -> Result<Vec<String>> {
    let index = repo.repo.index_or_empty()?;
    let mut paths = Vec::new();
    let mut ids = Vec::new();
    for entry in index.entries() {
        let is_file = entry.mode == gix::index::entry::Mode::FILE
            || entry.mode == gix::index::entry::Mode::FILE_EXECUTABLE;
        if is_file && entry.stage() == gix::index::entry::Stage::Unconflicted {
            paths.push(entry.path(&index).to_owned());
            ids.push(entry.id);
        }
    }
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let values = crate::git::check_attr(
        repo.work_tree()?,
        "filter",
        &paths,
        crate::git::AttrSource::Index,
    )?;
    let mut raw = Vec::new();
    for (i, value) in values.iter().enumerate() {
        if value != b"dits" || i >= ids.len() {
            continue;
        }
        let id = ids[i];
        let empty = repo.repo.find_header(id).is_ok_and(|h| h.size() == 0);
        if !empty && blob_pointer(&repo.repo, id)?.is_none() {
            raw.push(paths[i].to_str_lossy().into_owned());
        }
    }
    Ok(raw)
}

/// The raw blobs of [`raw_blobs`] as a problem.
pub fn raw_blob_problem(raw: &[String]) -> Option<Problem> {
    if raw.is_empty() {
        return None;
    }
    let mut names: Vec<&str> = raw.iter().map(String::as_str).take(5).collect();
    if raw.len() > 5 {
        names.push("...");
    }
    Some(Problem {
        what: format!(
            "{} file(s) under Dits patterns are committed as ordinary Git blobs, not Dits pointers: {}",
            raw.len(),
            names.join(", ")
        ),
        fix: "git add --renormalize . && git commit -m 'Move media to Dits'".into(),
    })
}

/// Every problem, for `git dits status`.
pub fn all(repo: &Repo) -> Result<Vec<Problem>> {
    let mut out: Vec<Problem> = filter_problem(repo).into_iter().collect();
    out.extend(attributes_problem(repo)?);
    out.extend(raw_blob_problem(&raw_blobs(repo)?));
    Ok(out)
}

/// Commands that write tracked files into the work tree refuse to run without the filter:
/// what they write would be committed as raw content.
pub fn require_filter(repo: &Repo) -> Result<()> {
    match filter_problem(repo) {
        Some(p) => anyhow::bail!("{}\nhint: {}", p.what, p.fix),
        None => Ok(()),
    }
}

/// Warnings for commands that can do their job anyway (stderr).
pub fn warn(repo: &Repo) {
    match attributes_problem(repo) {
        Ok(Some(p)) => eprintln!("warning: {p}"),
        Ok(None) => {}
        Err(e) => tracing::debug!("cannot check .gitattributes: {e:#}"),
    }
}
