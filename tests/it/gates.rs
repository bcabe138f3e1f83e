//! Promotion gates against the real server: versions made from real runs whose metrics are
//! logged through MLflow's REST API (`runs/log-metric`), gated promotions planned and
//! reconciled through the binary in every output, and the daemon holding a gated model
//! while another converges. DESIGN.md "Gates (promotion on evidence)".

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use mlreg::registry::Registry;
use mlreg::registry::mlflow::MlflowClient;
use mlreg::stage::Stage::{self, None as NoStage, Production, Staging};
use serde_json::Value;

use crate::support::daemon::{Daemon, http_get};
use crate::support::fleet;
use crate::support::proxy::{Fault, FaultProxy};
use crate::support::{self, parse_json, read_model, stages};

/// Logs `key = value` on run `run_id` (its latest value: a later step wins).
async fn log_metric(run_id: &str, key: &str, value: f64, step: i64) {
    let url = format!("{}/api/2.0/mlflow/runs/log-metric", support::server().uri);
    reqwest::Client::new()
        .post(url)
        .json(&serde_json::json!({
            "run_id": run_id, "key": key, "value": value, "step": step,
            "timestamp": 1_700_000_000_000_i64 + step,
        }))
        .send()
        .await
        .expect("runs/log-metric")
        .error_for_status()
        .expect("runs/log-metric succeeds");
}

