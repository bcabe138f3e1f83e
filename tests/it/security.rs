//! Credentials, TLS and exposure, against real servers:
//! - MLflow's own basic-auth server (`mlflow server --app-name basic-auth`): the right
//!   credentials work; wrong or missing ones exit 1 with an error that says authentication
//!   failed and which variables to check;
//! - a bearer token (`MLFLOW_TRACKING_TOKEN`) is sent as `Authorization: Bearer <token>` on
//!   every request (seen by a recording proxy), and username/password win when both are set,
//!   as in MLflow's Python client;
//! - TLS through a local TLS-terminating proxy with a throw-away CA: trusted with
//!   `MLFLOW_TRACKING_SERVER_CERT_PATH`, refused without it (exit 1, a clear error), accepted
//!   with `MLFLOW_TRACKING_INSECURE_TLS=true`;
//! - mutual TLS: a server that requires a client certificate accepts the identity named by
//!   `MLFLOW_TRACKING_CLIENT_CERT_PATH` and refuses none or an untrusted one (exit 1,
//!   nothing applied); a file without its key is a configuration error before any request;
//! - no password, token or `Authorization` value appears in any output at the most verbose
//!   levels (`-vvv`, `RUST_LOG=trace`, JSON logs), for plan, reconcile, versions and a run
//!   whose credentials are refused;
//! - a model name from the registry holding escape sequences is printed escaped;
//! - the daemon listens on loopback unless told otherwise.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mlreg::registry::{Auth, Registry};
use mlreg::stage::Stage;

use crate::support::fleet::{self, Run};
use crate::support::manifest::Manifest;
use crate::support::proxy::{Fault, FaultProxy, RandomFaults};
use crate::support::tls::TlsProxy;
use crate::support::{self, Server};

/// The admin password of the basic-auth server (MLflow wants at least 12 characters).
const ADMIN_PASSWORD: &str = "s3cret-Adm1n-pw-5f1e";

/// A password the basic-auth server refuses.
const WRONG_PASSWORD: &str = "wr0ng-pw-7c2d9a";

/// The bearer token of the token tests.
const TOKEN: &str = "tok-9b1f6e0c-secret";

/// The basic-auth server, started on first use and stopped when the test binary exits.
fn auth_server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        Server::start_with_env(&[
            ("MLFLOW_SERVER_ARGS", "--app-name basic-auth"),
            ("MLFLOW_FLASK_SERVER_SECRET_KEY", "mlreg-test-flask-secret"),
            ("MLFLOW_AUTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ])
    })
}

