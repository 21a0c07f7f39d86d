//! `git dits track` / `untrack`: the `.gitattributes` lines that route paths through Dits.

use std::fs;
use std::process::ExitCode;

use anyhow::{Context, Result};
use bstr::ByteSlice;

use crate::repo::Repo;
use crate::tracked::blob_pointer;

const ATTRS: &str = "filter=dits diff=dits merge=dits -text";

/// gitattributes patterns cannot contain a literal space; `[[:space:]]` matches one.
fn escape(pattern: &str) -> String {
    pattern.replace(' ', "[[:space:]]")
}

fn is_dits_line(line: &str) -> bool {
    line.split_whitespace().skip(1).any(|a| a == "filter=dits")
}

/// Adds `lockable` to the Dits line of `pattern`; false if it had it already.
fn make_lockable(text: &mut String, pattern: &str) -> bool {
    let mut changed = false;
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let mut words = l.split_whitespace();
            let is_it = words.next() == Some(pattern) && is_dits_line(l);
            if is_it && !l.split_whitespace().any(|a| a == LOCKABLE) {
                changed = true;
                format!("{} {LOCKABLE}", l.trim_end())
            } else {
                l.to_owned()
            }
        })
        .collect();
    if changed {
        *text = lines.join("\n") + "\n";
    }
    changed
}

fn tracked_patterns(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && is_dits_line(l))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// The attribute that makes files read-only unless locked (the name Git LFS uses too, so
/// a migrated repository keeps its lockable files).
pub const LOCKABLE: &str = "lockable";

pub fn track(patterns: &[String], lockable: bool, quiet: bool) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let path = repo.work_tree()?.join(".gitattributes");
    let mut text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let existing = tracked_patterns(&text);
    if patterns.is_empty() {
        if existing.is_empty() {
            eprintln!("No patterns tracked; hint: git dits track '*.mp4'");
        }
        for p in existing {
            println!("{p}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut added = Vec::new();
    for p in patterns {
        let escaped = escape(p);
        if existing.contains(&escaped) {
            if lockable && make_lockable(&mut text, &escaped) {
                added.push(escaped);
            } else if !quiet {
                eprintln!("{p} is already tracked");
            }
            continue;
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        let extra = if lockable { " lockable" } else { "" };
        text.push_str(&format!("{escaped} {ATTRS}{extra}\n"));
        added.push(escaped);
    }
    if !added.is_empty() {
        fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
        if !quiet {
            for p in &added {
                eprintln!("Tracking {p}{}", if lockable { " (lockable)" } else { "" });
            }
            eprintln!("hint: commit it so every clone uses Dits for these files: git add .gitattributes && git commit -m 'Track media with Dits'");
        }
        warn_about_committed_blobs(&repo, &added)?;
    }
    // Without the filter, what was just tracked would be committed as raw content.
    if let Some(problem) = crate::setup::filter_problem(&repo) {
        eprintln!("error: {problem}");
        return Ok(ExitCode::from(1));
    }
    if let Err(e) = super::install::ensure_hooks(&repo) {
        eprintln!("warning: cannot put Dits's hooks into this repository: {e:#}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Files that match a new pattern but sit in the index as ordinary blobs stay that way until
/// re-added; say which, and how.
fn warn_about_committed_blobs(repo: &Repo, patterns: &[String]) -> Result<()> {
    let globs: Vec<gix::glob::Pattern> = patterns
        .iter()
        .filter_map(|p| gix::glob::Pattern::from_bytes(p.as_bytes()))
        .collect();
    let index = repo.repo.index_or_empty()?;
    let mut hits = Vec::new();
    for entry in index.entries() {
        let path = entry.path(&index);
        let base = path.rfind_byte(b'/').map(|i| i + 1);
        let matches = globs.iter().any(|g| {
            g.matches_repo_relative_path(
                path,
                base,
                Some(false),
                gix::glob::pattern::Case::Sensitive,
                gix::glob::wildmatch::Mode::NO_MATCH_SLASH_LITERAL,
            )
        });
        if matches && blob_pointer(&repo.repo, entry.id)?.is_none() {
            hits.push(path.to_str_lossy().into_owned());
        }
    }
    if !hits.is_empty() {
        eprintln!(
            "warning: {} file(s) matching the new pattern(s) are committed as ordinary Git blobs:",
            hits.len()
        );
        for h in hits.iter().take(10) {
            eprintln!("  {h}");
        }
        if hits.len() > 10 {
            eprintln!("  ... and {} more", hits.len() - 10);
        }
        eprintln!("  hint: convert them with: git add --renormalize . && git commit -m 'Move media to Dits'");
    }
    Ok(())
}

pub fn untrack(patterns: &[String], quiet: bool) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let path = repo.work_tree()?.join(".gitattributes");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let targets: Vec<String> = patterns.iter().map(|p| escape(p)).collect();
    let mut removed = Vec::new();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            let first = l.split_whitespace().next().unwrap_or("");
            let drop = is_dits_line(l) && targets.iter().any(|t| t == first);
            if drop {
                removed.push(first.to_owned());
            }
            !drop
        })
        .collect();
    let mut out = kept.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    for t in &targets {
        if !removed.contains(t) {
            eprintln!("warning: {t} was not tracked");
        } else if !quiet {
            eprintln!("Untracked {t} (committed files keep their pointers until re-added)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_only_dits_patterns() {
        let text = "*.txt text\n# *.old filter=dits\n*.mp4 filter=dits diff=dits merge=dits -text\nmy[[:space:]]clip.mov filter=dits\n";
        assert_eq!(
            tracked_patterns(text),
            vec!["*.mp4", "my[[:space:]]clip.mov"]
        );
        assert_eq!(escape("my clip.mov"), "my[[:space:]]clip.mov");
    }
}
