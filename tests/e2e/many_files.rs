//! Studio-sized trees: thousands of small tracked files in nested folders, and what a
//! `kill -9` of the filter does to them at several points of a many-file `git add`, including
//! after git has written its index but before the filter's batch was flushed.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// Writes `n` files of 2–40 KB under `a<i%8>/b<(i/8)%8>/` and returns their BLAKE3 by path.
fn write_tree(repo: &Path, n: usize, seed: u64) -> HashMap<PathBuf, String> {
    let mut out = HashMap::new();
    for i in 0..n {
        let rel = PathBuf::from(format!("a{}/b{}/f{i}.bin", i % 8, (i / 8) % 8));
        let path = repo.join(&rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let len = 2_000 + (i * 7_919) % 38_000;
        fs::write(&path, content(seed + i as u64, len)).unwrap();
        out.insert(rel, b3(&path));
    }
    out
}

fn assert_tree(repo: &Path, want: &HashMap<PathBuf, String>) {
    for (rel, hash) in want {
        assert_eq!(&b3(&repo.join(rel)), hash, "{}", rel.display());
    }
}

fn files_under(dir: &Path) -> usize {
    let mut n = 0;
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(e.path()),
                Ok(_) => n += 1,
                Err(_) => {}
            }
        }
    }
    n
}

fn kill_9(pids: &[u32]) {
    for pid in pids {
        Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
    }
}

/// Every file staged or committed is backed by content that verifies, and the work tree can
/// be rebuilt from the store alone.
fn assert_store_backs_everything(env: &Env, repo: &Path) {
    let fsck = env.dits_output(repo, &["fsck"]);
    assert_eq!(fsck.status.code(), Some(0), "{}", show(&fsck));
}

