//! `git dits serve`: one process holding bare repositories and their chunk stores under a
//! root directory, speaking the Dits protocol over QUIC and, on the same port number, over
//! TLS on TCP (for clients whose networks block UDP). Layout of the root:
//!
//! ```text
//! server/cert.pem, key.pem   TLS identity (self-signed on first start unless given)
//! server/tokens              access tokens (hashed), see `auth`
//! server/hooks/update        the integrity hook every repository runs
//! server/transfer.log        one line per batch moved
//! server/locks.db            locks, their audit log and notices (SQLite, see `locks::db`)
//! repos/<path>.git           bare repositories; <path>.git/dits is each one's chunk store
//! ```
//!
//! `conn.rs` runs one connection (limits, authentication state, one task per stream);
//! `handlers/` has one file per request; `refusal.rs` is the one map from a failure to what
//! the client is told.

pub mod auth;
mod conn;
mod git;
mod handlers;
mod limits;
mod log;
mod refusal;
mod repos;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::NetError;
use crate::tls::ServerIdentity;
use crate::transport::{Connection, Mux};

pub use conn::serve_connection;
/// The handlers' in-process server, for the client's in-process tests.
#[cfg(test)]
pub(crate) use handlers::test_support;
pub use limits::Limits;

pub struct ServeOptions {
    pub root: PathBuf,
    pub listen: SocketAddr,
    /// A certificate chain and key (PEM) to use instead of the generated self-signed pair.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// The `git-dits` program the integrity hook runs.
    pub hook_program: PathBuf,
    /// Serve QUIC (UDP) and TLS over TCP; either may be turned off.
    pub quic: bool,
    pub tcp: bool,
    pub limits: Limits,
}

/// What every connection of one server shares.
pub struct Context {
    root: PathBuf,
    repos: repos::Repos,
    log: log::TransferLog,
    limits: Arc<limits::Gauges>,
    /// Locks of every repository (`server/locks.db`).
    locks: crate::locks::LockDb,
}

impl Context {
    /// The shared state of a server rooted at `root` (also what the in-process tests use).
    pub fn open(
        root: &std::path::Path,
        hook_program: PathBuf,
        limits: Limits,
    ) -> Result<Arc<Context>, NetError> {
        for dir in [root.join("server"), root.join("repos")] {
            std::fs::create_dir_all(&dir)
                .map_err(|e| NetError::io(format!("creating {}", dir.display()), e))?;
        }
        Ok(Arc::new(Context {
            repos: repos::Repos::new(root, hook_program)?,
            log: log::TransferLog::open(root)?,
            root: root.to_owned(),
            limits: Arc::new(limits::Gauges::new(limits)),
            locks: crate::locks::LockDb::open(&crate::locks::db_path(root))?,
        }))
    }
}

/// The certificate fingerprint clients pin, creating the identity if needed.
pub fn fingerprint(root: &std::path::Path) -> Result<String, NetError> {
    let dir = root.join("server");
    std::fs::create_dir_all(&dir)
        .map_err(|e| NetError::io(format!("creating {}", dir.display()), e))?;
    Ok(ServerIdentity::load_or_create(&dir)?.fingerprint())
}

