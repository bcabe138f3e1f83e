//! Verifying an edit by reading it back: the edited text is parsed with the manifest
//! loader itself, and each model's spec is compared with what it was before the edit. Only
//! the edited model's stages may differ, and only to exactly the intended versions.
//!
//! The comparison is `==` on [`ModelSpec`], so every field a manifest can hold is checked
//! without this module naming any of them: a field added to the spec is verified too.

use std::collections::BTreeMap;
use std::path::Path;

use super::{EditError, Result, StageVersions};
use crate::manifest::{DesiredModel, ModelSpec, Stages, parse_text};

/// Re-reads `edited` and checks that, compared with `originals` (every model of the file,
/// as loaded before the edit), `model` now declares exactly `expected` and every other
/// model is unchanged.
pub(super) fn verify_spec(
    file: &Path,
    edited: &str,
    originals: &[&DesiredModel],
    model: &str,
    expected_spec: &ModelSpec,
) -> Result<()> {
    let failed = |detail: String| EditError::Verification {
        file: file.to_path_buf(),
        detail,
    };
    let reread = parse_text(file, edited).map_err(|error| {
        failed(error.diagnostics.first().map_or_else(
            || "the edited file does not load".to_owned(),
            |diagnostic| format!("the edited file does not load: {}", diagnostic.message),
        ))
    })?;
    let after: BTreeMap<&str, &ModelSpec> = reread
        .iter()
        .map(|model| (model.name.as_str(), &model.spec))
        .collect();
    let mut expected: BTreeMap<&str, ModelSpec> = originals
        .iter()
        .map(|original| (original.name.as_str(), original.spec.clone()))
        .collect();
    if !after.keys().eq(expected.keys()) {
        return Err(failed(
            "the file no longer declares the same models".to_owned(),
        ));
    }
    if let Some(spec) = expected.get_mut(model) {
        spec.clone_from(expected_spec);
    }
    for (name, expected) in &expected {
        if after.get(name) != Some(&expected) {
            let what = if *name == model {
                format!("model `{name}` would not declare exactly the intended change")
            } else {
                format!("model `{name}` would change too")
            };
            return Err(failed(what));
        }
    }
    Ok(())
}

/// The spec's stages for versions written per stage.
pub(super) fn stages_of(versions: &StageVersions) -> Stages {
    let mut stages = Stages::default();
    for (stage, numbers) in versions {
        if let Some(set) = stages.get_mut(*stage) {
            set.extend(numbers.iter().copied());
        }
    }
    stages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::Stage;

    #[test]
    fn verification_refuses_any_other_difference() {
        let text = "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: m\nspec:\n  description: one\n  stages:\n    Staging: 4\n";
        let file = Path::new("m.yaml");
        let originals = parse_text(file, text).expect("valid manifest");
        let originals: Vec<&DesiredModel> = originals.iter().collect();
        let stages: StageVersions = [(Stage::Production, vec![4]), (Stage::Staging, vec![])]
            .into_iter()
            .collect();
        let mut intended = originals[0].spec.clone();
        intended.stages = Some(stages_of(&stages));
        let good = text.replace("Staging: 4", "Staging: []\n    Production: 4");
        assert!(verify_spec(file, &good, &originals, "m", &intended).is_ok());
        let other_field = good.replace("description: one", "description: two");
        assert!(matches!(
            verify_spec(file, &other_field, &originals, "m", &intended),
            Err(EditError::Verification { .. })
        ));
        let wrong_stage = text.replace("Staging: 4", "Staging: 4\n    Production: 4");
        assert!(verify_spec(file, &wrong_stage, &originals, "m", &intended).is_err());
        assert!(verify_spec(file, "not: [valid", &originals, "m", &intended).is_err());
        // A field the editor never touches is verified too (`==` on the whole spec).
        let retention = good.replace(
            "description: one",
            "description: one\n  retention: {keepLatest: 1}",
        );
        assert!(verify_spec(file, &retention, &originals, "m", &intended).is_err());
    }
}
