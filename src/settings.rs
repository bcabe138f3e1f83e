//! Settings: the parsed command line plus the environment, validated, one value per command.
//!
//! clap turns the arguments into a raw [`Cli`] (typed, but unchecked across flags and
//! without the environment the registry client reads). This module turns that into the
//! [`Settings`] the commands run with, before any network I/O, so that an argument error
//! never waits on (or reaches) the registry — ripgrep's `lowargs` → `hiargs` step, uv's
//! `settings.rs`. The defaults that several layers need (concurrency, resync interval,
//! listen address, desired-state directory) are written here once.
//!
//! Paths given with `--dir` are normalised here too: a directory under the working
//! directory is kept relative to it, so that plans, diagnostics and the `mlreg.transition`
//! audit tag name `desired-state/x.yaml` whether CI passed `--dir desired-state` or an
//! absolute path into its checkout.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{
    Cli, ColorChoice, Command, GlobalArgs, LogFormat, MigrateCommand, PlanOutput, TableOutput,
};
use crate::daemon;
use crate::registry::RegistryConfig;
use crate::stage::Stage;
use crate::target::Target;

/// How many models `reconcile` and `watch` apply at once.
pub const DEFAULT_CONCURRENCY: u16 = 8;

/// The resync interval of `mlreg watch`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// [`DEFAULT_INTERVAL`] as clap shows and parses it (a test keeps the two equal).
pub const DEFAULT_INTERVAL_ARG: &str = "60s";

/// [`crate::registry::DEFAULT_REQUEST_TIMEOUT`] as clap shows and parses it (a test keeps
/// the two equal).
pub const DEFAULT_REQUEST_TIMEOUT_ARG: &str = "30s";

/// The shortest `--interval` accepted: a resync reads the whole registry.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Where `mlreg watch` serves its health, readiness, metrics and status endpoints:
/// loopback, because `/status` names every managed model.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 9464));

/// The desired-state directory (`--dir`) and where `export` writes (`--out`).
pub const DEFAULT_DIR: &str = "desired-state";

/// `resolve` asks the registry with at most this long a wait for a connection...
const RESOLVE_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// ...this long a wait for one answer...
const RESOLVE_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// ...this many retries of a failed read (an outage must not hold up a serving process)...
const RESOLVE_MAX_RETRIES: usize = 1;
/// ...and backoff delays no longer than this.
const RESOLVE_MAX_BACKOFF: Duration = Duration::from_secs(1);

/// An argument the command line accepted but the command cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `watch --interval` below [`MIN_INTERVAL`].
    #[error("--interval must be at least {}s (got {got:?})", MIN_INTERVAL.as_secs())]
    IntervalTooShort {
        /// The interval given.
        got: Duration,
    },
    /// `resolve --stage` naming a stage nothing is served from.
    #[error("--stage must be Production or Staging, not {stage}")]
    ServingStage {
        /// The stage given.
        stage: Stage,
    },
    /// `--mlflow-webhook-secret-env VAR` naming an unset or empty variable.
    #[error(
        "--mlflow-webhook-secret-env names `{variable}`, which is not set (or empty): set it to the webhook's secret, the one given to MLflow when the webhook was created"
    )]
    WebhookSecret {
        /// The variable's name.
        variable: String,
    },
    /// `--env` or `--all-envs` without a project file.
    #[error(
        "{flag} needs a project file: none given with --config or MLREG_CONFIG, and no mlreg.yaml in the working directory"
    )]
    NoProject {
        /// The flag given.
        flag: &'static str,
    },
    /// `--env NAME` naming no environment of the project file.
    #[error("unknown environment `{name}`: the project file {project} declares {}", known.join(", "))]
    UnknownEnvironment {
        /// The name given.
        name: String,
        /// The project file.
        project: String,
        /// The environments it declares.
        known: Vec<String>,
    },
    /// `--env`/`--all-envs` with a flag that says the same thing differently.
    #[error(
        "{flag} cannot be given with {environments}: the environment names its own (remove {flag}, or drop {environments})"
    )]
    EnvironmentConflict {
        /// The conflicting flag.
        flag: &'static str,
        /// `--env NAME` or `--all-envs`.
        environments: String,
    },
    /// `set-alias` with an alias name MLflow refuses.
    #[error("invalid alias `{alias}`: {problem}")]
    Alias {
        /// The name given.
        alias: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// The registry configuration of a command that talks to a registry: read once from
/// `--registry-uri`, `--request-timeout` and the `MLFLOW_TRACKING_*` variables.
///
/// It stays a `Result` so that each command reports a configuration problem where it always
/// has: `plan` after checking the manifests, `resolve` as "the registry cannot be asked"
/// (it then answers from the manifest).
pub type RegistrySettings = Result<RegistryConfig, crate::registry::Error>;

/// Everything a run needs, validated.
#[derive(Debug)]
pub struct Settings {
    /// What every command shares: output and logging.
    pub global: GlobalSettings,
    /// The command and its validated options.
    pub command: CommandSettings,
}

/// Output and logging, shared by every command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalSettings {
    /// `--color`.
    pub color: ColorChoice,
    /// `NO_COLOR` is set to a non-empty value (<https://no-color.org>).
    pub no_color: bool,
    /// The tracing filter: `RUST_LOG` when it parses, else one from `-v`.
    pub log: LogSettings,
}

/// How the log subscriber on stderr is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// `RUST_LOG`, which overrides [`LogSettings::default_filter`] when it is valid.
    pub rust_log: Option<String>,
    /// The filter from `-v`: warnings for commands, `info` for the daemon (a long-running
    /// service is expected to say what it does), more with each `-v`.
    pub default_filter: String,
    /// `--log-format`.
    pub format: LogFormat,
}

