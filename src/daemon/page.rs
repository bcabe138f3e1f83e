//! What the status page (`GET /`, `GET /models/NAME`, rendered by [`super::html`]) shows
//! beyond the `/status` document: per model, what the manifests declare next to what the
//! registry held at the last read, how the last reconcile ended for it, and a bounded ring
//! of its recent events (applied, drift, blocked, failed, invalid manifest).
//!
//! The reconciler calls [`record`] once at the end of every reconcile; the page only reads
//! what was recorded, so rendering it never touches the registry.
//!
//! The page's model list is a list of [`Group`]s: today one, unnamed. An environment (a
//! project file's `environments:`) becomes one more group by filling
//! [`ModelRecord::environment`]; nothing else changes.

use std::collections::{BTreeMap, VecDeque};

use super::status::{ManifestsStatus, ModelStatus, ReconcileResult, Shared, Status, SyncState};
use crate::apply::{ApplyReport, Convergence};
use crate::manifest::{DesiredModel, DesiredState};
use crate::notify::{self, Event, EventKind};
use crate::registry::{ObservedModel, Snapshot};
use crate::stage::Stage;

/// How many events are kept per model (the oldest go first).
pub const EVENTS_PER_MODEL: usize = 20;

/// What one reconcile saw, handed to [`record`] by the reconciler.
#[derive(Debug, Clone)]
pub struct Seen<'a> {
    /// The desired state reconciled.
    pub desired: &'a DesiredState,
    /// What the registry held, when it could be read.
    pub observed: Option<&'a Snapshot>,
    /// What applying did, when something was applied.
    pub report: Option<&'a ApplyReport>,
    /// The manifests' git commit, when known.
    pub commit: Option<String>,
}

/// The page's own state, kept in the shared [`Status`] (not part of the `/status` JSON).
#[derive(Debug, Clone, Default)]
pub struct Board {
    /// The registry's address, credentials removed ([`redact`]).
    pub registry: Option<String>,
    /// The project file's environment the daemon serves (`--env`), if any: its models are
    /// grouped under it.
    pub environment: Option<String>,
    /// The manifests' commit at the last reconcile.
    pub commit: Option<String>,
    /// Per managed model, by name.
    pub models: BTreeMap<String, ModelRecord>,
    /// The models' status as the last reconcile left it. `/status` is updated while a
    /// reconcile runs (a failed model shows its pending changes, then its error); the page
    /// shows whole reconciles, so that it never flickers between the two.
    pub settled: Option<Vec<ModelStatus>>,
}

/// `status` as the page shows it: the models as the last reconcile left them (the live
/// list until one has finished), the rest (readiness, manifests) as it is now.
pub fn settled(mut status: Status) -> Status {
    if let Some(models) = status.page.settled.take() {
        status.models = models;
    }
    status
}

/// One model on the page.
#[derive(Debug, Clone, Default)]
pub struct ModelRecord {
    /// The environment the model belongs to (`None` without a project file); the page
    /// groups models by it.
    pub environment: Option<String>,
    /// The description the manifest declares, if any.
    pub declared_description: Option<String>,
    /// Each declared stage and alias with what the registry held.
    pub rows: Vec<Row>,
    /// What the registry held at the last successful read (`None`: never read).
    pub observed: Option<Observed>,
    /// The last reconcile that covered the model.
    pub last: Option<LastRun>,
    /// The most recent events, newest last, at most [`EVENTS_PER_MODEL`].
    pub events: VecDeque<Recorded>,
}

/// What the registry held about a model.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Whether the registered model exists.
    pub exists: bool,
    /// Its description.
    pub description: String,
    /// When it was read (RFC 3339).
    pub read_at: String,
    /// Whether it was read before an apply that did not converge (some changes may have
    /// landed since).
    pub before_apply: bool,
}

/// A declared stage or alias next to what the registry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// `Production`, `Staging` or `@alias`.
    pub target: String,
    /// The declared versions (`4, 5`, or `(none)`).
    pub declared: String,
    /// What the registry holds there (`(none)`, or `?` when it was not read).
    pub observed: String,
}

impl Row {
    /// Whether the registry holds what is declared.
    pub fn matches(&self) -> bool {
        self.declared == self.observed
    }
}