/// Standard base64 (for the `Authorization: Basic` value a leak would show).
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(bytes[0]) << 16) | (u32::from(bytes[1]) << 8) | u32::from(bytes[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Every form in which a secret could leak: itself, and inside a Basic header value.
fn leak_forms(secrets: &[&str]) -> Vec<String> {
    let mut forms: Vec<String> = secrets.iter().map(|s| (*s).to_owned()).collect();
    for secret in secrets {
        forms.push(base64(format!("admin:{secret}").as_bytes()));
    }
    forms
}

/// Panics if any form of `secrets` appears in the run's output.
#[track_caller]
fn assert_no_secret(run: &Run, secrets: &[&str], context: &str) {
    for form in leak_forms(secrets) {
        assert!(
            !run.stdout.contains(&form) && !run.stderr.contains(&form),
            "{context}: `{form}` appears in the output:\n{}",
            run.output()
        );
    }
}

/// One way to run verbosely: its name, its flags and its environment.
type Verbosity = (
    &'static str,
    Vec<&'static str>,
    Vec<(&'static str, &'static str)>,
);

/// The most verbose ways to run: `-vvv`, `RUST_LOG=trace`, and trace as JSON.
fn verbose_variants() -> Vec<Verbosity> {
    vec![
        ("-vvv", vec!["-vvv"], vec![]),
        ("RUST_LOG=trace", vec![], vec![("RUST_LOG", "trace")]),
        (
            "RUST_LOG=trace, JSON logs",
            vec!["-vvv", "--log-format", "json"],
            vec![("RUST_LOG", "trace")],
        ),
    ]
}

/// `mlreg FLAGS... ARGS...` against `uri` with `env`, from `dir`.
async fn mlreg(uri: &str, env: &[(&str, &str)], flags: &[&str], args: &[&str], dir: &Path) -> Run {
    let mut command = fleet::command(uri);
    command
        .current_dir(dir)
        .envs(env.iter().copied())
        .args(flags)
        .args(args);
    fleet::run(command).await
}

/// A desired-state directory declaring `name` with version 1 in Production.
fn manifests(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::create_dir(dir.path().join("state")).expect("create state/");
    Manifest::model(name)
        .stage(Stage::Production, &[1])
        .write(&dir.path().join("state"), "m.yaml");
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_works_with_the_right_credentials_and_fails_clearly_without_them() {
    let server = auth_server();
    let admin = server.client_with(|config| {
        config.auth = Auth::Basic {
            username: "admin".into(),
            password: ADMIN_PASSWORD.into(),
        };
    });
    let name = support::unique("secure-basic");
    support::seed_model(&admin, &name, 2).await;
    let workspace = manifests(&name);
    let dir = workspace.path();
    let right = [
        ("MLFLOW_TRACKING_USERNAME", "admin"),
        ("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD),
    ];
    let secrets = [ADMIN_PASSWORD, WRONG_PASSWORD];

    // Refused: a wrong password, and no credentials at all.
    for (what, env) in [
        (
            "a wrong password",
            vec![
                ("MLFLOW_TRACKING_USERNAME", "admin"),
                ("MLFLOW_TRACKING_PASSWORD", WRONG_PASSWORD),
            ],
        ),
        ("no credentials", vec![]),
    ] {
        for (level, flags, extra) in verbose_variants() {
            let env: Vec<_> = env.iter().copied().chain(extra).collect();
            let run = mlreg(
                &server.uri,
                &env,
                &flags,
                &["reconcile", "--dir", "state"],
                dir,
            )
            .await;
            let context = format!("{what}, {level}");
            run.assert_no_panic();
            assert_eq!(run.code, Some(1), "{context}:\n{}", run.output());
            assert!(
                run.stderr.contains("HTTP 401") && run.stderr.contains("authentication failed"),
                "{context}: no clear authentication error:\n{}",
                run.output()
            );
            assert!(
                run.stderr.contains("MLFLOW_TRACKING_USERNAME"),
                "{context}: the error does not say what to check:\n{}",
                run.output()
            );
            assert!(run.stderr.contains("nothing was applied"), "{context}");
            assert_no_secret(&run, &secrets, &context);
        }
    }
    let before = admin.model(&name).await.expect("read").expect("exists");
    assert_eq!(
        before.versions[&1].stage,
        Stage::None,
        "nothing was applied"
    );

    // Accepted: plan, reconcile and versions, at every verbose level.
    for (level, flags, extra) in verbose_variants() {
        let env: Vec<_> = right.iter().copied().chain(extra).collect();
        for args in [
            vec!["plan", "--dir", "state"],
            vec!["reconcile", "--dir", "state"],
            vec!["versions", name.as_str()],
        ] {
            let run = mlreg(&server.uri, &env, &flags, &args, dir).await;
            let context = format!("{} with the right credentials, {level}", args[0]);
            run.assert_no_panic();
            assert_eq!(run.code, Some(0), "{context}:\n{}", run.output());
            assert_no_secret(&run, &secrets, &context);
        }
    }
    let after = admin.model(&name).await.expect("read").expect("exists");
    assert_eq!(after.versions[&1].stage, Stage::Production);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_name_from_the_registry_cannot_put_escape_sequences_on_the_terminal() {
    // On the basic-auth server, where no other test lists the models.
    let server = auth_server();
    let admin = server.client_with(|config| {
        config.auth = Auth::Basic {
            username: "admin".into(),
            password: ADMIN_PASSWORD.into(),
        };
    });
    let evil = format!(
        "{}\u{1b}[2J\u{1b}]0;pwned\u{7}",
        support::unique("secure-evil")
    );
    admin
        .create_model(&evil, None, &Default::default())
        .await
        .expect("MLflow accepts the name");
    let name = support::unique("secure-plain");
    support::seed_model(&admin, &name, 1).await;
    let workspace = manifests(&name);
    let env = [
        ("MLFLOW_TRACKING_USERNAME", "admin"),
        ("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD),
    ];
    let run = mlreg(
        &server.uri,
        &env,
        &[],
        &["plan", "--dir", "state"],
        workspace.path(),
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert!(
        run.stdout.contains("Unmanaged models") && run.stdout.contains("\\u{1b}[2J"),
        "the unmanaged model is listed, escaped:\n{}",
        run.output()
    );
    assert!(
        !run.stdout.contains('\u{1b}') && !run.stderr.contains('\u{1b}'),
        "an escape character reached the terminal: {:?}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bearer_token_is_sent_on_every_request_and_never_printed() {
    let server = support::server();
    let client = server.client();
    let name = support::unique("secure-token");
    support::seed_model(&client, &name, 2).await;
    let workspace = manifests(&name);
    let dir = workspace.path();
    let proxy = FaultProxy::start(&server.uri).await;

    for (level, flags, extra) in verbose_variants() {
        let env: Vec<_> = [("MLFLOW_TRACKING_TOKEN", TOKEN)]
            .into_iter()
            .chain(extra)
            .collect();
        for args in [
            vec!["plan", "--dir", "state"],
            vec!["reconcile", "--dir", "state"],
            vec!["versions", name.as_str()],
        ] {
            let start = proxy.recorded().len();
            let run = mlreg(&proxy.uri, &env, &flags, &args, dir).await;
            let context = format!("{} with a token, {level}", args[0]);
            assert_eq!(run.code, Some(0), "{context}:\n{}", run.output());
            assert_no_secret(&run, &[TOKEN], &context);
            let recorded = &proxy.recorded()[start..];
            assert!(
                !recorded.is_empty(),
                "{context}: no request reached the proxy"
            );
            for request in recorded {
                assert_eq!(
                    request.header("authorization").as_deref(),
                    Some(format!("Bearer {TOKEN}").as_str()),
                    "{context}: {} {}",
                    request.method,
                    request.target
                );
            }
        }
    }
    let after = client.model(&name).await.expect("read").expect("exists");
    assert_eq!(after.versions[&1].stage, Stage::Production);

    // Refused (the proxy answers 401, as a gateway checking tokens would).
    proxy.set_random(Some(RandomFaults {
        seed: 0,
        probability: 1.0,
        faults: vec![Fault::status(401)],
        matching: String::new(),
    }));
    for (level, flags, extra) in verbose_variants() {
        let env: Vec<_> = [("MLFLOW_TRACKING_TOKEN", TOKEN)]
            .into_iter()
            .chain(extra)
            .collect();
        let run = mlreg(&proxy.uri, &env, &flags, &["plan", "--dir", "state"], dir).await;
        let context = format!("a refused token, {level}");
        assert_eq!(run.code, Some(1), "{context}:\n{}", run.output());
        assert!(
            run.stderr.contains("authentication failed")
                && run.stderr.contains("MLFLOW_TRACKING_TOKEN"),
            "{context}:\n{}",
            run.output()
        );
        assert_no_secret(&run, &[TOKEN], &context);
    }
    proxy.set_random(None);

    // Username and password win over a token, as in MLflow's Python client.
    let start = proxy.recorded().len();
    let env = [
        ("MLFLOW_TRACKING_TOKEN", TOKEN),
        ("MLFLOW_TRACKING_USERNAME", "admin"),
        ("MLFLOW_TRACKING_PASSWORD", WRONG_PASSWORD),
    ];
    let run = mlreg(
        &proxy.uri,
        &env,
        &["-vvv"],
        &["plan", "--dir", "state"],
        dir,
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert_no_secret(&run, &[TOKEN, WRONG_PASSWORD], "basic and token");
    let expected = format!(
        "Basic {}",
        base64(format!("admin:{WRONG_PASSWORD}").as_bytes())
    );
    for request in &proxy.recorded()[start..] {
        assert_eq!(request.header("authorization"), Some(expected.clone()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_is_verified_against_the_given_ca_refused_without_it_and_skippable_on_request() {
    let server = support::server();
    let client = server.client();
    let name = support::unique("secure-tls");
    support::seed_model(&client, &name, 1).await;
    let workspace = manifests(&name);
    let dir = workspace.path();
    let tls = TlsProxy::start(&server.uri).await;
    let ca = tls.ca_pem.to_string_lossy().into_owned();

    // Trusted through the CA bundle (with a token, which must not leak over TLS either).
    let run = mlreg(
        &tls.uri,
        &[
            ("MLFLOW_TRACKING_SERVER_CERT_PATH", &ca),
            ("MLFLOW_TRACKING_TOKEN", TOKEN),
            ("RUST_LOG", "trace"),
        ],
        &[],
        &["plan", "--dir", "state", "--detailed-exitcode"],
        dir,
    )
    .await;
    assert_eq!(run.code, Some(2), "trusted CA:\n{}", run.output());
    assert!(run.stdout.contains(&name), "{}", run.output());
    assert_no_secret(&run, &[TOKEN], "TLS with a token");
    assert!(tls.handshakes() > 0);

    // Not trusted without it: a clear error, nothing applied.
    let refused_before = tls.failed_handshakes();
    let run = mlreg(&tls.uri, &[], &[], &["reconcile", "--dir", "state"], dir).await;
    run.assert_no_panic();
    assert_eq!(
        run.code,
        Some(1),
        "untrusted certificate:\n{}",
        run.output()
    );
    let error = error_line(&run);
    assert!(
        error.contains("nothing was applied") && error.contains("invalid peer certificate"),
        "no clear TLS error:\n{}",
        run.output()
    );
    assert!(
        tls.failed_handshakes() > refused_before,
        "the handshake was refused"
    );
    let model = client.model(&name).await.expect("read").expect("exists");
    assert_eq!(model.versions[&1].stage, Stage::None);

    // Verification off on request.
    let run = mlreg(
        &tls.uri,
        &[("MLFLOW_TRACKING_INSECURE_TLS", "true")],
        &[],
        &["reconcile", "--dir", "state"],
        dir,
    )
    .await;
    assert_eq!(run.code, Some(0), "insecure TLS:\n{}", run.output());
    let model = client.model(&name).await.expect("read").expect("exists");
    assert_eq!(model.versions[&1].stage, Stage::Production);

    // Both at once is a configuration error, as in MLflow.
    let run = mlreg(
        &tls.uri,
        &[
            ("MLFLOW_TRACKING_INSECURE_TLS", "true"),
            ("MLFLOW_TRACKING_SERVER_CERT_PATH", &ca),
        ],
        &[],
        &["plan", "--dir", "state"],
        dir,
    )
    .await;
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert!(
        run.stderr.contains("cannot both be set"),
        "{}",
        run.output()
    );
}

/// The first `error:` line of a run.
fn error_line(run: &Run) -> &str {
    run.stderr
        .lines()
        .find(|line| line.starts_with("error:"))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_certificate_is_presented_when_the_server_requires_one() {
    let server = support::server();
    let client = server.client();
    let name = support::unique("secure-mtls");
    support::seed_model(&client, &name, 1).await;
    let workspace = manifests(&name);
    let dir = workspace.path();
    let tls = TlsProxy::start_requiring_client_certificates(&server.uri).await;
    let ca = tls.ca_pem.to_string_lossy().into_owned();
    let path = |pem: &Option<std::path::PathBuf>| {
        pem.as_ref()
            .expect("client identities")
            .to_string_lossy()
            .into_owned()
    };
    let (identity, stranger) = (path(&tls.client_pem), path(&tls.stranger_pem));
    let stage = || async {
        let model = client.model(&name).await.expect("read").expect("exists");
        model.versions[&1].stage
    };

    // No certificate, or one from a CA the server does not trust: refused, nothing applied.
    for (case, env) in [
        ("no client certificate", vec![]),
        (
            "an untrusted client certificate",
            vec![("MLFLOW_TRACKING_CLIENT_CERT_PATH", stranger.as_str())],
        ),
    ] {
        let mut env = env;
        env.push(("MLFLOW_TRACKING_SERVER_CERT_PATH", ca.as_str()));
        let run = mlreg(&tls.uri, &env, &[], &["reconcile", "--dir", "state"], dir).await;
        run.assert_no_panic();
        assert_eq!(run.code, Some(1), "{case}:\n{}", run.output());
        assert!(
            error_line(&run).contains("nothing was applied"),
            "{case}: no clear error:\n{}",
            run.output()
        );
        assert_eq!(stage().await, Stage::None, "{case}");
    }

    // A file with the certificate but not its key: a configuration error naming the
    // variable, before any request.
    let identity_text = std::fs::read_to_string(&identity).expect("client.pem");
    let key_at = identity_text
        .find("-----BEGIN PRIVATE KEY-----")
        .expect("the key follows the certificate");
    let certificate_only = dir.join("certificate-only.pem");
    std::fs::write(&certificate_only, &identity_text[..key_at]).expect("write");
    let handshakes = tls.handshakes();
    let run = mlreg(
        &tls.uri,
        &[
            ("MLFLOW_TRACKING_SERVER_CERT_PATH", &ca),
            (
                "MLFLOW_TRACKING_CLIENT_CERT_PATH",
                &certificate_only.to_string_lossy(),
            ),
        ],
        &[],
        &["reconcile", "--dir", "state"],
        dir,
    )
    .await;
    assert_eq!(run.code, Some(1), "{}", run.output());
    let error = error_line(&run);
    assert!(
        error.contains("MLFLOW_TRACKING_CLIENT_CERT_PATH") && error.contains("private key"),
        "{}",
        run.output()
    );
    assert_eq!(tls.handshakes(), handshakes, "no connection was made");

    // The trusted identity: applied. Its key never shows, even at trace level.
    let key_line = identity_text[key_at..]
        .lines()
        .nth(1)
        .expect("a line of key material")
        .to_owned();
    let run = mlreg(
        &tls.uri,
        &[
            ("MLFLOW_TRACKING_SERVER_CERT_PATH", &ca),
            ("MLFLOW_TRACKING_CLIENT_CERT_PATH", &identity),
            ("RUST_LOG", "trace"),
        ],
        &[],
        &["reconcile", "--dir", "state"],
        dir,
    )
    .await;
    assert_eq!(run.code, Some(0), "trusted identity:\n{}", run.output());
    assert_eq!(stage().await, Stage::Production);
    assert!(tls.handshakes() > handshakes);
    assert_no_secret(&run, &[&key_line], "mutual TLS");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_listens_on_loopback_by_default() {
    let help = mlreg(
        "http://127.0.0.1:9",
        &[],
        &[],
        &["watch", "--help"],
        Path::new("."),
    )
    .await;
    assert_eq!(help.code, Some(0), "{}", help.output());
    assert!(
        help.stdout.contains("[default: 127.0.0.1:9464]"),
        "{}",
        help.stdout
    );

    // Started without --listen (and no MLREG_LISTEN): the start-up line names the address.
    // The registry is unreachable, which the daemon survives.
    let workspace = manifests("loopback");
    let mut command = fleet::command("http://127.0.0.1:9");
    command
        .current_dir(workspace.path())
        .env("RUST_LOG", "info")
        .args(["watch", "--log-format", "json", "--dir", "state"])
        .stdout(Stdio::null());
    let mut child = command.spawn().expect("start mlreg watch");
    let stderr = child.stderr.take().expect("stderr");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut seen = Vec::new();
    let outcome = loop {
        match lines_rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                seen.push(line);
                if let Some(address) = entry["fields"]["listen"].as_str() {
                    break Ok(address.to_owned());
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break Err(seen.join("\n")),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no start-up line:\n{}",
            seen.join("\n")
        );
    };
    let _ = child.kill();
    let _ = child.wait();
    match outcome {
        Ok(address) => assert_eq!(address, "127.0.0.1:9464"),
        // Another process holds the port: the error still names the loopback address.
        Err(output) => assert!(
            output.contains("cannot listen on 127.0.0.1:9464"),
            "the daemon neither started nor said why:\n{output}"
        ),
    }
}
