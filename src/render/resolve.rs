//! `mlreg resolve`'s answer as text: the one URI line or the JSON document on stdout, and
//! the warnings, the line saying which target answered, and the "nothing to serve" error
//! as lines for stderr.
//!
//! The policy ([`crate::resolve`]) decides in typed values; the wording lives here, so it
//! can change (or be translated into JSON fields) without touching the decision.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{FORMAT_VERSION, printable};
use crate::resolve::{AnsweredBy, Fallback, Resolution, Unresolved, Warning};
use crate::stage::Stage;
use crate::target::Target;

/// The answer for shell scripts: exactly one line, the URI (or the local fallback path), so
/// that `uri=$(mlreg resolve fraud)` is the whole answer. The rest goes to stderr.
pub fn write_text(out: &mut dyn Write, resolution: &Resolution) -> io::Result<()> {
    writeln!(out, "{}", printable(&resolution.uri))
}

/// The JSON document of `--output json`.
#[derive(Debug, Serialize)]
struct Document<'a> {
    format_version: &'static str,
    model: &'a str,
    version: Option<u64>,
    /// Kept from before targets: the stage that answered (null for an alias).
    stage: Option<Stage>,
    target: Option<&'a Target>,
    targets: &'a [Target],
    uri: &'a str,
    source: Option<&'a str>,
    fallback: Option<&'static str>,
    answered_by: &'static str,
    manifest: Option<&'a Path>,
    local_fallback: Option<&'a str>,
}

/// The answer as the versioned JSON document tools read.
pub fn write_json(out: &mut dyn Write, resolution: &Resolution) -> io::Result<()> {
    let document = Document {
        format_version: FORMAT_VERSION,
        model: &resolution.model,
        version: resolution.version,
        stage: resolution.stage(),
        target: resolution.target.as_ref(),
        targets: &resolution.targets,
        uri: &resolution.uri,
        source: resolution.source.as_deref(),
        fallback: resolution
            .fallback
            .map(|fallback| fallback_name(fallback, resolution)),
        answered_by: match resolution.answered_by {
            AnsweredBy::Registry => "registry",
            AnsweredBy::Manifest => "manifest",
        },
        manifest: resolution.manifest.as_deref(),
        local_fallback: resolution.local_fallback.as_deref(),
    };
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)
}

/// `fallback` in JSON. A later target that is Staging keeps the `"staging"` of the days
/// when Production → Staging was the only chain: within one format version a value keeps
/// its meaning, so tools that read it then still read it right.
fn fallback_name(fallback: Fallback, resolution: &Resolution) -> &'static str {
    match fallback {
        Fallback::LaterTarget if resolution.stage() == Some(Stage::Staging) => "staging",
        Fallback::LaterTarget => "later_target",
        Fallback::Local => "local",
    }
}

/// The line said on stderr for `warning` (unescaped: [`crate::output::Output::message`]
/// escapes it).
pub fn warning(warning: &Warning) -> String {
    match warning {
        Warning::RegistryUnavailable { why, manifest } => format!(
            "warning: the registry cannot be asked ({why}); answering from {}",
            manifest.as_ref().map_or_else(
                || "nothing: no manifest declares the model".to_owned(),
                |file| format!("the manifest {}", file.display())
            ),
        ),
        Warning::NoSuchModel { model } => {
            format!("warning: the registry has no model named `{model}`")
        }
    }
}

/// The one short line saying which target answered and why (for a terminal or `-v`).
pub fn explanation(resolution: &Resolution) -> String {
    let passed_over = resolution.passed_over();
    let in_manifest = if resolution.registry_answered {
        ""
    } else {
        " in the manifest"
    };
    let held_nothing = if passed_over.is_empty() {
        String::new()
    } else {
        format!(" (fallback: {} no version{in_manifest})", hold(passed_over))
    };
    match (&resolution.target, resolution.version) {
        (Some(target), Some(version)) => match resolution.answered_by {
            AnsweredBy::Registry => {
                format!(
                    "note: {target} answered: version {version}, from the registry{held_nothing}"
                )
            }
            AnsweredBy::Manifest => format!(
                "note: {target} answered: version {version}, as {} declares it; the registry was not asked, so its source is unknown{held_nothing}",
                manifest_name(resolution.manifest.as_ref())
            ),
        },
        _ => format!(
            "note: fallback: {} no version{in_manifest}; serving the local fallback of {}",
            hold(&resolution.targets),
            manifest_name(resolution.manifest.as_ref())
        ),
    }
}

/// The error line when nothing can be served for `model`.
pub fn unresolved(model: &str, why: &Unresolved) -> String {
    match why {
        Unresolved::Nothing {
            tried,
            registry_unavailable,
        } => format!(
            "error: nothing to serve for `{model}`: {} no version{} and no manifest declares `serving.localFallback` for it",
            hold(tried),
            if *registry_unavailable {
                " in the manifest"
            } else {
                ""
            }
        ),
    }
}

