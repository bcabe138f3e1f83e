//! Outgoing notifications: what mlreg did (`applied`), found (`drift`), refused (`blocked`,
//! `invalid`) or could not do (`failed`), posted to webhooks (`--notify URL`) as JSON or in
//! Slack's incoming-webhook shape.
//!
//! Delivery never delays or fails a reconcile: events go into a bounded queue
//! ([`QUEUE_CAPACITY`]; when it is full the event is dropped and counted) and one background
//! task posts them, each target retried with backoff ([`ATTEMPTS`] tries, a short timeout
//! each). A one-shot command waits for the queue at most [`FLUSH_DEADLINE`] before it
//! exits. When `MLREG_NOTIFY_SECRET` is set, every body is signed:
//! `X-Mlreg-Signature: sha256=<hex HMAC-SHA256 of the body>`, so a receiver can check it
//! came from mlreg.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use ring::hmac;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::plan::Change;

/// How many events may wait for delivery; more are dropped and counted.
pub const QUEUE_CAPACITY: usize = 256;
/// Tries per event and target (the first and the retries).
pub const ATTEMPTS: u32 = 3;
/// The longest a one-shot command waits for undelivered notifications before exiting.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(10);
/// One delivery attempt's timeout.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The first retry delay (doubled after each failure).
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The `format_version` of the JSON notification.
const FORMAT_VERSION: &str = crate::render::FORMAT_VERSION;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Changes were applied and converged.
    Applied,
    /// Drift was found and left alone.
    Drift,
    /// A gate blocked a change.
    Blocked,
    /// A change failed, or the model did not converge.
    Failed,
    /// The manifests are invalid.
    Invalid,
}

impl EventKind {
    /// The name in payloads and in `--notify-events`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Applied => "applied",
            EventKind::Drift => "drift",
            EventKind::Blocked => "blocked",
            EventKind::Failed => "failed",
            EventKind::Invalid => "invalid",
        }
    }

    /// Every kind, in the order of the docs.
    pub const ALL: [EventKind; 5] = [
        EventKind::Applied,
        EventKind::Drift,
        EventKind::Blocked,
        EventKind::Failed,
        EventKind::Invalid,
    ];
}

impl std::str::FromStr for EventKind {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, UnknownName> {
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| UnknownName {
                what: "notification event",
                name: name.to_owned(),
                expected: "applied, drift, blocked, failed or invalid",
            })
    }
}

/// A name that is not one of the notification events or formats.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{name}` (expected {expected})")]
pub struct UnknownName {
    /// `notification event` or `notification format`.
    pub what: &'static str,
    /// The name given.
    pub name: String,
    /// The names that exist.
    pub expected: &'static str,
}

/// Which events a target receives: every kind (the default), or only those listed (a
/// project file's `events: [applied, failed]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// `None`: every kind.
    only: Option<BTreeSet<EventKind>>,
}

impl EventFilter {
    /// Every kind.
    pub fn all() -> Self {
        EventFilter::default()
    }

    /// Only `kinds` (an empty list sends nothing).
    pub fn only(kinds: impl IntoIterator<Item = EventKind>) -> Self {
        EventFilter {
            only: Some(kinds.into_iter().collect()),
        }
    }

    /// The filter of a list of names (`["applied", "failed"]`); an unknown name is an error.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, UnknownName> {
        names
            .iter()
            .map(|name| name.as_ref().parse::<EventKind>())
            .collect::<Result<BTreeSet<_>, _>>()
            .map(|only| EventFilter { only: Some(only) })
    }

    /// Whether an event of `kind` is sent.
    pub fn accepts(&self, kind: EventKind) -> bool {
        self.only.as_ref().is_none_or(|only| only.contains(&kind))
    }
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// What happened.
    pub event: EventKind,
    /// The environment (`None` without a project file).
    pub environment: Option<String>,
    /// The model, when the event is about one.
    pub model: Option<String>,
    /// The changes applied, pending or failed.
    pub changes: Vec<Change>,
    /// The manifests' git commit, when known.
    pub commit: Option<String>,
    /// A one-line summary for people (errors, the first problem of invalid manifests).
    pub detail: Option<String>,
}

