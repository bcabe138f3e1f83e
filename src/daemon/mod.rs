//! The daemon behind `mlreg watch`: one supervised loop that keeps the registry in the state
//! the manifests declare, and HTTP endpoints that say how that is going.
//!
//! The loop `select!`s over three things, and runs at most one reconcile at a time (so two
//! applies never overlap):
//!
//! - **shutdown** ([`crate::shutdown`]): the first SIGINT/SIGTERM ends the loop once the apply in
//!   flight, if any, has finished; a second aborts that apply;
//! - **a batch of filesystem events** ([`watcher`] feeds a bounded channel, [`debounce`]
//!   turns a burst into one batch): the manifests are read again; if they are invalid, every
//!   problem is logged with its position and the last valid desired state is kept; if the
//!   desired state changed, a reconcile runs at once;
//! - **the reconcile timer**: the periodic resync (every `--interval`, ±10 %), or the retry
//!   after a failure (exponential backoff with jitter from 1 s up to the interval).
//!
//! What one reconcile does — and how a manifest change is told apart from drift made by hand
//! in the registry — is in [`reconciler`]. The endpoints are in [`http`], the metrics in
//! [`metrics`], the `/status` document in [`status`], the status page in [`html`] (what
//! it shows beyond `/status`, recorded after each reconcile, in [`page`]), the timing in
//! [`schedule`].
//!
//! Two kinds of error: the daemon stops (exit 1) only when it cannot start — the listen
//! address cannot be bound, or the directory cannot be watched ([`Error`]). Everything
//! after that (an unreachable registry, invalid manifests, a failed write) is logged,
//! reported on `/readyz`, `/status` and `/metrics`, and retried.

pub mod debounce;
pub mod html;
pub mod http;
pub mod metrics;
pub mod notifications;
pub mod page;
pub mod reconciler;
pub mod registration;
pub mod schedule;
pub mod status;
pub mod watcher;
pub mod webhook;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::apply;
use crate::exit::ExitStatus;
use crate::manifest::{self, DesiredState, ModelSpec};
use crate::registry::Registry;

pub use crate::shutdown::Daemon as Shutdown;
pub use metrics::Metrics;

use debounce::Window;
use reconciler::{Reconciler, Settings, Verdict};
use status::{Shared, Status, SyncState, Trigger};
use watcher::{DirWatcher, FsEvent};

/// How many filesystem events may wait in the channel; more are dropped (one is enough to
/// trigger a re-read).
const EVENT_CHANNEL_CAPACITY: usize = 1024;

/// How many verified webhook events may wait; more are counted and dropped (the resync
/// catches them, and one queued event already triggers a reconcile).
const WEBHOOK_CHANNEL_CAPACITY: usize = 256;

/// How often `--poll` scans the directory.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// How long the HTTP server may take to close its connections at shutdown.
const HTTP_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The first retry delay after a failed reconcile.
const MIN_BACKOFF: Duration = Duration::from_secs(1);

/// The daemon's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The desired-state directory.
    pub dir: PathBuf,
    /// The resync interval (before jitter); also the longest retry delay.
    pub interval: Duration,
    /// Where the HTTP endpoints listen.
    pub listen: SocketAddr,
    /// Revert drift found in the registry.
    pub self_heal: bool,
    /// Refuse to apply more changes than this at once.
    pub max_changes: Option<usize>,
    /// Poll the directory every so often instead of relying on filesystem events.
    pub poll: Option<Duration>,
    /// Write the audit tags: `mlreg.transition` on transitioned versions,
    /// `mlreg.alias.<alias>` on the version an alias was pointed at.
    pub annotate: bool,
    /// How many models to apply at once.
    pub concurrency: usize,
    /// How filesystem events are batched.
    pub debounce: Window,
    /// Verifies MLflow webhook deliveries on `POST /hooks/mlflow` (`None`: no such route).
    pub webhook: Option<Arc<webhook::Verifier>>,
    /// The registry's address, shown on the status page without its credentials.
    pub registry: Option<url::Url>,
    /// Where notifications go (`--notify`, the project file's `notifications`; none by
    /// default).
    pub notify: crate::settings::NotifySettings,
    /// The project file's environment this daemon serves (`--env`), named in its
    /// notifications and on its status page.
    pub environment: Option<String>,
}

