//! Command-line definitions (clap derive) and nothing else: the doc comments are the help.
//!
//! What clap can check alone (types, stages, durations) is checked here, so it is a usage
//! error (exit 1); what needs several flags or the environment is [`crate::settings`]' job.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::settings::{self, parse_duration};
use crate::stage::Stage;
use crate::target::Target;

const EXIT_CODES: &str = "\
Exit codes (Terraform's convention):
  0    success; with --detailed-exitcode: success and no changes
  1    error, including a command-line usage error
  2    success with changes pending (only with --detailed-exitcode)
  130  interrupted (SIGINT); 143: terminated (SIGTERM)

Registry address and credentials follow MLflow's conventions: --registry-uri or
MLFLOW_TRACKING_URI; MLFLOW_TRACKING_TOKEN (bearer) or MLFLOW_TRACKING_USERNAME /
MLFLOW_TRACKING_PASSWORD (basic); MLFLOW_TRACKING_INSECURE_TLS=true;
MLFLOW_TRACKING_SERVER_CERT_PATH (CA bundle); MLFLOW_TRACKING_CLIENT_CERT_PATH (client
certificate and key, one PEM file); MLFLOW_WORKSPACE (MLflow 3.10+ workspace).
MLFLOW_TRACKING_URI=databricks or databricks://PROFILE: a Databricks workspace registry
(DATABRICKS_HOST / DATABRICKS_TOKEN, else ~/.databrickscfg or DATABRICKS_CONFIG_FILE).
Secrets never appear in output or logs.
Retry backoff: MLREG_RETRY_MIN_BACKOFF / MLREG_RETRY_MAX_BACKOFF (e.g. 200ms, 30s).";

/// Keep an MLflow Model Registry in the state that YAML manifests in git declare.
#[derive(Debug, Parser)]
#[command(
    name = "mlreg",
    version = env!("MLREG_LONG_VERSION"),
    after_help = EXIT_CODES,
    max_term_width = 100
)]
pub struct Cli {
    /// Options shared by every subcommand.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// MLflow tracking server URL (the registry lives there).
    #[arg(
        long,
        global = true,
        env = "MLFLOW_TRACKING_URI",
        value_name = "URL",
        help_heading = "Registry"
    )]
    pub registry_uri: Option<String>,

    /// Per-request timeout of registry calls.
    #[arg(long, global = true, env = "MLREG_REQUEST_TIMEOUT", default_value = settings::DEFAULT_REQUEST_TIMEOUT_ARG, value_parser = parse_duration, help_heading = "Registry")]
    pub request_timeout: Duration,

    /// When to color output.
    #[arg(long, global = true, env = "MLREG_COLOR", value_enum, default_value_t = ColorChoice::Auto, help_heading = "Output")]
    pub color: ColorChoice,

    /// More logging on stderr (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = "Output")]
    pub verbose: u8,

    /// Log line format on stderr.
    #[arg(long, global = true, env = "MLREG_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, help_heading = "Output")]
    pub log_format: LogFormat,

    /// The project file (default: mlreg.yaml in the working directory, when there is one).
    #[arg(
        long,
        global = true,
        env = "MLREG_CONFIG",
        value_name = "FILE",
        help_heading = "Environments"
    )]
    pub config: Option<PathBuf>,

    /// Use this environment of the project file: its registry, workspace, credentials and
    /// directory (an explicit --registry-uri or --dir is then an error).
    #[arg(
        long = "env",
        global = true,
        env = "MLREG_ENV",
        value_name = "NAME",
        help_heading = "Environments"
    )]
    pub environment: Option<String>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and check the manifests, offline (no network).
    Validate(DirArgs),
    /// Show what `reconcile` would change (same as `reconcile --dry-run`).
    Plan(PlanArgs),
    /// Compute the plan and apply it: transitions, alias moves, archives; then verify.
    Reconcile(ReconcileArgs),
    /// Run as a daemon: apply manifest changes as they land and report (or heal) drift.
    Watch(WatchArgs),
    /// List a model's versions with stage, aliases, run, source and age.
    Versions(VersionsArgs),
    /// Summarize a model: description, tags, stages, aliases, manifest, drift.
    Info(InfoArgs),
    /// Edit the manifest to promote: @challenger → @champion, Staging → Production, or
    /// between a stage and an alias; print the diff.
    Promote(PromoteArgs),
    /// Edit the manifest to put VERSION (a number, run:ID or m-ID) in STAGE; print the diff.
    SetStage(SetStageArgs),
    /// Edit the manifest to point ALIAS at VERSION (or remove it with --delete); print the diff.
    SetAlias(SetAliasArgs),
    /// Edit manifests to move from stages to aliases (MLflow 3's way); print the diffs.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Write manifests from the live registry (to adopt mlreg on an existing registry).
    Export(ExportArgs),
    /// Print the one model URI to serve: the first target (stage or @alias) holding a version,
    /// else the manifest's local fallback.
    Resolve(ResolveArgs),
    /// Print the JSON Schema (draft-07) of the manifest format (or of the project file).
    Schema(SchemaArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write one page per command into a directory.
    Man(ManArgs),
}

