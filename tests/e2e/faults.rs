//! Faults under real git: damaged and missing store data, malformed pointers, a full disk and
//! a killed filter. Dits must report the damage precisely, never put wrong bytes in the work
//! tree, and leave a store that `fsck` passes once the fault is gone.
#![allow(clippy::unwrap_used)] // a panic is how a test reports failure

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const MIB: u64 = 1 << 20;

/// The 64-hex ids that follow "chunk " in `text`.
fn chunk_ids(text: &str) -> Vec<String> {
    text.split("chunk ")
        .skip(1)
        .filter_map(|s| s.get(..64))
        .filter(|id| {
            id.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .map(str::to_owned)
        .collect()
}

/// The work-tree file may be absent or still the pointer, but never other bytes than the
/// content the pointer names.
fn assert_never_wrong_bytes(env: &Env, repo: &Path, file: &str) {
    let path = repo.join(file);
    if !path.exists() {
        return;
    }
    let pointer = pointer_at(env, repo, &format!("HEAD:{file}"));
    if fs::read(&path).unwrap() == pointer.as_bytes() {
        return;
    }
    assert_eq!(
        b3(&path),
        pointer_id(env, repo, &format!("HEAD:{file}")),
        "{file} holds wrong bytes"
    );
}

fn pack_files(repo: &Path) -> Vec<PathBuf> {
    let mut packs: Vec<PathBuf> = fs::read_dir(repo.join(".git/dits/packs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .collect();
    packs.sort();
    packs
}

// 11. A flipped byte in a pack: fsck names file, chunk and reason; checkout never writes the
//     damaged bytes; `fsck --repair` with an intact copy in the work tree heals the store.
#[test]
fn corrupted_chunk_is_reported_and_repaired() {
    let env = Env::new();
    let repo = env.repo("r", &["*.bin"]);
    let f = repo.join("f.bin");
    write_content(&f, 200, 3 * MIB + 1);
    let hash = b3(&f);
    let intact = env.path("intact.bin");
    fs::copy(&f, &intact).unwrap();
    env.commit_all(&repo, "add");
    let chunks_of_f = chunk_ids(&env.git_stdout(&repo, &["log", "-p", "-1", "--", "f.bin"]));
    assert!(chunks_of_f.len() > 3, "{chunks_of_f:?}");

    let packs = pack_files(&repo);
    assert_eq!(packs.len(), 1, "{packs:?}");
    let mut bytes = fs::read(&packs[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    fs::write(&packs[0], &bytes).unwrap();

    let fsck = env.dits_output(&repo, &["fsck"]);
    let err = stderr_of(&fsck);
    assert_eq!(fsck.status.code(), Some(1), "{}", show(&fsck));
    assert!(
        err.contains("f.bin") && err.contains("does not match its BLAKE3 id"),
        "{err}"
    );
    let named = chunk_ids(&err);
    assert!(
        !named.is_empty() && named.iter().all(|c| chunks_of_f.contains(c)),
        "{err}"
    );

    // Streaming smudge: git fails and the file is not written with damaged bytes.
    fs::remove_file(&f).unwrap();
    let out = env.git_fails(&repo, &["checkout", "--", "f.bin"]);
    assert!(stderr_of(&out).contains("f.bin"), "{}", show(&out));
    assert_never_wrong_bytes(&env, &repo, "f.bin");
    // Deferred write (above the inline limit): the pointer stays and the failure is reported.
    env.git(&repo, &["config", "dits.smudge.inlineLimit", "1m"]);
    let _ = fs::remove_file(&f);
    let out = env.git_output(&repo, &["checkout", "--", "f.bin"]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(stderr_of(&out).contains("f.bin"), "{}", show(&out));
    assert_eq!(
        fs::read_to_string(&f).unwrap(),
        pointer_at(&env, &repo, "HEAD:f.bin"),
        "deferred checkout of damaged content leaves the pointer"
    );
    env.git(&repo, &["config", "--unset", "dits.smudge.inlineLimit"]);

    // An intact copy back in the work tree lets repair re-store the content.
    fs::copy(&intact, &f).unwrap();
    let repair = env.dits_output(&repo, &["fsck", "--repair"]);
    assert_eq!(repair.status.code(), Some(0), "{}", show(&repair));
    let fsck = env.dits_output(&repo, &["fsck"]);
    assert_eq!(fsck.status.code(), Some(0), "{}", show(&fsck));
    assert_eq!(env.cat_b3(&repo, "HEAD:f.bin"), hash);
    fs::remove_file(&f).unwrap();
    env.git(&repo, &["checkout", "--", "f.bin"]);
    assert_eq!(b3(&f), hash);
    env.assert_clean(&repo);
}

/// A repository where `*.ptr` files were committed as ordinary blobs holding broken pointer
/// texts, and `*.ptr` is tracked afterwards.
fn repo_with_malformed_pointers(env: &Env) -> (PathBuf, Vec<(&'static str, String)>) {
    let repo = env.repo("r", &["*.bin"]);
    let files = vec![
        ("trunc.ptr", "dits-pointer v1\nblake3 0123abc".to_owned()),
        (
            "v9.ptr",
            format!("dits-pointer v9\nblake3 {}\nsize 5\n", "0".repeat(64)),
        ),
        (
            "badhash.ptr",
            format!("dits-pointer v1\nblake3 {}\nsize 5\n", "z".repeat(64)),
        ),
        ("plain.ptr", "just some text, not a pointer\n".to_owned()),
    ];
    for (name, text) in &files {
        fs::write(repo.join(name), text).unwrap();
    }
    fs::write(repo.join("good.bin"), content(210, 300_000)).unwrap();
    env.commit_all(&repo, "blobs committed before *.ptr was tracked");
    env.dits(&repo, &["track", "-q", "*.ptr"]);
    // Only the attributes: `add -A` could re-clean the .ptr files (racy stat) into pointers.
    // Even this add may re-clean them, and clean refuses the v9 pointer (an unknown version
    // must not be wrapped as content); not required, git then keeps the raw blob as it is.
    env.git(
        &repo,
        &["-c", "filter.dits.required=false", "add", ".gitattributes"],
    );
    env.git(
        &repo,
        &[
            "-c",
            "filter.dits.required=false",
            "commit",
            "-q",
            "-m",
            "track *.ptr",
        ],
    );
    (repo, files)
}

// 12. Malformed pointers fail their own checkout with a message naming the path and the
//     problem; ordinary text passes through unchanged; other files are unaffected.
#[test]
fn malformed_pointers_fail_with_the_path() {
    let env = Env::new();
    let (repo, files) = repo_with_malformed_pointers(&env);
    let good = b3_bytes(&content(210, 300_000));
    for (name, _) in &files {
        fs::remove_file(repo.join(name)).unwrap();
    }
    fs::remove_file(repo.join("good.bin")).unwrap();

    for (name, why) in [
        ("trunc.ptr", "truncated"),
        ("v9.ptr", "\"v9\""),
        ("badhash.ptr", "`blake3`"),
    ] {
        let out = env.git_fails(&repo, &["checkout", "--", name]);
        let err = stderr_of(&out);
        assert!(
            err.contains(name) && err.contains(why),
            "{name}: {}",
            show(&out)
        );
        assert!(
            !repo.join(name).exists(),
            "{name} written despite the error"
        );
    }
    env.git(&repo, &["checkout", "--", "plain.ptr", "good.bin"]);
    assert_eq!(
        fs::read_to_string(repo.join("plain.ptr")).unwrap(),
        files[3].1
    );
    assert_eq!(b3(&repo.join("good.bin")), good);

    // One checkout of everything (filter not required, so git goes on after an error):
    // each malformed file is named, the others are written correctly.
    for (name, _) in &files {
        let _ = fs::remove_file(repo.join(name));
    }
    fs::remove_file(repo.join("good.bin")).unwrap();
    let out = env.git(
        &repo,
        &["-c", "filter.dits.required=false", "checkout", "--", "."],
    );
    let err = stderr_of(&out);
    for name in ["trunc.ptr", "v9.ptr", "badhash.ptr"] {
        assert!(err.contains(name), "{name} not named:\n{err}");
    }
    assert!(
        err.lines()
            .filter(|l| l.contains("error"))
            .all(|l| !l.contains("plain.ptr") && !l.contains("good.bin")),
        "{err}"
    );
    // Ordinary content under a Dits pattern is said once, as such.
    assert!(
        err.contains("ordinary Git blobs, not Dits pointers: plain.ptr"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(repo.join("plain.ptr")).unwrap(),
        files[3].1
    );
    assert_eq!(b3(&repo.join("good.bin")), good);
}

// 12b. Messages from the filter are plain text when stderr is not a terminal.
#[test]
fn filter_messages_have_no_terminal_escapes() {
    let env = Env::new();
    let (repo, _) = repo_with_malformed_pointers(&env);
    fs::remove_file(repo.join("v9.ptr")).unwrap();
    let out = env.git_fails(&repo, &["checkout", "--", "v9.ptr"]);
    assert!(!stderr_of(&out).contains('\x1b'), "{:?}", stderr_of(&out));
}

// 13. A missing manifest: the checkout fails, naming the file and the cause (unless
//     dits.skipDownloadErrors, which leaves the pointer and says so); status and ls-files say
//     it is missing, fsck fails; files whose content is present are unaffected.
#[test]
fn missing_manifest_fails_the_checkout_or_leaves_the_pointer_when_asked() {
    let env = Env::new();
    let repo = env.repo("r", &["*.bin"]);
    write_content(&repo.join("a.bin"), 220, 300 * 1024);
    write_content(&repo.join("b.bin"), 221, 300 * 1024);
    env.commit_all(&repo, "add");
    let (a_id, b_hash) = (
        pointer_id(&env, &repo, "HEAD:a.bin"),
        b3(&repo.join("b.bin")),
    );
    fs::remove_file(
        repo.join(".git/dits/manifests")
            .join(&a_id[..2])
            .join(&a_id[2..]),
    )
    .unwrap();
    fs::remove_file(repo.join("a.bin")).unwrap();
    fs::remove_file(repo.join("b.bin")).unwrap();

    let out = env.git_fails(&repo, &["checkout", "--", "."]);
    let err = stderr_of(&out);
    assert!(
        err.contains("1 file(s) could not be checked out: a.bin") && err.contains(&a_id),
        "{err}"
    );
    assert!(err.contains("dits.skipDownloadErrors"), "{err}");
    let out = env.git(
        &repo,
        &["-c", "dits.skipDownloadErrors=true", "checkout", "--", "."],
    );
    let err = stderr_of(&out);
    assert!(
        err.contains("1 file(s) left as pointers (dits.skipDownloadErrors): a.bin"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(repo.join("a.bin")).unwrap(),
        pointer_at(&env, &repo, "HEAD:a.bin")
    );
    assert_eq!(b3(&repo.join("b.bin")), b_hash);
    env.assert_clean(&repo);

    let status = env.dits_stdout(&repo, &["status"]);
    assert!(status.contains("Missing locally:  1"), "{status}");
    assert!(status.contains("  missing  a.bin ("), "{status}");
    let listed = env.dits_stdout(&repo, &["ls-files"]);
    let line = |f: &str| {
        listed
            .lines()
            .find(|l| l.ends_with(f))
            .unwrap_or("")
            .to_owned()
    };
    assert!(
        line("a.bin").contains("missing") && line("b.bin").contains("present"),
        "{listed}"
    );

    let fsck = env.dits_output(&repo, &["fsck"]);
    assert_eq!(fsck.status.code(), Some(1), "{}", show(&fsck));
    assert!(stderr_of(&fsck).contains("a.bin") && stderr_of(&fsck).contains(&a_id));
    let checkout = env.dits_output(&repo, &["checkout"]);
    assert_eq!(checkout.status.code(), Some(1), "{}", show(&checkout));
    assert!(
        stderr_of(&checkout).contains("a.bin"),
        "{}",
        show(&checkout)
    );
    env.assert_clean(&repo);
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Unmounts on drop, so a failing test does not leave a mount behind.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

// 14. The store's disk fills up during `git add`: the add fails naming the file and saying to
//     free space; nothing already stored changes, and earlier content still round-trips.
#[test]
fn disk_full_during_add() {
    if !is_root() {
        eprintln!("SKIPPED: disk_full_during_add needs root to mount a tmpfs");
        return;
    }
    let env = Env::new();
    let repo = env.repo("r", &["*.bin"]);
    let store = repo.join(".git/dits");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=40m", "tmpfs"])
        .arg(&store)
        .output()
        .unwrap();
    if !mounted.status.success() {
        eprintln!(
            "SKIPPED: disk_full_during_add cannot mount a tmpfs\n{}",
            show(&mounted)
        );
        return;
    }
    let _mount = Mount(store.clone());

    let a = repo.join("a.bin");
    write_content(&a, 230, 2 * MIB);
    let a_hash = b3(&a);
    env.commit_all(&repo, "a");
    let before = store_listing(&store);

    write_content(&repo.join("big.bin"), 231, 60 * MIB);
    let out = env.git_fails(&repo, &["add", "big.bin"]);
    let err = stderr_of(&out);
    assert!(
        err.contains("big.bin") && err.contains("free disk space"),
        "{}",
        show(&out)
    );
    assert_eq!(
        store_listing(&store),
        before,
        "the failed add left data in the store"
    );
    assert_eq!(env.git_stdout(&repo, &["ls-files", "big.bin"]), "");

    let fsck = env.dits_output(&repo, &["fsck"]);
    assert_eq!(fsck.status.code(), Some(0), "{}", show(&fsck));
    fs::remove_file(&a).unwrap();
    env.git(&repo, &["checkout", "--", "a.bin"]);
    assert_eq!(b3(&a), a_hash);
    assert_eq!(env.cat_b3(&repo, "HEAD:a.bin"), a_hash);
    env.assert_clean(&repo);
}

/// Every file under `dir` with its size.
fn store_listing(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                todo.push(e.path());
            } else {
                out.push((e.path(), meta.len()));
            }
        }
    }
    out.sort();
    out
}

// 15. The filter is killed with SIGKILL in the middle of storing a large file: the store
//     stays consistent (fsck passes) and a retry stores and restores the file exactly.
#[test]
fn filter_killed_mid_add() {
    let env = Env::new();
    let repo = env.repo("r", &["*.bin"]);
    let big = repo.join("big.bin");
    let len = 64 * MIB;
    write_content(&big, 240, len);
    let hash = b3(&big);
    // The store exists before the add, so its pack shows up as soon as the filter writes.
    env.dits(&repo, &["fsck", "-q"]);

    let mut add = env
        .cmd(&repo, "git")
        .args(["add", "big.bin"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let killed = loop {
        assert!(
            add.try_wait().unwrap().is_none(),
            "git add finished before the filter could be killed; use a larger file"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no pack appeared"
        );
        let writing = fs::read_dir(repo.join(".git/dits/packs"))
            .unwrap()
            .flatten()
            .any(|e| e.metadata().is_ok_and(|m| m.len() > 4 * MIB));
        let filters = descendants_named(add.id(), "dits-filter");
        if writing && !filters.is_empty() {
            for pid in &filters {
                Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status()
                    .unwrap();
            }
            break filters;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = add.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "git add survived killing {killed:?}\n{}",
        show(&out)
    );
    assert_eq!(
        env.git_stdout(&repo, &["ls-files", "big.bin"]),
        "",
        "nothing staged"
    );

    let fsck = env.dits_output(&repo, &["fsck"]);
    assert_eq!(fsck.status.code(), Some(0), "{}", show(&fsck));

    env.git(&repo, &["add", "big.bin"]);
    env.git(&repo, &["commit", "-q", "-m", "big"]);
    assert_eq!(pointer_id(&env, &repo, "HEAD:big.bin"), hash);
    fs::remove_file(&big).unwrap();
    env.git(&repo, &["checkout", "--", "big.bin"]);
    assert_eq!(b3(&big), hash);
    env.assert_clean(&repo);
    let fsck = env.dits_output(&repo, &["fsck"]);
    assert_eq!(fsck.status.code(), Some(0), "{}", show(&fsck));
}

// 16. A repository whose git dir is elsewhere (`git init --separate-git-dir`): the hooks git
//     runs must find the work tree, so a plain checkout succeeds.
#[test]
fn separate_git_dir_checkout() {
    let env = Env::new();
    let work = env.path("work");
    fs::create_dir_all(&work).unwrap();
    let gitdir = env.path("gitdir");
    env.git(
        &work,
        &["init", "-q", "--separate-git-dir", gitdir.to_str().unwrap()],
    );
    env.dits(&work, &["install", "-q"]);
    env.dits(&work, &["track", "-q", "*.bin"]);
    let f = work.join("f.bin");
    write_content(&f, 250, MIB);
    let hash = b3(&f);
    env.commit_all(&work, "add");
    fs::remove_file(&f).unwrap();
    env.git(&work, &["checkout", "--", "f.bin"]);
    assert_eq!(b3(&f), hash);
    env.assert_clean(&work);
}
