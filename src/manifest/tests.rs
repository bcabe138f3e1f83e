//! Unit tests of loading and checking manifests: one test per class of problem at least,
//! each asserting the line and column reported.

use std::fs;
use std::path::{Path, PathBuf};

use std::collections::BTreeSet;

use super::*;
use crate::diagnostic::Origin;
use crate::stage::Stage;
use crate::target::Target;

const HEADER: &str = "apiVersion: mlreg/v1\nkind: RegisteredModel\n";

/// A temporary desired-state directory.
struct Dir {
    temp: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        Dir {
            temp: tempfile::tempdir().expect("create a temporary directory"),
        }
    }

    fn with(files: &[(&str, &str)]) -> Self {
        let dir = Dir::new();
        for (name, text) in files {
            dir.write(name, text.as_bytes());
        }
        dir
    }

    fn path(&self) -> &Path {
        self.temp.path()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        let path = self.file(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent directories");
        }
        fs::write(path, bytes).expect("write a manifest");
    }

    fn load(&self) -> Result<DesiredState, LoadError> {
        load_dir(self.path())
    }

    fn errors(&self) -> Vec<Diagnostic> {
        match self.load() {
            Ok(state) => panic!("expected errors, loaded {:?}", state.models.keys()),
            Err(error) => error.diagnostics,
        }
    }

    /// The only problem found.
    fn error(&self) -> Diagnostic {
        let mut errors = self.errors();
        assert_eq!(errors.len(), 1, "expected one problem, got {errors:#?}");
        errors.remove(0)
    }
}

/// A manifest of `model` with `spec` (indented two spaces, no trailing newline needed).
fn manifest(model: &str, spec: &str) -> String {
    format!("{HEADER}metadata:\n  name: {model}\nspec:\n{spec}\n")
}

#[track_caller]
fn assert_at(diagnostic: &Diagnostic, file: &Path, line: u32, column: u32, message: &str) {
    let origin = diagnostic
        .origin
        .as_ref()
        .unwrap_or_else(|| panic!("no origin in {diagnostic:?}"));
    assert_eq!(
        (origin.file.as_path(), origin.line, origin.column),
        (file, line, column),
        "{diagnostic:?}"
    );
    assert!(
        diagnostic.message.contains(message),
        "`{}` does not contain `{message}`",
        diagnostic.message
    );
    assert!(diagnostic.help.is_some(), "no help in {diagnostic:?}");
}

#[test]
fn loads_a_full_manifest() {
    let dir = Dir::with(&[(
        "m.yaml",
        &manifest(
            "fraud",
            "  description: Fraud detector\n  tags:\n    team: risk\n  stages:\n    production: 3\n    Staging: [4, 5]\n  aliases:\n    champion: 3\n  versions:\n    \"3\":\n      runId: abc\n      source: s3://bucket/3\n      tags: {validated: \"true\"}\n    4: {}\n  retention:\n    keepLatest: 2\n  serving:\n    localFallback: models/fraud",
        ),
    )]);
    let state = dir.load().expect("valid manifest");
    assert_eq!(state.root, dir.path());
    let model = &state.models["fraud"];
    let file = dir.file("m.yaml");
    assert_eq!(model.origins.name, Origin::new(&file, 4, 9));
    assert_eq!(model.file(), file);
    let spec = &model.spec;
    assert_eq!(spec.description.as_deref(), Some("Fraud detector"));
    assert_eq!(spec.tags["team"], "risk");
    assert_eq!(spec.versions_in(Stage::Production), &BTreeSet::from([3]));
    assert_eq!(
        model.origins.stage_version(Stage::Production, 3),
        Origin::new(&file, 10, 17)
    );
    assert_eq!(spec.versions_in(Stage::Staging), &BTreeSet::from([4, 5]));
    assert_eq!(
        model.origins.stage_version(Stage::Staging, 5),
        Origin::new(&file, 11, 18)
    );
    assert_eq!(spec.declared_stage_of(5), Some(Stage::Staging));
    let aliases = spec.aliases.as_ref().expect("aliases declared");
    assert_eq!(aliases["champion"], 3);
    assert_eq!(model.origins.alias("champion"), Origin::new(&file, 13, 15));
    assert_eq!(spec.versions[&3].run_id.as_deref(), Some("abc"));
    assert_eq!(spec.versions[&3].source.as_deref(), Some("s3://bucket/3"));
    assert_eq!(spec.versions[&3].tags["validated"], "true");
    assert_eq!(model.origins.version(3), Origin::new(&file, 15, 5));
    assert!(spec.versions.contains_key(&4));
    assert_eq!(spec.retention, Some(Retention { keep_latest: 2 }));
    assert_eq!(spec.local_fallback(), Some("models/fraud"));
    // The referenced versions point at the first place each is written.
    let referenced = model.referenced_versions();
    assert_eq!(referenced[&3], Origin::new(&file, 10, 17));
    assert_eq!(referenced[&4], Origin::new(&file, 11, 15));
    assert!(state.sources.get(&dir.file("m.yaml")).is_some());
}