/// One value per subcommand.
#[derive(Debug)]
pub enum CommandSettings {
    /// `validate`.
    Validate(ValidateSettings),
    /// `schema`.
    Schema,
    /// `schema --project`.
    ProjectSchema,
    /// `completions SHELL`.
    Completions(clap_complete::Shell),
    /// `man [--dir DIR]`: where to write the pages, `None` for mlreg.1 on stdout.
    Man(Option<PathBuf>),
    /// `versions MODEL`.
    Versions(VersionsSettings),
    /// `info MODEL`.
    Info(InfoSettings),
    /// `plan` (a dry-run reconcile) and `reconcile`.
    Reconcile(ReconcileSettings),
    /// `plan --all-envs` and `reconcile --all-envs`.
    ReconcileAll(AllEnvironmentsSettings),
    /// `watch`.
    Watch(WatchSettings),
    /// `promote MODEL`.
    Promote(PromoteSettings),
    /// `set-stage MODEL VERSION STAGE`.
    SetStage(SetStageSettings),
    /// `set-alias MODEL ALIAS VERSION | --delete`.
    SetAlias(SetAliasSettings),
    /// `migrate stages-to-aliases`.
    MigrateStagesToAliases(MigrateSettings),
    /// `export`.
    Export(ExportSettings),
    /// `resolve MODEL`.
    Resolve(ResolveSettings),
}

/// `validate`.
#[derive(Debug, Clone)]
pub struct ValidateSettings {
    /// The desired-state directory, relative to the working directory when under it
    /// (checked when `environments` is empty).
    pub dir: PathBuf,
    /// The project file, checked too when there is one.
    pub project: Option<crate::project::Project>,
    /// The environments whose directories are checked (by name), in the file's order:
    /// the one of `--env`, else all of them unless `--dir` was given.
    pub environments: Vec<(String, PathBuf)>,
}

/// `plan --all-envs` and `reconcile --all-envs`.
#[derive(Debug)]
pub struct AllEnvironmentsSettings {
    /// One run per environment, in the project file's order.
    pub environments: Vec<ReconcileSettings>,
    /// Text, JSON or Markdown.
    pub output: PlanOutput,
    /// Exit 2 when any environment has changes pending.
    pub detailed_exitcode: bool,
    /// Only plan (`plan`, `reconcile --dry-run`).
    pub dry_run: bool,
    /// Where notifications go (shared by the environments).
    pub notify: NotifySettings,
}

/// `versions`.
#[derive(Debug)]
pub struct VersionsSettings {
    /// The registry.
    pub registry: RegistrySettings,
    /// The registered model.
    pub model: String,
    /// Table or JSON.
    pub output: TableOutput,
}

/// `info`.
#[derive(Debug)]
pub struct InfoSettings {
    /// The registry.
    pub registry: RegistrySettings,
    /// The registered model.
    pub model: String,
    /// The desired-state directory (to name the managing manifest and show drift).
    pub dir: PathBuf,
    /// Table or JSON.
    pub output: TableOutput,
}

/// `plan` and `reconcile`.
#[derive(Debug)]
pub struct ReconcileSettings {
    /// The registry.
    pub registry: RegistrySettings,
    /// The desired-state directory.
    pub dir: PathBuf,
    /// Only these models (empty: all).
    pub models: Vec<String>,
    /// List the models no manifest manages in the plan (`--skip-unmanaged` turns it off).
    pub list_unmanaged: bool,
    /// Text, JSON or Markdown.
    pub output: PlanOutput,
    /// Exit 2 when changes are pending.
    pub detailed_exitcode: bool,
    /// Only show the plan (`plan`, `reconcile --dry-run`).
    pub dry_run: bool,
    /// Refuse plans of more changes.
    pub max_changes: Option<usize>,
    /// How many models to apply at once (at least 1).
    pub concurrency: usize,
    /// Write the audit tags: `mlreg.transition` on transitioned versions,
    /// `mlreg.alias.<alias>` on the version an alias was pointed at.
    pub annotate: bool,
    /// Where notifications go.
    pub notify: NotifySettings,
    /// The environment (`--env`, or one of `--all-envs`), named in notifications.
    pub environment: Option<String>,
}

/// `--notify URL`... and the project file's `notifications`, and `MLREG_NOTIFY_SECRET`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifySettings {
    /// The receivers, each with the events it gets.
    pub targets: Vec<crate::notify::Target>,
    /// Signs every body (`X-Mlreg-Signature`) when set.
    pub secret: Option<Vec<u8>>,
}

/// `watch`.
#[derive(Debug)]
pub struct WatchSettings {
    /// The registry.
    pub registry: RegistrySettings,
    /// The daemon's configuration, interval checked.
    pub config: daemon::Config,
    /// `--register-mlflow-webhook`: the webhook to create or update at startup.
    pub registration: Option<Box<daemon::registration::Registration>>,
}

/// `promote`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromoteSettings {
    /// The registered model.
    pub model: String,
    /// What is promoted (`None`: the default for the manifest, decided once it is read).
    pub from: Option<Target>,
    /// Where it goes (`None`: the default for the manifest).
    pub to: Option<Target>,
    /// Keep the source alias.
    pub keep_source: bool,
    /// The desired-state directory.
    pub dir: PathBuf,
    /// Print the diff without writing.
    pub dry_run: bool,
}

