//! A TLS-terminating proxy in front of the plain-HTTP MLflow server, with a throw-away
//! certificate authority.
//!
//! [`TlsProxy::start`] makes a self-signed CA and a server certificate it signs for
//! `127.0.0.1` and `localhost` (rcgen), writes the CA to `ca.pem` in a temporary directory
//! (what `MLFLOW_TRACKING_SERVER_CERT_PATH` points at), and accepts TLS connections
//! (tokio-rustls, ring) whose plaintext it pipes to the upstream server. Failed handshakes
//! are counted, so a test can tell "refused by TLS" from any other failure.
//!
//! [`TlsProxy::start_requiring_client_certificates`] also asks every client for a
//! certificate signed by a second throw-away CA, and writes two client identities (the
//! certificate and its key in one PEM file, what `MLFLOW_TRACKING_CLIENT_CERT_PATH` points
//! at): `client.pem`, signed by that CA, and `stranger.pem`, signed by another.

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
    /// With client certificates required: a trusted client identity (certificate and key).
    pub client_pem: Option<PathBuf>,
    /// With client certificates required: an identity signed by a CA the proxy does not trust.
    pub stranger_pem: Option<PathBuf>,
    handshakes: Arc<AtomicU64>,
    failed_handshakes: Arc<AtomicU64>,
    _dir: tempfile::TempDir,
    task: JoinHandle<()>,
}

impl TlsProxy {
    /// Starts a proxy that terminates TLS and forwards to `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> TlsProxy {
        TlsProxy::launch(upstream, false).await
    }

    /// Like [`TlsProxy::start`], but the handshake fails unless the client presents a
    /// certificate signed by the proxy's client CA (see `client_pem`).
    pub async fn start_requiring_client_certificates(upstream: &str) -> TlsProxy {
        TlsProxy::launch(upstream, true).await
    }

    async fn launch(upstream: &str, client_auth: bool) -> TlsProxy {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("an http:// upstream")
            .trim_end_matches('/')
            .to_owned();
        let (ca, ca_pem) = authority("mlreg test CA");
        let (chain, key) = leaf(
            &ca,
            "mlreg test server",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let dir = tempfile::tempdir().expect("temporary directory for the CA");
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca_pem).expect("write ca.pem");

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .expect("TLS versions");
        let (builder, client_pem, stranger_pem) = if client_auth {
            let (client_ca, _) = authority("mlreg test client CA");
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(client_ca.certificate.der().clone())
                .expect("client CA root");
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .expect("client verifier");
            let client_pem = dir.path().join("client.pem");
            std::fs::write(&client_pem, identity_pem(&client_ca, "mlreg test client"))
                .expect("write client.pem");
            let (other_ca, _) = authority("someone else's CA");
            let stranger_pem = dir.path().join("stranger.pem");
            std::fs::write(
                &stranger_pem,
                identity_pem(&other_ca, "mlreg test stranger"),
            )
            .expect("write stranger.pem");
            (
                builder.with_client_cert_verifier(verifier),
                Some(client_pem),
                Some(stranger_pem),
            )
        } else {
            (builder.with_no_client_auth(), None, None)
        };
        let config = builder
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
            client_pem,
            stranger_pem,
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

/// A certificate authority: its certificate (with the issuer that signs for it) and PEM.
struct Authority {
    certificate: rcgen::Certificate,
    issuer: Issuer<'static, KeyPair>,
}

/// A fresh self-signed CA named `name`, and its certificate's PEM.
fn authority(name: &str) -> (Authority, String) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let certificate = params.self_signed(&key).expect("self-signed CA");
    let pem = certificate.pem();
    let issuer = Issuer::new(params, key);
    (
        Authority {
            certificate,
            issuer,
        },
        pem,
    )
}

/// A certificate `ca` signed for `127.0.0.1` and `localhost` with the given purpose, and
/// its key; the chain includes the CA.
fn signed(
    ca: &Authority,
    name: &str,
    purpose: ExtendedKeyUsagePurpose,
) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().expect("leaf key");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("leaf parameters");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![purpose];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let certificate = params
        .signed_by(&key, &ca.issuer)
        .expect("leaf certificate");
    (certificate, key)
}

/// A leaf certificate chain (leaf, then CA) and its private key, for rustls.
fn leaf(
    ca: &Authority,
    name: &str,
    purpose: ExtendedKeyUsagePurpose,
) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let (certificate, key) = signed(ca, name, purpose);
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (
        vec![certificate.der().clone(), ca.certificate.der().clone()],
        key,
    )
}

/// A client identity signed by `ca`, as one PEM file: the certificate, then its key.
fn identity_pem(ca: &Authority, name: &str) -> String {
    let (certificate, key) = signed(ca, name, ExtendedKeyUsagePurpose::ClientAuth);
    format!("{}{}", certificate.pem(), key.serialize_pem())
}
