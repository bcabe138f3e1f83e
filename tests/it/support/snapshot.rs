//! Snapshot helpers: one way to print a run of the binary, and the filters that make the
//! printed text the same on every machine.
//!
//! Snapshots live under `tests/it/snapshots/<group>/<name>.snap`, named after what they
//! show (a fixture directory, a rendering), without the module path. Review changed ones
//! with `cargo insta review`, or accept them all with `INSTA_UPDATE=always cargo test`.

use std::path::Path;

/// Insta settings for snapshots of group `group` (a folder under `tests/it/snapshots/`),
/// with the filters every snapshot of the binary's output needs:
///
/// - the repository root and the system's temporary directory become `[ROOT]` and `[TEMP]`
///   (a `tempfile` directory, with its random name, becomes `[TEMP]/[DIR]`);
/// - any `http://` or `https://` address becomes `[URL]`;
/// - the operating system's error number (`os error 111`) becomes `os error [N]`;
/// - the run-specific part of a [`super::unique`] name becomes `[ID]` (`core-[ID]`).
///
/// `description` is written in the snapshot's header: say how the output was produced.
pub fn settings(group: &str, description: &str) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(format!("snapshots/{group}"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_description(description);
    let root = env!("CARGO_MANIFEST_DIR");
    settings.add_filter(&regex_escape(root), "[ROOT]");
    let temp = std::env::temp_dir();
    let temp = temp.to_string_lossy();
    let temp = temp.trim_end_matches('/');
    if !temp.is_empty() {
        settings.add_filter(&format!(r"{}/\.tmp\w+", regex_escape(temp)), "[TEMP]/[DIR]");
        settings.add_filter(&regex_escape(temp), "[TEMP]");
    }
    settings.add_filter(r#"https?://[^\s)'"`>\]]+"#, "[URL]");
    settings.add_filter(r"os error \d+", "os error [N]");
    settings.add_filter(&format!(r"-{}-\d+\b", super::run_id()), "-[ID]");
    settings
}

/// A run of the binary as text: the exit code, then stdout and stderr when not empty.
pub fn transcript(output: &std::process::Output) -> String {
    let code = output
        .status
        .code()
        .map_or_else(|| "killed by a signal".to_owned(), |code| code.to_string());
    let mut text = format!("exit code: {code}\n");
    for (name, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        if !bytes.is_empty() {
            text.push_str(&format!(
                "----- {name} -----\n{}",
                String::from_utf8_lossy(bytes)
            ));
        }
    }
    text
}

/// The names of the directories directly under `dir`, sorted.
pub fn subdirectories(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()))
        .map(|entry| entry.unwrap_or_else(|error| panic!("{}: {error}", dir.display())))
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `text` with the characters a regular expression gives a meaning to escaped.
fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
