//! Everyday Git workflows on repositories that mix code and Dits media: merges, stash, mv,
//! worktrees, concurrent adds, clones, skipped smudge, large-file checkouts, diffs, and the
//! track/install commands. Every step checks bytes (BLAKE3) and that `git status` is clean.
#![allow(clippy::unwrap_used)] // a panic is how a test reports failure

use std::fs;
use std::path::Path;
use std::process::Stdio;

use crate::support::*;

const MIB: u64 = 1 << 20;

fn rev(env: &Env, dir: &Path, spec: &str) -> String {
    env.git_stdout(dir, &["rev-parse", spec]).trim().to_owned()
}

// 1. Merges: media changed on different branches merges cleanly; the same file changed on
//    both sides is a conflict that keeps ours until the user picks theirs.
fn branches_and_merges(git: &str) {
    let env = Env::with_git(Path::new(git));
    let repo = env.repo("r", &["*.bin"]);
    let (a, b, code) = (repo.join("a.bin"), repo.join("b.bin"), repo.join("lib.rs"));
    write_content(&a, 1, 3 * MIB);
    write_content(&b, 2, 2 * MIB + 17);
    fs::write(&code, "fn a() {}\n").unwrap();
    env.commit_all(&repo, "base");
    let a_base = b3(&a);

    env.git(&repo, &["checkout", "-q", "-b", "feature"]);
    write_content(&a, 3, 3 * MIB + 5);
    fs::write(&code, "fn a() { b() }\nfn b() {}\n").unwrap();
    env.commit_all(&repo, "feature: new a.bin and code");
    let a_feature = b3(&a);

    env.git(&repo, &["checkout", "-q", "main"]);
    assert_eq!(b3(&a), a_base, "main's a.bin after switching back");
    env.assert_clean(&repo);
    write_content(&b, 4, 2 * MIB);
    env.commit_all(&repo, "main: new b.bin");
    let b_main = b3(&b);

    env.git(&repo, &["merge", "-q", "--no-edit", "feature"]);
    assert_eq!(b3(&a), a_feature, "a.bin from feature");
    assert_eq!(b3(&b), b_main, "b.bin from main");
    assert_eq!(
        fs::read_to_string(&code).unwrap(),
        "fn a() { b() }\nfn b() {}\n"
    );
    assert_eq!(
        pointer_at(&env, &repo, "HEAD:a.bin"),
        pointer_at(&env, &repo, "feature:a.bin")
    );
    env.assert_clean(&repo);

    // Both sides change a.bin: the merge driver reports a conflict and keeps ours.
    env.git(&repo, &["checkout", "-q", "-b", "theirs"]);
    write_content(&a, 5, 3 * MIB);
    env.commit_all(&repo, "theirs: a.bin");
    let a_theirs = b3(&a);
    env.git(&repo, &["checkout", "-q", "main"]);
    write_content(&a, 6, 3 * MIB);
    env.commit_all(&repo, "ours: a.bin");
    let a_ours = b3(&a);
    let out = env.git_fails(&repo, &["merge", "--no-edit", "theirs"]);
    let err = stderr_of(&out);
    assert!(
        err.contains("CONFLICT") && err.contains("a.bin"),
        "{}",
        show(&out)
    );
    assert_eq!(b3(&a), a_ours, "conflict keeps ours in the work tree");
    let unmerged = env.git_stdout(&repo, &["ls-files", "-u", "--", "a.bin"]);
    assert_eq!(unmerged.lines().count(), 3, "{unmerged}");

    env.git(&repo, &["checkout", "--theirs", "--", "a.bin"]);
    env.git(&repo, &["add", "a.bin"]);
    env.git(&repo, &["commit", "-q", "--no-edit"]);
    assert_eq!(b3(&a), a_theirs, "resolved to theirs");
    assert_eq!(
        pointer_at(&env, &repo, "HEAD:a.bin"),
        pointer_at(&env, &repo, "theirs:a.bin")
    );
    assert_eq!(b3(&b), b_main);
    env.assert_clean(&repo);
}

#[test]
fn branches_and_merges_git_2_47() {
    branches_and_merges(GITS[0]);
}

