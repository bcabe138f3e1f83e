//! The project file, `mlreg.yaml` (`kind: Project`): several environments (registries,
//! workspaces) from one repository, and where notifications go.
//!
//! It is read as strictly as manifests, with the manifest layer's YAML options and
//! diagnostics (unknown fields, duplicate keys and wrong types are errors pointing at file,
//! line and column), then checked: every environment has a `registryUri` and a `dir`, no two
//! environments share a `dir`, credentials are *names* of variables (`tokenEnv`), never
//! values, and notification events are known. Nothing here touches the network.
//!
//! Decisions where DESIGN.md is silent:
//! - An environment's `dir` is relative to the directory holding the project file (as
//!   kustomize and Terraform read paths in their files), whatever the working directory.
//! - The file is looked for in the working directory only (no walk up the tree), so a
//!   command run elsewhere never picks up an unrelated project.
//! - A `registryUri` carrying credentials (`https://user:pass@host`) is refused: the file is
//!   committed to git; name the variables that hold them instead.
//! - `notifications[].events` omitted means every event.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_saphyr::{DuplicateKeyPolicy, Spanned};

use crate::diagnostic::{Diagnostic, Origin, SourceMap};
use crate::manifest::{API_VERSION, LoadError, MAX_MANIFEST_BYTES};
use crate::notify::{EventFilter, EventKind, Format, Target};

/// The project file's name, looked for in the working directory.
pub const FILE_NAME: &str = "mlreg.yaml";

/// The project file's `kind`.
pub const KIND: &str = "Project";

/// Every notification event, in the order the docs list them.
pub const ALL_EVENTS: [EventKind; 5] = [
    EventKind::Applied,
    EventKind::Drift,
    EventKind::Blocked,
    EventKind::Failed,
    EventKind::Invalid,
];

/// Pattern of an environment name: what `--env` can take without quoting.
const ENVIRONMENT_NAME_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_.-]*$";

/// Pattern of an environment variable's name.
const VARIABLE_NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]*$";

/// A validated project file.
#[derive(Debug, Clone)]
pub struct Project {
    /// Where it was read from.
    pub path: PathBuf,
    /// The environments, in the file's order.
    pub environments: Vec<Environment>,
    /// Where notifications go.
    pub notifications: Vec<Target>,
    /// The file's text, for diagnostics that quote it.
    pub sources: SourceMap,
}

impl Project {
    /// The environment called `name`.
    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|env| env.name == name)
    }

    /// The environments' names, in the file's order.
    pub fn names(&self) -> Vec<&str> {
        self.environments
            .iter()
            .map(|env| env.name.as_str())
            .collect()
    }
}

/// One environment: a registry (and workspace) and the directory of its manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// Its name (`--env NAME`).
    pub name: String,
    /// The registry: an `http(s)://` URL, `databricks` or `databricks://PROFILE`.
    pub registry_uri: String,
    /// The desired-state directory, resolved against the project file's directory.
    pub dir: PathBuf,
    /// The MLflow 3.10+ workspace (`X-MLflow-Workspace`), if any.
    pub workspace: Option<String>,
    /// The variable holding this registry's bearer token.
    pub token_env: Option<String>,
    /// The variable holding this registry's basic-auth user name.
    pub username_env: Option<String>,
    /// The variable holding this registry's basic-auth password.
    pub password_env: Option<String>,
}

impl Environment {
    /// Whether the environment names its own credential variables (then the global
    /// `MLFLOW_TRACKING_TOKEN`/`_USERNAME`/`_PASSWORD` are not used for it).
    pub fn has_own_credentials(&self) -> bool {
        self.token_env.is_some() || self.username_env.is_some() || self.password_env.is_some()
    }

