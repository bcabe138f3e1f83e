//! In-place edits of a model's `stages` (`mlreg promote`, `mlreg set-stage`) that keep
//! everything else of the file byte for byte: comments, blank lines, key order, quoting,
//! indentation, line endings and the other documents of a multi-document file.
//!
//! How an edit is made:
//! 1. The file is parsed losslessly with `yaml-edit` only to *locate* things: the document
//!    that declares the model (the one holding its `metadata.name`), its `spec.stages`
//!    mapping, each stage's key and value, and each item of a block list.
//! 2. The change is computed on plain data (which versions end up in which stage) and
//!    turned into a few text splices at those byte ranges, each written in the style
//!    already there: a scalar stays a scalar while it holds one version, a flow list stays
//!    a flow list, a block list keeps the lines (and comments) of the versions it keeps,
//!    an emptied stage becomes `[]` and keeps its key, a missing stage is added next to its
//!    sibling with the same indentation, key spelling and value style. A trailing comment
//!    keeps its column when the value before it changes width.
//! 3. The edited text is re-read with the manifest loader itself ([`super::load_dir`] on a
//!    private temporary copy) and compared with the original: the model's stages must hold
//!    exactly the intended versions, and everything else of every model of the file must be
//!    unchanged. Any difference (or a construct the editor does not handle, such as a YAML
//!    anchor on a stage) refuses the edit; nothing is written.
//!
//! [`write_atomically`] then replaces the file through a temporary file in the same
//! directory and a rename, after checking that the file still holds the text that was
//! edited (so a concurrent save is never overwritten).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write as _};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use yaml_edit::{YamlFile, YamlNode};

use super::{DesiredModel, DesiredState};
use crate::stage::Stage;

/// `Result` with the edit [`EditError`].
pub type Result<T, E = EditError> = std::result::Result<T, E>;

/// Versions per declarable stage, as plain numbers.
pub type StageVersions = BTreeMap<Stage, Vec<u64>>;

/// What to change in a model's `stages`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageChange {
    /// Every version declared in `from` moves to `to`, replacing what `to` held; `from`
    /// becomes `[]` (its key is kept: an exhaustive, empty stage).
    Promote {
        /// The stage the versions leave.
        from: Stage,
        /// The stage they go to.
        to: Stage,
    },
    /// `version` goes to `stage` and leaves the other stage. The versions `stage` held are
    /// replaced, unless `keep_existing`.
    Place {
        /// The version number.
        version: u64,
        /// Staging or Production.
        stage: Stage,
        /// Add the version next to those already in `stage` instead of replacing them.
        keep_existing: bool,
    },
    /// `version` leaves `stages` (it is archived at the next reconcile).
    Remove {
        /// The version number.
        version: u64,
    },
}

/// An edit, computed and verified, not yet written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageEdit {
    /// The model whose stages change.
    pub model: String,
    /// The manifest file (as the loader named it).
    pub file: PathBuf,
    /// The file's text before the edit.
    pub before: String,
    /// The file's text after the edit.
    pub after: String,
    /// The model's stages before (both declarable stages, empty when undeclared).
    pub stages_before: StageVersions,
    /// The model's stages after.
    pub stages_after: StageVersions,
}

/// What [`edit_stages`] found to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditOutcome {
    /// The file must change; the edit is verified.
    Edited(StageEdit),
    /// Nothing to change: the manifest already says so (the reason, for people).
    Unchanged(String),
}

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

/// Computes and verifies the edit of `model`'s `stages` that `change` describes, on the
/// manifests of `desired` (as loaded; the file text comes from its source map).
pub fn edit_stages(
    desired: &DesiredState,
    model: &str,
    change: &StageChange,
) -> Result<EditOutcome> {
    check_change(change)?;
    let declared = desired
        .models
        .get(model)
        .ok_or_else(|| EditError::NotManaged {
            model: model.to_owned(),
            dir: desired.root.clone(),
        })?;
    let file = declared.origin.file.clone();
    let Some(text) = desired.sources.get(&file) else {
        return Err(EditError::Io {
            file,
            source: io::Error::other("the file's text was not kept by the loader"),
        });
    };
    if declared.stages.is_none() {
        return Err(EditError::NoStages {
            model: model.to_owned(),
            file,
        });
    }
    let before = declared_versions(declared);
    let after = match intended(&before, change) {
        Ok(after) => after,
        Err(Intent::Unchanged(why)) => return Ok(EditOutcome::Unchanged(why)),
        Err(Intent::EmptySource(stage)) => {
            return Err(EditError::EmptySource {
                model: model.to_owned(),
                stage,
                file,
            });
        }
    };

    let located = Located::find(text, &file, declared)?;
    if located.written != before {
        return Err(located.unsupported(
            located.stages_offset,
            "the stages as written could not be matched with what the loader read (YAML anchors, aliases or tags?)",
        ));
    }
    let splices = located.splices(&before, &after)?;
    let edited = apply_splices(text, splices).map_err(|detail| EditError::Verification {
        file: file.clone(),
        detail,
    })?;

    let siblings: Vec<&DesiredModel> = desired
        .models
        .values()
        .filter(|other| other.origin.file == file)
        .collect();
    verify(&file, &edited, &siblings, model, &after)?;
    Ok(EditOutcome::Edited(StageEdit {
        model: model.to_owned(),
        file,
        before: text.to_owned(),
        after: edited,
        stages_before: before,
        stages_after: after,
    }))
}

