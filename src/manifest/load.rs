//! Reading a desired-state directory into a validated [`DesiredState`].
//!
//! The walk is deterministic (paths sorted), skips hidden entries (`.git`, editor files),
//! follows symbolic links but reads each real directory once (no loop), and never stops at
//! the first problem: a bad file or document is reported and the next one is read, so a
//! single run lists everything to fix. An empty result is an error, never "manage nothing".

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::IgnoredAny;
use serde_saphyr::{DuplicateKeyPolicy, Error as YamlError, MessageFormatter as _};

use super::check::{self, Seen};
use super::raw::RawManifest;
use super::{DesiredModel, DesiredState, LoadError};
use crate::diagnostic::{Diagnostic, Origin, SourceMap};

pub use super::check::validate_alias_name;

/// Manifests larger than this are refused: a desired state is a few kilobytes per model, and
/// a huge file is more likely a misplaced dataset than a manifest.
pub const MAX_MANIFEST_BYTES: u64 = 8 * 1024 * 1024;

/// Directories nested deeper than this under the desired-state directory are not read.
const MAX_DIRECTORY_DEPTH: usize = 32;

/// Whether `path` names a manifest file: `*.yaml` or `*.yml`, not hidden.
///
/// The file watcher uses the same rule to decide which changes matter.
pub fn is_manifest_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return false;
    };
    !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

/// Loads and validates every manifest under `dir`.
///
/// Reads every `*.yaml`/`*.yml` file under `dir` (recursively, in path order, hidden
/// entries skipped), every YAML document of each file, and checks them strictly. Returns
/// every problem found, each pointing at a file, line and column, rather than the first.
pub fn load_dir(dir: &Path) -> Result<DesiredState, LoadError> {
    let mut loader = Loader::default();
    match fs::metadata(dir) {
        Err(error) => loader.unreadable_directory(dir, &error, true),
        Ok(metadata) if !metadata.is_dir() => loader.diagnostics.push(
            Diagnostic::at(
                Origin::file(dir),
                format!("`{}` is not a directory", dir.display()),
            )
            .with_help(
                "pass the directory that holds the manifests (with --dir or MLREG_DIR), not a file",
            ),
        ),
        Ok(_) => {
            let mut files = Vec::new();
            let mut visited = BTreeSet::new();
            loader.walk(dir, 0, &mut visited, &mut files);
            files.sort();
            for file in &files {
                loader.load_file(file);
            }
            if loader.diagnostics.is_empty() && loader.models.is_empty() {
                loader.nothing_declared(dir, files.len());
            }
        }
    }
    if loader.diagnostics.is_empty() {
        Ok(DesiredState {
            root: dir.to_path_buf(),
            models: loader
                .models
                .into_iter()
                .map(|model| (model.name.clone(), model))
                .collect(),
            sources: loader.sources,
        })
    } else {
        Err(LoadError {
            diagnostics: loader.diagnostics,
            sources: loader.sources,
        })
    }
}

/// Parses and checks the text of one manifest file, as [`load_dir`] would read it from
/// `path` (which names the file in diagnostics; nothing is read from disk). Returns the
/// models it declares in file order, or every problem found.
///
/// Edits are verified with it (does the edited text declare exactly the intended change?)
/// and `mlreg export` checks what it writes with it, without a temporary directory.
pub fn parse_text(path: &Path, text: &str) -> Result<Vec<DesiredModel>, LoadError> {
    let mut loader = Loader::default();
    loader
        .sources
        .insert(path.to_path_buf(), Arc::from(text.to_owned()));
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        loader.diagnostics.push(too_large(path));
    } else {
        loader.parse_file(path, text);
    }
    if loader.diagnostics.is_empty() {
        Ok(loader.models)
    } else {
        Err(LoadError {
            diagnostics: loader.diagnostics,
            sources: loader.sources,
        })
    }
}

