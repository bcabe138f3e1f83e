//! `mlreg versions` and `mlreg info` against the real server: state is set up through the
//! client, the binary is run, and its output is compared with what MLflow holds.

use std::collections::BTreeMap;
use std::path::Path;

use mlreg::registry::Registry;
use mlreg::registry::mlflow::MlflowClient;
use mlreg::stage::Stage;
use serde_json::Value;

use crate::support::manifest::Manifest;
use crate::support::snapshot;
use crate::support::{self, parse_json as json, read_model as read};

/// A model with versions in every stage, two in Production, aliases, tags, a run and a
/// description:
/// v1 Archived, v2 Production (run, tag, aliases champion + stable), v3 Production,
/// v4 Staging (alias challenger), v5 None.
async fn seed_rich_model(client: &MlflowClient, prefix: &str) -> (String, String) {
    let name = support::unique(prefix);
    let run_id = support::create_run().await;
    client
        .create_model(
            &name,
            Some("Fake review detector"),
            &BTreeMap::from([("framework".to_owned(), "pytorch".to_owned())]),
        )
        .await
        .expect("create model");
    for n in 1..=5 {
        let run = (n == 2).then_some(run_id.as_str());
        let version = client
            .create_version(
                &name,
                &format!("s3://bucket/{name}/{n}"),
                run,
                &BTreeMap::new(),
            )
            .await
            .expect("create version");
        assert_eq!(version, n);
    }
    client
        .set_version_tag(&name, 2, "validated", "true")
        .await
        .expect("version tag");
    support::place(
        client,
        &name,
        &[
            (1, Stage::Archived),
            (2, Stage::Production),
            (3, Stage::Production),
            (4, Stage::Staging),
        ],
        &[("champion", 2), ("stable", 2), ("challenger", 4)],
    )
    .await;
    (name, run_id)
}

