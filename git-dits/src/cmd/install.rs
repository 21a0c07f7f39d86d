//! `git dits install` / `uninstall`: config keys and hook shims.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
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
        for hook in write_hooks(repo, force)?.iter().filter(|f| !f.calls_dits()) {
            eprintln!(
                "warning: {} exists and is not a Dits hook; left unchanged.\n  hint: add this line to it: git dits hook {} \"$@\"\n  hint: or rerun with --force to replace it (the old one is kept as {}.pre-dits)",
                hook.path.display(),
                hook.name,
                hook.name
            );
            code = ExitCode::from(1);
        }
        fs::create_dir_all(repo.store_root())?;
    }
    // `git dits --help` is `man git-dits`: a failure here is said, but Dits works without.
    let man = match super::manpage::install() {
        Ok(dir) => Some(dir),
        Err(e) => {
            eprintln!("warning: man pages not installed: {e:#}\n  hint: `git dits -h` prints the same help");
            None
        }
    };
    if !quiet {
        if let Some(dir) = &man {
            eprintln!("Man pages in {} (`git dits --help`).", dir.display());
        }
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

/// A hook of someone else's that Dits left alone.
pub struct Foreign {
    pub name: &'static str,
    pub path: PathBuf,
}

impl Foreign {
    /// Whether the hook calls Dits itself (the line `install` suggests adding).
    fn calls_dits(&self) -> bool {
        fs::read_to_string(&self.path).is_ok_and(|s| s.contains("git dits hook"))
    }
}

/// Writes the hooks Dits needs into `repo`'s hooks directory: missing ones, and Dits's own
/// (refreshed). Another tool's hook is replaced only with `force` (kept as NAME.pre-dits);
/// otherwise it is returned.
pub fn write_hooks(repo: &Repo, force: bool) -> Result<Vec<Foreign>> {
    let dir = repo.hooks_dir();
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut foreign = Vec::new();
    for (name, body) in HOOKS {
        let path = dir.join(name);
        match fs::read_to_string(&path) {
            Ok(existing) if existing == *body => continue,
            Ok(existing) if !existing.contains(MARKER) && !force => {
                foreign.push(Foreign { name, path });
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
        // Into a temp file first: git may be about to run this very hook.
        let tmp = dir.join(format!(".{name}.dits-tmp"));
        fs::write(&tmp, body).with_context(|| format!("writing {}", tmp.display()))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(foreign)
}

/// What the filter does in every repository it runs in (a clone made after
/// `git dits install --global` has no hooks otherwise, and its pushes would publish commits
/// whose content exists only on this machine): puts in the hooks that are missing, unless
/// `dits.autoHooks` is false. Another tool's hook that does not call Dits is left alone and
/// reported once per repository.
pub fn ensure_hooks(repo: &Repo) -> Result<()> {
    let cfg = repo.repo.config_snapshot();
    if !cfg.boolean("dits.autoHooks").unwrap_or(true) || repo.work_tree().is_err() {
        return Ok(());
    }
    let dir = repo.hooks_dir();
    // A hooks directory elsewhere (core.hooksPath into the work tree or a shared folder) is
    // another tool's to manage: writing into it would add files to the project.
    if !dir.starts_with(repo.common_dir()) {
        tracing::debug!("hooks live in {}; not adding Dits's there", dir.display());
        return Ok(());
    }
    let all_ours = HOOKS.iter().all(|(name, body)| {
        fs::read_to_string(dir.join(name)).is_ok_and(|s| s == *body || s.contains("git dits hook"))
    });
    if all_ours {
        return Ok(());
    }
    let foreign: Vec<Foreign> = write_hooks(repo, false)?
        .into_iter()
        .filter(|f| !f.calls_dits())
        .collect();
    let told = repo.store_root().join("foreign-hooks-reported");
    if !foreign.is_empty() && !told.exists() {
        for f in &foreign {
            eprintln!(
                "dits: warning: {} is another tool's hook, so Dits's {} hook is not installed; hint: add this line to it: git dits hook {} \"$@\"",
                f.path.display(),
                f.name,
                f.name
            );
        }
        if fs::create_dir_all(repo.store_root()).is_ok() {
            let _ = fs::write(&told, "");
        }
    }
    Ok(())
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
