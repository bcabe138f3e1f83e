//! Setting and removing entries of a plain YAML mapping of a model's document (`spec`,
//! `spec.aliases`, `spec.serving`) as text splices, in the mapping's own style: a block
//! mapping gets a new line indented like its siblings, a flow mapping a `, key: value`;
//! a value is replaced where it stands, keeping a trailing comment's column; removing the
//! last entry of a mapping leaves `{}` (an empty mapping, which is what the manifest then
//! means). Everything else of the file is left byte for byte.
//!
//! Like `locate`, this only finds byte ranges with `yaml-edit`; the result is verified by
//! reading it back (`verify`), so a construct handled wrongly here is refused, not written.

use std::ops::Range;
use std::path::Path;

use yaml_edit::{Mapping, YamlNode};

use super::locate::{line_break_before, line_content_end, line_number, line_start, range_of};
use super::splice::{Splice, replace_keeping_comment};
use super::{EditError, Result};

/// A mapping as written, with byte offsets into the file text.
pub(super) struct MappingText<'t> {
    text: &'t str,
    file: &'t Path,
    /// The mapping node's own range.
    range: Range<usize>,
    flow: bool,
    /// Just after the `:` of the entry whose value this mapping is.
    owner_colon_end: usize,
    entries: Vec<MapEntry>,
    /// `\n` or `\r\n`, as the file uses.
    newline: &'static str,
}

/// One `key: value` entry.
struct MapEntry {
    /// The key as read (quotes removed).
    key: String,
    key_start: usize,
    key_end: usize,
    /// Just after the `:` that follows the key.
    colon_end: usize,
    /// The value's range, trailing blanks excluded; `None` when nothing follows the `:`.
    value: Option<Range<usize>>,
    /// Whether the value is a single scalar (or absent).
    scalar: bool,
}

impl MapEntry {
    /// Where the entry's text ends (its value's end, or its colon's).
    fn end(&self) -> usize {
        self.value
            .as_ref()
            .map_or(self.colon_end, |value| value.end)
    }
}

impl<'t> MappingText<'t> {
    /// Reads `mapping`, the value of the entry whose `:` ends at `owner_colon_end`.
    pub(super) fn read(
        text: &'t str,
        file: &'t Path,
        mapping: &Mapping,
        owner_colon_end: usize,
    ) -> Result<Self> {
        let mut read = MappingText {
            text,
            file,
            range: range_of(mapping.byte_range()),
            flow: mapping.is_flow_style(),
            owner_colon_end,
            entries: Vec::new(),
            newline: if text.contains("\r\n") { "\r\n" } else { "\n" },
        };
        for entry in mapping.entries() {
            let key = entry
                .key_node()
                .ok_or_else(|| read.unsupported(read.range.start, "a mapping entry has no key"))?;
            read.entries.push(read.entry(&key, entry.value_node())?);
        }
        Ok(read)
    }

