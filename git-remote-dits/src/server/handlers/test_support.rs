//! In-process harness for the handlers: a real server context on a temp dir, a connection
//! state, and one request stream over an in-memory pipe.

use std::sync::{Arc, Mutex};

use dits_core::wire::{ErrorCode, Message, Rights};

use super::super::conn::{serve_stream, ConnState, Request};
use super::super::{auth, Context, Limits};
use crate::frames::{Deadline, FrameReader, FrameWriter};
use crate::transport::pipe;

pub struct Server {
    /// Kept for the lifetime of the server: its root.
    _dir: tempfile::TempDir,
    pub ctx: Arc<Context>,
    pub write_token: String,
    pub read_token: String,
}

impl Server {
    pub fn new() -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let ctx = Context::open(dir.path(), "git-dits".into(), Limits::default())
            .expect("server context");
        let write_token =
            auth::add(dir.path(), "team/film", Rights::Write, "writer", "").expect("token");
        let read_token =
            auth::add(dir.path(), "team/film", Rights::Read, "reader", "").expect("token");
        Server {
            _dir: dir,
            ctx,
            write_token,
            read_token,
        }
    }

    /// A connection's state, authenticated with `token` unless `None`.
    pub async fn connection(&self, token: Option<&str>) -> Arc<Mutex<ConnState>> {
        let state = Arc::new(Mutex::new(ConnState::new(None)));
        if let Some(token) = token {
            let answer = self.exchange(&state, &[hello(Some(token))]).await;
            assert!(
                matches!(answer.first(), Some(Message::Welcome { .. })),
                "{answer:?}"
            );
        }
        state
    }

    /// Sends `frames` on one new stream of the connection and returns every answer.
    pub async fn exchange(
        &self,
        state: &Arc<Mutex<ConnState>>,
        frames: &[Message],
    ) -> Vec<Message> {
        let ((client_w, client_r), (server_w, server_r)) = pipe();
        let req = Request {
            ctx: Arc::clone(&self.ctx),
            state: Arc::clone(state),
            conn_id: 1,
            peer: "test".into(),
            conn: None,
        };
        let served = tokio::spawn(serve_stream(req, server_w, server_r, None));
        let mut w = FrameWriter::new(client_w, "server");
        // A handler may refuse a request before it has read all of it and close its end: the
        // rest cannot be sent then (a broken pipe), and the answer already says why.
        for f in frames {
            if w.send(f).await.is_err() {
                break;
            }
        }
        w.finish().await;
        let mut r = FrameReader::new(
            client_r,
            "server",
            Deadline::new(std::time::Duration::from_secs(20)),
        );
        let mut out = Vec::new();
        while let Some(m) = r.next().await.expect("answer") {
            out.push(m);
        }
        served.await.expect("handler task");
        out
    }
}

pub fn hello(token: Option<&str>) -> Message {
    Message::Hello {
        version: dits_core::wire::PROTOCOL_VERSION,
        capabilities: vec![],
        repo: "team/film".into(),
        token: token.map(str::to_owned),
        agent: "test".into(),
    }
}

/// The code of the error frame among `answers`.
pub fn refused(answers: &[Message]) -> Option<ErrorCode> {
    answers.iter().find_map(|m| match m {
        Message::Error { code, .. } => Some(*code),
        _ => None,
    })
}
