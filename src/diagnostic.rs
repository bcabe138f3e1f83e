//! User-facing errors that point into a manifest: file, line, column, the offending line
//! with a caret under the column, and what to do about it.
//!
//! Both the manifest loader (syntax, schema, semantic checks) and the planner (a version
//! that does not exist, a failed `runId` assertion) report problems this way, and every
//! problem of a run is reported together, not only the first.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use crate::render::printable;

/// A position in a manifest file. Lines and columns are 1-based; 0 means unknown.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Origin {
    /// The file, as given on the command line (relative to the working directory when it was).
    pub file: PathBuf,
    /// 1-based line, 0 when unknown.
    pub line: u32,
    /// 1-based column, 0 when unknown.
    pub column: u32,
}

impl Origin {
    /// A position in `file`.
    pub fn new(file: impl Into<PathBuf>, line: u32, column: u32) -> Self {
        Origin {
            file: file.into(),
            line,
            column,
        }
    }

    /// The whole file, no particular position.
    pub fn file(file: impl Into<PathBuf>) -> Self {
        Origin::new(file, 0, 0)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        Ok(())
    }
}

/// One problem found in the desired state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Where the problem is; `None` for problems not tied to one file (an empty directory).
    pub origin: Option<Origin>,
    /// What is wrong, in one sentence.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A problem at `origin`.
    pub fn at(origin: Origin, message: impl Into<String>) -> Self {
        Diagnostic {
            origin: Some(origin),
            message: message.into(),
            help: None,
        }
    }

    /// A problem not tied to a position.
    pub fn global(message: impl Into<String>) -> Self {
        Diagnostic {
            origin: None,
            message: message.into(),
            help: None,
        }
    }

    /// Adds the advice line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(origin) => write!(f, "{origin}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The text of every manifest file read in a run, so diagnostics can quote the offending line.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: BTreeMap<PathBuf, Arc<str>>,
}

impl SourceMap {
    /// Remembers the text of `file`.
    pub fn insert(&mut self, file: PathBuf, text: Arc<str>) {
        self.files.insert(file, text);
    }

    /// The text of `file`, if it was read.
    pub fn get(&self, file: &Path) -> Option<&str> {
        self.files.get(file).map(|text| &**text)
    }

    /// Line `line` (1-based) of `file`.
    pub fn line(&self, file: &Path, line: u32) -> Option<&str> {
        let index = usize::try_from(line).ok()?.checked_sub(1)?;
        self.get(file)?.lines().nth(index)
    }
}

