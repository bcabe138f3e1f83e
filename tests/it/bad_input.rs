//! Broken manifests on the `reconcile` side: each is a clear error naming the file (and
//! line where there is one), exit 1, no panic, no raw escape sequence on the terminal, and
//! nothing applied — the registry is not even contacted, and a real model with pending
//! changes declared next to the broken file stays as it was.
//!
//! The corpus is `tests/fixtures/bad/` (see its README) plus cases generated in temporary
//! directories (huge, deeply nested, not UTF-8, looping or dangling symbolic links, deep
//! directories, a named pipe). `mlreg validate` on the same classes is in `validate.rs`.
//!
//! Then property-based fuzzing of the loader: [`mlreg::manifest::load_dir`] on arbitrary
//! bytes and on mutations of valid manifests (lines deleted, duplicated, swapped;
//! characters flipped; tabs, YAML punctuation and odd bytes inserted; truncation) never
//! panics, and rendering whatever it reports never panics either. The case count and the
//! seed are fixed so CI runs the same few hundred cases in seconds; `PROPTEST_CASES` and
//! `PROPTEST_RNG_SEED` explore further.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use mlreg::registry::Registry;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngSeed, TestRunner};

use mlreg::stage::Stage::Production;

use crate::support;
use crate::support::fleet::{self, Run};
use crate::support::manifest::Manifest;
use crate::support::proxy::FaultProxy;

/// `tests/fixtures/bad`.
fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad")
}

/// What each corpus directory must produce: the location after `--> state/` (empty for an
/// error about the directory itself) and a fragment of the message.
const EXPECTED: &[(&str, &str, &str)] = &[
    (
        "alias-bomb",
        "m.yaml:12:16",
        "too large or too deeply nested",
    ),
    ("bad-indentation", "m.yaml:8:4", "invalid YAML"),
    (
        "control-character-in-a-tag-key",
        "m.yaml:7:5",
        "tag key `a\\u{1b}[31mred` contains `\\u{1b}`",
    ),
    (
        "control-character-in-name",
        "m.yaml:4:9",
        "contains the control character `\\u{1b}`",
    ),
    ("duplicate-alias", "m.yaml:8:5", "duplicate key `champion`"),
    (
        "duplicate-top-level-key",
        "m.yaml:5:1",
        "duplicate key `metadata`",
    ),
    ("empty-file", "", "hold no document"),
    (
        "escaped-control-characters-in-a-key",
        "m.yaml:7:3",
        "unknown field",
    ),
    (
        "keep-latest-is-a-string",
        "m.yaml:7:17",
        "keepLatest must be an integer",
    ),
    ("list-document", "m.yaml:1:1", "expected a mapping"),
    ("no-manifests", "", "no manifest found"),
    ("null-document", "", "hold no document"),
    (
        "one-bad-file-among-good",
        "b-broken.yaml:7:17",
        "unclosed bracket",
    ),
    ("only-comments", "", "hold no document"),
    (
        "raw-escape-sequences",
        "m.yaml:6:17",
        "unexpected character",
    ),
    ("scalar-document", "m.yaml:1:1", "expected a mapping"),
    ("second-document-broken", "m.yaml:9:11", "unclosed bracket"),
    ("stages-is-a-string", "m.yaml:6:11", "expected a mapping"),
    ("tab-after-spaces", "m.yaml:7:4", "tabs disallowed"),
    ("tab-indentation", "m.yaml:7:2", "tabs disallowed"),
    ("tags-is-a-list", "m.yaml:6:9", "expected a mapping"),
    ("unclosed-flow", "m.yaml:6:24", "mismatched bracket"),
    ("undefined-alias", "m.yaml:7:17", "unknown value"),
    (
        "version-is-a-float",
        "m.yaml:7:17",
        "expected a version number",
    ),
    (
        "version-is-a-word",
        "m.yaml:7:17",
        "expected a version number",
    ),
    (
        "version-overflows",
        "m.yaml:7:17",
        "expected a version number",
    ),
];

/// Cases that are errors only when alone: next to a valid manifest, a file with no
/// document is simply empty.
const ALONE: &[&str] = &[
    "empty-file",
    "no-manifests",
    "null-document",
    "only-comments",
];

/// A real model with a pending change (its manifest puts version 1 in Production; the
/// registry has it in `None`), declared next to each broken file.
struct Victim {
    name: String,
    manifest: String,
    before: mlreg::registry::ObservedModel,
}

