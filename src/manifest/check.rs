//! Semantic checks: one raw document (well-formed YAML of the right shape) becomes a
//! [`DesiredModel`] (its position-free spec and the origins of its parts), or diagnostics saying what is wrong, where, and what to do.
//!
//! Every check runs even after another failed, so one run reports every problem of a
//! document. Checks that span documents (a model declared twice) use [`Seen`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_saphyr::Spanned;

use super::raw::{
    AliasMap, GateMap, GateTagMap, MAX_TAG_KEY_LENGTH, MetricMap, RawGate, RawManifest,
    RawNoRegression, RawRef, RawSelector, RawSoak, RawSpec, Scalar, StageMap, StageValue, TagMap,
    VersionMap,
};
use super::selector::{
    DEFAULT_ARTIFACT_PATH, Selector, VersionRef, validate_model_id, validate_run_id,
};
use super::{
    API_VERSION, Comparator, DesiredModel, Direction, Gate, KIND, ModelSpec, NoRegression, Origins,
    RESERVED_TAG_PREFIX, Retention, Serving, Soak, Stages, TagRequirement, Threshold, VersionSpec,
};
use crate::diagnostic::{Diagnostic, Origin};
use crate::stage::Stage;
use crate::target::Target;

/// Models already declared in this run, by name, with where.
pub(crate) type Seen = BTreeMap<String, Origin>;

/// Where a spanned value is written in `file`.
pub(crate) fn origin_of<T>(file: &Path, spanned: &Spanned<T>) -> Origin {
    location_origin(file, spanned.referenced)
}

/// Converts a serde-saphyr location (1-based, 0 when unknown) into an [`Origin`].
pub(crate) fn location_origin(file: &Path, location: serde_saphyr::Location) -> Origin {
    let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    Origin::new(file, clamp(location.line()), clamp(location.column()))
}

/// Checks one document; returns the model when the document is valid.
pub(crate) fn check_document(
    raw: RawManifest,
    file: &Path,
    seen: &mut Seen,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<DesiredModel> {
    let errors_before = diagnostics.len();
    let mut checker = Checker {
        file,
        diagnostics,
        origins: Origins::at(origin_of(file, &raw.metadata.name)),
        selectors: BTreeMap::new(),
    };

    checker.api_version(&raw.api_version);
    checker.kind(&raw.kind);
    let name = checker.model_name(&raw.metadata.name, seen);
    let spec = checker.spec(raw.spec.unwrap_or_default());

    (checker.diagnostics.len() == errors_before).then_some(DesiredModel {
        name,
        spec,
        origins: checker.origins,
    })
}

/// Writes diagnostics about one document, and records where its parts are written.
struct Checker<'a> {
    file: &'a Path,
    diagnostics: &'a mut Vec<Diagnostic>,
    origins: Origins,
    /// The selectors of `stages` and `aliases`, by target.
    selectors: BTreeMap<Target, BTreeSet<Selector>>,
}