#[test]
fn absent_sections_are_not_managed_and_empty_ones_are() {
    let dir = Dir::with(&[
        ("a.yaml", &format!("{HEADER}metadata:\n  name: a\n")),
        ("b.yaml", &manifest("b", "  stages: {}\n  aliases: {}")),
        (
            "c.yaml",
            &manifest("c", "  stages:\n    Staging: []\n    Production:"),
        ),
    ]);
    let state = dir.load().expect("valid manifests");
    assert_eq!(state.models["a"].spec.stages, None);
    assert_eq!(state.models["a"].spec.aliases, None);
    assert_eq!(state.models["b"].spec.stages, Some(Default::default()));
    assert_eq!(state.models["b"].spec.aliases, Some(Default::default()));
    // `Staging: []` and `Production:` (null) both declare an empty stage: the same meaning
    // as `stages: {}`.
    assert_eq!(state.models["c"].spec.stages, Some(Default::default()));
    let mut b_without_aliases = state.models["b"].spec.clone();
    b_without_aliases.aliases = None;
    assert_eq!(state.models["c"].spec, b_without_aliases);
}

#[test]
fn reads_every_document_recursively_in_path_order_and_skips_hidden_entries() {
    let dir = Dir::with(&[
        (
            "b.yaml",
            &format!(
                "---\n{}---\n# only a comment\n---\n{}",
                manifest("b1", "  {}"),
                manifest("b2", "  {}")
            ),
        ),
        ("a/z.yml", &manifest("z", "  {}")),
        (".git/config.yaml", "not: [a manifest"),
        (".hidden.yaml", "not: [a manifest"),
        ("notes.txt", "not: [a manifest"),
        ("empty.yaml", ""),
    ]);
    let state = dir.load().expect("valid manifests");
    let names: Vec<&str> = state.models.keys().map(String::as_str).collect();
    assert_eq!(names, ["b1", "b2", "z"]);
    assert_eq!(state.models["b2"].origins.name.line, 14);

    // Problems come in path order: a/ before b.yaml.
    dir.write("a/z.yml", b"kind: Nope\n");
    dir.write("b.yaml", b"kind: Nope\n");
    let files: Vec<PathBuf> = dir
        .errors()
        .iter()
        .filter_map(|d| d.origin.as_ref().map(|o| o.file.clone()))
        .collect();
    assert_eq!(files.first(), Some(&dir.file("a/z.yml")));
    assert_eq!(files.last(), Some(&dir.file("b.yaml")));
}

#[test]
fn origins_keep_the_directory_as_given() {
    let dir = Dir::with(&[("sub/m.yaml", &manifest("m", "  {}"))]);
    let given = dir.path().join("sub").join("..");
    let state = load_dir(&given).expect("valid manifest");
    assert_eq!(state.models["m"].file(), given.join("sub").join("m.yaml"));
}

#[test]
fn unknown_api_version_and_kind() {
    let dir = Dir::with(&[(
        "m.yaml",
        "apiVersion: mlreg/v2\nkind: Model\nmetadata:\n  name: m\n",
    )]);
    let errors = dir.errors();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    let file = dir.file("m.yaml");
    assert_at(&errors[0], &file, 1, 13, "unknown apiVersion `mlreg/v2`");
    assert_at(&errors[1], &file, 2, 7, "unknown kind `Model`");
}

