//! Tables and JSON documents of the read commands, `mlreg versions` and `mlreg info`.
//!
//! Pure: data and the current time in, text out into any `Write`. The time is passed in
//! (milliseconds since the epoch, like MLflow's timestamps) so that ages render the same
//! in tests as the day they were written.
//!
//! The JSON documents are an interface for tools: they carry `format_version`
//! ([`FORMAT_VERSION`], the string `"1"`), and a field is only ever added, never renamed or
//! removed, within one format version.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use serde::Serialize;

use super::{FORMAT_VERSION, printable};
use crate::apply::AliasAuditRecord;
use crate::registry::{ObservedModel, ObservedVersion};
use crate::stage::Stage;

/// Every stage, in the order summaries list them.
const STAGES: [Stage; 4] = [
    Stage::Production,
    Stage::Staging,
    Stage::None,
    Stage::Archived,
];

/// Which manifest manages a model, as far as the desired-state directory tells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Management {
    /// A manifest in this file names the model.
    Managed {
        /// The manifest file.
        file: PathBuf,
    },
    /// The manifests are valid and none names the model.
    NotManaged,
    /// The desired-state directory does not exist.
    NoManifests {
        /// The directory looked at.
        dir: PathBuf,
    },
    /// The manifests could not be loaded, so nobody can tell.
    Unknown {
        /// How many problems loading them reported.
        problems: usize,
    },
}

/// What `mlreg info` shows about one model.
#[derive(Debug, Clone)]
pub struct ModelInfo<'a> {
    /// The model as the registry holds it.
    pub model: &'a ObservedModel,
    /// Which manifest manages it.
    pub management: Management,
    /// What applying the manifests would change on this model, one line per change;
    /// `None` when it was not computed (then nothing is shown).
    pub drift: Option<Vec<String>>,
    /// The promotion gates its manifest declares, by target (empty: none, or unmanaged).
    pub gates: BTreeMap<crate::target::Target, crate::manifest::Gate>,
}

/// The checks of a gate, one line each: `metric val_accuracy >= 0.9`, `tag validated =
/// "true"`, `soak in Staging for 24h`, `noRegression auc (higher is better, tolerance
/// 0.005)`.
pub fn gate_lines(gate: &crate::manifest::Gate) -> Vec<String> {
    let mut lines = Vec::new();
    for (name, threshold) in &gate.metrics {
        lines.push(format!("metric {} {threshold}", printable(name)));
    }
    for (key, requirement) in &gate.tags {
        lines.push(match requirement {
            crate::manifest::TagRequirement::Any => format!("tag {} present", printable(key)),
            crate::manifest::TagRequirement::Value(value) => {
                format!("tag {} = {value:?}", printable(key))
            }
        });
    }
    if let Some(soak) = &gate.soak {
        lines.push(format!(
            "soak in {} for {}",
            printable(&soak.within.to_string()),
            printable(&soak.written)
        ));
    }
    if let Some(rule) = &gate.no_regression {
        lines.push(format!(
            "noRegression {} ({} is better, tolerance {})",
            printable(&rule.metric),
            rule.direction.as_str(),
            rule.tolerance
        ));
    }
    lines
}

/// A duration as a short age: `42s`, `12m`, `5h`, `3d`, `2y`. Negative durations (clock
/// skew between the server and this machine) read as `0s`.
pub fn age(from_ms: i64, now_ms: i64) -> String {
    let seconds = (now_ms.saturating_sub(from_ms) / 1000).max(0);
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s if s < 365 * 86_400 => format!("{}d", s / 86_400),
        s => format!("{}y", s / (365 * 86_400)),
    }
}

/// A timestamp in milliseconds since the epoch as RFC 3339 in UTC, to the second
/// (`2026-11-28T08:37:36Z`); `None` for 0 (unset).
pub fn timestamp(ms: i64) -> Option<String> {
    if ms <= 0 {
        return None;
    }
    // Whole seconds, always the same width: sub-second precision is noise to people, and
    // tools have the millisecond timestamps next to it.
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|at| at.format(&format).ok())
}

/// The model's versions, newest (highest number) first.
fn newest_first(model: &ObservedModel) -> impl Iterator<Item = &ObservedVersion> {
    model.versions.values().rev()
}