    /// `env` as this environment's registry client must read it: `MLFLOW_TRACKING_TOKEN`
    /// (and `_USERNAME`, `_PASSWORD`) from the variables the environment names, when it
    /// names any, and `MLFLOW_WORKSPACE` from `workspace` when set. Everything else as is.
    pub fn variables<'a>(
        &'a self,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> impl Fn(&str) -> Option<String> + 'a {
        move |name: &str| {
            let own = |variable: &Option<String>| variable.as_deref().and_then(env);
            match name {
                "MLFLOW_TRACKING_TOKEN" if self.has_own_credentials() => own(&self.token_env),
                "MLFLOW_TRACKING_USERNAME" if self.has_own_credentials() => own(&self.username_env),
                "MLFLOW_TRACKING_PASSWORD" if self.has_own_credentials() => own(&self.password_env),
                "MLFLOW_WORKSPACE" if self.workspace.is_some() => self.workspace.clone(),
                other => env(other),
            }
        }
    }

    /// The credential variables the environment names that are unset or empty.
    pub fn missing_variables(&self, env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
        [&self.token_env, &self.username_env, &self.password_env]
            .into_iter()
            .flatten()
            .filter(|name| env(name).is_none_or(|value| value.is_empty()))
            .cloned()
            .collect()
    }
}

/// Finds the project file: `explicit` (`--config`, `MLREG_CONFIG`), which must exist, else
/// `mlreg.yaml` in `cwd` when there is one. `Ok(None)`: no project file.
pub fn discover(explicit: Option<&Path>, cwd: Option<&Path>) -> Result<Option<Project>, LoadError> {
    if let Some(path) = explicit {
        return load(path).map(Some);
    }
    let Some(cwd) = cwd else {
        return Ok(None);
    };
    let candidate = cwd.join(FILE_NAME);
    // A manifest that happens to be called mlreg.yaml is not a project file: it stays what
    // it was before project files existed.
    let is_project = std::fs::read_to_string(&candidate).is_ok_and(|text| is_project_text(&text));
    if candidate.is_file() && is_project {
        // Named relative to the working directory, as the user would write it.
        load(Path::new(FILE_NAME)).map(Some)
    } else {
        Ok(None)
    }
}

/// Whether `text` is a project file (a top-level `kind: Project` line), however invalid
/// otherwise: the manifest loader skips such files, so an environment whose `dir`
/// holds the project file does not read it as a manifest.
pub fn is_project_text(text: &str) -> bool {
    // Line-based, so a project file with a syntax error is still recognized (and then
    // reported as such): a top-level `kind: Project`, quoted or not, maybe commented.
    text.lines().any(|line| {
        line.strip_prefix("kind:").is_some_and(|value| {
            let value = value.split('#').next().unwrap_or_default().trim();
            value.trim_matches(|c| c == '"' || c == '\'') == KIND
        })
    })
}

/// Reads and checks the project file at `path`.
pub fn load(path: &Path) -> Result<Project, LoadError> {
    let failed = |diagnostic: Diagnostic| LoadError {
        diagnostics: vec![diagnostic],
        sources: SourceMap::default(),
    };
    let bytes = match std::fs::File::open(path).and_then(|file| {
        let mut bytes = Vec::new();
        io::Read::read_to_end(
            &mut io::Read::take(file, MAX_MANIFEST_BYTES + 1),
            &mut bytes,
        )?;
        Ok(bytes)
    }) {
        Ok(bytes) => bytes,
        Err(error) => {
            let help = if error.kind() == io::ErrorKind::NotFound {
                "pass the project file with --config or MLREG_CONFIG, or run mlreg where mlreg.yaml is"
            } else {
                "check that mlreg may read the file"
            };
            return Err(failed(
                Diagnostic::at(
                    Origin::file(path),
                    format!("cannot read the project file `{}`: {error}", path.display()),
                )
                .with_help(help),
            ));
        }
    };
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(failed(
            Diagnostic::at(Origin::file(path), "the project file is too large")
                .with_help("a project file is a few lines per environment"),
        ));
    }
    match String::from_utf8(bytes) {
        Ok(text) => parse_text(path, &text),
        Err(_) => Err(failed(
            Diagnostic::at(Origin::file(path), "the project file is not valid UTF-8")
                .with_help("save it as UTF-8"),
        )),
    }
}

