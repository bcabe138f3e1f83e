//! Version references: what may stand where a version number stands in `stages` and
//! `aliases` (DESIGN.md "Version selectors").
//!
//! A [`VersionRef`] is a plain number or a [`Selector`]; a selector names a version by its
//! content (the run that produced it, the MLflow 3 logged model it was registered from)
//! rather than by the number the registry assigned, and mlreg registers the version when
//! none matches. New kinds of selector (copying a version from another environment) join
//! [`Selector`] as variants.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde::ser::{SerializeMap as _, Serializer};

/// The artifact path a `{run: ID}` selector uses when none is written (`mlflow.<flavor>.log_model`'s
/// default name).
pub const DEFAULT_ARTIFACT_PATH: &str = "model";

/// A version named by its content rather than its number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Selector {
    /// `{run: ID, artifactPath: PATH}`: the version of the model this run logged at PATH.
    Run {
        /// The MLflow run id.
        run_id: String,
        /// The name the run logged the model under (default `model`).
        artifact_path: String,
    },
    /// `{loggedModel: m-…}`: the version registered from this MLflow 3 logged model.
    LoggedModel {
        /// The logged model's id (`m-…`).
        model_id: String,
    },
}

impl Selector {
    /// A run selector with the default artifact path.
    pub fn run(run_id: impl Into<String>) -> Self {
        Selector::Run {
            run_id: run_id.into(),
            artifact_path: DEFAULT_ARTIFACT_PATH.to_owned(),
        }
    }

    /// A short form for plan lines: `run 8f2c1a9`, `logged model m-5d88fee`.
    pub fn short(&self) -> String {
        match self {
            Selector::Run {
                run_id,
                artifact_path,
            } => {
                let short: String = run_id.chars().take(7).collect();
                if artifact_path == DEFAULT_ARTIFACT_PATH {
                    format!("run {short}")
                } else {
                    format!("run {short} ({artifact_path})")
                }
            }
            Selector::LoggedModel { model_id } => {
                let short: String = model_id.chars().take(9).collect();
                format!("logged model {short}")
            }
        }
    }
}

impl fmt::Display for Selector {
    /// The whole selector: `run 8f2c…/model`, `logged model m-5d88…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Run {
                run_id,
                artifact_path,
            } if artifact_path == DEFAULT_ARTIFACT_PATH => write!(f, "run {run_id}"),
            Selector::Run {
                run_id,
                artifact_path,
            } => write!(f, "run {run_id} (artifact path {artifact_path})"),
            Selector::LoggedModel { model_id } => write!(f, "logged model {model_id}"),
        }
    }
}

impl Serialize for Selector {
    /// As written in a manifest: `{run: ID}` (with `artifactPath` when not the default),
    /// `{loggedModel: m-…}`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Selector::Run {
                run_id,
                artifact_path,
            } => {
                let default = artifact_path == DEFAULT_ARTIFACT_PATH;
                let mut map = serializer.serialize_map(Some(if default { 1 } else { 2 }))?;
                map.serialize_entry("run", run_id)?;
                if !default {
                    map.serialize_entry("artifactPath", artifact_path)?;
                }
                map.end()
            }
            Selector::LoggedModel { model_id } => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("loggedModel", model_id)?;
                map.end()
            }
        }
    }
}

/// What stands where a version is expected: a number, or a selector.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VersionRef {
    /// A version number the registry assigned.
    Number(u64),
    /// A version named by its content.
    Select(Selector),
}

impl fmt::Display for VersionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionRef::Number(number) => write!(f, "{number}"),
            VersionRef::Select(selector) => write!(f, "{selector}"),
        }
    }
}

/// Why a command-line version argument is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a version: write a number (3), `run:RUN_ID` (optionally `run:RUN_ID/ARTIFACT_PATH`) or a logged model id `m-…`"
)]
pub struct VersionRefError(pub String);

impl FromStr for VersionRef {
    type Err = VersionRefError;

    /// `3`, `run:ID`, `run:ID/PATH`, `m-ID` (command-line arguments).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || VersionRefError(text.to_owned());
        if let Some(rest) = text.strip_prefix("run:") {
            let (run_id, artifact_path) = match rest.split_once('/') {
                Some((run_id, path)) => (run_id, path),
                None => (rest, DEFAULT_ARTIFACT_PATH),
            };
            if validate_run_id(run_id).is_err() || artifact_path.trim().is_empty() {
                return Err(error());
            }
            return Ok(VersionRef::Select(Selector::Run {
                run_id: run_id.to_owned(),
                artifact_path: artifact_path.to_owned(),
            }));
        }
        if text.starts_with("m-") {
            return validate_model_id(text)
                .map(|()| {
                    VersionRef::Select(Selector::LoggedModel {
                        model_id: text.to_owned(),
                    })
                })
                .map_err(|_| error());
        }
        match text.parse::<u64>() {
            Ok(number) if number > 0 && !text.starts_with('0') && !text.starts_with('+') => {
                Ok(VersionRef::Number(number))
            }
            _ => Err(error()),
        }
    }
}

/// Checks a run id: not empty, no whitespace, `/`, quotes or control characters (it goes into
/// search filters and URIs).
pub fn validate_run_id(run_id: &str) -> Result<(), String> {
    if run_id.is_empty() {
        return Err("it is empty".into());
    }
    if let Some(bad) = run_id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "it contains {bad:?}; run ids use letters, digits, `-` and `_`"
        ));
    }
    Ok(())
}

/// Checks a logged model id: `m-` followed by letters, digits, `-` or `_`.
pub fn validate_model_id(model_id: &str) -> Result<(), String> {
    let Some(rest) = model_id.strip_prefix("m-") else {
        return Err("logged model ids start with `m-`".into());
    };
    validate_run_id(rest).map_err(|problem| format!("after `m-`, {problem}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse_as_numbers_runs_and_logged_models() {
        assert_eq!("3".parse(), Ok(VersionRef::Number(3)));
        assert_eq!(
            "run:8f2c".parse(),
            Ok(VersionRef::Select(Selector::run("8f2c")))
        );
        assert_eq!(
            "run:8f2c/clf".parse(),
            Ok(VersionRef::Select(Selector::Run {
                run_id: "8f2c".into(),
                artifact_path: "clf".into()
            }))
        );
        assert_eq!(
            "m-5d88".parse(),
            Ok(VersionRef::Select(Selector::LoggedModel {
                model_id: "m-5d88".into()
            }))
        );
        for bad in [
            "0", "03", "-1", "run:", "run:a b", "m-", "x", "run:a/", "m-a'b",
        ] {
            assert!(bad.parse::<VersionRef>().is_err(), "{bad}");
        }
    }

    #[test]
    fn short_forms_abbreviate_ids() {
        assert_eq!(Selector::run("8f2c1a9e0b7d").short(), "run 8f2c1a9");
        assert_eq!(
            Selector::LoggedModel {
                model_id: "m-5d88fee35e".into()
            }
            .short(),
            "logged model m-5d88fee"
        );
    }
}
