//! One reconcile of the daemon: read the registry, plan, decide model by model whether to
//! apply or only report, apply through [`crate::apply::apply`], and record the outcome in
//! the shared status and the metrics.
//!
//! **Manifest change or drift?** Both show up the same way, as a non-empty plan. They are
//! told apart by remembering, per model, the declaration that was last applied successfully
//! (or found already in sync). A model whose declaration differs from that record — or that
//! has none yet, as at startup — changed in the manifests: its plan is applied. A model
//! whose declaration is the one last applied, and which nevertheless has changes pending,
//! was changed by hand in the registry: that is drift, reported (log, `/status`,
//! `mlreg_models_drifted`) and reverted only with `--self-heal`. Declarations are compared
//! as [`ModelSpec`]s, which hold no file positions, so a comment, a reordering or a move to
//! another file is not a change; any change of what the manifest means is (including
//! `serving`, which only `mlreg resolve` reads: a new revision of a manifest is applied as
//! a whole, as Argo CD syncs a new revision of an application).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::notifications::{Found, Notifications};
use super::status::{ModelStatus, ReconcileRecord, ReconcileResult, Shared, SyncState, Trigger};
use crate::apply::{self, Annotation, ApplyOptions, ApplyReport, Convergence, Outcome};
use crate::diagnostic::Diagnostic;
use crate::manifest::{DesiredModel, DesiredState, ModelSpec};
use crate::plan::{self, ModelPlan, Plan, Selection};
use crate::registry::{Registry, Scope};

/// How the daemon applies.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The desired-state directory (for the git commit of the audit tag).
    pub dir: PathBuf,
    /// Revert drift made by hand in the registry.
    pub self_heal: bool,
    /// Refuse to apply more changes than this at once.
    pub max_changes: Option<usize>,
    /// Write the audit tags: `mlreg.transition` on transitioned versions,
    /// `mlreg.alias.<alias>` on the version an alias was pointed at.
    pub annotate: bool,
    /// How many models to apply at once.
    pub concurrency: usize,
}

/// How a reconcile ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The registry was read and everything the daemon decided to apply converged.
    Success,
    /// Something failed; retried with backoff.
    Failure(String),
    /// Stopped by a signal before anything was applied, or while applying.
    Cancelled,
}

/// Whether the daemon applies a model's pending changes on its own: with `--self-heal`
/// always, otherwise only when its declaration is not the one last applied.
pub fn applies(declared: &ModelSpec, last_applied: Option<&ModelSpec>, self_heal: bool) -> bool {
    self_heal || last_applied != Some(declared)
}

/// Runs reconciles, remembering what it applied.
pub struct Reconciler<'r, R> {
    registry: &'r R,
    settings: Settings,
    shared: Arc<Shared>,
    /// Per model, the declaration last applied successfully (or found in sync).
    applied: BTreeMap<String, ModelSpec>,
    /// Where `--notify` events go.
    notifications: Notifications,
}

