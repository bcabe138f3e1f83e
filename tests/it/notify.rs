//! Notifications from `mlreg reconcile --notify URL` against the real MLflow server, into a
//! local receiver that can refuse: `applied` after a reconcile (signed with
//! `MLREG_NOTIFY_SECRET`, retried after a 503 and delivered once), `invalid` for broken
//! manifests, and a receiver that is down never fails or changes the run. From `mlreg
//! watch --notify`: failed, applied, blocked, drift and invalid, each once however many
//! resyncs see the same situation, signed, and counted on `/metrics`.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use mlreg::registry::Registry as _;
use mlreg::stage::Stage;
use ring::hmac;

use crate::support::daemon::{DEADLINE, Daemon};
use crate::support::manifest::Manifest;
use crate::support::proxy::{Fault, FaultProxy};
use crate::support::{self, output};

/// What the receiver saw: (signature header, body, the status it answered).
type Seen = Arc<Mutex<Vec<(Option<String>, String, u16)>>>;

/// A receiver on a free loopback port that answers 503 to its first `refuse` requests and
/// 200 after; returns its URL and what it saw.
async fn receiver(refuse: usize) -> (String, Seen) {
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let state = (Arc::clone(&seen), refuse);
    let app =
        Router::new()
            .route(
                "/hook",
                post(
                    |State((seen, refuse)): State<(Seen, usize)>,
                     headers: HeaderMap,
                     body: Bytes| async move {
                        let mut seen = seen.lock().expect("lock");
                        let status = if seen.len() < refuse { 503 } else { 200 };
                        seen.push((
                            headers
                                .get("x-mlreg-signature")
                                .and_then(|value| value.to_str().ok())
                                .map(str::to_owned),
                            String::from_utf8_lossy(&body).into_owned(),
                            status,
                        ));
                        StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
                    },
                ),
            )
            .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the receiver");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{address}/hook"), seen)
}

