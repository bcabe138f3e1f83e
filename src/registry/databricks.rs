//! The Databricks workspace registry, addressed as MLflow's client addresses it:
//! `MLFLOW_TRACKING_URI=databricks` (the `DATABRICKS_HOST` / `DATABRICKS_TOKEN` variables, else
//! the `DEFAULT` profile of `~/.databrickscfg`) or `databricks://PROFILE` (that profile).
//! `DATABRICKS_CONFIG_FILE` names another configuration file, as for the Databricks CLI.
//!
//! The workspace registry speaks the same REST API as an MLflow server (`/api/2.0/mlflow/`),
//! with a bearer token. Unity Catalog (`databricks-uc`) does not: its models live under
//! `/api/2.0/mlflow/unity-catalog/...`, are named `catalog.schema.model` and have no stages,
//! so it is refused with [`UNITY_CATALOG_HELP`] until mlreg speaks it.

use std::path::PathBuf;

use super::config::Auth;
use super::{Error, Result};

/// Why `databricks-uc` is refused, and what to do instead.
pub const UNITY_CATALOG_HELP: &str = "mlreg manages the Databricks workspace model registry (`databricks`, `databricks://PROFILE`); Unity Catalog's registry is a different API (`/api/2.0/mlflow/unity-catalog/...`, three-level `catalog.schema.model` names, aliases but no stages), not supported yet";

/// Whether `uri` names the Databricks workspace registry (`databricks`, `databricks://…`).
pub fn is_databricks(uri: &str) -> bool {
    let uri = uri.trim();
    uri == "databricks" || uri.starts_with("databricks://")
}

/// Whether `uri` names Unity Catalog's registry (`databricks-uc`, `databricks-uc://…`).
pub fn is_unity_catalog(uri: &str) -> bool {
    let uri = uri.trim();
    uri == "databricks-uc" || uri.starts_with("databricks-uc://")
}

