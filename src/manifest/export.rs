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
//! Strings are written plain when that is unambiguous and double-quoted otherwise, so
//! that no value changes type (`"true"`, `"3"`, `"1.0"` stay strings).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use crate::registry::ObservedModel;
use crate::stage::Stage;

/// An exported manifest that does not read back as the model it was written from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CheckError(String);

/// Tag keys with this prefix are MLflow's own and never exported.
pub const MLFLOW_TAG_PREFIX: &str = "mlflow.";
/// Tag keys with this prefix are mlreg's own (audit trail) and never exported.
pub const MLREG_TAG_PREFIX: &str = "mlreg.";

/// The manifest text declaring `model` as the registry holds it.
pub fn manifest_text(model: &ObservedModel) -> String {
    let mut out = String::new();
    out.push_str(
        "# Exported by `mlreg export` from the live registry: `mlreg plan` on it shows no change.\n\
         # `stages` (and `aliases`, when present) are exhaustive: review them before committing.\n\
         # No `retention`: exporting never archives anything; add `retention.keepLatest` on purpose.\n",
    );
    out.push_str("apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n");
    let _ = writeln!(out, "  name: {}", yaml_string(&model.name));
    out.push_str("spec:\n");
    if !model.description.is_empty() {
        let _ = writeln!(out, "  description: {}", yaml_string(&model.description));
    }
    let tags: Vec<(&String, &String)> = model
        .tags
        .iter()
        .filter(|(key, _)| !is_internal_tag(key))
        .collect();
    if !tags.is_empty() {
        out.push_str("  tags:\n");
        for (key, value) in tags {
            let _ = writeln!(out, "    {}: {}", yaml_string(key), yaml_string(value));
        }
    }
    out.push_str("  stages:\n");
    for stage in Stage::DECLARABLE {
        let versions: Vec<u64> = model.versions_in(stage).map(|v| v.version).collect();
        let value = match versions.as_slice() {
            [one] => one.to_string(),
            many => format!(
                "[{}]",
                many.iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let _ = writeln!(out, "    {stage}: {value}");
    }
    if !model.aliases.is_empty() {
        out.push_str("  aliases:\n");
        for (alias, version) in &model.aliases {
            let _ = writeln!(out, "    {}: {version}", yaml_string(alias));
        }
    }
    out
}

/// Reads `text` back with the manifest loader (as a file named `file_name`) and checks that
/// it declares exactly `model`'s name, description, tags, stages and aliases.
pub fn check(file_name: &str, text: &str, model: &ObservedModel) -> Result<(), CheckError> {
    let declared = super::edit::reread(Path::new(file_name), text).map_err(CheckError)?;
    let [declared] = declared.as_slice() else {
        return Err(CheckError(format!(
            "it declares {} models instead of one",
            declared.len()
        )));
    };
    let differs = |what: &str| Err(CheckError(format!("its {what} differ from the registry's")));
    if declared.name != model.name {
        return differs("name");
    }
    let description = (!model.description.is_empty()).then(|| model.description.clone());
    if declared.description != description {
        return differs("description");
    }
    let tags: BTreeMap<String, String> = model
        .tags
        .iter()
        .filter(|(key, _)| !is_internal_tag(key))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    if declared.tags != tags {
        return differs("tags");
    }
    for stage in Stage::DECLARABLE {
        let written: BTreeSet<u64> = declared
            .versions_in(stage)
            .iter()
            .map(|r| r.version)
            .collect();
        let held: BTreeSet<u64> = model.versions_in(stage).map(|v| v.version).collect();
        if written != held {
            return differs("stages");
        }
    }
    let aliases: Option<BTreeMap<String, u64>> = declared.aliases.as_ref().map(|aliases| {
        aliases
            .iter()
            .map(|(alias, target)| (alias.clone(), target.version))
            .collect()
    });
    if aliases.unwrap_or_default() != model.aliases {
        return differs("aliases");
    }
    Ok(())
}

/// Whether a tag key belongs to MLflow or mlreg rather than to the model's owners.
pub fn is_internal_tag(key: &str) -> bool {
    key.starts_with(MLFLOW_TAG_PREFIX) || key.starts_with(MLREG_TAG_PREFIX)
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

/// A YAML scalar that reads back as the string `text`: plain when unambiguous, otherwise
/// double-quoted with escapes.
pub fn yaml_string(text: &str) -> String {
    if is_plain_safe(text) {
        text.to_owned()
    } else {
        double_quoted(text)
    }
}

/// Plain scalars are allowed only for text that starts with a letter, holds letters,
/// digits, spaces and `_ . / -`, does not end with a space, and is no YAML keyword.
fn is_plain_safe(text: &str) -> bool {
    const KEYWORDS: &[&str] = &["true", "false", "yes", "no", "on", "off", "y", "n", "null"];
    let Some(first) = text.chars().next() else {
        return false;
    };
    first.is_ascii_alphabetic()
        && !text.ends_with(' ')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '.' | '/' | '-'))
        && !KEYWORDS.contains(&text.to_ascii_lowercase().as_str())
}

/// A double-quoted YAML scalar: `\` and `"` escaped, and every character YAML does not
/// allow raw (control characters, line and paragraph separators, byte-order marks).
fn double_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || (0x7f..=0x9f).contains(&(c as u32)) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            '\u{2028}' | '\u{2029}' | '\u{feff}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
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
        let text = manifest_text(&model);
        assert_eq!(check("fraud.yaml", &text, &model), Ok(()));
        assert!(text.ends_with(
            "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: fraud\nspec:\n  description: \"Detects fraud: v2\"\n  tags:\n    team: risk\n    version: \"1.0\"\n  stages:\n    Production: 3\n    Staging: [4, 5]\n  aliases:\n    champion: 3\n"
        ), "{text}");
    }

    #[test]
    fn strings_keep_their_type() {
        for (text, expected) in [
            ("pytorch", "pytorch"),
            ("BERT model for reviews", "BERT model for reviews"),
            ("true", "\"true\""),
            ("No", "\"No\""),
            ("3", "\"3\""),
            ("", "\"\""),
            ("a: b", "\"a: b\""),
            ("x #y", "\"x #y\""),
            ("line\nbreak \"q\"", "\"line\\nbreak \\\"q\\\"\""),
            ("bell\u{7}", "\"bell\\x07\""),
        ] {
            assert_eq!(yaml_string(text), expected, "{text:?}");
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
