//! Planning: a pure function from (desired, observed, evidence, now) to an ordered list of
//! changes, each entry into a gated target judged by its gate.
//!
//! [`plan`] compares every managed model of a [`DesiredState`] with the registry's
//! [`Snapshot`] and returns a [`Plan`]: per model, the changes that make the registry match
//! the manifests, in the order they must be applied so that a declared stage is never left
//! empty while it is being replaced:
//!
//! 1. create the model;
//! 2. description and tags (model tags, then declared version tags);
//! 3. transitions into Production, then into Staging;
//! 4. alias moves, then alias removals;
//! 5. archives of versions leaving a stage;
//! 6. retention archives.
//!
//! A plan is refused as a whole (every problem is returned as a [`Diagnostic`] and nothing
//! may be applied) when a manifest references a version that does not exist, a `runId` or
//! `source` assertion fails, or a referenced version is not `READY`.
//!
//! Promotion gates ([`crate::gate`]) are judged for every change that makes a version
//! enter a gated target (a transition into the stage, an alias pointed at it); the verdicts
//! are kept with the model's plan ([`ModelPlan::gates`]). A failed or unverifiable check
//! blocks the model ([`ModelPlan::is_blocked`]); callers apply nothing when any model is
//! blocked ([`Plan::is_blocked`]). The evidence is read by the caller ([`crate::evidence`])
//! for the entries [`gated_entries`] names, and passed in with "now".
//!
//! No I/O, no clock: the same inputs always give the same plan.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use time::OffsetDateTime;

use crate::diagnostic::Diagnostic;
use crate::evidence::Evidence;
use crate::gate::{self, GateReport};
use crate::manifest::{DesiredModel, DesiredState, ModelSpec};
use crate::registry::{ObservedModel, Snapshot};
use crate::stage::Stage;
use crate::target::Target;

/// Why a change is in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The manifest declares the model, which the registry lacks.
    CreateModel,
    /// The manifest declares a different description.
    Description,
    /// The manifest declares a different tag value.
    Tag,
    /// The manifest places the version in this stage.
    Declared,
    /// The version sits in a stage the manifest does not place it in.
    NotDeclaredInStage,
    /// The manifest points the alias elsewhere (or the alias is new).
    AliasMoved,
    /// The manifest lists aliases exhaustively and leaves this one out.
    AliasRemoved,
    /// The version is unassigned and older than the newest `keepLatest`.
    Retention,
    /// The manifest places a selector no version matches.
    Selector,
}

impl Reason {
    /// The wording shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::CreateModel => "create model",
            Reason::Description => "description",
            Reason::Tag => "tag",
            Reason::Declared => "declared",
            Reason::NotDeclaredInStage => "not declared in stage",
            Reason::AliasMoved => "alias moved",
            Reason::AliasRemoved => "alias removed",
            Reason::Retention => "retention",
            Reason::Selector => "no version matches",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One write to the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Create the registered model with its description and tags.
    CreateModel {
        /// The description to set, if declared.
        description: Option<String>,
        /// The tags to set.
        tags: BTreeMap<String, String>,
    },
    /// Replace the model's description.
    SetDescription {
        /// The current description.
        from: String,
        /// The declared description.
        to: String,
    },
    /// Set a registered-model tag.
    SetModelTag {
        /// The tag key.
        key: String,
        /// The current value, if the tag exists.
        from: Option<String>,
        /// The declared value.
        to: String,
    },
    /// Set a model-version tag.
    SetVersionTag {
        /// The version.
        version: u64,
        /// The tag key.
        key: String,
        /// The current value, if the tag exists.
        from: Option<String>,
        /// The declared value.
        to: String,
    },
    /// Move a version to another stage.
    Transition {
        /// The version.
        version: u64,
        /// Its current stage.
        from: Stage,
        /// Its new stage.
        to: Stage,
    },
    /// Point an alias at a version (creating or moving it).
    SetAlias {
        /// The alias.
        alias: String,
        /// The version it points at now, if it exists.
        from: Option<u64>,
        /// The declared version.
        to: u64,
    },
    /// Delete an alias.
    DeleteAlias {
        /// The alias.
        alias: String,
        /// The version it points at now.
        version: u64,
    },
    /// Register a new version from what a selector names, then place it: move it into
    /// `stage` and point `aliases` at it (see [`crate::select`]).
    Register {
        /// The selector no version matches yet.
        selector: crate::manifest::Selector,
        /// The stage the version enters, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        stage: Option<Stage>,
        /// The aliases pointed at it.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        aliases: Vec<String>,
        /// What it is registered from, as read before applying (`None` until read).
        #[serde(skip_serializing_if = "Option::is_none")]
        source: Option<crate::registry::RegistrationSource>,
    },
}