fn hex_hmac(secret: &[u8], body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, body);
    let mut hex = String::from("sha256=");
    for byte in tag.as_ref() {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

#[tokio::test(flavor = "multi_thread")]
async fn an_applied_reconcile_is_notified_once_signed_after_a_refusal() {
    let client = support::client();
    let name = support::unique("notify-applied");
    support::seed_model(&client, &name, 2).await;
    let dir = tempfile::tempdir().expect("temp dir");
    Manifest::model(&name)
        .stage(Stage::Production, &[2])
        .alias("champion", 2)
        .write(dir.path(), "m.yaml");
    let (url, seen) = receiver(1).await;

    let mut command = support::mlreg();
    command
        .env("MLREG_NOTIFY_SECRET", "notify-secret")
        .args(["reconcile", "--notify", &url, "--dir"])
        .arg(dir.path());
    let (code, stdout, stderr) = output(&mut command);
    assert_eq!(code, 0, "{stdout}\n{stderr}");

    let seen = seen.lock().expect("lock").clone();
    assert_eq!(
        seen.iter()
            .map(|(_, _, status)| *status)
            .collect::<Vec<_>>(),
        [503, 200],
        "refused once, then delivered once: {seen:#?}"
    );
    let (signature, body, _) = &seen[1];
    assert_eq!(seen[0].1, *body, "the retry sends the same body");
    assert_eq!(
        signature.as_deref(),
        Some(hex_hmac(b"notify-secret", body.as_bytes()).as_str())
    );
    let event: serde_json::Value = serde_json::from_str(body).expect("JSON body");
    assert_eq!(event["format_version"], "1");
    assert_eq!(event["event"], "applied");
    assert_eq!(event["model"], name.as_str());
    let kinds: Vec<&str> = event["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|change| change["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["transition", "set_alias"], "{event:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_manifests_are_notified_and_a_dead_receiver_changes_nothing() {
    // Invalid manifests: `invalid`, in Slack's shape.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("m.yaml"),
        "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: m\nspec:\n  stages: {Prod: 1}\n",
    )
    .expect("write");
    let (url, seen) = receiver(0).await;
    let (code, _, stderr) = output(
        support::mlreg()
            .args([
                "reconcile",
                "--notify",
                &url,
                "--notify-format",
                "slack",
                "--dir",
            ])
            .arg(dir.path()),
    );
    assert_eq!(code, 1, "{stderr}");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    let message: serde_json::Value = serde_json::from_str(&seen[0].1).expect("JSON body");
    assert!(
        message["text"]
            .as_str()
            .is_some_and(|text| text.starts_with("mlreg: invalid")),
        "{message}"
    );
    assert_eq!(seen[0].0, None, "unsigned without MLREG_NOTIFY_SECRET");

    // A receiver that is down: the reconcile still applies and exits 0.
    let client = support::client();
    let name = support::unique("notify-dead");
    support::seed_model(&client, &name, 1).await;
    let dir = tempfile::tempdir().expect("temp dir");
    Manifest::model(&name)
        .stage(Stage::Staging, &[1])
        .write(dir.path(), "m.yaml");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}/hook", closed.local_addr().expect("address"));
    drop(closed);
    let (code, stdout, stderr) = output(
        support::mlreg()
            .args(["reconcile", "--notify", &dead, "--dir"])
            .arg(dir.path()),
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let model = support::read_model(&client, &name).await;
    assert_eq!(support::stages(&model), [(1, Stage::Staging)]);
}

/// The delivered bodies (answered 200) as JSON, with their signatures.
fn delivered(seen: &Seen) -> Vec<(Option<String>, String, serde_json::Value)> {
    seen.lock()
        .expect("lock")
        .iter()
        .filter(|(_, _, status)| *status == 200)
        .map(|(signature, body, _)| {
            let json = serde_json::from_str(body).expect("JSON body");
            (signature.clone(), body.clone(), json)
        })
        .collect()
}

/// How many delivered events are `kind` about `model` (`None`: about no model).
fn count(seen: &Seen, kind: &str, model: Option<&str>) -> usize {
    delivered(seen)
        .iter()
        .filter(|(_, _, event)| event["event"] == kind && event["model"].as_str() == model)
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_notifies_each_situation_once_however_many_resyncs_see_it() {
    let server = support::server();
    let client = server.client();
    let proxy = FaultProxy::start(&server.uri).await;
    let drifting = support::unique("notify-watch");
    let gated = support::unique("notify-watch-gated");
    support::seed_model(&client, &drifting, 2).await;
    support::seed_model(&client, &gated, 1).await;
    let dir = tempfile::tempdir().expect("temp dir");
    Manifest::model(&drifting)
        .alias("champion", 1)
        .write(dir.path(), "drifting.yaml");
    // A gate the version cannot pass: it has no `validated` tag.
    Manifest::model(&gated)
        .stage(Stage::Production, &[1])
        .spec_lines("  gates:\n    Production:\n      tags:\n        validated: \"true\"\n")
        .write(dir.path(), "gated.yaml");
    // The first two alias writes are refused (a 400 is not retried): the change fails, is
    // retried by the daemon, fails the same way, then goes through.
    let refusal = || Fault::Refuse {
        status: 400,
        code: "INVALID_PARAMETER_VALUE",
    };
    proxy.push_matching("registered-models/alias", [refusal(), refusal()]);
    // The receiver refuses its first request: that event is retried and delivered once.
    let (url, seen) = receiver(1).await;

    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mlreg"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("MLFLOW_TRACKING_URI", &proxy.uri)
        .env("MLREG_REQUEST_TIMEOUT", "10s")
        .env("MLREG_NOTIFY_SECRET", "watch-secret")
        .env("NO_COLOR", "1");
    let mut daemon = Daemon::spawn(command, dir.path(), &["--interval", "1s", "--notify", &url]);
    let wait = |what: &'static str, done: Box<dyn Fn() -> bool + Send>| async move {
        let started = std::time::Instant::now();
        while !done() {
            assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };

    // Failed, then applied; the gate's block.
    {
        let seen = Arc::clone(&seen);
        let (drifting, gated) = (drifting.clone(), gated.clone());
        wait(
            "failed, applied and blocked",
            Box::new(move || {
                count(&seen, "applied", Some(&drifting)) == 1
                    && count(&seen, "blocked", Some(&gated)) == 1
            }),
        )
        .await;
    }
    assert_eq!(proxy.pending(), 0, "both refusals were met");

    // Drift made by hand (not through the proxy): reported once, at whichever resync
    // finds it, and not again at the next ones.
    client
        .set_alias(&drifting, "champion", 2)
        .await
        .expect("move the alias by hand");
    {
        let seen = Arc::clone(&seen);
        let drifting = drifting.clone();
        wait(
            "drift",
            Box::new(move || count(&seen, "drift", Some(&drifting)) >= 1),
        )
        .await;
    }
    daemon.wait_for_reconciles(3.0).await;

    // Invalid manifests: once, though every resync reads them again.
    std::fs::write(
        dir.path().join("broken.yaml"),
        "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: broken\nspec:\n  stages: {Prod: 1}\n",
    )
    .expect("write");
    {
        let seen = Arc::clone(&seen);
        wait(
            "invalid",
            Box::new(move || count(&seen, "invalid", None) >= 1),
        )
        .await;
    }
    daemon.wait_for_reconciles(3.0).await;

    let events = delivered(&seen);
    let summary: Vec<String> = events
        .iter()
        .map(|(_, _, event)| format!("{} {}", event["event"], event["model"]))
        .collect();
    assert_eq!(count(&seen, "failed", Some(&drifting)), 1, "{summary:#?}");
    assert_eq!(count(&seen, "applied", Some(&drifting)), 1, "{summary:#?}");
    assert_eq!(count(&seen, "blocked", Some(&gated)), 1, "{summary:#?}");
    assert_eq!(count(&seen, "drift", Some(&drifting)), 1, "{summary:#?}");
    assert_eq!(count(&seen, "invalid", None), 1, "{summary:#?}");
    assert_eq!(events.len(), 5, "nothing else: {summary:#?}");
    for (signature, body, event) in &events {
        assert_eq!(event["format_version"], "1");
        assert_eq!(
            signature.as_deref(),
            Some(hex_hmac(b"watch-secret", body.as_bytes()).as_str()),
            "{event:#}"
        );
    }
    let payload = |kind: &str| {
        events
            .iter()
            .find(|(_, _, event)| event["event"] == kind)
            .map(|(_, _, event)| event.clone())
            .unwrap_or_default()
    };
    assert_eq!(payload("applied")["changes"][0]["kind"], "set_alias");
    assert_eq!(
        payload("drift")["changes"][0]["to"],
        1,
        "the change that would revert it"
    );
    assert!(
        payload("failed")["detail"]
            .as_str()
            .is_some_and(|detail| !detail.is_empty()),
        "{:#}",
        payload("failed")
    );
    assert!(
        payload("blocked")["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("validated")),
        "{:#}",
        payload("blocked")
    );
    assert!(
        payload("invalid")["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("broken.yaml")),
        "{:#}",
        payload("invalid")
    );

    // What /metrics counted: five delivered, one retry (the receiver's 503), none dropped.
    let metrics = daemon.metrics().await;
    let value = |series: &str| crate::support::daemon::metric_value(&metrics, series);
    assert_eq!(value("mlreg_notifications_sent_total"), 5.0, "{metrics}");
    assert_eq!(value("mlreg_notifications_retried_total"), 1.0, "{metrics}");
    assert_eq!(
        value("mlreg_notifications_dropped_total{reason=\"gave_up\"}"),
        0.0
    );
    assert_eq!(
        value("mlreg_notifications_dropped_total{reason=\"queue_full\"}"),
        0.0
    );
    assert_eq!(daemon.terminate(), 0, "{}", daemon.logs());
}