#[test]
fn invalid_model_names() {
    let dir = Dir::with(&[(
        "m.yaml",
        &format!(
            "{HEADER}metadata:\n  name: \"\"\n---\n{HEADER}metadata:\n  name: team/model\n---\n{HEADER}metadata:\n  name: \"a:b\"\n---\n{HEADER}metadata:\n  name: 12\n"
        ),
    )]);
    let errors = dir.errors();
    let file = dir.file("m.yaml");
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert_at(&errors[0], &file, 4, 9, "the model name is empty");
    assert_at(&errors[1], &file, 9, 9, "contains `/`");
    assert_at(&errors[2], &file, 14, 9, "contains `:`");
    assert_at(&errors[3], &file, 19, 9, "must be a string, not an integer");
}

#[test]
fn model_names_with_control_characters_are_refused_and_shown_escaped() {
    let dir = Dir::with(&[(
        "m.yaml",
        &format!("{HEADER}metadata:\n  name: \"evil\\e[2Jname\"\n"),
    )]);
    let errors = dir.errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_at(
        &errors[0],
        &dir.file("m.yaml"),
        4,
        9,
        "contains the control character `\\u{1b}`",
    );
    assert!(
        !errors[0].message.contains('\u{1b}'),
        "{:?}",
        errors[0].message
    );
}

#[test]
fn a_model_declared_twice_across_files_points_at_both() {
    let dir = Dir::with(&[
        ("a.yaml", &manifest("fraud", "  {}")),
        (
            "b.yaml",
            &format!("# second\n{}", manifest("fraud", "  {}")),
        ),
    ]);
    let error = dir.error();
    assert_at(
        &error,
        &dir.file("b.yaml"),
        5,
        9,
        "model `fraud` is declared twice",
    );
    let help = error.help.unwrap_or_default();
    assert!(
        help.contains(&format!("{}:4:9", dir.file("a.yaml").display())),
        "{help}"
    );
}

#[test]
fn a_model_declared_twice_in_one_file() {
    let text = format!("{}---\n{}", manifest("m", "  {}"), manifest("m", "  {}"));
    let dir = Dir::with(&[("m.yaml", &text)]);
    assert_at(&dir.error(), &dir.file("m.yaml"), 11, 9, "declared twice");
}

#[test]
fn a_version_in_two_stages() {
    let dir = Dir::with(&[(
        "m.yaml",
        &manifest("m", "  stages:\n    Production: 3\n    Staging: [4, 3]"),
    )]);
    let error = dir.error();
    assert_at(
        &error,
        &dir.file("m.yaml"),
        8,
        18,
        "version 3 is declared in both Production and Staging",
    );
    assert!(error.help.unwrap_or_default().contains("m.yaml:7:17"));
}

#[test]
fn a_version_twice_in_one_stage() {
    let dir = Dir::with(&[(
        "m.yaml",
        &manifest("m", "  stages:\n    Staging: [4, 5, 4]"),
    )]);
    assert_at(
        &dir.error(),
        &dir.file("m.yaml"),
        7,
        21,
        "version 4 is listed twice in Staging",
    );
}

#[test]
fn only_staging_and_production_may_be_declared() {
    let dir = Dir::with(&[(
        "m.yaml",
        &manifest(
            "m",
            "  stages:\n    None: 1\n    archived: 2\n    Prod: 3\n    STAGING: 4\n    staging: 5",
        ),
    )]);
    let errors = dir.errors();
    let file = dir.file("m.yaml");
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert_at(&errors[0], &file, 7, 5, "stage None cannot be declared");
    assert_at(&errors[1], &file, 8, 5, "stage Archived cannot be declared");
    assert_at(&errors[2], &file, 9, 5, "unknown stage `Prod`");
    assert_at(&errors[3], &file, 11, 5, "stage Staging is declared twice");
    for error in &errors[..3] {
        assert!(
            error
                .help
                .as_deref()
                .unwrap_or_default()
                .contains("only Staging and Production")
        );
    }
}

#[test]
fn exhaustive_sections_must_not_be_null() {
    let dir = Dir::with(&[("m.yaml", &manifest("m", "  stages:\n  aliases: ~"))]);
    let errors = dir.errors();
    let file = dir.file("m.yaml");
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_at(&errors[0], &file, 6, 9, "`stages` is empty (null)");
    assert_at(&errors[1], &file, 7, 12, "`aliases` is empty (null)");
}

