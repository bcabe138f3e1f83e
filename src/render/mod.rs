//! Rendering: plans, apply reports and tables as text, JSON or Markdown, always into an
//! `impl Write` (stdout in the binary, a `Vec<u8>` in tests). Nothing here decides whether
//! to color: callers pass that in (terminal detection and `NO_COLOR` live in `commands`).

pub mod diff;
pub mod plan;
pub mod table;

/// The `format_version` of every JSON document mlreg writes: plans and apply reports
/// (`--output json`), `versions`/`info --output json`, `resolve --output json` and the daemon's
/// `/status`. Bumped only when a field changes meaning or disappears; new fields may appear
/// at any time.
///
/// A string, not a number, as in Terraform's `terraform show -json` (which tools reading
/// plans already expect), so a later `"1.1"` never needs a float.
pub const FORMAT_VERSION: &str = "1";

/// `text` with its control characters escaped (`\u{1b}`), for text that comes from the
/// registry or a manifest: anyone who may create a model or tag a version could otherwise put
/// a terminal escape sequence into every plan or table printed to a terminal or a CI log.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_debug().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}