/// `set-stage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetStageSettings {
    /// The registered model.
    pub model: String,
    /// The version: a number, or a selector (`run:ID`, `m-ID`).
    pub version: crate::manifest::VersionRef,
    /// Where it goes (`None`/`Archived`: out of `stages`).
    pub stage: Stage,
    /// Add next to the versions already in the stage.
    pub keep_existing: bool,
    /// The desired-state directory.
    pub dir: PathBuf,
    /// Print the diff without writing.
    pub dry_run: bool,
}

/// `set-alias`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAliasSettings {
    /// The registered model.
    pub model: String,
    /// The alias, without `@`, checked by MLflow's rules.
    pub alias: String,
    /// The version it points at (a number, or a selector: `run:ID`, `m-ID`); `None`:
    /// remove the alias.
    pub version: Option<crate::manifest::VersionRef>,
    /// The desired-state directory.
    pub dir: PathBuf,
    /// Print the diff without writing.
    pub dry_run: bool,
}

/// `migrate stages-to-aliases`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateSettings {
    /// Only these models (empty: every managed model declaring `stages`).
    pub models: Vec<String>,
    /// Which alias each stage's holder gets (the defaults, with `--map` applied).
    pub map: BTreeMap<Stage, String>,
    /// Remove `stages` too.
    pub drop_stages: bool,
    /// The desired-state directory.
    pub dir: PathBuf,
    /// Print the diffs without writing.
    pub dry_run: bool,
}

/// `export`.
#[derive(Debug)]
pub struct ExportSettings {
    /// The registry.
    pub registry: RegistrySettings,
    /// Only these models (empty: every model).
    pub models: Vec<String>,
    /// Where to write, as given.
    pub out: PathBuf,
    /// Overwrite existing files.
    pub force: bool,
}

/// `resolve`.
#[derive(Debug)]
pub struct ResolveSettings {
    /// The registry, with the short timeouts and the single retry of a serving lookup.
    pub registry: RegistrySettings,
    /// The registered model.
    pub model: String,
    /// The targets named on the command line (empty: the manifest's, else the default).
    pub targets: Vec<Target>,
    /// Whether they come from the deprecated `--stage` (the command then says so).
    pub from_stage_flag: bool,
    /// Say which target answered even when stderr is not a terminal (`-v`).
    pub explain: bool,
    /// The desired-state directory (for the manifest's answer and local fallback).
    pub dir: PathBuf,
    /// Text or JSON.
    pub output: TableOutput,
}

impl Settings {
    /// Validates `cli` with the process's environment and working directory (no project
    /// file: see [`CommandSettings::with_project`]).
    pub fn from_process(cli: Cli) -> Result<Self, Error> {
        let env = |name: &str| std::env::var(name).ok();
        let cwd = std::env::current_dir().ok();
        Settings::from_cli(cli, &env, cwd.as_deref())
    }

    /// Validates `cli`; `env` reads environment variables and `cwd` is the working
    /// directory (`None` when unknown: paths then stay as given). Does no I/O.
    pub fn from_cli(
        cli: Cli,
        env: &dyn Fn(&str) -> Option<String>,
        cwd: Option<&Path>,
    ) -> Result<Self, Error> {
        let global = GlobalSettings::new(&cli, env);
        let command = CommandSettings::new(cli, env, cwd)?;
        Ok(Settings { global, command })
    }
}

impl GlobalSettings {
    /// Output and logging settings of `cli`; cannot fail, so that even a settings error is
    /// printed the way the user asked for.
    pub fn new(cli: &Cli, env: &dyn Fn(&str) -> Option<String>) -> Self {
        let quiet = if matches!(cli.command, Command::Watch(_)) {
            "info"
        } else {
            "warn"
        };
        let level = match cli.global.verbose {
            0 => quiet,
            1 => "info",
            2 => "debug",
            _ => "trace",
        };
        GlobalSettings {
            color: cli.global.color,
            no_color: env("NO_COLOR").is_some_and(|value| !value.is_empty()),
            log: LogSettings {
                rust_log: env("RUST_LOG"),
                default_filter: format!("{level},hyper=warn,reqwest=warn,rustls=warn,h2=warn"),
                format: cli.global.log_format,
            },
        }
    }
}

impl CommandSettings {
    /// Validates the subcommand of `cli` (see [`Settings::from_cli`]), with no project file.
    pub fn new(
        cli: Cli,
        env: &dyn Fn(&str) -> Option<String>,
        cwd: Option<&Path>,
    ) -> Result<Self, Error> {
        CommandSettings::with_project(cli, env, cwd, None)
    }

    /// Whether `cli`'s command reads the project file (when there is one): every command
    /// but `schema`, `completions` and `man`.
    pub fn reads_project(cli: &Cli) -> bool {
        !matches!(
            cli.command,
            Command::Schema(_) | Command::Completions(_) | Command::Man(_)
        )
    }

