//! `git dits mount` through the real kernel FUSE driver (fusermount3), against real git, a
//! real `git dits serve` on 127.0.0.1 and real media made with ffmpeg: exact content, sizes,
//! modes and stable mtimes; fetch-on-read that moves only the chunks a read touches, in a
//! skip-smudge clone; EIO for an unreadable chunk with the mount staying up; many readers
//! at once; unmount; and kill -9 followed by a remount.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::server::Server;
use crate::support::{b3, content, stderr_of, write_content, Env, GITS};

/// A mounted folder, unmounted (lazily, so a failing test never leaves it busy) on drop.
struct Mounted {
    dir: PathBuf,
    pid: u32,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("fusermount3")
            .args(["-u", "-z", "-q"])
            .arg(&self.dir)
            .status();
    }
}

fn mount(env: &Env, repo: &Path, rev: &str, name: &str) -> Mounted {
    let dir = env.path(name);
    fs::create_dir_all(&dir).unwrap();
    let out = env.dits(repo, &["mount", "--rev", rev, dir.to_str().unwrap()]);
    let err = stderr_of(&out);
    let pid = err
        .split_once("pid ")
        .and_then(|(_, rest)| rest.split(',').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in: {err}"));
    assert!(listed(env, repo, &dir), "mounted but not listed:\n{err}");
    Mounted { dir, pid }
}

fn listed(env: &Env, repo: &Path, dir: &Path) -> bool {
    let list = env.dits_stdout(repo, &["mount", "--list"]);
    list.lines()
        .any(|l| l.split('\t').next() == Some(dir.to_str().unwrap()))
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

fn wait_for(what: &str, cond: impl FnMut() -> bool) {
    wait_up_to(Duration::from_secs(20), what, cond);
}

/// Waits for `cond`; on timeout fails with the processes of the machine, to show what held
/// things up.
fn wait_up_to(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > limit {
            let ps = Command::new("ps")
                .args(["-eo", "pid,ppid,stat,wchan:32,args"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            panic!("timed out after {limit:?}: {what}\n{ps}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A 2-second H.264 MP4 and its remux to MOV, made with ffmpeg.
fn make_media(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(args)
            .current_dir(dir)
            .output()
            .expect("ffmpeg is installed (.ci/setup)");
        assert!(out.status.success(), "{}", crate::support::show(&out));
    };
    fs::create_dir_all(dir.join("footage")).unwrap();
    run(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=duration=2:size=320x240:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=2",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        "footage/a.mp4",
    ]);
    run(&["-i", "footage/a.mp4", "-c", "copy", "footage/a.mov"]);
}

/// Commits what `files` writes into a new repository tracking `*.bin`, pushes it to
/// `team/film` on `server`, and makes a skip-smudge clone of it (pointers only). Returns the
/// source work tree and the clone.
fn pushed_and_lazily_cloned(
    env: &Env,
    server: &Server,
    files: impl FnOnce(&Path),
) -> (PathBuf, PathBuf) {
    let src = env.repo("src", &["*.bin"]);
    files(&src);
    env.commit_all(&src, "content");
    push(env, server, &src);
    let clone = skip_smudge_clone(env, &server.url("team/film"), "clone");
    (src, clone)
}

/// `GIT_DITS_SKIP_SMUDGE=1 git clone URL NAME`: pointers only in the work tree.
fn skip_smudge_clone(env: &Env, url: &str, name: &str) -> PathBuf {
    let mut cmd = env.cmd(env.tmp.path(), "git");
    cmd.args(["clone", "-q", url, name])
        .env("GIT_DITS_SKIP_SMUDGE", "1");
    env.run_ok(&mut cmd);
    env.path(name)
}

fn push(env: &Env, server: &Server, repo: &Path) {
    env.git(repo, &["remote", "add", "origin", &server.url("team/film")]);
    env.git(repo, &["push", "-q", "-u", "origin", "main"]);
}

/// Files of a project: media, a large binary, code, an executable, a symlink, nesting.
fn project(env: &Env, server: &Server) -> PathBuf {
    let dir = env.repo("src", &["*.mp4", "*.mov", "*.bin"]);
    make_media(&dir);
    write_content(&dir.join("footage/raw.bin"), 1, 3 << 20);
    fs::create_dir_all(dir.join("code/deep")).unwrap();
    fs::write(
        dir.join("code/deep/main.c"),
        "int main(void) { return 0; }\n",
    )
    .unwrap();
    fs::write(dir.join("code/build.sh"), "#!/bin/sh\necho built\n").unwrap();
    fs::set_permissions(dir.join("code/build.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("footage/a.mp4", dir.join("latest.mp4")).unwrap();
    env.commit_all(&dir, "first");
    push(env, server, &dir);
    dir
}

/// Every file under `tree` (a checkout), compared with the same path under `mnt`: content,
/// size, executable bit, symlink target.
fn assert_same_tree(tree: &Path, mnt: &Path) {
    let mut compared = 0;
    for entry in walk(tree) {
        let rel = entry.strip_prefix(tree).unwrap();
        if rel.starts_with(".git") {
            continue;
        }
        let mounted = mnt.join(rel);
        let a = fs::symlink_metadata(&entry).unwrap();
        let b = fs::symlink_metadata(&mounted)
            .unwrap_or_else(|e| panic!("{} missing in the mount: {e}", rel.display()));
        assert_eq!(
            a.file_type().is_symlink(),
            b.file_type().is_symlink(),
            "{}",
            rel.display()
        );
        if a.file_type().is_symlink() {
            assert_eq!(
                fs::read_link(&entry).unwrap(),
                fs::read_link(&mounted).unwrap()
            );
        } else if a.is_file() {
            assert_eq!(a.len(), b.len(), "size of {}", rel.display());
            assert_eq!(
                a.mode() & 0o100,
                b.mode() & 0o100,
                "x bit of {}",
                rel.display()
            );
            assert_eq!(b3(&entry), b3(&mounted), "content of {}", rel.display());
            compared += 1;
        }
    }
    assert!(compared >= 6, "compared only {compared} files");
    // Nothing extra in the mount either.
    let in_mount = walk(mnt).len();
    let in_tree = walk(tree)
        .iter()
        .filter(|p| !p.strip_prefix(tree).unwrap().starts_with(".git"))
        .count();
    assert_eq!(in_mount, in_tree);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        out.push(path.clone());
        if meta.is_dir() {
            out.extend(walk(&path));
        }
    }
    out
}

/// The `fetched chunks=N bytes=B` lines the mount logged (chunk payload it downloaded).
fn fetched(repo: &Path) -> (u64, u64) {
    let log = fs::read_to_string(repo.join(".git/dits/mount.log")).unwrap_or_default();
    let field = |line: &str, key: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .unwrap()
            .parse()
            .unwrap()
    };
    log.lines()
        .filter(|l| l.contains("fetched chunks="))
        .fold((0, 0), |(c, b), l| {
            (c + field(l, "chunks="), b + field(l, "bytes="))
        })
}

/// [`fetched`] once it has stopped changing for a second.
fn settled(repo: &Path) -> (u64, u64) {
    let mut last = fetched(repo);
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = fetched(repo);
        if now == last {
            return now;
        }
        last = now;
    }
}

#[test]
fn mount_shows_each_commit_exactly_and_unmounts() {
    for git in GITS {
        let env = Env::with_git(Path::new(git));
        let (server, _token) = env.logged_in_server("srv");
        let src = project(&env, &server);
        let first = env
            .git_stdout(&src, &["rev-parse", "HEAD"])
            .trim()
            .to_owned();
        // A second commit that changes the video: each mount shows its own commit.
        write_content(&src.join("footage/raw.bin"), 2, 2 << 20);
        env.commit_all(&src, "second");

        let old = mount(&env, &src, &first, "mnt-old");
        let new = mount(&env, &src, "HEAD", "mnt-new");
        assert_same_tree(&src, &new.dir);
        let old_tree = env.path("old-checkout");
        env.git(
            env.tmp.path(),
            &["clone", "-q", src.to_str().unwrap(), "old-checkout"],
        );
        env.git(&old_tree, &["checkout", "-q", &first]);
        assert_same_tree(&old_tree, &old.dir);

        // A skip-smudge clone of a local path: its chunks come from the source's store.
        let lazy_local = skip_smudge_clone(&env, src.to_str().unwrap(), "lazy-local");
        env.git(&lazy_local, &["remote", "remove", "origin"]);
        env.git(
            &lazy_local,
            &["remote", "add", "origin", src.to_str().unwrap()],
        );
        let before = server.bytes("get");
        let local = mount(&env, &lazy_local, "HEAD", "mnt-local");
        assert_same_tree(&src, &local.dir);
        assert_eq!(server.bytes("get"), before, "nothing came from the server");
        drop(local);
        assert_eq!(
            fs::metadata(old.dir.join("footage/raw.bin")).unwrap().len(),
            3 << 20
        );

        // Read-only, and the commit's time on everything, the same on every mount.
        let f = old.dir.join("code/deep/main.c");
        assert!(fs::OpenOptions::new().write(true).open(&f).is_err());
        assert!(fs::write(old.dir.join("new.txt"), "x").is_err());
        let mtime = fs::metadata(&f).unwrap().mtime();
        let commit_time: i64 = env
            .git_stdout(&src, &["log", "-1", "--format=%ct", &first])
            .trim()
            .parse()
            .unwrap();
        assert_eq!(mtime, commit_time);

        // Unmount: gone from the list, the directory empty again, the process ended.
        let pid = old.pid;
        env.dits(&src, &["unmount", old.dir.to_str().unwrap()]);
        assert!(!listed(&env, &src, &old.dir));
        assert_eq!(fs::read_dir(&old.dir).unwrap().count(), 0);
        wait_for("the mount process to exit", || !process_alive(pid));
        let again = mount(&env, &src, &first, "mnt-old");
        assert_eq!(
            fs::metadata(again.dir.join("code/deep/main.c"))
                .unwrap()
                .mtime(),
            mtime,
            "mtimes are stable between mounts"
        );

        // Errors a script can rely on.
        let out = env.dits_output(&src, &["unmount", env.path("src").to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr_of(&out).contains("not a Dits mount"),
            "{}",
            stderr_of(&out)
        );
        let out = env.dits_output(&src, &["mount", again.dir.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr_of(&out).contains("already a Dits mount"),
            "{}",
            stderr_of(&out)
        );
        let out = env.dits_output(
            &src,
            &["mount", "--rev", "nope", env.path("x").to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr_of(&out).contains("mount point"),
            "{}",
            stderr_of(&out)
        );
        fs::create_dir_all(env.path("x")).unwrap();
        let out = env.dits_output(
            &src,
            &["mount", "--rev", "nope", env.path("x").to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr_of(&out).contains("nope: unknown revision"),
            "{}",
            stderr_of(&out)
        );
        assert!(!listed(&env, &src, &env.path("x")));
        drop(again);
        drop(new);
    }
}

#[test]
fn skip_smudge_clone_reads_only_the_chunks_it_touches() {
    let env = Env::new();
    let (server, _token) = env.logged_in_server("srv");
    let size: u64 = 1 << 30;
    let (src, clone) = pushed_and_lazily_cloned(&env, &server, |dir: &Path| {
        write_content(&dir.join("huge.bin"), 7, size);
    });
    assert!(
        fs::metadata(clone.join("huge.bin")).unwrap().len() < 200,
        "a pointer"
    );
    let got_before = server.bytes("get");

    let m = mount(&env, &clone, "HEAD", "mnt");
    let file = m.dir.join("huge.bin");
    assert_eq!(
        fs::metadata(&file).unwrap().len(),
        size,
        "real size, nothing fetched"
    );
    assert_eq!(fetched(&clone).0, 0);

    // 4 KiB from the middle.
    let offset = size / 2 + 12_345;
    let mut block = vec![0u8; 4096];
    fs::File::open(&file)
        .unwrap()
        .read_exact_at(&mut block, offset)
        .unwrap();
    let mut expected = vec![0u8; 4096];
    fs::File::open(src.join("huge.bin"))
        .unwrap()
        .read_exact_at(&mut expected, offset)
        .unwrap();
    assert!(block == expected, "the bytes read are the file's");

    // Only the chunks covering the read (the kernel may round it up to a few pages), plus
    // the file's chunk list (~36 bytes per 64 KiB chunk), crossed the wire; also once any
    // background work (readahead) would have finished.
    let (chunks, bytes) = settled(&clone);
    assert!(
        (1..=4).contains(&chunks),
        "fetched {chunks} chunks ({bytes} bytes)"
    );
    assert!(bytes <= 4 * 256 * 1024, "fetched {bytes} bytes");
    let wire = server.bytes("get") - got_before;
    let chunk_list = size / (64 << 10) * 36;
    assert!(
        wire <= bytes + 2 * chunk_list,
        "the server sent {wire} bytes for a 4 KiB read"
    );

    // Fetched chunks were kept: a new mount reads the same block without the server.
    drop(m);
    wait_for("the first mount to end", || {
        !listed(&env, &clone, &env.path("mnt"))
    });
    let wire_before = server.bytes("get");
    let m = mount(&env, &clone, "HEAD", "mnt");
    let mut again = vec![0u8; 4096];
    fs::File::open(m.dir.join("huge.bin"))
        .unwrap()
        .read_exact_at(&mut again, offset)
        .unwrap();
    assert!(again == expected);
    assert_eq!(server.bytes("get"), wire_before, "a second read is local");
    // And the store the mount wrote to is sound.
    env.dits(&clone, &["fsck"]);
}

#[test]
fn an_unreadable_chunk_fails_that_read_only_and_the_mount_stays_up() {
    let env = Env::new();
    let (server, _token) = env.logged_in_server("srv");
    let data = content(3, 8 << 20);
    let (_src, clone) = pushed_and_lazily_cloned(&env, &server, |dir: &Path| {
        fs::write(dir.join("clip.bin"), &data).unwrap();
        fs::write(dir.join("notes.txt"), "still readable\n").unwrap();
    });

    // Damage the server's copy of one chunk in the middle of the file's data (the group
    // objects that list the chunks were pushed after them, at the end of the pack).
    let packs = server.repo_dir("team/film").join("dits/packs");
    let pack = fs::read_dir(&packs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&pack)
        .unwrap();
    let at = fs::metadata(&pack).unwrap().len() / 2;
    let mut byte = [0u8; 1];
    f.read_exact_at(&mut byte, at).unwrap();
    f.write_all_at(&[byte[0] ^ 0xff], at).unwrap();
    drop(f);

    let m = mount(&env, &clone, "HEAD", "mnt");
    let file = fs::File::open(m.dir.join("clip.bin")).unwrap();
    let block = 256 << 10;
    let (mut failed, mut good) = (0, 0);
    for i in 0..(data.len() / block) {
        let mut buf = vec![0u8; block];
        match file.read_exact_at(&mut buf, (i * block) as u64) {
            Ok(()) => {
                assert!(
                    buf == data[i * block..(i + 1) * block],
                    "block {i} is wrong"
                );
                good += 1;
            }
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EIO), "block {i}: {e}");
                failed += 1;
            }
        }
    }
    assert!(failed >= 1, "the damaged chunk was not noticed");
    assert!(good >= 24, "only {good} of 32 blocks read");
    // Still up: other files and directories work, and the log says why the read failed.
    assert_eq!(
        fs::read_to_string(m.dir.join("notes.txt")).unwrap(),
        "still readable\n"
    );
    assert!(listed(&env, &clone, &m.dir));
    let log = fs::read_to_string(clone.join(".git/dits/mount.log")).unwrap();
    assert!(
        log.contains("cannot read clip.bin"),
        "the log names the file:\n{log}"
    );
    // Nothing bad entered the local store.
    env.dits(&clone, &["fsck", "--", "HEAD"]);

    // A pointer edited by hand to claim another size: stat shows the claim, reads fail.
    let pointer = env.git_stdout(&clone, &["cat-file", "-p", "HEAD:clip.bin"]);
    let lying = pointer.replace(
        &format!("size {}", 8 << 20),
        &format!("size {}", (8 << 20) + 1),
    );
    assert_ne!(pointer, lying);
    let mut cmd = env.cmd(&clone, "git");
    cmd.args(["hash-object", "-w", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), lying.as_bytes()).unwrap();
    let blob = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    let info = format!("100644,{},clip.bin", blob.trim());
    env.git(&clone, &["update-index", "--cacheinfo", &info]);
    env.git(&clone, &["commit", "-q", "-m", "lie about the size"]);
    let m2 = mount(&env, &clone, "HEAD", "mnt-lie");
    let file = m2.dir.join("clip.bin");
    assert_eq!(fs::metadata(&file).unwrap().len(), (8 << 20) + 1);
    let err = fs::read(&file).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    let log = fs::read_to_string(clone.join(".git/dits/mount.log")).unwrap();
    assert!(log.contains("the pointer says"), "{log}");
}

#[test]
fn many_readers_at_once_then_kill_9_and_remount() {
    let env = Env::new();
    let (server, _token) = env.logged_in_server("srv");
    let names: Vec<String> = (0..6).map(|i| format!("f{i}.bin")).collect();
    let (src, clone) = pushed_and_lazily_cloned(&env, &server, |dir: &Path| {
        for (i, n) in names.iter().enumerate() {
            write_content(&dir.join(n), 100 + i as u64, (5 << 20) + i as u64 * 77_777);
        }
    });

    let m = mount(&env, &clone, "HEAD", "mnt");
    // Twelve readers: two per file, one reading forward, one backward in 100 KiB steps.
    std::thread::scope(|s| {
        for n in &names {
            for backward in [false, true] {
                let (mounted, original) = (m.dir.join(n), src.join(n));
                s.spawn(move || {
                    let expected = fs::read(&original).unwrap();
                    let f = fs::File::open(&mounted).unwrap();
                    let step = 100_000;
                    let mut offsets: Vec<usize> = (0..expected.len()).step_by(step).collect();
                    if backward {
                        offsets.reverse();
                    }
                    for o in offsets {
                        let len = step.min(expected.len() - o);
                        let mut buf = vec![0u8; len];
                        f.read_exact_at(&mut buf, o as u64).unwrap();
                        assert!(buf == expected[o..o + len], "{} at {o}", mounted.display());
                    }
                });
            }
        }
    });

    // kill -9: the kernel's auto-unmount clears the mount point; mounting again works.
    let pid = m.pid;
    assert!(Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    // fusermount3 unmounts once it sees the dead process's socket close; with the whole
    // suite running on two cores that has taken over 20 s.
    wait_up_to(
        Duration::from_secs(60),
        "the killed mount to be cleared",
        || !listed(&env, &clone, &m.dir),
    );
    assert!(
        fs::metadata(&m.dir).is_ok(),
        "no dead mount point left behind"
    );
    let again = mount(&env, &clone, "HEAD", "mnt");
    assert_eq!(b3(&again.dir.join("f3.bin")), b3(&src.join("f3.bin")));
    env.dits(&clone, &["fsck", "--", "HEAD"]);
    drop(m);
}

#[test]
fn a_bounded_cache_keeps_the_local_store_small() {
    let env = Env::new();
    let (server, _token) = env.logged_in_server("srv");
    let size: u64 = 96 << 20;
    let (src, clone) = pushed_and_lazily_cloned(&env, &server, |dir: &Path| {
        write_content(&dir.join("long.bin"), 11, size);
    });
    env.git(&clone, &["config", "dits.mount.cacheSize", "24m"]);

    let m = mount(&env, &clone, "HEAD", "mnt");
    assert_eq!(b3(&m.dir.join("long.bin")), b3(&src.join("long.bin")));
    let (_, fetched_bytes) = settled(&clone);
    assert!(
        fetched_bytes >= size,
        "the whole file was fetched ({fetched_bytes})"
    );
    let pid = m.pid;
    drop(m);
    wait_for("the mount to end", || {
        !listed(&env, &clone, &env.path("mnt"))
    });
    // Unmounted is not ended: the process still stores what it was handed, then exits.
    wait_for("the mount process to exit", || {
        !Path::new(&format!("/proc/{pid}")).exists()
    });

    // The cache's packs (each at most 16 MiB here) stay near the bound: the bound plus the
    // pack being written, never the 96 MiB read.
    let packs = clone.join(".git/dits/packs");
    let listed_packs = fs::read_to_string(clone.join(".git/dits/mount-cache")).unwrap();
    let cache_bytes: u64 = listed_packs
        .lines()
        .map(|p| fs::metadata(packs.join(format!("{p}.pack"))).map_or(0, |m| m.len()))
        .sum();
    assert!(
        cache_bytes <= (24 << 20) + (17 << 20),
        "cache holds {cache_bytes} bytes"
    );
    let all: u64 = fs::read_dir(&packs)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(
        all < size / 2,
        "the store holds {all} bytes after reading {size}"
    );
    let log = fs::read_to_string(clone.join(".git/dits/mount.log")).unwrap();
    assert!(log.contains("mount cache: dropped pack"), "{log}");
    // What was dropped is on the server: fsck is clean, and a checkout fetches it again.
    env.dits(&clone, &["fsck", "--", "HEAD"]);
    env.dits(&clone, &["pull"]);
    assert_eq!(b3(&clone.join("long.bin")), b3(&src.join("long.bin")));
}

/// With the server gone, reads of content that is not local fail with EIO after one connect
/// attempt, not one timeout per read; a busy mount's unmount says `--lazy`; an unmounted
/// mount's process exits promptly (issue 13).
#[test]
fn server_down_reads_fail_fast_and_busy_unmount_hints_lazy() {
    let env = Env::new();
    let (mut server, _token) = env.logged_in_server("srv");
    let (_src, clone) = pushed_and_lazily_cloned(&env, &server, |dir: &Path| {
        for i in 0..6 {
            write_content(&dir.join(format!("f{i}.bin")), 40 + i, 1 << 20);
        }
    });
    let m = mount(&env, &clone, "HEAD", "mnt");
    server.kill();
    let start = Instant::now();
    for i in 0..6 {
        let err = fs::read(m.dir.join(format!("f{i}.bin"))).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EIO), "f{i}.bin: {err}");
    }
    let took = start.elapsed();
    eprintln!("six reads with the server down: {took:?}");
    // One connect timeout (dits.connectTimeout, 10 s) at most, then the failure is remembered;
    // before, every read waited 30 s.
    assert!(took < Duration::from_secs(25), "reads waited {took:?}");
    let log = fs::read_to_string(clone.join(".git/dits/mount.log")).unwrap();
    assert!(log.contains("cannot read f0.bin"), "{log}");

    // Busy: a process has its working directory in the mount.
    let mut busy = Command::new("sleep")
        .arg("60")
        .current_dir(&m.dir)
        .spawn()
        .unwrap();
    let out = env.dits_output(&clone, &["unmount", m.dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("--lazy"), "{}", stderr_of(&out));
    busy.kill().unwrap();
    let _ = busy.wait();

    let start = Instant::now();
    env.dits(&clone, &["unmount", m.dir.to_str().unwrap()]);
    wait_for("the mount process to exit", || !process_alive(m.pid));
    eprintln!("mount process exited {:?} after unmount", start.elapsed());
}
