//! Ctrl-C during `git dits checkout` stops cleanly: no temp file left in the work tree, the
//! pointer still in place, and a second run finishes the job.
#![allow(clippy::unwrap_used)] // a panic is how a test reports failure

use std::fs;
use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn interrupted_checkout_leaves_no_temp_files() {
    let env = Env::new();
    let repo = env.repo("r", &["*.bin"]);
    let f = repo.join("big.bin");
    write_content(&f, 9, 1 << 30);
    let expected = b3(&f);
    env.commit_all(&repo, "big");
    fs::remove_file(&f).unwrap();
    env.run_ok(
        env.cmd(&repo, "git")
            .args(["checkout", "--", "big.bin"])
            .env("GIT_DITS_SKIP_SMUDGE", "1"),
    );
    let pointer = fs::read(&f).unwrap();
    assert!(pointer.starts_with(b"dits-pointer v1\n"));

    let mut child = env
        .cmd(&repo, "git-dits")
        .args(["checkout"])
        .spawn()
        .unwrap();
    // Wait until the temp file exists, so the signal lands mid-write.
    let start = Instant::now();
    let temp_exists = || {
        fs::read_dir(&repo)
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().contains(".dits-"))
    };
    while !temp_exists() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(temp_exists(), "checkout never started writing");
    env.run_ok(
        env.cmd(&repo, "kill")
            .args(["-INT", &child.id().to_string()]),
    );
    let status = child.wait().unwrap();
    assert!(!status.success(), "an interrupted checkout reports failure");
    assert!(!temp_exists(), "temp file left behind");
    assert_eq!(fs::read(&f).unwrap(), pointer, "the pointer is untouched");

    env.dits(&repo, &["checkout"]);
    assert_eq!(b3(&f), expected);
    env.assert_clean(&repo);
}