/// The last reconcile, as it concerned one model.
#[derive(Debug, Clone)]
pub struct LastRun {
    /// When it started (RFC 3339).
    pub at: String,
    /// What started it.
    pub trigger: String,
    /// Whether the reconcile as a whole succeeded.
    pub succeeded: bool,
    /// What it did or found for this model, in a few words.
    pub outcome: String,
}

/// One event with its time.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// When it was recorded (RFC 3339: the start of its reconcile).
    pub at: String,
    /// The event.
    pub event: Event,
}

/// The state the page shows for a model: [`SyncState`] refined with what the page knows
/// (the daemon's intent, errors, invalid manifests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PageState {
    /// The manifest declaring the model is invalid (the last valid one is in use).
    Invalid,
    /// The last attempt failed (a refused write, a version the registry lacks).
    Failed,
    /// Held by a promotion gate.
    Blocked,
    /// The registry was changed by hand; reported, not reverted.
    Drift,
    /// The manifest changed; the daemon applies it.
    OutOfSync,
    /// Not read yet, or the registry could not be read.
    Unknown,
    /// The registry matches the manifest.
    InSync,
}

impl PageState {
    /// Every state, in the order the header counts them.
    pub const ALL: [PageState; 7] = [
        PageState::InSync,
        PageState::OutOfSync,
        PageState::Drift,
        PageState::Blocked,
        PageState::Failed,
        PageState::Invalid,
        PageState::Unknown,
    ];

    /// The label people read.
    pub fn label(self) -> &'static str {
        match self {
            PageState::InSync => "in sync",
            PageState::OutOfSync => "out of sync",
            PageState::Drift => "drift",
            PageState::Blocked => "blocked by a gate",
            PageState::Failed => "failed",
            PageState::Invalid => "invalid manifest",
            PageState::Unknown => "unknown",
        }
    }

    /// The CSS class (and `data-state` value).
    pub fn slug(self) -> &'static str {
        match self {
            PageState::InSync => "in-sync",
            PageState::OutOfSync => "out-of-sync",
            PageState::Drift => "drift",
            PageState::Blocked => "blocked",
            PageState::Failed => "failed",
            PageState::Invalid => "invalid",
            PageState::Unknown => "unknown",
        }
    }

    /// The state of `model` in `status`.
    pub fn of(model: &ModelStatus, status: &Status) -> PageState {
        if !manifest_errors(model, status).is_empty() {
            return PageState::Invalid;
        }
        if model.last_error.is_some() {
            return PageState::Failed;
        }
        match model.state {
            SyncState::InSync => PageState::InSync,
            SyncState::Blocked => PageState::Blocked,
            SyncState::Drifted if model.will_apply => PageState::OutOfSync,
            SyncState::Drifted => PageState::Drift,
            SyncState::Unknown => PageState::Unknown,
        }
    }
}

/// The manifest problems found in the file declaring `model`.
pub fn manifest_errors<'s>(model: &ModelStatus, status: &'s Status) -> Vec<&'s str> {
    errors_in(&model.manifest, &status.manifests)
}

/// The problems of the last read of the manifests (`file:line:column: message`) in `file`.
fn errors_in<'s>(file: &std::path::Path, manifests: &'s ManifestsStatus) -> Vec<&'s str> {
    if manifests.valid {
        return Vec::new();
    }
    let prefix = format!("{}:", file.display());
    manifests
        .errors
        .iter()
        .filter(|error| error.starts_with(&prefix))
        .map(String::as_str)
        .collect()
}

/// One group of models on the page (an environment, or everything when there is none).
#[derive(Debug)]
pub struct Group<'s> {
    /// The environment, `None` for models outside any.
    pub environment: Option<&'s str>,
    /// Its models, by name.
    pub models: Vec<&'s ModelStatus>,
}

