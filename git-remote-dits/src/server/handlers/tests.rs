//! Each handler driven in-process over a pipe, against a real store on a temp dir.

use dits_core::chunker::ChunkerParams;
use dits_core::ingest::ingest;
use dits_core::progress::Silent;
use dits_core::store::{ChunkSource, MemoryStore};
use dits_core::wire::{ErrorCode, Message};
use dits_core::{ChunkId, FileId};

use super::test_support::{hello, refused, Server};

fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_needs_a_known_token_and_grants_its_rights() {
    let s = Server::new();
    let conn = s.connection(None).await;
    let answer = s.exchange(&conn, &[hello(None)]).await;
    assert_eq!(refused(&answer), Some(ErrorCode::AuthRequired));
    let answer = s.exchange(&conn, &[hello(Some("dits_guess"))]).await;
    assert_eq!(refused(&answer), Some(ErrorCode::AuthRequired));
    // Before a hello succeeds, requests are refused.
    let answer = s.exchange(&conn, &[Message::PutChunks]).await;
    assert_eq!(refused(&answer), Some(ErrorCode::AuthRequired));
    let answer = s.exchange(&conn, &[hello(Some(&s.read_token))]).await;
    assert!(
        matches!(
            answer[..],
            [Message::Welcome {
                rights: dits_core::wire::Rights::Read,
                ..
            }]
        ),
        "{answer:?}"
    );
    // Past four hellos on one connection, every hello is refused outright.
    let answer = s.exchange(&conn, &[hello(Some("x"))]).await;
    assert_eq!(refused(&answer), Some(ErrorCode::AuthRequired));
    let answer = s.exchange(&conn, &[hello(Some(&s.read_token))]).await;
    assert_eq!(refused(&answer), Some(ErrorCode::Forbidden));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_need_write_rights_and_verified_chunks() {
    let s = Server::new();
    let reader = s.connection(Some(&s.read_token)).await;
    let good = noise(1, 70_000);
    let chunk = |data: &[u8]| Message::Chunk {
        id: ChunkId::of(data),
        data: data.to_vec(),
    };
    let answer = s
        .exchange(
            &reader,
            &[Message::PutChunks, chunk(&good), Message::BatchEnd],
        )
        .await;
    assert_eq!(refused(&answer), Some(ErrorCode::Forbidden));

    let writer = s.connection(Some(&s.write_token)).await;
    let answer = s
        .exchange(
            &writer,
            &[Message::PutChunks, chunk(&good), Message::BatchEnd],
        )
        .await;
    assert_eq!(
        answer,
        vec![Message::BatchAck {
            chunks: 1,
            bytes: 70_000
        }]
    );
    let mut forged = good.clone();
    forged[0] ^= 1;
    let answer = s
        .exchange(
            &writer,
            &[
                Message::PutChunks,
                Message::Chunk {
                    id: ChunkId::of(&noise(2, 10)),
                    data: forged,
                },
                Message::BatchEnd,
            ],
        )
        .await;
    assert_eq!(refused(&answer), Some(ErrorCode::CorruptChunk));
    let store = s
        .ctx
        .repos
        .store("team/film", false)
        .expect("store")
        .expect("exists");
    assert!(store.has_chunk(&ChunkId::of(&good)));
    assert!(!store.has_chunk(&ChunkId::of(&noise(2, 10))));
    // Reading back: a chunk the server has, then one it lacks.
    let answer = s
        .exchange(
            &reader,
            &[Message::GetChunks {
                ids: vec![ChunkId::of(&good), ChunkId::of(b"nothing")],
            }],
        )
        .await;
    assert!(matches!(&answer[0], Message::Chunk { data, .. } if *data == good));
    assert_eq!(refused(&answer), Some(ErrorCode::NotFound));
}

/// A manifest counts only when the content it rebuilds hashes to its id: squatting a file id
/// with another file's chunks is refused, and the honest manifest is accepted afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_is_stored_only_for_content_that_hashes_to_its_id() {
    let s = Server::new();
    let writer = s.connection(Some(&s.write_token)).await;
    let data = noise(3, 800_000);
    let mut mem = MemoryStore::default();
    let m = ingest(&data[..], ChunkerParams::default(), &mut mem, &Silent)
        .expect("ingest")
        .manifest;
    let enc = m.encode();
    let mut upload = vec![Message::PutChunks];
    for c in &m.chunks {
        upload.push(Message::Chunk {
            id: c.id,
            data: mem.read_chunk(&c.id).expect("chunk"),
        });
    }
    for (id, g) in &enc.groups {
        upload.push(Message::Chunk {
            id: *id,
            data: g.clone(),
        });
    }
    upload.push(Message::BatchEnd);
    let answer = s.exchange(&writer, &upload).await;
    assert!(
        matches!(answer[..], [Message::BatchAck { .. }]),
        "{answer:?}"
    );

    let later = FileId::of(b"the file someone will push later");
    let mut squat = m.clone();
    squat.file_id = later;
    let answer = s
        .exchange(
            &writer,
            &[Message::PutManifest {
                top: squat.encode().top,
            }],
        )
        .await;
    assert_eq!(refused(&answer), Some(ErrorCode::BadRequest), "{answer:?}");
    let reader = s.connection(Some(&s.read_token)).await;
    let answer = s
        .exchange(
            &reader,
            &[Message::HasFiles {
                ids: vec![later, m.file_id],
            }],
        )
        .await;
    assert_eq!(answer, vec![Message::bitmap([false, false])]);

    let answer = s
        .exchange(
            &writer,
            &[Message::PutManifest {
                top: enc.top.clone(),
            }],
        )
        .await;
    assert_eq!(answer, vec![Message::Done]);
    let answer = s
        .exchange(&reader, &[Message::GetManifest { id: m.file_id }])
        .await;
    assert_eq!(answer, vec![Message::ManifestTop { top: enc.top }]);

    // A manifest whose chunks were never uploaded.
    let other = ingest(
        &noise(4, 300_000)[..],
        ChunkerParams::default(),
        &mut mem,
        &Silent,
    )
    .expect("ingest")
    .manifest;
    let answer = s
        .exchange(
            &writer,
            &[Message::PutManifest {
                top: other.encode().top,
            }],
        )
        .await;
    assert_eq!(refused(&answer), Some(ErrorCode::MissingObjects));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_requests_belong_to_the_token_user_and_need_their_rights() {
    use dits_core::locks::{
        CheckRequest, ListRequest, LockAsk, LockCall, LockReply, LockRequest, Refusal,
        UnlockRequest,
    };
    let s = Server::new();
    let writer = s.connection(Some(&s.write_token)).await;
    let reader = s.connection(Some(&s.read_token)).await;
    let lock = |path: &str| {
        Message::Lock(LockCall::Lock(LockRequest {
            branch: "refs/heads/main".into(),
            paths: vec![LockAsk {
                path: path.into(),
                blob: None,
            }],
            reason: "edit".into(),
            base: None,
            release_on_push: false,
        }))
    };
    let answer = s.exchange(&writer, &[lock("a.psd")]).await;
    assert!(
        matches!(&answer[..], [Message::LockReply(LockReply::Ok { locks, .. })] if locks[0].owner == "writer"),
        "{answer:?}"
    );
    // A read-only token may not lock, a bad path is refused by name.
    assert_eq!(
        refused(&s.exchange(&reader, &[lock("b.psd")]).await),
        Some(ErrorCode::Forbidden)
    );
    let answer = s.exchange(&writer, &[lock("../etc/passwd")]).await;
    assert!(
        matches!(&answer[..], [Message::Error { code: ErrorCode::BadRequest, message }] if message.contains("../etc/passwd")),
        "{answer:?}"
    );
    // The reader lists it and is told a push of it would break it.
    let answer = s
        .exchange(
            &reader,
            &[Message::Lock(LockCall::List(ListRequest::default()))],
        )
        .await;
    assert!(
        matches!(&answer[..], [Message::LockReply(LockReply::Ok { locks, .. })] if locks.len() == 1),
        "{answer:?}"
    );
    let check = |pusher: Option<&str>| {
        Message::Lock(LockCall::Check(CheckRequest {
            branch: "refs/heads/main".into(),
            paths: vec!["a.psd".into(), "c.txt".into()],
            pusher: pusher.map(str::to_owned),
        }))
    };
    let answer = s.exchange(&reader, &[check(None)]).await;
    assert!(
        matches!(&answer[..], [Message::LockReply(LockReply::Ok { locks, .. })] if locks.len() == 1),
        "{answer:?}"
    );
    // Asking for another pusher needs an admin token.
    assert_eq!(
        refused(&s.exchange(&reader, &[check(Some("writer"))]).await),
        Some(ErrorCode::Forbidden)
    );
    // Only the holder unlocks without force.
    let unlock = Message::Lock(LockCall::Unlock(UnlockRequest {
        paths: vec!["a.psd".into()],
        force: true,
        reason: "mine".into(),
    }));
    let answer = s.exchange(&writer, &[unlock]).await;
    assert!(
        matches!(&answer[..], [Message::LockReply(LockReply::Ok { locks, .. })] if locks.len() == 1),
        "{answer:?}"
    );
    let answer = s
        .exchange(
            &writer,
            &[Message::Lock(LockCall::Unlock(UnlockRequest {
                paths: vec!["a.psd".into()],
                force: false,
                reason: String::new(),
            }))],
        )
        .await;
    assert!(
        matches!(
            &answer[..],
            [Message::LockReply(LockReply::Refused {
                why: Refusal::NotLocked,
                ..
            })]
        ),
        "{answer:?}"
    );
}
