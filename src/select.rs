//! Version selectors: resolving `{run: ID}` and `{loggedModel: m-…}` against the registry,
//! and registering the version a selector names when none exists yet (DESIGN.md "Version
//! selectors").
//!
//! - [`resolve`] (pure) turns the selectors of a desired model into version numbers where a
//!   version of the model matches (its `run_id` is the run; its `source` is the logged
//!   model's `models:/m-…`), refuses a selector two versions match, and returns the
//!   selectors no version matches as [`Pending`] registrations. The planner plans the
//!   resolved model and puts one `register` change per pending selector first.
//! - [`read_sources`] (the read phase, before anything is applied) asks the registry what
//!   each pending selector registers from; a run that does not exist or holds no model at
//!   the path is a diagnostic, so the plan is refused as a whole.
//! - [`register`] (apply) creates the version **at most once**: creation is not idempotent,
//!   so before every attempt the model's versions are read again and a version that
//!   matches is taken instead; a timeout, a cut connection or a 5xx on create is followed
//!   by that re-read, never by a blind retry. The version is then awaited until `READY`.
//!
//! A registration that has not happened yet has no number. Inside a plan, its version is
//! a placeholder ([`placeholder`], counted down from `u64::MAX`, so it never collides
//! with a number MLflow assigns) that lets gates judge the candidate as any version
//! entering a target; renderers show it as "the new version".

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::diagnostic::Diagnostic;
use crate::manifest::{DesiredModel, DesiredState, Selector};
use crate::plan::{Action, Plan};
use crate::registry::{
    self, ObservedModel, ObservedVersion, RegistrationSource, Registry, SourceLookup,
};
use crate::stage::Stage;
use crate::target::Target;

/// How many times a registration is attempted (each after re-reading the versions).
const CREATE_ATTEMPTS: u32 = 3;

/// How long a new version may stay `PENDING_REGISTRATION` before mlreg gives up.
pub const REGISTRATION_WAIT: Duration = Duration::from_secs(300);

/// How often a pending version is read again.
const REGISTRATION_POLL: Duration = Duration::from_millis(500);

/// The most registrations one model's plan can hold (placeholders are counted down from
/// `u64::MAX` by change index).
const MAX_PLACEHOLDERS: u64 = 1 << 20;

/// The placeholder version of the registration that is change number `index` of a model's
/// plan.
pub fn placeholder(index: usize) -> u64 {
    u64::MAX - (index as u64).min(MAX_PLACEHOLDERS - 1)
}

/// Whether `version` is a registration's placeholder rather than a registry number.
pub fn is_placeholder(version: u64) -> bool {
    version > u64::MAX - MAX_PLACEHOLDERS
}

/// Whether `version` of a model is the version `selector` names.
pub fn matches(selector: &Selector, version: &ObservedVersion) -> bool {
    match selector {
        Selector::Run { run_id, .. } => version.run_id == *run_id,
        Selector::LoggedModel { model_id } => {
            version.source.strip_prefix("models:/") == Some(model_id.as_str())
        }
    }
}

/// The versions of `model` that `selector` names, ascending.
pub fn matching(selector: &Selector, model: &ObservedModel) -> Vec<u64> {
    model
        .versions
        .values()
        .filter(|version| matches(selector, version))
        .map(|version| version.version)
        .collect()
}

/// A selector no version matches: mlreg registers one and places it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The selector.
    pub selector: Selector,
    /// The stage the manifest places the version in, if any.
    pub stage: Option<Stage>,
    /// The aliases the manifest points at it.
    pub aliases: Vec<String>,
}

/// A desired model with its selectors resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The model, each matched selector now a number in `stages`/`aliases`; its
    /// `spec.selectors` keeps only the pending ones.
    pub model: DesiredModel,
    /// The selectors no version matches, in selector order.
    pub pending: Vec<Pending>,
}