/// The models of `status` by environment (models outside any environment first), each
/// group's models by state (what needs attention first: [`PageState`]'s order), then name.
pub fn groups(status: &Status) -> Vec<Group<'_>> {
    let mut groups: BTreeMap<Option<&str>, Vec<&ModelStatus>> = BTreeMap::new();
    for model in &status.models {
        let environment = status
            .page
            .models
            .get(&model.name)
            .and_then(|record| record.environment.as_deref());
        groups.entry(environment).or_default().push(model);
    }
    groups
        .into_iter()
        .map(|(environment, mut models)| {
            // What needs attention first, then by name.
            models.sort_by_cached_key(|model| (PageState::of(model, status), model.name.clone()));
            Group {
                environment,
                models,
            }
        })
        .collect()
}

/// Records what the reconcile that just finished saw: called once per reconcile, after the
/// shared status holds its outcome.
pub fn record(shared: &Shared, seen: &Seen<'_>) {
    shared.update(|status| record_into(status, seen));
}

fn record_into(status: &mut Status, seen: &Seen<'_>) {
    let Some(last) = status.last_reconcile.clone() else {
        return;
    };
    let Status {
        page,
        models,
        manifests,
        ..
    } = status;
    if let Some(commit) = &seen.commit {
        page.commit = Some(commit.clone());
    }
    let commit = page.commit.clone();
    page.models
        .retain(|name, _| models.iter().any(|model| &model.name == name));
    let applied = seen
        .report
        .map(|report| notify::events_of(report, commit.as_deref()))
        .unwrap_or_default();
    for model in models.iter() {
        let environment = page.environment.clone();
        let record = page.models.entry(model.name.clone()).or_default();
        record.environment = environment;
        if let Some(declared) = seen.desired.models.get(&model.name) {
            record.declared_description = declared.spec.description.clone();
            if let Some(snapshot) = seen.observed {
                let observed = snapshot.models.get(&model.name);
                record.observed = Some(Observed {
                    exists: observed.is_some(),
                    description: observed
                        .map(|model| model.description.clone())
                        .unwrap_or_default(),
                    read_at: last.started_at.clone(),
                    before_apply: false,
                });
                record.rows = rows(declared, observed);
                // A model whose changes converged holds what is declared (the apply
                // verified it by reading it again); the snapshot was read before.
                let applied_model = seen
                    .report
                    .and_then(|report| report.models.iter().find(|m| m.model == model.name));
                match applied_model.map(|m| m.status) {
                    Some(Convergence::Converged) => {
                        for row in &mut record.rows {
                            row.observed.clone_from(&row.declared);
                        }
                    }
                    Some(Convergence::Failed | Convergence::Interrupted) => {
                        if let Some(observed) = &mut record.observed {
                            observed.before_apply = true;
                        }
                    }
                    Some(Convergence::InSync) | None => {}
                }
            } else if record.rows.is_empty() {
                record.rows = rows_unread(declared);
            }
        }
        let invalid = errors_in(&model.manifest, manifests);
        let mut events: Vec<Event> = applied
            .iter()
            .filter(|event| event.model.as_deref() == Some(model.name.as_str()))
            .cloned()
            .collect();
        let event = |kind: EventKind, detail: Option<String>| Event {
            event: kind,
            environment: record.environment.clone(),
            model: Some(model.name.clone()),
            changes: model.pending_changes.clone(),
            commit: commit.clone(),
            detail,
        };
        if let Some(first) = invalid.first() {
            events.push(Event {
                changes: Vec::new(),
                ..event(EventKind::Invalid, Some((*first).to_owned()))
            });
        }
        let failed_now = events.iter().any(|e| e.event == EventKind::Failed);
        match model.state {
            _ if model.last_error.is_some() && !failed_now => {
                events.push(event(EventKind::Failed, model.last_error.clone()));
            }
            SyncState::Drifted if !model.will_apply && model.last_error.is_none() => {
                events.push(event(EventKind::Drift, None));
            }
            SyncState::Blocked => {
                events.push(event(EventKind::Blocked, Some(failing_checks(model))));
            }
            _ => {}
        }
        let outcome = outcome(model, &events, invalid.first().copied());
        record.last = Some(LastRun {
            at: last.started_at.clone(),
            trigger: last.trigger.as_str().to_owned(),
            succeeded: last.result == ReconcileResult::Success,
            outcome,
        });
        for event in events {
            push_event(&mut record.events, &last.started_at, event);
        }
    }
    page.settled = Some(models.clone());
}

