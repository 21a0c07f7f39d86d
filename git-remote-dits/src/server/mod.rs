//! `git dits serve`: one process holding bare repositories and their chunk stores under a
//! root directory, speaking the Dits protocol over QUIC. Layout of the root:
//!
//! ```text
//! server/cert.pem, key.pem   TLS identity (self-signed on first start unless given)
//! server/tokens              access tokens (hashed), see `auth`
//! server/hooks/update        the integrity hook every repository runs
//! server/transfer.log        one line per batch moved
//! repos/<path>.git           bare repositories; <path>.git/dits is each one's chunk store
//! ```

pub mod auth;
mod conn;
mod git;
mod log;
mod repos;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::NetError;
use crate::tls::ServerIdentity;

pub struct ServeOptions {
    pub root: PathBuf,
    pub listen: SocketAddr,
    /// A certificate chain and key (PEM) to use instead of the generated self-signed pair.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// The `git-dits` program the integrity hook runs.
    pub hook_program: PathBuf,
}

struct Context {
    root: PathBuf,
    repos: repos::Repos,
    log: log::TransferLog,
}

/// The certificate fingerprint clients pin, creating the identity if needed.
pub fn fingerprint(root: &std::path::Path) -> Result<String, NetError> {
    let dir = root.join("server");
    std::fs::create_dir_all(&dir)
        .map_err(|e| NetError::io(format!("creating {}", dir.display()), e))?;
    Ok(ServerIdentity::load_or_create(&dir)?.fingerprint())
}

/// Serves until SIGINT or SIGTERM. `ready` is called once the socket is bound, with the
/// address (useful with port 0) and the certificate fingerprint.
pub fn run(opts: ServeOptions, ready: impl FnOnce(SocketAddr, &str)) -> Result<(), NetError> {
    let server_dir = opts.root.join("server");
    for dir in [server_dir.clone(), opts.root.join("repos")] {
        std::fs::create_dir_all(&dir)
            .map_err(|e| NetError::io(format!("creating {}", dir.display()), e))?;
    }
    let identity = match &opts.identity {
        Some((cert, key)) => ServerIdentity::load(cert, key)?,
        None => ServerIdentity::load_or_create(&server_dir)?,
    };
    let fp = identity.fingerprint();
    let config = identity.quinn_config()?;
    let ctx = Arc::new(Context {
        repos: repos::Repos::new(&opts.root, opts.hook_program.clone())?,
        log: log::TransferLog::open(&opts.root)?,
        root: opts.root.clone(),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name("dits-serve")
        .enable_all()
        .build()
        .map_err(|e| NetError::io("starting the server runtime", e))?;
    rt.block_on(async {
        let endpoint = crate::tls::endpoint(opts.listen, Some(config))
            .map_err(|e| NetError::io(format!("listening on {}", opts.listen), e))?;
        let local = endpoint
            .local_addr()
            .map_err(|e| NetError::io("reading the bound address", e))?;
        tracing::info!("listening on {local}, certificate {fp}");
        ready(local, &fp);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| NetError::io("installing the SIGTERM handler", e))?;
        loop {
            tokio::select! {
                incoming = endpoint.accept() => match incoming {
                    Some(incoming) => {
                        tokio::spawn(conn::serve(Arc::clone(&ctx), incoming));
                    }
                    None => break,
                },
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
            }
        }
        tracing::info!("shutting down");
        endpoint.close(0u32.into(), b"server shutting down");
        // In-flight uploads see their streams end and make what they received durable.
        let _ = tokio::time::timeout(Duration::from_secs(5), endpoint.wait_idle()).await;
        Ok::<_, NetError>(())
    })?;
    rt.shutdown_timeout(Duration::from_secs(10));
    Ok(())
}