/// Writes `edit.after` over `edit.file` atomically (see [`write_file_atomically`]), only
/// if the file still holds `edit.before`. A symbolic link is followed: its target is
/// replaced, the link is kept.
pub fn write_atomically(edit: &StageEdit) -> Result<()> {
    let io_error = |source: io::Error| EditError::Io {
        file: edit.file.clone(),
        source,
    };
    let target = fs::canonicalize(&edit.file).map_err(io_error)?;
    let current = fs::read(&target).map_err(io_error)?;
    if current != edit.before.as_bytes() {
        return Err(EditError::ChangedOnDisk {
            file: edit.file.clone(),
        });
    }
    write_file_atomically(&target, &edit.after).map_err(io_error)
}

/// Writes `text` to `path` through a temporary file in the same directory and a rename, so
/// a reader (the watch daemon, an editor) sees the old file or the new one, never a part.
/// An existing file's permissions are kept; a new file is readable by everyone.
pub fn write_file_atomically(path: &Path, text: &str) -> io::Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let permissions = match fs::metadata(path) {
        Ok(metadata) => Some(metadata.permissions()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(error) => return Err(error),
    };
    // A hidden name: the loader and the watch daemon ignore hidden files, so a temporary
    // file is never read as a manifest, even if the process dies before the rename.
    let mut temporary = tempfile::Builder::new()
        .prefix(".mlreg-")
        .suffix(".tmp")
        .tempfile_in(directory)?;
    temporary.write_all(text.as_bytes())?;
    temporary.as_file().sync_all()?;
    match permissions {
        Some(permissions) => fs::set_permissions(temporary.path(), permissions)?,
        None => set_new_file_permissions(temporary.path())?,
    }
    temporary.persist(path).map_err(|error| error.error)?;
    Ok(())
}

/// `rw-r--r--` for a new manifest (a temporary file starts as `rw-------`).
#[cfg(unix)]
fn set_new_file_permissions(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
}

/// Nothing to do where permissions are not Unix modes.
#[cfg(not(unix))]
fn set_new_file_permissions(_path: &Path) -> io::Result<()> {
    Ok(())
}

/// Says, for people, which versions a stage map holds: `Production: 3, Staging: [4, 5]`.
pub fn describe(stages: &StageVersions) -> String {
    Stage::DECLARABLE
        .iter()
        .map(|stage| {
            let versions = stages.get(stage).map(Vec::as_slice).unwrap_or_default();
            format!("{stage}: {}", describe_versions(versions))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `none`, `3` or `[4, 5]`.
pub fn describe_versions(versions: &[u64]) -> String {
    match versions {
        [] => "none".to_owned(),
        [one] => one.to_string(),
        many => flow_list(many, FlowStyle::default()),
    }
}

/// Refuses changes that name undeclarable stages or move a stage onto itself.
fn check_change(change: &StageChange) -> Result<()> {
    let declarable = |stage: Stage, hint: &'static str| {
        if stage.is_declarable() {
            Ok(())
        } else {
            Err(EditError::NotDeclarable { stage, hint })
        }
    };
    match *change {
        StageChange::Promote { from, to } => {
            declarable(
                from,
                "`mlreg set-stage MODEL VERSION STAGE` places a single version",
            )?;
            declarable(
                to,
                "to retire versions, use `mlreg set-stage MODEL VERSION Archived`",
            )?;
            if from == to {
                return Err(EditError::SameStage { stage: from });
            }
            Ok(())
        }
        StageChange::Place { stage, .. } => declarable(
            stage,
            "use Archived or None to take a version out of `stages`",
        ),
        StageChange::Remove { .. } => Ok(()),
    }
}

/// Both declarable stages of `model`, as numbers, in the order they are written.
fn declared_versions(model: &DesiredModel) -> StageVersions {
    Stage::DECLARABLE
        .iter()
        .map(|stage| {
            let versions = model
                .versions_in(*stage)
                .iter()
                .map(|r| r.version)
                .collect();
            (*stage, versions)
        })
        .collect()
}

/// Why no edit is computed.
enum Intent {
    /// Nothing to change, and why.
    Unchanged(String),
    /// `promote` from an empty stage.
    EmptySource(Stage),
}

/// The stages after `change`.
fn intended(
    before: &StageVersions,
    change: &StageChange,
) -> std::result::Result<StageVersions, Intent> {
    let in_stage = |stage: Stage| before.get(&stage).cloned().unwrap_or_default();
    let mut after = before.clone();
    match *change {
        StageChange::Promote { from, to } => {
            let moving = in_stage(from);
            if moving.is_empty() {
                return Err(Intent::EmptySource(from));
            }
            after.insert(to, moving);
            after.insert(from, Vec::new());
        }
        StageChange::Place {
            version,
            stage,
            keep_existing,
        } => {
            if in_stage(stage).contains(&version) {
                return Err(Intent::Unchanged(format!(
                    "version {version} is already declared in {stage}"
                )));
            }
            for (other, versions) in &mut after {
                if *other != stage {
                    versions.retain(|v| *v != version);
                }
            }
            let mut placed = if keep_existing {
                in_stage(stage)
            } else {
                Vec::new()
            };
            placed.push(version);
            after.insert(stage, placed);
        }
        StageChange::Remove { version } => {
            if !before.values().flatten().any(|v| *v == version) {
                return Err(Intent::Unchanged(format!(
                    "version {version} is not declared in any stage"
                )));
            }
            for versions in after.values_mut() {
                versions.retain(|v| *v != version);
            }
        }
    }
    Ok(after)
}

// ---------------------------------------------------------------------------------------
// Locating the stages in the text
// ---------------------------------------------------------------------------------------

/// The model's `stages` mapping as written, with byte offsets into the file text.
struct Located<'t> {
    text: &'t str,
    file: &'t Path,
    /// Where `stages` starts (for messages).
    stages_offset: usize,
    /// A flow mapping (`{Production: 3}`) rather than a block mapping.
    flow: bool,
    /// The mapping's own range (for an empty flow mapping `{}`).
    range: Range<usize>,
    entries: Vec<Entry>,
    /// The versions as written, per declarable stage.
    written: StageVersions,
    /// `\n` or `\r\n`, as the file uses.
    newline: &'static str,
}

/// One `Stage: value` entry.
struct Entry {
    stage: Stage,
    /// The key as written (with its quotes).
    key_text: String,
    key_start: usize,
    /// Just after the `:` that follows the key.
    colon_end: usize,
    value: Value,
}

/// A stage's value as written.
enum Value {
    /// Nothing (`Staging:`), or `~`/`null`: the range to replace (empty for nothing).
    Null(Range<usize>),
    /// `Production: 3`.
    Scalar(Range<usize>),
    /// `Staging: [4, 5]`.
    Flow(Range<usize>, FlowStyle),
    /// `Staging:` followed by `- 4` lines.
    Block(Vec<Item>),
}

/// One item of a block list.
struct Item {
    version: u64,
    /// The item's line, without its line break.
    line: Range<usize>,
    /// What precedes the number on its line (`"      - "`).
    prefix: String,
}

/// How a flow list is spaced: `[4, 5]`, `[ 4, 5 ]`, `[4,5]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct FlowStyle {
    padded: bool,
    tight: bool,
}

