//! mlreg keeps an MLflow Model Registry in the state that YAML manifests in git declare.
//!
//! The crate is a library with a thin binary. Its layers, from the bottom up:
//!
//! - [`stage`], [`target`] and [`diagnostic`]: the vocabulary shared by every layer (MLflow
//!   stages; a stage or `@alias` that commands and serving point at; errors that point at a
//!   file, line and column).
//! - [`manifest`]: the desired state. Loads and strictly validates every manifest of a
//!   directory; prints the JSON Schema of the format. No network.
//! - [`registry`]: the observed state. The [`registry::Registry`] trait, the MLflow REST
//!   client that implements it, and an in-memory fake for tests.
//! - [`plan`]: a pure function from (desired, observed, evidence, now) to an ordered list
//!   of changes, with the verdicts of promotion gates ([`gate`]). No I/O, no clock;
//!   [`evidence`] reads the metrics gates need, only for versions entering gated targets.
//! - [`apply`]: executes a plan through a registry, one write at a time per model and
//!   several models at once, then verifies; returns a report and never prints.
//! - [`resolve`]: the serving resolution policy of `mlreg resolve`, pure over what the
//!   registry said and what the manifest declares.
//! - [`render`]: plans, reports, tables and resolutions as text, JSON or Markdown into any
//!   `Write`; [`output`] is the one way to the process's streams (color decided once,
//!   control characters escaped).
//! - [`notify`]: outgoing notifications (applied, drift, blocked, failed, invalid): a bounded
//!   queue, retries, signing; never delays or fails a reconcile.
//! - [`daemon`]: `mlreg watch`: the watch/resync loop, debounce, HTTP endpoints, metrics;
//!   [`shutdown`] holds the two-stage shutdown of the daemon and of one-shot commands, and
//!   [`git`] the commit recorded in audit tags.
//! - [`commands`]: one function per subcommand, glue only; [`cli`] declares the command
//!   line, [`settings`] validates it with the environment before any network I/O, and
//!   [`exit`] names the exit codes.

pub mod apply;
pub mod cli;
pub mod commands;
pub mod daemon;
pub mod diagnostic;
pub mod evidence;
pub mod exit;
pub mod gate;
pub mod git;
pub mod manifest;
pub mod notify;
pub mod output;
pub mod plan;
pub mod project;
pub mod registry;
pub mod render;
pub mod resolve;
pub mod select;
pub mod settings;
pub mod shutdown;
pub mod stage;
pub mod target;

pub use exit::ExitStatus;

/// Turns the parsed command line into validated settings and the output every command
/// prints through, and installs logging; no network I/O. On an invalid combination of
/// arguments, says why on stderr and returns the exit status.
pub fn prepare(cli: cli::Cli) -> Result<(settings::Settings, output::Output), ExitStatus> {
    let env = |name: &str| std::env::var(name).ok();
    let cwd = std::env::current_dir().ok();
    let global = settings::GlobalSettings::new(&cli, &env);
    // Color is decided once, before anything is printed, even a settings error.
    let output = output::Output::new(&global);
    output.install_logging(&global.log);
    let project = if settings::CommandSettings::reads_project(&cli) {
        match project::discover(cli.global.config.as_deref(), cwd.as_deref()) {
            Ok(project) => project,
            Err(error) => {
                let _ = diagnostic::render(
                    &mut output.stderr(),
                    &error.diagnostics,
                    &error.sources,
                    output.color_stderr(),
                );
                output.message(
                    "error: the project file is invalid; nothing was done (`mlreg validate` checks it)",
                );
                return Err(ExitStatus::Failure);
            }
        }
    } else {
        None
    };
    match settings::CommandSettings::with_project(cli, &env, cwd.as_deref(), project) {
        Ok(command) => Ok((settings::Settings { global, command }, output)),
        Err(error) => {
            output.message(format_args!("error: {error}"));
            Err(ExitStatus::Failure)
        }
    }
}

/// Runs the command to completion and says how it ended: an error is reported on stderr
/// (exit 1), except a closed stdout pipe (`mlreg plan | head`), which is a success.
pub async fn run(settings: settings::Settings, output: &output::Output) -> ExitStatus {
    commands::finish(commands::run(settings, output).await, output)
}
