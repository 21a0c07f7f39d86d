//! Sharing through a real `git dits serve` on 127.0.0.1 with real git on both sides: push,
//! clone, fetch, pull, branches, tags, force-push, deletion, two users, the ordinary-host
//! path, skip-smudge clones, the integrity invariant and authentication refusals.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

use crate::support::{b3, stderr_of, stdout_of, write_content, Env, GITS};

/// A repository with two tracked media files and a code file, committed.
fn media_repo(env: &Env, name: &str) -> std::path::PathBuf {
    let dir = env.repo(name, &["*.mov", "*.bin"]);
    write_content(&dir.join("clip.mov"), 1, 3 << 20);
    write_content(&dir.join("asset.bin"), 2, 700_000);
    fs::write(dir.join("main.c"), "int main(void) { return 0; }\n").unwrap();
    env.commit_all(&dir, "first");
    dir
}

fn same_files(a: &Path, b: &Path, names: &[&str]) {
    for n in names {
        assert_eq!(b3(&a.join(n)), b3(&b.join(n)), "{n} differs");
    }
}

/// Overwrites `len` bytes at `offset` with other deterministic bytes.
fn edit_in_place(path: &Path, offset: u64, len: usize, seed: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&crate::support::content(seed, len)).unwrap();
}

#[test]
fn push_clone_pull_branches_tags_force_and_delete() {
    for git in GITS {
        let env = Env::with_git(Path::new(git));
        let server = env.start_server("srv");
        let token = env.token(&server, "team/*", true);
        env.login(&server, &token);
        let a = media_repo(&env, "a");
        let url = server.url("team/film");
        env.git(&a, &["remote", "add", "origin", &url]);
        env.git(&a, &["push", "-q", "-u", "origin", "main"]);
        let first_push = server.bytes("put");
        assert!(
            first_push >= (3 << 20) + 700_000,
            "the content went to the server ({first_push} bytes)"
        );
        // Git objects are real Git on the server: a bare repository with pointers only.
        let bare = server.repo_dir("team/film");
        let blob = env.git_stdout(&bare, &["cat-file", "-p", "main:clip.mov"]);
        assert!(blob.starts_with("dits-pointer v1\n"), "{blob}");

        let b = env.path("b");
        env.git(env.tmp.path(), &["clone", "-q", &url, "b"]);
        same_files(&a, &b, &["clip.mov", "asset.bin", "main.c"]);
        env.assert_clean(&b);

        // An edit of 64 KiB in a 3 MiB file sends about that, not the file.
        edit_in_place(&a.join("clip.mov"), 1 << 20, 64 << 10, 9);
        env.commit_all(&a, "edit");
        let before = server.bytes("put");
        env.git(&a, &["push", "-q"]);
        let sent = server.bytes("put") - before;
        assert!(
            sent < (64 << 10) + (1 << 20),
            "an edit of 64 KiB sent {sent} bytes"
        );
        env.git(&b, &["pull", "-q"]);
        same_files(&a, &b, &["clip.mov"]);
        env.assert_clean(&b);

        // Branches and tags.
        env.git(&a, &["switch", "-q", "-c", "feature"]);
        write_content(&a.join("extra.bin"), 3, 200_000);
        env.commit_all(&a, "feature");
        env.git(&a, &["push", "-q", "origin", "feature"]);
        env.git(&a, &["tag", "-a", "-m", "v1", "v1"]);
        env.git(&a, &["push", "-q", "origin", "v1"]);
        let refs = env.git_stdout(&a, &["ls-remote", "origin"]);
        for r in ["refs/heads/main", "refs/heads/feature", "refs/tags/v1"] {
            assert!(refs.contains(r), "{r} missing from\n{refs}");
        }
        env.git(&b, &["fetch", "-q"]);
        env.git(&b, &["switch", "-q", "feature"]);
        same_files(&a, &b, &["extra.bin"]);

        // Force-push a rewritten branch, then delete it.
        write_content(&a.join("extra.bin"), 4, 200_000);
        env.git(&a, &["commit", "-q", "-a", "--amend", "-m", "feature v2"]);
        env.git(&a, &["push", "-q", "-f", "origin", "feature"]);
        let head = env.git_stdout(&a, &["rev-parse", "HEAD"]);
        let remote = env.git_stdout(&a, &["ls-remote", "origin", "refs/heads/feature"]);
        assert!(remote.starts_with(head.trim()), "{remote} vs {head}");
        env.git(&a, &["push", "-q", "origin", "--delete", "feature"]);
        let refs = env.git_stdout(&a, &["ls-remote", "origin"]);
        assert!(!refs.contains("refs/heads/feature"), "{refs}");
        assert!(server
            .server_log()
            .contains("authenticated as tester for team/film"));

        // A repository created by pushing a branch that is not git's default gets that
        // branch as HEAD, so clones check it out.
        let trunk = server.url("team/trunk-only");
        env.git(&a, &["push", "-q", &trunk, "main:trunk"]);
        env.git(env.tmp.path(), &["clone", "-q", &trunk, "t"]);
        let branch = env.git_stdout(&env.path("t"), &["rev-parse", "--abbrev-ref", "HEAD"]);
        assert_eq!(branch.trim(), "trunk");
        same_files(&a, &env.path("t"), &["clip.mov"]);
    }
}

