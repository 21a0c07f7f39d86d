//! Interrupted transfers resume: a connection cut by a fault proxy, a client killed with
//! kill -9, a server killed in the middle of a push. Each time the next run re-sends at most
//! the batches that were in flight, and nothing stored is lost or damaged.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crate::support::server::Server;
use crate::support::udp_proxy::UdpProxy;
use crate::support::{b3, stderr_of, write_content, Env};

/// Batches in flight at once: `STREAMS` in git-remote-dits, each of `BATCH_BYTES`.
const BATCH: u64 = 16 << 20;
const IN_FLIGHT: u64 = 2;
const SIZE: u64 = 96 << 20;

fn repo_with_big_file(env: &Env) -> std::path::PathBuf {
    let a = env.repo("a", &["*.mov"]);
    write_content(&a.join("big.mov"), 7, SIZE);
    env.commit_all(&a, "big");
    a
}

/// A fault proxy in front of `server`, and the `dits://` URL of team/film through it.
fn through_proxy(env: &Env, server: &Server, token: &str) -> (UdpProxy, String) {
    let proxy = UdpProxy::start(&server.addr);
    env.also_via(server, token, &proxy.authority());
    let via = format!("dits://{}/team/film", proxy.authority());
    (proxy, via)
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn push_resumes_after_the_connection_is_cut() {
    let env = Env::new();
    let (server, token) = env.logged_in_server("srv");
    let (proxy, via) = through_proxy(&env, &server, &token);
    let a = repo_with_big_file(&env);
    env.git(&a, &["remote", "add", "origin", &via]);

    proxy.cut_after(SIZE / 2);
    let out = env.git_output(&a, &["-c", "dits.timeout=2", "push", "origin", "main"]);
    assert!(
        !out.status.success(),
        "a cut push fails:\n{}",
        crate::support::show(&out)
    );
    assert!(proxy.is_cut());
    let kept = server.bytes("put");
    assert!(kept > 0, "complete batches before the cut were kept");

    proxy.restore();
    env.git(
        &a,
        &["-c", "dits.timeout=2", "push", "-q", "origin", "main"],
    );
    let resent = server.bytes("put") - kept;
    // Everything the first attempt made durable is skipped; what was in flight is not.
    assert!(
        kept + resent <= SIZE + IN_FLIGHT * BATCH + (1 << 20),
        "first push kept {kept}, second sent {resent}: more than {IN_FLIGHT} batches re-sent"
    );
    env.git(
        env.tmp.path(),
        &["clone", "-q", &server.url("team/film"), "b"],
    );
    assert_eq!(b3(&a.join("big.mov")), b3(&env.path("b").join("big.mov")));
}

/// SIGKILL to a whole process group (git and its remote helper). Not `kill -9 -PGID` through
/// a `kill` program: procps reads a negative pid after `-9` as an option.
#[allow(unsafe_code)]
fn kill_group(pgid: u32) {
    let pgid = libc::pid_t::try_from(pgid).unwrap();
    assert!(pgid > 1);
    // SAFETY: kill(2) has no memory effects; a positive pgid is negated to mean the group.
    let rc = unsafe { libc::kill(-pgid, libc::SIGKILL) };
    assert_eq!(rc, 0, "kill failed");
}

#[test]
fn push_resumes_after_kill_9_of_the_client() {
    use std::os::unix::process::CommandExt;
    let env = Env::new();
    let (server, token) = env.logged_in_server("srv");
    let (proxy, via) = through_proxy(&env, &server, &token);
    let a = repo_with_big_file(&env);
    env.git(&a, &["remote", "add", "origin", &via]);

    // The proxy freezes the transfer half-way, so the kill lands mid-push every time.
    proxy.cut_after(SIZE / 2);
    let mut push = env.cmd(&a, "git");
    push.args(["push", "-q", "origin", "main"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    let child = push.spawn().unwrap();
    wait_for("half of the upload", || proxy.is_cut());
    kill_group(child.id());
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let kept = server.bytes("put");
    assert!(kept < SIZE, "the push was cut short");

    proxy.restore();
    env.git(&a, &["push", "-q", "origin", "main"]);
    let resent = server.bytes("put") - kept;
    assert!(
        kept + resent <= SIZE + IN_FLIGHT * BATCH + (1 << 20),
        "kept {kept}, re-sent {resent}"
    );
    env.git(
        env.tmp.path(),
        &["clone", "-q", &server.url("team/film"), "b"],
    );
    assert_eq!(b3(&a.join("big.mov")), b3(&env.path("b").join("big.mov")));
}

#[test]
fn fetch_resumes_after_the_connection_is_cut() {
    let env = Env::new();
    let (server, token) = env.logged_in_server("srv");
    let (proxy, via) = through_proxy(&env, &server, &token);
    let a = repo_with_big_file(&env);
    env.git(&a, &["remote", "add", "origin", &server.url("team/film")]);
    env.git(&a, &["push", "-q", "origin", "main"]);
    let mut clone = env.cmd(env.tmp.path(), "git");
    clone
        .args(["clone", "-q", &via, "b"])
        .env("GIT_DITS_SKIP_SMUDGE", "1");
    env.run_ok(&mut clone);
    let b = env.path("b");
    assert_eq!(server.bytes("get"), 0);

    // Cut once about half of the file has come down.
    proxy.cut_after(proxy.relayed() + SIZE / 2);
    let mut fetch = env.cmd(&b, "git");
    fetch.args(["-c", "dits.timeout=2", "dits", "fetch", "-q"]);
    let out = fetch.output().unwrap();
    assert!(!out.status.success(), "{}", crate::support::show(&out));
    let first = server.bytes("get");
    proxy.restore();
    let mut fetch = env.cmd(&b, "git");
    fetch.args(["-c", "dits.timeout=2", "dits", "fetch", "-q"]);
    env.run_ok(&mut fetch);
    let second = server.bytes("get") - first;
    assert!(
        second + first.min(SIZE) <= SIZE + (IN_FLIGHT + 1) * BATCH,
        "first fetch moved {first}, second {second}"
    );
    env.dits(&b, &["pull", "-q"]);
    assert_eq!(b3(&a.join("big.mov")), b3(&b.join("big.mov")));
}

#[test]
fn server_killed_mid_push_then_restarted_loses_nothing() {
    let env = Env::new();
    let (mut server, token) = env.logged_in_server("srv");
    let (proxy, via) = through_proxy(&env, &server, &token);
    let a = repo_with_big_file(&env);
    env.git(&a, &["remote", "add", "origin", &via]);

    // Half-way through the upload the path freezes and the server dies (kill -9): whatever
    // it had not made durable is lost with it.
    proxy.cut_after(SIZE / 2);
    let mut push = env.cmd(&a, "git");
    push.args(["-c", "dits.timeout=2", "push", "-q", "origin", "main"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = push.spawn().unwrap();
    wait_for("half of the upload", || proxy.is_cut());
    server.kill();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "the push fails when the server dies");
    let err = stderr_of(&out);
    assert!(
        err.contains("resumes"),
        "the error says a retry resumes:\n{err}"
    );

    let server = env.start_server_at("srv", &server.addr);
    proxy.restore();
    env.git(
        &a,
        &["-c", "dits.timeout=5", "push", "-q", "origin", "main"],
    );
    // The server's store is consistent: every object it lists verifies.
    let bare = server.repo_dir("team/film");
    let out = env.dits_output(&bare, &["fsck"]);
    assert!(
        out.status.success(),
        "server store after a crash:\n{}",
        crate::support::show(&out)
    );
    env.git(
        env.tmp.path(),
        &["clone", "-q", &server.url("team/film"), "b"],
    );
    assert_eq!(b3(&a.join("big.mov")), b3(&env.path("b").join("big.mov")));
}

#[test]
fn a_lossy_slow_path_still_moves_every_byte() {
    let env = Env::new();
    let (server, token) = env.logged_in_server("srv");
    let (proxy, via) = through_proxy(&env, &server, &token);
    // One packet in 25 dropped, each delayed by 1 ms: QUIC recovers on its own.
    proxy.drop_one_in(25);
    proxy.delay(1);
    let a = env.repo("a", &["*.mov"]);
    write_content(&a.join("clip.mov"), 3, 1 << 20);
    env.commit_all(&a, "clip");
    env.git(&a, &["push", "-q", &via, "main"]);
    env.git(env.tmp.path(), &["clone", "-q", &via, "b"]);
    assert_eq!(b3(&a.join("clip.mov")), b3(&env.path("b").join("clip.mov")));
}
