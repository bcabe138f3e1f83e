//! Version selectors against the real server: real scikit-learn models logged through
//! MLflow's Python client, manifests naming them by run (`{run: ID}`) or logged model
//! (`{loggedModel: m-…}`), and mlreg registering and placing the version itself, at most
//! once, under faults too. DESIGN.md "Version selectors".

use std::path::{Path, PathBuf};
use std::time::Duration;

use mlreg::registry::mlflow::MlflowClient;
use mlreg::registry::{ObservedModel, Registry};
use mlreg::stage::Stage::{None as NoStage, Staging};
use serde_json::Value;

use crate::support::proxy::{Fault, FaultProxy};
use crate::support::{self, parse_json, read_model, stages};

/// Logs `count` runs, each with a metric `val_accuracy` (0.9, 0.91, ...) and a
/// scikit-learn model logged under `path`; prints `[{run_id, model_id}]`.
const LOG_MODELS: &str = r#"
import json, sys
import mlflow
import numpy as np
from sklearn.linear_model import LogisticRegression

count, path = int(sys.argv[1]), sys.argv[2]
features = np.array([[0.0], [1.0], [2.0], [3.0]])
labels = np.array([0, 0, 1, 1])
logged = []
for index in range(count):
    with mlflow.start_run() as run:
        mlflow.log_metric("val_accuracy", 0.9 + 0.01 * index)
        info = mlflow.sklearn.log_model(LogisticRegression().fit(features, labels), name=path)
    logged.append({"run_id": run.info.run_id, "model_id": info.model_id})
print(json.dumps(logged))
"#;

/// Loads `models:/NAME/VERSION` with `mlflow.pyfunc` and prints its predictions.
const LOAD_MODEL: &str = r#"
import json, sys
import mlflow
import numpy as np

model = mlflow.pyfunc.load_model(sys.argv[1])
print(json.dumps([int(p) for p in model.predict(np.array([[0.0], [3.0]]))]))
"#;

fn python() -> PathBuf {
    std::env::var_os("MLREG_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"))
        .join("bin/python")
}

/// Runs a Python script against the shared server; returns the last line of its output.
async fn run_python(script: &str, args: &[&str]) -> String {
    let done = tokio::process::Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .env("MLFLOW_TRACKING_URI", &support::server().uri)
        .env_remove("MLFLOW_REGISTRY_URI")
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&done.stdout).into_owned();
    assert!(
        done.status.success(),
        "the script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&done.stderr)
    );
    stdout.lines().last().unwrap_or_default().to_owned()
}

/// A run that logged a model: its run id and its MLflow 3 logged model id.
#[derive(Debug, Clone)]
struct Logged {
    run_id: String,
    model_id: String,
}

/// Logs `count` real scikit-learn models, each in its own run, under `path`.
async fn log_models(count: usize, path: &str) -> Vec<Logged> {
    let line = run_python(LOG_MODELS, &[&count.to_string(), path]).await;
    parse_json(&line)
        .as_array()
        .expect("a list")
        .iter()
        .map(|entry| Logged {
            run_id: entry["run_id"].as_str().expect("run id").to_owned(),
            model_id: entry["model_id"].as_str().expect("model id").to_owned(),
        })
        .collect()
}

fn write(dir: &Path, name: &str, spec: &str) {
    let text = format!(
        "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n{spec}"
    );
    std::fs::write(dir.join(format!("{name}.yaml")), text).expect("write manifest");
}

fn mlreg(registry: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = support::mlreg();
    command
        .env("MLFLOW_TRACKING_URI", registry)
        .env("MLREG_RETRY_MIN_BACKOFF", "1ms")
        .env("MLREG_RETRY_MAX_BACKOFF", "5ms")
        .envs(env.iter().copied())
        .args(args)
        .arg("--dir")
        .arg(dir);
    support::output(&mut command)
}

/// The versions of `model` whose run is `run_id`.
fn versions_of_run(model: &ObservedModel, run_id: &str) -> Vec<u64> {
    model
        .versions
        .values()
        .filter(|v| v.run_id == run_id)
        .map(|v| v.version)
        .collect()
}

/// The changes of `model` in a JSON plan.
fn json_changes(plan: &Value, model: &str) -> Vec<Value> {
    plan["models"]
        .as_array()
        .and_then(|models| models.iter().find(|m| m["name"] == model))
        .and_then(|m| m["changes"].as_array().cloned())
        .unwrap_or_default()
}

async fn model_or_none(client: &MlflowClient, name: &str) -> Option<ObservedModel> {
    client.model(name).await.expect("read model")
}

