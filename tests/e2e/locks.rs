//! Locks: two users with their own homes and tokens, a real server on 127.0.0.1, real git
//! on both sides. The server refuses pushes that change a path someone else locked (on a
//! `dits://` remote through its own hook; for other Git hosts through the client's pre-push
//! and the host's pre-receive asking the server).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::server::Server;
use crate::support::{stderr_of, stdout_of, write_content, Env};

const REPO: &str = "team/film";

/// A user: their own home (config, credentials, pin) and token.
struct User {
    env: Env,
    name: &'static str,
}

impl User {
    fn new(server: &Server, owner: &Env, name: &'static str, rights: &str) -> User {
        let env = Env::new();
        let token = owner.user_token(server, "team/*", rights, name);
        env.login(server, &token);
        User { env, name }
    }

    fn clone(&self, server: &Server) -> PathBuf {
        let dir = self.env.path(self.name);
        self.env.git(
            self.env.tmp.path(),
            &["clone", "-q", &server.url(REPO), dir.to_str().unwrap()],
        );
        dir
    }
}

fn writable(path: &Path) -> bool {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o222 != 0
}

/// The ctime (seconds) git's index holds for `path`.
fn index_ctime(env: &Env, dir: &Path, path: &str) -> i64 {
    let debug = env.git_stdout(dir, &["ls-files", "--debug", "--", path]);
    let line = debug
        .lines()
        .find_map(|l| l.trim().strip_prefix("ctime: "))
        .unwrap_or_else(|| panic!("no ctime in {debug}"));
    line.split(':').next().unwrap().parse().unwrap()
}

