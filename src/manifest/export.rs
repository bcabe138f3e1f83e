//! Manifests written from the live registry (`mlreg export`), to adopt mlreg on a registry
//! that already holds models.
//!
//! An exported manifest declares exactly what the registry holds, so that `mlreg plan`
//! right after an export is empty:
//! - `description` when the model has one (an empty one is left out: left alone);
//! - `tags`, without MLflow's internal `mlflow.*` keys (MLflow manages them) and without
//!   `mlreg.*` keys (reserved for mlreg's audit trail; a manifest may not declare them);
//! - `stages` always, with both stages: a scalar for one version, a list for several, `[]`
//!   for none. `stages` is exhaustive, so it lists everything in Staging and Production;
//! - `aliases` when the model has any (exhaustive too); left out otherwise, so aliases that
//!   a training pipeline sets later are not deleted until someone declares `aliases`;
//! - no `retention`: exporting must never archive anything. Retention is a decision to
//!   take on purpose, in a reviewed change, not a side effect of adoption;
//! - no `versions` assertions: they pin run ids, which is a decision too.
//!
//! The manifest is the [`ModelSpec`] built from the registry's model, written through its
//! `Serialize` ([`super::to_yaml`]), and checked by reading it back with the loader: the
//! text must declare exactly that spec. Strings are quoted whenever a reader could take
//! them for another type (`"true"`, `"3"`, `"1.0"` stay strings).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{MLFLOW_TAG_PREFIX, ModelSpec, RESERVED_TAG_PREFIX, Stages};
use crate::registry::ObservedModel;
use crate::stage::Stage;

/// An exported manifest that could not be written, or does not read back as the model it
/// was written from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CheckError(String);

/// What a manifest must declare for `mlreg plan` to find `model` in sync, without deciding
/// anything on the owners' behalf (no retention, no assertions; aliases only when the
/// model has some).
pub fn exported_spec(model: &ObservedModel) -> ModelSpec {
    let mut stages = Stages::default();
    for stage in Stage::DECLARABLE {
        if let Some(versions) = stages.get_mut(stage) {
            versions.extend(model.versions_in(stage).map(|version| version.version));
        }
    }
    ModelSpec {
        description: (!model.description.is_empty()).then(|| model.description.clone()),
        tags: model
            .tags
            .iter()
            .filter(|(key, _)| !is_internal_tag(key))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
        stages: Some(stages),
        aliases: (!model.aliases.is_empty()).then(|| model.aliases.clone()),
        ..ModelSpec::default()
    }
}

/// The manifest text declaring `spec` for the model `name`, with a header saying where it
/// comes from and what to review.
pub fn manifest_text(name: &str, spec: &ModelSpec) -> Result<String, CheckError> {
    let body = super::to_yaml(name, spec).map_err(|error| CheckError(error.to_string()))?;
    Ok(format!(
        "# Exported by `mlreg export` from the live registry: `mlreg plan` on it shows no change.\n\
         # `stages` (and `aliases`, when present) are exhaustive: review them before committing.\n\
         # No `retention`: exporting never archives anything; add `retention.keepLatest` on purpose.\n\
         {body}"
    ))
}

/// Reads `text` back with the manifest loader (as a file named `file_name`) and checks that
/// it declares exactly one model, `name`, with exactly `spec`.
pub fn check(file_name: &str, text: &str, name: &str, spec: &ModelSpec) -> Result<(), CheckError> {
    let declared = super::parse_text(Path::new(file_name), text).map_err(|error| {
        CheckError(error.diagnostics.first().map_or_else(
            || "it does not load".to_owned(),
            |diagnostic| format!("it does not load: {}", diagnostic.message),
        ))
    })?;
    let [declared] = declared.as_slice() else {
        return Err(CheckError(format!(
            "it declares {} models instead of one",
            declared.len()
        )));
    };
    if declared.name != name {
        return Err(CheckError(
            "its name differs from the registry's".to_owned(),
        ));
    }
    if &declared.spec != spec {
        return Err(CheckError(format!(
            "its {} differ from the registry's",
            differing_fields(&declared.spec, spec).join(", ")
        )));
    }
    Ok(())
}

/// The `spec` fields (as the manifest names them) whose values differ between `a` and `b`.
fn differing_fields(a: &ModelSpec, b: &ModelSpec) -> Vec<String> {
    let fields = |spec: &ModelSpec| match serde_json::to_value(spec) {
        Ok(serde_json::Value::Object(map)) => map.into_iter().collect::<BTreeMap<_, _>>(),
        _ => BTreeMap::new(),
    };
    let (a, b) = (fields(a), fields(b));
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let differing: Vec<String> = keys
        .into_iter()
        .filter(|key| a.get(*key) != b.get(*key))
        .cloned()
        .collect();
    if differing.is_empty() {
        vec!["contents".to_owned()]
    } else {
        differing
    }
}