/// Parses and checks the text of a project file read from `path` (which names it in
/// diagnostics and anchors the environments' `dir`).
pub fn parse_text(path: &Path, text: &str) -> Result<Project, LoadError> {
    let mut sources = SourceMap::default();
    sources.insert(path.to_path_buf(), Arc::from(text.to_owned()));
    let raw = serde_saphyr::from_str_with_options::<RawProject>(
        text,
        crate::manifest::yaml_options(DuplicateKeyPolicy::Error),
    );
    let raw = match raw {
        Ok(raw) => raw,
        Err(error) => {
            return Err(LoadError {
                diagnostics: vec![project_yaml_diagnostic(path, &error)],
                sources,
            });
        }
    };
    let mut checker = Checker {
        file: path,
        diagnostics: Vec::new(),
        redact: Vec::new(),
    };
    let (environments, notifications) = checker.project(raw);
    if !checker.redact.is_empty() {
        // The diagnostics quote their line: never a secret written where a name belongs.
        sources.insert(
            path.to_path_buf(),
            Arc::from(redacted(text, &checker.redact)),
        );
    }
    if checker.diagnostics.is_empty() {
        Ok(Project {
            path: path.to_path_buf(),
            environments,
            notifications,
            sources,
        })
    } else {
        checker.diagnostics.sort_by_key(|diagnostic| {
            diagnostic
                .origin
                .as_ref()
                .map(|origin| (origin.line, origin.column))
        });
        Err(LoadError {
            diagnostics: checker.diagnostics,
            sources,
        })
    }
}

/// The manifest layer's diagnostic, with the advice a project file needs.
fn project_yaml_diagnostic(path: &Path, error: &serde_saphyr::Error) -> Diagnostic {
    let mut diagnostic = crate::manifest::yaml_diagnostic(path, error);
    let schema_help = "see the project file format in `mlreg schema --project` (or docs/mlreg-project.schema.json)";
    if diagnostic.message.starts_with("missing field") {
        diagnostic.help = Some(
            "a project file needs `apiVersion: mlreg/v1`, `kind: Project` and `environments`; each environment needs `registryUri` and `dir`"
                .to_owned(),
        );
    } else if diagnostic.message.starts_with("unknown field") {
        let allowed = diagnostic.help.take().unwrap_or_default();
        diagnostic.help = Some(
            allowed
                .split("; names are camelCase")
                .next()
                .unwrap_or_default()
                .to_owned()
                + "; names are camelCase (registryUri, tokenEnv)",
        );
    } else if diagnostic.message.starts_with("expected") {
        diagnostic.help = Some(schema_help.to_owned());
    }
    diagnostic
}

/// Converts the raw document into the validated project, collecting diagnostics.
struct Checker<'a> {
    file: &'a Path,
    diagnostics: Vec<Diagnostic>,
    /// Where a value that may be a secret starts (line, column): quoted lines hide it.
    redact: Vec<(u32, u32)>,
}

