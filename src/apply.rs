//! Executing a plan through a registry; returns a report and never prints.
//!
//! Models are independent and applied concurrently (bounded by
//! [`ApplyOptions::concurrency`]); within one model the changes run one at a time, in plan
//! order, because MLflow's stage transitions are unsafe when concurrent on one model.
//!
//! For each model with changes:
//! 1. re-read the model; if it no longer matches what the plan was computed from, re-plan it
//!    (stale-plan protection);
//! 2. apply its changes in order, tagging each transitioned version with `mlreg.transition`
//!    and each version an alias was pointed at with `mlreg.alias.<alias>` (unless
//!    annotations are off). The first failed change stops that model — the rest are
//!    reported as skipped, so a failed promotion never leads to archiving the version it was
//!    meant to replace — while the other models go on;
//! 3. once every model is done, re-read the models that were changed, all in one scoped
//!    read ([`Registry::scoped_snapshot`]), and plan each again: anything left is reported
//!    as "did not converge".
//!
//! Cancellation (first SIGINT/SIGTERM) lets the change in flight finish and skips the rest.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::diagnostic::Diagnostic;
use crate::manifest::{DesiredModel, DesiredState};
use crate::plan::{Action, Change, ModelPlan, Plan, plan_model};
use crate::registry::{ObservedModel, Registry, Scope};
use crate::stage::Stage;

/// The version tag that records each transition mlreg makes.
pub const AUDIT_TAG: &str = crate::mlreg_tag!("transition");

/// The prefix of the version tags that record where mlreg pointed each alias: the version
/// alias `champion` was pointed at carries `mlreg.alias.champion` ([`alias_audit_tag`]).
pub const ALIAS_AUDIT_TAG_PREFIX: &str = crate::mlreg_tag!("alias.");

/// The version tag that records mlreg pointing `alias` at that version.
///
/// MLflow limits tag keys to 250 characters and aliases to 255, so an alias longer than
/// 238 characters gets no audit tag: its write fails and is reported as a warning.
pub fn alias_audit_tag(alias: &str) -> String {
    format!("{ALIAS_AUDIT_TAG_PREFIX}{alias}")
}

/// How to apply.
#[derive(Clone)]
pub struct ApplyOptions {
    /// How many models to apply at once.
    pub concurrency: usize,
    /// The audit annotation, or `None` for `--no-annotate`.
    pub annotate: Option<Annotation>,
    /// Cancelled on the first interrupt: finish the change in flight, skip the rest.
    pub cancel: CancellationToken,
    /// The current time as RFC 3339 (injected so apply stays testable).
    pub clock: Arc<dyn Fn() -> String + Send + Sync>,
}

impl std::fmt::Debug for ApplyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplyOptions")
            .field("concurrency", &self.concurrency)
            .field("annotate", &self.annotate)
            .finish_non_exhaustive()
    }
}

impl ApplyOptions {
    /// Defaults: 8 models at once, annotations with no commit, the system clock.
    pub fn new() -> Self {
        ApplyOptions {
            concurrency: 8,
            annotate: Some(Annotation::default()),
            cancel: CancellationToken::new(),
            clock: Arc::new(now_rfc3339),
        }
    }
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// The current UTC time in RFC 3339.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// What the audit tag records besides from, to and when.
#[derive(Debug, Clone, Default)]
pub struct Annotation {
    /// The git commit of the manifests, when they live in a git checkout.
    pub commit: Option<String>,
}

/// Whether `changes` make a version enter a gated target without a passing verdict in the
/// plan that was reviewed (`planned.gates`).
fn enters_unjudged_gate(desired: &DesiredModel, planned: &ModelPlan, changes: &[Change]) -> bool {
    changes.iter().enumerate().any(|(index, change)| {
        crate::plan::gated_entries(index, &change.action)
            .into_iter()
            .any(|(target, version)| {
                desired.spec.gates.contains_key(&target)
                    && !planned.gates.iter().any(|gate| {
                        gate.target == target && gate.version == version && gate.passed()
                    })
            })
    })
}

/// The value of the `mlreg.transition` tag.
#[derive(Debug, Clone, Serialize)]
struct AuditRecord<'a> {
    from: Stage,
    to: Stage,
    when: &'a str,
    manifest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    commit: Option<&'a str>,
}

/// The value of an `mlreg.alias.<alias>` tag: which version the alias pointed at before
/// mlreg moved it, when, from which manifest and git commit.
///
/// Written as JSON with every field present (`previous` and `commit` may be `null`), so a
/// tool reading the tag never has to guess whether a field was left out or is unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasAuditRecord {
    /// The version the alias pointed at before, or `None` when mlreg created it.
    pub previous: Option<u64>,
    /// When mlreg pointed the alias here, RFC 3339.
    pub when: String,
    /// The manifest that declared it.
    pub manifest: String,
    /// The git commit of the manifests, when they live in a git checkout.
    pub commit: Option<String>,
}