/// The desired-state directory.
#[derive(Debug, Clone, Args)]
pub struct DirArgs {
    /// Directory of manifests (read recursively).
    #[arg(
        long,
        env = "MLREG_DIR",
        default_value = settings::DEFAULT_DIR,
        value_name = "DIR"
    )]
    pub dir: PathBuf,
}

/// Options of `schema`.
#[derive(Debug, Clone, Args)]
pub struct SchemaArgs {
    /// The schema of the project file (`mlreg.yaml`, `kind: Project`) instead.
    #[arg(long)]
    pub project: bool,
}

/// Options of `plan` (and the planning half of `reconcile`).
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// The desired-state directory.
    #[command(flatten)]
    pub dir: DirArgs,
    /// Every environment of the project file, in one report (read at once; `reconcile`
    /// applies them one after the other in the file's order and stops at the first that
    /// fails).
    #[arg(long, help_heading = "Environments")]
    pub all_envs: bool,
    /// Only this model (repeatable).
    #[arg(long = "model", value_name = "NAME")]
    pub models: Vec<String>,
    /// Do not list the models no manifest manages. On a large shared registry the listing
    /// is most of a plan's cost (MLflow's model search returns every model); without it
    /// the plan reads only the managed models.
    #[arg(long, env = "MLREG_SKIP_UNMANAGED")]
    pub skip_unmanaged: bool,
    /// Output format.
    #[arg(long, short, env = "MLREG_OUTPUT", value_enum, default_value_t = PlanOutput::Text)]
    pub output: PlanOutput,
    /// Exit 2 when changes are pending, 0 when none, 1 on error (Terraform's convention).
    #[arg(long)]
    pub detailed_exitcode: bool,
}

/// Options of `reconcile`.
#[derive(Debug, Clone, Args)]
pub struct ReconcileArgs {
    /// The planning options.
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Only show the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Refuse to apply a plan of more than N changes.
    #[arg(long, env = "MLREG_MAX_CHANGES", value_name = "N")]
    pub max_changes: Option<usize>,
    /// How many models to apply at once (one write at a time per model).
    #[arg(long, env = "MLREG_CONCURRENCY", default_value_t = settings::DEFAULT_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Do not write the audit tags (`mlreg.transition`, `mlreg.alias.<alias>`).
    #[arg(long)]
    pub no_annotate: bool,
    /// Notifications.
    #[command(flatten)]
    pub notify: NotifyArgs,
}

/// Where notifications go (`reconcile`, `watch`; signed when `MLREG_NOTIFY_SECRET` is set).
#[derive(Debug, Clone, Args)]
pub struct NotifyArgs {
    /// Post what happened (applied, failed, invalid; from `watch` also drift and blocked) to
    /// this URL (repeatable).
    #[arg(long = "notify", value_name = "URL", help_heading = "Notifications")]
    pub urls: Vec<url::Url>,
    /// The body's shape: mlreg's JSON document, or Slack's incoming-webhook message.
    #[arg(long, value_enum, default_value_t = NotifyFormat::Json, help_heading = "Notifications")]
    pub notify_format: NotifyFormat,
}

/// Notification body formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NotifyFormat {
    /// `{"format_version": "1", "event": ..., "model": ..., "changes": [...], "commit": ...}`.
    Json,
    /// `{"text": "..."}`, a readable summary.
    Slack,
}

