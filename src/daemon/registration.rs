//! `--register-mlflow-webhook URL`: at startup the daemon makes sure the MLflow server holds
//! its one webhook, so the server's registry events reach `POST /hooks/mlflow`.
//!
//! The webhook is found by name (`--mlflow-webhook-name`, default [`DEFAULT_NAME`]). MLflow
//! does not keep names unique and never sends a secret back, so each start:
//!
//! 1. lists the server's webhooks;
//! 2. with none of that name, creates it; with one, updates it to the URL, the events
//!    ([`EVENTS`]), the secret and `ACTIVE` (always: the stored secret cannot be compared);
//!    with several (left by an earlier run whose create answer was lost), keeps the oldest
//!    and deletes the others.
//!
//! Restarting is therefore idempotent: still one webhook of that name, updated when the URL,
//! the events or the secret changed. A create is never repeated blindly: it is retried by
//! the client only when the request never reached the server; after any other failure the
//! next round lists again, and finds the webhook if the lost create did make it. A create is
//! followed by one more list that deletes any twin.
//!
//! The registration runs beside the daemon's loop and never holds it up: a failed round is
//! retried with backoff (1 s doubling to 60 s) until it succeeds or the daemon stops. A
//! server without the webhook API (MLflow 2.x, or a server that does not offer it) is logged
//! once and the registration ends: the daemon goes on polling at every `--interval`. Refusals
//! that retrying cannot fix (401/403, a URL the server does not accept) are logged once too.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Metrics;
use crate::registry::mlflow::{MlflowClient, Webhook, WebhookEvent, WebhookSpec};
use crate::registry::{Error, Result};

/// The webhook's name unless `--mlflow-webhook-name` says otherwise.
pub const DEFAULT_NAME: &str = "mlreg-watch";

/// The path of the daemon's receiver, added to a `--register-mlflow-webhook` URL given
/// without a path.
pub const HOOK_PATH: &str = "/hooks/mlflow";

/// The events subscribed to, `(entity, action)` as MLflow's payloads spell them. These are
/// all the registry events MLflow sends for models; stage transitions, model tags and
/// descriptions send none.
pub const EVENTS: [(&str, &str); 6] = [
    ("registered_model", "created"),
    ("model_version", "created"),
    ("model_version_tag", "set"),
    ("model_version_tag", "deleted"),
    ("model_version_alias", "created"),
    ("model_version_alias", "deleted"),
];

/// The description the webhook carries, for people browsing the server's webhooks.
const DESCRIPTION: &str = "Managed by mlreg watch (--register-mlflow-webhook): registry events \
                           trigger a reconcile. Updated at each start of the daemon.";

/// The first delay after a failed round.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest delay between rounds.
const MAX_RETRY: Duration = Duration::from_secs(60);

/// What to register.
#[derive(Clone, PartialEq, Eq)]
pub struct Registration {
    /// The webhook's name.
    pub name: String,
    /// The URL MLflow calls: this daemon's `/hooks/mlflow`, as the server reaches it.
    pub url: url::Url,
    /// The secret MLflow signs with (the one `--mlflow-webhook-secret-env` names).
    pub secret: String,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("Registration")
            .field("name", &self.name)
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

impl Registration {
    /// The registration of `url` (given [`HOOK_PATH`] when it has no path) under `name`.
    pub fn new(name: impl Into<String>, mut url: url::Url, secret: impl Into<String>) -> Self {
        if url.path().is_empty() || url.path() == "/" {
            url.set_path(HOOK_PATH);
        }
        Registration {
            name: name.into(),
            url,
            secret: secret.into(),
        }
    }

