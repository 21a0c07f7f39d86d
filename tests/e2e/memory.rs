//! The memory bound: adding and checking out a 4 GiB file keeps every process small.
//!
//! Git buffers a smudge filter's whole output in memory (a 4 GiB file would need 4 GiB in
//! git), so Dits leaves large files as pointers in git's pipe and writes them itself. Peak RSS
//! is read with GNU time, whose `%M` is the largest peak of any single process in the tree
//! (git, dits-filter, the nested `git update-index` and its filter). Asserting that each stays
//! under 256 MiB bounds git + Dits running together under 512 MiB.
#![allow(clippy::unwrap_used)] // a panic is how a test reports failure

use std::fs;
use std::path::Path;

use crate::support::*;

const LIMIT_KIB: u64 = 256 * 1024;

/// Runs git under GNU time and returns the peak RSS in KiB.
fn peak_rss_kib(env: &Env, dir: &Path, args: &[&str]) -> u64 {
    let report = env.path("rss.txt");
    let mut cmd = env.cmd(dir, "/usr/bin/time");
    cmd.arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&report)
        .arg("git")
        .args(args);
    env.run_ok(&mut cmd);
    fs::read_to_string(&report).unwrap().trim().parse().unwrap()
}

#[test]
fn four_gib_file_add_and_checkout_stay_small() {
    let env = Env::new();
    let repo = env.repo("r", &["*.bin"]);
    let huge = repo.join("huge.bin");
    write_content(&huge, 4, 4 << 30);
    let expected = b3(&huge);
    fs::write(repo.join("README"), "media\n").unwrap();
    env.git(&repo, &["add", "README", ".gitattributes"]);

    let add_kib = peak_rss_kib(&env, &repo, &["add", "huge.bin"]);
    env.git(&repo, &["commit", "-q", "-m", "huge"]);
    assert!(add_kib < LIMIT_KIB, "git add peaked at {add_kib} KiB");

    // A branch without the file, so switching back writes all 4 GiB afresh.
    env.git(&repo, &["switch", "-q", "-c", "without"]);
    env.git(&repo, &["rm", "-q", "huge.bin"]);
    env.git(&repo, &["commit", "-q", "-m", "drop"]);
    assert!(!huge.exists());

    let checkout_kib = peak_rss_kib(&env, &repo, &["checkout", "-q", "main"]);
    assert!(
        checkout_kib < LIMIT_KIB,
        "git checkout peaked at {checkout_kib} KiB"
    );
    assert_eq!(b3(&huge), expected, "content after checkout");
    env.assert_clean(&repo);
    eprintln!("peak RSS: add {add_kib} KiB, checkout {checkout_kib} KiB");
}

/// The same bound across the network: pushing a 4 GiB file to a Dits server and cloning it
/// (the filter fetches it behind git's `delay`, then writes it after git) keep every client
/// process small.
#[test]
fn four_gib_file_push_and_clone_stay_small() {
    let env = Env::new();
    let server = env.start_server("srv");
    let token = env.token(&server, "team/huge", true);
    env.login(&server, &token);
    let repo = env.repo("r", &["*.bin"]);
    let huge = repo.join("huge.bin");
    write_content(&huge, 5, 4 << 30);
    let expected = b3(&huge);
    env.commit_all(&repo, "huge");
    env.git(
        &repo,
        &["remote", "add", "origin", &server.url("team/huge")],
    );

    let push_kib = peak_rss_kib(&env, &repo, &["push", "-q", "origin", "main"]);
    assert!(push_kib < LIMIT_KIB, "git push peaked at {push_kib} KiB");
    // Free the disk before the clone writes another 8 GiB (store and work tree).
    fs::remove_dir_all(&repo).unwrap();

    let url = server.url("team/huge");
    let clone_kib = peak_rss_kib(&env, env.tmp.path(), &["clone", "-q", &url, "c"]);
    assert!(clone_kib < LIMIT_KIB, "git clone peaked at {clone_kib} KiB");
    let clone = env.path("c");
    assert_eq!(b3(&clone.join("huge.bin")), expected, "content after clone");
    env.assert_clean(&clone);
    eprintln!("peak RSS: push {push_kib} KiB, clone {clone_kib} KiB");
}
