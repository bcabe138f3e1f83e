//! `mlreg plan` and `mlreg reconcile`: load, observe, plan, render, and (unless dry-run)
//! apply, verify and render the report.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::apply::{self, Annotation, ApplyOptions, ApplyReport, OutcomeStatus};
use crate::cli::PlanOutput;
use crate::diagnostic;
use crate::diagnostic::Diagnostic;
use crate::exit::ExitStatus;
use crate::manifest::DesiredState;
use crate::notify::{self, Event, EventKind};
use crate::output::{Output, printable};
use crate::plan::{Plan, Selection};
use crate::registry::mlflow::MlflowClient;
use crate::registry::{Registry, Scope};
use crate::render::plan::{self as render, Stats};
use crate::settings::ReconcileSettings;
use crate::shutdown::OneShot;

use super::client;
use super::notifications::Notifiers;

/// Plans and, unless `--dry-run`, applies; then gives undelivered notifications at most
/// [`notify::FLUSH_DEADLINE`] before returning (a notification never fails the run).
pub async fn run(output: &Output, settings: ReconcileSettings) -> anyhow::Result<ExitStatus> {
    let notifiers = Notifiers::start(&settings.notify);
    let result = match read(&settings).await {
        Ok(read) => finish(output, &settings, &notifiers, &mut Sink::Stdout, read).await,
        Err(error) => Err(error),
    };
    notifiers.finish(notify::FLUSH_DEADLINE).await;
    result
}

/// Where a plan or report goes: stdout as it is written, or a buffer (one section of an
/// `--all-envs` JSON document).
pub(super) enum Sink {
    /// The process's stdout.
    Stdout,
    /// A buffer.
    Buffer(Vec<u8>),
}

impl Sink {
    /// Runs `write` on the sink, flushing stdout after it.
    fn write(
        &mut self,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
        output: &Output,
    ) -> std::io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut stdout = output.stdout();
                write(&mut stdout)?;
                stdout.flush()
            }
            Sink::Buffer(buffer) => write(buffer),
        }
    }
}

/// What reading the manifests and the registry gave, before anything is printed.
pub(super) enum Read {
    /// The manifests are invalid.
    Invalid(crate::manifest::LoadError),
    /// The manifests do not match what the registry holds.
    Mismatch {
        /// The problems.
        diagnostics: Vec<Diagnostic>,
        /// The manifests, for quoting.
        desired: Box<DesiredState>,
    },
    /// A plan.
    Planned(Box<Planned>),
}

/// A plan and what it was made from.
pub(super) struct Planned {
    client: MlflowClient,
    desired: DesiredState,
    plan: Plan,
    started: Instant,
}

impl Planned {
    /// Whether the plan has changes.
    pub(super) fn has_changes(&self) -> bool {
        !self.plan.is_empty()
    }
}

/// Loads the manifests, reads the registry and plans; prints nothing (an `--all-envs` plan
/// reads every environment at once, then prints them in order).
pub(super) async fn read(settings: &ReconcileSettings) -> anyhow::Result<Read> {
    let started = Instant::now();
    let desired = match crate::manifest::load_dir(&settings.dir) {
        Ok(desired) => desired,
        Err(error) => return Ok(Read::Invalid(error)),
    };
    let registry = match &settings.registry {
        Ok(config) => Ok(config.clone()),
        // Configuration errors carry no source: their text is the whole error.
        Err(error) => return Err(anyhow::Error::msg(error.to_string())),
    };
    let client = client(registry)?;
    // Only the managed (or selected) models are read whole; the rest are listed by name
    // for the plan's `unmanaged` (DESIGN.md "Scale"), unless `--skip-unmanaged`.
    let scope = if !settings.models.is_empty() {
        Scope::only(settings.models.iter().cloned())
    } else if settings.list_unmanaged {
        Scope::listing_others(desired.models.keys().cloned())
    } else {
        Scope::only(desired.models.keys().cloned())
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
            return Ok(Read::Mismatch {
                diagnostics,
                desired: Box::new(desired),
            });
        }
    };
    let mut plan = plan;
    if selection.models.is_empty() {
        plan.unmanaged = observed.unmanaged(|name| desired.models.contains_key(name));
    }
    Ok(Read::Planned(Box::new(Planned {
        client,
        desired,
        plan,
        started,
    })))
}

/// Prints what [`read`] found into `sink` (diagnostics on stderr) and, unless dry-run,
/// applies the plan, telling `notifiers` what happened.
pub(super) async fn finish(
    output: &Output,
    settings: &ReconcileSettings,
    notifiers: &Notifiers,
    sink: &mut Sink,
    read: Read,
) -> anyhow::Result<ExitStatus> {
    let planned = match read {
        Read::Invalid(error) => {
            diagnostic::render(
                &mut output.stderr(),
                &error.diagnostics,
                &error.sources,
                output.color_stderr(),
            )?;
            output.message(
                "Nothing was applied: fix the manifests first (`mlreg validate` checks them offline).",
            );
            notifiers.notify(Event {
                event: EventKind::Invalid,
                environment: settings.environment.clone(),
                model: None,
                changes: Vec::new(),
                commit: crate::git::head_commit(&settings.dir).await,
                detail: Some("the manifests are invalid; nothing was applied".to_owned()),
            });
            return Ok(ExitStatus::Failure);
        }
        Read::Mismatch {
            diagnostics,
            desired,
        } => {
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
        Read::Planned(planned) => *planned,
    };
    let Planned {
        client,
        desired,
        plan,
        started,
    } = planned;
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
        write_plan(output, sink, format, &plan, None, stats(&client))?;
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
        write_plan(output, sink, format, &plan, None, stats(&client))?;
        return Ok(pending);
    }

    if let Some(max) = settings.max_changes
        && plan.len() > max
    {
        write_plan(output, sink, format, &plan, None, stats(&client))?;
        anyhow::bail!(
            "the plan has {} changes, more than --max-changes {max} allows; nothing was applied \
             (review the plan, then raise --max-changes or apply per model with --model)",
            plan.len()
        );
    }

    if format == PlanOutput::Text {
        write_plan(output, sink, format, &plan, None, stats(&client))?;
        sink.write(|out| writeln!(out), output)?;
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
    for mut event in notify::events_of(&report, commit.as_deref()) {
        event.environment.clone_from(&settings.environment);
        notifiers.notify(event);
    }

    match format {
        PlanOutput::Text => sink.write(
            |out| render::write_report_text(out, &report, output.color_stdout()),
            output,
        )?,
        _ => write_plan(output, sink, format, &plan, Some(&report), stats(&client))?,
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
    sink: &mut Sink,
    format: PlanOutput,
    plan: &Plan,
    report: Option<&ApplyReport>,
    stats: Stats,
) -> anyhow::Result<()> {
    sink.write(
        |out| match format {
            PlanOutput::Text => render::write_text(out, plan, output.color_stdout()),
            PlanOutput::Json => render::write_json(out, plan, report, stats),
            PlanOutput::Markdown => render::write_markdown(out, plan, report),
        },
        output,
    )?;
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
