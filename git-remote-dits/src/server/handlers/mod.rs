//! One file per request. Each handler takes the request's first frame, the stream, and what
//! the connection knows ([`Request`]), and returns `Ok` once it has answered, or a [`Fail`]
//! that `refusal.rs` turns into the error frame. Handlers never touch sockets: they run on
//! any stream, so the tests below drive them over in-memory pipes.

pub mod check_push;
pub mod get_chunks;
pub mod get_manifests;
pub mod git;
pub mod hello;
pub mod list_locks;
pub mod lock;
pub mod put_chunks;
pub mod put_manifests;
pub mod queries;
pub mod unlock;

use std::sync::Arc;

use dits_core::locks::{lock_path, LockCall, LockReply};
use dits_core::store::DiskStore;
use dits_core::wire::{ErrorCode, Message, Rights};

use super::conn::{Granted, Request};
use super::refusal::Fail;
use crate::error::NetError;
use crate::frames::{FrameReader, FrameWriter};
use crate::locks::Outcome;

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
        Message::Lock(LockCall::Lock(call)) => lock::handle(req, call, w).await,
        Message::Lock(LockCall::Unlock(call)) => unlock::handle(req, call, w).await,
        Message::Lock(LockCall::List(call)) => list_locks::handle(req, call, w).await,
        Message::Lock(LockCall::Check(call)) => check_push::handle(req, call, w).await,
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

/// Runs a database or git call on a blocking thread.
async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, NetError> + Send + 'static,
) -> Result<T, Fail> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Fail::joined(what, e))?
        .map_err(Fail::Net)
}

/// The request's paths in the form locks store, or a refusal naming the first bad one.
fn checked_paths<'a>(paths: impl Iterator<Item = &'a str>) -> Result<Vec<String>, Fail> {
    paths
        .map(|p| {
            lock_path(p).map_err(|e| {
                Fail::Refuse(
                    ErrorCode::BadRequest,
                    format!("{e}; hint: name files by their path in the repository"),
                )
            })
        })
        .collect()
}

/// The notices waiting for the connection's user.
async fn notices(req: &Request, g: &Granted) -> Result<Vec<String>, Fail> {
    let ctx = Arc::clone(&req.ctx);
    let (repo, user) = (g.repo.clone(), g.user.clone());
    blocking("reading notices", move || {
        ctx.locks.take_notices(&repo, &user)
    })
    .await
}

/// The answer for a lock or unlock outcome, with the user's notices.
async fn outcome_reply(req: &Request, g: &Granted, outcome: Outcome) -> Result<LockReply, Fail> {
    Ok(match outcome {
        Outcome::Done(locks) => LockReply::Ok {
            locks,
            next: None,
            notices: notices(req, g).await?,
        },
        Outcome::Refused { why, locks, paths } => {
            let mut message = match why {
                dits_core::locks::Refusal::NotLocked => {
                    format!("not locked: {}", paths.join(", "))
                }
                _ => String::new(),
            };
            for l in &locks {
                if !message.is_empty() {
                    message.push_str("; ");
                }
                message.push_str(&crate::locks::describe(l));
            }
            LockReply::Refused {
                why,
                message,
                locks,
                paths,
            }
        }
    })
}

async fn send_reply(w: &mut FrameWriter, reply: LockReply) -> Result<(), Fail> {
    w.send(&Message::LockReply(reply)).await?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
