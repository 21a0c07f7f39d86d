//! Commits whose content is known to be on a Dits server: the tips `git push` (through the
//! pre-push hook) or `git dits push` uploaded. The next push checks what is not behind them,
//! rather than what the Git host lacks: the host may hold commits whose content never left
//! the pusher's disk (a clone without hooks, `git push --no-verify`), and those must be
//! caught up by the next push.
//!
//! One small file per server in the store directory, one commit id per line, newest last.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use git_remote_dits::DitsUrl;

use crate::repo::Repo;

/// Tips kept per server: enough that every branch a team pushes is behind one.
const KEEP: usize = 64;

pub struct Uploaded {
    path: PathBuf,
}

impl Uploaded {
    /// The record for the server at `url`.
    pub fn for_server(repo: &Repo, url: &DitsUrl) -> Uploaded {
        let key = blake3::hash(url.to_string().as_bytes()).to_hex();
        Uploaded {
            path: repo.store_root().join("uploaded").join(&key.as_str()[..16]),
        }
    }

    /// Commits whose content the server has (with everything they reach). Ids of commits
    /// this clone no longer has are harmless: history walks ignore them.
    pub fn tips(&self) -> Vec<String> {
        fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.len() >= 40 && l.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_owned)
            .collect()
    }

    /// Adds `commits` (whose content was just uploaded, with their history's).
    pub fn record(&self, commits: &[String]) -> Result<()> {
        let mut tips = self.tips();
        for c in commits {
            tips.retain(|t| t != c);
            tips.push(c.clone());
        }
        let start = tips.len().saturating_sub(KEEP);
        let dir = self
            .path
            .parent()
            .context("uploaded record has no directory")?;
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let text: String = tips[start..].iter().map(|t| format!("{t}\n")).collect();
        dits_core::store::replace_file(&self.path, text.as_bytes())?;
        Ok(())
    }
}