impl<R> std::fmt::Debug for Reconciler<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("settings", &self.settings)
            .field("applied", &self.applied.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<'r, R: Registry> Reconciler<'r, R> {
    /// A reconciler that has applied nothing yet.
    pub fn new(registry: &'r R, settings: Settings, shared: Arc<Shared>) -> Self {
        Reconciler {
            registry,
            settings,
            shared,
            applied: BTreeMap::new(),
            notifications: Notifications::disabled(),
        }
    }

    /// Tells `notifications` what each reconcile found and did.
    pub fn with_notifications(mut self, notifications: Notifications) -> Self {
        self.notifications = notifications;
        self
    }

    /// Forgets the models no manifest declares any more (they are no longer managed).
    pub fn retain_managed(&mut self, desired: &DesiredState) {
        self.applied
            .retain(|name, _| desired.models.contains_key(name));
    }

    /// One reconcile of `desired`. When `writable` is false (the manifests on disk are
    /// invalid) nothing is applied, only reported. `stop` abandons the registry read; `abort`
    /// cancels an apply in flight after its current write.
    pub async fn reconcile(
        &mut self,
        desired: &DesiredState,
        writable: bool,
        trigger: Trigger,
        stop: &CancellationToken,
        abort: &CancellationToken,
    ) -> Verdict {
        let started = Instant::now();
        let started_at = apply::now_rfc3339();
        let mut run = Run {
            trigger,
            started,
            started_at,
            changes_applied: 0,
            seen: super::page::Seen {
                desired,
                observed: None,
                report: None,
                commit: git_commit(&self.settings.dir).await,
            },
            found: Found::default(),
        };

        // 1. Read the managed models (a scoped read: what they cost, not what the registry
        // holds). A read is safe to abandon on the first signal.
        let scope = Scope::only(desired.models.keys().cloned());
        let snapshot = tokio::select! {
            biased;
            () = stop.cancelled() => return Verdict::Cancelled,
            snapshot = self.registry.scoped_snapshot(&scope) => snapshot,
        };
        let snapshot = match snapshot {
            Ok(scoped) => scoped.snapshot,
            Err(error) => {
                let message = format!("cannot read the registry: {error}");
                self.set_models(desired, |model| unknown(model, None));
                return self.finish(&run, Verdict::Failure(message));
            }
        };
        run.seen.observed = Some(&snapshot);

        // 2. Plan every managed model.
        // Evidence is read only for versions entering gated targets (often nothing).
        let now = time::OffsetDateTime::now_utc();
        let everything = Selection::default();
        let planned_with_gates = tokio::select! {
            biased;
            () = stop.cancelled() => return Verdict::Cancelled,
            plan = crate::evidence::plan_with_gates(
                self.registry, desired, &snapshot, &everything, now,
            ) => plan,
        };
        let plan = match planned_with_gates {
            Ok(plan) => plan,
            Err(diagnostics) => {
                for diagnostic in &diagnostics {
                    log_diagnostic(diagnostic);
                }
                // Attribute the problems to their models for /status.
                let per_model: BTreeMap<&str, Result<ModelPlan, Vec<Diagnostic>>> = desired
                    .models
                    .iter()
                    .map(|(name, model)| {
                        (
                            name.as_str(),
                            plan::plan_model(model, snapshot.models.get(name)),
                        )
                    })
                    .collect();
                let applied = &self.applied;
                let self_heal = self.settings.self_heal;
                self.set_models(desired, |model| match per_model.get(model.name.as_str()) {
                    Some(Ok(model_plan)) => planned(model, model_plan, applied, self_heal),
                    Some(Err(problems)) => unknown(model, Some(join(problems))),
                    None => unknown(model, None),
                });
                let first = diagnostics
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let message = format!(
                    "the manifests do not match the registry ({} problem(s)), nothing was applied; first: {first}",
                    diagnostics.len()
                );
                return self.finish(&run, Verdict::Failure(message));
            }
        };

        // 3. Decide, model by model: apply, or only report.
        let mut to_apply = Plan::default();
        let mut drifted = Vec::new();
        let mut blocked = Vec::new();
        for model_plan in &plan.models {
            let Some(declared) = desired
                .models
                .get(&model_plan.model)
                .map(|m| m.spec.clone())
            else {
                continue;
            };
            if model_plan.is_in_sync() {
                self.applied.insert(model_plan.model.clone(), declared);
            } else if model_plan.is_blocked() {
                // Held whole, as `reconcile` holds the whole plan: part of a model's
                // changes without its promotion could archive the version it replaces.
                blocked.push(model_plan);
            } else if writable
                && applies(
                    &declared,
                    self.applied.get(&model_plan.model),
                    self.settings.self_heal,
                )
            {
                to_apply.models.push(model_plan.clone());
            } else {
                drifted.push(model_plan);
            }
        }
        {
            let applied = &self.applied;
            let self_heal = self.settings.self_heal;
            let by_name: BTreeMap<&str, &ModelPlan> =
                plan.models.iter().map(|m| (m.model.as_str(), m)).collect();
            self.set_models(desired, |model| match by_name.get(model.name.as_str()) {
                Some(model_plan) => planned(model, model_plan, applied, self_heal),
                None => unknown(model, None),
            });
        }
        for model_plan in &blocked {
            let failing =
                crate::gate::failing_checks(&model_plan.gates, crate::gate::CheckLine::Observed);
            tracing::warn!(
                model = %model_plan.model,
                checks = %failing.join("; "),
                "held by a promotion gate; the model's changes are not applied until the gate passes"
            );
        }
        run.found
            .decided(&plan, &to_apply, &drifted, &blocked, writable);
        if !drifted.is_empty() {
            self.shared.metrics.drift_detected();
            for model_plan in &drifted {
                if writable {
                    tracing::warn!(
                        model = %model_plan.model,
                        changes = %compact(&model_plan.changes),
                        "drift: the registry was changed outside the manifests; not reverting it \
                         (run with --self-heal to revert drift, or update the manifest)"
                    );
                } else {
                    tracing::warn!(
                        model = %model_plan.model,
                        changes = %compact(&model_plan.changes),
                        "the registry differs from the last valid manifests; not applying while the manifests are invalid"
                    );
                }
            }
        }
        if to_apply.is_empty() {
            return self.finish(&run, Verdict::Success);
        }

        // 4. The blast-radius budget.
        if let Some(max) = self.settings.max_changes
            && to_apply.len() > max
        {
            let message = format!(
                "the plan has {} changes, more than --max-changes {max} allows; nothing was applied \
                 (review it with `mlreg plan`, then apply it with `mlreg reconcile` or raise --max-changes)",
                to_apply.len()
            );
            return self.finish(&run, Verdict::Failure(message));
        }

        // 5. Apply.
        tracing::info!(
            changes = to_apply.len(),
            models = to_apply.models.len(),
            "applying"
        );
        let annotate = if self.settings.annotate {
            Some(Annotation {
                commit: git_commit(&self.settings.dir).await,
            })
        } else {
            None
        };
        let options = ApplyOptions {
            concurrency: self.settings.concurrency.max(1),
            annotate,
            cancel: abort.clone(),
            clock: Arc::new(apply::now_rfc3339),
        };
        let metrics = self.shared.metrics.clone();
        let progress = move |model: &str, outcome: &Outcome| match &outcome.result {
            apply::OutcomeStatus::Applied => {
                metrics.change_applied(&outcome.change);
                tracing::info!(model, change = %compact(&outcome.change), "applied");
            }
            apply::OutcomeStatus::Failed { error } => {
                tracing::warn!(model, change = %compact(&outcome.change), %error, "change failed");
            }
            apply::OutcomeStatus::Skipped => {}
        };
        let report = apply::apply(self.registry, desired, &to_apply, &options, &progress).await;
        run.changes_applied = report.counts().0;
        run.seen.report = Some(&report);
        run.found.applied(&report);
        self.record_report(desired, &report);
        if report.interrupted {
            tracing::warn!(
                "the apply was aborted by a second signal; the rest of the plan was skipped"
            );
            return self.finish(&run, Verdict::Cancelled);
        }
        if report.is_success() {
            self.finish(&run, Verdict::Success)
        } else {
            let failed: Vec<String> = report
                .models
                .iter()
                .filter(|m| !matches!(m.status, Convergence::InSync | Convergence::Converged))
                .map(|m| match &m.error {
                    Some(error) => format!("{}: {error}", m.model),
                    None => m.model.clone(),
                })
                .collect();
            self.finish(
                &run,
                Verdict::Failure(format!(
                    "{} model(s) did not converge: {}",
                    failed.len(),
                    failed.join("; ")
                )),
            )
        }
    }

    /// Remembers the models that converged and updates their status.
    fn record_report(&mut self, desired: &DesiredState, report: &ApplyReport) {
        for model_report in &report.models {
            let converged = matches!(
                model_report.status,
                Convergence::InSync | Convergence::Converged
            );
            if converged && let Some(model) = desired.models.get(&model_report.model) {
                self.applied
                    .insert(model_report.model.clone(), model.spec.clone());
            }
            self.shared.update(|status| {
                let Some(entry) = status
                    .models
                    .iter_mut()
                    .find(|entry| entry.name == model_report.model)
                else {
                    return;
                };
                match model_report.status {
                    Convergence::InSync | Convergence::Converged => {
                        entry.state = SyncState::InSync;
                        entry.pending_changes.clear();
                        entry.will_apply = false;
                        entry.last_error = None;
                    }
                    Convergence::Failed => {
                        if !model_report.remaining.is_empty() {
                            entry.pending_changes = model_report.remaining.clone();
                        }
                        let mut error = model_report.error.clone().unwrap_or_default();
                        for outcome in &model_report.outcomes {
                            if let apply::OutcomeStatus::Failed { error: cause } = &outcome.result {
                                error = format!("{error} ({cause})");
                            }
                        }
                        if !model_report.diagnostics.is_empty() {
                            error = format!("{error}: {}", join(&model_report.diagnostics));
                        }
                        entry.last_error = Some(error);
                    }
                    Convergence::Interrupted => {
                        entry.state = SyncState::Unknown;
                        entry.last_error = Some("interrupted by a signal".to_owned());
                    }
                }
            });
        }
    }

    /// Replaces the per-model status with one entry per model of `desired`.
    fn set_models(&self, desired: &DesiredState, entry: impl Fn(&DesiredModel) -> ModelStatus) {
        let models: Vec<ModelStatus> = desired.models.values().map(entry).collect();
        self.shared.update(|status| status.models = models);
    }

    /// Records the verdict in the status and the metrics, logs it, and returns it.
    fn finish(&self, run: &Run, verdict: Verdict) -> Verdict {
        let duration_ms = u64::try_from(run.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (result, error) = match &verdict {
            Verdict::Success => (ReconcileResult::Success, None),
            Verdict::Failure(error) => (ReconcileResult::Failure, Some(error.clone())),
            Verdict::Cancelled => (
                ReconcileResult::Failure,
                Some("interrupted by a signal".to_owned()),
            ),
        };
        let (models_drifted, gate_blocked) = self.shared.update(|status| {
            let count = |state: SyncState| {
                status
                    .models
                    .iter()
                    .filter(|model| model.state == state)
                    .count()
            };
            let (drifted, blocked) = (count(SyncState::Drifted), count(SyncState::Blocked));
            status.last_reconcile = Some(ReconcileRecord {
                trigger: run.trigger,
                result,
                started_at: run.started_at.clone(),
                duration_ms,
                changes_applied: run.changes_applied,
                models_drifted: drifted,
                error: error.clone(),
            });
            if result == ReconcileResult::Success {
                status.last_success_at = Some(run.started_at.clone());
            }
            (drifted, blocked)
        });
        super::page::record(&self.shared, &run.seen);
        let metrics = &self.shared.metrics;
        metrics.set_models_drifted(models_drifted);
        metrics.set_gate_blocked(gate_blocked);
        metrics.reconciled(result == ReconcileResult::Success);
        match &verdict {
            Verdict::Success => tracing::info!(
                duration_ms,
                changes_applied = run.changes_applied,
                models_drifted,
                "reconcile succeeded"
            ),
            Verdict::Failure(error) => tracing::warn!(
                duration_ms,
                changes_applied = run.changes_applied,
                %error,
                "reconcile failed"
            ),
            Verdict::Cancelled => tracing::info!(duration_ms, "reconcile interrupted"),
        }
        self.notifications.reconciled(&run.found, &verdict);
        verdict
    }
}

/// The bookkeeping of one reconcile.
struct Run<'a> {
    trigger: Trigger,
    started: Instant,
    started_at: String,
    changes_applied: usize,
    /// What the status page records of it.
    seen: super::page::Seen<'a>,
    /// What it found and did, for notifications.
    found: Found,
}

/// A model whose state is not known.
fn unknown(model: &DesiredModel, error: Option<String>) -> ModelStatus {
    ModelStatus {
        name: model.name.clone(),
        manifest: model.file().to_path_buf(),
        state: SyncState::Unknown,
        pending_changes: Vec::new(),
        will_apply: false,
        last_error: error,
        gates: Vec::new(),
    }
}

/// A model as its plan shows it.
fn planned(
    model: &DesiredModel,
    model_plan: &ModelPlan,
    applied: &BTreeMap<String, ModelSpec>,
    self_heal: bool,
) -> ModelStatus {
    let in_sync = model_plan.is_in_sync();
    ModelStatus {
        name: model.name.clone(),
        manifest: model.file().to_path_buf(),
        state: if in_sync {
            SyncState::InSync
        } else if model_plan.is_blocked() {
            SyncState::Blocked
        } else {
            SyncState::Drifted
        },
        pending_changes: model_plan.changes.clone(),
        will_apply: !in_sync
            && !model_plan.is_blocked()
            && applies(&model.spec, applied.get(&model.name), self_heal),
        last_error: None,
        gates: model_plan.gates.clone(),
    }
}

/// A change (or a list of them) as one line of JSON, for logs.
fn compact(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn join(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Logs one manifest problem with its position (`file:line:column`) and advice.
pub fn log_diagnostic(diagnostic: &Diagnostic) {
    let location = diagnostic.origin.as_ref().map(ToString::to_string);
    tracing::error!(
        location = location.as_deref(),
        help = diagnostic.help.as_deref(),
        "{diagnostic}"
    );
}

/// The commit of the manifests' git checkout, when there is one (for the audit tag). Read
/// at every apply, since a git-sync sidecar moves it.
async fn git_commit(dir: &std::path::Path) -> Option<String> {
    crate::git::head_commit(dir).await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::daemon::metrics::Metrics;
    use crate::daemon::status::Status;
    use crate::diagnostic::Origin;
    use crate::manifest::fixture;
    use crate::registry::fake::FakeRegistry;
    use crate::stage::Stage::{self, Archived, None as NoStage, Production, Staging};

    fn model(name: &str, line: u32, production: &[u64]) -> DesiredModel {
        let mut model = fixture::model(name)
            .at(Origin::new(format!("{name}.yaml"), line, 9))
            .stage(Production, production)
            .build();
        for version in production {
            model.origins.stages.insert(
                (Production, *version),
                Origin::new(format!("{name}.yaml"), line + 5, 17),
            );
        }
        model
    }

    fn desired(models: Vec<DesiredModel>) -> DesiredState {
        fixture::desired(models)
    }

    fn settings(self_heal: bool) -> Settings {
        Settings {
            dir: PathBuf::from("/nonexistent"),
            self_heal,
            max_changes: None,
            annotate: false,
            concurrency: 4,
        }
    }

    fn shared() -> Arc<Shared> {
        Arc::new(Shared::new(
            Status::new("d".into(), false),
            Metrics::new(),
            CancellationToken::new(),
        ))
    }

    fn stage_of(registry: &FakeRegistry, name: &str, version: u64) -> Stage {
        registry.state().models[name].versions[&version].stage
    }

    async fn reconcile(
        reconciler: &mut Reconciler<'_, FakeRegistry>,
        desired: &DesiredState,
        writable: bool,
    ) -> Verdict {
        let token = CancellationToken::new();
        reconciler
            .reconcile(desired, writable, Trigger::Resync, &token, &token)
            .await
    }

    #[test]
    fn positions_do_not_make_a_change() {
        assert_eq!(model("m", 1, &[2]).spec, model("m", 40, &[2]).spec);
        assert_ne!(model("m", 1, &[2]).spec, model("m", 1, &[3]).spec);
        let declared = model("m", 1, &[2]).spec;
        assert!(applies(&declared, None, false));
        assert!(!applies(&declared, Some(&declared), false));
        assert!(applies(&declared, Some(&declared), true));
    }

    #[tokio::test]
    async fn manifest_changes_are_applied_and_hand_made_drift_is_only_reported() {
        let registry = FakeRegistry::default();
        registry.add_model("m", &[(1, Production), (2, NoStage)]);
        let shared = shared();
        let mut reconciler = Reconciler::new(&registry, settings(false), Arc::clone(&shared));

        // Startup: nothing applied yet, so the manifests win.
        let v2 = desired(vec![model("m", 1, &[2])]);
        assert_eq!(
            reconcile(&mut reconciler, &v2, true).await,
            Verdict::Success
        );
        assert_eq!(stage_of(&registry, "m", 2), Production);
        assert_eq!(stage_of(&registry, "m", 1), Archived);

        // Someone moves version 2 to Staging by hand: reported, not reverted.
        registry.edit_version("m", 2, |v| v.stage = Staging);
        let writes = registry.writes().len();
        assert_eq!(
            reconcile(&mut reconciler, &v2, true).await,
            Verdict::Success
        );
        assert_eq!(registry.writes().len(), writes);
        let status = shared.snapshot();
        assert_eq!(status.models[0].state, SyncState::Drifted);
        assert!(!status.models[0].will_apply);
        assert_eq!(status.models[0].pending_changes.len(), 1);
        assert!(
            shared
                .metrics
                .encode()
                .expect("metrics")
                .contains("mlreg_models_drifted 1")
        );

        // A cosmetic edit (positions only) is still not a change.
        let moved = desired(vec![model("m", 30, &[2])]);
        assert_eq!(
            reconcile(&mut reconciler, &moved, true).await,
            Verdict::Success
        );
        assert_eq!(stage_of(&registry, "m", 2), Staging);

        // A real manifest change is applied (and takes the drifted version with it).
        registry.mutate(|snapshot| {
            if let Some(m) = snapshot.models.get_mut("m") {
                m.versions.insert(
                    3,
                    crate::registry::ObservedVersion {
                        version: 3,
                        stage: NoStage,
                        status: "READY".into(),
                        run_id: String::new(),
                        source: "s3://b/3".into(),
                        description: String::new(),
                        tags: BTreeMap::new(),
                        creation_timestamp: 0,
                        last_updated_timestamp: 0,
                    },
                );
            }
        });
        let v3 = desired(vec![model("m", 1, &[3])]);
        assert_eq!(
            reconcile(&mut reconciler, &v3, true).await,
            Verdict::Success
        );
        assert_eq!(stage_of(&registry, "m", 3), Production);
        assert_eq!(stage_of(&registry, "m", 2), Archived);
        let status = shared.snapshot();
        assert_eq!(status.models[0].state, SyncState::InSync);
    }

    #[tokio::test]
    async fn a_resync_reads_only_the_managed_models() {
        let registry = FakeRegistry::default();
        registry.add_model("m", &[(1, Production)]);
        registry.add_model("someone-else", &[(1, NoStage)]);
        let mut reconciler = Reconciler::new(&registry, settings(false), shared());
        let v1 = desired(vec![model("m", 1, &[1])]);
        assert_eq!(
            reconcile(&mut reconciler, &v1, true).await,
            Verdict::Success
        );
        assert_eq!(
            registry.scoped_reads(),
            vec![crate::registry::Scope::only(["m".to_owned()])]
        );
        assert_eq!(registry.reads(), 1, "in sync: no other read");
    }

    #[tokio::test]
    async fn self_heal_reverts_drift() {
        let registry = FakeRegistry::default();
        registry.add_model("m", &[(1, Production)]);
        let mut reconciler = Reconciler::new(&registry, settings(true), shared());
        let v1 = desired(vec![model("m", 1, &[1])]);
        assert_eq!(
            reconcile(&mut reconciler, &v1, true).await,
            Verdict::Success
        );
        registry.edit_version("m", 1, |v| v.stage = Archived);
        assert_eq!(
            reconcile(&mut reconciler, &v1, true).await,
            Verdict::Success
        );
        assert_eq!(stage_of(&registry, "m", 1), Production);
    }

    #[tokio::test]
    async fn nothing_is_applied_while_the_manifests_are_invalid() {
        let registry = FakeRegistry::default();
        registry.add_model("m", &[(1, NoStage)]);
        let shared = shared();
        let mut reconciler = Reconciler::new(&registry, settings(true), Arc::clone(&shared));
        let v1 = desired(vec![model("m", 1, &[1])]);
        assert_eq!(
            reconcile(&mut reconciler, &v1, false).await,
            Verdict::Success
        );
        assert!(registry.writes().is_empty());
        assert_eq!(shared.snapshot().models[0].state, SyncState::Drifted);
    }

    #[tokio::test]
    async fn max_changes_refuses_and_a_missing_version_fails_without_writing() {
        let registry = FakeRegistry::default();
        registry.add_model("m", &[(1, NoStage), (2, NoStage)]);
        let mut limited = settings(false);
        limited.max_changes = Some(0);
        let shared = shared();
        let mut reconciler = Reconciler::new(&registry, limited, Arc::clone(&shared));
        let v1 = desired(vec![model("m", 1, &[1])]);
        let verdict = reconcile(&mut reconciler, &v1, true).await;
        assert!(
            matches!(verdict, Verdict::Failure(ref e) if e.contains("--max-changes 0")),
            "{verdict:?}"
        );
        let missing = desired(vec![model("m", 1, &[9])]);
        let verdict = reconcile(&mut reconciler, &missing, true).await;
        assert!(
            matches!(verdict, Verdict::Failure(ref e) if e.contains("version 9")),
            "{verdict:?}"
        );
        assert!(registry.writes().is_empty());
        let status = shared.snapshot();
        assert_eq!(status.models[0].state, SyncState::Unknown);
        assert!(
            status.models[0]
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("version 9"))
        );
        assert!(status.reason.is_some());
    }
}