#[tokio::test]
async fn a_run_selector_registers_the_runs_model_places_it_and_a_second_reconcile_writes_nothing() {
    let client = support::client();
    let uri = &support::server().uri;
    let name = support::unique("select-run");
    let logged = log_models(1, "model").await;
    let run = &logged[0];
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        &name,
        &format!(
            "  stages:\n    Staging: {{run: {}}}\n  aliases:\n    challenger: {{run: {}}}\n  gates:\n    Staging:\n      metrics:\n        val_accuracy: \">= 0.85\"\n",
            run.run_id, run.run_id
        ),
    );

    // The plan shows the registration as its own change, with its gate.
    let (code, text, stderr) = mlreg(uri, dir.path(), &["plan"], &[]);
    assert_eq!(code, 0, "{text}{stderr}");
    let short: String = run.run_id.chars().take(7).collect();
    assert!(
        text.contains(&format!(
            "+ register from run {short} → Staging, @challenger"
        )),
        "{text}"
    );
    assert!(text.contains("create model"), "{text}");
    assert!(
        text.contains("gate Staging for the new version: passes"),
        "{text}"
    );
    let (code, json, _) = mlreg(uri, dir.path(), &["plan", "--output", "json"], &[]);
    assert_eq!(code, 0, "{json}");
    let json = parse_json(&json);
    let changes = json_changes(&json, &name);
    let register = changes
        .iter()
        .find(|c| c["kind"] == "register")
        .unwrap_or_else(|| panic!("no register change in {json:#}"));
    assert_eq!(
        register["selector"]["run"],
        run.run_id.as_str(),
        "{register:#}"
    );
    assert_eq!(register["stage"], "Staging");
    assert_eq!(register["aliases"], serde_json::json!(["challenger"]));
    assert_eq!(
        register["source"]["source"],
        format!("models:/{}", run.model_id),
        "{register:#}"
    );
    assert_eq!(register["gate"]["version"], Value::Null, "{register:#}");
    assert_eq!(json["summary"]["register"], 1, "{json:#}");
    // Planning wrote nothing.
    assert!(model_or_none(&client, &name).await.is_none());

    let (code, stdout, stderr) = mlreg(uri, dir.path(), &["reconcile"], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let model = read_model(&client, &name).await;
    assert_eq!(stages(&model), vec![(1, Staging)]);
    assert_eq!(model.aliases.get("challenger"), Some(&1));
    let version = &model.versions[&1];
    assert_eq!(version.run_id, run.run_id);
    assert_eq!(version.source, format!("models:/{}", run.model_id));
    assert!(version.tags.contains_key("mlreg.transition"), "{version:?}");
    assert!(
        version.tags.contains_key("mlreg.alias.challenger"),
        "{version:?}"
    );

    // The version mlreg registered is the real model: MLflow loads it and it predicts.
    let predictions = run_python(LOAD_MODEL, &[&format!("models:/{name}/1")]).await;
    assert_eq!(parse_json(&predictions), serde_json::json!([0, 1]));

    // The selector now resolves to version 1: nothing left to do, nothing written.
    let (code, json, stderr) = mlreg(uri, dir.path(), &["plan", "--output", "json"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(json_changes(&parse_json(&json), &name).is_empty(), "{json}");
    let before = read_model(&client, &name).await;
    let (code, stdout, stderr) = mlreg(uri, dir.path(), &["reconcile"], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(read_model(&client, &name).await, before);
}

#[tokio::test]
async fn a_logged_model_selector_registers_it_and_moves_the_alias_from_the_current_holder() {
    let client = support::client();
    let uri = &support::server().uri;
    let name = support::unique("select-logged");
    let logged = log_models(2, "model").await;
    // Version 1 from the first model, registered the usual way, holds champion.
    client
        .create_model(&name, None, &Default::default())
        .await
        .expect("create model");
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        &name,
        &format!("  aliases:\n    champion: {{run: {}}}\n", logged[0].run_id),
    );
    let (code, stdout, stderr) = mlreg(uri, dir.path(), &["reconcile"], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        read_model(&client, &name).await.aliases.get("champion"),
        Some(&1)
    );

    write(
        dir.path(),
        &name,
        &format!(
            "  aliases:\n    champion: {{loggedModel: {}}}\n",
            logged[1].model_id
        ),
    );
    let (code, text, stderr) = mlreg(uri, dir.path(), &["plan"], &[]);
    assert_eq!(code, 0, "{text}{stderr}");
    let short: String = logged[1].model_id.chars().take(9).collect();
    assert!(
        text.contains(&format!("+ register from logged model {short} → @champion")),
        "{text}"
    );
    assert!(!text.contains("alias champion: 1 → (removed)"), "{text}");
    let (code, stdout, stderr) = mlreg(uri, dir.path(), &["reconcile"], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let model = read_model(&client, &name).await;
    assert_eq!(model.aliases.get("champion"), Some(&2));
    assert_eq!(
        model.versions[&2].source,
        format!("models:/{}", logged[1].model_id)
    );
    assert_eq!(model.versions[&2].run_id, logged[1].run_id);
    let predictions = run_python(LOAD_MODEL, &[&format!("models:/{name}@champion")]).await;
    assert_eq!(parse_json(&predictions), serde_json::json!([0, 1]));
}

#[tokio::test]
async fn a_selector_two_versions_match_is_an_error_naming_both() {
    let client = support::client();
    let uri = &support::server().uri;
    let name = support::unique("select-twice");
    let run = support::create_run().await;
    client
        .create_model(&name, None, &Default::default())
        .await
        .expect("create model");
    for index in 0..2 {
        client
            .create_version(
                &name,
                &format!("s3://bucket/{name}/{index}"),
                Some(&run),
                &Default::default(),
            )
            .await
            .expect("create version");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        &name,
        &format!("  stages:\n    Production: {{run: {run}}}\n"),
    );
    let (code, stdout, stderr) = mlreg(uri, dir.path(), &["plan"], &[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "run {run} matches 2 versions of model `{name}`: 1 and 2"
        )),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("{name}.yaml:7:")), "{stderr}");
    let (code, _, stderr) = mlreg(uri, dir.path(), &["reconcile"], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stages(&read_model(&client, &name).await),
        vec![(1, NoStage), (2, NoStage)]
    );
}

#[tokio::test]
async fn a_missing_run_or_a_run_without_the_model_refuses_the_plan_before_anything_is_applied() {
    let client = support::client();
    let uri = &support::server().uri;
    let name = support::unique("select-missing");
    let bare_run = support::create_run().await;
    client
        .create_model(&name, Some("before"), &Default::default())
        .await
        .expect("create model");
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        (
            "0123456789abcdef0123456789abcdef".to_owned(),
            "does not exist".to_owned(),
        ),
        (
            bare_run.clone(),
            format!("run `{bare_run}` logged no model named `model`"),
        ),
    ];
    for (run, expected) in cases {
        write(
            dir.path(),
            &name,
            &format!("  description: after\n  stages:\n    Staging: {{run: \"{run}\"}}\n"),
        );
        let (code, stdout, stderr) = mlreg(uri, dir.path(), &["reconcile"], &[]);
        assert_eq!(code, 1, "{stdout}{stderr}");
        assert!(stderr.contains(&expected), "{expected}: {stderr}");
        assert!(stderr.contains(&format!("{name}.yaml:8:")), "{stderr}");
        let model = read_model(&client, &name).await;
        assert_eq!(model.description, "before", "something was applied");
        assert!(model.versions.is_empty());
    }
}

