//! Man pages, generated from the command-line definitions in `cli.rs` and put where `man`
//! finds them. `git dits --help` is git's `man git-dits`, so without a page it says "No manual
//! entry". man-db looks in `DIR/../share/man` for every `DIR` on `PATH`, so the page goes
//! beside the `git-dits` that git runs; if that folder is not writable, under
//! `~/.local/share/man`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::Cli;

/// Writes `git-dits.1` and one page per subcommand (`git-dits-track.1`, …) into the first
/// man folder that can take them; returns that folder.
pub fn install() -> Result<PathBuf> {
    let mut tried = Vec::new();
    for dir in candidates() {
        match write_pages(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) => tried.push(format!("{}: {e:#}", dir.display())),
        }
    }
    anyhow::bail!("no man folder could take the pages ({})", tried.join("; "))
}

/// `PATH_DIR/../share/man/man1` for the `PATH` entry holding `git-dits`, then the user's own.
fn candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(bin) = std::env::split_paths(&path).find(|d| d.join("git-dits").is_file()) {
            if let Some(prefix) = bin.parent() {
                out.push(prefix.join("share/man/man1"));
            }
        }
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")));
    if let Some(data) = data {
        out.push(data.join("man/man1"));
    }
    out
}

/// Renders into a temporary folder beside `dir`, then renames each page into place, so a
/// reader never sees half a page.
fn write_pages(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(".dits-man-{}", std::process::id()));
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let moved = clap_mangen::generate_to(Cli::command(), &tmp)
        .with_context(|| format!("writing man pages into {}", tmp.display()))
        .and_then(|()| {
            for page in fs::read_dir(&tmp)? {
                let page = page?;
                fs::rename(page.path(), dir.join(page.file_name()))
                    .with_context(|| format!("moving {} into place", page.path().display()))?;
            }
            Ok(())
        });
    let _ = fs::remove_dir_all(&tmp);
    moved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_page_per_visible_command() -> Result<()> {
        let dir = tempfile::tempdir()?;
        write_pages(dir.path())?;
        let main = fs::read_to_string(dir.path().join("git-dits.1"))?;
        assert!(main.contains("Large media in Git"), "{main}");
        let track = fs::read_to_string(dir.path().join("git-dits-track.1"))?;
        assert!(track.contains("PATTERN"), "{track}");
        assert!(
            !dir.path().join("git-dits-hook.1").exists(),
            "hidden commands get no page"
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path())?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".dits-man"))
            .collect();
        assert!(leftovers.is_empty());
        Ok(())
    }
}
