//! `git dits install` / `uninstall`: config keys and hook shims.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::Scope;
use crate::git::git;
use crate::repo::Repo;

/// Every key `install` sets. The filter runs as one long-lived process per git command; the
/// clean/smudge fallbacks serve tools that do not speak the process protocol.
const KEYS: &[(&str, &str)] = &[
    ("filter.dits.process", "dits-filter process"),
    ("filter.dits.clean", "dits-filter clean %f"),
    ("filter.dits.smudge", "dits-filter smudge %f"),
    ("filter.dits.required", "true"),
    ("diff.dits.textconv", "git-dits diff-textconv"),
    ("merge.dits.name", "Dits whole-file merge"),
    ("merge.dits.driver", "git-dits merge-driver %O %A %B %P"),
];

/// Hooks Dits needs, with their shims (kept in hooks/ at the top of the source tree).
pub const HOOKS: &[(&str, &str)] = &[
    (
        "post-checkout",
        include_str!("../../../hooks/post-checkout"),
    ),
    ("post-merge", include_str!("../../../hooks/post-merge")),
    ("pre-push", include_str!("../../../hooks/pre-push")),
];

/// Marks a hook file as written by Dits, so we may replace or remove it.
const MARKER: &str = "# git-dits hook";

fn scope_flag(scope: Scope) -> &'static str {
    if scope.global {
        "--global"
    } else if scope.system {
        "--system"
    } else {
        "--local"
    }
}

pub fn install(scope: Scope, force: bool, quiet: bool) -> Result<ExitCode> {
    let flag = scope_flag(scope);
    // Hooks belong to one repository: only a local install writes them. A global or system
    // install must not touch whatever repository it happens to run in.
    let repo = if flag == "--local" {
        Some(Repo::discover()?)
    } else {
        None
    };
    for (key, value) in KEYS {
        git(&["config", flag, key, value]).output()?;
    }
    let mut code = ExitCode::SUCCESS;
    if let Some(repo) = &repo {
        let dir = repo.hooks_dir();
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for (name, body) in HOOKS {
            let path = dir.join(name);
            match fs::read_to_string(&path) {
                Ok(existing) if !existing.contains(MARKER) && !force => {
                    eprintln!(
                        "warning: {} exists and is not a Dits hook; left unchanged.\n  hint: add this line to it: git dits hook {name} \"$@\"\n  hint: or rerun with --force to replace it (the old one is kept as {name}.pre-dits)",
                        path.display()
                    );
                    code = ExitCode::from(1);
                    continue;
                }
                Ok(existing) if !existing.contains(MARKER) => {
                    let backup = dir.join(format!("{name}.pre-dits"));
                    fs::rename(&path, &backup).with_context(|| {
                        format!("keeping {} as {}", path.display(), backup.display())
                    })?;
                }
                _ => {}
            }
            fs::write(&path, body).with_context(|| format!("writing {}", path.display()))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                .with_context(|| format!("making {} executable", path.display()))?;
        }
        fs::create_dir_all(repo.store_root())?;
    }
    if !quiet {
        let where_ = repo
            .as_ref()
            .map(|r| r.common_dir().display().to_string())
            .unwrap_or_else(|| flag.trim_start_matches("--").to_owned());
        eprintln!(
            "Dits installed ({where_} config{}).",
            if repo.is_some() { " and hooks" } else { "" }
        );
    }
    Ok(code)
}

pub fn uninstall(scope: Scope, quiet: bool) -> Result<ExitCode> {
    let flag = scope_flag(scope);
    for (key, _) in KEYS {
        // Exit code 5 means "not set": uninstall is idempotent.
        let code = git(&["config", flag, "--unset-all", key]).code()?;
        anyhow::ensure!(
            matches!(code, Some(0 | 5)),
            "git config {flag} --unset-all {key} failed"
        );
    }
    let repo = if flag == "--local" {
        Repo::discover().ok()
    } else {
        None
    };
    if let Some(repo) = repo {
        for (name, _) in HOOKS {
            let path = repo.hooks_dir().join(name);
            if fs::read_to_string(&path).is_ok_and(|s| s.contains(MARKER)) {
                fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
                // Put back the hook `install --force` set aside.
                let backup = repo.hooks_dir().join(format!("{name}.pre-dits"));
                if backup.exists() {
                    fs::rename(&backup, &path)
                        .with_context(|| format!("restoring {}", backup.display()))?;
                }
            }
        }
    }
    if !quiet {
        eprintln!("Dits uninstalled; the store in .git/dits is kept.");
    }
    Ok(ExitCode::SUCCESS)
}
