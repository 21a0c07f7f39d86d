//! TLS for both ends. The server keeps one certificate (self-signed on first start, or one a
//! real CA issued); clients accept a server whose certificate a CA vouches for, or whose
//! fingerprint they pinned, the first time interactively or by setting, like ssh's
//! known_hosts.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::{IdleTimeout, TransportConfig, VarInt};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::error::NetError;

/// `blake3:<hex>` of a certificate's DER bytes: what `git dits serve` prints and clients pin.
pub fn fingerprint(cert: &[u8]) -> String {
    format!("blake3:{}", blake3::hash(cert).to_hex())
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// QUIC settings for both ends. Windows are sized for loopback and LAN bulk transfer (the
/// defaults cap one stream at about 1 MB in flight).
/// `idle` is how long a silent peer is waited for before the connection counts as lost.
pub fn transport(idle: Duration) -> Arc<TransportConfig> {
    let mut t = TransportConfig::default();
    t.max_idle_timeout(IdleTimeout::try_from(idle).ok());
    t.keep_alive_interval(Some((idle / 4).max(Duration::from_millis(250))));
    t.stream_receive_window(VarInt::from_u32(16 << 20));
    t.receive_window(VarInt::from_u32(64 << 20));
    t.send_window(64 << 20);
    t.max_concurrent_bidi_streams(VarInt::from_u32(32));
    // MTU discovery with quinn's defaults (up to 1452 bytes). Probing past that on loopback
    // made quinn fall back to 1200 here, so jumbo sizes are not attempted.
    t.mtu_discovery_config(Some(quinn::MtuDiscoveryConfig::default()));
    Arc::new(t)
}

/// A UDP socket with buffers large enough for bulk QUIC (the kernel caps them at
/// `net.core.rmem_max`/`wmem_max`): a small receive buffer drops bursts, and every drop costs
/// a retransmission and a congestion back-off.
pub fn udp_socket(addr: std::net::SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let domain = if addr.is_ipv6() {
        socket2::Domain::IPV6
    } else {
        socket2::Domain::IPV4
    };
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // Best effort: a smaller buffer works, just less well.
    let _ = socket.set_recv_buffer_size(8 << 20);
    let _ = socket.set_send_buffer_size(8 << 20);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Binds a quinn endpoint on a [`udp_socket`].
pub fn endpoint(
    addr: std::net::SocketAddr,
    server: Option<quinn::ServerConfig>,
) -> std::io::Result<quinn::Endpoint> {
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        server,
        udp_socket(addr)?,
        Arc::new(quinn::TokioRuntime),
    )
}

/// The server's certificate chain and key.
pub struct ServerIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl ServerIdentity {
    /// Loads `cert.pem` and `key.pem` from `dir`, generating a self-signed pair on first use.
    pub fn load_or_create(dir: &Path) -> Result<ServerIdentity, NetError> {
        let cert_path = dir.join("cert.pem");
        let key_path = dir.join("key.pem");
        if !cert_path.exists() {
            let names = vec!["localhost".to_owned(), "dits-server".to_owned()];
            let generated = rcgen::generate_simple_self_signed(names)
                .map_err(|e| NetError::Tls(format!("cannot generate a certificate: {e}")))?;
            write_private(&key_path, generated.key_pair.serialize_pem().as_bytes())?;
            write_private(&cert_path, generated.cert.pem().as_bytes())?;
        }
        Self::load(&cert_path, &key_path)
    }

    /// Loads a PEM certificate chain and key (e.g. issued by a real CA).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<ServerIdentity, NetError> {
        use rustls::pki_types::pem::PemObject;
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| NetError::io(format!("reading {}", p.display()), e))
        };
        let cert_pem = read(cert_path)?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| NetError::Tls(format!("parsing {}: {e}", cert_path.display())))?;
        if chain.is_empty() {
            return Err(NetError::Tls(format!(
                "{} holds no PEM certificate",
                cert_path.display()
            )));
        }
        let key_pem = read(key_path)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            NetError::Tls(format!(
                "{} holds no usable PEM private key: {e}",
                key_path.display()
            ))
        })?;
        Ok(ServerIdentity { chain, key })
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(&self.chain[0])
    }

    /// The TLS side of the server, for QUIC and TCP alike: TLS 1.3 only, and a handshake
    /// only with a client that offers exactly the Dits ALPN (docs/protocol.md).
    pub fn rustls_config(self) -> Result<rustls::ServerConfig, NetError> {
        let provider = provider();
        let signing = provider
            .key_provider
            .load_private_key(self.key)
            .map_err(|e| NetError::Tls(format!("the server key is unusable: {e}")))?;
        let certified = Arc::new(rustls::sign::CertifiedKey::new(self.chain, signing));
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| NetError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(StrictAlpn(certified)));
        tls.alpn_protocols = vec![dits_core::wire::ALPN.to_vec()];
        Ok(tls)
    }

    pub fn quinn_config(self) -> Result<quinn::ServerConfig, NetError> {
        quinn_server_config(Arc::new(self.rustls_config()?))
    }
}