    /// Validates the subcommand of `cli` with the project file read (if any): `--env`
    /// picks the registry and directory of one environment, `--all-envs` runs them all.
    pub fn with_project(
        cli: Cli,
        env: &dyn Fn(&str) -> Option<String>,
        cwd: Option<&Path>,
        project: Option<crate::project::Project>,
    ) -> Result<Self, Error> {
        let global = &cli.global;
        let selected = select_environment(global, project.as_ref(), env)?;
        let context = Context {
            global,
            env,
            cwd,
            selected,
        };
        let dir = |dir: PathBuf| context.dir(dir);
        let registry = |_: &GlobalArgs, _: &dyn Fn(&str) -> Option<String>| context.registry();
        let project_notifications = project
            .as_ref()
            .map(|project| project.notifications.clone())
            .unwrap_or_default();
        let environment = selected.map(|selected| selected.name.clone());
        Ok(match cli.command {
            Command::Validate(args) => {
                let explicit_dir = context.explicit_dir(&args.dir);
                let environments = match (selected, &project) {
                    (Some(selected), _) => vec![(selected.name.clone(), selected.dir.clone())],
                    (None, Some(project)) if !explicit_dir => project
                        .environments
                        .iter()
                        .map(|env| (env.name.clone(), relative_to(env.dir.clone(), cwd)))
                        .collect(),
                    (None, _) => Vec::new(),
                };
                CommandSettings::Validate(ValidateSettings {
                    dir: dir(args.dir)?,
                    environments: environments
                        .into_iter()
                        .map(|(name, path)| (name, relative_to(path, cwd)))
                        .collect(),
                    project,
                })
            }
            Command::Schema(args) if args.project => CommandSettings::ProjectSchema,
            Command::Schema(_) => CommandSettings::Schema,
            Command::Plan(args) if args.all_envs => all_environments(
                &context,
                project.as_ref(),
                args,
                None,
                NotifySettings::default(),
            )?,
            Command::Reconcile(args) if args.plan.all_envs => {
                let mut notify = notify_settings(&args.notify, env);
                notify.targets.extend(project_notifications.clone());
                all_environments(
                    &context,
                    project.as_ref(),
                    args.plan.clone(),
                    Some(&args),
                    notify,
                )?
            }
            Command::Completions(args) => CommandSettings::Completions(args.shell),
            Command::Man(args) => CommandSettings::Man(args.dir.map(|d| relative_to(d, cwd))),
            Command::Versions(args) => CommandSettings::Versions(VersionsSettings {
                registry: registry(global, env),
                model: args.model,
                output: args.output,
            }),
            Command::Info(args) => CommandSettings::Info(InfoSettings {
                registry: registry(global, env),
                model: args.model,
                dir: dir(args.dir.dir)?,
                output: args.output,
            }),
            Command::Plan(args) => CommandSettings::Reconcile(ReconcileSettings {
                registry: registry(global, env),
                dir: dir(args.dir.dir)?,
                models: args.models,
                list_unmanaged: !args.skip_unmanaged,
                output: args.output,
                detailed_exitcode: args.detailed_exitcode,
                dry_run: true,
                max_changes: None,
                concurrency: usize::from(DEFAULT_CONCURRENCY),
                annotate: true,
                notify: NotifySettings::default(),
                environment,
            }),
            Command::Reconcile(args) => CommandSettings::Reconcile(ReconcileSettings {
                registry: registry(global, env),
                dir: dir(args.plan.dir.dir)?,
                models: args.plan.models,
                list_unmanaged: !args.plan.skip_unmanaged,
                output: args.plan.output,
                detailed_exitcode: args.plan.detailed_exitcode,
                dry_run: args.dry_run,
                max_changes: args.max_changes,
                concurrency: usize::from(args.concurrency.max(1)),
                annotate: !args.no_annotate,
                notify: {
                    let mut notify = notify_settings(&args.notify, env);
                    notify.targets.extend(project_notifications);
                    notify
                },
                environment,
            }),
            Command::Watch(args) => {
                if args.interval < MIN_INTERVAL {
                    return Err(Error::IntervalTooShort { got: args.interval });
                }
                let secret = match &args.mlflow_webhook_secret_env {
                    None => None,
                    Some(variable) => match env(variable) {
                        Some(secret) if !secret.is_empty() => Some(secret),
                        _ => {
                            return Err(Error::WebhookSecret {
                                variable: variable.clone(),
                            });
                        }
                    },
                };
                let webhook = secret.as_ref().map(|secret| {
                    std::sync::Arc::new(daemon::webhook::Verifier::new(secret.as_bytes()))
                });
                let registration =
                    args.register_mlflow_webhook
                        .clone()
                        .zip(secret)
                        .map(|(url, secret)| {
                            Box::new(daemon::registration::Registration::new(
                                args.mlflow_webhook_name.clone(),
                                url,
                                secret,
                            ))
                        });
                let config = daemon::Config {
                    interval: args.interval,
                    listen: args.listen,
                    self_heal: args.self_heal,
                    max_changes: args.max_changes,
                    annotate: !args.no_annotate,
                    webhook,
                    notify: {
                        let mut notify = notify_settings(&args.notify, env);
                        notify.targets.extend(project_notifications);
                        notify
                    },
                    environment,
                    ..daemon::Config::new(dir(args.dir.dir)?)
                }
                .with_polling(args.poll);
                CommandSettings::Watch(WatchSettings {
                    registry: registry(global, env),
                    config,
                    registration,
                })
            }
            Command::Promote(args) => CommandSettings::Promote(PromoteSettings {
                model: args.model,
                from: args.from,
                to: args.to,
                keep_source: args.keep_source,
                dir: dir(args.dir.dir)?,
                dry_run: args.dry_run,
            }),
            Command::SetStage(args) => CommandSettings::SetStage(SetStageSettings {
                model: args.model,
                version: args.version,
                stage: args.stage,
                keep_existing: args.keep_existing,
                dir: dir(args.dir.dir)?,
                dry_run: args.dry_run,
            }),
            Command::SetAlias(args) => {
                let alias = args
                    .alias
                    .strip_prefix('@')
                    .unwrap_or(&args.alias)
                    .to_owned();
                if let Err(problem) = crate::manifest::validate_alias_name(&alias) {
                    return Err(Error::Alias { alias, problem });
                }
                CommandSettings::SetAlias(SetAliasSettings {
                    model: args.model,
                    alias,
                    version: if args.delete {
                        None
                    } else {
                        args.version.clone()
                    },
                    dir: dir(args.dir.dir)?,
                    dry_run: args.dry_run,
                })
            }
            Command::Migrate(MigrateCommand::StagesToAliases(args)) => {
                let mut map = crate::manifest::edit::lifecycle::default_migration_map();
                map.extend(args.map);
                CommandSettings::MigrateStagesToAliases(MigrateSettings {
                    models: args.models,
                    map,
                    drop_stages: args.drop_stages,
                    dir: dir(args.dir.dir)?,
                    dry_run: args.dry_run,
                })
            }
            Command::Export(args) => CommandSettings::Export(ExportSettings {
                registry: registry(global, env),
                models: args.models,
                out: match selected {
                    Some(selected) if args.out == Path::new(DEFAULT_DIR) => {
                        relative_to(selected.dir.clone(), cwd)
                    }
                    _ => args.out,
                },
                force: args.force,
            }),
            Command::Resolve(args) => {
                let from_stage_flag = args.stage.is_some();
                let targets = match args.stage {
                    Some(stage) if !stage.is_declarable() => {
                        return Err(Error::ServingStage { stage });
                    }
                    Some(stage) => crate::resolve::stage_targets(stage),
                    None => args.targets,
                };
                CommandSettings::Resolve(ResolveSettings {
                    registry: registry(global, env).map(for_serving),
                    model: args.model,
                    targets,
                    from_stage_flag,
                    explain: global.verbose > 0,
                    dir: dir(args.dir.dir)?,
                    output: args.output,
                })
            }
        })
    }
}