/// One replacement of a byte range.
#[derive(Debug)]
struct Splice {
    range: Range<usize>,
    text: String,
}

impl<'t> Located<'t> {
    /// Finds `model`'s `stages` in `text` (the file `file`).
    fn find(text: &'t str, file: &'t Path, model: &DesiredModel) -> Result<Self> {
        let unsupported = |offset: usize, what: &str| EditError::Unsupported {
            location: format!("{}:{}", file.display(), line_number(text, offset)),
            what: what.to_owned(),
        };
        let parsed = YamlFile::from_str(text).map_err(|error| {
            unsupported(0, &format!("the YAML editor cannot parse it ({error})"))
        })?;
        if parsed.to_string() != text {
            return Err(unsupported(
                0,
                "the YAML editor cannot reproduce the file exactly",
            ));
        }
        let name_offset = origin_offset(text, model.origin.line, model.origin.column);
        let document = parsed
            .documents()
            .find(|document| range_of(document.byte_range()).contains(&name_offset))
            .ok_or_else(|| unsupported(name_offset, "the model's YAML document was not found"))?;
        let root = document
            .as_mapping()
            .ok_or_else(|| unsupported(name_offset, "the document is not a plain mapping"))?;
        let named = root
            .get_mapping("metadata")
            .and_then(|metadata| metadata.get("name"))
            .and_then(|name| name.as_scalar().map(|scalar| scalar.as_string()));
        if named.as_deref() != Some(model.name.as_str()) {
            return Err(unsupported(
                name_offset,
                "the model's `metadata.name` could not be found where the loader read it",
            ));
        }
        let spec = root
            .get_mapping("spec")
            .ok_or_else(|| unsupported(name_offset, "`spec` is not a plain mapping"))?;
        let stages_node = spec
            .get("stages")
            .ok_or_else(|| unsupported(name_offset, "`spec.stages` was not found"))?;
        let stages_offset = range_of(stages_node.byte_range()).start;
        let stages = stages_node.as_mapping().ok_or_else(|| {
            unsupported(
                stages_offset,
                "`spec.stages` is not a plain mapping (an anchor, alias or tag?)",
            )
        })?;

        let mut located = Located {
            text,
            file,
            stages_offset,
            flow: stages.is_flow_style(),
            range: range_of(stages.byte_range()),
            entries: Vec::new(),
            written: Stage::DECLARABLE
                .iter()
                .map(|stage| (*stage, Vec::new()))
                .collect(),
            newline: if text.contains("\r\n") { "\r\n" } else { "\n" },
        };
        for entry in stages.entries() {
            let key = entry
                .key_node()
                .ok_or_else(|| unsupported(stages_offset, "a stage has no key"))?;
            let parsed = located.entry(&key, entry.value_node())?;
            located
                .written
                .insert(parsed.stage, parsed.value_versions(text));
            located.entries.push(parsed);
        }
        Ok(located)
    }

    fn unsupported(&self, offset: usize, what: &str) -> EditError {
        EditError::Unsupported {
            location: format!("{}:{}", self.file.display(), line_number(self.text, offset)),
            what: what.to_owned(),
        }
    }

