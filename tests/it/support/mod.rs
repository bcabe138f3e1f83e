//! Shared test support: the MLflow server, unique names, running the binary.
//!
//! [`server`] starts one throw-away MLflow server per test binary, on first use, with
//! `scripts/mlflow-server.sh`; the script stops the server and deletes its data when this
//! process exits. [`Server::start`] starts an extra, dedicated one (stopped on drop) for
//! tests that need a registry nobody else writes to. Tests sharing the server isolate
//! themselves by model name ([`unique`]). [`proxy::FaultProxy`] sits between a client
//! and a server to inject faults (error statuses, lost answers, dropped connections).

pub mod browser;
pub mod daemon;
pub mod fleet;
pub mod manifest;
pub mod proxy;
pub mod snapshot;
pub mod tls;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mlreg::registry::mlflow::MlflowClient;
use mlreg::registry::{ObservedModel, Registry, RegistryConfig};
use mlreg::stage::Stage;

/// How long a server may take to answer `/health` (the script itself gives up after 120 s).
const STARTUP_DEADLINE: Duration = Duration::from_secs(240);

/// Credentials and settings of the developer's environment that must not leak into the
/// binary under test.
const SCRUBBED_ENV: &[&str] = &[
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_INSECURE_TLS",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_WORKSPACE",
    "MLREG_CONFIG",
    "MLREG_ENV",
    "DATABRICKS_HOST",
    "DATABRICKS_TOKEN",
    "DATABRICKS_CONFIG_FILE",
    "MLREG_DIR",
    "MLREG_OUTPUT",
    "MLREG_COLOR",
    "MLREG_LOG_FORMAT",
    "MLREG_REQUEST_TIMEOUT",
    "MLREG_MAX_CHANGES",
    "MLREG_CONCURRENCY",
    "MLREG_RETRY_MIN_BACKOFF",
    "MLREG_RETRY_MAX_BACKOFF",
    "RUST_LOG",
];

/// A running MLflow server started by `scripts/mlflow-server.sh`.
#[derive(Debug)]
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub uri: String,
    /// The server's temporary directory (SQLite database, artifacts, `server.log`).
    pub data_dir: PathBuf,
    script: Mutex<Child>,
}

impl Server {
    /// Starts a dedicated server and waits until it answers; stopped when dropped.
    pub fn start() -> Server {
        Server::start_with_env(&[])
    }

    /// Like [`Server::start`], with extra environment for `scripts/mlflow-server.sh` and the
    /// server (`MLFLOW_SERVER_ARGS`, the basic-auth app's `MLFLOW_AUTH_ADMIN_PASSWORD`, ...).
    pub fn start_with_env(env: &[(&str, &str)]) -> Server {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/mlflow-server.sh");
        let mut child = Command::new(&script)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()));

        // The script's stderr (setup messages, the server log on failure), kept for the
        // panic message.
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(mut pipe) = child.stderr.take() {
            let stderr = Arc::clone(&stderr);
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                if let Ok(mut shared) = stderr.lock() {
                    shared.push_str(&text);
                }
            });
        }
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

        let started = std::time::Instant::now();
        let mut uri = None;
        let mut data_dir = None;
        while uri.is_none() || data_dir.is_none() {
            let remaining = STARTUP_DEADLINE.saturating_sub(started.elapsed());
            match lines_rx.recv_timeout(remaining) {
                Ok(line) => {
                    if let Some(value) = line.strip_prefix("MLFLOW_TRACKING_URI=") {
                        uri = Some(value.trim().to_owned());
                    } else if let Some(value) = line.strip_prefix("MLFLOW_DATA_DIR=") {
                        data_dir = Some(PathBuf::from(value.trim()));
                    }
                }
                Err(failure) => {
                    let _ = terminate(&mut child);
                    // Let the stderr thread collect what the script wrote before it ended.
                    std::thread::sleep(Duration::from_millis(200));
                    let stderr = stderr.lock().map(|s| s.clone()).unwrap_or_default();
                    panic!(
                        "{} did not report a running MLflow server ({}) after {:?}; its stderr:\n{stderr}",
                        script.display(),
                        match failure {
                            mpsc::RecvTimeoutError::Timeout => "deadline passed",
                            mpsc::RecvTimeoutError::Disconnected => "it exited",
                        },
                        started.elapsed(),
                    );
                }
            }
        }
        let (Some(uri), Some(data_dir)) = (uri, data_dir) else {
            unreachable!("the loop ends only when both are set");
        };
        Server {
            uri,
            data_dir,
            script: Mutex::new(child),
        }
    }

    /// A client of this server with the default configuration.
    pub fn client(&self) -> MlflowClient {
        self.client_with(|_| {})
    }

    /// A client of this server whose configuration `adjust` changes (page sizes, retries).
    pub fn client_with(&self, adjust: impl FnOnce(&mut RegistryConfig)) -> MlflowClient {
        let url = url::Url::parse(&self.uri).expect("the server URI is a URL");
        let mut config = RegistryConfig::new(url);
        adjust(&mut config);
        MlflowClient::new(config).expect("client for the test server")
    }

    /// The `mlreg` binary pointed at this server, with a clean environment.
    pub fn mlreg(&self) -> assert_cmd::Command {
        let mut command = assert_cmd::cargo::cargo_bin_cmd!("mlreg");
        for name in SCRUBBED_ENV {
            command.env_remove(name);
        }
        command
            .env("MLFLOW_TRACKING_URI", &self.uri)
            .env("NO_COLOR", "1");
        command
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(mut child) = self.script.lock() {
            let _ = terminate(&mut child);
        }
    }
}

