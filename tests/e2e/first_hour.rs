//! A team's first hour (issue 13): several users with their own homes, an ordinary Git host
//! (a file:// bare repository) and a Dits server on loopback. Nothing may fail silently.

use std::fs;

use crate::support::udp_proxy::UdpProxy;
use crate::support::{b3, show, stderr_of, stdout_of, write_content, Env};

const MIB: u64 = 1 << 20;

fn bare_hub(env: &Env) -> (std::path::PathBuf, String) {
    let hub = env.path("hub.git");
    env.git(
        env.tmp.path(),
        &["init", "-q", "--bare", hub.to_str().unwrap()],
    );
    let url = format!("file://{}", hub.display());
    (hub, url)
}

/// A repository made by a user who only ran `git dits install --global`: no
/// `git dits install` in it.
fn globally_set_up_repo(env: &Env, name: &str, dits_url: &str) -> std::path::PathBuf {
    let dir = env.path(name);
    fs::create_dir_all(&dir).unwrap();
    env.git(&dir, &["init", "-q"]);
    env.dits(&dir, &["track", "-q", "*.bin"]);
    fs::write(
        dir.join(".ditsconfig"),
        format!("[dits]\n\turl = {dits_url}\n"),
    )
    .unwrap();
    dir
}

/// Clones made after `git dits install --global` get Dits's hooks from the filter, so a
/// `git push` to an ordinary Git host uploads the content first; commits that reached the
/// host without their content (`--no-verify`) are reported by `git dits status` and caught
/// up by the next push.
#[test]
fn clones_after_a_global_install_push_their_content_and_catch_up() {
    let alice = Env::new();
    let (server, token) = alice.logged_in_server("srv");
    let bob = Env::new();
    bob.login(&server, &token);
    let (_hub, hub_url) = bare_hub(&alice);

    let a = globally_set_up_repo(&alice, "a", &server.url("team/film"));
    write_content(&a.join("first.bin"), 1, MIB);
    alice.commit_all(&a, "first");
    assert!(
        a.join(".git/hooks/pre-push").is_file(),
        "the filter put the pre-push hook in"
    );
    alice.git(&a, &["remote", "add", "origin", &hub_url]);
    alice.git(&a, &["push", "-q", "-u", "origin", "main"]);
    assert!(server.bytes("put") >= MIB, "the hook uploaded the content");

    // Bob clones from the Git host: content from the Dits server, hooks from the filter.
    let b = bob.path("b");
    bob.git(
        bob.tmp.path(),
        &["clone", "-q", &hub_url, b.to_str().unwrap()],
    );
    assert_eq!(b3(&b.join("first.bin")), b3(&a.join("first.bin")));
    for hook in ["pre-push", "post-checkout", "post-merge"] {
        assert!(
            b.join(".git/hooks").join(hook).is_file(),
            "{hook} in the clone"
        );
    }

    // Published without content: the host has the commit, the Dits server does not.
    write_content(&b.join("second.bin"), 2, MIB);
    bob.commit_all(&b, "second");
    bob.git(&b, &["push", "-q", "--no-verify"]);
    let status = bob.dits_stdout(&b, &["status"]);
    assert!(
        status.contains("unpushed second.bin") && status.contains("git dits push"),
        "{status}"
    );

    // The next push of new commits uploads both.
    write_content(&b.join("third.bin"), 3, MIB);
    bob.commit_all(&b, "third");
    bob.git(&b, &["push", "-q"]);
    let c = alice.path("c");
    alice.git(
        alice.tmp.path(),
        &["clone", "-q", &hub_url, c.to_str().unwrap()],
    );
    for f in ["first.bin", "second.bin", "third.bin"] {
        assert_eq!(b3(&c.join(f)), b3(&b.join(f)), "{f}");
    }
    alice.assert_clean(&c);
    let status = bob.dits_stdout(&b, &["status"]);
    assert!(
        status.contains("Not on ") && status.contains(": 0 ("),
        "{status}"
    );
}