/// Whether a tag key belongs to MLflow or mlreg rather than to the model's owners.
pub fn is_internal_tag(key: &str) -> bool {
    key.starts_with(MLFLOW_TAG_PREFIX) || key.starts_with(RESERVED_TAG_PREFIX)
}

/// A file name for each model name (`<name>.yaml`), safe on every common filesystem and
/// unique even where case does not count. The boolean says whether the name had to change.
pub fn file_names<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<String, (String, bool)> {
    let mut taken: BTreeSet<String> = BTreeSet::new();
    let mut chosen = BTreeMap::new();
    for name in names {
        let stem = safe_stem(name);
        let mut candidate = stem.clone();
        let mut n = 2;
        while taken.contains(&candidate.to_lowercase()) {
            candidate = format!("{stem}-{n}");
            n += 1;
        }
        taken.insert(candidate.to_lowercase());
        let changed = candidate != name;
        chosen.insert(name.to_owned(), (format!("{candidate}.yaml"), changed));
    }
    chosen
}

/// `name` with every character but ASCII letters, digits, `.`, `_` and `-` replaced by
/// `_`, no leading `.` (hidden files are not read as manifests), at most 200 characters.
fn safe_stem(name: &str) -> String {
    let mut stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    if stem.starts_with('.') {
        stem.replace_range(..1, "_");
    }
    if stem.is_empty() {
        stem.push_str("model");
    }
    stem
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::ObservedVersion;

    fn version(number: u64, stage: Stage) -> ObservedVersion {
        ObservedVersion {
            version: number,
            stage,
            status: "READY".into(),
            run_id: String::new(),
            source: format!("s3://bucket/{number}"),
            description: String::new(),
            tags: BTreeMap::new(),
            creation_timestamp: 0,
            last_updated_timestamp: 0,
        }
    }

    #[test]
    fn exported_manifest_declares_what_the_registry_holds() {
        let model = ObservedModel {
            name: "fraud".into(),
            description: "Detects fraud: v2".into(),
            tags: [
                ("team".to_owned(), "risk".to_owned()),
                ("version".to_owned(), "1.0".to_owned()),
                ("mlflow.internal".to_owned(), "x".to_owned()),
                ("mlreg.transition".to_owned(), "{}".to_owned()),
            ]
            .into_iter()
            .collect(),
            aliases: [("champion".to_owned(), 3)].into_iter().collect(),
            versions: [
                (1, version(1, Stage::Archived)),
                (3, version(3, Stage::Production)),
                (4, version(4, Stage::Staging)),
                (5, version(5, Stage::Staging)),
            ]
            .into_iter()
            .collect(),
            ..ObservedModel::default()
        };
        let spec = exported_spec(&model);
        let text = manifest_text("fraud", &spec).expect("text");
        assert_eq!(check("fraud.yaml", &text, "fraud", &spec), Ok(()));
        assert!(text.ends_with(
            "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: fraud\nspec:\n  description: \"Detects fraud: v2\"\n  tags:\n    team: risk\n    version: \"1.0\"\n  stages:\n    Production: 3\n    Staging: [4, 5]\n  aliases:\n    champion: 3\n"
        ), "{text}");
        let mut other = spec.clone();
        other.retention = Some(crate::manifest::Retention { keep_latest: 1 });
        assert_eq!(
            check("fraud.yaml", &text, "fraud", &other),
            Err(CheckError(
                "its retention differ from the registry's".to_owned()
            ))
        );
    }

    #[test]
    fn strings_keep_their_type() {
        for text in [
            "pytorch",
            "BERT model for reviews",
            "true",
            "No",
            "yes",
            "3",
            "1.0",
            "",
            "~",
            "null",
            "a: b",
            "x #y",
            "- item",
            "line\nbreak \"q\"",
            "bell\u{7} and escape \u{1b}[31m",
            "'single'",
            " leading space",
            &"long words ".repeat(20),
        ] {
            let model = ObservedModel {
                name: "m".into(),
                description: text.to_owned(),
                tags: [("k".to_owned(), text.to_owned())].into_iter().collect(),
                ..ObservedModel::default()
            };
            let spec = exported_spec(&model);
            let written = manifest_text("m", &spec).expect("text");
            assert_eq!(
                check("m.yaml", &written, "m", &spec),
                Ok(()),
                "{text:?}\n{written}"
            );
        }
    }

    #[test]
    fn file_names_are_safe_and_unique() {
        let names = file_names(["fraud", "team/x y", ".hidden", "Fraud", "fraud-2"]);
        assert_eq!(names["fraud"], ("fraud.yaml".to_owned(), false));
        assert_eq!(names["team/x y"], ("team_x_y.yaml".to_owned(), true));
        assert_eq!(names[".hidden"], ("_hidden.yaml".to_owned(), true));
        // `Fraud` collides with `fraud` where case does not count.
        assert_eq!(names["Fraud"], ("Fraud-2.yaml".to_owned(), true));
        assert_eq!(names["fraud-2"], ("fraud-2-2.yaml".to_owned(), true));
    }
}
