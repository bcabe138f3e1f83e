//! Plans and apply reports as Terraform-like text, versioned JSON, or Markdown for a
//! pull-request comment.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use super::printable;
use crate::apply::{ApplyReport, Convergence, OutcomeStatus};
use crate::gate::{GateReport, Verdict};
use crate::plan::{Action, Change, ModelPlan, Plan, Summary};

/// Figures about the run, for the JSON document and benchmarks.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Stats {
    /// HTTP requests sent to the registry (retries included).
    pub requests: u64,
    /// Wall time of the run in milliseconds.
    pub elapsed_ms: u64,
}

/// The symbol, color and one-line description of a change.
///
/// Every text from a manifest or the registry goes through [`printable`] (names, keys) or
/// [`quote`] (values, which `Debug` escapes), so the description carries no control
/// character whichever renderer prints it.
fn describe(action: &Action) -> (char, AnsiColor, String) {
    match action {
        Action::CreateModel { description, tags } => (
            '+',
            AnsiColor::Green,
            format!(
                "create model{}{}",
                if description.is_some() {
                    " with description"
                } else {
                    ""
                },
                if tags.is_empty() {
                    String::new()
                } else {
                    format!(
                        " and tags {}",
                        tags.iter()
                            .map(|(k, v)| format!("{}={v:?}", printable(k)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ),
        ),
        Action::SetDescription { from, to } => (
            '~',
            AnsiColor::Yellow,
            format!("description: {} → {}", quote(from), quote(to)),
        ),
        Action::SetModelTag { key, from, to } => (
            '~',
            AnsiColor::Yellow,
            format!(
                "tag {}: {} → {}",
                printable(key),
                from.as_deref().map_or("(unset)".into(), quote),
                quote(to)
            ),
        ),
        Action::SetVersionTag {
            version,
            key,
            from,
            to,
        } => (
            '~',
            AnsiColor::Yellow,
            format!(
                "version {version} tag {}: {} → {}",
                printable(key),
                from.as_deref().map_or("(unset)".into(), quote),
                quote(to)
            ),
        ),
        Action::Transition { version, from, to } => {
            let (symbol, color) = if to.is_declarable() {
                ('↑', AnsiColor::Green)
            } else {
                ('-', AnsiColor::Red)
            };
            (symbol, color, format!("version {version}: {from} → {to}"))
        }
        Action::SetAlias { alias, from, to } => (
            '~',
            AnsiColor::Yellow,
            match from {
                Some(from) => format!("alias {}: {from} → {to}", printable(alias)),
                None => format!("alias {}: (none) → {to}", printable(alias)),
            },
        ),
        Action::DeleteAlias { alias, version } => (
            '-',
            AnsiColor::Red,
            format!("alias {}: {version} → (removed)", printable(alias)),
        ),
        Action::Register {
            selector,
            stage,
            aliases,
            ..
        } => {
            let targets: Vec<String> = stage
                .map(|stage| stage.to_string())
                .into_iter()
                .chain(aliases.iter().map(|alias| format!("@{}", printable(alias))))
                .collect();
            (
                '+',
                AnsiColor::Green,
                format!(
                    "register from {} → {}",
                    printable(&selector.short()),
                    targets.join(", ")
                ),
            )
        }
    }
}

/// One change as a single line: `↑ version 4: Staging → Production (declared)`.
pub fn change_line(change: &Change) -> String {
    let (symbol, _, text) = describe(&change.action);
    format!("{symbol} {text} ({})", change.reason)
}

/// `text` in double quotes, cut after 60 characters; `Debug` escapes its control characters.
fn quote(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut:?}…")
    } else {
        format!("{text:?}")
    }
}

struct Painter {
    color: bool,
}

impl Painter {
    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_owned()
        }
    }
}

/// The summary sentence: `Plan: 2 to promote, 5 to archive, 1 alias to move, 0 to create.`
pub fn summary_line(prefix: &str, summary: &Summary) -> String {
    let mut line = format!(
        "{prefix}: {} to promote, {} to archive, {} alias{} to move, {} to create",
        summary.promote,
        summary.archive,
        summary.alias_move,
        if summary.alias_move == 1 { "" } else { "es" },
        summary.create
    );
    if summary.alias_remove > 0 {
        line.push_str(&format!(
            ", {} alias{} to remove",
            summary.alias_remove,
            if summary.alias_remove == 1 { "" } else { "es" }
        ));
    }
    if summary.update > 0 {
        line.push_str(&format!(", {} to update", summary.update));
    }
    if summary.register > 0 {
        line.push_str(&format!(", {} to register", summary.register));
    }
    line.push('.');
    line
}

