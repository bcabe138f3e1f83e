//! The command line itself, through the binary and without a registry: exit codes of
//! usage errors, help and version, and how `--dir` paths are shown.

use crate::support::output;

/// The binary with no registry configured, run from `cwd` when given.
fn mlreg() -> assert_cmd::Command {
    let mut command = assert_cmd::cargo::cargo_bin_cmd!("mlreg");
    for name in [
        "MLFLOW_TRACKING_URI",
        "MLREG_DIR",
        "MLREG_COLOR",
        "MLREG_OUTPUT",
        "RUST_LOG",
    ] {
        command.env_remove(name);
    }
    command.env("NO_COLOR", "1");
    command
}

#[test]
fn a_usage_error_exits_1_never_2() {
    // 2 means "changes pending" under --detailed-exitcode: a typo in CI must not read so.
    let (code, stdout, stderr) = output(mlreg().args(["plan", "--detailed-exitcode", "--bogus"]));
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("--bogus"), "{stderr}");

    let (code, _, stderr) = output(mlreg().args(["set-stage", "m", "3", "Canary"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("unknown stage `Canary`"), "{stderr}");

    let (code, _, stderr) = output(mlreg().args(["promote", "m", "--from", "Prod"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("`Prod` is neither a stage (Staging, Production) nor an alias"),
        "{stderr}"
    );
    let (code, _, stderr) = output(mlreg().args(["promote", "m", "--to", "@latest"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("invalid alias `@latest`"), "{stderr}");

    let (code, _, stderr) = output(mlreg().args(["watch", "--interval", "soon"]));
    assert_eq!(code, 1, "{stderr}");

    let (code, _, _) = output(&mut mlreg());
    assert_eq!(code, 1, "no subcommand");
}

#[test]
fn settings_errors_exit_1_before_any_network() {
    // The registry address points nowhere: the settings refuse before asking it.
    let (code, _, stderr) = output(mlreg().args([
        "--registry-uri",
        "http://127.0.0.1:9",
        "resolve",
        "m",
        "--stage",
        "Archived",
    ]));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("--stage must be Production or Staging, not Archived"),
        "{stderr}"
    );
    let (code, _, stderr) = output(mlreg().args([
        "--registry-uri",
        "http://127.0.0.1:9",
        "watch",
        "--interval",
        "100ms",
    ]));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("--interval must be at least 1s"),
        "{stderr}"
    );
}

#[test]
fn help_and_version_exit_0_on_stdout() {
    for args in [
        &["--help"][..],
        &["--version"],
        &["plan", "--help"],
        &["help"],
    ] {
        let (code, stdout, stderr) = output(mlreg().args(args));
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert!(!stdout.is_empty(), "{args:?}");
    }
    // The version and the commit the binary was built from: this test runs in the
    // project's git checkout, so the commit is known.
    let (_, version, _) = output(mlreg().arg("--version"));
    let version = version.trim_end();
    let inner = version
        .strip_prefix(&format!("mlreg {} (", env!("CARGO_PKG_VERSION")))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("unexpected --version: {version}"));
    let commit = inner.strip_suffix(", dirty").unwrap_or(inner);
    assert!(
        commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
        "no commit in --version: {version}"
    );
    let (_, help, _) = output(mlreg().arg("--help"));
    assert!(
        help.contains("1    error, including a command-line usage error"),
        "{help}"
    );
}

const INVALID: &str = "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: m\nspec:\n  stages: {Prod: 1}\n";

#[test]
fn a_dir_under_the_working_directory_is_shown_relative_to_it() {
    let checkout = tempfile::tempdir().expect("temp dir");
    let dir = checkout.path().join("desired-state");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("x.yaml"), INVALID).expect("write");

    let (code, _, stderr) = output(
        mlreg()
            .current_dir(checkout.path())
            .arg("validate")
            .arg("--dir")
            .arg(&dir),
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("desired-state/x.yaml:6"), "{stderr}");
    assert!(
        !stderr.contains(&checkout.path().display().to_string()),
        "{stderr}"
    );

    // Outside the working directory, the path stays as given.
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let (code, _, stderr) = output(
        mlreg()
            .current_dir(elsewhere.path())
            .arg("validate")
            .arg("--dir")
            .arg(&dir),
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&dir.join("x.yaml").display().to_string()),
        "{stderr}"
    );
}