/// The body a receiver gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// The versioned JSON document.
    #[default]
    Json,
    /// Slack's incoming-webhook shape (`{"text": ...}`).
    Slack,
}

impl std::str::FromStr for Format {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, UnknownName> {
        match name {
            "json" => Ok(Format::Json),
            "slack" => Ok(Format::Slack),
            _ => Err(UnknownName {
                what: "notification format",
                name: name.to_owned(),
                expected: "json or slack",
            }),
        }
    }
}

/// Where notifications go: one receiver, the shape of its bodies, and which events it
/// gets. `--notify URL` makes one per URL (every event); a project file's `notifications`
/// entry makes one from its `url`, `format` and `events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The receiver's URL.
    pub url: url::Url,
    /// The body's shape.
    pub format: Format,
    /// The events it receives.
    pub events: EventFilter,
}

impl Target {
    /// A target receiving every event.
    pub fn new(url: url::Url, format: Format) -> Self {
        Target {
            url,
            format,
            events: EventFilter::all(),
        }
    }

    /// The same target, receiving only what `events` accepts.
    pub fn with_events(mut self, events: EventFilter) -> Self {
        self.events = events;
        self
    }
}

/// Counters of what happened to notifications (`/metrics` shows the daemon's; clones of a
/// counter share its value).
#[derive(Debug, Default)]
pub struct Counts {
    /// Delivered (a 2xx answer).
    pub delivered: Counter,
    /// Attempts repeated after a failed one.
    pub retried: Counter,
    /// Given up after every attempt failed.
    pub failed: Counter,
    /// Dropped because the queue was full.
    pub dropped: Counter,
}

/// The sending side: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct Notifier {
    queue: Option<mpsc::Sender<Event>>,
    counts: Arc<Counts>,
}

/// The background task that delivers, and waits for the queue to drain.
#[derive(Debug)]
pub struct Delivery {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Notifier {
    /// A notifier that sends nothing (no targets configured).
    pub fn disabled() -> Self {
        Notifier {
            queue: None,
            counts: Arc::new(Counts::default()),
        }
    }

    /// Starts delivering to `targets` (signing with `secret` when given). Must be called in
    /// the runtime. With no target it is [`Notifier::disabled`].
    pub fn start(targets: Vec<Target>, secret: Option<Vec<u8>>) -> (Notifier, Delivery) {
        Notifier::start_counted(targets, secret, Arc::new(Counts::default()))
    }

    /// Like [`Notifier::start`], counting into `counts` (the daemon's metrics).
    pub fn start_counted(
        targets: Vec<Target>,
        secret: Option<Vec<u8>>,
        counts: Arc<Counts>,
    ) -> (Notifier, Delivery) {
        if targets.is_empty() {
            return (
                Notifier {
                    queue: None,
                    counts,
                },
                Delivery { task: None },
            );
        }
        let (sender, mut receiver) = mpsc::channel::<Event>(QUEUE_CAPACITY);
        let worker_counts = Arc::clone(&counts);
        let key = secret.map(|secret| hmac::Key::new(hmac::HMAC_SHA256, &secret));
        // reqwest is built without a default TLS provider; the registry client installs the
        // same one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let task = tokio::spawn(async move {
            let http = match reqwest::Client::builder().timeout(ATTEMPT_TIMEOUT).build() {
                Ok(http) => http,
                Err(error) => {
                    tracing::warn!(%error, "notifications are off: cannot build an HTTP client");
                    return;
                }
            };
            while let Some(event) = receiver.recv().await {
                for target in targets
                    .iter()
                    .filter(|target| target.events.accepts(event.event))
                {
                    let body = body(&event, target.format);
                    let delivered =
                        deliver(&http, target, &body, key.as_ref(), &worker_counts.retried).await;
                    let counter = if delivered {
                        &worker_counts.delivered
                    } else {
                        &worker_counts.failed
                    };
                    counter.inc();
                }
            }
        });
        (
            Notifier {
                queue: Some(sender),
                counts,
            },
            Delivery { task: Some(task) },
        )
    }

    /// Queues `event`; drops (and counts) it when the queue is full. Never waits.
    pub fn notify(&self, event: Event) {
        let Some(queue) = &self.queue else {
            return;
        };
        if queue.try_send(event).is_err() {
            self.counts.dropped.inc();
            tracing::warn!("a notification was dropped: the delivery queue is full");
        }
    }

    /// Whether any target is configured (when not, [`Notifier::notify`] does nothing).
    pub fn is_enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// What happened to the notifications so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }
}

