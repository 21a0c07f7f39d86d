//! The client side: a [`Session`] is one authenticated QUIC connection to one repository on a
//! Dits server. Its methods are blocking (they drive a private tokio runtime), so the
//! porcelain, the filter's worker threads and the remote helper can all call them.

mod download;
pub mod gitcmd;
mod source;
mod upload;

use std::future::Future;
use std::io::{BufRead, IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use dits_core::wire::{ErrorCode, Message, Rights, MAX_IDS_PER_QUERY, PROTOCOL_VERSION};
use dits_core::{ChunkId, FileId};

use crate::error::NetError;
use crate::frames::{self, FrameReader, FrameWriter};
use crate::tls::{self, Trust};
use crate::url::DitsUrl;

pub use download::FetchStats;
pub use source::RemoteSource;
pub use upload::PushStats;

/// Chunks travel in batches of about this many bytes: large enough that a round trip per
/// batch costs nothing, small enough that a cut loses little (the receiver makes each batch
/// durable before acknowledging it).
pub const BATCH_BYTES: usize = 16 << 20;
/// Request streams used in parallel for bulk transfer. Each has at most one batch in flight
/// (the next is sent once the last is acknowledged as durable), so a cut connection loses
/// at most this many batches: the next run re-sends only those.
pub const STREAMS: usize = 2;

const AGENT: &str = concat!("git-dits/", env!("CARGO_PKG_VERSION"));

pub struct Session {
    rt: tokio::runtime::Runtime,
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    url: DitsUrl,
    rights: Rights,
}

impl Session {
    /// Connects, checks the server's certificate (pin, CA, or first use), and authenticates
    /// with a token from git's credential system if the server asks for one.
    pub fn connect(url: &DitsUrl) -> Result<Session, NetError> {
        Self::connect_within(url, idle_timeout())
    }

    /// [`Session::connect`] giving up on a silent server after `timeout` (for commands that
    /// only report, like `git dits status`, which should not wait half a minute).
    pub fn connect_within(url: &DitsUrl, timeout: Duration) -> Result<Session, NetError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("dits-net")
            .enable_all()
            .build()
            .map_err(|e| NetError::io("starting the network runtime", e))?;
        let (endpoint, conn) = rt.block_on(connect_tls(url, timeout))?;
        let mut session = Session {
            rt,
            endpoint,
            conn,
            url: url.clone(),
            rights: Rights::Read,
        };
        session.rights = session.authenticate()?;
        Ok(session)
    }

    pub fn url(&self) -> &DitsUrl {
        &self.url
    }

    pub fn rights(&self) -> Rights {
        self.rights
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

    pub fn connection(&self) -> &quinn::Connection {
        &self.conn
    }

    /// Bytes this connection sent and received in UDP datagrams so far.
    pub fn wire_bytes(&self) -> (u64, u64) {
        let s = self.conn.stats();
        (s.udp_tx.bytes, s.udp_rx.bytes)
    }

    fn authenticate(&self) -> Result<Rights, NetError> {
        let authority = self.url.authority();
        match self.hello(None)? {
            Ok(rights) => return Ok(rights),
            Err((ErrorCode::AuthRequired, _)) => {}
            Err((code, message)) => return Err(NetError::Remote { code, message }),
        }
        let Some(cred) = gitcmd::credential_fill(&authority, &self.url.repo) else {
            return Err(NetError::Auth(format!(
                "the Dits server at {authority} requires a token for {} and git's credential system has none; hint: ask the server's admin for one (`git dits serve token add`), then store it with `git credential approve` or a credential helper (protocol=dits, host={authority}, password=<token>)",
                self.url.repo
            )));
        };
        match self.hello(Some(cred.password.clone()))? {
            Ok(rights) => {
                gitcmd::credential_report(&cred, true);
                Ok(rights)
            }
            Err((code @ (ErrorCode::AuthRequired | ErrorCode::Forbidden), message)) => {
                // Only a token the server does not know is forgotten: a valid token for
                // another repository must survive (helpers key tokens by host).
                if code == ErrorCode::AuthRequired {
                    gitcmd::credential_report(&cred, false);
                }
                Err(NetError::Auth(format!(
                    "the Dits server at {authority} refused the token for {} ({code:?}): {message}; hint: check the token with the server's admin (`git dits serve token list`)",
                    self.url.repo
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
            let (mut w, mut r) = frames::open(&self.conn, &peer).await?;
            w.send(&Message::Hello {
                version: PROTOCOL_VERSION,
                capabilities: vec!["chunks".into(), "git".into()],
                repo: self.url.repo.clone(),
                token,
                agent: AGENT.into(),
            })
            .await?;
            w.finish();
            match r.next().await? {
                Some(Message::Welcome { version, rights, .. }) => {
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

    /// Which of `ids` the server has complete (manifest and all chunks).
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
                other => return Err(self.unexpected(&other, "bitmap")),
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
                w.finish();
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

    /// Opens a tunnel to `git-upload-pack` / `git-receive-pack` of the repository.
    pub fn git_tunnel(
        &self,
        service: &str,
        protocol: &str,
    ) -> Result<(quinn::SendStream, quinn::RecvStream), NetError> {
        let peer = self.peer();
        self.block_on(async {
            let (mut w, mut r) = frames::open(&self.conn, &peer).await?;
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
        frames::open(&self.conn, &self.peer()).await
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let stats = self.conn.stats();
        tracing::debug!(
            "connection to {}: sent {} datagrams / {} bytes, received {} / {}, path MTU {}, rtt {:?}, lost {} packets",
            self.url.authority(),
            stats.udp_tx.datagrams,
            stats.udp_tx.bytes,
            stats.udp_rx.datagrams,
            stats.udp_rx.bytes,
            stats.path.current_mtu,
            stats.path.rtt,
            stats.path.lost_packets
        );
        self.conn.close(0u32.into(), b"done");
        // Lets the close reach the server so it does not wait for an idle timeout.
        let endpoint = self.endpoint.clone();
        self.rt.block_on(async move {
            let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
        });
    }
}

fn resolve(url: &DitsUrl) -> Result<SocketAddr, NetError> {
    let connect_err = |reason: String| NetError::Connect {
        addr: url.authority(),
        reason,
    };
    (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| connect_err(e.to_string()))?
        .next()
        .ok_or_else(|| connect_err("the name resolves to no address".into()))
}

/// `dits.timeout` (seconds, default 30): how long a silent server is waited for before the
/// transfer fails (and can be resumed).
pub fn idle_timeout() -> Duration {
    let secs = gitcmd::config_get("dits.timeout")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&s| s > 0)
        .unwrap_or(30);
    Duration::from_secs(secs)
}

fn trust_for(url: &DitsUrl) -> Trust {
    let authority = url.authority();
    let env_accept =
        std::env::var("GIT_DITS_TRUST_NEW_SERVER").is_ok_and(|v| v == "1" || v == "true");
    Trust {
        pinned: gitcmd::config_get(&pin_key(&authority)),
        ca_file: gitcmd::config_get("dits.caFile").map(Into::into),
        accept_new: env_accept || gitcmd::config_bool("dits.trustNewServers").unwrap_or(false),
    }
}

/// The config key that pins a server's certificate.
pub fn pin_key(authority: &str) -> String {
    format!("dits.{authority}.fingerprint")
}

async fn connect_tls(
    url: &DitsUrl,
    timeout: Duration,
) -> Result<(quinn::Endpoint, quinn::Connection), NetError> {
    let addr = resolve(url)?;
    let authority = url.authority();
    let mut trust = trust_for(url);
    let was_pinned = trust.pinned.is_some();
    let mut asked = false;
    loop {
        let (config, seen) = tls::client_config(trust.clone(), timeout)?;
        let bind: SocketAddr = if addr.is_ipv6() {
            "[::]:0".parse().expect("literal address")
        } else {
            "0.0.0.0:0".parse().expect("literal address")
        };
        let endpoint =
            tls::endpoint(bind, None).map_err(|e| NetError::io("opening a UDP socket", e))?;
        // An IP address is a valid name too (a CA may issue a certificate for it); a pinned
        // or first-use certificate is checked by fingerprint, whatever names it carries.
        let attempt = endpoint
            .connect_with(config, addr, &url.host)
            .map_err(|e| NetError::Connect {
                addr: authority.clone(),
                reason: e.to_string(),
            })?
            .await;
        let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match attempt {
            Ok(conn) => {
                if !was_pinned && !seen.ca_verified {
                    if let Some(fp) = &seen.fingerprint {
                        record_pin(&authority, fp);
                    }
                }
                return Ok((endpoint, conn));
            }
            Err(e) => {
                let Some(fp) = seen.fingerprint else {
                    return Err(NetError::Connect {
                        addr: authority,
                        reason: e.to_string(),
                    });
                };
                if let Some(pin) = &trust.pinned {
                    if *pin != fp {
                        return Err(NetError::Tls(format!(
                            "the Dits server at {authority} presented certificate {fp}, but {} pins {pin}; refusing to connect (someone may be intercepting the connection); hint: if the server's certificate was replaced on purpose, run `git config --unset {}` and connect again",
                            pin_key(&authority), pin_key(&authority)
                        )));
                    }
                    return Err(NetError::Connect {
                        addr: authority,
                        reason: e.to_string(),
                    });
                }
                if !asked && ask_to_trust(&authority, &fp) {
                    asked = true;
                    trust.pinned = Some(fp);
                    continue;
                }
                return Err(NetError::Tls(format!(
                    "the Dits server at {authority} is not known: its certificate {fp} is neither pinned nor signed by a trusted CA; hint: if `git dits serve` printed this fingerprint, run `git config {} {fp}` (or set GIT_DITS_TRUST_NEW_SERVER=1 to trust a new server on first use)",
                    pin_key(&authority)
                )));
            }
        }
    }
}

fn record_pin(authority: &str, fp: &str) {
    let key = pin_key(authority);
    match gitcmd::config_set_local(&key, fp) {
        Ok(()) => eprintln!(
            "dits: trusting the Dits server at {authority} (certificate {fp}); pinned in {key}"
        ),
        Err(e) => tracing::warn!("cannot record {key} = {fp}: {e}"),
    }
}

/// Asks on the terminal, like ssh does for an unknown host key. Never asks when there is no
/// terminal or git's prompts are off (CI): the caller then refuses with a hint.
fn ask_to_trust(authority: &str, fp: &str) -> bool {
    if std::env::var("GIT_TERMINAL_PROMPT").is_ok_and(|v| v == "0")
        || !std::io::stderr().is_terminal()
    {
        return false;
    }
    let Ok(tty) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    else {
        return false;
    };
    let mut out = &tty;
    let _ = write!(
        out,
        "The Dits server at {authority} presented a certificate that is not pinned here:\n  {fp}\nTrust it and remember it in this repository? [y/N] "
    );
    let mut line = String::new();
    if std::io::BufReader::new(&tty).read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y" | "yes")
}