#[test]
fn two_users_one_rejected_then_succeeds_after_pull() {
    let env = Env::new();
    let (server, _) = env.logged_in_server("srv");
    let a = media_repo(&env, "a");
    let url = server.url("team/film");
    env.git(&a, &["remote", "add", "origin", &url]);
    env.git(&a, &["push", "-q", "-u", "origin", "main"]);
    env.git(env.tmp.path(), &["clone", "-q", &url, "b"]);
    let b = env.path("b");

    write_content(&a.join("a-only.bin"), 10, 300_000);
    env.commit_all(&a, "from a");
    write_content(&b.join("b-only.bin"), 11, 300_000);
    env.commit_all(&b, "from b");
    env.git(&a, &["push", "-q"]);
    let out = env.git_fails(&b, &["push"]);
    let err = stderr_of(&out);
    assert!(
        err.contains("rejected")
            && (err.contains("fetch first") || err.contains("non-fast-forward")),
        "{err}"
    );
    env.git(&b, &["pull", "-q", "--no-rebase", "--no-edit"]);
    env.git(&b, &["push", "-q"]);
    env.git(&a, &["pull", "-q"]);
    same_files(&a, &b, &["a-only.bin", "b-only.bin", "clip.mov"]);
    env.assert_clean(&a);
    env.assert_clean(&b);
}

#[test]
fn skip_smudge_clone_then_fetch_and_pull() {
    let env = Env::new();
    let (server, _) = env.logged_in_server("srv");
    let a = media_repo(&env, "a");
    let url = server.url("team/film");
    env.git(&a, &["remote", "add", "origin", &url]);
    env.git(&a, &["push", "-q", "-u", "origin", "main"]);

    let mut clone = env.cmd(env.tmp.path(), "git");
    clone
        .args(["clone", "-q", &url, "b"])
        .env("GIT_DITS_SKIP_SMUDGE", "1");
    env.run_ok(&mut clone);
    let b = env.path("b");
    let text = fs::read_to_string(b.join("clip.mov")).unwrap();
    assert!(
        text.starts_with("dits-pointer v1\n"),
        "skip-smudge leaves pointers"
    );
    let gets_before = server.bytes("get");
    assert_eq!(gets_before, 0, "a skip-smudge clone downloads no content");

    // fetch brings the content into the store only; pull writes the files.
    env.dits(&b, &["fetch", "-q"]);
    assert!(server.bytes("get") >= (3 << 20) + 700_000);
    assert!(fs::read_to_string(b.join("clip.mov"))
        .unwrap()
        .starts_with("dits-pointer v1\n"));
    let ls = env.dits_stdout(&b, &["ls-files"]);
    assert!(!ls.contains("missing"), "fetched content is local:\n{ls}");
    let fetched = server.bytes("get");
    env.dits(&b, &["pull", "-q", "clip.mov"]);
    assert_eq!(
        server.bytes("get"),
        fetched,
        "pull after fetch needs no download"
    );
    same_files(&a, &b, &["clip.mov"]);
    assert!(fs::read_to_string(b.join("asset.bin")).is_ok_and(|t| t.starts_with("dits-pointer")));
    env.dits(&b, &["pull", "-q"]);
    same_files(&a, &b, &["clip.mov", "asset.bin"]);
    env.assert_clean(&b);
}

