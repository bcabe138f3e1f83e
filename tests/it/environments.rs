//! Environments against the real MLflow server: the project file `mlreg.yaml`, `--env`,
//! `plan`/`reconcile --all-envs` (report, exit codes, order, stopping at the first failure,
//! retries through the fault proxy), notifications from the project file, workspaces on a
//! server started with `--enable-workspaces` (two models of the same name, each environment
//! changing only its own), and the Databricks conventions (host and bearer token, never
//! printed).
//!
//! Where workspaces are not the point, two model-name prefixes on the shared server stand
//! for two environments.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use mlreg::registry::Registry;

use crate::support::manifest::Manifest;
use crate::support::proxy::{Fault, FaultProxy};
use crate::support::{self, Server, output, parse_json};

/// One environment of a test project: name, registry URI, directory (relative to the
/// project), extra lines (`workspace: ...`, `tokenEnv: ...`).
struct Env<'a> {
    name: &'a str,
    uri: &'a str,
    dir: &'a str,
    extra: &'a str,
}

/// Writes `mlreg.yaml` into `root` declaring `environments` (and `notifications` lines).
fn write_project(root: &Path, environments: &[Env<'_>], notifications: &str) {
    let mut text = String::from("apiVersion: mlreg/v1\nkind: Project\nenvironments:\n");
    for env in environments {
        text.push_str(&format!(
            "  {}:\n    registryUri: {}\n    dir: {}\n",
            env.name, env.uri, env.dir
        ));
        for line in env.extra.lines().filter(|line| !line.trim().is_empty()) {
            text.push_str(&format!("    {}\n", line.trim()));
        }
    }
    text.push_str(notifications);
    std::fs::write(root.join("mlreg.yaml"), text).expect("write the project file");
}

/// `mlreg` run in `root` (where `mlreg.yaml` is), without `MLFLOW_TRACKING_URI`: the project
/// file must be what points it at a registry.
fn mlreg_in(root: &Path) -> assert_cmd::Command {
    let mut command = support::mlreg();
    command
        .current_dir(root)
        .env_remove("MLFLOW_TRACKING_URI")
        .env("MLREG_RETRY_MIN_BACKOFF", "10ms")
        .env("MLREG_RETRY_MAX_BACKOFF", "50ms");
    command
}

/// Seeds `name` with two versions and writes its manifest into `root/dir`: alias
/// `champion` on `version` (a change when the model has no alias).
async fn seed_environment(root: &Path, dir: &str, name: &str, version: u64) {
    support::seed_model(&support::client(), name, 2).await;
    std::fs::create_dir_all(root.join(dir)).expect("dir");
    Manifest::model(name)
        .alias("champion", version)
        .write(&root.join(dir), "m.yaml");
}

async fn aliases(
    client: &mlreg::registry::mlflow::MlflowClient,
    name: &str,
) -> BTreeMap<String, u64> {
    support::read_model(client, name).await.aliases
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_all_envs_reports_each_environment_with_terraform_exit_codes() {
    let root = tempfile::tempdir().expect("temp dir");
    let (a, b) = (
        support::unique("envs-plan-a"),
        support::unique("envs-plan-b"),
    );
    seed_environment(root.path(), "envs/a", &a, 1).await;
    seed_environment(root.path(), "envs/b", &b, 2).await;
    // `a` is in sync already; `b` has a change pending.
    support::client()
        .set_alias(&a, "champion", 1)
        .await
        .expect("set alias");
    let uri = support::server().uri.clone();
    write_project(
        root.path(),
        &[
            Env {
                name: "a",
                uri: &uri,
                dir: "envs/a",
                extra: "",
            },
            Env {
                name: "b",
                uri: &uri,
                dir: "envs/b",
                extra: "",
            },
        ],
        "",
    );

    let (code, stdout, stderr) = output(mlreg_in(root.path()).args([
        "plan",
        "--all-envs",
        "--detailed-exitcode",
        "-o",
        "json",
    ]));
    assert_eq!(code, 2, "changes pending in b:\n{stdout}\n{stderr}");
    let report = parse_json(&stdout);
    assert_eq!(report["format_version"], "1");
    let environments = report["environments"].as_array().expect("environments");
    let names: Vec<&str> = environments
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(names, ["a", "b"], "in the project file's order");
    assert_eq!(environments[0]["status"], "ok");
    assert_eq!(environments[0]["summary"]["total"], 0, "{report:#}");
    assert_eq!(environments[1]["summary"]["total"], 1, "{report:#}");
    assert_eq!(environments[1]["models"][0]["name"], b.as_str());
    assert_eq!(environments[1]["mode"], "plan");

    let (code, stdout, _) = output(mlreg_in(root.path()).args(["plan", "--all-envs"]));
    assert_eq!(code, 0, "without --detailed-exitcode: {stdout}");
    assert!(
        stdout.contains("Environment a (") && stdout.contains("Environment b ("),
        "{stdout}"
    );
    assert!(
        stdout.contains("Environments: a: no changes; b: changes pending"),
        "{stdout}"
    );

    let (code, stdout, _) =
        output(mlreg_in(root.path()).args(["plan", "--all-envs", "-o", "markdown"]));
    assert_eq!(code, 0);
    assert!(
        stdout.contains("## Environment `a`") && stdout.contains("## Environment `b`"),
        "{stdout}"
    );
    assert!(stdout.contains("| `b` | changes pending |"), "{stdout}");

    // --env picks one: a is in sync.
    let (code, stdout, stderr) =
        output(mlreg_in(root.path()).args(["plan", "--env", "a", "--detailed-exitcode"]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");

    // An environment that cannot be read fails the whole report (1), whatever the changes.
    write_project(
        root.path(),
        &[
            Env {
                name: "a",
                uri: &uri,
                dir: "envs/a",
                extra: "",
            },
            Env {
                name: "b",
                uri: &uri,
                dir: "envs/b",
                extra: "",
            },
            Env {
                name: "down",
                uri: "http://127.0.0.1:9",
                dir: "envs/down",
                extra: "",
            },
        ],
        "",
    );
    std::fs::create_dir_all(root.path().join("envs/down")).expect("dir");
    Manifest::model(&support::unique("envs-plan-down"))
        .write(&root.path().join("envs/down"), "m.yaml");
    let (code, stdout, stderr) = output(mlreg_in(root.path()).args([
        "plan",
        "--all-envs",
        "--detailed-exitcode",
        "-o",
        "json",
    ]));
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let report = parse_json(&stdout);
    assert_eq!(
        report["environments"][1]["summary"]["total"], 1,
        "the others are still planned"
    );
    assert_eq!(report["environments"][2]["status"], "failed");
    assert!(
        report["environments"][2]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot read the registry"),
        "{report:#}"
    );
    assert!(stderr.contains("In environment `down`"), "{stderr}");
    // Nothing was changed by planning.
    assert!(aliases(&support::client(), &b).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_all_envs_applies_in_order_and_stops_at_the_first_failure() {
    let root = tempfile::tempdir().expect("temp dir");
    let (a, c) = (
        support::unique("envs-apply-a"),
        support::unique("envs-apply-c"),
    );
    seed_environment(root.path(), "envs/a", &a, 1).await;
    seed_environment(root.path(), "envs/c", &c, 2).await;
    // b's manifests are invalid: it fails before reading its registry.
    std::fs::create_dir_all(root.path().join("envs/b")).expect("dir");
    std::fs::write(
        root.path().join("envs/b/m.yaml"),
        "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: x\nspec:\n  stages: {Prod: 1}\n",
    )
    .expect("write");
    let uri = support::server().uri.clone();
    write_project(
        root.path(),
        &[
            Env {
                name: "a",
                uri: &uri,
                dir: "envs/a",
                extra: "",
            },
            Env {
                name: "b",
                uri: &uri,
                dir: "envs/b",
                extra: "",
            },
            Env {
                name: "c",
                uri: &uri,
                dir: "envs/c",
                extra: "",
            },
        ],
        "",
    );
    let (code, stdout, stderr) =
        output(mlreg_in(root.path()).args(["reconcile", "--all-envs", "-o", "json"]));
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let report = parse_json(&stdout);
    let statuses: Vec<&str> = report["environments"]
        .as_array()
        .expect("environments")
        .iter()
        .filter_map(|e| e["status"].as_str())
        .collect();
    assert_eq!(statuses, ["ok", "failed", "not_run"], "{report:#}");
    assert_eq!(
        report["environments"][0]["result"]["applied"], 1,
        "{report:#}"
    );
    assert!(
        stderr.contains("In environment `b`") && stderr.contains("m.yaml:6:"),
        "{stderr}"
    );
    let client = support::client();
    assert_eq!(
        aliases(&client, &a).await.get("champion"),
        Some(&1),
        "a was applied"
    );
    assert!(aliases(&client, &c).await.is_empty(), "c was not run");

    // Text: the sections and the summary say the same.
    let (code, stdout, _) = output(mlreg_in(root.path()).args(["reconcile", "--all-envs"]));
    assert_eq!(code, 1);
    assert!(
        stdout.contains("Environments: a: no changes; b: failed; c: not run"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Not run: an earlier environment failed."),
        "{stdout}"
    );

    // Fixed, the next run applies c (and finds a in sync).
    std::fs::remove_file(root.path().join("envs/b/m.yaml")).expect("remove");
    Manifest::model(&support::unique("envs-apply-b")).write(&root.path().join("envs/b"), "m.yaml");
    let (code, stdout, stderr) =
        output(mlreg_in(root.path()).args(["reconcile", "--all-envs", "--detailed-exitcode"]));
    assert_eq!(code, 0, "applied: {stdout}\n{stderr}");
    assert_eq!(aliases(&client, &c).await.get("champion"), Some(&2));
}

#[tokio::test(flavor = "multi_thread")]
async fn env_selects_the_registry_and_directory_and_refuses_what_contradicts_it() {
    let root = tempfile::tempdir().expect("temp dir");
    let (a, b) = (support::unique("envs-one-a"), support::unique("envs-one-b"));
    seed_environment(root.path(), "envs/a", &a, 2).await;
    seed_environment(root.path(), "envs/b", &b, 2).await;
    let uri = support::server().uri.clone();
    write_project(
        root.path(),
        &[
            Env {
                name: "a",
                uri: &uri,
                dir: "envs/a",
                extra: "",
            },
            Env {
                name: "b",
                uri: &uri,
                dir: "envs/b",
                extra: "",
            },
        ],
        "",
    );
    let (code, stdout, stderr) = output(mlreg_in(root.path()).args(["reconcile", "--env", "a"]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let client = support::client();
    assert_eq!(aliases(&client, &a).await.get("champion"), Some(&2));
    assert!(
        aliases(&client, &b).await.is_empty(),
        "only a's directory was reconciled"
    );
    // Read commands take --env too (MLREG_ENV here).
    let (code, stdout, stderr) = output(
        mlreg_in(root.path())
            .env("MLREG_ENV", "a")
            .args(["info", &a]),
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("envs/a/m.yaml"),
        "the environment's manifest: {stdout}"
    );
    // validate: the project file and every environment's manifests.
    let (code, stdout, stderr) = output(mlreg_in(root.path()).arg("validate"));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("project file mlreg.yaml valid: 2 environments (a, b)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("environment a: 1 manifest valid")
            && stdout.contains("environment b: 1 manifest valid"),
        "{stdout}"
    );

    // An unknown environment is an error naming the known ones; nothing is read.
    let (code, _, stderr) = output(mlreg_in(root.path()).args(["plan", "--env", "prod"]));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("unknown environment `prod`") && stderr.contains("declares a, b"),
        "{stderr}"
    );
    // --env with --registry-uri or --dir: an error, not a guess.
    let (code, _, stderr) =
        output(mlreg_in(root.path()).args(["plan", "--env", "a", "--registry-uri", &uri]));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("--registry-uri cannot be given with --env a"),
        "{stderr}"
    );
    let (code, _, stderr) =
        output(mlreg_in(root.path()).args(["plan", "--env", "a", "--dir", "envs/b"]));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("--dir cannot be given with --env a"),
        "{stderr}"
    );
    // MLFLOW_TRACKING_URI and MLREG_DIR from the environment are overridden, not errors.
    let (code, stdout, stderr) = output(
        mlreg_in(root.path())
            .env("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
            .env("MLREG_DIR", "elsewhere")
            .args(["plan", "--env", "a", "--detailed-exitcode"]),
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // No project file: --env and --all-envs say so.
    let empty = tempfile::tempdir().expect("temp dir");
    let (code, _, stderr) = output(mlreg_in(empty.path()).args(["plan", "--all-envs"]));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("--all-envs needs a project file"),
        "{stderr}"
    );
    // --config names it from anywhere.
    let (code, stdout, stderr) = output(
        mlreg_in(empty.path())
            .arg("--config")
            .arg(root.path().join("mlreg.yaml"))
            .args(["plan", "--env", "b", "--detailed-exitcode"]),
    );
    assert_eq!(code, 2, "b still has its change: {stdout}\n{stderr}");
}

#[test]
fn the_project_files_error_classes_point_at_file_line_and_column() {
    let root = tempfile::tempdir().expect("temp dir");
    let cases: &[(&str, &str)] = &[
        (
            "environments:\n  a:\n    registryUri: http://h\n    dir: a\n    token: x\n",
            "mlreg.yaml:7:5: unknown field `token`",
        ),
        (
            "environments:\n  a:\n    registryUri: http://h\n    dir: a\n  a:\n    registryUri: http://h\n    dir: b\n",
            "mlreg.yaml:7:3: duplicate key `a`",
        ),
        (
            "environments:\n  a:\n    dir: a\n",
            "missing field `registryUri`",
        ),
        (
            "environments:\n  a:\n    registryUri: http://h\n    dir: shared\n  b:\n    registryUri: http://h2\n    dir: ./shared\n",
            "mlreg.yaml:9:10: environments `a` and `b` share the directory",
        ),
        (
            "environments:\n  a:\n    registryUri: http://h\n    dir: a\nnotifications:\n  - url: http://r\n    events: [applied, deployed]\n",
            "mlreg.yaml:9:23: unknown event `deployed`",
        ),
        (
            "environments:\n  a:\n    registryUri: databricks-uc\n    dir: a\n",
            "Unity Catalog (`databricks-uc`) is not supported yet",
        ),
    ];
    for (body, expected) in cases {
        std::fs::write(
            root.path().join("mlreg.yaml"),
            format!("apiVersion: mlreg/v1\nkind: Project\n{body}"),
        )
        .expect("write");
        let (code, stdout, stderr) =
            output(support::offline().current_dir(root.path()).arg("validate"));
        assert_eq!(code, 1, "{body}\n{stdout}");
        let plain: String = stderr.lines().map(str::trim).collect::<Vec<_>>().join("\n");
        let located = plain.replace("\n--> ", " --> ");
        assert!(
            stderr.contains(expected) || located_matches(&stderr, expected),
            "expected `{expected}` for\n{body}\ngot:\n{stderr}\n{located}"
        );
        assert!(stderr.contains("help:"), "every error has a hint: {stderr}");
    }
    // The schema is printed as committed.
    let (code, stdout, _) = output(support::offline().args(["schema", "--project"]));
    assert_eq!(code, 0);
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/mlreg-project.schema.json"),
    )
    .expect("committed schema");
    assert_eq!(stdout, committed);
}

/// Whether `stderr` holds `expected` written as `file:line:col: message` in the rendered
/// form (`error: message` then ` --> file:line:col`).
fn located_matches(stderr: &str, expected: &str) -> bool {
    let Some((location, message)) = expected.split_once(": ") else {
        return false;
    };
    let lines: Vec<&str> = stderr.lines().collect();
    lines.windows(2).any(|pair| {
        pair[0].starts_with("error: ")
            && pair[0].contains(message)
            && pair[1].trim_start().starts_with("-->")
            && pair[1].trim_end().ends_with(location)
    })
}

/// A receiver recording each body it gets.
async fn receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State(seen): State<Arc<Mutex<Vec<String>>>>, body: Bytes| async move {
                    seen.lock()
                        .expect("lock")
                        .push(String::from_utf8_lossy(&body).into_owned());
                    "ok"
                },
            ),
        )
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{address}/hook"), seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_project_files_notifications_get_their_events_with_the_environment() {
    let root = tempfile::tempdir().expect("temp dir");
    let a = support::unique("envs-notify-a");
    seed_environment(root.path(), "envs/a", &a, 2).await;
    let (applied_url, applied) = receiver().await;
    let (failed_url, failed) = receiver().await;
    let uri = support::server().uri.clone();
    write_project(
        root.path(),
        &[Env {
            name: "a",
            uri: &uri,
            dir: "envs/a",
            extra: "",
        }],
        &format!(
            "notifications:\n  - url: {applied_url}\n    events: [applied]\n  - url: {failed_url}\n    format: slack\n    events: [failed, invalid]\n"
        ),
    );
    let (code, stdout, stderr) = output(mlreg_in(root.path()).args(["reconcile", "--env", "a"]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let bodies = applied.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let event = parse_json(&bodies[0]);
    assert_eq!(event["event"], "applied");
    assert_eq!(event["environment"], "a");
    assert_eq!(event["model"], a.as_str());
    assert!(
        failed.lock().expect("lock").is_empty(),
        "that receiver only wants failures"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn all_envs_retries_through_faults_and_a_rerun_completes_without_duplicates() {
    let root = tempfile::tempdir().expect("temp dir");
    let (a, b, c) = (
        support::unique("envs-fault-a"),
        support::unique("envs-fault-b"),
        support::unique("envs-fault-c"),
    );
    seed_environment(root.path(), "envs/a", &a, 2).await;
    seed_environment(root.path(), "envs/b", &b, 2).await;
    seed_environment(root.path(), "envs/c", &c, 2).await;
    let flaky = FaultProxy::start(&support::server().uri).await;
    let down = FaultProxy::start(&support::server().uri).await;
    let uri = support::server().uri.clone();
    write_project(
        root.path(),
        &[
            Env {
                name: "a",
                uri: &flaky.uri,
                dir: "envs/a",
                extra: "",
            },
            Env {
                name: "b",
                uri: &down.uri,
                dir: "envs/b",
                extra: "",
            },
            Env {
                name: "c",
                uri: &uri,
                dir: "envs/c",
                extra: "",
            },
        ],
        "",
    );
    // a: the alias write is refused twice (503, 429), then lands; b: every write is lost
    // after the server acted, past the retries, so b fails and c is not run.
    flaky.push_matching(
        "registered-models/alias",
        [Fault::status(503), Fault::status(429)],
    );
    down.push_matching(
        "registered-models/alias",
        std::iter::repeat_n(Fault::status(503), 20),
    );
    let (code, stdout, stderr) =
        output(mlreg_in(root.path()).args(["reconcile", "--all-envs", "-o", "json"]));
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let report = parse_json(&stdout);
    let statuses: Vec<&str> = report["environments"]
        .as_array()
        .expect("environments")
        .iter()
        .filter_map(|e| e["status"].as_str())
        .collect();
    assert_eq!(statuses, ["ok", "failed", "not_run"], "{report:#}");
    let client = support::client();
    assert_eq!(aliases(&client, &a).await.get("champion"), Some(&2));
    assert!(
        aliases(&client, &b).await.is_empty(),
        "b's write never reached the server"
    );
    assert!(aliases(&client, &c).await.is_empty());
    let alias_writes = |proxy: &FaultProxy| {
        proxy
            .recorded()
            .iter()
            .filter(|r| r.method == "POST" && r.target.contains("registered-models/alias"))
            .count()
    };
    assert_eq!(alias_writes(&flaky), 3, "two refusals, one write");

    // The outage over (b's registry answers again), the rerun completes b and c and writes
    // nothing twice.
    write_project(
        root.path(),
        &[
            Env {
                name: "a",
                uri: &flaky.uri,
                dir: "envs/a",
                extra: "",
            },
            Env {
                name: "b",
                uri: &uri,
                dir: "envs/b",
                extra: "",
            },
            Env {
                name: "c",
                uri: &uri,
                dir: "envs/c",
                extra: "",
            },
        ],
        "",
    );
    let before = alias_writes(&flaky);
    let (code, stdout, stderr) =
        output(mlreg_in(root.path()).args(["reconcile", "--all-envs", "--detailed-exitcode"]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(
        alias_writes(&flaky),
        before,
        "a was in sync: no second write"
    );
    assert_eq!(aliases(&client, &b).await.get("champion"), Some(&2));
    assert_eq!(aliases(&client, &c).await.get("champion"), Some(&2));
}

/// The server started with `--enable-workspaces`, for this module only.
fn workspace_server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::start_with_env(&[("MLFLOW_SERVER_ARGS", "--enable-workspaces")]))
}

/// Creates workspace `name` through MLflow's REST API (`POST /api/3.0/mlflow/workspaces`).
async fn create_workspace(server: &Server, name: &str) {
    // reqwest is built without a default TLS provider (mlreg's client installs ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::Client::new()
        .post(format!("{}/api/3.0/mlflow/workspaces", server.uri))
        .json(&serde_json::json!({ "name": name }))
        .send()
        .await
        .expect("create workspace");
    assert!(
        response.status().is_success(),
        "create workspace {name}: {}",
        response.text().await.unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn workspaces_keep_models_of_the_same_name_apart() {
    let server = workspace_server();
    let suffix = support::unique("ws");
    let (team_a, team_b) = (format!("a-{suffix}"), format!("b-{suffix}"));
    create_workspace(server, &team_a).await;
    create_workspace(server, &team_b).await;
    let in_workspace = |workspace: &str| {
        let workspace = workspace.to_owned();
        server.client_with(move |config| config.workspace = Some(workspace))
    };
    let (client_a, client_b) = (in_workspace(&team_a), in_workspace(&team_b));
    // One name, two models: two versions in a, three in b.
    support::seed_model(&client_a, "churn", 2).await;
    support::seed_model(&client_b, "churn", 3).await;
    let root = tempfile::tempdir().expect("temp dir");
    for (dir, version) in [("envs/a", 1), ("envs/b", 3)] {
        std::fs::create_dir_all(root.path().join(dir)).expect("dir");
        Manifest::model("churn")
            .alias("champion", version)
            .write(&root.path().join(dir), "m.yaml");
    }
    write_project(
        root.path(),
        &[
            Env {
                name: "a",
                uri: &server.uri,
                dir: "envs/a",
                extra: &format!("workspace: {team_a}"),
            },
            Env {
                name: "b",
                uri: &server.uri,
                dir: "envs/b",
                extra: &format!("workspace: {team_b}"),
            },
        ],
        "",
    );
    let mlreg = || {
        let mut command = server.mlreg();
        command
            .current_dir(root.path())
            .env_remove("MLFLOW_TRACKING_URI");
        command
    };
    let (code, stdout, stderr) =
        output(mlreg().args(["plan", "--all-envs", "--detailed-exitcode", "-o", "json"]));
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    let report = parse_json(&stdout);
    for (index, version) in [(0, 1), (1, 3)] {
        let changes = &report["environments"][index]["models"][0]["changes"];
        assert_eq!(changes[0]["kind"], "set_alias", "{report:#}");
        assert_eq!(
            changes[0]["to"], version,
            "each plans against its own model: {report:#}"
        );
    }

    let (code, stdout, stderr) = output(mlreg().args(["reconcile", "--env", "a"]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(aliases(&client_a, "churn").await.get("champion"), Some(&1));
    assert!(
        aliases(&client_b, "churn").await.is_empty(),
        "b's model of the same name is untouched"
    );
    // The default workspace has no such model at all.
    assert!(
        server
            .client()
            .model("churn")
            .await
            .expect("read")
            .is_none()
    );

    // MLFLOW_WORKSPACE works without a project file.
    let (code, stdout, stderr) = output(
        server
            .mlreg()
            .env("MLFLOW_WORKSPACE", &team_b)
            .args(["versions", "churn", "-o", "json"]),
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(
        parse_json(&stdout)["versions"].as_array().map(Vec::len),
        Some(3),
        "{stdout}"
    );
    // An unknown workspace is found by the check before the first read, and said so.
    let (code, _, stderr) = output(
        server
            .mlreg()
            .env("MLFLOW_WORKSPACE", "no-such-workspace")
            .args(["versions", "churn"]),
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("the server has no workspace `no-such-workspace`"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn databricks_uses_the_host_and_token_of_its_variables_or_profile_and_never_prints_the_token()
{
    let name = support::unique("envs-databricks");
    support::seed_model(&support::client(), &name, 1).await;
    let proxy = FaultProxy::start(&support::server().uri).await;
    let token = "dapi-test-0123456789abcdef";
    let databricks = || {
        let mut command = support::mlreg();
        command
            .env("MLFLOW_TRACKING_URI", "databricks")
            .env_remove("DATABRICKS_CONFIG_FILE")
            .env_remove("DATABRICKS_HOST")
            .env_remove("DATABRICKS_TOKEN")
            .env("RUST_LOG", "trace");
        command
    };
    // DATABRICKS_HOST / DATABRICKS_TOKEN.
    let (code, stdout, stderr) = output(
        databricks()
            .env("DATABRICKS_HOST", &proxy.uri)
            .env("DATABRICKS_TOKEN", token)
            .args(["versions", &name, "-vvv"]),
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&name) || stdout.contains("s3://bucket"),
        "{stdout}"
    );
    let authorizations: Vec<Option<String>> = proxy
        .recorded()
        .iter()
        .map(|r| r.header("authorization"))
        .collect();
    assert!(!authorizations.is_empty());
    assert!(
        authorizations
            .iter()
            .all(|value| value.as_deref() == Some(&format!("Bearer {token}"))),
        "{authorizations:?}"
    );
    assert!(
        !stdout.contains(token) && !stderr.contains(token),
        "the token is never printed, even at trace"
    );
    assert!(!stderr.contains("dapi-test"), "{stderr}");

    // A profile of DATABRICKS_CONFIG_FILE: `databricks://prod`, with a host without scheme
    // (https is assumed, so this one names http explicitly for the local proxy).
    let config = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(
        config.path(),
        format!("[DEFAULT]\nhost = http://127.0.0.1:9\ntoken = wrong\n\n[prod]\nhost = {}\ntoken = {token}-prod\n", proxy.uri),
    )
    .expect("write");
    let recorded = proxy.recorded().len();
    let (code, stdout, stderr) = output(
        databricks()
            .env("MLFLOW_TRACKING_URI", "databricks://prod")
            .env("DATABRICKS_CONFIG_FILE", config.path())
            .args(["versions", &name]),
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let profile_requests = &proxy.recorded()[recorded..];
    assert!(!profile_requests.is_empty());
    assert!(
        profile_requests
            .iter()
            .all(|r| r.header("authorization").as_deref() == Some(&format!("Bearer {token}-prod")))
    );
    assert!(!stdout.contains(token) && !stderr.contains(token));

    // An environment whose token comes from the variable it names: only that one is sent.
    let root = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(root.path().join("envs/p")).expect("dir");
    Manifest::model(&name).write(&root.path().join("envs/p"), "m.yaml");
    write_project(
        root.path(),
        &[Env {
            name: "p",
            uri: &proxy.uri,
            dir: "envs/p",
            extra: "tokenEnv: PROD_TOKEN_FOR_TEST",
        }],
        "",
    );
    let recorded = proxy.recorded().len();
    let (code, stdout, stderr) = output(
        mlreg_in(root.path())
            .env("MLFLOW_TRACKING_TOKEN", "global-token-must-not-be-sent")
            .env("PROD_TOKEN_FOR_TEST", "env-token-value")
            .env("RUST_LOG", "trace")
            .args(["plan", "--env", "p"]),
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let sent: Vec<Option<String>> = proxy.recorded()[recorded..]
        .iter()
        .map(|r| r.header("authorization"))
        .collect();
    assert!(
        !sent.is_empty()
            && sent
                .iter()
                .all(|v| v.as_deref() == Some("Bearer env-token-value")),
        "{sent:?}"
    );
    assert!(!stdout.contains("env-token-value") && !stderr.contains("env-token-value"));

    // Unity Catalog: a clear error, nothing sent.
    let (code, _, stderr) = output(
        support::mlreg()
            .env("MLFLOW_TRACKING_URI", "databricks-uc")
            .args(["versions", &name]),
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("Unity Catalog") && stderr.contains("not supported yet"),
        "{stderr}"
    );
    assert!(
        stderr.contains("unity-catalog") && stderr.contains("no stages"),
        "says why: {stderr}"
    );
}

#[test]
fn a_manifest_called_mlreg_yaml_stays_a_manifest_and_the_project_file_is_no_manifest() {
    // Before project files existed, a manifest could be called mlreg.yaml: it still is one.
    let old = tempfile::tempdir().expect("temp dir");
    Manifest::model("m-old").write(old.path(), "mlreg.yaml");
    let (code, stdout, stderr) = output(
        support::offline()
            .current_dir(old.path())
            .args(["validate", "--dir", "."]),
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 manifest valid (1 file): m-old"),
        "{stdout}"
    );

    // An environment whose directory holds the project file does not read it as a manifest.
    let root = tempfile::tempdir().expect("temp dir");
    write_project(
        root.path(),
        &[Env {
            name: "root",
            uri: "http://127.0.0.1:9",
            dir: ".",
            extra: "",
        }],
        "",
    );
    Manifest::model("m-root").write(root.path(), "m.yaml");
    let (code, stdout, stderr) =
        output(support::offline().current_dir(root.path()).arg("validate"));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("environment root: 1 manifest valid (1 file): m-root"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_env_serves_its_environment_with_the_project_files_notifications() {
    let root = tempfile::tempdir().expect("temp dir");
    let (a, b) = (
        support::unique("envs-watch-a"),
        support::unique("envs-watch-b"),
    );
    seed_environment(root.path(), "envs/a", &a, 2).await;
    seed_environment(root.path(), "envs/b", &b, 2).await;
    let (url, seen) = receiver().await;
    let uri = support::server().uri.clone();
    write_project(
        root.path(),
        &[
            Env {
                name: "a",
                uri: &uri,
                dir: "envs/a",
                extra: "",
            },
            Env {
                name: "b",
                uri: &uri,
                dir: "envs/b",
                extra: "",
            },
        ],
        &format!("notifications:\n  - url: {url}\n    events: [applied]\n"),
    );
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mlreg"));
    command
        .current_dir(root.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1");
    let mut daemon =
        support::daemon::Daemon::spawn_in_project(command, &["--env", "a", "--interval", "1h"]);
    daemon.wait_for_readyz(200).await;

    // The environment's registry and directory: a's alias moved, b's manifest not read.
    let client = support::client();
    assert_eq!(
        aliases(&client, &a).await.get("champion"),
        Some(&2),
        "{}",
        daemon.logs()
    );
    assert!(
        aliases(&client, &b).await.is_empty(),
        "b is another environment's"
    );
    let status = daemon.status().await;
    let names: Vec<&str> = status["models"]
        .as_array()
        .expect("models")
        .iter()
        .filter_map(|model| model["name"].as_str())
        .collect();
    assert_eq!(names, [a.as_str()], "{status}");

    // The project file's receiver got the apply, naming the environment.
    let received = Arc::clone(&seen);
    daemon
        .wait_for("the applied notification", || {
            let received = Arc::clone(&received);
            async move { !received.lock().expect("lock").is_empty() }
        })
        .await;
    let bodies = seen.lock().expect("lock").clone();
    let event = parse_json(&bodies[0]);
    assert_eq!(event["event"], "applied", "{bodies:?}");
    assert_eq!(event["environment"], "a", "{bodies:?}");
    assert_eq!(event["model"], a.as_str(), "{bodies:?}");

    // The status page groups the model under its environment.
    let (code, page) = daemon.get("/").await;
    assert_eq!(code, 200);
    assert!(page.contains("data-environment=\"a\""), "{page}");
}