impl Checker<'_> {
    fn origin<T>(&self, spanned: &Spanned<T>) -> Origin {
        origin_of(self.file, spanned)
    }

    fn error<T>(&mut self, at: &Spanned<T>, message: impl Into<String>, help: impl Into<String>) {
        let origin = self.origin(at);
        self.error_at(origin, message, help);
    }

    fn error_at(&mut self, origin: Origin, message: impl Into<String>, help: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::at(origin, message).with_help(help));
    }

    fn api_version(&mut self, api_version: &Spanned<Scalar>) {
        let value = api_version.value.plain();
        if value != API_VERSION {
            self.error(
                api_version,
                format!("unknown apiVersion `{value}`"),
                format!(
                    "this release of mlreg reads `apiVersion: {API_VERSION}`; if the manifest was written for a newer format, upgrade mlreg"
                ),
            );
        }
    }

    fn kind(&mut self, kind: &Spanned<Scalar>) {
        let value = kind.value.plain();
        if value != KIND {
            self.error(
                kind,
                format!("unknown kind `{value}`"),
                format!("mlreg manages registered models only: write `kind: {KIND}`"),
            );
        }
    }

    /// Checks `metadata.name` and that no other document declared it; returns the name.
    fn model_name(&mut self, name: &Spanned<Scalar>, seen: &mut Seen) -> String {
        let Some(value) = self.text("`metadata.name`", name) else {
            return name.value.plain();
        };
        if value.trim().is_empty() {
            self.error(
                name,
                "the model name is empty",
                "set `metadata.name` to the registered model's name in MLflow",
            );
        } else if let Some(bad) = value.chars().find(|c| c.is_control()) {
            // A control character would reach terminals and CI logs raw wherever the name
            // is printed (plans, reports, logs): an escape sequence there can hide or fake
            // lines of a plan under review.
            self.error(
                name,
                format!(
                    "model name `{}` contains the control character `{}`",
                    value.escape_debug(),
                    bad.escape_debug()
                ),
                "registered-model names are printed in plans and logs; remove the control character",
            );
        } else if let Some(bad) = value.chars().find(|c| matches!(c, '/' | ':')) {
            self.error(
                name,
                format!("model name `{value}` contains `{bad}`, which MLflow does not allow"),
                "registered-model names cannot contain `/` or `:`; rename the model (for example with `_`)",
            );
        } else {
            let origin = self.origin(name);
            match seen.get(&value) {
                Some(first) => {
                    let first = first.clone();
                    self.error_at(
                        origin,
                        format!("model `{value}` is declared twice"),
                        format!(
                            "it is first declared at {first}; a model is managed by exactly one manifest, so keep one of the two and merge what the other declares into it"
                        ),
                    );
                }
                None => {
                    seen.insert(value.clone(), origin);
                }
            }
        }
        value
    }

    fn spec(&mut self, spec: RawSpec) -> ModelSpec {
        let description = spec
            .description
            .and_then(|description| self.text("`description`", &description));
        let tags = spec.tags.map(|tags| self.tags(tags)).unwrap_or_default();
        let stages = spec
            .stages
            .and_then(|stages| self.present("stages", stages))
            .map(|stages| self.stages(stages));
        let aliases = spec
            .aliases
            .and_then(|aliases| self.present("aliases", aliases))
            .map(|aliases| self.aliases(aliases));
        let versions = spec
            .versions
            .map(|versions| self.versions(versions))
            .unwrap_or_default();
        let retention = spec
            .retention
            .and_then(|retention| self.keep_latest(&retention.keep_latest))
            .map(|keep_latest| Retention { keep_latest });
        let serving = spec.serving.map(|serving| Serving {
            prefer: serving.prefer.and_then(|prefer| self.prefer(prefer)),
            local_fallback: serving
                .local_fallback
                .and_then(|fallback| self.non_empty("`localFallback`", &fallback)),
        });
        let gates = spec
            .gates
            .map(|gates| self.gates(gates))
            .unwrap_or_default();
        ModelSpec {
            description,
            tags,
            stages,
            aliases,
            versions,
            retention,
            serving,
            gates,
            selectors: std::mem::take(&mut self.selectors),
        }
    }

    /// `spec.gates`: each key a stage or `@alias` (once), each gate's checks well formed.
    fn gates(&mut self, gates: GateMap) -> BTreeMap<Target, Gate> {
        let mut declared = BTreeMap::new();
        for (key, gate) in gates.0 {
            let target = match key.value.parse::<Target>() {
                Ok(target) => Some(target),
                Err(problem) => {
                    self.error(
                        &key,
                        format!("invalid gate target: {problem}"),
                        "key gates by stage (`Production`, `Staging`) or by alias written \"@name\" (quoted: YAML reserves a leading `@`)",
                    );
                    None
                }
            };
            let gate = self.gate(gate.value);
            let Some(target) = target else { continue };
            let origin = self.origin(&key);
            if declared.contains_key(&target) {
                self.error_at(
                    origin,
                    format!("the gate of `{target}` is declared twice"),
                    "declare one gate per target and list all of its checks there",
                );
                continue;
            }
            self.origins.gates.insert(target.clone(), origin);
            if let Some(gate) = gate {
                declared.insert(target, gate);
            }
        }
        declared
    }

    /// One gate; `None` when any check is malformed (each problem reported).
    fn gate(&mut self, gate: RawGate) -> Option<Gate> {
        let errors_before = self.diagnostics.len();
        let metrics = gate
            .metrics
            .map(|metrics| self.gate_metrics(metrics))
            .unwrap_or_default();
        let tags = gate
            .tags
            .map(|tags| self.gate_tags(tags))
            .unwrap_or_default();
        let soak = gate.soak.and_then(|soak| self.soak(soak));
        let no_regression = gate.no_regression.and_then(|rule| self.no_regression(rule));
        (self.diagnostics.len() == errors_before).then_some(Gate {
            metrics,
            tags,
            soak,
            no_regression,
        })
    }

    fn gate_metrics(&mut self, metrics: MetricMap) -> BTreeMap<String, Threshold> {
        let mut declared = BTreeMap::new();
        for (name, condition) in metrics.0 {
            if name.value.trim().is_empty() {
                self.error(
                    &name,
                    "the metric name is empty",
                    "name the run metric to check",
                );
                continue;
            }
            let field = format!("the condition on metric `{}`", name.value.escape_debug());
            let Some(text) = self.text(&field, &condition) else {
                continue;
            };
            match parse_threshold(&text) {
                Ok(threshold) => {
                    declared.insert(name.value, threshold);
                }
                Err(problem) => self.error(
                    &condition,
                    format!("invalid condition `{}` on metric `{}`: {problem}", text.escape_debug(), name.value.escape_debug()),
                    "write a comparator and a number, quoted: \">= 0.90\" (comparators >=, >, <=, <, ==)",
                ),
            }
        }
        declared
    }

    fn gate_tags(&mut self, tags: GateTagMap) -> BTreeMap<String, TagRequirement> {
        let mut declared = BTreeMap::new();
        for (key, value) in tags.0 {
            if let Err(problem) = validate_tag_key(&key.value) {
                self.error(&key, format!("gate tag key {problem}"), problem.help());
                continue;
            }
            let field = format!("gate tag `{}`", key.value.escape_debug());
            if let Some(value) = self.text(&field, &value) {
                let requirement = if value == "*" {
                    TagRequirement::Any
                } else {
                    TagRequirement::Value(value)
                };
                declared.insert(key.value, requirement);
            }
        }
        declared
    }

    fn soak(&mut self, soak: RawSoak) -> Option<Soak> {
        let within = self.text("`soak.in`", &soak.within).and_then(|text| {
            match text.parse::<Target>() {
                Ok(target) => Some(target),
                Err(problem) => {
                    self.error(
                        &soak.within,
                        format!("invalid `soak.in`: {problem}"),
                        "name where the version must have soaked: `Staging`, or an alias written \"@name\"",
                    );
                    None
                }
            }
        });
        let written = match &soak.duration.value {
            // `for: 3600` is a number of seconds, as `parse_duration` reads a bare number.
            Scalar::Int(seconds) => Some(seconds.to_string()),
            _ => self.text("`soak.for`", &soak.duration),
        };
        let duration =
            written
                .as_deref()
                .and_then(|text| match crate::settings::parse_duration(text) {
                    Ok(duration) => Some(duration),
                    Err(problem) => {
                        self.error(
                            &soak.duration,
                            format!("invalid `soak.for`: {problem}"),
                            "write how long the version must soak, such as 30m or 24h",
                        );
                        None
                    }
                });
        Some(Soak {
            within: within?,
            written: written?,
            duration: duration?,
        })
    }

    fn no_regression(&mut self, rule: RawNoRegression) -> Option<NoRegression> {
        let metric = self.non_empty("`noRegression.metric`", &rule.metric);
        let direction = self
            .text("`noRegression.direction`", &rule.direction)
            .and_then(|text| match text.as_str() {
                "higher" => Some(Direction::Higher),
                "lower" => Some(Direction::Lower),
                other => {
                    self.error(
                        &rule.direction,
                        format!("unknown `noRegression.direction` `{}`", other.escape_debug()),
                        "write `higher` (higher is better, as accuracy) or `lower` (as latency or loss)",
                    );
                    None
                }
            });
        let tolerance = match &rule.tolerance {
            None => Some(0.0),
            Some(written) => {
                let value = match &written.value {
                    Scalar::Int(value) => Some(*value as f64),
                    Scalar::Float(value) => Some(*value),
                    _ => None,
                };
                match value {
                    Some(value) if value.is_finite() && value >= 0.0 => Some(value),
                    _ => {
                        self.error(
                            written,
                            format!(
                                "`noRegression.tolerance` must be a number of 0 or more, not {}",
                                written.value.describe()
                            ),
                            "write how much worse than the current holder is still accepted, unquoted (such as 0.005)",
                        );
                        None
                    }
                }
            }
        };
        Some(NoRegression {
            metric: metric?,
            direction: direction?,
            tolerance: tolerance?,
        })
    }

    /// `stages:` or `aliases:` with nothing after it is refused: it could mean "none" or
    /// "leave alone", and the two differ a lot when the map is exhaustive.
    fn present<T>(&mut self, field: &str, value: Spanned<Option<T>>) -> Option<T> {
        if value.value.is_none() {
            self.error(
                &value,
                format!("`{field}` is empty (null)"),
                format!(
                    "write `{field}: {{}}` to declare that there must be none, or remove the `{field}` key to leave them alone"
                ),
            );
        }
        value.value
    }

    /// A string value; anything else is reported (an unquoted `true` or `3` must be quoted).
    fn text(&mut self, field: &str, value: &Spanned<Scalar>) -> Option<String> {
        match &value.value {
            Scalar::Str(text) => Some(text.clone()),
            Scalar::Null => {
                self.error(
                    value,
                    format!("{field} has no value"),
                    "give it a value, or remove it",
                );
                None
            }
            other => {
                self.error(
                    value,
                    format!("{field} must be a string, not {}", other.describe()),
                    format!(
                        "quote it: \"{}\" (unquoted numbers and true/false are not strings in YAML)",
                        other.plain()
                    ),
                );
                None
            }
        }
    }

    /// A string value that must not be blank.
    fn non_empty(&mut self, field: &str, value: &Spanned<Scalar>) -> Option<String> {
        let text = self.text(field, value)?;
        if text.trim().is_empty() {
            self.error(
                value,
                format!("{field} is empty"),
                "give it a value, or remove it",
            );
            return None;
        }
        Some(text)
    }

    /// `serving.prefer`: stages and `@aliases`, each once, at least one.
    fn prefer(&mut self, prefer: Vec<Spanned<Scalar>>) -> Option<Vec<Target>> {
        let mut targets: Vec<Target> = Vec::with_capacity(prefer.len());
        let mut valid = true;
        if prefer.is_empty() {
            self.error_at(
                self.origins.name.clone(),
                "`serving.prefer` is empty",
                "list the stages and `@aliases` to serve from, in order, or remove `prefer` for the default [Production, Staging]",
            );
            return None;
        }
        for written in &prefer {
            let Some(text) = self.text("a `serving.prefer` entry", written) else {
                valid = false;
                continue;
            };
            match text.parse::<Target>() {
                Ok(target) if targets.contains(&target) => {
                    self.error(
                        written,
                        format!("`{target}` is listed twice in `serving.prefer`"),
                        "list each target once",
                    );
                    valid = false;
                }
                Ok(target) => targets.push(target),
                Err(problem) => {
                    self.error(
                        written,
                        format!("invalid `serving.prefer` entry: {problem}"),
                        "write stages as `Production` or `Staging` and aliases as \"@name\" (quoted: YAML reserves a leading `@`)",
                    );
                    valid = false;
                }
            }
        }
        valid.then_some(targets)
    }

    fn keep_latest(&mut self, keep: &Spanned<Scalar>) -> Option<u32> {
        let value = match &keep.value {
            Scalar::Int(value) => *value,
            other => {
                self.error(
                    keep,
                    format!("keepLatest must be an integer, not {}", other.describe()),
                    "write how many unassigned versions to keep, without quotes (such as 3)",
                );
                return None;
            }
        };
        match u32::try_from(value) {
            Ok(keep_latest) => Some(keep_latest),
            Err(_) if value < 0 => {
                self.error(
                    keep,
                    format!("keepLatest is negative ({value})"),
                    "keepLatest is how many unassigned versions to keep: 0 or more (0 archives every unassigned version)",
                );
                None
            }
            Err(_) => {
                self.error(
                    keep,
                    format!("keepLatest is too large ({value})"),
                    format!("use a number up to {}", u32::MAX),
                );
                None
            }
        }
    }

    /// A version number written in a stage or an alias, at `origin`.
    fn version(&mut self, value: &Scalar, origin: &Origin) -> Option<u64> {
        let (message, help) = match value {
            Scalar::Int(number) => match u64::try_from(*number) {
                Ok(version) if version > 0 => return Some(version),
                _ => (
                    format!("`{number}` is not a version number"),
                    "model-version numbers are positive integers (1, 2, 3, ...)".to_owned(),
                ),
            },
            Scalar::Str(text) if parse_version_key(text).is_some() => (
                format!("version \"{text}\" is written as a string"),
                format!("write version numbers without quotes: {text}"),
            ),
            other => (
                format!("expected a version number, found {}", other.describe()),
                "model-version numbers are positive integers (1, 2, 3, ...)".to_owned(),
            ),
        };
        self.error_at(origin.clone(), message, help);
        None
    }

    /// A version reference written in a stage or an alias, at `origin`: a number or a
    /// selector.
    fn version_ref(&mut self, value: &RawRef, origin: &Origin) -> Option<VersionRef> {
        match value {
            RawRef::Number(number) => self.version(number, origin).map(VersionRef::Number),
            RawRef::Selector(selector) => self.selector(selector, origin).map(VersionRef::Select),
        }
    }

    /// `{run: ID, artifactPath: PATH}` or `{loggedModel: m-…}`.
    fn selector(&mut self, raw: &RawSelector, origin: &Origin) -> Option<Selector> {
        const HELP: &str = "write `{run: RUN_ID}` (optionally with `artifactPath: PATH`, default `model`) or `{loggedModel: m-…}`";
        match (&raw.run, &raw.logged_model) {
            (Some(_), Some(logged)) => {
                self.error(
                    logged,
                    "a selector names either a run or a logged model, not both",
                    HELP,
                );
                None
            }
            (None, None) => {
                self.error_at(
                    origin.clone(),
                    "a selector needs `run` or `loggedModel`",
                    HELP,
                );
                None
            }
            (Some(run), None) => {
                let run_id = self.id_text("`run`", run)?;
                if let Err(problem) = validate_run_id(&run_id) {
                    self.error(
                        run,
                        format!("invalid run id `{run_id}`: {problem}"),
                        "copy the run id from MLflow (`mlflow.active_run().info.run_id`)",
                    );
                    return None;
                }
                let artifact_path = match &raw.artifact_path {
                    None => DEFAULT_ARTIFACT_PATH.to_owned(),
                    Some(path) => {
                        let text = self.text("`artifactPath`", path)?;
                        if text.trim().is_empty() || text.starts_with('/') {
                            self.error(
                                path,
                                "`artifactPath` must be a relative path, not empty",
                                "the name the run logged the model under, such as `model`",
                            );
                            return None;
                        }
                        text
                    }
                };
                Some(Selector::Run {
                    run_id,
                    artifact_path,
                })
            }
            (None, Some(logged)) => {
                if let Some(path) = &raw.artifact_path {
                    self.error(
                        path,
                        "`artifactPath` only goes with `run`",
                        "a logged model is named by its id alone: `{loggedModel: m-…}`",
                    );
                    return None;
                }
                let model_id = self.id_text("`loggedModel`", logged)?;
                if let Err(problem) = validate_model_id(&model_id) {
                    self.error(
                        logged,
                        format!("invalid logged model id `{model_id}`: {problem}"),
                        "copy the id from MLflow (`model_info.model_id`, such as m-5d88fee35e7a4ea29f3a7c2f79dce10d)",
                    );
                    return None;
                }
                Some(Selector::LoggedModel { model_id })
            }
        }
    }

    /// An id written as a string (an id YAML reads as a number must be quoted).
    fn id_text(&mut self, field: &str, value: &Spanned<Scalar>) -> Option<String> {
        match &value.value {
            Scalar::Str(text) => Some(text.clone()),
            other => {
                let plain = other.plain();
                self.error(
                    value,
                    format!("{field} must be a string, found {}", other.describe()),
                    format!("quote it: \"{plain}\""),
                );
                None
            }
        }
    }

    fn stages(&mut self, stages: StageMap) -> Stages {
        let mut declared = Stages::default();
        let mut stage_keys: BTreeMap<Stage, Origin> = BTreeMap::new();
        // Which stage each version was first placed in, to refuse a second one.
        let mut placed: BTreeMap<u64, (Stage, Origin)> = BTreeMap::new();
        let mut placed_selectors: BTreeMap<Selector, (Stage, Origin)> = BTreeMap::new();
        for (key, value) in stages.0 {
            let Some(stage) = self.stage_key(&key) else {
                continue;
            };
            let key_origin = self.origin(&key);
            if let Some(first) = stage_keys.get(&stage) {
                let first = first.clone();
                self.error_at(
                    key_origin,
                    format!("stage {stage} is declared twice"),
                    format!(
                        "it is first declared at {first} (stage names are case-insensitive); list all its versions under one key"
                    ),
                );
                continue;
            }
            stage_keys.insert(stage, key_origin);

            let value_origin = self.origin(&value);
            let written: Vec<(RawRef, Origin)> = match value.value {
                StageValue::One(number) => vec![(number, value_origin)],
                StageValue::Many(numbers) => numbers
                    .into_iter()
                    .map(|number| {
                        let origin = self.origin(&number);
                        (number.value, origin)
                    })
                    .collect(),
            };
            for (written, origin) in written {
                let version = match self.version_ref(&written, &origin) {
                    None => continue,
                    Some(VersionRef::Number(version)) => version,
                    Some(VersionRef::Select(selector)) => {
                        self.stage_selector(stage, selector, origin, &mut placed_selectors);
                        continue;
                    }
                };
                match placed.get(&version) {
                    Some((first_stage, first)) if *first_stage == stage => {
                        let first = first.clone();
                        self.error_at(
                            origin,
                            format!("version {version} is listed twice in {stage}"),
                            format!("it is first listed at {first}; remove the repetition"),
                        );
                    }
                    Some((first_stage, first)) => {
                        let (first_stage, first) = (*first_stage, first.clone());
                        self.error_at(
                            origin,
                            format!("version {version} is declared in both {first_stage} and {stage}"),
                            format!(
                                "a version sits in one stage only; it is first placed in {first_stage} at {first}: remove it from one of the two"
                            ),
                        );
                    }
                    None => {
                        placed.insert(version, (stage, origin.clone()));
                        self.origins.stages.insert((stage, version), origin);
                        if let Some(versions) = declared.get_mut(stage) {
                            versions.insert(version);
                        }
                    }
                }
            }
        }
        declared
    }

    /// Records a selector placed in `stage`, refusing one placed twice.
    fn stage_selector(
        &mut self,
        stage: Stage,
        selector: Selector,
        origin: Origin,
        placed: &mut BTreeMap<Selector, (Stage, Origin)>,
    ) {
        if let Some((first_stage, first)) = placed.get(&selector) {
            let (first_stage, first) = (*first_stage, first.clone());
            self.error_at(
                origin,
                format!("{selector} is placed in {stage} and, at {first}, in {first_stage}"),
                "a version sits in one stage only: remove one of the two",
            );
            return;
        }
        placed.insert(selector.clone(), (stage, origin.clone()));
        let target = Target::Stage(stage);
        self.origins
            .selectors
            .insert((target.clone(), selector.clone()), origin);
        self.selectors.entry(target).or_default().insert(selector);
    }

    /// Reads a stage key; only Staging and Production (any case) may be declared.
    fn stage_key(&mut self, key: &Spanned<String>) -> Option<Stage> {
        let written = &key.value;
        match written.parse::<Stage>() {
            Ok(stage) if stage.is_declarable() => Some(stage),
            Ok(stage) => {
                self.error(
                    key,
                    format!("stage {stage} cannot be declared"),
                    "only Staging and Production may be declared: versions left out of `stages` are archived by mlreg, and new versions start in None",
                );
                None
            }
            Err(_) => {
                self.error(
                    key,
                    format!("unknown stage `{written}`"),
                    "only Staging and Production may be declared (in any case, e.g. `Production:` or `production:`)",
                );
                None
            }
        }
    }

    fn aliases(&mut self, aliases: AliasMap) -> BTreeMap<String, u64> {
        let mut declared = BTreeMap::new();
        for (name, target) in aliases.0 {
            let valid_name = match validate_alias_name(&name.value) {
                Ok(()) => true,
                Err(problem) => {
                    self.error(
                        &name,
                        format!("invalid alias name `{}`: {problem}", name.value),
                        "alias names use letters, digits, `_` and `-` (at most 255 characters); `latest` and `v<number>` are reserved by MLflow",
                    );
                    false
                }
            };
            let origin = self.origin(&target);
            match (self.version_ref(&target.value, &origin), valid_name) {
                (Some(VersionRef::Number(version)), true) => {
                    self.origins.aliases.insert(name.value.clone(), origin);
                    declared.insert(name.value, version);
                }
                (Some(VersionRef::Select(selector)), true) => {
                    let target = Target::Alias(name.value.clone());
                    self.origins
                        .aliases
                        .insert(name.value.clone(), origin.clone());
                    self.origins
                        .selectors
                        .insert((target.clone(), selector.clone()), origin);
                    self.selectors.insert(target, BTreeSet::from([selector]));
                }
                _ => {}
            }
        }
        declared
    }

    fn versions(&mut self, versions: VersionMap) -> BTreeMap<u64, VersionSpec> {
        let mut declared: BTreeMap<u64, VersionSpec> = BTreeMap::new();
        for (key, raw) in versions.0 {
            let origin = self.origin(&key);
            let number = match &key.value {
                Scalar::Int(number) => Some(*number),
                Scalar::Str(text) => parse_version_key(text),
                _ => None,
            };
            let version = match number.and_then(|number| u64::try_from(number).ok()) {
                Some(version) if version > 0 => Some(version),
                _ => {
                    self.error_at(
                        origin.clone(),
                        format!("`{}` is not a version number", key.value.plain()),
                        "the keys of `versions` are model-version numbers, written like \"3\"",
                    );
                    None
                }
            };
            let run_id = raw
                .run_id
                .and_then(|run_id| self.non_empty("`runId`", &run_id));
            let source = raw
                .source
                .and_then(|source| self.non_empty("`source`", &source));
            let tags = raw.tags.map(|tags| self.tags(tags)).unwrap_or_default();
            let Some(version) = version else {
                continue;
            };
            if let Some(first) = self.origins.versions.get(&version) {
                let first = first.clone();
                self.error_at(
                    origin,
                    format!("version {version} is declared twice in `versions`"),
                    format!("it is first declared at {first}; merge the two entries"),
                );
                continue;
            }
            self.origins.versions.insert(version, origin);
            declared.insert(
                version,
                VersionSpec {
                    run_id,
                    source,
                    tags,
                },
            );
        }
        declared
    }

    fn tags(&mut self, tags: TagMap) -> BTreeMap<String, String> {
        let mut declared = BTreeMap::new();
        for (key, value) in tags.0 {
            let name = &key.value;
            let valid_key = if name.starts_with(RESERVED_TAG_PREFIX) {
                self.error(
                    &key,
                    format!("tag key `{}` is reserved", name.escape_debug()),
                    format!(
                        "mlreg writes the `{RESERVED_TAG_PREFIX}*` tags itself (its audit trail); use another prefix"
                    ),
                );
                false
            } else if let Err(problem) = validate_tag_key(name) {
                // An empty or very long key is not worth quoting.
                let message = match problem {
                    TagKeyProblem::Empty | TagKeyProblem::TooLong(_) => {
                        format!("tag key {problem}")
                    }
                    _ => format!("tag key `{}` {problem}", name.escape_debug()),
                };
                self.error(&key, message, problem.help());
                false
            } else {
                true
            };
            let value = self.text(&format!("tag `{}`", name.escape_debug()), &value);
            if let (true, Some(value)) = (valid_key, value) {
                declared.insert(key.value, value);
            }
        }
        declared
    }
}

