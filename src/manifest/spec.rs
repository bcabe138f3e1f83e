//! What a manifest means, apart from where it is written.
//!
//! A [`DesiredModel`] is two things kept side by side: its [`ModelSpec`], the meaning (plain
//! values, no file positions), and its [`Origins`], a table of where each part is written,
//! used only to point diagnostics at a line and column.
//!
//! Keeping positions out of the meaning makes `==` on [`ModelSpec`] the one change
//! detector: the daemon compares specs to tell a manifest change from drift (a comment, a
//! reordering or a move to another file is not a change), an edit is verified by comparing
//! the specs read back from the edited text, and `mlreg export` checks that the text it
//! writes reads back as the spec it wrote. A new field added here is seen by all three
//! without touching them; [`to_yaml`] writes it too, through `Serialize`.
//!
//! The spec is canonical, so that equal meanings compare equal: versions of a stage are a
//! set (`[5, 4]` means `[4, 5]`), and an empty stage is the same as an absent one
//! (`Staging: []` and no `Staging` key both mean "no version in Staging").

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::ser::{SerializeMap as _, Serializer};
use serde::{Deserialize, Serialize};

use super::selector::Selector;
use crate::diagnostic::Origin;
use crate::stage::Stage;
use crate::target::Target;

/// One registered model as a manifest declares it: its name, what it means, and where
/// each part is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredModel {
    /// The registered model's name (`metadata.name`).
    pub name: String,
    /// What the manifest declares about the model.
    pub spec: ModelSpec,
    /// Where the parts of the declaration are written, for diagnostics.
    pub origins: Origins,
}

impl DesiredModel {
    /// The manifest file that declares the model.
    pub fn file(&self) -> &Path {
        &self.origins.name.file
    }

    /// Every version number the manifest mentions (stages, aliases, `versions`), each with
    /// the place it is first written, so a missing version can be reported there.
    pub fn referenced_versions(&self) -> BTreeMap<u64, Origin> {
        let spec = &self.spec;
        let origins = &self.origins;
        let mut referenced = BTreeMap::new();
        if let Some(stages) = &spec.stages {
            for (stage, versions) in stages.iter() {
                for version in versions {
                    referenced
                        .entry(*version)
                        .or_insert_with(|| origins.stage_version(stage, *version));
                }
            }
        }
        if let Some(aliases) = &spec.aliases {
            for (alias, version) in aliases {
                referenced
                    .entry(*version)
                    .or_insert_with(|| origins.alias(alias));
            }
        }
        for version in spec.versions.keys() {
            referenced
                .entry(*version)
                .or_insert_with(|| origins.version(*version));
        }
        referenced
    }
}

/// What a manifest declares about one model, without file positions. `PartialEq` is the
/// change detector (see the module documentation); `Serialize` writes the manifest's own
/// format (camelCase, as `spec:` holds it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelSpec {
    /// `spec.description`; enforced when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `spec.tags`; the declared keys are enforced, other keys are left alone.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// `spec.stages`; when present it is exhaustive: a declarable stage holding no version
    /// here must hold no version in the registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stages: Option<Stages>,
    /// `spec.aliases`, alias name → version; when present it is exhaustive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aliases: Option<BTreeMap<String, u64>>,
    /// `spec.versions`: per-version assertions and metadata.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<u64, VersionSpec>,
    /// `spec.retention`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// `spec.serving`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving: Option<Serving>,
    /// `spec.gates`: what a version must show before it enters a stage or an alias.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub gates: BTreeMap<Target, Gate>,
    /// The selectors written in `stages` and `aliases` (`{run: ID}`, `{loggedModel: m-…}`),
    /// by the target they place a version in; the numbers stay in `stages` and `aliases`.
    /// A target's selectors and numbers together are what it holds: the plan resolves each
    /// selector against the registry ([`crate::select`]). An alias holds one selector at
    /// most, and then no number. [`to_yaml`] writes numbers only (`mlreg export` builds
    /// specs from the registry, which holds numbers), so it leaves these out.
    #[serde(skip)]
    pub selectors: BTreeMap<Target, BTreeSet<Selector>>,
}

