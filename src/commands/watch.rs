//! `mlreg watch`: the daemon. Glue only: build the registry client (feeding the request
//! latency histogram), translate the flags, install the signal handlers, run
//! [`crate::daemon::run`].

use std::time::Duration;

use anyhow::Context as _;

use crate::cli::WatchArgs;
use crate::daemon::{self, Metrics, Shutdown};
use crate::exit::ExitStatus;

use super::Context;

/// The shortest `--interval` accepted: a resync reads the whole registry.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Runs the daemon until SIGTERM/SIGINT.
pub async fn run(context: &Context, args: &WatchArgs) -> anyhow::Result<ExitStatus> {
    if args.interval < MIN_INTERVAL {
        anyhow::bail!(
            "--interval must be at least {}s (got {:?})",
            MIN_INTERVAL.as_secs(),
            args.interval
        );
    }
    let metrics = Metrics::new();
    let client = context.client()?.with_observer({
        let metrics = metrics.clone();
        move |endpoint, latency, status| metrics.observe_request(endpoint, latency, status)
    });
    let config = daemon::Config {
        interval: args.interval,
        listen: args.listen,
        self_heal: args.self_heal,
        max_changes: args.max_changes,
        annotate: !args.no_annotate,
        ..daemon::Config::new(args.dir.dir.clone())
    }
    .with_polling(args.poll);
    let shutdown = Shutdown::install();
    daemon::run(config, &client, metrics, &shutdown)
        .await
        .context("mlreg watch cannot start")
}
