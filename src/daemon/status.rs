//! What the daemon knows about itself and the models it manages, shared between the loop
//! (which writes it) and the HTTP endpoints (which read it).
//!
//! [`Status`] is also the `/status` document: versioned JSON (`format_version`), one entry
//! per managed model with its sync state, the changes pending and the last error, plus the
//! state of the manifests and of the last reconcile.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use crate::plan::Change;
use crate::render::FORMAT_VERSION;

/// What started a reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The daemon started.
    Startup,
    /// The desired state changed on disk.
    ManifestChange,
    /// The periodic resync (or a retry after a failure).
    Resync,
    /// An MLflow webhook said a managed model changed.
    Webhook,
}

impl Trigger {
    /// The name used in logs, `/status` and span fields.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::ManifestChange => "manifest_change",
            Trigger::Resync => "resync",
            Trigger::Webhook => "webhook",
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a managed model compares with its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// The registry matches the manifest.
    InSync,
    /// The registry differs from the manifest; `pending_changes` says how.
    Drifted,
    /// The manifest moves a version into a gated target and the gate does not pass: the
    /// model is held (nothing of it applied) until the evidence holds; `gates` says why.
    Blocked,
    /// Not known: the registry has not been read yet, or the last read or plan failed.
    Unknown,
}

/// One managed model in `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelStatus {
    /// The registered model.
    pub name: String,
    /// The manifest that declares it.
    pub manifest: PathBuf,
    /// How it compares with its manifest.
    pub state: SyncState,
    /// The changes that would make it match (empty when in sync or unknown).
    pub pending_changes: Vec<Change>,
    /// Whether the daemon applies these changes on its own: the manifest changed since
    /// they were last applied, or `--self-heal` is on. `false` means drift made by hand in
    /// the registry, only reported.
    pub will_apply: bool,
    /// The last error about this model (a failed write, a missing version), if any.
    pub last_error: Option<String>,
    /// The gates of its pending changes, every check with its verdict (empty when no
    /// pending change enters a gated target).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<crate::gate::GateReport>,
}

/// The state of the manifests as last read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ManifestsStatus {
    /// Whether the last read found valid manifests. When not, the daemon keeps the last
    /// valid desired state and applies nothing.
    pub valid: bool,
    /// Every problem found by the last read (`file:line:column: message`).
    pub errors: Vec<String>,
    /// How many models the desired state in use declares.
    pub models: usize,
    /// When the manifests were last read (RFC 3339).
    pub loaded_at: Option<String>,
}

/// Whether a reconcile succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconcileResult {
    /// The registry was read, and every change the daemon decided to apply converged.
    Success,
    /// The registry could not be read, the plan was refused, or a change failed.
    Failure,
}

/// The last reconcile, in `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct ReconcileRecord {
    /// What started it.
    pub trigger: Trigger,
    /// How it ended.
    pub result: ReconcileResult,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// How long it took.
    pub duration_ms: u64,
    /// How many changes it applied.
    pub changes_applied: usize,
    /// How many models it left drifted.
    pub models_drifted: usize,
    /// Why it failed.
    pub error: Option<String>,
}

/// The `/status` document.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The version of this document's format ([`FORMAT_VERSION`]).
    pub format_version: &'static str,
    /// The desired-state directory.
    pub dir: PathBuf,
    /// Whether drift found in the registry is reverted.
    pub self_heal: bool,
    /// What `/readyz` answers.
    pub ready: bool,
    /// Why the daemon is not ready.
    pub reason: Option<String>,
    /// The manifests.
    pub manifests: ManifestsStatus,
    /// The last reconcile, once one has run.
    pub last_reconcile: Option<ReconcileRecord>,
    /// When the last successful reconcile started (RFC 3339).
    pub last_success_at: Option<String>,
    /// Every managed model, by name.
    pub models: Vec<ModelStatus>,
    /// What only the status page shows (declared next to observed, recent events).
    #[serde(skip)]
    pub page: super::page::Board,
}

impl Status {
    /// The initial state: nothing read yet.
    pub fn new(dir: PathBuf, self_heal: bool) -> Self {
        Status {
            format_version: FORMAT_VERSION,
            dir,
            self_heal,
            ready: false,
            reason: None,
            manifests: ManifestsStatus::default(),
            last_reconcile: None,
            last_success_at: None,
            models: Vec::new(),
            page: super::page::Board::default(),
        }
    }

