//! MLflow webhooks into `mlreg watch`, end to end: a dedicated MLflow server (started with
//! webhooks allowed to loopback, and a fixed secret-encryption key) sends its signed
//! deliveries to the daemon's `POST /hooks/mlflow`; an alias moved by hand is reverted
//! (`--self-heal`) within seconds although the resync interval is an hour. Forged, stale
//! and replayed deliveries are answered 401 and counted, and change nothing; events for
//! unmanaged models are ignored and a burst is fewer reconciles than events.
//! `--register-mlflow-webhook` keeps one webhook of its name across restarts (updated when
//! its URL, events or secret changed), survives faults without creating a second, and on a
//! server without the webhook API logs it once and keeps polling.

use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mlreg::daemon::webhook;
use mlreg::registry::Registry as _;
use mlreg::registry::mlflow::{MlflowClient, Webhook};

use crate::support::daemon::{DEADLINE, Daemon};
use crate::support::manifest::Manifest;
use crate::support::proxy::{Fault, FaultProxy};
use crate::support::{self, Server};

const SECRET: &str = "webhook-secret-for-tests";

/// The server of this module's tests (started on first use), whose webhooks may call a
/// daemon on loopback over plain HTTP. Tests keep apart by model and webhook names; a
/// daemon ignores the events of the models it does not manage.
fn webhook_server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        Server::start_with_env(&[
            ("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https"),
            ("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true"),
            ("MLFLOW_WEBHOOK_CACHE_TTL", "1"),
            (
                "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY",
                "7V9UnhJpcWQX2yNnHq329HPu07k76FuA26c2SRlsqCo=",
            ),
        ])
    })
}

/// The daemon against `server`, with webhooks verified by [`SECRET`] and an hourly resync
/// (so only a webhook can make it reconcile within the test).
fn daemon(server: &Server, dir: &std::path::Path) -> Daemon {
    daemon_with(&server.uri, SECRET, dir, &[])
}

/// The daemon against `registry_uri` with the webhook secret `secret`, an hourly resync,
/// `--self-heal`, and `extra` arguments.
fn daemon_with(registry_uri: &str, secret: &str, dir: &std::path::Path, extra: &[&str]) -> Daemon {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mlreg"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("MLFLOW_TRACKING_URI", registry_uri)
        .env("MLREG_REQUEST_TIMEOUT", "10s")
        .env("MLREG_RETRY_MIN_BACKOFF", "50ms")
        .env("NO_COLOR", "1")
        .env("HOOK_SECRET", secret);
    let mut args = vec![
        "--interval",
        "1h",
        "--self-heal",
        "--mlflow-webhook-secret-env",
        "HOOK_SECRET",
    ];
    args.extend_from_slice(extra);
    Daemon::spawn(command, dir, &args)
}

/// A loopback port nothing listens on now (to tell MLflow before the daemon binds it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// The server's webhooks named `name`.
async fn webhooks_named(client: &MlflowClient, name: &str) -> Vec<Webhook> {
    client
        .list_webhooks()
        .await
        .expect("list the webhooks")
        .into_iter()
        .filter(|webhook| webhook.name == name)
        .collect()
}

/// The events of `webhook` as `entity.action`, sorted.
fn events_of(webhook: &Webhook) -> Vec<String> {
    let mut events: Vec<String> = webhook
        .events
        .iter()
        .map(|event| format!("{}.{}", event.entity, event.action).to_ascii_lowercase())
        .collect();
    events.sort();
    events
}

const REGISTERED_EVENTS: [&str; 6] = [
    "model_version.created",
    "model_version_alias.created",
    "model_version_alias.deleted",
    "model_version_tag.deleted",
    "model_version_tag.set",
    "registered_model.created",
];

/// Waits until `/metrics` says the daemon's webhook is registered.
async fn wait_registered(daemon: &mut Daemon) {
    let address = daemon.address.clone();
    daemon
        .wait_for("the webhook registration", || {
            let address = address.clone();
            async move {
                let (_, body) = crate::support::daemon::http_get(&address, "/metrics")
                    .await
                    .unwrap_or_default();
                crate::support::daemon::metric_value(&body, "mlreg_mlflow_webhook_registered")
                    == 1.0
            }
        })
        .await;
}

/// Moves `@champion` of `name` to 2 by hand and waits for the daemon to move it back to 1,
/// which only a webhook can make it do within the test (the resync is an hour away).
async fn move_by_hand_and_wait_for_the_heal(
    client: &MlflowClient,
    name: &str,
    daemon: &mut Daemon,
) {
    // MLflow caches the webhooks of an event for MLFLOW_WEBHOOK_CACHE_TTL (1 s here): let
    // what it cached before the webhook was created or changed expire.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let reconciles = daemon.reconciles().await;
    client
        .set_alias(name, "champion", 2)
        .await
        .expect("move the alias by hand");
    daemon
        .wait_for("the webhook-triggered heal", || async {
            client
                .model(name)
                .await
                .ok()
                .flatten()
                .is_some_and(|model| model.aliases.get("champion") == Some(&1))
        })
        .await;
    wait_for_a_webhook_reconcile(daemon).await;
    assert!(daemon.reconciles().await > reconciles);
}

