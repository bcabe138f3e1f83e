//! `mlreg plan --all-envs` and `mlreg reconcile --all-envs`: every environment of the
//! project file in one report.
//!
//! A plan reads every environment at once, then prints them in the file's order; a
//! reconcile applies them one after the other in that order and stops at the first that
//! fails (the rest are reported as not run). Exit code: 1 if any failed, else 2 with
//! `--detailed-exitcode` if any has changes pending, else 0.

use crate::cli::PlanOutput;
use crate::exit::ExitStatus;
use crate::notify;
use crate::output::Output;
use crate::render::environments::{self as render, EnvironmentStatus};
use crate::settings::{AllEnvironmentsSettings, ReconcileSettings};

use super::notifications::Notifiers;
use super::reconcile::{self, Read, Sink};

/// Runs every environment; then gives undelivered notifications at most
/// [`notify::FLUSH_DEADLINE`].
pub async fn run(output: &Output, settings: AllEnvironmentsSettings) -> anyhow::Result<ExitStatus> {
    let notifiers = Notifiers::start(&settings.notify);
    let result = run_all(output, &settings, &notifiers).await;
    notifiers.finish(notify::FLUSH_DEADLINE).await;
    result
}

/// The name of an environment's run.
fn name(settings: &ReconcileSettings) -> &str {
    settings.environment.as_deref().unwrap_or_default()
}

/// Where an environment's registry and directory are, for its heading (no credentials:
/// they never are in the URL).
fn location(settings: &ReconcileSettings) -> String {
    let registry = match &settings.registry {
        Ok(config) => match &config.workspace {
            Some(workspace) => format!("{} workspace {workspace}", config.base_url),
            None => config.base_url.to_string(),
        },
        Err(_) => "registry not configured".to_owned(),
    };
    format!("{registry}, {}", settings.dir.display())
}

async fn run_all(
    output: &Output,
    settings: &AllEnvironmentsSettings,
    notifiers: &Notifiers,
) -> anyhow::Result<ExitStatus> {
    let format = settings.output;
    // A plan reads every environment at once; a reconcile reads each just before applying it.
    let mut early: Vec<Option<anyhow::Result<Read>>> = if settings.dry_run {
        futures_util::future::join_all(settings.environments.iter().map(reconcile::read))
            .await
            .into_iter()
            .map(Some)
            .collect()
    } else {
        settings.environments.iter().map(|_| None).collect()
    };

    let mut statuses: Vec<(String, EnvironmentStatus)> = Vec::new();
    let mut entries = Vec::new();
    let mut exit = ExitStatus::Success;
    let mut stop = false;
    for (index, environment) in settings.environments.iter().enumerate() {
        let name = name(environment).to_owned();
        let location = location(environment);
        if stop {
            let status = EnvironmentStatus::NotRun;
            section_heading(output, format, &name, &location)?;
            section_status(output, format, &status)?;
            entries.push(render::json_entry(&name, &status, None));
            statuses.push((name, status));
            continue;
        }
        section_heading(output, format, &name, &location)?;
        let read = match early.get_mut(index).and_then(Option::take) {
            Some(read) => read,
            None => reconcile::read(environment).await,
        };
        let changes = matches!(&read, Ok(Read::Planned(planned)) if planned.has_changes());
        if matches!(&read, Ok(Read::Invalid(_) | Read::Mismatch { .. }) | Err(_)) {
            output.message(format_args!("In environment `{name}`:"));
        }
        let mut sink = if format == PlanOutput::Json {
            Sink::Buffer(Vec::new())
        } else {
            Sink::Stdout
        };
        let result = match read {
            Ok(read) => reconcile::finish(output, environment, notifiers, &mut sink, read).await,
            Err(error) => Err(error),
        };
        let document = match &sink {
            Sink::Buffer(buffer) if !buffer.is_empty() => serde_json::from_slice(buffer).ok(),
            _ => None,
        };
        let status = match result {
            Ok(code @ (ExitStatus::Interrupted | ExitStatus::Terminated)) => {
                exit = code;
                stop = true;
                EnvironmentStatus::Failed {
                    error: "interrupted".to_owned(),
                }
            }
            Ok(ExitStatus::Failure) => {
                stop = !settings.dry_run;
                if exit == ExitStatus::Success || exit == ExitStatus::ChangesPending {
                    exit = ExitStatus::Failure;
                }
                let status = EnvironmentStatus::Failed {
                    error: "see the messages on stderr".to_owned(),
                };
                section_status(output, format, &status)?;
                status
            }
            Ok(code) => {
                if code == ExitStatus::ChangesPending && exit == ExitStatus::Success {
                    exit = ExitStatus::ChangesPending;
                }
                EnvironmentStatus::Done { changes }
            }
            Err(error) if super::is_broken_pipe(&error) => return Err(error),
            Err(error) => {
                output.message(format_args!("error: {error:#}"));
                stop = !settings.dry_run;
                if exit == ExitStatus::Success || exit == ExitStatus::ChangesPending {
                    exit = ExitStatus::Failure;
                }
                let status = EnvironmentStatus::Failed {
                    error: format!("{error:#}"),
                };
                section_status(output, format, &status)?;
                status
            }
        };
        if format != PlanOutput::Json {
            output.line("")?;
        }
        entries.push(render::json_entry(&name, &status, document));
        statuses.push((name, status));
    }

    match format {
        PlanOutput::Text => render::write_summary_text(
            &mut output.stdout(),
            &statuses,
            settings.dry_run,
            output.color_stdout(),
        )?,
        PlanOutput::Markdown => {
            render::write_summary_markdown(&mut output.stdout(), &statuses, settings.dry_run)?
        }
        PlanOutput::Json => render::write_json(&mut output.stdout(), settings.dry_run, entries)?,
    }
    if exit == ExitStatus::ChangesPending && !settings.detailed_exitcode {
        exit = ExitStatus::Success;
    }
    Ok(exit)
}

fn section_heading(
    output: &Output,
    format: PlanOutput,
    name: &str,
    location: &str,
) -> anyhow::Result<()> {
    match format {
        PlanOutput::Text => {
            render::write_heading_text(&mut output.stdout(), name, location, output.color_stdout())?
        }
        PlanOutput::Markdown => {
            render::write_heading_markdown(&mut output.stdout(), name, location)?
        }
        PlanOutput::Json => {}
    }
    Ok(())
}

fn section_status(
    output: &Output,
    format: PlanOutput,
    status: &EnvironmentStatus,
) -> anyhow::Result<()> {
    match format {
        PlanOutput::Text => render::write_status_text(&mut output.stdout(), status)?,
        PlanOutput::Markdown => render::write_status_markdown(&mut output.stdout(), status)?,
        PlanOutput::Json => {}
    }
    Ok(())
}
