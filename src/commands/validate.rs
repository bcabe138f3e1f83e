//! `mlreg validate`: parse and check the manifests offline (no network), report every
//! problem with file, line and column, exit 1 if there is any.

use std::collections::BTreeSet;

use crate::exit::ExitStatus;
use crate::manifest;
use crate::output::Output;
use crate::settings::ValidateSettings;

/// Validates the manifests offline: the directory, or with a project file the project file
/// and the directory of every environment (of `--env`'s only).
pub fn run(output: &Output, args: &ValidateSettings) -> anyhow::Result<ExitStatus> {
    if let Some(project) = &args.project {
        output.line(format_args!(
            "project file {} valid: {} ({})",
            project.path.display(),
            if project.environments.len() == 1 {
                "1 environment".to_owned()
            } else {
                format!("{} environments", project.environments.len())
            },
            project.names().join(", ")
        ))?;
    }
    if args.environments.is_empty() {
        return check_dir(output, &args.dir, None);
    }
    let mut status = ExitStatus::Success;
    for (name, dir) in &args.environments {
        if check_dir(output, dir, Some(name))? == ExitStatus::Failure {
            status = ExitStatus::Failure;
        }
    }
    Ok(status)
}

/// Checks one directory; `environment` names it in the summary line.
fn check_dir(
    output: &Output,
    dir: &std::path::Path,
    environment: Option<&str>,
) -> anyhow::Result<ExitStatus> {
    match manifest::load_dir(dir) {
        Ok(desired) => {
            let files: BTreeSet<_> = desired.models.values().map(|model| model.file()).collect();
            let names: Vec<&str> = desired.models.keys().map(String::as_str).collect();
            let summary = summary(&names, files.len());
            match environment {
                Some(name) => output.line(format_args!("environment {name}: {summary}"))?,
                None => output.line(summary)?,
            }
            Ok(ExitStatus::Success)
        }
        Err(error) => {
            if let Some(name) = environment {
                output.message(format_args!("In environment `{name}`:"));
            }
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