    /// The text of `range`, which `yaml-edit` reported.
    fn slice(&self, range: Range<usize>) -> Result<&'t str> {
        let start = range.start;
        self.text.get(range).ok_or_else(|| {
            self.unsupported(
                start,
                "the YAML editor reported a position outside the file",
            )
        })
    }

    /// Reads one entry of the stages mapping.
    fn entry(&self, key: &YamlNode, value: Option<YamlNode>) -> Result<Entry> {
        let text = self.text;
        let key_range = range_of(key.byte_range());
        let key_text = self.slice(key_range.clone())?.to_owned();
        let key_scalar = key
            .as_scalar()
            .ok_or_else(|| self.unsupported(key_range.start, "a stage key is not a plain word"))?;
        let stage = key_scalar
            .as_string()
            .parse::<Stage>()
            .ok()
            .filter(|stage| stage.is_declarable())
            .ok_or_else(|| self.unsupported(key_range.start, "a key of `stages` is not a stage"))?;
        let after_key = &text[key_range.end..];
        let colon = after_key
            .find(|c: char| c != ' ' && c != '\t')
            .filter(|at| after_key[*at..].starts_with(':'))
            .ok_or_else(|| {
                self.unsupported(key_range.start, "a stage key is not followed by `:`")
            })?;
        let colon_end = key_range.end + colon + 1;

        let value = match value {
            None => Value::Null(colon_end..colon_end),
            Some(node) => self.value(&node, colon_end)?,
        };
        Ok(Entry {
            stage,
            key_text,
            key_start: key_range.start,
            colon_end,
            value,
        })
    }

    /// Reads a stage's value.
    fn value(&self, node: &YamlNode, colon_end: usize) -> Result<Value> {
        let text = self.text;
        let range = range_of(node.byte_range());
        let raw = self.slice(range.clone())?;
        if node.as_scalar().is_some() && raw.trim().is_empty() {
            return Ok(Value::Null(colon_end..colon_end));
        }
        if range.start < colon_end || !only_trivia(&text[colon_end..range.start]) {
            return Err(self.unsupported(colon_end, "a stage's value carries a YAML anchor or tag"));
        }
        if let Some(sequence) = node.as_sequence() {
            if sequence.is_flow_style() {
                let style = flow_style(raw).ok_or_else(|| {
                    self.unsupported(
                        range.start,
                        "a stage's list holds more than version numbers (comments or anchors?)",
                    )
                })?;
                return Ok(Value::Flow(range, style));
            }
            let mut items = Vec::new();
            for item in sequence.values() {
                let item_range = range_of(item.byte_range());
                let number = item
                    .as_scalar()
                    .and_then(|_| parse_version(self.slice(item_range.clone()).ok()?))
                    .ok_or_else(|| {
                        self.unsupported(
                            item_range.start,
                            "an item of a stage's list is not a plain version number",
                        )
                    })?;
                let line_start = line_start(text, item_range.start);
                let prefix = &text[line_start..item_range.start];
                if !is_dash_prefix(prefix) {
                    return Err(self.unsupported(
                        item_range.start,
                        "an item of a stage's list does not sit on its own `- ` line",
                    ));
                }
                items.push(Item {
                    version: number,
                    line: line_start..line_content_end(text, item_range.end),
                    prefix: prefix.to_owned(),
                });
            }
            if items.is_empty() {
                return Err(self.unsupported(range.start, "a stage holds an empty block list"));
            }
            return Ok(Value::Block(items));
        }
        if node.as_scalar().is_some() {
            let trimmed = raw.trim();
            if matches!(trimmed, "~" | "null" | "Null" | "NULL") {
                return Ok(Value::Null(range));
            }
            if trimmed.len() == raw.len() && parse_version(raw).is_some() {
                return Ok(Value::Scalar(range));
            }
        }
        Err(self.unsupported(
            range.start,
            "a stage's value is not a version number or a list of them written plainly",
        ))
    }

    /// The splices that turn `before` into `after`.
    fn splices(&self, before: &StageVersions, after: &StageVersions) -> Result<Vec<Splice>> {
        let mut value_splices = Vec::new();
        let mut new_entries = Vec::new();
        for stage in Stage::DECLARABLE {
            let old = before.get(&stage).map(Vec::as_slice).unwrap_or_default();
            let new = after.get(&stage).map(Vec::as_slice).unwrap_or_default();
            if old == new {
                continue;
            }
            match self.entries.iter().find(|entry| entry.stage == stage) {
                Some(entry) => value_splices.extend(self.rewrite_value(entry, new)),
                None if new.is_empty() => {}
                None => new_entries.push(self.new_entry(stage, new)?),
            }
        }
        // Value edits first: an item appended to the last list and a new entry after it
        // are inserted at the same offset, and the item belongs before the entry.
        value_splices.extend(new_entries);
        Ok(value_splices)
    }

    /// Rewrites an existing entry's value to hold `new`.
    fn rewrite_value(&self, entry: &Entry, new: &[u64]) -> Vec<Splice> {
        let text = self.text;
        match &entry.value {
            Value::Null(range) => {
                if new.is_empty() {
                    return Vec::new();
                }
                let value = scalar_or_list(new, FlowStyle::default());
                let value = if range.is_empty() {
                    format!(" {value}")
                } else {
                    value
                };
                vec![replace_keeping_comment(text, range.clone(), value)]
            }
            Value::Scalar(range) => vec![replace_keeping_comment(
                text,
                range.clone(),
                scalar_or_list(new, FlowStyle::default()),
            )],
            // An empty `[]` says nothing about style: it takes one version as a scalar.
            Value::Flow(range, _) if entry.value_versions(text).is_empty() => {
                vec![replace_keeping_comment(
                    text,
                    range.clone(),
                    scalar_or_list(new, FlowStyle::default()),
                )]
            }
            Value::Flow(range, style) => vec![replace_keeping_comment(
                text,
                range.clone(),
                flow_list(new, *style),
            )],
            Value::Block(items) => {
                let Some(last) = items.last() else {
                    return Vec::new();
                };
                let mut splices = Vec::new();
                if new.is_empty() {
                    // `Stage: []` on the key line; the items' lines go (comment and blank
                    // lines among them stay).
                    splices.push(replace_keeping_comment(
                        text,
                        entry.colon_end..entry.colon_end,
                        " []".to_owned(),
                    ));
                }
                for item in items {
                    if !new.contains(&item.version) {
                        // The line break before the item's line, and the line itself.
                        splices.push(Splice {
                            range: line_break_before(text, item.line.start)..item.line.end,
                            text: String::new(),
                        });
                    }
                }
                let kept: BTreeSet<u64> = items.iter().map(|item| item.version).collect();
                let added: String = new
                    .iter()
                    .filter(|version| !kept.contains(version))
                    .map(|version| format!("{}{}{version}", self.newline, last.prefix))
                    .collect();
                if !added.is_empty() {
                    splices.push(Splice {
                        range: last.line.end..last.line.end,
                        text: added,
                    });
                }
                splices
            }
        }
    }

    /// Adds `stage: new` to the mapping, next to the stage already there, in its style.
    fn new_entry(&self, stage: Stage, new: &[u64]) -> Result<Splice> {
        let text = self.text;
        let sibling = self.entries.last();
        let key = key_like(sibling.map(|entry| entry.key_text.as_str()), stage);
        if self.flow {
            let value = match sibling.map(|entry| &entry.value) {
                Some(Value::Flow(_, style)) => flow_list(new, *style),
                _ => scalar_or_list(new, FlowStyle::default()),
            };
            return match sibling {
                Some(entry) => {
                    let end = match &entry.value {
                        Value::Null(range) if range.is_empty() => entry.colon_end,
                        Value::Null(range) | Value::Scalar(range) | Value::Flow(range, _) => {
                            range.end
                        }
                        Value::Block(_) => {
                            return Err(self.unsupported(
                                entry.key_start,
                                "a block list inside a flow mapping",
                            ));
                        }
                    };
                    Ok(Splice {
                        range: end..end,
                        text: format!(", {key}: {value}"),
                    })
                }
                None => {
                    let inside = self.range.start + 1..self.range.end.saturating_sub(1);
                    let opening = text.get(self.range.start..inside.start);
                    let closing = text.get(inside.end..self.range.end);
                    if opening != Some("{")
                        || closing != Some("}")
                        || !text[inside.clone()].trim().is_empty()
                    {
                        return Err(self.unsupported(
                            self.range.start,
                            "`stages` is neither `{}` nor a list of stages",
                        ));
                    }
                    Ok(Splice {
                        range: inside,
                        text: format!("{key}: {value}"),
                    })
                }
            };
        }
        let Some(entry) = sibling else {
            return Err(self.unsupported(
                self.stages_offset,
                "`stages` holds no stage to write the new one next to",
            ));
        };
        let key_line_start = line_start(text, entry.key_start);
        let indent = &text[key_line_start..entry.key_start];
        let indent = if indent.chars().all(|c| c == ' ') {
            indent.to_owned()
        } else {
            " ".repeat(indent.chars().count())
        };
        let (end, value) = match &entry.value {
            Value::Block(items) => {
                let Some(last) = items.last() else {
                    return Err(self.unsupported(entry.key_start, "an empty block list"));
                };
                let prefix = &items[0].prefix;
                let value: String = new
                    .iter()
                    .map(|version| format!("{}{prefix}{version}", self.newline))
                    .collect();
                (last.line.end, value)
            }
            Value::Flow(range, style) => (
                line_content_end(text, range.end),
                format!(" {}", flow_list(new, *style)),
            ),
            Value::Scalar(range) | Value::Null(range) => (
                line_content_end(text, range.end.max(entry.colon_end)),
                format!(" {}", scalar_or_list(new, FlowStyle::default())),
            ),
        };
        Ok(Splice {
            range: end..end,
            text: format!("{}{indent}{key}:{value}", self.newline),
        })
    }
}