#[test]
fn branches_and_merges_git_2_39() {
    branches_and_merges(GITS[1]);
}

// 2. Stash and pop of modified media: both versions come back byte for byte, and the popped
//    modifications are unstaged work-tree changes exactly as before the stash.
fn stash_round_trip(inline_limit: Option<&str>) {
    let env = Env::new();
    let repo = env.repo("r", &["*.bin"]);
    if let Some(limit) = inline_limit {
        env.git(&repo, &["config", "dits.smudge.inlineLimit", limit]);
    }
    let (small, large) = (repo.join("s.bin"), repo.join("l.bin"));
    write_content(&small, 20, 512 * 1024);
    write_content(&large, 21, 3 * MIB + 3);
    env.commit_all(&repo, "base");
    let (small_v1, large_v1) = (b3(&small), b3(&large));
    write_content(&small, 22, 512 * 1024 + 9);
    write_content(&large, 23, 3 * MIB);
    let (small_v2, large_v2) = (b3(&small), b3(&large));

    env.git(&repo, &["stash", "-q"]);
    assert_eq!(
        (b3(&small), b3(&large)),
        (small_v1.clone(), large_v1.clone())
    );
    env.assert_clean(&repo);

    env.git(&repo, &["stash", "pop", "-q"]);
    assert_eq!((b3(&small), b3(&large)), (small_v2, large_v2));
    assert_eq!(env.porcelain(&repo), " M l.bin\n M s.bin\n");

    env.git(&repo, &["checkout", "--", "."]);
    assert_eq!((b3(&small), b3(&large)), (small_v1, large_v1));
    env.assert_clean(&repo);
}

#[test]
fn stash_and_pop_inline_files() {
    stash_round_trip(None);
}

#[test]
fn stash_and_pop_files_above_inline_limit() {
    stash_round_trip(Some("1m"));
}

// 3. `git mv` renames without touching the content: the same pointer blob, and both commits
//    check out to the same bytes.
#[test]
fn git_mv_keeps_the_pointer() {
    let env = Env::new();
    let repo = env.repo("r", &["*.bin"]);
    env.git(&repo, &["config", "dits.smudge.inlineLimit", "1m"]);
    fs::create_dir_all(repo.join("media")).unwrap();
    let old = repo.join("media/clip.bin");
    write_content(&old, 30, 4 * MIB + 1);
    let hash = b3(&old);
    env.commit_all(&repo, "add");
    fs::create_dir_all(repo.join("renamed")).unwrap();
    env.git(&repo, &["mv", "media/clip.bin", "renamed/clip2.bin"]);
    env.git(&repo, &["commit", "-q", "-m", "mv"]);
    let new = repo.join("renamed/clip2.bin");
    assert_eq!(
        rev(&env, &repo, "HEAD~1:media/clip.bin"),
        rev(&env, &repo, "HEAD:renamed/clip2.bin"),
        "git mv must keep the same blob"
    );
    assert_eq!(b3(&new), hash);
    assert!(env
        .dits_stdout(&repo, &["ls-files"])
        .contains("renamed/clip2.bin"));
    env.assert_clean(&repo);

    env.git(&repo, &["checkout", "-q", "HEAD~1"]);
    assert_eq!(b3(&old), hash);
    assert!(!new.exists());
    env.assert_clean(&repo);
    env.git(&repo, &["checkout", "-q", "main"]);
    assert_eq!(b3(&new), hash);
    assert!(!old.exists());
    env.assert_clean(&repo);
}

