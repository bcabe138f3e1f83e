//! One function per subcommand, each glue only: load, observe, plan, render or apply.
//!
//! Data goes to stdout; logs, progress and errors go to stderr.

mod completions;
mod export;
mod info;
mod promote;
mod reconcile;
mod resolve;
mod schema;
mod set_stage;
pub mod signals;
mod validate;
mod versions;
mod watch;

use std::io::{self, IsTerminal};

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, ColorChoice, Command, GlobalArgs, LogFormat};
use crate::exit::ExitStatus;
use crate::registry::RegistryConfig;
use crate::registry::mlflow::MlflowClient;

/// What every subcommand may need besides its own arguments.
#[derive(Debug, Clone)]
pub struct Context {
    /// The global options.
    pub global: GlobalArgs,
    /// Whether to color stdout.
    pub color_stdout: bool,
    /// Whether to color stderr.
    pub color_stderr: bool,
}

impl Context {
    /// Builds the context from the global options and the environment.
    pub fn new(global: GlobalArgs) -> Self {
        let color_for = |is_terminal: bool| match global.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                is_terminal && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
            }
        };
        Context {
            color_stdout: color_for(io::stdout().is_terminal()),
            color_stderr: color_for(io::stderr().is_terminal()),
            global,
        }
    }

    /// The registry configuration from `--registry-uri` and the `MLFLOW_TRACKING_*` variables.
    pub fn registry_config(&self) -> anyhow::Result<RegistryConfig> {
        let mut config = RegistryConfig::from_env(self.global.registry_uri.as_deref(), |name| {
            std::env::var(name).ok()
        })?;
        config.request_timeout = self.global.request_timeout;
        Ok(config)
    }

    /// A registry client.
    pub fn client(&self) -> anyhow::Result<MlflowClient> {
        let config = self.registry_config()?;
        MlflowClient::new(config).context("cannot set up the registry client")
    }
}

/// Loads the manifests under `dir`; `None` after rendering every problem on stderr followed
/// by `consequence` ("Nothing was applied", "Nothing was edited") and how to check offline.
pub fn load_manifests(
    context: &Context,
    dir: &std::path::Path,
    consequence: &str,
) -> anyhow::Result<Option<crate::manifest::DesiredState>> {
    match crate::manifest::load_dir(dir) {
        Ok(desired) => Ok(Some(desired)),
        Err(error) => {
            crate::diagnostic::render(
                &mut io::stderr().lock(),
                &error.diagnostics,
                &error.sources,
                context.color_stderr,
            )?;
            eprintln!(
                "{consequence}: fix the manifests first (`mlreg validate` checks them offline)."
            );
            Ok(None)
        }
    }
}

/// Runs one subcommand.
pub async fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    let context = Context::new(cli.global);
    match cli.command {
        Command::Validate(args) => validate::run(&context, &args),
        Command::Schema => schema::run(),
        Command::Completions(args) => completions::run(&args),
        Command::Versions(args) => versions::run(&context, &args).await,
        Command::Info(args) => info::run(&context, &args).await,
        Command::Plan(args) => {
            let args = crate::cli::ReconcileArgs {
                plan: args,
                dry_run: true,
                max_changes: None,
                concurrency: 8,
                no_annotate: false,
            };
            reconcile::run(&context, &args).await
        }
        Command::Reconcile(args) => reconcile::run(&context, &args).await,
        Command::Watch(args) => watch::run(&context, &args).await,
        Command::Promote(args) => promote::run(&context, &args),
        Command::SetStage(args) => set_stage::run(&context, &args),
        Command::Export(args) => export::run(&context, &args).await,
        Command::Resolve(args) => resolve::run(&context, &args).await,
    }
}

/// Installs the tracing subscriber on stderr: `RUST_LOG` if set, else from `-v`. Without
/// `-v`, commands log warnings only, while the daemon (`watch`) logs at `info`, as a
/// long-running service is expected to.
pub fn init_logging_for(cli: &Cli) {
    let quiet = if matches!(cli.command, Command::Watch(_)) {
        "info"
    } else {
        "warn"
    };
    install_logging(&cli.global, quiet);
}

/// Installs the subscriber; `quiet` is the level without `-v`.
fn install_logging(global: &GlobalArgs, quiet: &str) {
    let default = match global.verbose {
        0 => quiet,
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{default},hyper=warn,reqwest=warn,rustls=warn,h2=warn"
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_target(false);
    let result = match global.log_format {
        LogFormat::Text => builder
            .with_ansi(io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    // A second initialisation (tests) keeps the first subscriber.
    drop(result);
}

/// Prints an error chain on stderr (`error: outer: inner: root`). A broken pipe on stdout is
/// not reported: `mlreg plan | head` is not an error.
pub fn report_error(error: &anyhow::Error) {
    if is_broken_pipe(error) {
        return;
    }
    eprintln!("error: {error:#}");
}

/// Whether the error is a broken pipe on output, which ends a command successfully.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
