//! `lock`: takes locks on paths for the token's user, all or none. A path someone else holds
//! refuses the call naming the holder; so does a path whose version the client has is older
//! than the branch on the server (the client would edit an old version).

use dits_core::locks::{LockAsk, LockReply, LockRequest, Refusal};
use dits_core::wire::Rights;

use super::super::conn::Request;
use super::super::refusal::Fail;
use super::{blocking, checked_paths, outcome_reply, send_reply};
use crate::frames::FrameWriter;
use crate::locks;

pub async fn handle(req: &Request, call: LockRequest, w: &mut FrameWriter) -> Result<(), Fail> {
    let LockRequest {
        branch,
        paths,
        reason,
        base,
        release_on_push,
    } = call;
    let g = req.granted_for(Rights::Write, "taking locks")?;
    let checked = checked_paths(paths.iter().map(|a| a.path.as_str()))?;
    let asks: Vec<LockAsk> = paths
        .into_iter()
        .zip(&checked)
        .map(|(a, path)| LockAsk {
            path: path.clone(),
            blob: a.blob,
        })
        .collect();
    // Behind the branch? Only the server's own repository can say (a team whose Git host
    // is elsewhere has the client compare with its remote-tracking branch).
    if req.ctx.repos.exists(&g.repo) {
        let dir = req.ctx.repos.dir(&g.repo)?;
        let tip_ref = branch.clone();
        let behind = blocking("checking the branch", move || {
            match locks::resolve_commit(Some(&dir), &tip_ref) {
                Some(tip) => locks::behind(Some(&dir), &tip, base.as_deref(), &asks),
                None => Ok(Vec::new()),
            }
        })
        .await?;
        if !behind.is_empty() {
            let message = format!(
                "your copy of {} is older than {} on the server; hint: git pull, then lock again",
                behind.join(", "),
                locks::short_branch(&branch)
            );
            return send_reply(
                w,
                LockReply::Refused {
                    why: Refusal::Behind,
                    message,
                    locks: Vec::new(),
                    paths: behind,
                },
            )
            .await;
        }
    }
    let ctx = std::sync::Arc::clone(&req.ctx);
    let (repo, user) = (g.repo.clone(), g.user.clone());
    let outcome = blocking("taking locks", move || {
        ctx.locks
            .lock(&repo, &user, &branch, &reason, release_on_push, &checked)
    })
    .await?;
    send_reply(w, outcome_reply(req, &g, outcome).await?).await
}
