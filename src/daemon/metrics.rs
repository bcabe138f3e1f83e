//! The daemon's Prometheus metrics, kept in an explicit registry (no process globals) and
//! rendered as text on `/metrics`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `mlreg_reconciles_total` | counter | `result` = `success` \| `failure` |
//! | `mlreg_changes_applied_total` | counter | `kind` = `promote` \| `archive` \| `alias_move` \| `alias_remove` \| `create` \| `update` |
//! | `mlreg_drift_detected_total` | counter | — (resyncs that found drift they did not revert) |
//! | `mlreg_models_drifted` | gauge | — |
//! | `mlreg_gate_blocked` | gauge | — (models a promotion gate holds) |
//! | `mlreg_models_managed` | gauge | — |
//! | `mlreg_manifests_valid` | gauge | — (1 or 0) |
//! | `mlreg_last_success_timestamp_seconds` | gauge | — (Unix time) |
//! | `mlreg_registry_request_duration_seconds` | histogram | `endpoint`, `status` (`2xx` \| `4xx` \| `5xx` \| `error`) |
//! | `mlreg_webhook_ignored_total` | counter | — (webhook batches naming no managed model) |
//! | `mlreg_mlflow_webhook_registered` | gauge | — (1 once `--register-mlflow-webhook` succeeded) |
//! | `mlreg_notifications_sent_total` | counter | — (delivered: a 2xx answer) |
//! | `mlreg_notifications_retried_total` | counter | — (attempts after a failed one) |
//! | `mlreg_notifications_dropped_total` | counter | `reason` = `queue_full` \| `gave_up` |
//!
//! Clones share the same series, so the registry client's request observer and the daemon
//! loop can both hold one.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::plan::Change;

/// The label of `mlreg_reconciles_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// The label of `mlreg_changes_applied_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// The label of `mlreg_webhook_refused_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The labels of `mlreg_registry_request_duration_seconds`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    status: &'static str,
}

