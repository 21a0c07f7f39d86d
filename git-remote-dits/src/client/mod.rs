//! The client side: a [`Session`] is one authenticated connection to one repository on a
//! Dits server, over QUIC or (where UDP is blocked) TLS over TCP. Its methods are blocking
//! (they drive a private tokio runtime), so the porcelain, the filter's worker threads and the
//! remote helper can all call them.

mod connect;
mod download;
pub mod gitcmd;
mod source;
#[cfg(test)]
mod tests;
mod upload;

use std::future::Future;
use std::time::Duration;

use dits_core::wire::{ErrorCode, Message, Rights, MAX_IDS_PER_QUERY, PROTOCOL_VERSION};
use dits_core::{ChunkId, FileId};

use crate::error::NetError;
use crate::frames::{self, Deadline, FrameReader, FrameWriter};
use crate::tls::Trust;
use crate::transport::{Connection, Kind, RecvHalf, SendHalf};
use crate::url::DitsUrl;

pub use source::RemoteSource;
pub use upload::PushStats;

/// Request streams used in parallel for bulk transfer. Each has at most one batch in flight
/// (the next is sent once the last is acknowledged as durable), so a cut connection loses
/// at most this many batches: the next run re-sends only those.
pub const STREAMS: usize = 2;

/// The welcome capability that says notices wait for this user (see `Session::show_notices`).
pub const NOTICES: &str = "notices";

/// How long a finished session waits for its close to go out (see `Drop for Session`).
const CLOSE_GRACE: Duration = Duration::from_millis(15);

const AGENT: &str = concat!("git-dits/", env!("CARGO_PKG_VERSION"));

/// Which transport to use (`dits.transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportChoice {
    /// QUIC, and TCP if QUIC does not answer promptly (the default).
    Auto,
    Quic,
    Tcp,
}

/// Everything a client needs to know to connect, read once from git config
/// ([`NetSettings::from_git`]) and passed down.
#[derive(Debug, Clone)]
pub struct NetSettings {
    /// How long a silent server is waited for (`dits.timeout`, seconds, default 30).
    pub timeout: Duration,
    /// How long a server that does not answer at all is waited for before giving up
    /// (`dits.connectTimeout`, default 10 s).
    pub connect_timeout: Duration,
    pub transport: TransportChoice,
    /// `dits.<host:port>.fingerprint` of each pinned server.
    pub pins: std::collections::BTreeMap<String, String>,
    pub ca_file: Option<std::path::PathBuf>,
    /// `dits.trustNewServers` or `GIT_DITS_TRUST_NEW_SERVER=1`.
    pub trust_new: bool,
    /// `credential.useHttpPath`: the repository path is part of the credential request.
    pub credential_use_path: bool,
    /// How long a token typed at the prompt is kept in git's in-memory credential cache, so
    /// the other processes of the same command (the filter after the helper) and the next
    /// commands do not ask again (`dits.credentialCache`, seconds, default 900; 0: never).
    pub credential_cache: Option<Duration>,
    /// Progress and "connecting to" lines on stderr.
    pub verbose: bool,
    /// A token to offer before asking git's credential system (for programs that embed the
    /// client, and the in-process tests; people keep tokens in a credential helper).
    pub token: Option<String>,
}

impl Default for NetSettings {
    fn default() -> Self {
        NetSettings {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            transport: TransportChoice::Auto,
            pins: Default::default(),
            ca_file: None,
            trust_new: false,
            credential_use_path: false,
            credential_cache: Some(Duration::from_secs(900)),
            verbose: false,
            token: None,
        }
    }
}

impl NetSettings {
    /// The settings in effect for this process, from one `git config` run (so `git -c`,
    /// `GIT_CONFIG_*` and every scope apply) and the environment.
    pub fn from_git() -> Result<NetSettings, NetError> {
        Self::from_config(&gitcmd::config_snapshot())
    }