impl Victim {
    async fn seed() -> Victim {
        let client = support::client();
        let name = support::unique("bad-input-victim");
        support::seed_model(&client, &name, 2).await;
        let before = client.model(&name).await.expect("read").expect("exists");
        Victim {
            manifest: Manifest::model(&name).stage(Production, &[1]).yaml(),
            name,
            before,
        }
    }

    async fn assert_unchanged(&self, context: &str) {
        let now = support::client()
            .model(&self.name)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(now, self.before, "{context}: the victim model changed");
    }
}

/// A temporary directory holding `state/`, the desired-state directory under test, so that
/// diagnostics read `state/<file>:<line>:<column>`.
struct Workspace {
    root: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        let root = tempfile::tempdir().expect("temporary directory");
        fs::create_dir(root.path().join("state")).expect("create state/");
        Workspace { root }
    }

    fn state(&self) -> PathBuf {
        self.root.path().join("state")
    }

    /// `mlreg ARGS... --dir state` from the workspace, against `uri`.
    async fn mlreg(&self, uri: &str, args: &[&str]) -> Run {
        let mut command = fleet::command(uri);
        command
            .current_dir(self.root.path())
            .args(args)
            .args(["--dir", "state"]);
        fleet::run(command).await
    }
}

/// Runs `reconcile` on `workspace` through `proxy` and checks the refusal.
async fn assert_refused(
    workspace: &Workspace,
    proxy: &FaultProxy,
    case: &str,
    location: &str,
    message: &str,
) {
    let requests = proxy.requests();
    let run = workspace.mlreg(&proxy.uri, &["reconcile"]).await;
    let context = format!("case `{case}`");
    run.assert_no_panic();
    assert_eq!(run.code, Some(1), "{context}:\n{}", run.output());
    let arrow = if location.is_empty() {
        "--> state\n".to_owned()
    } else {
        format!("--> state/{location}")
    };
    assert!(
        run.stderr.contains(&arrow),
        "{context}: no `{arrow}` in\n{}",
        run.output()
    );
    assert!(
        run.stderr.contains(message),
        "{context}: no `{message}` in\n{}",
        run.output()
    );
    assert!(
        run.stderr.contains("Nothing was applied"),
        "{context}:\n{}",
        run.output()
    );
    assert!(
        !run.stderr.contains('\u{1b}') && !run.stdout.contains('\u{1b}'),
        "{context}: an escape character reached the terminal:\n{:?}",
        run.stderr
    );
    assert_eq!(
        proxy.requests(),
        requests,
        "{context}: the registry was contacted"
    );
}