impl Delivery {
    /// Closes the queue (every [`Notifier`] clone must be dropped first) and waits for the
    /// undelivered notifications, at most `deadline`; what is still queued then is given up.
    pub async fn finish(mut self, deadline: Duration) {
        if let Some(task) = self.task.take()
            && tokio::time::timeout(deadline, task).await.is_err()
        {
            tracing::warn!(
                deadline_s = deadline.as_secs_f64(),
                "undelivered notifications were given up at exit"
            );
        }
    }
}

/// The events of an apply: `applied` for each model whose changes converged, `failed` for
/// each that did not (with its error).
pub fn events_of(report: &crate::apply::ApplyReport, commit: Option<&str>) -> Vec<Event> {
    use crate::apply::{Convergence, OutcomeStatus};
    report
        .models
        .iter()
        .filter_map(|model| {
            let applied: Vec<Change> = model
                .outcomes
                .iter()
                .filter(|outcome| matches!(outcome.result, OutcomeStatus::Applied))
                .map(|outcome| outcome.change.clone())
                .collect();
            let (event, changes, detail) = match model.status {
                Convergence::Converged if !applied.is_empty() => {
                    (EventKind::Applied, applied, None)
                }
                Convergence::InSync | Convergence::Converged => return None,
                Convergence::Failed | Convergence::Interrupted => (
                    EventKind::Failed,
                    model
                        .outcomes
                        .iter()
                        .map(|outcome| outcome.change.clone())
                        .collect(),
                    model.error.clone(),
                ),
            };
            Some(Event {
                event,
                environment: None,
                model: Some(model.model.clone()),
                changes,
                commit: commit.map(str::to_owned),
                detail,
            })
        })
        .collect()
}

/// The body of `event` for `format`.
fn body(event: &Event, format: Format) -> Vec<u8> {
    let value = match format {
        Format::Json => {
            #[derive(Serialize)]
            struct Document<'a> {
                format_version: &'static str,
                #[serde(flatten)]
                event: &'a Event,
            }
            serde_json::to_value(Document {
                format_version: FORMAT_VERSION,
                event,
            })
        }
        Format::Slack => Ok(serde_json::json!({ "text": summary(event) })),
    };
    value
        .and_then(|value| serde_json::to_vec(&value))
        .unwrap_or_default()
}

/// One readable line (and the changes, one per line) for chat.
pub fn summary(event: &Event) -> String {
    let mut text = format!("mlreg: {}", event.event.as_str());
    if let Some(model) = &event.model {
        let _ = write!(text, " `{model}`");
    }
    if let Some(environment) = &event.environment {
        let _ = write!(text, " in {environment}");
    }
    if let Some(commit) = &event.commit {
        let short: String = commit.chars().take(12).collect();
        let _ = write!(text, " at {short}");
    }
    if let Some(detail) = &event.detail {
        let _ = write!(text, ": {detail}");
    }
    for change in &event.changes {
        let _ = write!(text, "\n• {}", crate::render::plan::change_line(change));
    }
    text
}

