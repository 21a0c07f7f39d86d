//! Fetching files' content: top-level manifests first (checked against the ids asked for),
//! then the groups and chunks the local store lacks, in batches over parallel streams. Each
//! chunk is verified against its id before it is stored and each batch is made durable as it
//! lands, so an interrupted fetch resumes where it stopped.

use std::collections::HashSet;
use std::path::Path;

use dits_core::manifest::TopManifest;
use dits_core::prepared::{Prepared, Preparer};
use dits_core::progress::{Progress, Silent};
use dits_core::store::{ChunkSink, ChunkSource, DiskStore, StoreError};
use dits_core::transfer::prepare_from;
use dits_core::wire::{Message, MAX_IDS_PER_QUERY};
use dits_core::{ChunkId, FileId, Manifest};
use tokio::sync::mpsc;

use super::{Session, BATCH_BYTES};
use crate::error::NetError;

/// Called with each batch of chunks a fetch has verified and made durable.
type OnBatch<'a> = dyn FnMut(&[(ChunkId, Vec<u8>)]) -> Result<(), NetError> + Send + 'a;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchStats {
    pub files: usize,
    /// Files that were not complete locally.
    pub files_fetched: usize,
    pub chunks_fetched: u64,
    /// Chunk payload bytes received.
    pub bytes_fetched: u64,
}

impl Session {
    /// Makes every file in `ids` complete in `store`.
    pub fn fetch_files(
        &self,
        store: &DiskStore,
        ids: &[FileId],
        progress: &dyn Progress,
    ) -> Result<FetchStats, NetError> {
        Ok(self.fetch_inner(store, ids, progress, None)?.0)
    }

    /// Makes `id` complete in `store` and writes its content into a temp file in `dir` as the
    /// chunks land (see `dits_core::prepared`), instead of reading them all back afterwards.
    pub fn fetch_and_prepare(
        &self,
        store: &DiskStore,
        id: &FileId,
        dir: &Path,
    ) -> Result<Prepared, NetError> {
        let (_, preparer) = self.fetch_inner(store, &[*id], &Silent, Some((id, dir)))?;
        Ok(match preparer {
            Some(p) => p.finish(store)?,
            // It was complete here already.
            None => prepare_from(store, store.read_manifest(id)?, dir)?,
        })
    }

    /// [`Session::fetch_files`], also feeding the file `prepare` names, if any, to a
    /// [`Preparer`] in its directory batch by batch.
    fn fetch_inner(
        &self,
        store: &DiskStore,
        ids: &[FileId],
        progress: &dyn Progress,
        prepare: Option<(&FileId, &Path)>,
    ) -> Result<(FetchStats, Option<Preparer>), NetError> {
        // Each manifest is read once. A file whose manifest is here but whose chunks are not
        // (dropped by `git dits prune`, or a version never pushed that shares chunks with one
        // that was) needs only chunks, by id: the server may not know the file at all.
        let mut seen = HashSet::new();
        let (mut manifests, mut unknown) = (Vec::new(), Vec::new());
        for id in ids.iter().filter(|id| seen.insert(**id)) {
            match store.read_manifest(id) {
                Ok(m) if m.chunks.iter().all(|c| store.has_chunk(&c.id)) => {}
                Ok(m) => manifests.push(m),
                Err(_) => unknown.push(*id),
            }
        }
        let mut stats = FetchStats {
            files: seen.len(),
            files_fetched: manifests.len() + unknown.len(),
            ..FetchStats::default()
        };
        if stats.files_fetched == 0 {
            return Ok((stats, None));
        }
        let tops = self.get_tops(&unknown)?;
        let mut listed = HashSet::new();
        manifests.extend(self.complete_tops(store, tops, &mut listed)?);
        let mut preparer = match prepare {
            Some((id, dir)) => match manifests.iter().find(|m| m.file_id == *id) {
                Some(m) => Some(
                    Preparer::create(dir, m.clone())
                        .map_err(|e| StoreError::io(dir.to_owned(), e))?,
                ),
                None => None,
            },
            None => None,
        };

        let chunks: Vec<(ChunkId, u64)> = manifests
            .iter()
            .flat_map(|m| &m.chunks)
            .filter(|c| listed.insert(c.id) && !store.has_chunk(&c.id))
            .map(|c| (c.id, u64::from(c.len)))
            .collect();
        progress.set_total(chunks.iter().map(|(_, len)| len).sum());
        let mut feed = |batch: &[(ChunkId, Vec<u8>)]| -> Result<(), NetError> {
            if let Some(p) = preparer.as_mut() {
                let fresh = batch.iter().map(|(id, data)| (*id, &data[..])).collect();
                p.advance(store, &fresh)?;
            }
            Ok(())
        };
        let (n, bytes) = self.get_chunks(store, chunks, progress, &mut feed)?;
        stats.chunks_fetched = n;
        stats.bytes_fetched = bytes;

        let mut writer = store.writer()?;
        for m in &manifests {
            writer.put_manifest(m)?;
        }
        Ok((stats, preparer))
    }