impl Entry {
    /// The version numbers of the value as written.
    fn value_versions(&self, text: &str) -> Vec<u64> {
        match &self.value {
            Value::Null(_) => Vec::new(),
            Value::Scalar(range) => parse_version(&text[range.clone()]).into_iter().collect(),
            Value::Flow(range, _) => {
                let raw = &text[range.clone()];
                raw.trim_start_matches('[')
                    .trim_end_matches(']')
                    .split(',')
                    .filter_map(|part| parse_version(part.trim()))
                    .collect()
            }
            Value::Block(items) => items.iter().map(|item| item.version).collect(),
        }
    }
}

/// A key for `stage` written like `sibling` (quotes, lower/upper case), else canonical.
fn key_like(sibling: Option<&str>, stage: Stage) -> String {
    let canonical = stage.as_str();
    let Some(sibling) = sibling else {
        return canonical.to_owned();
    };
    let quote = sibling.chars().next().filter(|c| *c == '"' || *c == '\'');
    let bare = match quote {
        Some(q) => sibling.trim_matches(q),
        None => sibling,
    };
    let letters: Vec<char> = bare.chars().filter(|c| c.is_alphabetic()).collect();
    let word = if !letters.is_empty() && letters.iter().all(|c| c.is_lowercase()) {
        canonical.to_lowercase()
    } else if !letters.is_empty() && letters.iter().all(|c| c.is_uppercase()) {
        canonical.to_uppercase()
    } else {
        canonical.to_owned()
    };
    match quote {
        Some(q) => format!("{q}{word}{q}"),
        None => word,
    }
}

/// `3` for one version, a flow list otherwise (`[]` for none).
fn scalar_or_list(versions: &[u64], style: FlowStyle) -> String {
    match versions {
        [one] => one.to_string(),
        _ => flow_list(versions, style),
    }
}

/// `[4, 5]` in `style`; `[]` when empty.
fn flow_list(versions: &[u64], style: FlowStyle) -> String {
    if versions.is_empty() {
        return "[]".to_owned();
    }
    let separator = if style.tight { "," } else { ", " };
    let inner = versions
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(separator);
    if style.padded {
        format!("[ {inner} ]")
    } else {
        format!("[{inner}]")
    }
}

/// The style of a flow list of plain version numbers, `None` if it holds anything else.
fn flow_style(raw: &str) -> Option<FlowStyle> {
    let inner = raw.strip_prefix('[')?.strip_suffix(']')?;
    if !inner
        .chars()
        .all(|c| c.is_ascii_digit() || c == ',' || c.is_whitespace())
    {
        return None;
    }
    let items: Vec<&str> = inner.split(',').map(str::trim).collect();
    let items = match items.split_last() {
        // A trailing comma (`[4, 5,]`) leaves an empty last part; an empty list one.
        Some((&"", rest)) => rest,
        _ => &items[..],
    };
    if items.iter().any(|item| parse_version(item).is_none()) {
        return None;
    }
    let tight = inner
        .match_indices(',')
        .any(|(at, _)| inner[at + 1..].starts_with(|c: char| !c.is_whitespace()));
    Some(FlowStyle {
        padded: inner.starts_with(' ') && !inner.trim().is_empty(),
        tight,
    })
}