impl ModelSpec {
    /// The versions declared in `stage` (none when `stages` is absent or `stage` is not
    /// declarable).
    pub fn versions_in(&self, stage: Stage) -> &BTreeSet<u64> {
        match &self.stages {
            Some(stages) => stages.get(stage),
            None => &NO_VERSIONS,
        }
    }

    /// The stage the manifest places `version` in, if any.
    pub fn declared_stage_of(&self, version: u64) -> Option<Stage> {
        self.stages.as_ref()?.stage_of(version)
    }

    /// The local fallback `mlreg resolve` answers with, if declared.
    pub fn local_fallback(&self) -> Option<&str> {
        self.serving.as_ref()?.local_fallback.as_deref()
    }

    /// The targets `mlreg resolve` tries, in order: `serving.prefer`, else Production then
    /// Staging.
    pub fn serving_targets(&self) -> Vec<Target> {
        self.serving
            .as_ref()
            .and_then(|serving| serving.prefer.clone())
            .unwrap_or_else(|| {
                vec![
                    Target::Stage(Stage::Production),
                    Target::Stage(Stage::Staging),
                ]
            })
    }
}

/// No version: what an undeclared stage holds.
static NO_VERSIONS: BTreeSet<u64> = BTreeSet::new();

/// `spec.stages`: the versions of each declarable stage. A stage without versions and a
/// stage left out are the same thing (both must hold no version).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stages {
    production: BTreeSet<u64>,
    staging: BTreeSet<u64>,
}

impl Stages {
    /// The versions declared in `stage` (none for `None` and `Archived`).
    pub fn get(&self, stage: Stage) -> &BTreeSet<u64> {
        match stage {
            Stage::Production => &self.production,
            Stage::Staging => &self.staging,
            Stage::None | Stage::Archived => &NO_VERSIONS,
        }
    }

    /// The versions of `stage`, to change them; `None` for a stage that cannot be declared.
    pub fn get_mut(&mut self, stage: Stage) -> Option<&mut BTreeSet<u64>> {
        match stage {
            Stage::Production => Some(&mut self.production),
            Stage::Staging => Some(&mut self.staging),
            Stage::None | Stage::Archived => None,
        }
    }

    /// Each declarable stage with its versions, in the order promotions are applied
    /// ([`Stage::DECLARABLE`]).
    pub fn iter(&self) -> impl Iterator<Item = (Stage, &BTreeSet<u64>)> {
        Stage::DECLARABLE
            .into_iter()
            .map(move |stage| (stage, self.get(stage)))
    }

    /// Every declared version, whatever its stage.
    pub fn all_versions(&self) -> impl Iterator<Item = u64> + '_ {
        self.production.iter().chain(&self.staging).copied()
    }

    /// The stage `version` is declared in, if any.
    pub fn stage_of(&self, version: u64) -> Option<Stage> {
        self.iter()
            .find(|(_, versions)| versions.contains(&version))
            .map(|(stage, _)| stage)
    }
}

impl<const N: usize> From<[(Stage, &[u64]); N]> for Stages {
    /// Stages from a table (tests, edits); undeclarable stages are ignored.
    fn from(table: [(Stage, &[u64]); N]) -> Self {
        let mut stages = Stages::default();
        for (stage, versions) in table {
            if let Some(set) = stages.get_mut(stage) {
                set.extend(versions.iter().copied());
            }
        }
        stages
    }
}

impl Serialize for Stages {
    /// Both stages, always (`stages` is exhaustive, so an empty one is written `[]` rather
    /// than left out): one version as a number, several as a flow list.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(Stage::DECLARABLE.len()))?;
        for (stage, versions) in self.iter() {
            match versions.len() {
                1 => map.serialize_entry(stage.as_str(), &versions.first())?,
                _ => map.serialize_entry(stage.as_str(), &serde_saphyr::FlowSeq(versions))?,
            }
        }
        map.end()
    }
}

