//! `mlreg plan` and `mlreg reconcile` against the real server: each rule of DESIGN.md's
//! "Rules" and "Reconciliation semantics" is set up through the client, driven through the
//! binary on temporary manifests, and checked by reading the registry back.

use std::collections::BTreeMap;
use std::path::Path;

use mlreg::registry::Registry;
use mlreg::registry::mlflow::MlflowClient;
use mlreg::stage::Stage;
use serde_json::Value;

use crate::support::manifest::{self, Manifest};
use crate::support::snapshot;
use crate::support::{self, parse_json as json, read_model as read, stages};

/// A temporary desired-state directory.
struct Manifests {
    dir: tempfile::TempDir,
}

impl Manifests {
    fn new() -> Self {
        Manifests {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn write(&self, file: &str, text: &str) -> &Self {
        std::fs::write(self.dir.path().join(file), text).expect("write manifest");
        self
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Creates `name` with `count` versions and puts the given ones in stages.
async fn seed(client: &MlflowClient, name: &str, count: u64, stages: &[(u64, Stage)]) {
    client
        .create_model(name, None, &BTreeMap::new())
        .await
        .expect("create model");
    for number in 1..=count {
        let created = client
            .create_version(
                name,
                &format!("s3://bucket/{name}/{number}"),
                None,
                &BTreeMap::new(),
            )
            .await
            .expect("create version");
        assert_eq!(created, number);
    }
    for (version, stage) in stages {
        client
            .transition(name, *version, *stage)
            .await
            .expect("transition");
    }
}

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    support::output(support::mlreg().args(args).arg("--dir").arg(dir))
}

/// Snapshots a command's stdout as `snapshots/reconcile/<name>.snap` (model names and
/// temporary paths filtered).
fn assert_stdout_snapshot(name: &str, command: &str, stdout: &str) {
    snapshot::settings("reconcile", command).bind(|| insta::assert_snapshot!(name, stdout));
}

/// Makes `dir` a git repository with everything committed; returns the commit id.
fn git_commit_all(dir: &Path) -> String {
    let git = |args: &[&str]| {
        let output = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=mlreg-tests",
                "-c",
                "user.email=tests@mlreg.invalid",
            ])
            .args(args)
            .output()
            .expect("run git");
        assert!(output.status.success(), "git {args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    git(&["init", "--quiet"]);
    git(&["add", "."]);
    git(&["commit", "--quiet", "-m", "manifests"]);
    git(&["rev-parse", "HEAD"])
}

use Stage::{Archived, None as NoStage, Production, Staging};

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_promotes_archives_moves_aliases_applies_retention_and_is_idempotent() {
    let client = support::client();
    let name = support::unique("core");
    seed(&client, &name, 6, &[(1, Production), (2, Staging)]).await;
    client.set_alias(&name, "champion", 1).await.expect("alias");
    client.set_alias(&name, "stale", 2).await.expect("alias");
    let manifests = Manifests::new();
    manifests.write(
        "m.yaml",
        &Manifest::model(&name)
            .stage(Production, &[3])
            .stage(Staging, &[4])
            .alias("champion", 3)
            .alias("challenger", 4)
            .keep_latest(1)
            .yaml(),
    );

    // The dry run shows the plan and changes nothing.
    let (code, stdout, stderr) = run(
        manifests.path(),
        &["plan", "--model", &name, "--detailed-exitcode"],
    );
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert_stdout_snapshot(
        "core-plan",
        "mlreg plan --model core-[ID] --detailed-exitcode (v1 Production, v2 Staging, v3-v6 None; aliases champion=1, stale=2)",
        &stdout,
    );
    assert_eq!(
        stages(&read(&client, &name).await),
        vec![
            (1, Production),
            (2, Staging),
            (3, NoStage),
            (4, NoStage),
            (5, NoStage),
            (6, NoStage)
        ]
    );

    // The manifests live in a git checkout: the audit tag records the commit.
    let commit = git_commit_all(manifests.path());

    let (code, stdout, stderr) = run(manifests.path(), &["reconcile", "--model", &name]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_stdout_snapshot(
        "core-reconcile",
        "mlreg reconcile --model core-[ID] (after the plan of core-plan)",
        &stdout,
    );
    let after = read(&client, &name).await;
    // 1 and 2 left their stages; 5 is the older of the two unassigned versions (5, 6).
    assert_eq!(
        stages(&after),
        vec![
            (1, Archived),
            (2, Archived),
            (3, Production),
            (4, Staging),
            (5, Archived),
            (6, NoStage)
        ]
    );
    assert_eq!(
        after.aliases,
        BTreeMap::from([("champion".to_string(), 3), ("challenger".to_string(), 4)])
    );
    // Every transition carries the audit tag.
    for version in [1, 2, 3, 4, 5] {
        let tag = after.versions[&version]
            .tags
            .get("mlreg.transition")
            .unwrap_or_else(|| panic!("version {version} has no audit tag"));
        let record: Value = serde_json::from_str(tag).expect("audit tag is JSON");
        assert_eq!(record["to"], after.versions[&version].stage.as_str());
        assert!(
            record["manifest"]
                .as_str()
                .unwrap_or("")
                .ends_with("m.yaml")
        );
        assert!(record["when"].as_str().unwrap_or("").contains('T'));
        assert_eq!(record["commit"], commit.as_str());
    }
    assert!(!after.versions[&6].tags.contains_key("mlreg.transition"));
    // Every alias moved carries its own record, on the version it now points at.
    for (version, alias, previous) in [
        (3, "champion", Value::from(1)),
        (4, "challenger", Value::Null),
    ] {
        let record = alias_record(&after, version, alias)
            .unwrap_or_else(|| panic!("version {version} has no record of `{alias}`"));
        assert_eq!(record["previous"], previous, "{record}");
        assert_eq!(record["commit"], commit.as_str(), "{record}");
    }
    // Removing an alias writes nothing: the version it pointed at keeps no record of it.
    assert!(alias_record(&after, 2, "stale").is_none());

    // Idempotent: a second reconcile has nothing to do and writes nothing.
    let (code, stdout, stderr) = run(
        manifests.path(),
        &[
            "-vv",
            "reconcile",
            "--model",
            &name,
            "--detailed-exitcode",
            "--output",
            "json",
        ],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let document = json(&stdout);
    assert_eq!(document["summary"]["total"], 0);
    assert_eq!(document["mode"], "plan", "an empty plan is not applied");
    // Two searches and nothing else: no per-model reads, no writes. A server that refuses
    // the `name IN` filter (MLflow 2.x) costs the two refused searches more, then the whole
    // read (docs/reliability.md "Scoped reads"); the debug log says which happened.
    let refused = stderr.contains("the server refused a `name IN` filter");
    let expected = if refused { 4 } else { 2 };
    assert_eq!(
        document["stats"]["requests"], expected,
        "{stdout}\n{stderr}"
    );
    assert_eq!(read(&client, &name).await, after);
}

/// The `mlreg.alias.<alias>` record on `version`, parsed (panics when it is not JSON).
fn alias_record(
    model: &mlreg::registry::ObservedModel,
    version: u64,
    alias: &str,
) -> Option<Value> {
    let value = model.versions[&version]
        .tags
        .get(&mlreg::apply::alias_audit_tag(alias))?;
    Some(serde_json::from_str(value).unwrap_or_else(|error| panic!("not JSON ({error}): {value}")))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alias_move_records_previous_when_manifest_and_commit_and_info_shows_it() {
    let client = support::client();
    let name = support::unique("alias-audit");
    seed(&client, &name, 3, &[]).await;
    client.set_alias(&name, "champion", 1).await.expect("alias");
    // A temporary directory outside any git checkout: the record's commit is null.
    let manifests = Manifests::new();
    let file = manifests.path().join("m.yaml");
    Manifest::model(&name)
        .alias("champion", 2)
        .write(manifests.path(), "m.yaml");

    let (code, stdout, stderr) = run(manifests.path(), &["reconcile", "--model", &name]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let after = read(&client, &name).await;
    assert_eq!(after.aliases["champion"], 2);
    let record = alias_record(&after, 2, "champion").expect("version 2 has the record");
    let keys: Vec<&str> = record
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["commit", "manifest", "previous", "when"], "{record}");
    assert_eq!(record["previous"], 1, "{record}");
    assert_eq!(
        record["manifest"],
        file.to_str().expect("UTF-8 path"),
        "{record}"
    );
    assert_eq!(record["commit"], Value::Null, "{record}");
    let when = record["when"]
        .as_str()
        .expect("when is a string")
        .to_owned();
    assert!(
        when.contains('T') && when.ends_with('Z'),
        "not RFC 3339 in UTC: {when}"
    );
    // The version the alias left gets nothing, and nothing else was tagged.
    assert!(
        after.versions[&1].tags.is_empty(),
        "{:?}",
        after.versions[&1].tags
    );
    assert_eq!(
        after.versions[&2].tags.len(),
        1,
        "{:?}",
        after.versions[&2].tags
    );

    // The record is not drift: planning again finds nothing.
    let (code, stdout, stderr) = run(
        manifests.path(),
        &["plan", "--model", &name, "--detailed-exitcode"],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");

    // `info` says since when, from which version, manifest and commit.
    let (code, stdout, stderr) = run(manifests.path(), &["info", &name]);
    assert_eq!(code, 0, "{stderr}");
    let line = stdout
        .lines()
        .find(|line| line.trim_start().starts_with("champion -> 2"))
        .unwrap_or_else(|| panic!("no champion line in\n{stdout}"));
    assert!(line.contains(&format!("since {when} (")), "{line}");
    assert!(line.contains("previously 1"), "{line}");
    assert!(line.contains("m.yaml, no git commit"), "{line}");
    let (code, stdout, stderr) = run(manifests.path(), &["info", &name, "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let document = json(&stdout);
    assert_eq!(document["format_version"], "1");
    assert_eq!(
        document["alias_audit"]["champion"],
        serde_json::json!({
            "version": 2,
            "set_by_mlreg": true,
            "since": when,
            "previous": 1,
            "manifest": file.to_str(),
            "commit": null,
        }),
        "{document}"
    );

    // With --no-annotate the alias moves and no record is written; `info` says so.
    Manifest::model(&name)
        .alias("champion", 3)
        .write(manifests.path(), "m.yaml");
    let (code, stdout, stderr) = run(
        manifests.path(),
        &["reconcile", "--model", &name, "--no-annotate"],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let after = read(&client, &name).await;
    assert_eq!(after.aliases["champion"], 3);
    assert!(
        after.versions[&3].tags.is_empty(),
        "{:?}",
        after.versions[&3].tags
    );
    let (code, stdout, stderr) = run(manifests.path(), &["info", &name]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("  champion -> 3  not set by mlreg\n"),
        "{stdout}"
    );
    let (code, stdout, stderr) = run(manifests.path(), &["info", &name, "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let document = json(&stdout);
    assert_eq!(document["alias_audit"]["champion"]["version"], 3);
    assert_eq!(document["alias_audit"]["champion"]["set_by_mlreg"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_is_applied_anywhere_when_one_manifest_references_a_missing_version() {
    let client = support::client();
    let good = support::unique("good");
    let bad = support::unique("bad");
    seed(&client, &good, 2, &[(1, Production)]).await;
    seed(&client, &bad, 1, &[]).await;
    let manifests = Manifests::new();
    manifests.write(
        "good.yaml",
        &Manifest::model(&good).stage(Production, &[2]).yaml(),
    );
    manifests.write(
        "bad.yaml",
        &Manifest::model(&bad).stage(Production, &[7]).yaml(),
    );
    let before_good = read(&client, &good).await;
    let before_bad = read(&client, &bad).await;
    let (code, stdout, stderr) = run(
        manifests.path(),
        &["reconcile", "--model", &good, "--model", &bad],
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("version 7 of model `{bad}` does not exist")),
        "{stderr}"
    );
    assert!(stderr.contains("bad.yaml:7:17"), "{stderr}");
    assert!(stderr.contains("Nothing was applied"), "{stderr}");
    assert_eq!(read(&client, &good).await, before_good);
    assert_eq!(read(&client, &bad).await, before_bad);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_run_id_assertion_refuses_the_model() {
    let client = support::client();
    let name = support::unique("runid");
    seed(&client, &name, 2, &[]).await;
    let manifests = Manifests::new();
    manifests.write(
        "m.yaml",
        &Manifest::model(&name)
            .stage(Production, &[2])
            .spec_lines("  versions:\n    \"2\":\n      runId: 8f2c1a9e0b7d4e55\n")
            .yaml(),
    );
    let before = read(&client, &name).await;
    let (code, _, stderr) = run(manifests.path(), &["reconcile", "--model", &name]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("not `8f2c1a9e0b7d4e55`"), "{stderr}");
    assert!(stderr.contains("m.yaml:9:"), "{stderr}");
    assert_eq!(read(&client, &name).await, before);

    // The right source assertion passes and the promotion happens.
    manifests.write(
        "m.yaml",
        &Manifest::model(&name)
            .stage(Production, &[2])
            .spec_lines(&format!(
                "  versions:\n    \"2\":\n      source: s3://bucket/{name}/2\n      tags:\n        validated: \"true\"\n"
            ))
            .yaml(),
    );
    let (code, stdout, stderr) = run(manifests.path(), &["reconcile", "--model", &name]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let after = read(&client, &name).await;
    assert_eq!(after.versions[&2].stage, Production);
    assert_eq!(after.versions[&2].tags["validated"], "true");
}

#[tokio::test(flavor = "multi_thread")]
async fn stages_and_aliases_are_exhaustive_only_when_present() {
    let client = support::client();
    let absent = support::unique("absent");
    let empty = support::unique("empty");
    seed(&client, &absent, 2, &[(1, Production), (2, Staging)]).await;
    seed(
        &client,
        &empty,
        3,
        &[(1, Production), (2, Staging), (3, Archived)],
    )
    .await;
    client.set_alias(&absent, "keep", 1).await.expect("alias");
    client.set_alias(&empty, "drop", 1).await.expect("alias");
    let manifests = Manifests::new();
    manifests.write(
        "models.yaml",
        &manifest::documents(&[
            Manifest::model(&absent).tag("team", "ml"),
            // The stage in lower case: stage names are case-insensitive.
            Manifest::model(&empty)
                .stage("staging", &[])
                .aliases_empty(),
        ]),
    );
    let (code, stdout, stderr) = run(
        manifests.path(),
        &["reconcile", "--model", &absent, "--model", &empty],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let absent_after = read(&client, &absent).await;
    assert_eq!(stages(&absent_after), vec![(1, Production), (2, Staging)]);
    assert_eq!(absent_after.aliases["keep"], 1);
    assert_eq!(absent_after.tags["team"], "ml");
    let empty_after = read(&client, &empty).await;
    // Archived stays archived: it is never un-archived unless declared.
    assert_eq!(
        stages(&empty_after),
        vec![(1, Archived), (2, Archived), (3, Archived)]
    );
    assert!(empty_after.aliases.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn description_and_declared_tags_are_enforced_other_tags_and_unmanaged_models_left_alone() {
    let client = support::client();
    let managed = support::unique("managed");
    let unmanaged = support::unique("unmanaged");
    client
        .create_model(
            &managed,
            Some("old words"),
            &BTreeMap::from([
                ("team".to_string(), "data".to_string()),
                ("owner".to_string(), "alice".to_string()),
            ]),
        )
        .await
        .expect("create");
    seed(&client, &unmanaged, 2, &[(1, Production), (2, Production)]).await;
    let unmanaged_before = read(&client, &unmanaged).await;
    let manifests = Manifests::new();
    manifests.write(
        "m.yaml",
        &Manifest::model(&managed)
            .description("New words")
            .tag("team", "ml")
            .tag("tier", "gold")
            .yaml(),
    );
    let (code, stdout, stderr) = run(manifests.path(), &["plan", "--output", "json"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let document = json(&stdout);
    let unmanaged_list: Vec<&str> = document["unmanaged"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(unmanaged_list.contains(&unmanaged.as_str()), "{stdout}");
    assert_eq!(document["summary"]["update"], 3, "{stdout}");

    let (code, stdout, stderr) = run(manifests.path(), &["reconcile"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let after = read(&client, &managed).await;
    assert_eq!(after.description, "New words");
    assert_eq!(after.tags["team"], "ml");
    assert_eq!(after.tags["tier"], "gold");
    assert_eq!(after.tags["owner"], "alice");
    assert_eq!(read(&client, &unmanaged).await, unmanaged_before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_model_is_created_when_it_declares_no_versions() {
    let client = support::client();
    let name = support::unique("created");
    let manifests = Manifests::new();
    manifests.write(
        "m.yaml",
        &Manifest::model(&name)
            .description("Brand new")
            .tag("team", "ml")
            .stage(Production, &[])
            .yaml(),
    );
    let (code, stdout, stderr) = run(manifests.path(), &["reconcile", "--model", &name]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let created = read(&client, &name).await;
    assert_eq!(created.description, "Brand new");
    assert_eq!(created.tags["team"], "ml");
}

#[tokio::test(flavor = "multi_thread")]
async fn max_changes_refuses_a_larger_plan_and_no_annotate_skips_the_audit_tag() {
    let client = support::client();
    let name = support::unique("budget");
    seed(&client, &name, 3, &[]).await;
    let manifests = Manifests::new();
    manifests.write(
        "m.yaml",
        &Manifest::model(&name)
            .stage(Production, &[3])
            .stage(Staging, &[2])
            .yaml(),
    );
    let before = read(&client, &name).await;
    let (code, _, stderr) = run(
        manifests.path(),
        &["reconcile", "--model", &name, "--max-changes", "1"],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("--max-changes 1"), "{stderr}");
    assert_eq!(read(&client, &name).await, before);

    let (code, stdout, stderr) = run(
        manifests.path(),
        &[
            "reconcile",
            "--model",
            &name,
            "--max-changes",
            "2",
            "--no-annotate",
            "--output",
            "json",
        ],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let document = json(&stdout);
    assert_eq!(document["mode"], "apply");
    assert_eq!(document["result"]["applied"], 2);
    assert_eq!(
        document["models"][0]["changes"][0]["result"]["status"],
        "applied"
    );
    let after = read(&client, &name).await;
    assert_eq!(
        stages(&after),
        vec![(1, NoStage), (2, Staging), (3, Production)]
    );
    assert!(
        after
            .versions
            .values()
            .all(|v| !v.tags.contains_key("mlreg.transition"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn markdown_output_is_a_pull_request_comment() {
    let client = support::client();
    let name = support::unique("markdown");
    seed(&client, &name, 1, &[]).await;
    let manifests = Manifests::new();
    manifests.write(
        "m.yaml",
        &Manifest::model(&name).stage(Production, &[1]).yaml(),
    );
    let (code, stdout, stderr) = run(
        manifests.path(),
        &[
            "reconcile",
            "--dry-run",
            "--model",
            &name,
            "--output",
            "markdown",
        ],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_stdout_snapshot(
        "markdown-dry-run",
        "mlreg reconcile --dry-run --model markdown-[ID] --output markdown (v1 None, declared in Production)",
        &stdout,
    );
    assert_eq!(read(&client, &name).await.versions[&1].stage, NoStage);
}

#[test]
fn invalid_manifests_fail_before_any_network_call() {
    let manifests = Manifests::new();
    manifests.write(
        "m.yaml",
        "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: x\nspec:\n  stages:\n    Prod: 1\n",
    );
    let output = assert_cmd::Command::cargo_bin("mlreg")
        .expect("binary")
        .env("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
        .env("NO_COLOR", "1")
        .args(["plan", "--dir"])
        .arg(manifests.path())
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("m.yaml:7:5"), "{stderr}");
    assert!(stderr.contains("Nothing was applied"), "{stderr}");
}
