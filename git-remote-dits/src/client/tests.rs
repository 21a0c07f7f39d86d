//! The client `Session` against the real server code, in-process: both ends of a yamux
//! connection over an in-memory duplex, so push, queries and download run without sockets.

use std::sync::Arc;

use dits_core::chunker::ChunkerParams;
use dits_core::progress::Silent;
use dits_core::store::{DiskStore, StoreOptions};
use dits_core::wire::{ErrorCode, Rights};

use super::{NetSettings, Session};
use crate::error::NetError;
use crate::server::serve_connection;
use crate::server::test_support::Server;
use crate::transport::{Connection, Mux};
use crate::url::DitsUrl;

fn session(server: &Server, token: &str) -> Result<Session, NetError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (a, b) = tokio::io::duplex(1 << 20);
    let (client, served) = rt.block_on(async {
        (
            Connection::Mux(Mux::start(a, false)),
            Connection::Mux(Mux::start(b, true)),
        )
    });
    rt.spawn(serve_connection(Arc::clone(&server.ctx), served));
    let url = DitsUrl::parse("dits://127.0.0.1:1/team/film").expect("url");
    let settings = NetSettings {
        token: Some(token.to_owned()),
        ..NetSettings::default()
    };
    Session::over(rt, client, &url, &settings)
}

#[test]
fn a_session_pushes_queries_and_downloads_in_process() {
    let server = Server::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let store = DiskStore::open(dir.path().join("store"), StoreOptions::default()).expect("store");
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let mut writer = store.writer().expect("writer");
    let ingested =
        dits_core::ingest::ingest(&data[..], ChunkerParams::default(), &mut writer, &Silent)
            .expect("ingest");
    drop(writer);
    let manifest = ingested.manifest;
    let id = manifest.file_id;

    let s = session(&server, &server.write_token).expect("session");
    assert_eq!(s.rights(), Rights::Write);
    assert_eq!(s.has_files(&[id]).expect("has-files"), vec![false]);
    let first = s
        .push_files(&store, &[(id, "clip.bin".into())], &Silent)
        .expect("push");
    // Every chunk of the file, and the manifest's own group objects if it has any.
    let distinct: std::collections::HashSet<_> = manifest.chunks.iter().map(|c| c.id).collect();
    assert!(
        first.chunks_sent >= distinct.len() as u64 && first.files_sent == 1,
        "{first:?}"
    );
    assert_eq!(s.has_files(&[id]).expect("has-files"), vec![true]);
    let ids: Vec<_> = manifest.chunks.iter().map(|c| c.id).collect();
    assert!(s.has_chunks(&ids).expect("has-chunks").iter().all(|&b| b));
    // Again: the server has it all, nothing is sent.
    let again = s
        .push_files(&store, &[(id, "clip.bin".into())], &Silent)
        .expect("push again");
    assert_eq!(again.chunks_sent, 0);

    // Read back as a reader: the stored manifest and every chunk, checked against its id.
    let reader = session(&server, &server.read_token).expect("read session");
    assert_eq!(reader.rights(), Rights::Read);
    let tops = reader.manifest_tops(&[id]).expect("manifest");
    assert!(tops[0].is_some());
    let mut got = Vec::new();
    reader
        .chunks(&manifest.chunks, &mut |batch| {
            got.extend(batch);
            Ok(())
        })
        .map_err(|_| "download failed")
        .expect("chunks");
    let rebuilt: Vec<u8> = got.into_iter().flat_map(|(_, d)| d).collect();
    assert_eq!(rebuilt, data);

    // A read-only token cannot push, and says why before sending anything.
    match reader.push_files(&store, &[(id, "clip.bin".into())], &Silent) {
        Err(NetError::Remote {
            code: ErrorCode::Forbidden,
            message,
        }) => {
            assert!(message.contains("read-only"), "{message}")
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    // A token the server does not know is refused as itself.
    match session(&server, "not-a-token") {
        Err(NetError::Remote { code, .. }) => assert_eq!(code, ErrorCode::AuthRequired),
        Err(other) => panic!("expected a refusal, got {other:?}"),
        Ok(_) => panic!("an unknown token was accepted"),
    }
}
