//! MLflow webhooks into `mlreg watch`, end to end: a dedicated MLflow server (started with
//! webhooks allowed to loopback, and a fixed secret-encryption key) sends its signed
//! deliveries to the daemon's `POST /hooks/mlflow`; an alias moved by hand is reverted
//! (`--self-heal`) within seconds although the resync interval is an hour. Forged, stale
//! and replayed deliveries are answered 401 and counted, and change nothing.

use std::process::Command;
use std::time::{Duration, Instant};

use mlreg::daemon::webhook;
use mlreg::registry::Registry as _;

use crate::support::daemon::{DEADLINE, Daemon};
use crate::support::manifest::Manifest;
use crate::support::{self, Server};

const SECRET: &str = "webhook-secret-for-tests";

/// A dedicated server whose webhooks may call a daemon on loopback over plain HTTP.
fn webhook_server() -> Server {
    Server::start_with_env(&[
        ("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https"),
        ("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true"),
        ("MLFLOW_WEBHOOK_CACHE_TTL", "1"),
        (
            "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY",
            "7V9UnhJpcWQX2yNnHq329HPu07k76FuA26c2SRlsqCo=",
        ),
    ])
}

/// The daemon against `server`, with webhooks verified by [`SECRET`] and an hourly resync
/// (so only a webhook can make it reconcile within the test).
fn daemon(server: &Server, dir: &std::path::Path) -> Daemon {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mlreg"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("MLFLOW_TRACKING_URI", &server.uri)
        .env("MLREG_REQUEST_TIMEOUT", "10s")
        .env("NO_COLOR", "1")
        .env("HOOK_SECRET", SECRET);
    Daemon::spawn(
        command,
        dir,
        &[
            "--interval",
            "1h",
            "--self-heal",
            "--mlflow-webhook-secret-env",
            "HOOK_SECRET",
        ],
    )
}

/// POSTs `body` to the daemon's hook with the given headers; returns the status code.
async fn post_hook(daemon: &Daemon, headers: &[(&str, String)], body: &str) -> u16 {
    let url = format!("http://{}/hooks/mlflow", daemon.address);
    let client = reqwest::Client::new();
    let mut request = client.post(url).body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request
        .send()
        .await
        .map(|response| response.status().as_u16())
        .unwrap_or(0)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alias_moved_by_hand_is_healed_on_mlflows_webhook_within_seconds() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = webhook_server();
    let client = server.client();
    let name = support::unique("webhook-heal");
    support::seed_model(&client, &name, 2).await;
    let dir = tempfile::tempdir().expect("temp dir");
    Manifest::model(&name)
        .alias("champion", 1)
        .write(dir.path(), "m.yaml");
    let mut daemon = daemon(&server, dir.path());
    daemon
        .wait_for("the startup reconcile", || async {
            client
                .model(&name)
                .await
                .ok()
                .flatten()
                .is_some_and(|model| model.aliases.get("champion") == Some(&1))
        })
        .await;
    daemon.wait_for_readyz(200).await;

    // The webhook MLflow will call, created through its REST API.
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{}/api/2.0/mlflow/webhooks", server.uri))
        .json(&serde_json::json!({
            "name": "mlreg-test",
            "url": format!("http://{}/hooks/mlflow", daemon.address),
            "events": [
                {"entity": "MODEL_VERSION_ALIAS", "action": "CREATED"},
                {"entity": "MODEL_VERSION_ALIAS", "action": "DELETED"}
            ],
            "secret": SECRET,
        }))
        .send()
        .await
        .expect("create the webhook");
    assert!(
        created.status().is_success(),
        "create webhook: {}",
        created.text().await.unwrap_or_default()
    );

    // MLflow caches the webhooks of an event for MLFLOW_WEBHOOK_CACHE_TTL (1 s here); the
    // startup reconcile's alias write cached "none", so let that expire.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Drift made by hand: the resync is an hour away, so only the webhook can heal it.
    let moved = Instant::now();
    client
        .set_alias(&name, "champion", 2)
        .await
        .expect("move the alias by hand");
    daemon
        .wait_for("the webhook-triggered heal", || async {
            client
                .model(&name)
                .await
                .ok()
                .flatten()
                .is_some_and(|model| model.aliases.get("champion") == Some(&1))
        })
        .await;
    assert!(moved.elapsed() < DEADLINE, "healed long before the resync");
    assert!(daemon.metric("mlreg_webhook_received_total").await >= 1.0);
    let status = daemon.status().await;
    assert_eq!(status["last_reconcile"]["trigger"], "webhook", "{status:#}");

    // Forged, stale and replayed deliveries: 401, counted, nothing reconciled.
    let reconciles = daemon.reconciles().await;
    let body = format!(
        r#"{{"entity": "model_version_alias", "action": "created", "data": {{"name": "{name}", "alias": "champion", "version": "2"}}}}"#
    );
    let timestamp = now().to_string();
    let forged = webhook::sign(b"wrong secret", "forged-1", &timestamp, body.as_bytes());
    let headers = |id: &str, timestamp: &str, signature: String| {
        vec![
            (webhook::DELIVERY_ID_HEADER, id.to_owned()),
            (webhook::TIMESTAMP_HEADER, timestamp.to_owned()),
            (webhook::SIGNATURE_HEADER, signature),
        ]
    };
    assert_eq!(
        post_hook(&daemon, &headers("forged-1", &timestamp, forged), &body).await,
        401
    );
    let old = (now() - 3600).to_string();
    let stale = webhook::sign(SECRET.as_bytes(), "stale-1", &old, body.as_bytes());
    assert_eq!(
        post_hook(&daemon, &headers("stale-1", &old, stale), &body).await,
        401
    );
    let genuine = webhook::sign(SECRET.as_bytes(), "ours-1", &timestamp, body.as_bytes());
    assert_eq!(
        post_hook(
            &daemon,
            &headers("ours-1", &timestamp, genuine.clone()),
            &body
        )
        .await,
        202
    );
    assert_eq!(
        post_hook(&daemon, &headers("ours-1", &timestamp, genuine), &body).await,
        401,
        "a replayed delivery id"
    );
    assert_eq!(post_hook(&daemon, &[], &body).await, 401);
    let metrics = daemon.metrics().await;
    for reason in ["bad_signature", "stale", "replayed", "missing_header"] {
        let series = format!("mlreg_webhook_refused_total{{reason=\"{reason}\"}}");
        assert_eq!(
            crate::support::daemon::metric_value(&metrics, &series),
            1.0,
            "{series}\n{metrics}"
        );
    }
    // The one genuine delivery triggers one reconcile; the refused ones none.
    let started = Instant::now();
    while daemon.reconciles().await < reconciles + 1.0 {
        assert!(started.elapsed() < DEADLINE, "{}", daemon.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        daemon.reconciles().await,
        reconciles + 1.0,
        "{}",
        daemon.logs()
    );
    assert_eq!(daemon.terminate(), 0, "{}", daemon.logs());
}

#[test]
fn a_missing_webhook_secret_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    Manifest::model("m").write(dir.path(), "m.yaml");
    let (code, _, stderr) = support::output(
        support::offline()
            .args(["watch", "--mlflow-webhook-secret-env", "NOT_SET_ANYWHERE"])
            .arg("--dir")
            .arg(dir.path()),
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("names `NOT_SET_ANYWHERE`, which is not set"),
        "{stderr}"
    );
}