impl AliasAuditRecord {
    /// Parses a tag value; `None` when it is not a record mlreg wrote (hand-edited, or
    /// from another tool), so callers show "not set by mlreg" rather than an error.
    pub fn parse(value: &str) -> Option<Self> {
        serde_json::from_str(value).ok()
    }

    /// The record of where `alias` points in `model`: read from the tag on the version it
    /// points at now, so a record left on a version the alias has since moved away from is
    /// never shown. `None` when the alias is unset, or was not set by mlreg.
    pub fn of(model: &ObservedModel, alias: &str) -> Option<Self> {
        let version = model.aliases.get(alias)?;
        let value = model
            .versions
            .get(version)?
            .tags
            .get(&alias_audit_tag(alias))?;
        Self::parse(value)
    }
}

/// What happened to one change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum OutcomeStatus {
    /// The write succeeded.
    Applied,
    /// The write failed.
    Failed {
        /// Why.
        error: String,
    },
    /// Not attempted: an earlier change of the model failed, or the run was interrupted.
    Skipped,
}

/// One change and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The change.
    #[serde(flatten)]
    pub change: Change,
    /// What happened.
    pub result: OutcomeStatus,
    /// Set when the transition or alias move succeeded but its audit tag could not be
    /// written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotation_error: Option<String>,
    /// The version a registration created (or found created by an interrupted attempt).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered: Option<u64>,
}

/// How one model ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Convergence {
    /// Nothing to do.
    InSync,
    /// Every change applied and the re-read matches the manifest.
    Converged,
    /// A read or write failed, or the model did not converge.
    Failed,
    /// The run was interrupted before the model finished.
    Interrupted,
}

/// The result of applying one model's plan.
#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    /// The registered model.
    pub model: String,
    /// Its manifest.
    pub manifest: PathBuf,
    /// How it ended.
    pub status: Convergence,
    /// Whether the registry had changed since planning, so the model was re-planned.
    pub replanned: bool,
    /// Every change attempted or skipped, in order.
    pub outcomes: Vec<Outcome>,
    /// A failed read, or why the model did not converge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Changes still needed after applying (verification); empty when converged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remaining: Vec<Change>,
    /// Problems found when re-planning (a version deleted meanwhile, say).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<Diagnostic>,
}

/// The result of a whole apply.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    /// One report per model with changes, in name order.
    pub models: Vec<ModelReport>,
    /// Whether the run was interrupted.
    pub interrupted: bool,
}

impl ApplyReport {
    /// Whether every model converged (or was in sync) and nothing was interrupted.
    pub fn is_success(&self) -> bool {
        !self.interrupted
            && self
                .models
                .iter()
                .all(|m| matches!(m.status, Convergence::InSync | Convergence::Converged))
    }

    /// Every outcome.
    pub fn outcomes(&self) -> impl Iterator<Item = (&ModelReport, &Outcome)> {
        self.models
            .iter()
            .flat_map(|m| m.outcomes.iter().map(move |o| (m, o)))
    }

    /// How many changes were applied, failed and skipped.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for (_, outcome) in self.outcomes() {
            match outcome.result {
                OutcomeStatus::Applied => counts.0 += 1,
                OutcomeStatus::Failed { .. } => counts.1 += 1,
                OutcomeStatus::Skipped => counts.2 += 1,
            }
        }
        counts
    }
}

/// Called after every change attempted: for progress bars and logs.
pub type Progress<'a> = &'a (dyn Fn(&str, &Outcome) + Send + Sync);

/// Applies `plan` (computed from `desired`) through `registry`.
pub async fn apply<R: Registry>(
    registry: &R,
    desired: &DesiredState,
    plan: &Plan,
    options: &ApplyOptions,
    progress: Progress<'_>,
) -> ApplyReport {
    let concurrency = options.concurrency.max(1);
    let applied: Vec<(ModelReport, bool)> = stream::iter(
        plan.models
            .iter()
            .filter(|model| !model.is_in_sync())
            .map(|model| {
                let span = tracing::info_span!("apply", model = %model.model);
                apply_model(registry, desired, model, options, progress).instrument(span)
            }),
    )
    .buffer_unordered(concurrency)
    .collect()
    .await;

    // 3. Verify every model whose changes all applied, with one read of them all.
    let to_verify: BTreeSet<String> = applied
        .iter()
        .filter(|(_, verify)| *verify)
        .map(|(report, _)| report.model.clone())
        .collect();
    let after = if to_verify.is_empty() {
        None
    } else {
        let span = tracing::info_span!("verify", models = to_verify.len());
        Some(
            registry
                .scoped_snapshot(&Scope::only(to_verify))
                .instrument(span)
                .await,
        )
    };
    let mut models: Vec<ModelReport> = applied
        .into_iter()
        .map(|(mut report, verify)| {
            if let (true, Some(after)) = (verify, &after) {
                verify_model(&mut report, desired, after.as_ref().map(|a| &a.snapshot));
            }
            report
        })
        .collect();
    models.sort_by(|a, b| a.model.cmp(&b.model));
    ApplyReport {
        interrupted: options.cancel.is_cancelled(),
        models,
    }
}