/// `spec.versions."N"`: assertions about one version and metadata to enforce on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionSpec {
    /// Refuse to touch the model unless the version was produced by this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Refuse to touch the model unless the version's source is exactly this URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Version tags to enforce (declared keys only).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// `spec.retention`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retention {
    /// How many unassigned (`None`-stage, unreferenced) versions to keep, newest first.
    pub keep_latest: u32,
}

/// `spec.serving`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Serving {
    /// The targets `mlreg resolve` tries, in order (default: Production, then Staging).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefer: Option<Vec<Target>>,
    /// What `mlreg resolve` answers when the registry cannot say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_fallback: Option<String>,
}

/// `spec.gates.<target>`: the evidence a version must show to enter the target. Every
/// declared check must pass; an empty gate lets every version in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    /// Metric name → the condition its latest value must meet.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, Threshold>,
    /// Version tag key → the value it must hold (`*`: any value, but present).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, TagRequirement>,
    /// How long the version must have been in another target first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soak: Option<Soak>,
    /// Not worse than the version that holds the target now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_regression: Option<NoRegression>,
}

/// A comparison of a metric's value with a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Comparator {
    /// `>=`
    AtLeast,
    /// `>`
    Above,
    /// `<=`
    AtMost,
    /// `<`
    Below,
    /// `==`
    Equal,
}

impl Comparator {
    /// Every comparator, longest spelling first (so `>=` is matched before `>`).
    pub const ALL: [Comparator; 5] = [
        Comparator::AtLeast,
        Comparator::AtMost,
        Comparator::Equal,
        Comparator::Above,
        Comparator::Below,
    ];

    /// As written in a manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Comparator::AtLeast => ">=",
            Comparator::Above => ">",
            Comparator::AtMost => "<=",
            Comparator::Below => "<",
            Comparator::Equal => "==",
        }
    }

    /// Whether `value` meets the comparison with `bound`.
    pub fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Comparator::AtLeast => value >= bound,
            Comparator::Above => value > bound,
            Comparator::AtMost => value <= bound,
            Comparator::Below => value < bound,
            Comparator::Equal => value == bound,
        }
    }
}

/// `name: ">= 0.90"`: a metric's latest value compared with a finite number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    /// How the value is compared.
    pub comparator: Comparator,
    /// The bound; never NaN nor infinite (the checks refuse them), which makes `Eq` sound.
    pub bound: f64,
}

impl Eq for Threshold {}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.comparator.as_str(), self.bound)
    }
}

impl Serialize for Threshold {
    /// As written in a manifest: `">= 0.9"`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// What a gate requires of one version tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagRequirement {
    /// `"*"`: present, whatever its value.
    Any,
    /// Exactly this value.
    Value(String),
}

impl std::fmt::Display for TagRequirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TagRequirement::Any => f.write_str("*"),
            TagRequirement::Value(value) => f.write_str(value),
        }
    }
}

impl Serialize for TagRequirement {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// `soak: {in: Staging, for: 24h}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Soak {
    /// Where the version must have been: a stage, or an alias that pointed at it.
    #[serde(rename = "in")]
    pub within: Target,
    /// How long at least, as written (`24h`), so an exported manifest reads the same.
    #[serde(rename = "for")]
    pub written: String,
    /// The same, parsed.
    #[serde(skip)]
    pub duration: std::time::Duration,
}

/// Which way a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Higher is better (accuracy).
    Higher,
    /// Lower is better (latency, loss).
    Lower,
}

impl Direction {
    /// As written in a manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Higher => "higher",
            Direction::Lower => "lower",
        }
    }
}

/// `noRegression: {metric, direction, tolerance}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoRegression {
    /// The metric compared.
    pub metric: String,
    /// Which way is better.
    pub direction: Direction,
    /// How much worse than the current holder is still accepted (finite, not negative).
    pub tolerance: f64,
}

impl Eq for NoRegression {}