/// Resolves the selectors of `desired` against `observed` (`None`: the model does not
/// exist, so every selector is pending). Fails when a selector matches two versions, or
/// resolves to a version the manifest already places in another stage.
pub fn resolve(
    desired: &DesiredModel,
    observed: Option<&ObservedModel>,
) -> Result<Resolved, Vec<Diagnostic>> {
    let mut model = desired.clone();
    if desired.spec.selectors.is_empty() {
        return Ok(Resolved {
            model,
            pending: Vec::new(),
        });
    }
    model.spec.selectors.clear();
    let mut problems = Vec::new();
    let mut pending: BTreeMap<Selector, Pending> = BTreeMap::new();
    for (target, selectors) in &desired.spec.selectors {
        for selector in selectors {
            let origin = desired.origins.selector(target, selector);
            let found = observed.map_or_else(Vec::new, |model| matching(selector, model));
            match found.as_slice() {
                [] => {
                    let entry = pending.entry(selector.clone()).or_insert_with(|| Pending {
                        selector: selector.clone(),
                        stage: None,
                        aliases: Vec::new(),
                    });
                    match target {
                        Target::Stage(stage) => entry.stage = Some(*stage),
                        Target::Alias(alias) => entry.aliases.push(alias.clone()),
                    }
                    model
                        .spec
                        .selectors
                        .entry(target.clone())
                        .or_default()
                        .insert(selector.clone());
                }
                [version] => {
                    let version = *version;
                    match target {
                        Target::Stage(stage) => {
                            if let Some(other) = desired.spec.declared_stage_of(version)
                                && other != *stage
                            {
                                problems.push(
                                    Diagnostic::at(
                                        origin,
                                        format!(
                                            "{selector} is version {version} of model `{}`, which the manifest also places in {other}",
                                            desired.name
                                        ),
                                    )
                                    .with_help("a version sits in one stage only: remove one of the two"),
                                );
                                continue;
                            }
                            if let Some(stages) = model.spec.stages.as_mut()
                                && let Some(set) = stages.get_mut(*stage)
                            {
                                set.insert(version);
                            }
                            model
                                .origins
                                .stages
                                .entry((*stage, version))
                                .or_insert(origin);
                        }
                        Target::Alias(alias) => {
                            model
                                .spec
                                .aliases
                                .get_or_insert_with(BTreeMap::new)
                                .insert(alias.clone(), version);
                        }
                    }
                }
                several => {
                    let list: Vec<String> = several.iter().map(u64::to_string).collect();
                    problems.push(
                        Diagnostic::at(
                            origin,
                            format!(
                                "{selector} matches {} versions of model `{}`: {}",
                                several.len(),
                                desired.name,
                                list.join(" and ")
                            ),
                        )
                        .with_help(format!(
                            "a selector must name one version: write the version number instead (`{}`), or archive and delete the duplicate",
                            list.join("` or `")
                        )),
                    );
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(Resolved {
            model,
            pending: pending.into_values().collect(),
        })
    } else {
        Err(problems)
    }
}

/// The version a registration would create, as gates see it: its run (when known) and
/// source, no tags, in stage None.
pub fn candidate(
    version: u64,
    selector: &Selector,
    source: Option<&RegistrationSource>,
) -> ObservedVersion {
    let run_id = match (source.and_then(|s| s.run_id.clone()), selector) {
        (Some(run_id), _) => run_id,
        (None, Selector::Run { run_id, .. }) => run_id.clone(),
        (None, Selector::LoggedModel { .. }) => String::new(),
    };
    let source = match (source, selector) {
        (Some(source), _) => source.source.clone(),
        (None, Selector::LoggedModel { model_id }) => format!("models:/{model_id}"),
        (None, Selector::Run { .. }) => String::new(),
    };
    ObservedVersion {
        version,
        stage: Stage::None,
        status: "READY".into(),
        run_id,
        source,
        description: String::new(),
        tags: BTreeMap::new(),
        creation_timestamp: 0,
        last_updated_timestamp: 0,
    }
}

/// The candidates of a model's registrations, by placeholder.
pub fn candidates(changes: &[crate::plan::Change]) -> BTreeMap<u64, ObservedVersion> {
    changes
        .iter()
        .enumerate()
        .filter_map(|(index, change)| match &change.action {
            Action::Register {
                selector, source, ..
            } => {
                let version = placeholder(index);
                Some((version, candidate(version, selector, source.as_ref())))
            }
            _ => None,
        })
        .collect()
}

/// `snapshot` with the candidates of `plan`'s registrations added as versions, for
/// reading their evidence. Never planned from: a candidate is not in the registry.
pub fn with_candidates(snapshot: &registry::Snapshot, plan: &Plan) -> registry::Snapshot {
    let mut augmented = snapshot.clone();
    for model_plan in &plan.models {
        let candidates = candidates(&model_plan.changes);
        if candidates.is_empty() {
            continue;
        }
        let model = augmented
            .models
            .entry(model_plan.model.clone())
            .or_insert_with(|| ObservedModel {
                name: model_plan.model.clone(),
                ..ObservedModel::default()
            });
        model.versions.extend(candidates);
    }
    augmented
}

/// What each (model, selector) of a plan's registrations registers from.
pub type Sources = BTreeMap<(String, Selector), RegistrationSource>;

/// Reads the source of every registration in `plan` (the read phase): fails with a
/// diagnostic at the selector for a run or logged model that does not exist or holds no
/// model, and for a registry that cannot be read.
pub async fn read_sources<R: Registry>(
    registry: &R,
    desired: &DesiredState,
    plan: &Plan,
) -> Result<Sources, Vec<Diagnostic>> {
    let mut wanted: BTreeSet<(String, Selector, Target)> = BTreeSet::new();
    for model_plan in &plan.models {
        for change in &model_plan.changes {
            if let Action::Register {
                selector,
                stage,
                aliases,
                ..
            } = &change.action
            {
                let target = match (stage, aliases.first()) {
                    (Some(stage), _) => Target::Stage(*stage),
                    (None, Some(alias)) => Target::Alias(alias.clone()),
                    (None, None) => continue,
                };
                wanted.insert((model_plan.model.clone(), selector.clone(), target));
            }
        }
    }
    let mut sources = Sources::new();
    let mut problems = Vec::new();
    // One lookup per selector, even when two models name the same run.
    let mut looked_up: BTreeMap<Selector, Result<SourceLookup, String>> = BTreeMap::new();
    for (model, selector, target) in wanted {
        let lookup = match looked_up.get(&selector) {
            Some(lookup) => lookup.clone(),
            None => {
                let lookup = registry
                    .registration_source(&selector)
                    .await
                    .map_err(|error| error.to_string());
                looked_up.insert(selector.clone(), lookup.clone());
                lookup
            }
        };
        let origin = desired.models.get(&model).map_or_else(
            || crate::diagnostic::Origin::new(model.clone(), 0, 0),
            |desired| desired.origins.selector(&target, &selector),
        );
        match lookup {
            Ok(SourceLookup::Found(source)) => {
                sources.insert((model, selector), source);
            }
            Ok(SourceLookup::Missing(why)) => problems.push(
                Diagnostic::at(origin, format!("cannot register {selector} as a version of model `{model}`: {why}"))
                    .with_help(match &selector {
                        Selector::Run { .. } => "check the run id, and that the run logged the model under `artifactPath` (default `model`: `mlflow.<flavor>.log_model(..., name=\"model\")`)",
                        Selector::LoggedModel { .. } => "check the logged model id (`model_info.model_id`); logged models exist on MLflow 3 servers only",
                    }),
            ),
            Err(error) => problems.push(
                Diagnostic::at(
                    origin,
                    format!("cannot look up what {selector} registers from: {error}"),
                )
                .with_help("the registry could not be read; nothing was applied, run again"),
            ),
        }
    }
    if problems.is_empty() {
        Ok(sources)
    } else {
        Err(problems)
    }
}

/// Fills the `source` of every registration of `plan` from `sources`.
pub fn attach(plan: &mut Plan, sources: &Sources) {
    for model_plan in &mut plan.models {
        for change in &mut model_plan.changes {
            if let Action::Register {
                selector, source, ..
            } = &mut change.action
                && let Some(found) = sources.get(&(model_plan.model.clone(), selector.clone()))
            {
                *source = Some(found.clone());
            }
        }
    }
}

/// Why a registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The registry failed (after the re-reads that make a retry safe).
    #[error(transparent)]
    Registry(#[from] registry::Error),
    /// The selector names no model the registry can register.
    #[error("cannot register {selector}: {why}")]
    Missing {
        /// The selector.
        selector: Selector,
        /// Why.
        why: String,
    },
    /// Two versions match the selector now.
    #[error("{selector} now matches versions {versions:?}; nothing more was registered")]
    Ambiguous {
        /// The selector.
        selector: Selector,
        /// The matching versions.
        versions: Vec<u64>,
    },
    /// The server could not register the version.
    #[error("version {version} failed to register (FAILED_REGISTRATION): {message}")]
    Failed {
        /// The version.
        version: u64,
        /// The server's message.
        message: String,
    },
    /// The version stayed pending too long.
    #[error("version {version} is still {status} after {waited:?}; run again once it is READY")]
    NotReady {
        /// The version.
        version: u64,
        /// Its last status.
        status: String,
        /// How long mlreg waited.
        waited: Duration,
    },
}

/// Whether a failed create may have reached the server and acted: a transport failure,
/// a timeout, a 5xx. Then the versions are read again before anything else.
fn is_ambiguous(error: &registry::Error) -> bool {
    match error {
        registry::Error::Transport { .. } => true,
        registry::Error::Api { status, .. } => *status >= 500,
        registry::Error::Decode { .. } => true,
        registry::Error::Inconsistent(_) | registry::Error::Config(_) => false,
    }
}

/// Registers the version `selector` names as a version of `model` (see the module
/// documentation): at most one version is ever created, and it is returned once `READY`.
/// A version that already matches (a concurrent or an earlier, interrupted run created it)
/// is taken instead. `source` is what the plan read; `None` looks it up now.
pub async fn register<R: Registry>(
    registry: &R,
    model: &str,
    selector: &Selector,
    source: Option<&RegistrationSource>,
    wait: Duration,
) -> Result<u64, RegisterError> {
    let source = match source {
        Some(source) => source.clone(),
        None => match registry.registration_source(selector).await? {
            SourceLookup::Found(source) => source,
            SourceLookup::Missing(why) => {
                return Err(RegisterError::Missing {
                    selector: selector.clone(),
                    why,
                });
            }
        },
    };
    let mut last_error = None;
    for attempt in 1..=CREATE_ATTEMPTS {
        // Re-read first: an earlier attempt (or run) may have created it after all.
        let found = registry
            .model(model)
            .await?
            .map_or_else(Vec::new, |observed| matching(selector, &observed));
        match found.as_slice() {
            [] => {}
            [version] => {
                if attempt > 1 {
                    tracing::info!(model, version, %selector, "an interrupted registration had created the version");
                }
                return await_ready(registry, model, *version, wait).await;
            }
            several => {
                return Err(RegisterError::Ambiguous {
                    selector: selector.clone(),
                    versions: several.to_vec(),
                });
            }
        }
        match registry.create_version(model, &source).await {
            Ok(version) => return await_ready(registry, model, version, wait).await,
            Err(error) if is_ambiguous(&error) && attempt < CREATE_ATTEMPTS => {
                tracing::warn!(model, %selector, %error, attempt, "registration answer lost; reading the versions before trying again");
                last_error = Some(error);
            }
            Err(error) => {
                last_error = Some(error);
                break;
            }
        }
    }
    Err(RegisterError::Registry(last_error.unwrap_or_else(|| {
        registry::Error::Inconsistent("registration did not complete".into())
    })))
}

/// Waits until `version` is `READY` (bounded by `wait`); `FAILED_REGISTRATION` is an
/// error with the server's message.
async fn await_ready<R: Registry>(
    registry: &R,
    model: &str,
    version: u64,
    wait: Duration,
) -> Result<u64, RegisterError> {
    let started = tokio::time::Instant::now();
    loop {
        let status = registry.version_status(model, version).await?;
        let (status, message) = match status {
            Some(status) => (status.status, status.message),
            None => {
                return Err(RegisterError::Registry(registry::Error::Inconsistent(
                    format!(
                        "version {version} of model `{model}` vanished right after it was registered"
                    ),
                )));
            }
        };
        match status.as_str() {
            "READY" => return Ok(version),
            "FAILED_REGISTRATION" => {
                return Err(RegisterError::Failed {
                    version,
                    message: if message.is_empty() {
                        "(the server gave no reason)".into()
                    } else {
                        message
                    },
                });
            }
            _ if started.elapsed() >= wait => {
                return Err(RegisterError::NotReady {
                    version,
                    status,
                    waited: wait,
                });
            }
            _ => tokio::time::sleep(REGISTRATION_POLL).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{ApplyOptions, OutcomeStatus, apply};
    use crate::evidence::plan_with_gates;
    use crate::manifest::fixture;
    use crate::plan::Selection;
    use crate::registry::Snapshot;
    use crate::registry::fake::FakeRegistry;
    use Stage::{Production, Staging};

    fn now() -> time::OffsetDateTime {
        time::OffsetDateTime::UNIX_EPOCH
    }

    /// Model `m` with version 1 (run `r0`) in Production.
    fn registry() -> FakeRegistry {
        let registry = FakeRegistry::default();
        registry.add_model("m", &[(1, Production)]);
        registry.edit_version("m", 1, |v| v.run_id = "r0".into());
        registry.add_run("r0", &[]);
        registry.add_run("r1", &[("acc", 0.95)]);
        registry
    }

    fn staging_from(run: &str) -> DesiredState {
        fixture::desired([fixture::model("m")
            .stage(Production, &[1])
            .selector(Target::Stage(Staging), Selector::run(run))
            .build()])
    }

    async fn plan_of(
        registry: &FakeRegistry,
        desired: &DesiredState,
    ) -> Result<Plan, Vec<Diagnostic>> {
        let snapshot: Snapshot = registry.snapshot().await.expect("snapshot");
        plan_with_gates(registry, desired, &snapshot, &Selection::default(), now()).await
    }

    #[test]
    fn a_matching_version_takes_the_selectors_place_and_two_are_refused() {
        let registry = registry();
        let model = registry.state().models["m"].clone();
        let desired = staging_from("r0");
        let model_desired = &desired.models["m"];
        // r0 is version 1, which the manifest already places in Production.
        let problems = resolve(model_desired, Some(&model)).expect_err("two stages");
        assert!(
            problems[0].message.contains("also places in Production"),
            "{problems:?}"
        );

        let alias = fixture::model("m")
            .selector(Target::Alias("champion".into()), Selector::run("r0"))
            .build();
        let resolved = resolve(&alias, Some(&model)).expect("resolves");
        assert!(resolved.pending.is_empty());
        assert_eq!(
            resolved.model.spec.aliases.as_ref().map(|a| a["champion"]),
            Some(1)
        );

        let mut twice = model.clone();
        let mut copy = twice.versions[&1].clone();
        copy.version = 7;
        twice.versions.insert(7, copy);
        let problems = resolve(&alias, Some(&twice)).expect_err("ambiguous");
        assert!(
            problems[0]
                .message
                .contains("matches 2 versions of model `m`: 1 and 7"),
            "{problems:?}"
        );
    }

    #[tokio::test]
    async fn a_lost_create_answer_is_followed_by_a_re_read_not_a_second_version() {
        let registry = registry();
        let desired = staging_from("r1");
        let plan = plan_of(&registry, &desired).await.expect("plan");
        let kinds: Vec<_> = plan.changes().map(|(_, c)| c.action.kind()).collect();
        assert_eq!(kinds, [crate::plan::ActionKind::Register]);
        registry.lose_create_answers(1);
        let report = apply(&registry, &desired, &plan, &ApplyOptions::new(), &|_, _| {}).await;
        assert!(report.is_success(), "{report:#?}");
        assert_eq!(report.models[0].outcomes[0].registered, Some(2));
        let creates = registry
            .writes()
            .iter()
            .filter(|w| w.starts_with("create_version"))
            .count();
        assert_eq!(creates, 1);
        let state = registry.state();
        assert_eq!(state.models["m"].versions.len(), 2);
        assert_eq!(state.models["m"].versions[&2].stage, Staging);
        assert_eq!(state.models["m"].versions[&2].run_id, "r1");
        // Converged: the selector now names version 2.
        assert!(plan_of(&registry, &desired).await.expect("plan").is_empty());
    }

    #[tokio::test]
    async fn a_failed_registration_is_an_error_with_the_servers_message() {
        let registry = registry();
        let desired = staging_from("r1");
        let plan = plan_of(&registry, &desired).await.expect("plan");
        registry.fail_registrations("the artifact could not be copied");
        let report = apply(&registry, &desired, &plan, &ApplyOptions::new(), &|_, _| {}).await;
        assert!(!report.is_success());
        match &report.models[0].outcomes[0].result {
            OutcomeStatus::Failed { error } => assert!(
                error.contains("FAILED_REGISTRATION") && error.contains("could not be copied"),
                "{error}"
            ),
            other => panic!("{other:?}"),
        }
        // Nothing was placed.
        assert_eq!(registry.state().models["m"].versions[&2].stage, Stage::None);
    }

    #[tokio::test]
    async fn a_run_that_does_not_exist_refuses_the_plan() {
        let registry = registry();
        let problems = plan_of(&registry, &staging_from("nope"))
            .await
            .expect_err("refused");
        assert!(
            problems[0].message.contains("run `nope` does not exist"),
            "{problems:?}"
        );
        assert!(registry.writes().is_empty());
    }

    #[tokio::test]
    async fn a_missing_model_placing_only_selectors_is_created_then_registered() {
        let registry = FakeRegistry::default();
        registry.add_run("r1", &[]);
        let desired = fixture::desired([fixture::model("new")
            .selector(Target::Alias("champion".into()), Selector::run("r1"))
            .build()]);
        let plan = plan_of(&registry, &desired).await.expect("plan");
        let kinds: Vec<_> = plan.changes().map(|(_, c)| c.action.kind()).collect();
        assert_eq!(
            kinds,
            [
                crate::plan::ActionKind::Create,
                crate::plan::ActionKind::Register
            ]
        );
        let report = apply(&registry, &desired, &plan, &ApplyOptions::new(), &|_, _| {}).await;
        assert!(report.is_success(), "{report:#?}");
        assert_eq!(
            registry.state().models["new"].aliases.get("champion"),
            Some(&1)
        );
    }
}