async fn apply_model<R: Registry>(
    registry: &R,
    desired: &DesiredState,
    planned: &ModelPlan,
    options: &ApplyOptions,
    progress: Progress<'_>,
) -> (ModelReport, bool) {
    let mut report = ModelReport {
        model: planned.model.clone(),
        manifest: planned.manifest.clone(),
        status: Convergence::Failed,
        replanned: false,
        outcomes: Vec::new(),
        error: None,
        remaining: Vec::new(),
        diagnostics: Vec::new(),
    };
    let skip_all = |changes: &[Change]| {
        changes
            .iter()
            .map(|change| Outcome {
                change: change.clone(),
                result: OutcomeStatus::Skipped,
                annotation_error: None,
                registered: None,
            })
            .collect::<Vec<_>>()
    };
    if options.cancel.is_cancelled() {
        report.status = Convergence::Interrupted;
        report.outcomes = skip_all(&planned.changes);
        return (report, false);
    }
    let Some(desired_model) = desired.models.get(&planned.model) else {
        report.error = Some("the model is no longer in the desired state".into());
        report.outcomes = skip_all(&planned.changes);
        return (report, false);
    };

    // 1. Stale-plan protection.
    let current = match registry.model(&planned.model).await {
        Ok(current) => current,
        Err(error) => {
            report.error = Some(format!("re-reading the model before applying: {error}"));
            report.outcomes = skip_all(&planned.changes);
            return (report, false);
        }
    };
    let changes = if current == planned.basis {
        planned.changes.clone()
    } else {
        tracing::info!("the registry changed since planning; re-planning");
        report.replanned = true;
        match plan_model(desired_model, current.as_ref()) {
            Ok(replanned) if enters_unjudged_gate(desired_model, planned, &replanned.changes) => {
                // Gates were judged on the registry as planned; a change the new registry
                // state adds into a gated target has no verdict, so nothing is applied.
                report.error = Some(
                    "the registry changed since planning and a change now enters a gated target \
                     whose gate was not judged for it; nothing of the model was applied (run again)"
                        .into(),
                );
                report.outcomes = skip_all(&planned.changes);
                return (report, false);
            }
            Ok(replanned) => replanned.changes,
            Err(diagnostics) => {
                report.error = Some(
                    "the registry changed since planning and the manifest no longer applies".into(),
                );
                report.diagnostics = diagnostics;
                report.outcomes = skip_all(&planned.changes);
                return (report, false);
            }
        }
    };

    // 2. Apply in order; stop the model at the first failure.
    let mut failed = false;
    for (index, change) in changes.iter().enumerate() {
        if options.cancel.is_cancelled() {
            report.status = Convergence::Interrupted;
            report.outcomes.extend(skip_all(&changes[index..]));
            return (report, false);
        }
        let outcome = execute(
            registry,
            &planned.model,
            desired_model.file().display().to_string(),
            change,
            options,
        )
        .await;
        progress(&planned.model, &outcome);
        if let OutcomeStatus::Failed { error } = &outcome.result {
            tracing::warn!(change = ?change.action, %error, "change failed");
            failed = true;
            report.outcomes.push(outcome);
            report.outcomes.extend(skip_all(&changes[index + 1..]));
            break;
        }
        report.outcomes.push(outcome);
    }
    if failed {
        report.error = Some("a change failed; the model's later changes were skipped".into());
        return (report, false);
    }

    // 3. Verified by `apply` with the other models.
    (report, true)
}

/// Plans a model again from the read after applying; `after` is that read (scoped to the
/// changed models), or its error.
fn verify_model(
    report: &mut ModelReport,
    desired: &DesiredState,
    after: Result<&crate::registry::Snapshot, &crate::registry::Error>,
) {
    let Some(desired_model) = desired.models.get(&report.model) else {
        report.error = Some("the model is no longer in the desired state".into());
        return;
    };
    let after = match after {
        Ok(snapshot) => snapshot.models.get(&report.model),
        Err(error) => {
            report.error = Some(format!("re-reading the model to verify: {error}"));
            return;
        }
    };
    match plan_model(desired_model, after) {
        Ok(verification) if verification.is_in_sync() => {
            report.status = Convergence::Converged;
        }
        Ok(verification) => {
            report.error = Some(format!(
                "did not converge: {} change(s) still needed after applying (someone may be \
                 changing the registry at the same time)",
                verification.changes.len()
            ));
            report.remaining = verification.changes;
        }
        Err(diagnostics) => {
            report.error = Some("verification found the manifest no longer applies".into());
            report.diagnostics = diagnostics;
        }
    }
}