#[test]
fn invalid_alias_names() {
    let long = "a".repeat(256);
    let dir = Dir::with(&[(
        "m.yaml",
        &manifest(
            "m",
            &format!(
                "  aliases:\n    latest: 1\n    V12: 1\n    \"blue green\": 1\n    {long}: 1\n    ok-alias_2: 1"
            ),
        ),
    )]);
    let errors = dir.errors();
    let file = dir.file("m.yaml");
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert_at(&errors[0], &file, 7, 5, "invalid alias name `latest`");
    assert_at(&errors[1], &file, 8, 5, "invalid alias name `V12`");
    assert_at(&errors[2], &file, 9, 5, "invalid alias name `blue green`");
    assert_at(&errors[3], &file, 10, 5, "256 characters");
}

#[test]
fn version_numbers_must_be_positive_integers() {
    let dir = Dir::with(&[(
        "m.yaml",
        &manifest(
            "m",
            "  stages:\n    Production: 0\n    Staging: [-1, \"4\", 2.5]\n  aliases:\n    champion: -3\n  versions:\n    \"0\": {}\n    \"07\": {}\n    three: {}",
        ),
    )]);
    let errors = dir.errors();
    let file = dir.file("m.yaml");
    assert_eq!(errors.len(), 8, "{errors:#?}");
    assert_at(&errors[0], &file, 7, 17, "`0` is not a version number");
    assert_at(&errors[1], &file, 8, 15, "`-1` is not a version number");
    assert_at(
        &errors[2],
        &file,
        8,
        19,
        "version \"4\" is written as a string",
    );
    assert_at(
        &errors[3],
        &file,
        8,
        24,
        "expected a version number, found a number (2.5)",
    );
    assert_at(&errors[4], &file, 10, 15, "`-3` is not a version number");
    assert_at(&errors[5], &file, 12, 5, "`0` is not a version number");
    assert_at(&errors[6], &file, 13, 5, "`07` is not a version number");
    assert_at(&errors[7], &file, 14, 5, "`three` is not a version number");
}

#[test]
fn a_version_declared_twice_in_versions() {
    let dir = Dir::with(&[(
        "m.yaml",
        &manifest("m", "  versions:\n    \"3\": {}\n    3: {}"),
    )]);
    assert_at(
        &dir.error(),
        &dir.file("m.yaml"),
        8,
        5,
        "version 3 is declared twice in `versions`",
    );
}

#[test]
fn keep_latest_must_be_a_non_negative_integer() {
    let dir = Dir::with(&[(
        "m.yaml",
        &format!(
            "{}---\n{}---\n{}",
            manifest("a", "  retention:\n    keepLatest: -1"),
            manifest("b", "  retention: {keepLatest: \"2\"}"),
            manifest("c", "  retention:\n    keepLatest: 0"),
        ),
    )]);
    let errors = dir.errors();
    let file = dir.file("m.yaml");
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_at(&errors[0], &file, 7, 17, "keepLatest is negative (-1)");
    assert_at(&errors[1], &file, 14, 27, "keepLatest must be an integer");
}

#[test]
fn tag_keys_and_values() {
    let long = "k".repeat(251);
    let dir = Dir::with(&[(
        "m.yaml",
        &manifest(
            "m",
            &format!(
                "  tags:\n    \"\": x\n    {long}: x\n    mlreg.transition: x\n    validated: true\n    ok: \"yes\"\n  versions:\n    \"1\":\n      tags: {{\"\": y}}"
            ),
        ),
    )]);
    let errors = dir.errors();
    let file = dir.file("m.yaml");
    assert_eq!(errors.len(), 5, "{errors:#?}");
    assert_at(&errors[0], &file, 7, 5, "tag key is empty");
    assert_at(&errors[1], &file, 8, 5, "tag key is 251 characters long");
    assert_at(
        &errors[2],
        &file,
        9,
        5,
        "tag key `mlreg.transition` is reserved",
    );
    assert_at(
        &errors[3],
        &file,
        10,
        16,
        "tag `validated` must be a string, not a boolean",
    );
    assert_at(&errors[4], &file, 14, 14, "tag key is empty");
    let key_of_250 = "k".repeat(250);
    let dir = Dir::with(&[(
        "m.yaml",
        &manifest("m", &format!("  tags: {{{key_of_250}: v}}")),
    )]);
    assert!(dir.load().is_ok());
}

