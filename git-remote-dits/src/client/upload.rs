//! Pushing files' content: ask which files and then which chunks the server lacks, send only
//! those in batches over parallel streams, then the manifests. Chunks first, manifests last,
//! so the server never holds a manifest whose chunks it lacks.

use std::collections::HashSet;
use std::sync::Arc;

use dits_core::manifest::{ChunkRef, TopManifest};
use dits_core::progress::Progress;
use dits_core::source::BATCH_BYTES;
use dits_core::store::{ChunkSource, DiskStore, StoreError};
use dits_core::wire::{ErrorCode, Message, Rights};
use dits_core::{ChunkId, FileId};
use tokio::sync::{mpsc, Mutex};

use super::{Session, STREAMS};
use crate::error::NetError;

/// What a push moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushStats {
    pub files: usize,
    /// Files the server lacked.
    pub files_sent: usize,
    pub chunks_sent: u64,
    /// Chunk payload bytes sent (not counting framing or QUIC overhead).
    pub bytes_sent: u64,
}

type Batch = Vec<(ChunkId, Vec<u8>)>;

impl Session {
    /// Makes every file in `files` (id, path for messages) complete on the server.
    pub fn push_files(
        &self,
        store: &DiskStore,
        files: &[(FileId, String)],
        progress: &dyn Progress,
    ) -> Result<PushStats, NetError> {
        let mut seen = HashSet::new();
        let files: Vec<&(FileId, String)> =
            files.iter().filter(|(id, _)| seen.insert(*id)).collect();
        let mut stats = PushStats {
            files: files.len(),
            ..PushStats::default()
        };
        if files.is_empty() {
            return Ok(stats);
        }
        if self.rights < Rights::Write {
            // Said before anything is sent: the server would refuse each upload stream.
            return Err(NetError::Remote {
                code: ErrorCode::Forbidden,
                message: format!(
                    "the token for {} on {} is read-only; pushing needs a token with write rights (`git dits serve token add --write`)",
                    self.url.repo,
                    self.url.authority()
                ),
            });
        }
        let ids: Vec<FileId> = files.iter().map(|(id, _)| *id).collect();
        let present = self.has_files(&ids)?;
        let missing: Vec<&(FileId, String)> = files
            .iter()
            .zip(&present)
            .filter(|(_, &p)| !p)
            .map(|(f, _)| *f)
            .collect();
        if missing.is_empty() {
            return Ok(stats);
        }
        stats.files_sent = missing.len();

        // Groups are asked about first: the server holding a group means it holds the
        // group's chunks, because a group is sent only once all its chunks are durable
        // (below). So an edit asks about the chunks of the one or two groups it changed,
        // not about every chunk of the file (32 bytes per 64 KiB chunk: 0.5 MiB per GiB).
        // Manifests go as they are stored, byte for byte, never re-encoded.
        let mut tops = Vec::with_capacity(missing.len());
        let mut groups: Vec<(ChunkId, u64, Vec<ChunkRef>)> = Vec::new();
        let mut listed = HashSet::new();
        for (id, path) in &missing {
            let not_local = |source: StoreError| NetError::NotLocal {
                path: path.clone(),
                id: Box::new(*id),
                source: Box::new(source),
            };
            let top_bytes = store.read_manifest_top(id).map_err(not_local)?;
            let top = TopManifest::decode(&top_bytes).map_err(|e| {
                not_local(StoreError::ManifestCorrupt {
                    path: store.manifest_path(id),
                    source: e,
                })
            })?;
            for g in &top.groups {
                if !listed.insert(g.id) {
                    continue;
                }
                let bytes = store.read_chunk(&g.id).map_err(not_local)?;
                let members = top
                    .group_entries(g, &bytes)
                    .map_err(|e| {
                        not_local(StoreError::ManifestCorrupt {
                            path: store.manifest_path(id),
                            source: e,
                        })
                    })?
                    .into_iter()
                    .map(|(c, _, _)| c)
                    .collect();
                groups.push((g.id, bytes.len() as u64, members));
            }
            tops.push(top_bytes);
        }
        let ids: Vec<ChunkId> = groups.iter().map(|g| g.0).collect();
        let present = self.has_chunks(&ids)?;
        let groups: Vec<_> = groups
            .into_iter()
            .zip(present)
            .filter(|(_, p)| !p)
            .map(|(g, _)| g)
            .collect();
        let candidates: Vec<(ChunkId, u64)> = groups
            .iter()
            .flat_map(|(_, _, chunks)| chunks)
            .filter(|c| listed.insert(c.id))
            .map(|c| (c.id, u64::from(c.len)))
            .collect();
        let ids: Vec<ChunkId> = candidates.iter().map(|c| c.0).collect();
        let present = self.has_chunks(&ids)?;
        let chunks: Vec<(ChunkId, u64)> = candidates
            .into_iter()
            .zip(present)
            .filter(|(_, p)| !p)
            .map(|(c, _)| c)
            .collect();
        let group_objects: Vec<(ChunkId, u64)> =
            groups.iter().map(|(id, len, _)| (*id, *len)).collect();
        progress.set_total(
            chunks
                .iter()
                .chain(&group_objects)
                .map(|(_, len)| len)
                .sum(),
        );
        let (n, bytes) = self.send_chunks(store, chunks, progress)?;
        let (gn, gbytes) = self.send_chunks(store, group_objects, progress)?;
        stats.chunks_sent = n + gn;
        stats.bytes_sent = bytes + gbytes;
        self.put_manifests(tops)?;
        Ok(stats)
    }

