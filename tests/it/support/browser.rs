//! Headless Chromium for the status page's tests: installed on first use by
//! `scripts/setup-chromium.sh` (Debian's `chromium` package), as `scripts/setup-mlflow.sh`
//! installs MLflow. A browser that cannot be had fails the test; nothing is skipped.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// How long one browser run may take.
const BROWSER_DEADLINE: Duration = Duration::from_secs(120);

/// The browser binary, installed when missing. Panics when it cannot be had.
pub fn chromium() -> &'static Path {
    static BROWSER: OnceLock<PathBuf> = OnceLock::new();
    BROWSER.get_or_init(|| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/setup-chromium.sh");
        let output = std::process::Command::new(&script)
            .output()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()));
        assert!(
            output.status.success(),
            "Chromium is needed for the status page's tests and could not be installed \
             ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        assert!(!path.is_empty(), "setup-chromium.sh printed no path");
        PathBuf::from(path)
    })
}

/// Runs Chromium headless on `url` with `args` (a fresh profile each time, no network but
/// the page's), and returns its stdout.
async fn run(url: &str, args: &[String]) -> String {
    let profile = tempfile::tempdir().expect("a browser profile directory");
    let mut command = tokio::process::Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(BROWSER_DEADLINE, command.output())
        .await
        .unwrap_or_else(|_| panic!("chromium did not finish on {url} in time"))
        .unwrap_or_else(|error| panic!("cannot run chromium: {error}"));
    assert!(
        output.status.success(),
        "chromium failed on {url} ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The DOM of `url` after the page has loaded (its script run), serialized.
pub async fn dump_dom(url: &str) -> String {
    let dom = run(url, &["--dump-dom".to_owned()]).await;
    assert!(
        dom.contains("<html"),
        "chromium dumped no DOM for {url}:\n{dom}"
    );
    dom
}

/// A PNG screenshot of `url` in a `width`×`height` window, written to `path`.
pub async fn screenshot(url: &str, path: &Path, width: u32, height: u32) {
    run(
        url,
        &[
            format!("--screenshot={}", path.display()),
            format!("--window-size={width},{height}"),
            "--hide-scrollbars".to_owned(),
        ],
    )
    .await;
    let png = std::fs::read(path)
        .unwrap_or_else(|error| panic!("no screenshot at {}: {error}", path.display()));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} is not a screenshot ({} bytes)",
        path.display(),
        png.len()
    );
}