    /// The manifest of `id` (top level and groups, each verified), without storing anything
    /// and without the file's chunks: what a reader that wants a few byte ranges of a large
    /// file (the mount) needs first, at once; it stores the manifest later.
    pub fn read_manifest(&self, id: &FileId) -> Result<Manifest, NetError> {
        let top = self
            .get_tops(&[*id])?
            .pop()
            .ok_or_else(|| NetError::BadData {
                peer: self.peer(),
                what: format!("no manifest for {id}"),
            })?;
        let wanted: Vec<(ChunkId, u64)> = top
            .groups
            .iter()
            .map(|g| (g.id, top.group_object_len(g)))
            .collect();
        let groups = self.read_chunks(&wanted)?;
        Manifest::assemble(top, &groups).map_err(|e| NetError::BadData {
            peer: self.peer(),
            what: format!("its manifest of {id} is inconsistent ({e})"),
        })
    }

    /// Downloads `wanted` (ids with their lengths from a manifest) and returns their bytes in
    /// order, each verified against its id; nothing is stored. Requests of at most one batch
    /// are pipelined on one stream.
    pub fn read_chunks(&self, wanted: &[(ChunkId, u64)]) -> Result<Vec<Vec<u8>>, NetError> {
        let batches = into_batches(wanted.to_vec());
        self.block_on(async {
            let (mut w, mut r) = self.open().await?;
            let sender = async {
                for batch in &batches {
                    let ids = batch.iter().map(|(id, _)| *id).collect();
                    w.send(&Message::GetChunks { ids }).await?;
                }
                w.finish();
                Ok::<_, NetError>(())
            };
            let receiver = async {
                let mut out = Vec::with_capacity(wanted.len());
                for batch in &batches {
                    for &(id, len) in batch {
                        let data = r.expect_chunk(id, len).await?;
                        if ChunkId::of(&data) != id {
                            return Err(NetError::CorruptChunk {
                                peer: r.peer.clone(),
                                id,
                            });
                        }
                        out.push(data);
                    }
                    match r.expect("batch-end").await? {
                        Message::BatchEnd => {}
                        other => return Err(r.unexpected(&other, "batch-end")),
                    }
                }
                Ok(out)
            };
            let ((), out) = tokio::try_join!(sender, receiver)?;
            Ok(out)
        })
    }

    /// Fetches the group objects of `tops` that `store` lacks and assembles the manifests.
    /// `listed` collects the ids already asked for, so none is fetched twice.
    fn complete_tops(
        &self,
        store: &DiskStore,
        tops: Vec<TopManifest>,
        listed: &mut HashSet<ChunkId>,
    ) -> Result<Vec<Manifest>, NetError> {
        let groups: Vec<(ChunkId, u64)> = tops
            .iter()
            .flat_map(|t| t.groups.iter().map(move |g| (g, t.group_object_len(g))))
            .filter(|(g, _)| listed.insert(g.id) && !store.has_chunk(&g.id))
            .map(|(g, len)| (g.id, len))
            .collect();
        self.get_chunks(store, groups, &Silent, &mut |_| Ok(()))?;
        let mut out = Vec::with_capacity(tops.len());
        for top in tops {
            let group_bytes = top
                .groups
                .iter()
                .map(|g| store.read_chunk(&g.id))
                .collect::<Result<Vec<_>, _>>()?;
            let id = top.file_id;
            let m = Manifest::assemble(top, &group_bytes).map_err(|e| NetError::BadData {
                peer: self.peer(),
                what: format!("its manifest of {id} is inconsistent ({e})"),
            })?;
            out.push(m);
        }
        Ok(out)
    }

    /// Fetches top-level manifests, pipelined on one stream, each checked to be the one asked.
    fn get_tops(&self, ids: &[FileId]) -> Result<Vec<TopManifest>, NetError> {
        let requests = ids
            .iter()
            .map(|id| Message::GetManifest { id: *id })
            .collect();
        let answers = self.pipeline(requests, "manifest")?;
        ids.iter()
            .zip(answers)
            .map(|(id, answer)| {
                let Message::ManifestTop { top } = answer else {
                    return Err(self.unexpected(&answer, "manifest"));
                };
                TopManifest::decode(&top)
                    .ok()
                    .filter(|t| t.file_id == *id)
                    .ok_or_else(|| NetError::BadData {
                        peer: self.peer(),
                        what: format!("an invalid manifest for {id}"),
                    })
            })
            .collect()
    }