/// Waits until `/status` says the last reconcile was a webhook's (the registry shows a
/// heal a little before the reconcile that made it is recorded).
async fn wait_for_a_webhook_reconcile(daemon: &mut Daemon) {
    let address = daemon.address.clone();
    daemon
        .wait_for("a reconcile triggered by a webhook", || {
            let address = address.clone();
            async move {
                let (_, body) = crate::support::daemon::http_get(&address, "/status")
                    .await
                    .unwrap_or_default();
                serde_json::from_str::<serde_json::Value>(&body)
                    .is_ok_and(|status| status["last_reconcile"]["trigger"] == "webhook")
            }
        })
        .await;
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
    let mut daemon = daemon(server, dir.path());
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
    wait_for_a_webhook_reconcile(&mut daemon).await;

    // The heal's own writes (the alias, its audit tag) come back as webhooks too, and each
    // burst of them is one more reconcile that finds nothing to do: let them arrive (three
    // deliveries in all, with the hand move) and settle before counting.
    let started = Instant::now();
    while daemon.metric("mlreg_webhook_received_total").await < 3.0 {
        assert!(started.elapsed() < DEADLINE, "{}", daemon.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

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
    for hook in webhooks_named(&client, "mlreg-test").await {
        client
            .delete_webhook(&hook.webhook_id)
            .await
            .expect("delete the webhook");
    }
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

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_keeps_one_registered_webhook_across_restarts_and_mlflow_delivers_to_it() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = webhook_server();
    let client = server.client();
    let name = support::unique("hook-registered");
    support::seed_model(&client, &name, 2).await;
    let dir = tempfile::tempdir().expect("temp dir");
    Manifest::model(&name)
        .alias("champion", 1)
        .write(dir.path(), "m.yaml");
    let hook = support::unique("hook");
    let start = |port: u16, secret: &str| {
        let listen = format!("127.0.0.1:{port}");
        let url = format!("http://{listen}/hooks/mlflow");
        let daemon = daemon_with(
            &server.uri,
            secret,
            dir.path(),
            &[
                "--listen",
                &listen,
                "--register-mlflow-webhook",
                &url,
                "--mlflow-webhook-name",
                &hook,
            ],
        );
        (daemon, url)
    };

    // First start: created, with every registry event MLflow sends for models.
    let port = free_port();
    let (mut daemon, url) = start(port, SECRET);
    wait_registered(&mut daemon).await;
    let ours = webhooks_named(&client, &hook).await;
    assert_eq!(ours.len(), 1, "{ours:#?}");
    let id = ours[0].webhook_id.clone();
    assert_eq!(ours[0].url, url);
    assert_eq!(ours[0].status, "ACTIVE");
    assert_eq!(events_of(&ours[0]), REGISTERED_EVENTS);
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
    move_by_hand_and_wait_for_the_heal(&client, &name, &mut daemon).await;
    assert_eq!(daemon.terminate(), 0, "{}", daemon.logs());

    // Someone disables it and trims its events; a restart puts it back, still one webhook.
    let http = reqwest::Client::new();
    let patched = http
        .patch(format!("{}/api/2.0/mlflow/webhooks/{id}", server.uri))
        .json(&serde_json::json!({
            "status": "DISABLED",
            "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}],
        }))
        .send()
        .await
        .expect("patch the webhook");
    assert!(patched.status().is_success());
    let (mut daemon, _) = start(port, SECRET);
    wait_registered(&mut daemon).await;
    let ours = webhooks_named(&client, &hook).await;
    assert_eq!(ours.len(), 1, "{ours:#?}");
    assert_eq!(ours[0].webhook_id, id, "updated, not created again");
    assert_eq!(ours[0].status, "ACTIVE");
    assert_eq!(events_of(&ours[0]), REGISTERED_EVENTS);
    assert!(
        daemon.logs().contains("updated the MLflow webhook"),
        "{}",
        daemon.logs()
    );
    assert_eq!(daemon.terminate(), 0, "{}", daemon.logs());

    // Another address and a rotated secret: the same webhook, updated; MLflow now signs with
    // the new secret, which the daemon verifies (a delivery signed with the old one would
    // be refused, and nothing would heal before the hourly resync).
    let (mut daemon, moved_url) = start(free_port(), "a-rotated-secret");
    wait_registered(&mut daemon).await;
    let ours = webhooks_named(&client, &hook).await;
    assert_eq!(ours.len(), 1, "{ours:#?}");
    assert_eq!(ours[0].webhook_id, id);
    assert_eq!(ours[0].url, moved_url);
    move_by_hand_and_wait_for_the_heal(&client, &name, &mut daemon).await;
    assert_eq!(
        daemon
            .metric("mlreg_webhook_refused_total{reason=\"bad_signature\"}")
            .await,
        0.0
    );
    assert_eq!(daemon.terminate(), 0, "{}", daemon.logs());
    client
        .delete_webhook(&id)
        .await
        .expect("delete the webhook");
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_through_faults_is_retried_and_never_creates_two_webhooks() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = webhook_server();
    let client = server.client();
    let proxy = FaultProxy::start(&server.uri).await;
    let pass = || Fault::Delay(Duration::ZERO);
    proxy.push_matching(
        "mlflow/webhooks",
        [
            // The list: a 503, retried by the client.
            Fault::status(503),
            pass(),
            // The create: the connection cut before it reached the server; the next round
            // lists again (nothing there) and creates again.
            Fault::Close,
            pass(),
            // This create reaches the server, but its answer is lost: the next round must
            // find the webhook rather than create a second.
            Fault::ForwardThenClose,
            pass(),
            // Its update: a 503, retried.
            Fault::status(503),
        ],
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let name = support::unique("hook-faults");
    support::seed_model(&client, &name, 1).await;
    Manifest::model(&name)
        .alias("champion", 1)
        .write(dir.path(), "m.yaml");
    let hook = support::unique("hook");
    let url = format!("http://127.0.0.1:{}/hooks/mlflow", free_port());
    let mut daemon = daemon_with(
        &proxy.uri,
        SECRET,
        dir.path(),
        &[
            "--register-mlflow-webhook",
            &url,
            "--mlflow-webhook-name",
            &hook,
        ],
    );
    wait_registered(&mut daemon).await;
    assert_eq!(proxy.pending(), 0, "every fault was met");
    let ours = webhooks_named(&client, &hook).await;
    assert_eq!(ours.len(), 1, "{ours:#?}\n{}", daemon.logs());
    assert_eq!(ours[0].url, url);
    let sent: Vec<(String, Option<Fault>)> = proxy
        .recorded()
        .into_iter()
        .filter(|request| request.target.contains("mlflow/webhooks"))
        .map(|request| (request.method, request.fault))
        .collect();
    let creates = sent.iter().filter(|(method, _)| method == "POST").count();
    assert_eq!(
        creates, 2,
        "one cut before the server, one answer lost: {sent:#?}"
    );
    let updates = sent.iter().filter(|(method, _)| method == "PATCH").count();
    assert_eq!(
        updates, 2,
        "the update, refused once then sent again: {sent:#?}"
    );
    // The daemon reconciled meanwhile, registration or not.
    daemon.wait_for_readyz(200).await;
    assert_eq!(daemon.terminate(), 0, "{}", daemon.logs());
    client
        .delete_webhook(&ours[0].webhook_id)
        .await
        .expect("delete the webhook");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_without_the_webhook_api_is_logged_once_and_the_daemon_keeps_polling() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = webhook_server();
    let client = server.client();
    // MLflow 2.x has no webhook API: its answer, given by the proxy.
    let proxy = FaultProxy::start(&server.uri).await;
    proxy.push_matching(
        "mlflow/webhooks",
        std::iter::repeat_n(
            Fault::Refuse {
                status: 404,
                code: "ENDPOINT_NOT_FOUND",
            },
            5,
        ),
    );
    let name = support::unique("hook-missing-api");
    support::seed_model(&client, &name, 1).await;
    let dir = tempfile::tempdir().expect("temp dir");
    Manifest::model(&name)
        .alias("champion", 1)
        .write(dir.path(), "m.yaml");
    let hook = support::unique("hook");
    let mut command = Command::new(env!("CARGO_BIN_EXE_mlreg"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("MLFLOW_TRACKING_URI", &proxy.uri)
        .env("MLREG_REQUEST_TIMEOUT", "10s")
        .env("NO_COLOR", "1")
        .env("HOOK_SECRET", SECRET);
    let mut daemon = Daemon::spawn(
        command,
        dir.path(),
        &[
            "--interval",
            "1s",
            "--mlflow-webhook-secret-env",
            "HOOK_SECRET",
            "--register-mlflow-webhook",
            "http://127.0.0.1:9/hooks/mlflow",
            "--mlflow-webhook-name",
            &hook,
        ],
    );
    let said = |daemon: &Daemon| {
        daemon
            .log_lines()
            .iter()
            .filter(|line| line.contains("has no webhook API"))
            .count()
    };
    let started = Instant::now();
    while said(&daemon) == 0 {
        assert!(started.elapsed() < DEADLINE, "{}", daemon.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // It keeps polling: resyncs go on, and the webhook API is not asked again.
    daemon.wait_for_reconciles(3.0).await;
    daemon.wait_for_readyz(200).await;
    assert_eq!(said(&daemon), 1, "{}", daemon.logs());
    let asked = proxy
        .recorded()
        .iter()
        .filter(|request| request.target.contains("mlflow/webhooks"))
        .count();
    assert_eq!(asked, 1, "one list, refused, then no retry");
    assert_eq!(daemon.metric("mlreg_mlflow_webhook_registered").await, 0.0);
    assert!(webhooks_named(&client, &hook).await.is_empty());
    assert_eq!(daemon.terminate(), 0, "{}", daemon.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unmanaged_models_event_is_ignored_and_a_burst_is_fewer_reconciles_than_events() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = webhook_server();
    let client = server.client();
    let name = support::unique("hook-burst");
    support::seed_model(&client, &name, 1).await;
    let dir = tempfile::tempdir().expect("temp dir");
    Manifest::model(&name)
        .alias("champion", 1)
        .write(dir.path(), "m.yaml");
    let mut daemon = daemon(server, dir.path());
    daemon.wait_for_readyz(200).await;
    let signed = |model: &str, id: &str| {
        let body = format!(
            r#"{{"entity": "model_version_alias", "action": "created", "data": {{"name": "{model}", "alias": "champion", "version": "1"}}}}"#
        );
        let timestamp = now().to_string();
        let signature = webhook::sign(SECRET.as_bytes(), id, &timestamp, body.as_bytes());
        let headers = vec![
            (webhook::DELIVERY_ID_HEADER, id.to_owned()),
            (webhook::TIMESTAMP_HEADER, timestamp),
            (webhook::SIGNATURE_HEADER, signature),
        ];
        (headers, body)
    };
    let reconciles = daemon.reconciles().await;

    // A genuine event about a model no manifest declares: accepted, ignored.
    let (headers, body) = signed("someone-elses-model", "unmanaged-1");
    assert_eq!(post_hook(&daemon, &headers, &body).await, 202);
    let address = daemon.address.clone();
    daemon
        .wait_for("the event to be ignored", || {
            let address = address.clone();
            async move {
                let (_, body) = crate::support::daemon::http_get(&address, "/metrics")
                    .await
                    .unwrap_or_default();
                crate::support::daemon::metric_value(&body, "mlreg_webhook_ignored_total") == 1.0
            }
        })
        .await;
    assert_eq!(daemon.reconciles().await, reconciles, "{}", daemon.logs());

    // A burst about the managed model, all at once: coalesced.
    const BURST: usize = 10;
    let posts = (0..BURST).map(|n| {
        let (headers, body) = signed(&name, &format!("burst-{n}"));
        let daemon = &daemon;
        async move { post_hook(daemon, &headers, &body).await }
    });
    let answers = futures_util::future::join_all(posts).await;
    assert!(answers.iter().all(|status| *status == 202), "{answers:?}");
    daemon.wait_for_reconciles(1.0).await;
    // Let the loop drain what it queued.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ran = daemon.reconciles().await - reconciles;
    assert!(
        ran >= 1.0 && ran < BURST as f64,
        "{ran} reconciles for {BURST} events:\n{}",
        daemon.logs()
    );
    assert_eq!(
        daemon.metric("mlreg_webhook_received_total").await,
        (BURST + 1) as f64
    );
    assert_eq!(daemon.terminate(), 0, "{}", daemon.logs());
}

#[test]
fn registering_needs_the_secret_and_a_name_mlflow_accepts() {
    let dir = tempfile::tempdir().expect("temp dir");
    Manifest::model("m").write(dir.path(), "m.yaml");
    let (code, _, stderr) = support::output(
        support::offline()
            .args([
                "watch",
                "--register-mlflow-webhook",
                "http://mlreg:9464/hooks/mlflow",
            ])
            .arg("--dir")
            .arg(dir.path()),
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("--mlflow-webhook-secret-env"), "{stderr}");
    let (code, _, stderr) = support::output(
        support::offline()
            .env("HOOK_SECRET", SECRET)
            .args([
                "watch",
                "--mlflow-webhook-secret-env",
                "HOOK_SECRET",
                "--register-mlflow-webhook",
                "http://mlreg:9464/hooks/mlflow",
                "--mlflow-webhook-name",
                "not a name!",
            ])
            .arg("--dir")
            .arg(dir.path()),
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("letters, digits, `.`, `_` and `-`"),
        "{stderr}"
    );
}