/// A version number written plainly: digits, no sign, no leading zero.
fn parse_version(raw: &str) -> Option<u64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) || raw.starts_with('0') {
        return None;
    }
    raw.parse().ok()
}

/// Whether `prefix` is the indentation and dash of a block-list item (`"    - "`).
fn is_dash_prefix(prefix: &str) -> bool {
    let rest = prefix.trim_start_matches(' ');
    rest.strip_prefix('-')
        .is_some_and(|after| !after.is_empty() && after.chars().all(|c| c == ' '))
}

/// Whether `text` holds only whitespace, line breaks and comments.
fn only_trivia(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim_start();
        line.is_empty() || line.starts_with('#')
    })
}

/// Replaces `range` with `new`; when an aligned comment follows on the same line, the
/// spaces before it are adjusted so the comment keeps its column (at least one space).
fn replace_keeping_comment(text: &str, range: Range<usize>, new: String) -> Splice {
    let rest = &text[range.end..];
    let spaces = rest.len() - rest.trim_start_matches(' ').len();
    if spaces == 0 || !rest[spaces..].starts_with('#') {
        return Splice { range, text: new };
    }
    let comment_at = range.end + spaces;
    if spaces == 1 && !aligned_with_neighbours(text, comment_at) {
        return Splice { range, text: new };
    }
    let old_width = text[range.clone()].chars().count();
    let new_width = new.chars().count();
    let wanted = (spaces + old_width).saturating_sub(new_width).max(1);
    Splice {
        range: range.start..range.end + spaces,
        text: format!("{new}{}", " ".repeat(wanted)),
    }
}

/// Whether a comment starting at `offset` is aligned with a comment on one of the three
/// lines before or after it (same column), which an edit should then keep.
fn aligned_with_neighbours(text: &str, offset: usize) -> bool {
    const WINDOW: usize = 3;
    let start = line_start(text, offset);
    let column = text[start..offset].chars().count();
    let line = line_number(text, offset) - 1;
    text.lines()
        .enumerate()
        .filter(|(index, _)| *index != line && index.abs_diff(line) <= WINDOW)
        .any(|(_, other)| {
            other.chars().nth(column) == Some('#')
                && other.chars().take(column).any(|c| !c.is_whitespace())
        })
}

/// Applies non-overlapping splices (sorted by position, insertions at one offset kept in
/// the order given).
fn apply_splices(text: &str, mut splices: Vec<Splice>) -> std::result::Result<String, String> {
    splices.sort_by_key(|splice| (splice.range.start, splice.range.end));
    let mut edited = String::with_capacity(text.len() + 64);
    let mut at = 0;
    for splice in splices {
        if splice.range.start < at || splice.range.end > text.len() {
            return Err("the edits overlap (this is a bug in mlreg)".to_owned());
        }
        let kept = text
            .get(at..splice.range.start)
            .ok_or_else(|| "an edit is not on a character boundary".to_owned())?;
        edited.push_str(kept);
        edited.push_str(&splice.text);
        at = splice.range.end;
    }
    edited.push_str(text.get(at..).unwrap_or_default());
    Ok(edited)
}

/// The start of the line holding `offset`.
fn line_start(text: &str, offset: usize) -> usize {
    text[..offset].rfind('\n').map_or(0, |newline| newline + 1)
}

/// The end of the line holding `offset`, before its line break (`\n` or `\r\n`).
fn line_content_end(text: &str, offset: usize) -> usize {
    let end = text[offset..]
        .find('\n')
        .map_or(text.len(), |newline| offset + newline);
    if end > offset && text[..end].ends_with('\r') {
        end - 1
    } else {
        end
    }
}

/// Where the line break that ends the line before `line_start` begins (`\n` or `\r\n`).
fn line_break_before(text: &str, line_start: usize) -> usize {
    let before = line_start.saturating_sub(1);
    if before > 0 && text.as_bytes().get(before - 1) == Some(&b'\r') {
        before - 1
    } else {
        before
    }
}

/// The 1-based line number of `offset`.
fn line_number(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(0, |before| before.matches('\n').count())
        + 1
}

/// The byte offset of a 1-based line and (character) column.
fn origin_offset(text: &str, line: u32, column: u32) -> usize {
    let Some(line_index) = usize::try_from(line).ok().and_then(|l| l.checked_sub(1)) else {
        return 0;
    };
    let mut start = 0;
    for _ in 0..line_index {
        match text[start..].find('\n') {
            Some(newline) => start += newline + 1,
            None => return text.len(),
        }
    }
    let columns = usize::try_from(column).unwrap_or(0).saturating_sub(1);
    text[start..]
        .char_indices()
        .nth(columns)
        .map_or(start, |(at, _)| start + at)
}

/// A `yaml-edit` position as a byte range.
fn range_of(position: yaml_edit::TextPosition) -> Range<usize> {
    let start = usize::try_from(position.start).unwrap_or(usize::MAX);
    let end = usize::try_from(position.end).unwrap_or(usize::MAX);
    start..end
}

// ---------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------

/// A `spec.versions` entry without its position: run id, source, tags.
type VersionMeaning = (Option<String>, Option<String>, BTreeMap<String, String>);

/// What a model declares, without the positions (which an edit may shift).
#[derive(Debug, PartialEq, Eq)]
struct Meaning {
    description: Option<String>,
    tags: BTreeMap<String, String>,
    /// Sorted versions per stage; `None` when `stages` is absent, empty stages dropped
    /// (`Staging: []` and no `Staging` key mean the same).
    stages: Option<BTreeMap<Stage, Vec<u64>>>,
    aliases: Option<BTreeMap<String, u64>>,
    versions: BTreeMap<u64, VersionMeaning>,
    retention: Option<u32>,
    local_fallback: Option<Option<String>>,
}

