//! Locating a model's `stages` in the text of its manifest: the mapping, each stage's key
//! and value, each item of a block list, as byte ranges, with `yaml-edit`'s lossless parse.
//! Nothing here changes the text; the ranges feed `splice`.

use std::ops::Range;
use std::path::Path;
use std::str::FromStr as _;

use yaml_edit::{Mapping, YamlFile, YamlNode};

use super::{EditError, Result, StageVersions};
use crate::manifest::DesiredModel;
use crate::stage::Stage;

/// The model's `stages` mapping as written, with byte offsets into the file text.
pub(super) struct Located<'t> {
    pub(super) text: &'t str,
    pub(super) file: &'t Path,
    /// Where `stages` starts (for messages).
    pub(super) stages_offset: usize,
    /// A flow mapping (`{Production: 3}`) rather than a block mapping.
    pub(super) flow: bool,
    /// The mapping's own range (for an empty flow mapping `{}`).
    pub(super) range: Range<usize>,
    pub(super) entries: Vec<Entry>,
    /// The versions as written, per declarable stage.
    pub(super) written: StageVersions,
    /// `\n` or `\r\n`, as the file uses.
    pub(super) newline: &'static str,
}

/// One `Stage: value` entry.
pub(super) struct Entry {
    pub(super) stage: Stage,
    /// The key as written (with its quotes).
    pub(super) key_text: String,
    pub(super) key_start: usize,
    /// Just after the `:` that follows the key.
    pub(super) colon_end: usize,
    pub(super) value: Value,
}

/// A stage's value as written.
pub(super) enum Value {
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
pub(super) struct Item {
    pub(super) version: u64,
    /// The item's line, without its line break.
    pub(super) line: Range<usize>,
    /// What precedes the number on its line (`"      - "`).
    pub(super) prefix: String,
}

/// How a flow list is spaced: `[4, 5]`, `[ 4, 5 ]`, `[4,5]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct FlowStyle {
    pub(super) padded: bool,
    pub(super) tight: bool,
}

impl<'t> Located<'t> {
    /// Finds `model`'s `stages` in `text` (the file `file`).
    pub(super) fn find(text: &'t str, file: &'t Path, model: &DesiredModel) -> Result<Self> {
        let unsupported = |offset: usize, what: &str| EditError::Unsupported {
            location: format!("{}:{}", file.display(), line_number(text, offset)),
            what: what.to_owned(),
        };
        let spec = spec_mapping(text, file, model)?;
        let name_offset = origin_offset(text, model.origins.name.line, model.origins.name.column);
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

    pub(super) fn unsupported(&self, offset: usize, what: &str) -> EditError {
        EditError::Unsupported {
            location: format!("{}:{}", self.file.display(), line_number(self.text, offset)),
            what: what.to_owned(),
        }
    }

    /// The text of `range`, which `yaml-edit` reported.
    pub(super) fn slice(&self, range: Range<usize>) -> Result<&'t str> {
        let start = range.start;
        self.text.get(range).ok_or_else(|| {
            self.unsupported(
                start,
                "the YAML editor reported a position outside the file",
            )
        })
    }

    /// Reads one entry of the stages mapping.
    pub(super) fn entry(&self, key: &YamlNode, value: Option<YamlNode>) -> Result<Entry> {
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
    pub(super) fn value(&self, node: &YamlNode, colon_end: usize) -> Result<Value> {
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
}

impl Entry {
    /// The version numbers of the value as written.
    pub(super) fn value_versions(&self, text: &str) -> Vec<u64> {
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

/// The style of a flow list of plain version numbers, `None` if it holds anything else.
pub(super) fn flow_style(raw: &str) -> Option<FlowStyle> {
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

/// The `spec` mapping of `model`'s document in `text` (the file `file`).
pub(super) fn spec_mapping(text: &str, file: &Path, model: &DesiredModel) -> Result<Mapping> {
    let root = document_mapping(text, file, model)?;
    let name_offset = origin_offset(text, model.origins.name.line, model.origins.name.column);
    root.get_mapping("spec")
        .ok_or_else(|| EditError::Unsupported {
            location: format!("{}:{}", file.display(), line_number(text, name_offset)),
            what: "`spec` is not a plain mapping".to_owned(),
        })
}

/// The root mapping of `model`'s document in `text` (the file `file`), found where the
/// loader read the model's `metadata.name`.
pub(super) fn document_mapping(text: &str, file: &Path, model: &DesiredModel) -> Result<Mapping> {
    let unsupported = |offset: usize, what: &str| EditError::Unsupported {
        location: format!("{}:{}", file.display(), line_number(text, offset)),
        what: what.to_owned(),
    };
    let parsed = YamlFile::from_str(text)
        .map_err(|error| unsupported(0, &format!("the YAML editor cannot parse it ({error})")))?;
    if parsed.to_string() != text {
        return Err(unsupported(
            0,
            "the YAML editor cannot reproduce the file exactly",
        ));
    }
    let name_offset = origin_offset(text, model.origins.name.line, model.origins.name.column);
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
    Ok(root)
}

/// A version number written plainly: digits, no sign, no leading zero.
pub(super) fn parse_version(raw: &str) -> Option<u64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) || raw.starts_with('0') {
        return None;
    }
    raw.parse().ok()
}

/// Whether `prefix` is the indentation and dash of a block-list item (`"    - "`).
pub(super) fn is_dash_prefix(prefix: &str) -> bool {
    let rest = prefix.trim_start_matches(' ');
    rest.strip_prefix('-')
        .is_some_and(|after| !after.is_empty() && after.chars().all(|c| c == ' '))
}

/// Whether `text` holds only whitespace, line breaks and comments.
pub(super) fn only_trivia(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim_start();
        line.is_empty() || line.starts_with('#')
    })
}

/// The start of the line holding `offset`.
pub(super) fn line_start(text: &str, offset: usize) -> usize {
    text[..offset].rfind('\n').map_or(0, |newline| newline + 1)
}

/// The end of the line holding `offset`, before its line break (`\n` or `\r\n`).
pub(super) fn line_content_end(text: &str, offset: usize) -> usize {
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
pub(super) fn line_break_before(text: &str, line_start: usize) -> usize {
    let before = line_start.saturating_sub(1);
    if before > 0 && text.as_bytes().get(before - 1) == Some(&b'\r') {
        before - 1
    } else {
        before
    }
}

/// The 1-based line number of `offset`.
pub(super) fn line_number(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(0, |before| before.matches('\n').count())
        + 1
}

/// The byte offset of a 1-based line and (character) column.
pub(super) fn origin_offset(text: &str, line: u32, column: u32) -> usize {
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
pub(super) fn range_of(position: yaml_edit::TextPosition) -> Range<usize> {
    let start = usize::try_from(position.start).unwrap_or(usize::MAX);
    let end = usize::try_from(position.end).unwrap_or(usize::MAX);
    start..end
}
