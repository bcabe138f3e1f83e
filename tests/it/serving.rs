//! Serving: `mlreg resolve` by target (stages and `@aliases`, the manifest's
//! `serving.prefer`), its one line on stdout, and the example service of
//! `examples/serving/` serving the version the manifest puts at `@champion` — a real
//! scikit-learn model, logged with `mlflow.sklearn.log_model` (an MLflow 3 logged model, so
//! the version's source is `models:/m-…`) — then its local fallback when the registry is
//! unreachable.
//!
//! The registry-down cases point mlreg and the service at a closed loopback port (bound,
//! then released, so nothing listens there): the shared server keeps running for the
//! other tests.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mlreg::stage::Stage;
use serde_json::Value;

use crate::support::{self, output, parse_json};

/// How long the example service may take to resolve, load its model and listen (importing
/// MLflow alone takes seconds on a busy machine).
const SERVICE_STARTUP: Duration = Duration::from_secs(180);

/// Settings of the developer's environment the Python processes must not inherit.
const PYTHON_SCRUBBED_ENV: &[&str] = &[
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_RUN_ID",
    "MLREG_DIR",
    "MLREG_OUTPUT",
    "RUST_LOG",
];

/// The project's venv python (the one `scripts/mlflow-server.sh` runs the server with).
fn python() -> PathBuf {
    std::env::var_os("MLREG_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"))
        .join("bin/python")
}

fn example(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/serving")
        .join(file)
}

/// A Python command with the registry at `registry` and nothing else inherited that
/// MLflow reads.
fn python_command(registry: &str) -> Command {
    let mut command = Command::new(python());
    for name in PYTHON_SCRUBBED_ENV {
        command.env_remove(name);
    }
    command
        .env("MLFLOW_TRACKING_URI", registry)
        .env("PYTHONUNBUFFERED", "1")
        .env("NO_COLOR", "1");
    command
}

/// A registry address where nothing listens: a loopback port the OS just gave out and
/// that was closed again, so connecting is refused at once.
fn dead_registry() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// Runs `examples/serving/train.py` (on the shared server) and returns its JSON line.
fn train(args: &[&str]) -> Value {
    let done = python_command(&support::server().uri)
        .arg(example("train.py"))
        .args(args)
        .output()
        .expect("run train.py");
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "train.py {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("train.py printed no JSON ({e}):\n{stdout}"))
}

fn predictions(value: &Value) -> Vec<f64> {
    value["predictions"]
        .as_array()
        .unwrap_or_else(|| panic!("no predictions in {value}"))
        .iter()
        .map(|p| p.as_f64().unwrap_or(f64::NAN))
        .collect()
}

fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
}

/// A `RegisteredModel` manifest: `spec` as YAML lines (indented two spaces). Literal
/// text, since `serving.prefer` is written here only.
fn write_manifest(dir: &Path, name: &str, spec: &str) {
    let text = format!(
        "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n{spec}"
    );
    std::fs::write(dir.join("model.yaml"), text).expect("write the manifest");
}

fn resolve_json(command: &mut assert_cmd::Command) -> (i32, Value, String) {
    let (code, stdout, stderr) = output(command.args(["--output", "json"]));
    let json = if code == 0 {
        parse_json(&stdout)
    } else {
        Value::Null
    };
    (code, json, stderr)
}

