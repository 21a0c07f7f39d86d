//! Hostile peers against a real `git dits serve`: garbage, oversized frames, requests before
//! hello, bad repository paths, a read-only token pushing, chunks whose bytes do not match
//! their id, manifests whose chunks were never sent. Each gets a clear error frame, nothing
//! is stored, and the server keeps serving real git afterwards.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::support::{b3, write_content, Env};
use dits_core::wire::{decode_frame, encode_frame, ErrorCode, Message, PROTOCOL_VERSION};
use dits_core::{ChunkId, FileId};
use git_remote_dits::tls::{self, Trust};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(addr: &str) -> quinn::Connection {
    let trust = Trust {
        accept_new: true,
        ..Trust::default()
    };
    let (config, _) = tls::client_config(trust, Duration::from_secs(10)).unwrap();
    let endpoint = tls::endpoint("127.0.0.1:0".parse().unwrap(), None).unwrap();
    endpoint
        .connect_with(config, addr.parse().unwrap(), "localhost")
        .unwrap()
        .await
        .unwrap()
}

/// Sends `bytes` on a new stream, finishes it, and returns every frame of the answer.
async fn exchange(conn: &quinn::Connection, bytes: &[u8]) -> Vec<Message> {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(bytes).await.unwrap();
    send.finish().unwrap();
    let data = recv.read_to_end(64 << 20).await.unwrap();
    let mut at = 0;
    let mut out = Vec::new();
    while let Some((msg, used)) = decode_frame(&data[at..]).unwrap() {
        out.push(msg);
        at += used;
    }
    assert_eq!(at, data.len(), "the server's answer is whole frames");
    out
}

fn frames(msgs: &[Message]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        encode_frame(m, &mut out);
    }
    out
}

fn hello(repo: &str, token: Option<&str>) -> Message {
    Message::Hello {
        version: PROTOCOL_VERSION,
        capabilities: vec![],
        repo: repo.into(),
        token: token.map(Into::into),
        agent: "hostile-test".into(),
    }
}

fn error_code(answer: &[Message]) -> ErrorCode {
    match answer {
        [.., Message::Error { code, .. }] => *code,
        other => panic!("expected an error frame, got {other:?}"),
    }
}

#[test]
fn garbage_oversized_and_unauthenticated_requests_are_refused() {
    let env = Env::new();
    let server = env.start_server("srv");
    let token = env.token(&server, "team/film", true);
    env.login(&server, &token);
    let rt = runtime();
    rt.block_on(async {
        let conn = connect(&server.addr).await;
        // Not frames at all: the length reads as far beyond the limit.
        let answer = exchange(&conn, b"GET / HTTP/1.1\r\n\r\n").await;
        assert_eq!(error_code(&answer), ErrorCode::BadRequest);
        // A frame announcing 4 GiB: refused before anything is allocated.
        let answer = exchange(&conn, &[0xff, 0xff, 0xff, 0xff, 0x21]).await;
        assert_eq!(error_code(&answer), ErrorCode::BadRequest);
        // An unknown frame type.
        let answer = exchange(&conn, &[1, 0, 0, 0, 0xee]).await;
        assert_eq!(error_code(&answer), ErrorCode::BadRequest);
        // Requests before a hello.
        let ask = frames(&[Message::HasChunks {
            ids: vec![ChunkId([1; 32])],
        }]);
        assert_eq!(
            error_code(&exchange(&conn, &ask).await),
            ErrorCode::AuthRequired
        );
        // Hostile repository paths and tokens (a connection gets a few hellos, then is
        // closed, so each attempt has its own).
        for bad in ["../etc", "/abs", "a//b", "team.git/x", "a b"] {
            let conn = connect(&server.addr).await;
            let answer = exchange(&conn, &frames(&[hello(bad, Some(&token))])).await;
            assert_eq!(error_code(&answer), ErrorCode::InvalidRepo, "{bad}");
        }
        let answer = exchange(&conn, &frames(&[hello("team/film", Some("dits_guess"))])).await;
        assert_eq!(error_code(&answer), ErrorCode::AuthRequired);
        // Guessing tokens on one connection ends it.
        for _ in 0..4 {
            let (mut send, mut recv) = conn.open_bi().await.unwrap();
            let _ = send
                .write_all(&frames(&[hello("team/film", Some("dits_guess"))]))
                .await;
            let _ = send.finish();
            let _ = recv.read_to_end(1 << 20).await;
        }
        assert!(conn.open_bi().await.is_err() || conn.close_reason().is_some());
    });
    assert!(!server.root.join("repos").join("etc.git").exists());

    // The server still serves real git.
    let a = env.repo("a", &["*.bin"]);
    write_content(&a.join("x.bin"), 1, 300_000);
    env.commit_all(&a, "x");
    env.git(&a, &["push", "-q", &server.url("team/film"), "main"]);
    env.git(
        env.tmp.path(),
        &["clone", "-q", &server.url("team/film"), "b"],
    );
    assert_eq!(b3(&a.join("x.bin")), b3(&env.path("b").join("x.bin")));
}

