//! Integrity under faults and hostile input, end to end: a full disk under a running server
//! and under a client, replace refs, manifests that lie about their size or content, and
//! repair that never makes less readable.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{b3, pointer_id, stderr_of, write_content, Env};

const MIB: u64 = 1 << 20;

/// A tmpfs of a given size mounted on a directory (made if need be), unmounted on drop. The
/// tests run as root, as CI does.
pub struct Tmpfs {
    pub dir: PathBuf,
}

impl Tmpfs {
    pub fn mount(dir: &Path, bytes: u64) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "dits-test"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a tmpfs (these tests need root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs {
            dir: dir.to_owned(),
        }
    }

    /// Frees space the way deleting a filler file would.
    pub fn resize(&self, bytes: u64) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// A server whose root is a small file system: a push that fills it is refused with a clear
/// error, and once space is back the same server process takes the next push whole, with a
/// store fsck finds clean (it used to put 100-200 index entries on the wrong bytes).
#[test]
fn a_server_that_ran_out_of_disk_stores_the_next_push_exactly() {
    let env = Env::new();
    let root = env.path("srv");
    let fs_guard = Tmpfs::mount(&root, 40 * MIB);
    let mut server = env.start_server("srv");
    let token = env.token(&server, "team/film", true);
    env.login(&server, &token);
    let a = env.repo("a", &["*.bin"]);
    env.git(&a, &["remote", "add", "origin", &server.url("team/film")]);
    write_content(&a.join("first.bin"), 1, 20 * MIB);
    env.commit_all(&a, "first");
    env.git(&a, &["push", "-q", "-u", "origin", "main"]);
    write_content(&a.join("second.bin"), 2, 25 * MIB);
    env.commit_all(&a, "second");
    let out = env.git_fails(&a, &["push", "-q", "origin", "main"]);
    let err = stderr_of(&out);
    assert!(
        err.contains("No space left") || err.contains("free disk space"),
        "{err}"
    );
    assert!(!err.contains("cloned without data"), "{err}");

    fs_guard.resize(256 * MIB);
    write_content(&a.join("third.bin"), 3, 5 * MIB);
    env.commit_all(&a, "third");
    env.git(&a, &["push", "-q", "origin", "main"]);

    let bare = server.repo_dir("team/film");
    let fsck = env
        .cmd(&bare, "git")
        .args(["dits", "fsck"])
        .env("GIT_DIR", &bare)
        .output()
        .unwrap();
    assert!(fsck.status.success(), "server store: {}", stderr_of(&fsck));
    let b = env.path("b");
    env.git(
        env.tmp.path(),
        &["clone", "-q", &server.url("team/film"), "b"],
    );
    for f in ["first.bin", "second.bin", "third.bin"] {
        assert_eq!(b3(&b.join(f)), b3(&a.join(f)), "{f}");
    }
    server.stop();
}

/// `.git/dits` of a clone on a small file system: a checkout that fills it fails and names
/// the cause; after space is freed the same files come out exact and fsck is clean.
#[test]
fn a_checkout_into_a_full_store_fails_then_completes_exactly() {
    let env = Env::new();
    let src = env.repo("src", &["*.bin"]);
    for (i, name) in ["a.bin", "b.bin", "c.bin"].iter().enumerate() {
        write_content(&src.join(name), 10 + i as u64, 12 * MIB);
    }
    env.commit_all(&src, "media");
    let clone = env.path("clone");
    env.run_ok(
        env.cmd(env.tmp.path(), "git")
            .args(["clone", "-q", src.to_str().unwrap(), "clone"])
            .env("GIT_DITS_SKIP_SMUDGE", "1"),
    );
    env.dits(&clone, &["install", "-q"]);
    let guard = Tmpfs::mount(&clone.join(".git/dits"), 20 * MIB);
    let out = env.dits_output(&clone, &["checkout"]);
    assert!(!out.status.success(), "a full disk fails the checkout");
    let err = stderr_of(&out);
    assert!(
        err.contains("No space left") || err.contains("free disk space"),
        "{err}"
    );
    guard.resize(256 * MIB);
    env.dits(&clone, &["checkout"]);
    for name in ["a.bin", "b.bin", "c.bin"] {
        assert_eq!(b3(&clone.join(name)), b3(&src.join(name)), "{name}");
    }
    env.dits(&clone, &["fsck"]);
    env.assert_clean(&clone);
}

/// ENOSPC at every point of `git add` (a sweep over store sizes): whatever failed, nothing
/// stored is wrong, and the same work tree is added whole once space is back.
#[test]
fn enospc_at_every_point_of_add_leaves_a_clean_store() {
    let env = Env::new();
    let mut failures = 0;
    for (step, size) in (1..=8u64).map(|k| k * 1536 * 1024).enumerate() {
        let repo = env.repo(&format!("r{step}"), &["*.bin"]);
        let guard = Tmpfs::mount(&repo.join(".git/dits"), size);
        for (i, name) in ["a.bin", "b.bin", "c.bin"].iter().enumerate() {
            write_content(&repo.join(name), 30 + i as u64, 3 * MIB + i as u64 * 77);
        }
        if !env.git_output(&repo, &["add", "-A"]).status.success() {
            failures += 1;
        }
        guard.resize(256 * MIB);
        env.git(&repo, &["add", "-A"]);
        env.git(&repo, &["commit", "-q", "-m", "media"]);
        env.dits(&repo, &["fsck"]);
        for name in ["a.bin", "b.bin", "c.bin"] {
            let id = pointer_id(&env, &repo, &format!("HEAD:{name}"));
            assert_eq!(
                env.cat_b3(&repo, &format!("HEAD:{name}")),
                id,
                "{name} at {size}"
            );
        }
    }
    assert!(failures >= 3, "the sweep hit ENOSPC only {failures} times");
}

/// ENOSPC at every point of a clone's checkout (the filter's delayed fetch) and of a push
/// to a server whose disk fills: each fails or succeeds, and the retry is exact.
#[test]
fn enospc_at_every_point_of_clone_and_push_is_recovered_exactly() {
    let env = Env::new();
    let server = env.start_server("srv");
    let token = env.token(&server, "team/*", true);
    env.login(&server, &token);
    let a = env.repo("a", &["*.bin"]);
    for (i, name) in ["a.bin", "b.bin"].iter().enumerate() {
        write_content(&a.join(name), 40 + i as u64, 4 * MIB);
    }
    env.commit_all(&a, "media");
    env.git(&a, &["remote", "add", "origin", &server.url("team/film")]);
    env.git(&a, &["push", "-q", "-u", "origin", "main"]);
    let mut failures = 0;
    for (step, size) in (1..=6u64).map(|k| k * 1536 * 1024).enumerate() {
        let name = format!("c{step}");
        env.git(
            env.tmp.path(),
            &[
                "clone",
                "-q",
                "--no-checkout",
                &server.url("team/film"),
                &name,
            ],
        );
        let clone = env.path(&name);
        let guard = Tmpfs::mount(&clone.join(".git/dits"), size);
        if !env
            .git_output(&clone, &["checkout", "-q", "main"])
            .status
            .success()
        {
            failures += 1;
        }
        guard.resize(256 * MIB);
        env.git(&clone, &["checkout", "-q", "-f", "main"]);
        env.dits(&clone, &["checkout"]);
        for f in ["a.bin", "b.bin"] {
            assert_eq!(b3(&clone.join(f)), b3(&a.join(f)), "{f} at {size}");
        }
        env.dits(&clone, &["fsck"]);
        env.assert_clean(&clone);
    }
    assert!(
        failures >= 2,
        "the clone sweep hit ENOSPC only {failures} times"
    );

    // Pushes into servers whose disks fill at different points.
    let mut failures = 0;
    for (step, size) in (1..=5u64).map(|k| k * 2 * MIB).enumerate() {
        let root = env.path(&format!("s{step}"));
        let guard = Tmpfs::mount(&root, size);
        let srv = env.start_server(&format!("s{step}"));
        let token = env.token(&srv, "team/*", true);
        env.also_via(&srv, &token, &srv.addr);
        let url = srv.url("team/film");
        if !env
            .git_output(&a, &["push", "-q", &url, "main"])
            .status
            .success()
        {
            failures += 1;
        }
        guard.resize(256 * MIB);
        env.git(&a, &["push", "-q", &url, "main"]);
        let bare = srv.repo_dir("team/film");
        let fsck = env
            .cmd(&bare, "git")
            .args(["dits", "fsck"])
            .env("GIT_DIR", &bare)
            .output()
            .unwrap();
        assert!(
            fsck.status.success(),
            "server at {size}: {}",
            stderr_of(&fsck)
        );
        let b = env.path(&format!("p{step}"));
        env.git(env.tmp.path(), &["clone", "-q", &url, b.to_str().unwrap()]);
        for f in ["a.bin", "b.bin"] {
            assert_eq!(b3(&b.join(f)), b3(&a.join(f)), "{f} via server at {size}");
        }
    }
    assert!(
        failures >= 2,
        "the push sweep hit ENOSPC only {failures} times"
    );
}

/// `git replace` must not hide content from a push: the helper uploads what the real commit
/// references, and a server reached without the helper refuses the ref.
#[test]
fn replace_refs_do_not_get_past_the_content_checks() {
    let env = Env::new();
    let server = env.start_server("srv");
    let token = env.token(&server, "team/*", true);
    env.login(&server, &token);
    let a = env.repo("a", &["*.bin"]);
    write_content(&a.join("old.bin"), 50, 300_000);
    env.commit_all(&a, "old");
    write_content(&a.join("new.bin"), 51, 400_000);
    env.commit_all(&a, "new");
    env.git(&a, &["replace", "HEAD", "HEAD~1"]);
    let url = server.url("team/film");
    env.git(&a, &["remote", "add", "origin", &url]);
    env.git(
        &a,
        &[
            "push",
            "-q",
            "origin",
            "main",
            "refs/replace/*:refs/replace/*",
        ],
    );
    let b = env.path("b");
    env.git(env.tmp.path(), &["clone", "-q", &url, "b"]);
    env.git(
        &b,
        &["fetch", "-q", "origin", "refs/replace/*:refs/replace/*"],
    );
    env.dits(&b, &["fsck"]);
    let real = env
        .cmd(&b, "git")
        .args(["cat-file", "-p", "main:new.bin"])
        .env("GIT_NO_REPLACE_OBJECTS", "1")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&real.stdout).starts_with("dits-pointer"));
    assert_eq!(
        env.cmd(&b, "git")
            .args(["dits", "cat", "main:new.bin"])
            .output()
            .map(|o| crate::support::b3_bytes(&o.stdout))
            .unwrap(),
        b3(&a.join("new.bin"))
    );

    // The same kind of push without the helper (straight into the server's bare repository,
    // whose update hook runs, and without the pre-push hook): the replacement points at a
    // commit the server has whole, the real commit adds content the server lacks. The ref
    // is refused.
    let c = env.path("c");
    env.git(env.tmp.path(), &["clone", "-q", &url, "c"]);
    write_content(&c.join("hidden.bin"), 53, 100_000);
    env.commit_all(&c, "hidden");
    env.git(&c, &["replace", "-f", "HEAD", "HEAD~1"]);
    let bare = server.repo_dir("team/film");
    let out = env.git_fails(
        &c,
        &[
            "push",
            "--no-verify",
            bare.to_str().unwrap(),
            "refs/replace/*:refs/replace/*",
            "main:refs/heads/sneaky",
        ],
    );
    let err = stderr_of(&out);
    assert!(
        err.contains("hidden.bin") && err.contains("not on this server"),
        "{err}"
    );
}

