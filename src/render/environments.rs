//! The frame of an `--all-envs` report: a section heading per environment (text or
//! Markdown) around that environment's own plan or report, a closing summary, and the JSON
//! document holding each environment's plan document with its `name`.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use serde_json::{Map, Value};

use super::printable;

/// How one environment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvironmentStatus {
    /// Planned (and applied, unless a dry run); `changes`: the plan had changes.
    Done {
        /// Whether the plan had changes.
        changes: bool,
    },
    /// Failed: invalid manifests, an unreachable registry, a blocked gate, a failed apply.
    Failed {
        /// One line: the error, or what stderr details.
        error: String,
    },
    /// Not run: an earlier environment failed (`reconcile --all-envs` stops there).
    NotRun,
}

impl EnvironmentStatus {
    /// `ok`, `failed` or `not_run` (the JSON `status`).
    pub fn as_str(&self) -> &'static str {
        match self {
            EnvironmentStatus::Done { .. } => "ok",
            EnvironmentStatus::Failed { .. } => "failed",
            EnvironmentStatus::NotRun => "not_run",
        }
    }
}

/// The text heading of an environment's section: `── Environment staging (registry, dir) ──`.
pub fn write_heading_text(
    out: &mut dyn Write,
    name: &str,
    location: &str,
    color: bool,
) -> io::Result<()> {
    let title = format!("Environment {} ({})", printable(name), printable(location));
    if color {
        let style = Style::new().bold();
        writeln!(out, "{}{title}{}", style.render(), style.render_reset())
    } else {
        writeln!(out, "{title}")
    }?;
    writeln!(out, "{}", "=".repeat(title.chars().count().min(100)))
}

/// The Markdown heading of an environment's section (the plan's own headings are `###`).
pub fn write_heading_markdown(out: &mut dyn Write, name: &str, location: &str) -> io::Result<()> {
    writeln!(
        out,
        "## Environment `{}`\n\n<sub>{}</sub>\n",
        printable(name).replace('`', "'"),
        printable(location).replace(['<', '>'], "")
    )
}

/// The body of a section that holds no plan (failed before planning, or not run).
pub fn write_status_text(out: &mut dyn Write, status: &EnvironmentStatus) -> io::Result<()> {
    match status {
        EnvironmentStatus::Done { .. } => Ok(()),
        EnvironmentStatus::Failed { error } => writeln!(out, "Failed: {}", printable(error)),
        EnvironmentStatus::NotRun => {
            writeln!(out, "Not run: an earlier environment failed.")
        }
    }
}

/// [`write_status_text`] in Markdown.
pub fn write_status_markdown(out: &mut dyn Write, status: &EnvironmentStatus) -> io::Result<()> {
    match status {
        EnvironmentStatus::Done { .. } => Ok(()),
        EnvironmentStatus::Failed { error } => writeln!(
            out,
            "**Failed:**\n\n```\n{}\n```\n",
            printable(error).replace("```", "'''")
        ),
        EnvironmentStatus::NotRun => writeln!(out, "_Not run: an earlier environment failed._\n"),
    }
}

/// The closing line: `Environments: staging: changes pending; prod: no changes`.
pub fn write_summary_text(
    out: &mut dyn Write,
    environments: &[(String, EnvironmentStatus)],
    dry_run: bool,
    color: bool,
) -> io::Result<()> {
    let paint = |style: Style, text: &str| {
        if color {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_owned()
        }
    };
    let parts: Vec<String> = environments
        .iter()
        .map(|(name, status)| {
            let word = match status {
                EnvironmentStatus::Done { changes: false } => "no changes".to_owned(),
                EnvironmentStatus::Done { changes: true } if dry_run => paint(
                    Style::new().fg_color(Some(AnsiColor::Yellow.into())),
                    "changes pending",
                ),
                EnvironmentStatus::Done { changes: true } => paint(
                    Style::new().fg_color(Some(AnsiColor::Green.into())),
                    "applied",
                ),
                EnvironmentStatus::Failed { .. } => {
                    paint(Style::new().fg_color(Some(AnsiColor::Red.into())), "failed")
                }
                EnvironmentStatus::NotRun => "not run".to_owned(),
            };
            format!("{}: {word}", printable(name))
        })
        .collect();
    writeln!(out, "Environments: {}", parts.join("; "))
}

