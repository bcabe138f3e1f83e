//! The one way out of the process: data on stdout, notes, warnings, errors and logs on
//! stderr, with color decided once and control characters escaped.
//!
//! Color is decided here, once, for stdout, stderr and the log subscriber alike: `--color`,
//! then `NO_COLOR`, then whether the stream is a terminal. Every line a command prints goes
//! through [`Output`], which escapes the control characters of text that comes from the
//! registry or a manifest (model names, server messages, paths): whoever may create a model
//! or tag a version could otherwise put a terminal escape sequence into a CI log. This is
//! the only module that writes to the process's streams (`clippy::print_stdout` and
//! `print_stderr` are denied everywhere, and it needs no `println!` either), so no command
//! can forget either decision.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, IsTerminal, Write};

use tracing_subscriber::EnvFilter;

use crate::cli::{ColorChoice, LogFormat};
use crate::settings::{GlobalSettings, LogSettings};

/// Where a command prints, and whether each stream is colored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    color_stdout: bool,
    color_stderr: bool,
    stderr_terminal: bool,
}

impl Output {
    /// Decides color for both streams from `--color`, `NO_COLOR` and the terminals.
    pub fn new(settings: &GlobalSettings) -> Self {
        let color_for = |is_terminal: bool| match settings.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && !settings.no_color,
        };
        let stderr_terminal = io::stderr().is_terminal();
        Output {
            color_stdout: color_for(io::stdout().is_terminal()),
            color_stderr: color_for(stderr_terminal),
            stderr_terminal,
        }
    }

    /// Without color on either stream (before settings exist, and in tests).
    pub fn plain() -> Self {
        Output {
            color_stdout: false,
            color_stderr: false,
            stderr_terminal: false,
        }
    }

    /// Whether stdout is colored.
    pub fn color_stdout(&self) -> bool {
        self.color_stdout
    }

    /// Whether stderr is colored.
    pub fn color_stderr(&self) -> bool {
        self.color_stderr
    }

    /// Whether stderr is a terminal (whatever the color choice): a person is watching, so
    /// a command may say more than a log needs (`resolve` says which target answered).
    pub fn stderr_is_terminal(&self) -> bool {
        self.stderr_terminal
    }

    /// Stdout, for renderers that write a whole document into an `impl Write`.
    pub fn stdout(&self) -> io::StdoutLock<'static> {
        io::stdout().lock()
    }

    /// Stderr, for renderers of diagnostics.
    pub fn stderr(&self) -> io::StderrLock<'static> {
        io::stderr().lock()
    }

    /// One line of data on stdout, control characters escaped. A write error (a closed
    /// pipe) is returned so the command can end quietly.
    pub fn line(&self, text: impl fmt::Display) -> io::Result<()> {
        let text = text.to_string();
        let mut stdout = self.stdout();
        writeln!(stdout, "{}", printable(&text))?;
        stdout.flush()
    }

    /// One line for people on stderr (a note, a warning, an error), control characters
    /// escaped. Nothing can be done when stderr itself is gone, so that is ignored.
    pub fn message(&self, text: impl fmt::Display) {
        let text = text.to_string();
        let mut stderr = self.stderr();
        let _ = writeln!(stderr, "{}", printable(&text));
    }

    /// Installs the tracing subscriber on stderr, colored as stderr is. A second
    /// installation (tests) keeps the first subscriber.
    pub fn install_logging(&self, settings: &LogSettings) {
        let filter = settings
            .rust_log
            .as_deref()
            .and_then(|directives| EnvFilter::try_new(directives).ok())
            .unwrap_or_else(|| EnvFilter::new(&settings.default_filter));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(io::stderr)
            .with_target(false);
        let result = match settings.format {
            LogFormat::Text => builder.with_ansi(self.color_stderr).try_init(),
            LogFormat::Json => builder.json().try_init(),
        };
        drop(result);
    }
}

/// `text` with its control characters escaped (`\u{1b}`), for text that comes from the
/// registry or a manifest: anyone who may create a model or tag a version could otherwise put
/// a terminal escape sequence into every plan or table printed to a terminal or a CI log.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_once() {
        assert_eq!(printable("plain"), "plain");
        assert_eq!(printable("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(printable("two\nlines"), "two\\nlines");
        // Escaping escaped text changes nothing: a server excerpt may already be escaped.
        assert_eq!(printable(&printable("a\u{1b}b")), printable("a\u{1b}b"));
    }

    #[test]
    fn color_follows_the_choice_then_no_color() {
        let settings = |color: ColorChoice, no_color: bool| GlobalSettings {
            color,
            no_color,
            log: LogSettings {
                rust_log: None,
                default_filter: "warn".into(),
                format: LogFormat::Text,
            },
        };
        let always = Output::new(&settings(ColorChoice::Always, true));
        assert!(always.color_stdout() && always.color_stderr());
        let never = Output::new(&settings(ColorChoice::Never, false));
        assert!(!never.color_stdout() && !never.color_stderr());
        // Tests run without a terminal: auto is off.
        assert_eq!(
            Output::new(&settings(ColorChoice::Auto, false)),
            Output::plain()
        );
    }
}
