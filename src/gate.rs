//! Promotion gates: judging one version about to enter a gated target. Pure: the evidence
//! (metrics read by [`crate::evidence`]), the registry snapshot (tags, audit tags, who
//! holds the target) and "now" are inputs.
//!
//! Every declared check yields one [`GateCheck`] with what was expected, what was observed
//! and the verdict, passing checks included, so a reviewer sees the whole case. A check
//! that cannot be judged (a metric never logged, a run that cannot be read) is
//! [`Verdict::Unverifiable`], which blocks exactly like [`Verdict::Fail`]: a promotion on
//! missing evidence is a promotion without evidence.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::apply::{AUDIT_TAG, AliasAuditRecord, alias_audit_tag};
use crate::evidence::{Evidence, VersionEvidence, holder};
use crate::manifest::{Direction, Gate, Soak, TagRequirement};
use crate::registry::ObservedModel;
use crate::stage::Stage;
use crate::target::Target;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The evidence meets the check.
    Pass,
    /// The evidence contradicts the check.
    Fail,
    /// The evidence could not be read or does not exist.
    Unverifiable,
}

impl Verdict {
    /// As shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::Unverifiable => "UNVERIFIABLE",
        }
    }

    /// Whether the verdict lets the version in.
    pub fn passed(self) -> bool {
        self == Verdict::Pass
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One check of a gate, judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateCheck {
    /// What is checked: `metric val_accuracy`, `tag validated`, `soak in Staging`,
    /// `noRegression val_accuracy`.
    pub check: String,
    /// What the gate requires: `>= 0.9`.
    pub expected: String,
    /// What the registry showed: `0.93`, `(unset)`, or why nothing could be observed.
    pub observed: String,
    /// The verdict.
    pub verdict: Verdict,
}

/// The gate of one change: the version entering a target, and every check of its gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateReport {
    /// The index of the change in the model's plan.
    #[serde(skip)]
    pub change: usize,
    /// The target entered.
    pub target: Target,
    /// The version entering it (a registration's placeholder,
    /// [`crate::select::placeholder`], is written `null` in JSON: it has no number yet).
    #[serde(serialize_with = "version_or_null")]
    pub version: u64,
    /// Every check, in the order: metrics, tags, soak, noRegression.
    pub checks: Vec<GateCheck>,
}

/// A version number, or `null` for a registration's placeholder.
fn version_or_null<S: serde::Serializer>(version: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    if crate::select::is_placeholder(*version) {
        serializer.serialize_none()
    } else {
        serializer.serialize_u64(*version)
    }
}

impl GateReport {
    /// The version entering, for people: `version 4`, or `the new version` for a
    /// registration.
    pub fn entering(&self) -> String {
        if crate::select::is_placeholder(self.version) {
            "the new version".to_owned()
        } else {
            format!("version {}", self.version)
        }
    }

    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|check| check.verdict.passed())
    }
}

/// How much of a failing check [`failing_checks`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckLine {
    /// What entered where, the check and what it expected: a line that stays the same while
    /// the observed value moves (notifications compare these).
    Expected,
    /// Also what was observed, and the verdict (logs, the status page).
    Observed,
}

/// The checks of `gates` that did not pass, one line each:
/// `version 4 → Production: metric auc expected >= 0.9, observed 0.8 (fail)`.
pub fn failing_checks(gates: &[GateReport], line: CheckLine) -> Vec<String> {
    gates
        .iter()
        .flat_map(|gate| {
            gate.checks
                .iter()
                .filter(|check| !check.verdict.passed())
                .map(move |check| {
                    let head = format!(
                        "{} → {}: {} expected {}",
                        gate.entering(),
                        gate.target,
                        check.check,
                        check.expected
                    );
                    match line {
                        CheckLine::Expected => head,
                        CheckLine::Observed => format!(
                            "{head}, observed {} ({})",
                            check.observed,
                            check.verdict.as_str()
                        ),
                    }
                })
        })
        .collect()
}

