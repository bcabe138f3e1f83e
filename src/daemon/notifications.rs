//! What the daemon tells `--notify` receivers, and when: the events of [`crate::notify`],
//! each sent once per distinct situation rather than at every resync.
//!
//! | event | sent when | once per |
//! |---|---|---|
//! | `applied` | a reconcile applied changes and the model converged (a manifest change, or drift healed with `--self-heal`) | apply |
//! | `drift` | a model differs from its manifest and is left alone (no `--self-heal`) | distinct drift: the model and its pending changes |
//! | `blocked` | a promotion gate holds a model's changes | distinct block: the model, its changes and the failing checks |
//! | `failed` | a change failed or the model did not converge, or `--max-changes` refused the plan | distinct failure: the model and its changes (the refusal: its message) |
//! | `invalid` | the manifests do not load | distinct set of problems |
//!
//! "Once" lasts until the situation ends: a drifted model found in sync again (fixed by
//! hand, or by a manifest change) and drifting again later is news again, and so is a
//! failure after the model converged, or invalid manifests after valid ones. The memory is
//! in the process, like the record of what was applied: a restart may send a drift or a
//! block again once.
//!
//! Nothing here waits: the reconciler hands over what it found ([`Found`]) and the events
//! are queued by a spawned task that first asks git for the manifests' commit; the queue is
//! the notifier's (bounded, never blocking).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::reconciler::Verdict;
use crate::apply::ApplyReport;
use crate::notify::{self, Event, EventKind, Notifier};
use crate::plan::{Change, ModelPlan, Plan};

/// What one reconcile found and did, filled in by the reconciler as it goes.
#[derive(Debug, Default)]
pub struct Found {
    /// Whether the plan was computed (a failed read plans nothing).
    planned: bool,
    /// Whether the manifests were valid (when not, pending changes are no drift).
    writable: bool,
    /// Every model planned.
    models: Vec<String>,
    /// The models in sync.
    in_sync: Vec<String>,
    /// The models left drifted: name and pending changes.
    drifted: Vec<(String, Vec<Change>)>,
    /// The models a gate holds: name, changes, failing checks.
    blocked: Vec<(String, Vec<Change>, Vec<String>)>,
    /// The changes the reconcile set out to apply.
    to_apply: Vec<Change>,
    /// The events of the apply, when there was one.
    applied: Option<Vec<Event>>,
}

impl Found {
    /// Records the reconciler's decisions: the whole plan, what it applies, what it leaves
    /// drifted and what a gate holds.
    pub fn decided(
        &mut self,
        plan: &Plan,
        to_apply: &Plan,
        drifted: &[&ModelPlan],
        blocked: &[&ModelPlan],
        writable: bool,
    ) {
        self.planned = true;
        self.writable = writable;
        self.models = plan.models.iter().map(|m| m.model.clone()).collect();
        self.in_sync = plan
            .models
            .iter()
            .filter(|m| m.is_in_sync())
            .map(|m| m.model.clone())
            .collect();
        self.drifted = drifted
            .iter()
            .map(|m| (m.model.clone(), m.changes.clone()))
            .collect();
        self.blocked = blocked
            .iter()
            .map(|m| (m.model.clone(), m.changes.clone(), failing_checks(m)))
            .collect();
        self.to_apply = to_apply
            .models
            .iter()
            .flat_map(|m| m.changes.iter().cloned())
            .collect();
    }

    /// Records the apply's outcome.
    pub fn applied(&mut self, report: &ApplyReport) {
        self.applied = Some(notify::events_of(report, None));
    }
}

/// The checks of `model`'s gates that did not pass, one line each (without the observed
/// values, so a moving value is not a new situation).
fn failing_checks(model: &ModelPlan) -> Vec<String> {
    crate::gate::failing_checks(&model.gates, crate::gate::CheckLine::Expected)
}

/// What was already sent, per model, so the same situation is not sent twice.
#[derive(Debug, Default)]
struct Memory {
    drift: BTreeMap<String, String>,
    blocked: BTreeMap<String, String>,
    failed: BTreeMap<String, String>,
    refused: Option<String>,
    invalid: Option<Vec<String>>,
}

impl Memory {
    /// Forgets every situation of `model`.
    fn forget(&mut self, model: &str) {
        self.drift.remove(model);
        self.blocked.remove(model);
        self.failed.remove(model);
    }
}