fn dash_if_empty(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

fn borderless_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        // Never wrap: the output is often piped or captured, where a width is meaningless.
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().copied());
    // No padding left of the first column: lines start at the margin, like `kubectl get`.
    if let Some(first) = table.column_mut(0) {
        first.set_padding((0, 1));
    }
    table
}

/// Writes `text` line by line without the padding comfy-table leaves at the line ends.
fn write_trimmed(out: &mut dyn Write, text: &str) -> io::Result<()> {
    for line in text.lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// `mlreg versions`: one row per version, newest first. Every cell from the registry goes
/// through [`printable`].
pub fn write_versions_table(
    out: &mut dyn Write,
    model: &ObservedModel,
    now_ms: i64,
) -> io::Result<()> {
    if model.versions.is_empty() {
        return writeln!(out, "Model {} has no versions.", printable(&model.name));
    }
    let mut table = borderless_table(&[
        "VERSION", "STAGE", "ALIASES", "RUN", "SOURCE", "STATUS", "AGE",
    ]);
    for version in newest_first(model) {
        let aliases = model.aliases_of(version.version).join(",");
        table.add_row(vec![
            version.version.to_string(),
            version.stage.to_string(),
            printable(dash_if_empty(&aliases)).into_owned(),
            printable(dash_if_empty(&version.run_id)).into_owned(),
            printable(dash_if_empty(&version.source)).into_owned(),
            printable(dash_if_empty(&version.status)).into_owned(),
            age(version.creation_timestamp, now_ms),
        ]);
    }
    if let Some(column) = table.column_mut(0) {
        column.set_cell_alignment(CellAlignment::Right);
    }
    write_trimmed(out, &table.to_string())
}

/// One version in the JSON of `mlreg versions`.
#[derive(Debug, Serialize)]
struct VersionJson<'a> {
    version: u64,
    stage: Stage,
    aliases: Vec<&'a str>,
    run_id: Option<&'a str>,
    source: &'a str,
    status: &'a str,
    description: Option<&'a str>,
    tags: &'a BTreeMap<String, String>,
    created: Option<String>,
    last_updated: Option<String>,
    creation_timestamp: i64,
    last_updated_timestamp: i64,
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

impl<'a> VersionJson<'a> {
    fn new(model: &'a ObservedModel, version: &'a ObservedVersion) -> Self {
        VersionJson {
            version: version.version,
            stage: version.stage,
            aliases: model.aliases_of(version.version),
            run_id: non_empty(&version.run_id),
            source: &version.source,
            status: &version.status,
            description: non_empty(&version.description),
            tags: &version.tags,
            created: timestamp(version.creation_timestamp),
            last_updated: timestamp(version.last_updated_timestamp),
            creation_timestamp: version.creation_timestamp,
            last_updated_timestamp: version.last_updated_timestamp,
        }
    }
}

/// `mlreg versions --output json`: `{"format_version": "1", "model": ..., "versions": [...]}`,
/// versions newest first.
pub fn write_versions_json(out: &mut dyn Write, model: &ObservedModel) -> io::Result<()> {
    #[derive(Serialize)]
    struct Document<'a> {
        format_version: &'static str,
        model: &'a str,
        versions: Vec<VersionJson<'a>>,
    }
    let document = Document {
        format_version: FORMAT_VERSION,
        model: &model.name,
        versions: newest_first(model)
            .map(|version| VersionJson::new(model, version))
            .collect(),
    };
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)
}

/// Per-stage summary of a model: which versions, how many, the newest.
#[derive(Debug, Serialize)]
struct StageSummary {
    versions: Vec<u64>,
    count: usize,
    latest: Option<u64>,
}

fn stage_summary(model: &ObservedModel, stage: Stage) -> StageSummary {
    let versions: Vec<u64> = model.versions_in(stage).map(|v| v.version).collect();
    StageSummary {
        count: versions.len(),
        latest: versions.last().copied(),
        versions,
    }
}

fn management_text(management: &Management) -> String {
    match management {
        Management::Managed { file } => printable(&file.display().to_string()).into_owned(),
        Management::NotManaged => "not managed".to_owned(),
        Management::NoManifests { dir } => format!(
            "not managed (no manifest directory {})",
            printable(&dir.display().to_string())
        ),
        Management::Unknown { problems } => format!(
            "unknown (manifests invalid: {problems} problem{})",
            if *problems == 1 { "" } else { "s" }
        ),
    }
}