/// Appends `event` unless it repeats the model's last event (the same drift found by every
/// resync is one event, not one per resync); applied changes are always new.
fn push_event(ring: &mut VecDeque<Recorded>, at: &str, event: Event) {
    let repeated = ring.back().is_some_and(|last| {
        event.event != EventKind::Applied
            && last.event.event == event.event
            && last.event.changes == event.changes
            && last.event.detail == event.detail
    });
    if repeated {
        return;
    }
    if ring.len() >= EVENTS_PER_MODEL {
        ring.pop_front();
    }
    ring.push_back(Recorded {
        at: at.to_owned(),
        event,
    });
}

/// The failing checks of a blocked model, one line.
pub fn failing_checks(model: &ModelStatus) -> String {
    crate::gate::failing_checks(&model.gates, crate::gate::CheckLine::Observed).join("; ")
}

/// What a reconcile did or found for a model, in a few words.
fn outcome(model: &ModelStatus, events: &[Event], invalid: Option<&str>) -> String {
    if let Some(applied) = events.iter().find(|e| e.event == EventKind::Applied) {
        return format!("applied {} change(s)", applied.changes.len());
    }
    if invalid.is_some() {
        return "manifest invalid; nothing applied".to_owned();
    }
    if model.last_error.is_some() {
        return "failed (the error is above)".to_owned();
    }
    match model.state {
        SyncState::InSync => "in sync".to_owned(),
        SyncState::Blocked => "held by a gate; nothing applied".to_owned(),
        SyncState::Drifted if model.will_apply => {
            format!("{} change(s) pending", model.pending_changes.len())
        }
        SyncState::Drifted => format!(
            "drift reported ({} change(s)), not reverted",
            model.pending_changes.len()
        ),
        SyncState::Unknown => "registry not read".to_owned(),
    }
}

/// Versions as mlreg writes them (`4, 5`), `(none)` for none.
fn versions(versions: impl IntoIterator<Item = u64>) -> String {
    let list: Vec<String> = versions.into_iter().map(|v| v.to_string()).collect();
    if list.is_empty() {
        "(none)".to_owned()
    } else {
        list.join(", ")
    }
}

/// The declared stages and aliases of `model` next to what `observed` holds.
fn rows(model: &DesiredModel, observed: Option<&ObservedModel>) -> Vec<Row> {
    let mut rows = Vec::new();
    let stage_of = |stage: Stage| match observed {
        Some(observed) => versions(observed.versions_in(stage).map(|v| v.version)),
        None => "(no model)".to_owned(),
    };
    if let Some(stages) = &model.spec.stages {
        for (stage, declared) in stages.iter() {
            rows.push(Row {
                target: stage.to_string(),
                declared: versions(declared.iter().copied()),
                observed: stage_of(stage),
            });
        }
    }
    let mut aliases: BTreeMap<&str, (Option<u64>, Option<u64>)> = BTreeMap::new();
    if let Some(declared) = &model.spec.aliases {
        for (alias, version) in declared {
            aliases.entry(alias).or_default().0 = Some(*version);
        }
        // An exhaustive `aliases:` also means "no other alias": show the extra ones.
        for (alias, version) in observed.iter().flat_map(|observed| &observed.aliases) {
            aliases.entry(alias).or_default().1 = Some(*version);
        }
    }
    for (alias, (declared, held)) in aliases {
        let held = match (observed, declared) {
            (None, _) => "(no model)".to_owned(),
            (Some(observed), Some(_)) => versions(observed.aliases.get(alias).copied()),
            (Some(_), None) => versions(held),
        };
        rows.push(Row {
            target: format!("@{alias}"),
            declared: versions(declared),
            observed: held,
        });
    }
    rows
}

/// The declared stages and aliases before the registry was ever read.
fn rows_unread(model: &DesiredModel) -> Vec<Row> {
    rows(model, None)
        .into_iter()
        .map(|row| Row {
            observed: "?".to_owned(),
            ..row
        })
        .collect()
}