/// The Markdown summary closing the comment: counts and one row per environment.
pub fn write_summary_markdown(
    out: &mut dyn Write,
    environments: &[(String, EnvironmentStatus)],
    dry_run: bool,
) -> io::Result<()> {
    let title = if dry_run { "plan" } else { "reconcile" };
    let failed = environments
        .iter()
        .filter(|(_, status)| matches!(status, EnvironmentStatus::Failed { .. }))
        .count();
    let changed = environments
        .iter()
        .filter(|(_, status)| matches!(status, EnvironmentStatus::Done { changes: true }))
        .count();
    writeln!(
        out,
        "## mlreg {title}: {} environments, {changed} with changes, {failed} failed\n",
        environments.len()
    )?;
    writeln!(out, "| Environment | Result |\n|---|---|")?;
    for (name, status) in environments {
        let result = match status {
            EnvironmentStatus::Done { changes: false } => "no changes",
            EnvironmentStatus::Done { changes: true } if dry_run => "changes pending",
            EnvironmentStatus::Done { changes: true } => "applied",
            EnvironmentStatus::Failed { .. } => "**failed**",
            EnvironmentStatus::NotRun => "not run",
        };
        writeln!(
            out,
            "| `{}` | {result} |",
            printable(name).replace(['`', '|'], "'")
        )?;
    }
    writeln!(out)
}

/// One environment's entry of the JSON document: its plan document (when it got that far)
/// with `name`, `status` and, when it failed, `error`.
pub fn json_entry(name: &str, status: &EnvironmentStatus, document: Option<Value>) -> Value {
    let mut entry = Map::new();
    entry.insert("name".into(), Value::String(name.to_owned()));
    entry.insert("status".into(), Value::String(status.as_str().to_owned()));
    if let EnvironmentStatus::Failed { error } = status {
        entry.insert("error".into(), Value::String(error.clone()));
    }
    if let Some(Value::Object(document)) = document {
        for (key, value) in document {
            entry.entry(key).or_insert(value);
        }
    }
    Value::Object(entry)
}

/// Writes the JSON document of an `--all-envs` run.
pub fn write_json(out: &mut dyn Write, dry_run: bool, entries: Vec<Value>) -> io::Result<()> {
    let document = serde_json::json!({
        "format_version": super::FORMAT_VERSION,
        "mlreg_version": env!("CARGO_PKG_VERSION"),
        "mode": if dry_run { "plan" } else { "apply" },
        "environments": entries,
    });
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_the_plan_document_and_name_the_environment() {
        let plan =
            serde_json::json!({"format_version": "1", "models": [], "summary": {"total": 0}});
        let entry = json_entry(
            "prod",
            &EnvironmentStatus::Done { changes: false },
            Some(plan),
        );
        assert_eq!(entry["name"], "prod");
        assert_eq!(entry["status"], "ok");
        assert_eq!(entry["summary"]["total"], 0);
        let failed = json_entry(
            "qa",
            &EnvironmentStatus::Failed {
                error: "cannot read".into(),
            },
            None,
        );
        assert_eq!(failed["status"], "failed");
        assert_eq!(failed["error"], "cannot read");
    }

    #[test]
    fn hostile_names_are_escaped() {
        let name = crate::render::hostile::text("env");
        let mut out = Vec::new();
        write_heading_text(&mut out, &name, "http://h", false).expect("write");
        write_summary_text(
            &mut out,
            &[(name.clone(), EnvironmentStatus::NotRun)],
            true,
            false,
        )
        .expect("write");
        crate::render::hostile::assert_escaped(&String::from_utf8_lossy(&out));
    }
}