/// Builds one latency histogram: 5 ms to about 40 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// The daemon's metrics. Cheap to clone; clones share the series.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    reconciles: Family<ResultLabels, Counter>,
    changes_applied: Family<KindLabels, Counter>,
    drift_detected: Counter,
    models_drifted: Gauge,
    gate_blocked: Gauge,
    models_managed: Gauge,
    manifests_valid: Gauge,
    last_success: Gauge<f64, AtomicU64>,
    request_duration: Family<RequestLabels, Histogram, fn() -> Histogram>,
    webhooks_received: Counter,
    webhooks_refused: Family<ReasonLabels, Counter>,
    webhooks_dropped: Counter,
    webhooks_ignored: Counter,
    mlflow_webhook_registered: Gauge,
    notifications: Arc<crate::notify::Counts>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates every series, registered under the `mlreg_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mlreg");
        let reconciles = Family::<ResultLabels, Counter>::default();
        let changes_applied = Family::<KindLabels, Counter>::default();
        let drift_detected = Counter::default();
        let models_drifted = Gauge::default();
        let gate_blocked = Gauge::default();
        let models_managed = Gauge::default();
        let manifests_valid = Gauge::default();
        let last_success = Gauge::<f64, AtomicU64>::default();
        let request_duration =
            Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        // Counters get their `_total` suffix from the encoder.
        registry.register(
            "reconciles",
            "Reconciles run, by result (success: the registry was read and every change applied; failure: anything else)",
            reconciles.clone(),
        );
        registry.register(
            "changes_applied",
            "Changes applied to the registry, by kind",
            changes_applied.clone(),
        );
        registry.register(
            "drift_detected",
            "Reconciles that found drift they did not revert (self-heal off)",
            drift_detected.clone(),
        );
        registry.register(
            "models_drifted",
            "Managed models whose registry state differs from their manifest, as of the last reconcile",
            models_drifted.clone(),
        );
        registry.register(
            "gate_blocked",
            "Managed models a promotion gate holds (a check failed or could not be verified), as of the last reconcile",
            gate_blocked.clone(),
        );
        registry.register(
            "models_managed",
            "Models the last valid desired state declares",
            models_managed.clone(),
        );
        registry.register(
            "manifests_valid",
            "1 when the manifests last read are valid, 0 when they are not",
            manifests_valid.clone(),
        );
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time of the last successful reconcile",
            last_success.clone(),
        );
        registry.register(
            "registry_request_duration_seconds",
            "Latency of the HTTP requests sent to the MLflow registry (retries included), by endpoint and status class",
            request_duration.clone(),
        );
        let webhooks_received = Counter::default();
        let webhooks_refused = Family::<ReasonLabels, Counter>::default();
        let webhooks_dropped = Counter::default();
        registry.register(
            "webhook_received",
            "MLflow webhook deliveries received and verified",
            webhooks_received.clone(),
        );
        registry.register(
            "webhook_refused",
            "MLflow webhook deliveries refused (answered 401), by reason",
            webhooks_refused.clone(),
        );
        registry.register(
            "webhook_dropped",
            "Verified webhook events not queued because the queue was full (the resync catches them)",
            webhooks_dropped.clone(),
        );
        let webhooks_ignored = Counter::default();
        registry.register(
            "webhook_ignored",
            "Batches of verified webhook events that named no managed model (nothing reconciled)",
            webhooks_ignored.clone(),
        );
        let mlflow_webhook_registered = Gauge::default();
        registry.register(
            "mlflow_webhook_registered",
            "1 once the daemon's webhook is registered on the MLflow server (--register-mlflow-webhook), else 0",
            mlflow_webhook_registered.clone(),
        );
        let notifications = Arc::new(notification_counts(&mut registry));
        // Pre-create the result series so a dashboard sees 0 rather than nothing.
        for result in ["success", "failure"] {
            drop(reconciles.get_or_create(&ResultLabels { result }));
        }
        Metrics {
            registry: Arc::new(registry),
            reconciles,
            changes_applied,
            drift_detected,
            models_drifted,
            gate_blocked,
            models_managed,
            manifests_valid,
            last_success,
            request_duration,
            webhooks_received,
            webhooks_refused,
            webhooks_dropped,
            webhooks_ignored,
            mlflow_webhook_registered,
            notifications,
        }
    }

    /// The notification counters, to hand to [`crate::notify::Notifier::start_counted`]:
    /// what it counts shows on `/metrics`.
    pub fn notification_counts(&self) -> Arc<crate::notify::Counts> {
        Arc::clone(&self.notifications)
    }

    /// Sets whether the daemon's MLflow webhook is registered.
    pub fn set_mlflow_webhook_registered(&self, registered: bool) {
        self.mlflow_webhook_registered.set(i64::from(registered));
    }

    /// Counts a verified webhook delivery.
    pub fn webhook_received(&self) {
        self.webhooks_received.inc();
    }

    /// Counts a refused webhook delivery.
    pub fn webhook_refused(&self, reason: &'static str) {
        self.webhooks_refused
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Counts a verified event that the full queue could not take.
    pub fn webhook_dropped(&self) {
        self.webhooks_dropped.inc();
    }

    /// Counts a batch of webhook events that named no managed model.
    pub fn webhook_ignored(&self) {
        self.webhooks_ignored.inc();
    }

    /// Counts one reconcile; a success also sets the last-success timestamp to now.
    pub fn reconciled(&self, success: bool) {
        let result = if success { "success" } else { "failure" };
        self.reconciles
            .get_or_create(&ResultLabels { result })
            .inc();
        if success {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|elapsed| elapsed.as_secs_f64())
                .unwrap_or_default();
            self.last_success.set(now);
        }
    }

    /// Counts one change applied.
    pub fn change_applied(&self, change: &Change) {
        let kind = change.action.kind().as_str();
        self.changes_applied
            .get_or_create(&KindLabels { kind })
            .inc();
    }

    /// Counts one reconcile that found drift and left it alone.
    pub fn drift_detected(&self) {
        self.drift_detected.inc();
    }

    /// Sets how many managed models differ from their manifest.
    pub fn set_models_drifted(&self, count: usize) {
        self.models_drifted
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Sets how many managed models a promotion gate holds.
    pub fn set_gate_blocked(&self, count: usize) {
        self.gate_blocked
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Sets how many models the desired state declares.
    pub fn set_models_managed(&self, count: usize) {
        self.models_managed
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Sets whether the manifests last read are valid.
    pub fn set_manifests_valid(&self, valid: bool) {
        self.manifests_valid.set(i64::from(valid));
    }

    /// Records one registry request: the shape of `MlflowClient::with_observer`.
    pub fn observe_request(&self, endpoint: &'static str, latency: Duration, status: Option<u16>) {
        let status = match status {
            Some(200..=299) => "2xx",
            Some(400..=499) => "4xx",
            Some(500..=599) => "5xx",
            Some(_) => "other",
            None => "error",
        };
        self.request_duration
            .get_or_create(&RequestLabels { endpoint, status })
            .observe(latency.as_secs_f64());
    }

    /// The metrics in the Prometheus/OpenMetrics text format.
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Registers the notification series and returns the counters the notifier increments.
fn notification_counts(registry: &mut Registry) -> crate::notify::Counts {
    let dropped = Family::<ReasonLabels, Counter>::default();
    let counts = crate::notify::Counts {
        delivered: Counter::default(),
        retried: Counter::default(),
        // Clones of the family's series: the notifier's increments show under the labels.
        dropped: dropped.get_or_create_owned(&ReasonLabels {
            reason: "queue_full",
        }),
        failed: dropped.get_or_create_owned(&ReasonLabels { reason: "gave_up" }),
    };
    registry.register(
        "notifications_sent",
        "Notifications delivered (a 2xx answer from the receiver)",
        counts.delivered.clone(),
    );
    registry.register(
        "notifications_retried",
        "Notification attempts repeated after a failed one (5xx, timeout, connection error)",
        counts.retried.clone(),
    );
    registry.register(
        "notifications_dropped",
        "Notifications not delivered, by reason: the queue was full, or every attempt failed",
        dropped,
    );
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, ActionKind, Reason, Summary};
    use crate::stage::Stage;

    #[test]
    fn renders_every_series_with_the_mlreg_prefix() {
        let metrics = Metrics::new();
        metrics.reconciled(true);
        metrics.reconciled(false);
        metrics.change_applied(&Change {
            action: Action::Transition {
                version: 2,
                from: Stage::Staging,
                to: Stage::Production,
            },
            reason: Reason::Declared,
        });
        metrics.set_models_drifted(3);
        metrics.set_manifests_valid(true);
        metrics.observe_request(
            "registered-models/search",
            Duration::from_millis(12),
            Some(200),
        );
        let text = metrics.encode().expect("encode");
        for expected in [
            "mlreg_reconciles_total{result=\"success\"} 1",
            "mlreg_reconciles_total{result=\"failure\"} 1",
            "mlreg_changes_applied_total{kind=\"promote\"} 1",
            "mlreg_models_drifted 3",
            "mlreg_manifests_valid 1",
            "mlreg_last_success_timestamp_seconds ",
            "mlreg_registry_request_duration_seconds_count{endpoint=\"registered-models/search\",status=\"2xx\"} 1",
            "# EOF",
        ] {
            assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
        }
    }

    #[test]
    fn kind_labels_are_the_plan_summary_field_names() {
        // Dashboards join the metric with the plan JSON's summary, so the label values and
        // the field names must stay the same words.
        let summary = serde_json::to_value(Summary::default()).expect("summary as JSON");
        let fields: Vec<&str> = summary
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut labels: Vec<&str> = [
            ActionKind::Promote,
            ActionKind::Archive,
            ActionKind::AliasMove,
            ActionKind::AliasRemove,
            ActionKind::Create,
            ActionKind::Update,
            ActionKind::Register,
        ]
        .into_iter()
        .map(ActionKind::as_str)
        .collect();
        labels.sort_unstable();
        let mut fields = fields;
        fields.sort_unstable();
        assert_eq!(labels, fields);
    }
}
