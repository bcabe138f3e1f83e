//! Reading a desired-state directory into a validated [`DesiredState`].

use std::path::Path;

use super::{DesiredState, LoadError};

/// Loads and validates every manifest under `dir`.
pub fn load_dir(dir: &Path) -> Result<DesiredState, LoadError> {
    let _ = dir;
    Err(LoadError {
        diagnostics: vec![crate::diagnostic::Diagnostic::global("not implemented")],
        sources: Default::default(),
    })
}

/// Checks an alias name against MLflow's rules; `Err` says what is wrong.
pub fn validate_alias_name(alias: &str) -> Result<(), String> {
    let _ = alias;
    Ok(())
}
