//! `mlreg resolve`'s answer as text: the URI line (and its source) or the JSON document on
//! stdout, and the notes and the "nothing to serve" error as lines for stderr.
//!
//! The policy ([`crate::resolve`]) decides in typed values; the wording lives here, so it
//! can change (or be translated into JSON fields) without touching the decision.

use std::io::{self, Write};

use serde::Serialize;

use super::{FORMAT_VERSION, printable};
use crate::resolve::{AnsweredBy, Fallback, Note, Resolution, Unresolved};
use crate::stage::Stage;

/// The answer for people and shell scripts: the URI, then `source: ...`.
pub fn write_text(out: &mut dyn Write, resolution: &Resolution) -> io::Result<()> {
    writeln!(out, "{}", printable(&resolution.uri))?;
    match &resolution.source {
        Some(source) => writeln!(out, "source: {}", printable(source)),
        None => writeln!(out, "source: unknown"),
    }
}

/// The JSON document of `--output json`.
#[derive(Debug, Serialize)]
struct Document<'a> {
    format_version: &'static str,
    model: &'a str,
    version: Option<u64>,
    stage: Option<Stage>,
    uri: &'a str,
    source: Option<&'a str>,
    fallback: Option<&'static str>,
    answered_by: &'static str,
}

/// The answer as the versioned JSON document tools read.
pub fn write_json(out: &mut dyn Write, resolution: &Resolution) -> io::Result<()> {
    let document = Document {
        format_version: FORMAT_VERSION,
        model: &resolution.model,
        version: resolution.version,
        stage: resolution.stage,
        uri: &resolution.uri,
        source: resolution.source.as_deref(),
        fallback: resolution.fallback.map(|fallback| match fallback {
            Fallback::Staging => "staging",
            Fallback::Local => "local",
        }),
        answered_by: match resolution.answered_by {
            AnsweredBy::Registry => "registry",
            AnsweredBy::Manifest => "manifest",
        },
    };
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)
}

/// The line said on stderr for `note` (unescaped: [`crate::output::Output::message`]
/// escapes it).
pub fn note(note: &Note) -> String {
    match note {
        Note::RegistryUnavailable { why, manifest } => format!(
            "warning: the registry cannot be asked ({why}); answering from {}",
            manifest.as_ref().map_or_else(
                || "nothing: no manifest declares the model".to_owned(),
                |file| format!("the manifest {}", file.display())
            ),
        ),
        Note::NoSuchModel { model } => format!("note: the registry has no model named `{model}`"),
        Note::FromManifest { version, stage } => format!(
            "note: version {version} is what the manifest declares in {stage}; the registry was not asked, so its source is unknown"
        ),
        Note::StageFallback { requested, serving } => {
            format!("note: fallback: {requested} holds no version; serving {serving}")
        }
        Note::LocalFallback {
            tried,
            registry_unavailable,
            manifest,
        } => format!(
            "note: fallback: {} hold no version{}; serving the local fallback of {}",
            stages(tried),
            if *registry_unavailable {
                " in the manifest"
            } else {
                ""
            },
            manifest.as_ref().map_or_else(
                || "the manifest".to_owned(),
                |file| file.display().to_string()
            )
        ),
    }
}

/// The error line when nothing can be served for `model`.
pub fn unresolved(model: &str, why: &Unresolved) -> String {
    match why {
        Unresolved::Nothing { tried } => format!(
            "error: nothing to serve for `{model}`: {} hold no version and no manifest declares `serving.localFallback` for it",
            stages(tried)
        ),
    }
}

/// `Production and Staging`.
fn stages(stages: &[Stage]) -> String {
    stages
        .iter()
        .map(|stage| stage.as_str())
        .collect::<Vec<_>>()
        .join(" and ")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn resolution() -> Resolution {
        Resolution {
            model: "m".into(),
            version: Some(3),
            stage: Some(Stage::Staging),
            uri: "models:/m/3".into(),
            source: None,
            fallback: Some(Fallback::Staging),
            answered_by: AnsweredBy::Manifest,
        }
    }

    #[test]
    fn text_and_json() {
        let mut text = Vec::new();
        write_text(&mut text, &resolution()).expect("write");
        assert_eq!(
            String::from_utf8_lossy(&text),
            "models:/m/3\nsource: unknown\n"
        );
        let mut json = Vec::new();
        write_json(&mut json, &resolution()).expect("write");
        let value: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
        assert_eq!(
            value,
            serde_json::json!({
                "format_version": "1", "model": "m", "version": 3, "stage": "Staging",
                "uri": "models:/m/3", "source": null, "fallback": "staging",
                "answered_by": "manifest",
            })
        );
    }

    #[test]
    fn a_local_path_cannot_smuggle_escape_sequences() {
        let mut text = Vec::new();
        let local = Resolution {
            uri: "models/\u{1b}[2Jm".into(),
            source: Some("models/\u{1b}[2Jm".into()),
            ..resolution()
        };
        write_text(&mut text, &local).expect("write");
        assert!(!text.contains(&0x1b));
    }

    #[test]
    fn notes_read_as_before() {
        assert_eq!(
            note(&Note::LocalFallback {
                tried: vec![Stage::Production, Stage::Staging],
                registry_unavailable: true,
                manifest: Some(PathBuf::from("desired-state/m.yaml")),
            }),
            "note: fallback: Production and Staging hold no version in the manifest; serving the local fallback of desired-state/m.yaml"
        );
        assert_eq!(
            note(&Note::RegistryUnavailable {
                why: "connection refused".into(),
                manifest: None
            }),
            "warning: the registry cannot be asked (connection refused); answering from nothing: no manifest declares the model"
        );
        assert_eq!(
            unresolved(
                "m",
                &Unresolved::Nothing {
                    tried: vec![Stage::Staging]
                }
            ),
            "error: nothing to serve for `m`: Staging hold no version and no manifest declares `serving.localFallback` for it"
        );
    }
}