// 4. A second worktree hydrates media from the one shared store and its commits are
//    readable from the main worktree.
#[test]
fn worktrees_share_one_store() {
    let env = Env::new();
    let repo = env.repo("r", &["*.bin"]);
    env.git(&repo, &["config", "dits.smudge.inlineLimit", "1m"]);
    let (big, small) = (repo.join("big.bin"), repo.join("small.bin"));
    write_content(&big, 40, 3 * MIB);
    write_content(&small, 41, 200 * 1024);
    env.commit_all(&repo, "base");

    let wt = env.path("wt");
    env.git(
        &repo,
        &["worktree", "add", "-q", wt.to_str().unwrap(), "-b", "side"],
    );
    assert_eq!(
        b3(&wt.join("big.bin")),
        b3(&big),
        "deferred file in the new worktree"
    );
    assert_eq!(b3(&wt.join("small.bin")), b3(&small));
    env.assert_clean(&wt);
    assert!(
        wt.join(".git").is_file(),
        "a linked worktree has a .git file"
    );
    assert!(
        !repo.join(".git/worktrees/wt/dits").exists(),
        "the store lives only in the common git dir"
    );

    let added = wt.join("from-wt.bin");
    write_content(&added, 42, 2 * MIB + 11);
    write_content(&wt.join("big.bin"), 43, 3 * MIB);
    env.commit_all(&wt, "commit in the worktree");
    env.assert_clean(&wt);
    assert_eq!(env.cat_b3(&repo, "side:from-wt.bin"), b3(&added));
    assert_eq!(env.cat_b3(&repo, "side:big.bin"), b3(&wt.join("big.bin")));
    let listed = env.dits_stdout(&repo, &["ls-files", "side"]);
    assert!(
        listed
            .lines()
            .any(|l| l.contains("from-wt.bin") && l.contains("present")),
        "{listed}"
    );
    // The main worktree is untouched by the other's commit.
    assert_eq!(b3(&big), pointer_id(&env, &repo, "main:big.bin"));
    env.assert_clean(&repo);
}

