//! Serde types mirroring the YAML of one manifest document, exactly as written.
//!
//! These types only check the *shape* of a document: field names (camelCase, unknown fields
//! rejected) and nesting. They keep the line and column of every value a later
//! check may need to point at ([`Spanned`]), and keep maps as ordered entry lists so nothing
//! is lost before the semantic checks in `check` run. The same types derive the JSON Schema
//! (`mlreg schema`), so the schema and the parser cannot drift apart.
//!
//! Scalars are read as written ([`Scalar`]) and typed by the checks, which can then point at
//! the exact value: a string field refuses an unquoted `true` or `3` (quote it), a version
//! number refuses `"3"` or `3.5`, the way JSON Schema tools see the same YAML.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Pattern of a stage key: `Staging` or `Production`, in any case. JSON Schema regexes are
/// ECMA-262, which has no inline case-insensitivity flag, hence the character classes.
pub(crate) const STAGE_KEY_PATTERN: &str =
    "^([Ss][Tt][Aa][Gg][Ii][Nn][Gg]|[Pp][Rr][Oo][Dd][Uu][Cc][Tt][Ii][Oo][Nn])$";

/// Pattern of an alias name, as MLflow validates it: `[A-Za-z0-9_-]`, 1 to 255 characters,
/// neither `latest` (any case) nor `v<digits>` (reserved for version references).
pub(crate) const ALIAS_NAME_PATTERN: &str =
    "^(?![Ll][Aa][Tt][Ee][Ss][Tt]$)(?![Vv][0-9]+$)[A-Za-z0-9_-]{1,255}$";

/// Pattern of a `spec.versions` key: a positive integer without leading zeros.
pub(crate) const VERSION_KEY_PATTERN: &str = "^[1-9][0-9]*$";

/// Pattern of a model name: not blank, no `/` and no `:` (MLflow's rules).
pub(crate) const MODEL_NAME_PATTERN: &str = "^[^/:]*[^/:\\s][^/:]*$";

/// The longest tag key MLflow accepts.
pub(crate) const MAX_TAG_KEY_LENGTH: usize = 250;

/// One manifest document: a registered model and the state it should be in.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a manifest: a mapping with apiVersion, kind, metadata and spec"
)]
#[schemars(
    title = "mlreg manifest (mlreg/v1)",
    description = "One MLflow registered model and the state mlreg keeps it in. One model per YAML document; a file may hold several documents separated by `---`."
)]
pub(crate) struct RawManifest {
    /// The manifest format version. Only `mlreg/v1` exists.
    #[schemars(with = "ApiVersionSchema")]
    pub api_version: Spanned<Scalar>,
    /// The kind of object. Only `RegisteredModel` exists.
    #[schemars(with = "KindSchema")]
    pub kind: Spanned<Scalar>,
    /// Which registered model this manifest manages.
    pub metadata: RawMetadata,
    /// The desired state of the model. Omitted: the model is managed (created when missing)
    /// but nothing else about it is enforced.
    #[serde(default)]
    pub spec: Option<RawSpec>,
}

/// `metadata`: which registered model the manifest manages.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping with the model's `name`"
)]
#[schemars(rename = "Metadata")]
pub(crate) struct RawMetadata {
    /// The registered model's name in MLflow. Not empty; no `/` and no `:`.
    #[schemars(with = "ModelNameSchema")]
    pub name: Spanned<Scalar>,
}

