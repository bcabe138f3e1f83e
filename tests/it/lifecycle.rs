//! The pull-request workflow and the rest of a model's lifecycle, through the binary:
//! `promote` and `set-stage` on manifests full of comments and odd formatting (compared
//! byte for byte with `tests/fixtures/edit/*/expected.yaml`), `export` from a registry set
//! up through the client (then `plan` on the export is empty), `resolve` with the registry
//! up, with empty stages, and down, `completions`, and the CI examples under `examples/`.
//!
//! Edits and completions need no server and never start one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::CommandFactory as _;
use mlreg::registry::Registry as _;
use mlreg::stage::Stage;
use serde_json::Value;

use crate::support::manifest::Manifest;
use crate::support::{self, output};

/// The binary with a clean environment and no registry: for offline commands.
fn offline() -> assert_cmd::Command {
    let mut command = assert_cmd::cargo::cargo_bin_cmd!("mlreg");
    for name in [
        "MLFLOW_TRACKING_URI",
        "MLFLOW_TRACKING_TOKEN",
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "MLREG_DIR",
        "MLREG_COLOR",
        "MLREG_OUTPUT",
        "MLREG_REQUEST_TIMEOUT",
        "RUST_LOG",
    ] {
        command.env_remove(name);
    }
    command.env("NO_COLOR", "1");
    command
}

fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/edit")
        .join(case)
}

/// A temporary desired-state directory holding `input.yaml` of `case` as `models.yaml`.
fn desired_state_from(case: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("models.yaml");
    std::fs::copy(fixture(case).join("input.yaml"), &file).expect("copy fixture");
    (dir, file)
}

fn validate(dir: &Path) {
    let (code, stdout, stderr) = output(offline().arg("validate").arg("--dir").arg(dir));
    assert_eq!(code, 0, "validate after the edit:\n{stdout}\n{stderr}");
}

#[test]
fn edits_keep_everything_but_the_intended_lines() {
    let cases: &[(&str, &[&str])] = &[
        ("promote-multi-document", &["promote", "ranker"]),
        ("promote-adds-stage", &["promote", "fraud_detector"]),
        (
            "set-stage-block-list",
            &[
                "set-stage",
                "recommender",
                "21",
                "production",
                "--keep-existing",
            ],
        ),
        (
            "set-stage-archive",
            &["set-stage", "churn", "5", "archived"],
        ),
    ];
    for (case, args) in cases {
        let (dir, file) = desired_state_from(case);
        let (code, stdout, stderr) = output(offline().args(*args).arg("--dir").arg(dir.path()));
        assert_eq!(code, 0, "{case}:\n{stdout}\n{stderr}");
        let expected = std::fs::read(fixture(case).join("expected.yaml")).expect("expected");
        let edited = std::fs::read(&file).expect("edited");
        assert!(
            edited == expected,
            "{case}: the edited file differs from expected.yaml:\n{}",
            String::from_utf8_lossy(&edited)
        );
        // The diff names the file and shows only changed lines with - and +.
        assert!(stdout.contains("+++ "), "{case}: no diff:\n{stdout}");
        assert!(stdout.contains("\n@@ -"), "{case}: no hunk:\n{stdout}");
        assert!(!stdout.contains('\u{1b}'), "{case}: colored off a terminal");
        assert!(stderr.contains("Wrote "), "{case}: {stderr}");
        validate(dir.path());
    }
}