/// `path` is over [`MAX_MANIFEST_BYTES`].
fn too_large(path: &Path) -> Diagnostic {
    Diagnostic::at(
        Origin::file(path),
        format!(
            "`{}` is larger than {} MiB",
            path.display(),
            MAX_MANIFEST_BYTES / (1024 * 1024)
        ),
    )
    .with_help(
        "a manifest is a few lines per model; move large files out of the desired-state directory",
    )
}

/// The state of one load.
#[derive(Default)]
struct Loader {
    models: Vec<DesiredModel>,
    seen: Seen,
    diagnostics: Vec<Diagnostic>,
    sources: SourceMap,
}

impl Loader {
    /// A directory that cannot be listed; `root` when it is the desired-state directory.
    fn unreadable_directory(&mut self, dir: &Path, error: &io::Error, root: bool) {
        let what = if root {
            "the desired-state directory"
        } else {
            "directory"
        };
        let help = if root && error.kind() == io::ErrorKind::NotFound {
            let cwd = std::env::current_dir()
                .map(|cwd| format!(" (relative paths start at {})", cwd.display()))
                .unwrap_or_default();
            format!(
                "check the path{cwd}: pass the desired-state directory with --dir or MLREG_DIR (default: desired-state)"
            )
        } else {
            "check that the directory exists and that mlreg may read it; nothing is applied while any manifest cannot be read".to_owned()
        };
        self.diagnostics.push(
            Diagnostic::at(
                Origin::file(dir),
                format!("cannot read {what} `{}`: {error}", dir.display()),
            )
            .with_help(help),
        );
    }