/// Judges `version` of `model` entering `target` against `gate`.
pub fn judge(
    gate: &Gate,
    target: &Target,
    version: u64,
    model: &ObservedModel,
    evidence: &Evidence,
    now: OffsetDateTime,
) -> Vec<GateCheck> {
    let mut checks = Vec::new();
    let own = evidence.get(&model.name, version);
    for (name, threshold) in &gate.metrics {
        let (observed, verdict) = match metric(own, name) {
            Ok(value) => (
                value.to_string(),
                verdict_of(threshold.comparator.holds(value, threshold.bound)),
            ),
            Err(why) => (why, Verdict::Unverifiable),
        };
        checks.push(GateCheck {
            check: format!("metric {name}"),
            expected: threshold.to_string(),
            observed,
            verdict,
        });
    }
    let tags = model.versions.get(&version).map(|v| &v.tags);
    for (key, requirement) in &gate.tags {
        let value = tags.and_then(|tags| tags.get(key));
        let verdict = match (requirement, value) {
            (_, None) => Verdict::Fail,
            (TagRequirement::Any, Some(_)) => Verdict::Pass,
            (TagRequirement::Value(wanted), Some(value)) => verdict_of(wanted == value),
        };
        checks.push(GateCheck {
            check: format!("tag {key}"),
            expected: match requirement {
                TagRequirement::Any => "* (any value)".to_owned(),
                TagRequirement::Value(value) => value.clone(),
            },
            observed: value.cloned().unwrap_or_else(|| "(unset)".to_owned()),
            verdict,
        });
    }
    if let Some(soak) = &gate.soak {
        checks.push(soak_check(soak, version, model, now));
    }
    if let Some(rule) = &gate.no_regression {
        let check = format!("noRegression {}", rule.metric);
        let candidate = metric(own, &rule.metric);
        checks.push(match holder(model, target, version) {
            None => GateCheck {
                check,
                expected: format!("not worse than the current holder of {target}"),
                observed: format!("no version holds {target} now"),
                verdict: Verdict::Pass,
            },
            Some(current) => match metric(evidence.get(&model.name, current), &rule.metric) {
                Err(why) => GateCheck {
                    check,
                    expected: format!("not worse than version {current} (its value: {why})"),
                    observed: candidate.map_or_else(|why| why, |v| v.to_string()),
                    verdict: Verdict::Unverifiable,
                },
                Ok(base) => {
                    let (bound, comparator) = match rule.direction {
                        Direction::Higher => (base - rule.tolerance, ">="),
                        Direction::Lower => (base + rule.tolerance, "<="),
                    };
                    let expected = format!(
                        "{comparator} {bound} (version {current}: {base}, tolerance {})",
                        rule.tolerance
                    );
                    match candidate {
                        Err(why) => GateCheck {
                            check,
                            expected,
                            observed: why,
                            verdict: Verdict::Unverifiable,
                        },
                        Ok(value) => GateCheck {
                            check,
                            expected,
                            observed: value.to_string(),
                            verdict: verdict_of(match rule.direction {
                                Direction::Higher => value >= bound,
                                Direction::Lower => value <= bound,
                            }),
                        },
                    }
                }
            },
        });
    }
    checks
}

fn verdict_of(holds: bool) -> Verdict {
    if holds { Verdict::Pass } else { Verdict::Fail }
}

/// The latest value of `name` in `evidence`, or why it is not known.
fn metric(evidence: Option<&VersionEvidence>, name: &str) -> Result<f64, String> {
    let Some(evidence) = evidence else {
        return Err("not read".to_owned());
    };
    match (evidence.metrics.get(name), &evidence.problem) {
        (Some(value), _) => Ok(*value),
        (None, Some(problem)) => Err(problem.clone()),
        (None, None) => Err("(not logged)".to_owned()),
    }
}

/// `soak`: when the version entered `soak.within`, according to mlreg's audit tags.
fn soak_check(soak: &Soak, version: u64, model: &ObservedModel, now: OffsetDateTime) -> GateCheck {
    let check = format!("soak in {}", soak.within);
    let expected = format!("at least {}", soak.written);
    let tags = model.versions.get(&version).map(|v| &v.tags);
    let entered: Result<String, String> = match &soak.within {
        Target::Stage(stage) => {
            let record = tags
                .and_then(|tags| tags.get(AUDIT_TAG))
                .and_then(|value| serde_json::from_str::<TransitionRecord>(value).ok());
            match record {
                None => Err(format!("no {AUDIT_TAG} record")),
                Some(record) if record.to != *stage => Err(format!(
                    "last recorded transition is to {}, not {stage}",
                    record.to
                )),
                Some(record) => Ok(record.when),
            }
        }
        Target::Alias(alias) => {
            let key = alias_audit_tag(alias);
            match tags
                .and_then(|tags| tags.get(&key))
                .and_then(|value| AliasAuditRecord::parse(value))
            {
                None => Err(format!("no {key} record")),
                Some(record) => Ok(record.when),
            }
        }
    };
    let (observed, verdict) = match entered {
        Err(why) => (why, Verdict::Fail),
        Ok(when) => match OffsetDateTime::parse(&when, &Rfc3339) {
            Err(_) => (format!("unreadable time `{when}`"), Verdict::Fail),
            Ok(at) => {
                let elapsed = Duration::try_from(now - at).unwrap_or(Duration::ZERO);
                (
                    format!("{} (since {when})", format_elapsed(elapsed)),
                    verdict_of(elapsed >= soak.duration),
                )
            }
        },
    };
    GateCheck {
        check,
        expected,
        observed,
        verdict,
    }
}