/// Whether `key` is news for `model` in `sent` (and remembers it).
fn is_new(sent: &mut BTreeMap<String, String>, model: &str, key: String) -> bool {
    if sent.get(model) == Some(&key) {
        return false;
    }
    sent.insert(model.to_owned(), key);
    true
}

/// The daemon's notifications: the notifier and what was sent. Cheap to clone; clones
/// share the memory.
#[derive(Debug, Clone)]
pub struct Notifications {
    notifier: Notifier,
    /// The desired-state directory, for the commit.
    dir: PathBuf,
    /// The environment named in events (`None` without a project file).
    environment: Option<String>,
    memory: Arc<Mutex<Memory>>,
}

impl Notifications {
    /// Notifications through `notifier`, naming the commit `dir` is checked out at.
    pub fn new(notifier: Notifier, dir: PathBuf) -> Self {
        Notifications {
            notifier,
            dir,
            environment: None,
            memory: Arc::new(Mutex::new(Memory::default())),
        }
    }

    /// Sends nothing.
    pub fn disabled() -> Self {
        Notifications::new(Notifier::disabled(), PathBuf::new())
    }

    /// Names `environment` in every event.
    pub fn with_environment(mut self, environment: Option<String>) -> Self {
        self.environment = environment;
        self
    }

    /// After a reconcile: the events of what it found and did that were not sent before.
    pub fn reconciled(&self, found: &Found, verdict: &Verdict) {
        if !self.notifier.is_enabled() {
            return;
        }
        let Ok(mut memory) = self.memory.lock() else {
            return;
        };
        let events = news(&mut memory, found, verdict);
        drop(memory);
        self.send(events);
    }

    /// After the manifests were read: `Some(problems)` when they are invalid (sent once per
    /// distinct set), `None` when they are valid.
    pub fn manifests(&self, problems: Option<&[String]>) {
        if !self.notifier.is_enabled() {
            return;
        }
        let Ok(mut memory) = self.memory.lock() else {
            return;
        };
        let Some(problems) = problems else {
            memory.invalid = None;
            return;
        };
        if memory.invalid.as_deref() == Some(problems) {
            return;
        }
        memory.invalid = Some(problems.to_vec());
        drop(memory);
        let first = problems.first().map(String::as_str).unwrap_or_default();
        self.send(vec![event(
            EventKind::Invalid,
            None,
            Vec::new(),
            Some(format!(
                "the manifests are invalid ({} problem(s)); the last valid desired state is kept \
                 and nothing is applied until they are fixed; first: {first}",
                problems.len()
            )),
        )]);
    }

    /// Queues `events` once the commit is known, without waiting for it.
    fn send(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let notifier = self.notifier.clone();
        let dir = self.dir.clone();
        let environment = self.environment.clone();
        tokio::spawn(async move {
            let commit = crate::git::head_commit(&dir).await;
            for mut event in events {
                event.environment.clone_from(&environment);
                if event.commit.is_none() {
                    event.commit.clone_from(&commit);
                }
                notifier.notify(event);
            }
        });
    }
}

fn event(
    kind: EventKind,
    model: Option<&str>,
    changes: Vec<Change>,
    detail: Option<String>,
) -> Event {
    Event {
        event: kind,
        environment: None,
        model: model.map(str::to_owned),
        changes,
        commit: None,
        detail,
    }
}

/// A list of changes as a dedup key.
fn key(changes: &[Change]) -> String {
    serde_json::to_string(changes).unwrap_or_default()
}

