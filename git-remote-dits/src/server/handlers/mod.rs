//! One file per request. Each handler takes the request's first frame, the stream, and what
//! the connection knows ([`Request`]), and returns `Ok` once it has answered, or a [`Fail`]
//! that `refusal.rs` turns into the error frame. Handlers never touch sockets: they run on
//! any stream, so the tests below drive them over in-memory pipes.

pub mod get_chunks;
pub mod get_manifests;
pub mod git;
pub mod hello;
pub mod put_chunks;
pub mod put_manifests;
pub mod queries;

use std::sync::Arc;

use dits_core::store::DiskStore;
use dits_core::wire::{ErrorCode, Message, Rights};

use super::conn::{Granted, Request};
use super::refusal::Fail;
use crate::frames::{FrameReader, FrameWriter};

/// Runs the handler for `first` (anything but a git tunnel, which takes the stream over).
pub async fn dispatch(
    req: &Request,
    first: Message,
    w: &mut FrameWriter,
    r: &mut FrameReader,
) -> Result<(), Fail> {
    match first {
        m @ Message::Hello { .. } => hello::handle(req, m, w).await,
        m @ (Message::HasChunks { .. } | Message::HasFiles { .. }) => {
            queries::handle(req, m, w, r).await
        }
        Message::PutChunks => put_chunks::handle(req, w, r).await,
        m @ Message::PutManifest { .. } => put_manifests::handle(req, m, w, r).await,
        m @ Message::GetChunks { .. } => get_chunks::handle(req, m, w, r).await,
        m @ Message::GetManifest { .. } => get_manifests::handle(req, m, w, r).await,
        other => Err(Fail::Refuse(
            ErrorCode::BadRequest,
            format!("a request cannot start with a {} frame", other.name()),
        )),
    }
}

/// The granted repository's store, which must exist (reads), with the grant.
fn readable_store(req: &Request) -> Result<(Granted, Arc<DiskStore>), Fail> {
    let g = req.granted(Rights::Read)?;
    let store = req.ctx.repos.store(&g.repo, false)?.ok_or_else(|| {
        Fail::Refuse(
            ErrorCode::NotFound,
            format!("repository {} does not exist on this server", g.repo),
        )
    })?;
    Ok((g, store))
}

/// The granted repository's store, created if need be (writes), with the grant.
fn writable_store(req: &Request) -> Result<(Granted, Arc<DiskStore>), Fail> {
    let g = req.granted(Rights::Write)?;
    let store = req
        .ctx
        .repos
        .store(&g.repo, true)?
        .ok_or_else(|| Fail::Refuse(ErrorCode::Internal, "repository not created".into()))?;
    Ok((g, store))
}

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
