//! One client connection: a hello on some stream authenticates it for one repository, then
//! every other stream carries one request (queries, uploads, downloads, a git tunnel).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dits_core::store::{ChunkSink, ChunkSource, DiskStore};
use dits_core::transfer::{accept_manifest_top, AcceptError};
use dits_core::wire::{ErrorCode, Message, Rights, MAX_IDS_PER_QUERY, PROTOCOL_VERSION};
use dits_core::ChunkId;
use tokio::sync::{mpsc, oneshot};

use super::{auth, Context};
use crate::error::NetError;
use crate::frames::{FrameReader, FrameWriter};
use crate::url::check_repo_path;

/// Largest first frame read from a connection that has not authenticated (a hello is tiny).
const PRE_AUTH_FRAME: usize = 64 << 10;

/// Chunks read from the store per blocking task when answering get-chunks.
const READ_AHEAD: usize = 128;

/// Hellos a connection may send before it is closed (slows token guessing).
const MAX_HELLOS: u32 = 4;

#[derive(Clone)]
struct Granted {
    repo: String,
    rights: Rights,
}

#[derive(Default)]
struct ConnState {
    granted: Option<Granted>,
    hellos: u32,
}

/// Why a request failed: told to the client as an `Error` frame.
enum Fail {
    Refuse(ErrorCode, String),
    Net(NetError),
}

impl Fail {
    fn wrong_frame(expected: &str, got: &Message) -> Fail {
        Fail::Refuse(
            ErrorCode::BadRequest,
            format!("expected {expected}, got a {} frame", got.name()),
        )
    }

    /// A blocking task that did not finish (it panicked or the runtime is shutting down).
    fn joined(task: &str, e: tokio::task::JoinError) -> Fail {
        Fail::Net(NetError::io(task, std::io::Error::other(e)))
    }
}

impl From<NetError> for Fail {
    fn from(e: NetError) -> Fail {
        Fail::Net(e)
    }
}

impl From<dits_core::store::StoreError> for Fail {
    fn from(e: dits_core::store::StoreError) -> Fail {
        Fail::Net(NetError::Store(e))
    }
}

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

pub async fn serve(ctx: Arc<Context>, incoming: quinn::Incoming) {
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!("handshake failed: {e}");
            return;
        }
    };
    let id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let peer = format!("conn {id} ({})", conn.remote_address());
    tracing::debug!("{peer}: connected");
    let state = Arc::new(Mutex::new(ConnState::default()));
    loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                let stream = Stream {
                    ctx: Arc::clone(&ctx),
                    state: Arc::clone(&state),
                    conn_id: id,
                    peer: peer.clone(),
                    conn: conn.clone(),
                };
                tokio::spawn(stream.run(send, recv));
            }
            Err(e) => {
                tracing::debug!("{peer}: closed: {e}");
                break;
            }
        }
    }
}

struct Stream {
    ctx: Arc<Context>,
    state: Arc<Mutex<ConnState>>,
    conn_id: u64,
    peer: String,
    conn: quinn::Connection,
}

impl Stream {
    async fn run(self, send: quinn::SendStream, recv: quinn::RecvStream) {
        let mut w = FrameWriter::new(send, &self.peer);
        let mut r = FrameReader::new(recv, &self.peer);
        let granted = self
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .granted
            .is_some();
        if !granted {
            // Before a hello succeeds, only a small frame is read: an unauthenticated peer
            // cannot make the server allocate megabytes per stream.
            r.limit = PRE_AUTH_FRAME;
        }
        let first = match r.next().await {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(e) => {
                tracing::info!("{e}");
                let _ = w
                    .send(&Message::Error {
                        code: ErrorCode::BadRequest,
                        message: e.to_string(),
                    })
                    .await;
                w.finish();
                return;
            }
        };
        r.limit = dits_core::wire::MAX_FRAME as usize;
        let kind = first.name();
        let outcome = match first {
            Message::Git { service, protocol } => {
                return self.git(w, r, &service, &protocol).await;
            }
            first => self.request(first, &mut w, &mut r).await,
        };
        match outcome {
            Ok(()) => {}
            Err(Fail::Refuse(code, message)) => {
                tracing::info!("{}: {kind} refused ({code:?}): {message}", self.peer);
                let _ = w.send(&Message::Error { code, message }).await;
            }
            Err(Fail::Net(e @ NetError::Lost { .. })) => tracing::debug!("{kind}: {e}"),
            Err(Fail::Net(e @ (NetError::Wire { .. } | NetError::Unexpected { .. }))) => {
                tracing::info!("{}: {kind}: {e}", self.peer);
                let _ = w
                    .send(&Message::Error {
                        code: ErrorCode::BadRequest,
                        message: e.to_string(),
                    })
                    .await;
            }
            Err(Fail::Net(e)) => {
                tracing::error!("{}: {kind}: {e}", self.peer);
                let _ = w
                    .send(&Message::Error {
                        code: ErrorCode::Internal,
                        message: e.to_string(),
                    })
                    .await;
            }
        }
        w.finish();
    }

