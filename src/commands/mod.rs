//! One function per subcommand, each glue only: load, observe, plan, render or apply.
//!
//! Each receives its validated settings ([`crate::settings`]) and the [`Output`] it prints
//! through: data to stdout, notes, warnings and errors to stderr. The registry is taken
//! through the [`Registry`] trait where the logic can then be tested against the fake.

mod completions;
mod environments;
mod export;
mod info;
mod man;
mod manifest_edit;
mod migrate;
mod notifications;
mod promote;
mod reconcile;
mod resolve;
mod schema;
mod set_alias;
mod set_stage;
mod validate;
mod versions;
mod watch;

use std::io;

use anyhow::Context as _;

use crate::exit::ExitStatus;
use crate::output::Output;
use crate::registry::mlflow::MlflowClient;
use crate::registry::{Registry, RegistryConfig};
use crate::settings::{CommandSettings, RegistrySettings, Settings};

/// A registry client from the settings, or the configuration error as it reads today.
pub fn client(registry: RegistrySettings) -> anyhow::Result<MlflowClient> {
    let config: RegistryConfig = registry?;
    MlflowClient::new(config).context("cannot set up the registry client")
}

/// Loads the manifests under `dir`; `None` after rendering every problem on stderr followed
/// by `consequence` ("Nothing was applied", "Nothing was edited") and how to check offline.
pub fn load_manifests(
    output: &Output,
    dir: &std::path::Path,
    consequence: &str,
) -> anyhow::Result<Option<crate::manifest::DesiredState>> {
    match crate::manifest::load_dir(dir) {
        Ok(desired) => Ok(Some(desired)),
        Err(error) => {
            crate::diagnostic::render(
                &mut output.stderr(),
                &error.diagnostics,
                &error.sources,
                output.color_stderr(),
            )?;
            output.message(format_args!(
                "{consequence}: fix the manifests first (`mlreg validate` checks them offline)."
            ));
            Ok(None)
        }
    }
}

/// Runs one subcommand.
pub async fn run(settings: Settings, output: &Output) -> anyhow::Result<ExitStatus> {
    match settings.command {
        CommandSettings::Validate(settings) => validate::run(output, &settings),
        CommandSettings::Schema => schema::run(output),
        CommandSettings::ProjectSchema => schema::run_project(output),
        CommandSettings::Completions(shell) => completions::run(output, shell),
        CommandSettings::Man(dir) => man::run(output, dir.as_deref()),
        CommandSettings::Versions(settings) => versions::run(output, settings).await,
        CommandSettings::Info(settings) => info::run(output, settings).await,
        CommandSettings::Reconcile(settings) => reconcile::run(output, settings).await,
        CommandSettings::ReconcileAll(settings) => environments::run(output, settings).await,
        CommandSettings::Watch(settings) => watch::run(settings).await,
        CommandSettings::Promote(settings) => promote::run(output, &settings),
        CommandSettings::SetStage(settings) => set_stage::run(output, &settings),
        CommandSettings::SetAlias(settings) => set_alias::run(output, &settings),
        CommandSettings::MigrateStagesToAliases(settings) => migrate::run(output, &settings),
        CommandSettings::Export(settings) => export::run(output, settings).await,
        CommandSettings::Resolve(settings) => resolve::run(output, settings).await,
    }
}

/// The exit status of a command's result: an error is reported on stderr as its chain
/// (`error: outer: inner: root`) and fails, except a broken pipe on stdout, which ends a
/// command successfully (`mlreg plan | head` is not an error).
pub fn finish(result: anyhow::Result<ExitStatus>, output: &Output) -> ExitStatus {
    match result {
        Ok(status) => status,
        Err(error) if is_broken_pipe(&error) => ExitStatus::Success,
        Err(error) => {
            output.message(format_args!("error: {error:#}"));
            ExitStatus::Failure
        }
    }
}

/// Whether the error is a broken pipe on output, which ends a command successfully.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Reads one model; a model the registry does not hold is an error that says where it
/// looked (`location`, the registry's address).
pub(crate) async fn read_model(
    registry: &impl Registry,
    location: &str,
    name: &str,
) -> anyhow::Result<crate::registry::ObservedModel> {
    registry
        .model(name)
        .await
        .with_context(|| format!("cannot read model `{name}` from the registry"))?
        .with_context(|| format!("model `{name}` does not exist in the registry at {location}"))
}

/// Now, in milliseconds since the epoch (MLflow's unit).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}