/// The fields of an `mlreg.transition` record a soak gate reads.
#[derive(serde::Deserialize)]
struct TransitionRecord {
    to: Stage,
    when: String,
}

/// `26h 3m`, `4m 5s`, `7s`: elapsed time at a useful precision.
pub fn format_elapsed(elapsed: Duration) -> String {
    let seconds = elapsed.as_secs();
    let (hours, minutes, secs) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{hours}h {minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m {secs}s")
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::evidence::{self, VersionEvidence};
    use crate::manifest::{Comparator, Gate, NoRegression, Threshold, fixture};
    use crate::plan::{Selection, plan};
    use crate::registry::fake::{FakeRegistry, observed_model};
    use crate::registry::{Registry as _, Snapshot};
    use Stage::{None as NoStage, Production, Staging};

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).expect("time")
    }

    fn metrics_gate(name: &str, comparator: Comparator, bound: f64) -> Gate {
        Gate {
            metrics: BTreeMap::from([(name.to_owned(), Threshold { comparator, bound })]),
            ..Gate::default()
        }
    }

    fn verdicts(checks: &[GateCheck]) -> Vec<(String, String, Verdict)> {
        checks
            .iter()
            .map(|c| (c.check.clone(), c.observed.clone(), c.verdict))
            .collect()
    }

    fn with_metrics(metrics: &[(&str, f64)]) -> VersionEvidence {
        VersionEvidence {
            metrics: metrics.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            problem: None,
        }
    }

    #[test]
    fn comparators_hold_as_written() {
        assert!(Comparator::AtLeast.holds(0.9, 0.9));
        assert!(!Comparator::Above.holds(0.9, 0.9));
        assert!(Comparator::AtMost.holds(50.0, 50.0));
        assert!(Comparator::Below.holds(49.0, 50.0));
        assert!(Comparator::Equal.holds(1.0, 1.0));
    }

    #[test]
    fn metrics_pass_fail_and_missing_is_unverifiable() {
        let model = observed_model("m", &[(2, NoStage)]);
        let mut evidence = Evidence::default();
        evidence.insert("m", 2, with_metrics(&[("acc", 0.93), ("lat", 70.0)]));
        let mut gate = metrics_gate("acc", Comparator::AtLeast, 0.9);
        gate.metrics.insert(
            "lat".into(),
            Threshold {
                comparator: Comparator::AtMost,
                bound: 50.0,
            },
        );
        gate.metrics.insert(
            "f1".into(),
            Threshold {
                comparator: Comparator::Above,
                bound: 0.5,
            },
        );
        let target = Target::Stage(Production);
        let checks = judge(
            &gate,
            &target,
            2,
            &model,
            &evidence,
            at("2026-01-01T00:00:00Z"),
        );
        assert_eq!(
            verdicts(&checks),
            vec![
                ("metric acc".into(), "0.93".into(), Verdict::Pass),
                (
                    "metric f1".into(),
                    "(not logged)".into(),
                    Verdict::Unverifiable
                ),
                ("metric lat".into(), "70".into(), Verdict::Fail),
            ]
        );
    }

    #[test]
    fn tags_need_the_value_or_any_value() {
        let mut model = observed_model("m", &[(2, NoStage)]);
        if let Some(version) = model.versions.get_mut(&2) {
            version.tags.insert("validated".into(), "false".into());
            version.tags.insert("approved_by".into(), "ana".into());
        }
        let gate = Gate {
            tags: BTreeMap::from([
                ("validated".into(), TagRequirement::Value("true".into())),
                ("approved_by".into(), TagRequirement::Any),
                ("ticket".into(), TagRequirement::Any),
            ]),
            ..Gate::default()
        };
        let checks = judge(
            &gate,
            &Target::Stage(Production),
            2,
            &model,
            &Evidence::default(),
            at("2026-01-01T00:00:00Z"),
        );
        assert_eq!(
            verdicts(&checks),
            vec![
                ("tag approved_by".into(), "ana".into(), Verdict::Pass),
                ("tag ticket".into(), "(unset)".into(), Verdict::Fail),
                ("tag validated".into(), "false".into(), Verdict::Fail),
            ]
        );
    }

    #[test]
    fn soak_reads_the_audit_records() {
        let mut model = observed_model("m", &[(2, Staging), (3, Staging)]);
        if let Some(version) = model.versions.get_mut(&2) {
            version.tags.insert(
                AUDIT_TAG.into(),
                r#"{"from":"None","to":"Staging","when":"2026-01-01T00:00:00Z","manifest":"m.yaml"}"#
                    .into(),
            );
            version.tags.insert(
                alias_audit_tag("challenger"),
                r#"{"previous":null,"when":"2026-01-01T20:00:00Z","manifest":"m.yaml","commit":null}"#
                    .into(),
            );
        }
        let soak = |within: Target| Gate {
            soak: Some(Soak {
                within,
                written: "24h".into(),
                duration: Duration::from_secs(24 * 3600),
            }),
            ..Gate::default()
        };
        let now = at("2026-01-02T06:00:00Z");
        let target = Target::Stage(Production);
        let evidence = Evidence::default();
        let staged = judge(
            &soak(Target::Stage(Staging)),
            &target,
            2,
            &model,
            &evidence,
            now,
        );
        assert_eq!(staged[0].verdict, Verdict::Pass, "{staged:?}");
        assert!(staged[0].observed.starts_with("30h 0m"), "{staged:?}");
        let alias = judge(
            &soak(Target::Alias("challenger".into())),
            &target,
            2,
            &model,
            &evidence,
            now,
        );
        assert_eq!(alias[0].verdict, Verdict::Fail, "{alias:?}");
        assert!(alias[0].observed.starts_with("10h 0m"), "{alias:?}");
        let none = judge(
            &soak(Target::Stage(Staging)),
            &target,
            3,
            &model,
            &evidence,
            now,
        );
        assert_eq!(
            verdicts(&none),
            vec![(
                "soak in Staging".into(),
                "no mlreg.transition record".into(),
                Verdict::Fail
            )]
        );
    }

    #[test]
    fn no_regression_compares_with_the_current_holder() {
        let model = observed_model("m", &[(1, Production), (2, Staging)]);
        let gate = |direction| Gate {
            no_regression: Some(NoRegression {
                metric: "acc".into(),
                direction,
                tolerance: 0.01,
            }),
            ..Gate::default()
        };
        let mut evidence = Evidence::default();
        evidence.insert("m", 1, with_metrics(&[("acc", 0.90)]));
        evidence.insert("m", 2, with_metrics(&[("acc", 0.895)]));
        let now = at("2026-01-01T00:00:00Z");
        let target = Target::Stage(Production);
        let higher = judge(&gate(Direction::Higher), &target, 2, &model, &evidence, now);
        assert_eq!(higher[0].verdict, Verdict::Pass, "{higher:?}");
        let lower = judge(&gate(Direction::Lower), &target, 2, &model, &evidence, now);
        assert_eq!(lower[0].verdict, Verdict::Pass, "{lower:?}");
        evidence.insert("m", 2, with_metrics(&[("acc", 0.85)]));
        let worse = judge(&gate(Direction::Higher), &target, 2, &model, &evidence, now);
        assert_eq!(worse[0].verdict, Verdict::Fail, "{worse:?}");
        // Nobody holds the alias: nothing to regress from.
        let fresh = judge(
            &gate(Direction::Higher),
            &Target::Alias("champion".into()),
            2,
            &model,
            &evidence,
            now,
        );
        assert_eq!(fresh[0].verdict, Verdict::Pass);
        assert_eq!(fresh[0].observed, "no version holds @champion now");
    }

    fn gated_registry() -> (FakeRegistry, crate::manifest::DesiredState) {
        let registry = FakeRegistry::default();
        registry.add_model("m", &[(1, Production), (2, Staging)]);
        registry.add_model("other", &[(1, NoStage)]);
        registry.mutate(|snapshot: &mut Snapshot| {
            for (name, version, run) in [("m", 1, "r1"), ("m", 2, "r2"), ("other", 1, "r3")] {
                if let Some(v) = snapshot
                    .models
                    .get_mut(name)
                    .and_then(|m| m.versions.get_mut(&version))
                {
                    v.run_id = run.into();
                }
            }
        });
        let mut gate = metrics_gate("acc", Comparator::AtLeast, 0.9);
        gate.no_regression = Some(NoRegression {
            metric: "acc".into(),
            direction: Direction::Higher,
            tolerance: 0.0,
        });
        let desired = fixture::desired([
            fixture::model("m")
                .stage(Production, &[2])
                .gate(Target::Stage(Production), gate)
                .build(),
            fixture::model("other").stage(Staging, &[1]).build(),
        ]);
        (registry, desired)
    }

    #[tokio::test]
    async fn evidence_is_read_only_for_gated_entries_and_blocks_when_unreadable() {
        let (registry, desired) = gated_registry();
        registry.add_run("r1", &[("acc", 0.91)]);
        registry.add_run("r2", &[("acc", 0.95)]);
        let snapshot = registry.snapshot().await.expect("snapshot");
        let now = at("2026-01-01T00:00:00Z");
        let plan =
            evidence::plan_with_gates(&registry, &desired, &snapshot, &Selection::default(), now)
                .await
                .expect("plan");
        // The entering version and the current holder; nothing for the ungated model.
        assert_eq!(registry.evidence_reads(), 2);
        assert!(!plan.is_blocked(), "{plan:?}");
        let gated = &plan.models[0];
        assert_eq!(gated.gates.len(), 1);
        assert!(gated.gates[0].passed());

        registry.fail_run("r2");
        let blocked =
            evidence::plan_with_gates(&registry, &desired, &snapshot, &Selection::default(), now)
                .await
                .expect("plan");
        assert!(blocked.is_blocked());
        assert_eq!(blocked.blocked_models(), vec!["m"]);
        let check = &blocked.models[0].gates[0].checks[0];
        assert_eq!(check.verdict, Verdict::Unverifiable);
        assert!(check.observed.contains("could not be read"), "{check:?}");
    }

    #[tokio::test]
    async fn logged_model_metrics_complete_the_run_and_no_gate_reads_nothing() {
        let (registry, desired) = gated_registry();
        registry.add_run("r1", &[("acc", 0.91)]);
        registry.add_run("r2", &[]);
        registry.edit_version("m", 2, |v| v.source = "models:/m-abc".into());
        registry.add_logged_model("m-abc", &[("acc", 0.92)]);
        let snapshot = registry.snapshot().await.expect("snapshot");
        let now = at("2026-01-01T00:00:00Z");
        let plan =
            evidence::plan_with_gates(&registry, &desired, &snapshot, &Selection::default(), now)
                .await
                .expect("plan");
        assert!(!plan.is_blocked(), "{plan:?}");
        assert_eq!(plan.models[0].gates[0].checks[0].observed, "0.92");

        let before = registry.evidence_reads();
        let mut ungated = desired.clone();
        if let Some(model) = ungated.models.get_mut("m") {
            model.spec.gates.clear();
        }
        let plan = plan_with(&registry, &ungated, &snapshot, now).await;
        assert!(plan.models.iter().all(|m| m.gates.is_empty()));
        assert_eq!(registry.evidence_reads(), before);
    }

    async fn plan_with(
        registry: &FakeRegistry,
        desired: &crate::manifest::DesiredState,
        snapshot: &Snapshot,
        now: OffsetDateTime,
    ) -> crate::plan::Plan {
        evidence::plan_with_gates(registry, desired, snapshot, &Selection::default(), now)
            .await
            .expect("plan")
    }

    #[test]
    fn the_planner_judges_only_entries_into_gated_targets() {
        let desired = fixture::desired([fixture::model("m")
            .stage(Production, &[1])
            .stage(Staging, &[2])
            .gate(
                Target::Stage(Production),
                metrics_gate("acc", Comparator::AtLeast, 0.9),
            )
            .build()]);
        let mut snapshot = Snapshot::default();
        snapshot.models.insert(
            "m".into(),
            observed_model("m", &[(1, Production), (2, NoStage)]),
        );
        let plan = plan(
            &desired,
            &snapshot,
            &Selection::default(),
            &Evidence::default(),
            at("2026-01-01T00:00:00Z"),
        )
        .expect("plan");
        // Version 1 is already in Production (never re-judged); version 2 enters Staging,
        // which has no gate.
        assert!(plan.models[0].gates.is_empty(), "{plan:?}");
        assert!(!plan.is_blocked());
    }
}