/// Lists version numbers compactly: `3`, `4, 5`, or `-`.
fn version_list(versions: &[u64]) -> String {
    if versions.is_empty() {
        "-".to_owned()
    } else {
        crate::stage::join_versions(versions, ", ")
    }
}

/// An RFC 3339 time as milliseconds since the epoch, when it parses.
fn rfc3339_ms(text: &str) -> Option<i64> {
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// What `info` says after `alias -> version`: since when, from what and which manifest and
/// commit mlreg pointed it there, read from the `mlreg.alias.<alias>` tag of that version.
fn alias_audit_text(record: Option<&AliasAuditRecord>, now_ms: i64) -> String {
    let Some(record) = record else {
        return "not set by mlreg".to_owned();
    };
    // The time is shown as written (escaped), with an age when it parses: a record is data
    // from the registry, and anyone with write access can have edited it.
    let since = match rfc3339_ms(&record.when) {
        Some(ms) => format!("{} ({} ago)", printable(&record.when), age(ms, now_ms)),
        None => printable(&record.when).into_owned(),
    };
    let previous = record
        .previous
        .map_or_else(|| "unset".to_owned(), |version| version.to_string());
    let commit = match &record.commit {
        Some(commit) => format!("commit {}", printable(commit)),
        None => "no git commit".to_owned(),
    };
    format!(
        "since {since}, previously {previous}, manifest {}, {commit}",
        printable(&record.manifest)
    )
}

/// `mlreg info`: the model's description, tags, who holds each stage, aliases (with their
/// audit records), latest versions, counts per stage, the managing manifest and (when
/// computed) drift.
pub fn write_info_text(out: &mut dyn Write, info: &ModelInfo<'_>, now_ms: i64) -> io::Result<()> {
    let model = info.model;
    let when = |ms: i64| match timestamp(ms) {
        Some(at) => format!("{at} ({} ago)", age(ms, now_ms)),
        None => "-".to_owned(),
    };
    writeln!(out, "Model:        {}", printable(&model.name))?;
    writeln!(
        out,
        "Description:  {}",
        printable(dash_if_empty(&model.description))
    )?;
    writeln!(out, "Managed by:   {}", management_text(&info.management))?;
    writeln!(out, "Created:      {}", when(model.creation_timestamp))?;
    writeln!(out, "Updated:      {}", when(model.last_updated_timestamp))?;
    let latest = model.versions.keys().next_back();
    writeln!(
        out,
        "Versions:     {}{}",
        model.versions.len(),
        latest.map(|v| format!(" (latest {v})")).unwrap_or_default()
    )?;

    writeln!(out)?;
    let mut stages = borderless_table(&["STAGE", "VERSIONS", "COUNT", "LATEST"]);
    for stage in STAGES {
        let summary = stage_summary(model, stage);
        stages.add_row(vec![
            stage.to_string(),
            version_list(&summary.versions),
            summary.count.to_string(),
            summary
                .latest
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    write_trimmed(out, &stages.to_string())?;

    writeln!(out)?;
    if model.aliases.is_empty() {
        writeln!(out, "Aliases:      -")?;
    } else {
        writeln!(out, "Aliases:")?;
        let names: Vec<(String, u64)> = model
            .aliases
            .iter()
            .map(|(alias, version)| (printable(alias).into_owned(), *version))
            .collect();
        let width = names
            .iter()
            .map(|(alias, version)| alias.chars().count() + version.to_string().len())
            .max()
            .unwrap_or(0);
        for ((alias, version), name) in model.aliases.iter().zip(&names) {
            let record = AliasAuditRecord::of(model, alias);
            let pad = width - (name.0.chars().count() + version.to_string().len());
            writeln!(
                out,
                "  {} -> {version}{}  {}",
                name.0,
                " ".repeat(pad),
                alias_audit_text(record.as_ref(), now_ms)
            )?;
        }
    }
    if model.tags.is_empty() {
        writeln!(out, "Tags:         -")?;
    } else {
        writeln!(out, "Tags:")?;
        for (key, value) in &model.tags {
            writeln!(out, "  {} = {}", printable(key), printable(value))?;
        }
    }
    if !info.gates.is_empty() {
        writeln!(out, "Gates:")?;
        for (target, gate) in &info.gates {
            let lines = gate_lines(gate);
            if lines.is_empty() {
                writeln!(out, "  {}: (no checks)", printable(&target.to_string()))?;
            }
            for line in lines {
                writeln!(out, "  {}: {line}", printable(&target.to_string()))?;
            }
        }
    }
    if let Some(drift) = &info.drift {
        if drift.is_empty() {
            writeln!(out, "Drift:        none (in sync with the manifest)")?;
        } else {
            writeln!(out, "Drift:")?;
            for line in drift {
                // Already escaped by the plan renderer; escaping again is a no-op that keeps
                // this function safe whoever builds the lines.
                writeln!(out, "  {}", printable(line))?;
            }
        }
    }
    Ok(())
}

/// Where an alias points and, when mlreg pointed it there, the audit record of that move:
/// one entry of `alias_audit` in `mlreg info --output json`. The record's fields are
/// `null` when `set_by_mlreg` is false.
#[derive(Debug, Serialize)]
struct AliasAuditJson {
    version: u64,
    set_by_mlreg: bool,
    since: Option<String>,
    previous: Option<u64>,
    manifest: Option<String>,
    commit: Option<String>,
}

impl AliasAuditJson {
    fn new(model: &ObservedModel, alias: &str, version: u64) -> Self {
        let record = AliasAuditRecord::of(model, alias);
        AliasAuditJson {
            version,
            set_by_mlreg: record.is_some(),
            previous: record.as_ref().and_then(|record| record.previous),
            commit: record.as_ref().and_then(|record| record.commit.clone()),
            since: record.as_ref().map(|record| record.when.clone()),
            manifest: record.map(|record| record.manifest),
        }
    }
}

/// `mlreg info --output json`.
pub fn write_info_json(out: &mut dyn Write, info: &ModelInfo<'_>) -> io::Result<()> {
    #[derive(Serialize)]
    struct Document<'a> {
        format_version: &'static str,
        model: &'a str,
        description: Option<&'a str>,
        tags: &'a BTreeMap<String, String>,
        managed_by: &'a Management,
        created: Option<String>,
        last_updated: Option<String>,
        creation_timestamp: i64,
        last_updated_timestamp: i64,
        version_count: usize,
        latest_version: Option<u64>,
        stages: BTreeMap<&'static str, StageSummary>,
        aliases: &'a BTreeMap<String, u64>,
        alias_audit: BTreeMap<&'a str, AliasAuditJson>,
        #[serde(skip_serializing_if = "Option::is_none")]
        drift: Option<&'a [String]>,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        gates: &'a BTreeMap<crate::target::Target, crate::manifest::Gate>,
    }
    let model = info.model;
    let document = Document {
        format_version: FORMAT_VERSION,
        model: &model.name,
        description: non_empty(&model.description),
        tags: &model.tags,
        managed_by: &info.management,
        created: timestamp(model.creation_timestamp),
        last_updated: timestamp(model.last_updated_timestamp),
        creation_timestamp: model.creation_timestamp,
        last_updated_timestamp: model.last_updated_timestamp,
        version_count: model.versions.len(),
        latest_version: model.versions.keys().next_back().copied(),
        stages: STAGES
            .iter()
            .map(|stage| (stage.as_str(), stage_summary(model, *stage)))
            .collect(),
        aliases: &model.aliases,
        alias_audit: model
            .aliases
            .iter()
            .map(|(alias, version)| (alias.as_str(), AliasAuditJson::new(model, alias, *version)))
            .collect(),
        drift: info.drift.as_deref(),
        gates: &info.gates,
    };
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    /// 2026-11-28T00:00:00Z.
    const NOW: i64 = 1_795_824_000_000;

    fn version(number: u64, stage: Stage, created: i64) -> ObservedVersion {
        ObservedVersion {
            version: number,
            stage,
            status: "READY".into(),
            run_id: if number == 2 {
                "8f2c1a9e".into()
            } else {
                String::new()
            },
            source: format!("s3://bucket/m/{number}"),
            description: String::new(),
            tags: BTreeMap::new(),
            creation_timestamp: created,
            last_updated_timestamp: created,
        }
    }

    fn model() -> ObservedModel {
        let mut model = ObservedModel {
            name: "m".into(),
            description: "a model".into(),
            creation_timestamp: NOW - 10 * DAY,
            last_updated_timestamp: NOW - 5 * 3_600_000,
            ..ObservedModel::default()
        };
        model.tags.insert("team".into(), "search".into());
        for v in [
            version(1, Stage::Archived, NOW - 10 * DAY),
            version(2, Stage::Production, NOW - 3 * DAY),
            version(3, Stage::Staging, NOW - 5 * 3_600_000),
            version(4, Stage::None, NOW - 12 * 60_000),
        ] {
            model.versions.insert(v.version, v);
        }
        model.aliases.insert("champion".into(), 2);
        model.aliases.insert("best".into(), 2);
        model.aliases.insert("challenger".into(), 3);
        model
    }

    fn render(write: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        write(&mut out).expect("render into memory");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn ages() {
        assert_eq!(age(NOW - 42_000, NOW), "42s");
        assert_eq!(age(NOW - 12 * 60_000 - 59_000, NOW), "12m");
        assert_eq!(age(NOW - 5 * 3_600_000, NOW), "5h");
        assert_eq!(age(NOW - 3 * DAY - 1, NOW), "3d");
        assert_eq!(age(NOW - 800 * DAY, NOW), "2y");
        assert_eq!(age(NOW + 5_000, NOW), "0s");
        assert_eq!(timestamp(NOW).as_deref(), Some("2026-11-28T00:00:00Z"));
        assert_eq!(timestamp(0), None);
    }

    #[test]
    fn versions_table_is_newest_first_with_every_column() {
        let text = render(|out| write_versions_table(out, &model(), NOW));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[0].starts_with("VERSION  STAGE"), "{text}");
        assert!(lines[1].starts_with("      4  None"), "{text}");
        let header: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(
            header,
            [
                "VERSION", "STAGE", "ALIASES", "RUN", "SOURCE", "STATUS", "AGE"
            ]
        );
        let rows: Vec<Vec<&str>> = lines[1..]
            .iter()
            .map(|line| line.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows[0],
            ["4", "None", "-", "-", "s3://bucket/m/4", "READY", "12m"]
        );
        assert_eq!(
            rows[1],
            [
                "3",
                "Staging",
                "challenger",
                "-",
                "s3://bucket/m/3",
                "READY",
                "5h"
            ]
        );
        assert_eq!(
            rows[2],
            [
                "2",
                "Production",
                "best,champion",
                "8f2c1a9e",
                "s3://bucket/m/2",
                "READY",
                "3d"
            ]
        );
        assert_eq!(
            rows[3],
            ["1", "Archived", "-", "-", "s3://bucket/m/1", "READY", "10d"]
        );
        assert!(text.lines().all(|line| line == line.trim_end()), "{text:?}");
    }

    #[test]
    fn a_model_without_versions_says_so() {
        let empty = ObservedModel {
            name: "m".into(),
            ..ObservedModel::default()
        };
        assert_eq!(
            render(|out| write_versions_table(out, &empty, NOW)),
            "Model m has no versions.\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render(|out| write_versions_json(out, &empty))).expect("JSON");
        assert_eq!(json["versions"], serde_json::json!([]));
    }

    #[test]
    fn versions_json_is_versioned_and_complete() {
        let json: serde_json::Value =
            serde_json::from_str(&render(|out| write_versions_json(out, &model()))).expect("JSON");
        assert_eq!(json["format_version"], "1");
        assert_eq!(json["model"], "m");
        let versions = json["versions"].as_array().expect("array");
        let numbers: Vec<u64> = versions
            .iter()
            .filter_map(|v| v["version"].as_u64())
            .collect();
        assert_eq!(numbers, [4, 3, 2, 1]);
        assert_eq!(versions[2]["stage"], "Production");
        assert_eq!(
            versions[2]["aliases"],
            serde_json::json!(["best", "champion"])
        );
        assert_eq!(versions[2]["run_id"], "8f2c1a9e");
        assert_eq!(versions[0]["run_id"], serde_json::Value::Null);
        assert_eq!(versions[0]["created"], "2026-11-27T23:48:00Z");
        assert_eq!(versions[0]["creation_timestamp"], NOW - 12 * 60_000);
    }

    #[test]
    fn registry_text_never_reaches_the_terminal_with_control_characters() {
        let mut model = model();
        model.description = "evil\u{1b}[2J".into();
        model.tags.insert("k\u{7}".into(), "v\u{1b}]0;x".into());
        if let Some(version) = model.versions.values_mut().next() {
            version.source = "s3://b/\u{1b}[31mred".into();
        }
        let info = ModelInfo {
            gates: BTreeMap::new(),
            model: &model,
            management: Management::NotManaged,
            drift: None,
        };
        let info_text = render(|out| write_info_text(out, &info, NOW));
        let table_text = render(|out| write_versions_table(out, &model, NOW));
        for text in [info_text, table_text] {
            assert!(
                !text.contains('\u{1b}') && !text.contains('\u{7}'),
                "{text:?}"
            );
            assert!(text.contains("\\u{1b}"), "{text}");
        }
    }

    #[test]
    fn info_text_shows_stages_aliases_tags_and_management() {
        let model = model();
        let info = ModelInfo {
            gates: BTreeMap::new(),
            model: &model,
            management: Management::Managed {
                file: PathBuf::from("desired-state/m.yaml"),
            },
            drift: None,
        };
        let text = render(|out| write_info_text(out, &info, NOW));
        assert!(text.contains("Description:  a model\n"), "{text}");
        assert!(
            text.contains("Managed by:   desired-state/m.yaml\n"),
            "{text}"
        );
        assert!(text.contains("Versions:     4 (latest 4)\n"), "{text}");
        assert!(
            text.contains("Updated:      2026-11-27T19:00:00Z (5h ago)\n"),
            "{text}"
        );
        let row = |stage: &str| -> Vec<String> {
            text.lines()
                .find(|line| line.split_whitespace().next() == Some(stage))
                .unwrap_or_else(|| panic!("no {stage} row in\n{text}"))
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(row("Production"), ["Production", "2", "1", "2"]);
        assert_eq!(row("Staging"), ["Staging", "3", "1", "3"]);
        assert_eq!(row("Archived"), ["Archived", "1", "1", "1"]);
        assert!(
            text.contains(
                "Aliases:\n  best -> 2        not set by mlreg\n  challenger -> 3  not set by mlreg\n  champion -> 2    not set by mlreg\n"
            ),
            "{text}"
        );
        assert!(text.contains("  team = search\n"), "{text}");
        assert!(!text.contains("Drift"), "{text}");

        let unknown = ModelInfo {
            gates: BTreeMap::new(),
            management: Management::Unknown { problems: 1 },
            drift: Some(Vec::new()),
            ..info
        };
        let text = render(|out| write_info_text(out, &unknown, NOW));
        assert!(
            text.contains("unknown (manifests invalid: 1 problem)\n"),
            "{text}"
        );
        assert!(text.contains("Drift:        none"), "{text}");
    }

    /// `model()` with mlreg's records: `champion` moved from 1 to 2 three days ago from a
    /// commit, `challenger` created outside git, and `best` carrying a hand-written tag.
    fn model_with_alias_records() -> ObservedModel {
        let mut model = model();
        let tag = |version: u64, alias: &str, value: &str, model: &mut ObservedModel| {
            if let Some(v) = model.versions.get_mut(&version) {
                v.tags
                    .insert(crate::apply::alias_audit_tag(alias), value.to_owned());
            }
        };
        tag(
            2,
            "champion",
            r#"{"previous":1,"when":"2026-11-25T00:00:00Z","manifest":"desired-state/m.yaml","commit":"abc123"}"#,
            &mut model,
        );
        tag(
            3,
            "challenger",
            r#"{"previous":null,"when":"2026-11-27T23:00:00Z","manifest":"m.yaml","commit":null}"#,
            &mut model,
        );
        tag(2, "best", "set by hand", &mut model);
        // A record left on a version the alias has moved away from is not shown.
        tag(
            1,
            "challenger",
            r#"{"previous":null,"when":"2026-01-01T00:00:00Z","manifest":"old.yaml","commit":null}"#,
            &mut model,
        );
        model
    }

    #[test]
    fn info_shows_since_when_and_from_where_mlreg_pointed_each_alias() {
        let model = model_with_alias_records();
        let info = ModelInfo {
            gates: BTreeMap::new(),
            model: &model,
            management: Management::NotManaged,
            drift: None,
        };
        let text = render(|out| write_info_text(out, &info, NOW));
        assert!(
            text.contains(
                "Aliases:\n\
                 \x20 best -> 2        not set by mlreg\n\
                 \x20 challenger -> 3  since 2026-11-27T23:00:00Z (1h ago), previously unset, manifest m.yaml, no git commit\n\
                 \x20 champion -> 2    since 2026-11-25T00:00:00Z (3d ago), previously 1, manifest desired-state/m.yaml, commit abc123\n"
            ),
            "{text}"
        );

        let json: serde_json::Value =
            serde_json::from_str(&render(|out| write_info_json(out, &info))).expect("JSON");
        assert_eq!(json["format_version"], crate::render::FORMAT_VERSION);
        assert_eq!(
            json["alias_audit"],
            serde_json::json!({
                "best": {
                    "version": 2, "set_by_mlreg": false, "since": null, "previous": null,
                    "manifest": null, "commit": null
                },
                "challenger": {
                    "version": 3, "set_by_mlreg": true, "since": "2026-11-27T23:00:00Z",
                    "previous": null, "manifest": "m.yaml", "commit": null
                },
                "champion": {
                    "version": 2, "set_by_mlreg": true, "since": "2026-11-25T00:00:00Z",
                    "previous": 1, "manifest": "desired-state/m.yaml", "commit": "abc123"
                },
            })
        );
    }

    #[test]
    fn info_json_is_versioned() {
        let model = model();
        let info = ModelInfo {
            gates: BTreeMap::new(),
            model: &model,
            management: Management::NotManaged,
            drift: None,
        };
        let json: serde_json::Value =
            serde_json::from_str(&render(|out| write_info_json(out, &info))).expect("JSON");
        assert_eq!(json["format_version"], "1");
        assert_eq!(
            json["managed_by"],
            serde_json::json!({"state": "not_managed"})
        );
        assert_eq!(
            json["stages"]["Staging"]["versions"],
            serde_json::json!([3])
        );
        assert_eq!(json["stages"]["None"]["count"], 1);
        assert_eq!(json["aliases"]["champion"], 2);
        assert_eq!(json["latest_version"], 4);
        assert!(json.get("drift").is_none());
    }

    #[test]
    fn every_text_from_the_registry_or_a_manifest_is_escaped() {
        use crate::render::hostile::{assert_escaped, text};

        let mut model = model();
        model.name = text("model");
        model.description = text("description");
        model.tags.insert(text("tag key"), text("tag value"));
        model.aliases.insert(text("alias"), 2);
        let record = crate::apply::AliasAuditRecord {
            previous: Some(1),
            when: text("when"),
            manifest: text("record manifest"),
            commit: Some(text("commit")),
        };
        if let Some(version) = model.versions.get_mut(&2) {
            version.tags.insert(
                crate::apply::alias_audit_tag(&text("alias")),
                serde_json::to_string(&record).expect("JSON"),
            );
        }
        for version in model.versions.values_mut() {
            version.run_id = text("run");
            version.source = text("source");
            version.status = text("status");
        }
        let drift = vec![text("drift line")];
        for (management, path) in [
            (
                Management::Managed {
                    file: PathBuf::from(text("desired-state/m")),
                },
                "desired-state/m",
            ),
            (
                Management::NoManifests {
                    dir: PathBuf::from(text("desired-state")),
                },
                "directory desired-state",
            ),
        ] {
            let info = ModelInfo {
                gates: BTreeMap::new(),
                model: &model,
                management,
                drift: Some(drift.clone()),
            };
            let info_text = render(|out| write_info_text(out, &info, NOW));
            assert_escaped(&info_text);
            for field in [
                "model",
                "description",
                "tag key",
                "tag value",
                "alias",
                "when",
                "record manifest",
                "commit",
                path,
                "drift line",
            ] {
                assert!(
                    info_text.contains(&format!("{field}\\u{{1b}}[31m")),
                    "`{field}` missing or unescaped in:\n{info_text}"
                );
            }
        }

        let table = render(|out| write_versions_table(out, &model, NOW));
        assert_escaped(&table);
        for field in ["alias", "run", "source", "status"] {
            assert!(
                table.contains(&format!("{field}\\u{{1b}}[31m")),
                "`{field}` missing or unescaped in:\n{table}"
            );
        }

        model.versions.clear();
        assert_escaped(&render(|out| write_versions_table(out, &model, NOW)));
    }
}
