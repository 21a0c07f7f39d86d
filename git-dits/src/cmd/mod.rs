//! One file per `git dits` command.

mod cat;
mod checkout;
mod diff;
mod env;
mod fsck;
mod hooks;
pub mod install;
mod lock;
mod lock_hooks;
mod ls_files;
mod manpage;
mod media_diff;
mod merge;
pub mod migrate;
mod pointer;
mod prune;
mod serve;
mod stats;
mod status;
mod sync;
mod track;

use std::process::ExitCode;

use anyhow::Result;

pub(crate) use checkout::restage;
pub use track::LOCKABLE;

use crate::cli::{Cli, Cmd, MigrateAction};

pub fn dispatch(cli: &Cli) -> Result<ExitCode> {
    let quiet = cli.quiet;
    match &cli.command {
        Cmd::Install { scope, force } => install::install(*scope, *force, quiet),
        Cmd::Uninstall { scope } => install::uninstall(*scope, quiet),
        Cmd::Track { patterns, lockable } => track::track(patterns, *lockable, quiet),
        Cmd::Lock {
            paths,
            reason,
            release_on_push,
            json,
        } => lock::lock(paths, reason, *release_on_push, *json, quiet),
        Cmd::Unlock {
            paths,
            force,
            reason,
            json,
        } => lock::unlock(paths, *force, reason, *json, quiet),
        Cmd::Locks {
            mine,
            path,
            user,
            json,
        } => lock::list(*mine, path, user.as_deref(), *json),
        Cmd::Untrack { patterns } => track::untrack(patterns, quiet),
        Cmd::LsFiles { rev, long } => ls_files::run(rev.as_deref(), *long),
        Cmd::Status => status::run(),
        Cmd::Fsck {
            revs,
            repair,
            quick,
        } => fsck::run(revs, *repair, *quick, quiet),
        Cmd::Pointer { path } => pointer::run(path),
        Cmd::Stats => stats::run(),
        Cmd::Env => env::run(),
        Cmd::Checkout {
            paths,
            deferred,
            patterns,
        } => checkout::run(paths, *deferred, Some(patterns), quiet),
        Cmd::Cat { spec } => cat::run(spec),
        Cmd::DiffTextconv { file } => diff::textconv(file),
        Cmd::Diff { old, new, paths } => media_diff::run(old, new, paths),
        Cmd::MergeDriver {
            base,
            ours,
            theirs,
            path,
        } => merge::run(base, ours, theirs, path.as_deref()),
        Cmd::Hook { name, args } => hooks::run(name, args),
        Cmd::Migrate { action } => match action {
            MigrateAction::Import {
                selection,
                above,
                missing,
            } => migrate::import(selection, *above, *missing, quiet),
            MigrateAction::Export { to, selection } => migrate::export(*to, selection, quiet),
            MigrateAction::Info { selection, above } => migrate::info(selection, *above),
            MigrateAction::Verify => migrate::verify(quiet),
        },
        Cmd::Push { remote, revs } => sync::push(remote.as_deref(), revs, quiet),
        Cmd::Fetch {
            remote,
            refs,
            patterns,
        } => sync::fetch(remote.as_deref(), refs, patterns, quiet),
        Cmd::Pull {
            remote,
            paths,
            patterns,
        } => sync::pull(remote.as_deref(), paths, patterns, quiet),
        Cmd::Prune {
            remote,
            now,
            dry_run,
        } => prune::run(remote.as_deref(), *now, *dry_run, quiet),
        Cmd::Mount {
            dir,
            rev,
            foreground,
            list,
        } => crate::mount::run(
            &crate::mount::MountArgs {
                dir: dir.as_deref(),
                rev,
                foreground: *foreground,
                list: *list,
            },
            quiet,
        ),
        Cmd::Unmount { dir, lazy } => crate::mount::unmount(dir, *lazy, quiet),
        Cmd::Serve {
            root,
            listen,
            transport,
            cert,
            key,
            action,
        } => serve::run(
            root.as_deref(),
            listen,
            transport,
            cert.as_deref(),
            key.as_deref(),
            action.as_ref(),
        ),
    }
}

pub(crate) use dits_core::progress::human;

/// A path as git prints it: C-quoted when it holds quotes, backslashes or control characters
/// (one entry per line, whatever the name), UTF-8 left readable.
pub(crate) fn quote_path(path: &bstr::BStr) -> String {
    use bstr::ByteSlice;
    let text = path.to_str_lossy();
    if !text
        .chars()
        .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        return text.into_owned();
    }
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_git() {
        assert_eq!(quote_path("plain/ü.mov".into()), "plain/ü.mov");
        assert_eq!(quote_path("new\nline".into()), "\"new\\nline\"");
        assert_eq!(quote_path("q\"x".into()), "\"q\\\"x\"");
    }
}
