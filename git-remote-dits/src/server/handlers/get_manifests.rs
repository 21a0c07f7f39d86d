//! `get-manifest`: the stored top-level manifests, byte for byte.

use dits_core::store::StoreError;
use dits_core::wire::{ErrorCode, Message};

use super::super::conn::Request;
use super::super::refusal::Fail;
use super::readable_store;
use crate::frames::{FrameReader, FrameWriter};

pub async fn handle(
    req: &Request,
    first: Message,
    w: &mut FrameWriter,
    r: &mut FrameReader,
) -> Result<(), Fail> {
    let (_, store) = readable_store(req)?;
    let mut next = Some(first);
    while let Some(msg) = next {
        let Message::GetManifest { id } = msg else {
            return Err(Fail::wrong_frame("get-manifest", &msg));
        };
        match store.read_manifest_top(&id) {
            Ok(top) => w.send(&Message::ManifestTop { top }).await?,
            Err(StoreError::ManifestMissing { .. }) => {
                return Err(Fail::Refuse(
                    ErrorCode::NotFound,
                    format!("file {id} is not on the server"),
                ))
            }
            Err(e) => return Err(e.into()),
        }
        next = r.next().await?;
    }
    Ok(())
}
