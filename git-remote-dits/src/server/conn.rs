//! One client connection: a hello on some stream authenticates it for one repository, then
//! every other stream carries one request (queries, uploads, downloads, a git tunnel), served
//! as a task of its own by the handler for its first frame.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dits_core::wire::{Message, Rights};

use super::handlers;
use super::limits::{Pending, TokenSlot};
use super::refusal::Fail;
use super::Context;
use crate::frames::{Deadline, FrameReader, FrameWriter};
use crate::transport::{Connection, RecvHalf, SendHalf};

/// Largest first frame read from a connection that has not authenticated (a hello is tiny).
pub const PRE_AUTH_FRAME: usize = 64 << 10;

/// Hellos a connection may send before it is closed (slows token guessing).
pub const MAX_HELLOS: u32 = 4;

#[derive(Clone)]
pub struct Granted {
    pub repo: String,
    pub rights: Rights,
    /// The token's user: who owns the locks this connection takes.
    pub user: String,
}

/// What the streams of one connection share.
pub struct ConnState {
    pub granted: Option<Granted>,
    pub hellos: u32,
    /// The unauthenticated slot this connection holds until it authenticates.
    pending: Option<Pending>,
    /// Its token's connection slot, once authenticated.
    slot: Option<TokenSlot>,
}

/// What a handler knows about the request it serves.
pub struct Request {
    pub ctx: Arc<Context>,
    pub state: Arc<Mutex<ConnState>>,
    pub conn_id: u64,
    pub peer: String,
    pub conn: Option<Connection>,
}

impl Request {
    pub fn state(&self) -> std::sync::MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection's grant, if it has at least `needed` rights.
    pub fn granted(&self, needed: Rights) -> Result<Granted, Fail> {
        use dits_core::wire::ErrorCode;
        match &self.state().granted {
            None => Err(Fail::Refuse(
                ErrorCode::AuthRequired,
                "authenticate with a hello first".into(),
            )),
            Some(g) if g.rights < needed => Err(Fail::Refuse(
                ErrorCode::Forbidden,
                format!(
                    "the token is read-only for {}; pushing needs a token with write rights",
                    g.repo
                ),
            )),
            Some(g) => Ok(g.clone()),
        }
    }

    /// Like [`Request::granted`], naming what needs the rights in the refusal.
    pub fn granted_for(&self, needed: Rights, doing: &str) -> Result<Granted, Fail> {
        use dits_core::wire::ErrorCode;
        match self.granted(needed) {
            Err(Fail::Refuse(ErrorCode::Forbidden, _)) => {
                let g = self.state().granted.clone();
                let (repo, user) = g.map(|g| (g.repo, g.user)).unwrap_or_default();
                Err(Fail::Refuse(
                    ErrorCode::Forbidden,
                    format!(
                        "{doing} needs a token with write rights; {user}'s token is read-only for {repo}; hint: ask the server's admin for one (`git dits serve token add --write`)"
                    ),
                ))
            }
            other => other,
        }
    }

    /// Records a successful hello: the grant, and the token's connection slot (the
    /// unauthenticated slot is given back). `false` if the token has no slot left.
    pub fn authenticate(&self, granted: Granted, token_hash: &str) -> bool {
        let slot = match self.state().slot.take() {
            Some(s) => Some(s),
            None => self.ctx.limits.authenticated(token_hash),
        };
        let Some(slot) = slot else {
            return false;
        };
        let mut state = self.state();
        state.granted = Some(granted);
        state.slot = Some(slot);
        state.pending = None;
        true
    }

    pub fn close(&self, why: &[u8]) {
        if let Some(c) = &self.conn {
            c.close(1, why);
        }
    }
}

impl ConnState {
    /// A new connection's state, holding its unauthenticated slot (if it took one).
    pub fn new(pending: Option<Pending>) -> ConnState {
        ConnState {
            granted: None,
            hellos: 0,
            pending,
            slot: None,
        }
    }
}

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Serves one connection until it closes.
pub async fn serve_connection(ctx: Arc<Context>, conn: Connection) {
    let id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let peer = format!("conn {id} ({})", conn.kind());
    let Some(pending) = ctx.limits.admit() else {
        tracing::warn!("{peer}: refused: too many connections have not authenticated yet");
        conn.close(2, b"too many unauthenticated connections");
        return;
    };
    tracing::debug!("{peer}: connected");
    let state = Arc::new(Mutex::new(ConnState::new(Some(pending))));
    // Whoever has not authenticated within the limit is disconnected.
    let watchdog = {
        let (state, conn, peer) = (Arc::clone(&state), conn.clone(), peer.clone());
        let within = ctx.limits.limits.hello_within;
        tokio::spawn(async move {
            tokio::time::sleep(within).await;
            let authenticated = state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .granted
                .is_some();
            if !authenticated {
                tracing::info!("{peer}: closed: no hello within {} s", within.as_secs());
                conn.close(3, b"authenticate first");
            }
        })
    };
    let budget = ctx.limits.budget();
    while let Some((send, recv)) = conn.accept_bi().await {
        let req = Request {
            ctx: Arc::clone(&ctx),
            state: Arc::clone(&state),
            conn_id: id,
            peer: peer.clone(),
            conn: Some(conn.clone()),
        };
        let budget = Arc::clone(&budget);
        tokio::spawn(async move { serve_stream(req, send, recv, Some(budget)).await });
    }
    watchdog.abort();
    tracing::debug!("{peer}: closed");
}

/// Serves one request stream: reads its first frame, runs its handler, and answers a failure
/// with an error frame.
pub async fn serve_stream(
    req: Request,
    send: SendHalf,
    recv: RecvHalf,
    budget: Option<Arc<crate::frames::Budget>>,
) {
    let deadline = Deadline::new(req.ctx.limits.limits.frame_allowance);
    let mut w = FrameWriter::new(send, &req.peer);
    let mut r = FrameReader::new(recv, &req.peer, deadline);
    r.budget = budget;
    if req.state().granted.is_none() {
        // Before a hello succeeds, only a small frame is read: an unauthenticated peer
        // cannot make the server allocate megabytes per stream.
        r.limit = PRE_AUTH_FRAME;
    }
    let first = match r.next().await {
        Ok(Some(m)) => m,
        Ok(None) => return,
        Err(e) => {
            if let Some(answer) = Fail::Net(e).answer(&req.peer, "first frame") {
                let _ = w.send(&answer).await;
            }
            w.finish().await;
            return;
        }
    };
    r.limit = dits_core::wire::MAX_FRAME as usize;
    let kind = first.name();
    if let Message::Git { service, protocol } = first {
        return handlers::git::handle(&req, w, r, &service, &protocol).await;
    }
    if let Err(fail) = handlers::dispatch(&req, first, &mut w, &mut r).await {
        if let Some(answer) = fail.answer(&req.peer, kind) {
            let _ = w.send(&answer).await;
        }
    }
    w.finish().await;
}
