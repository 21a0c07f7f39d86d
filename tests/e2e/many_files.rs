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

/// Every file removed, then checked out again from the store: byte-exact, status clean.
fn rm_and_checkout(env: &Env, repo: &Path, want: &HashMap<PathBuf, String>) {
    for d in 0..8 {
        fs::remove_dir_all(repo.join(format!("a{d}"))).unwrap();
    }
    env.git(repo, &["checkout", "--", "."]);
    assert_tree(repo, want);
    env.assert_clean(repo);
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
    rm_and_checkout(&env, &repo, &edited);
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
        rm_and_checkout(&env, &repo, &want);
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
    rm_and_checkout(&env, &repo, &want);
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

/// A tree of `n` files pushed to a fresh server (with a root file `top.bin` too); returns the
/// server, the clone URL and the files' hashes.
fn pushed_tree(
    env: &Env,
    n: usize,
) -> (
    crate::support::server::Server,
    String,
    HashMap<PathBuf, String>,
) {
    let (server, _) = env.logged_in_server("srv");
    let repo = env.repo("origin-work", &["*.bin"]);
    let mut want = write_tree(&repo, n, 500);
    write_content(&repo.join("top.bin"), 499, 30_000);
    want.insert(PathBuf::from("top.bin"), b3(&repo.join("top.bin")));
    env.commit_all(&repo, "files");
    let url = server.url("team/film");
    env.git(&repo, &["remote", "add", "origin", &url]);
    env.git(&repo, &["push", "-q", "-u", "origin", "main"]);
    (server, url, want)
}

fn bytes_under(want: &HashMap<PathBuf, String>, root: &Path, prefix: &str) -> u64 {
    want.keys()
        .filter(|p| p.starts_with(prefix))
        .map(|p| fs::metadata(root.join(p)).unwrap().len())
        .sum()
}

/// `dits.fetchInclude` on a clone: only the wanted files are downloaded (the server's log
/// shows no more bytes than theirs), the rest stay pointers with `git status` clean, `git dits
/// status` says why, and `git dits pull` of a named path or with `--include` fetches more.
#[test]
fn a_partial_clone_downloads_only_what_it_wants() {
    let env = Env::new();
    let (server, url, want) = pushed_tree(&env, 400);
    let source = env.path("origin-work");
    let wanted = bytes_under(&want, &source, "a1");
    let before = server.bytes("get");
    let out = env.git(
        env.tmp.path(),
        &["clone", "-q", "-c", "dits.fetchInclude=a1/", &url, "c"],
    );
    let c = env.path("c");
    let moved = server.bytes("get") - before;
    assert!(
        moved >= wanted && moved <= wanted + wanted / 20 + (64 << 10),
        "a clone wanting {wanted} bytes moved {moved}"
    );
    assert!(
        stderr_of(&out).contains("left as pointers by dits.fetchInclude=a1/"),
        "{}",
        show(&out)
    );
    for (rel, hash) in &want {
        let is_pointer = read_pointer(&c.join(rel));
        assert_eq!(is_pointer, !rel.starts_with("a1"), "{}", rel.display());
        if !is_pointer {
            assert_eq!(&b3(&c.join(rel)), hash);
        }
    }
    env.assert_clean(&c);
    let status = env.dits_stdout(&c, &["status"]);
    assert!(
        status.contains("(left out by dits.fetchInclude=a1/)"),
        "{status}"
    );
    // Only the work tree is partial: `git cat-file --filters` (like `git archive`) of a file
    // left out gets its content, never its pointer.
    let (rel, hash) = want
        .iter()
        .find(|(p, _)| p.starts_with("a3"))
        .expect("a file under a3");
    let spec = format!("HEAD:{}", rel.display());
    let out = env.git(&c, &["cat-file", "--filters", &spec]);
    assert_eq!(&b3_bytes(&out.stdout), hash);

    // A bare pull keeps to the filter; a named path or --include fetches more.
    let pull = env.dits_output(&c, &["pull"]);
    assert!(stderr_of(&pull).contains("left out by"), "{}", show(&pull));
    assert!(read_pointer(&c.join("top.bin")));
    env.dits(&c, &["pull", "a2"]);
    assert_tree_under(&c, &want, "a2");
    env.dits(&c, &["pull", "--include", "*.bin"]);
    assert_tree(&c, &want);
    env.assert_clean(&c);
}

/// A committed `.ditsconfig` makes every clone partial without any flag; a sparse checkout
/// downloads and writes only the folders it materializes (and the root files), and `git dits
/// checkout` never writes outside it.
#[test]
fn committed_fetch_exclude_and_sparse_checkout() {
    let env = Env::new();
    let (server, url, want) = pushed_tree(&env, 400);
    let source = env.path("origin-work");
    fs::write(
        source.join(".ditsconfig"),
        "[dits]\n\tfetchExclude = a0/, a5/\n",
    )
    .unwrap();
    env.commit_all(&source, "clones skip a0 and a5");
    env.git(&source, &["push", "-q"]);
    env.git(env.tmp.path(), &["clone", "-q", &url, "c"]);
    let c = env.path("c");
    for rel in want.keys() {
        let left = rel.starts_with("a0") || rel.starts_with("a5");
        assert_eq!(read_pointer(&c.join(rel)), left, "{}", rel.display());
    }
    env.assert_clean(&c);

    let before = server.bytes("get");
    env.git(env.tmp.path(), &["clone", "-q", "--no-checkout", &url, "s"]);
    let s = env.path("s");
    env.git(&s, &["sparse-checkout", "set", "a3"]);
    env.git(&s, &["checkout", "-q", "main"]);
    let moved = server.bytes("get") - before;
    let wanted = bytes_under(&want, &source, "a3") + bytes_under(&want, &source, "top.bin");
    assert!(
        moved >= wanted && moved <= wanted + wanted / 20 + (64 << 10),
        "a sparse checkout wanting {wanted} bytes moved {moved}"
    );
    assert_tree_under(&s, &want, "a3");
    assert_eq!(b3(&s.join("top.bin")), want[&PathBuf::from("top.bin")]);
    assert!(!s.join("a1").exists());
    env.dits(&s, &["checkout"]);
    assert!(
        !s.join("a1").exists(),
        "checkout wrote outside the sparse tree"
    );
    env.assert_clean(&s);
    let status = env.dits_stdout(&s, &["status"]);
    assert!(status.contains("Outside sparse:"), "{status}");
}

fn read_pointer(path: &Path) -> bool {
    fs::read(path).unwrap().starts_with(b"dits-pointer v1\n")
}

fn assert_tree_under(repo: &Path, want: &HashMap<PathBuf, String>, prefix: &str) {
    for (rel, hash) in want.iter().filter(|(p, _)| p.starts_with(prefix)) {
        assert_eq!(&b3(&repo.join(rel)), hash, "{}", rel.display());
    }
}
