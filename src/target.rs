//! What a lifecycle command or a serving process points at: a stage (`Production`) or an
//! alias (`@champion`, written as in MLflow's own `models:/NAME@alias` URIs).
//!
//! `promote --from/--to`, `resolve TARGET...` and a manifest's `serving.prefer` all take
//! targets, so they parse and print the same way everywhere.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::manifest::validate_alias_name;
use crate::stage::Stage;

/// A stage or an alias of a registered model.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// A declarable stage: `Staging` or `Production`.
    Stage(Stage),
    /// An alias, without its `@`.
    Alias(String),
}

impl Target {
    /// The alias, when this is one.
    pub fn alias(&self) -> Option<&str> {
        match self {
            Target::Alias(alias) => Some(alias),
            Target::Stage(_) => None,
        }
    }

    /// The stage, when this is one.
    pub fn stage(&self) -> Option<Stage> {
        match self {
            Target::Stage(stage) => Some(*stage),
            Target::Alias(_) => None,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Stage(stage) => write!(f, "{stage}"),
            Target::Alias(alias) => write!(f, "@{alias}"),
        }
    }
}

/// Why a string is not a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// `@` followed by an invalid alias name.
    #[error("invalid alias `@{alias}`: {problem}")]
    Alias {
        /// The name after `@`.
        alias: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A stage that cannot hold a declared or served version.
    #[error("{0} cannot be a target: use Staging, Production or an alias written `@name`")]
    NotDeclarable(Stage),
    /// Neither a stage nor `@alias`.
    #[error("`{0}` is neither a stage (Staging, Production) nor an alias written `@name`")]
    Unknown(String),
}

impl FromStr for Target {
    type Err = TargetError;

    /// `Production`/`staging` (any case) or `@alias` (MLflow's alias rules).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(alias) = text.strip_prefix('@') {
            return match validate_alias_name(alias) {
                Ok(()) => Ok(Target::Alias(alias.to_owned())),
                Err(problem) => Err(TargetError::Alias {
                    alias: alias.to_owned(),
                    problem,
                }),
            };
        }
        match text.parse::<Stage>() {
            Ok(stage) if stage.is_declarable() => Ok(Target::Stage(stage)),
            Ok(stage) => Err(TargetError::NotDeclarable(stage)),
            Err(_) => Err(TargetError::Unknown(text.to_owned())),
        }
    }
}

impl Serialize for Target {
    /// As written on the command line: `Production`, `@champion`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_and_aliases_parse_and_print_as_written() {
        assert_eq!(
            "production".parse::<Target>(),
            Ok(Target::Stage(Stage::Production))
        );
        assert_eq!(
            "@champion".parse::<Target>(),
            Ok(Target::Alias("champion".into()))
        );
        assert_eq!(Target::Alias("champion".into()).to_string(), "@champion");
        assert_eq!(Target::Stage(Stage::Staging).to_string(), "Staging");
        assert!(matches!(
            "Archived".parse::<Target>(),
            Err(TargetError::NotDeclarable(Stage::Archived))
        ));
        assert!(matches!(
            "@latest".parse::<Target>(),
            Err(TargetError::Alias { .. })
        ));
        assert!(matches!(
            "champion".parse::<Target>(),
            Err(TargetError::Unknown(_))
        ));
    }
}
