//! `check`: which locks of other users would a push changing these paths break? Asked by a
//! client's pre-push hook (its Git host is not this server) and by a Git host's pre-receive
//! hook, which names the pusher and so needs an admin token.

use dits_core::locks::{CheckRequest, LockReply};
use dits_core::wire::{ErrorCode, Rights};

use super::super::conn::Request;
use super::super::refusal::Fail;
use super::{blocking, checked_paths, notices, send_reply};
use crate::frames::FrameWriter;

pub async fn handle(req: &Request, call: CheckRequest, w: &mut FrameWriter) -> Result<(), Fail> {
    let CheckRequest {
        branch,
        paths,
        pusher,
    } = call;
    let g = req.granted(Rights::Read)?;
    let pusher = match pusher {
        Some(p) if p != g.user && g.rights < Rights::Admin => {
            return Err(Fail::Refuse(
                ErrorCode::Forbidden,
                format!(
                "checking a push for another user ({p}) needs an admin token; this token is {}'s",
                g.user
            ),
            ))
        }
        Some(p) => p,
        None => g.user.clone(),
    };
    let paths = checked_paths(paths.iter().map(String::as_str))?;
    let ctx = std::sync::Arc::clone(&req.ctx);
    let repo = g.repo.clone();
    let locks = blocking("checking a push against locks", move || {
        ctx.locks.conflicts(&repo, &pusher, &branch, &paths)
    })
    .await?;
    let notices = notices(req, &g).await?;
    send_reply(
        w,
        LockReply::Ok {
            locks,
            next: None,
            notices,
        },
    )
    .await
}