// 5. Two processes add different large files into the same store at the same time (two
//    worktrees, so two indexes); a file with the same content is added by both at once.
#[test]
fn concurrent_adds_from_two_worktrees() {
    let env = Env::new();
    let repo = env.repo("r", &["*.bin"]);
    fs::write(repo.join("README"), "base\n").unwrap();
    env.commit_all(&repo, "base");
    let wt = env.path("wt");
    env.git(
        &repo,
        &["worktree", "add", "-q", wt.to_str().unwrap(), "-b", "side"],
    );
    write_content(&repo.join("a.bin"), 50, 8 * MIB);
    write_content(&wt.join("b.bin"), 51, 8 * MIB + 3);
    write_content(&repo.join("shared.bin"), 52, 4 * MIB);
    write_content(&wt.join("shared.bin"), 52, 4 * MIB);

    let first = env
        .cmd(&repo, "git")
        .args(["add", "a.bin", "shared.bin"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let second = env
        .cmd(&wt, "git")
        .args(["add", "b.bin", "shared.bin"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for child in [first, second] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "concurrent git add failed\n{}",
            show(&out)
        );
    }
    env.git(&repo, &["commit", "-q", "-m", "a"]);
    env.git(&wt, &["commit", "-q", "-m", "b"]);

    let fsck = env.dits_output(&repo, &["fsck"]);
    assert_eq!(fsck.status.code(), Some(0), "{}", show(&fsck));
    assert!(stderr_of(&fsck).contains("no problems"), "{}", show(&fsck));
    assert_eq!(
        env.cat_b3(&repo, "main:a.bin"),
        b3_bytes(&content(50, 8 << 20))
    );
    assert_eq!(
        env.cat_b3(&repo, "side:b.bin"),
        b3_bytes(&content(51, (8 << 20) + 3))
    );
    assert_eq!(
        env.cat_b3(&wt, "main:shared.bin"),
        b3_bytes(&content(52, 4 << 20))
    );
    for (dir, f, seed, len) in [
        (&repo, "a.bin", 50, 8 * MIB),
        (&wt, "b.bin", 51, 8 * MIB + 3),
    ] {
        fs::remove_file(dir.join(f)).unwrap();
        fs::remove_file(dir.join("shared.bin")).unwrap();
        env.git(dir, &["checkout", "--", "."]);
        assert_eq!(
            b3(&dir.join(f)),
            b3_bytes(&content(seed, len as usize)),
            "{f}"
        );
        assert_eq!(b3(&dir.join("shared.bin")), b3_bytes(&content(52, 4 << 20)));
        env.assert_clean(dir);
    }
}

// 6. Cloning a local repository: the clone's filter copies the content from the source's store.
#[test]
fn clone_of_a_local_repository_hydrates_media() {
    let env = Env::new();
    let src = env.repo("src", &["*.bin"]);
    fs::create_dir_all(src.join("sub")).unwrap();
    write_content(&src.join("a.bin"), 60, 3 * MIB);
    write_content(&src.join("sub/b.bin"), 61, MIB + 1);
    fs::write(src.join("code.rs"), "fn main() {}\n").unwrap();
    env.commit_all(&src, "media");
    let check = |dst: &Path| {
        for f in ["a.bin", "sub/b.bin", "code.rs"] {
            assert_eq!(
                b3(&dst.join(f)),
                b3(&src.join(f)),
                "{f} in {}",
                dst.display()
            );
        }
        env.dits(dst, &["install", "-q"]);
        env.assert_clean(dst);
    };

    // A plain path, with the filter given on the command line.
    let plain = env.path("plain");
    env.git(
        env.tmp.path(),
        &[
            "-c",
            "filter.dits.process=dits-filter process",
            "-c",
            "filter.dits.required=true",
            "clone",
            "-q",
            src.to_str().unwrap(),
            plain.to_str().unwrap(),
        ],
    );
    check(&plain);

    // A file:// URL, with Dits installed in the user's global config, and a.bin above the
    // inline limit so that Dits writes it after git.
    env.dits(env.tmp.path(), &["install", "--global", "-q"]);
    let url = format!("file://{}", src.display());
    let viaurl = env.path("url");
    env.git(
        env.tmp.path(),
        &[
            "-c",
            "dits.smudge.inlineLimit=1m",
            "clone",
            "-q",
            &url,
            viaurl.to_str().unwrap(),
        ],
    );
    check(&viaurl);

    // The content was copied into the clone's own store: it survives the source going away.
    let fsck = env.dits_output(&viaurl, &["fsck"]);
    assert_eq!(fsck.status.code(), Some(0), "{}", show(&fsck));
    fs::rename(&src, env.path("src-moved")).unwrap();
    fs::remove_file(viaurl.join("a.bin")).unwrap();
    env.git(&viaurl, &["checkout", "--", "a.bin"]);
    assert_eq!(b3(&viaurl.join("a.bin")), b3(&env.path("src-moved/a.bin")));
    env.assert_clean(&viaurl);
}

/// A repository with media in nested directories, for the skip-smudge tests.
fn nested_media(env: &Env) -> (std::path::PathBuf, Vec<&'static str>) {
    let repo = env.repo("r", &["*.bin"]);
    let files = vec![
        "top.bin",
        "sub/dir/a.bin",
        "sub/dir/deeper/c.bin",
        "other/b.bin",
    ];
    for (i, f) in files.iter().enumerate() {
        let p = repo.join(f);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        write_content(&p, 70 + i as u64, 600 * 1024 + i as u64);
    }
    fs::write(repo.join("code.rs"), "fn main() {}\n").unwrap();
    env.commit_all(&repo, "media");
    (repo, files)
}

fn assert_pointers(env: &Env, repo: &Path, files: &[&str]) {
    for f in files {
        assert_eq!(
            fs::read_to_string(repo.join(f)).unwrap(),
            pointer_at(env, repo, &format!("HEAD:{f}")),
            "{f} should be the pointer"
        );
    }
}

// 7. GIT_DITS_SKIP_SMUDGE leaves pointers that git sees as unmodified; `git dits checkout`
//    writes them later from the local store.
fn skip_smudge_then_checkout(git: &str) {
    let env = Env::with_git(Path::new(git));
    let (repo, files) = nested_media(&env);
    let hashes: Vec<String> = files.iter().map(|f| b3(&repo.join(f))).collect();

    // Switching branches with skip-smudge: the files that differ become pointers.
    env.git(&repo, &["checkout", "-q", "-b", "v2"]);
    for (i, f) in files.iter().enumerate() {
        write_content(&repo.join(f), 80 + i as u64, 600 * 1024);
    }
    env.commit_all(&repo, "v2");
    env.run_ok(
        env.cmd(&repo, "git")
            .env("GIT_DITS_SKIP_SMUDGE", "1")
            .args(["checkout", "-q", "main"]),
    );
    assert_pointers(&env, &repo, &files);
    assert_eq!(
        fs::read_to_string(repo.join("code.rs")).unwrap(),
        "fn main() {}\n"
    );
    env.assert_clean(&repo);

    let status = env.dits_stdout(&repo, &["status"]);
    assert!(status.contains("Pointers only:    4"), "{status}");
    for f in &files {
        assert!(
            status.contains(&format!("  pointer  {f}\n")),
            "{f}:\n{status}"
        );
    }

    env.dits(&repo, &["checkout"]);
    for (f, h) in files.iter().zip(&hashes) {
        assert_eq!(&b3(&repo.join(f)), h, "{f}");
    }
    env.assert_clean(&repo);
    assert!(env
        .dits_stdout(&repo, &["status"])
        .contains("Pointers only:    0"));

    // Restoring deleted files with skip-smudge gives pointers too.
    fs::remove_dir_all(repo.join("sub")).unwrap();
    env.run_ok(
        env.cmd(&repo, "git")
            .env("GIT_DITS_SKIP_SMUDGE", "1")
            .args(["checkout", "--", "."]),
    );
    assert_pointers(&env, &repo, &files[1..3]);
    env.assert_clean(&repo);
    env.dits(&repo, &["checkout"]);
    assert_eq!(b3(&repo.join(files[1])), hashes[1]);
    assert_eq!(b3(&repo.join(files[2])), hashes[2]);
    env.assert_clean(&repo);

    // A skip-smudge clone holds pointers and is clean.
    let clone = env.path("clone");
    env.run_ok(
        env.cmd(env.tmp.path(), "git")
            .env("GIT_DITS_SKIP_SMUDGE", "1")
            .args(["-c", "filter.dits.process=dits-filter process"])
            .args(["-c", "filter.dits.required=true", "clone", "-q"])
            .arg(&repo)
            .arg(&clone),
    );
    env.dits(&clone, &["install", "-q"]);
    assert_pointers(&env, &clone, &files);
    env.assert_clean(&clone);
    assert!(env
        .dits_stdout(&clone, &["status"])
        .contains("Pointers only:    4"));
    env.dits(&clone, &["checkout"]);
    for (f, h) in files.iter().zip(&hashes) {
        assert_eq!(&b3(&clone.join(f)), h, "{f} in the clone");
    }
    env.assert_clean(&clone);
}

#[test]
fn skip_smudge_then_checkout_git_2_47() {
    skip_smudge_then_checkout(GITS[0]);
}

#[test]
fn skip_smudge_then_checkout_git_2_39() {
    skip_smudge_then_checkout(GITS[1]);
}

// 7b. `git dits checkout PATH` writes only the pointers under PATH.
#[test]
fn checkout_of_a_subtree_writes_only_that_subtree() {
    let env = Env::new();
    let (repo, files) = nested_media(&env);
    let hashes: Vec<String> = files.iter().map(|f| b3(&repo.join(f))).collect();
    for f in &files {
        fs::remove_file(repo.join(f)).unwrap();
    }
    env.run_ok(
        env.cmd(&repo, "git")
            .env("GIT_DITS_SKIP_SMUDGE", "1")
            .args(["checkout", "--", "."]),
    );
    assert_pointers(&env, &repo, &files);

    env.dits(&repo, &["checkout", "sub/dir"]);
    assert_eq!(b3(&repo.join(files[1])), hashes[1]);
    assert_eq!(b3(&repo.join(files[2])), hashes[2]);
    assert_pointers(&env, &repo, &[files[0], files[3]]);
    env.assert_clean(&repo);

    env.dits(&repo, &["checkout", "other/b.bin"]);
    assert_eq!(b3(&repo.join(files[3])), hashes[3]);
    assert_pointers(&env, &repo, &[files[0]]);
    env.assert_clean(&repo);
}

// 8. Files above dits.smudge.inlineLimit are written by Dits after git's checkout: restore,
//    switch and reset must give exact bytes and a clean status, with nothing left behind.
fn deferred_checkouts(git: &str) {
    let env = Env::with_git(Path::new(git));
    let repo = env.repo("r", &["*.bin"]);
    env.git(&repo, &["config", "dits.smudge.inlineLimit", "1m"]);
    let f = repo.join("f.bin");
    write_content(&f, 90, 5 * MIB);
    write_content(&repo.join("small.bin"), 91, 100 * 1024);
    env.commit_all(&repo, "v1");
    let v1 = b3(&f);

    fs::remove_file(&f).unwrap();
    env.git(&repo, &["checkout", "--", "f.bin"]);
    assert_eq!(b3(&f), v1, "restored by checkout -- f.bin");
    env.assert_clean(&repo);

    env.git(&repo, &["switch", "-q", "-c", "side"]);
    write_content(&f, 92, 5 * MIB + 7);
    env.commit_all(&repo, "v2");
    let v2 = b3(&f);
    env.git(&repo, &["switch", "-q", "main"]);
    assert_eq!(b3(&f), v1, "switch to main");
    env.assert_clean(&repo);
    env.git(&repo, &["switch", "-q", "side"]);
    assert_eq!(b3(&f), v2, "switch to side");
    env.assert_clean(&repo);
    env.git(&repo, &["reset", "-q", "--hard", "HEAD~1"]);
    assert_eq!(b3(&f), v1, "reset --hard HEAD~1");
    env.assert_clean(&repo);

    // No journal of pending files and no temp files beside the target are left over.
    let journal = repo.join(".git/dits-deferred");
    let pending = fs::read_dir(&journal).map(|d| d.count()).unwrap_or(0);
    assert_eq!(pending, 0, "leftover journals in {}", journal.display());
    let temps: Vec<String> = fs::read_dir(&repo)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".dits-"))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
}

