//! `hello`: authenticates the connection for one repository with a token.

use dits_core::wire::{ErrorCode, Message, PROTOCOL_VERSION};

use super::super::auth;
use super::super::conn::{Granted, Request, MAX_HELLOS};
use super::super::refusal::Fail;
use crate::frames::FrameWriter;
use crate::url::check_repo_path;

pub async fn handle(req: &Request, hello: Message, w: &mut FrameWriter) -> Result<(), Fail> {
    let Message::Hello {
        version,
        repo,
        token,
        agent,
        ..
    } = hello
    else {
        return Err(Fail::wrong_frame("hello", &hello));
    };
    let attempts = {
        let mut s = req.state();
        s.hellos += 1;
        s.hellos
    };
    if attempts > MAX_HELLOS {
        req.close(b"too many hello attempts");
        return Err(Fail::Refuse(
            ErrorCode::Forbidden,
            "too many attempts".into(),
        ));
    }
    if version != PROTOCOL_VERSION {
        return Err(Fail::Refuse(
            ErrorCode::UnsupportedVersion,
            format!("this server speaks protocol version {PROTOCOL_VERSION}, the client {version}; hint: use matching git-dits versions"),
        ));
    }
    check_repo_path(&repo).map_err(|e| Fail::Refuse(ErrorCode::InvalidRepo, e.to_string()))?;
    let Some(token) = token else {
        return Err(Fail::Refuse(
            ErrorCode::AuthRequired,
            format!("a token is required for {repo}"),
        ));
    };
    let entries = auth::load(&req.ctx.root)?;
    let Some(entry) = auth::grant_for(&entries, &token, &repo) else {
        return Err(if auth::known(&entries, &token) {
            Fail::Refuse(
                ErrorCode::Forbidden,
                format!("this token gives no access to {repo}"),
            )
        } else {
            Fail::Refuse(ErrorCode::AuthRequired, "unknown or revoked token".into())
        });
    };
    let rights = entry.rights;
    let granted = Granted {
        repo: repo.clone(),
        rights,
        user: entry.user.clone(),
    };
    if !req.authenticate(granted.clone(), &auth::hash(&token)) {
        return Err(Fail::Refuse(
            ErrorCode::Busy,
            format!(
                "this token already has {} connections open to this server; hint: wait for other transfers to finish",
                req.ctx.limits.limits.per_token
            ),
        ));
    }
    tracing::info!(
        "{}: {agent} authenticated as {} for {repo} ({rights:?})",
        req.peer,
        granted.user
    );
    let mut capabilities = vec!["chunks".into(), "git".into(), "locks".into()];
    let ctx = std::sync::Arc::clone(&req.ctx);
    let (repo, user) = (granted.repo.clone(), granted.user.clone());
    if super::blocking("looking up notices", move || {
        ctx.locks.has_notices(&repo, &user)
    })
    .await?
    {
        capabilities.push(crate::client::NOTICES.into());
    }
    w.send(&Message::Welcome {
        version: PROTOCOL_VERSION,
        capabilities,
        rights,
    })
    .await?;
    Ok(())
}