/// The kinds of change the plan summary counts and the `mlreg_changes_applied_total` metric
/// labels; [`Action::kind`] is the one place an action is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// A transition into Staging or Production.
    Promote,
    /// A transition to Archived (or out of a declared stage).
    Archive,
    /// An alias created or moved.
    AliasMove,
    /// An alias deleted.
    AliasRemove,
    /// A model created.
    Create,
    /// A description or tag updated.
    Update,
    /// A version registered from a selector (and placed).
    Register,
}

impl ActionKind {
    /// The name used in the plan JSON summary and as the metric's `kind` label.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Promote => "promote",
            ActionKind::Archive => "archive",
            ActionKind::AliasMove => "alias_move",
            ActionKind::AliasRemove => "alias_remove",
            ActionKind::Create => "create",
            ActionKind::Update => "update",
            ActionKind::Register => "register",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Action {
    /// What kind of change this is, for summaries and metrics.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::CreateModel { .. } => ActionKind::Create,
            Action::SetDescription { .. }
            | Action::SetModelTag { .. }
            | Action::SetVersionTag { .. } => ActionKind::Update,
            Action::Transition { to, .. } if to.is_declarable() => ActionKind::Promote,
            Action::Transition { .. } => ActionKind::Archive,
            Action::SetAlias { .. } => ActionKind::AliasMove,
            Action::DeleteAlias { .. } => ActionKind::AliasRemove,
            Action::Register { .. } => ActionKind::Register,
        }
    }

    /// Whether this moves a version into Staging or Production.
    pub fn is_promotion(&self) -> bool {
        matches!(self, Action::Transition { to, .. } if to.is_declarable())
    }

    /// Whether this moves a version to Archived.
    pub fn is_archive(&self) -> bool {
        matches!(
            self,
            Action::Transition {
                to: Stage::Archived,
                ..
            }
        )
    }
}

/// One planned change: an action and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// What to do.
    #[serde(flatten)]
    pub action: Action,
    /// Why.
    pub reason: Reason,
}

/// The changes for one managed model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelPlan {
    /// The registered model's name.
    pub model: String,
    /// The manifest file that declares it.
    pub manifest: PathBuf,
    /// The changes, in apply order. Empty when the model is in sync.
    pub changes: Vec<Change>,
    /// The registry state the plan was computed from (`None`: the model does not exist).
    /// Apply re-reads the model and re-plans when it no longer matches.
    #[serde(skip)]
    pub basis: Option<ObservedModel>,
    /// The gate of each change entering a gated target, in change order (renderers show
    /// each with its change).
    #[serde(skip)]
    pub gates: Vec<GateReport>,
}

impl ModelPlan {
    /// Whether the model already matches its manifest.
    pub fn is_in_sync(&self) -> bool {
        self.changes.is_empty()
    }

    /// Whether a gate check failed or could not be verified: nothing of the model may be
    /// applied.
    pub fn is_blocked(&self) -> bool {
        self.gates.iter().any(|gate| !gate.passed())
    }

    /// The gate of change number `index`, if it enters a gated target.
    pub fn gate_of(&self, index: usize) -> Option<&GateReport> {
        self.gates.iter().find(|gate| gate.change == index)
    }
}

