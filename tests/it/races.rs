//! Two writers on the same manifests at once: two `mlreg reconcile` processes, and a
//! `reconcile` beside a running `mlreg watch` daemon.
//!
//! MLflow has no optimistic concurrency (mlflow-api.md §6): the last writer wins, and two
//! upserts of the same new tag or alias can lose a UNIQUE race. What must hold anyway:
//! every writer only moves versions towards the one declared state, so when both are done
//! each model holds exactly the declared versions in each stage (no extra Production
//! version), the aliases point where declared, and a further plan is empty. A run that
//! saw the other writer's changes under it may exit 1 ("did not converge"), never panic,
//! and neither ever sends a wrong transition (checked on the proxy's record).

use std::time::{Duration, Instant};

use crate::support;
use crate::support::daemon::Daemon;
use crate::support::fleet::{self, A, Fleet, Layout, Run};
use crate::support::proxy::FaultProxy;

/// How long any awaited condition may take (two cores, one shared server).
const DEADLINE: Duration = Duration::from_secs(120);

/// Asserts a racing run ended cleanly: 0, or 1 because the registry moved under it.
#[track_caller]
fn assert_clean(run: &Run, context: &str) {
    run.assert_no_panic();
    match run.code {
        Some(0) => {}
        Some(1) => assert!(
            run.stdout.contains("did not converge")
                || run.stdout.contains("changed since planning")
                || run.stderr.contains("still changing"),
            "{context}: a racing run failed for another reason:\n{}",
            run.output()
        ),
        _ => panic!("{context}: unexpected exit:\n{}", run.output()),
    }
}

/// Waits until every model of `fleet` is exactly in `layout`.
async fn wait_for_layout(fleet: &Fleet, layout: Layout, context: &str) {
    let client = support::client();
    let started = Instant::now();
    loop {
        let problems = fleet.problems(&client, layout).await;
        if problems.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{context}: the registry did not converge:\n{}",
            problems.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `mlreg plan --detailed-exitcode` exits 0: nothing left to do.
async fn assert_in_sync(fleet: &Fleet, context: &str) {
    let mut command = fleet::command(&support::server().uri);
    command
        .arg("plan")
        .arg("--detailed-exitcode")
        .arg("--dir")
        .arg(fleet.dir());
    let plan = fleet::run(command).await;
    assert_eq!(
        plan.code,
        Some(0),
        "{context}: changes left:\n{}",
        plan.output()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_reconciles_at_once_leave_exactly_the_declared_versions() {
    let server = support::server();
    let client = server.client();
    let fleet = Fleet::seed(&client, "race-two", 8).await;
    fleet.declare(A);
    let setup = fleet::reconcile(&server.uri, fleet.dir(), &[]).await;
    assert_eq!(setup.code, Some(0), "setup:\n{}", setup.output());

    let proxy = FaultProxy::start(&server.uri).await;
    let mut current = A;
    // Both at full concurrency; one at full and one a model at a time; both a model at a
    // time, in the same (name) order, so they contend for every model in turn.
    let rounds: [(&[&str], &[&str]); 3] = [
        (&[], &[]),
        (&[], &["--concurrency", "1"]),
        (&["--concurrency", "1"], &["--concurrency", "1"]),
    ];
    for (round, (first_args, second_args)) in rounds.into_iter().enumerate() {
        let target = current.flipped();
        let context = format!("round {}: {} → {}", round + 1, current.name, target.name);
        fleet.declare(target);
        let start = proxy.recorded().len();
        let (first, second) = tokio::join!(
            fleet::reconcile(&proxy.uri, fleet.dir(), first_args),
            fleet::reconcile(&proxy.uri, fleet.dir(), second_args),
        );
        assert_clean(&first, &format!("{context}, first run"));
        assert_clean(&second, &format!("{context}, second run"));
        fleet.assert_in(&client, target, &context).await;
        assert_in_sync(&fleet, &context).await;
        let wrong = fleet::wrong_transitions(&fleet, target, &proxy.recorded()[start..]);
        assert!(wrong.is_empty(), "{context}: wrong transitions: {wrong:#?}");
        current = target;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconcile_beside_the_daemon_leaves_exactly_the_declared_versions() {
    let server = support::server();
    let client = server.client();
    let fleet = Fleet::seed(&client, "race-daemon", 6).await;
    fleet.declare(A);
    let setup = fleet::reconcile(&server.uri, fleet.dir(), &[]).await;
    assert_eq!(setup.code, Some(0), "setup:\n{}", setup.output());

    let proxy = FaultProxy::start(&server.uri).await;
    let mut daemon = Daemon::spawn(
        fleet::command(&proxy.uri),
        fleet.dir(),
        &["--interval", "5s"],
    );
    daemon.wait_for_readyz(200).await;
    let mut current = A;
    for round in 1..=2 {
        let target = current.flipped();
        let context = format!("round {round}: {} → {}", current.name, target.name);
        let start = proxy.recorded().len();
        // The daemon sees the change after its debounce window; the reconcile starts at
        // once and is still applying when the daemon starts.
        fleet.declare(target);
        let run = fleet::reconcile(&proxy.uri, fleet.dir(), &["--concurrency", "1"]).await;
        assert_clean(&run, &context);
        wait_for_layout(&fleet, target, &context).await;
        daemon.wait_for_readyz(200).await;
        fleet.assert_in(&client, target, &context).await;
        assert_in_sync(&fleet, &context).await;
        let wrong = fleet::wrong_transitions(&fleet, target, &proxy.recorded()[start..]);
        assert!(wrong.is_empty(), "{context}: wrong transitions: {wrong:#?}");
        assert!(
            !daemon.logs().contains("panicked"),
            "the daemon panicked:\n{}",
            daemon.logs()
        );
        current = target;
    }
    assert_eq!(daemon.terminate(), 0, "{}", daemon.logs());
}