async fn execute<R: Registry>(
    registry: &R,
    model: &str,
    manifest: String,
    change: &Change,
    options: &ApplyOptions,
) -> Outcome {
    if let Action::Register {
        selector,
        stage,
        aliases,
        source,
    } = &change.action
    {
        return execute_register(
            registry,
            model,
            manifest,
            change,
            (selector, *stage, aliases, source.as_ref()),
            options,
        )
        .await;
    }
    let (result, annotation_error) =
        execute_action(registry, model, manifest, &change.action, options).await;
    Outcome {
        change: change.clone(),
        result: match result {
            Ok(()) => OutcomeStatus::Applied,
            Err(error) => OutcomeStatus::Failed { error },
        },
        annotation_error,
        registered: None,
    }
}

/// A registration: the version is created (at most once, [`crate::select::register`]),
/// then moved into its stage and pointed at by its aliases, each with its audit tag. The
/// first failed step fails the change (and so stops the model).
async fn execute_register<R: Registry>(
    registry: &R,
    model: &str,
    manifest: String,
    change: &Change,
    (selector, stage, aliases, source): (
        &crate::manifest::Selector,
        Option<Stage>,
        &[String],
        Option<&crate::registry::RegistrationSource>,
    ),
    options: &ApplyOptions,
) -> Outcome {
    let mut outcome = Outcome {
        change: change.clone(),
        result: OutcomeStatus::Applied,
        annotation_error: None,
        registered: None,
    };
    let version = match crate::select::register(
        registry,
        model,
        selector,
        source,
        crate::select::REGISTRATION_WAIT,
    )
    .await
    {
        Ok(version) => version,
        Err(error) => {
            outcome.result = OutcomeStatus::Failed {
                error: error.to_string(),
            };
            return outcome;
        }
    };
    outcome.registered = Some(version);
    let placements = stage
        .map(|to| Action::Transition {
            version,
            from: Stage::None,
            to,
        })
        .into_iter()
        .chain(aliases.iter().map(|alias| Action::SetAlias {
            alias: alias.clone(),
            from: None,
            to: version,
        }));
    for placement in placements {
        let (result, annotation_error) =
            execute_action(registry, model, manifest.clone(), &placement, options).await;
        if let Err(error) = result {
            outcome.result = OutcomeStatus::Failed {
                error: format!("registered version {version}, but placing it failed: {error}"),
            };
            return outcome;
        }
        if annotation_error.is_some() {
            outcome.annotation_error = annotation_error;
        }
    }
    outcome
}

/// One write (not a registration) and its audit tag: the write's result, and the audit
/// tag's error when the write succeeded but the tag could not be written.
async fn execute_action<R: Registry>(
    registry: &R,
    model: &str,
    manifest: String,
    action: &Action,
    options: &ApplyOptions,
) -> (Result<(), String>, Option<String>) {
    let result = match action {
        Action::CreateModel { description, tags } => {
            registry
                .create_model(model, description.as_deref(), tags)
                .await
        }
        Action::SetDescription { to, .. } => registry.update_description(model, to).await,
        Action::SetModelTag { key, to, .. } => registry.set_model_tag(model, key, to).await,
        Action::SetVersionTag {
            version, key, to, ..
        } => registry.set_version_tag(model, *version, key, to).await,
        Action::Transition { version, to, .. } => registry.transition(model, *version, *to).await,
        Action::SetAlias { alias, to, .. } => registry.set_alias(model, alias, *to).await,
        Action::DeleteAlias { alias, .. } => registry.delete_alias(model, alias).await,
        Action::Register { .. } => {
            return (Err("a registration is not a single write".into()), None);
        }
    };
    if let Err(error) = result {
        return (Err(error.to_string()), None);
    }
    let mut annotation_error = None;
    if let Some(annotation) = &options.annotate
        && let Some((version, key, value)) = audit_tag(action, annotation, manifest, options)
        && let Err(error) = registry.set_version_tag(model, version, &key, &value).await
    {
        // The change itself is done: a missing audit tag is worth a warning, not a failure
        // that would stop the model's later changes.
        tracing::warn!(%error, version, key, "the change succeeded but its audit tag was not written");
        annotation_error = Some(error.to_string());
    }
    (Ok(()), annotation_error)
}

