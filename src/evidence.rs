//! The evidence promotion gates judge: the metrics of the versions about to enter a gated
//! target, and of the versions holding such targets now (for `noRegression`).
//!
//! [`needed`] says, from a plan computed without evidence, which versions need which
//! metrics; [`read`] reads them through the [`Registry`]: one `runs/get` per version, and a
//! `logged-models/{id}` read only when the run lacks a metric and the version comes from an
//! MLflow 3 logged model (`source = models:/m-…`). Nothing is read when no gate applies, and
//! nothing for gates that only check tags or soak time (those are in the snapshot).
//!
//! Reading never fails as a whole: a version whose run cannot be read carries the reason,
//! and the gates that needed it are unverifiable, which blocks like a failure.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::StreamExt as _;

use crate::manifest::DesiredState;
use crate::plan::{Plan, gated_entries};
use crate::registry::{Metrics, ObservedVersion, Registry, Snapshot};
use crate::target::Target;

/// How many evidence reads run at once.
const READS_IN_FLIGHT: usize = 8;

/// The metrics read for each (model, version), or why they could not be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evidence {
    versions: BTreeMap<(String, u64), VersionEvidence>,
}

/// What was read about one version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VersionEvidence {
    /// The latest value of each metric found (the run's, completed by the logged model's).
    pub metrics: Metrics,
    /// Why a metric absent from `metrics` cannot be judged (the run could not be read, the
    /// version has no run); `None` when everything that exists was read.
    pub problem: Option<String>,
}

impl Evidence {
    /// Records what was read about `version` of `model` (tests, and [`read`]).
    pub fn insert(&mut self, model: &str, version: u64, evidence: VersionEvidence) {
        self.versions.insert((model.to_owned(), version), evidence);
    }

    /// What was read about `version` of `model`, if it was read.
    pub fn get(&self, model: &str, version: u64) -> Option<&VersionEvidence> {
        self.versions.get(&(model.to_owned(), version))
    }

    /// How many versions were read.
    pub fn len(&self) -> usize {
        self.versions.len()
    }

    /// Whether nothing was read.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }
}

/// The metrics each (model, version) must show for the gates of `plan`: every version
/// entering a gated target that checks metrics, and the current holder of a target with a
/// `noRegression` gate.
pub fn needed(
    desired: &DesiredState,
    observed: &Snapshot,
    plan: &Plan,
) -> BTreeMap<(String, u64), BTreeSet<String>> {
    let mut needed: BTreeMap<(String, u64), BTreeSet<String>> = BTreeMap::new();
    for model_plan in &plan.models {
        let Some(model) = desired.models.get(&model_plan.model) else {
            continue;
        };
        let entries = model_plan
            .changes
            .iter()
            .enumerate()
            .flat_map(|(index, change)| gated_entries(index, &change.action));
        for (target, version) in entries {
            let Some(gate) = model.spec.gates.get(&target) else {
                continue;
            };
            let mut metrics: BTreeSet<String> = gate.metrics.keys().cloned().collect();
            if let Some(rule) = &gate.no_regression {
                metrics.insert(rule.metric.clone());
                let holder = observed
                    .models
                    .get(&model.name)
                    .and_then(|observed| holder(observed, &target, version));
                if let Some(holder) = holder {
                    needed
                        .entry((model.name.clone(), holder))
                        .or_default()
                        .insert(rule.metric.clone());
                }
            }
            if !metrics.is_empty() {
                needed
                    .entry((model.name.clone(), version))
                    .or_default()
                    .extend(metrics);
            }
        }
    }
    needed
}

/// The version that holds `target` now, other than `entering`: the alias's version, or the
/// newest version in the stage.
pub fn holder(
    observed: &crate::registry::ObservedModel,
    target: &Target,
    entering: u64,
) -> Option<u64> {
    match target {
        Target::Alias(alias) => observed
            .aliases
            .get(alias)
            .copied()
            .filter(|v| *v != entering),
        Target::Stage(stage) => observed
            .versions_in(*stage)
            .map(|v| v.version)
            .filter(|v| *v != entering)
            .max(),
    }
}

