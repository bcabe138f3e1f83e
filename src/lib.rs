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
//! - [`plan`]: a pure function from (desired, observed) to an ordered list of changes. No
//!   I/O, no clock.
//! - [`apply`]: executes a plan through a registry, one write at a time per model and
//!   several models at once, then verifies; returns a report and never prints.
//! - [`render`]: plans, reports and tables as text, JSON or Markdown into any `Write`.
//! - [`daemon`]: `mlreg watch`: the watch/resync loop, debounce, HTTP endpoints, metrics,
//!   two-stage shutdown.
//! - [`commands`]: one function per subcommand, glue only; [`cli`] declares the command
//!   line and [`exit`] the exit codes.

pub mod apply;
pub mod cli;
pub mod commands;
pub mod daemon;
pub mod diagnostic;
pub mod exit;
pub mod manifest;
pub mod plan;
pub mod registry;
pub mod render;
pub mod stage;
pub mod target;

pub use exit::ExitStatus;

/// Runs the parsed command line to completion and says how it ended.
pub async fn run(cli: cli::Cli) -> anyhow::Result<ExitStatus> {
    commands::run(cli).await
}
