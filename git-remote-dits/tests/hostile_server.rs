//! Servers that misbehave, written here against the wire protocol: one answers with the right
//! manifest but chunk bytes that do not match their ids (the client must refuse them and
//! store nothing); one completes the handshake and then goes silent, or drips a byte a
//! second (the client must give up within its deadline, with an error that says so).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dits_core::chunker::ChunkerParams;
use dits_core::source::SourceErrorKind;
use dits_core::store::{ChunkSource, DiskStore, MemoryStore, StoreOptions};
use dits_core::transfer::{fetch, FetchOptions};
use dits_core::wire::{encode_frame, FrameHeader, Message, Rights, FRAME_HEADER_LEN};
use dits_core::{ChunkId, Pointer};
use git_remote_dits::client::{NetSettings, RemoteSource, TransportChoice};
use git_remote_dits::tls::ServerIdentity;
use git_remote_dits::{DitsUrl, NetError, Session};
use std::time::Instant;

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
                    Message::HasFiles { ids } => vec![Message::bitmap(ids.iter().map(|_| true))],
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

/// A hermetic git for the client's config and credential lookups, and a server identity.
fn setup(tmp: &std::path::Path) -> ServerIdentity {
    std::env::set_var("HOME", tmp);
    std::env::set_var("GIT_CONFIG_NOSYSTEM", "1");
    let git_dir = tmp.join("repo.git");
    let init = std::process::Command::new("git")
        .args(["init", "-q", "--bare"])
        .arg(&git_dir)
        .status()
        .unwrap();
    assert!(init.success());
    std::env::set_var("GIT_DIR", &git_dir);
    ServerIdentity::load_or_create(tmp).unwrap()
}

fn quic_server(rt: &tokio::runtime::Runtime, identity: ServerIdentity) -> quinn::Endpoint {
    let _guard = rt.enter();
    git_remote_dits::tls::endpoint(
        "127.0.0.1:0".parse().unwrap(),
        Some(identity.quinn_config().unwrap()),
    )
    .unwrap()
}

/// Client settings that pin the test server's certificate (nothing is written to git config).
fn settings(addr: std::net::SocketAddr, fingerprint: String, timeout: Duration) -> NetSettings {
    let mut s = NetSettings {
        timeout,
        transport: TransportChoice::Quic,
        ..NetSettings::default()
    };
    s.pins.insert(addr.to_string(), fingerprint);
    s
}

#[test]
fn forged_chunk_bytes_from_a_server_are_refused_and_not_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let identity = setup(tmp.path());
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
    let fp = identity.fingerprint();
    let endpoint = quic_server(&rt, identity);
    let addr = endpoint.local_addr().unwrap();
    let groups: HashMap<ChunkId, Vec<u8>> = manifest.encode().groups.into_iter().collect();
    rt.spawn(lying_server(endpoint, Arc::new(source), Arc::new(groups)));

    let url = DitsUrl::parse(&format!("dits://{addr}/team/film")).unwrap();
    let remote = RemoteSource::new(url, settings(addr, fp, Duration::from_secs(10)));
    let local = DiskStore::open(tmp.path().join("store"), StoreOptions::default()).unwrap();
    let pointer = Pointer::new(manifest.file_id, manifest.size);
    let err = fetch(&local, &remote, &[pointer], FetchOptions::default()).unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::BadData, "{err}");
    assert!(err.to_string().contains("does not match its id"), "{err}");
    assert!(
        !local.has_manifest(&manifest.file_id),
        "no manifest without its chunks"
    );
    for c in &manifest.chunks {
        assert!(!local.has_chunk(&c.id), "a forged chunk was stored");
    }
    drop(remote);
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// Welcomes the client, then answers nothing at all, or a byte a second.
async fn stalling_server(endpoint: quinn::Endpoint, drip: bool) {
    let conn = endpoint.accept().await.unwrap().await.unwrap();
    while let Ok((mut send, mut recv)) = conn.accept_bi().await {
        tokio::spawn(async move {
            if let Some(Message::Hello { .. }) = read_msg(&mut recv).await {
                let welcome = Message::Welcome {
                    version: 1,
                    capabilities: vec![],
                    rights: Rights::Read,
                };
                send_msg(&mut send, &welcome).await;
                let _ = send.finish();
                return;
            }
            if drip {
                let mut frame = Vec::new();
                encode_frame(&Message::bitmap([true]), &mut frame);
                for b in frame.iter().cycle() {
                    if send.write_all(&[*b]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            // Silent: keep the stream open until the client gives up.
            tokio::time::sleep(Duration::from_secs(600)).await;
        });
    }
}

#[test]
fn a_server_that_goes_silent_or_drips_fails_the_transfer_within_the_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let identity = setup(tmp.path());
    for drip in [false, true] {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let endpoint = quic_server(&rt, ServerIdentity::load_or_create(tmp.path()).unwrap());
        let addr = endpoint.local_addr().unwrap();
        rt.spawn(stalling_server(endpoint, drip));
        let url = DitsUrl::parse(&format!("dits://{addr}/team/film")).unwrap();
        let pinned = settings(addr, identity.fingerprint(), Duration::from_secs(2));
        let session = Session::connect(&url, &pinned).unwrap();
        let started = Instant::now();
        let err = session
            .has_files(&[dits_core::FileId([7; 32])])
            .unwrap_err();
        let waited = started.elapsed();
        assert!(
            matches!(err, NetError::Stalled { .. }),
            "drip={drip}: {err}"
        );
        assert!(err.retryable(), "a stalled transfer resumes on retry");
        assert!(err.to_string().contains("stopped sending"), "{err}");
        // The QUIC keep-alives keep the connection up: only the frame deadline ends it.
        assert!(
            waited < Duration::from_secs(15),
            "drip={drip}: waited {waited:?}"
        );
        drop(session);
        rt.shutdown_timeout(Duration::from_secs(1));
    }
    drop(identity);
}