/// The MLflow 3 logged model a version was registered from (`source = models:/m-…`).
pub fn logged_model_id(version: &ObservedVersion) -> Option<&str> {
    version
        .source
        .strip_prefix("models:/")
        .filter(|id| id.starts_with("m-") && !id.contains('/'))
}

/// Reads the evidence `needed` asks for (see the module documentation).
pub async fn read<R: Registry>(
    registry: &R,
    observed: &Snapshot,
    needed: &BTreeMap<(String, u64), BTreeSet<String>>,
) -> Evidence {
    let reads = needed.iter().map(|((model, number), metrics)| async move {
        let version = observed
            .models
            .get(model)
            .and_then(|observed| observed.versions.get(number));
        let evidence = match version {
            Some(version) => read_version(registry, version, metrics).await,
            None => VersionEvidence {
                metrics: Metrics::new(),
                problem: Some(format!("version {number} is not in the registry")),
            },
        };
        ((model.clone(), *number), evidence)
    });
    let versions = futures_util::stream::iter(reads)
        .buffer_unordered(READS_IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    Evidence {
        versions: versions.into_iter().collect(),
    }
}

async fn read_version<R: Registry>(
    registry: &R,
    version: &ObservedVersion,
    wanted: &BTreeSet<String>,
) -> VersionEvidence {
    let mut evidence = VersionEvidence::default();
    if version.run_id.is_empty() {
        evidence.problem = Some(format!("version {} has no run", version.version));
    } else {
        match registry.run_metrics(&version.run_id).await {
            Ok(Some(metrics)) => evidence.metrics = metrics,
            Ok(None) => {
                evidence.problem = Some(format!("run `{}` does not exist", version.run_id));
            }
            Err(error) => {
                evidence.problem = Some(format!(
                    "run `{}` could not be read: {error}",
                    version.run_id
                ));
            }
        }
    }
    let lacking = wanted
        .iter()
        .any(|name| !evidence.metrics.contains_key(name));
    if lacking && let Some(model_id) = logged_model_id(version) {
        match registry.logged_model_metrics(model_id).await {
            Ok(Some(metrics)) => {
                for (name, value) in metrics {
                    evidence.metrics.entry(name).or_insert(value);
                }
            }
            Ok(None) => {}
            Err(error) => {
                evidence.problem = Some(format!(
                    "logged model `{model_id}` could not be read: {error}"
                ));
            }
        }
    }
    evidence
}

/// Plans with gates: a first pure plan says which versions enter gated targets and which
/// selectors need registering; what each registration registers from is read (a run or
/// logged model that does not exist refuses the plan, [`crate::select::read_sources`]),
/// the evidence is read (nothing when no gate needs metrics), and the plan is computed
/// again with it. The one sequence `plan`, `reconcile` and the daemon share.
pub async fn plan_with_gates<R: Registry>(
    registry: &R,
    desired: &DesiredState,
    observed: &Snapshot,
    selection: &crate::plan::Selection,
    now: time::OffsetDateTime,
) -> Result<Plan, Vec<crate::diagnostic::Diagnostic>> {
    let mut draft = crate::plan::plan(desired, observed, selection, &Evidence::default(), now)?;
    let registers = draft
        .changes()
        .any(|(_, change)| matches!(change.action, crate::plan::Action::Register { .. }));
    let sources = if registers {
        let sources = crate::select::read_sources(registry, desired, &draft).await?;
        crate::select::attach(&mut draft, &sources);
        sources
    } else {
        crate::select::Sources::new()
    };
    let needed = needed(desired, observed, &draft);
    if needed.is_empty() {
        return Ok(draft);
    }
    // A registration's candidate is read as a version: its run (or logged model).
    let augmented = crate::select::with_candidates(observed, &draft);
    let evidence = read(registry, &augmented, &needed).await;
    let mut plan = crate::plan::plan(desired, observed, selection, &evidence, now)?;
    crate::select::attach(&mut plan, &sources);
    Ok(plan)
}