/// Options of `watch`.
#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// The desired-state directory.
    #[command(flatten)]
    pub dir: DirArgs,
    /// Resync against the registry this often (with jitter).
    #[arg(long, env = "MLREG_INTERVAL", default_value = settings::DEFAULT_INTERVAL_ARG, value_parser = parse_duration)]
    pub interval: Duration,
    /// Address of the health, readiness, metrics and status endpoints.
    #[arg(long, env = "MLREG_LISTEN", default_value_t = settings::DEFAULT_LISTEN)]
    pub listen: std::net::SocketAddr,
    /// Revert drift found in the registry (otherwise it is only reported).
    #[arg(long)]
    pub self_heal: bool,
    /// Refuse to apply a plan of more than N changes.
    #[arg(long, env = "MLREG_MAX_CHANGES", value_name = "N")]
    pub max_changes: Option<usize>,
    /// Poll the directory instead of relying on filesystem events (network mounts).
    #[arg(long)]
    pub poll: bool,
    /// Do not write the audit tags (`mlreg.transition`, `mlreg.alias.<alias>`).
    #[arg(long)]
    pub no_annotate: bool,
    /// Serve `POST /hooks/mlflow` for MLflow webhooks, verified with the secret held by this
    /// environment variable (its name, never the secret itself).
    #[arg(long, env = "MLREG_MLFLOW_WEBHOOK_SECRET_ENV", value_name = "VAR")]
    pub mlflow_webhook_secret_env: Option<String>,
    /// At startup, create or update this daemon's webhook on the MLflow server, calling URL
    /// (this daemon's `/hooks/mlflow` as the server reaches it; a URL without a path gets
    /// `/hooks/mlflow`). Needs --mlflow-webhook-secret-env.
    #[arg(
        long,
        env = "MLREG_REGISTER_MLFLOW_WEBHOOK",
        value_name = "URL",
        requires = "mlflow_webhook_secret_env"
    )]
    pub register_mlflow_webhook: Option<url::Url>,
    /// The name of the webhook --register-mlflow-webhook creates or updates (one per daemon).
    #[arg(
        long,
        env = "MLREG_MLFLOW_WEBHOOK_NAME",
        value_name = "NAME",
        default_value = crate::daemon::registration::DEFAULT_NAME,
        value_parser = parse_webhook_name
    )]
    pub mlflow_webhook_name: String,
    /// Notifications.
    #[command(flatten)]
    pub notify: NotifyArgs,
}

/// A webhook name as MLflow accepts it: letters, digits, `.`, `_` and `-`, starting and
/// ending with a letter or digit, less than 63 characters.
fn parse_webhook_name(name: &str) -> Result<String, String> {
    let edges_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let valid = name.len() < 63
        && edges_ok(name.chars().next())
        && edges_ok(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(name.to_owned())
    } else {
        Err("MLflow takes letters, digits, `.`, `_` and `-`, starting and ending with a letter or digit, less than 63 characters".to_owned())
    }
}

/// Options of `versions`.
#[derive(Debug, Clone, Args)]
pub struct VersionsArgs {
    /// The registered model.
    pub model: String,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = TableOutput::Table)]
    pub output: TableOutput,
}

/// Options of `info`.
#[derive(Debug, Clone, Args)]
pub struct InfoArgs {
    /// The registered model.
    pub model: String,
    /// The desired-state directory (to name the managing manifest and show drift).
    #[command(flatten)]
    pub dir: DirArgs,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = TableOutput::Table)]
    pub output: TableOutput,
}

