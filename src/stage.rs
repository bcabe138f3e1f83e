//! Model-version stages, shared by the desired state and the observed registry.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An MLflow model-version stage.
///
/// Manifests may only declare [`Stage::Staging`] and [`Stage::Production`]; `None` and
/// `Archived` are where undeclared versions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Stage {
    /// The stage of a freshly registered version.
    None,
    /// Candidate versions under evaluation.
    Staging,
    /// The version(s) serving production traffic.
    Production,
    /// Retired versions.
    Archived,
}

impl Stage {
    /// The stages a manifest may declare, in the order changes into them are applied.
    pub const DECLARABLE: [Stage; 2] = [Stage::Production, Stage::Staging];

    /// The canonical spelling MLflow uses on the wire and in its UI.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::None => "None",
            Stage::Staging => "Staging",
            Stage::Production => "Production",
            Stage::Archived => "Archived",
        }
    }

    /// Whether a manifest may declare versions in this stage.
    pub fn is_declarable(self) -> bool {
        matches!(self, Stage::Staging | Stage::Production)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Version numbers joined by `separator` (`4, 5`): the one way mlreg writes a list of
/// versions, in tables, messages and edited manifests.
pub fn join_versions<'a>(versions: impl IntoIterator<Item = &'a u64>, separator: &str) -> String {
    let mut joined = String::new();
    for (index, version) in versions.into_iter().enumerate() {
        if index > 0 {
            joined.push_str(separator);
        }
        joined.push_str(&version.to_string());
    }
    joined
}

/// The error for a string that names no MLflow stage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stage `{0}`: expected one of None, Staging, Production, Archived")]
pub struct UnknownStage(pub String);

impl FromStr for Stage {
    type Err = UnknownStage;

    /// Parses a stage name case-insensitively, as the MLflow server does.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Stage::None),
            "staging" => Ok(Stage::Staging),
            "production" => Ok(Stage::Production),
            "archived" => Ok(Stage::Archived),
            _ => Err(UnknownStage(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_case_insensitively_and_prints_canonically() {
        for (input, stage) in [
            ("production", Stage::Production),
            ("STAGING", Stage::Staging),
            ("None", Stage::None),
            ("archived", Stage::Archived),
        ] {
            let parsed: Stage = input.parse().expect("valid stage");
            assert_eq!(parsed, stage);
        }
        assert_eq!(Stage::Production.to_string(), "Production");
        assert!("prod".parse::<Stage>().is_err());
    }
}
