//! Snapshots of what the binary prints for broken input, one per class of problem, so
//! that a change of wording, location or help is seen and reviewed.
//!
//! - `mlreg validate --dir <fixture>` on every directory of `tests/fixtures/bad/`
//!   (snapshots `snapshots/bad/<directory>.snap`) and of
//!   `tests/fixtures/manifests/invalid/` (`snapshots/invalid/<directory>.snap`): the exit
//!   code, stdout and stderr. A directory added there gets a snapshot on the next
//!   `INSTA_UPDATE=always` run; until then the test fails.
//! - `mlreg plan` refusals that need no server (`snapshots/plan/<case>.snap`): a broken
//!   manifest (the registry is never contacted), no registry configured, a registry that
//!   refuses connections.
//!
//! `validate.rs` and `bad_input.rs` check the same classes by meaning (exit code, location,
//! nothing applied); these snapshots pin the whole text. No MLflow server is started.

use std::path::PathBuf;

use crate::support::{self, snapshot};

/// `tests/fixtures`, the directory the binary runs in so that diagnostics name
/// `bad/<case>/<file>`.
fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `mlreg ARGS...` from `tests/fixtures`, without a registry, without color.
fn run(args: &[&str]) -> std::process::Output {
    support::offline()
        .current_dir(fixtures())
        .args(args)
        .output()
        .expect("run mlreg")
}

/// Snapshots `mlreg validate --dir <group>/<case>` for every directory of `group`
/// (a folder under `tests/fixtures`), and checks it is refused.
fn snapshot_validate_of_every_directory(group: &str) {
    let cases = snapshot::subdirectories(&fixtures().join(group));
    assert!(cases.len() > 10, "fixture directories under {group}");
    for case in cases {
        let dir = format!("{group}/{case}");
        let output = run(&["validate", "--dir", &dir]);
        assert_eq!(output.status.code(), Some(1), "{dir} must be refused");
        let group_name = group.rsplit('/').next().unwrap_or(group);
        snapshot::settings(group_name, &format!("mlreg validate --dir {dir}")).bind(|| {
            insta::assert_snapshot!(case.as_str(), snapshot::transcript(&output));
        });
    }
}

#[test]
fn validate_diagnostics_of_the_broken_input_corpus() {
    snapshot_validate_of_every_directory("bad");
}

#[test]
fn validate_diagnostics_of_the_invalid_manifests() {
    snapshot_validate_of_every_directory("manifests/invalid");
}

#[test]
fn plan_refuses_a_broken_manifest_before_contacting_the_registry() {
    // Port 9 (discard) has no MLflow: contacting it would print a connection error.
    let output = support::offline()
        .current_dir(fixtures())
        .env("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
        .args(["plan", "--dir", "bad/one-bad-file-among-good"])
        .output()
        .expect("run mlreg");
    snapshot::settings(
        "plan",
        "mlreg plan --dir bad/one-bad-file-among-good (registry unreachable)",
    )
    .bind(|| {
        insta::assert_snapshot!("broken-manifest", snapshot::transcript(&output));
    });
}

#[test]
fn plan_without_a_registry_address() {
    let output = run(&["plan", "--dir", "manifests/valid"]);
    snapshot::settings(
        "plan",
        "mlreg plan --dir manifests/valid (no MLFLOW_TRACKING_URI)",
    )
    .bind(|| {
        insta::assert_snapshot!("no-registry-address", snapshot::transcript(&output));
    });
}

#[test]
fn plan_against_a_registry_that_refuses_connections() {
    let output = support::offline()
        .current_dir(fixtures())
        .env("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
        .env("MLREG_RETRY_MIN_BACKOFF", "1ms")
        .env("MLREG_RETRY_MAX_BACKOFF", "1ms")
        .args(["plan", "--dir", "manifests/valid"])
        .output()
        .expect("run mlreg");
    let mut settings = snapshot::settings(
        "plan",
        "mlreg plan --dir manifests/valid (MLFLOW_TRACKING_URI=http://127.0.0.1:9, nothing listening)",
    );
    // Models and versions are read concurrently: either request may be the one reported.
    settings.add_filter(
        r"GET (registered-models|model-versions)/search",
        "GET [registered-models or model-versions]/search",
    );
    settings.bind(|| {
        insta::assert_snapshot!("connection-refused", snapshot::transcript(&output));
    });
}
