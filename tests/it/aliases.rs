//! The aliases-first lifecycle (MLflow 3) against the real server: `promote` between
//! aliases (with and without `--keep-source`) and between a stage and an alias, `set-alias`
//! and `--delete`, and `migrate stages-to-aliases` (comments kept byte for byte, `plan`
//! right after shows only alias moves, a stage with several versions refused while the
//! other models migrate). Every edit is followed by `plan`/`reconcile` on the same server.

use std::path::Path;

use mlreg::stage::Stage;
use serde_json::Value;

use crate::support::manifest::Manifest;
use crate::support::{self, output};

/// Runs `mlreg ARGS --dir DIR` against the shared server; returns (code, stdout, stderr).
fn mlreg(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut command = support::mlreg();
    command.args(args).arg("--dir").arg(dir);
    output(&mut command)
}

/// The changes `plan --output json` lists for `model`, as (kind, alias or version).
fn planned(dir: &Path, model: &str) -> Vec<String> {
    let (code, stdout, stderr) = mlreg(dir, &["plan", "--output", "json", "--model", model]);
    assert_eq!(code, 0, "plan:\n{stdout}\n{stderr}");
    let plan: Value = support::parse_json(&stdout);
    plan["models"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|model| model["changes"].as_array().cloned().unwrap_or_default())
        .map(|change| {
            let kind = change["kind"].as_str().unwrap_or_default().to_owned();
            match change.get("alias").and_then(Value::as_str) {
                Some(alias) => format!("{kind} {alias} -> {}", change["to"]),
                None => format!("{kind} {}", change["version"]),
            }
        })
        .collect()
}