#[test]
fn deferred_checkouts_git_2_47() {
    deferred_checkouts(GITS[0]);
}

#[test]
fn deferred_checkouts_git_2_39() {
    deferred_checkouts(GITS[1]);
}

// 9. `git diff` and `git log -p` show the Dits summary with per-chunk lines, so a small edit
//    shows as a few changed chunks rather than "Binary files differ".
#[test]
fn diff_and_log_show_chunk_summaries() {
    let env = Env::new();
    let repo = env.repo("r", &["*.bin"]);
    let f = repo.join("f.bin");
    let mut data = content(100, 2 * MIB as usize);
    fs::write(&f, &data).unwrap();
    env.commit_all(&repo, "add");
    data[MIB as usize..MIB as usize + 100].copy_from_slice(&content(101, 100));
    fs::write(&f, &data).unwrap();

    let check = |text: &str, what: &str| {
        assert!(!text.contains("Binary files"), "{what}:\n{text}");
        assert!(
            text.contains(" Dits file: 2.0 MiB (2097152 bytes)"),
            "{what}:\n{text}"
        );
        assert!(
            text.contains(&format!("+blake3 {}", b3_bytes(&data))),
            "{what}:\n{text}"
        );
        let removed = text.lines().filter(|l| l.starts_with("-chunk ")).count();
        let added = text.lines().filter(|l| l.starts_with("+chunk ")).count();
        assert!(
            (1..=3).contains(&removed) && (1..=3).contains(&added),
            "{what}:\n{text}"
        );
    };
    check(&env.git_stdout(&repo, &["diff"]), "git diff");
    env.commit_all(&repo, "edit");
    check(&env.git_stdout(&repo, &["log", "-p", "-1"]), "git log -p");
    let first = env.git_stdout(&repo, &["log", "-p", "HEAD~1", "-1"]);
    assert!(first.contains("+Dits file: 2.0 MiB"), "{first}");
    assert!(
        first.lines().filter(|l| l.starts_with("+chunk ")).count() > 3,
        "{first}"
    );
}

