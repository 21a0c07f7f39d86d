//! Track, add, commit, edit, and get every version back byte for byte through real git.
#![allow(clippy::unwrap_used)] // a panic is how a test reports failure

use std::fs;

use crate::support::*;

fn history_round_trip(git: &str) {
    let env = Env::with_git(std::path::Path::new(git));
    let repo = env.repo("r", &["*.bin", "*.mov"]);
    let clip = repo.join("clip.bin");
    let mut versions = Vec::new();
    // v1: new file; v2: 1 MiB overwritten in the middle; v3: 100 bytes inserted at the front.
    let mut data = content(1, 3 * 1024 * 1024 + 333);
    for v in 0..3 {
        match v {
            1 => data[1_500_000..1_500_000 + (1 << 20)].copy_from_slice(&content(2, 1 << 20)),
            2 => {
                data.splice(0..0, content(3, 100));
            }
            _ => {}
        }
        fs::write(&clip, &data).unwrap();
        fs::write(repo.join("notes.txt"), format!("version {v}\n")).unwrap();
        env.commit_all(&repo, &format!("v{v}"));
        env.assert_clean(&repo);
        versions.push((
            env.git_stdout(&repo, &["rev-parse", "HEAD"])
                .trim()
                .to_owned(),
            b3_bytes(&data),
        ));
    }
    // Git stores the pointer, whose blake3 line is what b3sum prints for the content.
    let pointer = pointer_at(&env, &repo, "HEAD:clip.bin");
    assert!(pointer.starts_with("dits-pointer v1\n"), "{pointer}");
    assert!(
        pointer.contains(&format!("blake3 {}\n", versions[2].1)),
        "{pointer}"
    );
    assert!(pointer.len() < 200);
    // Every earlier version comes back exactly, and git sees nothing modified.
    for (commit, hash) in versions.iter().rev() {
        env.git(&repo, &["checkout", "-q", commit]);
        assert_eq!(&b3(&clip), hash, "content at {commit}");
        env.assert_clean(&repo);
    }
    env.git(&repo, &["checkout", "-q", "main"]);
    assert_eq!(b3(&clip), versions[2].1);
    // Edits stored only what changed: far less than three copies.
    let store: u64 = walkdir(&repo.join(".git/dits/packs"));
    assert!(
        store < 3 * 1024 * 1024 + 1024 * 1024 + 600 * 1024,
        "store {store} bytes"
    );
    let fsck = env.dits(&repo, &["fsck"]);
    assert!(String::from_utf8_lossy(&fsck.stderr).contains("no problems"));
}