/// One version to seed: its run's metrics and its version tags.
type Seed<'a> = (&'a [(&'a str, f64)], &'a [(&'a str, &'a str)]);

/// Creates `name` with one version per entry, each from a new run with these metrics and
/// version tags.
async fn seed(client: &MlflowClient, name: &str, versions: &[Seed<'_>]) -> Vec<String> {
    client
        .create_model(name, None, &BTreeMap::new())
        .await
        .expect("create model");
    let mut runs = Vec::new();
    for (index, (metrics, tags)) in versions.iter().enumerate() {
        let run = support::create_run().await;
        for (key, value) in *metrics {
            // An older, different value first: the gate must read the latest.
            log_metric(&run, key, -1.0, 0).await;
            log_metric(&run, key, *value, 1).await;
        }
        let tags: BTreeMap<String, String> = tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let number = client
            .create_version(
                name,
                &format!("s3://bucket/{name}/{index}"),
                Some(&run),
                &tags,
            )
            .await
            .expect("create version");
        assert_eq!(number, index as u64 + 1);
        runs.push(run);
    }
    runs
}

fn write(dir: &Path, name: &str, spec: &str) {
    let text = format!(
        "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n{spec}"
    );
    std::fs::write(dir.join(format!("{name}.yaml")), text).expect("write manifest");
}

fn mlreg(registry: &str, dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut command = support::mlreg();
    command
        .env("MLFLOW_TRACKING_URI", registry)
        .env("MLREG_RETRY_MIN_BACKOFF", "1ms")
        .env("MLREG_RETRY_MAX_BACKOFF", "5ms")
        .args(args)
        .arg("--dir")
        .arg(dir);
    support::output(&mut command)
}

/// `plan` in text, JSON and Markdown: the exit code of each and the three outputs.
fn plan_everywhere(registry: &str, dir: &Path) -> (Vec<i32>, String, Value, String) {
    let (text_code, text, _) = mlreg(registry, dir, &["plan"]);
    let (json_code, json, _) = mlreg(registry, dir, &["plan", "--output", "json"]);
    let (md_code, markdown, _) = mlreg(registry, dir, &["plan", "--output", "markdown"]);
    (
        vec![text_code, json_code, md_code],
        text,
        parse_json(&json),
        markdown,
    )
}

/// The gate checks of the change of `model` in a JSON plan: (check, observed, verdict).
fn json_checks(plan: &Value, model: &str) -> Vec<(String, String, String)> {
    let model = plan["models"]
        .as_array()
        .and_then(|models| models.iter().find(|m| m["name"] == model))
        .unwrap_or_else(|| panic!("{model} not in {plan:#}"));
    model["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|change| change["gates"].as_array().cloned().unwrap_or_default())
        .map(|check| {
            (
                check["check"].as_str().unwrap_or_default().to_owned(),
                check["observed"].as_str().unwrap_or_default().to_owned(),
                check["verdict"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn triple(check: &str, observed: &str, verdict: &str) -> (String, String, String) {
    (check.into(), observed.into(), verdict.into())
}

const METRICS_AND_TAGS_GATE: &str = "  gates:\n    Production:\n      metrics:\n        val_accuracy: \">= 0.90\"\n        latency_ms: \"< 50\"\n      tags:\n        validated: \"true\"\n        approved_by: \"*\"\n";

#[tokio::test]
async fn metrics_and_tags_gates_pass_then_block_with_the_observed_values_in_every_output() {
    let client = support::client();
    let uri = &support::server().uri;
    let name = support::unique("gate-mt");
    seed(
        &client,
        &name,
        &[
            (
                &[("val_accuracy", 0.93), ("latency_ms", 42.0)],
                &[("validated", "true"), ("approved_by", "ana")],
            ),
            (&[("val_accuracy", 0.81)], &[("validated", "false")]),
        ],
    )
    .await;
    let dir = tempfile::tempdir().expect("temp dir");

    // Version 1 shows the evidence: every check passes, the plan is not blocked.
    write(
        dir.path(),
        &name,
        &format!("  stages:\n    Production: 1\n{METRICS_AND_TAGS_GATE}"),
    );
    let (codes, text, json, markdown) = plan_everywhere(uri, dir.path());
    assert_eq!(codes, vec![0, 0, 0], "{text}");
    assert_eq!(
        json_checks(&json, &name),
        vec![
            triple("metric latency_ms", "42", "pass"),
            triple("metric val_accuracy", "0.93", "pass"),
            triple("tag approved_by", "ana", "pass"),
            triple("tag validated", "true", "pass"),
        ]
    );
    assert_eq!(json["blocked"], false);
    assert!(
        text.contains("gate Production for version 1: passes"),
        "{text}"
    );
    assert!(
        text.contains("metric val_accuracy  expected >= 0.9, observed 0.93"),
        "{text}"
    );
    assert!(
        markdown.contains(
            "| version 1 → Production | metric val_accuracy | `>= 0.9` | `0.93` | ✅ pass |"
        ),
        "{markdown}"
    );
    let (code, stdout, stderr) = mlreg(uri, dir.path(), &["reconcile"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        stages(&read_model(&client, &name).await),
        vec![(1, Production), (2, NoStage)]
    );

    // Version 2 does not: the plan shows why in every output, exits 1, and reconcile
    // applies nothing (not even the archive of version 1).
    write(
        dir.path(),
        &name,
        &format!("  stages:\n    Production: 2\n{METRICS_AND_TAGS_GATE}"),
    );
    let (codes, text, json, markdown) = plan_everywhere(uri, dir.path());
    assert_eq!(codes, vec![1, 1, 1], "{text}");
    assert_eq!(
        json_checks(&json, &name),
        vec![
            triple("metric latency_ms", "(not logged)", "unverifiable"),
            triple("metric val_accuracy", "0.81", "fail"),
            triple("tag approved_by", "(unset)", "fail"),
            triple("tag validated", "false", "fail"),
        ]
    );
    assert_eq!(json["blocked"], true);
    assert!(
        text.contains("gate Production for version 2: BLOCKS"),
        "{text}"
    );
    assert!(
        text.contains("FAIL         metric val_accuracy  expected >= 0.9, observed 0.81"),
        "{text}"
    );
    assert!(text.contains("Blocked by promotion gates"), "{text}");
    assert!(markdown.contains("**blocked**"), "{markdown}");
    assert!(
        markdown.contains("| metric val_accuracy | `>= 0.9` | `0.81` | ❌ **fail** |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| tag validated | `true` | `false` | ❌ **fail** |"),
        "{markdown}"
    );
    for output in ["text", "json", "markdown"] {
        let (code, stdout, stderr) = mlreg(uri, dir.path(), &["reconcile", "--output", output]);
        assert_eq!(code, 1, "{stdout}{stderr}");
        assert!(stdout.contains("0.81"), "the plan is on stdout: {stdout}");
        assert!(stderr.contains("Nothing was applied"), "{stderr}");
    }
    assert_eq!(
        stages(&read_model(&client, &name).await),
        vec![(1, Production), (2, NoStage)]
    );

    // `info` shows the model's gates, as text and as JSON.
    let (code, text, stderr) = mlreg(uri, dir.path(), &["info", &name]);
    assert_eq!(code, 0, "{stderr}");
    assert!(text.contains("Gates:\n  Production: metric latency_ms < 50\n  Production: metric val_accuracy >= 0.9\n  Production: tag approved_by present\n  Production: tag validated = \"true\"\n"), "{text}");
    let (code, json, stderr) = mlreg(uri, dir.path(), &["info", &name, "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let info = parse_json(&json);
    assert_eq!(
        info["gates"]["Production"]["metrics"]["val_accuracy"], ">= 0.9",
        "{info:#}"
    );
    assert_eq!(
        info["gates"]["Production"]["tags"]["approved_by"], "*",
        "{info:#}"
    );
}

#[tokio::test]
async fn soak_passes_after_the_audit_record_and_fails_without_one() {
    let client = support::client();
    let uri = &support::server().uri;
    let name = support::unique("gate-soak");
    seed(&client, &name, &[(&[], &[]), (&[], &[])]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    // mlreg moves version 1 to Staging (writing `mlreg.transition`); version 2 is moved
    // by hand, so it has no record.
    write(dir.path(), &name, "  stages:\n    Staging: 1\n");
    let (code, stdout, stderr) = mlreg(uri, dir.path(), &["reconcile"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    client
        .transition(&name, 2, Staging)
        .await
        .expect("transition by hand");
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let gate = |duration: &str| {
        format!("  gates:\n    Production:\n      soak: {{in: Staging, for: {duration}}}\n")
    };
    // Long enough in Staging.
    write(
        dir.path(),
        &name,
        &format!(
            "  stages:\n    Production: 1\n    Staging: 2\n{}",
            gate("1s")
        ),
    );
    let (codes, text, json, markdown) = plan_everywhere(uri, dir.path());
    assert_eq!(codes, vec![0, 0, 0], "{text}");
    let checks = json_checks(&json, &name);
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(
        (checks[0].0.as_str(), checks[0].2.as_str()),
        ("soak in Staging", "pass")
    );
    assert!(checks[0].1.contains("s (since 20"), "{checks:?}");
    assert!(
        text.contains("soak in Staging  expected at least 1s"),
        "{text}"
    );
    assert!(
        markdown.contains("| soak in Staging | `at least 1s` |"),
        "{markdown}"
    );

    // Not long enough.
    write(
        dir.path(),
        &name,
        &format!(
            "  stages:\n    Production: 1\n    Staging: 2\n{}",
            gate("24h")
        ),
    );
    let (codes, text, json, markdown) = plan_everywhere(uri, dir.path());
    assert_eq!(codes, vec![1, 1, 1], "{text}");
    let checks = json_checks(&json, &name);
    assert_eq!(checks[0].2, "fail", "{checks:?}");
    assert!(
        text.contains("FAIL         soak in Staging  expected at least 24h, observed "),
        "{text}"
    );
    assert!(
        markdown.contains("| soak in Staging | `at least 24h` |"),
        "{markdown}"
    );

    // No record: version 2 entered Staging by hand.
    write(
        dir.path(),
        &name,
        &format!(
            "  stages:\n    Production: 2\n    Staging: 1\n{}",
            gate("1s")
        ),
    );
    let (codes, text, json, markdown) = plan_everywhere(uri, dir.path());
    assert_eq!(codes, vec![1, 1, 1], "{text}");
    assert_eq!(
        json_checks(&json, &name),
        vec![triple(
            "soak in Staging",
            "no mlreg.transition record",
            "fail"
        )]
    );
    assert!(
        text.contains("observed no mlreg.transition record"),
        "{text}"
    );
    assert!(
        markdown.contains("`no mlreg.transition record` | ❌ **fail** |"),
        "{markdown}"
    );
    assert_eq!(
        stages(&read_model(&client, &name).await),
        vec![(1, Staging), (2, Staging)]
    );
}

#[tokio::test]
async fn no_regression_compares_with_the_current_holder() {
    let client = support::client();
    let uri = &support::server().uri;
    let name = support::unique("gate-noreg");
    seed(
        &client,
        &name,
        &[
            (&[("auc", 0.90)], &[]),
            (&[("auc", 0.85)], &[]),
            (&[("auc", 0.899)], &[]),
        ],
    )
    .await;
    support::place(&client, &name, &[(1, Production)], &[]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let gates = "  gates:\n    Production:\n      noRegression: {metric: auc, direction: higher, tolerance: 0.005}\n    \"@champion\":\n      noRegression: {metric: auc, direction: higher}\n";

    // Worse than version 1 by more than the tolerance.
    write(
        dir.path(),
        &name,
        &format!("  stages:\n    Production: 2\n{gates}"),
    );
    let (codes, text, json, markdown) = plan_everywhere(uri, dir.path());
    assert_eq!(codes, vec![1, 1, 1], "{text}");
    assert_eq!(
        json_checks(&json, &name),
        vec![triple("noRegression auc", "0.85", "fail")]
    );
    assert!(
        text.contains("expected >= 0.895 (version 1: 0.9, tolerance 0.005), observed 0.85"),
        "{text}"
    );
    assert!(markdown.contains("`0.85` | ❌ **fail** |"), "{markdown}");

    // Within the tolerance: promoted, and an alias nobody holds yet passes with that reason.
    write(
        dir.path(),
        &name,
        &format!("  stages:\n    Production: 3\n  aliases:\n    champion: 3\n{gates}"),
    );
    let (codes, text, json, markdown) = plan_everywhere(uri, dir.path());
    assert_eq!(codes, vec![0, 0, 0], "{text}");
    assert_eq!(
        json_checks(&json, &name),
        vec![
            triple("noRegression auc", "0.899", "pass"),
            triple("noRegression auc", "no version holds @champion now", "pass"),
        ]
    );
    assert!(
        markdown.contains("`no version holds @champion now` | ✅ pass |"),
        "{markdown}"
    );
    let (code, stdout, stderr) = mlreg(uri, dir.path(), &["reconcile"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let model = read_model(&client, &name).await;
    assert_eq!(
        stages(&model),
        vec![(1, Stage::Archived), (2, NoStage), (3, Production)]
    );
    assert_eq!(model.aliases.get("champion"), Some(&3));
}

#[tokio::test]
async fn an_unreadable_run_blocks_and_no_gate_reads_no_run() {
    let client = support::client();
    let name = support::unique("gate-unreadable");
    let runs = seed(&client, &name, &[(&[("auc", 0.99)], &[])]).await;
    let proxy = FaultProxy::start(&support::server().uri).await;
    let dir = tempfile::tempdir().expect("temp dir");

    // The proxy runs on this test's runtime: the binary must not block it.
    let through_proxy = |args: &[&str]| {
        let mut command = fleet::command(&proxy.uri);
        command.args(args).arg("--dir").arg(dir.path());
        fleet::run(command)
    };
    // No gate: no run is read at all.
    write(dir.path(), &name, "  stages:\n    Production: 1\n");
    let run = through_proxy(&["plan"]).await;
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert!(
        !proxy
            .recorded()
            .iter()
            .any(|r| r.target.contains("runs/get")),
        "a run was read without a gate"
    );

    // The gate's run cannot be read: unverifiable, which blocks.
    write(
        dir.path(),
        &name,
        "  stages:\n    Production: 1\n  gates:\n    Production:\n      metrics: {auc: \">= 0.9\"}\n",
    );
    proxy.push_matching("runs/get", (0..40).map(|_| Fault::status(503)));
    let run = through_proxy(&["reconcile", "--output", "json"]).await;
    assert_eq!(run.code, Some(1), "{}", run.output());
    let checks = json_checks(&parse_json(&run.stdout), &name);
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(checks[0].2, "unverifiable", "{checks:?}");
    assert!(
        checks[0]
            .1
            .contains(&format!("run `{}` could not be read", runs[0])),
        "{checks:?}"
    );
    assert_eq!(
        stages(&read_model(&client, &name).await),
        vec![(1, NoStage)]
    );
}

#[tokio::test]
async fn the_daemon_holds_a_gated_model_while_another_converges() {
    let client = support::client();
    let gated = support::unique("gate-held");
    let free = support::unique("gate-free");
    seed(&client, &gated, &[(&[("auc", 0.5)], &[])]).await;
    seed(&client, &free, &[(&[], &[])]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        &gated,
        "  stages:\n    Production: 1\n  gates:\n    Production:\n      metrics: {auc: \">= 0.9\"}\n",
    );
    write(dir.path(), &free, "  stages:\n    Production: 1\n");
    let mut daemon = Daemon::start(&support::server().uri, dir.path(), &["--interval", "1s"]);
    daemon
        .wait_for("the ungated model to converge", || async {
            client
                .model(&free)
                .await
                .ok()
                .flatten()
                .is_some_and(|model| stages(&model) == vec![(1, Production)])
        })
        .await;
    let address = daemon.address.clone();
    daemon
        .wait_for("/status to report the held model", || {
            let address = address.clone();
            let gated = gated.clone();
            async move {
                let (_, body) = http_get(&address, "/status").await.unwrap_or_default();
                let status: Value = serde_json::from_str(&body).unwrap_or_default();
                model_state(&status, &gated) == "blocked"
            }
        })
        .await;
    let status = daemon.status().await;
    let held = status["models"]
        .as_array()
        .and_then(|models| models.iter().find(|m| m["name"] == gated.as_str()))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(held["will_apply"], false, "{held:#}");
    let check = &held["gates"][0]["checks"][0];
    assert_eq!(check["check"], "metric auc", "{held:#}");
    assert_eq!(check["observed"], "0.5", "{held:#}");
    assert_eq!(check["verdict"], "fail", "{held:#}");
    // /status is updated while the reconcile runs, the gauge when it ends.
    let address = daemon.address.clone();
    daemon
        .wait_for("mlreg_gate_blocked to be 1", || {
            let address = address.clone();
            async move {
                let (_, body) = http_get(&address, "/metrics").await.unwrap_or_default();
                support::daemon::metric_value(&body, "mlreg_gate_blocked") == 1.0
            }
        })
        .await;
    assert_eq!(
        stages(&read_model(&client, &gated).await),
        vec![(1, NoStage)]
    );
    assert!(
        daemon.logs().contains("held by a promotion gate"),
        "{}",
        daemon.logs()
    );
    daemon.terminate();
}

fn model_state(status: &Value, name: &str) -> String {
    status["models"]
        .as_array()
        .and_then(|models| models.iter().find(|m| m["name"] == name))
        .and_then(|model| model["state"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Logs a real scikit-learn model in a training run (which logs `val_accuracy`), logs `auc`
/// to the logged model only (from an evaluation run, as `mlflow.evaluate` does), and
/// registers the logged model as a version of `name`. Prints the ids as JSON.
const LOGGED_MODEL_SCRIPT: &str = r#"
import json, sys
import mlflow
import numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

name = sys.argv[1]
features = np.array([[0.0], [1.0], [2.0], [3.0]])
labels = np.array([0, 0, 1, 1])
with mlflow.start_run() as training:
    mlflow.log_metric("val_accuracy", 0.96)
    info = mlflow.sklearn.log_model(LogisticRegression().fit(features, labels), name="model")
client = MlflowClient()
with mlflow.start_run() as evaluation:
    client.log_metric(evaluation.info.run_id, "auc", 0.97, model_id=info.model_id)
version = mlflow.register_model(f"models:/{info.model_id}", name)
print(json.dumps({"model_id": info.model_id, "run_id": training.info.run_id,
                  "version": version.version, "source": version.source}))
"#;

#[tokio::test]
async fn a_metric_the_run_lacks_is_read_from_the_mlflow_3_logged_model() {
    let client = support::client();
    let uri = &support::server().uri;
    let name = support::unique("gate-logged");
    let python = std::env::var_os("MLREG_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"))
        .join("bin/python");
    let done = tokio::process::Command::new(python)
        .arg("-c")
        .arg(LOGGED_MODEL_SCRIPT)
        .arg(&name)
        .env("MLFLOW_TRACKING_URI", uri)
        .env_remove("MLFLOW_REGISTRY_URI")
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "the script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let ids = parse_json(stdout.lines().last().unwrap_or_default());
    assert_eq!(ids["version"], "1", "{ids}");
    let model_id = ids["model_id"].as_str().unwrap_or_default();
    assert_eq!(ids["source"], format!("models:/{model_id}"), "{ids}");

    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        &name,
        "  aliases:\n    champion: 1\n  gates:\n    \"@champion\":\n      metrics:\n        auc: \">= 0.95\"\n        val_accuracy: \">= 0.9\"\n",
    );
    let (codes, text, json, _markdown) = plan_everywhere(uri, dir.path());
    assert_eq!(codes, vec![0, 0, 0], "{text}");
    assert_eq!(
        json_checks(&json, &name),
        vec![
            triple("metric auc", "0.97", "pass"),
            triple("metric val_accuracy", "0.96", "pass"),
        ]
    );
    let (code, stdout, stderr) = mlreg(uri, dir.path(), &["reconcile"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        read_model(&client, &name).await.aliases.get("champion"),
        Some(&1)
    );
}

#[tokio::test]
async fn alias_soak_reads_the_alias_audit_record() {
    let client = support::client();
    let uri = &support::server().uri;
    let name = support::unique("gate-alias-soak");
    seed(&client, &name, &[(&[], &[]), (&[], &[])]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    // mlreg points challenger at version 1 (writing `mlreg.alias.challenger` on it).
    write(dir.path(), &name, "  aliases:\n    challenger: 1\n");
    let (code, stdout, stderr) = mlreg(uri, dir.path(), &["reconcile"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        read_model(&client, &name).await.versions[&1]
            .tags
            .contains_key("mlreg.alias.challenger")
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let manifest = |champion: u64, duration: &str| {
        format!(
            "  aliases:\n    challenger: 1\n    champion: {champion}\n  gates:\n    \"@champion\":\n      soak: {{in: \"@challenger\", for: {duration}}}\n"
        )
    };
    // Version 1 has been @challenger long enough.
    write(dir.path(), &name, &manifest(1, "1s"));
    let (codes, text, json, markdown) = plan_everywhere(uri, dir.path());
    assert_eq!(codes, vec![0, 0, 0], "{text}");
    let checks = json_checks(&json, &name);
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(
        (checks[0].0.as_str(), checks[0].2.as_str()),
        ("soak in @challenger", "pass")
    );
    assert!(checks[0].1.contains("s (since 20"), "{checks:?}");
    assert!(
        markdown.contains("| soak in @challenger | `at least 1s` |"),
        "{markdown}"
    );

    // Not long enough.
    write(dir.path(), &name, &manifest(1, "24h"));
    let (codes, text, json, _) = plan_everywhere(uri, dir.path());
    assert_eq!(codes, vec![1, 1, 1], "{text}");
    assert_eq!(json_checks(&json, &name)[0].2, "fail");
    assert!(text.contains("soak in @challenger"), "{text}");

    // Version 2 was never @challenger: no record, the gate fails with that reason.
    write(dir.path(), &name, &manifest(2, "1s"));
    let (codes, text, json, markdown) = plan_everywhere(uri, dir.path());
    assert_eq!(codes, vec![1, 1, 1], "{text}");
    assert_eq!(
        json_checks(&json, &name),
        vec![triple(
            "soak in @challenger",
            "no mlreg.alias.challenger record",
            "fail"
        )]
    );
    assert!(
        markdown.contains("no mlreg.alias.challenger record"),
        "{markdown}"
    );
    let (code, _, _) = mlreg(uri, dir.path(), &["reconcile"]);
    assert_eq!(code, 1);
    assert_eq!(
        read_model(&client, &name).await.aliases.get("champion"),
        None
    );

    // Long enough: reconcile points champion at version 1.
    write(dir.path(), &name, &manifest(1, "1s"));
    let (code, stdout, stderr) = mlreg(uri, dir.path(), &["reconcile"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        read_model(&client, &name).await.aliases.get("champion"),
        Some(&1)
    );
}
