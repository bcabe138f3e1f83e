//! A builder for the ordinary manifests tests write, so that the `apiVersion`/`kind`/
//! `metadata` header and the YAML layout are typed out once.
//!
//! ```ignore
//! let text = Manifest::model(&name)
//!     .description("Fraud detector")
//!     .tag("team", "risk")
//!     .stage(Production, &[3])
//!     .stage(Staging, &[4, 5])
//!     .alias("champion", 3)
//!     .keep_latest(2)
//!     .yaml();
//! ```
//!
//! gives
//!
//! ```yaml
//! apiVersion: mlreg/v1
//! kind: RegisteredModel
//! metadata:
//!   name: fraud
//! spec:
//!   description: Fraud detector
//!   tags:
//!     team: risk
//!   stages:
//!     Production: 3
//!     Staging: [4, 5]
//!   aliases:
//!     champion: 3
//!   retention:
//!     keepLatest: 2
//! ```
//!
//! The sections always come in that order (then `serving`, then any raw lines), each in
//! block style; a stage of one version is a plain number, of several or none a flow list.
//! A value that YAML would read as something other than a plain string is double-quoted.
//! `spec` is omitted when nothing is declared. Manifests that test formatting (comments,
//! flow style, CRLF) or broken input stay literal text in their tests.

use std::fmt::{Display, Write as _};
use std::path::{Path, PathBuf};

/// A `RegisteredModel` manifest being built; [`Manifest::yaml`] renders it.
#[derive(Debug, Clone)]
#[must_use]
pub struct Manifest {
    name: String,
    description: Option<String>,
    tags: Vec<(String, String)>,
    /// `None`: no `stages` key (stages are left alone).
    stages: Option<Vec<(String, Vec<u64>)>>,
    /// `None`: no `aliases` key (aliases are left alone).
    aliases: Option<Vec<(String, u64)>>,
    keep_latest: Option<u64>,
    local_fallback: Option<String>,
    raw: String,
}

impl Manifest {
    /// The manifest of model `name`, with an empty spec.
    pub fn model(name: &str) -> Manifest {
        Manifest {
            name: name.to_owned(),
            description: None,
            tags: Vec::new(),
            stages: None,
            aliases: None,
            keep_latest: None,
            local_fallback: None,
            raw: String::new(),
        }
    }

    /// `spec.description`.
    pub fn description(mut self, text: &str) -> Manifest {
        self.description = Some(text.to_owned());
        self
    }

    /// One entry of `spec.tags`, in call order.
    pub fn tag(mut self, key: &str, value: &str) -> Manifest {
        self.tags.push((key.to_owned(), value.to_owned()));
        self
    }

    /// One entry of `spec.stages`, in call order: `stage` is a [`mlreg::stage::Stage`] or
    /// any spelling of one (`"staging"`). No versions declares the stage empty.
    pub fn stage(mut self, stage: impl Display, versions: &[u64]) -> Manifest {
        self.stages
            .get_or_insert_with(Vec::new)
            .push((stage.to_string(), versions.to_vec()));
        self
    }

    /// `stages: {}`: every version in Staging or Production is to be archived.
    pub fn stages_empty(mut self) -> Manifest {
        self.stages = Some(Vec::new());
        self
    }

    /// One entry of `spec.aliases`, in call order.
    pub fn alias(mut self, alias: &str, version: u64) -> Manifest {
        self.aliases
            .get_or_insert_with(Vec::new)
            .push((alias.to_owned(), version));
        self
    }

    /// `aliases: {}`: every alias is to be removed.
    pub fn aliases_empty(mut self) -> Manifest {
        self.aliases = Some(Vec::new());
        self
    }

    /// `spec.retention.keepLatest`.
    pub fn keep_latest(mut self, count: u64) -> Manifest {
        self.keep_latest = Some(count);
        self
    }

    /// `spec.serving.localFallback`.
    pub fn local_fallback(mut self, path: &str) -> Manifest {
        self.local_fallback = Some(path.to_owned());
        self
    }

    /// Lines appended to `spec` as they are, for what the builder has no method for
    /// (`versions` assertions, say). Each line is indented by the caller (two spaces for a
    /// key of `spec`) and ends with a newline.
    pub fn spec_lines(mut self, lines: &str) -> Manifest {
        assert!(
            lines.is_empty() || lines.ends_with('\n'),
            "raw spec lines end with a newline: {lines:?}"
        );
        self.raw.push_str(lines);
        self
    }