/// Content that cannot be had fails the clone with one summary naming the files and the
/// cause; `dits.skipDownloadErrors` leaves pointers and says so.
#[test]
fn a_clone_without_its_content_fails_unless_told_to_skip() {
    let env = Env::new();
    let (mut server, _) = env.logged_in_server("srv");
    let (_hub, hub_url) = bare_hub(&env);
    let a = globally_set_up_repo(&env, "a", &server.url("team/film"));
    for i in 0..3 {
        write_content(&a.join(format!("f{i}.bin")), 10 + i, MIB);
    }
    env.commit_all(&a, "media");
    env.git(&a, &["remote", "add", "origin", &hub_url]);
    env.git(&a, &["push", "-q", "-u", "origin", "main"]);
    server.stop();

    let out = env.git_output(
        env.tmp.path(),
        &[
            "-c",
            "dits.connectTimeout=2",
            "clone",
            "-q",
            &hub_url,
            "down",
        ],
    );
    assert!(!out.status.success(), "{}", show(&out));
    let err = stderr_of(&out);
    assert!(err.contains("f0.bin") && err.contains("3 file"), "{err}");
    assert!(
        err.contains(&server.addr),
        "the cause names the server: {err}"
    );
    assert!(
        err.matches("hint:").count() <= 2,
        "one summary with its hint, not one per file: {err}"
    );

    let out = env.git_output(
        env.tmp.path(),
        &[
            "-c",
            "dits.connectTimeout=2",
            "-c",
            "dits.skipDownloadErrors=true",
            "clone",
            "-q",
            &hub_url,
            "skipped",
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("left as pointers") || err.contains("pointer"),
        "{err}"
    );
    let text = fs::read_to_string(env.path("skipped/f1.bin")).unwrap();
    assert!(
        text.starts_with("dits-pointer v1"),
        "a pointer was left: {text}"
    );
}

/// With dits on PATH but no `install`, `track`, `status`, `pull` and `checkout` say what is
/// wrong and what to run instead of storing raw content.
#[test]
fn missing_filter_config_and_uncommitted_attributes_are_reported() {
    let env = Env::new();
    let dir = env.path("r");
    fs::create_dir_all(&dir).unwrap();
    env.git(&dir, &["init", "-q"]);
    let out = env.dits_output(&dir, &["track", "*.bin"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("filter.dits.process") && err.contains("git dits install --global"),
        "{err}"
    );
    assert!(
        err.contains("git add .gitattributes && git commit"),
        "the hint commits .gitattributes: {err}"
    );

    // A raw blob under the pattern, committed without the filter.
    write_content(&dir.join("raw.bin"), 5, 200_000);
    env.commit_all(&dir, "raw");
    let status = env.dits_stdout(&dir, &["status"]);
    assert!(status.contains("no Dits filter configured"), "{status}");
    assert!(
        status.contains("raw.bin") && status.contains("ordinary Git blobs"),
        "{status}"
    );
    for args in [&["pull"][..], &["checkout"][..]] {
        let out = env.dits_output(&dir, args);
        assert!(!out.status.success(), "{args:?}: {}", show(&out));
        assert!(
            stderr_of(&out).contains("git dits install --global"),
            "{args:?}: {}",
            show(&out)
        );
    }

    // Set up properly, the raw blob is still reported, and an uncommitted pattern too.
    env.dits(&dir, &["install", "-q"]);
    env.dits(&dir, &["track", "-q", "*.mov"]);
    let status = env.dits_stdout(&dir, &["status"]);
    assert!(!status.contains("no Dits filter"), "{status}");
    assert!(
        status.contains(".gitattributes holds Dits patterns"),
        "{status}"
    );
    assert!(status.contains("git add --renormalize"), "{status}");
    env.git(&dir, &["add", "--renormalize", "."]);
    env.commit_all(&dir, "to dits");
    let status = env.dits_stdout(&dir, &["status"]);
    assert!(!status.contains("problem:"), "{status}");
}

/// A push through the pre-push hook with a read-only token says the server refused it, not
/// that the connection was lost.
#[test]
fn a_read_only_push_through_the_hook_is_reported_as_refused() {
    let env = Env::new();
    let (server, _) = env.logged_in_server("srv");
    let read = env.token(&server, "team/film", false);
    env.login(&server, &read);
    let (hub, hub_url) = bare_hub(&env);
    let a = globally_set_up_repo(&env, "a", &server.url("team/film"));
    write_content(&a.join("x.bin"), 7, MIB);
    env.commit_all(&a, "x");
    env.git(&a, &["remote", "add", "origin", &hub_url]);
    let out = env.git_fails(&a, &["push", "origin", "main"]);
    let err = stderr_of(&out);
    assert!(err.contains("read-only"), "{err}");
    assert!(!err.contains("connection lost"), "{err}");
    assert!(env
        .git_output(&hub, &["rev-parse", "--verify", "-q", "main"])
        .stdout
        .is_empty());
}

/// Pulling (rebase) an upstream file above the inline limit, and the other commands that
/// rewrite the work tree, leave `git status` clean with the right bytes.
#[test]
fn large_files_stay_clean_through_rebase_cherry_pick_reset_stash_switch_restore() {
    let env = Env::new();
    let (_hub, hub_url) = bare_hub(&env);
    let a = env.repo("a", &["*.bin"]);
    write_content(&a.join("base.bin"), 20, 2 * MIB);
    env.commit_all(&a, "base");
    env.git(&a, &["remote", "add", "origin", &hub_url]);
    env.git(&a, &["push", "-q", "-u", "origin", "main"]);
    let b = env.path("b");
    env.git(env.tmp.path(), &["clone", "-q", &hub_url, "b"]);
    env.dits(&b, &["install", "-q"]);
    fs::write(b.join("notes.txt"), "local work\n").unwrap();
    env.commit_all(&b, "local");

    // Upstream adds a 100 MiB file (above the 64 MiB inline limit).
    write_content(&a.join("big.bin"), 21, 100 * MIB);
    env.commit_all(&a, "big");
    env.git(&a, &["push", "-q"]);
    env.git(&b, &["pull", "-q", "--rebase"]);
    env.assert_clean(&b);
    assert_eq!(b3(&b.join("big.bin")), b3(&a.join("big.bin")));

    // The rest with a small inline limit, so every file takes the large-file path.
    env.git(&b, &["config", "dits.smudge.inlineLimit", "1m"]);
    env.git(&b, &["switch", "-q", "-c", "side"]);
    write_content(&b.join("side.bin"), 22, 3 * MIB);
    env.commit_all(&b, "side file");
    let side = b3(&b.join("side.bin"));
    env.git(&b, &["switch", "-q", "main"]);
    env.assert_clean(&b);
    assert!(!b.join("side.bin").exists());
    env.git(&b, &["cherry-pick", "side"]);
    env.assert_clean(&b);
    assert_eq!(b3(&b.join("side.bin")), side);
    env.git(&b, &["reset", "-q", "--hard", "HEAD~1"]);
    env.assert_clean(&b);
    env.git(&b, &["reset", "-q", "--hard", "ORIG_HEAD"]);
    env.assert_clean(&b);
    assert_eq!(b3(&b.join("side.bin")), side);
    write_content(&b.join("side.bin"), 23, 3 * MIB);
    let edited = b3(&b.join("side.bin"));
    env.git(&b, &["stash", "-q"]);
    env.assert_clean(&b);
    assert_eq!(b3(&b.join("side.bin")), side);
    env.git(&b, &["stash", "pop", "-q"]);
    assert_eq!(b3(&b.join("side.bin")), edited);
    assert_eq!(env.porcelain(&b), " M side.bin\n");
    env.git(&b, &["restore", "side.bin"]);
    env.assert_clean(&b);
    assert_eq!(b3(&b.join("side.bin")), side);
    fs::remove_file(b.join("big.bin")).unwrap();
    env.git(&b, &["restore", "big.bin"]);
    env.assert_clean(&b);
    assert_eq!(b3(&b.join("big.bin")), b3(&a.join("big.bin")));
    env.git(&b, &["switch", "-q", "side"]);
    env.assert_clean(&b);
    env.dits(&b, &["checkout"]);
    env.assert_clean(&b);
}

/// On a terminal, a clone of large files shows the filter's download progress; off one, a
/// summary line.
#[test]
fn clone_shows_download_progress_on_a_terminal_and_a_summary_off_one() {
    let env = Env::new();
    let (server, token) = env.logged_in_server("srv");
    let a = env.repo("a", &["*.bin"]);
    for i in 0..4 {
        write_content(&a.join(format!("f{i}.bin")), 30 + i, MIB);
    }
    env.commit_all(&a, "media");
    env.git(&a, &["remote", "add", "origin", &server.url("team/film")]);
    env.git(&a, &["push", "-q", "-u", "origin", "main"]);

    // Through a slow path, so the downloads last long enough to be drawn (the line waits
    // half a second before it shows).
    let proxy = UdpProxy::start(&server.addr);
    env.also_via(&server, &token, &proxy.authority());
    proxy.delay(1);
    let via = format!("dits://{}/team/film", proxy.authority());
    let clone = format!("git -c dits.transport=quic clone {via} tty");
    let mut cmd = env.cmd(env.tmp.path(), "script");
    cmd.args(["-q", "-e", "-c", &clone, "/dev/null"])
        .env("TERM", "dumb");
    let out = env.run_ok(&mut cmd);
    let screen = stdout_of(&out);
    assert!(screen.contains("dits: downloading:"), "{screen}");
    assert!(
        screen.contains("(4/4 files)") && screen.contains("done."),
        "{screen}"
    );
    for i in 0..4 {
        assert_eq!(
            b3(&env.path(&format!("tty/f{i}.bin"))),
            b3(&a.join(format!("f{i}.bin")))
        );
    }

    let out = env.git(env.tmp.path(), &["clone", &server.url("team/film"), "log"]);
    let err = stderr_of(&out);
    assert!(err.contains("dits: downloaded 4 of 4 file(s)"), "{err}");
    assert!(!err.contains('\r'), "no redrawn lines in a log: {err:?}");
}

/// UDP blocked: a server that only speaks TLS over TCP is reached automatically, and a
/// client told `dits.transport=tcp` never tries QUIC.
#[test]
fn clone_and_push_over_tcp_when_quic_gets_no_answer() {
    let env = Env::new();
    let server = env.start_server_with("srv", "127.0.0.1:0", &["--transport", "tcp"]);
    let token = env.token(&server, "team/film", true);
    env.login(&server, &token);
    let a = env.repo("a", &["*.bin"]);
    write_content(&a.join("clip.bin"), 40, 3 * MIB);
    env.commit_all(&a, "clip");
    env.git(&a, &["remote", "add", "origin", &server.url("team/film")]);
    env.git(&a, &["push", "-q", "-u", "origin", "main"]);
    assert!(server.bytes("put") >= 3 * MIB);

    env.git(
        env.tmp.path(),
        &["clone", "-q", &server.url("team/film"), "auto"],
    );
    assert_eq!(b3(&env.path("auto/clip.bin")), b3(&a.join("clip.bin")));
    let out = env.git(
        env.tmp.path(),
        &[
            "-c",
            "dits.transport=tcp",
            "clone",
            "-q",
            &server.url("team/film"),
            "forced",
        ],
    );
    assert!(!stderr_of(&out).contains("QUIC"), "{}", stderr_of(&out));
    let forced = env.path("forced");
    assert_eq!(b3(&forced.join("clip.bin")), b3(&a.join("clip.bin")));
    write_content(&forced.join("clip2.bin"), 41, MIB);
    env.commit_all(&forced, "second");
    env.git(&forced, &["-c", "dits.transport=tcp", "push", "-q"]);
    // QUIC only, against a TCP-only server: a clear failure, not a hang.
    let out = env.git_output(
        env.tmp.path(),
        &[
            "-c",
            "dits.transport=quic",
            "-c",
            "dits.connectTimeout=2",
            "clone",
            "-q",
            &server.url("team/film"),
            "quic",
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains(&server.addr),
        "{}",
        stderr_of(&out)
    );
}

/// Without a credential helper, a clone asks for the token once (not for a username it does
/// not use, and not again when the filter connects); the next command does not ask at all.
#[test]
fn clone_without_a_credential_helper_asks_for_the_token_once() {
    let env = Env::new();
    let server = env.start_server("srv");
    let token = env.token(&server, "team/film", true);
    env.login(&server, &token);
    let a = env.repo("a", &["*.bin"]);
    write_content(&a.join("clip.bin"), 50, 2 * MIB);
    env.commit_all(&a, "clip");
    env.git(&a, &["remote", "add", "origin", &server.url("team/film")]);
    env.git(&a, &["push", "-q", "-u", "origin", "main"]);
    // A second user: the same pin, no credential helper; typed tokens kept for a minute.
    env.git(
        &env.home,
        &["config", "--global", "--unset", "credential.helper"],
    );
    env.git(
        &env.home,
        &["config", "--global", "dits.credentialCache", "60"],
    );

    let clone = format!("git clone -q {} typed", server.url("team/film"));
    let mut cmd = env.cmd(env.tmp.path(), "script");
    cmd.args(["-q", "-e", "-c", &clone, "/dev/null"])
        .env("TERM", "dumb")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // A prompt that never comes (or a second one) must fail the test, not hang it.
    let pid = child.id().to_string();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(90));
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid])
            .status();
    });
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Type the token once the prompt is up (git discards what was typed before it), then end
    // the input: a second prompt would read nothing and fail the clone.
    let mut screen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&screen).contains("Password for") {
        let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
        assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&screen));
        screen.extend_from_slice(&buf[..n]);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::io::Write::write_all(&mut stdin, format!("{token}\n").as_bytes()).unwrap();
    drop(stdin);
    std::io::Read::read_to_end(&mut stdout, &mut screen).unwrap();
    let status = child.wait().unwrap();
    let screen = String::from_utf8_lossy(&screen).into_owned();
    assert!(status.success(), "{screen}");
    assert_eq!(screen.matches("Password for").count(), 1, "{screen}");
    assert!(!screen.contains("Username for"), "{screen}");
    assert_eq!(b3(&env.path("typed/clip.bin")), b3(&a.join("clip.bin")));
    // The next command finds it in git's credential cache: no terminal, no prompt, works.
    env.dits(&env.path("typed"), &["fetch"]);
    env.git(
        env.tmp.path(),
        &["clone", "-q", &server.url("team/film"), "again"],
    );
    assert_eq!(b3(&env.path("again/clip.bin")), b3(&a.join("clip.bin")));
}