#[test]
fn chunks_that_do_not_match_their_id_and_incomplete_manifests_are_not_stored() {
    let env = Env::new();
    let server = env.start_server("srv");
    let write = env.token(&server, "team/film", true);
    let read = env.token(&server, "team/film", false);
    let rt = runtime();
    let good = ChunkId::of(b"the real bytes");
    let later = ChunkId::of(b"sent after the bad one");
    rt.block_on(async {
        // A read-only token cannot upload.
        let conn = connect(&server.addr).await;
        assert!(matches!(
            exchange(&conn, &frames(&[hello("team/film", Some(&read))])).await[..],
            [Message::Welcome { .. }]
        ));
        let put = frames(&[
            Message::PutChunks,
            Message::Chunk {
                id: good,
                data: b"the real bytes".to_vec(),
            },
            Message::BatchEnd,
        ]);
        assert_eq!(
            error_code(&exchange(&conn, &put).await),
            ErrorCode::Forbidden
        );

        let conn = connect(&server.addr).await;
        exchange(&conn, &frames(&[hello("team/film", Some(&write))])).await;
        let put = frames(&[
            Message::PutChunks,
            Message::Chunk {
                id: good,
                data: b"forged bytes!!".to_vec(),
            },
            Message::Chunk {
                id: later,
                data: b"sent after the bad one".to_vec(),
            },
            Message::BatchEnd,
        ]);
        assert_eq!(
            error_code(&exchange(&conn, &put).await),
            ErrorCode::CorruptChunk
        );
        let ask = frames(&[Message::HasChunks {
            ids: vec![good, later],
        }]);
        match &exchange(&conn, &ask).await[..] {
            [Message::Bitmap { count: 2, bits }] => {
                assert!(!Message::bit(bits, 0), "the forged chunk was not stored");
                assert!(
                    !Message::bit(bits, 1),
                    "nothing after it in the batch was stored"
                );
            }
            other => panic!("{other:?}"),
        }

        // A manifest naming chunks the server never received is refused.
        let mut store = dits_core::store::MemoryStore::default();
        let data = crate::support::content(9, 300_000);
        let m = dits_core::ingest::ingest(
            &data[..],
            dits_core::chunker::ChunkerParams::default(),
            &mut store,
            &dits_core::progress::Silent,
        )
        .unwrap()
        .manifest;
        let top = m.encode().top;
        let answer = exchange(&conn, &frames(&[Message::PutManifest { top }])).await;
        assert_eq!(error_code(&answer), ErrorCode::MissingObjects);
        let ask = frames(&[Message::HasFiles {
            ids: vec![m.file_id, FileId([0; 32])],
        }]);
        match &exchange(&conn, &ask).await[..] {
            [Message::Bitmap { count: 2, bits }] => assert!(!Message::bit(bits, 0)),
            other => panic!("{other:?}"),
        }
    });
}