impl Checker<'_> {
    fn origin<T>(&self, spanned: &Spanned<T>) -> Origin {
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        Origin::new(
            self.file,
            clamp(spanned.referenced.line()),
            clamp(spanned.referenced.column()),
        )
    }

    fn error<T>(&mut self, at: &Spanned<T>, message: impl Into<String>, help: impl Into<String>) {
        let origin = self.origin(at);
        self.diagnostics
            .push(Diagnostic::at(origin, message).with_help(help));
    }

    fn project(&mut self, raw: RawProject) -> (Vec<Environment>, Vec<Target>) {
        if raw.api_version.value != API_VERSION {
            self.error(
                &raw.api_version,
                format!("unsupported apiVersion `{}`", raw.api_version.value),
                format!("this release reads `apiVersion: {API_VERSION}`"),
            );
        }
        if raw.kind.value != KIND {
            let help = if raw.kind.value == crate::manifest::KIND {
                "this is a manifest; the project file (mlreg.yaml) is `kind: Project` and names the directories that hold the manifests".to_owned()
            } else {
                format!("the project file is `kind: {KIND}`")
            };
            self.error(
                &raw.kind,
                format!("unexpected kind `{}`", raw.kind.value),
                help,
            );
        }
        let environments = self.environments(raw.environments);
        let notifications = raw
            .notifications
            .unwrap_or_default()
            .into_iter()
            .filter_map(|notification| self.notification(notification))
            .collect();
        (environments, notifications)
    }

    fn environments(&mut self, raw: Spanned<EnvironmentMap>) -> Vec<Environment> {
        if raw.value.0.is_empty() {
            self.error(
                &raw,
                "the project declares no environment",
                "add one: `environments: {staging: {registryUri: http://mlflow-staging:5000, dir: environments/staging}}`",
            );
            return Vec::new();
        }
        let base = self.file.parent().unwrap_or(Path::new(""));
        let mut environments: Vec<Environment> = Vec::new();
        let mut dirs: Vec<(PathBuf, String)> = Vec::new();
        for (name, env) in raw.value.0 {
            let valid_name = is_environment_name(&name.value);
            if !valid_name {
                self.error(
                    &name,
                    format!("invalid environment name `{}`", name.value),
                    "use letters, digits, `_`, `.` and `-`, starting with a letter or digit (it is given to --env)",
                );
            }
            let env_value = env.value;
            let registry_uri = self.registry_uri(&name.value, &env_value.registry_uri);
            let dir = if env_value.dir.value.trim().is_empty() {
                self.error(
                    &env_value.dir,
                    format!("environment `{}` has an empty `dir`", name.value),
                    "name the directory of this environment's manifests, relative to the project file",
                );
                None
            } else {
                let dir = normalize(&base.join(env_value.dir.value.trim()));
                if let Some((_, other)) = dirs.iter().find(|(seen, _)| *seen == dir) {
                    self.error(
                        &env_value.dir,
                        format!(
                            "environments `{other}` and `{}` share the directory `{}`",
                            name.value,
                            env_value.dir.value.trim()
                        ),
                        "give each environment its own directory: one directory of manifests describes one registry",
                    );
                } else {
                    dirs.push((dir.clone(), name.value.clone()));
                }
                Some(dir)
            };
            let workspace = env_value.workspace.as_ref().and_then(|workspace| {
                let value = workspace.value.trim();
                if value.is_empty()
                    || !value
                        .chars()
                        .all(|c| c.is_ascii_graphic())
                {
                    self.error(
                        workspace,
                        format!("invalid workspace `{}`", workspace.value),
                        "a workspace name is letters, digits and `-` (it is sent in the X-MLflow-Workspace header)",
                    );
                    None
                } else {
                    Some(value.to_owned())
                }
            });
            let token_env = self.variable("tokenEnv", env_value.token_env.as_ref());
            let username_env = self.variable("usernameEnv", env_value.username_env.as_ref());
            let password_env = self.variable("passwordEnv", env_value.password_env.as_ref());
            match (&env_value.username_env, &env_value.password_env) {
                (Some(given), None) | (None, Some(given)) => self.error(
                    given,
                    format!(
                        "environment `{}` names only one of `usernameEnv` and `passwordEnv`",
                        name.value
                    ),
                    "basic authentication needs both variables: name both, or neither",
                ),
                _ => {}
            }
            if let (true, Some(registry_uri), Some(dir)) = (valid_name, registry_uri, dir) {
                environments.push(Environment {
                    name: name.value,
                    registry_uri,
                    dir,
                    workspace,
                    token_env,
                    username_env,
                    password_env,
                });
            }
        }
        environments
    }

    fn registry_uri(&mut self, env: &str, uri: &Spanned<String>) -> Option<String> {
        let value = uri.value.trim();
        if value.is_empty() {
            self.error(
                uri,
                format!("environment `{env}` has an empty `registryUri`"),
                "give the registry's address: http(s)://host:port, `databricks` or `databricks://PROFILE`",
            );
            return None;
        }
        if crate::registry::databricks::is_unity_catalog(value) {
            self.error(
                uri,
                format!("environment `{env}`: Unity Catalog (`{value}`) is not supported yet"),
                crate::registry::databricks::UNITY_CATALOG_HELP,
            );
            return None;
        }
        if crate::registry::databricks::is_databricks(value) {
            return Some(value.to_owned());
        }
        match url::Url::parse(value) {
            Ok(url) if !matches!(url.scheme(), "http" | "https") => {
                self.error(
                    uri,
                    format!("environment `{env}`: `registryUri` must be http:// or https://, not {}://", url.scheme()),
                    "give the tracking server's URL (http(s)://host:port), `databricks` or `databricks://PROFILE`",
                );
                None
            }
            Ok(url) if !url.username().is_empty() || url.password().is_some() => {
                let origin = self.origin(uri);
                self.redact.push((origin.line, origin.column));
                self.error(
                    uri,
                    format!("environment `{env}`: `registryUri` carries credentials"),
                    "the project file is committed: remove them from the URL and name the variables that hold them with `tokenEnv`, or `usernameEnv` and `passwordEnv`",
                );
                None
            }
            Ok(_) => Some(value.to_owned()),
            Err(error) => {
                self.error(
                    uri,
                    format!("environment `{env}`: `registryUri` is not a URL ({error})"),
                    "give the tracking server's URL, such as http://mlflow-staging:5000",
                );
                None
            }
        }
    }

    fn variable(&mut self, field: &str, name: Option<&Spanned<String>>) -> Option<String> {
        let name = name?;
        if is_variable_name(&name.value) {
            Some(name.value.clone())
        } else {
            // Never echo the value: it may be the secret itself.
            let origin = self.origin(name);
            self.redact.push((origin.line, origin.column));
            self.error(
                name,
                format!("`{field}` is not the name of an environment variable"),
                format!(
                    "`{field}` names the variable that holds the secret (such as PROD_MLFLOW_TOKEN: letters, digits and `_`), never the secret itself"
                ),
            );
            None
        }
    }

    fn notification(&mut self, raw: Spanned<RawNotification>) -> Option<Target> {
        let notification = raw.value;
        let url = match url::Url::parse(notification.url.value.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
            Ok(_) | Err(_) => {
                self.error(
                    &notification.url,
                    "a notification `url` must be an http:// or https:// URL",
                    "give the receiver's URL, such as https://hooks.slack.com/services/...",
                );
                None
            }
        };
        let format = match notification.format.as_ref().map(|f| f.value.as_str()) {
            None | Some("json") => Some(Format::Json),
            Some("slack") => Some(Format::Slack),
            Some(other) => {
                let at = notification.format.as_ref()?;
                self.error(
                    at,
                    format!("unknown notification format `{other}`"),
                    "use `json` (mlreg's document) or `slack` (an incoming-webhook message)",
                );
                None
            }
        };
        let mut events = Vec::new();
        let mut valid = true;
        match notification.events {
            None => events = ALL_EVENTS.to_vec(), // every kind
            Some(given) => {
                if given.value.is_empty() {
                    self.error(
                        &given,
                        "`events` is empty: this receiver would get nothing",
                        "list the events it gets (applied, drift, blocked, failed, invalid), or remove `events` for all of them",
                    );
                    valid = false;
                }
                for event in &given.value {
                    match ALL_EVENTS
                        .iter()
                        .find(|known| known.as_str() == event.value)
                    {
                        Some(known) if !events.contains(known) => events.push(*known),
                        Some(_) => {}
                        None => {
                            self.error(
                                event,
                                format!("unknown event `{}`", event.value),
                                "the events are applied, drift, blocked, failed and invalid",
                            );
                            valid = false;
                        }
                    }
                }
            }
        }
        match (url, format, valid) {
            (Some(url), Some(format), true) => {
                Some(Target::new(url, format).with_events(EventFilter::only(events)))
            }
            _ => None,
        }
    }
}

