//! `git`: turns the stream into a tunnel to a real `git upload-pack` or `git receive-pack` on
//! the repository (see `server/git.rs`).

use dits_core::wire::{ErrorCode, Message, Rights};

use super::super::conn::Request;
use super::super::refusal::Fail;
use crate::frames::{FrameReader, FrameWriter};

pub async fn handle(
    req: &Request,
    mut w: FrameWriter,
    r: FrameReader,
    service: &str,
    protocol: &str,
) {
    let prepared = (|| {
        let (needed, name) = match service {
            "git-upload-pack" => (Rights::Read, "upload-pack"),
            "git-receive-pack" => (Rights::Write, "receive-pack"),
            other => {
                return Err(Fail::Refuse(
                    ErrorCode::BadRequest,
                    format!("unknown git service {other:?}"),
                ))
            }
        };
        let g = req.granted(needed)?;
        let dir = if needed == Rights::Write {
            req.ctx.repos.create(&g.repo)?
        } else if req.ctx.repos.exists(&g.repo) {
            req.ctx.repos.dir(&g.repo)?
        } else {
            return Err(Fail::Refuse(
                ErrorCode::NotFound,
                format!(
                    "repository {} does not exist on this server; hint: push to it first",
                    g.repo
                ),
            ));
        };
        Ok((name, dir, g))
    })();
    let (name, dir, g) = match prepared {
        Ok(p) => p,
        Err(fail) => {
            if let Some(answer) = fail.answer(&req.peer, "git") {
                let _ = w.send(&answer).await;
            }
            w.finish().await;
            return;
        }
    };
    if w.send(&Message::GitReady).await.is_err() {
        return;
    }
    let label = format!("{} {}", req.peer, g.repo);
    let hooks = req.ctx.repos.hooks_dir();
    let pusher = super::super::git::Pusher {
        user: &g.user,
        repo: &g.repo,
        root: &req.ctx.root,
    };
    if let Err(e) =
        super::super::git::tunnel(name, &dir, &hooks, pusher, protocol, w.send, r.recv, label).await
    {
        tracing::error!("{}: {e}", req.peer);
    }
}