    /// Downloads `wanted` into `store`; returns chunks and bytes received. Each batch, once
    /// durable, is also handed to `on_batch`, verified.
    fn get_chunks(
        &self,
        store: &DiskStore,
        wanted: Vec<(ChunkId, u64)>,
        progress: &dyn Progress,
        on_batch: &mut OnBatch<'_>,
    ) -> Result<(u64, u64), NetError> {
        if wanted.is_empty() {
            return Ok((0, 0));
        }
        let mut batches = into_batches(wanted).into_iter();
        // Each batch goes to the writer with a way to say it is durable (see below).
        type Durable = tokio::sync::oneshot::Sender<()>;
        let (tx, mut rx) = mpsc::channel::<(Vec<(ChunkId, Vec<u8>)>, Durable)>(1);
        let peer = self.peer();
        std::thread::scope(|scope| {
            // The writer owns the receiver: if it stops, senders fail at once instead of
            // waiting for room in a channel nobody reads.
            let writer = scope.spawn(move || {
                // Verifies and stores; a batch is durable before the next is taken.
                let mut writer = store.writer()?;
                let (mut chunks, mut bytes) = (0u64, 0u64);
                while let Some((batch, durable)) = rx.blocking_recv() {
                    if progress.interrupted() {
                        return Err(NetError::Interrupted);
                    }
                    let mut batch_bytes = 0;
                    chunks += batch.len() as u64;
                    for (id, data) in &batch {
                        if ChunkId::of(data) != *id {
                            return Err(NetError::CorruptChunk {
                                peer: peer.clone(),
                                id: *id,
                            });
                        }
                        batch_bytes += data.len() as u64;
                        writer.put_chunk(*id, data)?;
                    }
                    writer.commit()?;
                    let _ = durable.send(());
                    on_batch(&batch)?;
                    bytes += batch_bytes;
                    progress.inc(batch_bytes);
                }
                Ok::<_, NetError>((chunks, bytes))
            });
            // One stream, two batches deep: batch k+1 is asked for once batch k is received,
            // while the writer makes batch k durable; batch k+2 waits until it is. So the
            // network and the disk overlap, and at most 2 batches are ever received but not
            // durable (a killed fetch re-fetches at most those).
            let received = self.block_on(async {
                let (mut w, mut r) = self.open().await?;
                let mut previous: Option<tokio::sync::oneshot::Receiver<()>> = None;
                for wanted in batches.by_ref() {
                    let ids = wanted.iter().map(|(id, _)| *id).collect();
                    w.send(&Message::GetChunks { ids }).await?;
                    let mut batch = Vec::with_capacity(wanted.len());
                    for (id, len) in wanted {
                        batch.push((id, r.expect_chunk(id, len).await?));
                    }
                    match r.expect("batch-end").await? {
                        Message::BatchEnd => {}
                        other => return Err(r.unexpected(&other, "batch-end")),
                    }
                    if let Some(p) = previous.take() {
                        if p.await.is_err() {
                            // The writer stopped; its error is the one to report.
                            break;
                        }
                    }
                    let (durable, committed) = tokio::sync::oneshot::channel();
                    if tx.send((batch, durable)).await.is_err() {
                        break;
                    }
                    previous = Some(committed);
                }
                if let Some(p) = previous {
                    let _ = p.await;
                }
                w.finish();
                Ok::<_, NetError>(())
            });
            drop(tx);
            let written = writer.join().unwrap_or(Err(NetError::Interrupted));
            // A store or verification failure explains a stopped transfer better than the
            // stream error it caused.
            let written = written?;
            received?;
            Ok(written)
        })
    }
}

/// Cuts the wanted list into requests of at most [`BATCH_BYTES`] and [`MAX_IDS_PER_QUERY`].
fn into_batches(wanted: Vec<(ChunkId, u64)>) -> Vec<Vec<(ChunkId, u64)>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut size = 0u64;
    for (id, len) in wanted {
        if !current.is_empty()
            && (size + len > BATCH_BYTES as u64 || current.len() == MAX_IDS_PER_QUERY)
        {
            out.push(std::mem::take(&mut current));
            size = 0;
        }
        size += len;
        current.push((id, len));
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}