// 10a. track lists, is idempotent, untracks, and warns about committed ordinary blobs.
#[test]
fn track_and_untrack() {
    let env = Env::new();
    let repo = env.repo("r", &[]);
    let none = env.dits(&repo, &["track"]);
    assert_eq!(stdout_of(&none), "");
    assert!(
        stderr_of(&none).contains("No patterns tracked"),
        "{}",
        show(&none)
    );

    env.dits(&repo, &["track", "*.bin", "*.mov"]);
    assert_eq!(env.dits_stdout(&repo, &["track"]), "*.bin\n*.mov\n");
    let attrs = fs::read(repo.join(".gitattributes")).unwrap();
    let again = env.dits(&repo, &["track", "*.bin"]);
    assert!(
        stderr_of(&again).contains("already tracked"),
        "{}",
        show(&again)
    );
    assert_eq!(
        fs::read(repo.join(".gitattributes")).unwrap(),
        attrs,
        "idempotent"
    );

    env.dits(&repo, &["untrack", "*.mov"]);
    assert_eq!(env.dits_stdout(&repo, &["track"]), "*.bin\n");
    assert!(!fs::read_to_string(repo.join(".gitattributes"))
        .unwrap()
        .contains("*.mov"));

    // A file committed as an ordinary blob before its pattern was tracked.
    let psd = content(110, 300_000);
    fs::write(repo.join("old.psd"), &psd).unwrap();
    env.commit_all(&repo, "plain blob");
    let out = env.dits(&repo, &["track", "*.psd"]);
    let err = stderr_of(&out);
    assert!(
        err.contains("old.psd") && err.contains("--renormalize"),
        "{}",
        show(&out)
    );
    // Following the hint converts it.
    env.git(&repo, &["add", "--renormalize", "."]);
    env.git(&repo, &["commit", "-q", "-m", "renormalize"]);
    assert_eq!(pointer_id(&env, &repo, "HEAD:old.psd"), b3_bytes(&psd));
    assert_eq!(fs::read(repo.join("old.psd")).unwrap(), psd);
    env.assert_clean(&repo);
}