fn server_tip(server: &Server) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(server.repo_dir(REPO))
        .args(["rev-parse", "refs/heads/main"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Alice's repository with two lockable files and a plain one, pushed to the server.
fn pushed_project(alice: &User, server: &Server) -> PathBuf {
    let dir = alice.env.repo("project", &[]);
    alice
        .env
        .dits(&dir, &["track", "-q", "--lockable", "*.psd"]);
    std::fs::create_dir_all(dir.join("art")).unwrap();
    write_content(&dir.join("art/hero.psd"), 1, 200_000);
    write_content(&dir.join("art/villain.psd"), 2, 100_000);
    std::fs::write(dir.join("notes.txt"), "notes\n").unwrap();
    alice.env.commit_all(&dir, "art");
    alice
        .env
        .git(&dir, &["remote", "add", "origin", &server.url(REPO)]);
    alice.env.git(&dir, &["push", "-q", "-u", "origin", "main"]);
    dir
}

#[test]
fn a_locked_file_cannot_be_pushed_by_anyone_else_and_unlocking_lets_them() {
    let owner = Env::new();
    let mut server = owner.start_server("server");
    let alice = User::new(&server, &owner, "alice", "--write");
    let bob = User::new(&server, &owner, "bob", "--write");
    let a = pushed_project(&alice, &server);
    let b = bob.clone(&server);
    // Lockable files arrive read-only; a plain file does not.
    assert!(!writable(&b.join("art/hero.psd")));
    assert!(writable(&b.join("notes.txt")));

    let out = alice.env.dits(
        &a,
        &["lock", "art/hero.psd", "--reason", "retouching the face"],
    );
    assert!(stderr_of(&out).contains("Locked art/hero.psd"));
    assert!(writable(&a.join("art/hero.psd")));

    // Bob cannot take it, and is told who has it and why.
    let out = bob.env.dits_output(&b, &["lock", "art/hero.psd"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("alice") && err.contains("retouching the face"),
        "{err}"
    );
    // Tools get the same as JSON, with the exit code.
    let out = bob.env.dits_output(&b, &["lock", "--json", "art/hero.psd"]);
    assert_eq!(out.status.code(), Some(3));
    let json = stdout_of(&out);
    assert!(
        json.contains("\"result\": \"refused\"")
            && json.contains("\"why\": \"held\"")
            && json.contains("\"owner\": \"alice\""),
        "{json}"
    );
    // Nor in another case (a Windows or macOS user's spelling of the same file).
    std::fs::write(b.join("art/HERO.psd"), "other case").unwrap();
    let out = bob.env.dits_output(&b, &["lock", "art/HERO.psd"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    std::fs::remove_file(b.join("art/HERO.psd")).unwrap();
    // The listing, for tools.
    let json = stdout_of(&bob.env.dits(&b, &["locks", "--json"]));
    assert!(
        json.contains("\"owner\": \"alice\"") && json.contains("art/hero.psd"),
        "{json}"
    );

    // Bob edits it anyway and commits; the server refuses the push and nothing moves.
    let before = server_tip(&server);
    std::fs::set_permissions(
        b.join("art/hero.psd"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    write_content(&b.join("art/hero.psd"), 3, 200_000);
    bob.env.commit_all(&b, "bob's hero");
    // The server restarting (kill -9) between the lock and the push loses no lock.
    let addr = server.addr.clone();
    server.kill();
    let server = owner.start_server_at("server", &addr);
    let out = bob.env.git_fails(&b, &["push", "-q"]);
    let err = stderr_of(&out);
    assert!(
        err.contains("art/hero.psd is locked by alice") && err.contains("hint:"),
        "{err}"
    );
    assert_eq!(
        server_tip(&server),
        before,
        "a refused push moved the branch"
    );

    // A push of new, unrelated files is never blocked.
    bob.env.git(&b, &["reset", "-q", "--hard", "origin/main"]);
    write_content(&b.join("art/prop.psd"), 4, 50_000);
    bob.env.commit_all(&b, "a prop");
    bob.env.git(&b, &["push", "-q"]);

    // Alice pushes her change (her lock lets her) and unlocks: read-only again for her.
    alice.env.git(&a, &["pull", "-q", "--no-rebase"]);
    write_content(&a.join("art/hero.psd"), 5, 200_000);
    // Unlocking before the change is on the server would let someone else start from the
    // old version: refused until it is pushed.
    let out = alice.env.dits_output(&a, &["unlock", "art/hero.psd"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("not committed"),
        "{}",
        stderr_of(&out)
    );
    alice.env.commit_all(&a, "alice's hero");
    let out = alice.env.dits_output(&a, &["unlock", "art/hero.psd"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("not pushed"),
        "{}",
        stderr_of(&out)
    );
    alice.env.git(&a, &["push", "-q"]);
    alice.env.dits(&a, &["unlock", "art/hero.psd"]);
    assert!(!writable(&a.join("art/hero.psd")));

    // Bob pulls (the changed lockable file comes read-only), locks, edits and pushes.
    bob.env.git(&b, &["pull", "-q", "--no-rebase"]);
    assert!(!writable(&b.join("art/hero.psd")));
    // A second later (git compares ctimes to the second), the lock's chmod moves the ctime:
    // the index learns it, so git does not read the file again to find nothing changed.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    bob.env
        .dits(&b, &["lock", "art/hero.psd", "--release-on-push"]);
    assert!(writable(&b.join("art/hero.psd")));
    let meta = std::fs::metadata(b.join("art/hero.psd")).unwrap();
    assert_eq!(
        index_ctime(&bob.env, &b, "art/hero.psd"),
        std::os::unix::fs::MetadataExt::ctime(&meta),
    );
    write_content(&b.join("art/hero.psd"), 6, 200_000);
    bob.env.commit_all(&b, "bob's hero, locked");
    let out = bob.env.git(&b, &["push", "-q"]);
    assert!(
        stderr_of(&out).contains("released bob's lock on art/hero.psd"),
        "{}",
        stderr_of(&out)
    );
    let left = stdout_of(&bob.env.dits(&b, &["locks"]));
    assert!(left.trim().is_empty(), "the push released the lock: {left}");
}

#[test]
fn locking_refuses_bad_paths_old_versions_and_read_only_tokens() {
    let owner = Env::new();
    let server = owner.start_server("server");
    let alice = User::new(&server, &owner, "alice", "--write");
    let bob = User::new(&server, &owner, "bob", "--write");
    let reader = User::new(&server, &owner, "carol", "--read");
    let a = pushed_project(&alice, &server);
    let b = bob.clone(&server);

    for (path, said) in [
        ("../outside.psd", "outside the repository"),
        ("/etc/passwd", "outside the repository"),
        ("art", "is a directory"),
        ("art/missing.psd", "does not exist"),
        (".git/config", "inside .git"),
    ] {
        let out = alice.env.dits_output(&a, &["lock", path]);
        assert_eq!(out.status.code(), Some(2), "{path}: {}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains(said),
            "{path}: {}",
            stderr_of(&out)
        );
    }

    // Bob pushes a new hero; Alice, who has not pulled, would edit an old version.
    std::fs::set_permissions(
        b.join("art/hero.psd"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    write_content(&b.join("art/hero.psd"), 7, 200_000);
    bob.env.commit_all(&b, "new hero");
    bob.env.git(&b, &["push", "-q"]);
    let out = alice.env.dits_output(&a, &["lock", "art/hero.psd"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("git pull"), "{}", stderr_of(&out));
    // A file nobody changed since is fine, and after a pull so is the hero.
    alice.env.dits(&a, &["lock", "art/villain.psd"]);
    alice.env.git(&a, &["pull", "-q", "--no-rebase"]);
    alice.env.dits(&a, &["lock", "art/hero.psd"]);

    // A token of another repository is refused by name.
    let stranger = Env::new();
    let token = owner.user_token(&server, "other/*", "--write", "dave");
    stranger.login(&server, &token);
    let d = stranger.path("d");
    std::fs::create_dir_all(&d).unwrap();
    stranger.git(&d, &["init", "-q"]);
    std::fs::write(d.join("x.psd"), "x").unwrap();
    stranger.git(&d, &["remote", "add", "origin", &server.url(REPO)]);
    let out = stranger.dits_output(&d, &["lock", "x.psd"]);
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("no access to team/film"),
        "{}",
        stderr_of(&out)
    );

    // Read-only tokens may list, not lock; unlocking what nobody locked is refused.
    let c = reader.clone(&server);
    let out = reader.env.dits_output(&c, &["lock", "notes.txt"]);
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("read-only"), "{}", stderr_of(&out));
    let listed = stdout_of(&reader.env.dits(&c, &["locks", "--user", "alice"]));
    assert_eq!(listed.lines().count(), 2, "{listed}");
    let out = bob.env.dits_output(&b, &["unlock", "notes.txt"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr_of(&out));
    let out = bob.env.dits_output(&b, &["unlock", "art/hero.psd"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("alice"), "{}", stderr_of(&out));
}

#[test]
fn an_admin_breaks_a_stale_lock_with_an_audit_record_and_the_holder_is_told() {
    let owner = Env::new();
    let server = owner.start_server("server");
    let alice = User::new(&server, &owner, "alice", "--write");
    let bob = User::new(&server, &owner, "bob", "--write");
    let admin = User::new(&server, &owner, "root", "--admin");
    let a = pushed_project(&alice, &server);
    let b = bob.clone(&server);
    let r = admin.clone(&server);
    bob.env.dits(&b, &["lock", "art/villain.psd"]);

    // Alice may not break it, even with --force; the admin may, with a reason.
    let out = alice.env.dits_output(
        &a,
        &[
            "unlock",
            "--force",
            "--reason",
            "mine now",
            "art/villain.psd",
        ],
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr_of(&out));
    let out = admin
        .env
        .dits_output(&r, &["unlock", "--force", "art/villain.psd"]);
    assert_eq!(out.status.code(), Some(2), "a forced unlock needs a reason");
    admin.env.dits(
        &r,
        &[
            "unlock",
            "--force",
            "--reason",
            "bob left the studio",
            "art/villain.psd",
        ],
    );
    let root = server.root.display().to_string();
    let log = stdout_of(&owner.dits(owner.tmp.path(), &["serve", "--root", &root, "audit"]));
    assert!(
        log.contains("force-unlock")
            && log.contains("art/villain.psd")
            && log.contains("bob")
            && log.contains("root")
            && log.contains("bob left the studio"),
        "{log}"
    );
    // Bob hears of it at his next command that talks to the server (a fetch here), once.
    let out = bob.env.git(&b, &["fetch", "-q"]);
    assert!(
        stderr_of(&out).contains("your lock on art/villain.psd")
            && stderr_of(&out).contains("broken by root"),
        "{}",
        stderr_of(&out)
    );
    let out = bob.env.dits(&b, &["locks"]);
    assert!(!stderr_of(&out).contains("broken by"), "shown once");
}

#[test]
fn two_users_locking_the_same_file_at_once_leave_exactly_one_holder() {
    let owner = Env::new();
    let server = owner.start_server("server");
    let alice = User::new(&server, &owner, "alice", "--write");
    let bob = User::new(&server, &owner, "bob", "--write");
    let a = pushed_project(&alice, &server);
    let b = bob.clone(&server);
    for round in 0..5 {
        let path = if round % 2 == 0 {
            "art/hero.psd"
        } else {
            "art/villain.psd"
        };
        let quiet = |mut c: std::process::Command| {
            c.args(["dits", "lock", "-q", path])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            c
        };
        let (mut x, mut y) = (
            quiet(alice.env.cmd(&a, "git")),
            quiet(bob.env.cmd(&b, "git")),
        );
        let (x, y) = (x.spawn().unwrap(), y.spawn().unwrap());
        let codes = [
            x.wait_with_output().unwrap().status.code(),
            y.wait_with_output().unwrap().status.code(),
        ];
        let winners = codes.iter().filter(|c| **c == Some(0)).count();
        let losers = codes.iter().filter(|c| **c == Some(3)).count();
        assert_eq!((winners, losers), (1, 1), "round {round}: {codes:?}");
        let who = if codes[0] == Some(0) {
            (&alice, &a)
        } else {
            (&bob, &b)
        };
        who.0.env.dits(who.1, &["unlock", path]);
    }
}

#[test]
fn strict_repositories_refuse_changes_to_lockable_files_nobody_locked() {
    let owner = Env::new();
    let server = owner.start_server("server");
    let alice = User::new(&server, &owner, "alice", "--write");
    let a = pushed_project(&alice, &server);
    owner.git(
        &server.repo_dir(REPO),
        &["config", "dits.lockStrict", "true"],
    );
    write_content(&a.join("art/villain.psd"), 8, 100_000);
    std::fs::write(a.join("notes.txt"), "more notes\n").unwrap();
    alice.env.commit_all(&a, "villain without a lock");
    let out = alice.env.git_fails(&a, &["push", "-q"]);
    assert!(
        stderr_of(&out).contains("requires a lock") && stderr_of(&out).contains("art/villain.psd"),
        "{}",
        stderr_of(&out)
    );
    alice.env.dits(&a, &["lock", "art/villain.psd"]);
    alice.env.git(&a, &["push", "-q"]);
}

/// A Git host that is not the Dits server: a bare repository over file://. Bob's pre-push
/// asks the Dits server and refuses; with `--no-verify` the host's pre-receive (asking
/// the server for the pusher with an admin token) refuses instead.
#[test]
fn pre_push_and_a_hosts_pre_receive_ask_the_dits_server() {
    let owner = Env::new();
    let server = owner.start_server("server");
    let alice = User::new(&server, &owner, "alice", "--write");
    let bob = User::new(&server, &owner, "bob", "--write");
    let hook_token = owner.user_token(&server, "team/*", "--admin", "githost");
    let hub = owner.path("hub.git");
    owner.git(
        owner.tmp.path(),
        &["init", "-q", "--bare", hub.to_str().unwrap()],
    );
    owner.git(&hub, &["config", "dits.url", &server.url(REPO)]);
    let hub_url = format!("file://{}", hub.display());

    let a = alice.env.repo("project", &[]);
    alice.env.dits(&a, &["track", "-q", "--lockable", "*.psd"]);
    std::fs::write(
        a.join(".ditsconfig"),
        format!("[dits]\n\turl = {}\n", server.url(REPO)),
    )
    .unwrap();
    write_content(&a.join("hero.psd"), 1, 100_000);
    alice.env.commit_all(&a, "hero");
    alice.env.git(&a, &["remote", "add", "origin", &hub_url]);
    alice.env.git(&a, &["push", "-q", "-u", "origin", "main"]);
    let b = bob.env.path("bob");
    bob.env.git(
        bob.env.tmp.path(),
        &["clone", "-q", &hub_url, b.to_str().unwrap()],
    );
    assert!(!writable(&b.join("hero.psd")));
    alice
        .env
        .dits(&a, &["lock", "hero.psd", "--reason", "lighting"]);

    std::fs::set_permissions(b.join("hero.psd"), std::fs::Permissions::from_mode(0o644)).unwrap();
    write_content(&b.join("hero.psd"), 2, 100_000);
    bob.env.commit_all(&b, "bob's hero");
    let tip = |env: &Env| env.git_stdout(&hub, &["rev-parse", "main"]);
    let before = tip(&owner);
    let out = bob.env.git_fails(&b, &["push", "-q"]);
    assert!(
        stderr_of(&out).contains("hero.psd is locked by alice")
            && stderr_of(&out).contains("lighting"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(tip(&owner), before);

    // The host's own hook enforces it whatever the client runs.
    let hook = hub.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\nDITS_TOKEN={hook_token} exec git-dits hook pre-receive\n"),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut push = bob.env.cmd(&b, "git");
    push.args(["push", "-q", "--no-verify"])
        .env("DITS_PUSHER", "bob");
    let out = push.output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("hero.psd is locked by alice"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(tip(&owner), before);

    // Alice's own change goes through both.
    write_content(&a.join("hero.psd"), 3, 100_000);
    alice.env.commit_all(&a, "alice's hero");
    let mut push = alice.env.cmd(&a, "git");
    push.args(["push", "-q"]).env("DITS_PUSHER", "alice");
    alice.env.run_ok(&mut push);
    assert_ne!(tip(&owner), before);
}
