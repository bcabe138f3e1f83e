//! `mlreg validate`: parse and check the manifests offline (no network), report every
//! problem with file, line and column, exit 1 if there is any.

use std::collections::BTreeSet;

use crate::exit::ExitStatus;
use crate::manifest;
use crate::output::Output;
use crate::settings::DirSettings;

/// Validates the manifests offline.
pub fn run(output: &Output, args: &DirSettings) -> anyhow::Result<ExitStatus> {
    match manifest::load_dir(&args.dir) {
        Ok(desired) => {
            let files: BTreeSet<_> = desired.models.values().map(|model| model.file()).collect();
            let names: Vec<&str> = desired.models.keys().map(String::as_str).collect();
            output.line(summary(&names, files.len()))?;
            Ok(ExitStatus::Success)
        }
        Err(error) => {
            crate::diagnostic::render(
                &mut output.stderr(),
                &error.diagnostics,
                &error.sources,
                output.color_stderr(),
            )?;
            Ok(ExitStatus::Failure)
        }
    }
}

/// `2 manifests valid (2 files): a, b`.
fn summary(names: &[&str], files: usize) -> String {
    let plural = |count: usize, word: &str| {
        if count == 1 {
            format!("{count} {word}")
        } else {
            format!("{count} {word}s")
        }
    };
    format!(
        "{} valid ({}): {}",
        plural(names.len(), "manifest"),
        plural(files, "file"),
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn summary_counts_models_and_files() {
        assert_eq!(summary(&["a"], 1), "1 manifest valid (1 file): a");
        assert_eq!(summary(&["a", "b"], 1), "2 manifests valid (1 file): a, b");
    }
}