/// `text` with everything from each (line, column) to the end of its line replaced.
fn redacted(text: &str, at: &[(u32, u32)]) -> String {
    text.split('\n')
        .enumerate()
        .map(|(index, line)| {
            let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
            match at.iter().find(|(line, _)| *line == number) {
                Some((_, column)) => {
                    let keep: String = line
                        .chars()
                        .take(usize::try_from(column.saturating_sub(1)).unwrap_or(0))
                        .collect();
                    format!("{keep}<redacted>")
                }
                None => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `name` is a valid environment name.
fn is_environment_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Whether `name` is a valid environment variable name.
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `path` with `.` removed and `..` applied lexically (no file system access), so two
/// spellings of one directory compare equal.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

/// The JSON Schema (draft-07) of the project file, printed by `mlreg schema --project` and
/// committed as `docs/mlreg-project.schema.json`.
pub fn json_schema() -> serde_json::Value {
    SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<RawProject>()
        .to_value()
}

/// [`json_schema()`] as the committed text (pretty JSON, final newline).
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// The project file as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a project file: a mapping with apiVersion, kind, environments and notifications"
)]
#[schemars(
    title = "mlreg project file (mlreg/v1)",
    description = "mlreg.yaml: the environments (registries and the directories of their manifests) of one repository, and where notifications go."
)]
struct RawProject {
    /// The format version. Only `mlreg/v1` exists.
    #[schemars(with = "ApiVersionSchema")]
    api_version: Spanned<String>,
    /// Only `Project`.
    #[schemars(with = "KindSchema")]
    kind: Spanned<String>,
    /// Environments by name, in the order `reconcile --all-envs` applies them.
    #[schemars(with = "EnvironmentMap")]
    environments: Spanned<EnvironmentMap>,
    /// Where `reconcile` (and `watch`) post what happened.
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawNotification>>")]
    notifications: Option<Vec<Spanned<RawNotification>>>,
}

