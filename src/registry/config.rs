//! Where the registry is and how to authenticate, following MLflow's own conventions.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::{Error, Result};

/// Credentials sent with every request.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// No `Authorization` header.
    None,
    /// `Authorization: Bearer <token>` (`MLFLOW_TRACKING_TOKEN`).
    Bearer(String),
    /// HTTP basic (`MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
}

// Hand-written so a token or password can never reach a log line through `{:?}`.
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Auth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// How long one registry request may take, unless `--request-timeout` says otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything needed to build a registry client.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Base URL of the tracking server, without credentials (`http://127.0.0.1:5000`).
    pub base_url: url::Url,
    /// Credentials.
    pub auth: Auth,
    /// Accept any TLS certificate (`MLFLOW_TRACKING_INSECURE_TLS=true`).
    pub insecure_tls: bool,
    /// A PEM CA bundle to trust (`MLFLOW_TRACKING_SERVER_CERT_PATH`).
    pub ca_cert_path: Option<PathBuf>,
    /// A PEM file holding the client certificate (chain) and its private key, presented
    /// to servers that ask for one (`MLFLOW_TRACKING_CLIENT_CERT_PATH`, as in MLflow).
    pub client_cert_path: Option<PathBuf>,
    /// Timeout to establish a connection.
    pub connect_timeout: Duration,
    /// Timeout of one request, response included.
    pub request_timeout: Duration,
    /// How many times a retryable call is retried.
    pub max_retries: usize,
    /// First backoff delay; doubled each retry, with jitter.
    pub min_backoff: Duration,
    /// Longest backoff delay (also caps `Retry-After`).
    pub max_backoff: Duration,
    /// Page size of registered-model searches (MLflow allows at most 1000).
    pub model_page_size: u32,
    /// Page size of model-version searches (MLflow allows at most 200 000).
    pub version_page_size: u32,
    /// The MLflow 3.10+ workspace sent as `X-MLflow-Workspace` on every request
    /// (`MLFLOW_WORKSPACE`, or an environment's `workspace`); `None`: the server's default.
    pub workspace: Option<String>,
}

impl RegistryConfig {
    /// Defaults for `base_url` with no credentials.
    pub fn new(base_url: url::Url) -> Self {
        RegistryConfig {
            base_url,
            auth: Auth::None,
            insecure_tls: false,
            ca_cert_path: None,
            client_cert_path: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_retries: 5,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            model_page_size: 1000,
            version_page_size: 10_000,
            workspace: None,
        }
    }