    /// The webhook this registration wants on the server.
    pub fn spec(&self) -> WebhookSpec {
        WebhookSpec {
            name: self.name.clone(),
            url: self.url.to_string(),
            description: DESCRIPTION.to_owned(),
            events: EVENTS
                .iter()
                .map(|(entity, action)| WebhookEvent::new(entity, action))
                .collect(),
            secret: self.secret.clone(),
        }
    }
}

/// The calls a registration makes: MLflow's webhook API ([`MlflowClient`]), or a fake.
pub trait WebhookApi: Send + Sync {
    /// Every webhook on the server.
    fn list(&self) -> impl Future<Output = Result<Vec<Webhook>>> + Send;
    /// Creates one.
    fn create(&self, spec: &WebhookSpec) -> impl Future<Output = Result<Webhook>> + Send;
    /// Sets webhook `id` to `spec`.
    fn update(&self, id: &str, spec: &WebhookSpec) -> impl Future<Output = Result<Webhook>> + Send;
    /// Deletes webhook `id`.
    fn delete(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
}

impl WebhookApi for MlflowClient {
    fn list(&self) -> impl Future<Output = Result<Vec<Webhook>>> + Send {
        self.list_webhooks()
    }
    fn create(&self, spec: &WebhookSpec) -> impl Future<Output = Result<Webhook>> + Send {
        self.create_webhook(spec)
    }
    fn update(&self, id: &str, spec: &WebhookSpec) -> impl Future<Output = Result<Webhook>> + Send {
        self.update_webhook(id, spec)
    }
    fn delete(&self, id: &str) -> impl Future<Output = Result<()>> + Send {
        self.delete_webhook(id)
    }
}

/// What a successful round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// There was none of that name: created.
    Created {
        /// The new webhook's id.
        id: String,
        /// Twins found by the check after the create, and deleted.
        removed: usize,
    },
    /// There was one (or several): updated.
    Updated {
        /// Its id.
        id: String,
        /// What differed besides the secret, which is always sent: `url`, `events`,
        /// `status`, `description`.
        changed: Vec<&'static str>,
        /// Other webhooks of the same name, deleted.
        removed: usize,
    },
}

/// One round: list, then create, or update the oldest of that name and delete the others.
pub async fn ensure(api: &impl WebhookApi, spec: &WebhookSpec) -> Result<Outcome> {
    let mut ours = named(api.list().await?, &spec.name);
    if ours.is_empty() {
        let created = api.create(spec).await?;
        // A create whose answer was lost in an earlier round may have landed after all.
        let twins: Vec<Webhook> = named(api.list().await?, &spec.name)
            .into_iter()
            .filter(|webhook| webhook.webhook_id != created.webhook_id)
            .collect();
        for twin in &twins {
            api.delete(&twin.webhook_id).await?;
        }
        return Ok(Outcome::Created {
            id: created.webhook_id,
            removed: twins.len(),
        });
    }
    let keep = ours.remove(0);
    for duplicate in &ours {
        api.delete(&duplicate.webhook_id).await?;
    }
    let changed = differences(&keep, spec);
    api.update(&keep.webhook_id, spec).await?;
    Ok(Outcome::Updated {
        id: keep.webhook_id,
        changed,
        removed: ours.len(),
    })
}

/// The webhooks named `name`, oldest first.
fn named(webhooks: Vec<Webhook>, name: &str) -> Vec<Webhook> {
    let mut ours: Vec<Webhook> = webhooks
        .into_iter()
        .filter(|webhook| webhook.name == name)
        .collect();
    ours.sort_by(|a, b| {
        (a.creation_timestamp, &a.webhook_id).cmp(&(b.creation_timestamp, &b.webhook_id))
    });
    ours
}

/// What differs between the webhook on the server and the one wanted (the secret cannot
/// be read back, so it is not compared).
fn differences(current: &Webhook, spec: &WebhookSpec) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if current.url != spec.url {
        changed.push("url");
    }
    let normalized = |events: &[WebhookEvent]| {
        let mut events: Vec<WebhookEvent> = events
            .iter()
            .map(|event| WebhookEvent::new(&event.entity, &event.action))
            .collect();
        events.sort();
        events.dedup();
        events
    };
    if normalized(&current.events) != normalized(&spec.events) {
        changed.push("events");
    }
    if !current.status.eq_ignore_ascii_case("ACTIVE") {
        changed.push("status");
    }
    if current.description != spec.description {
        changed.push("description");
    }
    changed
}

/// How a failed round ends the registration, or not.
enum Failure {
    /// Worth another round.
    Transient,
    /// The server has no webhook API.
    Unavailable,
    /// Retrying will not help.
    Permanent,
}