/// Copies the files of `from` into `to` (one level: the corpus is flat).
fn copy_files(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).expect("read a corpus directory") {
        let entry = entry.expect("corpus entry");
        fs::copy(entry.path(), to.join(entry.file_name())).expect("copy a corpus file");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_broken_manifest_in_the_corpus_is_refused_and_nothing_is_applied() {
    let server = support::server();
    let victim = Victim::seed().await;
    let proxy = FaultProxy::start(&server.uri).await;

    let on_disk: BTreeSet<String> = fs::read_dir(corpus())
        .expect("read tests/fixtures/bad")
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    let listed: BTreeSet<String> = EXPECTED.iter().map(|(case, ..)| case.to_string()).collect();
    assert_eq!(
        on_disk, listed,
        "every corpus directory needs an entry in EXPECTED"
    );

    for (case, location, message) in EXPECTED {
        let workspace = Workspace::new();
        copy_files(&corpus().join(case), &workspace.state());
        if !ALONE.contains(case) {
            fs::write(workspace.state().join("zz-victim.yaml"), &victim.manifest)
                .expect("write the victim's manifest");
        }
        assert_refused(&workspace, &proxy, case, location, message).await;
    }
    victim.assert_unchanged("after the corpus").await;

    // The check above means something: alone, the victim's manifest has a change to apply.
    let workspace = Workspace::new();
    fs::write(workspace.state().join("zz-victim.yaml"), &victim.manifest).expect("write");
    let plan = workspace
        .mlreg(
            &server.uri,
            &["plan", "--detailed-exitcode", "--model", &victim.name],
        )
        .await;
    assert_eq!(plan.code, Some(2), "{}", plan.output());
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn generated_broken_inputs_are_refused_and_nothing_is_applied() {
    let server = support::server();
    let victim = Victim::seed().await;
    let proxy = FaultProxy::start(&server.uri).await;
    type Setup = fn(&Path);
    let cases: [(&str, Setup, &str, &str); 6] = [
        (
            "a file over 8 MiB",
            |state| fs::write(state.join("huge.yaml"), vec![b'#'; 9 * 1024 * 1024]).expect("write"),
            "huge.yaml\n",
            "larger than 8 MiB",
        ),
        (
            "200 000 nested brackets",
            |state| {
                let deep = format!(
                    "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: {}{}\n",
                    "[".repeat(200_000),
                    "]".repeat(200_000)
                );
                fs::write(state.join("deep.yaml"), deep).expect("write");
            },
            "deep.yaml:4:",
            "too deeply nested",
        ),
        (
            "bytes that are not UTF-8",
            |state| {
                fs::write(
                    state.join("latin1.yaml"),
                    b"apiVersion: mlreg/v1\nkind: Registered\xe9Model\n",
                )
                .expect("write");
            },
            "latin1.yaml:2:17",
            "is not valid UTF-8",
        ),
        (
            "symbolic links that loop",
            |state| {
                std::os::unix::fs::symlink("loop-b.yaml", state.join("loop-a.yaml")).expect("ln");
                std::os::unix::fs::symlink("loop-a.yaml", state.join("loop-b.yaml")).expect("ln");
            },
            "loop-a.yaml\n",
            "cannot read `state/loop-a.yaml`",
        ),
        (
            "a symbolic link to nothing",
            |state| {
                std::os::unix::fs::symlink("gone.yaml", state.join("dangling.yaml")).expect("ln");
            },
            "dangling.yaml\n",
            "cannot read `state/dangling.yaml`",
        ),
        (
            "directories nested 40 deep",
            |state| {
                let mut dir = state.to_path_buf();
                for level in 0..40 {
                    dir = dir.join(format!("d{level}"));
                }
                fs::create_dir_all(&dir).expect("mkdir -p");
                fs::write(dir.join("m.yaml"), "apiVersion: mlreg/v1\n").expect("write");
            },
            "d0/d1/",
            "nested more than 32 levels deep",
        ),
    ];
    for (case, setup, location, message) in cases {
        let workspace = Workspace::new();
        setup(&workspace.state());
        fs::write(workspace.state().join("zz-victim.yaml"), &victim.manifest).expect("write");
        assert_refused(&workspace, &proxy, case, location, message).await;
    }
    victim.assert_unchanged("after the generated cases").await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_named_pipe_that_looks_like_a_manifest_never_blocks_the_loader() {
    let workspace = Workspace::new();
    let state = workspace.state();
    Manifest::model("piped").write(&state, "m.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(state.join("pipe.yaml"))
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo failed");
    // Nothing ever writes to the pipe: reading it would block forever. The loader reads
    // regular files only, so validation finishes (the test harness's own timeout would
    // catch a hang).
    let run = workspace.mlreg("http://127.0.0.1:9", &["validate"]).await;
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert!(run.stdout.contains("1 manifest valid"), "{}", run.output());
}

/// Valid manifests to mutate: the fixtures and the project's example desired state.
fn seeds() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut texts = Vec::new();
    for dir in [
        root.join("tests/fixtures/manifests/valid"),
        root.join("tests/fixtures/manifests/valid/more"),
        root.join("desired-state"),
    ] {
        for entry in fs::read_dir(&dir).expect("read a directory of valid manifests") {
            let path = entry.expect("entry").path();
            if mlreg::manifest::is_manifest_file(&path) {
                texts.push(fs::read_to_string(&path).expect("read a valid manifest"));
            }
        }
    }
    assert!(texts.len() >= 3, "valid manifests to mutate");
    texts
}

/// One edit of a manifest's text. Positions are taken modulo the text's size.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    FlipCharacter(usize, char),
    InsertTab(usize),
    Insert(usize, &'static str),
    InsertByte(usize, u8),
    Truncate(usize),
}

/// Fragments that YAML or the manifest format give a meaning to, or that are odd.
const FRAGMENTS: &[&str] = &[
    ":",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "<<: *a",
    "!!binary ",
    "!custom ",
    "'",
    "\"",
    "\n---\n",
    "\n...\n",
    "~",
    "? ",
    "|",
    ">-",
    "#",
    "\r",
    "\u{feff}",
    "\u{0}",
    "\u{1b}[2J",
    "99999999999999999999999",
    "-1",
    "0",
    "1.5",
    "null",
    "true",
    "Production: ",
    "Staging: [",
    "aliases: {}",
    "\n  stages:\n    Production: 1\n",
    "%YAML 1.1\n",
    "\u{202e}",
    "é",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<usize>(), any::<char>()).prop_map(|(at, c)| Mutation::FlipCharacter(at, c)),
        any::<usize>().prop_map(Mutation::InsertTab),
        (any::<usize>(), proptest::sample::select(FRAGMENTS))
            .prop_map(|(at, fragment)| Mutation::Insert(at, fragment)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::InsertByte(at, byte)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// Applies `mutation` to `bytes` (which may stop being UTF-8 along the way).
fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let mut lines: Vec<Vec<u8>> = bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    let position = |at: usize, len: usize| if len == 0 { 0 } else { at % (len + 1) };
    match mutation {
        Mutation::DeleteLine(at) if !lines.is_empty() => {
            let at = at % lines.len();
            lines.remove(at);
        }
        Mutation::DuplicateLine(at) if !lines.is_empty() => {
            let at = at % lines.len();
            let line = lines[at].clone();
            lines.insert(at, line);
        }
        Mutation::SwapLines(a, b) if !lines.is_empty() => {
            let (a, b) = (a % lines.len(), b % lines.len());
            lines.swap(a, b);
        }
        Mutation::FlipCharacter(at, c) if !bytes.is_empty() => {
            let at = at % bytes.len();
            let mut encoded = [0_u8; 4];
            bytes.splice(at..=at, c.encode_utf8(&mut encoded).bytes());
            return;
        }
        Mutation::InsertTab(at) => {
            let at = position(*at, bytes.len());
            bytes.insert(at, b'\t');
            return;
        }
        Mutation::Insert(at, fragment) => {
            let at = position(*at, bytes.len());
            bytes.splice(at..at, fragment.bytes());
            return;
        }
        Mutation::InsertByte(at, byte) => {
            let at = position(*at, bytes.len());
            bytes.insert(at, *byte);
            return;
        }
        Mutation::Truncate(at) => {
            let at = position(*at, bytes.len());
            bytes.truncate(at);
            return;
        }
        _ => return,
    }
    *bytes = lines.concat();
}

/// Loads `dir` and renders whatever it reports; panics propagate to proptest.
fn load_and_render(dir: &Path) {
    match mlreg::manifest::load_dir(dir) {
        Ok(state) => assert!(!state.models.is_empty(), "a valid state declares models"),
        Err(error) => {
            assert!(!error.diagnostics.is_empty(), "an error says what is wrong");
            let mut out = Vec::new();
            mlreg::diagnostic::render(&mut out, &error.diagnostics, &error.sources, true)
                .expect("render into a Vec");
            assert!(!out.is_empty());
        }
    }
}

/// The fuzzing configuration: a fixed seed and a few hundred cases, unless
/// `PROPTEST_RNG_SEED` / `PROPTEST_CASES` say otherwise.
fn fuzz_config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    if matches!(config.rng_seed, RngSeed::Random) {
        config.rng_seed = RngSeed::Fixed(20_261_128);
    }
    config.failure_persistence = None;
    config
}

#[test]
fn the_loader_never_panics_on_arbitrary_bytes() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut runner = TestRunner::new(fuzz_config(400));
    runner
        .run(
            &(
                proptest::collection::vec(any::<u8>(), 0..2048),
                any::<bool>(),
            ),
            |(bytes, with_valid_neighbour)| {
                fs::write(dir.path().join("fuzz.yaml"), &bytes).expect("write");
                let neighbour = dir.path().join("neighbour.yaml");
                if with_valid_neighbour {
                    fs::write(&neighbour, Manifest::model("neighbour").yaml()).expect("write");
                } else if neighbour.exists() {
                    fs::remove_file(&neighbour).expect("remove");
                }
                load_and_render(dir.path());
                Ok(())
            },
        )
        .unwrap_or_else(|failure| panic!("{failure}"));
}

#[test]
fn the_loader_never_panics_on_mutated_manifests() {
    let seeds = seeds();
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut runner = TestRunner::new(fuzz_config(600));
    runner
        .run(
            &(
                0..seeds.len(),
                proptest::collection::vec(mutation(), 1..6),
                any::<bool>(),
            ),
            |(seed, mutations, keep_original)| {
                let mut bytes = seeds[seed].clone().into_bytes();
                for mutation in &mutations {
                    apply(&mut bytes, mutation);
                }
                fs::write(dir.path().join("mutated.yaml"), &bytes).expect("write");
                // Beside the original, most mutants also declare a model twice.
                let original = dir.path().join("original.yaml");
                if keep_original {
                    fs::write(&original, &seeds[seed]).expect("write");
                } else if original.exists() {
                    fs::remove_file(&original).expect("remove");
                }
                load_and_render(dir.path());
                Ok(())
            },
        )
        .unwrap_or_else(|failure| panic!("{failure}"));
}