#[tokio::test]
async fn a_failing_gate_blocks_the_registration() {
    let client = support::client();
    let uri = &support::server().uri;
    let name = support::unique("select-gated");
    let logged = log_models(1, "model").await;
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        &name,
        &format!(
            "  aliases:\n    champion: {{run: {}}}\n  gates:\n    \"@champion\":\n      metrics:\n        val_accuracy: \">= 0.95\"\n",
            logged[0].run_id
        ),
    );
    let (code, markdown, stderr) = mlreg(uri, dir.path(), &["plan", "--output", "markdown"], &[]);
    assert_eq!(code, 1, "{markdown}{stderr}");
    assert!(
        markdown.contains("| the new version → @champion | metric val_accuracy | `>= 0.95` | `0.9` | ❌ **fail** |"),
        "{markdown}"
    );
    let (code, stdout, stderr) = mlreg(uri, dir.path(), &["reconcile"], &[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        model_or_none(&client, &name).await.is_none(),
        "nothing may be applied"
    );
}

/// Under each fault on `model-versions/create`, the registry ends with exactly one
/// version for the selector, and the reconcile converges (on a second run at worst).
/// Multi-threaded: the proxy answers while the test waits for the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_under_faults_never_makes_two_versions() {
    let client = support::client();
    let server = support::server();
    let cases: [(&str, Fault, &str); 4] = [
        ("a 503 in place of the server", Fault::status(503), "20s"),
        (
            "a 503 after the server created it",
            Fault::ForwardThenStatus(503),
            "20s",
        ),
        (
            "a connection cut after the server created it",
            Fault::ForwardThenClose,
            "20s",
        ),
        (
            "an answer delayed beyond the request timeout",
            Fault::Delay(Duration::from_secs(4)),
            "1s",
        ),
    ];
    let logged = log_models(cases.len(), "model").await;
    for ((what, fault, timeout), run) in cases.into_iter().zip(&logged) {
        let name = support::unique("select-fault");
        client
            .create_model(&name, None, &Default::default())
            .await
            .expect("create model");
        let dir = tempfile::tempdir().expect("temp dir");
        write(
            dir.path(),
            &name,
            &format!("  stages:\n    Staging: {{run: {}}}\n", run.run_id),
        );
        let proxy = FaultProxy::start(&server.uri).await;
        proxy.push_matching("model-versions/create", [fault.clone()]);
        let env = [("MLREG_REQUEST_TIMEOUT", timeout)];
        let (first, stdout, stderr) = mlreg(&proxy.uri, dir.path(), &["reconcile"], &env);
        assert!(first == 0 || first == 1, "{what}: {stdout}{stderr}");
        if first != 0 {
            let (code, stdout, stderr) = mlreg(&proxy.uri, dir.path(), &["reconcile"], &env);
            assert_eq!(
                code, 0,
                "{what}: the second run converges: {stdout}{stderr}"
            );
        }
        // Let a delayed create land before counting.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let model = read_model(&client, &name).await;
        assert_eq!(
            versions_of_run(&model, &run.run_id),
            vec![1],
            "{what}: exactly one version for the selector: {model:#?}"
        );
        assert_eq!(stages(&model), vec![(1, Staging)], "{what}");
        let creates: Vec<Option<Fault>> = proxy
            .recorded()
            .into_iter()
            .filter(|r| r.target.contains("model-versions/create"))
            .map(|r| r.fault)
            .collect();
        assert_eq!(
            creates.first(),
            Some(&Some(fault.clone())),
            "{what}: the fault was exercised"
        );
        // Only a create the server never saw may be sent again.
        let reached = creates
            .iter()
            .filter(|f| !matches!(f, Some(Fault::Status { .. })))
            .count();
        assert_eq!(
            reached, 1,
            "{what}: creates that reached the server: {creates:?}"
        );
        let (code, json, _) = mlreg(&proxy.uri, dir.path(), &["plan", "--output", "json"], &[]);
        assert_eq!(code, 0, "{what}");
        assert!(
            json_changes(&parse_json(&json), &name).is_empty(),
            "{what}: {json}"
        );
    }
}

