//! `git dits env`: versions, settings in effect, store location.

use std::process::ExitCode;

use anyhow::Result;

use crate::git::git;
use crate::repo::{Repo, KEYS};

pub fn run() -> Result<ExitCode> {
    println!("git-dits {}", env!("CARGO_PKG_VERSION"));
    println!(
        "{}",
        git(&["--version"])
            .text()
            .unwrap_or_else(|e| format!("git: {e}"))
            .trim()
    );
    match Repo::discover() {
        Err(e) => println!("repository: none ({e:#})"),
        Ok(repo) => {
            println!("git dir:     {}", repo.git_dir().display());
            println!("common dir:  {}", repo.common_dir().display());
            if let Ok(w) = repo.work_tree() {
                println!("work tree:   {}", w.display());
            }
            println!("store:       {}", repo.store_root().display());
            let s = repo.settings()?;
            let cfg = repo.repo.config_snapshot();
            for (key, default, meaning) in KEYS {
                if key.contains('<') {
                    // A family of keys (one per server): named, not looked up.
                    println!("{key}  # {meaning}");
                    continue;
                }
                let mut value = cfg.string(*key).map(|v| v.to_string());
                let mut origin = "";
                if value.is_none() && *key == "dits.url" {
                    // The one key a committed .ditsconfig may set.
                    if let Ok(Some((url, from))) = crate::remote::configured_url(&repo) {
                        value = Some(url);
                        origin = if from == ".ditsconfig" {
                            " (from .ditsconfig)"
                        } else {
                            ""
                        };
                    }
                }
                println!(
                    "{key} = {}{}  # {meaning}",
                    value.as_deref().unwrap_or(default),
                    if value.is_none() {
                        " (default)"
                    } else {
                        origin
                    }
                );
            }
            println!(
                "effective: compression={} packSizeLimit={} inlineLimit={} skipSmudge={} mp4={}",
                s.store.compression_level,
                s.store.pack_size_limit,
                s.inline_limit,
                s.skip_smudge,
                s.mp4
            );
            for key in [
                "filter.dits.process",
                "filter.dits.required",
                "diff.dits.textconv",
                "merge.dits.driver",
            ] {
                println!(
                    "{key} = {}",
                    cfg.string(key)
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "(unset; hint: git dits install)".into())
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