/// The QUIC server config over a TLS config (shared with the TCP listener).
pub fn quinn_server_config(
    tls: Arc<rustls::ServerConfig>,
) -> Result<quinn::ServerConfig, NetError> {
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| NetError::Tls(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport(SERVER_IDLE));
    Ok(config)
}

/// Hands out the certificate only to a client hello that offers exactly `dits/1`: a peer that
/// offers other protocols too is not a Dits client, and the handshake fails.
#[derive(Debug)]
struct StrictAlpn(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for StrictAlpn {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let mut offered = hello.alpn()?;
        let exactly_ours =
            offered.next() == Some(dits_core::wire::ALPN) && offered.next().is_none();
        exactly_ours.then(|| Arc::clone(&self.0))
    }
}

/// The server waits this long for a silent client (a killed client sends nothing).
pub const SERVER_IDLE: Duration = Duration::from_secs(30);

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), NetError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| NetError::io(format!("writing {}", tmp.display()), e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| NetError::io(format!("writing {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| NetError::io(format!("writing {}", path.display()), e))
}

/// How a client decides to trust a server.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// The fingerprint pinned for this server (`dits.<host:port>.fingerprint`).
    pub pinned: Option<String>,
    /// Extra CA certificates (PEM) besides the system's (`dits.caFile`).
    pub ca_file: Option<PathBuf>,
    /// Accept an unknown self-signed server (trust on first use).
    pub accept_new: bool,
}

/// What the handshake saw, for messages and for recording a new pin.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub fingerprint: Option<String>,
    pub ca_verified: bool,
}

#[derive(Debug)]
struct Verifier {
    trust: Trust,
    webpki: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    seen: Arc<Mutex<Seen>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fp = fingerprint(end_entity);
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.fingerprint = Some(fp.clone());
        if let Some(pin) = &self.trust.pinned {
            // A pin is the strongest statement the user made: it alone decides.
            return if *pin == fp {
                Ok(ServerCertVerified::assertion())
            } else {
                Err(rustls::Error::General(
                    "certificate does not match the pin".into(),
                ))
            };
        }
        if let Some(webpki) = &self.webpki {
            if webpki
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
                .is_ok()
            {
                seen.ca_verified = true;
                return Ok(ServerCertVerified::assertion());
            }
        }
        if self.trust.accept_new {
            return Ok(ServerCertVerified::assertion());
        }
        Err(rustls::Error::General("unknown server certificate".into()))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client configuration that applies `trust`; the returned [`Seen`] fills in during the
/// handshake.
/// The TLS side of a client: TLS 1.3, the Dits ALPN, and the trust rules above. `Seen`
/// records what the server presented, for pinning on first use and for messages.
pub fn rustls_client(trust: Trust) -> Result<(rustls::ClientConfig, Arc<Mutex<Seen>>), NetError> {
    let provider = provider();
    let webpki = if trust.pinned.is_some() {
        None
    } else {
        ca_verifier(trust.ca_file.as_deref(), &provider)?
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let verifier = Verifier {
        trust,
        webpki,
        seen: Arc::clone(&seen),
        provider: Arc::clone(&provider),
    };
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NetError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    tls.alpn_protocols = vec![dits_core::wire::ALPN.to_vec()];
    Ok((tls, seen))
}

/// A QUIC client config over [`rustls_client`].
pub fn client_config(
    trust: Trust,
    idle: Duration,
) -> Result<(quinn::ClientConfig, Arc<Mutex<Seen>>), NetError> {
    let (tls, seen) = rustls_client(trust)?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| NetError::Tls(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport(idle));
    Ok((config, seen))
}

fn ca_verifier(
    ca_file: Option<&Path>,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<rustls::client::WebPkiServerVerifier>>, NetError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system certificate rustls cannot parse is skipped, as browsers do.
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| NetError::io(format!("reading dits.caFile {}", path.display()), e))?;
        use rustls::pki_types::pem::PemObject;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| {
                NetError::Tls(format!("parsing dits.caFile {}: {e}", path.display()))
            })?;
            roots
                .add(cert)
                .map_err(|e| NetError::Tls(format!("dits.caFile {}: {e}", path.display())))?;
        }
    }
    if roots.is_empty() {
        return Ok(None);
    }
    rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(provider),
    )
    .build()
    .map(Some)
    .map_err(|e| NetError::Tls(e.to_string()))
}
