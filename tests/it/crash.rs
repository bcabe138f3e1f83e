//! `mlreg reconcile` killed with SIGKILL in the middle of a large apply, at points drawn
//! from fixed seeds, and started again.
//!
//! A fleet of models flips between two layouts (six transitions, six audit tags and two
//! alias moves per model; see `support::fleet`). In each trial the run goes through a
//! [`FaultProxy`] that only records (and slightly delays transitions, to spread the apply
//! out); once the proxy has seen the trial's number of transition requests, the process is
//! killed. Then:
//! - a new run converges (exit 0, every model exactly as declared), and the one after it
//!   has nothing to do;
//! - no run, killed or not, sent a wrong transition;
//! - throughout, a poller reading the registry directly (one model-version search per
//!   round: a single SQL query, so a consistent picture of every model's stages) never sees
//!   a model with no version in Production — every layout declares Production and the
//!   planner orders promotions before archives, so a kill at any point leaves the old or
//!   the new versions serving.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use crate::support;
use crate::support::fleet::{self, A, Fleet};
use crate::support::proxy::{Fault, FaultProxy, RandomFaults};

/// Models in the fleet.
const MODELS: usize = 20;

/// Transitions of one flip between layouts, per model.
const TRANSITIONS_PER_MODEL: usize = 6;

/// How long one run may take before the test gives up (generous: two cores, shared server).
const DEADLINE: Duration = Duration::from_secs(180);

/// Watches every model of the fleet through one model-version search per round and
/// remembers each time a model had no version in Production.
struct Poller {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl Poller {
    fn start(uri: &str, fleet: &Fleet) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicU64::new(0));
        let models: BTreeSet<String> = fleet.models.iter().cloned().collect();
        // `unique` names are `prefix-run-n`: everything up to the last dash is shared.
        let prefix = fleet.models[0]
            .rsplit_once('-')
            .map(|(prefix, _)| prefix.to_owned())
            .expect("a unique name");
        let url = format!("{uri}/api/2.0/mlflow/model-versions/search");
        let task = tokio::spawn({
            let stop = Arc::clone(&stop);
            let rounds = Arc::clone(&rounds);
            async move {
                let http = reqwest::Client::new();
                let mut violations = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let answer = http
                        .get(&url)
                        .query(&[
                            ("filter", format!("name LIKE '{prefix}-%'")),
                            ("max_results", "10000".to_owned()),
                        ])
                        .send()
                        .await;
                    let body: serde_json::Value = match answer {
                        Ok(response) if response.status().is_success() => {
                            response.json().await.unwrap_or_default()
                        }
                        _ => continue,
                    };
                    let mut production: BTreeMap<&str, Vec<&str>> =
                        models.iter().map(|m| (m.as_str(), Vec::new())).collect();
                    for version in body["model_versions"].as_array().into_iter().flatten() {
                        let name = version["name"].as_str().unwrap_or_default();
                        if version["current_stage"] == "Production"
                            && let Some(list) = production.get_mut(name)
                        {
                            list.push(version["version"].as_str().unwrap_or_default());
                        }
                    }
                    for (name, versions) in production {
                        if versions.is_empty() {
                            violations.push(format!(
                                "round {}: `{name}` had no version in Production",
                                rounds.load(Ordering::SeqCst)
                            ));
                        }
                    }
                    rounds.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                violations
            }
        });
        Poller { stop, rounds, task }
    }

    fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::SeqCst)
    }

    async fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("the poller")
    }
}

/// How many transition requests the proxy has seen from `start` on.
fn transitions_seen(proxy: &FaultProxy, start: usize) -> usize {
    proxy.recorded()[start..]
        .iter()
        .filter(|request| request.target.contains("model-versions/transition-stage"))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconcile_killed_at_any_point_converges_on_the_next_run_and_production_is_never_empty() {
    let server = support::server();
    let client = server.client();
    let fleet = Fleet::seed(&client, "crash", MODELS).await;
    fleet.declare(A);
    let setup = fleet::reconcile(&server.uri, fleet.dir(), &[]).await;
    assert_eq!(setup.code, Some(0), "setup:\n{}", setup.output());
    fleet.assert_in(&client, A, "setup").await;

    let proxy = FaultProxy::start(&server.uri).await;
    let poller = Poller::start(&server.uri, &fleet);
    let total = MODELS * TRANSITIONS_PER_MODEL;
    let mut current = A;
    for seed in [11_u64, 23, 37, 41, 53] {
        let target = current.flipped();
        fleet.declare(target);
        let mut rng = StdRng::seed_from_u64(seed);
        // 0 kills the run during its first read; otherwise after that many transitions.
        let kill_after = rng.random_range(0..total);
        // Transitions answered a little late, so the kill lands close to its mark.
        proxy.set_random(Some(RandomFaults {
            seed,
            probability: 1.0,
            faults: vec![
                Fault::Delay(Duration::from_millis(10)),
                Fault::Delay(Duration::from_millis(40)),
            ],
            matching: "model-versions/transition-stage".into(),
        }));
        let context = format!(
            "seed {seed}: {} → {}, killed after {kill_after} of {total} transitions",
            current.name, target.name
        );

        let start = proxy.recorded().len();
        let mut command = fleet::command(&proxy.uri);
        command.arg("reconcile").arg("--dir").arg(fleet.dir());
        let mut child = tokio::process::Command::from(command)
            .spawn()
            .expect("start mlreg reconcile");
        let started = Instant::now();
        loop {
            let seen = if kill_after == 0 {
                proxy.recorded().len() - start
            } else {
                transitions_seen(&proxy, start)
            };
            if seen >= kill_after.max(1) {
                break;
            }
            if let Some(status) = child.try_wait().expect("poll mlreg") {
                let output = child.wait_with_output().await.expect("output");
                panic!(
                    "{context}: the run ended ({status}) before its kill point:\n{}\n{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            assert!(started.elapsed() < DEADLINE, "{context}: no progress");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        child.start_kill().expect("SIGKILL");
        let status = child.wait().await.expect("reap mlreg");
        assert_eq!(status.code(), None, "{context}: killed by a signal");
        proxy.set_random(None);

        // Let requests in flight at the kill reach the server before judging.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rerun = fleet::reconcile(&proxy.uri, fleet.dir(), &[]).await;
        assert_eq!(rerun.code, Some(0), "{context}, rerun:\n{}", rerun.output());
        fleet.assert_in(&client, target, &context).await;
        let again = fleet::reconcile(&server.uri, fleet.dir(), &["--detailed-exitcode"]).await;
        assert_eq!(
            again.code,
            Some(0),
            "{context}: a third run still had changes:\n{}",
            again.output()
        );
        let wrong = fleet::wrong_transitions(&fleet, target, &proxy.recorded()[start..]);
        assert!(wrong.is_empty(), "{context}: wrong transitions: {wrong:#?}");
        current = target;
    }

    let rounds = poller.rounds();
    let violations = poller.finish().await;
    assert!(
        violations.is_empty(),
        "Production was seen empty:\n{}",
        violations.join("\n")
    );
    assert!(
        rounds > 10,
        "the poller read the registry only {rounds} times"
    );
}