/// `git dits --help` (git's `man git-dits`) finds the page `install` wrote; every argument
/// has help; `env` says where `dits.url` comes from.
#[test]
fn help_man_page_and_env_say_what_they_should() {
    let env = Env::new();
    let dir = env.repo("r", &["*.bin"]);
    let out = env.run_ok(
        env.cmd(&dir, "git")
            .args(["dits", "--help"])
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100"),
    );
    let page = stdout_of(&out);
    assert!(page.contains("git-dits - Large media in Git"), "{page}");
    assert!(page.contains("git-dits-track(1)"), "{page}");
    for (args, wanted) in [
        (&["track", "-h"][..], "Git attribute patterns"),
        (
            &["untrack", "-h"][..],
            "Patterns as `git dits track` lists them",
        ),
        (&["pointer", "-h"][..], "A tracked file in the work tree"),
        (&["cat", "-h"][..], "REV:PATH (for example"),
        (
            &["fetch", "-h"][..],
            "Revisions whose tracked files to download",
        ),
        (
            &["serve", "token", "revoke", "-h"][..],
            "The token's label or user",
        ),
    ] {
        let help = env.dits_stdout(&dir, args);
        assert!(help.contains(wanted), "{args:?}:\n{help}");
    }

    fs::write(
        dir.join(".ditsconfig"),
        "[dits]\n\turl = dits://media.example:7418/team/film\n",
    )
    .unwrap();
    let shown = env.dits_stdout(&dir, &["env"]);
    assert!(
        shown.contains("dits.url = dits://media.example:7418/team/film (from .ditsconfig)"),
        "{shown}"
    );
}
