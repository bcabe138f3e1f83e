//! `mlreg plan` and `mlreg reconcile`: load, observe, plan, render, and (unless dry-run)
//! apply, verify and render the report.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::apply::{self, Annotation, ApplyOptions, ApplyReport, OutcomeStatus};
use crate::cli::PlanOutput;
use crate::diagnostic;
use crate::exit::ExitStatus;
use crate::notify::{self, Event, EventKind, Notifier};
use crate::output::{Output, printable};
use crate::plan::{Plan, Selection};
use crate::registry::{Registry, Scope};
use crate::render::plan::{self as render, Stats};
use crate::settings::ReconcileSettings;
use crate::shutdown::OneShot;

use super::{client, load_manifests};

/// Plans and, unless `--dry-run`, applies; then gives undelivered notifications at most
/// [`notify::FLUSH_DEADLINE`] before returning (a notification never fails the run).
pub async fn run(output: &Output, settings: ReconcileSettings) -> anyhow::Result<ExitStatus> {
    let (notifier, delivery) = Notifier::start(
        settings.notify.targets.clone(),
        settings.notify.secret.clone(),
    );
    let result = reconcile(output, settings, &notifier).await;
    drop(notifier);
    delivery.finish(notify::FLUSH_DEADLINE).await;
    result
}

/// Plans and, unless `--dry-run`, applies, telling `notifier` what happened.
async fn reconcile(
    output: &Output,
    settings: ReconcileSettings,
    notifier: &Notifier,
) -> anyhow::Result<ExitStatus> {
    let started = Instant::now();
    let Some(desired) = load_manifests(output, &settings.dir, "Nothing was applied")? else {
        notifier.notify(Event {
            event: EventKind::Invalid,
            environment: None,
            model: None,
            changes: Vec::new(),
            commit: crate::git::head_commit(&settings.dir).await,
            detail: Some("the manifests are invalid; nothing was applied".to_owned()),
        });
        return Ok(ExitStatus::Failure);
    };
    let client = client(settings.registry)?;
    // Only the managed (or selected) models are read whole; the rest are listed by name
    // for the plan's `unmanaged` (DESIGN.md "Scale").
    let scope = if settings.models.is_empty() {
        Scope::listing_others(desired.models.keys().cloned())
    } else {
        Scope::only(settings.models.iter().cloned())
    };
    let observed = client
        .scoped_snapshot(&scope)
        .await
        .context("cannot read the registry; nothing was applied")?;
    let selection = Selection {
        models: settings.models.clone(),
    };
    let now = time::OffsetDateTime::now_utc();
    let plan = match crate::evidence::plan_with_gates(
        &client,
        &desired,
        &observed.snapshot,
        &selection,
        now,
    )
    .await
    {
        Ok(plan) => plan,
        Err(diagnostics) => {
            diagnostic::render(
                &mut output.stderr(),
                &diagnostics,
                &desired.sources,
                output.color_stderr(),
            )?;
            output.message(
                "Nothing was applied: the manifests do not match what the registry holds.",
            );
            return Ok(ExitStatus::Failure);
        }
    };
    let mut plan = plan;
    if selection.models.is_empty() {
        plan.unmanaged = observed.unmanaged(|name| desired.models.contains_key(name));
    }
    let stats = |client: &crate::registry::mlflow::MlflowClient| Stats {
        requests: client.request_count(),
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };

    let format = settings.output;
    let pending = if plan.is_empty() {
        ExitStatus::Success
    } else if settings.detailed_exitcode {
        ExitStatus::ChangesPending
    } else {
        ExitStatus::Success
    };
    if plan.is_blocked() {
        write_plan(output, format, &plan, None, stats(&client))?;
        output.message(format_args!(
            "Nothing was applied: a promotion gate blocks {} (see the gate checks above).",
            plan.blocked_models()
                .iter()
                .map(|model| format!("`{}`", printable(model)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        return Ok(ExitStatus::Failure);
    }
    if settings.dry_run || plan.is_empty() {
        write_plan(output, format, &plan, None, stats(&client))?;
        return Ok(pending);
    }

    if let Some(max) = settings.max_changes
        && plan.len() > max
    {
        write_plan(output, format, &plan, None, stats(&client))?;
        anyhow::bail!(
            "the plan has {} changes, more than --max-changes {max} allows; nothing was applied \
             (review the plan, then raise --max-changes or apply per model with --model)",
            plan.len()
        );
    }

    if format == PlanOutput::Text {
        write_plan(output, format, &plan, None, stats(&client))?;
        output.line("")?;
    }
    let shutdown = OneShot::install(*output);
    let commit = crate::git::head_commit(&settings.dir).await;
    let annotate = settings.annotate.then(|| Annotation {
        commit: commit.clone(),
    });
    let options = ApplyOptions {
        concurrency: settings.concurrency,
        annotate,
        cancel: shutdown.token(),
        clock: Arc::new(apply::now_rfc3339),
    };
    let progress = progress_bar(plan.len());
    let report = {
        let bar = progress.clone();
        let on_progress = move |model: &str, outcome: &apply::Outcome| {
            bar.inc(1);
            if let OutcomeStatus::Failed { error } = &outcome.result {
                bar.println(printable(&format!("{model}: {error}")));
            }
        };
        apply::apply(&client, &desired, &plan, &options, &on_progress).await
    };
    progress.finish_and_clear();
    for event in notify::events_of(&report, commit.as_deref()) {
        notifier.notify(event);
    }

    match format {
        PlanOutput::Text => {
            render::write_report_text(&mut output.stdout(), &report, output.color_stdout())?
        }
        _ => write_plan(output, format, &plan, Some(&report), stats(&client))?,
    }
    Ok(exit_status(&report, &shutdown))
}

fn exit_status(report: &ApplyReport, shutdown: &OneShot) -> ExitStatus {
    if let Some(status) = shutdown.interrupted_status() {
        return status;
    }
    if report.is_success() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    }
}

fn write_plan(
    output: &Output,
    format: PlanOutput,
    plan: &Plan,
    report: Option<&ApplyReport>,
    stats: Stats,
) -> anyhow::Result<()> {
    let mut stdout = output.stdout();
    match format {
        PlanOutput::Text => render::write_text(&mut stdout, plan, output.color_stdout())?,
        PlanOutput::Json => render::write_json(&mut stdout, plan, report, stats)?,
        PlanOutput::Markdown => render::write_markdown(&mut stdout, plan, report)?,
    }
    stdout.flush()?;
    Ok(())
}

/// A progress bar on stderr for larger applies; indicatif hides it when stderr is not a
/// terminal, so pipes and CI logs stay clean.
fn progress_bar(total: usize) -> indicatif::ProgressBar {
    if total <= 5 {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(u64::try_from(total).unwrap_or(u64::MAX));
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} applying {pos}/{len} changes {wide_bar} {elapsed}",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