    /// The mapping held by entry `key`, if the entry exists; an error when its value is
    /// something else than a plain mapping.
    pub(super) fn child(&self, mapping: &Mapping, key: &str) -> Result<Option<MappingText<'t>>> {
        let Some(entry) = self.find(key) else {
            return Ok(None);
        };
        let node = mapping.get(key).ok_or_else(|| {
            self.unsupported(
                entry.key_start,
                "a key could not be read back by the editor",
            )
        })?;
        let child = node.as_mapping().ok_or_else(|| {
            self.unsupported(
                entry.key_start,
                &format!("`{key}` is not a plain mapping (an anchor, alias or tag?)"),
            )
        })?;
        MappingText::read(self.text, self.file, child, entry.colon_end).map(Some)
    }

    /// Whether the mapping is written in flow style (`{a: 1}`).
    pub(super) fn is_flow(&self) -> bool {
        self.flow
    }

    /// The keys, in the order they are written.
    pub(super) fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().map(|entry| &entry.key)
    }

    /// Replaces the whole (flow) mapping with `text`.
    pub(super) fn replace_flow(&self, text: &str) -> Splice {
        Splice {
            range: self.range.clone(),
            text: text.to_owned(),
        }
    }

    /// Whether the mapping has an entry `key`.
    pub(super) fn contains(&self, key: &str) -> bool {
        self.find(key).is_some()
    }

    fn find(&self, key: &str) -> Option<&MapEntry> {
        self.entries.iter().find(|entry| entry.key == key)
    }

    pub(super) fn unsupported(&self, offset: usize, what: &str) -> EditError {
        EditError::Unsupported {
            location: format!("{}:{}", self.file.display(), line_number(self.text, offset)),
            what: what.to_owned(),
        }
    }

    /// Reads one entry.
    fn entry(&self, key: &YamlNode, value: Option<YamlNode>) -> Result<MapEntry> {
        let text = self.text;
        let key_range = range_of(key.byte_range());
        let key_start = key_range.start;
        let name = key
            .as_scalar()
            .map(|scalar| scalar.as_string())
            .ok_or_else(|| self.unsupported(key_start, "a mapping key is not a plain word"))?;
        let after_key = text.get(key_range.end..).unwrap_or_default();
        let colon = after_key
            .find(|c: char| c != ' ' && c != '\t')
            .filter(|at| after_key[*at..].starts_with(':'))
            .ok_or_else(|| self.unsupported(key_start, "a mapping key is not followed by `:`"))?;
        let colon_end = key_range.end + colon + 1;
        let (value, scalar) = match value {
            None => (None, true),
            Some(node) => {
                let range = range_of(node.byte_range());
                let raw = text.get(range.clone()).ok_or_else(|| {
                    self.unsupported(
                        key_start,
                        "the YAML editor reported a position outside the file",
                    )
                })?;
                let trimmed = raw.trim_end();
                if node.as_scalar().is_some() && trimmed.is_empty() {
                    (None, true)
                } else {
                    (
                        Some(range.start..range.start + trimmed.len()),
                        node.as_scalar().is_some(),
                    )
                }
            }
        };
        if let Some(value) = &value
            && value.start < colon_end
        {
            return Err(self.unsupported(key_start, "a value is written before its key's `:`"));
        }
        Ok(MapEntry {
            key: name,
            key_start,
            key_end: key_range.end,
            colon_end,
            value,
            scalar,
        })
    }

    /// The splices that make entry `key` hold `value` (YAML text, one line: a scalar or a
    /// flow collection), replacing its value or adding the entry. `key_text` is the key as
    /// it should be written when added.
    pub(super) fn set(&self, key: &str, key_text: &str, value: &str) -> Result<Vec<Splice>> {
        let text = self.text;
        if let Some(entry) = self.find(key) {
            return Ok(vec![match &entry.value {
                None => replace_keeping_comment(
                    text,
                    entry.colon_end..entry.colon_end,
                    format!(" {value}"),
                ),
                Some(range) if entry.scalar => {
                    replace_keeping_comment(text, range.clone(), value.to_owned())
                }
                // A block collection starts on the next line: write the new value after the
                // colon instead, in its place.
                Some(range) => Splice {
                    range: entry.colon_end..range.end,
                    text: format!(" {value}"),
                },
            }]);
        }
        if self.flow {
            return Ok(vec![match self.entries.last() {
                Some(last) => Splice {
                    range: last.end()..last.end(),
                    text: format!(", {key_text}: {value}"),
                },
                None => {
                    let inside = self.range.start + 1..self.range.end.saturating_sub(1);
                    if text.get(self.range.start..inside.start) != Some("{")
                        || text.get(inside.end..self.range.end) != Some("}")
                    {
                        return Err(self.unsupported(
                            self.range.start,
                            "an empty mapping that is not written `{}`",
                        ));
                    }
                    Splice {
                        range: inside,
                        text: format!("{key_text}: {value}"),
                    }
                }
            }]);
        }
        let Some(last) = self.entries.last() else {
            return Err(self.unsupported(self.range.start, "an empty block mapping"));
        };
        let key_line = line_start(text, last.key_start);
        let indent = &text[key_line..last.key_start];
        if !indent.chars().all(|c| c == ' ') {
            return Err(self.unsupported(
                last.key_start,
                "a mapping whose keys are not indented with spaces only",
            ));
        }
        let end = line_content_end(text, last.end());
        Ok(vec![Splice {
            range: end..end,
            text: format!("{}{indent}{key_text}: {value}", self.newline),
        }])
    }

    /// The splices that turn entry `key` into `new_key_text: value` on the same line (so a
    /// comment after it stays, and a mapping never passes through empty).
    pub(super) fn rename(&self, key: &str, new_key_text: &str, value: &str) -> Result<Vec<Splice>> {
        let Some(entry) = self.find(key) else {
            return Err(
                self.unsupported(self.range.start, "an entry was not found where it was read")
            );
        };
        let mut splices = vec![Splice {
            range: entry.key_start..entry.key_end,
            text: new_key_text.to_owned(),
        }];
        splices.extend(self.set(key, new_key_text, value)?);
        Ok(splices)
    }

    /// The splices that remove entry `key` (none when there is no such entry).
    pub(super) fn remove(&self, key: &str) -> Result<Vec<Splice>> {
        let text = self.text;
        let Some(index) = self.entries.iter().position(|entry| entry.key == key) else {
            return Ok(Vec::new());
        };
        let entry = &self.entries[index];
        let splice = if self.flow {
            match (index.checked_sub(1), self.entries.get(index + 1)) {
                (_, Some(next)) => Splice {
                    range: entry.key_start..next.key_start,
                    text: String::new(),
                },
                (Some(previous), None) => Splice {
                    range: self.entries[previous].end()..entry.end(),
                    text: String::new(),
                },
                (None, None) => Splice {
                    range: entry.key_start..entry.end(),
                    text: String::new(),
                },
            }
        } else if self.entries.len() == 1 {
            // The mapping would be left without entries: it becomes `{}`, the empty mapping.
            Splice {
                range: self.owner_colon_end..line_content_end(text, entry.end()),
                text: " {}".to_owned(),
            }
        } else {
            let key_line = line_start(text, entry.key_start);
            if !text[key_line..entry.key_start].chars().all(|c| c == ' ') {
                return Err(
                    self.unsupported(entry.key_start, "an entry that does not start its own line")
                );
            }
            // The line break before the entry's first line, through the end of its last.
            let start = if key_line == 0 {
                0
            } else {
                line_break_before(text, key_line)
            };
            let end = line_content_end(text, entry.end());
            let end = if start == 0 {
                // The first line of the file: take the line break after it instead.
                text[end..]
                    .find('\n')
                    .map_or(text.len(), |newline| end + newline + 1)
            } else {
                end
            };
            Splice {
                range: start..end,
                text: String::new(),
            }
        };
        Ok(vec![splice])
    }
}

/// `text` as a one-line YAML scalar that reads back as the string `text`: plain when
/// unambiguous, quoted when a reader could take it for another type (`"3"`, `"true"`) or
/// when YAML reserves its first character (`"@champion"`).
pub(super) fn yaml_string(text: &str) -> Result<String> {
    let options = serde_saphyr::ser_options! {
        prefer_block_scalars: false,
    };
    serde_saphyr::to_string_with_options(&text, options)
        .map(|written| written.trim_end_matches(['\r', '\n']).to_owned())
        .map_err(|error| EditError::Unsupported {
            location: String::new(),
            what: format!(
                "`{}` cannot be written as YAML ({error})",
                text.escape_debug()
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_only_when_needed() {
        for (text, written) in [
            ("champion", "champion"),
            ("@champion", "\"@champion\""),
            ("3", "\"3\""),
            ("true", "\"true\""),
            ("Production", "Production"),
        ] {
            assert_eq!(yaml_string(text).expect("written"), written, "{text}");
        }
    }
}