fn run(args: &[&str]) -> (i32, String, String) {
    support::output(support::mlreg().args(args))
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_json_matches_the_registry() {
    let client = support::client();
    let (name, run_id) = seed_rich_model(&client, "versions-json").await;
    let (code, stdout, stderr) = run(&["versions", &name, "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let document = json(&stdout);
    assert_eq!(document["format_version"], "1");
    assert_eq!(document["model"], name.as_str());

    let model = read(&client, &name).await;
    let listed = document["versions"].as_array().expect("versions array");
    let numbers: Vec<u64> = listed
        .iter()
        .filter_map(|v| v["version"].as_u64())
        .collect();
    assert_eq!(numbers, [5, 4, 3, 2, 1], "newest first");
    for entry in listed {
        let number = entry["version"].as_u64().expect("number");
        let version = &model.versions[&number];
        assert_eq!(entry["stage"], version.stage.as_str(), "v{number}");
        assert_eq!(entry["source"], version.source.as_str(), "v{number}");
        assert_eq!(entry["status"], "READY", "v{number}");
        assert_eq!(
            entry["creation_timestamp"], version.creation_timestamp,
            "v{number}"
        );
        assert_eq!(
            entry["last_updated_timestamp"], version.last_updated_timestamp,
            "v{number}"
        );
        let aliases: Vec<&str> = entry["aliases"]
            .as_array()
            .expect("aliases array")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(aliases, model.aliases_of(number), "v{number}");
        let expected_run = (!version.run_id.is_empty()).then_some(version.run_id.as_str());
        assert_eq!(entry["run_id"].as_str(), expected_run, "v{number}");
        assert_eq!(
            entry["tags"],
            serde_json::to_value(&version.tags).expect("tags"),
            "v{number}"
        );
        assert!(
            entry["created"]
                .as_str()
                .is_some_and(|at| at.ends_with('Z')),
            "{entry}"
        );
    }
    // And what MLflow holds is what was set up.
    assert_eq!(listed[3]["run_id"], run_id.as_str());
    assert_eq!(
        listed[3]["aliases"],
        serde_json::json!(["champion", "stable"])
    );
    assert_eq!(listed[3]["tags"], serde_json::json!({"validated": "true"}));
    assert_eq!(listed[2]["stage"], "Production");
    assert_eq!(listed[4]["stage"], "Archived");
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_table_lists_every_version_newest_first() {
    let client = support::client();
    let (name, run_id) = seed_rich_model(&client, "versions-table").await;
    let (code, stdout, stderr) = run(&["versions", &name]);
    assert_eq!(code, 0, "{stderr}");
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "VERSION", "STAGE", "ALIASES", "RUN", "SOURCE", "STATUS", "AGE"
        ],
        "{stdout}"
    );
    assert_eq!(rows.len(), 6, "{stdout}");
    let source = |n: u64| format!("s3://bucket/{name}/{n}");
    let expected: [[&str; 6]; 5] = [
        ["5", "None", "-", "-", &source(5), "READY"],
        ["4", "Staging", "challenger", "-", &source(4), "READY"],
        ["3", "Production", "-", "-", &source(3), "READY"],
        [
            "2",
            "Production",
            "champion,stable",
            &run_id,
            &source(2),
            "READY",
        ],
        ["1", "Archived", "-", "-", &source(1), "READY"],
    ];
    for (row, expected) in rows[1..].iter().zip(expected) {
        assert_eq!(row[..6], expected, "{stdout}");
        // Created seconds ago.
        assert!(row[6].ends_with('s') || row[6].ends_with('m'), "{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_of_a_missing_model_is_an_error() {
    let name = support::unique("absent");
    let (code, stdout, stderr) = run(&["versions", &name]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(&format!("model `{name}` does not exist")),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["info", &name]);
    assert_eq!(code, 1);
    assert!(stderr.contains("does not exist"), "{stderr}");
}

fn manifest(dir: &Path, file: &str, model: &str) {
    Manifest::model(model)
        .stage(Stage::Production, &[2, 3])
        .write(dir, file);
}

#[tokio::test(flavor = "multi_thread")]
async fn info_json_summarizes_the_model_and_names_its_manifest() {
    let client = support::client();
    let (name, _) = seed_rich_model(&client, "info-json").await;
    let dir = tempfile::tempdir().expect("temp dir");
    manifest(dir.path(), "other.yaml", &support::unique("other"));
    manifest(dir.path(), "mine.yaml", &name);
    let dir_arg = dir.path().to_str().expect("UTF-8 path");
    let (code, stdout, stderr) = run(&["info", &name, "--dir", dir_arg, "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let document = json(&stdout);
    let model = read(&client, &name).await;

    assert_eq!(document["format_version"], "1");
    assert_eq!(document["model"], name.as_str());
    assert_eq!(document["description"], "Fake review detector");
    assert_eq!(
        document["tags"],
        serde_json::json!({"framework": "pytorch"})
    );
    assert_eq!(document["managed_by"]["state"], "managed", "{document}");
    assert!(
        document["managed_by"]["file"]
            .as_str()
            .is_some_and(|file| file.ends_with("mine.yaml")),
        "{document}"
    );
    assert_eq!(document["version_count"], 5);
    assert_eq!(document["latest_version"], 5);
    assert_eq!(
        document["aliases"],
        serde_json::to_value(&model.aliases).expect("aliases")
    );
    // Aliases set by hand (here through the client) carry no mlreg record.
    for (alias, version) in &model.aliases {
        assert_eq!(
            document["alias_audit"][alias],
            serde_json::json!({
                "version": version, "set_by_mlreg": false, "since": null, "previous": null,
                "manifest": null, "commit": null
            }),
            "{document}"
        );
    }
    for stage in [
        Stage::Production,
        Stage::Staging,
        Stage::None,
        Stage::Archived,
    ] {
        let held: Vec<u64> = model.versions_in(stage).map(|v| v.version).collect();
        let summary = &document["stages"][stage.as_str()];
        assert_eq!(summary["versions"], serde_json::json!(held), "{stage}");
        assert_eq!(summary["count"], held.len(), "{stage}");
        assert_eq!(summary["latest"], serde_json::json!(held.last()), "{stage}");
    }
    assert_eq!(
        document["stages"]["Production"]["versions"],
        serde_json::json!([2, 3])
    );
    assert_eq!(document["creation_timestamp"], model.creation_timestamp);
    // The manifest leaves Staging out, so the Staging version is drift.
    assert_eq!(
        document["drift"],
        serde_json::json!(["- version 4: Staging → Archived (not declared in stage)"]),
        "{document}"
    );

    // Declaring only version 3 in Production makes version 2 drift too.
    Manifest::model(&name)
        .stage(Stage::Production, &[3])
        .write(dir.path(), "mine.yaml");
    let (code, stdout, stderr) = run(&["info", &name, "--dir", dir_arg, "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let document = json(&stdout);
    assert_eq!(
        document["drift"],
        serde_json::json!([
            "- version 2: Production → Archived (not declared in stage)",
            "- version 4: Staging → Archived (not declared in stage)"
        ]),
        "{document}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn info_text_shows_stages_aliases_tags_and_management() {
    let client = support::client();
    let (name, _) = seed_rich_model(&client, "info-text").await;

    let unmanaged = tempfile::tempdir().expect("temp dir");
    manifest(unmanaged.path(), "other.yaml", &support::unique("other"));
    let dir_arg = unmanaged.path().to_str().expect("UTF-8 path");
    let (code, stdout, stderr) = run(&["info", &name, "--dir", dir_arg]);
    assert_eq!(code, 0, "{stderr}");
    let mut settings = snapshot::settings(
        "versions",
        "mlreg info info-text-[ID] --dir <a directory that does not declare it> (seed_rich_model)",
    );
    settings.add_filter(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \([^)]* ago\)",
        "[TIMESTAMP] ([AGE] ago)",
    );
    settings.bind(|| insta::assert_snapshot!("info-text", stdout));

    let invalid = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        invalid.path().join("broken.yaml"),
        "apiVersion: nope\nkind: [\n",
    )
    .expect("write");
    let dir_arg = invalid.path().to_str().expect("UTF-8 path");
    let (code, stdout, stderr) = run(&["info", &name, "--dir", dir_arg]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("Managed by:   unknown (manifests invalid: "),
        "{stdout}"
    );

    let missing = unmanaged.path().join("does-not-exist");
    let dir_arg = missing.to_str().expect("UTF-8 path");
    let (code, stdout, stderr) = run(&["info", &name, "--dir", dir_arg]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("Managed by:   not managed (no manifest directory"),
        "{stdout}"
    );
}
