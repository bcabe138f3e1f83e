//! A fleet of test models that flip between two layouts, and the `mlreg` runs that drive
//! them: shared by the fault, crash and race tests.
//!
//! Every model of a [`Fleet`] has [`VERSIONS`] versions. Layout [`A`] puts versions 1 and 2
//! in Production and 3 and 4 in Staging; layout [`B`] puts 3 and 4 in Production and 5 and
//! 6 in Staging; each also points the `champion` and `challenger` aliases. Going from one
//! layout to the other is six transitions (two promotions into Production, two into
//! Staging, two archives) and two alias moves per model, so a stage is always being
//! replaced while it is in use. Versions 7 and 8 are never declared and, with no
//! `retention`, must never be touched.
//!
//! A transition a run towards a layout may send is fully determined by the layout
//! ([`Layout::allows`]): a version declared in a stage goes to that stage, any other
//! version of 1–6 can only go to `Archived`, and 7–8 go nowhere. The proxy's record of
//! requests is checked against that ([`wrong_transitions`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

use futures_util::future::join_all;
use mlreg::registry::mlflow::MlflowClient;
use mlreg::registry::{ObservedModel, Registry};
use mlreg::stage::Stage;

use super::manifest::Manifest;
use super::proxy::Recorded;

/// How many versions each model of a fleet has.
pub const VERSIONS: u64 = 8;

/// Versions no layout declares: they stay in stage `None`, untouched.
pub const UNTOUCHED: [u64; 2] = [7, 8];

/// Which versions sit in which stage, and where the aliases point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The name used in messages.
    pub name: &'static str,
    /// Versions declared in Production.
    pub production: &'static [u64],
    /// Versions declared in Staging.
    pub staging: &'static [u64],
    /// The `champion` alias.
    pub champion: u64,
    /// The `challenger` alias.
    pub challenger: u64,
}

/// Production 1, 2; Staging 3, 4.
pub const A: Layout = Layout {
    name: "A",
    production: &[1, 2],
    staging: &[3, 4],
    champion: 1,
    challenger: 3,
};

/// Production 3, 4; Staging 5, 6.
pub const B: Layout = Layout {
    name: "B",
    production: &[3, 4],
    staging: &[5, 6],
    champion: 3,
    challenger: 5,
};

impl Layout {
    /// The other layout.
    pub fn flipped(self) -> Layout {
        if self == A { B } else { A }
    }

    /// The stage `version` is declared in, if any.
    pub fn declared(self, version: u64) -> Option<Stage> {
        if self.production.contains(&version) {
            Some(Stage::Production)
        } else if self.staging.contains(&version) {
            Some(Stage::Staging)
        } else {
            None
        }
    }

    /// Whether a run towards this layout may move `version` to `stage`.
    pub fn allows(self, version: u64, stage: Stage) -> bool {
        match self.declared(version) {
            Some(declared) => stage == declared,
            None => !UNTOUCHED.contains(&version) && stage == Stage::Archived,
        }
    }

    /// The manifest of `name` in this layout.
    pub fn manifest(self, name: &str) -> String {
        Manifest::model(name)
            .stage(Stage::Production, self.production)
            .stage(Stage::Staging, self.staging)
            .alias("champion", self.champion)
            .alias("challenger", self.challenger)
            .yaml()
    }

    /// Checks that `model` is exactly in this layout: the declared versions in their stages
    /// and no others in Staging or Production, the aliases, versions 7 and 8 in `None`.
    pub fn check(self, model: &ObservedModel) -> Result<(), String> {
        let in_stage = |stage: Stage| {
            model
                .versions_in(stage)
                .map(|v| v.version)
                .collect::<Vec<_>>()
        };
        let mut problems = Vec::new();
        if in_stage(Stage::Production) != self.production {
            problems.push(format!(
                "Production holds {:?}, not {:?}",
                in_stage(Stage::Production),
                self.production
            ));
        }
        if in_stage(Stage::Staging) != self.staging {
            problems.push(format!(
                "Staging holds {:?}, not {:?}",
                in_stage(Stage::Staging),
                self.staging
            ));
        }
        for version in UNTOUCHED {
            let stage = model.versions.get(&version).map(|v| v.stage);
            if stage != Some(Stage::None) {
                problems.push(format!("version {version} is in {stage:?}, not None"));
            }
        }
        let aliases = BTreeMap::from([
            ("champion".to_owned(), self.champion),
            ("challenger".to_owned(), self.challenger),
        ]);
        if model.aliases != aliases {
            problems.push(format!("aliases are {:?}, not {aliases:?}", model.aliases));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "`{}` is not in layout {}: {}",
                model.name,
                self.name,
                problems.join("; ")
            ))
        }
    }
}

/// Models of one test, and the desired-state directory that declares them.
#[derive(Debug)]
pub struct Fleet {
    /// The model names.
    pub models: Vec<String>,
    dir: tempfile::TempDir,
}

