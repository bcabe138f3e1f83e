//! A TLS-terminating proxy in front of the plain-HTTP MLflow server, with a throw-away
//! certificate authority.
//!
//! [`TlsProxy::start`] makes a self-signed CA and a server certificate it signs for
//! `127.0.0.1` and `localhost` (rcgen), writes the CA to `ca.pem` in a temporary directory
//! (what `MLFLOW_TRACKING_SERVER_CERT_PATH` points at), and accepts TLS connections
//! (tokio-rustls, ring) whose plaintext it pipes to the upstream server. Failed handshakes
//! are counted, so a test can tell "refused by TLS" from any other failure.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// A running TLS proxy; stopped when dropped.
#[derive(Debug)]
pub struct TlsProxy {
    /// `https://127.0.0.1:PORT`.
    pub uri: String,
    /// The PEM file of the CA that signed the proxy's certificate.
    pub ca_pem: PathBuf,
    handshakes: Arc<AtomicU64>,
    failed_handshakes: Arc<AtomicU64>,
    _dir: tempfile::TempDir,
    task: JoinHandle<()>,
}

impl TlsProxy {
    /// Starts a proxy that terminates TLS and forwards to `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> TlsProxy {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("an http:// upstream")
            .trim_end_matches('/')
            .to_owned();
        let (ca_pem, chain, key) = certificates();
        let dir = tempfile::tempdir().expect("temporary directory for the CA");
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca_pem).expect("write ca.pem");

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the TLS proxy");
        let port = listener.local_addr().expect("TLS proxy address").port();
        let handshakes = Arc::new(AtomicU64::new(0));
        let failed_handshakes = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let handshakes = Arc::clone(&handshakes);
            let failed = Arc::clone(&failed_handshakes);
            async move {
                while let Ok((socket, _)) = listener.accept().await {
                    let acceptor = acceptor.clone();
                    let upstream = upstream.clone();
                    let handshakes = Arc::clone(&handshakes);
                    let failed = Arc::clone(&failed);
                    tokio::spawn(async move {
                        let mut tls = match acceptor.accept(socket).await {
                            Ok(tls) => {
                                handshakes.fetch_add(1, Ordering::SeqCst);
                                tls
                            }
                            Err(_) => {
                                failed.fetch_add(1, Ordering::SeqCst);
                                return;
                            }
                        };
                        let Ok(mut server) = TcpStream::connect(&upstream).await else {
                            return;
                        };
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                    });
                }
            }
        });
        TlsProxy {
            uri: format!("https://127.0.0.1:{port}"),
            ca_pem: ca_path,
            handshakes,
            failed_handshakes,
            _dir: dir,
            task,
        }
    }

    /// How many TLS handshakes succeeded.
    pub fn handshakes(&self) -> u64 {
        self.handshakes.load(Ordering::SeqCst)
    }

    /// How many TLS handshakes the client broke off (it did not trust the certificate).
    pub fn failed_handshakes(&self) -> u64 {
        self.failed_handshakes.load(Ordering::SeqCst)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A fresh CA (its PEM) and a server certificate it signed for `127.0.0.1` and `localhost`
/// (the chain and the private key).
fn certificates() -> (String, Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "mlreg test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).expect("self-signed CA");
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().expect("server key");
    let mut server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server parameters");
    server_params
        .distinguished_name
        .push(DnType::CommonName, "mlreg test server");
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .expect("server certificate");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    (
        ca_cert.pem(),
        vec![server_cert.der().clone(), ca_cert.der().clone()],
        key,
    )
}