/// The events of `found` that `memory` has not seen, remembering them.
fn news(memory: &mut Memory, found: &Found, verdict: &Verdict) -> Vec<Event> {
    let mut events = Vec::new();
    if found.planned {
        // Models no longer managed are forgotten.
        let planned: std::collections::BTreeSet<&str> =
            found.models.iter().map(String::as_str).collect();
        for sent in [&mut memory.drift, &mut memory.blocked, &mut memory.failed] {
            sent.retain(|model, _| planned.contains(model.as_str()));
        }
        for model in &found.in_sync {
            memory.forget(model);
        }
        for (model, changes, checks) in &found.blocked {
            memory.drift.remove(model);
            memory.failed.remove(model);
            let dedup = format!("{}{}", key(changes), checks.join("\n"));
            if is_new(&mut memory.blocked, model, dedup) {
                events.push(event(
                    EventKind::Blocked,
                    Some(model),
                    changes.clone(),
                    Some(format!("held by a promotion gate: {}", checks.join("; "))),
                ));
            }
        }
        // While the manifests are invalid, pending changes are not drift: `invalid` says it.
        if found.writable {
            for (model, changes) in &found.drifted {
                memory.blocked.remove(model);
                if is_new(&mut memory.drift, model, key(changes)) {
                    events.push(event(
                        EventKind::Drift,
                        Some(model),
                        changes.clone(),
                        Some(
                            "the registry was changed outside the manifests; not reverted \
                             (--self-heal reverts drift)"
                                .to_owned(),
                        ),
                    ));
                }
            }
        }
    }
    match &found.applied {
        Some(applied) => {
            memory.refused = None;
            for applied_event in applied {
                let model = applied_event.model.as_deref().unwrap_or_default();
                match applied_event.event {
                    EventKind::Failed => {
                        if is_new(&mut memory.failed, model, key(&applied_event.changes)) {
                            events.push(applied_event.clone());
                        }
                    }
                    _ => {
                        memory.forget(model);
                        events.push(applied_event.clone());
                    }
                }
            }
        }
        None => match verdict {
            // Planned changes, no apply, a failure: the plan was refused (--max-changes).
            Verdict::Failure(message)
                if !found.to_apply.is_empty() && memory.refused.as_ref() != Some(message) =>
            {
                memory.refused = Some(message.clone());
                events.push(event(
                    EventKind::Failed,
                    None,
                    found.to_apply.clone(),
                    Some(message.clone()),
                ));
            }
            Verdict::Failure(_) if !found.to_apply.is_empty() => {}
            _ if found.planned && found.to_apply.is_empty() => memory.refused = None,
            _ => {}
        },
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{Convergence, ModelReport, Outcome, OutcomeStatus};
    use crate::plan::{Action, Reason};

    fn change(to: u64) -> Change {
        Change {
            action: Action::SetAlias {
                alias: "champion".into(),
                from: Some(1),
                to,
            },
            reason: Reason::AliasMoved,
        }
    }

    fn model_plan(name: &str, changes: Vec<Change>) -> ModelPlan {
        ModelPlan {
            model: name.into(),
            manifest: format!("{name}.yaml").into(),
            changes,
            basis: None,
            gates: Vec::new(),
        }
    }

    /// A reconcile that found `drifted` (each left alone) and `in_sync`.
    fn resync(drifted: &[(&str, u64)], in_sync: &[&str]) -> Found {
        let mut plan = Plan::default();
        for (name, to) in drifted {
            plan.models.push(model_plan(name, vec![change(*to)]));
        }
        for name in in_sync {
            plan.models.push(model_plan(name, Vec::new()));
        }
        let drifted: Vec<&ModelPlan> = plan.models.iter().filter(|m| !m.is_in_sync()).collect();
        let mut found = Found::default();
        found.decided(&plan, &Plan::default(), &drifted, &[], true);
        found
    }

    fn kinds(events: &[Event]) -> Vec<(EventKind, Option<String>)> {
        events
            .iter()
            .map(|event| (event.event, event.model.clone()))
            .collect()
    }

    #[test]
    fn drift_is_sent_once_per_distinct_drift_until_the_model_is_in_sync() {
        let mut memory = Memory::default();
        let ok = Verdict::Success;
        let first = news(&mut memory, &resync(&[("a", 2)], &["b"]), &ok);
        assert_eq!(kinds(&first), vec![(EventKind::Drift, Some("a".into()))]);
        // The same drift at the next resyncs: nothing.
        assert!(news(&mut memory, &resync(&[("a", 2)], &["b"]), &ok).is_empty());
        assert!(news(&mut memory, &resync(&[("a", 2)], &["b"]), &ok).is_empty());
        // Another drift of the same model is news.
        let other = news(&mut memory, &resync(&[("a", 3)], &["b"]), &ok);
        assert_eq!(kinds(&other), vec![(EventKind::Drift, Some("a".into()))]);
        // Fixed, then the same drift again: news again.
        assert!(news(&mut memory, &resync(&[], &["a", "b"]), &ok).is_empty());
        let again = news(&mut memory, &resync(&[("a", 3)], &["b"]), &ok);
        assert_eq!(again.len(), 1);
        // While the manifests are invalid, pending changes are not drift.
        let mut invalid = resync(&[("b", 5)], &["a"]);
        invalid.writable = false;
        assert!(news(&mut memory, &invalid, &ok).is_empty());
    }

    #[test]
    fn failures_are_sent_once_until_the_model_converges_and_refusals_once() {
        let mut memory = Memory::default();
        let failed_report = ApplyReport {
            models: vec![ModelReport {
                model: "a".into(),
                manifest: "a.yaml".into(),
                status: Convergence::Failed,
                replanned: false,
                outcomes: vec![Outcome {
                    change: change(2),
                    result: OutcomeStatus::Failed {
                        error: "HTTP 500".into(),
                    },
                    annotation_error: None,
                    registered: None,
                }],
                error: Some("did not converge".into()),
                remaining: vec![change(2)],
                diagnostics: Vec::new(),
            }],
            interrupted: false,
        };
        // Model `a` is planned and applied; the apply reports `report`.
        let applying = |report: &ApplyReport| {
            let mut plan = Plan::default();
            plan.models.push(model_plan("a", vec![change(2)]));
            let mut found = Found::default();
            found.decided(&plan, &plan, &[], &[], true);
            found.applied(report);
            found
        };
        let failing = || applying(&failed_report);
        let failure = Verdict::Failure("1 model(s) did not converge".into());
        let first = news(&mut memory, &failing(), &failure);
        assert_eq!(kinds(&first), vec![(EventKind::Failed, Some("a".into()))]);
        assert_eq!(first[0].detail.as_deref(), Some("did not converge"));
        assert!(
            news(&mut memory, &failing(), &failure).is_empty(),
            "a retry"
        );

        let mut converged_report = failed_report.clone();
        converged_report.models[0].status = Convergence::Converged;
        converged_report.models[0].outcomes[0].result = OutcomeStatus::Applied;
        let applied = news(&mut memory, &applying(&converged_report), &Verdict::Success);
        assert_eq!(
            kinds(&applied),
            vec![(EventKind::Applied, Some("a".into()))]
        );
        assert_eq!(
            news(&mut memory, &failing(), &failure).len(),
            1,
            "news again"
        );

        // A plan refused by --max-changes: once per refusal.
        let mut plan = Plan::default();
        plan.models.push(model_plan("c", vec![change(4)]));
        let mut refused = Found::default();
        refused.decided(&plan, &plan, &[], &[], true);
        let message = Verdict::Failure("more than --max-changes 0".into());
        let sent = news(&mut memory, &refused, &message);
        assert_eq!(kinds(&sent), vec![(EventKind::Failed, None)]);
        assert_eq!(sent[0].changes.len(), 1);
        assert!(news(&mut memory, &refused, &message).is_empty());
    }

    #[test]
    fn a_block_is_sent_once_per_distinct_block() {
        use crate::gate::{GateCheck, GateReport, Verdict as Check};
        let blocked_plan = |expected: &str, observed: &str| {
            let mut plan = Plan::default();
            let mut model = model_plan("g", vec![change(2)]);
            model.gates.push(GateReport {
                change: 0,
                target: crate::target::Target::Alias("champion".into()),
                version: 2,
                checks: vec![GateCheck {
                    check: "metric val_accuracy".into(),
                    expected: expected.into(),
                    observed: observed.into(),
                    verdict: Check::Fail,
                }],
            });
            plan.models.push(model);
            plan
        };
        let found = |plan: &Plan| {
            let blocked: Vec<&ModelPlan> = plan.models.iter().collect();
            let mut found = Found::default();
            found.decided(plan, &Plan::default(), &[], &blocked, true);
            found
        };
        let mut memory = Memory::default();
        let ok = Verdict::Success;
        let first = news(&mut memory, &found(&blocked_plan(">= 0.9", "0.8")), &ok);
        assert_eq!(kinds(&first), vec![(EventKind::Blocked, Some("g".into()))]);
        assert!(
            first[0]
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("metric val_accuracy expected >= 0.9")),
            "{first:?}"
        );
        // The same block, even with another observed value: nothing new.
        assert!(news(&mut memory, &found(&blocked_plan(">= 0.9", "0.85")), &ok).is_empty());
        // The gate changed: news.
        assert_eq!(
            news(&mut memory, &found(&blocked_plan(">= 0.95", "0.85")), &ok).len(),
            1
        );
    }
}
