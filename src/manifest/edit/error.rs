//! Why an edit is refused. Nothing is written when one of these is returned.

use std::io;
use std::path::PathBuf;

use crate::stage::Stage;

/// Why an edit was refused. Nothing is written when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// No manifest names the model.
    #[error(
        "no manifest under `{}` declares model `{model}` (add a manifest for it first, or pass the right --dir)",
        dir.display()
    )]
    NotManaged {
        /// The model.
        model: String,
        /// The desired-state directory.
        dir: PathBuf,
    },
    /// The stage cannot be written in a manifest.
    #[error(
        "stage {stage} cannot be declared in a manifest: only Staging and Production can ({hint})"
    )]
    NotDeclarable {
        /// The stage asked for.
        stage: Stage,
        /// What to do instead.
        hint: &'static str,
    },
    /// `--from` and `--to` are the same stage.
    #[error("--from and --to are both {stage}: nothing would move")]
    SameStage {
        /// The stage.
        stage: Stage,
    },
    /// The model's manifest has no `stages`, and adding one would change its meaning.
    #[error(
        "the manifest of `{model}` ({}) declares no `stages`: mlreg leaves its stages alone. \
         Adding `stages` would make it exhaustive (every Staging/Production version it does not \
         list would be archived), so declare `spec.stages` by hand first (`mlreg export` shows \
         the registry's current stages)",
        file.display()
    )]
    NoStages {
        /// The model.
        model: String,
        /// Its manifest.
        file: PathBuf,
    },
    /// `promote` from a stage that holds no version.
    #[error(
        "model `{model}` declares no version in {stage} ({}): there is nothing to promote",
        file.display()
    )]
    EmptySource {
        /// The model.
        model: String,
        /// The source stage.
        stage: Stage,
        /// Its manifest.
        file: PathBuf,
    },
    /// An alias name MLflow would refuse.
    #[error("invalid alias name `{alias}`: {problem}")]
    InvalidAlias {
        /// The name.
        alias: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The file uses a construct the editor does not rewrite safely.
    #[error("cannot edit {location} automatically: {what}; edit the file by hand")]
    Unsupported {
        /// `file:line`.
        location: String,
        /// What is in the way.
        what: String,
    },
    /// The edited text did not re-read as exactly the intended change.
    #[error(
        "refusing to write {}: the edited file does not read back as exactly the intended change ({detail}); nothing was written",
        file.display()
    )]
    Verification {
        /// The manifest.
        file: PathBuf,
        /// What differed.
        detail: String,
    },
    /// The file changed on disk while the edit was being prepared.
    #[error(
        "{} changed on disk while it was being edited; nothing was written (run the command again)",
        file.display()
    )]
    ChangedOnDisk {
        /// The manifest.
        file: PathBuf,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}