impl Meaning {
    fn of(model: &DesiredModel) -> Self {
        Meaning {
            description: model.description.clone(),
            tags: model.tags.clone(),
            stages: model.stages.as_ref().map(|stages| {
                normalized(
                    stages
                        .iter()
                        .map(|(stage, refs)| (*stage, refs.iter().map(|r| r.version).collect())),
                )
            }),
            aliases: model.aliases.as_ref().map(|aliases| {
                aliases
                    .iter()
                    .map(|(alias, target)| (alias.clone(), target.version))
                    .collect()
            }),
            versions: model
                .versions
                .iter()
                .map(|(version, spec)| {
                    (
                        *version,
                        (spec.run_id.clone(), spec.source.clone(), spec.tags.clone()),
                    )
                })
                .collect(),
            retention: model.retention.map(|retention| retention.keep_latest),
            local_fallback: model
                .serving
                .as_ref()
                .map(|serving| serving.local_fallback.clone()),
        }
    }
}

/// Stage versions sorted, empty stages dropped.
fn normalized(stages: impl IntoIterator<Item = (Stage, Vec<u64>)>) -> BTreeMap<Stage, Vec<u64>> {
    stages
        .into_iter()
        .filter(|(_, versions)| !versions.is_empty())
        .map(|(stage, mut versions)| {
            versions.sort_unstable();
            (stage, versions)
        })
        .collect()
}

/// Re-reads `edited` with the manifest loader and checks that, compared with `originals`
/// (every model of the file, as loaded before the edit), only `model`'s stages changed,
/// and to exactly `intended`.
fn verify(
    file: &Path,
    edited: &str,
    originals: &[&DesiredModel],
    model: &str,
    intended: &StageVersions,
) -> Result<()> {
    let failed = |detail: String| EditError::Verification {
        file: file.to_path_buf(),
        detail,
    };
    let reread = reread(file, edited).map_err(failed)?;
    let before: BTreeMap<&str, Meaning> = originals
        .iter()
        .map(|original| (original.name.as_str(), Meaning::of(original)))
        .collect();
    let after: BTreeMap<&str, Meaning> = reread
        .iter()
        .map(|model| (model.name.as_str(), Meaning::of(model)))
        .collect();
    if before.keys().collect::<Vec<_>>() != after.keys().collect::<Vec<_>>() {
        return Err(failed(
            "the file no longer declares the same models".to_owned(),
        ));
    }
    for (name, meaning) in before {
        let mut expected = meaning;
        if name == model {
            expected.stages = Some(normalized(intended.clone()));
        }
        if after.get(name) != Some(&expected) {
            let what = if name == model {
                format!(
                    "model `{name}` would not hold exactly {}",
                    describe(intended)
                )
            } else {
                format!("model `{name}` would change too")
            };
            return Err(failed(what));
        }
    }
    Ok(())
}