/// The audit tag an applied `action` gets, as (version, key, value): transitions and alias
/// moves are recorded; other changes are what the manifest says and need no record, and a
/// deleted alias has nothing to tag (its version may be gone).
fn audit_tag(
    action: &Action,
    annotation: &Annotation,
    manifest: String,
    options: &ApplyOptions,
) -> Option<(u64, String, String)> {
    // Serializing these plain structs cannot fail; an empty value would only mean a
    // useless tag, never a lost change.
    match action {
        Action::Transition { version, from, to } => {
            let when = (options.clock)();
            let record = AuditRecord {
                from: *from,
                to: *to,
                when: &when,
                manifest,
                commit: annotation.commit.as_deref(),
            };
            let value = serde_json::to_string(&record).unwrap_or_default();
            Some((*version, AUDIT_TAG.to_owned(), value))
        }
        Action::SetAlias { alias, from, to } => {
            let record = AliasAuditRecord {
                previous: *from,
                when: (options.clock)(),
                manifest,
                commit: annotation.commit.clone(),
            };
            let value = serde_json::to_string(&record).unwrap_or_default();
            Some((*to, alias_audit_tag(alias), value))
        }
        Action::CreateModel { .. }
        | Action::SetDescription { .. }
        | Action::SetModelTag { .. }
        | Action::SetVersionTag { .. }
        | Action::DeleteAlias { .. }
        | Action::Register { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::manifest::{DesiredModel, Retention, fixture};
    use crate::plan::Selection;

    /// A plan without gates' evidence (these tests declare no gates).
    fn compute_plan(
        desired: &crate::manifest::DesiredState,
        observed: &crate::registry::Snapshot,
        selection: &Selection,
    ) -> Result<crate::plan::Plan, Vec<crate::diagnostic::Diagnostic>> {
        crate::plan::plan(
            desired,
            observed,
            selection,
            &crate::evidence::Evidence::default(),
            time::OffsetDateTime::UNIX_EPOCH,
        )
    }
    use crate::registry::fake::FakeRegistry;
    use Stage::{Archived, None as NoStage, Production, Staging};

    fn desired(models: Vec<DesiredModel>) -> DesiredState {
        fixture::desired(models)
    }

    fn model(name: &str, production: &[u64], staging: &[u64]) -> DesiredModel {
        fixture::model(name)
            .stage(Production, production)
            .stage(Staging, staging)
            .build()
    }

    fn options() -> ApplyOptions {
        ApplyOptions {
            clock: Arc::new(|| "2026-11-28T00:00:00Z".to_string()),
            annotate: Some(Annotation {
                commit: Some("abc123".into()),
            }),
            ..ApplyOptions::new()
        }
    }

    fn stages_of(registry: &FakeRegistry, name: &str) -> Vec<(u64, Stage)> {
        registry.state().models[name]
            .versions
            .values()
            .map(|v| (v.version, v.stage))
            .collect()
    }

    #[tokio::test]
    async fn applies_in_order_annotates_and_converges() {
        let registry = FakeRegistry::default();
        registry.add_model("m", &[(1, Production), (2, Staging), (3, NoStage)]);
        let mut m = model("m", &[2], &[3]);
        m.spec.retention = Some(Retention { keep_latest: 0 });
        let desired = desired(vec![m]);
        let plan = compute_plan(&desired, &registry.state(), &Selection::default()).expect("plan");
        let report = apply(&registry, &desired, &plan, &options(), &|_, _| {}).await;
        assert!(report.is_success(), "{report:#?}");
        assert_eq!(
            stages_of(&registry, "m"),
            vec![(1, Archived), (2, Production), (3, Staging)]
        );
        assert_eq!(
            registry.writes(),
            vec![
                "transition m 2 Production",
                "set_version_tag m 2 mlreg.transition={\"from\":\"Staging\",\"to\":\"Production\",\"when\":\"2026-11-28T00:00:00Z\",\"manifest\":\"m.yaml\",\"commit\":\"abc123\"}",
                "transition m 3 Staging",
                "set_version_tag m 3 mlreg.transition={\"from\":\"None\",\"to\":\"Staging\",\"when\":\"2026-11-28T00:00:00Z\",\"manifest\":\"m.yaml\",\"commit\":\"abc123\"}",
                "transition m 1 Archived",
                "set_version_tag m 1 mlreg.transition={\"from\":\"Production\",\"to\":\"Archived\",\"when\":\"2026-11-28T00:00:00Z\",\"manifest\":\"m.yaml\",\"commit\":\"abc123\"}",
            ]
        );
        // Idempotent: planning again finds nothing, applying again writes nothing.
        let again = compute_plan(&desired, &registry.state(), &Selection::default()).expect("plan");
        assert!(again.is_empty());
        let writes = registry.writes().len();
        let report = apply(&registry, &desired, &again, &options(), &|_, _| {}).await;
        assert!(report.is_success());
        assert_eq!(registry.writes().len(), writes);
    }

    #[tokio::test]
    async fn a_reconcile_is_verified_with_one_read_of_the_changed_models() {
        let registry = FakeRegistry::default();
        for name in ["a", "b", "c", "in-sync", "failing"] {
            registry.add_model(name, &[(1, NoStage)]);
        }
        registry.add_model("unmanaged", &[(1, NoStage)]);
        registry.fail_writes_matching("transition failing");
        let desired = desired(vec![
            model("a", &[1], &[]),
            model("b", &[1], &[]),
            model("c", &[1], &[]),
            model("in-sync", &[], &[]),
            model("failing", &[1], &[]),
        ]);
        let plan = compute_plan(&desired, &registry.state(), &Selection::default()).expect("plan");
        let report = apply(&registry, &desired, &plan, &options(), &|_, _| {}).await;
        let status = |name: &str| {
            report
                .models
                .iter()
                .find(|m| m.model == name)
                .map(|m| m.status)
        };
        assert_eq!(status("a"), Some(Convergence::Converged));
        assert_eq!(status("c"), Some(Convergence::Converged));
        assert_eq!(status("failing"), Some(Convergence::Failed));
        assert_eq!(status("in-sync"), None);
        // One stale-plan read per model with changes, then one read of those that applied.
        assert_eq!(registry.reads(), 4 + 1);
        assert_eq!(
            registry.scoped_reads(),
            vec![Scope::only(["a", "b", "c"].map(String::from))]
        );
    }

    #[tokio::test]
    async fn a_model_changed_after_its_apply_does_not_verify() {
        let registry = FakeRegistry::default();
        registry.add_model("m", &[(1, NoStage)]);
        let desired = desired(vec![model("m", &[1], &[])]);
        let plan = compute_plan(&desired, &registry.state(), &Selection::default()).expect("plan");
        let options = ApplyOptions {
            annotate: None,
            ..options()
        };
        // Someone archives version 1 right after mlreg promoted it, before verification.
        let sneaky = |model: &str, _: &Outcome| {
            assert_eq!(model, "m");
            registry.edit_version("m", 1, |v| v.stage = Archived);
        };
        let report = apply(&registry, &desired, &plan, &options, &sneaky).await;
        assert_eq!(report.models[0].status, Convergence::Failed);
        assert_eq!(report.models[0].remaining.len(), 1, "{report:#?}");
    }

    #[tokio::test]
    async fn no_annotate_makes_one_write_per_change() {
        let registry = FakeRegistry::default();
        registry.add_model("m", &[(1, NoStage)]);
        let desired = desired(vec![model("m", &[1], &[])]);
        let plan = compute_plan(&desired, &registry.state(), &Selection::default()).expect("plan");
        let options = ApplyOptions {
            annotate: None,
            ..options()
        };
        let report = apply(&registry, &desired, &plan, &options, &|_, _| {}).await;
        assert!(report.is_success());
        assert_eq!(registry.writes(), vec!["transition m 1 Production"]);
    }

    /// A model with versions 1-3, `champion` at 1 and `old` at 3, whose manifest moves
    /// `champion` to 2, creates `challenger` at 3 and (aliases being exhaustive) drops `old`.
    fn alias_moves() -> (FakeRegistry, DesiredState) {
        let registry = FakeRegistry::default();
        registry.add_model("m", &[(1, NoStage), (2, NoStage), (3, NoStage)]);
        registry.mutate(|snapshot| {
            if let Some(model) = snapshot.models.get_mut("m") {
                model.aliases.insert("champion".into(), 1);
                model.aliases.insert("old".into(), 3);
            }
        });
        let desired = desired(vec![
            fixture::model("m")
                .alias("champion", 2)
                .alias("challenger", 3)
                .build(),
        ]);
        (registry, desired)
    }

    #[tokio::test]
    async fn each_alias_move_tags_its_version_once_and_a_removal_writes_nothing() {
        let (registry, desired) = alias_moves();
        let plan = compute_plan(&desired, &registry.state(), &Selection::default()).expect("plan");
        let options = ApplyOptions {
            annotate: Some(Annotation { commit: None }),
            ..options()
        };
        let report = apply(&registry, &desired, &plan, &options, &|_, _| {}).await;
        assert!(report.is_success(), "{report:#?}");
        assert_eq!(
            registry.writes(),
            vec![
                "set_alias m challenger=3",
                "set_version_tag m 3 mlreg.alias.challenger={\"previous\":null,\"when\":\"2026-11-28T00:00:00Z\",\"manifest\":\"m.yaml\",\"commit\":null}",
                "set_alias m champion=2",
                "set_version_tag m 2 mlreg.alias.champion={\"previous\":1,\"when\":\"2026-11-28T00:00:00Z\",\"manifest\":\"m.yaml\",\"commit\":null}",
                "delete_alias m old",
            ]
        );
        // The record reads back as written, from the version the alias points at.
        let state = registry.state();
        assert_eq!(
            AliasAuditRecord::of(&state.models["m"], "champion"),
            Some(AliasAuditRecord {
                previous: Some(1),
                when: "2026-11-28T00:00:00Z".into(),
                manifest: "m.yaml".into(),
                commit: None,
            })
        );
        assert_eq!(AliasAuditRecord::of(&state.models["m"], "old"), None);

        // The tags are not drift: planning again finds nothing, applying writes nothing.
        let again = compute_plan(&desired, &state, &Selection::default()).expect("plan");
        assert!(again.is_empty(), "{again:#?}");
        let writes = registry.writes().len();
        let report = apply(&registry, &desired, &again, &options, &|_, _| {}).await;
        assert!(report.is_success());
        assert_eq!(registry.writes().len(), writes);
    }

    #[tokio::test]
    async fn the_alias_record_names_the_commit() {
        let (registry, desired) = alias_moves();
        let plan = compute_plan(&desired, &registry.state(), &Selection::default()).expect("plan");
        let report = apply(&registry, &desired, &plan, &options(), &|_, _| {}).await;
        assert!(report.is_success(), "{report:#?}");
        let state = registry.state();
        let value = &state.models["m"].versions[&2].tags["mlreg.alias.champion"];
        let record: serde_json::Value = serde_json::from_str(value).expect("JSON");
        assert_eq!(
            record,
            serde_json::json!({
                "previous": 1,
                "when": "2026-11-28T00:00:00Z",
                "manifest": "m.yaml",
                "commit": "abc123",
            })
        );
    }

    #[tokio::test]
    async fn no_annotate_writes_no_alias_record() {
        let (registry, desired) = alias_moves();
        let plan = compute_plan(&desired, &registry.state(), &Selection::default()).expect("plan");
        let options = ApplyOptions {
            annotate: None,
            ..options()
        };
        let report = apply(&registry, &desired, &plan, &options, &|_, _| {}).await;
        assert!(report.is_success(), "{report:#?}");
        assert_eq!(
            registry.writes(),
            vec![
                "set_alias m challenger=3",
                "set_alias m champion=2",
                "delete_alias m old",
            ]
        );
        assert!(
            registry.state().models["m"]
                .versions
                .values()
                .all(|version| version.tags.is_empty())
        );
    }

    #[tokio::test]
    async fn a_failed_alias_record_is_a_warning_and_the_move_stands() {
        let (registry, desired) = alias_moves();
        registry.fail_writes_matching("mlreg.alias.champion");
        let plan = compute_plan(&desired, &registry.state(), &Selection::default()).expect("plan");
        let report = apply(&registry, &desired, &plan, &options(), &|_, _| {}).await;
        assert!(report.is_success(), "{report:#?}");
        assert_eq!(report.counts(), (3, 0, 0));
        let champion = report.models[0]
            .outcomes
            .iter()
            .find(|outcome| {
                matches!(&outcome.change.action, Action::SetAlias { alias, .. } if alias == "champion")
            })
            .expect("the champion move");
        assert_eq!(champion.result, OutcomeStatus::Applied);
        assert!(
            champion
                .annotation_error
                .as_deref()
                .is_some_and(|error| error.contains("injected failure")),
            "{champion:#?}"
        );
        let state = registry.state();
        assert_eq!(state.models["m"].aliases["champion"], 2);
        assert_eq!(AliasAuditRecord::of(&state.models["m"], "champion"), None);
        // The later changes went on, the challenger's record included.
        assert!(AliasAuditRecord::of(&state.models["m"], "challenger").is_some());
        assert!(!state.models["m"].aliases.contains_key("old"));
    }

    #[test]
    fn alias_records_that_mlreg_did_not_write_do_not_parse() {
        for value in [
            "",
            "true",
            "{}",
            "{\"previous\": \"two\", \"when\": \"x\", \"manifest\": \"m\"}",
        ] {
            assert_eq!(AliasAuditRecord::parse(value), None, "{value}");
        }
        // Fields may be added later: unknown ones are ignored, missing nullable ones are null.
        assert_eq!(
            AliasAuditRecord::parse("{\"when\": \"w\", \"manifest\": \"m\", \"by\": \"ci\"}"),
            Some(AliasAuditRecord {
                previous: None,
                when: "w".into(),
                manifest: "m".into(),
                commit: None,
            })
        );
    }

    #[tokio::test]
    async fn a_failed_promotion_never_archives_what_it_replaces_and_other_models_go_on() {
        let registry = FakeRegistry::default();
        registry.add_model("a", &[(1, Production), (2, NoStage)]);
        registry.add_model("b", &[(1, NoStage)]);
        registry.fail_writes_matching("transition a 2 Production");
        let desired = desired(vec![model("a", &[2], &[]), model("b", &[1], &[])]);
        let plan = compute_plan(&desired, &registry.state(), &Selection::default()).expect("plan");
        let report = apply(&registry, &desired, &plan, &options(), &|_, _| {}).await;
        assert!(!report.is_success());
        assert_eq!(
            stages_of(&registry, "a"),
            vec![(1, Production), (2, NoStage)]
        );
        assert_eq!(stages_of(&registry, "b"), vec![(1, Production)]);
        let a = &report.models[0];
        assert_eq!(a.status, Convergence::Failed);
        assert!(matches!(a.outcomes[0].result, OutcomeStatus::Failed { .. }));
        assert_eq!(a.outcomes[1].result, OutcomeStatus::Skipped);
        assert_eq!(report.models[1].status, Convergence::Converged);
        assert_eq!(report.counts(), (1, 1, 1));
    }

    #[tokio::test]
    async fn a_stale_plan_is_recomputed_before_applying() {
        let registry = FakeRegistry::default();
        registry.add_model("m", &[(1, Production), (2, NoStage), (3, NoStage)]);
        let desired = desired(vec![model("m", &[2], &[])]);
        let plan = compute_plan(&desired, &registry.state(), &Selection::default()).expect("plan");
        // Someone promotes version 3 in the UI after the plan was made.
        registry.edit_version("m", 3, |v| v.stage = Production);
        let report = apply(&registry, &desired, &plan, &options(), &|_, _| {}).await;
        assert!(report.is_success(), "{report:#?}");
        assert!(report.models[0].replanned);
        assert_eq!(
            stages_of(&registry, "m"),
            vec![(1, Archived), (2, Production), (3, Archived)]
        );
    }

    #[tokio::test]
    async fn cancellation_skips_everything_not_started() {
        let registry = FakeRegistry::default();
        registry.add_model("m", &[(1, NoStage)]);
        let desired = desired(vec![model("m", &[1], &[])]);
        let plan = compute_plan(&desired, &registry.state(), &Selection::default()).expect("plan");
        let options = options();
        options.cancel.cancel();
        let report = apply(&registry, &desired, &plan, &options, &|_, _| {}).await;
        assert!(report.interrupted);
        assert_eq!(report.models[0].status, Convergence::Interrupted);
        assert!(registry.writes().is_empty());
    }

    #[tokio::test]
    async fn creates_a_missing_model() {
        let registry = FakeRegistry::default();
        let mut m = model("new", &[], &[]);
        m.spec.description = Some("fresh".into());
        m.spec.tags = BTreeMap::from([("team".to_string(), "ml".to_string())]);
        let desired = desired(vec![m]);
        let plan = compute_plan(&desired, &registry.state(), &Selection::default()).expect("plan");
        let report = apply(&registry, &desired, &plan, &options(), &|_, _| {}).await;
        assert!(report.is_success(), "{report:#?}");
        let state = registry.state();
        assert_eq!(state.models["new"].description, "fresh");
        assert_eq!(state.models["new"].tags["team"], "ml");
    }

    #[tokio::test]
    async fn a_replan_that_enters_an_unjudged_gated_target_applies_nothing() {
        let registry = FakeRegistry::default();
        registry.add_model("m", &[(1, Stage::Staging), (2, Stage::None)]);
        let desired = fixture::desired([fixture::model("m")
            .stage(Stage::Production, &[2])
            .gate(
                crate::target::Target::Stage(Stage::Production),
                crate::manifest::Gate::default(),
            )
            .build()]);
        // Someone archives version 1 by hand after planning, so apply re-plans; the
        // promotion of version 2 it finds has no passing verdict in the reviewed plan
        // (cleared here), so nothing of the model is applied.
        let mut plan =
            compute_plan(&desired, &registry.state(), &Selection::default()).expect("plan");
        plan.models[0].gates.clear();
        registry.mutate(|snapshot| {
            if let Some(version) = snapshot
                .models
                .get_mut("m")
                .and_then(|model| model.versions.get_mut(&1))
            {
                version.stage = Stage::Archived;
            }
        });
        let report = apply(&registry, &desired, &plan, &options(), &|_, _| {}).await;
        assert!(!report.is_success(), "{report:#?}");
        assert!(registry.writes().is_empty(), "{:?}", registry.writes());
        let error = report.models[0].error.clone().unwrap_or_default();
        assert!(error.contains("gated target"), "{error}");
    }
}