fn write_changes(
    out: &mut dyn Write,
    painter: &Painter,
    changes: &[Change],
    statuses: Option<&[OutcomeStatus]>,
    gates: &[GateReport],
) -> io::Result<()> {
    let lines: Vec<(char, AnsiColor, String)> =
        changes.iter().map(|c| describe(&c.action)).collect();
    let width = lines
        .iter()
        .map(|(_, _, text)| text.chars().count())
        .max()
        .unwrap_or(0);
    for (index, ((symbol, color, text), change)) in lines.iter().zip(changes).enumerate() {
        let pad = " ".repeat(width - text.chars().count());
        let style = Style::new().fg_color(Some((*color).into()));
        let reason = painter.paint(Style::new().dimmed(), &format!("# {}", change.reason));
        let status = match statuses.and_then(|s| s.get(index)) {
            None => String::new(),
            Some(OutcomeStatus::Applied) => {
                format!(
                    "  {}",
                    painter.paint(Style::new().fg_color(Some(AnsiColor::Green.into())), "done")
                )
            }
            Some(OutcomeStatus::Skipped) => {
                format!("  {}", painter.paint(Style::new().dimmed(), "skipped"))
            }
            Some(OutcomeStatus::Failed { error }) => format!(
                "  {}",
                painter.paint(
                    Style::new().bold().fg_color(Some(AnsiColor::Red.into())),
                    &format!("FAILED: {}", printable(error))
                )
            ),
        };
        writeln!(
            out,
            "    {} {text}{pad}   {reason}{status}",
            painter.paint(style, &symbol.to_string()),
        )?;
        if let Some(gate) = gates.iter().find(|gate| gate.change == index) {
            write_gate_text(out, painter, gate)?;
        }
    }
    Ok(())
}

/// The gate of one change, under it: a heading with the outcome, then every check.
fn write_gate_text(out: &mut dyn Write, painter: &Painter, gate: &GateReport) -> io::Result<()> {
    let (outcome, style) = if gate.passed() {
        (
            "passes",
            Style::new().fg_color(Some(AnsiColor::Green.into())),
        )
    } else {
        (
            "BLOCKS",
            Style::new().bold().fg_color(Some(AnsiColor::Red.into())),
        )
    };
    writeln!(
        out,
        "        gate {} for {}: {}",
        printable(&gate.target.to_string()),
        gate.entering(),
        painter.paint(style, outcome)
    )?;
    let width = gate
        .checks
        .iter()
        .map(|check| printable(&check.check).chars().count())
        .max()
        .unwrap_or(0);
    for check in &gate.checks {
        let name = printable(&check.check);
        let pad = " ".repeat(width - name.chars().count());
        let verdict_style = match check.verdict {
            Verdict::Pass => Style::new().fg_color(Some(AnsiColor::Green.into())),
            Verdict::Fail | Verdict::Unverifiable => {
                Style::new().bold().fg_color(Some(AnsiColor::Red.into()))
            }
        };
        writeln!(
            out,
            "          {} {name}{pad}  expected {}, observed {}",
            painter.paint(verdict_style, &format!("{:<12}", check.verdict.as_str())),
            printable(&check.expected),
            printable(&check.observed)
        )?;
    }
    Ok(())
}