/// One environment: a registry (and workspace) and the directory of its manifests.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "an environment: a mapping with registryUri, dir and optionally workspace, tokenEnv, usernameEnv, passwordEnv"
)]
#[schemars(rename = "Environment")]
struct RawEnvironment {
    /// The registry: the tracking server's URL (`http://mlflow-staging:5000`), `databricks`
    /// or `databricks://PROFILE`. No credentials in it: name their variables below.
    #[schemars(with = "NonEmpty")]
    registry_uri: Spanned<String>,
    /// The directory of this environment's manifests, relative to the project file. Each
    /// environment has its own.
    #[schemars(with = "NonEmpty")]
    dir: Spanned<String>,
    /// The MLflow 3.10+ workspace (sent as the `X-MLflow-Workspace` header).
    #[serde(default)]
    #[schemars(with = "Option<NonEmpty>")]
    workspace: Option<Spanned<String>>,
    /// The NAME of the variable holding this registry's bearer token (never the token).
    #[serde(default)]
    #[schemars(with = "Option<VariableName>")]
    token_env: Option<Spanned<String>>,
    /// The NAME of the variable holding the basic-auth user name.
    #[serde(default)]
    #[schemars(with = "Option<VariableName>")]
    username_env: Option<Spanned<String>>,
    /// The NAME of the variable holding the basic-auth password (never the password).
    #[serde(default)]
    #[schemars(with = "Option<VariableName>")]
    password_env: Option<Spanned<String>>,
}

/// A receiver of notifications and the events it gets.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a notification: a mapping with url, and optionally format and events"
)]
#[schemars(rename = "Notification")]
struct RawNotification {
    /// The receiver's URL (http or https).
    #[schemars(with = "NonEmpty")]
    url: Spanned<String>,
    /// `json` (mlreg's document, the default) or `slack` (an incoming-webhook message).
    #[serde(default)]
    #[schemars(with = "Option<FormatSchema>")]
    format: Option<Spanned<String>>,
    /// Which events it receives (default: all).
    #[serde(default)]
    #[schemars(with = "Option<Vec<EventSchema>>")]
    events: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `environments`: name → environment, in document order.
#[derive(Debug)]
struct EnvironmentMap(Vec<(Spanned<String>, Spanned<RawEnvironment>)>);

impl<'de> Deserialize<'de> for EnvironmentMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor(PhantomData<()>);

        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = EnvironmentMap;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of environment names to environments")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(EnvironmentMap(entries))
            }
        }

        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

impl JsonSchema for EnvironmentMap {
    fn schema_name() -> Cow<'static, str> {
        "Environments".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Environment name → environment, applied in this order by `reconcile --all-envs`. Names: letters, digits, `_`, `.`, `-`.",
            "type": "object",
            "minProperties": 1,
            "propertyNames": { "pattern": ENVIRONMENT_NAME_PATTERN },
            "additionalProperties": generator.subschema_for::<RawEnvironment>()
        })
    }
}