/// `">= 0.90"`: a comparator, then a finite number.
pub(crate) fn parse_threshold(text: &str) -> Result<Threshold, String> {
    let text = text.trim();
    let Some(comparator) = Comparator::ALL
        .into_iter()
        .find(|comparator| text.starts_with(comparator.as_str()))
    else {
        return Err("it does not start with a comparator (>=, >, <=, <, ==)".to_owned());
    };
    let number = text[comparator.as_str().len()..].trim();
    match number.parse::<f64>() {
        Ok(bound) if bound.is_finite() => Ok(Threshold { comparator, bound }),
        _ => Err(format!(
            "`{}` is not a finite number",
            number.escape_debug()
        )),
    }
}

/// A version number written as a string: digits only, no sign, no leading zero.
fn parse_version_key(text: &str) -> Option<i128> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || text.starts_with('0') {
        return None;
    }
    text.parse::<i128>().ok()
}

/// Why MLflow would refuse a tag key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagKeyProblem {
    /// Empty or blank.
    Empty,
    /// Longer than MLflow's limit (the length in characters).
    TooLong(usize),
    /// A character MLflow does not allow in tag keys.
    Character(char),
    /// A key that would name another path when MLflow treats it as a file name.
    Path,
}

impl std::fmt::Display for TagKeyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TagKeyProblem::Empty => f.write_str("is empty"),
            TagKeyProblem::TooLong(length) => write!(f, "is {length} characters long"),
            TagKeyProblem::Character(c) => write!(
                f,
                "contains `{}`, which MLflow does not allow in tag keys",
                c.escape_debug()
            ),
            TagKeyProblem::Path => f.write_str(
                "would name another path when MLflow treats it as a file name (a leading `/` or `..`, or an empty, `.` or `..` part between slashes)",
            ),
        }
    }
}