#[test]
fn thousands_of_files_add_status_switch_and_checkout() {
    let env = Env::new();
    let repo = env.repo("r", &["*.bin"]);
    env.commit_all(&repo, "track");
    let base = write_tree(&repo, 2_000, 1);
    env.commit_all(&repo, "2000 files");
    env.assert_clean(&repo);
    // One writer's batch: the whole add lands in one pack, not one per file.
    let packs = fs::read_dir(repo.join(".git/dits/packs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".pack"))
        .count();
    assert_eq!(packs, 1, "packs for one add of 2000 files");

    // A branch that changes a tenth of the files.
    env.git(&repo, &["switch", "-q", "-c", "edit"]);
    let mut edited = base.clone();
    for (i, rel) in base.keys().enumerate().filter(|(i, _)| i % 10 == 0) {
        let path = repo.join(rel);
        fs::write(&path, content(10_000 + i as u64, 9_000)).unwrap();
        edited.insert(rel.clone(), b3(&path));
    }
    env.commit_all(&repo, "a tenth changed");
    env.git(&repo, &["switch", "-q", "main"]);
    assert_tree(&repo, &base);
    env.assert_clean(&repo);
    env.git(&repo, &["switch", "-q", "edit"]);
    assert_tree(&repo, &edited);
    env.assert_clean(&repo);

    // Everything removed, then checked out again from the store.
    for d in 0..8 {
        fs::remove_dir_all(repo.join(format!("a{d}"))).unwrap();
    }
    env.git(&repo, &["checkout", "--", "."]);
    assert_tree(&repo, &edited);
    env.assert_clean(&repo);
    assert_store_backs_everything(&env, &repo);
}

/// The filter is killed with SIGKILL while it cleans a many-file `git add`, early and late:
/// the store stays consistent, and a second `git add` stores and restores every file.
#[test]
fn filter_killed_at_several_points_of_a_many_file_add() {
    let env = Env::new();
    for (n, kill_at) in [(600, 20), (600, 350)] {
        let repo = env.repo(&format!("kill-{kill_at}"), &["*.bin"]);
        env.commit_all(&repo, "track");
        let want = write_tree(&repo, n, 100 + kill_at as u64);
        // The store exists before the add, so its manifests show up as the filter writes.
        env.dits(&repo, &["fsck", "-q"]);
        let manifests = repo.join(".git/dits/manifests");
        let mut add = env
            .cmd(&repo, "git")
            .args(["add", "-A"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        loop {
            assert!(
                add.try_wait().unwrap().is_none(),
                "git add finished before {kill_at} files were stored"
            );
            assert!(started.elapsed() < Duration::from_secs(60), "no progress");
            let filters = descendants_named(add.id(), "dits-filter");
            if files_under(&manifests) >= kill_at && !filters.is_empty() {
                kill_9(&filters);
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let out = add.wait_with_output().unwrap();
        assert!(!out.status.success(), "git add survived\n{}", show(&out));
        assert_store_backs_everything(&env, &repo);

        env.commit_all(&repo, "files");
        for d in 0..8 {
            fs::remove_dir_all(repo.join(format!("a{d}"))).unwrap();
        }
        env.git(&repo, &["checkout", "--", "."]);
        assert_tree(&repo, &want);
        env.assert_clean(&repo);
        assert_store_backs_everything(&env, &repo);
    }
}

/// The moment batching makes dangerous: git has written its index with every pointer, and the
/// filter is killed while it flushes its last batch (held there by strace, which delays the
/// flush). The records were written before each pointer went to git, so every staged file is
/// still there: found by walking the pack its writer never indexed.
#[test]
fn filter_killed_after_git_wrote_its_index_loses_nothing() {
    let env = Env::new();
    let repo = env.repo("r", &["*.bin"]);
    env.commit_all(&repo, "track");
    let want = write_tree(&repo, 200, 7);
    env.dits(&repo, &["fsck", "-q"]);
    let filter = env.bin.join("dits-filter");
    // Every flush is held for 8 s: a batch flushed part-way only slows the add, the last one
    // leaves the moment to kill the filter.
    let held = format!(
        "strace -f --seccomp-bpf -o /dev/null -e trace=syncfs -e inject=syncfs:delay_enter=8000000 {} process",
        filter.display()
    );
    let mut add = env
        .cmd(&repo, "git")
        .args(["-c", &format!("filter.dits.process={held}"), "add", "-A"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        assert!(
            add.try_wait().unwrap().is_none(),
            "git add ended while the filter's flush was held"
        );
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "git never wrote its index"
        );
        let staged = env.git_stdout(&repo, &["ls-files", "--", "a*"]);
        if staged.lines().count() == want.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The last batch is not in any index yet: the pack is longer than what its index (if a
    // batch was flushed part-way) covers. An index holds that length at bytes 16..24.
    let unindexed = fs::read_dir(repo.join(".git/dits/packs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pack"))
        .any(|p| {
            let len = fs::metadata(&p).unwrap().len();
            let covered = fs::read(p.with_extension("idx"))
                .map(|idx| u64::from_le_bytes(idx[16..24].try_into().unwrap()))
                .unwrap_or(0);
            len > covered
        });
    assert!(
        unindexed,
        "the last batch must be unindexed when the filter dies"
    );
    kill_9(&descendants_named(add.id(), "dits-filter"));
    let _ = add.wait_with_output().unwrap();

    assert_store_backs_everything(&env, &repo);
    env.git(&repo, &["commit", "-q", "-m", "files"]);
    for d in 0..8 {
        fs::remove_dir_all(repo.join(format!("a{d}"))).unwrap();
    }
    env.git(&repo, &["checkout", "--", "."]);
    assert_tree(&repo, &want);
    env.assert_clean(&repo);
}

/// Thousands of small files pushed to a real server and cloned back: every byte right, the
/// clone clean, and the clone's downloads batched across files (a request per file would be
/// at least one `get` per file in the server's transfer log).
#[test]
fn thousands_of_files_push_and_clone_in_batches() {
    let env = Env::new();
    let (server, _) = env.logged_in_server("srv");
    let repo = env.repo("a", &["*.bin"]);
    env.commit_all(&repo, "track");
    let want = write_tree(&repo, 1_500, 40);
    env.commit_all(&repo, "1500 files");
    let url = server.url("team/film");
    env.git(&repo, &["remote", "add", "origin", &url]);
    env.git(&repo, &["push", "-q", "-u", "origin", "main"]);

    let gets = |log: &str| log.lines().filter(|l| l.contains(" op=get ")).count();
    let before = gets(&server.transfer_log());
    env.git(env.tmp.path(), &["clone", "-q", &url, "b"]);
    let clone = env.path("b");
    assert_tree(&clone, &want);
    env.assert_clean(&clone);
    let requests = gets(&server.transfer_log()) - before;
    assert!(
        requests > 0 && requests < want.len() / 5,
        "{requests} chunk requests for {} files",
        want.len()
    );
    assert_store_backs_everything(&env, &clone);
}