/// Serves until SIGINT or SIGTERM. `ready` is called once the sockets are bound, with the
/// address (useful with port 0; TCP listens on the same port) and the certificate fingerprint.
pub fn run(opts: ServeOptions, ready: impl FnOnce(SocketAddr, &str)) -> Result<(), NetError> {
    let ctx = Context::open(&opts.root, opts.hook_program.clone(), opts.limits)?;
    let server_dir = opts.root.join("server");
    let identity = match &opts.identity {
        Some((cert, key)) => ServerIdentity::load(cert, key)?,
        None => ServerIdentity::load_or_create(&server_dir)?,
    };
    let fp = identity.fingerprint();
    let tls = Arc::new(identity.rustls_config()?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name("dits-serve")
        .enable_all()
        .build()
        .map_err(|e| NetError::io("starting the server runtime", e))?;
    rt.block_on(async {
        let (endpoint, local) = if opts.quic {
            let config = crate::tls::quinn_server_config(Arc::clone(&tls))?;
            let endpoint = crate::tls::endpoint(opts.listen, Some(config))
                .map_err(|e| NetError::io(format!("listening on {} (UDP)", opts.listen), e))?;
            let local = endpoint
                .local_addr()
                .map_err(|e| NetError::io("reading the bound address", e))?;
            (Some(endpoint), local)
        } else {
            (None, opts.listen)
        };
        let tcp = if opts.tcp {
            // The same port as QUIC (chosen by QUIC if the address said port 0).
            let addr = if opts.quic { local } else { opts.listen };
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| NetError::io(format!("listening on {addr} (TCP)"), e))?;
            Some(listener)
        } else {
            None
        };
        let local = match (&endpoint, &tcp) {
            (Some(_), _) => local,
            (None, Some(l)) => l
                .local_addr()
                .map_err(|e| NetError::io("reading the bound address", e))?,
            (None, None) => {
                return Err(NetError::io(
                    "starting the server",
                    std::io::Error::other("both QUIC and TCP are turned off"),
                ))
            }
        };
        tracing::info!(
            "listening on {local} ({}), certificate {fp}",
            match (&endpoint, &tcp) {
                (Some(_), Some(_)) => "QUIC and TCP",
                (Some(_), None) => "QUIC only",
                _ => "TCP only",
            }
        );
        ready(local, &fp);
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| NetError::io("installing the SIGTERM handler", e))?;
        loop {
            tokio::select! {
                incoming = accept_quic(endpoint.as_ref()) => match incoming {
                    Some(incoming) => {
                        let ctx = Arc::clone(&ctx);
                        tokio::spawn(async move {
                            match incoming.await {
                                Ok(c) => serve_connection(ctx, Connection::Quic(c)).await,
                                Err(e) => tracing::debug!("QUIC handshake failed: {e}"),
                            }
                        });
                    }
                    None => break,
                },
                accepted = accept_tcp(tcp.as_ref()) => {
                    if let Some((stream, peer)) = accepted {
                        let (ctx, acceptor) = (Arc::clone(&ctx), acceptor.clone());
                        tokio::spawn(async move {
                            let _ = stream.set_nodelay(true);
                            let handshake = tokio::time::timeout(
                                limits::HANDSHAKE_DEADLINE,
                                acceptor.accept(stream),
                            );
                            match handshake.await {
                                Ok(Ok(tls)) => {
                                    serve_connection(ctx, Connection::Mux(Mux::start(tls, true))).await
                                }
                                Ok(Err(e)) => tracing::debug!("{peer}: TLS handshake failed: {e}"),
                                Err(_) => tracing::debug!("{peer}: TLS handshake timed out"),
                            }
                        });
                    }
                }
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
            }
        }
        tracing::info!("shutting down");
        if let Some(endpoint) = &endpoint {
            endpoint.close(0u32.into(), b"server shutting down");
            // In-flight uploads see their streams end and make what they received durable.
            let _ = tokio::time::timeout(Duration::from_secs(5), endpoint.wait_idle()).await;
        }
        Ok::<_, NetError>(())
    })?;
    rt.shutdown_timeout(Duration::from_secs(10));
    Ok(())
}

async fn accept_quic(endpoint: Option<&quinn::Endpoint>) -> Option<quinn::Incoming> {
    match endpoint {
        Some(e) => e.accept().await,
        None => std::future::pending().await,
    }
}

async fn accept_tcp(
    listener: Option<&tokio::net::TcpListener>,
) -> Option<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(l) => match l.accept().await {
            Ok(accepted) => Some(accepted),
            Err(e) => {
                // Out of descriptors and the like: wait a moment rather than spin.
                tracing::warn!("accepting a TCP connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                None
            }
        },
        None => std::future::pending().await,
    }
}