impl TagKeyProblem {
    /// What to do about it.
    pub fn help(&self) -> &'static str {
        match self {
            TagKeyProblem::Empty => "give the tag a name, or remove it",
            TagKeyProblem::TooLong(_) => {
                "MLflow accepts tag keys of at most 250 characters; shorten it"
            }
            TagKeyProblem::Character(_) => {
                "MLflow accepts letters, digits, `_`, `-`, `.`, `:`, spaces and `/` in tag keys; rename the tag"
            }
            TagKeyProblem::Path => {
                "write path-like keys as `team/owner`: no leading `/` or `..`, no `//`, `/./` or `/../`, no trailing `/`"
            }
        }
    }
}

/// Checks a tag key against MLflow's rules (`_validate_tag_name` and the registry's length
/// limit).
///
/// MLflow accepts 1 to 250 characters among letters, digits, `_`, `-`, `.`, `:`, spaces and
/// `/`, and refuses keys that would name another path when treated as a file name: a
/// leading `/`, an empty, `.` or `..` path component, or a leading `..`. Checking here
/// means a manifest the server would refuse fails `mlreg validate` instead of half-way
/// through an apply, and that no control character reaches a plan from a tag key.
pub fn validate_tag_key(key: &str) -> Result<(), TagKeyProblem> {
    if key.trim().is_empty() {
        return Err(TagKeyProblem::Empty);
    }
    let length = key.chars().count();
    if length > MAX_TAG_KEY_LENGTH {
        return Err(TagKeyProblem::TooLong(length));
    }
    if let Some(bad) = key
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | ' ' | '/')))
    {
        return Err(TagKeyProblem::Character(bad));
    }
    if key.starts_with('/')
        || key.starts_with("..")
        || key
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(TagKeyProblem::Path);
    }
    Ok(())
}