// ---------------------------------------------------------------------------------------
// resolve by target
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn resolve_walks_aliases_and_stages_from_the_command_line_or_serving_prefer() {
    let client = support::client();
    let name = support::unique("resolve-alias");
    support::seed_model(&client, &name, 3).await;
    support::place(
        &client,
        &name,
        &[(3, Stage::Production)],
        &[("champion", 1), ("challenger", 2)],
    )
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    write_manifest(
        dir.path(),
        &name,
        "  aliases:\n    champion: 1\n    challenger: 2\n  serving:\n    prefer: ['@canary', '@champion', Production]\n    localFallback: /models/local\n",
    );
    let resolve = |targets: &[&str]| {
        let mut command = support::mlreg();
        command
            .args(["resolve", &name])
            .args(targets)
            .arg("--dir")
            .arg(dir.path());
        command
    };

    // Default: serving.prefer. @canary holds nothing; @champion answers, pinned to the number.
    // Piped, stdout is exactly one line and stderr says nothing (no terminal, no -v).
    let (code, stdout, stderr) = output(&mut resolve(&[]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, format!("models:/{name}/1\n"));
    assert_eq!(stderr, "", "nothing to warn about");
    let (code, json, stderr) = resolve_json(&mut resolve(&[]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["target"], "@champion");
    assert_eq!(
        json["targets"],
        serde_json::json!(["@canary", "@champion", "Production"])
    );
    assert_eq!(json["version"], 1);
    assert_eq!(json["stage"], Value::Null);
    assert_eq!(json["fallback"], "later_target");
    assert_eq!(json["answered_by"], "registry");
    assert_eq!(json["source"], format!("s3://bucket/{name}/1"));
    assert_eq!(json["local_fallback"], "/models/local");

    // -v: which target answered and why, in one line on stderr; stdout unchanged.
    let (code, stdout, stderr) = output(resolve(&[]).arg("-v"));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, format!("models:/{name}/1\n"));
    assert!(
        stderr.contains(
            "@champion answered: version 1, from the registry (fallback: @canary holds no version)"
        ),
        "{stderr}"
    );

    // Targets on the command line win over serving.prefer, in their order.
    let (code, json, stderr) = resolve_json(&mut resolve(&["@challenger", "production"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        (json["target"].clone(), json["version"].clone()),
        ("@challenger".into(), 2.into())
    );
    assert_eq!(json["fallback"], Value::Null);
    let (code, json, stderr) = resolve_json(&mut resolve(&["Production", "@challenger"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["target"], "Production");
    assert_eq!(json["stage"], "Production");
    assert_eq!(json["uri"], format!("models:/{name}/3"));

    // Nothing held by the targets: the local fallback, still one line.
    let (code, stdout, stderr) = output(&mut resolve(&["@canary", "Staging"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "/models/local\n");

    // The deprecated --stage still works, and says what to write instead.
    let (code, stdout, stderr) = output(resolve(&[]).args(["--stage", "Production"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, format!("models:/{name}/3\n"));
    assert!(stderr.contains("--stage is deprecated"), "{stderr}");

    // A target that is no stage nor alias is a usage error, before any request.
    let (code, stdout, stderr) = output(&mut resolve(&["champion"]));
    assert_eq!(code, 1, "{stdout}");
    assert!(stderr.contains("`@name`"), "{stderr}");
}

#[test]
fn resolve_answers_from_the_manifests_aliases_when_the_registry_is_down() {
    let down = dead_registry();
    let dir = tempfile::tempdir().expect("temp dir");
    write_manifest(
        dir.path(),
        "fraud",
        "  stages:\n    Production: 3\n  aliases:\n    champion: 4\n  serving:\n    prefer: ['@champion', Production]\n    localFallback: models/fraud\n",
    );
    let resolve = |targets: &[&str]| {
        let mut command = support::offline();
        command
            .args(["resolve", "fraud"])
            .args(targets)
            .args(["--registry-uri", &down, "--dir"])
            .arg(dir.path());
        command
    };
    let started = Instant::now();
    let (code, stdout, stderr) = output(&mut resolve(&[]));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "resolve took {:?} with the registry down",
        started.elapsed()
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "models:/fraud/4\n");
    // The warning is said whatever the verbosity.
    assert!(stderr.contains("registry cannot be asked"), "{stderr}");

    let (code, json, stderr) = resolve_json(&mut resolve(&[]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["target"], "@champion");
    assert_eq!(json["answered_by"], "manifest");
    assert_eq!(json["source"], Value::Null);
    assert_eq!(json["local_fallback"], "models/fraud");

    let (code, stdout, stderr) = output(resolve(&["@challenger", "Production"]).arg("-v"));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "models:/fraud/3\n");
    assert!(
        stderr.contains("Production answered: version 3") && stderr.contains("source is unknown"),
        "{stderr}"
    );

    let (code, stdout, stderr) = output(&mut resolve(&["@challenger"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "models/fraud\n");
}

// ---------------------------------------------------------------------------------------
// the example service
// ---------------------------------------------------------------------------------------

/// The example service, killed when dropped.
struct Service {
    child: Child,
    address: String,
}

impl Service {
    /// Starts `examples/serving/serve.py MODEL` with the registry at `registry` and waits
    /// for the line saying where it listens.
    fn start(model: &str, dir: &Path, registry: &str) -> Service {
        let mut child = python_command(registry)
            .arg(example("serve.py"))
            .arg(model)
            .arg("--dir")
            .arg(dir)
            .args(["--port", "0", "--mlreg", env!("CARGO_BIN_EXE_mlreg")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start serve.py");
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        if let Some(pipe) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if lines_tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let stderr = child.stderr.take();
        let line = lines_rx.recv_timeout(SERVICE_STARTUP);
        let Ok(line) = line else {
            let _ = child.kill();
            let mut text = String::new();
            if let Some(mut pipe) = stderr {
                let _ = pipe.read_to_string(&mut text);
            }
            panic!("serve.py did not start:\n{text}");
        };
        // Drain stderr so the service never blocks on a full pipe.
        if let Some(mut pipe) = stderr {
            std::thread::spawn(move || std::io::copy(&mut pipe, &mut std::io::sink()));
        }
        let address = line
            .rsplit("http://")
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        assert!(line.contains("http://"), "unexpected first line: {line}");
        Service { child, address }
    }

    /// `METHOD path` with a JSON body; the status code and the JSON answer.
    fn request(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let mut stream = TcpStream::connect(&self.address).expect("connect to the service");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.address,
            body.len()
        )
        .expect("send");
        // HTTP/1.0: the service closes the connection after the answer.
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read the answer");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        (status, parse_json(body))
    }

    fn predict(&self, inputs: &str) -> Vec<f64> {
        let (status, answer) =
            self.request("POST", "/predict", &format!("{{\"inputs\": {inputs}}}"));
        assert_eq!(status, 200, "{answer}");
        predictions(&answer)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_example_service_serves_the_champion_then_the_local_fallback() {
    let name = support::unique("serving");
    let work = tempfile::tempdir().expect("temp dir");

    // Two versions with different predictions, and a third model as the local copy.
    let first = train(&[&name, "--slope", "2"]);
    let second = train(&[&name, "--slope", "-3"]);
    let fallback_dir = work.path().join("fallback");
    let fallback = train(&[
        &name,
        "--slope",
        "10",
        "--save",
        &fallback_dir.display().to_string(),
    ]);
    assert_eq!(
        (first["version"].as_u64(), second["version"].as_u64()),
        (Some(1), Some(2))
    );
    for trained in [&first, &second] {
        let source = trained["source"].as_str().unwrap_or_default();
        assert!(
            source.starts_with("models:/m-"),
            "an MLflow 3 logged model: {source}"
        );
    }
    let (champion, other, local) = (
        predictions(&first),
        predictions(&second),
        predictions(&fallback),
    );
    assert!(!same(&champion, &other) && !same(&champion, &local));

    // The champion is the older version, so "the newest" would be the wrong answer.
    let desired = work.path().join("desired-state");
    std::fs::create_dir(&desired).expect("mkdir");
    write_manifest(
        &desired,
        &name,
        &format!(
            "  aliases:\n    champion: 1\n    challenger: 2\n  serving:\n    prefer: ['@champion']\n    localFallback: {}\n",
            serde_json::to_string(&fallback_dir.display().to_string()).expect("a YAML string"),
        ),
    );
    let (code, stdout, stderr) =
        output(support::mlreg().args(["reconcile", "--dir"]).arg(&desired));
    assert_eq!(code, 0, "reconcile:\n{stdout}\n{stderr}");
    let (code, stdout, stderr) = output(
        support::mlreg()
            .args(["resolve", &name, "--dir"])
            .arg(&desired),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, format!("models:/{name}/1\n"));

    // The registry up: the service loads the champion from it.
    {
        let service = Service::start(&name, &desired, &support::server().uri);
        let (status, health) = service.request("GET", "/healthz", "");
        assert_eq!(status, 200, "{health}");
        assert_eq!(health["uri"], format!("models:/{name}/1"));
        assert_eq!(health["target"], "@champion");
        assert_eq!(health["served_from"], "registry");
        let served = service.predict("[[1.0], [2.0], [3.0]]");
        assert!(
            same(&served, &champion),
            "served {served:?}, champion {champion:?}"
        );
        assert!(!same(&served, &other));
    }

    // The registry unreachable: mlreg answers from the manifest, the service loads the
    // local copy.
    let service = Service::start(&name, &desired, &dead_registry());
    let (status, health) = service.request("GET", "/healthz", "");
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["served_from"], "local_fallback");
    let served = service.predict("[[1.0], [2.0], [3.0]]");
    assert!(
        same(&served, &local),
        "served {served:?}, fallback {local:?}"
    );
    let (status, _) = service.request("POST", "/predict", "not json");
    assert_eq!(status, 400);
}