/// Stops the script with SIGTERM, so its trap stops the server's whole process group and
/// deletes the data (SIGKILL would leave the server running), then reaps it.
fn terminate(child: &mut Child) -> std::io::Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill()?;
    child.wait().map(drop)
}

/// The server shared by every test of this binary, started on first use.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(Server::start)
}

/// A client of the shared server.
pub fn client() -> MlflowClient {
    server().client()
}

/// The `mlreg` binary pointed at the shared server (`MLFLOW_TRACKING_URI`, `NO_COLOR=1`,
/// no inherited credentials).
pub fn mlreg() -> assert_cmd::Command {
    server().mlreg()
}

/// The `mlreg` binary with no registry configured, `NO_COLOR=1` and no inherited
/// credentials or settings: for commands that must not touch the network.
pub fn offline() -> assert_cmd::Command {
    let mut command = assert_cmd::cargo::cargo_bin_cmd!("mlreg");
    for name in SCRUBBED_ENV {
        command.env_remove(name);
    }
    command
        .env_remove("MLFLOW_TRACKING_URI")
        .env("NO_COLOR", "1");
    command
}

/// A model name no other test uses: `prefix`, this process and a counter (plus a time
/// component, in case a server outlives one test run). Safe in YAML and in MLflow names.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", run_id())
}

/// The part of [`unique`] names that identifies this test run (hexadecimal digits):
/// snapshots filter `-<run id>-<counter>` out (see [`snapshot::settings`]).
pub fn run_id() -> &'static str {
    static RUN: OnceLock<String> = OnceLock::new();
    RUN.get_or_init(|| {
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or_default();
        format!("{:x}{:x}", std::process::id(), seconds % 0x10000)
    })
}

/// Creates `name` (no description, no tags) with `versions` versions whose sources are
/// `s3://bucket/{name}/{n}`; returns their numbers.
pub async fn seed_model(client: &MlflowClient, name: &str, versions: u64) -> Vec<u64> {
    client
        .create_model(name, None, &BTreeMap::new())
        .await
        .unwrap_or_else(|error| panic!("create model {name}: {error}"));
    let mut numbers = Vec::new();
    for n in 1..=versions {
        let number = client
            .create_version(
                name,
                &format!("s3://bucket/{name}/{n}"),
                None,
                &BTreeMap::new(),
            )
            .await
            .unwrap_or_else(|error| panic!("create version {n} of {name}: {error}"));
        numbers.push(number);
    }
    numbers
}

/// Puts versions of `name` in stages (without archiving others) and points aliases.
pub async fn place(
    client: &MlflowClient,
    name: &str,
    stages: &[(u64, Stage)],
    aliases: &[(&str, u64)],
) {
    for (version, stage) in stages {
        client
            .transition(name, *version, *stage)
            .await
            .unwrap_or_else(|error| panic!("transition {name} v{version} to {stage}: {error}"));
    }
    for (alias, version) in aliases {
        client
            .set_alias(name, alias, *version)
            .await
            .unwrap_or_else(|error| panic!("alias {alias} of {name} -> v{version}: {error}"));
    }
}

/// Creates an MLflow run (in the default experiment) on the shared server and returns its
/// id, for versions that must name a real run.
pub async fn create_run() -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = format!("{}/api/2.0/mlflow/runs/create", server().uri);
    let answer: serde_json::Value = reqwest::Client::new()
        .post(url)
        .json(&serde_json::json!({"experiment_id": "0"}))
        .send()
        .await
        .expect("runs/create")
        .error_for_status()
        .expect("runs/create succeeds")
        .json()
        .await
        .expect("runs/create answers JSON");
    answer["run"]["info"]["run_id"]
        .as_str()
        .expect("a run id")
        .to_owned()
}

/// Reads `name` directly from the registry (not through any proxy); panics when it is missing.
pub async fn read_model(client: &MlflowClient, name: &str) -> ObservedModel {
    client
        .model(name)
        .await
        .expect("read the model")
        .unwrap_or_else(|| panic!("model {name} exists"))
}

/// The model's versions with their stages, ascending.
pub fn stages(model: &ObservedModel) -> Vec<(u64, Stage)> {
    model
        .versions
        .values()
        .map(|version| (version.version, version.stage))
        .collect()
}

/// Runs `command` and returns (exit code, or -1 when killed by a signal; stdout; stderr).
pub fn output(command: &mut assert_cmd::Command) -> (i32, String, String) {
    let output = command.output().expect("run mlreg");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Parses a command's stdout as JSON, showing the text when it is not.
pub fn parse_json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|error| panic!("not JSON ({error}):\n{stdout}"))
}