/// The targets and version change number `index` makes a version enter: a transition
/// into a declarable stage, an alias pointed at a version, or a registration placed in its
/// stage and aliases (its version is the placeholder [`crate::select::placeholder`]).
pub fn gated_entries(index: usize, action: &Action) -> Vec<(Target, u64)> {
    match action {
        Action::Transition { version, to, .. } if to.is_declarable() => {
            vec![(Target::Stage(*to), *version)]
        }
        Action::SetAlias { alias, to, .. } => vec![(Target::Alias(alias.clone()), *to)],
        Action::Register { stage, aliases, .. } => {
            let version = crate::select::placeholder(index);
            stage
                .map(Target::Stage)
                .into_iter()
                .chain(aliases.iter().cloned().map(Target::Alias))
                .map(|target| (target, version))
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The whole plan: every selected managed model, and the unmanaged ones for information.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Managed models in name order, in sync or not.
    pub models: Vec<ModelPlan>,
    /// Models in the registry that no manifest names; never changed.
    pub unmanaged: Vec<String>,
}

impl Plan {
    /// All changes, model by model.
    pub fn changes(&self) -> impl Iterator<Item = (&ModelPlan, &Change)> {
        self.models
            .iter()
            .flat_map(|model| model.changes.iter().map(move |change| (model, change)))
    }

    /// The number of changes.
    pub fn len(&self) -> usize {
        self.models.iter().map(|model| model.changes.len()).sum()
    }

    /// Whether there is nothing to change.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a gate blocks any model: then nothing at all may be applied.
    pub fn is_blocked(&self) -> bool {
        self.models.iter().any(ModelPlan::is_blocked)
    }

    /// The names of the models a gate blocks.
    pub fn blocked_models(&self) -> Vec<&str> {
        self.models
            .iter()
            .filter(|model| model.is_blocked())
            .map(|model| model.model.as_str())
            .collect()
    }

    /// Counts of the changes by kind, for the summary line.
    pub fn summary(&self) -> Summary {
        Summary::of(self.changes().map(|(_, change)| change))
    }
}

/// Counts of changes by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Transitions into Staging or Production.
    pub promote: usize,
    /// Transitions to Archived.
    pub archive: usize,
    /// Aliases created or moved.
    pub alias_move: usize,
    /// Aliases deleted.
    pub alias_remove: usize,
    /// Models created.
    pub create: usize,
    /// Description and tag updates.
    pub update: usize,
    /// Versions registered from selectors.
    pub register: usize,
}

impl Summary {
    /// Counts `changes`.
    pub fn of<'a>(changes: impl IntoIterator<Item = &'a Change>) -> Self {
        let mut summary = Summary::default();
        for change in changes {
            *summary.count_mut(change.action.kind()) += 1;
        }
        summary
    }

    /// The counter of one kind.
    fn count_mut(&mut self, kind: ActionKind) -> &mut usize {
        match kind {
            ActionKind::Promote => &mut self.promote,
            ActionKind::Archive => &mut self.archive,
            ActionKind::AliasMove => &mut self.alias_move,
            ActionKind::AliasRemove => &mut self.alias_remove,
            ActionKind::Create => &mut self.create,
            ActionKind::Update => &mut self.update,
            ActionKind::Register => &mut self.register,
        }
    }

    /// The total number of changes.
    pub fn total(&self) -> usize {
        self.promote
            + self.archive
            + self.alias_move
            + self.alias_remove
            + self.create
            + self.update
            + self.register
    }
}

/// Which managed models to plan.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only these models (empty: every managed model).
    pub models: Vec<String>,
}

