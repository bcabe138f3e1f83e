//! Errors of the registry layer, typed by MLflow's `error_code`.
//!
//! Messages never contain credentials: the client's URL has no userinfo, and
//! authorization headers are never formatted.

/// `Result` with the registry [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failed registry call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error status.
    #[error("{method} {endpoint}: HTTP {status}{}: {message}{}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default(), auth_hint(*status))]
    Api {
        /// HTTP method.
        method: &'static str,
        /// The endpoint path after `/api/2.0/mlflow`.
        endpoint: &'static str,
        /// HTTP status.
        status: u16,
        /// MLflow's `error_code` (`RESOURCE_DOES_NOT_EXIST`, ...), when the body was JSON.
        code: Option<String>,
        /// MLflow's message, or the start of a non-JSON body.
        message: String,
    },
    /// The request could not be sent or its response not received. The cause (connection
    /// refused, timeout, ...) is the `source`, printed by `{:#}` after this message.
    #[error("{method} {endpoint}: request failed")]
    Transport {
        /// HTTP method.
        method: &'static str,
        /// The endpoint path.
        endpoint: &'static str,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The response body was not what MLflow sends.
    #[error("{endpoint}: unexpected response: {detail}")]
    Decode {
        /// The endpoint path.
        endpoint: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The registry changed under a paged read, or answered inconsistently.
    #[error("inconsistent read of the registry: {0}")]
    Inconsistent(String),
    /// The client could not be configured.
    #[error("registry configuration: {0}")]
    Config(String),
}

/// What to check after a 401 or 403: the server's own text (MLflow's, or a proxy's bare
/// "Unauthorized") does not say which settings mlreg took the credentials from.
fn auth_hint(status: u16) -> &'static str {
    match status {
        401 => {
            " (authentication failed: check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN)"
        }
        403 => {
            " (permission denied: the credentials may lack permission, or the server refuses this host name; see --allowed-hosts)"
        }
        _ => "",
    }
}

impl Error {
    /// MLflow's `error_code`, when the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// Whether the error says the model, version or alias does not exist (not the
    /// workspace: that is a configuration error, see [`Error::is_unknown_workspace`]).
    pub fn is_not_found(&self) -> bool {
        (matches!(self, Error::Api { status: 404, .. })
            || self.code() == Some("RESOURCE_DOES_NOT_EXIST"))
            && !self.is_unknown_workspace()
    }

    /// Whether a workspace-enabled MLflow server refused the request's workspace
    /// (`X-MLflow-Workspace`, from `MLFLOW_WORKSPACE` or an environment's `workspace`):
    /// `RESOURCE_DOES_NOT_EXIST` "Workspace 'x' not found", which must not read as "no
    /// such model".
    pub fn is_unknown_workspace(&self) -> bool {
        matches!(self, Error::Api { code: Some(code), message, .. }
            if code == "RESOURCE_DOES_NOT_EXIST" && message.starts_with("Workspace '"))
    }

    /// Whether the server rejected the credentials (HTTP 401/403).
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            Error::Api {
                status: 401 | 403,
                ..
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> Error {
        Error::Api {
            method: "GET",
            endpoint: "registered-models/search",
            status,
            code: None,
            message: "Unauthorized".into(),
        }
    }

    #[test]
    fn authentication_failures_say_what_to_check() {
        let text = api(401).to_string();
        assert!(text.contains("authentication failed"), "{text}");
        assert!(text.contains("MLFLOW_TRACKING_TOKEN"), "{text}");
        assert!(api(403).to_string().contains("permission denied"));
        assert_eq!(
            api(503).to_string(),
            "GET registered-models/search: HTTP 503: Unauthorized"
        );
    }
}
