//! `unlock`: releases the user's locks; `force` with an admin token breaks other users'
//! locks, which the audit log records and their owner is told of at their next request.

use dits_core::locks::UnlockRequest;
use dits_core::wire::Rights;

use super::super::conn::Request;
use super::super::refusal::Fail;
use super::{blocking, checked_paths, outcome_reply, send_reply};
use crate::frames::FrameWriter;

pub async fn handle(req: &Request, call: UnlockRequest, w: &mut FrameWriter) -> Result<(), Fail> {
    let UnlockRequest {
        paths,
        force,
        reason,
    } = call;
    let g = req.granted_for(Rights::Write, "releasing locks")?;
    let paths = checked_paths(paths.iter().map(String::as_str))?;
    let ctx = std::sync::Arc::clone(&req.ctx);
    let (repo, user, admin) = (g.repo.clone(), g.user.clone(), g.rights >= Rights::Admin);
    let outcome = blocking("releasing locks", move || {
        let force = force.then_some(reason.as_str());
        ctx.locks.unlock(&repo, &user, admin, force, &paths)
    })
    .await?;
    send_reply(w, outcome_reply(req, &g, outcome).await?).await
}