/// `sha256=<hex HMAC-SHA256 of body>`.
pub fn signature(key: &hmac::Key, body: &[u8]) -> String {
    let tag = hmac::sign(key, body);
    let mut hex = String::with_capacity(7 + tag.as_ref().len() * 2);
    hex.push_str("sha256=");
    for byte in tag.as_ref() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// Posts `body` to `target`, retried with backoff; whether a 2xx answer came.
async fn deliver(
    http: &reqwest::Client,
    target: &Target,
    body: &[u8],
    key: Option<&hmac::Key>,
    retried: &Counter,
) -> bool {
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        if attempt > 1 {
            retried.inc();
        }
        let mut request = http
            .post(target.url.clone())
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(key) = key {
            request = request.header("x-mlreg-signature", signature(key, body));
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => return true,
            Ok(response) => tracing::warn!(
                url = %redacted(&target.url),
                status = response.status().as_u16(),
                attempt,
                "a notification was refused"
            ),
            Err(error) => tracing::warn!(
                url = %redacted(&target.url),
                %error,
                attempt,
                "a notification could not be sent"
            ),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    false
}

/// The URL without its path and query (a Slack webhook URL's path is its secret).
fn redacted(url: &url::Url) -> String {
    format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port()
            .map(|port| format!(":{port}"))
            .unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Reason};

    fn event() -> Event {
        Event {
            event: EventKind::Applied,
            environment: None,
            model: Some("fraud".into()),
            changes: vec![Change {
                action: Action::SetAlias {
                    alias: "champion".into(),
                    from: Some(3),
                    to: 4,
                },
                reason: Reason::AliasMoved,
            }],
            commit: Some("0123456789abcdef".into()),
            detail: None,
        }
    }

    #[test]
    fn bodies_and_signatures() {
        let json: serde_json::Value =
            serde_json::from_slice(&body(&event(), Format::Json)).expect("json");
        assert_eq!(json["format_version"], "1");
        assert_eq!(json["event"], "applied");
        assert_eq!(json["model"], "fraud");
        assert_eq!(json["changes"][0]["kind"], "set_alias");
        let slack: serde_json::Value =
            serde_json::from_slice(&body(&event(), Format::Slack)).expect("json");
        assert_eq!(
            slack["text"],
            "mlreg: applied `fraud` at 0123456789ab\n• ~ alias champion: 3 → 4 (alias moved)"
        );
        // RFC 4231 test case 2.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        assert_eq!(
            signature(&key, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let url = url::Url::parse("https://hooks.slack.com/services/T0/B0/secret").expect("url");
        assert_eq!(redacted(&url), "https://hooks.slack.com");
    }

    #[test]
    fn a_target_gets_only_the_events_its_filter_names() {
        let url = url::Url::parse("https://example.com/hook").expect("url");
        let every = Target::new(url.clone(), Format::Json);
        for kind in EventKind::ALL {
            assert!(every.events.accepts(kind), "{kind:?}");
        }
        let filter = EventFilter::parse(&["applied", "failed"]).expect("known names");
        let some = Target::new(url, Format::Slack).with_events(filter);
        assert!(some.events.accepts(EventKind::Applied));
        assert!(some.events.accepts(EventKind::Failed));
        assert!(!some.events.accepts(EventKind::Drift));
        assert!(!some.events.accepts(EventKind::Invalid));
        assert!(!EventFilter::only([]).accepts(EventKind::Applied));
        let unknown = EventFilter::parse(&["applied", "drifted"]).expect_err("unknown");
        assert_eq!(
            unknown.to_string(),
            "unknown notification event `drifted` (expected applied, drift, blocked, failed or invalid)"
        );
        // The spellings a project file uses.
        assert_eq!("slack".parse::<Format>(), Ok(Format::Slack));
        assert!("xml".parse::<Format>().is_err());
        let kinds: Vec<EventKind> = serde_json::from_str(r#"["drift", "blocked"]"#).expect("json");
        assert_eq!(kinds, vec![EventKind::Drift, EventKind::Blocked]);
        let format: Format = serde_json::from_str(r#""json""#).expect("json");
        assert_eq!(format, Format::Json);
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_and_a_dead_receiver_never_blocks() {
        // A port nothing listens on: every attempt fails fast.
        let target = Target::new(
            url::Url::parse("http://127.0.0.1:9/").expect("url"),
            Format::Json,
        );
        let (notifier, delivery) = Notifier::start(vec![target], None);
        for _ in 0..QUEUE_CAPACITY + 50 {
            notifier.notify(event());
        }
        assert!(notifier.counts().dropped.get() >= 50);
        let started = std::time::Instant::now();
        drop(notifier);
        delivery.finish(Duration::from_millis(300)).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "finish waited past its deadline"
        );
    }
}
