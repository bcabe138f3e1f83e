//! Notifications from `mlreg reconcile --notify URL` against the real MLflow server, into a
//! local receiver that can refuse: `applied` after a reconcile (signed with
//! `MLREG_NOTIFY_SECRET`, retried after a 503 and delivered once), `invalid` for broken
//! manifests, and a receiver that is down never fails or changes the run.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use mlreg::stage::Stage;
use ring::hmac;

use crate::support::manifest::Manifest;
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