    /// The settings a set of `git config` entries (lowercased keys, as git prints them) says.
    pub fn from_config(
        cfg: &std::collections::BTreeMap<String, String>,
    ) -> Result<NetSettings, NetError> {
        let mut s = NetSettings::default();
        let secs = |key: &str, default: Duration| -> Result<Duration, NetError> {
            match cfg.get(key) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n > 0)
                    .map(Duration::from_secs)
                    .ok_or_else(|| {
                        NetError::Config(format!(
                            "{key} = {v:?}: expected a number of seconds; hint: git config {key} 30"
                        ))
                    }),
            }
        };
        s.timeout = secs("dits.timeout", s.timeout)?;
        s.connect_timeout = secs("dits.connecttimeout", s.connect_timeout)?;
        s.transport = match cfg.get("dits.transport").map(|v| v.trim().to_ascii_lowercase()) {
            None => TransportChoice::Auto,
            Some(v) if v == "auto" => TransportChoice::Auto,
            Some(v) if v == "quic" => TransportChoice::Quic,
            Some(v) if v == "tcp" => TransportChoice::Tcp,
            Some(v) => {
                return Err(NetError::Config(format!(
                    "dits.transport = {v:?}: expected auto, quic or tcp; hint: git config dits.transport auto"
                )))
            }
        };
        for (key, value) in cfg {
            if let Some(authority) = key
                .strip_prefix("dits.")
                .and_then(|k| k.strip_suffix(".fingerprint"))
            {
                s.pins.insert(authority.to_owned(), value.clone());
            }
        }
        s.ca_file = cfg.get("dits.cafile").map(Into::into);
        let truthy = |v: &str| matches!(v.trim(), "true" | "yes" | "on" | "1" | "");
        let env_accept =
            std::env::var("GIT_DITS_TRUST_NEW_SERVER").is_ok_and(|v| v == "1" || v == "true");
        s.trust_new = env_accept || cfg.get("dits.trustnewservers").is_some_and(|v| truthy(v));
        s.credential_use_path = cfg.get("credential.usehttppath").is_some_and(|v| truthy(v));
        if let Some(v) = cfg.get("dits.credentialcache") {
            let n: u64 = v.trim().parse().map_err(|_| {
                NetError::Config(format!(
                    "dits.credentialCache = {v:?}: expected a number of seconds (0 turns the cache off); hint: git config dits.credentialCache 900"
                ))
            })?;
            s.credential_cache = (n > 0).then(|| Duration::from_secs(n));
        }
        Ok(s)
    }

    fn trust_for(&self, authority: &str) -> Trust {
        Trust {
            pinned: self.pins.get(authority).cloned(),
            ca_file: self.ca_file.clone(),
            accept_new: self.trust_new,
        }
    }

    pub(crate) fn deadline(&self) -> Deadline {
        Deadline::new(self.timeout)
    }
}

pub struct Session {
    rt: tokio::runtime::Runtime,
    /// The QUIC endpoint, if the connection is QUIC (closed gracefully on drop).
    endpoint: Option<quinn::Endpoint>,
    conn: Connection,
    url: DitsUrl,
    rights: Rights,
    settings: NetSettings,
    /// The server said it holds notices for this user (a lock of theirs broken).
    notices_waiting: std::sync::atomic::AtomicBool,
    /// `git credential approve`, running while the session works; waited for at its end.
    approving: std::sync::Mutex<Option<std::process::Child>>,
}