/// A write token that stores a manifest for content someone will push later (squatting): the
/// server does not count it, and the honest push that follows uploads and is cloned exactly.
#[test]
fn a_squatted_manifest_does_not_count_and_the_honest_push_uploads() {
    let env = Env::new();
    let server = env.start_server("srv");
    let token = env.token(&server, "team/film", true);
    env.login(&server, &token);
    let a = env.repo("a", &["*.bin"]);
    write_content(&a.join("clip.bin"), 80, 600_000);
    let honest = b3(&a.join("clip.bin"));
    let rt = runtime();
    rt.block_on(async {
        // Upload another file's chunks and a manifest that claims clip.bin's id.
        let conn = connect(&server.addr).await;
        exchange(&conn, &frames(&[hello("team/film", Some(&token))])).await;
        let mut store = dits_core::store::MemoryStore::default();
        let other = crate::support::content(81, 600_000);
        let m = dits_core::ingest::ingest(
            &other[..],
            dits_core::chunker::ChunkerParams::default(),
            &mut store,
            &dits_core::progress::Silent,
        )
        .unwrap()
        .manifest;
        let mut forged = m.clone();
        forged.file_id = honest.parse().unwrap();
        let enc = forged.encode();
        let mut put = vec![Message::PutChunks];
        for c in &m.chunks {
            use dits_core::store::ChunkSource;
            put.push(Message::Chunk {
                id: c.id,
                data: store.read_chunk(&c.id).unwrap(),
            });
        }
        for (id, g) in &enc.groups {
            put.push(Message::Chunk {
                id: *id,
                data: g.clone(),
            });
        }
        put.push(Message::BatchEnd);
        assert!(matches!(
            exchange(&conn, &frames(&put)).await[..],
            [Message::BatchAck { .. }]
        ));
        let answer = exchange(&conn, &frames(&[Message::PutManifest { top: enc.top }])).await;
        assert_eq!(error_code(&answer), ErrorCode::BadRequest, "{answer:?}");
    });
    env.commit_all(&a, "clip");
    env.git(&a, &["remote", "add", "origin", &server.url("team/film")]);
    env.git(&a, &["push", "-q", "-u", "origin", "main"]);
    let b = env.path("b");
    env.git(
        env.tmp.path(),
        &["clone", "-q", &server.url("team/film"), "b"],
    );
    assert_eq!(b3(&b.join("clip.bin")), honest);
}

/// The server's resident memory, from /proc.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

/// A token holder that declares 16 MiB frames on a hundred streams and sends a few bytes of
/// each cannot inflate the server's memory; a peer that never authenticates is disconnected.
#[test]
fn declared_but_unsent_frames_do_not_inflate_the_server_and_silent_peers_are_dropped() {
    let env = Env::new();
    let server = env.start_server("srv");
    let token = env.token(&server, "team/film", true);
    let pid = server.pid();
    let rt = runtime();
    let before = rss_kib(pid);
    rt.block_on(async {
        let (mut held, mut conns) = (Vec::new(), Vec::new());
        for _ in 0..4 {
            let conn = connect(&server.addr).await;
            exchange(&conn, &frames(&[hello("team/film", Some(&token))])).await;
            for _ in 0..30 {
                let (mut send, recv) = conn.open_bi().await.unwrap();
                let mut bytes = frames(&[Message::PutChunks]);
                bytes.extend_from_slice(&((16u32 << 20) + 1).to_le_bytes());
                bytes.push(dits_core::wire::CHUNK_KIND);
                bytes.extend_from_slice(&[7u8; 38]);
                send.write_all(&bytes).await.unwrap();
                held.push((send, recv));
            }
            conns.push(conn);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let during = rss_kib(pid);
        assert!(
            during < before + 200 * 1024,
            "server grew from {before} to {during} KiB for frames it was never sent"
        );
        drop(held);
        drop(conns);
    });
    // Connected but silent: closed after the hello deadline.
    rt.block_on(async {
        let conn = connect(&server.addr).await;
        let closed = tokio::time::timeout(Duration::from_secs(20), conn.closed()).await;
        assert!(closed.is_ok(), "an unauthenticated connection stayed open");
    });
}