/// A source whose manifest claims gigabytes under a pointer of megabytes: refused before a
/// byte reaches the work tree. And one whose manifest names other content under the file's
/// id: not kept, and the next source's honest copy is used.
#[test]
fn lying_manifests_are_refused_and_the_next_source_is_asked() {
    let env = Env::new();
    let server = env.start_server("srv");
    let token = env.token(&server, "team/*", true);
    env.login(&server, &token);
    let src = env.repo("src", &["*.bin"]);
    write_content(&src.join("real.bin"), 60, 3 * MIB);
    write_content(&src.join("other.bin"), 61, 3 * MIB);
    env.commit_all(&src, "media");
    env.git(&src, &["remote", "add", "origin", &server.url("team/film")]);
    env.git(&src, &["push", "-q", "-u", "origin", "main"]);
    let real = pointer_id(&env, &src, "HEAD:real.bin");
    let other = pointer_id(&env, &src, "HEAD:other.bin");

    // A local-path "remote" whose store has the manifest of other.bin under real.bin's id
    // (rewritten to claim that id), then a size bomb: the same with another size.
    let liar = env.path("liar");
    env.git(
        env.tmp.path(),
        &["clone", "-q", src.to_str().unwrap(), "liar"],
    );
    let manifest = |id: &str| {
        liar.join(".git/dits/manifests")
            .join(&id[..2])
            .join(&id[2..])
    };
    let forged = forge_manifest(&fs::read(manifest(&other)).unwrap(), &real);
    fs::write(manifest(&real), &forged).unwrap();

    let b = env.path("b");
    env.run_ok(
        env.cmd(env.tmp.path(), "git")
            .args(["clone", "-q", liar.to_str().unwrap(), "b"])
            .env("GIT_DITS_SKIP_SMUDGE", "1"),
    );
    env.git(&b, &["config", "dits.url", &server.url("team/film")]);
    env.dits(&b, &["checkout"]);
    assert_eq!(b3(&b.join("real.bin")), real, "the honest server's content");
    env.dits(&b, &["fsck"]);

    let (bomb, claimed) = size_bomb(&fs::read(manifest(&other)).unwrap(), &real);
    fs::write(manifest(&real), &bomb).unwrap();
    let c = env.path("c");
    env.run_ok(
        env.cmd(env.tmp.path(), "git")
            .args(["clone", "-q", liar.to_str().unwrap(), "c"])
            .env("GIT_DITS_SKIP_SMUDGE", "1"),
    );
    let out = env.dits_output(&c, &["checkout", "real.bin"]);
    assert!(
        !out.status.success(),
        "no honest source: the checkout fails"
    );
    let err = stderr_of(&out);
    assert!(
        err.contains(&format!(
            "describes {claimed} bytes but the pointer says {}",
            3 * MIB
        )),
        "{err}"
    );
    assert!(
        fs::metadata(c.join("real.bin")).unwrap().len() < 200,
        "still the pointer"
    );
}