/// `spec`: the desired state of the model.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping with any of description, tags, stages, aliases, versions, retention, serving, gates"
)]
#[schemars(rename = "Spec")]
pub(crate) struct RawSpec {
    /// The model's description. When present it is enforced; when absent it is left alone.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub description: Option<Spanned<Scalar>>,
    /// Model tags. The declared keys are enforced; other keys are left alone.
    #[serde(default)]
    pub tags: Option<TagMap>,
    /// Which versions sit in Staging and Production. When present it is EXHAUSTIVE: a version
    /// in Staging or Production that is not listed here is archived, and a stage left out (or
    /// `[]`) must hold no version. When absent, stages are left alone.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "StageMap")]
    pub stages: Option<Spanned<Option<StageMap>>>,
    /// Which version each alias points at. When present it is EXHAUSTIVE: other aliases of
    /// the model are deleted. When absent, aliases are left alone.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "AliasMap")]
    pub aliases: Option<Spanned<Option<AliasMap>>>,
    /// Per-version assertions (`runId`, `source`) and version tags, by version number.
    #[serde(default)]
    pub versions: Option<VersionMap>,
    /// Archive old unassigned versions.
    #[serde(default)]
    pub retention: Option<RawRetention>,
    /// How `mlreg resolve` serves the model.
    #[serde(default)]
    pub serving: Option<RawServing>,
    /// Promotion gates: what a version must show before mlreg moves it into a stage or
    /// points an alias at it, by target (`Production`, `"@champion"`).
    #[serde(default)]
    pub gates: Option<GateMap>,
}

/// `spec.gates.<target>`: the checks a version entering the target must pass.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping with any of metrics, tags, soak, noRegression"
)]
#[schemars(rename = "Gate")]
pub(crate) struct RawGate {
    /// Metric name → condition on its latest value: `">= 0.90"` (comparators `>=`, `>`,
    /// `<=`, `<`, `==`). Read from the version's run, else from its MLflow 3 logged model.
    #[serde(default)]
    pub metrics: Option<MetricMap>,
    /// Version tags that must be present: key → value, or `"*"` for any value.
    #[serde(default)]
    pub tags: Option<GateTagMap>,
    /// `{in: Staging, for: 24h}`: the version entered `in` (a stage or `"@alias"`) at least
    /// `for` ago, according to mlreg's audit tags.
    #[serde(default)]
    pub soak: Option<RawSoak>,
    /// `{metric, direction: higher|lower, tolerance}`: not worse than the version that
    /// holds the target now (more than `tolerance` worse fails).
    #[serde(default)]
    pub no_regression: Option<RawNoRegression>,
}

/// `soak`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping with `in` and `for`")]
#[schemars(rename = "Soak")]
pub(crate) struct RawSoak {
    /// A stage (`Staging`) or an alias written `"@name"`.
    #[serde(rename = "in")]
    #[schemars(with = "NonEmptyText")]
    pub within: Spanned<Scalar>,
    /// A duration: `30m`, `24h`, `90s`.
    #[serde(rename = "for")]
    #[schemars(with = "NonEmptyText")]
    pub duration: Spanned<Scalar>,
}

/// `noRegression`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `metric`, `direction` and optionally `tolerance`"
)]
#[schemars(rename = "NoRegression")]
pub(crate) struct RawNoRegression {
    /// The metric compared with the current holder's.
    #[schemars(with = "NonEmptyText")]
    pub metric: Spanned<Scalar>,
    /// `higher` or `lower`: which way the metric is better.
    #[schemars(with = "DirectionSchema")]
    pub direction: Spanned<Scalar>,
    /// How much worse than the current holder is still accepted (default 0).
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub tolerance: Option<Spanned<Scalar>>,
}

/// `spec.versions."N"`: assertions about one version and metadata to enforce on it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping with any of runId, source, tags"
)]
#[schemars(rename = "VersionSpec")]
pub(crate) struct RawVersionSpec {
    /// Refuse to touch the model unless this version was produced by this MLflow run.
    #[serde(default)]
    #[schemars(with = "Option<NonEmptyText>")]
    pub run_id: Option<Spanned<Scalar>>,
    /// Refuse to touch the model unless this version's source is exactly this URI.
    #[serde(default)]
    #[schemars(with = "Option<NonEmptyText>")]
    pub source: Option<Spanned<Scalar>>,
    /// Version tags. The declared keys are enforced; other keys are left alone.
    #[serde(default)]
    pub tags: Option<TagMap>,
}

