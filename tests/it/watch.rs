//! `mlreg watch` as a process against the real MLflow server: manifest edits (in place and
//! atomic saves) converge the registry; drift made by hand is reported and left alone, or
//! reverted with `--self-heal`; invalid manifests make `/readyz` fail and apply nothing; an
//! unreachable registry keeps the daemon alive and it recovers; SIGTERM exits 0; startup
//! failures exit 1.
//!
//! Every wait polls with a generous deadline and never asserts a duration. The daemon
//! listens on port 0 and logs JSON; the tests read the bound address from the start-up log
//! line.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mlreg::registry::Registry;
use mlreg::registry::mlflow::MlflowClient;
use mlreg::stage::Stage::{self, Archived, None as NoStage, Production, Staging};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::support::daemon::{DEADLINE, Daemon, http_get};
use crate::support::manifest::Manifest;
use crate::support::{self, read_model as read, stages};

/// The manifest of `name` with the given Production and Staging versions.
fn manifest(name: &str, production: &[u64], staging: &[u64]) -> String {
    Manifest::model(name)
        .stage(Production, production)
        .stage(Staging, staging)
        .yaml()
}

/// Waits until the registry holds `expected` stages for `name`.
async fn wait_for_stages(
    daemon: &mut Daemon,
    client: &MlflowClient,
    name: &str,
    expected: &[(u64, Stage)],
) {
    daemon
        .wait_for(&format!("{name} to reach {expected:?}"), || async {
            client
                .model(name)
                .await
                .ok()
                .flatten()
                .is_some_and(|model| stages(&model) == expected)
        })
        .await;
}

