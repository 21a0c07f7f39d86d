//! `get-chunks`: chunks by id, each read and verified on the server, in the order asked, then
//! batch-end.

use std::sync::Arc;

use dits_core::store::ChunkSource;
use dits_core::wire::{ErrorCode, Message, MAX_IDS_PER_QUERY};

use super::super::conn::Request;
use super::super::refusal::{store_code, Fail};
use super::readable_store;
use crate::frames::{FrameReader, FrameWriter};

/// Chunks read from the store per blocking task.
const READ_AHEAD: usize = 128;

pub async fn handle(
    req: &Request,
    first: Message,
    w: &mut FrameWriter,
    r: &mut FrameReader,
) -> Result<(), Fail> {
    let (g, store) = readable_store(req)?;
    let mut next = Some(first);
    while let Some(msg) = next {
        let Message::GetChunks { ids } = msg else {
            return Err(Fail::wrong_frame("get-chunks", &msg));
        };
        if ids.len() > MAX_IDS_PER_QUERY {
            return Err(Fail::Refuse(
                ErrorCode::BadRequest,
                format!("at most {MAX_IDS_PER_QUERY} ids per request"),
            ));
        }
        let (mut n, mut bytes) = (0u64, 0u64);
        // Read (and verify) a few chunks at a time on a blocking thread, so what a client
        // asks for never sits in memory at once.
        for group in ids.chunks(READ_AHEAD) {
            let store = Arc::clone(&store);
            let group = group.to_vec();
            let read = tokio::task::spawn_blocking(move || {
                group
                    .into_iter()
                    .map(|id| store.read_chunk(&id).map(|d| (id, d)))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| Fail::joined("chunk reader", e))?;
            for item in read {
                let (id, data) = item.map_err(|e| {
                    let code = store_code(&e);
                    let message = match &e {
                        dits_core::store::StoreError::ChunkMissing { id } => {
                            format!("chunk {id} is not on the server")
                        }
                        e if e.is_corruption() => format!(
                            "{e} (on the server; its admin should run `git dits fsck` there)"
                        ),
                        e => e.to_string(),
                    };
                    Fail::Refuse(code, message)
                })?;
                n += 1;
                bytes += data.len() as u64;
                w.send_chunk(id, data).await?;
            }
        }
        w.send(&Message::BatchEnd).await?;
        req.ctx.log.record(req.conn_id, &g.repo, "get", n, bytes);
        next = r.next().await?;
    }
    Ok(())
}