/// `spec.retention`: archive old versions that no stage or alias uses.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping with `keepLatest`"
)]
#[schemars(rename = "Retention")]
pub(crate) struct RawRetention {
    /// Among the versions in stage None that no stage or alias references, keep the newest
    /// `keepLatest` and archive the older ones. Versions are never deleted.
    #[schemars(with = "KeepLatestSchema")]
    pub keep_latest: Spanned<Scalar>,
}

/// `spec.serving`: what `mlreg resolve` answers.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping with `prefer` and/or `localFallback`"
)]
#[schemars(rename = "Serving")]
pub(crate) struct RawServing {
    /// The targets `mlreg resolve` tries, in order: stages (`Production`, `Staging`) and
    /// aliases written `@name` (quote them: `"@champion"`, since YAML reserves a leading
    /// `@`). Default: `[Production, Staging]`.
    #[serde(default)]
    #[schemars(with = "Option<PreferSchema>")]
    pub prefer: Option<Vec<Spanned<Scalar>>>,
    /// What `mlreg resolve` answers when no target holds a version or the registry cannot be
    /// reached: a local path or URI.
    #[serde(default)]
    #[schemars(with = "Option<NonEmptyText>")]
    pub local_fallback: Option<Spanned<Scalar>>,
}

/// Deserializes a field that is present, keeping "present but null" (`stages:` with nothing
/// after it) apart from "absent" (`None` through `#[serde(default)]`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A scalar as written, whatever its type. Fields that want a string or a version number
/// take any scalar here and the semantic checks say, at the value's exact position, when the
/// type is wrong (`"3"` for a version, an unquoted `true` for a tag value), rather than
/// stopping the whole document at the first type error. Sequences and mappings where a
/// scalar belongs are still refused while parsing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false` (YAML 1.2 spellings only).
    Bool(bool),
    /// An integer.
    Int(i128),
    /// A floating-point number.
    Float(f64),
    /// A string (quoted, or plain text that is not a number, boolean or null).
    Str(String),
}

impl Scalar {
    /// What the value is, for messages: `a boolean (true)`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Scalar::Null => "null".to_owned(),
            Scalar::Bool(value) => format!("a boolean ({value})"),
            Scalar::Int(value) => format!("an integer ({value})"),
            Scalar::Float(value) => format!("a number ({value})"),
            Scalar::Str(value) => format!("a string ({value:?})"),
        }
    }

    /// The value as the user would write it inside quotes.
    pub(crate) fn plain(&self) -> String {
        match self {
            Scalar::Null => "null".to_owned(),
            Scalar::Bool(value) => value.to_string(),
            Scalar::Int(value) => value.to_string(),
            Scalar::Float(value) => value.to_string(),
            Scalar::Str(value) => value.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// Accepts any scalar.
struct ScalarVisitor;

impl Visitor<'_> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a single value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Int(i128::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Int(i128::from(v)))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Scalar, E> {
        Ok(Scalar::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Scalar, E> {
        Ok(i128::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Str(v))
    }
}

/// A version reference as written: a scalar (a version number, once checked) or a
/// selector mapping (`{run: ID}`, `{loggedModel: m-…}`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawRef {
    /// `3` (or any other scalar, refused by the checks when it is not a version number).
    Number(Scalar),
    /// `{run: ID, artifactPath: PATH}` or `{loggedModel: m-…}`.
    Selector(Box<RawSelector>),
}

/// A selector mapping, as written; the checks say which combinations are valid.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a selector: {run: RUN_ID} (optionally with artifactPath) or {loggedModel: m-…}"
)]
pub(crate) struct RawSelector {
    /// `run`: the MLflow run that logged the model.
    #[serde(default)]
    pub run: Option<Spanned<Scalar>>,
    /// `artifactPath`: the name the run logged the model under (default `model`).
    #[serde(default)]
    pub artifact_path: Option<Spanned<Scalar>>,
    /// `loggedModel`: an MLflow 3 logged model id.
    #[serde(default)]
    pub logged_model: Option<Spanned<Scalar>>,
}

