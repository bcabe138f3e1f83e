//! Rendering: plans, apply reports and tables as text, JSON or Markdown, always into an
//! `impl Write` (stdout in the binary, a `Vec<u8>` in tests). Nothing here decides whether
//! to color: callers pass that in (terminal detection and `NO_COLOR` live in
//! [`crate::output`]).

pub mod diff;
pub mod environments;
pub mod plan;
pub mod resolve;
pub mod table;

/// The `format_version` of every JSON document mlreg writes: plans and apply reports
/// (`--output json`), `versions`/`info --output json`, `resolve --output json` and the daemon's
/// `/status`. Bumped only when a field changes meaning or disappears; new fields may appear
/// at any time.
///
/// A string, not a number, as in Terraform's `terraform show -json` (which tools reading
/// plans already expect), so a later `"1.1"` never needs a float.
pub const FORMAT_VERSION: &str = "1";

pub use crate::output::printable;

/// Hostile text for the renderers' tests: every renderer must print it escaped.
#[cfg(test)]
pub(crate) mod hostile {
    /// C0 and C1 control characters a registry or manifest text could carry: an SGR color,
    /// an OSC title change ended by BEL, a C1 CSI (U+009B, which a UTF-8 terminal may honor
    /// like ESC `[`), carriage return, backspace, NUL, tab, vertical tab, form feed, DEL and
    /// next-line (U+0085).
    const CONTROLS: &str =
        "\u{1b}[31m\u{1b}]0;pwned\u{7}\u{9b}2J\r\u{8}\u{0}\t\u{b}\u{c}\u{7f}\u{85}";

    /// `label` followed by every control character.
    pub(crate) fn text(label: &str) -> String {
        format!("{label}{CONTROLS}end")
    }

    /// Fails unless `output` has no control character besides the renderer's own line
    /// breaks, and shows the escaped form of ESC at least once (so the hostile text was in
    /// fact rendered, not dropped).
    pub(crate) fn assert_escaped(output: &str) {
        if let Some(raw) = output.chars().find(|c| c.is_control() && *c != '\n') {
            panic!(
                "raw control character {:?} in the output:\n{}",
                raw,
                output.escape_debug()
            );
        }
        assert!(output.contains("\\u{1b}"), "no escaped ESC in:\n{output}");
    }

    /// `colored` without mlreg's own SGR sequences (`ESC [ digits/semicolons m`).
    ///
    /// A colored rendering with these removed must equal the plain rendering: then the only
    /// ESC bytes in it are the colors mlreg added, since a raw hostile ESC would either
    /// survive the stripping or make the two differ.
    pub(crate) fn strip_sgr(colored: &str) -> String {
        let mut plain = String::with_capacity(colored.len());
        let mut rest = colored;
        while let Some(start) = rest.find('\u{1b}') {
            plain.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let body = after.strip_prefix('[').map(|body| {
                body.char_indices()
                    .find(|(_, c)| !(c.is_ascii_digit() || *c == ';'))
            });
            match body {
                Some(Some((end, 'm'))) => rest = &after[1 + end + 1..],
                // Not an SGR sequence: keep the ESC so the comparison fails.
                _ => {
                    plain.push('\u{1b}');
                    rest = after;
                }
            }
        }
        plain.push_str(rest);
        plain
    }

    /// Fails unless `colored` is `plain` plus SGR sequences only.
    pub(crate) fn assert_only_own_colors(colored: &str, plain: &str) {
        assert!(
            colored.contains('\u{1b}'),
            "the colored rendering has no color"
        );
        assert_eq!(
            strip_sgr(colored),
            plain,
            "the colored rendering differs from the plain one by more than SGR colors"
        );
    }

    #[test]
    fn strip_sgr_removes_colors_and_keeps_any_other_escape() {
        assert_eq!(strip_sgr("\u{1b}[1m\u{1b}[31mA\u{1b}[0m b"), "A b");
        assert_eq!(strip_sgr("\u{1b}]0;t\u{7}"), "\u{1b}]0;t\u{7}");
        assert_eq!(strip_sgr("\u{1b}[2J"), "\u{1b}[2J");
    }
}