/// The training pipeline's path: a model is logged, `set-alias … run:ID` writes the
/// selector into the manifest (comments kept), the plan shows the registration, and
/// reconcile registers and points the alias.
#[tokio::test]
async fn set_alias_with_a_run_writes_the_selector_and_reconcile_registers_it() {
    let client = support::client();
    let uri = &support::server().uri;
    let name = support::unique("select-pipeline");
    let logged = log_models(1, "model").await;
    let run = &logged[0].run_id;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join(format!("{name}.yaml"));
    std::fs::write(
        &file,
        format!(
            "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  aliases: {{}}   # set by the pipeline\n"
        ),
    )
    .expect("write manifest");
    let (code, stdout, stderr) = mlreg(
        uri,
        dir.path(),
        &["set-alias", &name, "challenger", &format!("run:{run}")],
        &[],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let text = std::fs::read_to_string(&file).expect("read manifest");
    assert!(
        text.contains(&format!(
            "aliases: {{challenger: {{run: {run}}}}}   # set by the pipeline"
        )),
        "{text}"
    );
    let (code, stdout, stderr) = mlreg(
        uri,
        dir.path(),
        &["set-alias", &name, "challenger", "run:"],
        &[],
    );
    assert_eq!(code, 1, "a malformed selector is refused: {stdout}{stderr}");
    assert!(stderr.contains("`run:` is not a version"), "{stderr}");

    let (code, plan, stderr) = mlreg(uri, dir.path(), &["plan"], &[]);
    assert_eq!(code, 0, "{plan}{stderr}");
    assert!(plan.contains("+ register from run"), "{plan}");
    let (code, stdout, stderr) = mlreg(uri, dir.path(), &["reconcile"], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let model = read_model(&client, &name).await;
    assert_eq!(model.aliases.get("challenger"), Some(&1));
    assert_eq!(&model.versions[&1].run_id, run);

    // Promoting @challenger to @champion passes the selector on; reconcile moves the alias
    // without registering anything again.
    let (code, stdout, stderr) = mlreg(uri, dir.path(), &["promote", &name], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let text = std::fs::read_to_string(&file).expect("read manifest");
    assert!(
        text.contains(&format!("champion: {{run: {run}}}")),
        "{text}"
    );
    assert!(!text.contains("challenger"), "{text}");
    let (code, stdout, stderr) = mlreg(uri, dir.path(), &["reconcile"], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let model = read_model(&client, &name).await;
    assert_eq!(model.aliases.get("champion"), Some(&1));
    assert_eq!(model.aliases.get("challenger"), None);
    assert_eq!(model.versions.len(), 1);
}

/// `set-stage MODEL run:ID STAGE` writes the selector into the manifest (comments kept), a
/// reconcile registers the run's model into that stage, a second one changes nothing; moving
/// the selector to Production moves the same version, registering nothing again.
#[tokio::test]
async fn set_stage_with_a_run_writes_the_selector_and_reconcile_registers_it_into_the_stage() {
    use mlreg::stage::Stage::{Archived, Production};
    let client = support::client();
    let uri = &support::server().uri;
    let name = support::unique("select-stage");
    let logged = log_models(2, "model").await;
    let (live, next) = (&logged[0].run_id, &logged[1].run_id);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join(format!("{name}.yaml"));
    std::fs::write(
        &file,
        format!(
            "# fraud detector\napiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  stages:\n    Production: {{run: {live}}}   # live\n    Staging: []   # set by the pipeline\n"
        ),
    )
    .expect("write manifest");
    let (code, stdout, stderr) = mlreg(uri, dir.path(), &["reconcile"], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        stages(&read_model(&client, &name).await),
        vec![(1, Production)]
    );

    let (code, stdout, stderr) = mlreg(
        uri,
        dir.path(),
        &["set-stage", &name, &format!("run:{next}"), "Staging"],
        &[],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let text = std::fs::read_to_string(&file).expect("read manifest");
    assert_eq!(
        text,
        format!(
            "# fraud detector\napiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  stages:\n    Production: {{run: {live}}}   # live\n    Staging: {{run: {next}}}   # set by the pipeline\n"
        )
    );
    // Setting it again changes nothing; a malformed selector is refused, nothing written.
    let (code, stdout, stderr) = mlreg(
        uri,
        dir.path(),
        &["set-stage", &name, &format!("run:{next}"), "Staging"],
        &[],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, stderr) =
        mlreg(uri, dir.path(), &["set-stage", &name, "m-", "Staging"], &[]);
    assert_ne!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("`m-` is not a version"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).expect("read manifest"), text);

    let short: String = next.chars().take(7).collect();
    let (code, plan, stderr) = mlreg(uri, dir.path(), &["plan"], &[]);
    assert_eq!(code, 0, "{plan}{stderr}");
    assert!(
        plan.contains(&format!("+ register from run {short} → Staging")),
        "{plan}"
    );
    let (code, stdout, stderr) = mlreg(uri, dir.path(), &["reconcile"], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let model = read_model(&client, &name).await;
    assert_eq!(stages(&model), vec![(1, Production), (2, Staging)]);
    assert_eq!(&model.versions[&2].run_id, next);
    assert_eq!(versions_of_run(&model, next), vec![2]);

    // Nothing left to do, nothing written.
    let (code, json, stderr) = mlreg(uri, dir.path(), &["plan", "--output", "json"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(json_changes(&parse_json(&json), &name).is_empty(), "{json}");
    let (code, stdout, stderr) = mlreg(uri, dir.path(), &["reconcile"], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(read_model(&client, &name).await, model);

    // The selector moves to Production, replacing the live one: the same version moves.
    let (code, stdout, stderr) = mlreg(
        uri,
        dir.path(),
        &["set-stage", &name, &format!("run:{next}"), "Production"],
        &[],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let text = std::fs::read_to_string(&file).expect("read manifest");
    assert!(
        text.contains(&format!(
            "    Production: {{run: {next}}}   # live\n    Staging: []   # set by the pipeline\n"
        )),
        "{text}"
    );
    let (code, stdout, stderr) = mlreg(uri, dir.path(), &["reconcile"], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let model = read_model(&client, &name).await;
    assert_eq!(stages(&model), vec![(1, Archived), (2, Production)]);
    assert_eq!(model.versions.len(), 2);
}
