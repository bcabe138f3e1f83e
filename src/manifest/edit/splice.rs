//! Turning an intended change into text replacements at the ranges `locate` found, each
//! written in the style already there (scalar, flow list, block list; key spelling;
//! indentation; the column of a trailing comment), and applying them.

use std::collections::BTreeSet;
use std::ops::Range;

use super::locate::{
    Entry, FlowStyle, Located, Value, line_break_before, line_content_end, line_number, line_start,
};
use super::{Result, StageVersions};
use crate::stage::Stage;

/// One replacement of a byte range.
#[derive(Debug)]
pub(super) struct Splice {
    pub(super) range: Range<usize>,
    pub(super) text: String,
}

impl Located<'_> {
    /// The splices that turn `before` into `after`.
    pub(super) fn splices(
        &self,
        before: &StageVersions,
        after: &StageVersions,
    ) -> Result<Vec<Splice>> {
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
    pub(super) fn rewrite_value(&self, entry: &Entry, new: &[u64]) -> Vec<Splice> {
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
    pub(super) fn new_entry(&self, stage: Stage, new: &[u64]) -> Result<Splice> {
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

/// A key for `stage` written like `sibling` (quotes, lower/upper case), else canonical.
pub(super) fn key_like(sibling: Option<&str>, stage: Stage) -> String {
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
pub(super) fn scalar_or_list(versions: &[u64], style: FlowStyle) -> String {
    match versions {
        [one] => one.to_string(),
        _ => flow_list(versions, style),
    }
}

/// `[4, 5]` in `style`; `[]` when empty.
pub(super) fn flow_list(versions: &[u64], style: FlowStyle) -> String {
    if versions.is_empty() {
        return "[]".to_owned();
    }
    let separator = if style.tight { "," } else { ", " };
    let inner = crate::stage::join_versions(versions, separator);
    if style.padded {
        format!("[ {inner} ]")
    } else {
        format!("[{inner}]")
    }
}

/// Replaces `range` with `new`; when an aligned comment follows on the same line, the
/// spaces before it are adjusted so the comment keeps its column (at least one space).
pub(super) fn replace_keeping_comment(text: &str, range: Range<usize>, new: String) -> Splice {
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
pub(super) fn aligned_with_neighbours(text: &str, offset: usize) -> bool {
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
pub(super) fn apply(text: &str, mut splices: Vec<Splice>) -> std::result::Result<String, String> {
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