/// The `/status` entry of `name`.
fn model_status<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["models"]
        .as_array()
        .and_then(|models| models.iter().find(|model| model["name"] == name))
        .unwrap_or_else(|| panic!("{name} missing from /status: {status:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn manifest_edits_and_atomic_saves_converge_the_registry_and_sigterm_exits_zero() {
    let client = support::client();
    let name = support::unique("watch-edit");
    support::seed_model(&client, &name, 3).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("model.yaml");
    std::fs::write(&file, manifest(&name, &[1], &[])).expect("write manifest");

    let mut daemon = Daemon::start(&support::server().uri, dir.path(), &["--interval", "30s"]);
    wait_for_stages(
        &mut daemon,
        &client,
        &name,
        &[(1, Production), (2, NoStage), (3, NoStage)],
    )
    .await;
    daemon.wait_for_readyz(200).await;
    assert_eq!(daemon.get("/healthz").await.0, 200);

    // An edit in place.
    std::fs::write(&file, manifest(&name, &[2], &[])).expect("edit manifest");
    wait_for_stages(
        &mut daemon,
        &client,
        &name,
        &[(1, Archived), (2, Production), (3, NoStage)],
    )
    .await;

    // An atomic save: a temporary file renamed over the manifest.
    let temporary = dir.path().join(".model.yaml.tmp-save");
    std::fs::write(&temporary, manifest(&name, &[3], &[2])).expect("write temporary");
    std::fs::rename(&temporary, &file).expect("rename over the manifest");
    wait_for_stages(
        &mut daemon,
        &client,
        &name,
        &[(1, Archived), (2, Staging), (3, Production)],
    )
    .await;

    // Every transition carries its audit tag (annotations are on by default).
    let model = read(&client, &name).await;
    let audit: Value =
        serde_json::from_str(&model.versions[&3].tags["mlreg.transition"]).expect("audit JSON");
    assert_eq!(audit["to"], "Production");

    daemon.wait_for_readyz(200).await;
    // The registry reaches the declared stages before the daemon has written the audit tags
    // and verified, so /status catches up a moment later.
    let address = daemon.address.clone();
    let model_name = name.clone();
    daemon
        .wait_for("/status to say in_sync", || {
            let address = address.clone();
            let model_name = model_name.clone();
            async move {
                let (_, body) = http_get(&address, "/status").await.unwrap_or_default();
                let status: Value = serde_json::from_str(&body).unwrap_or_default();
                status["models"].as_array().is_some_and(|models| {
                    models
                        .iter()
                        .any(|model| model["name"] == model_name && model["state"] == "in_sync")
                })
            }
        })
        .await;
    let status = daemon.status().await;
    assert_eq!(status["format_version"], "1");
    assert_eq!(status["manifests"]["valid"], true);
    assert_eq!(model_status(&status, &name)["state"], "in_sync");
    assert!(
        daemon
            .metric("mlreg_changes_applied_total{kind=\"promote\"}")
            .await
            >= 3.0
    );
    assert!(
        daemon
            .metric("mlreg_changes_applied_total{kind=\"archive\"}")
            .await
            >= 1.0
    );
    assert_eq!(daemon.metric("mlreg_manifests_valid").await, 1.0);
    let metrics = daemon.metrics().await;
    assert!(
        metrics.contains("mlreg_registry_request_duration_seconds_bucket{"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mlreg_last_success_timestamp_seconds "),
        "{metrics}"
    );

    // Logs are JSON, with one span per reconcile naming its trigger.
    let logs = daemon.log_lines();
    assert!(
        logs.iter()
            .all(|line| serde_json::from_str::<Value>(line).is_ok()),
        "{logs:#?}"
    );
    for trigger in ["startup", "manifest_change"] {
        assert!(
            logs.iter()
                .any(|line| line.contains(&format!("\"trigger\":\"{trigger}\""))),
            "no reconcile span with trigger {trigger}:\n{}",
            daemon.logs()
        );
    }

    assert_eq!(daemon.terminate(), 0, "{}", daemon.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_made_by_hand_is_reported_and_not_reverted_without_self_heal() {
    let client = support::client();
    let name = support::unique("watch-drift");
    support::seed_model(&client, &name, 2).await;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("model.yaml"), manifest(&name, &[1], &[]))
        .expect("write manifest");

    let mut daemon = Daemon::start(&support::server().uri, dir.path(), &["--interval", "1s"]);
    wait_for_stages(
        &mut daemon,
        &client,
        &name,
        &[(1, Production), (2, NoStage)],
    )
    .await;
    daemon.wait_for_readyz(200).await;

    // Someone promotes version 2 by hand.
    client
        .transition(&name, 2, Production)
        .await
        .expect("manual transition");
    let address = daemon.address.clone();
    let drifted_name = name.clone();
    daemon
        .wait_for("/status to report the drift", || {
            let address = address.clone();
            let name = drifted_name.clone();
            async move {
                let Ok((_, body)) = http_get(&address, "/status").await else {
                    return false;
                };
                let Ok(status) = serde_json::from_str::<Value>(&body) else {
                    return false;
                };
                status["models"]
                    .as_array()
                    .and_then(|models| models.iter().find(|model| model["name"] == name.as_str()))
                    .is_some_and(|model| model["state"] == "drifted")
            }
        })
        .await;
    let status = daemon.status().await;
    let entry = model_status(&status, &name);
    assert_eq!(entry["will_apply"], false, "{status:#}");
    let pending = entry["pending_changes"]
        .as_array()
        .expect("pending changes");
    assert_eq!(pending.len(), 1, "{status:#}");
    assert_eq!(pending[0]["kind"], "transition");
    assert_eq!(pending[0]["version"], 2);
    assert_eq!(pending[0]["to"], "Archived");
    assert_eq!(daemon.metric("mlreg_models_drifted").await, 1.0);
    assert!(daemon.metric("mlreg_drift_detected_total").await >= 1.0);

    // Several resyncs later the drift is still there, and the daemon is still ready: drift
    // is news, not a failure.
    daemon.wait_for_reconciles(3.0).await;
    assert_eq!(
        stages(&read(&client, &name).await),
        vec![(1, Production), (2, Production)]
    );
    assert_eq!(daemon.get("/readyz").await.0, 200);
    assert!(
        daemon.logs().contains("drift"),
        "the drift is logged:\n{}",
        daemon.logs()
    );

    assert_eq!(daemon.terminate(), 0, "{}", daemon.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn self_heal_reverts_drift_made_by_hand() {
    let client = support::client();
    let name = support::unique("watch-heal");
    support::seed_model(&client, &name, 2).await;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("model.yaml"), manifest(&name, &[1], &[]))
        .expect("write manifest");

    let mut daemon = Daemon::start(
        &support::server().uri,
        dir.path(),
        &["--interval", "1s", "--self-heal"],
    );
    wait_for_stages(
        &mut daemon,
        &client,
        &name,
        &[(1, Production), (2, NoStage)],
    )
    .await;

    client
        .transition(&name, 2, Production)
        .await
        .expect("manual transition");
    client
        .transition(&name, 1, Archived)
        .await
        .expect("manual transition");
    // Version 2 is not declared anywhere, so healing archives it; version 1 comes back.
    wait_for_stages(
        &mut daemon,
        &client,
        &name,
        &[(1, Production), (2, Archived)],
    )
    .await;
    daemon.wait_for_readyz(200).await;
    let status = daemon.status().await;
    assert_eq!(status["self_heal"], true);

    assert_eq!(daemon.terminate(), 0, "{}", daemon.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_manifests_fail_readiness_and_apply_nothing_until_fixed() {
    let client = support::client();
    let name = support::unique("watch-invalid");
    support::seed_model(&client, &name, 2).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("model.yaml");
    std::fs::write(&file, manifest(&name, &[1], &[])).expect("write manifest");

    let mut daemon = Daemon::start(
        &support::server().uri,
        dir.path(),
        &["--interval", "1s", "--self-heal"],
    );
    wait_for_stages(
        &mut daemon,
        &client,
        &name,
        &[(1, Production), (2, NoStage)],
    )
    .await;
    daemon.wait_for_readyz(200).await;

    // Promote version 2, with a typo in the same file: nothing at all may be applied.
    let broken = manifest(&name, &[2], &[]).replace("  stages:", "  colour: red\n  stages:");
    std::fs::write(&file, broken).expect("break the manifest");
    let reason = daemon.wait_for_readyz(503).await;
    assert!(reason.contains("invalid"), "{reason}");
    assert!(
        reason.contains("model.yaml:"),
        "the reason names the file and line: {reason}"
    );
    let status = daemon.status().await;
    assert_eq!(status["manifests"]["valid"], false);
    assert!(
        status["manifests"]["errors"][0]
            .as_str()
            .is_some_and(|error| error.contains("model.yaml:6")),
        "{status:#}"
    );
    assert_eq!(daemon.metric("mlreg_manifests_valid").await, 0.0);
    assert!(
        daemon
            .log_lines()
            .iter()
            .any(|line| line.contains("\"level\":\"ERROR\"") && line.contains("model.yaml:6")),
        "the problem is logged with its position:\n{}",
        daemon.logs()
    );

    // Resyncs go on (with the last valid desired state, which holds) and apply nothing.
    daemon.wait_for_reconciles(2.0).await;
    assert_eq!(
        stages(&read(&client, &name).await),
        vec![(1, Production), (2, NoStage)]
    );
    assert_eq!(daemon.get("/readyz").await.0, 503);

    // Fixed: the change lands and the daemon is ready again.
    std::fs::write(&file, manifest(&name, &[2], &[])).expect("fix the manifest");
    wait_for_stages(
        &mut daemon,
        &client,
        &name,
        &[(1, Archived), (2, Production)],
    )
    .await;
    daemon.wait_for_readyz(200).await;
    assert_eq!(daemon.metric("mlreg_manifests_valid").await, 1.0);

    assert_eq!(daemon.terminate(), 0, "{}", daemon.logs());
}

/// The connection tasks of a running forwarder.
type Connections = Arc<Mutex<Vec<JoinHandle<()>>>>;

/// A TCP forwarder in front of the MLflow server that can be taken down (its port refuses
/// connections and open ones are cut) and brought back on the same port.
struct Forwarder {
    port: u16,
    upstream: String,
    running: Option<(JoinHandle<()>, Connections)>,
}

impl Forwarder {
    async fn start(upstream_uri: &str) -> Forwarder {
        let upstream = upstream_uri
            .strip_prefix("http://")
            .expect("an http:// server")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the forwarder");
        let port = listener.local_addr().expect("forwarder address").port();
        let mut forwarder = Forwarder {
            port,
            upstream,
            running: None,
        };
        forwarder.serve(listener);
        forwarder
    }

    fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn serve(&mut self, listener: TcpListener) {
        let connections: Connections = Arc::new(Mutex::new(Vec::new()));
        let upstream = self.upstream.clone();
        let accepted = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let connection = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                if let Ok(mut connections) = accepted.lock() {
                    connections.push(connection);
                }
            }
        });
        self.running = Some((task, connections));
    }

    /// Closes the port and cuts every open connection.
    fn down(&mut self) {
        if let Some((task, connections)) = self.running.take() {
            task.abort();
            if let Ok(connections) = connections.lock() {
                for connection in connections.iter() {
                    connection.abort();
                }
            }
        }
    }

    /// Listens on the same port again.
    async fn up(&mut self) {
        let started = Instant::now();
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(error) => {
                    assert!(
                        started.elapsed() < DEADLINE,
                        "cannot rebind port {}: {error}",
                        self.port
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        self.serve(listener);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.down();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_registry_keeps_the_daemon_alive_and_it_recovers() {
    let client = support::client();
    let name = support::unique("watch-outage");
    support::seed_model(&client, &name, 2).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("model.yaml");
    std::fs::write(&file, manifest(&name, &[1], &[])).expect("write manifest");
    let mut forwarder = Forwarder::start(&support::server().uri).await;

    let mut daemon = Daemon::start(&forwarder.uri(), dir.path(), &["--interval", "3s"]);
    wait_for_stages(
        &mut daemon,
        &client,
        &name,
        &[(1, Production), (2, NoStage)],
    )
    .await;
    daemon.wait_for_readyz(200).await;

    // The registry goes away: the daemon stays up, alive but not ready.
    forwarder.down();
    let reason = daemon.wait_for_readyz(503).await;
    assert!(reason.contains("cannot read the registry"), "{reason}");
    assert_eq!(daemon.get("/healthz").await.0, 200);
    assert!(
        daemon
            .metric("mlreg_reconciles_total{result=\"failure\"}")
            .await
            >= 1.0
    );

    // A manifest change while it is away is applied once it is back.
    std::fs::write(&file, manifest(&name, &[2], &[])).expect("edit manifest");
    daemon.wait_for_reconciles(1.0).await;
    assert_eq!(
        stages(&read(&client, &name).await),
        vec![(1, Production), (2, NoStage)]
    );
    forwarder.up().await;
    wait_for_stages(
        &mut daemon,
        &client,
        &name,
        &[(1, Archived), (2, Production)],
    )
    .await;
    daemon.wait_for_readyz(200).await;

    assert_eq!(daemon.terminate(), 0, "{}", daemon.logs());
}

#[test]
fn startup_failures_exit_one_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("model.yaml"),
        manifest("watch_startup", &[], &[]),
    )
    .expect("write manifest");
    // Nothing listens on port 9 (discard) of loopback: the registry is unreachable, which
    // is not fatal.
    let registry = "http://127.0.0.1:9";
    let mut first = Daemon::start(registry, dir.path(), &["--interval", "1s"]);

    // The same address again: fatal.
    let output = Command::new(env!("CARGO_BIN_EXE_mlreg"))
        .env_clear()
        .env("MLFLOW_TRACKING_URI", registry)
        .args(["watch", "--listen", &first.address, "--dir"])
        .arg(dir.path())
        .output()
        .expect("run mlreg watch");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot listen on"), "{stderr}");

    // A directory that does not exist cannot be watched: fatal.
    let output = Command::new(env!("CARGO_BIN_EXE_mlreg"))
        .env_clear()
        .env("MLFLOW_TRACKING_URI", registry)
        .args(["watch", "--listen", "127.0.0.1:0", "--dir"])
        .arg(dir.path().join("missing"))
        .output()
        .expect("run mlreg watch");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot watch the desired-state directory"),
        "{stderr}"
    );

    // The first one is still up (the registry failures are not fatal) and stops cleanly.
    assert!(
        matches!(first.child.try_wait(), Ok(None)),
        "{}",
        first.logs()
    );
    assert_eq!(first.terminate(), 0, "{}", first.logs());
}