/// The environment `--env` names, checked against the project file and the other flags.
fn select_environment<'a>(
    global: &GlobalArgs,
    project: Option<&'a crate::project::Project>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<&'a crate::project::Environment>, Error> {
    let Some(name) = &global.environment else {
        return Ok(None);
    };
    let Some(project) = project else {
        return Err(Error::NoProject { flag: "--env" });
    };
    let Some(selected) = project.environment(name) else {
        return Err(Error::UnknownEnvironment {
            name: name.clone(),
            project: project.path.display().to_string(),
            known: project.names().into_iter().map(str::to_owned).collect(),
        });
    };
    if explicit_registry_uri(global, env) {
        return Err(Error::EnvironmentConflict {
            flag: "--registry-uri",
            environments: format!("--env {name}"),
        });
    }
    Ok(Some(selected))
}

/// Whether `--registry-uri` was given on the command line (not just `MLFLOW_TRACKING_URI`,
/// which an environment overrides, as the more specific setting).
fn explicit_registry_uri(global: &GlobalArgs, env: &dyn Fn(&str) -> Option<String>) -> bool {
    global
        .registry_uri
        .as_ref()
        .is_some_and(|uri| env("MLFLOW_TRACKING_URI").as_ref() != Some(uri))
}

/// What the registry and directory of a command come from: the flags and variables, or
/// the environment `--env` selected.
struct Context<'a> {
    global: &'a GlobalArgs,
    env: &'a dyn Fn(&str) -> Option<String>,
    cwd: Option<&'a Path>,
    selected: Option<&'a crate::project::Environment>,
}

impl Context<'_> {
    /// Whether `--dir` was given on the command line: neither the default nor `MLREG_DIR`
    /// (which an environment overrides).
    fn explicit_dir(&self, dir: &Path) -> bool {
        dir != Path::new(DEFAULT_DIR)
            && (self.env)("MLREG_DIR").is_none_or(|variable| Path::new(&variable) != dir)
    }

    /// The directory: the selected environment's, else `given`; relative to the working
    /// directory when under it.
    fn dir(&self, given: PathBuf) -> Result<PathBuf, Error> {
        match self.selected {
            None => Ok(relative_to(given, self.cwd)),
            Some(selected) if self.explicit_dir(&given) => Err(Error::EnvironmentConflict {
                flag: "--dir",
                environments: format!("--env {}", selected.name),
            }),
            Some(selected) => Ok(relative_to(selected.dir.clone(), self.cwd)),
        }
    }

    /// The registry: the selected environment's, else the flags' and variables'.
    fn registry(&self) -> RegistrySettings {
        match self.selected {
            None => registry(self.global, self.env),
            Some(selected) => environment_registry(self.global, self.env, selected),
        }
    }
}

/// The registry of `environment`: its address, workspace and credential variables, with
/// the global timeouts and TLS settings.
fn environment_registry(
    global: &GlobalArgs,
    env: &dyn Fn(&str) -> Option<String>,
    environment: &crate::project::Environment,
) -> RegistrySettings {
    let missing = environment.missing_variables(env);
    if !missing.is_empty() {
        return Err(crate::registry::Error::Config(format!(
            "environment `{}` takes its credentials from {}, which {} not set (or empty)",
            environment.name,
            missing
                .iter()
                .map(|name| format!("`{name}`"))
                .collect::<Vec<_>>()
                .join(" and "),
            if missing.len() == 1 { "is" } else { "are" }
        )));
    }
    let variables = environment.variables(env);
    let mut config =
        RegistryConfig::from_env(Some(&environment.registry_uri), variables).map_err(|error| {
            match error {
                crate::registry::Error::Config(message) => crate::registry::Error::Config(format!(
                    "environment `{}`: {message}",
                    environment.name
                )),
                other => other,
            }
        })?;
    config.request_timeout = global.request_timeout;
    Ok(config)
}