    /// `Ok` when the manifests are valid and the last reconcile succeeded; else why not.
    pub fn readiness(&self) -> Result<(), String> {
        if !self.manifests.valid {
            return Err(match self.manifests.errors.first() {
                Some(first) => format!(
                    "the manifests are invalid ({} problem(s)); first: {first}",
                    self.manifests.errors.len()
                ),
                None => "the manifests have not been read yet".to_owned(),
            });
        }
        match &self.last_reconcile {
            None => Err("no reconcile has completed yet".to_owned()),
            Some(record) if record.result == ReconcileResult::Failure => Err(format!(
                "the last reconcile failed: {}",
                record.error.as_deref().unwrap_or("unknown error")
            )),
            Some(_) => Ok(()),
        }
    }
}

/// The state shared by the loop and the HTTP endpoints.
#[derive(Debug)]
pub struct Shared {
    status: Mutex<Status>,
    /// The metrics.
    pub metrics: Metrics,
    stopping: CancellationToken,
}

impl Shared {
    /// Shares `status` and `metrics`; readiness fails once `stopping` is cancelled.
    pub fn new(status: Status, metrics: Metrics, stopping: CancellationToken) -> Self {
        Shared {
            status: Mutex::new(status),
            metrics,
            stopping,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Status> {
        // A panic while holding the lock cannot leave the status half-written in a way that
        // matters more than losing the endpoints, so a poisoned lock is used as is.
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the status.
    pub fn update<T>(&self, change: impl FnOnce(&mut Status) -> T) -> T {
        change(&mut self.lock())
    }

    /// A copy of the status with `ready` and `reason` filled in.
    pub fn snapshot(&self) -> Status {
        let mut status = self.lock().clone();
        match self.readiness_of(&status) {
            Ok(()) => {
                status.ready = true;
                status.reason = None;
            }
            Err(reason) => {
                status.ready = false;
                status.reason = Some(reason);
            }
        }
        status
    }

    /// What `/readyz` answers.
    pub fn readiness(&self) -> Result<(), String> {
        self.readiness_of(&self.lock())
    }

    fn readiness_of(&self, status: &Status) -> Result<(), String> {
        if self.stopping.is_cancelled() {
            return Err("shutting down".to_owned());
        }
        status.readiness()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(result: ReconcileResult, error: Option<&str>) -> ReconcileRecord {
        ReconcileRecord {
            trigger: Trigger::Resync,
            result,
            started_at: "2026-11-28T00:00:00Z".into(),
            duration_ms: 5,
            changes_applied: 0,
            models_drifted: 0,
            error: error.map(str::to_owned),
        }
    }

    #[test]
    fn ready_only_with_valid_manifests_and_a_successful_last_reconcile() {
        let stopping = CancellationToken::new();
        let shared = Shared::new(
            Status::new("d".into(), false),
            Metrics::new(),
            stopping.clone(),
        );
        assert!(shared.readiness().is_err());
        shared.update(|status| status.manifests.valid = true);
        assert_eq!(
            shared.readiness(),
            Err("no reconcile has completed yet".to_owned())
        );
        shared.update(|status| {
            status.last_reconcile = Some(record(ReconcileResult::Failure, Some("unreachable")))
        });
        assert_eq!(
            shared.readiness(),
            Err("the last reconcile failed: unreachable".to_owned())
        );
        shared
            .update(|status| status.last_reconcile = Some(record(ReconcileResult::Success, None)));
        assert_eq!(shared.readiness(), Ok(()));
        let snapshot = shared.snapshot();
        assert!(snapshot.ready);
        shared.update(|status| {
            status.manifests.valid = false;
            status.manifests.errors = vec!["m.yaml:3:5: unknown field".into()];
        });
        assert!(
            shared
                .readiness()
                .is_err_and(|reason| reason.contains("m.yaml:3:5"))
        );
        shared.update(|status| status.manifests.valid = true);
        stopping.cancel();
        assert_eq!(shared.readiness(), Err("shutting down".to_owned()));
        let json = serde_json::to_value(shared.snapshot()).expect("json");
        assert_eq!(json["format_version"], "1");
        assert_eq!(json["ready"], false);
        assert_eq!(json["last_reconcile"]["trigger"], "resync");
    }
}