/// The sentence that says which models gates block, or `None` when none is.
pub fn blocked_line(plan: &Plan) -> Option<String> {
    let blocked = plan.blocked_models();
    (!blocked.is_empty()).then(|| {
        format!(
            "Blocked by promotion gates: {}. Nothing will be applied until every gate passes.",
            blocked
                .iter()
                .map(|model| printable(model))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// Writes the plan as Terraform-like text.
pub fn write_text(out: &mut dyn Write, plan: &Plan, color: bool) -> io::Result<()> {
    let painter = Painter { color };
    let bold = Style::new().bold();
    for model in &plan.models {
        if model.is_in_sync() {
            writeln!(
                out,
                "  {} {}",
                painter.paint(bold, &printable(&model.model)),
                painter.paint(Style::new().dimmed(), "in sync")
            )?;
            continue;
        }
        writeln!(
            out,
            "  {} {}",
            painter.paint(bold, &printable(&model.model)),
            painter.paint(
                Style::new().dimmed(),
                &format!("({})", printable(&model.manifest.display().to_string()))
            )
        )?;
        write_changes(out, &painter, &model.changes, None, &model.gates)?;
    }
    if !plan.unmanaged.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "Unmanaged models (no manifest; never changed): {}",
            plan.unmanaged
                .iter()
                .map(|name| printable(name))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    writeln!(out)?;
    if plan.is_empty() {
        writeln!(
            out,
            "{}",
            painter.paint(
                Style::new().bold().fg_color(Some(AnsiColor::Green.into())),
                "No changes. The registry matches the manifests."
            )
        )?;
    } else {
        writeln!(
            out,
            "{}",
            painter.paint(bold, &summary_line("Plan", &plan.summary()))
        )?;
        if let Some(line) = blocked_line(plan) {
            writeln!(
                out,
                "{}",
                painter.paint(
                    Style::new().bold().fg_color(Some(AnsiColor::Red.into())),
                    &line
                )
            )?;
        }
    }
    Ok(())
}

/// Writes the result of an apply as text.
pub fn write_report_text(out: &mut dyn Write, report: &ApplyReport, color: bool) -> io::Result<()> {
    let painter = Painter { color };
    let bold = Style::new().bold();
    let red = Style::new().bold().fg_color(Some(AnsiColor::Red.into()));
    for model in &report.models {
        let status = match model.status {
            Convergence::InSync => "in sync",
            Convergence::Converged => "converged",
            Convergence::Failed => "FAILED",
            Convergence::Interrupted => "interrupted",
        };
        let status_style = if model.status == Convergence::Failed {
            red
        } else {
            Style::new().dimmed()
        };
        writeln!(
            out,
            "  {} {}{}",
            painter.paint(bold, &printable(&model.model)),
            painter.paint(status_style, status),
            if model.replanned {
                painter.paint(
                    Style::new().dimmed(),
                    " (re-planned: the registry changed after planning)",
                )
            } else {
                String::new()
            }
        )?;
        let changes: Vec<Change> = model.outcomes.iter().map(|o| o.change.clone()).collect();
        let statuses: Vec<OutcomeStatus> =
            model.outcomes.iter().map(|o| o.result.clone()).collect();
        write_changes(out, &painter, &changes, Some(&statuses), &[])?;
        for outcome in &model.outcomes {
            if let Some(error) = &outcome.annotation_error {
                writeln!(
                    out,
                    "    warning: audit tag not written: {}",
                    printable(error)
                )?;
            }
        }
        if let Some(error) = &model.error {
            writeln!(
                out,
                "    {}",
                painter.paint(red, &format!("error: {}", printable(error)))
            )?;
        }
        if !model.remaining.is_empty() {
            writeln!(out, "    still different from the manifest:")?;
            write_changes(out, &painter, &model.remaining, None, &[])?;
        }
        for diagnostic in &model.diagnostics {
            writeln!(out, "    {}", printable(&diagnostic.to_string()))?;
        }
    }
    let (applied, failed, skipped) = report.counts();
    writeln!(out)?;
    let line = format!("{applied} applied, {failed} failed, {skipped} skipped.");
    if report.interrupted {
        writeln!(
            out,
            "{}",
            painter.paint(red, &format!("Apply interrupted: {line}"))
        )?;
    } else if report.is_success() {
        writeln!(
            out,
            "{}",
            painter.paint(
                Style::new().bold().fg_color(Some(AnsiColor::Green.into())),
                &format!("Apply complete: {line}")
            )
        )?;
    } else {
        writeln!(
            out,
            "{}",
            painter.paint(red, &format!("Apply failed: {line}"))
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct JsonDocument<'a> {
    format_version: &'static str,
    mlreg_version: &'static str,
    mode: &'static str,
    /// Whether a promotion gate blocks the plan (then nothing is applied).
    blocked: bool,
    summary: JsonSummary,
    models: Vec<JsonModel<'a>>,
    unmanaged: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<JsonResult>,
    stats: Stats,
}

#[derive(Serialize)]
struct JsonSummary {
    #[serde(flatten)]
    counts: Summary,
    total: usize,
}

#[derive(Serialize)]
struct JsonResult {
    success: bool,
    interrupted: bool,
    applied: usize,
    failed: usize,
    skipped: usize,
}

#[derive(Serialize)]
struct JsonModel<'a> {
    name: &'a str,
    manifest: String,
    in_sync: bool,
    blocked: bool,
    changes: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Convergence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replanned: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining: Option<&'a [Change]>,
}

/// Writes the plan, and the apply report when there is one, as one JSON document.
pub fn write_json(
    out: &mut dyn Write,
    plan: &Plan,
    report: Option<&ApplyReport>,
    stats: Stats,
) -> io::Result<()> {
    let to_value =
        |value: serde_json::Result<serde_json::Value>| value.unwrap_or(serde_json::Value::Null);
    let models = plan
        .models
        .iter()
        .map(|model| {
            let applied = report.and_then(|r| r.models.iter().find(|m| m.model == model.model));
            JsonModel {
                name: &model.model,
                manifest: model.manifest.display().to_string(),
                in_sync: model.is_in_sync(),
                blocked: model.is_blocked(),
                changes: with_gates(
                    match applied {
                        Some(applied) => to_value(serde_json::to_value(&applied.outcomes)),
                        None => to_value(serde_json::to_value(&model.changes)),
                    },
                    model,
                    applied.is_some_and(|m| m.replanned),
                ),
                status: report.map(|_| applied.map_or(Convergence::InSync, |m| m.status)),
                replanned: applied.map(|m| m.replanned),
                error: applied.and_then(|m| m.error.as_deref()),
                remaining: applied
                    .filter(|m| !m.remaining.is_empty())
                    .map(|m| m.remaining.as_slice()),
            }
        })
        .collect();
    let summary = plan.summary();
    let document = JsonDocument {
        format_version: super::FORMAT_VERSION,
        mlreg_version: env!("CARGO_PKG_VERSION"),
        mode: if report.is_some() { "apply" } else { "plan" },
        blocked: plan.is_blocked(),
        summary: JsonSummary {
            total: summary.total(),
            counts: summary,
        },
        models,
        unmanaged: &plan.unmanaged,
        result: report.map(|report| {
            let (applied, failed, skipped) = report.counts();
            JsonResult {
                success: report.is_success(),
                interrupted: report.interrupted,
                applied,
                failed,
                skipped,
            }
        }),
        stats,
    };
    serde_json::to_writer_pretty(&mut *out, &document).map_err(io::Error::other)?;
    writeln!(out)
}

/// `changes` (a JSON array, in plan order) with the gate of each change that enters a gated
/// target: `gate` (target, version, passed; `targets` lists every gated target the change
/// enters, since a registration may enter a stage and aliases at once, and `passed` is
/// theirs together) and `gates` (every check, each naming its `target`). Left as is when
/// the apply re-planned, as its changes are then no longer the plan's.
fn with_gates(changes: serde_json::Value, model: &ModelPlan, replanned: bool) -> serde_json::Value {
    use serde_json::Value;
    let Value::Array(mut items) = changes else {
        return changes;
    };
    if !replanned {
        for gate in &model.gates {
            let Some(Value::Object(item)) = items.get_mut(gate.change) else {
                continue;
            };
            let target = serde_json::to_value(&gate.target).unwrap_or(Value::Null);
            let checks = serde_json::to_value(&gate.checks).unwrap_or(Value::Null);
            let checks = match checks {
                Value::Array(checks) => checks
                    .into_iter()
                    .map(|mut check| {
                        if let Value::Object(fields) = &mut check {
                            fields.insert("target".into(), target.clone());
                        }
                        check
                    })
                    .collect(),
                _ => Vec::new(),
            };
            match item.get_mut("gate") {
                Some(Value::Object(summary)) => {
                    let passed = summary.get("passed").and_then(Value::as_bool) == Some(true);
                    summary.insert("passed".into(), Value::Bool(passed && gate.passed()));
                    if let Some(Value::Array(targets)) = summary.get_mut("targets") {
                        targets.push(target);
                    }
                    if let Some(Value::Array(all)) = item.get_mut("gates") {
                        all.extend(checks);
                    }
                }
                _ => {
                    item.insert(
                        "gate".into(),
                        serde_json::json!({
                            "target": target,
                            "targets": [target],
                            "version": (!crate::select::is_placeholder(gate.version)).then_some(gate.version),
                            "passed": gate.passed(),
                        }),
                    );
                    item.insert("gates".into(), Value::Array(checks));
                }
            }
        }
    }
    serde_json::Value::Array(items)
}

/// A Markdown table cell or code span: control characters escaped, `|` too (it would end
/// the cell).
fn escape_cell(text: &str) -> String {
    printable(text).replace('|', "\\|")
}

/// The gate table of one model: one row per check of every gated change, passing checks
/// included, so a pull request shows why it can or cannot merge.
fn write_gate_table(out: &mut dyn Write, model: &ModelPlan) -> io::Result<()> {
    writeln!(
        out,
        "#### Gates of `{}`: {}",
        escape_cell(&model.model),
        if model.is_blocked() {
            "**blocked**"
        } else {
            "pass"
        }
    )?;
    writeln!(out)?;
    writeln!(out, "| Change | Check | Expected | Observed | Verdict |")?;
    writeln!(out, "|---|---|---|---|---|")?;
    for gate in &model.gates {
        let change = format!("{} → {}", gate.entering(), gate.target);
        for check in &gate.checks {
            let verdict = match check.verdict {
                Verdict::Pass => "✅ pass",
                Verdict::Fail => "❌ **fail**",
                Verdict::Unverifiable => "❌ **unverifiable**",
            };
            writeln!(
                out,
                "| {} | {} | `{}` | `{}` | {verdict} |",
                escape_cell(&change),
                escape_cell(&check.check),
                escape_code(&check.expected),
                escape_code(&check.observed),
            )?;
        }
    }
    writeln!(out)
}

/// Text inside a code span of a table cell: escaped as a cell, and a backtick (which would
/// end the span) replaced by a quote.
fn escape_code(text: &str) -> String {
    escape_cell(text).replace('`', "'")
}

/// Writes the plan (and the apply report, if any) as Markdown for a pull-request comment:
/// a summary table per model, the details collapsible.
pub fn write_markdown(
    out: &mut dyn Write,
    plan: &Plan,
    report: Option<&ApplyReport>,
) -> io::Result<()> {
    let summary = plan.summary();
    let title = if report.is_some() {
        "reconcile"
    } else {
        "plan"
    };
    if plan.is_empty() {
        writeln!(out, "### mlreg {title}: no changes")?;
        writeln!(out)?;
        writeln!(out, "The registry matches the manifests.")?;
    } else {
        writeln!(
            out,
            "### {}",
            summary_line(&format!("mlreg {title}"), &summary)
        )?;
        writeln!(out)?;
        writeln!(out, "| Model | Changes | Summary |")?;
        writeln!(out, "|---|---:|---|")?;
        for model in &plan.models {
            let model_summary = Summary::of(&model.changes);
            let text = if model.is_in_sync() {
                "in sync".to_owned()
            } else {
                summary_line("", &model_summary)
                    .trim_start_matches(": ")
                    .trim_end_matches('.')
                    .to_owned()
            };
            writeln!(
                out,
                "| `{}` | {} | {} |",
                escape_cell(&model.model),
                model.changes.len(),
                text
            )?;
        }
        writeln!(out)?;
        if let Some(line) = blocked_line(plan) {
            writeln!(out, "**{}**", escape_cell(&line))?;
            writeln!(out)?;
        }
        for model in plan.models.iter().filter(|m| !m.gates.is_empty()) {
            write_gate_table(out, model)?;
        }
        writeln!(out, "<details><summary>Details</summary>")?;
        writeln!(out)?;
        for model in plan.models.iter().filter(|m| !m.is_in_sync()) {
            writeln!(
                out,
                "#### `{}` — `{}`",
                escape_cell(&model.model),
                escape_cell(&model.manifest.display().to_string())
            )?;
            writeln!(out)?;
            let applied = report.and_then(|r| r.models.iter().find(|m| m.model == model.model));
            if applied.is_some() {
                writeln!(out, "| | Change | Reason | Result |")?;
                writeln!(out, "|---|---|---|---|")?;
            } else {
                writeln!(out, "| | Change | Reason |")?;
                writeln!(out, "|---|---|---|")?;
            }
            match applied {
                Some(applied) => {
                    for outcome in &applied.outcomes {
                        let (symbol, _, text) = describe(&outcome.change.action);
                        let result = match &outcome.result {
                            OutcomeStatus::Applied => "done".to_owned(),
                            OutcomeStatus::Skipped => "skipped".to_owned(),
                            OutcomeStatus::Failed { error } => {
                                format!("**failed**: {}", escape_cell(error))
                            }
                        };
                        writeln!(
                            out,
                            "| {symbol} | {} | {} | {result} |",
                            escape_cell(&text),
                            outcome.change.reason
                        )?;
                    }
                }
                None => {
                    for change in &model.changes {
                        let (symbol, _, text) = describe(&change.action);
                        writeln!(
                            out,
                            "| {symbol} | {} | {} |",
                            escape_cell(&text),
                            change.reason
                        )?;
                    }
                }
            }
            writeln!(out)?;
        }
        writeln!(out, "</details>")?;
    }
    if !plan.unmanaged.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "Unmanaged models (no manifest; never changed): {}",
            plan.unmanaged
                .iter()
                .map(|m| format!("`{}`", escape_cell(m)))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    if let Some(report) = report {
        let (applied, failed, skipped) = report.counts();
        writeln!(out)?;
        writeln!(
            out,
            "**{}**: {applied} applied, {failed} failed, {skipped} skipped.",
            if report.is_success() {
                "Apply complete"
            } else {
                "Apply failed"
            }
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::plan::{ModelPlan, Reason};
    use crate::stage::Stage;

    fn sample() -> Plan {
        Plan {
            models: vec![
                ModelPlan {
                    gates: Vec::new(),
                    model: "bert".into(),
                    manifest: PathBuf::from("desired-state/bert.yaml"),
                    changes: vec![
                        Change {
                            action: Action::Transition {
                                version: 4,
                                from: Stage::Staging,
                                to: Stage::Production,
                            },
                            reason: Reason::Declared,
                        },
                        Change {
                            action: Action::SetAlias {
                                alias: "champion".into(),
                                from: Some(3),
                                to: 4,
                            },
                            reason: Reason::AliasMoved,
                        },
                        Change {
                            action: Action::Transition {
                                version: 3,
                                from: Stage::Production,
                                to: Stage::Archived,
                            },
                            reason: Reason::NotDeclaredInStage,
                        },
                    ],
                    basis: None,
                },
                ModelPlan {
                    gates: Vec::new(),
                    model: "churn".into(),
                    manifest: PathBuf::from("desired-state/churn.yaml"),
                    changes: vec![],
                    basis: None,
                },
            ],
            unmanaged: vec!["legacy".into()],
        }
    }

    #[test]
    fn text_is_grouped_by_model_with_reasons_and_a_summary() {
        let mut out = Vec::new();
        write_text(&mut out, &sample(), false).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            text,
            "  bert (desired-state/bert.yaml)\n\
             \x20   ↑ version 4: Staging → Production    # declared\n\
             \x20   ~ alias champion: 3 → 4              # alias moved\n\
             \x20   - version 3: Production → Archived   # not declared in stage\n\
             \x20 churn in sync\n\
             \n\
             Unmanaged models (no manifest; never changed): legacy\n\
             \n\
             Plan: 1 to promote, 1 to archive, 1 alias to move, 0 to create.\n"
        );
    }

    #[test]
    fn unmanaged_names_from_the_registry_are_printed_without_control_characters() {
        let plan = Plan {
            unmanaged: vec!["evil\u{1b}[2Jname".into(), "it's".into()],
            ..Plan::default()
        };
        let mut out = Vec::new();
        write_text(&mut out, &plan, false).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(
            text.contains("never changed): evil\\u{1b}[2Jname, it's\n"),
            "{text}"
        );
    }

    #[test]
    fn empty_plan_says_no_changes_and_color_is_optional() {
        let plan = Plan::default();
        let mut plain = Vec::new();
        write_text(&mut plain, &plan, false).expect("write");
        assert!(String::from_utf8_lossy(&plain).contains("No changes."));
        assert!(!plain.contains(&0x1b));
        let mut colored = Vec::new();
        write_text(&mut colored, &sample(), true).expect("write");
        assert!(colored.contains(&0x1b));
    }

    #[test]
    fn json_is_versioned_and_lists_every_change() {
        let mut out = Vec::new();
        write_json(&mut out, &sample(), None, Stats::default()).expect("write");
        let value: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(value["format_version"], "1");
        assert_eq!(value["mode"], "plan");
        assert_eq!(value["summary"]["total"], 3);
        assert_eq!(value["models"][0]["changes"][0]["kind"], "transition");
        assert_eq!(value["models"][0]["changes"][0]["to"], "Production");
        assert_eq!(value["models"][0]["changes"][0]["reason"], "declared");
        assert_eq!(value["models"][1]["in_sync"], true);
        assert_eq!(value["unmanaged"][0], "legacy");
    }

    #[test]
    fn json_shows_every_gated_target_a_change_enters() {
        use crate::gate::GateCheck;
        use crate::target::Target;
        let check = |name: &str, verdict| GateCheck {
            check: name.into(),
            expected: ">= 0.9".into(),
            observed: "0.93".into(),
            verdict,
        };
        let mut plan = sample();
        // One change entering Production and @champion (as a registration placed in a stage
        // and an alias at once does): the second gate fails.
        plan.models[0].gates = vec![
            GateReport {
                change: 0,
                target: Target::Stage(Stage::Production),
                version: 4,
                checks: vec![check("metric auc", Verdict::Pass)],
            },
            GateReport {
                change: 0,
                target: Target::Alias("champion".into()),
                version: 4,
                checks: vec![check("tag validated", Verdict::Fail)],
            },
        ];
        let mut out = Vec::new();
        write_json(&mut out, &plan, None, Stats::default()).expect("write");
        let value: serde_json::Value = serde_json::from_slice(&out).expect("json");
        let change = &value["models"][0]["changes"][0];
        assert_eq!(change["gate"]["target"], "Production", "{change:#}");
        assert_eq!(
            change["gate"]["targets"],
            serde_json::json!(["Production", "@champion"]),
            "{change:#}"
        );
        assert_eq!(change["gate"]["passed"], false, "{change:#}");
        let checks: Vec<(&str, &str)> = change["gates"]
            .as_array()
            .expect("gates")
            .iter()
            .map(|check| {
                (
                    check["target"].as_str().unwrap_or_default(),
                    check["check"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            checks,
            [("Production", "metric auc"), ("@champion", "tag validated")]
        );
    }

    #[test]
    fn markdown_has_a_table_and_collapsible_details() {
        let mut out = Vec::new();
        write_markdown(&mut out, &sample(), None).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.starts_with(
            "### mlreg plan: 1 to promote, 1 to archive, 1 alias to move, 0 to create.\n"
        ));
        assert!(
            text.contains(
                "| `bert` | 3 | 1 to promote, 1 to archive, 1 alias to move, 0 to create |"
            )
        );
        assert!(text.contains("| `churn` | 0 | in sync |"));
        assert!(text.contains("<details><summary>Details</summary>"));
        assert!(text.contains("| ↑ | version 4: Staging → Production | declared |"));
    }

    /// A plan and an apply report with a hostile text in every field that comes from a
    /// manifest or the registry.
    fn hostile_plan_and_report() -> (Plan, ApplyReport) {
        use crate::apply::{ModelReport, Outcome};
        use crate::diagnostic::Diagnostic;
        use crate::render::hostile::text;

        let name = text("model");
        let manifest = PathBuf::from(text("desired-state/m"));
        let changes = vec![
            Change {
                action: Action::CreateModel {
                    description: Some(text("description")),
                    tags: [(text("key"), text("value"))].into_iter().collect(),
                },
                reason: Reason::CreateModel,
            },
            Change {
                action: Action::SetDescription {
                    from: text("old description"),
                    to: text("new description"),
                },
                reason: Reason::Description,
            },
            Change {
                action: Action::SetModelTag {
                    key: text("model tag key"),
                    from: Some(text("old value")),
                    to: text("new value"),
                },
                reason: Reason::Tag,
            },
            Change {
                action: Action::SetVersionTag {
                    version: 2,
                    key: text("version tag key"),
                    from: None,
                    to: text("value"),
                },
                reason: Reason::Tag,
            },
            Change {
                action: Action::Transition {
                    version: 2,
                    from: Stage::Staging,
                    to: Stage::Production,
                },
                reason: Reason::Declared,
            },
            Change {
                action: Action::SetAlias {
                    alias: text("champion"),
                    from: Some(1),
                    to: 2,
                },
                reason: Reason::AliasMoved,
            },
            Change {
                action: Action::DeleteAlias {
                    alias: text("stale"),
                    version: 1,
                },
                reason: Reason::AliasRemoved,
            },
        ];
        let plan = Plan {
            models: vec![
                ModelPlan {
                    gates: Vec::new(),
                    model: name.clone(),
                    manifest: manifest.clone(),
                    changes: changes.clone(),
                    basis: None,
                },
                ModelPlan {
                    gates: Vec::new(),
                    model: text("in sync model"),
                    manifest: PathBuf::from(text("desired-state/n")),
                    changes: Vec::new(),
                    basis: None,
                },
            ],
            unmanaged: vec![text("unmanaged")],
        };
        let outcomes = changes
            .iter()
            .enumerate()
            .map(|(index, change)| Outcome {
                change: change.clone(),
                result: match index {
                    0 => OutcomeStatus::Applied,
                    1 => OutcomeStatus::Failed {
                        error: text("server said"),
                    },
                    _ => OutcomeStatus::Skipped,
                },
                annotation_error: Some(text("audit tag error")),
                registered: None,
            })
            .collect();
        let report = ApplyReport {
            models: vec![ModelReport {
                model: name,
                manifest,
                status: Convergence::Failed,
                replanned: true,
                outcomes,
                error: Some(text("read error")),
                remaining: changes,
                diagnostics: vec![Diagnostic::global(text("diagnostic"))],
            }],
            interrupted: false,
        };
        (plan, report)
    }

    #[test]
    fn every_text_from_a_manifest_or_the_registry_is_escaped() {
        use crate::render::hostile::{assert_escaped, assert_only_own_colors};

        let (plan, report) = hostile_plan_and_report();
        let render = |write: &dyn Fn(&mut Vec<u8>) -> io::Result<()>| {
            let mut out = Vec::new();
            write(&mut out).expect("write");
            String::from_utf8(out).expect("utf-8")
        };

        let plain = render(&|out| write_text(out, &plan, false));
        assert_escaped(&plain);
        // Each field got there: names, keys, aliases, paths.
        for field in [
            "model",
            "desired-state/m",
            "key",
            "model tag key",
            "version tag key",
            "champion",
            "stale",
            "in sync model",
            "unmanaged",
        ] {
            assert!(
                plain.contains(&format!("{field}\\u{{1b}}[31m")),
                "`{field}` missing or unescaped in:\n{plain}"
            );
        }
        let colored = render(&|out| write_text(out, &plan, true));
        assert_only_own_colors(&colored, &plain);

        let plain = render(&|out| write_report_text(out, &report, false));
        assert_escaped(&plain);
        for field in ["server said", "audit tag error", "read error", "diagnostic"] {
            assert!(
                plain.contains(&format!("{field}\\u{{1b}}[31m")),
                "`{field}` missing or unescaped in:\n{plain}"
            );
        }
        let colored = render(&|out| write_report_text(out, &report, true));
        assert_only_own_colors(&colored, &plain);

        for markdown in [
            render(&|out| write_markdown(out, &plan, None)),
            render(&|out| write_markdown(out, &plan, Some(&report))),
        ] {
            assert_escaped(&markdown);
            assert!(
                markdown.contains("desired-state/m\\u{1b}[31m"),
                "{markdown}"
            );
        }
        let markdown = render(&|out| write_markdown(out, &plan, Some(&report)));
        assert!(markdown.contains("server said\\u{1b}[31m"), "{markdown}");

        // The single-line form `info` shows as drift.
        for change in &plan.models[0].changes {
            let line = change_line(change);
            assert!(
                !line.chars().any(char::is_control),
                "{}",
                line.escape_debug()
            );
        }
    }
}