impl Session {
    /// Connects, checks the server's certificate (pin, CA, or first use), and authenticates
    /// with a token from git's credential system if the server asks for one.
    pub fn connect(url: &DitsUrl, settings: &NetSettings) -> Result<Session, NetError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("dits-net")
            .enable_all()
            .build()
            .map_err(|e| NetError::io("starting the network runtime", e))?;
        let (endpoint, conn) = rt.block_on(connect::connect(url, settings))?;
        let mut session = Session {
            rt,
            endpoint,
            conn,
            url: url.clone(),
            rights: Rights::Read,
            settings: settings.clone(),
            notices_waiting: Default::default(),
            approving: Default::default(),
        };
        session.rights = session.authenticate()?;
        session.show_notices();
        Ok(session)
    }

    /// A session over a connection made elsewhere (the in-process tests' multiplexed pipe).
    /// `rt` must be the runtime the connection's tasks run on.
    pub fn over(
        rt: tokio::runtime::Runtime,
        conn: Connection,
        url: &DitsUrl,
        settings: &NetSettings,
    ) -> Result<Session, NetError> {
        let mut session = Session {
            rt,
            endpoint: None,
            conn,
            url: url.clone(),
            rights: Rights::Read,
            settings: settings.clone(),
            notices_waiting: Default::default(),
            approving: Default::default(),
        };
        session.rights = session.authenticate()?;
        session.show_notices();
        Ok(session)
    }

    pub fn url(&self) -> &DitsUrl {
        &self.url
    }

    pub fn rights(&self) -> Rights {
        self.rights
    }

    /// QUIC or TCP.
    pub fn transport(&self) -> Kind {
        self.conn.kind()
    }

    fn unexpected(&self, got: &Message, expected: &'static str) -> NetError {
        NetError::Unexpected {
            peer: self.peer(),
            got: got.name(),
            expected,
        }
    }

    fn peer(&self) -> String {
        self.url.authority()
    }

    /// Runs a future on the session's runtime (callable from any non-runtime thread).
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Why the connection ended, if it has (a mount reconnects then).
    pub fn closed(&self) -> Option<String> {
        self.conn.closed()
    }

    /// Closes the connection at once (a push that must not go on).
    pub fn abort(&self, why: &[u8]) {
        self.conn.close(1, why);
    }

    /// Bytes this connection sent and received on the wire so far.
    pub fn wire_bytes(&self) -> (u64, u64) {
        self.conn.wire_bytes()
    }

    fn authenticate(&self) -> Result<Rights, NetError> {
        let authority = self.url.authority();
        match self.hello(self.settings.token.clone())? {
            Ok(rights) => return Ok(rights),
            Err((ErrorCode::AuthRequired, _)) if self.settings.token.is_none() => {}
            Err((code, message)) => return Err(NetError::Remote { code, message }),
        }
        let Some(cred) = gitcmd::credential_fill(
            &authority,
            &self.url.repo,
            self.settings.credential_use_path,
            self.settings.credential_cache,
        ) else {
            return Err(NetError::Auth(format!(
                "the Dits server at {authority} requires a token for {} and git's credential system has none; hint: ask the server's admin for one (`git dits serve token add`), then store it with `git credential approve` or a credential helper (protocol=dits, host={authority}, password=<token>)",
                self.url.repo
            )));
        };
        match self.hello(Some(cred.password.clone()))? {
            Ok(rights) => {
                *self.approving.lock().unwrap_or_else(|p| p.into_inner()) =
                    gitcmd::credential_report(&cred, true);
                Ok(rights)
            }
            Err((code @ (ErrorCode::AuthRequired | ErrorCode::Forbidden), message)) => {
                // Only a token the server does not know is forgotten: a valid token for
                // another repository must survive (helpers key tokens by host).
                if code == ErrorCode::AuthRequired {
                    let _ = gitcmd::credential_report(&cred, false);
                }
                Err(NetError::Auth(format!(
                    "the Dits server at {authority} refused the token for {} ({code:?}): {}; hint: check the token with the server's admin (`git dits serve token list`)",
                    self.url.repo,
                    crate::error::printable(&message)
                )))
            }
            Err((code, message)) => Err(NetError::Remote { code, message }),
        }
    }

    /// One hello exchange: the granted rights, or the server's refusal.
    #[allow(clippy::type_complexity)]
    fn hello(
        &self,
        token: Option<String>,
    ) -> Result<Result<Rights, (ErrorCode, String)>, NetError> {
        let peer = self.peer();
        self.block_on(async {
            let (mut w, mut r) = self.open().await?;
            w.send(&Message::Hello {
                version: PROTOCOL_VERSION,
                capabilities: vec!["chunks".into(), "git".into()],
                repo: self.url.repo.clone(),
                token,
                agent: AGENT.into(),
            })
            .await?;
            w.finish().await;
            match r.next().await? {
                Some(Message::Welcome {
                    version,
                    rights,
                    capabilities,
                }) => {
                    if capabilities.iter().any(|c| c == NOTICES) {
                        self.notices_waiting
                            .store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    if version != PROTOCOL_VERSION {
                        return Err(NetError::Remote {
                            code: ErrorCode::UnsupportedVersion,
                            message: format!("the server answered with protocol version {version}; this client speaks {PROTOCOL_VERSION}; hint: upgrade git-dits"),
                        });
                    }
                    Ok(Ok(rights))
                }
                Some(Message::Error { code, message }) => Ok(Err((code, message))),
                Some(other) => Err(r.unexpected(&other, "welcome")),
                None => Err(NetError::Lost {
                    peer: peer.clone(),
                    reason: "the server closed the stream without answering hello".into(),
                }),
            }
        })
    }

    /// Which of `ids` the server has complete (manifest and all chunks, content verified).
    pub fn has_files(&self, ids: &[FileId]) -> Result<Vec<bool>, NetError> {
        self.query(
            ids.chunks(MAX_IDS_PER_QUERY)
                .map(|c| Message::HasFiles { ids: c.to_vec() }),
        )
    }

    /// Which of `ids` the server has.
    pub fn has_chunks(&self, ids: &[ChunkId]) -> Result<Vec<bool>, NetError> {
        self.query(
            ids.chunks(MAX_IDS_PER_QUERY)
                .map(|c| Message::HasChunks { ids: c.to_vec() }),
        )
    }

    /// Sends all queries on one stream without waiting, then reads the bitmaps in order.
    fn query(&self, queries: impl Iterator<Item = Message>) -> Result<Vec<bool>, NetError> {
        let queries: Vec<Message> = queries.collect();
        let asked: Vec<usize> = queries
            .iter()
            .map(|q| match q {
                Message::HasFiles { ids } => ids.len(),
                Message::HasChunks { ids } => ids.len(),
                _ => 0,
            })
            .collect();
        let answers = self.pipeline(queries, "bitmap")?;
        let mut out = Vec::new();
        for (answer, asked) in answers.into_iter().zip(asked) {
            match answer {
                Message::Bitmap { count, bits } if count as usize == asked => {
                    out.extend((0..asked).map(|i| Message::bit(&bits, i)));
                }
                other => return Err(self.unexpected(&other, "a bitmap of the size asked")),
            }
        }
        Ok(out)
    }

    /// Sends `requests` on one stream without waiting for answers, and reads one answer per
    /// request, in order (an error frame fails the whole exchange).
    pub(crate) fn pipeline(
        &self,
        requests: Vec<Message>,
        expected: &'static str,
    ) -> Result<Vec<Message>, NetError> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let n = requests.len();
        self.block_on(async {
            let (mut w, mut r) = self.open().await?;
            let sender = async {
                for q in &requests {
                    w.send(q).await?;
                }
                w.finish().await;
                Ok::<_, NetError>(())
            };
            let receiver = async {
                let mut out = Vec::with_capacity(n);
                for _ in 0..n {
                    out.push(r.expect(expected).await?);
                }
                Ok(out)
            };
            let ((), out) = tokio::try_join!(sender, receiver)?;
            Ok(out)
        })
    }

    /// Prints (on stderr) the notices the server holds for this user, once: whatever Dits
    /// command connects next after an admin broke one of their locks tells them.
    fn show_notices(&self) {
        if !self
            .notices_waiting
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let ask = dits_core::locks::LockCall::List(dits_core::locks::ListRequest {
            limit: 1,
            ..Default::default()
        });
        match self.locks(ask) {
            Ok(dits_core::locks::LockReply::Ok { notices, .. }) => {
                for n in notices {
                    eprintln!("dits: notice: {}", crate::error::printable(&n));
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!("reading notices: {e}"),
        }
    }

    /// One request about locks, and the server's answer (a refusal is an answer, not an
    /// error: it names the locks in the way).
    pub fn locks(
        &self,
        call: dits_core::locks::LockCall,
    ) -> Result<dits_core::locks::LockReply, NetError> {
        match self
            .pipeline(vec![Message::Lock(call)], "lock-reply")?
            .pop()
        {
            Some(Message::LockReply(reply)) => Ok(reply),
            Some(other) => Err(self.unexpected(&other, "lock-reply")),
            None => Err(NetError::Lost {
                peer: self.peer(),
                reason: "the server closed the stream without answering".into(),
            }),
        }
    }

    /// Opens a tunnel to `git-upload-pack` / `git-receive-pack` of the repository.
    pub fn git_tunnel(
        &self,
        service: &str,
        protocol: &str,
    ) -> Result<(SendHalf, RecvHalf), NetError> {
        self.block_on(async {
            let (mut w, mut r) = self.open().await?;
            w.send(&Message::Git {
                service: service.to_owned(),
                protocol: protocol.to_owned(),
            })
            .await?;
            match r.expect("git-ready").await? {
                Message::GitReady => Ok((w.send, r.recv)),
                other => Err(r.unexpected(&other, "git-ready")),
            }
        })
    }

    pub(crate) async fn open(&self) -> Result<(FrameWriter, FrameReader), NetError> {
        frames::open(&self.conn, &self.peer(), self.settings.deadline()).await
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Long done by now, as a rule; reaped, so it leaves no zombie behind.
        if let Some(mut child) = self
            .approving
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = child.wait();
        }
        let (sent, received) = self.conn.wire_bytes();
        tracing::debug!(
            "connection to {} ({}): sent {sent} bytes, received {received}",
            self.url.authority(),
            self.conn.kind(),
        );
        self.conn.close(0, b"done");
        // Gives the endpoint's driver the moment it needs to send the close, so the server
        // does not wait for an idle timeout. Not the whole draining period (three probe
        // timeouts, ~80 ms even on loopback): a close that is lost costs the server an idle
        // timeout, not the user time.
        if let Some(endpoint) = self.endpoint.clone() {
            self.rt.block_on(async move {
                let _ = tokio::time::timeout(CLOSE_GRACE, endpoint.wait_idle()).await;
            });
        }
    }
}

/// The config key that pins a server's certificate.
pub fn pin_key(authority: &str) -> String {
    format!("dits.{authority}.fingerprint")
}
