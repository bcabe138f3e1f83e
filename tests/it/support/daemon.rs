//! A running `mlreg watch` daemon for the tests: started as a process on port 0 with JSON
//! logs, its bound address read from the start-up log line, its HTTP endpoints polled with
//! a generous deadline, stopped with SIGTERM or killed on drop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long any awaited condition may take. Generous: the tests share one MLflow server
/// and two cores with every other test.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// A running `mlreg watch`; killed when dropped.
pub struct Daemon {
    /// The process.
    pub child: Child,
    /// `127.0.0.1:PORT` of its endpoints.
    pub address: String,
    /// Its stderr (JSON log lines), for assertions and failure messages.
    logs: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    /// Starts `mlreg watch --dir DIR --listen 127.0.0.1:0 --log-format json ARGS...` against
    /// `registry_uri` (ARGS may name another `--listen`) and waits until it has bound its
    /// address.
    pub fn start(registry_uri: &str, dir: &Path, args: &[&str]) -> Daemon {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mlreg"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("MLFLOW_TRACKING_URI", registry_uri)
            .env("MLREG_REQUEST_TIMEOUT", "10s")
            .env("NO_COLOR", "1");
        Daemon::spawn(command, dir, args)
    }

    /// Like [`Daemon::start`], from a prepared command (binary and environment).
    pub fn spawn(command: Command, dir: &Path, args: &[&str]) -> Daemon {
        Daemon::launch(command, Some(dir), args)
    }

    /// Like [`Daemon::spawn`] without `--dir`: the command's working directory or its
    /// project file (`--env`) says where the manifests are.
    pub fn spawn_in_project(command: Command, args: &[&str]) -> Daemon {
        Daemon::launch(command, None, args)
    }

    fn launch(mut command: Command, dir: Option<&Path>, args: &[&str]) -> Daemon {
        command.env("RUST_LOG", "info").arg("watch");
        // A free port unless the test chose one (to give it to MLflow before the start).
        if !args.contains(&"--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        command.args(["--log-format", "json"]);
        if let Some(dir) = dir {
            command.arg("--dir").arg(dir);
        }
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start mlreg watch");
        let logs = Arc::new(Mutex::new(Vec::new()));
        if let Some(stderr) = child.stderr.take() {
            let logs = Arc::clone(&logs);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Ok(mut logs) = logs.lock() {
                        logs.push(line);
                    }
                }
            });
        }
        let mut daemon = Daemon {
            child,
            address: String::new(),
            logs,
        };
        let started = Instant::now();
        loop {
            if let Some(address) = daemon.log_lines().iter().find_map(|line| {
                let entry: Value = serde_json::from_str(line).ok()?;
                entry["fields"]["listen"].as_str().map(str::to_owned)
            }) {
                daemon.address = address;
                return daemon;
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!(
                    "mlreg watch exited at startup ({status}):\n{}",
                    daemon.logs()
                );
            }
            assert!(
                started.elapsed() < DEADLINE,
                "mlreg watch did not report its address:\n{}",
                daemon.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.logs
            .lock()
            .map(|logs| logs.clone())
            .unwrap_or_default()
    }

    pub fn logs(&self) -> String {
        self.log_lines().join("\n")
    }

    /// `GET path` → (status, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(&self.address, path)
            .await
            .unwrap_or_else(|error| panic!("GET {path}: {error}\n{}", self.logs()))
    }

    pub async fn status(&self) -> Value {
        let (code, body) = self.get("/status").await;
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body)
            .unwrap_or_else(|error| panic!("/status is not JSON ({error}): {body}"))
    }

    pub async fn metrics(&self) -> String {
        let (code, body) = self.get("/metrics").await;
        assert_eq!(code, 200, "{body}");
        body
    }

    /// The value of a metric series (exact name with labels), or 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        metric_value(&self.metrics().await, series)
    }

    pub async fn reconciles(&self) -> f64 {
        let metrics = self.metrics().await;
        metric_value(&metrics, "mlreg_reconciles_total{result=\"success\"}")
            + metric_value(&metrics, "mlreg_reconciles_total{result=\"failure\"}")
    }

    /// Waits until `condition` holds, polling; panics with the daemon's logs at the deadline.
    pub async fn wait_for<F, Fut>(&mut self, what: &str, mut condition: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        loop {
            if condition().await {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "mlreg watch exited ({status}) while waiting for {what}:\n{}",
                    self.logs()
                );
            }
            assert!(
                started.elapsed() < DEADLINE,
                "timed out waiting for {what}; daemon logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until `count` more reconciles have run than now.
    pub async fn wait_for_reconciles(&mut self, count: f64) {
        let target = self.reconciles().await + count;
        let address = self.address.clone();
        self.wait_for(&format!("{count} more reconciles"), || {
            let address = address.clone();
            async move {
                let (_, body) = http_get(&address, "/metrics").await.unwrap_or_default();
                metric_value(&body, "mlreg_reconciles_total{result=\"success\"}")
                    + metric_value(&body, "mlreg_reconciles_total{result=\"failure\"}")
                    >= target
            }
        })
        .await;
    }

    /// Waits until `/readyz` answers `code`; returns its body.
    pub async fn wait_for_readyz(&mut self, code: u16) -> String {
        let address = self.address.clone();
        let body = Arc::new(Mutex::new(String::new()));
        let seen = Arc::clone(&body);
        self.wait_for(&format!("/readyz {code}"), || {
            let address = address.clone();
            let seen = Arc::clone(&seen);
            async move {
                match http_get(&address, "/readyz").await {
                    Ok((status, text)) => {
                        if let Ok(mut seen) = seen.lock() {
                            *seen = text;
                        }
                        status == code
                    }
                    Err(_) => false,
                }
            }
        })
        .await;
        body.lock().map(|body| body.clone()).unwrap_or_default()
    }

    /// Sends SIGTERM and returns the exit code.
    pub fn terminate(&mut self) -> i32 {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for mlreg watch") {
                return status.code().unwrap_or(-1);
            }
            assert!(
                started.elapsed() < DEADLINE,
                "mlreg watch did not stop after SIGTERM:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A minimal HTTP/1.1 GET (the endpoints answer with a `Content-Length` body).
pub async fn http_get(address: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or((answer.as_str(), ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {head}")))?;
    Ok((code, body.to_owned()))
}

/// The value of one series in Prometheus text, 0 when absent.
pub fn metric_value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}