    /// The manifest as YAML text.
    pub fn yaml(&self) -> String {
        let mut spec = String::new();
        if let Some(description) = &self.description {
            line(
                &mut spec,
                format_args!("  description: {}", scalar(description)),
            );
        }
        if !self.tags.is_empty() {
            spec.push_str("  tags:\n");
            for (key, value) in &self.tags {
                line(
                    &mut spec,
                    format_args!("    {}: {}", scalar(key), scalar(value)),
                );
            }
        }
        match &self.stages {
            None => {}
            Some(stages) if stages.is_empty() => spec.push_str("  stages: {}\n"),
            Some(stages) => {
                spec.push_str("  stages:\n");
                for (stage, versions) in stages {
                    line(&mut spec, format_args!("    {stage}: {}", list(versions)));
                }
            }
        }
        match &self.aliases {
            None => {}
            Some(aliases) if aliases.is_empty() => spec.push_str("  aliases: {}\n"),
            Some(aliases) => {
                spec.push_str("  aliases:\n");
                for (alias, version) in aliases {
                    line(&mut spec, format_args!("    {}: {version}", scalar(alias)));
                }
            }
        }
        if let Some(count) = self.keep_latest {
            line(
                &mut spec,
                format_args!("  retention:\n    keepLatest: {count}"),
            );
        }
        if let Some(path) = &self.local_fallback {
            line(
                &mut spec,
                format_args!("  serving:\n    localFallback: {}", scalar(path)),
            );
        }
        spec.push_str(&self.raw);

        let mut text = format!(
            "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: {}\n",
            scalar(&self.name)
        );
        if !spec.is_empty() {
            text.push_str("spec:\n");
            text.push_str(&spec);
        }
        text
    }

    /// Writes the manifest to `dir/file` and returns the file's path.
    pub fn write(&self, dir: &Path, file: &str) -> PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, self.yaml())
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
        path
    }
}

/// Several manifests as the documents of one file, separated by `---`.
pub fn documents(manifests: &[Manifest]) -> String {
    manifests
        .iter()
        .map(Manifest::yaml)
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Appends `text` and a newline.
fn line(out: &mut String, text: std::fmt::Arguments<'_>) {
    out.write_fmt(text)
        .expect("writing into a String cannot fail");
    out.push('\n');
}

/// A stage's versions: `3`, `[4, 5]` or `[]`.
fn list(versions: &[u64]) -> String {
    match versions {
        [one] => one.to_string(),
        _ => format!(
            "[{}]",
            versions
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `text` as a YAML scalar that reads back as the same string: plain when it is made of
/// letters, digits, spaces and `_./-` and YAML would not read it as a number, a boolean or
/// null; double-quoted (JSON escapes are YAML escapes) otherwise.
fn scalar(text: &str) -> String {
    let plain_characters = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " _./-".contains(c));
    let special = matches!(
        text.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~"
    );
    let numeric = text.parse::<f64>().is_ok()
        || text.starts_with(['.', '+', '-'])
        || text.starts_with(|c: char| c.is_ascii_digit());
    if !text.is_empty()
        && plain_characters
        && !special
        && !numeric
        && !text.starts_with(' ')
        && !text.ends_with(' ')
    {
        text.to_owned()
    } else {
        serde_json::to_string(text).expect("a string serializes to JSON")
    }
}

#[cfg(test)]
mod tests {
    use mlreg::stage::Stage::{Production, Staging};

    use super::*;

    #[test]
    fn every_section_in_order() {
        let text = Manifest::model("fraud")
            .description("Fraud detector")
            .tag("team", "risk")
            .tag("validated", "true")
            .stage(Production, &[3])
            .stage(Staging, &[4, 5])
            .alias("champion", 3)
            .keep_latest(2)
            .local_fallback("/models/fraud")
            .spec_lines("  versions:\n    \"3\":\n      runId: abc\n")
            .yaml();
        assert_eq!(
            text,
            "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: fraud\nspec:\n  \
             description: Fraud detector\n  tags:\n    team: risk\n    validated: \"true\"\n  \
             stages:\n    Production: 3\n    Staging: [4, 5]\n  aliases:\n    champion: 3\n  \
             retention:\n    keepLatest: 2\n  serving:\n    localFallback: /models/fraud\n  \
             versions:\n    \"3\":\n      runId: abc\n"
        );
    }

    #[test]
    fn empty_sections_and_no_spec() {
        assert_eq!(
            Manifest::model("bare").yaml(),
            "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: bare\n"
        );
        assert_eq!(
            Manifest::model("m")
                .stages_empty()
                .aliases_empty()
                .yaml()
                .split_once("spec:\n")
                .map(|(_, spec)| spec.to_owned()),
            Some("  stages: {}\n  aliases: {}\n".to_owned())
        );
        assert!(
            Manifest::model("m")
                .stage("staging", &[])
                .yaml()
                .ends_with("  stages:\n    staging: []\n")
        );
    }

    #[test]
    fn odd_values_are_quoted() {
        for (value, yaml) in [
            ("ml", "ml"),
            ("New words", "New words"),
            ("3", "\"3\""),
            ("1.5", "\"1.5\""),
            ("true", "\"true\""),
            ("No", "\"No\""),
            ("", "\"\""),
            ("a: b", "\"a: b\""),
            ("#x", "\"#x\""),
            ("- x", "\"- x\""),
            ("tab\there", "\"tab\\there\""),
        ] {
            assert_eq!(scalar(value), yaml, "{value:?}");
        }
    }

    #[test]
    fn several_documents() {
        let text = documents(&[Manifest::model("a"), Manifest::model("b")]);
        assert_eq!(text.matches("apiVersion: mlreg/v1\n").count(), 2);
        assert!(text.contains("  name: a\n---\napiVersion"), "{text}");
    }
}
