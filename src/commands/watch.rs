//! `mlreg watch`: the daemon. Glue only: build the registry client (feeding the request
//! latency histogram), install the signal handlers, start the webhook registration
//! ([`crate::daemon::registration`], beside the loop, when asked), run
//! [`crate::daemon::run`] with the configuration [`crate::settings`] validated.

use anyhow::Context as _;

use crate::daemon::{self, Metrics, Shutdown};
use crate::exit::ExitStatus;
use crate::settings::WatchSettings;

use super::client;

/// Runs the daemon until SIGTERM/SIGINT.
pub async fn run(mut settings: WatchSettings) -> anyhow::Result<ExitStatus> {
    let metrics = Metrics::new();
    if let Ok(registry) = &settings.registry {
        settings.config.registry = Some(registry.base_url.clone());
    }
    let client = client(settings.registry)?.with_observer({
        let metrics = metrics.clone();
        move |endpoint, latency, status| metrics.observe_request(endpoint, latency, status)
    });
    let shutdown = Shutdown::install();
    let registration = settings.registration.map(|registration| {
        tokio::spawn(daemon::registration::run(
            client.clone(),
            *registration,
            metrics.clone(),
            shutdown.stop(),
        ))
    });
    let result = daemon::run(settings.config, &client, metrics, &shutdown).await;
    if let Some(task) = registration {
        task.abort();
    }
    result.context("mlreg watch cannot start")
}
