//! Unified diffs of a manifest edit (`mlreg promote`, `mlreg set-stage`), drawn with
//! `similar`: `--- a/FILE` / `+++ b/FILE` headers (no prefix for an absolute path), `@@` hunks with three lines of context,
//! removals in red and additions in green when coloring is on, and git's marker for a last
//! line without a line break.
//!
//! The file name and every line go through [`printable`]: a manifest is text anyone with
//! write access to the repository can put control characters into, and `promote` prints its
//! diff to a terminal.

use std::io::{self, Write};
use std::path::Path;

use anstyle::{AnsiColor, Style};
use similar::{ChangeTag, TextDiff};

use super::printable;

/// Lines of unchanged context around each change.
const CONTEXT_LINES: usize = 3;

/// Writes the unified diff from `old` to `new`, naming the file `label` in the headers.
/// Writes nothing when the texts are equal.
pub fn write_unified(
    out: &mut dyn Write,
    label: &str,
    old: &str,
    new: &str,
    color: bool,
) -> io::Result<()> {
    if old == new {
        return Ok(());
    }
    let paint = |style: Style, text: &str| -> String {
        if color {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_owned()
        }
    };
    let header = Style::new().bold();
    let hunk_style = Style::new().fg_color(Some(AnsiColor::Cyan.into()));
    let removed = Style::new().fg_color(Some(AnsiColor::Red.into()));
    let added = Style::new().fg_color(Some(AnsiColor::Green.into()));

    let diff = TextDiff::from_lines(old, new);
    // git's `a/` and `b/` prefixes, for a path relative to where the command runs.
    let printable_label = printable(label);
    let (old_label, new_label) = if Path::new(label).is_absolute() {
        (printable_label.to_string(), printable_label.to_string())
    } else {
        (
            format!("a/{printable_label}"),
            format!("b/{printable_label}"),
        )
    };
    writeln!(out, "{}", paint(header, &format!("--- {old_label}")))?;
    writeln!(out, "{}", paint(header, &format!("+++ {new_label}")))?;
    let mut unified = diff.unified_diff();
    unified.context_radius(CONTEXT_LINES);
    for hunk in unified.iter_hunks() {
        writeln!(out, "{}", paint(hunk_style, &hunk.header().to_string()))?;
        for change in hunk.iter_changes() {
            let (sign, style) = match change.tag() {
                ChangeTag::Delete => ("-", Some(removed)),
                ChangeTag::Insert => ("+", Some(added)),
                ChangeTag::Equal => (" ", None),
            };
            let line = change.value();
            let line = line
                .strip_suffix('\n')
                .map(|line| line.strip_suffix('\r').unwrap_or(line))
                .unwrap_or(line);
            let text = format!("{sign}{}", printable(line));
            match style {
                Some(style) => writeln!(out, "{}", paint(style, &text))?,
                None => writeln!(out, "{text}")?,
            }
            if change.missing_newline() {
                writeln!(out, "\\ No newline at end of file")?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(old: &str, new: &str, color: bool) -> String {
        let mut out = Vec::new();
        write_unified(&mut out, "desired-state/m.yaml", old, new, color).expect("write");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn plain_unified_diff() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\n";
        assert_eq!(
            render(old, new, false),
            "--- a/desired-state/m.yaml\n+++ b/desired-state/m.yaml\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
    }

    #[test]
    fn equal_texts_write_nothing_and_color_is_optional() {
        assert_eq!(render("a\n", "a\n", true), "");
        let colored = render("a\n", "b\n", true);
        assert!(colored.contains("\u{1b}["), "{colored:?}");
        assert!(!render("a\n", "b\n", false).contains('\u{1b}'));
    }

    #[test]
    fn missing_final_newline_is_marked() {
        let out = render("a\nb", "a\nc", false);
        assert!(
            out.ends_with("-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"),
            "{out}"
        );
    }

    #[test]
    fn file_names_and_lines_are_escaped() {
        use crate::render::hostile::{assert_escaped, assert_only_own_colors, text};

        let label = text("desired-state/m");
        let old = format!("a: 1\n{}\nc: 3\n", text("b: old"));
        let new = format!("a: 1\n{}\nc: 3\n", text("b: new"));
        let write = |color: bool| {
            let mut out = Vec::new();
            write_unified(&mut out, &label, &old, &new, color).expect("write");
            String::from_utf8(out).expect("UTF-8")
        };
        let plain = write(false);
        assert_escaped(&plain);
        for expected in [
            "--- a/desired-state/m\\u{1b}[31m",
            "+++ b/desired-state/m\\u{1b}[31m",
            "-b: old\\u{1b}[31m",
            "+b: new\\u{1b}[31m",
        ] {
            assert!(
                plain.contains(expected),
                "`{expected}` missing in:\n{plain}"
            );
        }
        assert_only_own_colors(&write(true), &plain);
    }
}