fn reconcile(dir: &Path) {
    let (code, stdout, stderr) = mlreg(dir, &["reconcile"]);
    assert_eq!(code, 0, "reconcile:\n{stdout}\n{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn promote_moves_challenger_to_champion_and_reconcile_follows() {
    let client = support::client();
    let name = support::unique("alias-promote");
    support::seed_model(&client, &name, 3).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("m.yaml");
    let text = format!(
        "# Serving aliases of {name}.\napiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  aliases:\n    champion: 1     # in production since May\n    challenger: 2   # shadow traffic\n"
    );
    std::fs::write(&file, &text).expect("write manifest");
    reconcile(dir.path());

    // Default for a manifest without `stages`: @challenger -> @champion.
    let (code, stdout, stderr) = mlreg(dir.path(), &["promote", &name]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("-    champion: 1"), "the diff: {stdout}");
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        text.replace(
            "    champion: 1     # in production since May\n    challenger: 2   # shadow traffic\n",
            "    champion: 2     # in production since May\n"
        )
    );
    assert!(
        stderr.contains("@champion → 2 (was 1); @challenger removed (was 2)"),
        "{stderr}"
    );
    assert_eq!(
        planned(dir.path(), &name),
        ["set_alias champion -> 2", "delete_alias challenger -> null"]
    );
    reconcile(dir.path());
    let model = support::read_model(&client, &name).await;
    assert_eq!(
        model.aliases,
        [("champion".to_owned(), 2)].into_iter().collect()
    );

    // --keep-source keeps the source alias.
    let (code, _, stderr) = mlreg(dir.path(), &["set-alias", &name, "@challenger", "3"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = mlreg(
        dir.path(),
        &[
            "promote",
            &name,
            "--from",
            "@challenger",
            "--to",
            "@champion",
            "--keep-source",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    reconcile(dir.path());
    let model = support::read_model(&client, &name).await;
    assert_eq!(
        model.aliases,
        [("champion".to_owned(), 3), ("challenger".to_owned(), 3)]
            .into_iter()
            .collect()
    );
    assert!(planned(dir.path(), &name).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn set_alias_and_delete_edit_only_their_line() {
    let client = support::client();
    let name = support::unique("set-alias");
    support::seed_model(&client, &name, 2).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = Manifest::model(&name)
        .description("Scores transactions")
        .alias("champion", 1)
        .write(dir.path(), "m.yaml");
    let before = std::fs::read_to_string(&file).expect("read");

    // A dry run prints the diff and writes nothing.
    let (code, stdout, stderr) = mlreg(
        dir.path(),
        &["set-alias", &name, "shadow", "2", "--dry-run"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("+    shadow: 2"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&file).expect("read"), before);

    let (code, _, stderr) = mlreg(dir.path(), &["set-alias", &name, "shadow", "2"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        format!("{before}    shadow: 2\n")
    );
    reconcile(dir.path());
    let model = support::read_model(&client, &name).await;
    assert_eq!(model.aliases.get("shadow"), Some(&2));

    let (code, _, stderr) = mlreg(dir.path(), &["set-alias", &name, "shadow", "--delete"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).expect("read"), before);
    assert_eq!(planned(dir.path(), &name), ["delete_alias shadow -> null"]);
    reconcile(dir.path());
    let model = support::read_model(&client, &name).await;
    assert_eq!(model.aliases.get("shadow"), None);

    // Refusals write nothing: an alias MLflow refuses, an unknown model, deleting twice.
    for args in [
        vec!["set-alias", name.as_str(), "latest", "1"],
        vec!["set-alias", "no-such-model", "champion", "1"],
        vec!["set-alias", name.as_str(), "champion"],
    ] {
        let (code, _, stderr) = mlreg(dir.path(), &args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert_eq!(std::fs::read_to_string(&file).expect("read"), before);
    }
    let (code, _, stderr) = mlreg(dir.path(), &["set-alias", &name, "shadow", "--delete"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("alias `shadow` is not declared"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mixed_promotions_between_a_stage_and_an_alias() {
    let client = support::client();
    let name = support::unique("mixed-promote");
    support::seed_model(&client, &name, 3).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = Manifest::model(&name)
        .stage(Stage::Production, &[1])
        .stage(Stage::Staging, &[2])
        .alias("champion", 1)
        .write(dir.path(), "m.yaml");
    reconcile(dir.path());

    // Staging -> @champion: the alias takes Staging's version, which stays in Staging.
    let (code, _, stderr) = mlreg(
        dir.path(),
        &["promote", &name, "--from", "Staging", "--to", "@champion"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(planned(dir.path(), &name), ["set_alias champion -> 2"]);

    // @champion -> Production would take version 2 out of Staging: refused.
    let before = std::fs::read_to_string(&file).expect("read");
    let (code, _, stderr) = mlreg(
        dir.path(),
        &[
            "promote",
            &name,
            "--from",
            "@champion",
            "--to",
            "Production",
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("which the manifest declares in Staging"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&file).expect("read"), before);

    // After Staging is emptied, @champion -> Production places version 2 there.
    let (code, _, stderr) = mlreg(dir.path(), &["set-stage", &name, "2", "None"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = mlreg(
        dir.path(),
        &[
            "promote",
            &name,
            "--from",
            "@champion",
            "--to",
            "Production",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    reconcile(dir.path());
    let model = support::read_model(&client, &name).await;
    assert_eq!(
        support::stages(&model),
        [
            (1, Stage::Archived),
            (2, Stage::Production),
            (3, Stage::None)
        ]
    );
    assert_eq!(model.aliases.get("champion"), Some(&2));

    // A source that holds nothing.
    let (code, _, stderr) = mlreg(
        dir.path(),
        &["promote", &name, "--from", "Staging", "--to", "@shadow"],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("declares no version in Staging"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_adds_aliases_beside_stages_then_drops_the_stages() {
    let client = support::client();
    let fraud = support::unique("migrate-fraud");
    let churn = support::unique("migrate-churn");
    let plain = support::unique("migrate-plain");
    for name in [&fraud, &churn, &plain] {
        support::seed_model(&client, name, 3).await;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let fraud_text = format!(
        "# Fraud detection: owned by the risk team.\napiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: {fraud}   # the registered model\nspec:\n  description: Fraud detector\n  # Which version serves, and which is next.\n  stages:\n    Production: 2   # since May\n    Staging: 3      # candidate\n  retention:\n    keepLatest: 5   # keep spares\n"
    );
    std::fs::write(dir.path().join("fraud.yaml"), &fraud_text).expect("write");
    Manifest::model(&churn)
        .stage(Stage::Staging, &[1, 2])
        .write(dir.path(), "churn.yaml");
    Manifest::model(&plain)
        .alias("champion", 1)
        .write(dir.path(), "plain.yaml");
    reconcile(dir.path());
    let churn_before = std::fs::read_to_string(dir.path().join("churn.yaml")).expect("read");

    // Step 1: aliases beside the stages, serving switched to them. The model whose Staging
    // holds two versions is refused (exit 1); the others are migrated.
    let (code, stdout, stderr) = mlreg(dir.path(), &["migrate", "stages-to-aliases"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "{churn}: not migrated: Staging holds versions 1, 2, and @challenger can point at one only"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("declares no `stages`; nothing to migrate"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("churn.yaml")).expect("read"),
        churn_before
    );
    let migrated = std::fs::read_to_string(dir.path().join("fraud.yaml")).expect("read");
    assert_eq!(
        migrated,
        format!(
            "{fraud_text}  aliases: {{challenger: 3, champion: 2}}\n  serving: {{prefer: [\"@champion\", \"@challenger\"]}}\n"
        ),
        "every line outside the added ones is kept byte for byte"
    );
    // `plan` right after shows exactly the alias moves.
    let mut moves = planned(dir.path(), &fraud);
    moves.sort();
    assert_eq!(
        moves,
        ["set_alias challenger -> 3", "set_alias champion -> 2"]
    );
    reconcile(dir.path());

    // Step 2: --drop-stages; mlreg then leaves the registry's stages alone.
    let (code, _, stderr) = mlreg(
        dir.path(),
        &[
            "migrate",
            "stages-to-aliases",
            "--model",
            &fraud,
            "--drop-stages",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let dropped = std::fs::read_to_string(dir.path().join("fraud.yaml")).expect("read");
    assert!(!dropped.contains("stages:"), "{dropped}");
    assert!(
        dropped.contains("  # Which version serves, and which is next.\n  retention:"),
        "{dropped}"
    );
    assert!(planned(dir.path(), &fraud).is_empty());
    let model = support::read_model(&client, &fraud).await;
    assert_eq!(
        support::stages(&model),
        [
            (1, Stage::None),
            (2, Stage::Production),
            (3, Stage::Staging)
        ]
    );
}
