//! Pointers in a range of history: which tracked files a push must send, a fetch must bring,
//! or the server's hook must find. Git's own `rev-list --objects` walks the range (gix has no
//! equivalent of its `--not`/`--ignore-missing`/`--filter` set operations) and `cat-file`
//! reads the small blobs; both honour the object quarantine git sets up for hooks.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};

use anyhow::{Context, Result};
use dits_core::pointer::MAX_LEN;
use dits_core::Pointer;

use crate::git::git;

/// A pointer found in history, with one path it appears under (for messages).
#[derive(Debug, Clone)]
pub struct Found {
    pub pointer: Pointer,
    pub path: String,
}

/// Pointers in blobs reachable from `include` but not from `exclude` (revisions or
/// rev-list pseudo-options such as `--remotes=origin`), each blob once.
pub fn pointers(include: &[String], exclude: &[String]) -> Result<Vec<Found>> {
    if include.is_empty() {
        return Ok(Vec::new());
    }
    // Object ids go through stdin (a server may advertise more refs than fit on a command
    // line); `^id` excludes one. Pseudo-options such as `--branches` stay on the command line.
    let is_opt = |r: &&String| r.starts_with("--");
    let mut args: Vec<String> = vec![
        "rev-list".into(),
        "--objects".into(),
        "--ignore-missing".into(),
        // Blobs too large to be pointers are never read.
        format!("--filter=blob:limit={}", MAX_LEN + 1),
        "--stdin".into(),
    ];
    args.extend(include.iter().filter(is_opt).cloned());
    let excluded_opts: Vec<String> = exclude.iter().filter(is_opt).cloned().collect();
    if !excluded_opts.is_empty() {
        args.push("--not".into());
        args.extend(excluded_opts);
    }
    let mut revs = String::new();
    for r in include.iter().filter(|r| !is_opt(r)) {
        revs.push_str(&format!("{r}\n"));
    }
    for r in exclude.iter().filter(|r| !is_opt(r)) {
        revs.push_str(&format!("^{r}\n"));
    }
    let listed = run_capture(&args, Some(revs.into_bytes()))?;
    // Objects with a path are trees and blobs; commits have none.
    let mut candidates = Vec::new();
    for line in listed.lines() {
        if let Some((oid, path)) = line.split_once(' ') {
            candidates.push(format!("{oid} {path}\n"));
        }
    }
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let checked = run_capture(
        &[
            "cat-file".into(),
            "--batch-check=%(objectname) %(objecttype) %(objectsize) %(rest)".into(),
        ],
        Some(candidates.concat().into_bytes()),
    )?;
    let mut seen = HashSet::new();
    let mut blobs = Vec::new();
    for line in checked.lines() {
        let mut f = line.splitn(4, ' ');
        let (Some(oid), Some(kind), Some(size)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let path = f.next().unwrap_or("");
        let small = size.parse::<usize>().is_ok_and(|s| s <= MAX_LEN);
        if kind == "blob" && small && seen.insert(oid.to_owned()) {
            blobs.push((oid.to_owned(), path.to_owned()));
        }
    }
    read_pointers(blobs)
}

/// Reads the candidate blobs with one `git cat-file --batch` and keeps the valid pointers.
fn read_pointers(blobs: Vec<(String, String)>) -> Result<Vec<Found>> {
    if blobs.is_empty() {
        return Ok(Vec::new());
    }
    let mut child = git(&["cat-file", "--batch"]).spawn()?;
    let mut stdin = child.stdin.take().context("git cat-file stdin")?;
    let input: String = blobs.iter().map(|(oid, _)| format!("{oid}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let mut out = BufReader::new(child.stdout.take().context("git cat-file stdout")?);
    let mut found = Vec::new();
    for (oid, path) in &blobs {
        let mut header = String::new();
        out.read_line(&mut header)?;
        let size: usize = header
            .split(' ')
            .nth(2)
            .and_then(|s| s.trim().parse().ok())
            .with_context(|| format!("git cat-file: unexpected answer {header:?} for {oid}"))?;
        let mut data = vec![0u8; size + 1];
        out.read_exact(&mut data)?;
        data.pop();
        if let Ok(pointer) = Pointer::parse(&data) {
            found.push(Found {
                pointer,
                path: path.clone(),
            });
        }
    }
    let _ = writer.join();
    let _ = child.wait();
    Ok(found)
}

fn run_capture(args: &[String], input: Option<Vec<u8>>) -> Result<String> {
    let run = git(args);
    match input {
        Some(bytes) => run.input(bytes).text(),
        None => run.text(),
    }
}