const KEYS: &[&str] = &[
    "filter.dits.process",
    "filter.dits.clean",
    "filter.dits.smudge",
    "filter.dits.required",
    "diff.dits.textconv",
    "merge.dits.driver",
];

// 10b. install is idempotent, leaves a foreign hook alone unless --force (keeping a backup),
//      and uninstall removes its config and hooks.
#[test]
fn install_hooks_and_uninstall() {
    let env = Env::new();
    let repo = env.path("r");
    fs::create_dir_all(&repo).unwrap();
    env.git(&repo, &["init", "-q"]);
    let hooks = repo.join(".git/hooks");
    let mine = "#!/bin/sh\necho my hook\n";
    fs::create_dir_all(&hooks).unwrap();
    fs::write(hooks.join("post-checkout"), mine).unwrap();

    let out = env.dits_output(&repo, &["install"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr_of(&out).contains("not a Dits hook"),
        "{}",
        show(&out)
    );
    assert_eq!(
        fs::read_to_string(hooks.join("post-checkout")).unwrap(),
        mine
    );
    assert!(fs::read_to_string(hooks.join("post-merge"))
        .unwrap()
        .contains("git dits hook"));

    env.dits(&repo, &["install", "--force"]);
    assert!(fs::read_to_string(hooks.join("post-checkout"))
        .unwrap()
        .contains("git dits hook"));
    assert_eq!(
        fs::read_to_string(hooks.join("post-checkout.pre-dits")).unwrap(),
        mine
    );

    env.dits(&repo, &["install"]);
    env.dits(&repo, &["install"]);
    for key in KEYS {
        let values = env.git_stdout(&repo, &["config", "--local", "--get-all", key]);
        assert_eq!(values.lines().count(), 1, "{key}: {values}");
    }
    assert_eq!(
        env.git_stdout(&repo, &["config", "filter.dits.process"]),
        "dits-filter process\n"
    );

    env.dits(&repo, &["uninstall"]);
    for key in KEYS {
        let out = env.git_output(&repo, &["config", "--get-all", key]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{key} still set\n{}",
            show(&out)
        );
    }
    assert!(
        !hooks.join("post-merge").exists(),
        "Dits' own hook is removed"
    );
    assert_eq!(
        fs::read_to_string(hooks.join("post-checkout")).unwrap(),
        mine,
        "the user's hook that --force set aside is put back"
    );
    assert!(!hooks.join("post-checkout.pre-dits").exists());
    env.dits(&repo, &["uninstall"]);
}