    fn send_chunks(
        &self,
        store: &DiskStore,
        to_send: Vec<(ChunkId, u64)>,
        progress: &dyn Progress,
    ) -> Result<(u64, u64), NetError> {
        if to_send.is_empty() {
            return Ok((0, 0));
        }
        let (tx, rx) = mpsc::channel::<Result<Batch, NetError>>(STREAMS);
        let rx = Arc::new(Mutex::new(rx));
        std::thread::scope(|scope| {
            // Reading (and verifying) chunks is blocking work: one thread feeds the streams.
            let reader = scope.spawn(move || read_batches(store, &to_send, &tx, progress));
            let sent = self.block_on(async {
                let mut tasks = Vec::new();
                for _ in 0..STREAMS {
                    let rx = Arc::clone(&rx);
                    let streams = self.open();
                    tasks.push(async move {
                        let (mut w, mut r) = streams.await?;
                        w.send(&Message::PutChunks).await?;
                        let (mut chunks, mut bytes) = (0u64, 0u64);
                        loop {
                            let next = rx.lock().await.recv().await;
                            let batch = match next {
                                None => break,
                                Some(b) => b?,
                            };
                            let batch_bytes: u64 = batch.iter().map(|(_, d)| d.len() as u64).sum();
                            let n = batch.len() as u32;
                            let sent = async {
                                for (id, data) in batch {
                                    w.send_chunk(id, data).await?;
                                }
                                w.send(&Message::BatchEnd).await
                            }
                            .await;
                            if let Err(e) = sent {
                                // The server may have stopped reading because it refused the
                                // upload: its error frame says why, better than "stopped".
                                return Err(refusal_or(&mut r, e).await);
                            }
                            match r.expect("batch-ack").await? {
                                Message::BatchAck { chunks: acked, .. } if acked == n => {}
                                other => return Err(r.unexpected(&other, "batch-ack")),
                            }
                            chunks += u64::from(n);
                            bytes += batch_bytes;
                            progress.inc(batch_bytes);
                        }
                        w.finish().await;
                        Ok::<_, NetError>((chunks, bytes))
                    });
                }
                let results = futures_util::future::try_join_all(tasks).await?;
                Ok::<_, NetError>(
                    results
                        .into_iter()
                        .fold((0, 0), |t, (c, b)| (t.0 + c, t.1 + b)),
                )
            });
            // The streams are gone; closing the channel stops a reader that is still reading
            // (if sending failed) at its next send. A read failure went down the channel.
            if let Ok(mut rx) = rx.try_lock() {
                rx.close();
            }
            let _ = reader.join();
            sent
        })
    }

    /// Sends the top-level manifests on one stream, pipelined; each must be accepted.
    fn put_manifests(&self, tops: Vec<Vec<u8>>) -> Result<(), NetError> {
        let requests = tops
            .into_iter()
            .map(|top| Message::PutManifest { top })
            .collect();
        let answers = self.pipeline(requests, "done").map_err(|e| match e {
            // A server from before video-aware chunking refuses version 3 manifests.
            NetError::Remote { code, message } if message.contains("manifest version") => {
                NetError::Remote {
                    code,
                    message: format!(
                        "{message}; the Dits server is older than this client: upgrade it, or `git config dits.mp4 false` and add the media files again"
                    ),
                }
            }
            e => e,
        })?;
        for answer in answers {
            if answer != Message::Done {
                return Err(self.unexpected(&answer, "done"));
            }
        }
        Ok(())
    }
}

/// The server's error frame on `r`, if it sent one before it stopped reading; else `e`.
async fn refusal_or(r: &mut crate::frames::FrameReader, e: NetError) -> NetError {
    let wait = std::time::Duration::from_secs(2);
    match tokio::time::timeout(wait, r.next()).await {
        Ok(Ok(Some(Message::Error { code, message }))) => NetError::Remote { code, message },
        _ => e,
    }
}

/// Reads the chunks to send (each verified against its id) into batches for the streams. A
/// failure is sent down the channel, where it fails the push.
fn read_batches(
    store: &DiskStore,
    to_send: &[(ChunkId, u64)],
    tx: &mpsc::Sender<Result<Batch, NetError>>,
    progress: &dyn Progress,
) {
    let mut batch = Vec::new();
    let mut size = 0usize;
    for (id, _) in to_send {
        if progress.interrupted() {
            let _ = tx.blocking_send(Err(NetError::Interrupted));
            return;
        }
        match store.read_chunk(id) {
            Ok(data) => {
                size += data.len();
                batch.push((*id, data));
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(NetError::Store(e)));
                return;
            }
        }
        if size as u64 >= BATCH_BYTES {
            if tx.blocking_send(Ok(std::mem::take(&mut batch))).is_err() {
                return;
            }
            size = 0;
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Ok(batch));
    }
}