/// The host and credentials `uri` (`databricks` or `databricks://PROFILE`) stands for.
pub fn resolve(uri: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<(url::Url, Auth)> {
    let non_empty = |name: &str| env(name).filter(|value| !value.trim().is_empty());
    let profile = uri
        .trim()
        .strip_prefix("databricks://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|profile| !profile.is_empty());
    // As MLflow: without a profile the variables come first, then the DEFAULT profile.
    let (host, token, from) = match (profile, non_empty("DATABRICKS_HOST")) {
        (None, Some(host)) => (
            host,
            non_empty("DATABRICKS_TOKEN"),
            "DATABRICKS_HOST".to_owned(),
        ),
        (profile, _) => {
            let profile = profile.unwrap_or("DEFAULT");
            let (path, text) = read_config(env)?;
            let section = section(&text, profile).ok_or_else(|| {
                Error::Config(format!(
                    "the Databricks configuration {} has no profile [{profile}]{}",
                    path.display(),
                    if profile == "DEFAULT" {
                        " (set DATABRICKS_HOST and DATABRICKS_TOKEN, or add the profile)"
                    } else {
                        ""
                    }
                ))
            })?;
            let host = section.get("host").cloned().ok_or_else(|| {
                Error::Config(format!(
                    "profile [{profile}] of {} has no `host`",
                    path.display()
                ))
            })?;
            (
                host,
                section.get("token").cloned(),
                format!("profile [{profile}] of {}", path.display()),
            )
        }
    };
    let token = token.ok_or_else(|| {
        Error::Config(format!(
            "no Databricks token for the host of {from}: set DATABRICKS_TOKEN or `token` in the profile (personal access token)"
        ))
    })?;
    let host = host.trim();
    let host = if host.contains("://") {
        host.to_owned()
    } else {
        format!("https://{host}")
    };
    let url = url::Url::parse(&host).map_err(|error| {
        Error::Config(format!(
            "the Databricks host of {from} is not a URL ({error})"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Config(format!(
            "the Databricks host of {from} must be https://, not {}://",
            url.scheme()
        )));
    }
    Ok((url, Auth::Bearer(token.trim().to_owned())))
}

/// The configuration file (`DATABRICKS_CONFIG_FILE`, else `~/.databrickscfg`) and its text.
fn read_config(env: &dyn Fn(&str) -> Option<String>) -> Result<(PathBuf, String)> {
    let path = match env("DATABRICKS_CONFIG_FILE").filter(|path| !path.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => match env("HOME").filter(|home| !home.is_empty()) {
            Some(home) => PathBuf::from(home).join(".databrickscfg"),
            None => {
                return Err(Error::Config(
                    "no Databricks host: set DATABRICKS_HOST and DATABRICKS_TOKEN, or DATABRICKS_CONFIG_FILE"
                        .into(),
                ));
            }
        },
    };
    let text = std::fs::read_to_string(&path).map_err(|error| {
        Error::Config(format!(
            "no Databricks host: DATABRICKS_HOST is not set and {} cannot be read ({error})",
            path.display()
        ))
    })?;
    Ok((path, text))
}

/// The `key = value` pairs of INI section `[name]` (keys lower-cased; `#`/`;` comments).
fn section(text: &str, name: &str) -> Option<std::collections::BTreeMap<String, String>> {
    let mut current: Option<&str> = None;
    let mut found = None::<std::collections::BTreeMap<String, String>>;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(header.trim());
            if header.trim() == name {
                found.get_or_insert_default();
            }
            continue;
        }
        if current == Some(name)
            && let Some((key, value)) = line.split_once('=')
            && let Some(section) = found.as_mut()
        {
            section.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.clone())
        }
    }

    #[test]
    fn variables_then_the_default_profile_then_a_named_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("cfg");
        std::fs::write(
            &file,
            "[DEFAULT]\nhost = dbc-default.cloud.databricks.com\ntoken = tok-default\n\n# comment\n[prod]\nhost = https://dbc-prod.cloud.databricks.com/\ntoken=tok-prod\n",
        )
        .expect("write");
        let file = file.display().to_string();
        let (url, auth) = resolve(
            "databricks",
            &env(vec![
                ("DATABRICKS_HOST", "https://h.example".into()),
                ("DATABRICKS_TOKEN", "tok-env".into()),
                ("DATABRICKS_CONFIG_FILE", file.clone()),
            ]),
        )
        .expect("from the variables");
        assert_eq!(url.as_str(), "https://h.example/");
        assert_eq!(auth, Auth::Bearer("tok-env".into()));
        let (url, auth) = resolve(
            "databricks",
            &env(vec![("DATABRICKS_CONFIG_FILE", file.clone())]),
        )
        .expect("default profile");
        assert_eq!(url.as_str(), "https://dbc-default.cloud.databricks.com/");
        assert_eq!(auth, Auth::Bearer("tok-default".into()));
        // A named profile wins over the variables, as in MLflow.
        let (url, auth) = resolve(
            "databricks://prod",
            &env(vec![
                ("DATABRICKS_HOST", "https://h.example".into()),
                ("DATABRICKS_CONFIG_FILE", file.clone()),
            ]),
        )
        .expect("named profile");
        assert_eq!(url.as_str(), "https://dbc-prod.cloud.databricks.com/");
        assert_eq!(auth, Auth::Bearer("tok-prod".into()));
        let missing = resolve(
            "databricks://nope",
            &env(vec![("DATABRICKS_CONFIG_FILE", file)]),
        )
        .expect_err("no such profile");
        assert!(missing.to_string().contains("[nope]"), "{missing}");
        let no_token = resolve(
            "databricks",
            &env(vec![("DATABRICKS_HOST", "https://h".into())]),
        )
        .expect_err("no token");
        assert!(
            no_token.to_string().contains("DATABRICKS_TOKEN"),
            "{no_token}"
        );
    }

    #[test]
    fn unity_catalog_is_told_apart() {
        assert!(is_unity_catalog("databricks-uc") && is_unity_catalog("databricks-uc://p"));
        assert!(!is_databricks("databricks-uc"));
        assert!(is_databricks("databricks") && is_databricks("databricks://p"));
    }
}
