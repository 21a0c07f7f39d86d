//! `git dits status`: what is tracked, what is written out in the work tree, what is missing.

use std::fs;
use std::process::ExitCode;

use anyhow::Result;
use bstr::ByteSlice;
use dits_core::worktree::{read_pointer_file, stat_record};

use super::ls_files::{presence, Presence};
use super::{human, quote_path};
use crate::repo::Repo;
use crate::tracked;

pub fn run() -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let store = repo.open_store()?;
    let work_tree = repo.work_tree()?.to_owned();
    let attrs = fs::read_to_string(work_tree.join(".gitattributes")).unwrap_or_default();
    let patterns: Vec<&str> = attrs
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter(|l| l.split_whitespace().any(|a| a == "filter=dits"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    println!(
        "Tracked patterns: {}",
        if patterns.is_empty() {
            "(none)".to_owned()
        } else {
            patterns.join(" ")
        }
    );
    let problems = crate::setup::all(&repo)?;
    for p in &problems {
        println!("problem: {}\n  hint: {}", p.what, p.fix);
    }
    // Large files a client checked out before writing its index (gitoxide) get their stat
    // data recorded now, so `git status` stops calling them modified.
    let before = stat_record::pending(&repo.stat_record_dir(), &work_tree).len();
    let waiting = super::checkout::settle_pending(&repo, &[]);
    if before > waiting {
        println!(
            "Index updated:    {} file(s) written after their checkout",
            before - waiting
        );
    }
    if waiting > 0 {
        println!(
            "Awaiting index:   {waiting} file(s) written by Dits that the index does not list yet"
        );
    }
    let files = tracked::in_index(&repo)?;
    let fetch = repo.fetch_filter();
    let (mut hydrated, mut pointers, mut missing, mut bytes) = (0, Vec::new(), Vec::new(), 0u64);
    let mut sparse = 0;
    for f in &files {
        bytes += f.pointer.size;
        if f.sparse {
            // Not in the work tree (sparse checkout): neither written out nor a pointer.
            sparse += 1;
            continue;
        }
        let path = work_tree.join(f.path.to_path_lossy());
        match read_pointer_file(&path) {
            Ok(Some(p)) if p == f.pointer && p.size > 0 => pointers.push(f),
            _ => hydrated += 1,
        }
        if presence(&store, &f.pointer).0 != Presence::Present {
            missing.push(f);
        }
    }
    println!("Tracked files:    {} ({})", files.len(), human(bytes));
    println!("Written out:      {hydrated}");
    println!("Pointers only:    {}", pointers.len());
    if sparse > 0 {
        println!("Outside sparse:   {sparse} (not in the work tree; never downloaded for it)");
    }
    println!("Missing locally:  {}", missing.len());
    for f in &pointers {
        let why = if fetch.wants(&f.path) {
            String::new()
        } else {
            format!(" (left out by {})", fetch.describe())
        };
        println!("  pointer  {}{why}", quote_path(f.path.as_ref()));
    }
    for f in &missing {
        println!(
            "  missing  {} ({})",
            quote_path(f.path.as_ref()),
            f.pointer.id.short()
        );
    }
    if !pointers.is_empty() {
        println!("hint: `git dits checkout` writes the content of pointer files; `git dits pull PATH` downloads and writes any of them");
    }
    remote_status(&repo, &files);
    Ok(ExitCode::SUCCESS)
}

/// What the Dits server does not have yet, if one is configured: the content a push would
/// upload (for the tracked files in the index).
fn remote_status(repo: &Repo, files: &[tracked::TrackedFile]) {
    let server = match crate::remote::server_for(repo, None, true) {
        Ok(Some(s)) => s,
        Ok(None) => {
            println!("Dits server:      (none configured)");
            return;
        }
        Err(e) => {
            println!("Dits server:      {e:#}");
            return;
        }
    };
    let wanted: Vec<&tracked::TrackedFile> = files.iter().filter(|f| f.pointer.size > 0).collect();
    let ids: Vec<dits_core::FileId> = wanted.iter().map(|f| f.pointer.id).collect();
    // A report should not hang on a server that is down.
    let quick = std::time::Duration::from_secs(5);
    let answer = crate::remote::connect(repo, &server, false, Some(quick))
        .map_err(|e| git_remote_dits::NetError::Helper(format!("{e:#}")))
        .and_then(|s| s.has_files(&ids));
    match answer {
        Ok(present) => {
            let missing: Vec<&&tracked::TrackedFile> = wanted
                .iter()
                .zip(&present)
                .filter(|(_, &p)| !p)
                .map(|(f, _)| f)
                .collect();
            let bytes: u64 = missing.iter().map(|f| f.pointer.size).sum();
            println!(
                "Not on {}: {} ({})",
                server.url,
                missing.len(),
                human(bytes)
            );
            for f in &missing {
                println!("  unpushed {}", quote_path(f.path.as_ref()));
            }
            if !missing.is_empty() {
                println!("hint: `git dits push` uploads them");
            }
        }
        Err(e) => println!("Dits server:      {} cannot be asked: {e}", server.url),
    }
}