impl Config {
    /// The defaults of `mlreg watch` for `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Config {
            dir,
            interval: crate::settings::DEFAULT_INTERVAL,
            listen: crate::settings::DEFAULT_LISTEN,
            self_heal: false,
            max_changes: None,
            poll: None,
            annotate: true,
            concurrency: usize::from(crate::settings::DEFAULT_CONCURRENCY),
            debounce: Window::default(),
            webhook: None,
            registry: None,
            notify: crate::settings::NotifySettings::default(),
            environment: None,
        }
    }

    /// Selects the polling watcher (`--poll`).
    pub fn with_polling(mut self, poll: bool) -> Self {
        self.poll = poll.then_some(POLL_INTERVAL);
        self
    }
}

/// Why the daemon could not start. Nothing that happens after startup is fatal.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source} (pass another address with --listen)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The desired-state directory could not be watched.
    #[error("cannot watch the desired-state directory `{}`: {source}", dir.display())]
    Watch {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: notify::Error,
    },
}

/// Runs the daemon until `shutdown` stops it, and says how the process should exit: 0 after
/// a graceful stop, 130/143 when a second signal aborted an apply.
pub async fn run<R: Registry>(
    config: Config,
    registry: &R,
    metrics: Metrics,
    shutdown: &Shutdown,
) -> Result<ExitStatus, Error> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
    let address = listener.local_addr().unwrap_or(config.listen);

    // Watch before the first read, so that no change between the two is missed.
    let (sender, mut events) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let watcher =
        DirWatcher::start(&config.dir, config.poll, sender).map_err(|source| Error::Watch {
            dir: config.dir.clone(),
            source,
        })?;

    let (notifier, delivery) = crate::notify::Notifier::start_counted(
        config.notify.targets.clone(),
        config.notify.secret.clone(),
        metrics.notification_counts(),
    );
    let notifications = notifications::Notifications::new(notifier, config.dir.clone())
        .with_environment(config.environment.clone());
    let mut status = Status::new(config.dir.clone(), config.self_heal);
    status.page.registry = config.registry.as_ref().map(page::redact);
    status.page.environment.clone_from(&config.environment);
    let shared = Arc::new(Shared::new(status, metrics, shutdown.stop()));
    let (hooks, mut hook_events) = match &config.webhook {
        Some(verifier) => {
            let (sender, receiver) = mpsc::channel(WEBHOOK_CHANNEL_CAPACITY);
            let hooks = http::Hooks {
                verifier: Arc::clone(verifier),
                events: sender,
            };
            (Some(hooks), Some(receiver))
        }
        None => (None, None),
    };
    let server_stop = CancellationToken::new();
    let mut server = AbortOnDrop(tokio::spawn(http::serve(
        listener,
        Arc::clone(&shared),
        hooks,
        server_stop.clone(),
    )));
    tracing::info!(
        listen = %address,
        dir = %config.dir.display(),
        interval_s = config.interval.as_secs_f64(),
        self_heal = config.self_heal,
        watcher = if config.poll.is_some() { "poll" } else { "native" },
        "mlreg watch started; endpoints: / (status page) /healthz /readyz /metrics /status"
    );

    let settings = Settings {
        dir: config.dir.clone(),
        self_heal: config.self_heal,
        max_changes: config.max_changes,
        annotate: config.annotate,
        concurrency: config.concurrency,
    };
    let mut daemon = Daemon {
        reconciler: Reconciler::new(registry, settings, Arc::clone(&shared))
            .with_notifications(notifications.clone()),
        notifications,
        backoff: schedule::Backoff::new(MIN_BACKOFF.min(config.interval), config.interval),
        config,
        shared,
        watcher,
        desired: None,
        specs: BTreeMap::new(),
        manifests_valid: false,
        last_errors: Vec::new(),
    };
    daemon
        .run_loop(&mut events, hook_events.as_mut(), shutdown)
        .await;
    // Every sender goes with the loop; what is still queued gets a short bound.
    drop(daemon);
    delivery.finish(crate::notify::FLUSH_DEADLINE).await;

    server_stop.cancel();
    match tokio::time::timeout(HTTP_SHUTDOWN_GRACE, &mut *server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(error))) => tracing::warn!(%error, "the HTTP server failed"),
        Ok(Err(error)) => tracing::warn!(%error, "the HTTP server task failed"),
        Err(_) => tracing::warn!("the HTTP server did not close its connections in time"),
    }
    let status = shutdown.exit_status();
    tracing::info!(exit_code = status.code(), "mlreg watch stopped");
    Ok(status)
}