#[test]
fn dry_run_prints_the_diff_and_writes_nothing() {
    let (dir, file) = desired_state_from("promote-multi-document");
    let before = std::fs::read(&file).expect("read");
    let (code, stdout, stderr) = output(
        offline()
            .args(["promote", "ranker", "--dry-run", "--dir"])
            .arg(dir.path()),
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("-        'Production':   3        # since 2026-01-12"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+        'Production':   [4, 5]   # since 2026-01-12"),
        "{stdout}"
    );
    assert!(stderr.contains("Dry run"), "{stderr}");
    assert_eq!(std::fs::read(&file).expect("read"), before);

    // --color always colors the diff even off a terminal.
    let (_, colored, _) = output(
        offline()
            .args(["--color", "always", "set-stage", "churn", "4", "Production"])
            .arg("--dry-run")
            .arg("--dir")
            .arg(desired_state_from("set-stage-archive").0.path()),
    );
    assert!(colored.contains("\u{1b}["), "{colored:?}");
}

#[test]
fn edit_errors_are_clear_and_write_nothing() {
    let (dir, file) = desired_state_from("set-stage-archive");
    let before = std::fs::read(&file).expect("read");
    let run = |args: &[&str]| output(offline().args(args).arg("--dir").arg(dir.path()));

    let (code, _, stderr) = run(&["promote", "nobody"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no manifest under") && stderr.contains("`nobody`"),
        "{stderr}"
    );

    let (code, _, stderr) = run(&[
        "promote",
        "churn",
        "--from",
        "Production",
        "--to",
        "Archived",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("Archived cannot be a target"), "{stderr}");

    let (code, _, stderr) = run(&["set-stage", "churn", "4", "Canary"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("unknown stage `Canary`"), "{stderr}");

    // Already there: said, exit 0, nothing written.
    let (code, stdout, stderr) = run(&["set-stage", "churn", "3", "production"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("already declared in Production"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["set-stage", "churn", "9", "None"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("not declared in any stage"), "{stderr}");
    assert_eq!(std::fs::read(&file).expect("read"), before);

    // An empty source stage.
    Manifest::model("idle")
        .stage(Stage::Production, &[1])
        .stage(Stage::Staging, &[])
        .write(dir.path(), "empty.yaml");
    let (code, _, stderr) = run(&["promote", "idle"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("declares no version in Staging") && stderr.contains("nothing to promote"),
        "{stderr}"
    );

    // No `stages` at all: adding one would make it exhaustive, so it is refused.
    Manifest::model("bare")
        .description("stages left alone")
        .write(dir.path(), "bare.yaml");
    let (code, _, stderr) = run(&["set-stage", "bare", "1", "Staging"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("declares no `stages`"), "{stderr}");

    // Invalid manifests: diagnostics with file and line, nothing edited.
    std::fs::write(
        dir.path().join("broken.yaml"),
        "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: broken\nspec:\n  stages:\n    Production: 1\n    Production: 2\n",
    )
    .expect("write");
    let (code, stdout, stderr) = run(&["promote", "churn"]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("broken.yaml:8") && stderr.contains("Nothing was edited"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&file).expect("read"), before);
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, stdout, stderr) = output(offline().args(["completions", shell]));
        assert_eq!(code, 0, "{shell}: {stderr}");
        assert!(!stdout.trim().is_empty(), "{shell}: empty script");
        assert!(stdout.contains("reconcile"), "{shell}: no `reconcile`");
        assert!(stdout.contains("set-stage"), "{shell}: no `set-stage`");
    }
}

#[test]
fn man_pages_from_the_clap_definitions() {
    let (code, stdout, stderr) = output(offline().arg("man"));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with(".ie"), "not roff: {stdout}");
    assert!(stdout.contains(".TH mlreg 1"), "{stdout}");
    assert!(stdout.contains("reconcile"), "{stdout}");

    let dir = tempfile::tempdir().expect("tempdir");
    let pages = dir.path().join("man1");
    let (code, stdout, stderr) = output(offline().arg("man").arg("--dir").arg(&pages));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    for page in [
        "mlreg.1",
        "mlreg-plan.1",
        "mlreg-set-stage.1",
        "mlreg-migrate-stages-to-aliases.1",
    ] {
        let text =
            std::fs::read_to_string(pages.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page}: {text}");
    }
}

#[test]
fn a_closed_stdout_pipe_ends_quietly_with_success() {
    for args in [&["completions", "zsh"][..], &["schema"][..], &["man"][..]] {
        // The reading end is closed before mlreg starts, so its first write fails with EPIPE.
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("mlreg"))
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run mlreg");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

// ---------------------------------------------------------------------------------------
// export
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn export_writes_manifests_that_plan_as_in_sync() {
    let client = support::client();
    let scored = support::unique("export-scored");
    let bare = support::unique("export-bare");
    // A name that is not a safe file name as it is.
    let spaced = support::unique("export spaced name");

    support::seed_model(&client, &scored, 5).await;
    support::place(
        &client,
        &scored,
        &[
            (1, Stage::Archived),
            (2, Stage::Production),
            (3, Stage::Staging),
            (4, Stage::Staging),
        ],
        &[("champion", 2), ("challenger", 3)],
    )
    .await;
    client
        .update_description(&scored, "Scores transactions: \"fraud\" or not")
        .await
        .expect("description");
    for (key, value) in [("team", "risk"), ("version", "1.0"), ("approved", "true")] {
        client
            .set_model_tag(&scored, key, value)
            .await
            .expect("tag");
    }
    support::seed_model(&client, &bare, 1).await;
    support::seed_model(&client, &spaced, 1).await;
    support::place(&client, &spaced, &[(1, Stage::Production)], &[]).await;

    let out = tempfile::tempdir().expect("temp dir");
    let export = |extra: &[&str]| {
        let mut command = support::mlreg();
        command.arg("export");
        for name in [&scored, &bare, &spaced] {
            command.arg("--model").arg(name);
        }
        command.arg("--out").arg(out.path()).args(extra);
        output(&mut command)
    };
    let (code, stdout, stderr) = export(&[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(
        stderr.contains(&format!("model `{spaced}` is written to")),
        "{stderr}"
    );
    let scored_text =
        std::fs::read_to_string(out.path().join(format!("{scored}.yaml"))).expect("exported");
    for expected in [
        "    Production: 2\n",
        "    Staging: [3, 4]\n",
        "    champion: 2\n",
        "    version: \"1.0\"\n",
        "    approved: \"true\"\n",
        "description: \"Scores transactions: \\\"fraud\\\" or not\"\n",
    ] {
        assert!(
            scored_text.contains(expected),
            "{expected:?} in:\n{scored_text}"
        );
    }
    assert!(!scored_text.contains("retention:"), "{scored_text}");
    let safe_name = spaced.replace(' ', "_");
    assert!(out.path().join(format!("{safe_name}.yaml")).exists());

    let (code, stdout, stderr) = output(
        support::mlreg()
            .arg("validate")
            .arg("--dir")
            .arg(out.path()),
    );
    assert_eq!(code, 0, "validate:\n{stdout}\n{stderr}");
    let (code, stdout, stderr) = output(
        support::mlreg()
            .args(["plan", "--detailed-exitcode"])
            .args(["--model", &scored, "--model", &bare, "--model", &spaced])
            .arg("--dir")
            .arg(out.path()),
    );
    assert_eq!(
        code, 0,
        "plan after export must be empty:\n{stdout}\n{stderr}"
    );

    // Existing files are not overwritten without --force.
    let (code, _, stderr) = export(&[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("refusing to overwrite") && stderr.contains(&format!("{scored}.yaml")),
        "{stderr}"
    );
    let (code, _, stderr) = export(&["--force"]);
    assert_eq!(code, 0, "{stderr}");

    // A model that does not exist: an error, nothing written.
    let empty = tempfile::tempdir().expect("temp dir");
    let (code, _, stderr) = output(
        support::mlreg()
            .args(["export", "--model", &support::unique("export-missing")])
            .arg("--out")
            .arg(empty.path()),
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("does not exist in the registry"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(empty.path()).expect("list").count(), 0);
}

// ---------------------------------------------------------------------------------------
// resolve
// ---------------------------------------------------------------------------------------

/// A desired-state directory holding `manifest` (stages and a local fallback, say) as
/// `model.yaml`.
fn serving_manifest(manifest: Manifest) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    manifest.write(dir.path(), "model.yaml");
    dir
}

fn resolve_json(command: &mut assert_cmd::Command) -> (i32, Value, String) {
    let (code, stdout, stderr) = output(command.args(["--output", "json"]));
    let json = if code == 0 {
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
    } else {
        Value::Null
    };
    (code, json, stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn resolve_follows_production_then_staging_then_the_local_fallback() {
    let client = support::client();
    let name = support::unique("resolve");
    support::seed_model(&client, &name, 3).await;
    support::place(
        &client,
        &name,
        &[(2, Stage::Production), (3, Stage::Staging)],
        &[],
    )
    .await;
    let manifests = serving_manifest(
        Manifest::model(&name)
            .stage(Stage::Production, &[2])
            .stage(Stage::Staging, &[3])
            .local_fallback("/models/local"),
    );
    let resolve = || {
        let mut command = support::mlreg();
        command
            .args(["resolve", &name, "-v", "--dir"])
            .arg(manifests.path());
        command
    };

    // Production.
    let (code, stdout, stderr) = output(&mut resolve());
    assert_eq!(code, 0, "{stderr}");
    // One line on stdout (the source is in the JSON); -v says on stderr which stage answered.
    assert_eq!(stdout, format!("models:/{name}/2\n"));
    assert!(
        stderr.contains("Production answered: version 2"),
        "{stderr}"
    );
    let (code, json, stderr) = resolve_json(&mut resolve());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        json,
        serde_json::json!({
            "format_version": "1", "model": name, "version": 2, "stage": "Production",
            "target": "Production", "targets": ["Production", "Staging"],
            "uri": format!("models:/{name}/2"), "source": format!("s3://bucket/{name}/2"),
            "fallback": null, "answered_by": "registry",
            "manifest": manifests.path().join("model.yaml"), "local_fallback": "/models/local",
        })
    );

    // Production empty: Staging, said on stderr.
    client
        .transition(&name, 2, Stage::Archived)
        .await
        .expect("archive");
    let (code, json, stderr) = resolve_json(&mut resolve());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["uri"], format!("models:/{name}/3"));
    assert_eq!(json["stage"], "Staging");
    assert_eq!(json["fallback"], "staging");
    assert!(stderr.contains("fallback"), "{stderr}");

    // Both empty: the manifest's local fallback.
    client
        .transition(&name, 3, Stage::None)
        .await
        .expect("unstage");
    let (code, json, stderr) = resolve_json(&mut resolve());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["uri"], "/models/local");
    assert_eq!(json["fallback"], "local");
    assert_eq!(json["version"], Value::Null);
    assert!(stderr.contains("local fallback"), "{stderr}");

    // Nothing at all: exit 1.
    let bare = serving_manifest(Manifest::model(&name).stages_empty());
    let (code, stdout, stderr) = output(
        support::mlreg()
            .args(["resolve", &name, "--dir"])
            .arg(bare.path()),
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("nothing to serve"), "{stderr}");

    // The model as read back, to check the test set the registry up as meant.
    let model = client.model(&name).await.expect("read").expect("exists");
    let stages: BTreeMap<u64, Stage> = model
        .versions
        .values()
        .map(|v| (v.version, v.stage))
        .collect();
    assert_eq!(stages[&2], Stage::Archived);
}

#[test]
fn resolve_answers_from_the_manifest_when_the_registry_is_down() {
    // Nothing listens on port 9 (discard) on a test machine: connections are refused.
    let down = "http://127.0.0.1:9";
    let run = |dir: &Path| {
        let started = Instant::now();
        let result = resolve_json(
            offline()
                .args(["resolve", "fraud", "-v", "--registry-uri", down, "--dir"])
                .arg(dir),
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "resolve took {:?} with the registry down",
            started.elapsed()
        );
        result
    };

    let declared = serving_manifest(
        Manifest::model("fraud")
            .stage(Stage::Production, &[3, 4])
            .stage(Stage::Staging, &[5])
            .local_fallback("models/fraud"),
    );
    let (code, json, stderr) = run(declared.path());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["uri"], "models:/fraud/4");
    assert_eq!(json["source"], Value::Null);
    assert_eq!(json["answered_by"], "manifest");
    assert_eq!(json["fallback"], Value::Null);
    assert!(
        stderr.contains("registry cannot be asked") && stderr.contains("source is unknown"),
        "{stderr}"
    );

    let staging_only = serving_manifest(Manifest::model("fraud").stage(Stage::Staging, &[5]));
    let (code, json, stderr) = run(staging_only.path());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["uri"], "models:/fraud/5");
    assert_eq!(json["fallback"], "staging");

    let local_only = serving_manifest(
        Manifest::model("fraud")
            .stages_empty()
            .local_fallback("models/fraud"),
    );
    let (code, json, stderr) = run(local_only.path());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["uri"], "models/fraud");
    assert_eq!(json["fallback"], "local");

    let nothing = serving_manifest(Manifest::model("fraud").stages_empty());
    let (code, _, stderr) = run(nothing.path());
    assert_eq!(code, 1);
    assert!(stderr.contains("nothing to serve for `fraud`"), "{stderr}");

    // No manifest directory at all and no registry: nothing to answer.
    let (code, _, stderr) = run(&nothing.path().join("missing"));
    assert_eq!(code, 1, "{stderr}");
}

#[test]
fn resolve_from_a_dedicated_server_that_stops() {
    let server = support::Server::start();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let client = server.client();
    runtime.block_on(async {
        support::seed_model(&client, "served", 2).await;
        support::place(&client, "served", &[(2, Stage::Production)], &[]).await;
    });
    let manifests = serving_manifest(
        Manifest::model("served")
            .stage(Stage::Production, &[2])
            .local_fallback("/models/served"),
    );
    let (code, stdout, stderr) = output(
        server
            .mlreg()
            .args(["resolve", "served", "--dir"])
            .arg(manifests.path()),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "models:/served/2\n");

    // This registry holds one model, so `export` without --model can be checked here too.
    let exported = tempfile::tempdir().expect("temp dir");
    let (code, stdout, stderr) = output(
        server
            .mlreg()
            .arg("export")
            .arg("--out")
            .arg(exported.path()),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        format!("{}\n", exported.path().join("served.yaml").display())
    );

    let uri = server.uri.clone();
    drop(server);
    let (code, stdout, stderr) = output(
        offline()
            .args(["resolve", "served", "--registry-uri", &uri, "--dir"])
            .arg(manifests.path()),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "models:/served/2\n");
}

// ---------------------------------------------------------------------------------------
// examples/
// ---------------------------------------------------------------------------------------

/// Every YAML file under `dir`, recursively (hidden files included: `.gitlab-ci.yml`).
fn yaml_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("list examples") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            yaml_files(&path, found);
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            found.push(path);
        }
    }
}

/// The shell text of a CI file: `run`, `script`, `before_script`, `entry` values, and
/// the `args` of a container whose image is mlreg's (as `mlreg ARGS`).
fn commands(value: &Value, key: Option<&str>, found: &mut Vec<String>) {
    match value {
        Value::String(text)
            if matches!(
                key,
                Some("run" | "script" | "before_script" | "after_script" | "entry")
            ) =>
        {
            found.push(text.clone());
        }
        Value::Array(items) => {
            for item in items {
                commands(item, key, found);
            }
        }
        Value::Object(map) => {
            let is_mlreg_container = map
                .get("image")
                .and_then(Value::as_str)
                .is_some_and(|image| image.contains("mlreg"));
            if let (true, Some(Value::Array(args))) = (is_mlreg_container, map.get("args")) {
                let args: Vec<&str> = args.iter().filter_map(Value::as_str).collect();
                found.push(format!("mlreg {}", args.join(" ")));
            }
            for (key, value) in map {
                commands(value, Some(key), found);
            }
        }
        _ => {}
    }
}

/// The `mlreg ...` invocations of a piece of shell: (subcommand, arguments).
fn invocations(shell: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    for line in shell.lines() {
        let line = line.split(" #").next().unwrap_or_default();
        for segment in line.split(['|', ';', '>', '&', '(', ')']) {
            let words: Vec<&str> = segment.split_whitespace().collect();
            if words.first() != Some(&"mlreg") {
                continue;
            }
            let Some(subcommand) = words.get(1) else {
                continue;
            };
            found.push((
                (*subcommand).to_owned(),
                words[2..].iter().map(|word| (*word).to_owned()).collect(),
            ));
        }
    }
    found
}

#[test]
fn examples_parse_and_use_real_subcommands_and_flags() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files = Vec::new();
    yaml_files(&root, &mut files);
    files.sort();
    for required in [
        "github-actions/mlreg.yml",
        "gitlab-ci/.gitlab-ci.yml",
        "pre-commit/.pre-commit-hooks.yaml",
        "pre-commit/.pre-commit-config.yaml",
    ] {
        assert!(
            files.contains(&root.join(required)),
            "missing examples/{required}"
        );
    }

    let cli = mlreg::cli::Cli::command();
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read example");
        let documents: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|error| panic!("{} does not parse: {error}", file.display()));
        assert!(!documents.is_empty(), "{} is empty", file.display());
        let mut shell = Vec::new();
        for document in &documents {
            commands(document, None, &mut shell);
        }
        for (subcommand, args) in shell.iter().flat_map(|text| invocations(text)) {
            let command = cli.find_subcommand(&subcommand).unwrap_or_else(|| {
                panic!("{}: `mlreg {subcommand}` is no subcommand", file.display())
            });
            for arg in args.iter().filter(|arg| arg.starts_with("--")) {
                let long = arg.trim_start_matches("--");
                let long = long.split('=').next().unwrap_or_default();
                let known = command
                    .get_arguments()
                    .chain(cli.get_arguments())
                    .any(|a| a.get_long() == Some(long));
                assert!(
                    known,
                    "{}: `mlreg {subcommand}` has no flag --{long}",
                    file.display()
                );
            }
            let relative = file
                .strip_prefix(&root)
                .unwrap_or(file)
                .display()
                .to_string();
            seen.entry(relative)
                .or_default()
                .push(format!("{subcommand} {}", args.join(" ")));
        }
    }

    let github = seen
        .get("github-actions/mlreg.yml")
        .cloned()
        .unwrap_or_default();
    assert!(
        github.iter().any(|c| c.starts_with("validate")),
        "{github:?}"
    );
    assert!(
        github.iter().any(|c| c.starts_with("plan")
            && c.contains("--output markdown")
            && c.contains("--detailed-exitcode")),
        "{github:?}"
    );
    assert!(
        github.iter().any(|c| c.starts_with("reconcile")),
        "{github:?}"
    );
    let gitlab = seen
        .get("gitlab-ci/.gitlab-ci.yml")
        .cloned()
        .unwrap_or_default();
    for subcommand in ["validate", "plan", "reconcile"] {
        assert!(
            gitlab.iter().any(|c| c.starts_with(subcommand)),
            "{gitlab:?}"
        );
    }
    let hooks = seen
        .get("pre-commit/.pre-commit-hooks.yaml")
        .cloned()
        .unwrap_or_default();
    assert!(hooks.iter().any(|c| c.starts_with("validate")), "{hooks:?}");
}