    /// Collects the manifest files under `dir`. `visited` holds the canonical path of every
    /// directory read, so a symbolic link back up the tree is not followed twice.
    fn walk(
        &mut self,
        dir: &Path,
        depth: usize,
        visited: &mut BTreeSet<PathBuf>,
        files: &mut Vec<PathBuf>,
    ) {
        match fs::canonicalize(dir) {
            Ok(canonical) => {
                if !visited.insert(canonical) {
                    return;
                }
            }
            Err(error) => {
                self.unreadable_directory(dir, &error, depth == 0);
                return;
            }
        }
        if depth > MAX_DIRECTORY_DEPTH {
            self.diagnostics.push(
                Diagnostic::at(
                    Origin::file(dir),
                    format!("directory nested more than {MAX_DIRECTORY_DEPTH} levels deep"),
                )
                .with_help("keep the desired-state tree shallow; this directory was not read"),
            );
            return;
        }
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(error) => {
                self.unreadable_directory(dir, &error, depth == 0);
                return;
            }
        };
        let mut children = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => children.push(entry.file_name()),
                Err(error) => {
                    self.unreadable_directory(dir, &error, depth == 0);
                    return;
                }
            }
        }
        children.sort();
        for name in children {
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let path = dir.join(&name);
            // `fs::metadata` follows symbolic links: a link to a directory is walked (once),
            // a link to a file is read.
            match fs::metadata(&path) {
                Ok(metadata) if metadata.is_dir() => self.walk(&path, depth + 1, visited, files),
                Ok(metadata) if metadata.is_file() && is_manifest_file(&path) => files.push(path),
                Ok(_) => {}
                Err(error) if is_manifest_file(&path) => self.diagnostics.push(
                    Diagnostic::at(
                        Origin::file(&path),
                        format!("cannot read `{}`: {error}", path.display()),
                    )
                    .with_help("fix or remove the file (a symbolic link whose target is gone?)"),
                ),
                Err(_) => {}
            }
        }
    }

    fn load_file(&mut self, path: &Path) {
        if let Some(text) = self.read_text(path) {
            // The project file (`kind: Project`) may sit in a desired-state directory.
            if crate::project::is_project_text(&text) {
                return;
            }
            self.parse_file(path, &text);
        }
    }

    /// Parses and checks every document of `text`, the contents of `path`.
    fn parse_file(&mut self, path: &Path, text: &str) {
        let mut file_diagnostics = Vec::new();
        let mut reader = io::Cursor::new(text.as_bytes());
        let documents = serde_saphyr::read_with_options::<_, RawManifest>(
            &mut reader,
            yaml_options(DuplicateKeyPolicy::Error),
        );
        for document in documents {
            match document {
                Ok(raw) => {
                    if let Some(model) =
                        check::check_document(raw, path, &mut self.seen, &mut file_diagnostics)
                    {
                        self.models.push(model);
                    }
                }
                Err(error) => file_diagnostics.push(yaml_diagnostic(path, &error)),
            }
        }
        // After a document of the wrong shape, the reader skips to the next document and
        // stops quietly if the rest of the file is not valid YAML. Parse the whole file once
        // more, shape aside, so that a syntax error is always reported.
        let syntax = serde_saphyr::from_multiple_with_options::<IgnoredAny>(
            text,
            yaml_options(DuplicateKeyPolicy::FirstWins),
        );
        if let Err(error) = syntax {
            let diagnostic = yaml_diagnostic(path, &error);
            if !file_diagnostics.contains(&diagnostic) {
                file_diagnostics.push(diagnostic);
            }
        }
        // Documents are checked in order, but a document's own problems are found field by
        // field; report them in the order they appear in the file.
        file_diagnostics.sort_by_key(|diagnostic| {
            diagnostic
                .origin
                .as_ref()
                .map(|origin| (origin.line, origin.column))
        });
        self.diagnostics.append(&mut file_diagnostics);
    }

    /// Reads `path` as UTF-8 and remembers its text for quoting; `None` after a diagnostic.
    fn read_text(&mut self, path: &Path) -> Option<Arc<str>> {
        let cannot_read = |error: &dyn std::fmt::Display| {
            Diagnostic::at(
                Origin::file(path),
                format!("cannot read `{}`: {error}", path.display()),
            )
            .with_help("check that mlreg may read the file")
        };
        let file = match fs::File::open(path) {
            Ok(file) => file,
            Err(error) => {
                self.diagnostics.push(cannot_read(&error));
                return None;
            }
        };
        // Read one byte more than allowed, to tell "at the limit" from "over it" without
        // trusting the size the filesystem reports (a FIFO or /proc file reports 0).
        let mut bytes = Vec::new();
        if let Err(error) = io::Read::read_to_end(
            &mut io::Read::take(file, MAX_MANIFEST_BYTES + 1),
            &mut bytes,
        ) {
            self.diagnostics.push(cannot_read(&error));
            return None;
        }
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            self.diagnostics.push(too_large(path));
            return None;
        }
        match String::from_utf8(bytes) {
            Ok(text) => {
                let text: Arc<str> = Arc::from(text);
                self.sources.insert(path.to_path_buf(), Arc::clone(&text));
                Some(text)
            }
            Err(error) => {
                let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
                let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
                let line_start = valid
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |newline| newline + 1);
                let column = String::from_utf8_lossy(&valid[line_start..])
                    .chars()
                    .count()
                    + 1;
                let lossy: Arc<str> = Arc::from(String::from_utf8_lossy(error.as_bytes()));
                self.sources.insert(path.to_path_buf(), lossy);
                self.diagnostics.push(
                    Diagnostic::at(
                        Origin::new(
                            path,
                            u32::try_from(line).unwrap_or(u32::MAX),
                            u32::try_from(column).unwrap_or(u32::MAX),
                        ),
                        format!("`{}` is not valid UTF-8", path.display()),
                    )
                    .with_help("save the manifest as UTF-8 (without a byte-order mark is best)"),
                );
                None
            }
        }
    }

    fn nothing_declared(&mut self, dir: &Path, files: usize) {
        let message = if files == 0 {
            format!("no manifest found in `{}`", dir.display())
        } else {
            format!(
                "no manifest found in `{}`: its {files} YAML file(s) hold no document",
                dir.display()
            )
        };
        self.diagnostics.push(
            Diagnostic::at(Origin::file(dir), message).with_help(
                "an empty desired state is refused rather than read as \"manage nothing\" (a wrong --dir or an unfinished checkout would otherwise look like a valid, empty state); add a *.yaml manifest with `apiVersion: mlreg/v1` and `kind: RegisteredModel`, or point --dir at the right directory",
            ),
        );
    }
}