/// `plan --all-envs` / `reconcile --all-envs`: one run per environment, in the file's order.
fn all_environments(
    context: &Context<'_>,
    project: Option<&crate::project::Project>,
    plan: crate::cli::PlanArgs,
    reconcile: Option<&crate::cli::ReconcileArgs>,
    notify: NotifySettings,
) -> Result<CommandSettings, Error> {
    let Some(project) = project else {
        return Err(Error::NoProject { flag: "--all-envs" });
    };
    let environments = "--all-envs".to_owned();
    if let Some(name) = &context.global.environment {
        return Err(Error::EnvironmentConflict {
            flag: "--all-envs",
            environments: format!("--env {name}"),
        });
    }
    if explicit_registry_uri(context.global, context.env) {
        return Err(Error::EnvironmentConflict {
            flag: "--registry-uri",
            environments,
        });
    }
    if context.explicit_dir(&plan.dir.dir) {
        return Err(Error::EnvironmentConflict {
            flag: "--dir",
            environments,
        });
    }
    let dry_run = reconcile.is_none_or(|args| args.dry_run);
    let runs = project
        .environments
        .iter()
        .map(|environment| ReconcileSettings {
            registry: environment_registry(context.global, context.env, environment),
            dir: relative_to(environment.dir.clone(), context.cwd),
            models: plan.models.clone(),
            list_unmanaged: !plan.skip_unmanaged,
            output: plan.output,
            detailed_exitcode: plan.detailed_exitcode,
            dry_run,
            max_changes: reconcile.and_then(|args| args.max_changes),
            concurrency: reconcile.map_or(usize::from(DEFAULT_CONCURRENCY), |args| {
                usize::from(args.concurrency.max(1))
            }),
            annotate: reconcile.is_none_or(|args| !args.no_annotate),
            notify: NotifySettings::default(),
            environment: Some(environment.name.clone()),
        })
        .collect();
    Ok(CommandSettings::ReconcileAll(AllEnvironmentsSettings {
        environments: runs,
        output: plan.output,
        detailed_exitcode: plan.detailed_exitcode,
        dry_run,
        notify,
    }))
}