/// A task aborted when dropped, so that no spawned task outlives the daemon.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> std::ops::Deref for AbortOnDrop<T> {
    type Target = tokio::task::JoinHandle<T>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<T> std::ops::DerefMut for AbortOnDrop<T> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What reading the manifests found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reload {
    /// Valid, and the desired state differs from the one in use (or there was none).
    Changed,
    /// Valid, and the same desired state as the one in use.
    Unchanged,
    /// Invalid; the last valid desired state stays in use.
    Invalid,
}

/// The loop's state.
struct Daemon<'r, R> {
    config: Config,
    shared: Arc<Shared>,
    reconciler: Reconciler<'r, R>,
    backoff: schedule::Backoff,
    watcher: DirWatcher,
    /// The last valid desired state.
    desired: Option<DesiredState>,
    /// Its models' specs (no file positions), to tell a real change from a cosmetic one.
    specs: BTreeMap<String, ModelSpec>,
    /// Whether the manifests on disk are valid (when not, nothing is applied).
    manifests_valid: bool,
    /// The problems of the last invalid read, so the same ones are not logged every resync.
    last_errors: Vec<String>,
    /// Where `--notify` events go.
    notifications: notifications::Notifications,
}

impl<R: Registry> Daemon<'_, R> {
    async fn run_loop(
        &mut self,
        events: &mut mpsc::Receiver<FsEvent>,
        mut hook_events: Option<&mut mpsc::Receiver<String>>,
        shutdown: &Shutdown,
    ) {
        let stop = shutdown.stop();
        let mut next: Option<(Instant, Trigger)> = None;
        if self.reload() == Reload::Changed {
            next = Some((Instant::now(), Trigger::Startup));
        } else {
            tracing::warn!(
                "waiting for valid manifests before the first reconcile (fix them; the directory is watched)"
            );
        }
        loop {
            let wake = next.map(|(at, _)| at);
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                Some(first) = events.recv() => {
                    let batch = tokio::select! {
                        biased;
                        () = stop.cancelled() => break,
                        batch = debounce::settle(events, first, self.config.debounce) => batch,
                    };
                    for error in &batch.errors {
                        tracing::warn!(%error, "the directory watcher reported an error; re-reading the manifests");
                    }
                    tracing::debug!(events = batch.events, paths = ?batch.paths, "the desired-state directory changed");
                    self.follow_links();
                    match self.reload() {
                        Reload::Changed => next = Some((Instant::now(), Trigger::ManifestChange)),
                        Reload::Unchanged => tracing::debug!("the desired state did not change"),
                        Reload::Invalid => {}
                    }
                }
                Some(model) = next_hook(&mut hook_events) => {
                    // A burst (an alias set, then its version tagged) is one reconcile.
                    let mut models = vec![model];
                    if let Some(receiver) = hook_events.as_deref_mut() {
                        while let Ok(more) = receiver.try_recv() {
                            models.push(more);
                        }
                    }
                    let managed = self.desired.as_ref().is_some_and(|desired| {
                        models.iter().any(|model| desired.models.contains_key(model))
                    });
                    if !managed {
                        tracing::debug!(?models, "a webhook named no managed model; ignored");
                        self.shared.metrics.webhook_ignored();
                        continue;
                    }
                    let now = Instant::now();
                    if next.is_none_or(|(at, _)| at > now) {
                        tracing::info!(?models, "a webhook says a managed model changed; reconciling now");
                        next = Some((now, Trigger::Webhook));
                    }
                }
                () = sleep_until(wake) => {
                    let Some((_, mut trigger)) = next.take() else { continue };
                    // A safety net for lost events (a swapped symbolic link, an overflowed
                    // kernel queue, a directory deleted and created again): read the
                    // manifests on every tick too. It costs a few kilobytes of reading.
                    self.follow_links();
                    if self.reload() == Reload::Changed {
                        trigger = Trigger::ManifestChange;
                    }
                    let verdict = self.reconcile(trigger, shutdown).await;
                    next = match verdict {
                        Verdict::Success => {
                            self.backoff.reset();
                            Some((Instant::now() + schedule::resync_delay(self.config.interval), Trigger::Resync))
                        }
                        Verdict::Failure(_) => {
                            let delay = self.backoff.next_delay();
                            tracing::info!(retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "retrying after a backoff");
                            Some((Instant::now() + delay, trigger))
                        }
                        Verdict::Cancelled => break,
                    };
                }
            }
        }
    }

    /// Runs one reconcile in its own span.
    async fn reconcile(&mut self, trigger: Trigger, shutdown: &Shutdown) -> Verdict {
        let Some(desired) = &self.desired else {
            return Verdict::Success;
        };
        let span = tracing::info_span!(
            "reconcile",
            trigger = trigger.as_str(),
            attempt = self.backoff.failures() + 1
        );
        self.reconciler
            .reconcile(
                desired,
                self.manifests_valid,
                trigger,
                &shutdown.stop(),
                &shutdown.abort(),
            )
            .instrument(span)
            .await
    }

    /// Watches the directory again if it now resolves elsewhere (git-sync's link swap).
    fn follow_links(&mut self) {
        match self.watcher.follow_links() {
            Ok(true) => tracing::info!(
                dir = %self.config.dir.display(),
                "the desired-state directory now resolves to another directory; watching it"
            ),
            Ok(false) => {}
            Err(error) => tracing::warn!(
                %error,
                dir = %self.config.dir.display(),
                "cannot watch the desired-state directory again; changes are picked up at each resync"
            ),
        }
    }

    /// Reads every manifest again and records the result.
    fn reload(&mut self) -> Reload {
        let loaded_at = apply::now_rfc3339();
        let metrics = &self.shared.metrics;
        match manifest::load_dir(&self.config.dir) {
            Err(error) => {
                let errors: Vec<String> =
                    error.diagnostics.iter().map(ToString::to_string).collect();
                if self.manifests_valid || errors != self.last_errors {
                    for diagnostic in &error.diagnostics {
                        reconciler::log_diagnostic(diagnostic);
                    }
                    tracing::error!(
                        problems = error.diagnostics.len(),
                        kept_models = self.specs.len(),
                        "the manifests are invalid; keeping the last valid desired state and applying nothing until they are fixed"
                    );
                } else {
                    tracing::debug!(problems = errors.len(), "the manifests are still invalid");
                }
                self.notifications.manifests(Some(&errors));
                self.last_errors.clone_from(&errors);
                self.manifests_valid = false;
                metrics.set_manifests_valid(false);
                self.shared.update(|status| {
                    status.manifests.valid = false;
                    status.manifests.errors = errors;
                    status.manifests.loaded_at = Some(loaded_at);
                });
                Reload::Invalid
            }
            Ok(desired) => {
                self.notifications.manifests(None);
                let specs = desired.specs();
                let changed = self.desired.is_none() || specs != self.specs;
                let was_valid = self.manifests_valid;
                self.reconciler.retain_managed(&desired);
                metrics.set_manifests_valid(true);
                metrics.set_models_managed(desired.models.len());
                self.shared.update(|status| {
                    status.manifests.valid = true;
                    status.manifests.errors.clear();
                    status.manifests.models = desired.models.len();
                    status.manifests.loaded_at = Some(loaded_at);
                    // New models are unknown until the next reconcile; removed ones go.
                    let mut known: BTreeMap<String, status::ModelStatus> =
                        std::mem::take(&mut status.models)
                            .into_iter()
                            .map(|entry| (entry.name.clone(), entry))
                            .collect();
                    status.models = desired
                        .models
                        .values()
                        .map(|model| {
                            known
                                .remove(&model.name)
                                .unwrap_or_else(|| status::ModelStatus {
                                    name: model.name.clone(),
                                    manifest: model.file().to_path_buf(),
                                    state: SyncState::Unknown,
                                    pending_changes: Vec::new(),
                                    will_apply: false,
                                    last_error: None,
                                    gates: Vec::new(),
                                })
                        })
                        .collect();
                });
                if changed {
                    tracing::info!(models = desired.models.len(), "loaded the desired state");
                } else if !was_valid {
                    tracing::info!(
                        "the manifests are valid again (the desired state is unchanged)"
                    );
                }
                self.desired = Some(desired);
                self.specs = specs;
                self.manifests_valid = true;
                self.last_errors.clear();
                if changed {
                    Reload::Changed
                } else {
                    Reload::Unchanged
                }
            }
        }
    }
}

/// The next model named by a verified webhook, or never when webhooks are off.
async fn next_hook(receiver: &mut Option<&mut mpsc::Receiver<String>>) -> Option<String> {
    match receiver {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `at`, or forever when there is nothing scheduled.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
