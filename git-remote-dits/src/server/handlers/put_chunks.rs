//! `put-chunks`: batches of chunks, each checked against its id before it is written; each
//! batch is made durable before it is acknowledged. If the stream breaks, the complete
//! chunks received so far are kept: the client's next push skips them.

use dits_core::store::ChunkSink;
use dits_core::wire::{ErrorCode, Message};
use dits_core::ChunkId;
use tokio::sync::{mpsc, oneshot};

use super::super::conn::Request;
use super::super::refusal::Fail;
use super::writable_store;
use crate::frames::{FrameReader, FrameWriter};

/// Received chunks are handed to the writer thread a megabyte at a time: one wake-up of the
/// writer per chunk would cost more than the work.
const HAND_OVER: usize = 1 << 20;
/// Hand-overs queued for the writer; with `HAND_OVER` this bounds what one upload stream
/// holds in memory while the disk catches up.
const QUEUED: usize = 8;

enum Op {
    Chunks(Vec<(ChunkId, Vec<u8>)>),
    End(oneshot::Sender<Result<(u32, u64), Fail>>),
}

pub async fn handle(req: &Request, w: &mut FrameWriter, r: &mut FrameReader) -> Result<(), Fail> {
    let (g, store) = writable_store(req)?;
    let (tx, mut rx) = mpsc::channel::<Op>(QUEUED);
    let writer = tokio::task::spawn_blocking(move || -> Result<(), Fail> {
        let mut writer = store.writer()?;
        let (mut n, mut bytes) = (0u32, 0u64);
        let mut corrupt = None;
        while let Some(op) = rx.blocking_recv() {
            match op {
                Op::Chunks(chunks) => {
                    for (id, data) in chunks {
                        if corrupt.is_some() {
                            break;
                        }
                        if ChunkId::of(&data) != id {
                            corrupt = Some(id);
                            break;
                        }
                        writer.put_chunk(id, &data)?;
                        n += 1;
                        bytes += data.len() as u64;
                    }
                }
                Op::End(reply) => {
                    writer.commit()?;
                    let answer = match corrupt.take() {
                        Some(id) => Err(Fail::Refuse(
                            ErrorCode::CorruptChunk,
                            format!("chunk {id} does not match its id (damaged in the client's store or in transit); it was not stored"),
                        )),
                        None => Ok((n, bytes)),
                    };
                    (n, bytes) = (0, 0);
                    let _ = reply.send(answer);
                }
            }
        }
        // The stream ended or broke: keep every verified chunk.
        writer.commit()?;
        Ok(())
    });
    let received = async {
        let mut pending: Vec<(ChunkId, Vec<u8>)> = Vec::new();
        let mut pending_bytes = 0;
        loop {
            let next = match r.next().await {
                Ok(m) => m,
                Err(e) => {
                    // What arrived whole is kept, whatever broke the stream.
                    let _ = tx.send(Op::Chunks(pending)).await;
                    return Err(e.into());
                }
            };
            match next {
                None => {
                    let _ = tx.send(Op::Chunks(pending)).await;
                    return Ok(());
                }
                Some(Message::Chunk { id, data }) => {
                    pending_bytes += data.len();
                    pending.push((id, data));
                    if pending_bytes >= HAND_OVER {
                        pending_bytes = 0;
                        if tx
                            .send(Op::Chunks(std::mem::take(&mut pending)))
                            .await
                            .is_err()
                        {
                            return Ok(());
                        }
                    }
                }
                Some(Message::BatchEnd) => {
                    pending_bytes = 0;
                    if tx
                        .send(Op::Chunks(std::mem::take(&mut pending)))
                        .await
                        .is_err()
                    {
                        return Ok(());
                    }
                    let (reply, answer) = oneshot::channel();
                    if tx.send(Op::End(reply)).await.is_err() {
                        return Ok(());
                    }
                    let Ok(answer) = answer.await else {
                        return Ok(());
                    };
                    let (chunks, bytes) = answer?;
                    req.ctx
                        .log
                        .record(req.conn_id, &g.repo, "put", chunks.into(), bytes);
                    w.send(&Message::BatchAck { chunks, bytes }).await?;
                }
                Some(other) => {
                    let _ = tx.send(Op::Chunks(pending)).await;
                    return Err(Fail::wrong_frame("a chunk", &other));
                }
            }
        }
    }
    .await;
    drop(tx);
    let written = writer.await.map_err(|e| Fail::joined("chunk writer", e))?;
    // A store failure (a full disk) explains a stopped upload better than what it caused.
    written.and(received)
}