/// How manifests are parsed: duplicate keys as `duplicate_keys` says, YAML 1.2 booleans
/// (`yes`/`no`/`on`/`off` are strings, as JSON Schema tools read them), input capped.
pub(crate) fn yaml_options(duplicate_keys: DuplicateKeyPolicy) -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: usize::try_from(MAX_MANIFEST_BYTES + 1).ok(),
        },
        duplicate_keys: duplicate_keys,
        strict_booleans: true,
    }
}

/// A YAML syntax error or a document of the wrong shape, with the location serde-saphyr
/// reports and advice that depends on the kind of problem.
pub(crate) fn yaml_diagnostic(path: &Path, error: &YamlError) -> Diagnostic {
    let inner = innermost(error);
    let origin = error
        .location()
        .filter(|location| location.line() > 0)
        .map_or_else(
            || Origin::file(path),
            |location| check::location_origin(path, location),
        );
    let text = sanitize(&serde_saphyr::UserMessageFormatter.format_message(inner));
    let (message, help) = match inner {
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => (
            format!("unknown field `{}`", sanitize(field)),
            if expected.is_empty() {
                "remove it: this mapping takes no fields".to_owned()
            } else {
                format!(
                    "the fields allowed here are {}; names are camelCase (keepLatest, runId, localFallback)",
                    expected
                        .iter()
                        .map(|name| format!("`{name}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
        ),
        YamlError::SerdeMissingField { field, .. } => (
            format!("missing field `{field}`"),
            "a manifest needs `apiVersion: mlreg/v1`, `kind: RegisteredModel` and `metadata.name`; see `mlreg schema`".to_owned(),
        ),
        YamlError::DuplicateMappingKey { key, .. } => (
            match key {
                Some(key) => format!("duplicate key `{}`", sanitize(key)),
                None => "duplicate key".to_owned(),
            },
            "a key may appear once per mapping; mlreg refuses to guess which value you meant, so remove one".to_owned(),
        ),
        YamlError::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | YamlError::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => (
            format!(
                "expected {}, found {}",
                sanitize(expected),
                sanitize(unexpected)
            ),
            "see the manifest format in `mlreg schema` (or docs/mlreg.schema.json)".to_owned(),
        ),
        YamlError::Unexpected { expected, .. } => (
            format!(
                "expected {} here",
                match *expected {
                    "mapping start" => "a mapping (`key: value` lines)",
                    "sequence start" => "a list",
                    other => other,
                }
            ),
            "a manifest is a mapping with apiVersion, kind, metadata and spec; metadata and spec are mappings too (see `mlreg schema`)".to_owned(),
        ),
        YamlError::Budget { .. } => (
            format!("the document is too large or too deeply nested: {text}"),
            "a manifest is a small mapping; split or simplify the file".to_owned(),
        ),
        _ if text.contains("recursion limit") => (
            format!("the document is too deeply nested: {text}"),
            "a manifest is a small mapping; check for runaway brackets".to_owned(),
        ),
        _ => (
            format!("invalid YAML: {text}"),
            "fix the YAML syntax (indent with spaces, not tabs; check quotes and brackets)".to_owned(),
        ),
    };
    Diagnostic::at(origin, message).with_help(help)
}

/// The error an alias or snippet wrapper carries.
fn innermost(error: &YamlError) -> &YamlError {
    let mut error = error;
    while let YamlError::AliasError { error: inner, .. }
    | YamlError::WithSnippet { error: inner, .. } = error
    {
        error = inner;
    }
    error
}

/// Neutralizes control characters (from file contents) before they reach a terminal.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
