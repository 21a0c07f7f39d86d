//! `list`: one page of a repository's locks in path order (under a prefix, of one user).

use dits_core::locks::{ListRequest, LockReply};
use dits_core::wire::Rights;

use super::super::conn::Request;
use super::super::refusal::Fail;
use super::{blocking, notices, send_reply};
use crate::frames::FrameWriter;

pub async fn handle(req: &Request, call: ListRequest, w: &mut FrameWriter) -> Result<(), Fail> {
    let ListRequest {
        prefix,
        owner,
        mine,
        after,
        limit,
    } = call;
    let g = req.granted(Rights::Read)?;
    let ctx = std::sync::Arc::clone(&req.ctx);
    let repo = g.repo.clone();
    let owner = if mine { Some(g.user.clone()) } else { owner };
    let (locks, next) = blocking("listing locks", move || {
        ctx.locks
            .list(&repo, &prefix, owner.as_deref(), after.as_deref(), limit)
    })
    .await?;
    let notices = notices(req, &g).await?;
    send_reply(
        w,
        LockReply::Ok {
            locks,
            next,
            notices,
        },
    )
    .await
}