/// Where the parts of one model's declaration are written. Used only for diagnostics:
/// nothing compares origins, so moving text around a file changes nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origins {
    /// Where `metadata.name` is written; its file is the model's manifest.
    pub name: Origin,
    /// Where each version of a stage is written.
    pub stages: BTreeMap<(Stage, u64), Origin>,
    /// Where each alias's version is written.
    pub aliases: BTreeMap<String, Origin>,
    /// Where each key of `spec.versions` is written.
    pub versions: BTreeMap<u64, Origin>,
    /// Where each target of `spec.gates` is written.
    pub gates: BTreeMap<Target, Origin>,
    /// Where each selector of a target is written.
    pub selectors: BTreeMap<(Target, Selector), Origin>,
}

impl Origins {
    /// Origins that only know the file and the model's name position (for models built in
    /// code); every lookup answers the name's position.
    pub fn at(name: Origin) -> Self {
        Origins {
            name,
            stages: BTreeMap::new(),
            aliases: BTreeMap::new(),
            versions: BTreeMap::new(),
            gates: BTreeMap::new(),
            selectors: BTreeMap::new(),
        }
    }

    /// Where `selector` is written for `target` (else where the model is named).
    pub fn selector(&self, target: &Target, selector: &Selector) -> Origin {
        self.selectors
            .get(&(target.clone(), selector.clone()))
            .unwrap_or(&self.name)
            .clone()
    }

    /// Where `version` is written in `stage` (else where the model is named).
    pub fn stage_version(&self, stage: Stage, version: u64) -> Origin {
        self.stages
            .get(&(stage, version))
            .unwrap_or(&self.name)
            .clone()
    }

    /// Where the version of `alias` is written (else where the model is named).
    pub fn alias(&self, alias: &str) -> Origin {
        self.aliases.get(alias).unwrap_or(&self.name).clone()
    }

    /// Where `spec.versions."N"` is written (else where the model is named).
    pub fn version(&self, version: u64) -> Origin {
        self.versions.get(&version).unwrap_or(&self.name).clone()
    }
}

/// A whole manifest document, for writing one.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    api_version: &'a str,
    kind: &'a str,
    metadata: Metadata<'a>,
    spec: &'a ModelSpec,
}

/// `metadata` of a written manifest.
#[derive(Serialize)]
struct Metadata<'a> {
    name: &'a str,
}

