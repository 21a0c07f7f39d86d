//! Reaching a server: resolve, then QUIC or TLS over TCP (or both, TCP starting shortly after
//! QUIC when QUIC has not answered, the first to finish its handshake wins), checking the
//! certificate by pin, CA or trust on first use. A server that does not answer at all is
//! given up on after `dits.connectTimeout`, and a terminal shows what is being waited for.

use std::io::{BufRead, IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use super::{gitcmd, pin_key, NetSettings, TransportChoice};
use crate::error::NetError;
use crate::tls::{self, Seen, Trust};
use crate::transport::{Connection, Kind, Mux};
use crate::url::DitsUrl;

/// How long QUIC gets alone before TCP is tried beside it (`auto`).
const TCP_HEAD_START: Duration = Duration::from_millis(1500);
/// How long a connect may take before the terminal says what it is waiting for.
const SAY_CONNECTING_AFTER: Duration = Duration::from_millis(1000);

pub(super) async fn connect(
    url: &DitsUrl,
    settings: &NetSettings,
) -> Result<(Option<quinn::Endpoint>, Connection), NetError> {
    let addr = resolve(url)?;
    let authority = url.authority();
    let mut trust = settings.trust_for(&authority);
    let was_pinned = trust.pinned.is_some();
    let mut asked = false;
    let connecting = connecting_notice(&authority, settings.verbose);
    let result = loop {
        let (attempt, seen) = attempt(url, addr, &trust, settings).await;
        let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match attempt {
            Ok(done) => {
                if !was_pinned && !seen.ca_verified {
                    if let Some(fp) = &seen.fingerprint {
                        record_pin(&authority, fp);
                    }
                }
                break Ok(done);
            }
            Err(e) => {
                let Some(fp) = seen.fingerprint else {
                    break Err(e);
                };
                if let Some(pin) = &trust.pinned {
                    if *pin != fp {
                        break Err(mismatch(&authority, pin, &fp));
                    }
                    break Err(e);
                }
                if !asked && ask_to_trust(&authority, &fp) {
                    asked = true;
                    trust.pinned = Some(fp);
                    continue;
                }
                break Err(NetError::Tls(format!(
                    "the Dits server at {authority} is not known: its certificate {fp} is neither pinned nor signed by a trusted CA; hint: if `git dits serve` printed this fingerprint, run `git config {} {fp}` (or set GIT_DITS_TRUST_NEW_SERVER=1 to trust a new server on first use)",
                    pin_key(&authority)
                )));
            }
        }
    };
    connecting.abort();
    result
}

type Attempt = (
    Result<(Option<quinn::Endpoint>, Connection), NetError>,
    Arc<std::sync::Mutex<Seen>>,
);

/// One try at a connection with `trust`, over the transports the settings allow.
async fn attempt(
    url: &DitsUrl,
    addr: SocketAddr,
    trust: &Trust,
    settings: &NetSettings,
) -> Attempt {
    let deadline = settings.connect_timeout;
    match settings.transport {
        TransportChoice::Quic => quic(url, addr, trust, settings, deadline).await,
        TransportChoice::Tcp => tcp(url, addr, trust, deadline).await,
        TransportChoice::Auto => {
            let quic = quic(url, addr, trust, settings, deadline);
            let tcp = async {
                tokio::time::sleep(TCP_HEAD_START).await;
                tcp(url, addr, trust, deadline.saturating_sub(TCP_HEAD_START)).await
            };
            tokio::pin!(quic, tcp);
            // The first to succeed wins; if one fails, wait for the other.
            let first = tokio::select! {
                q = &mut quic => (Kind::Quic, q),
                t = &mut tcp => (Kind::Tcp, t),
            };
            match first {
                (_, (Ok(done), seen)) => (Ok(done), seen),
                (Kind::Quic, (Err(quic_err), quic_seen)) => {
                    let (t, seen) = tcp.await;
                    (
                        t.map_err(|tcp_err| both(url, quic_err, tcp_err)),
                        merge(quic_seen, seen),
                    )
                }
                (Kind::Tcp, (Err(tcp_err), tcp_seen)) => {
                    let (q, seen) = quic.await;
                    (
                        q.map_err(|quic_err| both(url, quic_err, tcp_err)),
                        merge(tcp_seen, seen),
                    )
                }
            }
        }
    }
}

/// Both transports failed: a certificate problem is the one to report, else both reasons.
fn both(url: &DitsUrl, quic: NetError, tcp: NetError) -> NetError {
    match (quic, tcp) {
        (e @ NetError::Tls(_), _) | (_, e @ NetError::Tls(_)) => e,
        (NetError::Connect { reason: q, .. }, NetError::Connect { reason: t, .. }) => {
            NetError::Connect {
                addr: url.authority(),
                reason: format!("QUIC (UDP): {q}; TCP: {t}"),
            }
        }
        (q, _) => q,
    }
}

fn merge(
    a: Arc<std::sync::Mutex<Seen>>,
    b: Arc<std::sync::Mutex<Seen>>,
) -> Arc<std::sync::Mutex<Seen>> {
    let a_seen = a
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .fingerprint
        .is_some();
    if a_seen {
        a
    } else {
        b
    }
}

async fn quic(
    url: &DitsUrl,
    addr: SocketAddr,
    trust: &Trust,
    settings: &NetSettings,
    deadline: Duration,
) -> Attempt {
    let authority = url.authority();
    let (config, seen) = match tls::client_config(trust.clone(), settings.timeout) {
        Ok(c) => c,
        Err(e) => return (Err(e), Arc::default()),
    };
    let run = async {
        let bind: SocketAddr = if addr.is_ipv6() {
            "[::]:0".parse().expect("literal address")
        } else {
            "0.0.0.0:0".parse().expect("literal address")
        };
        let endpoint =
            tls::endpoint(bind, None).map_err(|e| NetError::io("opening a UDP socket", e))?;
        // An IP address is a valid name too (a CA may issue a certificate for it); a pinned
        // or first-use certificate is checked by fingerprint, whatever names it carries.
        let conn = endpoint
            .connect_with(config, addr, &url.host)
            .map_err(|e| connect_failed(&authority, e))?
            .await
            .map_err(|e| connect_failed(&authority, e))?;
        Ok((Some(endpoint), Connection::Quic(conn)))
    };
    match tokio::time::timeout(deadline, run).await {
        Ok(r) => (r, seen),
        Err(_) => (Err(no_answer(&authority, "QUIC (UDP)", deadline)), seen),
    }
}

async fn tcp(url: &DitsUrl, addr: SocketAddr, trust: &Trust, deadline: Duration) -> Attempt {
    let authority = url.authority();
    let (config, seen) = match tls::rustls_client(trust.clone()) {
        Ok(c) => c,
        Err(e) => return (Err(e), Arc::default()),
    };
    let run = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| connect_failed(&authority, e))?;
        let _ = stream.set_nodelay(true);
        let name = rustls::pki_types::ServerName::try_from(url.host.clone())
            .map_err(|e| NetError::Tls(format!("{}: not a valid server name: {e}", url.host)))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, stream)
            .await
            .map_err(|e| connect_failed(&authority, e))?;
        Ok((None, Connection::Mux(Mux::start(tls, false))))
    };
    match tokio::time::timeout(deadline, run).await {
        Ok(r) => (r, seen),
        Err(_) => (Err(no_answer(&authority, "TCP", deadline)), seen),
    }
}