/// Writes diagnostics in the compiler style:
///
/// ```text
/// error: version 7 of model `fraud` does not exist in the registry
///   --> desired-state/fraud.yaml:12:17
///    |
/// 12 |     Production: 7
///    |                 ^
///    = help: register version 7 first, or declare an existing version
/// ```
pub fn render(
    out: &mut dyn Write,
    diagnostics: &[Diagnostic],
    sources: &SourceMap,
    color: bool,
) -> io::Result<()> {
    let paint = |style: Style, text: &str| -> String {
        if color {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_owned()
        }
    };
    let error_style = Style::new().bold().fg_color(Some(AnsiColor::Red.into()));
    let gutter_style = Style::new().bold().fg_color(Some(AnsiColor::Blue.into()));
    let bold = Style::new().bold();
    for diagnostic in diagnostics {
        writeln!(
            out,
            "{}{}",
            paint(error_style, "error"),
            // Messages quote registry text (a run id, a source) and help may quote a
            // manifest: both are escaped like everything the renderers print.
            paint(bold, &format!(": {}", printable(&diagnostic.message)))
        )?;
        if let Some(origin) = &diagnostic.origin {
            let quoted = sources.line(&origin.file, origin.line);
            let width = if quoted.is_some() {
                origin.line.to_string().len()
            } else {
                1
            };
            let pad = " ".repeat(width);
            writeln!(
                out,
                "{pad}{} {}",
                paint(gutter_style, "-->"),
                printable(&origin.to_string())
            )?;
            if let Some(text) = quoted {
                let bar = paint(gutter_style, "|");
                writeln!(out, "{pad} {bar}")?;
                writeln!(
                    out,
                    "{} {bar} {}",
                    paint(gutter_style, &origin.line.to_string()),
                    // Tabs would shift the caret; other control characters (an escape
                    // sequence in a hostile manifest) must not reach the terminal raw.
                    // One character for one keeps the caret under its column.
                    text.chars()
                        .map(|c| if c.is_control() { ' ' } else { c })
                        .collect::<String>()
                )?;
                if origin.column > 0 {
                    let indent = " ".repeat(origin.column as usize - 1);
                    writeln!(out, "{pad} {bar} {indent}{}", paint(error_style, "^"))?;
                }
            }
            if let Some(help) = &diagnostic.help {
                writeln!(
                    out,
                    "{pad} {} help: {}",
                    paint(gutter_style, "="),
                    printable(help)
                )?;
            }
        } else if let Some(help) = &diagnostic.help {
            writeln!(
                out,
                "  {} help: {}",
                paint(gutter_style, "="),
                printable(help)
            )?;
        }
        writeln!(out)?;
    }
    let count = diagnostics.len();
    if count > 1 {
        writeln!(
            out,
            "{}",
            paint(error_style, &format!("{count} problems found"))
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_line_column_caret_and_help() {
        let mut sources = SourceMap::default();
        sources.insert(
            PathBuf::from("m.yaml"),
            Arc::from("a: 1\nstages:\n  Production: 7\n"),
        );
        let diagnostic = Diagnostic::at(Origin::new("m.yaml", 3, 15), "version 7 does not exist")
            .with_help("register it first");
        let mut out = Vec::new();
        render(&mut out, &[diagnostic], &sources, false).expect("write to a Vec");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            text,
            "error: version 7 does not exist\n --> m.yaml:3:15\n  |\n3 |   Production: 7\n  |               ^\n  = help: register it first\n\n"
        );
    }

    #[test]
    fn control_characters_of_a_quoted_line_never_reach_the_terminal() {
        let mut sources = SourceMap::default();
        sources.insert(
            PathBuf::from("m.yaml"),
            Arc::from("description: \"\u{1b}[2J\u{1b}]0;title\u{7}\"\n"),
        );
        let diagnostic = Diagnostic::at(Origin::new("m.yaml", 1, 15), "unexpected character");
        let mut out = Vec::new();
        render(&mut out, &[diagnostic], &sources, false).expect("write to a Vec");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
        assert!(
            text.contains("1 | description: \" [2J ]0;title \""),
            "{text}"
        );
    }

    #[test]
    fn messages_help_and_file_names_are_escaped() {
        use crate::render::hostile::{assert_escaped, assert_only_own_colors, text};

        let file = PathBuf::from(text("desired-state/m"));
        let mut sources = SourceMap::default();
        sources.insert(file.clone(), Arc::from(text("runId: abc").as_str()));
        let diagnostics = [
            Diagnostic::at(Origin::new(file, 1, 1), text("comes from run"))
                .with_help(text("fix runId")),
            Diagnostic::global(text("no manifest declares")).with_help(text("add one")),
        ];
        let write = |color: bool| {
            let mut out = Vec::new();
            render(&mut out, &diagnostics, &sources, color).expect("write to a Vec");
            String::from_utf8(out).expect("utf-8")
        };
        let plain = write(false);
        assert_escaped(&plain);
        for field in [
            "desired-state/m",
            "comes from run",
            "fix runId",
            "no manifest declares",
            "add one",
        ] {
            assert!(
                plain.contains(&format!("{field}\\u{{1b}}[31m")),
                "`{field}` missing or unescaped in:\n{plain}"
            );
        }
        assert_only_own_colors(&write(true), &plain);
    }
}