fn walkdir(dir: &std::path::Path) -> u64 {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

#[test]
fn history_round_trip_git_2_47() {
    history_round_trip(GITS[0]);
}

#[test]
fn history_round_trip_git_2_39() {
    history_round_trip(GITS[1]);
}

#[test]
fn empty_and_tiny_files_and_plain_files_alongside() {
    let env = Env::new();
    let repo = env.repo("r", &["*.bin"]);
    fs::write(repo.join("empty.bin"), b"").unwrap();
    fs::write(repo.join("tiny.bin"), b"x").unwrap();
    fs::write(repo.join("code.rs"), b"fn main() {}\n").unwrap();
    env.commit_all(&repo, "small");
    // Empty stays empty (nothing to store); tiny becomes a pointer; code is untouched.
    assert_eq!(pointer_at(&env, &repo, "HEAD:empty.bin"), "");
    assert!(pointer_at(&env, &repo, "HEAD:tiny.bin").starts_with("dits-pointer v1"));
    assert_eq!(pointer_at(&env, &repo, "HEAD:code.rs"), "fn main() {}\n");
    for f in ["empty.bin", "tiny.bin", "code.rs"] {
        fs::remove_file(repo.join(f)).unwrap();
    }
    env.git(&repo, &["checkout", "--", "."]);
    assert_eq!(fs::read(repo.join("empty.bin")).unwrap(), b"");
    assert_eq!(fs::read(repo.join("tiny.bin")).unwrap(), b"x");
    env.assert_clean(&repo);
}

#[test]
fn odd_paths_round_trip() {
    let env = Env::new();
    let repo = env.repo("r", &["*.bin"]);
    let names = [
        "with space.bin",
        "quote\"d.bin",
        "new\nline.bin",
        "ünïcødé 映像.bin",
        "-dash.bin",
    ];
    let dir = repo.join("sub dir");
    fs::create_dir_all(&dir).unwrap();
    for (i, n) in names.iter().enumerate() {
        fs::write(dir.join(n), content(10 + i as u64, 100_000 + i)).unwrap();
    }
    env.commit_all(&repo, "odd");
    let listed = env.dits_stdout(&repo, &["ls-files"]);
    assert_eq!(listed.lines().count(), names.len(), "{listed}");
    fs::remove_dir_all(&dir).unwrap();
    env.git(&repo, &["checkout", "--", "."]);
    for (i, n) in names.iter().enumerate() {
        assert_eq!(
            fs::read(dir.join(n)).unwrap(),
            content(10 + i as u64, 100_000 + i),
            "{n}"
        );
    }
    env.assert_clean(&repo);
}

/// `install --global` configures the user, not the repository it happens to run in.
#[test]
fn global_install_writes_no_repository_hooks() {
    let env = Env::new();
    let dir = env.path("plain");
    fs::create_dir_all(&dir).unwrap();
    env.git(&dir, &["init", "-q"]);
    env.dits(&dir, &["install", "--global", "-q"]);
    let global = fs::read_to_string(env.home.join(".gitconfig")).unwrap();
    assert!(global.contains("process = dits-filter process"), "{global}");
    assert!(!dir.join(".git/hooks/post-checkout").exists());
    assert!(!dir.join(".git/hooks/post-merge").exists());
    assert!(!dir.join(".git/dits").exists());
}

/// Commands work from a subdirectory with paths relative to it, and `| head` ends quietly.
#[test]
fn subdirectory_paths_and_closed_stdout() {
    let env = Env::new();
    let repo = env.repo("r", &["*.bin"]);
    let sub = repo.join("shots/day1");
    fs::create_dir_all(&sub).unwrap();
    for i in 0..30 {
        fs::write(
            sub.join(format!("take{i:02}.bin")),
            content(400 + i, 50_000),
        )
        .unwrap();
    }
    fs::write(repo.join("other.bin"), content(500, 50_000)).unwrap();
    env.commit_all(&repo, "shots");
    for p in ["shots", "other.bin"] {
        let path = repo.join(p);
        if path.is_dir() {
            fs::remove_dir_all(&path).unwrap()
        } else {
            fs::remove_file(&path).unwrap()
        }
    }
    env.run_ok(
        env.cmd(&repo, "git")
            .args(["checkout", "--", "."])
            .env("GIT_DITS_SKIP_SMUDGE", "1"),
    );
    fs::create_dir_all(&sub).unwrap();
    // From inside shots/, "day1" means shots/day1 and only that.
    env.dits(&repo.join("shots"), &["checkout", "day1"]);
    assert_eq!(
        fs::read(sub.join("take07.bin")).unwrap(),
        content(407, 50_000)
    );
    assert!(fs::read(repo.join("other.bin"))
        .unwrap()
        .starts_with(b"dits-pointer v1\n"));
    let shown = env.dits_stdout(&sub, &["pointer", "take07.bin"]);
    assert!(shown.contains(&b3_bytes(&content(407, 50_000))), "{shown}");
    // A reader that stops early must not make git-dits panic.
    let out = env
        .cmd(&repo, "sh")
        .args(["-c", "git dits ls-files | head -1; exit 0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// After Dits writes a large file, `git status` must not hash it again: the file is not
/// "racily clean" (its mtime is older than the index), so git trusts the stat data and never
/// starts the filter.
#[test]
fn status_after_a_deferred_checkout_does_not_rehash() {
    let env = Env::new();
    let repo = deferred_repo(&env, 600, 3 << 20);
    fs::remove_file(repo.join("big.bin")).unwrap();
    env.git(&repo, &["checkout", "--", "big.bin"]);
    let out = env.run_ok(
        env.cmd(&repo, "git")
            .args(["status", "--porcelain", "--untracked-files=no"])
            .env("GIT_TRACE", "1"),
    );
    assert!(out.stdout.is_empty(), "{}", show(&out));
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(
        !trace.contains("dits-filter"),
        "git status ran the filter:\n{trace}"
    );
    assert_eq!(
        fs::read(repo.join("big.bin")).unwrap(),
        content(600, 3 << 20)
    );
}

/// A repository where Dits writes files over 1 MiB itself, after git's checkout, with
/// `big.bin` (`len` bytes of `content(seed, ..)`) committed.
fn deferred_repo(env: &Env, seed: u64, len: usize) -> std::path::PathBuf {
    let repo = env.repo("r", &["*.bin"]);
    env.git(&repo, &["config", "dits.smudge.inlineLimit", "1m"]);
    fs::write(repo.join("big.bin"), content(seed, len)).unwrap();
    env.commit_all(&repo, "big");
    repo
}

/// The index learns the written file's stat data straight from Dits: no `git update-index`,
/// so git does not read the whole file a second time to re-clean it.
#[test]
fn deferred_checkout_records_stat_without_recleaning() {
    let env = Env::new();
    let repo = deferred_repo(&env, 601, 3 << 20);
    fs::write(repo.join("small.bin"), content(602, 1000)).unwrap();
    env.commit_all(&repo, "small");
    fs::remove_file(repo.join("big.bin")).unwrap();
    // Every git process, the ones Dits runs included, logs its command line to this file.
    let trace_file = env.path("trace2.json");
    env.run_ok(
        env.cmd(&repo, "git")
            .args(["checkout", "--", "big.bin"])
            .env("GIT_TRACE2_EVENT", &trace_file),
    );
    let trace = fs::read_to_string(&trace_file).unwrap();
    assert!(
        trace.contains("post-checkout") && !trace.contains("update-index"),
        "expected Dits to hydrate without `git update-index`:\n{trace}"
    );
    let debug = env.git_stdout(&repo, &["ls-files", "--debug", "big.bin"]);
    assert!(
        debug.contains(&format!("size: {}", 3 << 20)),
        "index entry lacks the real size:\n{debug}"
    );
    // Git judges entries not older than the index (to the second) by content: ours must be
    // older. small.bin may well be racy, and git may re-clean it; never big.bin.
    let second = |p: &std::path::Path| {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(p).unwrap().mtime()
    };
    assert!(second(&repo.join("big.bin")) < second(&repo.join(".git/index")));
    let out = env.run_ok(
        env.cmd(&repo, "git")
            .args(["status", "--porcelain", "--untracked-files=no"])
            .env("DITS_LOG", "debug"),
    );
    assert!(out.stdout.is_empty(), "{}", show(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("path=big.bin"),
        "git status re-cleaned big.bin:\n{}",
        show(&out)
    );
    assert_eq!(b3(&repo.join("big.bin")), b3_bytes(&content(601, 3 << 20)));
    // The index is still one git reads whole: the staged blobs are unchanged.
    env.git(&repo, &["diff", "--cached", "--exit-code"]);
    env.git(&repo, &["fsck", "--no-progress"]);
}

/// Indexes with parts the in-place update cannot carry over (split index, version 4,
/// untracked cache) are re-staged by git instead, and keep those parts.
#[test]
fn checkout_keeps_index_features_it_cannot_rewrite() {
    let env = Env::new();
    let repo = deferred_repo(&env, 603, 2 << 20);
    let cases: [(&[&str], &[u8]); 3] = [
        (&["update-index", "--index-version", "4"], b"DIRC\0\0\0\x04"),
        (&["update-index", "--split-index"], b"link"),
        (&["update-index", "--untracked-cache"], b"UNTR"),
    ];
    for (setup, marker) in cases {
        env.git(&repo, setup);
        env.git(&repo, &["status", "--porcelain"]);
        let has = |index: &[u8]| index.windows(marker.len()).any(|w| w == marker);
        assert!(
            has(&fs::read(repo.join(".git/index")).unwrap()),
            "{setup:?}"
        );
        fs::remove_file(repo.join("big.bin")).unwrap();
        env.git(&repo, &["checkout", "--", "big.bin"]);
        env.assert_clean(&repo);
        assert_eq!(b3(&repo.join("big.bin")), b3_bytes(&content(603, 2 << 20)));
        assert!(
            has(&fs::read(repo.join(".git/index")).unwrap()),
            "{setup:?}: the checkout dropped it from the index"
        );
    }
}