/// The checksum a top-level manifest ends with.
fn manifest_checksum(body: &[u8]) -> [u8; 32] {
    *blake3::Hasher::new_derive_key("dits 2026-11 manifest v2")
        .update(body)
        .finalize()
        .as_bytes()
}

fn id_bytes(id: &str) -> Vec<u8> {
    (0..32)
        .map(|i| u8::from_str_radix(&id[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// A top-level manifest (as stored) rewritten to name file `id`, its checksum recomputed:
/// what a hostile store would hold for a file whose content it does not have.
fn forge_manifest(top: &[u8], id: &str) -> Vec<u8> {
    let mut t = top.to_vec();
    t[24..56].copy_from_slice(&id_bytes(id));
    let body = t.len() - 32;
    let sum = manifest_checksum(&t[..body]);
    t[body..].copy_from_slice(&sum);
    t
}

/// A consistent top-level manifest for file `id` that lists the first group of `top` over
/// and over, for about 8 GiB of content in under 100 KB; and the size it claims.
fn size_bomb(top: &[u8], id: &str) -> (Vec<u8>, u64) {
    const HEADER: usize = 68;
    const GROUP_REF: usize = 44;
    let group = &top[HEADER..HEADER + GROUP_REF];
    let bytes = u64::from_le_bytes(group[36..44].try_into().unwrap());
    let copies = (8u64 << 30) / bytes;
    let mut t = top[..HEADER].to_vec();
    t[24..56].copy_from_slice(&id_bytes(id));
    t[56..64].copy_from_slice(&(copies * bytes).to_le_bytes());
    t[64..68].copy_from_slice(&(copies as u32).to_le_bytes());
    for _ in 0..copies {
        t.extend_from_slice(group);
    }
    let sum = manifest_checksum(&t);
    t.extend_from_slice(&sum);
    (t, copies * bytes)
}

/// `fsck --repair` on a pack with a damaged header and on a pack whose index was deleted:
/// everything readable stays readable, and fsck is clean after.
#[test]
fn repair_of_a_damaged_header_and_a_lost_index_loses_nothing() {
    let env = Env::new();
    let repo = env.repo("r", &["*.bin"]);
    write_content(&repo.join("a.bin"), 70, 2 * MIB);
    write_content(&repo.join("b.bin"), 71, 2 * MIB);
    env.commit_all(&repo, "a and b");
    let packs: Vec<PathBuf> = fs::read_dir(repo.join(".git/dits/packs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .collect();
    assert_eq!(packs.len(), 1, "one git add, one pack: {packs:?}");
    let mut bytes = fs::read(&packs[0]).unwrap();
    bytes[3] ^= 0x20;
    fs::write(&packs[0], &bytes).unwrap();
    let out = env.dits_output(&repo, &["fsck"]);
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("header"), "{}", stderr_of(&out));
    // Nothing is unreadable meanwhile.
    let (a, b) = (b3(&repo.join("a.bin")), b3(&repo.join("b.bin")));
    fs::remove_file(repo.join("a.bin")).unwrap();
    env.git(&repo, &["checkout", "--", "a.bin"]);
    assert_eq!(b3(&repo.join("a.bin")), a);
    env.dits(&repo, &["fsck", "--repair"]);
    env.dits(&repo, &["fsck"]);

    // A lost index costs a walk of its pack, not content: every record is found and
    // verified. The pack (older than an hour, so no writer can still be at it) is indexed
    // again from its records.
    let pack = fs::read_dir(repo.join(".git/dits/packs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pack"))
        .unwrap();
    fs::remove_file(pack.with_extension("idx")).unwrap();
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    fs::File::options()
        .write(true)
        .open(&pack)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    env.dits(&repo, &["fsck"]);
    let repair = env.dits(&repo, &["fsck", "--repair"]);
    assert!(
        pack.with_extension("idx").is_file(),
        "index rebuilt\n{}",
        crate::support::show(&repair)
    );
    env.dits(&repo, &["fsck"]);
    for (name, hash) in [("a.bin", &a), ("b.bin", &b)] {
        assert_eq!(env.cat_b3(&repo, &format!("HEAD:{name}")), *hash);
    }
}