/// Checks an alias name against MLflow's rules; `Err` says what is wrong.
///
/// MLflow accepts 1 to 255 characters among letters, digits, `_` and `-`, and reserves
/// `latest` (any case) and `v<digits>` / `V<digits>`, which name versions.
pub fn validate_alias_name(alias: &str) -> Result<(), String> {
    const MAX_ALIAS_LENGTH: usize = 255;
    if alias.is_empty() {
        return Err("the name is empty".to_owned());
    }
    if alias.len() > MAX_ALIAS_LENGTH {
        return Err(format!(
            "the name is {} characters long; at most {MAX_ALIAS_LENGTH} are allowed",
            alias.chars().count()
        ));
    }
    if let Some(bad) = alias
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
    {
        return Err(format!(
            "`{}` is not allowed; only letters, digits, `_` and `-` are",
            bad.escape_debug()
        ));
    }
    if alias.eq_ignore_ascii_case("latest") {
        return Err("`latest` is reserved by MLflow for the newest version".to_owned());
    }
    let digits = alias.strip_prefix(['v', 'V']).unwrap_or_default();
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{alias}` is reserved by MLflow: `v<number>` refers to a version number"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_names_follow_mlflow_rules() {
        for valid in [
            "champion",
            "challenger-2",
            "A_b-9",
            "v",
            "v1a",
            "version3",
            "x",
        ] {
            assert_eq!(validate_alias_name(valid), Ok(()), "{valid}");
        }
        let long = "a".repeat(256);
        for invalid in [
            "",
            "latest",
            "LaTeSt",
            "v1",
            "V42",
            "has space",
            "dot.ted",
            "é",
            &long,
        ] {
            assert!(validate_alias_name(invalid).is_err(), "{invalid}");
        }
        assert_eq!(validate_alias_name(&"a".repeat(255)), Ok(()));
    }

    #[test]
    fn tag_keys_follow_mlflow_rules() {
        for valid in ["team", "a.b-c_d", "x y", "team/owner", "k:v", "é", "3"] {
            assert_eq!(validate_tag_key(valid), Ok(()), "{valid}");
        }
        let long = "a".repeat(251);
        for invalid in [
            "",
            "a\u{1b}[31mred",
            "tab\tkey",
            "/abs",
            "a//b",
            "a/",
            "./a",
            "a/./b",
            "a/../b",
            "..a",
            ".",
            "semi;colon",
            "quote\"",
            &long,
        ] {
            assert!(validate_tag_key(invalid).is_err(), "{invalid:?}");
        }
        assert_eq!(validate_tag_key(&"a".repeat(250)), Ok(()));
    }

    #[test]
    fn version_keys_are_canonical_positive_integers() {
        assert_eq!(parse_version_key("3"), Some(3));
        assert_eq!(parse_version_key("120"), Some(120));
        for bad in ["", "03", "-1", "+3", "3.0", "three", " 3"] {
            assert_eq!(parse_version_key(bad), None, "{bad}");
        }
    }
}
