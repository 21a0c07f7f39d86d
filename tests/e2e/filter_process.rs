//! The real `dits-filter process` binary over pipes, byte for byte: what git would send and
//! exactly what must come back.
#![allow(clippy::unwrap_used)] // a panic is how a test reports failure

use std::io::{Read, Write};
use std::process::{Child, Stdio};

use crate::support::*;

fn pkt(payload: &[u8]) -> Vec<u8> {
    let mut v = format!("{:04x}", payload.len() + 4).into_bytes();
    v.extend_from_slice(payload);
    v
}

fn text(line: &str) -> Vec<u8> {
    pkt(format!("{line}\n").as_bytes())
}

const FLUSH: &[u8] = b"0000";

fn handshake(caps: &[&str]) -> Vec<u8> {
    let mut v = Vec::new();
    for l in ["git-filter-client", "version=2"] {
        v.extend(text(l));
    }
    v.extend_from_slice(FLUSH);
    for c in caps {
        v.extend(text(&format!("capability={c}")));
    }
    v.extend_from_slice(FLUSH);
    v
}

fn request(command: &str, path: &str, content: &[u8]) -> Vec<u8> {
    let mut v = text(&format!("command={command}"));
    v.extend(text(&format!("pathname={path}")));
    v.extend_from_slice(FLUSH);
    for part in content.chunks(65516) {
        v.extend(pkt(part));
    }
    v.extend_from_slice(FLUSH);
    v
}

/// Parses answer packets: `None` for a flush.
fn packets(mut bytes: &[u8]) -> Vec<Option<Vec<u8>>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let len = usize::from_str_radix(std::str::from_utf8(&bytes[..4]).unwrap(), 16).unwrap();
        if len == 0 {
            out.push(None);
            bytes = &bytes[4..];
        } else {
            out.push(Some(bytes[4..len].to_vec()));
            bytes = &bytes[len..];
        }
    }
    out
}

fn spawn_filter(env: &Env, repo: &std::path::Path) -> Child {
    env.cmd(repo, "dits-filter")
        .arg("process")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends everything, closes stdin, returns (stdout, stderr). Input is written from a thread
/// because the filter answers while we are still writing.
fn converse(mut child: Child, input: Vec<u8>) -> (Vec<u8>, String) {
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    writer.join().unwrap().unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "filter exited with {}", o.status);
    (out, String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn handshake_clean_smudge_error_and_empty_over_pipes() {
    let env = Env::new();
    let repo = env.repo("r", &["*.bin"]);
    let data = content(77, 300_000);
    let pointer = format!(
        "dits-pointer v1\nblake3 {}\nsize {}\n",
        b3_bytes(&data),
        data.len()
    );

    let mut input = handshake(&["clean", "smudge", "delay"]);
    input.extend(request("clean", "a.bin", &data));
    input.extend(request("smudge", "a.bin", pointer.as_bytes()));
    input.extend(request(
        "smudge",
        "bad.bin",
        b"dits-pointer v1\nblake3 00\nsize 1\n",
    ));
    input.extend(request("clean", "empty.bin", b""));
    input.extend(request("smudge", "plain.bin", b"not a pointer"));
    // A newer Dits's pointer is refused, not wrapped as content.
    input.extend(request(
        "clean",
        "future.bin",
        b"dits-pointer v9\nwhatever\n",
    ));
    let (out, stderr) = converse(spawn_filter(&env, &repo), input);

    let mut expected: Vec<Option<Vec<u8>>> = Vec::new();
    let t = |s: &str| Some(format!("{s}\n").into_bytes());
    // Handshake: our greeting, then the capabilities we share with git.
    expected.extend([t("git-filter-server"), t("version=2"), None]);
    expected.extend([
        t("capability=clean"),
        t("capability=smudge"),
        t("capability=delay"),
        None,
    ]);
    // clean: the pointer.
    expected.extend([
        t("status=success"),
        None,
        Some(pointer.clone().into_bytes()),
        None,
        None,
    ]);
    // smudge: the content, in full-size packets.
    expected.extend([t("status=success"), None]);
    expected.extend(data.chunks(65516).map(|c| Some(c.to_vec())));
    expected.extend([None, None]);
    // A malformed pointer fails that one file only...
    expected.extend([t("status=error"), None]);
    // ...and the session goes on: empty stays empty, non-pointers pass through.
    expected.extend([t("status=success"), None, None, None]);
    expected.extend([
        t("status=success"),
        None,
        Some(b"not a pointer".to_vec()),
        None,
        None,
    ]);
    expected.extend([t("status=error"), None]);
    assert_eq!(packets(&out), expected, "stderr:\n{stderr}");
    assert!(
        stderr.contains("bad.bin"),
        "the error names the path: {stderr}"
    );

    // The cleaned content really is in the store, under the id the pointer names.
    let id = b3_bytes(&data);
    let manifest = repo
        .join(".git/dits/manifests")
        .join(&id[..2])
        .join(&id[2..]);
    assert!(manifest.is_file(), "{} missing", manifest.display());
}

#[test]
fn refuses_a_client_that_is_not_git() {
    let env = Env::new();
    let repo = env.repo("r", &["*.bin"]);
    let mut child = spawn_filter(&env, &repo);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&text("hello"))
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("git-filter-client"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout but protocol");
}