impl Fleet {
    /// Creates `count` models named after `prefix`, each with [`VERSIONS`] versions in
    /// stage `None` (the models concurrently, each model's versions in order).
    pub async fn seed(client: &MlflowClient, prefix: &str, count: usize) -> Fleet {
        let models: Vec<String> = (0..count).map(|_| super::unique(prefix)).collect();
        join_all(
            models
                .iter()
                .map(|name| super::seed_model(client, name, VERSIONS)),
        )
        .await;
        Fleet {
            models,
            dir: tempfile::tempdir().expect("desired-state directory"),
        }
    }

    /// The desired-state directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes one manifest per model declaring `layout`. Each file is written under a
    /// hidden name and renamed into place, so a daemon watching the directory never reads
    /// half a file.
    pub fn declare(&self, layout: Layout) {
        for name in &self.models {
            let temporary = self.dir().join(format!(".{name}.yaml.tmp"));
            std::fs::write(&temporary, layout.manifest(name)).expect("write manifest");
            std::fs::rename(&temporary, self.dir().join(format!("{name}.yaml")))
                .expect("rename manifest");
        }
    }

    /// Reads every model directly from the server.
    pub async fn observe(&self, client: &MlflowClient) -> BTreeMap<String, ObservedModel> {
        let mut observed = BTreeMap::new();
        for name in &self.models {
            let model = client
                .model(name)
                .await
                .unwrap_or_else(|error| panic!("read {name}: {error}"))
                .unwrap_or_else(|| panic!("{name} exists"));
            observed.insert(name.clone(), model);
        }
        observed
    }

    /// Every problem that keeps the fleet from being exactly in `layout` (empty: converged).
    pub async fn problems(&self, client: &MlflowClient, layout: Layout) -> Vec<String> {
        self.observe(client)
            .await
            .values()
            .filter_map(|model| layout.check(model).err())
            .collect()
    }

    /// Panics unless every model is exactly in `layout`.
    pub async fn assert_in(&self, client: &MlflowClient, layout: Layout, context: &str) {
        let problems = self.problems(client, layout).await;
        assert!(
            problems.is_empty(),
            "{context}: the registry did not converge:\n{}",
            problems.join("\n")
        );
    }
}

/// The transition requests among `requests` that a run towards `layout` must never send
/// (a version to a stage the layout does not give it, a version that must stay untouched,
/// `archive_existing_versions` not false), described; requests for models outside `fleet`
/// are reported too.
pub fn wrong_transitions(fleet: &Fleet, layout: Layout, requests: &[Recorded]) -> Vec<String> {
    requests
        .iter()
        .filter(|request| request.target.contains("model-versions/transition-stage"))
        .filter_map(|request| {
            let body = request.json();
            let name = body["name"].as_str().unwrap_or_default();
            let version: u64 = body["version"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let stage: Option<Stage> = body["stage"].as_str().and_then(|s| s.parse().ok());
            let right = fleet.models.iter().any(|model| model == name)
                && stage.is_some_and(|stage| layout.allows(version, stage))
                && body["archive_existing_versions"] == serde_json::Value::Bool(false);
            (!right).then(|| {
                format!(
                    "{} {}",
                    request.method,
                    String::from_utf8_lossy(&request.body)
                )
            })
        })
        .collect()
}

/// The requests among `requests` that write (anything but GET).
pub fn writes(requests: &[Recorded]) -> Vec<String> {
    requests
        .iter()
        .filter(|request| request.method != "GET")
        .map(|request| format!("{} {}", request.method, request.target))
        .collect()
}

/// The `mlreg` binary pointed at `uri`, with a clean environment: no inherited credentials
/// or settings, no color, fast retries (10 ms doubling up to 200 ms, `Retry-After` capped at
/// 2 s) so fault tests spend their time on faults rather than on waiting.
pub fn command(uri: &str) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mlreg"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("MLFLOW_TRACKING_URI", uri)
        .env("NO_COLOR", "1")
        .env("MLREG_RETRY_MIN_BACKOFF", "10ms")
        .env("MLREG_RETRY_MAX_BACKOFF", "2s")
        .env("MLREG_REQUEST_TIMEOUT", "20s")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// How a run of the binary ended.
#[derive(Debug)]
pub struct Run {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl Run {
    /// Everything it printed, for failure messages.
    pub fn output(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// Panics if the binary panicked.
    #[track_caller]
    pub fn assert_no_panic(&self) {
        assert!(
            !self.stderr.contains("panicked") && !self.stdout.contains("panicked"),
            "mlreg panicked:\n{}",
            self.output()
        );
    }
}

/// Runs `command` to completion without blocking the runtime.
pub async fn run(command: std::process::Command) -> Run {
    let output = tokio::process::Command::from(command)
        .output()
        .await
        .expect("run mlreg");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `mlreg reconcile --dir DIR ARGS...` against `uri`.
pub async fn reconcile(uri: &str, dir: &Path, args: &[&str]) -> Run {
    let mut command = command(uri);
    command.arg("reconcile").arg("--dir").arg(dir).args(args);
    run(command).await
}