/// The warning for the deprecated `--stage`, naming the targets that replace it.
pub fn deprecated_stage(targets: &[Target]) -> String {
    format!(
        "warning: --stage is deprecated; name the targets instead: `mlreg resolve MODEL {}`",
        targets
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// `the manifest m.yaml`, or `the manifest` when none is known.
fn manifest_name(manifest: Option<&PathBuf>) -> String {
    manifest.map_or_else(
        || "the manifest".to_owned(),
        |file| format!("the manifest {}", file.display()),
    )
}

/// `@champion holds`, `Production and Staging hold`, `@a, @b and Staging hold`.
fn hold(targets: &[Target]) -> String {
    let names: Vec<String> = targets.iter().map(ToString::to_string).collect();
    match names.as_slice() {
        [] => "no target holds".to_owned(),
        [one] => format!("{one} holds"),
        [init @ .., last] => format!("{} and {last} hold", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::DEFAULT_TARGETS;

    fn champion() -> Target {
        Target::Alias("champion".into())
    }

    fn resolution() -> Resolution {
        Resolution {
            model: "m".into(),
            version: Some(3),
            target: Some(Target::Stage(Stage::Staging)),
            targets: DEFAULT_TARGETS.to_vec(),
            uri: "models:/m/3".into(),
            source: None,
            fallback: Some(Fallback::LaterTarget),
            answered_by: AnsweredBy::Manifest,
            registry_answered: false,
            manifest: Some(PathBuf::from("m.yaml")),
            local_fallback: None,
        }
    }

    #[test]
    fn text_is_one_line_and_json_says_which_target_answered() {
        let mut text = Vec::new();
        write_text(&mut text, &resolution()).expect("write");
        assert_eq!(String::from_utf8_lossy(&text), "models:/m/3\n");
        let mut json = Vec::new();
        write_json(&mut json, &resolution()).expect("write");
        let value: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
        assert_eq!(
            value,
            serde_json::json!({
                "format_version": "1", "model": "m", "version": 3, "stage": "Staging",
                "target": "Staging", "targets": ["Production", "Staging"],
                "uri": "models:/m/3", "source": null, "fallback": "staging",
                "answered_by": "manifest", "manifest": "m.yaml", "local_fallback": null,
            })
        );

        let alias = Resolution {
            target: Some(Target::Stage(Stage::Production)),
            targets: vec![champion(), Target::Stage(Stage::Production)],
            answered_by: AnsweredBy::Registry,
            registry_answered: true,
            source: Some("models:/m-1234".into()),
            local_fallback: Some("models/m".into()),
            ..resolution()
        };
        let mut json = Vec::new();
        write_json(&mut json, &alias).expect("write");
        let value: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
        assert_eq!(value["target"], "Production");
        assert_eq!(
            value["targets"],
            serde_json::json!(["@champion", "Production"])
        );
        assert_eq!(value["fallback"], "later_target");
        assert_eq!(value["local_fallback"], "models/m");
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
    fn the_explanation_is_one_line_saying_which_target_answered() {
        let from_registry = Resolution {
            target: Some(champion()),
            targets: vec![champion()],
            version: Some(7),
            fallback: None,
            answered_by: AnsweredBy::Registry,
            registry_answered: true,
            ..resolution()
        };
        assert_eq!(
            explanation(&from_registry),
            "note: @champion answered: version 7, from the registry"
        );
        assert_eq!(
            explanation(&resolution()),
            "note: Staging answered: version 3, as the manifest m.yaml declares it; the registry was not asked, so its source is unknown (fallback: Production holds no version in the manifest)"
        );
        let local = Resolution {
            target: None,
            version: None,
            targets: vec![champion(), Target::Stage(Stage::Production)],
            fallback: Some(Fallback::Local),
            registry_answered: true,
            manifest: Some(PathBuf::from("desired-state/m.yaml")),
            ..resolution()
        };
        assert_eq!(
            explanation(&local),
            "note: fallback: @champion and Production hold no version; serving the local fallback of the manifest desired-state/m.yaml"
        );
        assert!(!explanation(&local).contains('\n'));
    }

    #[test]
    fn warnings_and_errors_read_as_before() {
        assert_eq!(
            warning(&Warning::RegistryUnavailable {
                why: "connection refused".into(),
                manifest: None
            }),
            "warning: the registry cannot be asked (connection refused); answering from nothing: no manifest declares the model"
        );
        assert_eq!(
            unresolved(
                "m",
                &Unresolved::Nothing {
                    tried: vec![champion(), Target::Stage(Stage::Staging)],
                    registry_unavailable: false,
                }
            ),
            "error: nothing to serve for `m`: @champion and Staging hold no version and no manifest declares `serving.localFallback` for it"
        );
        assert_eq!(
            deprecated_stage(&DEFAULT_TARGETS),
            "warning: --stage is deprecated; name the targets instead: `mlreg resolve MODEL Production Staging`"
        );
    }
}