/// The notification targets of `--notify` (every event), signed with `MLREG_NOTIFY_SECRET`
/// when set.
fn notify_settings(
    args: &crate::cli::NotifyArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> NotifySettings {
    let format = match args.notify_format {
        crate::cli::NotifyFormat::Json => crate::notify::Format::Json,
        crate::cli::NotifyFormat::Slack => crate::notify::Format::Slack,
    };
    NotifySettings {
        targets: args
            .urls
            .iter()
            .map(|url| crate::notify::Target::new(url.clone(), format))
            .collect(),
        secret: env("MLREG_NOTIFY_SECRET")
            .filter(|secret| !secret.is_empty())
            .map(String::into_bytes),
    }
}

fn registry(global: &GlobalArgs, env: &dyn Fn(&str) -> Option<String>) -> RegistrySettings {
    let mut config = RegistryConfig::from_env(global.registry_uri.as_deref(), env)?;
    config.request_timeout = global.request_timeout;
    Ok(config)
}

/// `config` with the short timeouts and single retry of `resolve`: a serving process that
/// asks at startup must not be held up by a registry outage, since the manifest can answer.
fn for_serving(mut config: RegistryConfig) -> RegistryConfig {
    config.max_retries = RESOLVE_MAX_RETRIES;
    config.connect_timeout = config.connect_timeout.min(RESOLVE_CONNECT_TIMEOUT);
    config.request_timeout = config.request_timeout.min(RESOLVE_REQUEST_TIMEOUT);
    config.max_backoff = config.max_backoff.min(RESOLVE_MAX_BACKOFF);
    config
}

/// `dir` relative to `cwd` when it lies under it, else as given.
///
/// Lexical first (no file system access, so symbolic links inside the checkout keep the
/// names people wrote); then, for an existing directory, through the canonical path, since
/// the working directory the OS reports is canonical. `cwd` itself becomes `.`, as with
/// `--dir .`.
pub fn relative_to(dir: PathBuf, cwd: Option<&Path>) -> PathBuf {
    let Some(cwd) = cwd.filter(|_| dir.is_absolute()) else {
        return dir;
    };
    let relative = dir.strip_prefix(cwd).map(Path::to_path_buf).or_else(|_| {
        std::fs::canonicalize(&dir)
            .map_err(|_| ())
            .and_then(|real| {
                real.strip_prefix(cwd)
                    .map(Path::to_path_buf)
                    .map_err(|_| ())
            })
    });
    match relative {
        Ok(relative) if relative.as_os_str().is_empty() => PathBuf::from("."),
        Ok(relative) => relative,
        Err(()) => dir,
    }
}

/// Parses `STAGE=ALIAS` (`Production=champion`; the alias with or without `@`), clap's
/// value parser of `migrate --map`.
pub fn parse_stage_alias(input: &str) -> Result<(Stage, String), String> {
    let (stage, alias) = input
        .split_once('=')
        .ok_or_else(|| format!("`{input}` is not STAGE=ALIAS (such as Production=champion)"))?;
    let stage: Stage = stage.trim().parse().map_err(|error| format!("{error}"))?;
    if !stage.is_declarable() {
        return Err(format!(
            "{stage} holds no declared version: map Production or Staging"
        ));
    }
    let alias = alias.trim();
    let alias = alias.strip_prefix('@').unwrap_or(alias);
    crate::manifest::validate_alias_name(alias)
        .map_err(|problem| format!("invalid alias `{alias}`: {problem}"))?;
    Ok((stage, alias.to_owned()))
}

/// Parses `90s`, `5m`, `1h`, `250ms` or a bare number of seconds (clap's value parser of
/// durations, and of the `MLREG_RETRY_*` variables).
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let input = input.trim();
    let split = input
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(input.len());
    let (number, unit) = input.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{input}` is not a duration (examples: 250ms, 30s, 5m, 1h)"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` (use ms, s, m or h)"
            ));
        }
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("`{input}` is not a valid duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings(args: &[&str], env: &[(&str, &str)], cwd: &str) -> Result<Settings, Error> {
        let cli = Cli::try_parse_from(std::iter::once("mlreg").chain(args.iter().copied()))
            .expect("the command line parses");
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let lookup = move |name: &str| {
            env.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        Settings::from_cli(cli, &lookup, Some(Path::new(cwd)))
    }

    const REGISTRY: (&str, &str) = ("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000");

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(parse_duration(DEFAULT_INTERVAL_ARG), Ok(DEFAULT_INTERVAL));
        assert_eq!(
            parse_duration(DEFAULT_REQUEST_TIMEOUT_ARG),
            Ok(crate::registry::DEFAULT_REQUEST_TIMEOUT)
        );
    }

    #[test]
    fn one_concurrency_default_for_plan_reconcile_and_watch() {
        let concurrency = |args: &[&str]| match settings(args, &[REGISTRY], "/w") {
            Ok(Settings {
                command: CommandSettings::Reconcile(reconcile),
                ..
            }) => reconcile.concurrency,
            Ok(Settings {
                command: CommandSettings::Watch(watch),
                ..
            }) => watch.config.concurrency,
            other => panic!("{other:?}"),
        };
        let default = usize::from(DEFAULT_CONCURRENCY);
        assert_eq!(concurrency(&["plan"]), default);
        assert_eq!(concurrency(&["reconcile"]), default);
        assert_eq!(concurrency(&["watch"]), default);
        assert_eq!(concurrency(&["reconcile", "--concurrency", "3"]), 3);
    }

    #[test]
    fn watch_defaults_and_the_shortest_interval() {
        let Ok(Settings {
            command: CommandSettings::Watch(watch),
            global,
        }) = settings(&["watch"], &[REGISTRY], "/w")
        else {
            panic!("watch settings");
        };
        assert_eq!(watch.config.interval, DEFAULT_INTERVAL);
        assert_eq!(watch.config.listen, DEFAULT_LISTEN);
        assert_eq!(watch.config.dir, PathBuf::from(DEFAULT_DIR));
        assert!(global.log.default_filter.starts_with("info,"));
        assert_eq!(
            settings(&["watch", "--interval", "500ms"], &[REGISTRY], "/w").err(),
            Some(Error::IntervalTooShort {
                got: Duration::from_millis(500)
            })
        );
    }

    #[test]
    fn stages_are_typed_and_resolve_serves_only_declarable_ones() {
        let Ok(Settings {
            command: CommandSettings::Promote(promote),
            ..
        }) = settings(&["promote", "m", "--to", "production"], &[], "/w")
        else {
            panic!("promote settings");
        };
        assert_eq!(
            (promote.from, promote.to),
            (None, Some(Target::Stage(Stage::Production)))
        );
        let Ok(Settings {
            command: CommandSettings::Promote(promote),
            ..
        }) = settings(
            &["promote", "m", "--from", "@challenger", "--to", "@champion"],
            &[],
            "/w",
        )
        else {
            panic!("promote settings");
        };
        assert_eq!(promote.from, Some(Target::Alias("challenger".into())));
        let Ok(Settings {
            command: CommandSettings::MigrateStagesToAliases(migrate),
            ..
        }) = settings(
            &["migrate", "stages-to-aliases", "--map", "production=@prod"],
            &[],
            "/w",
        )
        else {
            panic!("migrate settings");
        };
        assert_eq!(migrate.map[&Stage::Production], "prod");
        assert_eq!(migrate.map[&Stage::Staging], "challenger");
        assert_eq!(
            settings(&["resolve", "m", "--stage", "archived"], &[], "/w").err(),
            Some(Error::ServingStage {
                stage: Stage::Archived
            })
        );
        // A bad stage is clap's usage error, before any settings.
        assert!(Cli::try_parse_from(["mlreg", "set-stage", "m", "1", "Canary"]).is_err());
    }

    #[test]
    fn resolve_takes_targets_or_the_deprecated_stage() {
        let resolve = |args: &[&str]| match settings(args, &[], "/w") {
            Ok(Settings {
                command: CommandSettings::Resolve(resolve),
                ..
            }) => resolve,
            other => panic!("resolve settings: {other:?}"),
        };
        let given = resolve(&["resolve", "m", "@champion", "staging"]);
        assert_eq!(
            given.targets,
            vec![
                Target::Alias("champion".into()),
                Target::Stage(Stage::Staging)
            ]
        );
        assert!(!given.from_stage_flag && !given.explain);
        // None given: the command takes the manifest's `serving.prefer` or the default.
        assert!(resolve(&["resolve", "m"]).targets.is_empty());
        let legacy = resolve(&["resolve", "m", "--stage", "production", "-v"]);
        assert_eq!(legacy.targets, crate::resolve::DEFAULT_TARGETS.to_vec());
        assert!(legacy.from_stage_flag && legacy.explain);
        // Not a target, or both spellings at once: clap's usage error.
        for args in [
            &["mlreg", "resolve", "m", "champion"][..],
            &["mlreg", "resolve", "m", "@latest"],
            &["mlreg", "resolve", "m", "Archived"],
            &["mlreg", "resolve", "m", "Staging", "--stage", "Staging"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn a_missing_registry_is_kept_for_the_command_to_report() {
        let Ok(Settings {
            command: CommandSettings::Resolve(resolve),
            ..
        }) = settings(&["resolve", "m"], &[], "/w")
        else {
            panic!("resolve settings");
        };
        assert!(resolve.registry.is_err());

        let Ok(Settings {
            command: CommandSettings::Resolve(resolve),
            ..
        }) = settings(&["resolve", "m"], &[REGISTRY], "/w")
        else {
            panic!("resolve settings");
        };
        let config = resolve.registry.expect("configured");
        assert_eq!(config.max_retries, RESOLVE_MAX_RETRIES);
        assert!(config.request_timeout <= RESOLVE_REQUEST_TIMEOUT);
    }

    #[test]
    fn dirs_under_the_working_directory_become_relative() {
        let cwd = Some(Path::new("/ci/runner/checkout"));
        assert_eq!(
            relative_to("/ci/runner/checkout/desired-state".into(), cwd),
            PathBuf::from("desired-state")
        );
        assert_eq!(
            relative_to("/ci/runner/checkout".into(), cwd),
            PathBuf::from(".")
        );
        assert_eq!(
            relative_to("/ci/runner/other/desired-state".into(), cwd),
            PathBuf::from("/ci/runner/other/desired-state")
        );
        assert_eq!(
            relative_to("desired-state".into(), cwd),
            PathBuf::from("desired-state")
        );
        assert_eq!(
            relative_to("/ci/runner/checkout/x".into(), None),
            PathBuf::from("/ci/runner/checkout/x")
        );
        let Ok(Settings {
            command: CommandSettings::Validate(validate),
            ..
        }) = settings(
            &["validate", "--dir", "/ci/runner/checkout/desired-state"],
            &[],
            "/ci/runner/checkout",
        )
        else {
            panic!("validate settings");
        };
        assert_eq!(validate.dir, PathBuf::from("desired-state"));
    }

    #[test]
    fn env_picks_the_environment_and_refuses_contradicting_flags() {
        let project = crate::project::parse_text(
            Path::new("mlreg.yaml"),
            "apiVersion: mlreg/v1\nkind: Project\nenvironments:\n  a:\n    registryUri: http://a:5000\n    dir: envs/a\n  b:\n    registryUri: http://b:5000\n    dir: envs/b\n    workspace: team-b\n    tokenEnv: B_TOKEN\n",
        )
        .expect("valid project");
        let with = |args: &[&str], env: &[(&str, &str)]| {
            let cli = Cli::try_parse_from(std::iter::once("mlreg").chain(args.iter().copied()))
                .expect("the command line parses");
            let env: Vec<(String, String)> = env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            let lookup = move |name: &str| {
                env.iter()
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.clone())
            };
            CommandSettings::with_project(
                cli,
                &lookup,
                Some(Path::new("/w")),
                Some(project.clone()),
            )
        };
        let Ok(CommandSettings::Reconcile(plan)) = with(
            &["plan", "--env", "b"],
            &[
                REGISTRY,
                ("B_TOKEN", "tok-b"),
                ("MLFLOW_TRACKING_TOKEN", "global"),
                ("MLREG_DIR", "x"),
            ],
        ) else {
            panic!("plan settings");
        };
        assert_eq!(plan.dir, PathBuf::from("envs/b"));
        assert_eq!(plan.environment.as_deref(), Some("b"));
        let config = plan.registry.expect("configured");
        assert_eq!(config.base_url.as_str(), "http://b:5000/");
        assert_eq!(config.workspace.as_deref(), Some("team-b"));
        assert_eq!(config.auth, crate::registry::Auth::Bearer("tok-b".into()));
        // Without the named variable: that environment's registry is a configuration error.
        let Ok(CommandSettings::Reconcile(plan)) = with(&["plan", "--env", "b"], &[]) else {
            panic!("plan settings");
        };
        assert!(
            plan.registry
                .is_err_and(|error| error.to_string().contains("B_TOKEN"))
        );
        assert!(matches!(
            with(&["plan", "--env", "c"], &[]),
            Err(Error::UnknownEnvironment { known, .. }) if known == ["a", "b"]
        ));
        assert!(matches!(
            with(&["plan", "--env", "a", "--registry-uri", "http://x"], &[]),
            Err(Error::EnvironmentConflict {
                flag: "--registry-uri",
                ..
            })
        ));
        assert!(matches!(
            with(
                &[
                    "set-stage",
                    "m",
                    "1",
                    "Staging",
                    "--env",
                    "a",
                    "--dir",
                    "other"
                ],
                &[]
            ),
            Err(Error::EnvironmentConflict { flag: "--dir", .. })
        ));
        assert!(matches!(
            with(&["plan", "--all-envs", "--env", "a"], &[]),
            Err(Error::EnvironmentConflict {
                flag: "--all-envs",
                ..
            })
        ));
        let Ok(CommandSettings::ReconcileAll(all)) = with(
            &["reconcile", "--all-envs", "--max-changes", "3"],
            &[("B_TOKEN", "t")],
        ) else {
            panic!("all-envs settings");
        };
        assert!(!all.dry_run);
        let names: Vec<_> = all
            .environments
            .iter()
            .filter_map(|e| e.environment.as_deref())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert!(all.environments.iter().all(|e| e.max_changes == Some(3)));
        // No project: --env is an error; without --env nothing changes.
        let cli = Cli::try_parse_from(["mlreg", "plan", "--env", "a"]).expect("parses");
        assert!(matches!(
            CommandSettings::new(cli, &|_| None, None),
            Err(Error::NoProject { flag: "--env" })
        ));
    }

    #[test]
    fn no_color_counts_only_when_set_to_something() {
        let no_color = |value: &str| {
            settings(&["schema"], &[("NO_COLOR", value)], "/w")
                .expect("settings")
                .global
                .no_color
        };
        assert!(no_color("1"));
        assert!(!no_color(""));
    }
}