/// Why a spec could not be written as YAML.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the manifest as YAML: {0}")]
pub struct WriteError(#[from] serde_saphyr::SerializeError);

/// The manifest document declaring `spec` for model `name`, as YAML text: strings are
/// quoted whenever a reader could take them for another type (`"true"`, `"3"`), control
/// characters are escaped, stage lists are written flow style (`[4, 5]`).
pub fn to_yaml(name: &str, spec: &ModelSpec) -> Result<String, WriteError> {
    let document = Document {
        api_version: super::API_VERSION,
        kind: super::KIND,
        metadata: Metadata { name },
        spec,
    };
    let options = serde_saphyr::ser_options! {
        // One line per value: a folded block scalar would be correct but hard to review.
        prefer_block_scalars: false,
    };
    Ok(serde_saphyr::to_string_with_options(&document, options)?)
}

/// Builders of desired models for unit tests, so that no test spells out every field (or
/// a manifest header) to say one thing.
#[cfg(test)]
pub(crate) mod fixture {
    use std::collections::BTreeMap;

    use super::{DesiredModel, ModelSpec, Origins, Retention, Stages, VersionSpec};
    use crate::diagnostic::Origin;
    use crate::manifest::DesiredState;
    use crate::stage::Stage;

    /// A model named `name`, declared in `<name>.yaml` at line 4, column 9 (where
    /// `metadata.name`'s value sits under the usual header), declaring nothing else.
    pub(crate) fn model(name: &str) -> ModelBuilder {
        ModelBuilder(DesiredModel {
            name: name.to_owned(),
            spec: ModelSpec::default(),
            origins: Origins::at(Origin::new(format!("{name}.yaml"), 4, 9)),
        })
    }

    /// A desired state holding `models`.
    pub(crate) fn desired(models: impl IntoIterator<Item = DesiredModel>) -> DesiredState {
        DesiredState {
            models: models
                .into_iter()
                .map(|model| (model.name.clone(), model))
                .collect(),
            ..DesiredState::default()
        }
    }

    /// See [`model`].
    #[derive(Debug, Clone)]
    pub(crate) struct ModelBuilder(DesiredModel);

    impl ModelBuilder {
        /// Where `metadata.name` is written.
        pub(crate) fn at(mut self, origin: Origin) -> Self {
            self.0.origins.name = origin;
            self
        }

        /// Declares `stages` (possibly empty: every stage must then be empty).
        pub(crate) fn stages(mut self) -> Self {
            self.0.spec.stages.get_or_insert_with(Stages::default);
            self
        }

        /// Declares `versions` in `stage` (and so declares `stages`).
        pub(crate) fn stage(mut self, stage: Stage, versions: &[u64]) -> Self {
            let stages = self.0.spec.stages.get_or_insert_with(Stages::default);
            if let Some(set) = stages.get_mut(stage) {
                set.extend(versions.iter().copied());
            }
            self
        }

        /// Declares `aliases` (possibly empty: the model must then have none).
        pub(crate) fn aliases(mut self) -> Self {
            self.0.spec.aliases.get_or_insert_with(BTreeMap::new);
            self
        }

        /// Declares `alias: version` (and so declares `aliases`).
        pub(crate) fn alias(mut self, alias: &str, version: u64) -> Self {
            self.0
                .spec
                .aliases
                .get_or_insert_with(BTreeMap::new)
                .insert(alias.to_owned(), version);
            self
        }

        /// Declares the description.
        pub(crate) fn description(mut self, text: &str) -> Self {
            self.0.spec.description = Some(text.to_owned());
            self
        }

        /// Declares a model tag.
        pub(crate) fn tag(mut self, key: &str, value: &str) -> Self {
            self.0.spec.tags.insert(key.to_owned(), value.to_owned());
            self
        }

        /// Declares `spec.versions."N"`, written at `origin`.
        pub(crate) fn version(mut self, version: u64, spec: VersionSpec, origin: Origin) -> Self {
            self.0.spec.versions.insert(version, spec);
            self.0.origins.versions.insert(version, origin);
            self
        }

        /// Declares `retention.keepLatest`.
        pub(crate) fn keep_latest(mut self, keep_latest: u32) -> Self {
            self.0.spec.retention = Some(Retention { keep_latest });
            self
        }

        /// Places `selector` in `target` (declaring `stages` or `aliases` accordingly).
        pub(crate) fn selector(
            mut self,
            target: crate::target::Target,
            selector: crate::manifest::Selector,
        ) -> Self {
            match &target {
                crate::target::Target::Stage(_) => {
                    self.0.spec.stages.get_or_insert_with(Stages::default);
                }
                crate::target::Target::Alias(_) => {
                    self.0.spec.aliases.get_or_insert_with(BTreeMap::new);
                }
            }
            self.0
                .spec
                .selectors
                .entry(target)
                .or_default()
                .insert(selector);
            self
        }

        /// Declares `gate` for `target`.
        pub(crate) fn gate(mut self, target: crate::target::Target, gate: super::Gate) -> Self {
            self.0.spec.gates.insert(target, gate);
            self
        }

        /// The model.
        pub(crate) fn build(self) -> DesiredModel {
            self.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_order_and_empty_stages_do_not_change_the_meaning() {
        let a = Stages::from([(Stage::Staging, &[5, 4][..]), (Stage::Production, &[])]);
        let b = Stages::from([(Stage::Staging, &[4, 5][..])]);
        assert_eq!(a, b);
        assert_eq!(a.stage_of(5), Some(Stage::Staging));
        assert_eq!(a.get(Stage::Archived).len(), 0);
    }

    #[test]
    fn written_yaml_declares_the_spec() {
        let spec = ModelSpec {
            description: Some("true".into()),
            stages: Some(Stages::from([
                (Stage::Production, &[3][..]),
                (Stage::Staging, &[4, 5]),
            ])),
            ..ModelSpec::default()
        };
        let text = to_yaml("m", &spec).expect("yaml");
        assert_eq!(
            text,
            "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: m\nspec:\n  description: \"true\"\n  stages:\n    Production: 3\n    Staging: [4, 5]\n"
        );
    }
}
