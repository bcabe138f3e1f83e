//! `mlreg plan` and `mlreg reconcile`: load, observe, plan, render, and (unless dry-run)
//! apply, verify and render the report.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::apply::{self, Annotation, ApplyOptions, ApplyReport, OutcomeStatus};
use crate::cli::{PlanOutput, ReconcileArgs};
use crate::diagnostic;
use crate::exit::ExitStatus;
use crate::plan::{self, Plan, Selection};
use crate::registry::Registry;
use crate::render::plan::{self as render, Stats};

use super::signals::Shutdown;
use super::{Context, load_manifests};

/// Plans and, unless `--dry-run`, applies.
pub async fn run(context: &Context, args: &ReconcileArgs) -> anyhow::Result<ExitStatus> {
    let started = Instant::now();
    let Some(desired) = load_manifests(context, &args.plan.dir.dir, "Nothing was applied")? else {
        return Ok(ExitStatus::Failure);
    };
    let client = context.client()?;
    let snapshot = client
        .snapshot()
        .await
        .context("cannot read the registry; nothing was applied")?;
    let selection = Selection {
        models: args.plan.models.clone(),
    };
    let plan = match plan::plan(&desired, &snapshot, &selection) {
        Ok(plan) => plan,
        Err(diagnostics) => {
            diagnostic::render(
                &mut io::stderr().lock(),
                &diagnostics,
                &desired.sources,
                context.color_stderr,
            )?;
            eprintln!("Nothing was applied: the manifests do not match what the registry holds.");
            return Ok(ExitStatus::Failure);
        }
    };
    let stats = |client: &crate::registry::mlflow::MlflowClient| Stats {
        requests: client.request_count(),
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };

    let output = args.plan.output;
    let pending = if plan.is_empty() {
        ExitStatus::Success
    } else if args.plan.detailed_exitcode {
        ExitStatus::ChangesPending
    } else {
        ExitStatus::Success
    };
    if args.dry_run || plan.is_empty() {
        write_plan(context, output, &plan, None, stats(&client))?;
        return Ok(pending);
    }

    if let Some(max) = args.max_changes
        && plan.len() > max
    {
        write_plan(context, output, &plan, None, stats(&client))?;
        anyhow::bail!(
            "the plan has {} changes, more than --max-changes {max} allows; nothing was applied \
             (review the plan, then raise --max-changes or apply per model with --model)",
            plan.len()
        );
    }

    if output == PlanOutput::Text {
        write_plan(context, output, &plan, None, stats(&client))?;
        println!();
    }
    let shutdown = Shutdown::install();
    let options = ApplyOptions {
        concurrency: usize::from(args.concurrency),
        annotate: (!args.no_annotate).then(|| Annotation {
            commit: git_commit(&args.plan.dir.dir),
        }),
        cancel: shutdown.token(),
        clock: Arc::new(apply::now_rfc3339),
    };
    let progress = progress_bar(plan.len());
    let report = {
        let bar = progress.clone();
        let on_progress = move |model: &str, outcome: &apply::Outcome| {
            bar.inc(1);
            if let OutcomeStatus::Failed { error } = &outcome.result {
                bar.println(format!("{model}: {error}"));
            }
        };
        apply::apply(&client, &desired, &plan, &options, &on_progress).await
    };
    progress.finish_and_clear();

    match output {
        PlanOutput::Text => {
            render::write_report_text(&mut io::stdout().lock(), &report, context.color_stdout)?
        }
        _ => write_plan(context, output, &plan, Some(&report), stats(&client))?,
    }
    Ok(exit_status(&report, &shutdown))
}

fn exit_status(report: &ApplyReport, shutdown: &Shutdown) -> ExitStatus {
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
    context: &Context,
    output: PlanOutput,
    plan: &Plan,
    report: Option<&ApplyReport>,
    stats: Stats,
) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    match output {
        PlanOutput::Text => render::write_text(&mut stdout, plan, context.color_stdout)?,
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

/// The commit of the manifests' git checkout, when there is one (for the audit tag).
fn git_commit(dir: &Path) -> Option<String> {
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "--quiet", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let commit = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (!commit.is_empty()).then_some(commit)
}