fn classify(error: &Error) -> Failure {
    if error.is_missing_endpoint() {
        return Failure::Unavailable;
    }
    match error {
        Error::Transport { .. } => Failure::Transient,
        // A webhook deleted between the list and the update: the next round creates it.
        Error::Api { status: 404, .. } => Failure::Transient,
        Error::Api { status, .. } if matches!(status, 408 | 429) || *status >= 500 => {
            Failure::Transient
        }
        _ => Failure::Permanent,
    }
}

/// Registers until a round succeeds, the server turns out to have no webhook API, a refusal
/// cannot be retried, or `stop` is cancelled. `mlreg_mlflow_webhook_registered` says 1 once
/// registered.
pub async fn run(
    api: impl WebhookApi,
    registration: Registration,
    metrics: Metrics,
    stop: CancellationToken,
) {
    run_with_backoff(api, registration, metrics, stop, FIRST_RETRY).await;
}

/// [`run`], waiting `first_retry` after the first failed round.
async fn run_with_backoff(
    api: impl WebhookApi,
    registration: Registration,
    metrics: Metrics,
    stop: CancellationToken,
    first_retry: Duration,
) {
    let spec = registration.spec();
    let url = registration.url.as_str();
    let name = registration.name.as_str();
    let mut delay = first_retry;
    loop {
        let round = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            round = ensure(&api, &spec) => round,
        };
        let error = match round {
            Ok(outcome) => {
                metrics.set_mlflow_webhook_registered(true);
                match outcome {
                    Outcome::Created { id, removed } => tracing::info!(
                        webhook = name,
                        %url,
                        id,
                        duplicates_removed = removed,
                        "created the MLflow webhook; registry events now trigger a reconcile"
                    ),
                    Outcome::Updated {
                        id,
                        changed,
                        removed,
                    } => tracing::info!(
                        webhook = name,
                        %url,
                        id,
                        changed = %if changed.is_empty() { "nothing but the secret (re-sent)".to_owned() } else { changed.join(", ") },
                        duplicates_removed = removed,
                        "updated the MLflow webhook; registry events now trigger a reconcile"
                    ),
                }
                return;
            }
            Err(error) => error,
        };
        match classify(&error) {
            Failure::Unavailable => {
                tracing::warn!(
                    webhook = name,
                    error = %error,
                    "the MLflow server has no webhook API (webhooks need MLflow 3.3 or later \
                     with a SQL backend): --register-mlflow-webhook does nothing, and changes \
                     made in the registry are picked up at each resync (--interval)"
                );
                return;
            }
            Failure::Permanent => {
                tracing::error!(
                    webhook = name,
                    %url,
                    error = %error,
                    "cannot register the MLflow webhook, and retrying will not help (check the \
                     credentials' permissions; for a plain-HTTP or private address the server \
                     needs MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https and \
                     MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true); changes made in the registry are \
                     picked up at each resync (--interval)"
                );
                return;
            }
            Failure::Transient => {
                tracing::warn!(
                    webhook = name,
                    error = %error,
                    retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "cannot register the MLflow webhook yet; retrying"
                );
            }
        }
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_RETRY);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// An in-memory webhook API; `fail_next` makes the next calls fail with an error.
    #[derive(Default)]
    struct FakeApi {
        webhooks: Mutex<Vec<Webhook>>,
        next_id: Mutex<u64>,
        fail_next: Mutex<Vec<Error>>,
        /// Failures for the next call of one kind (`update`, ...).
        fail_call: Mutex<Vec<(&'static str, Error)>>,
        /// A create that lands but answers an error (its answer was lost).
        lose_create_answer: Mutex<bool>,
        calls: Mutex<Vec<&'static str>>,
    }

    fn unavailable() -> Error {
        Error::Api {
            method: "GET",
            endpoint: "webhooks",
            status: 404,
            code: Some("ENDPOINT_NOT_FOUND".into()),
            message: "no".into(),
        }
    }

    fn unavailable_503() -> Error {
        Error::Api {
            method: "POST",
            endpoint: "webhooks",
            status: 503,
            code: None,
            message: "busy".into(),
        }
    }

    impl FakeApi {
        fn failure(&self, call: &'static str) -> Option<Error> {
            self.calls.lock().expect("lock").push(call);
            let mut targeted = self.fail_call.lock().expect("lock");
            if let Some(index) = targeted.iter().position(|(name, _)| *name == call) {
                return Some(targeted.remove(index).1);
            }
            drop(targeted);
            let mut failures = self.fail_next.lock().expect("lock");
            (!failures.is_empty()).then(|| failures.remove(0))
        }

        fn insert(&self, spec: &WebhookSpec) -> Webhook {
            let mut id = self.next_id.lock().expect("lock");
            *id += 1;
            let webhook = Webhook {
                webhook_id: format!("w{id}"),
                name: spec.name.clone(),
                url: spec.url.clone(),
                description: spec.description.clone(),
                events: spec.events.clone(),
                status: "ACTIVE".into(),
                creation_timestamp: i64::try_from(*id).unwrap_or_default(),
            };
            self.webhooks.lock().expect("lock").push(webhook.clone());
            webhook
        }

        fn named(&self, name: &str) -> Vec<Webhook> {
            named(self.webhooks.lock().expect("lock").clone(), name)
        }
    }

    impl WebhookApi for FakeApi {
        async fn list(&self) -> Result<Vec<Webhook>> {
            match self.failure("list") {
                Some(error) => Err(error),
                None => Ok(self.webhooks.lock().expect("lock").clone()),
            }
        }
        async fn create(&self, spec: &WebhookSpec) -> Result<Webhook> {
            if let Some(error) = self.failure("create") {
                return Err(error);
            }
            let webhook = self.insert(spec);
            let mut lose = self.lose_create_answer.lock().expect("lock");
            if *lose {
                *lose = false;
                return Err(unavailable_503());
            }
            Ok(webhook)
        }
        async fn update(&self, id: &str, spec: &WebhookSpec) -> Result<Webhook> {
            if let Some(error) = self.failure("update") {
                return Err(error);
            }
            let mut webhooks = self.webhooks.lock().expect("lock");
            let webhook = webhooks
                .iter_mut()
                .find(|webhook| webhook.webhook_id == id)
                .ok_or_else(|| Error::Inconsistent("no such webhook".into()))?;
            webhook.url.clone_from(&spec.url);
            webhook.events.clone_from(&spec.events);
            webhook.description.clone_from(&spec.description);
            webhook.status = "ACTIVE".into();
            Ok(webhook.clone())
        }
        async fn delete(&self, id: &str) -> Result<()> {
            if let Some(error) = self.failure("delete") {
                return Err(error);
            }
            self.webhooks
                .lock()
                .expect("lock")
                .retain(|webhook| webhook.webhook_id != id);
            Ok(())
        }
    }

    fn registration(url: &str) -> Registration {
        Registration::new(DEFAULT_NAME, url::Url::parse(url).expect("url"), "s3cret")
    }

    #[tokio::test]
    async fn restarts_keep_one_webhook_and_update_it_when_the_url_changes() {
        let api = FakeApi::default();
        let first = registration("http://daemon:9464");
        assert_eq!(first.url.as_str(), "http://daemon:9464/hooks/mlflow");
        let outcome = ensure(&api, &first.spec()).await.expect("create");
        assert!(
            matches!(outcome, Outcome::Created { removed: 0, .. }),
            "{outcome:?}"
        );
        let outcome = ensure(&api, &first.spec()).await.expect("again");
        assert_eq!(
            outcome,
            Outcome::Updated {
                id: "w1".into(),
                changed: Vec::new(),
                removed: 0
            }
        );
        let moved = registration("http://other:9464/hooks/mlflow");
        let outcome = ensure(&api, &moved.spec()).await.expect("moved");
        assert_eq!(
            outcome,
            Outcome::Updated {
                id: "w1".into(),
                changed: vec!["url"],
                removed: 0
            }
        );
        let ours = api.named(DEFAULT_NAME);
        assert_eq!(ours.len(), 1);
        assert_eq!(ours[0].url, "http://other:9464/hooks/mlflow");
        assert_eq!(ours[0].events.len(), EVENTS.len());
    }

    #[tokio::test]
    async fn a_lost_create_answer_is_found_by_the_next_round_and_twins_are_removed() {
        let api = FakeApi::default();
        let spec = registration("http://daemon:9464/hooks/mlflow").spec();
        *api.lose_create_answer.lock().expect("lock") = true;
        assert!(ensure(&api, &spec).await.is_err());
        // The create landed: the next round updates it instead of creating another.
        let outcome = ensure(&api, &spec).await.expect("second round");
        assert!(
            matches!(outcome, Outcome::Updated { ref id, .. } if id == "w1"),
            "{outcome:?}"
        );
        assert_eq!(api.named(DEFAULT_NAME).len(), 1);

        // Twins left by an older run: the oldest stays.
        api.insert(&spec);
        api.insert(&spec);
        let outcome = ensure(&api, &spec).await.expect("dedup");
        assert!(
            matches!(outcome, Outcome::Updated { ref id, removed: 2, .. } if id == "w1"),
            "{outcome:?}"
        );
        assert_eq!(api.named(DEFAULT_NAME).len(), 1);
        // Someone else's webhooks are left alone.
        let mut other = spec.clone();
        other.name = "someone-else".into();
        api.insert(&other);
        ensure(&api, &spec).await.expect("again");
        assert_eq!(api.named("someone-else").len(), 1);
    }

    #[tokio::test]
    async fn the_loop_retries_transient_failures_and_stops_on_a_server_without_webhooks() {
        let api = FakeApi::default();
        api.fail_next
            .lock()
            .expect("lock")
            .extend([unavailable_503(), unavailable_503()]);
        let metrics = Metrics::new();
        run_with_backoff(
            &api,
            registration("http://d/hooks/mlflow"),
            metrics.clone(),
            CancellationToken::new(),
            Duration::from_millis(1),
        )
        .await;
        assert_eq!(api.named(DEFAULT_NAME).len(), 1);
        assert!(
            metrics
                .encode()
                .expect("metrics")
                .contains("mlreg_mlflow_webhook_registered 1")
        );

        // A 404 on the update (the webhook deleted meanwhile): another round, not the end.
        let api = FakeApi::default();
        let spec = registration("http://d/hooks/mlflow").spec();
        api.insert(&spec);
        api.fail_call.lock().expect("lock").push((
            "update",
            Error::Api {
                method: "PATCH",
                endpoint: "webhooks",
                status: 404,
                code: Some("RESOURCE_DOES_NOT_EXIST".into()),
                message: "gone".into(),
            },
        ));
        run_with_backoff(
            &api,
            registration("http://d/hooks/mlflow"),
            Metrics::new(),
            CancellationToken::new(),
            Duration::from_millis(1),
        )
        .await;
        assert_eq!(
            *api.calls.lock().expect("lock"),
            vec!["list", "update", "list", "update"]
        );
        assert_eq!(api.named(DEFAULT_NAME).len(), 1);

        let api = FakeApi::default();
        api.fail_next.lock().expect("lock").push(unavailable());
        let metrics = Metrics::new();
        run(
            &api,
            registration("http://d/hooks/mlflow"),
            metrics.clone(),
            CancellationToken::new(),
        )
        .await;
        // One list, refused: no create, no retry.
        assert_eq!(*api.calls.lock().expect("lock"), vec!["list"]);
        assert!(
            metrics
                .encode()
                .expect("metrics")
                .contains("mlreg_mlflow_webhook_registered 0")
        );
    }

    impl<T: WebhookApi> WebhookApi for &T {
        fn list(&self) -> impl Future<Output = Result<Vec<Webhook>>> + Send {
            (**self).list()
        }
        fn create(&self, spec: &WebhookSpec) -> impl Future<Output = Result<Webhook>> + Send {
            (**self).create(spec)
        }
        fn update(
            &self,
            id: &str,
            spec: &WebhookSpec,
        ) -> impl Future<Output = Result<Webhook>> + Send {
            (**self).update(id, spec)
        }
        fn delete(&self, id: &str) -> impl Future<Output = Result<()>> + Send {
            (**self).delete(id)
        }
    }
}