/// Declares a schema-only type.
macro_rules! schema_only {
    ($name:ident, $schema_name:literal, $schema:tt) => {
        struct $name;

        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> Cow<'static, str> {
                $schema_name.into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

schema_only!(ApiVersionSchema, "ApiVersion", { "type": "string", "const": "mlreg/v1" });
schema_only!(KindSchema, "Kind", { "type": "string", "const": "Project" });
schema_only!(NonEmpty, "NonEmpty", { "type": "string", "minLength": 1 });
schema_only!(VariableName, "VariableName", { "type": "string", "pattern": VARIABLE_NAME_PATTERN });
schema_only!(FormatSchema, "NotificationFormat", { "type": "string", "enum": ["json", "slack"] });
schema_only!(EventSchema, "Event", { "type": "string", "enum": ["applied", "drift", "blocked", "failed", "invalid"] });

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Project, LoadError> {
        parse_text(Path::new("repo/mlreg.yaml"), text)
    }

    fn errors(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(project) => panic!("expected errors, got {project:?}"),
            Err(error) => error
                .diagnostics
                .iter()
                .map(|diagnostic| {
                    format!(
                        "{diagnostic} | {}",
                        diagnostic.help.as_deref().unwrap_or_default()
                    )
                })
                .collect(),
        }
    }

    const VALID: &str = "\
apiVersion: mlreg/v1
kind: Project
environments:
  staging:
    registryUri: http://mlflow-staging:5000
    dir: environments/staging
  prod:
    registryUri: https://mlflow.example.com
    dir: ./environments/prod
    workspace: risk
    tokenEnv: PROD_MLFLOW_TOKEN
notifications:
  - url: https://hooks.example.com/x
    format: slack
    events: [applied, failed]
";

    #[test]
    fn a_valid_project_keeps_the_order_and_resolves_dirs_against_the_file() {
        let project = parse(VALID).expect("valid");
        assert_eq!(project.names(), ["staging", "prod"]);
        let prod = project.environment("prod").expect("prod");
        assert_eq!(prod.dir, PathBuf::from("repo/environments/prod"));
        assert_eq!(prod.workspace.as_deref(), Some("risk"));
        assert_eq!(prod.token_env.as_deref(), Some("PROD_MLFLOW_TOKEN"));
        assert_eq!(project.notifications.len(), 1);
        assert_eq!(project.notifications[0].format, Format::Slack);
        assert!(project.notifications[0].events.accepts(EventKind::Failed));
        assert!(!project.notifications[0].events.accepts(EventKind::Drift));
    }

    #[test]
    fn every_error_class_points_at_its_line_with_a_hint() {
        let unknown = errors(
            "apiVersion: mlreg/v1\nkind: Project\nenvironments:\n  a:\n    registryUri: http://h\n    dir: a\n    registry: x\n",
        );
        assert!(
            unknown[0].starts_with("repo/mlreg.yaml:7:5: unknown field `registry`"),
            "{unknown:?}"
        );
        assert!(unknown[0].contains("registryUri"), "{unknown:?}");

        let duplicate = errors(
            "apiVersion: mlreg/v1\nkind: Project\nenvironments:\n  a:\n    registryUri: http://h\n    dir: a\n  a:\n    registryUri: http://h\n    dir: b\n",
        );
        assert!(
            duplicate[0].contains(":7:") && duplicate[0].contains("duplicate key `a`"),
            "{duplicate:?}"
        );

        let missing =
            errors("apiVersion: mlreg/v1\nkind: Project\nenvironments:\n  a:\n    dir: a\n");
        assert!(
            missing[0].contains("missing field `registryUri`"),
            "{missing:?}"
        );
        assert!(missing[0].starts_with("repo/mlreg.yaml:"), "{missing:?}");

        let shared = errors(
            "apiVersion: mlreg/v1\nkind: Project\nenvironments:\n  a:\n    registryUri: http://h\n    dir: envs/x\n  b:\n    registryUri: http://h\n    dir: ./envs/x/\n",
        );
        assert!(
            shared[0].starts_with("repo/mlreg.yaml:9:10: environments `a` and `b` share"),
            "{shared:?}"
        );

        let event = errors(
            "apiVersion: mlreg/v1\nkind: Project\nenvironments:\n  a:\n    registryUri: http://h\n    dir: a\nnotifications:\n  - url: http://r\n    events: [applied, deployed]\n",
        );
        assert!(
            event[0].starts_with("repo/mlreg.yaml:9:23: unknown event `deployed`"),
            "{event:?}"
        );
        assert!(
            event[0].contains("applied, drift, blocked, failed and invalid"),
            "{event:?}"
        );
    }

    #[test]
    fn secrets_are_refused_and_never_echoed() {
        let errors = errors(
            "apiVersion: mlreg/v1\nkind: Project\nenvironments:\n  a:\n    registryUri: https://bob:hunter2@h\n    dir: a\n    tokenEnv: dapi-0123-secret\n",
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("carries credentials"), "{errors:?}");
        assert!(
            errors[1].contains("`tokenEnv` is not the name"),
            "{errors:?}"
        );
        assert!(
            !errors
                .iter()
                .any(|e| e.contains("dapi-0123") || e.contains("hunter2")),
            "{errors:?}"
        );
        let error = parse(
            "apiVersion: mlreg/v1\nkind: Project\nenvironments:\n  a:\n    registryUri: https://bob:hunter2@h\n    dir: a\n    tokenEnv: dapi-0123-secret\n",
        )
        .expect_err("invalid");
        let mut rendered = Vec::new();
        crate::diagnostic::render(&mut rendered, &error.diagnostics, &error.sources, false)
            .expect("render");
        let rendered = String::from_utf8_lossy(&rendered);
        assert!(rendered.contains("tokenEnv: <redacted>"), "{rendered}");
        assert!(
            !rendered.contains("dapi-0123") && !rendered.contains("hunter2"),
            "{rendered}"
        );
    }

    #[test]
    fn unity_catalog_and_wrong_kinds_are_explained() {
        let errors = errors(
            "apiVersion: mlreg/v1\nkind: RegisteredModel\nenvironments:\n  a:\n    registryUri: databricks-uc\n    dir: a\n",
        );
        assert!(
            errors[0].contains("unexpected kind") && errors[0].contains("this is a manifest"),
            "{errors:?}"
        );
        assert!(errors[1].contains("Unity Catalog"), "{errors:?}");
    }

    #[test]
    fn credentials_come_from_the_named_variables_only() {
        let project = parse(VALID).expect("valid");
        let prod = project.environment("prod").expect("prod");
        let env = |name: &str| match name {
            "PROD_MLFLOW_TOKEN" => Some("prod-token".to_owned()),
            "MLFLOW_TRACKING_TOKEN" => Some("global-token".to_owned()),
            "MLFLOW_WORKSPACE" => Some("global-ws".to_owned()),
            _ => None,
        };
        let variables = prod.variables(&env);
        assert_eq!(
            variables("MLFLOW_TRACKING_TOKEN").as_deref(),
            Some("prod-token")
        );
        assert_eq!(variables("MLFLOW_WORKSPACE").as_deref(), Some("risk"));
        let staging = project.environment("staging").expect("staging");
        let variables = staging.variables(&env);
        assert_eq!(
            variables("MLFLOW_TRACKING_TOKEN").as_deref(),
            Some("global-token")
        );
        assert_eq!(variables("MLFLOW_WORKSPACE").as_deref(), Some("global-ws"));
        assert_eq!(prod.missing_variables(&|_| None), ["PROD_MLFLOW_TOKEN"]);
    }

    #[test]
    fn a_project_is_told_from_a_manifest() {
        assert!(is_project_text(VALID));
        assert!(is_project_text(
            "kind: Project\nenvironments: {}\nwhatever: [\n"
        ));
        assert!(!is_project_text(
            "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: Project\n"
        ));
    }

    #[test]
    fn the_committed_schema_is_current() {
        let committed = include_str!("../docs/mlreg-project.schema.json");
        assert_eq!(
            committed,
            json_schema_text(),
            "regenerate with `mlreg schema --project > docs/mlreg-project.schema.json`"
        );
    }
}