/// A clone writes a file Dits places itself (above `dits.smudge.inlineLimit`) while its
/// chunks arrive, and keeps them in the store as well: the result is exact, complete locally
/// and leaves no temp file.
#[test]
fn clone_writes_large_files_while_fetching() {
    let env = Env::new();
    let (server, _) = env.logged_in_server("srv");
    let a = env.repo("a", &["*.bin"]);
    write_content(&a.join("big.bin"), 71, (5 << 20) + 12_345);
    write_content(&a.join("small.bin"), 72, 200_000);
    env.commit_all(&a, "content");
    let url = server.url("team/film");
    env.git(&a, &["remote", "add", "origin", &url]);
    env.git(&a, &["push", "-q", "-u", "origin", "main"]);

    let out = env.run_ok(
        env.cmd(env.tmp.path(), "git")
            .args(["clone", "-q", "-c", "dits.smudge.inlineLimit=1m", &url, "b"])
            .env("DITS_LOG", "debug"),
    );
    let log = stderr_of(&out);
    assert!(
        log.contains("path=big.bin") && log.contains("written while it was fetched"),
        "big.bin was not written during the fetch:\n{log}"
    );
    let b = env.path("b");
    same_files(&a, &b, &["big.bin", "small.bin"]);
    env.assert_clean(&b);
    let ls = env.dits_stdout(&b, &["ls-files"]);
    assert!(
        !ls.contains("missing"),
        "content is also in the store:\n{ls}"
    );
    env.dits(&b, &["fsck"]);
    let leftovers: Vec<_> = fs::read_dir(b.join(".git/dits/tmp"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[test]
fn ordinary_git_host_gets_content_through_the_pre_push_hook() {
    let env = Env::new();
    let (server, _) = env.logged_in_server("srv");
    let hub = env.path("hub.git");
    env.git(
        env.tmp.path(),
        &["init", "-q", "--bare", hub.to_str().unwrap()],
    );
    let hub_url = format!("file://{}", hub.display());

    let a = env.repo("a", &["*.mov", "*.bin"]);
    // Committed, so every clone and CI job knows where the content lives.
    fs::write(
        a.join(".ditsconfig"),
        format!("[dits]\n\turl = {}\n", server.url("team/film")),
    )
    .unwrap();
    write_content(&a.join("clip.mov"), 1, 2 << 20);
    env.commit_all(&a, "first");
    env.git(&a, &["remote", "add", "origin", &hub_url]);
    env.git(&a, &["push", "-q", "-u", "origin", "main"]);
    assert!(
        server.bytes("put") >= 2 << 20,
        "the hook uploaded the content"
    );
    assert!(
        !hub.join("dits").exists(),
        "content goes to the Dits server, not into the Git host"
    );

    // A clone from the Git host finds the server through .ditsconfig.
    env.git(env.tmp.path(), &["clone", "-q", &hub_url, "c"]);
    same_files(&a, &env.path("c"), &["clip.mov"]);
    env.assert_clean(&env.path("c"));

    // With the server down, the push fails and the Git host does not move.
    write_content(&a.join("clip2.mov"), 2, 1 << 20);
    env.commit_all(&a, "second");
    let mut server = server;
    server.stop();
    let before = env.git_stdout(&hub, &["rev-parse", "main"]);
    let mut push = env.cmd(&a, "git");
    push.args(["-c", "dits.timeout=2", "push", "-q"]);
    let out = push.output().unwrap();
    assert!(
        !out.status.success(),
        "push must fail:\n{}",
        crate::support::show(&out)
    );
    assert_eq!(env.git_stdout(&hub, &["rev-parse", "main"]), before);

    // Without any Dits server named, a push to a host that is not on this machine is
    // refused by the hook git runs (fed exactly what git feeds it).
    let d = env.repo("d", &["*.mov"]);
    write_content(&d.join("only-here.mov"), 5, 100_000);
    env.commit_all(&d, "unshared");
    let head = env.git_stdout(&d, &["rev-parse", "HEAD"]);
    let mut hook = env.cmd(&d, "git");
    hook.args([
        "dits",
        "hook",
        "pre-push",
        "origin",
        "https://git.example.invalid/x.git",
    ])
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut child = hook.spawn().unwrap();
    use std::io::Write;
    writeln!(
        child.stdin.take().unwrap(),
        "refs/heads/main {} refs/heads/main {}",
        head.trim(),
        "0".repeat(40)
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("only-here.mov") && err.contains("dits.url"),
        "{err}"
    );
}

#[test]
fn pushing_content_that_exists_nowhere_is_refused_on_both_sides() {
    let env = Env::new();
    let (server, _) = env.logged_in_server("srv");
    let a = media_repo(&env, "a");
    let url = server.url("team/film");
    env.git(&a, &["remote", "add", "origin", &url]);
    env.git(&a, &["push", "-q", "-u", "origin", "main"]);

    write_content(&a.join("lost.mov"), 20, 1 << 20);
    env.commit_all(&a, "lost content");
    // The content vanishes from the local store before the push.
    for entry in fs::read_dir(a.join(".git/dits/packs")).unwrap() {
        fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let out = env.git_fails(&a, &["push"]);
    let err = stderr_of(&out);
    assert!(err.contains("lost.mov"), "the error names the path:\n{err}");
    let head = env.git_stdout(&a, &["rev-parse", "HEAD"]);
    let remote = env.git_stdout(&a, &["ls-remote", "origin", "refs/heads/main"]);
    assert!(!remote.starts_with(head.trim()), "the ref did not move");

    // The server enforces it too: a push straight into its repository, bypassing the
    // helper, is refused by its update hook.
    let bare = server.repo_dir("team/film");
    let out = env.git_fails(
        &a,
        &[
            "push",
            "--no-verify",
            bare.to_str().unwrap(),
            "HEAD:refs/heads/main",
        ],
    );
    let err = stderr_of(&out);
    assert!(
        err.contains("dits: refusing refs/heads/main") && err.contains("lost.mov"),
        "{err}"
    );
    let on_server = env.git_stdout(&bare, &["rev-parse", "main"]);
    assert_ne!(on_server.trim(), head.trim());
}

#[test]
fn authentication_and_trust_refusals_are_clear() {
    let env = Env::new();
    env.dits(&env.home, &["install", "--global", "-q"]);
    let server = env.start_server("srv");
    let write = env.token(&server, "team/film", true);
    let read = env.token(&server, "team/film", false);
    let other = env.token(&server, "team/other", true);
    let a = media_repo(&env, "a");
    let url = server.url("team/film");
    env.git(&a, &["remote", "add", "origin", &url]);

    // Unknown server, nothing pinned, no trust-on-first-use: refused with the fingerprint.
    let mut push = env.cmd(&a, "git");
    push.args(["push", "origin", "main"])
        .env("GIT_TERMINAL_PROMPT", "0");
    let out = push.output().unwrap();
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("not known") && err.contains(&server.fingerprint),
        "{err}"
    );

    // Trusted on first use when asked to, and pinned in the repository's config.
    let mut push = env.cmd(&a, "git");
    push.args(["push", "origin", "main"])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_DITS_TRUST_NEW_SERVER", "1");
    let out = push.output().unwrap();
    let err = stderr_of(&out);
    assert!(!out.status.success(), "no token yet");
    assert!(err.contains("requires a token"), "{err}");
    let pinned = env.git_stdout(
        &a,
        &["config", &format!("dits.{}.fingerprint", server.addr)],
    );
    assert_eq!(pinned.trim(), server.fingerprint);

    // A wrong pin is a refusal, not a silent trust; a malformed one is named as such.
    let key = format!("dits.{}.fingerprint", server.addr);
    let wrong = format!("blake3:{}", "0".repeat(64));
    env.git(&a, &["config", &key, &wrong]);
    let out = env.git_fails(&a, &["push", "origin", "main"]);
    let err = stderr_of(&out);
    assert!(err.contains(&format!("pins {wrong}")), "{err}");
    assert!(err.contains("intercepting"), "{err}");
    env.git(&a, &["config", &key, "blake3:0000"]);
    let out = env.git_fails(&a, &["push", "origin", "main"]);
    let err = stderr_of(&out);
    assert!(err.contains("is not a certificate fingerprint"), "{err}");
    assert!(!err.contains("intercepting"), "{err}");
    env.git(&a, &["config", &key, &server.fingerprint]);

    // A token for another repository, then a read-only one.
    env.login(&server, &other);
    let out = env.git_fails(&a, &["push", "origin", "main"]);
    assert!(
        stderr_of(&out).contains("refused the token"),
        "{}",
        stderr_of(&out)
    );
    // A valid token for another repository is not erased from the credential helper.
    let stored = fs::read_to_string(env.path("credentials")).unwrap();
    assert!(stored.contains(&other), "the token survived: {stored}");
    env.login(&server, &read);
    let out = env.git_fails(&a, &["push", "origin", "main"]);
    assert!(stderr_of(&out).contains("read-only"), "{}", stderr_of(&out));
    assert!(
        !server.repo_dir("team/film").exists(),
        "nothing was created"
    );

    // Write works; then the read-only token clones.
    env.login(&server, &write);
    env.git(&a, &["push", "-q", "origin", "main"]);
    env.login(&server, &read);
    env.git(env.tmp.path(), &["clone", "-q", &url, "b"]);
    same_files(&a, &env.path("b"), &["clip.mov"]);

    // Hostile repository paths never reach the server.
    for bad in ["team/../x", "/abs", "a//b", ".hidden"] {
        let out = env.git_output(
            env.tmp.path(),
            &["clone", &format!("dits://{}/{bad}", server.addr), "bad"],
        );
        assert!(!out.status.success());
        assert!(
            stderr_of(&out).contains("invalid repository path"),
            "{bad}: {}",
            stderr_of(&out)
        );
    }
}

#[test]
fn a_new_server_behind_an_old_url_gets_all_content() {
    // Remote-tracking refs say origin has the commit, but origin is now another (empty)
    // server: the helper trusts the server's own ref advertisement, not those refs.
    let env = Env::new();
    let first = env.start_server("one");
    let token = env.token(&first, "team/film", true);
    env.login(&first, &token);
    let a = media_repo(&env, "a");
    env.git(&a, &["remote", "add", "origin", &first.url("team/film")]);
    env.git(&a, &["push", "-q", "-u", "origin", "main"]);
    let second = env.start_server("two");
    let token2 = env.token(&second, "team/film", true);
    env.also_via(&second, &token2, &second.addr);
    env.git(
        &a,
        &["remote", "set-url", "origin", &second.url("team/film")],
    );
    env.git(&a, &["push", "-q", "origin", "main"]);
    assert!(second.bytes("put") >= 3 << 20);
    env.git(
        env.tmp.path(),
        &["clone", "-q", &second.url("team/film"), "b"],
    );
    same_files(&a, &env.path("b"), &["clip.mov", "asset.bin"]);
}

/// Allocated bytes under `dir` (what `du` counts).
fn disk_use(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            disk_use(&entry.path())
        } else {
            meta.blocks() * 512
        };
    }
    total
}

#[test]
fn prune_keeps_a_clone_near_one_copy_and_fsck_knows_the_server_has_the_rest() {
    let env = Env::new();
    let (server, _) = env.logged_in_server("srv");
    let a = media_repo(&env, "a");
    env.git(&a, &["remote", "add", "origin", &server.url("team/film")]);
    env.git(&a, &["push", "-q", "-u", "origin", "main"]);
    edit_in_place(&a.join("clip.mov"), 0, 4096, 33);
    env.commit_all(&a, "v2");
    env.git(&a, &["push", "-q"]);

    env.git(
        env.tmp.path(),
        &["clone", "-q", &server.url("team/film"), "b"],
    );
    let b = env.path("b");
    let content = (3 << 20) + 700_000;
    assert!(
        disk_use(&b.join(".git/dits")) > content,
        "a clone stores the content twice"
    );

    // Content that exists only here is never dropped; an unpushed edit of a pushed file
    // shares most chunks with the pushed version.
    write_content(&b.join("local-only.bin"), 44, 500_000);
    edit_in_place(&b.join("clip.mov"), 2 << 20, 1000, 45);
    env.commit_all(&b, "not pushed");
    let edited = b3(&b.join("clip.mov"));
    let status = env.dits_stdout(&b, &["status"]);
    assert!(
        status.contains("unpushed local-only.bin") && status.contains("unpushed clip.mov"),
        "{status}"
    );
    assert!(!status.contains("unpushed asset.bin"), "{status}");
    env.dits(&b, &["prune", "-q", "--now"]);
    let store = disk_use(&b.join(".git/dits"));
    assert!(store < 700_000, "after prune the store holds {store} bytes");
    assert!(
        disk_use(&b) < content + 700_000 + (1 << 20),
        "the clone is about 1x its content"
    );

    // fsck: content on the server is not a problem; the local-only file is intact.
    let out = env.dits(&b, &["fsck"]);
    assert!(
        stderr_of(&out).contains("not stored here but are on"),
        "{}",
        stderr_of(&out)
    );
    // Versions needed later come back from the server, verified.
    env.git(&b, &["checkout", "-q", "HEAD~2"]);
    same_files(&a, &b, &["asset.bin"]);
    env.git(&a, &["checkout", "-q", "HEAD~1"]);
    same_files(&a, &b, &["clip.mov"]);
    env.git(&b, &["checkout", "-q", "main"]);
    env.assert_clean(&b);
    assert!(b.join("local-only.bin").is_file());
    // The unpushed version reads back: its shared chunks come from the server by id.
    assert_eq!(env.cat_b3(&b, "HEAD:clip.mov"), edited);

    // With the server gone, what is not here is a problem again.
    env.dits(&b, &["prune", "-q", "--now"]);
    let mut server = server;
    server.stop();
    let mut fsck = env.cmd(&b, "git");
    fsck.args(["-c", "dits.timeout=2", "dits", "fsck"]);
    let out = fsck.output().unwrap();
    assert!(!out.status.success(), "{}", crate::support::show(&out));
}

#[test]
fn a_server_with_a_ca_issued_certificate_needs_no_pin() {
    let env = Env::new();
    env.dits(&env.home, &["install", "--global", "-q"]);
    let pki = env.path("pki");
    fs::create_dir_all(&pki).unwrap();
    let openssl = |args: &[&str]| {
        let mut cmd = env.cmd(&pki, "openssl");
        cmd.args(args);
        env.run_ok(&mut cmd);
    };
    // A private CA and a server certificate it signs for 127.0.0.1, as a company CA would.
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "30",
        "-subj",
        "/CN=Dits Test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    fs::write(
        pki.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "30",
        "-extfile",
        "san.ext",
    ]);
    let cert = pki.join("server.pem").display().to_string();
    let key = pki.join("server.key").display().to_string();
    let server = env.start_server_with("srv", "127.0.0.1:0", &["--cert", &cert, "--key", &key]);
    let token = env.token(&server, "team/film", true);
    // The token only: no pin, no trust-on-first-use.
    let creds = env.path("credentials");
    fs::write(&creds, format!("dits://user:{token}@{}\n", server.addr)).unwrap();
    env.git(
        &env.home,
        &[
            "config",
            "--global",
            "credential.helper",
            &format!("store --file={}", creds.display()),
        ],
    );
    let a = media_repo(&env, "a");
    env.git(&a, &["remote", "add", "origin", &server.url("team/film")]);

    // Without the CA the server is unknown...
    let mut push = env.cmd(&a, "git");
    push.args(["push", "-q", "origin", "main"])
        .env("GIT_TERMINAL_PROMPT", "0");
    let out = push.output().unwrap();
    assert!(
        !out.status.success() && stderr_of(&out).contains("not known"),
        "{}",
        stderr_of(&out)
    );
    // ...with dits.caFile it is trusted through the CA, and nothing is pinned.
    let ca = pki.join("ca.pem").display().to_string();
    env.git(&env.home, &["config", "--global", "dits.caFile", &ca]);
    env.git(&a, &["push", "-q", "origin", "main"]);
    let pins = env.git_output(&a, &["config", "--get-regexp", "fingerprint"]);
    assert!(
        stdout_of(&pins).is_empty(),
        "a CA-verified server is not pinned"
    );
    env.git(
        env.tmp.path(),
        &["clone", "-q", &server.url("team/film"), "b"],
    );
    same_files(&a, &env.path("b"), &["clip.mov"]);
}
