//! A server that lies: it answers with the right manifest but chunk bytes that do not match
//! their ids. The client must refuse them and store nothing (the honest server verifies its
//! own reads, so only a broken or malicious one can send such bytes).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dits_core::chunker::ChunkerParams;
use dits_core::store::{ChunkSource, DiskStore, MemoryStore, StoreOptions};
use dits_core::wire::{encode_frame, FrameHeader, Message, Rights, FRAME_HEADER_LEN};
use dits_core::ChunkId;
use git_remote_dits::tls::ServerIdentity;
use git_remote_dits::{DitsUrl, NetError, Session};

async fn read_msg(recv: &mut quinn::RecvStream) -> Option<Message> {
    let mut head = [0u8; FRAME_HEADER_LEN];
    recv.read_exact(&mut head).await.ok()?;
    let header = FrameHeader::parse(head).unwrap();
    let mut body = vec![0u8; header.body_len];
    recv.read_exact(&mut body).await.ok()?;
    Some(Message::decode(header.kind, &body).unwrap())
}

async fn send_msg(send: &mut quinn::SendStream, msg: &Message) {
    let mut buf = Vec::new();
    encode_frame(msg, &mut buf);
    send.write_all(&buf).await.unwrap();
}

/// Serves one connection: welcomes anyone, sends real manifests (and their group objects)
/// and forged chunk bytes.
async fn lying_server(
    endpoint: quinn::Endpoint,
    source: Arc<MemoryStore>,
    groups: Arc<HashMap<ChunkId, Vec<u8>>>,
) {
    let conn = endpoint.accept().await.unwrap().await.unwrap();
    while let Ok((mut send, mut recv)) = conn.accept_bi().await {
        let source = Arc::clone(&source);
        let groups = Arc::clone(&groups);
        tokio::spawn(async move {
            while let Some(msg) = read_msg(&mut recv).await {
                let answer: Vec<Message> = match msg {
                    Message::Hello { .. } => vec![Message::Welcome {
                        version: 1,
                        capabilities: vec![],
                        rights: Rights::Read,
                    }],
                    Message::GetManifest { id } => {
                        let m = source.read_manifest(&id).unwrap();
                        vec![Message::ManifestTop {
                            top: m.encode().top,
                        }]
                    }
                    Message::GetChunks { ids } => {
                        let mut out: Vec<Message> = ids
                            .into_iter()
                            .map(|id| match groups.get(&id) {
                                Some(g) => Message::Chunk {
                                    id,
                                    data: g.clone(),
                                },
                                None => {
                                    let mut data = source.read_chunk(&id).unwrap();
                                    data[0] ^= 0xff;
                                    Message::Chunk { id, data }
                                }
                            })
                            .collect();
                        out.push(Message::BatchEnd);
                        out
                    }
                    other => panic!("unexpected {other:?}"),
                };
                for m in &answer {
                    send_msg(&mut send, m).await;
                }
            }
            let _ = send.finish();
        });
    }
}

#[test]
fn forged_chunk_bytes_from_a_server_are_refused_and_not_stored() {
    let tmp = tempfile::tempdir().unwrap();
    // Hermetic git for the client's config and credential lookups.
    std::env::set_var("HOME", tmp.path());
    std::env::set_var("GIT_CONFIG_NOSYSTEM", "1");
    std::env::set_var("GIT_DITS_TRUST_NEW_SERVER", "1");
    let git_dir = tmp.path().join("repo.git");
    let init = std::process::Command::new("git")
        .args(["init", "-q", "--bare"])
        .arg(&git_dir)
        .status()
        .unwrap();
    assert!(init.success());
    std::env::set_var("GIT_DIR", &git_dir);

    let mut source = MemoryStore::default();
    let data: Vec<u8> = (0..400_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let manifest = dits_core::ingest::ingest(
        &data[..],
        ChunkerParams::default(),
        &mut source,
        &dits_core::progress::Silent,
    )
    .unwrap()
    .manifest;

    let rt = tokio::runtime::Runtime::new().unwrap();
    let identity = ServerIdentity::load_or_create(tmp.path()).unwrap();
    let endpoint = {
        let _guard = rt.enter();
        git_remote_dits::tls::endpoint(
            "127.0.0.1:0".parse().unwrap(),
            Some(identity.quinn_config().unwrap()),
        )
        .unwrap()
    };
    let addr = endpoint.local_addr().unwrap();
    let groups: HashMap<ChunkId, Vec<u8>> = manifest.encode().groups.into_iter().collect();
    rt.spawn(lying_server(endpoint, Arc::new(source), Arc::new(groups)));

    let url = DitsUrl::parse(&format!("dits://{addr}/team/film")).unwrap();
    let session = Session::connect(&url).unwrap();
    let local = DiskStore::open(tmp.path().join("store"), StoreOptions::default()).unwrap();
    let err = session
        .fetch_files(&local, &[manifest.file_id], &dits_core::progress::Silent)
        .unwrap_err();
    assert!(matches!(err, NetError::CorruptChunk { .. }), "{err}");
    assert!(err.to_string().contains("does not match its id"), "{err}");
    assert!(
        !local.has_manifest(&manifest.file_id),
        "no manifest without its chunks"
    );
    for c in &manifest.chunks {
        assert!(!local.has_chunk(&c.id), "a forged chunk was stored");
    }
    drop(session);
    rt.shutdown_timeout(Duration::from_secs(1));
}
