//! `put-manifest`: stores a manifest once every chunk it needs is here and the content it
//! rebuilds hashes to its file id (`dits_core::transfer::accept_manifest_top`).

use std::sync::Arc;

use dits_core::transfer::accept_manifest_top;
use dits_core::wire::Message;

use super::super::conn::Request;
use super::super::refusal::Fail;
use super::writable_store;
use crate::frames::{FrameReader, FrameWriter};

pub async fn handle(
    req: &Request,
    first: Message,
    w: &mut FrameWriter,
    r: &mut FrameReader,
) -> Result<(), Fail> {
    let (g, store) = writable_store(req)?;
    let mut next = Some(first);
    while let Some(msg) = next {
        let Message::PutManifest { top } = msg else {
            return Err(Fail::wrong_frame("a manifest", &msg));
        };
        let store = Arc::clone(&store);
        let m = tokio::task::spawn_blocking(move || accept_manifest_top(&store, &top))
            .await
            .map_err(|e| Fail::joined("manifest check", e))??;
        req.ctx
            .log
            .record(req.conn_id, &g.repo, "manifest", 0, m.size);
        w.send(&Message::Done).await?;
        next = r.next().await?;
    }
    Ok(())
}
