//! `has-chunks` / `has-files`: which of these does the server hold? A file counts only once
//! its manifest was accepted, which means its content was rebuilt and checked against its id.

use dits_core::store::ChunkSource;
use dits_core::wire::{Message, Rights};

use super::super::conn::Request;
use super::super::refusal::Fail;
use crate::frames::{FrameReader, FrameWriter};

pub async fn handle(
    req: &Request,
    first: Message,
    w: &mut FrameWriter,
    r: &mut FrameReader,
) -> Result<(), Fail> {
    let g = req.granted(Rights::Read)?;
    let store = req.ctx.repos.store(&g.repo, false)?;
    let mut next = Some(first);
    while let Some(msg) = next {
        let answer = match (&msg, &store) {
            (Message::HasChunks { ids }, Some(s)) => {
                Message::bitmap(ids.iter().map(|id| s.has_chunk(id)))
            }
            (Message::HasFiles { ids }, Some(s)) => {
                Message::bitmap(ids.iter().map(|id| s.has_manifest(id)))
            }
            (Message::HasChunks { ids }, None) => Message::bitmap(ids.iter().map(|_| false)),
            (Message::HasFiles { ids }, None) => Message::bitmap(ids.iter().map(|_| false)),
            (other, _) => return Err(Fail::wrong_frame("a query", other)),
        };
        w.send(&answer).await?;
        next = r.next().await?;
    }
    Ok(())
}