fn connect_failed(authority: &str, e: impl std::fmt::Display) -> NetError {
    NetError::Connect {
        addr: authority.to_owned(),
        reason: e.to_string(),
    }
}

fn no_answer(authority: &str, how: &str, waited: Duration) -> NetError {
    NetError::Connect {
        addr: authority.to_owned(),
        reason: format!("no answer over {how} within {} s", waited.as_secs()),
    }
}

fn mismatch(authority: &str, pin: &str, fp: &str) -> NetError {
    let well_formed = pin
        .strip_prefix("blake3:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if !well_formed {
        return NetError::Tls(format!(
            "{} = {pin:?} is not a certificate fingerprint (blake3: and 64 hex digits); the server presented {fp}; hint: set it to the fingerprint `git dits serve` prints, e.g. `git config {} {fp}` if you trust that server",
            pin_key(authority),
            pin_key(authority)
        ));
    }
    NetError::Tls(format!(
        "the Dits server at {authority} presented certificate {fp}, but {} pins {pin}; refusing to connect; hint: if the server's certificate was replaced on purpose, run `git config --unset {}` and connect again (otherwise someone may be intercepting the connection)",
        pin_key(authority),
        pin_key(authority)
    ))
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

/// Says "connecting to HOST…" on a terminal if connecting takes longer than a moment.
fn connecting_notice(authority: &str, verbose: bool) -> tokio::task::JoinHandle<()> {
    let authority = authority.to_owned();
    let show = verbose && std::io::stderr().is_terminal();
    tokio::spawn(async move {
        if !show {
            return;
        }
        tokio::time::sleep(SAY_CONNECTING_AFTER).await;
        eprintln!("dits: connecting to {authority}…");
    })
}

fn record_pin(authority: &str, fp: &str) {
    let key = pin_key(authority);
    match gitcmd::config_set_local(&key, fp) {
        Ok(()) => eprintln!(
            "dits: trusting the Dits server at {authority} (certificate {fp}); pinned in this repository's config as {key}; hint: `git config --global {key} {fp}` pins it for all your repositories"
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