/// Computes the plan for every selected managed model, judging the gate of every change
/// that enters a gated target with `evidence` (see [`crate::evidence`]) at `now`.
///
/// Fails with every problem found (in any model) when a manifest references a version
/// that does not exist, asserts a `runId`/`source` that does not match, or references a
/// version that is not `READY`; or when `selection` names a model no manifest declares.
pub fn plan(
    desired: &DesiredState,
    observed: &Snapshot,
    selection: &Selection,
    evidence: &Evidence,
    now: OffsetDateTime,
) -> Result<Plan, Vec<Diagnostic>> {
    let mut problems = Vec::new();
    for name in &selection.models {
        if !desired.models.contains_key(name) {
            problems.push(
                Diagnostic::global(format!("no manifest declares model `{name}`")).with_help(
                    format!(
                        "--model only selects managed models; add a manifest for `{name}` under {} or drop the flag",
                        desired.root.display()
                    ),
                ),
            );
        }
    }
    let selected =
        |name: &str| selection.models.is_empty() || selection.models.iter().any(|m| m == name);

    let mut models = Vec::new();
    for (name, model) in desired.models.iter().filter(|(name, _)| selected(name)) {
        match plan_model(model, observed.models.get(name)) {
            Ok(mut model_plan) => {
                judge_gates(&mut model_plan, model, evidence, now);
                models.push(model_plan);
            }
            Err(mut model_problems) => problems.append(&mut model_problems),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let unmanaged = if selection.models.is_empty() {
        observed
            .models
            .keys()
            .filter(|name| !desired.models.contains_key(*name))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    Ok(Plan { models, unmanaged })
}

/// Judges the gate of every change of `model_plan` that enters a gated target (a model the
/// registry lacks has no version to gate).
pub fn judge_gates(
    model_plan: &mut ModelPlan,
    desired: &DesiredModel,
    evidence: &Evidence,
    now: OffsetDateTime,
) {
    let candidates = crate::select::candidates(&model_plan.changes);
    let observed = match (&model_plan.basis, candidates.is_empty()) {
        (Some(observed), true) => std::borrow::Cow::Borrowed(observed),
        (basis, _) => {
            // A registration's candidate is judged as a version of the model (a model the
            // registry lacks is judged as an empty one).
            let mut observed = basis.clone().unwrap_or_else(|| ObservedModel {
                name: model_plan.model.clone(),
                ..ObservedModel::default()
            });
            observed.versions.extend(candidates);
            std::borrow::Cow::Owned(observed)
        }
    };
    if model_plan.basis.is_none() && observed.versions.is_empty() {
        return;
    }
    let mut reports = Vec::new();
    for (index, change) in model_plan.changes.iter().enumerate() {
        for (target, version) in gated_entries(index, &change.action) {
            if let Some(gate) = desired.spec.gates.get(&target) {
                reports.push(GateReport {
                    change: index,
                    checks: gate::judge(gate, &target, version, &observed, evidence, now),
                    target,
                    version,
                });
            }
        }
    }
    model_plan.gates = reports;
}

/// Computes the changes for one managed model; `observed` is `None` when the registry
/// does not have it. Gates are not judged here ([`judge_gates`]).
pub fn plan_model(
    desired: &DesiredModel,
    observed: Option<&ObservedModel>,
) -> Result<ModelPlan, Vec<Diagnostic>> {
    let resolved = crate::select::resolve(desired, observed)?;
    let pending = resolved.pending;
    let desired = &resolved.model;
    check_references(desired, observed)?;
    let mut changes = Vec::new();
    if observed.is_none() {
        changes.push(Change {
            action: Action::CreateModel {
                description: desired.spec.description.clone(),
                tags: desired.spec.tags.clone(),
            },
            reason: Reason::CreateModel,
        });
    }
    // Registrations come first (after creating the model): what they place is then in
    // place before anything it replaces is archived.
    for registration in pending {
        changes.push(Change {
            action: Action::Register {
                selector: registration.selector,
                stage: registration.stage,
                aliases: registration.aliases,
                source: None,
            },
            reason: Reason::Selector,
        });
    }
    if let Some(observed) = observed {
        plan_existing(&desired.spec, observed, &mut changes);
    }
    Ok(ModelPlan {
        model: desired.name.clone(),
        manifest: desired.file().to_path_buf(),
        changes,
        basis: observed.cloned(),
        gates: Vec::new(),
    })
}

/// The checks that refuse the whole run: every referenced version must exist, be READY and
/// satisfy its assertions.
fn check_references(
    desired: &DesiredModel,
    observed: Option<&ObservedModel>,
) -> Result<(), Vec<Diagnostic>> {
    let mut problems = Vec::new();
    let name = &desired.name;
    for (version, origin) in desired.referenced_versions() {
        let Some(found) = observed.and_then(|model| model.versions.get(&version)) else {
            let help = if observed.is_none() {
                format!(
                    "model `{name}` does not exist in the registry: register version {version} first, \
                     or declare no versions so mlreg creates the empty model"
                )
            } else {
                format!(
                    "register version {version} first, or point the manifest at an existing version \
                     (`mlreg versions {name}` lists them)"
                )
            };
            problems.push(
                Diagnostic::at(
                    origin,
                    format!("version {version} of model `{name}` does not exist in the registry"),
                )
                .with_help(help),
            );
            continue;
        };
        if !found.is_ready() {
            problems.push(
                Diagnostic::at(
                    origin,
                    format!(
                        "version {version} of model `{name}` is {}, not READY",
                        found.status
                    ),
                )
                .with_help("wait until the version finishes registering, then run again"),
            );
        }
    }
    if let Some(observed) = observed {
        for (version, spec) in &desired.spec.versions {
            let Some(found) = observed.versions.get(version) else {
                continue; // reported above
            };
            let origin = desired.origins.version(*version);
            if let Some(run_id) = &spec.run_id
                && &found.run_id != run_id
            {
                problems.push(
                    Diagnostic::at(
                        origin.clone(),
                        format!(
                            "version {version} of model `{name}` comes from run `{}`, not `{run_id}`",
                            display_or_none(&found.run_id)
                        ),
                    )
                    .with_help(
                        "the registry holds a different model than the manifest expects; \
                         check which run should be deployed and fix `runId`",
                    ),
                );
            }
            if let Some(source) = &spec.source
                && &found.source != source
            {
                problems.push(
                    Diagnostic::at(
                        origin.clone(),
                        format!(
                            "version {version} of model `{name}` has source `{}`, not `{source}`",
                            display_or_none(&found.source)
                        ),
                    )
                    .with_help(
                        "the registry holds a different model than the manifest expects; fix `source`",
                    ),
                );
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn display_or_none(value: &str) -> &str {
    if value.is_empty() { "(none)" } else { value }
}

fn plan_existing(desired: &ModelSpec, observed: &ObservedModel, changes: &mut Vec<Change>) {
    // 2. Description and tags.
    if let Some(description) = &desired.description
        && description != &observed.description
    {
        changes.push(Change {
            action: Action::SetDescription {
                from: observed.description.clone(),
                to: description.clone(),
            },
            reason: Reason::Description,
        });
    }
    for (key, value) in &desired.tags {
        let current = observed.tags.get(key);
        if current != Some(value) {
            changes.push(Change {
                action: Action::SetModelTag {
                    key: key.clone(),
                    from: current.cloned(),
                    to: value.clone(),
                },
                reason: Reason::Tag,
            });
        }
    }
    for (version, spec) in &desired.versions {
        let Some(found) = observed.versions.get(version) else {
            continue;
        };
        for (key, value) in &spec.tags {
            let current = found.tags.get(key);
            if current != Some(value) {
                changes.push(Change {
                    action: Action::SetVersionTag {
                        version: *version,
                        key: key.clone(),
                        from: current.cloned(),
                        to: value.clone(),
                    },
                    reason: Reason::Tag,
                });
            }
        }
    }

    // 3. Promotions: Production first, then Staging.
    if desired.stages.is_some() {
        for stage in Stage::DECLARABLE {
            for declared in desired.versions_in(stage) {
                if let Some(found) = observed.versions.get(declared)
                    && found.stage != stage
                {
                    changes.push(Change {
                        action: Action::Transition {
                            version: *declared,
                            from: found.stage,
                            to: stage,
                        },
                        reason: Reason::Declared,
                    });
                }
            }
        }
    }

    // 4. Aliases: moves, then removals.
    if let Some(aliases) = &desired.aliases {
        for (alias, target) in aliases {
            let current = observed.aliases.get(alias).copied();
            if current != Some(*target) {
                changes.push(Change {
                    action: Action::SetAlias {
                        alias: alias.clone(),
                        from: current,
                        to: *target,
                    },
                    reason: Reason::AliasMoved,
                });
            }
        }
        for (alias, version) in &observed.aliases {
            let registering = desired
                .selectors
                .contains_key(&Target::Alias(alias.clone()));
            if !aliases.contains_key(alias) && !registering {
                changes.push(Change {
                    action: Action::DeleteAlias {
                        alias: alias.clone(),
                        version: *version,
                    },
                    reason: Reason::AliasRemoved,
                });
            }
        }
    }

    // 5. Versions leaving a declared stage.
    if desired.stages.is_some() {
        for stage in Stage::DECLARABLE {
            for found in observed.versions_in(stage) {
                if desired.declared_stage_of(found.version).is_none() && found.is_ready() {
                    changes.push(Change {
                        action: Action::Transition {
                            version: found.version,
                            from: stage,
                            to: Stage::Archived,
                        },
                        reason: Reason::NotDeclaredInStage,
                    });
                }
            }
        }
    }

    // 6. Retention.
    if let Some(retention) = desired.retention {
        let referenced: BTreeSet<u64> = {
            let mut referenced = BTreeSet::new();
            if let Some(stages) = &desired.stages {
                referenced.extend(stages.all_versions());
            }
            match &desired.aliases {
                Some(aliases) => referenced.extend(aliases.values().copied()),
                None => referenced.extend(observed.aliases.values().copied()),
            }
            referenced
        };
        let unassigned: Vec<u64> = observed
            .versions
            .values()
            .filter(|v| v.stage == Stage::None && v.is_ready() && !referenced.contains(&v.version))
            .map(|v| v.version)
            .collect();
        let keep = usize::try_from(retention.keep_latest).unwrap_or(usize::MAX);
        let surplus = unassigned.len().saturating_sub(keep);
        for version in unassigned.into_iter().take(surplus) {
            changes.push(Change {
                action: Action::Transition {
                    version,
                    from: Stage::None,
                    to: Stage::Archived,
                },
                reason: Reason::Retention,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Origin;
    use crate::manifest::{VersionSpec, fixture};

    /// A plan with no evidence, at the epoch (for tests that declare no gates).
    fn plan_now(
        desired: &DesiredState,
        observed: &Snapshot,
        selection: &Selection,
    ) -> Result<Plan, Vec<Diagnostic>> {
        plan(
            desired,
            observed,
            selection,
            &Evidence::default(),
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    fn desired(name: &str) -> DesiredModel {
        fixture::model(name).build()
    }

    fn with_stages(model: DesiredModel, stages: &[(Stage, &[u64])]) -> DesiredModel {
        let mut builder = fixture::model(&model.name).stages();
        for (stage, versions) in stages {
            builder = builder.stage(*stage, versions);
        }
        let mut built = builder.build();
        built.origins = model.origins;
        built
    }

    fn observed(name: &str, versions: &[(u64, Stage)]) -> ObservedModel {
        crate::registry::fake::observed_model(name, versions)
    }

    fn transitions(plan: &ModelPlan) -> Vec<(u64, Stage, Stage, Reason)> {
        plan.changes
            .iter()
            .filter_map(|change| match change.action {
                Action::Transition { version, from, to } => {
                    Some((version, from, to, change.reason))
                }
                _ => None,
            })
            .collect()
    }

    use Stage::{Archived, None as NoStage, Production, Staging};

    #[test]
    fn promotes_before_archiving_the_replaced_version() {
        let model = with_stages(desired("m"), &[(Production, &[2])]);
        let observed = observed("m", &[(1, Production), (2, Staging)]);
        let plan = plan_model(&model, Some(&observed)).expect("valid");
        assert_eq!(
            transitions(&plan),
            vec![
                (2, Staging, Production, Reason::Declared),
                (1, Production, Archived, Reason::NotDeclaredInStage),
            ]
        );
    }

    #[test]
    fn production_promotions_come_before_staging_ones_on_a_swap() {
        let model = with_stages(desired("m"), &[(Production, &[4]), (Staging, &[3])]);
        let observed = observed("m", &[(3, Production), (4, Staging)]);
        let plan = plan_model(&model, Some(&observed)).expect("valid");
        assert_eq!(
            transitions(&plan),
            vec![
                (4, Staging, Production, Reason::Declared),
                (3, Production, Staging, Reason::Declared),
            ]
        );
    }

    #[test]
    fn stages_are_exhaustive_only_when_present() {
        let absent = desired("m");
        let observed = observed("m", &[(1, Production), (2, Staging)]);
        assert!(
            plan_model(&absent, Some(&observed))
                .expect("valid")
                .is_in_sync()
        );

        let empty = with_stages(desired("m"), &[(Staging, &[])]);
        assert_eq!(
            transitions(&plan_model(&empty, Some(&observed)).expect("valid")),
            vec![
                (1, Production, Archived, Reason::NotDeclaredInStage),
                (2, Staging, Archived, Reason::NotDeclaredInStage),
            ]
        );
    }

    #[test]
    fn archived_versions_are_unarchived_only_when_declared() {
        let model = with_stages(desired("m"), &[(Staging, &[1])]);
        let observed = observed("m", &[(1, Archived), (2, Archived)]);
        assert_eq!(
            transitions(&plan_model(&model, Some(&observed)).expect("valid")),
            vec![(1, Archived, Staging, Reason::Declared)]
        );
    }

    #[test]
    fn retention_keeps_the_newest_unassigned_versions() {
        let mut model = fixture::model("m")
            .stage(Production, &[2])
            .keep_latest(2)
            .build();
        let mut observed = observed(
            "m",
            &[
                (1, NoStage),
                (2, Production),
                (3, NoStage),
                (4, NoStage),
                (5, NoStage),
                (6, Archived),
            ],
        );
        // Without declared aliases, a version holding an alias is not a retention candidate.
        observed.aliases.insert("shadow".into(), 1);
        let plan = plan_model(&model, Some(&observed)).expect("valid");
        assert_eq!(
            transitions(&plan),
            vec![(3, NoStage, Archived, Reason::Retention)]
        );

        // With declared aliases, the registry's aliases no longer protect a version.
        model = fixture::model("m")
            .stage(Production, &[2])
            .keep_latest(2)
            .aliases()
            .build();
        let plan = plan_model(&model, Some(&observed)).expect("valid");
        assert_eq!(
            transitions(&plan),
            vec![
                (1, NoStage, Archived, Reason::Retention),
                (3, NoStage, Archived, Reason::Retention),
            ]
        );
    }

    #[test]
    fn versions_not_ready_are_never_touched() {
        let model = fixture::model("m").keep_latest(0).build();
        let mut observed = observed("m", &[(1, NoStage), (2, NoStage)]);
        if let Some(version) = observed.versions.get_mut(&2) {
            version.status = "PENDING_REGISTRATION".into();
        }
        assert_eq!(
            transitions(&plan_model(&model, Some(&observed)).expect("valid")),
            vec![(1, NoStage, Archived, Reason::Retention)]
        );
    }

    #[test]
    fn aliases_move_and_undeclared_ones_are_removed() {
        let model = fixture::model("m")
            .alias("champion", 2)
            .alias("challenger", 3)
            .build();
        let mut observed = observed("m", &[(1, NoStage), (2, NoStage), (3, NoStage)]);
        observed.aliases = BTreeMap::from([
            ("champion".to_string(), 1),
            ("challenger".to_string(), 3),
            ("old".to_string(), 1),
        ]);
        let plan = plan_model(&model, Some(&observed)).expect("valid");
        assert_eq!(
            plan.changes,
            vec![
                Change {
                    action: Action::SetAlias {
                        alias: "champion".into(),
                        from: Some(1),
                        to: 2
                    },
                    reason: Reason::AliasMoved
                },
                Change {
                    action: Action::DeleteAlias {
                        alias: "old".into(),
                        version: 1
                    },
                    reason: Reason::AliasRemoved
                },
            ]
        );
    }

    #[test]
    fn description_and_declared_tags_are_enforced_others_left_alone() {
        let model = fixture::model("m")
            .description("new")
            .tag("team", "ml")
            .build();
        let mut observed = observed("m", &[]);
        observed.description = "old".into();
        observed.tags = BTreeMap::from([
            ("team".to_string(), "data".to_string()),
            ("owner".to_string(), "x".to_string()),
        ]);
        let plan = plan_model(&model, Some(&observed)).expect("valid");
        assert_eq!(
            plan.changes,
            vec![
                Change {
                    action: Action::SetDescription {
                        from: "old".into(),
                        to: "new".into()
                    },
                    reason: Reason::Description
                },
                Change {
                    action: Action::SetModelTag {
                        key: "team".into(),
                        from: Some("data".into()),
                        to: "ml".into()
                    },
                    reason: Reason::Tag
                },
            ]
        );
    }

    #[test]
    fn the_audit_tags_mlreg_writes_are_never_drift() {
        // Manifests cannot declare `mlreg.*` keys, and undeclared tags are left alone: the
        // audit records written after each transition and alias move plan nothing.
        let model = fixture::model("m")
            .stage(Production, &[1])
            .alias("champion", 1)
            .build();
        let mut observed = observed("m", &[(1, Production), (2, NoStage)]);
        observed.aliases.insert("champion".into(), 1);
        for version in observed.versions.values_mut() {
            version.tags = BTreeMap::from([
                (crate::apply::AUDIT_TAG.to_string(), "{}".to_string()),
                (crate::apply::alias_audit_tag("champion"), "{}".to_string()),
            ]);
        }
        let plan = plan_model(&model, Some(&observed)).expect("valid");
        assert!(plan.is_in_sync(), "{plan:#?}");
    }

    #[test]
    fn a_missing_model_without_versions_is_created() {
        let model = fixture::model("m").description("d").build();
        let plan = plan_model(&model, None).expect("valid");
        assert_eq!(plan.changes.len(), 1);
        assert_eq!(plan.changes[0].reason, Reason::CreateModel);
    }

    #[test]
    fn missing_versions_and_failed_assertions_refuse_the_whole_plan() {
        let first = with_stages(desired("a"), &[(Production, &[9])]);
        let second = fixture::model("b")
            .version(
                1,
                VersionSpec {
                    run_id: Some("abc".into()),
                    ..VersionSpec::default()
                },
                Origin::new("b.yaml", 12, 5),
            )
            .build();
        let third = with_stages(desired("c"), &[(Production, &[1])]);
        let desired_state = DesiredState {
            models: BTreeMap::from([
                ("a".to_string(), first),
                ("b".to_string(), second),
                ("c".to_string(), third),
            ]),
            ..DesiredState::default()
        };
        let snapshot = Snapshot {
            models: BTreeMap::from([
                ("a".to_string(), observed("a", &[(1, Production)])),
                ("b".to_string(), observed("b", &[(1, NoStage)])),
            ]),
        };
        let problems =
            plan_now(&desired_state, &snapshot, &Selection::default()).expect_err("must refuse");
        let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 3, "{messages:#?}");
        assert!(messages[0].contains("version 9 of model `a` does not exist"));
        assert!(messages[1].contains("comes from run `(none)`, not `abc`"));
        assert!(messages[1].starts_with("b.yaml:12:5"));
        assert!(messages[2].contains("version 1 of model `c` does not exist"));
    }

    #[test]
    fn unmanaged_models_are_listed_and_never_planned() {
        let desired_state = DesiredState {
            models: BTreeMap::from([("a".to_string(), desired("a"))]),
            ..DesiredState::default()
        };
        let snapshot = Snapshot {
            models: BTreeMap::from([
                ("a".to_string(), observed("a", &[])),
                ("z".to_string(), observed("z", &[(1, Production)])),
            ]),
        };
        let plan = plan_now(&desired_state, &snapshot, &Selection::default()).expect("valid");
        assert_eq!(plan.unmanaged, vec!["z".to_string()]);
        assert!(plan.is_empty());
    }

    #[test]
    fn selection_limits_the_plan_and_rejects_unknown_names() {
        let desired_state = DesiredState {
            models: BTreeMap::from([
                ("a".to_string(), desired("a")),
                ("b".to_string(), desired("b")),
            ]),
            ..DesiredState::default()
        };
        let snapshot = Snapshot::default();
        let selection = Selection {
            models: vec!["b".into()],
        };
        let plan = plan_now(&desired_state, &snapshot, &selection).expect("valid");
        assert_eq!(plan.models.len(), 1);
        assert_eq!(plan.models[0].model, "b");
        let unknown = Selection {
            models: vec!["nope".into()],
        };
        assert!(plan_now(&desired_state, &snapshot, &unknown).is_err());
    }

    #[test]
    fn applying_the_plan_yields_an_empty_plan() {
        // Simulate applying the changes onto the observed model, then plan again.
        let model = fixture::model("m")
            .stage(Production, &[3])
            .stage(Staging, &[4])
            .alias("champion", 3)
            .keep_latest(1)
            .build();
        let mut state = observed(
            "m",
            &[
                (1, Production),
                (2, NoStage),
                (3, Staging),
                (4, NoStage),
                (5, NoStage),
                (6, NoStage),
            ],
        );
        state.aliases.insert("champion".into(), 1);
        let first = plan_model(&model, Some(&state)).expect("valid");
        assert!(!first.is_in_sync());
        for change in &first.changes {
            simulate(&mut state, &change.action);
        }
        let second = plan_model(&model, Some(&state)).expect("valid");
        assert!(second.is_in_sync(), "{:#?}", second.changes);
        assert_eq!(state.versions[&6].stage, NoStage);
        assert_eq!(state.versions[&5].stage, Archived);
    }

    fn simulate(state: &mut ObservedModel, action: &Action) {
        match action {
            Action::Transition { version, to, .. } => {
                if let Some(v) = state.versions.get_mut(version) {
                    v.stage = *to;
                }
            }
            Action::SetAlias { alias, to, .. } => {
                state.aliases.insert(alias.clone(), *to);
            }
            Action::DeleteAlias { alias, .. } => {
                state.aliases.remove(alias);
            }
            Action::SetDescription { to, .. } => state.description = to.clone(),
            Action::SetModelTag { key, to, .. } => {
                state.tags.insert(key.clone(), to.clone());
            }
            Action::SetVersionTag {
                version, key, to, ..
            } => {
                if let Some(v) = state.versions.get_mut(version) {
                    v.tags.insert(key.clone(), to.clone());
                }
            }
            Action::CreateModel { .. } | Action::Register { .. } => {}
        }
    }
}