/// Loads `text` as the file `file` would be loaded, through a private temporary directory,
/// and returns its models.
pub(super) fn reread(file: &Path, text: &str) -> std::result::Result<Vec<DesiredModel>, String> {
    let directory = tempfile::Builder::new()
        .prefix("mlreg-verify-")
        .tempdir()
        .map_err(|error| format!("cannot create a temporary directory: {error}"))?;
    let name = file
        .file_name()
        .map_or_else(|| "manifest.yaml".into(), |name| name.to_os_string());
    let copy = directory.path().join(name);
    fs::write(&copy, text).map_err(|error| format!("cannot write a temporary copy: {error}"))?;
    match super::load_dir(directory.path()) {
        Ok(state) => Ok(state.models.into_values().collect()),
        Err(error) => Err(error.diagnostics.first().map_or_else(
            || "the edited file does not load".to_owned(),
            |diagnostic| format!("the edited file does not load: {}", diagnostic.message),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (tempfile::TempDir, DesiredState) {
        let directory = tempfile::tempdir().expect("temp dir");
        fs::write(directory.path().join("m.yaml"), text).expect("write");
        let state = super::super::load_dir(directory.path()).expect("valid manifests");
        (directory, state)
    }

    fn edited(text: &str, model: &str, change: StageChange) -> String {
        let (_directory, state) = load(text);
        match edit_stages(&state, model, &change).expect("edit") {
            EditOutcome::Edited(edit) => edit.after,
            EditOutcome::Unchanged(why) => panic!("unchanged: {why}"),
        }
    }

    const HEAD: &str = "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: m\nspec:\n";
    const PROMOTE: StageChange = StageChange::Promote {
        from: Stage::Staging,
        to: Stage::Production,
    };

    #[test]
    fn promote_keeps_scalars_and_comment_columns() {
        let text = format!(
            "{HEAD}  stages:\n    Production: 3          # serving\n    Staging: [4, 5]        # candidates\n"
        );
        assert_eq!(
            edited(&text, "m", PROMOTE),
            format!(
                "{HEAD}  stages:\n    Production: [4, 5]     # serving\n    Staging: []            # candidates\n"
            )
        );
    }

    #[test]
    fn block_lists_keep_their_lines() {
        let text = format!(
            "{HEAD}  stages:\n    Staging:   # candidates\n      - 4   # four\n\n      - 5\n    Production:\n      - 3\n"
        );
        assert_eq!(
            edited(&text, "m", PROMOTE),
            format!(
                "{HEAD}  stages:\n    Staging: [] # candidates\n\n    Production:\n      - 4\n      - 5\n"
            )
        );
        let place = StageChange::Place {
            version: 5,
            stage: Stage::Production,
            keep_existing: true,
        };
        assert_eq!(
            edited(&text, "m", place),
            format!(
                "{HEAD}  stages:\n    Staging:   # candidates\n      - 4   # four\n\n    Production:\n      - 3\n      - 5\n"
            )
        );
    }

    #[test]
    fn a_missing_stage_is_added_in_the_siblings_style() {
        let text = format!("{HEAD}  stages:\n    staging: 4\n");
        assert_eq!(
            edited(&text, "m", PROMOTE),
            format!("{HEAD}  stages:\n    staging: []\n    production: 4\n")
        );
        let text = format!("{HEAD}  stages: {{Staging: [ 4 ]}}\n");
        assert_eq!(
            edited(&text, "m", PROMOTE),
            format!("{HEAD}  stages: {{Staging: [], Production: [ 4 ]}}\n")
        );
        let text = format!("{HEAD}  stages: {{}}\n");
        let place = StageChange::Place {
            version: 2,
            stage: Stage::Staging,
            keep_existing: false,
        };
        assert_eq!(
            edited(&text, "m", place),
            format!("{HEAD}  stages: {{Staging: 2}}\n")
        );
    }

    #[test]
    fn crlf_files_stay_crlf() {
        let text = format!("{HEAD}  stages:\n    Staging:\n      - 4\n").replace('\n', "\r\n");
        let place = StageChange::Place {
            version: 4,
            stage: Stage::Production,
            keep_existing: false,
        };
        assert_eq!(
            edited(&text, "m", place),
            format!("{HEAD}  stages:\n    Staging: []\n    Production:\n      - 4\n")
                .replace('\n', "\r\n")
        );
    }

    #[test]
    fn only_the_models_document_changes() {
        let text = format!(
            "{HEAD}  stages: {{Staging: 4}}\n---\n{}  stages: {{Staging: 4}}\n",
            HEAD.replace("name: m", "name: other")
        );
        let after = edited(&text, "other", PROMOTE);
        assert_eq!(
            after,
            format!(
                "{HEAD}  stages: {{Staging: 4}}\n---\n{}  stages: {{Staging: [], Production: 4}}\n",
                HEAD.replace("name: m", "name: other")
            )
        );
    }

    #[test]
    fn refusals() {
        let (_directory, state) = load(&format!("{HEAD}  stages:\n    Staging: []\n"));
        assert!(matches!(
            edit_stages(&state, "m", &PROMOTE),
            Err(EditError::EmptySource { .. })
        ));
        assert!(matches!(
            edit_stages(&state, "nope", &PROMOTE),
            Err(EditError::NotManaged { .. })
        ));
        let same = StageChange::Promote {
            from: Stage::Staging,
            to: Stage::Staging,
        };
        assert!(matches!(
            edit_stages(&state, "m", &same),
            Err(EditError::SameStage { .. })
        ));
        let archived = StageChange::Promote {
            from: Stage::Staging,
            to: Stage::Archived,
        };
        assert!(matches!(
            edit_stages(&state, "m", &archived),
            Err(EditError::NotDeclarable { .. })
        ));
        let (_directory, state) = load(&format!("{HEAD}  description: no stages\n"));
        assert!(matches!(
            edit_stages(&state, "m", &PROMOTE),
            Err(EditError::NoStages { .. })
        ));
        let (_directory, state) = load(&format!(
            "{HEAD}  stages:\n    Staging: &candidate 4\n  aliases:\n    next: *candidate\n"
        ));
        assert!(matches!(
            edit_stages(&state, "m", &PROMOTE),
            Err(EditError::Unsupported { .. })
        ));
    }

    #[test]
    fn already_there_is_unchanged() {
        let (_directory, state) = load(&format!("{HEAD}  stages:\n    Staging: [4, 5]\n"));
        let place = StageChange::Place {
            version: 5,
            stage: Stage::Staging,
            keep_existing: false,
        };
        assert!(matches!(
            edit_stages(&state, "m", &place),
            Ok(EditOutcome::Unchanged(_))
        ));
        assert!(matches!(
            edit_stages(&state, "m", &StageChange::Remove { version: 9 }),
            Ok(EditOutcome::Unchanged(_))
        ));
    }

    #[test]
    fn verification_refuses_any_other_difference() {
        let text = format!("{HEAD}  description: one\n  stages:\n    Staging: 4\n");
        let (_directory, state) = load(&text);
        let originals: Vec<&DesiredModel> = state.models.values().collect();
        let file = Path::new("m.yaml");
        let intended: StageVersions = [(Stage::Production, vec![4]), (Stage::Staging, vec![])]
            .into_iter()
            .collect();
        let good = text.replace("Staging: 4", "Staging: []\n    Production: 4");
        assert!(verify(file, &good, &originals, "m", &intended).is_ok());
        let other_field = good.replace("description: one", "description: two");
        assert!(matches!(
            verify(file, &other_field, &originals, "m", &intended),
            Err(EditError::Verification { .. })
        ));
        let wrong_stage = text.replace("Staging: 4", "Staging: 4\n    Production: 4");
        assert!(verify(file, &wrong_stage, &originals, "m", &intended).is_err());
        assert!(verify(file, "not: [valid", &originals, "m", &intended).is_err());
    }

    #[test]
    fn flow_styles() {
        assert_eq!(
            flow_style("[ 4 ,5 ]"),
            Some(FlowStyle {
                padded: true,
                tight: true
            })
        );
        assert_eq!(flow_style("[4, 5]"), Some(FlowStyle::default()));
        assert_eq!(flow_style("[4, &a 5]"), None);
        assert_eq!(
            key_like(Some("\"STAGING\""), Stage::Production),
            "\"PRODUCTION\""
        );
        assert_eq!(key_like(Some("Staging"), Stage::Production), "Production");
    }
}
