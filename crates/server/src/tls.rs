//! TLS for `eduledger serve` (rustls): a certificate chain and key read from PEM files, and
//! a listener that hands axum connections only once their handshake is done — each
//! handshake on its own task, under a deadline, so a client that connects and says nothing
//! holds up no one.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;
use tracing::debug;

/// Largest certificate or key file read.
pub const MAX_PEM: u64 = 1 << 20;
/// Longest a client may take over its handshake.
pub const HANDSHAKE: Duration = Duration::from_secs(10);
/// Handshakes under way (or finished and not yet served) at once.
pub const PENDING: usize = 1024;

fn read_limited(path: &Path, flag: &str) -> Result<Vec<u8>, String> {
    eduledger_files::read_bounded(path, MAX_PEM).map_err(|e| format!("{flag}: {e}"))
}

/// The server's TLS configuration from a PEM certificate chain (leaf first) and a PEM
/// private key (PKCS#8, PKCS#1 or SEC1), or why not, naming the file.
pub fn config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain_pem = read_limited(cert, "--tls-cert")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            format!(
                "--tls-cert {}: not a PEM certificate chain ({e})",
                cert.display()
            )
        })?;
    if chain.is_empty() {
        return Err(format!(
            "--tls-cert {}: no certificate in it (expected -----BEGIN CERTIFICATE-----)",
            cert.display()
        ));
    }
    let key_pem = read_limited(key, "--tls-key")?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("--tls-key {}: not a PEM private key ({e})", key.display()))?;
    // ring, not aws-lc-rs: no C toolchain to build on the bureau's machines. rustls marks
    // it deprecated for lacking post-quantum key exchange; classical TLS 1.3 and 1.2 suites
    // are what it offers (docs/SERVER.md).
    #[allow(deprecated)]
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            format!(
                "--tls-cert {} with --tls-key {}: {e}",
                cert.display(),
                key.display()
            )
        })?;
    Ok(Arc::new(config))
}

/// Connections that finished their TLS handshake, for `axum::serve`.
pub struct Listener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl Listener {
    /// Accept on `tcp`, handshaking with `config`.
    /// `per_address`: handshakes one address may have under way at once (more are closed
    /// at once), so silent connections from one place hold up no one else's handshake.
    pub fn new(
        tcp: TcpListener,
        config: Arc<ServerConfig>,
        per_address: usize,
    ) -> std::io::Result<Listener> {
        let shares = crate::share::Shares::new(per_address);
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        // handshakes under way and finished ones not yet taken: bounded, so a flood of them
        // holds no more than this many descriptors
        let room = std::sync::Arc::new(tokio::sync::Semaphore::new(PENDING));
        tokio::spawn(async move {
            loop {
                let permit = tokio::select! {
                    p = room.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                    _ = tx.closed() => return,
                };
                let accepted = tokio::select! {
                    a = tcp.accept() => a,
                    // the server stopped accepting: so does this
                    _ = tx.closed() => return,
                };
                let (stream, peer) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        // (out of file descriptors, say): wait a moment, as axum does
                        debug!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Some(held) = shares.take(peer.ip()) else {
                    debug!(%peer, "over its share of TLS handshakes: closed");
                    continue;
                };
                let (acceptor, handed) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let _held = held;
                    match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tokio::time::timeout(HANDSHAKE, handed.send((tls, peer))).await;
                        }
                        Ok(Err(e)) => debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => debug!(%peer, "TLS handshake took too long"),
                    }
                    drop(permit);
                });
            }
        });
        Ok(Listener { ready, local })
    }
}

impl axum::serve::Listener for Listener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // the accepting task is gone: accept nothing more
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