#[test]
fn empty_strings_are_refused() {
    let dir = Dir::with(&[(
        "m.yaml",
        &manifest(
            "m",
            "  versions:\n    \"1\": {runId: \"\", source: \" \"}\n  serving:\n    localFallback: \"\"",
        ),
    )]);
    let errors = dir.errors();
    let file = dir.file("m.yaml");
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert_at(&errors[0], &file, 7, 18, "`runId` is empty");
    assert_at(&errors[1], &file, 7, 30, "`source` is empty");
    assert_at(&errors[2], &file, 9, 20, "`localFallback` is empty");
}

#[test]
fn unknown_fields_are_errors() {
    let dir = Dir::with(&[("m.yaml", &manifest("m", "  retention:\n    keep_latest: 2"))]);
    let error = dir.error();
    assert_at(
        &error,
        &dir.file("m.yaml"),
        7,
        5,
        "unknown field `keep_latest`",
    );
    assert!(error.help.unwrap_or_default().contains("`keepLatest`"));

    let dir = Dir::with(&[(
        "m.yaml",
        &format!("{HEADER}metadata:\n  name: m\nstatus: {{}}\n"),
    )]);
    assert_at(
        &dir.error(),
        &dir.file("m.yaml"),
        5,
        1,
        "unknown field `status`",
    );
}

#[test]
fn duplicate_keys_are_errors() {
    let dir = Dir::with(&[(
        "m.yaml",
        &manifest("m", "  stages:\n    Production: 3\n    Production: 4"),
    )]);
    assert_at(
        &dir.error(),
        &dir.file("m.yaml"),
        8,
        5,
        "duplicate key `Production`",
    );
}

#[test]
fn wrong_types_are_errors() {
    let dir = Dir::with(&[
        ("a.yaml", &manifest("a", "  description: [not, a, string]")),
        ("b.yaml", &format!("{HEADER}metadata: m\n")),
        ("c.yaml", &format!("{HEADER}spec: {{}}\n")),
        ("d.yaml", "- a list\n"),
    ]);
    let errors = dir.errors();
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert_at(
        &errors[0],
        &dir.file("a.yaml"),
        6,
        3,
        "expected a single value, found sequence",
    );
    assert_at(&errors[1], &dir.file("b.yaml"), 3, 11, "expected a mapping");
    assert_at(
        &errors[2],
        &dir.file("c.yaml"),
        3,
        1,
        "missing field `metadata`",
    );
    assert_at(&errors[3], &dir.file("d.yaml"), 1, 1, "expected a mapping");
}

#[test]
fn yaml_syntax_errors_are_reported_with_their_location() {
    let dir = Dir::with(&[("m.yaml", "apiVersion: mlreg/v1\nkind: \"RegisteredModel\n")]);
    let errors = dir.errors();
    assert!(!errors.is_empty());
    let last = errors
        .last()
        .and_then(|d| d.origin.clone())
        .unwrap_or_else(|| Origin::file(""));
    assert_eq!(last.file, dir.file("m.yaml"));
    assert!(last.line >= 2, "{errors:#?}");

    let dir = Dir::with(&[("m.yaml", "apiVersion: mlreg/v1\nkind: [RegisteredModel\n")]);
    let errors = dir.errors();
    assert!(
        errors.iter().any(|d| d.message.starts_with("invalid YAML")
            && d.origin.as_ref().is_some_and(|o| o.line == 2)),
        "{errors:#?}"
    );

    let dir = Dir::with(&[("m.yaml", &format!("{HEADER}metadata:\n\tname: m\n"))]);
    let error = dir.error();
    assert!(error.message.contains("tab"), "{error:?}");
    assert_eq!(error.origin.map(|o| o.line), Some(4));
}

#[test]
fn problems_after_a_bad_document_are_still_reported() {
    let text = format!(
        "{}---\n{}",
        manifest("a", "  bogus: 1"),
        manifest("b", "  stages: {Production: 0}")
    );
    let dir = Dir::with(&[("m.yaml", &text)]);
    let errors = dir.errors();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_at(
        &errors[0],
        &dir.file("m.yaml"),
        6,
        3,
        "unknown field `bogus`",
    );
    assert_at(
        &errors[1],
        &dir.file("m.yaml"),
        13,
        24,
        "`0` is not a version number",
    );
}