    /// Builds the configuration from `--registry-uri` (or `MLFLOW_TRACKING_URI`) and the
    /// `MLFLOW_TRACKING_*` environment variables, read through `env` so tests can inject them.
    ///
    /// Credentials embedded in the URL (`https://user:pass@host`) are moved into [`Auth`]
    /// and removed from the URL so they can never be printed. As in MLflow's Python client,
    /// username/password win over a token when both are set.
    ///
    /// `MLREG_RETRY_MIN_BACKOFF` and `MLREG_RETRY_MAX_BACKOFF` (durations such as `250ms`,
    /// `30s`) tune the retry backoff of every call; the fault-injection tests use them to
    /// keep retries fast. `MLREG_RETRY_MAX_BACKOFF` also caps `Retry-After`.
    pub fn from_env(uri: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let uri = uri
            .map(str::to_owned)
            .or_else(|| env("MLFLOW_TRACKING_URI"))
            .filter(|uri| !uri.trim().is_empty())
            .ok_or_else(|| {
                Error::Config(
                    "no registry address: pass --registry-uri or set MLFLOW_TRACKING_URI \
                     (for example http://127.0.0.1:5000)"
                        .into(),
                )
            })?;
        if super::databricks::is_unity_catalog(&uri) {
            return Err(Error::Config(format!(
                "Unity Catalog (`{}`) is not supported yet: {}",
                uri.trim(),
                super::databricks::UNITY_CATALOG_HELP
            )));
        }
        let databricks = super::databricks::is_databricks(&uri)
            .then(|| super::databricks::resolve(&uri, &env))
            .transpose()?;
        let uri = match &databricks {
            Some((host, _)) => host.to_string(),
            None => uri,
        };
        let mut base_url = url::Url::parse(uri.trim()).map_err(|error| {
            Error::Config(format!(
                "registry address is not a URL ({error}); expected e.g. http://127.0.0.1:5000"
            ))
        })?;
        if !matches!(base_url.scheme(), "http" | "https") {
            return Err(Error::Config(format!(
                "registry address must be http:// or https://, not {}://",
                base_url.scheme()
            )));
        }
        let url_user = (!base_url.username().is_empty()).then(|| base_url.username().to_owned());
        let url_password = base_url.password().map(str::to_owned);
        // Both calls only fail for URLs that cannot carry credentials, excluded above.
        let _ = base_url.set_username("");
        let _ = base_url.set_password(None);

        let non_empty = |name: &str| env(name).filter(|value| !value.is_empty());
        let username = non_empty("MLFLOW_TRACKING_USERNAME").or(url_user);
        let password = non_empty("MLFLOW_TRACKING_PASSWORD").or(url_password);
        let token = match databricks {
            Some((_, Auth::Bearer(token))) => Some(token),
            _ => non_empty("MLFLOW_TRACKING_TOKEN"),
        };
        let auth = match (username, password, token) {
            (Some(username), Some(password), _) => Auth::Basic { username, password },
            (Some(_), None, _) | (None, Some(_), _) => {
                return Err(Error::Config(
                    "set both MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or neither"
                        .into(),
                ));
            }
            (None, None, Some(token)) => Auth::Bearer(token),
            (None, None, None) => Auth::None,
        };
        let insecure_tls = match non_empty("MLFLOW_TRACKING_INSECURE_TLS").as_deref() {
            None => false,
            Some(value) if value.eq_ignore_ascii_case("true") || value == "1" => true,
            Some(value) if value.eq_ignore_ascii_case("false") || value == "0" => false,
            Some(value) => {
                return Err(Error::Config(format!(
                    "MLFLOW_TRACKING_INSECURE_TLS must be true or false, not `{value}`"
                )));
            }
        };
        let ca_cert_path = non_empty("MLFLOW_TRACKING_SERVER_CERT_PATH").map(PathBuf::from);
        let client_cert_path = non_empty("MLFLOW_TRACKING_CLIENT_CERT_PATH").map(PathBuf::from);
        let backoff = |name: &str, default: Duration| -> Result<Duration> {
            match non_empty(name) {
                None => Ok(default),
                Some(value) => crate::settings::parse_duration(&value)
                    .map_err(|error| Error::Config(format!("{name}: {error}"))),
            }
        };
        let defaults = RegistryConfig::new(base_url.clone());
        let min_backoff = backoff("MLREG_RETRY_MIN_BACKOFF", defaults.min_backoff)?;
        let max_backoff = backoff("MLREG_RETRY_MAX_BACKOFF", defaults.max_backoff)?;
        if min_backoff > max_backoff {
            return Err(Error::Config(format!(
                "MLREG_RETRY_MIN_BACKOFF ({min_backoff:?}) is longer than MLREG_RETRY_MAX_BACKOFF ({max_backoff:?})"
            )));
        }
        if insecure_tls && ca_cert_path.is_some() {
            return Err(Error::Config(
                "MLFLOW_TRACKING_INSECURE_TLS and MLFLOW_TRACKING_SERVER_CERT_PATH cannot both be set"
                    .into(),
            ));
        }
        let workspace = match non_empty("MLFLOW_WORKSPACE") {
            Some(workspace) if !workspace.chars().all(|c| c.is_ascii_graphic()) => {
                return Err(Error::Config(format!(
                    "MLFLOW_WORKSPACE must be a workspace name (letters, digits, `-`), not {workspace:?}"
                )));
            }
            workspace => workspace,
        };
        Ok(RegistryConfig {
            auth,
            workspace,
            insecure_tls,
            ca_cert_path,
            client_cert_path,
            min_backoff,
            max_backoff,
            ..defaults
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn requires_an_address() {
        let error = RegistryConfig::from_env(None, env(&[])).expect_err("no address");
        assert!(error.to_string().contains("MLFLOW_TRACKING_URI"));
    }

    #[test]
    fn basic_wins_over_token_and_secrets_are_redacted() {
        let config = RegistryConfig::from_env(
            Some("http://127.0.0.1:5000"),
            env(&[
                ("MLFLOW_TRACKING_USERNAME", "alice"),
                ("MLFLOW_TRACKING_PASSWORD", "s3cret-pw"),
                ("MLFLOW_TRACKING_TOKEN", "tok-123"),
            ]),
        )
        .expect("valid");
        assert!(matches!(config.auth, Auth::Basic { .. }));
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cret-pw"), "{debug}");
        assert!(!debug.contains("tok-123"), "{debug}");
    }

    #[test]
    fn credentials_in_the_url_are_moved_out_of_it() {
        let config =
            RegistryConfig::from_env(Some("https://bob:hunter2@mlflow.example:8443/"), env(&[]))
                .expect("valid");
        assert_eq!(config.base_url.as_str(), "https://mlflow.example:8443/");
        assert_eq!(
            config.auth,
            Auth::Basic {
                username: "bob".into(),
                password: "hunter2".into()
            }
        );
    }

    #[test]
    fn token_and_tls_flags() {
        let config = RegistryConfig::from_env(
            Some("https://h"),
            env(&[
                ("MLFLOW_TRACKING_TOKEN", "tok"),
                ("MLFLOW_TRACKING_INSECURE_TLS", "TRUE"),
            ]),
        )
        .expect("valid");
        assert_eq!(config.auth, Auth::Bearer("tok".into()));
        assert!(config.insecure_tls);
        assert_eq!(config.client_cert_path, None);
        let client = RegistryConfig::from_env(
            Some("https://h"),
            env(&[("MLFLOW_TRACKING_CLIENT_CERT_PATH", "/client.pem")]),
        )
        .expect("valid");
        assert_eq!(client.client_cert_path, Some(PathBuf::from("/client.pem")));
        let both = RegistryConfig::from_env(
            Some("https://h"),
            env(&[
                ("MLFLOW_TRACKING_INSECURE_TLS", "true"),
                ("MLFLOW_TRACKING_SERVER_CERT_PATH", "/ca.pem"),
            ]),
        );
        assert!(both.is_err());
    }

    #[test]
    fn retry_backoff_from_the_environment() {
        let config = RegistryConfig::from_env(
            Some("http://h"),
            env(&[
                ("MLREG_RETRY_MIN_BACKOFF", "10ms"),
                ("MLREG_RETRY_MAX_BACKOFF", "2s"),
            ]),
        )
        .expect("valid");
        assert_eq!(config.min_backoff, Duration::from_millis(10));
        assert_eq!(config.max_backoff, Duration::from_secs(2));
        let defaults = RegistryConfig::from_env(Some("http://h"), env(&[])).expect("valid");
        assert_eq!(defaults.min_backoff, Duration::from_millis(200));
        let error = RegistryConfig::from_env(
            Some("http://h"),
            env(&[("MLREG_RETRY_MIN_BACKOFF", "soon")]),
        )
        .expect_err("not a duration");
        assert!(
            error.to_string().contains("MLREG_RETRY_MIN_BACKOFF"),
            "{error}"
        );
        let error = RegistryConfig::from_env(
            Some("http://h"),
            env(&[
                ("MLREG_RETRY_MIN_BACKOFF", "5s"),
                ("MLREG_RETRY_MAX_BACKOFF", "1s"),
            ]),
        )
        .expect_err("min above max");
        assert!(error.to_string().contains("longer than"), "{error}");
    }
}
