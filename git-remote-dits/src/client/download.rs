//! Downloading: top-level manifests by file id, and chunks by id in batches. What to ask for,
//! what to keep and how to check it is `dits_core::transfer`; this side moves the bytes and
//! checks each chunk against its id and the length the manifest gives before handing it on.

use dits_core::manifest::ChunkRef;
use dits_core::source::{batches, Batch, SourceError};
use dits_core::wire::{Message, MAX_IDS_PER_QUERY};
use dits_core::{ChunkId, FileId};
use tokio::sync::mpsc;

use super::Session;
use crate::error::NetError;

/// What an `on_batch` callback failed with: kept whole, so the caller gets its own error back.
pub(crate) enum Stop {
    Net(NetError),
    Caller(SourceError),
}

impl From<NetError> for Stop {
    fn from(e: NetError) -> Stop {
        Stop::Net(e)
    }
}

impl Session {
    /// The stored top-level manifest of each id, `None` where the server has none, pipelined
    /// on one stream. Not checked here (the caller decodes and checks each against its id).
    pub fn manifest_tops(&self, ids: &[FileId]) -> Result<Vec<Option<Vec<u8>>>, NetError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Asked as a whole: which exist first (one bitmap), then those, pipelined, so a file
        // the server lacks does not end the stream with NotFound for the others.
        let present = self.has_manifests(ids)?;
        let wanted: Vec<FileId> = ids
            .iter()
            .zip(&present)
            .filter(|(_, &p)| p)
            .map(|(id, _)| *id)
            .collect();
        let requests = wanted
            .iter()
            .map(|id| Message::GetManifest { id: *id })
            .collect();
        let mut answers = self.pipeline(requests, "manifest")?.into_iter();
        let mut out = Vec::with_capacity(ids.len());
        for p in present {
            if !p {
                out.push(None);
                continue;
            }
            match answers.next() {
                Some(Message::ManifestTop { top }) => out.push(Some(top)),
                Some(other) => return Err(self.unexpected(&other, "manifest")),
                None => return Err(self.unexpected(&Message::Done, "manifest")),
            }
        }
        Ok(out)
    }

    /// Which of `ids` the server holds a manifest for (has-files: complete and verified).
    fn has_manifests(&self, ids: &[FileId]) -> Result<Vec<bool>, NetError> {
        self.has_files(ids)
    }

    /// Downloads `wanted` and hands each batch, every chunk checked against its id and
    /// length, to `on_batch` on this thread. One stream, two batches deep: batch k+1 is
    /// asked for once batch k has arrived, while `on_batch` makes batch k durable; batch k+2
    /// waits until it has. So the network and the disk overlap, and at most two batches are
    /// ever received but not durable (an interrupted fetch re-fetches at most those).
    pub(crate) fn chunks(
        &self,
        wanted: &[ChunkRef],
        on_batch: &mut dyn FnMut(Batch) -> Result<(), SourceError>,
    ) -> Result<(), Stop> {
        if wanted.is_empty() {
            return Ok(());
        }
        let requests: Vec<Vec<ChunkRef>> = batches(wanted, MAX_IDS_PER_QUERY)
            .into_iter()
            .map(<[ChunkRef]>::to_vec)
            .collect();
        // Received batches; the receiver waits for room, so at most one batch waits here
        // while the caller stores the previous one.
        let (tx, mut rx) = mpsc::channel::<Result<Batch, NetError>>(1);
        let peer = self.peer();
        let receiving = async move {
            let (mut w, mut r) = self.open().await?;
            for batch in requests {
                let ids = batch.iter().map(|c| c.id).collect();
                w.send(&Message::GetChunks { ids }).await?;
                let mut got = Vec::with_capacity(batch.len());
                for c in batch {
                    let data = r.expect_chunk(c.id, u64::from(c.len)).await?;
                    got.push((c.id, data));
                }
                match r.expect("batch-end").await? {
                    Message::BatchEnd => {}
                    other => return Err(r.unexpected(&other, "batch-end")),
                }
                // The caller stopped (its error is the one to report).
                if tx.send(Ok(verify(&peer, got)?)).await.is_err() {
                    return Ok(());
                }
            }
            w.finish().await;
            Ok::<(), NetError>(())
        };
        std::thread::scope(|scope| {
            let net = scope.spawn(|| self.block_on(receiving));
            let mut stopped = None;
            while let Some(next) = rx.blocking_recv() {
                match next {
                    Ok(batch) => {
                        if let Err(e) = on_batch(batch) {
                            stopped = Some(Stop::Caller(e));
                            break;
                        }
                    }
                    Err(e) => {
                        stopped = Some(Stop::Net(e));
                        break;
                    }
                }
            }
            drop(rx);
            let net = net.join().unwrap_or_else(|_| {
                Err(NetError::io(
                    "receiving chunks",
                    std::io::Error::other("the receiving thread panicked"),
                ))
            });
            match (stopped, net) {
                (Some(stop), _) => Err(stop),
                (None, Err(e)) => Err(Stop::Net(e)),
                (None, Ok(())) => Ok(()),
            }
        })
    }
}

/// Checks every chunk of a received batch against its id (on the receiving task, so the
/// caller's thread only stores).
fn verify(peer: &str, batch: Batch) -> Result<Batch, NetError> {
    for (id, data) in &batch {
        if ChunkId::of(data) != *id {
            return Err(NetError::CorruptChunk {
                peer: peer.to_owned(),
                id: *id,
            });
        }
    }
    Ok(batch)
}