#[test]
fn non_utf8_files() {
    let dir = Dir::new();
    dir.write("m.yaml", b"apiVersion: mlreg/v1\nkind: Regist\xffered\n");
    let error = dir.error();
    assert_at(&error, &dir.file("m.yaml"), 2, 13, "is not valid UTF-8");
}

#[test]
fn missing_unreadable_and_wrong_directories() {
    let dir = Dir::new();
    let missing = dir.file("nope");
    let error = match load_dir(&missing) {
        Err(error) => error.diagnostics,
        Ok(_) => panic!("a missing directory loaded"),
    };
    assert_eq!(error.len(), 1);
    assert_eq!(error[0].origin, Some(Origin::file(&missing)));
    assert!(
        error[0]
            .message
            .contains("cannot read the desired-state directory")
    );
    assert!(
        error[0]
            .help
            .as_deref()
            .unwrap_or_default()
            .contains("--dir")
    );

    dir.write("file.yaml", manifest("m", "  {}").as_bytes());
    let error = match load_dir(&dir.file("file.yaml")) {
        Err(error) => error.diagnostics,
        Ok(_) => panic!("a file loaded as a directory"),
    };
    assert!(error[0].message.contains("is not a directory"));
}

#[test]
fn an_empty_desired_state_is_an_error() {
    let dir = Dir::with(&[("README.md", "# nothing here")]);
    let error = dir.error();
    assert_eq!(error.origin, Some(Origin::file(dir.path())));
    assert!(error.message.contains("no manifest found"));
    assert!(
        error
            .help
            .as_deref()
            .unwrap_or_default()
            .contains("manage nothing")
    );

    let dir = Dir::with(&[("a.yaml", "# just a comment\n"), ("b.yml", "---\n---\n")]);
    let error = dir.error();
    assert!(
        error.message.contains("2 YAML file(s) hold no document"),
        "{error:?}"
    );
}

#[test]
fn oversized_files_and_deep_nesting_do_not_panic() {
    let dir = Dir::new();
    let size = usize::try_from(MAX_MANIFEST_BYTES).unwrap_or(usize::MAX) + 1;
    dir.write("big.yaml", &vec![b'#'; size]);
    let error = dir.error();
    assert!(error.message.contains("larger than"), "{error:?}");

    let nested = format!(
        "{}{}{}",
        manifest("deep", "  description: "),
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let dir = Dir::with(&[("deep.yaml", &nested)]);
    assert!(!dir.errors().is_empty());

    let nested_maps = format!("{HEADER}metadata:\n{}", "a: {".repeat(5_000));
    let dir = Dir::with(&[("deep.yaml", &nested_maps)]);
    assert!(!dir.errors().is_empty());
}

#[cfg(unix)]
#[test]
fn symlink_loops_are_not_followed_forever() {
    let dir = Dir::with(&[("models/m.yaml", &manifest("m", "  {}"))]);
    std::os::unix::fs::symlink(dir.path(), dir.file("models/loop"))
        .expect("create a symbolic link");
    std::os::unix::fs::symlink(dir.file("nowhere"), dir.file("models/zz-dangling.txt"))
        .expect("create a symbolic link");
    let state = dir.load().expect("the loop is skipped");
    assert_eq!(state.models.len(), 1);

    std::os::unix::fs::symlink(dir.file("nowhere"), dir.file("models/zz-dangling.yaml"))
        .expect("create a symbolic link");
    let error = dir.error();
    assert_eq!(
        error.origin,
        Some(Origin::file(dir.file("models/zz-dangling.yaml")))
    );
}

#[test]
fn manifest_file_names() {
    assert!(is_manifest_file(Path::new("a/b.yaml")));
    assert!(is_manifest_file(Path::new("b.yml")));
    assert!(!is_manifest_file(Path::new(".b.yaml")));
    assert!(!is_manifest_file(Path::new("b.yaml~")));
    assert!(!is_manifest_file(Path::new("b.json")));
}

#[test]
fn the_schema_is_draft_07_and_strict() {
    let schema = schema::json_schema();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["required"],
        serde_json::json!(["apiVersion", "kind", "metadata"])
    );
    assert_eq!(
        schema["properties"]["apiVersion"]["enum"],
        serde_json::json!([API_VERSION])
    );
    assert_eq!(
        schema["properties"]["kind"]["enum"],
        serde_json::json!([KIND])
    );
}