/// Options of `promote`.
#[derive(Debug, Clone, Args)]
pub struct PromoteArgs {
    /// The registered model.
    pub model: String,
    /// What is promoted: a stage (`Staging`) or an alias (`@challenger`). Default: Staging
    /// when the manifest declares `stages`, else @challenger.
    #[arg(long, value_name = "STAGE|@ALIAS")]
    pub from: Option<Target>,
    /// Where it goes: a stage (`Production`) or an alias (`@champion`). Default: Production
    /// when the manifest declares `stages`, else @champion.
    #[arg(long, value_name = "STAGE|@ALIAS")]
    pub to: Option<Target>,
    /// Keep the source alias in the manifest (alias → alias promotions remove it otherwise).
    #[arg(long)]
    pub keep_source: bool,
    /// The desired-state directory.
    #[command(flatten)]
    pub dir: DirArgs,
    /// Print the diff without writing the file.
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of `set-alias`.
#[derive(Debug, Clone, Args)]
pub struct SetAliasArgs {
    /// The registered model.
    pub model: String,
    /// The alias (`champion` or `@champion`).
    pub alias: String,
    /// The version it points at: a number, `run:RUN_ID` (`run:RUN_ID/ARTIFACT_PATH`) or a
    /// logged model id `m-…` (reconcile registers the version when none matches).
    #[arg(required_unless_present = "delete", conflicts_with = "delete")]
    pub version: Option<crate::manifest::VersionRef>,
    /// Remove the alias from the manifest (reconcile then deletes it from the registry).
    #[arg(long)]
    pub delete: bool,
    /// The desired-state directory.
    #[command(flatten)]
    pub dir: DirArgs,
    /// Print the diff without writing the file.
    #[arg(long)]
    pub dry_run: bool,
}

/// The migrations.
#[derive(Debug, Clone, Subcommand)]
pub enum MigrateCommand {
    /// Each stage holder also gets the mapped alias (Production=champion,
    /// Staging=challenger), `serving.prefer` names the aliases, and with --drop-stages
    /// `stages` goes (mlreg then leaves stages alone).
    StagesToAliases(MigrateArgs),
}

/// Options of `migrate stages-to-aliases`.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// Only this model (repeatable); default: every managed model that declares `stages`.
    #[arg(long = "model", value_name = "NAME")]
    pub models: Vec<String>,
    /// Which alias a stage's holder gets, as STAGE=ALIAS (repeatable; replaces that stage's
    /// default: Production=champion, Staging=challenger).
    #[arg(long = "map", value_name = "STAGE=ALIAS", value_parser = settings::parse_stage_alias)]
    pub map: Vec<(Stage, String)>,
    /// Also remove `stages` from the manifests: mlreg stops managing stages.
    #[arg(long)]
    pub drop_stages: bool,
    /// The desired-state directory.
    #[command(flatten)]
    pub dir: DirArgs,
    /// Print the diffs without writing the files.
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of `set-stage`.
#[derive(Debug, Clone, Args)]
pub struct SetStageArgs {
    /// The registered model.
    pub model: String,
    /// The version: a number, `run:RUN_ID` (`run:RUN_ID/ARTIFACT_PATH`) or a logged model id
    /// `m-…` (reconcile registers the version when none matches).
    pub version: crate::manifest::VersionRef,
    /// Staging, Production, or Archived/None to take the version out of `stages`.
    pub stage: Stage,
    /// The desired-state directory.
    #[command(flatten)]
    pub dir: DirArgs,
    /// Print the diff without writing the file.
    #[arg(long)]
    pub dry_run: bool,
    /// Add VERSION next to the versions already in STAGE instead of replacing them.
    #[arg(long)]
    pub keep_existing: bool,
}

/// Options of `export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Only this model (repeatable); default: every model.
    #[arg(long = "model", value_name = "NAME")]
    pub models: Vec<String>,
    /// Directory to write manifests into.
    #[arg(long, default_value = settings::DEFAULT_DIR)]
    pub out: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

/// Options of `resolve`.
#[derive(Debug, Clone, Args)]
pub struct ResolveArgs {
    /// The registered model.
    pub model: String,
    /// Where to look, in order: stages (Production, Staging) and aliases written @name.
    /// Default: the manifest's `serving.prefer`, else Production Staging.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<Target>,
    /// Deprecated: name the targets instead (`--stage Production` is `Production Staging`,
    /// `--stage Staging` is `Staging`).
    #[arg(long, value_name = "STAGE", conflicts_with = "targets")]
    pub stage: Option<Stage>,
    /// The desired-state directory (for the local fallback).
    #[command(flatten)]
    pub dir: DirArgs,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = TableOutput::Table)]
    pub output: TableOutput,
}

/// Options of `completions`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// Options of `man`.
#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write mlreg.1 and one mlreg-COMMAND.1 per subcommand into this directory (created if
    /// missing) instead of printing mlreg.1 on stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Output formats of `plan` and `reconcile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanOutput {
    /// Terraform-like text, colored on a terminal.
    Text,
    /// A versioned JSON document for tools.
    Json,
    /// Markdown for a pull-request comment.
    Markdown,
}

/// Output formats of the read commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableOutput {
    /// A table for people.
    Table,
    /// JSON for tools.
    Json,
}

/// When to color output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