    async fn request(
        &self,
        first: Message,
        w: &mut FrameWriter,
        r: &mut FrameReader,
    ) -> Result<(), Fail> {
        match first {
            Message::Hello {
                version,
                repo,
                token,
                agent,
                ..
            } => self.hello(version, repo, token, &agent, w).await,
            m @ (Message::HasChunks { .. } | Message::HasFiles { .. }) => {
                self.queries(m, w, r).await
            }
            Message::PutChunks => self.put_chunks(w, r).await,
            m @ Message::PutManifest { .. } => self.put_manifests(m, w, r).await,
            m @ Message::GetChunks { .. } => self.get_chunks(m, w, r).await,
            m @ Message::GetManifest { .. } => self.get_manifests(m, w, r).await,
            other => Err(Fail::Refuse(
                ErrorCode::BadRequest,
                format!("a request cannot start with a {} frame", other.name()),
            )),
        }
    }

    fn granted(&self, needed: Rights) -> Result<Granted, Fail> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match &state.granted {
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

    async fn hello(
        &self,
        version: u16,
        repo: String,
        token: Option<String>,
        agent: &str,
        w: &mut FrameWriter,
    ) -> Result<(), Fail> {
        let attempts = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            s.hellos += 1;
            s.hellos
        };
        if attempts > MAX_HELLOS {
            self.conn.close(1u32.into(), b"too many hello attempts");
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
        let entries = auth::load(&self.ctx.root)?;
        let Some(rights) = auth::rights_for(&entries, &token, &repo) else {
            return Err(if auth::known(&entries, &token) {
                Fail::Refuse(
                    ErrorCode::Forbidden,
                    format!("this token gives no access to {repo}"),
                )
            } else {
                Fail::Refuse(ErrorCode::AuthRequired, "unknown or revoked token".into())
            });
        };
        tracing::info!(
            "{}: {agent} authenticated for {repo} ({rights:?})",
            self.peer
        );
        self.state.lock().unwrap_or_else(|p| p.into_inner()).granted =
            Some(Granted { repo, rights });
        w.send(&Message::Welcome {
            version: PROTOCOL_VERSION,
            capabilities: vec!["chunks".into(), "git".into()],
            rights,
        })
        .await?;
        Ok(())
    }

    fn store(&self, g: &Granted, create: bool) -> Result<Option<Arc<DiskStore>>, Fail> {
        Ok(self.ctx.repos.store(&g.repo, create)?)
    }

    async fn queries(
        &self,
        first: Message,
        w: &mut FrameWriter,
        r: &mut FrameReader,
    ) -> Result<(), Fail> {
        let g = self.granted(Rights::Read)?;
        let store = self.store(&g, false)?;
        let mut next = Some(first);
        while let Some(msg) = next {
            let answer = match (&msg, &store) {
                (Message::HasChunks { ids }, Some(s)) => {
                    Message::bitmap(ids.iter().map(|id| s.has_chunk(id)))
                }
                (Message::HasFiles { ids }, Some(s)) => {
                    Message::bitmap(ids.iter().map(|id| s.has_manifest(id)))
                }
                (Message::HasChunks { ids }, None) => Message::bitmap(ids.iter().map(|_| false)),
                (Message::HasFiles { ids }, None) => Message::bitmap(ids.iter().map(|_| false)),
                (other, _) => return Err(Fail::wrong_frame("a query", other)),
            };
            w.send(&answer).await?;
            next = r.next().await?;
        }
        Ok(())
    }

    /// Receives batches of chunks. Each chunk is checked against its id before it is
    /// written; each batch is made durable before it is acknowledged. If the stream breaks,
    /// the complete chunks received so far are kept: the client's next push skips them.
    async fn put_chunks(&self, w: &mut FrameWriter, r: &mut FrameReader) -> Result<(), Fail> {
        let g = self.granted(Rights::Write)?;
        let store = self
            .store(&g, true)?
            .ok_or_else(|| Fail::Refuse(ErrorCode::Internal, "repository not created".into()))?;
        enum Op {
            /// Handed over a megabyte at a time: one wake-up of the writer per chunk
            /// would cost more than the work.
            Chunks(Vec<(ChunkId, Vec<u8>)>),
            End(oneshot::Sender<Result<(u32, u64), Fail>>),
        }
        let (tx, mut rx) = mpsc::channel::<Op>(64);
        let writer = tokio::task::spawn_blocking(move || -> Result<(), Fail> {
            let mut writer = store.writer()?;
            let (mut n, mut bytes) = (0u32, 0u64);
            let mut corrupt = None;
            while let Some(op) = rx.blocking_recv() {
                match op {
                    Op::Chunks(chunks) => {
                        for (id, data) in chunks {
                            if corrupt.is_some() {
                                break;
                            }
                            if ChunkId::of(&data) != id {
                                corrupt = Some(id);
                                break;
                            }
                            writer.put_chunk(id, &data)?;
                            n += 1;
                            bytes += data.len() as u64;
                        }
                    }
                    Op::End(reply) => {
                        writer.commit()?;
                        let answer = match corrupt.take() {
                            Some(id) => Err(Fail::Refuse(
                                ErrorCode::CorruptChunk,
                                format!("chunk {id} does not match its id (damaged in the client's store or in transit); it was not stored"),
                            )),
                            None => Ok((n, bytes)),
                        };
                        (n, bytes) = (0, 0);
                        let _ = reply.send(answer);
                    }
                }
            }
            // The stream ended or broke: keep every verified chunk.
            writer.commit()?;
            Ok(())
        });
        const HAND_OVER: usize = 1 << 20;
        let received = async {
            let mut pending: Vec<(ChunkId, Vec<u8>)> = Vec::new();
            let mut pending_bytes = 0;
            loop {
                let next = match r.next().await {
                    Ok(m) => m,
                    Err(e) => {
                        // What arrived whole is kept, whatever broke the stream.
                        let _ = tx.send(Op::Chunks(pending)).await;
                        return Err(e.into());
                    }
                };
                match next {
                    None => {
                        let _ = tx.send(Op::Chunks(pending)).await;
                        return Ok(());
                    }
                    Some(Message::Chunk { id, data }) => {
                        pending_bytes += data.len();
                        pending.push((id, data));
                        if pending_bytes >= HAND_OVER {
                            pending_bytes = 0;
                            if tx
                                .send(Op::Chunks(std::mem::take(&mut pending)))
                                .await
                                .is_err()
                            {
                                return Ok(());
                            }
                        }
                    }
                    Some(Message::BatchEnd) => {
                        pending_bytes = 0;
                        if tx
                            .send(Op::Chunks(std::mem::take(&mut pending)))
                            .await
                            .is_err()
                        {
                            return Ok(());
                        }
                        let (reply, answer) = oneshot::channel();
                        if tx.send(Op::End(reply)).await.is_err() {
                            return Ok(());
                        }
                        let Ok(answer) = answer.await else {
                            return Ok(());
                        };
                        let (chunks, bytes) = answer?;
                        self.ctx
                            .log
                            .record(self.conn_id, &g.repo, "put", chunks.into(), bytes);
                        w.send(&Message::BatchAck { chunks, bytes }).await?;
                    }
                    Some(other) => {
                        let _ = tx.send(Op::Chunks(pending)).await;
                        return Err(Fail::wrong_frame("a chunk", &other));
                    }
                }
            }
        }
        .await;
        drop(tx);
        let written = writer.await.map_err(|e| Fail::joined("chunk writer", e))?;
        received.and(written)
    }

    async fn put_manifests(
        &self,
        first: Message,
        w: &mut FrameWriter,
        r: &mut FrameReader,
    ) -> Result<(), Fail> {
        let g = self.granted(Rights::Write)?;
        let store = self
            .store(&g, true)?
            .ok_or_else(|| Fail::Refuse(ErrorCode::Internal, "repository not created".into()))?;
        let mut next = Some(first);
        while let Some(msg) = next {
            let Message::PutManifest { top } = msg else {
                return Err(Fail::wrong_frame("a manifest", &msg));
            };
            let store = Arc::clone(&store);
            let accepted = tokio::task::spawn_blocking(move || accept_manifest_top(&store, &top))
                .await
                .map_err(|e| Fail::joined("manifest check", e))?;
            match accepted {
                Ok(m) => {
                    self.ctx
                        .log
                        .record(self.conn_id, &g.repo, "manifest", 0, m.size);
                    w.send(&Message::Done).await?;
                }
                Err(e @ AcceptError::Missing { .. }) => {
                    return Err(Fail::Refuse(ErrorCode::MissingObjects, e.to_string()))
                }
                Err(e @ AcceptError::Invalid(_)) => {
                    return Err(Fail::Refuse(ErrorCode::BadRequest, e.to_string()))
                }
                Err(AcceptError::Store(e)) => return Err(e.into()),
            }
            next = r.next().await?;
        }
        Ok(())
    }

    fn readable_store(&self) -> Result<(Granted, Arc<DiskStore>), Fail> {
        let g = self.granted(Rights::Read)?;
        let store = self.store(&g, false)?.ok_or_else(|| {
            Fail::Refuse(
                ErrorCode::NotFound,
                format!("repository {} does not exist on this server", g.repo),
            )
        })?;
        Ok((g, store))
    }

    async fn get_chunks(
        &self,
        first: Message,
        w: &mut FrameWriter,
        r: &mut FrameReader,
    ) -> Result<(), Fail> {
        let (g, store) = self.readable_store()?;
        let mut next = Some(first);
        while let Some(msg) = next {
            let Message::GetChunks { ids } = msg else {
                return Err(Fail::wrong_frame("get-chunks", &msg));
            };
            if ids.len() > MAX_IDS_PER_QUERY {
                return Err(Fail::Refuse(
                    ErrorCode::BadRequest,
                    format!("at most {MAX_IDS_PER_QUERY} ids per request"),
                ));
            }
            let (mut n, mut bytes) = (0u64, 0u64);
            // Read (and verify) a few chunks at a time on a blocking thread, so what a client
            // asks for never sits in memory at once.
            for group in ids.chunks(READ_AHEAD) {
                let store = Arc::clone(&store);
                let group = group.to_vec();
                let read = tokio::task::spawn_blocking(move || {
                    group
                        .into_iter()
                        .map(|id| store.read_chunk(&id).map(|d| (id, d)))
                        .collect::<Vec<_>>()
                })
                .await
                .map_err(|e| Fail::joined("chunk reader", e))?;
                for item in read {
                    let (id, data) = item.map_err(|e| match e {
                        dits_core::store::StoreError::ChunkMissing { id } => Fail::Refuse(
                            ErrorCode::NotFound,
                            format!("chunk {id} is not on the server"),
                        ),
                        // A full disk or an I/O hiccup may pass: retryable.
                        e if e.is_transient() => Fail::Refuse(ErrorCode::Internal, e.to_string()),
                        e => Fail::Refuse(
                            ErrorCode::CorruptChunk,
                            format!(
                                "{e} (on the server; its admin should run `git dits fsck` there)"
                            ),
                        ),
                    })?;
                    n += 1;
                    bytes += data.len() as u64;
                    w.send_chunk(id, data).await?;
                }
            }
            w.send(&Message::BatchEnd).await?;
            self.ctx.log.record(self.conn_id, &g.repo, "get", n, bytes);
            next = r.next().await?;
        }
        Ok(())
    }

    async fn get_manifests(
        &self,
        first: Message,
        w: &mut FrameWriter,
        r: &mut FrameReader,
    ) -> Result<(), Fail> {
        let (_, store) = self.readable_store()?;
        let mut next = Some(first);
        while let Some(msg) = next {
            let Message::GetManifest { id } = msg else {
                return Err(Fail::wrong_frame("get-manifest", &msg));
            };
            match store.read_manifest_top(&id) {
                Ok(top) => w.send(&Message::ManifestTop { top }).await?,
                Err(dits_core::store::StoreError::ManifestMissing { .. }) => {
                    return Err(Fail::Refuse(
                        ErrorCode::NotFound,
                        format!("file {id} is not on the server"),
                    ))
                }
                Err(e) => return Err(e.into()),
            }
            next = r.next().await?;
        }
        Ok(())
    }

    async fn git(self, mut w: FrameWriter, r: FrameReader, service: &str, protocol: &str) {
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
            let g = self.granted(needed)?;
            let dir = if needed == Rights::Write {
                self.ctx.repos.create(&g.repo)?
            } else if self.ctx.repos.exists(&g.repo) {
                self.ctx.repos.dir(&g.repo)?
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
            Err(Fail::Refuse(code, message)) => {
                tracing::info!("{}: git refused ({code:?}): {message}", self.peer);
                let _ = w.send(&Message::Error { code, message }).await;
                w.finish();
                return;
            }
            Err(Fail::Net(e)) => {
                tracing::error!("{}: git: {e}", self.peer);
                let _ = w
                    .send(&Message::Error {
                        code: ErrorCode::Internal,
                        message: e.to_string(),
                    })
                    .await;
                w.finish();
                return;
            }
        };
        if w.send(&Message::GitReady).await.is_err() {
            return;
        }
        let label = format!("{} {}", self.peer, g.repo);
        let hooks = self.ctx.repos.hooks_dir();
        if let Err(e) =
            super::git::tunnel(name, &dir, &hooks, protocol, w.send, r.recv, label).await
        {
            tracing::error!("{}: {e}", self.peer);
        }
    }
}