/// Reads a version reference: any scalar, or a selector mapping.
struct RefVisitor;

impl<'de> Visitor<'de> for RefVisitor {
    type Value = RawRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a version number or a selector ({run: RUN_ID} or {loggedModel: m-…})")
    }

    fn visit_unit<E: de::Error>(self) -> Result<RawRef, E> {
        Ok(RawRef::Number(Scalar::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<RawRef, E> {
        Ok(RawRef::Number(Scalar::Null))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawRef, E> {
        ScalarVisitor.visit_bool(v).map(RawRef::Number)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawRef, E> {
        ScalarVisitor.visit_i64(v).map(RawRef::Number)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawRef, E> {
        ScalarVisitor.visit_u64(v).map(RawRef::Number)
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<RawRef, E> {
        ScalarVisitor.visit_i128(v).map(RawRef::Number)
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<RawRef, E> {
        ScalarVisitor.visit_u128(v).map(RawRef::Number)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawRef, E> {
        ScalarVisitor.visit_f64(v).map(RawRef::Number)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawRef, E> {
        ScalarVisitor.visit_str(v).map(RawRef::Number)
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<RawRef, E> {
        ScalarVisitor.visit_string(v).map(RawRef::Number)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawRef, A::Error> {
        RawSelector::deserialize(de::value::MapAccessDeserializer::new(map))
            .map(|selector| RawRef::Selector(Box::new(selector)))
    }
}

impl<'de> Deserialize<'de> for RawRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RefVisitor)
    }
}

/// The value of a stage: one version, a list of versions, or nothing (`null`, same as `[]`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StageValue {
    /// `Production: 3` or `Staging: {run: ID}`; the location is the one of the enclosing
    /// [`Spanned`].
    One(RawRef),
    /// `Staging: [4, 5]`, each entry with its own location.
    Many(Vec<Spanned<RawRef>>),
}

impl<'de> Deserialize<'de> for StageValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StageValueVisitor;

        impl<'de> Visitor<'de> for StageValueVisitor {
            type Value = StageValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a version number, a selector ({run: RUN_ID}, {loggedModel: m-…}) or a list of them (such as 3 or [4, 5])",
                )
            }

            fn visit_unit<E: de::Error>(self) -> Result<StageValue, E> {
                Ok(StageValue::Many(Vec::new()))
            }

            fn visit_none<E: de::Error>(self) -> Result<StageValue, E> {
                Ok(StageValue::Many(Vec::new()))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<StageValue, E> {
                RefVisitor.visit_bool(v).map(StageValue::One)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StageValue, E> {
                RefVisitor.visit_i64(v).map(StageValue::One)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StageValue, E> {
                RefVisitor.visit_u64(v).map(StageValue::One)
            }

            fn visit_i128<E: de::Error>(self, v: i128) -> Result<StageValue, E> {
                RefVisitor.visit_i128(v).map(StageValue::One)
            }

            fn visit_u128<E: de::Error>(self, v: u128) -> Result<StageValue, E> {
                RefVisitor.visit_u128(v).map(StageValue::One)
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<StageValue, E> {
                RefVisitor.visit_f64(v).map(StageValue::One)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<StageValue, E> {
                RefVisitor.visit_str(v).map(StageValue::One)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StageValue, A::Error> {
                RefVisitor.visit_map(map).map(StageValue::One)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StageValue, A::Error> {
                let mut versions = Vec::new();
                while let Some(version) = seq.next_element::<Spanned<RawRef>>()? {
                    versions.push(version);
                }
                Ok(StageValue::Many(versions))
            }
        }

        deserializer.deserialize_any(StageValueVisitor)
    }
}

/// A mapping kept as its entries in document order, each key with its location, so the
/// semantic checks can point at a key and see keys that only differ in case.
struct Entries<K, V>(Vec<(Spanned<K>, V)>);

impl<'de, K, V> Deserialize<'de> for Entries<K, V>
where
    K: Deserialize<'de>,
    V: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<K, V>(PhantomData<(K, V)>);

        impl<'de, K, V> Visitor<'de> for EntriesVisitor<K, V>
        where
            K: Deserialize<'de>,
            V: Deserialize<'de>,
        {
            type Value = Entries<K, V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<Spanned<K>, V>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }

        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

/// Declares a map type: its entries in document order, and its JSON Schema.
macro_rules! entries_type {
    ($(#[$doc:meta])* $name:ident, $schema_name:literal, $key:ty => $value:ty, |$generator:ident| $schema:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub(crate) struct $name(pub Vec<(Spanned<$key>, $value)>);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Entries::deserialize(deserializer).map(|entries| $name(entries.0))
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                $schema_name.into()
            }

            fn json_schema($generator: &mut SchemaGenerator) -> Schema {
                $schema
            }
        }
    };
}

entries_type!(
    /// `spec.stages`: stage name → version(s).
    StageMap, "Stages", String => Spanned<StageValue>,
    |_generator| json_schema!({
        "description": "Which versions sit in Staging and Production (stage names are case-insensitive). When present it is EXHAUSTIVE: a stage left out, or `[]`, must hold no version. None and Archived cannot be declared: undeclared versions go there.",
        "type": "object",
        "patternProperties": {
            STAGE_KEY_PATTERN: {
                "description": "A version number or selector, or a list of them.",
                "oneOf": [
                    { "type": "integer", "minimum": 1 },
                    selector_schema(),
                    {
                        "type": "array",
                        "items": { "oneOf": [ { "type": "integer", "minimum": 1 }, selector_schema() ] },
                        "uniqueItems": true
                    },
                    { "type": "null" }
                ]
            }
        },
        "additionalProperties": false
    })
);

entries_type!(
    /// `spec.aliases`: alias name → version.
    AliasMap, "Aliases", String => Spanned<RawRef>,
    |_generator| json_schema!({
        "description": "Alias name → version number or selector. When present it is EXHAUSTIVE: other aliases of the model are deleted. Names: letters, digits, `_` and `-`, at most 255 characters, not `latest` nor `v<digits>`.",
        "type": "object",
        "patternProperties": {
            ALIAS_NAME_PATTERN: {
                "description": "A model-version number, or a selector.",
                "oneOf": [ { "type": "integer", "minimum": 1 }, selector_schema() ]
            }
        },
        "additionalProperties": false
    })
);

entries_type!(
    /// `spec.versions`: version number → assertions and tags.
    VersionMap, "Versions", Scalar => RawVersionSpec,
    |generator| json_schema!({
        "description": "Per-version assertions and tags, keyed by version number written as a string (\"3\").",
        "type": "object",
        "patternProperties": {
            VERSION_KEY_PATTERN: generator.subschema_for::<RawVersionSpec>()
        },
        "additionalProperties": false
    })
);

entries_type!(
    /// `tags`: key → value.
    TagMap, "Tags", String => Spanned<Scalar>,
    |_generator| json_schema!({
        "description": "Tag key → value (values are strings: quote \"true\" and numbers). Declared keys are enforced; other keys are left alone. Keys starting with `mlreg.` are reserved for mlreg.",
        "type": "object",
        "propertyNames": {
            "minLength": 1,
            "maxLength": MAX_TAG_KEY_LENGTH,
            "not": { "pattern": "^mlreg\\." }
        },
        "additionalProperties": { "type": "string" }
    })
);

entries_type!(
    /// `spec.gates`: target → gate.
    GateMap, "Gates", String => Spanned<RawGate>,
    |generator| {
        let alias = format!("^@{}", ALIAS_NAME_PATTERN.trim_start_matches('^'));
        let gate = generator.subschema_for::<RawGate>();
        json_schema!({
            "description": "Promotion gates by target: a stage (`Production`, `Staging`) or an alias written \"@name\". A gate is checked only for a version about to enter its target; a failed or unverifiable check blocks the whole plan.",
            "type": "object",
            "patternProperties": { STAGE_KEY_PATTERN: gate.clone(), alias: gate },
            "additionalProperties": false
        })
    }
);

entries_type!(
    /// `gates.<target>.metrics`: metric name → condition.
    MetricMap, "GateMetrics", String => Spanned<Scalar>,
    |_generator| json_schema!({
        "description": "Metric name → condition on its latest value, such as \">= 0.90\" (comparators >=, >, <=, <, ==).",
        "type": "object",
        "additionalProperties": {
            "type": "string",
            "pattern": "^\\s*(>=|<=|==|>|<)\\s*\\S+\\s*$"
        }
    })
);

entries_type!(
    /// `gates.<target>.tags`: key → value or `*`.
    GateTagMap, "GateTags", String => Spanned<Scalar>,
    |_generator| json_schema!({
        "description": "Version tags that must be present: key → required value, or \"*\" for any value.",
        "type": "object",
        "propertyNames": { "minLength": 1, "maxLength": MAX_TAG_KEY_LENGTH },
        "additionalProperties": { "type": "string" }
    })
);

/// The JSON Schema of a selector: `{run: ID}` (optionally `artifactPath`) or
/// `{loggedModel: m-…}`.
fn selector_schema() -> serde_json::Value {
    serde_json::json!({
        "description": "A version named by its content; mlreg registers it when no version matches. `{run: RUN_ID}`: the version of the model the run logged under `artifactPath` (default `model`); `{loggedModel: m-…}`: the version registered from this MLflow 3 logged model.",
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "run": { "type": "string", "pattern": "^[A-Za-z0-9_-]+$" },
                    "artifactPath": { "type": "string", "minLength": 1 }
                },
                "required": ["run"],
                "additionalProperties": false
            },
            {
                "type": "object",
                "properties": {
                    "loggedModel": { "type": "string", "pattern": "^m-[A-Za-z0-9_-]+$" }
                },
                "required": ["loggedModel"],
                "additionalProperties": false
            }
        ]
    })
}

/// Schema-only stand-in for `noRegression.direction`.
struct DirectionSchema;

impl JsonSchema for DirectionSchema {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Direction".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "enum": ["higher", "lower"] })
    }
}

/// Schema-only stand-in for `apiVersion`.
struct ApiVersionSchema;

impl JsonSchema for ApiVersionSchema {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "ApiVersion".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "enum": [super::API_VERSION] })
    }
}

/// Schema-only stand-in for `kind`.
struct KindSchema;

impl JsonSchema for KindSchema {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Kind".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "enum": [super::KIND] })
    }
}

/// Schema-only stand-in for `metadata.name`.
struct ModelNameSchema;

impl JsonSchema for ModelNameSchema {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "ModelName".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "minLength": 1, "pattern": MODEL_NAME_PATTERN })
    }
}

/// Schema-only stand-in for strings that must not be empty.
struct NonEmptyText;

impl JsonSchema for NonEmptyText {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "NonEmptyText".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "minLength": 1 })
    }
}

/// Schema-only stand-in for `serving.prefer`.
struct PreferSchema;

impl JsonSchema for PreferSchema {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Prefer".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let alias = format!("^@{}", ALIAS_NAME_PATTERN.trim_start_matches('^'));
        json_schema!({
            "type": "array",
            "minItems": 1,
            "uniqueItems": true,
            "items": {
                "type": "string",
                "anyOf": [ { "pattern": STAGE_KEY_PATTERN }, { "pattern": alias } ]
            }
        })
    }
}

/// Schema-only stand-in for `keepLatest`.
struct KeepLatestSchema;

impl JsonSchema for KeepLatestSchema {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "KeepLatest".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "minimum": 0, "maximum": u32::MAX })
    }
}