/// A registry address fit to show: no user, password, query or fragment (where tokens
/// travel), only scheme, host, port and path.
pub fn redact(url: &url::Url) -> String {
    let mut shown = url.clone();
    // Both fail only for URLs that cannot have credentials at all.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_strips_credentials_and_tokens() {
        let url = url::Url::parse("https://alice:s3cret@mlflow.example.com:8443/base/?token=abc#x")
            .expect("url");
        assert_eq!(redact(&url), "https://mlflow.example.com:8443/base/");
    }

    #[test]
    fn the_ring_is_bounded_and_repeats_are_one_event() {
        let mut ring = VecDeque::new();
        let drift = Event {
            event: EventKind::Drift,
            environment: None,
            model: Some("m".into()),
            changes: Vec::new(),
            commit: None,
            detail: None,
        };
        push_event(&mut ring, "t0", drift.clone());
        push_event(&mut ring, "t1", drift.clone());
        assert_eq!(ring.len(), 1);
        let applied = Event {
            event: EventKind::Applied,
            ..drift.clone()
        };
        for i in 0..EVENTS_PER_MODEL + 5 {
            push_event(&mut ring, &format!("t{i}"), applied.clone());
        }
        assert_eq!(ring.len(), EVENTS_PER_MODEL);
        assert!(ring.iter().all(|r| r.event.event == EventKind::Applied));
    }

    /// The reconciler records, once per reconcile: declared next to observed, an `applied`
    /// event for what converged, one `drift` event however many resyncs find it.
    #[tokio::test]
    async fn the_reconciler_records_rows_and_events() {
        use std::sync::Arc;

        use tokio_util::sync::CancellationToken;

        use crate::daemon::metrics::Metrics;
        use crate::daemon::reconciler::{Reconciler, Settings, Verdict};
        use crate::daemon::status::Trigger;
        use crate::manifest::fixture;
        use crate::registry::fake::FakeRegistry;
        use crate::stage::Stage::{None as NoStage, Production, Staging};

        let registry = FakeRegistry::default();
        registry.add_model("m", &[(1, Production), (2, NoStage)]);
        let shared = Arc::new(Shared::new(
            Status::new("d".into(), false),
            Metrics::new(),
            CancellationToken::new(),
        ));
        let settings = Settings {
            dir: "/nonexistent".into(),
            self_heal: false,
            max_changes: None,
            annotate: false,
            concurrency: 1,
        };
        let mut reconciler = Reconciler::new(&registry, settings, Arc::clone(&shared));
        let desired = fixture::desired([fixture::model("m")
            .stage(Production, &[2])
            .alias("champion", 2)
            .build()]);
        let token = CancellationToken::new();
        let mut reconcile = async |trigger| {
            reconciler
                .reconcile(&desired, true, trigger, &token, &token)
                .await
        };
        assert_eq!(reconcile(Trigger::Startup).await, Verdict::Success);
        let record = shared.snapshot().page.models["m"].clone();
        assert_eq!(
            record.rows,
            vec![
                Row {
                    target: "Production".into(),
                    declared: "2".into(),
                    observed: "2".into()
                },
                Row {
                    target: "Staging".into(),
                    declared: "(none)".into(),
                    observed: "(none)".into()
                },
                Row {
                    target: "@champion".into(),
                    declared: "2".into(),
                    observed: "2".into()
                },
            ],
            "converged: the registry holds what is declared: {record:?}"
        );
        assert_eq!(record.events.len(), 1);
        assert_eq!(record.events[0].event.event, EventKind::Applied);
        assert_eq!(record.events[0].event.changes.len(), 3);
        assert!(
            record
                .last
                .as_ref()
                .is_some_and(|last| last.outcome == "applied 3 change(s)")
        );

        registry.edit_version("m", 2, |version| version.stage = Staging);
        for _ in 0..3 {
            assert_eq!(reconcile(Trigger::Resync).await, Verdict::Success);
        }
        let record = shared.snapshot().page.models["m"].clone();
        let kinds: Vec<EventKind> = record.events.iter().map(|r| r.event.event).collect();
        assert_eq!(kinds, vec![EventKind::Applied, EventKind::Drift]);
        assert_eq!(record.rows[0].observed, "(none)");
        assert_eq!(record.rows[1].observed, "2");
        assert!(!record.rows[0].matches());
    }
}