#[test]
fn serving_prefer_lists_stages_and_aliases_once_each() {
    let dir = Dir::with(&[(
        "m.yaml",
        &manifest(
            "m",
            "  serving:\n    prefer: [\"@champion\", production]\n    localFallback: models/m",
        ),
    )]);
    let state = dir.load().expect("valid manifest");
    assert_eq!(
        state.models["m"].spec.serving_targets(),
        [
            crate::target::Target::Alias("champion".into()),
            crate::target::Target::Stage(Stage::Production)
        ]
    );
    let dir = Dir::with(&[("m.yaml", &manifest("m", "  stages: {}"))]);
    let state = dir.load().expect("valid manifest");
    assert_eq!(
        state.models["m"].spec.serving_targets(),
        [
            crate::target::Target::Stage(Stage::Production),
            crate::target::Target::Stage(Stage::Staging)
        ]
    );

    let dir = Dir::with(&[(
        "m.yaml",
        &manifest(
            "m",
            "  serving:\n    prefer:\n      - \"@latest\"\n      - Staging\n      - staging\n      - Archived",
        ),
    )]);
    let file = dir.file("m.yaml");
    let errors = dir.errors();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert_at(&errors[0], &file, 8, 9, "invalid alias `@latest`");
    assert_at(&errors[1], &file, 10, 9, "`Staging` is listed twice");
    assert_at(&errors[2], &file, 11, 9, "Archived cannot be a target");
}

#[test]
fn loads_gates_and_writes_them_back() {
    let spec = "  gates:\n    Production:\n      metrics:\n        acc: \">= 0.90\"\n        latency: \"<50\"\n      tags:\n        validated: \"true\"\n        approved_by: \"*\"\n      soak: {in: Staging, for: 24h}\n      noRegression: {metric: acc, direction: higher, tolerance: 0.005}\n    \"@champion\":\n      soak: {in: \"@challenger\", for: 30m}";
    let dir = Dir::with(&[("m.yaml", &manifest("m", spec))]);
    let state = dir.load().expect("valid");
    let model = &state.models["m"];
    let gates = &model.spec.gates;
    let production = &gates[&Target::Stage(Stage::Production)];
    assert_eq!(production.metrics["acc"].to_string(), ">= 0.9");
    assert_eq!(production.metrics["latency"].to_string(), "< 50");
    assert_eq!(production.tags["approved_by"], super::TagRequirement::Any);
    let soak = production.soak.as_ref().expect("soak");
    assert_eq!(soak.duration, std::time::Duration::from_secs(24 * 3600));
    assert_eq!(
        production.no_regression.as_ref().map(|r| r.tolerance),
        Some(0.005)
    );
    let champion = &gates[&Target::Alias("champion".into())];
    assert_eq!(
        champion.soak.as_ref().map(|s| &s.within),
        Some(&Target::Alias("challenger".into()))
    );
    // Written back, the manifest means the same (export and edits rely on it).
    let text = super::to_yaml("m", &model.spec).expect("yaml");
    let again = super::parse_text(&dir.file("again.yaml"), &text).expect("reads back");
    assert_eq!(again[0].spec, model.spec, "{text}");
}

#[test]
fn bad_gates_are_reported_where_written() {
    let spec = "  gates:\n    Prod:\n      metrics: {acc: \">= 0.9\"}\n    Staging:\n      metrics:\n        acc: \"=> 0.9\"\n        f1: \">= high\"\n      soak: {in: Nowhere, for: 2d}\n      noRegression: {metric: acc, direction: up}\n    \"@latest\": {}";
    let dir = Dir::with(&[("m.yaml", &manifest("m", spec))]);
    let file = dir.file("m.yaml");
    let errors = dir.errors();
    assert_eq!(errors.len(), 7, "{errors:#?}");
    assert_at(&errors[0], &file, 7, 5, "invalid gate target");
    assert_at(&errors[1], &file, 11, 14, "invalid condition `=> 0.9`");
    assert_at(&errors[2], &file, 12, 13, "`high` is not a finite number");
    assert_at(&errors[3], &file, 13, 18, "invalid `soak.in`");
    assert_at(&errors[4], &file, 13, 32, "invalid `soak.for`");
    assert_at(
        &errors[5],
        &file,
        14,
        46,
        "unknown `noRegression.direction` `up`",
    );
    assert_at(&errors[6], &file, 15, 5, "invalid gate target");
}
