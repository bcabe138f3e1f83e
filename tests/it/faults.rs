//! Faults between `mlreg reconcile` and the real MLflow server, injected by
//! [`FaultProxy`]: 429 with `Retry-After`, 500/502/503/504, delayed answers, connections
//! closed before or after the server acted, answers cut mid-body, truncated bodies; on a
//! schedule and at random with fixed seeds.
//!
//! What must hold, checked by reading the registry directly (never through the proxy) and
//! from the proxy's record of every request:
//! - a run either converges (exit 0, every model exactly as declared), or fails cleanly
//!   (exit 1) — and then the next run converges;
//! - no run ever sends a wrong transition (a version to a stage its manifest does not give
//!   it, an undeclared version anywhere but `Archived`, `archive_existing_versions` true);
//! - when reads fail (every search page, the per-model re-read, a truncated page) the run
//!   exits 1 having sent no write at all, and the registry is unchanged.
//! - a refused audit-tag write (the record of an alias move) is a warning: the move counts
//!   as applied, nothing is sent twice, and the next run has nothing to write.

use std::time::Duration;

use mlreg::registry::Registry;
use mlreg::stage::Stage;

use crate::support;
use crate::support::fleet::{self, A, B, Fleet, Layout};
use crate::support::manifest::Manifest;
use crate::support::proxy::{Fault, FaultProxy, RandomFaults, Recorded};

/// Seeds `count` models and reconciles them (directly) into `layout`.
async fn fleet_in(prefix: &str, count: usize, layout: Layout) -> Fleet {
    let server = support::server();
    let client = server.client();
    let fleet = Fleet::seed(&client, prefix, count).await;
    fleet.declare(layout);
    let run = fleet::reconcile(&server.uri, fleet.dir(), &[]).await;
    assert_eq!(
        run.code,
        Some(0),
        "setting up layout {}:\n{}",
        layout.name,
        run.output()
    );
    fleet.assert_in(&client, layout, "setup").await;
    fleet
}

/// Asserts that every model still has a version in Production: promotions come before
/// archives and a failed change stops its model, so a failure never empties the stage.
async fn assert_production_never_empty(fleet: &Fleet, context: &str) {
    let client = support::client();
    for (name, model) in fleet.observe(&client).await {
        assert!(
            model.versions_in(Stage::Production).next().is_some(),
            "{context}: `{name}` has no version in Production: {:?}",
            model
                .versions
                .values()
                .map(|v| (v.version, v.stage))
                .collect::<Vec<_>>()
        );
    }
}

/// Asserts that each request answered 429 with `Retry-After: N` was repeated no sooner
/// than N seconds later (a lower bound, which only a client ignoring the header breaks).
fn assert_retry_after_honoured(recorded: &[Recorded]) {
    let mut checked = 0;
    for (index, request) in recorded.iter().enumerate() {
        let Some(Fault::Status {
            status: 429,
            retry_after: Some(seconds),
        }) = request.fault
        else {
            continue;
        };
        let retry = recorded[index + 1..]
            .iter()
            .find(|later| {
                later.method == request.method
                    && later.target == request.target
                    && later.body == request.body
            })
            .unwrap_or_else(|| panic!("{} {} was not retried", request.method, request.target));
        let waited = retry.at.duration_since(request.at);
        assert!(
            waited >= Duration::from_secs(seconds),
            "{} {} was retried after {waited:?}, before its Retry-After of {seconds}s",
            request.method,
            request.target
        );
        checked += 1;
    }
    assert!(checked > 0, "no 429 with Retry-After was injected");
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduled_faults_on_every_kind_of_call_are_retried_and_the_run_converges() {
    let server = support::server();
    let client = server.client();
    let fleet = fleet_in("faults-scheduled", 3, A).await;
    let proxy = FaultProxy::start(&server.uri).await;
    let retry_after = Fault::Status {
        status: 429,
        retry_after: Some(1),
    };
    // The whole-registry read, the per-model re-reads, and every kind of write.
    proxy.push_matching(
        "registered-models/search",
        [retry_after.clone(), Fault::status(503), Fault::CutBody],
    );
    proxy.push_matching(
        "model-versions/search",
        [
            Fault::status(500),
            Fault::Close,
            Fault::Delay(Duration::from_millis(300)),
        ],
    );
    proxy.push_matching(
        "registered-models/get",
        [Fault::status(502), Fault::CutBody],
    );
    proxy.push_matching(
        "model-versions/transition-stage",
        [
            Fault::ForwardThenStatus(500),
            Fault::ForwardThenClose,
            Fault::status(503),
            retry_after,
            Fault::Delay(Duration::from_millis(300)),
            Fault::CutBody,
            Fault::status(504),
        ],
    );
    proxy.push_matching(
        "registered-models/alias",
        [
            Fault::ForwardThenStatus(503),
            Fault::status(504),
            Fault::Close,
        ],
    );
    proxy.push_matching(
        "model-versions/set-tag",
        [Fault::ForwardThenClose, Fault::status(429), Fault::CutBody],
    );

    fleet.declare(B);
    let run = fleet::reconcile(&proxy.uri, fleet.dir(), &[]).await;
    run.assert_no_panic();
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert_eq!(proxy.pending(), 0, "every scheduled fault was hit");
    fleet.assert_in(&client, B, "after the faulty run").await;
    let recorded = proxy.recorded();
    let wrong = fleet::wrong_transitions(&fleet, B, &recorded);
    assert!(wrong.is_empty(), "wrong transitions sent: {wrong:#?}");
    assert_retry_after_honoured(&recorded);
    // Every transition carries its audit tag, although tag writes were faulted too.
    for (name, model) in fleet.observe(&client).await {
        for version in [1, 2, 3, 4, 5, 6] {
            assert!(
                model.versions[&version]
                    .tags
                    .contains_key(mlreg::apply::AUDIT_TAG),
                "{name} v{version} has no audit tag"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_answer_to_a_write_stops_that_model_and_the_next_run_converges() {
    let server = support::server();
    let client = server.client();
    let fleet = fleet_in("faults-truncated-write", 2, A).await;
    let proxy = FaultProxy::start(&server.uri).await;
    // The server applies the first promotion, but its answer is cut short in a well-formed
    // HTTP response: only the JSON decoder can tell, and it is not retried.
    proxy.push_matching("model-versions/transition-stage", [Fault::TruncateBody]);
    fleet.declare(B);
    let run = fleet::reconcile(&proxy.uri, fleet.dir(), &[]).await;
    run.assert_no_panic();
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert!(
        run.output().contains("unexpected response"),
        "{}",
        run.output()
    );
    let wrong = fleet::wrong_transitions(&fleet, B, &proxy.recorded());
    assert!(wrong.is_empty(), "wrong transitions sent: {wrong:#?}");
    assert_production_never_empty(&fleet, "after the failed run").await;

    let rerun = fleet::reconcile(&proxy.uri, fleet.dir(), &[]).await;
    assert_eq!(rerun.code, Some(0), "{}", rerun.output());
    fleet.assert_in(&client, B, "after the second run").await;
    let wrong = fleet::wrong_transitions(&fleet, B, &proxy.recorded());
    assert!(wrong.is_empty(), "wrong transitions sent: {wrong:#?}");
}

/// Every fault the proxy knows that a retry can get past (for reads and for the writes a
/// reconcile of existing models makes: transitions, aliases, tags). `Retry-After` is kept
/// at 1 s.
fn retryable_faults() -> Vec<Fault> {
    vec![
        Fault::status(429),
        Fault::Status {
            status: 429,
            retry_after: Some(1),
        },
        Fault::status(500),
        Fault::status(502),
        Fault::status(503),
        Fault::status(504),
        Fault::Close,
        Fault::ForwardThenClose,
        Fault::ForwardThenStatus(500),
        Fault::ForwardThenStatus(503),
        Fault::Delay(Duration::from_millis(150)),
        Fault::CutBody,
    ]
}

/// Every fault the proxy knows, including a truncated body that no retry gets past.
fn every_fault() -> Vec<Fault> {
    let mut faults = retryable_faults();
    faults.push(Fault::TruncateBody);
    faults
}

#[tokio::test(flavor = "multi_thread")]
async fn random_faults_with_fixed_seeds_never_cause_a_wrong_transition() {
    let server = support::server();
    let client = server.client();
    let fleet = fleet_in("faults-random", 3, A).await;
    let proxy = FaultProxy::start(&server.uri).await;
    let mut current = A;
    // (seed, chance of a fault per request, the faults, whether the run must converge).
    // With only retryable faults at 10 %, a call fails only if six attempts in a row are
    // faulted (one in a million); with a truncated body among them the run may fail, and
    // then must fail cleanly.
    let schedules = [
        (7_u64, 0.25, every_fault(), false),
        (42, 0.1, retryable_faults(), true),
        (1234, 0.25, every_fault(), false),
        (99_991, 0.1, retryable_faults(), true),
    ];
    for (seed, probability, faults, must_converge) in schedules {
        let target = current.flipped();
        let before = fleet.observe(&client).await;
        fleet.declare(target);
        proxy.set_random(Some(RandomFaults {
            seed,
            probability,
            faults,
            matching: "/api/2.0/mlflow/".into(),
        }));
        let start = proxy.recorded().len();
        let run = fleet::reconcile(&proxy.uri, fleet.dir(), &[]).await;
        proxy.set_random(None);
        let context = format!("seed {seed}, layout {} → {}", current.name, target.name);
        run.assert_no_panic();
        let recorded = &proxy.recorded()[start..];
        eprintln!(
            "{context}: exit {:?} after {} requests, {} of them faulted",
            run.code,
            recorded.len(),
            recorded.iter().filter(|r| r.fault.is_some()).count()
        );
        let wrong = fleet::wrong_transitions(&fleet, target, recorded);
        assert!(
            wrong.is_empty(),
            "{context}: wrong transitions sent: {wrong:#?}"
        );
        assert!(
            !must_converge || run.code == Some(0),
            "{context}: retryable faults only, yet the run failed:\n{}",
            run.output()
        );
        match run.code {
            Some(0) => fleet.assert_in(&client, target, &context).await,
            Some(1) if run.stderr.contains("cannot read the registry") => {
                // The first read failed: nothing may have been written.
                let writes = fleet::writes(recorded);
                assert!(
                    writes.is_empty(),
                    "{context}: writes after a failed read: {writes:#?}"
                );
                assert_eq!(fleet.observe(&client).await, before, "{context}");
            }
            Some(1) => assert_production_never_empty(&fleet, &context).await,
            _ => panic!("{context}: unexpected exit:\n{}", run.output()),
        }

        // Without faults, the next run converges.
        let start = proxy.recorded().len();
        let rerun = fleet::reconcile(&proxy.uri, fleet.dir(), &[]).await;
        assert_eq!(rerun.code, Some(0), "{context}, rerun:\n{}", rerun.output());
        fleet.assert_in(&client, target, &context).await;
        let wrong = fleet::wrong_transitions(&fleet, target, &proxy.recorded()[start..]);
        assert!(
            wrong.is_empty(),
            "{context}, rerun: wrong transitions: {wrong:#?}"
        );
        current = target;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_that_keep_failing_abort_the_run_before_any_write() {
    let server = support::server();
    let client = server.client();
    let fleet = fleet_in("faults-reads", 2, A).await;
    fleet.declare(B);
    let before = fleet.observe(&client).await;
    let always = |matching: &str, fault: Fault| RandomFaults {
        seed: 0,
        probability: 1.0,
        faults: vec![fault],
        matching: matching.into(),
    };
    struct Case {
        what: &'static str,
        rule: Option<RandomFaults>,
        once: Option<(&'static str, Fault)>,
        timeout: &'static str,
        expect: &'static str,
    }
    let cases = [
        Case {
            what: "every search answers 503",
            rule: Some(always("/search", Fault::status(503))),
            once: None,
            timeout: "20s",
            expect: "cannot read the registry; nothing was applied",
        },
        Case {
            what: "every search answer is cut mid-body",
            rule: Some(always("/search", Fault::CutBody)),
            once: None,
            timeout: "20s",
            expect: "cannot read the registry; nothing was applied",
        },
        Case {
            what: "every search answer comes after the request timeout",
            rule: Some(always("/search", Fault::Delay(Duration::from_secs(3)))),
            once: None,
            timeout: "1s",
            expect: "cannot read the registry; nothing was applied",
        },
        Case {
            what: "a search answer is truncated into well-formed HTTP",
            rule: None,
            once: Some(("/search", Fault::TruncateBody)),
            timeout: "20s",
            expect: "unexpected response",
        },
        Case {
            what: "the server refuses the credentials",
            rule: Some(always("/api/", Fault::status(401))),
            once: None,
            timeout: "20s",
            expect: "authentication failed",
        },
        Case {
            what: "the re-read of each model before applying fails",
            rule: Some(always("registered-models/get", Fault::status(503))),
            once: None,
            timeout: "20s",
            expect: "re-reading the model before applying",
        },
    ];
    for case in cases {
        let proxy = FaultProxy::start(&server.uri).await;
        proxy.set_random(case.rule);
        if let Some((matching, fault)) = case.once {
            proxy.push_matching(matching, [fault]);
        }
        let mut command = fleet::command(&proxy.uri);
        command
            .env("MLREG_REQUEST_TIMEOUT", case.timeout)
            .arg("reconcile")
            .arg("--dir")
            .arg(fleet.dir());
        let run = fleet::run(command).await;
        run.assert_no_panic();
        assert_eq!(run.code, Some(1), "{}:\n{}", case.what, run.output());
        assert!(
            run.stderr.contains(case.expect) || run.stdout.contains(case.expect),
            "{}: no `{}` in\n{}",
            case.what,
            case.expect,
            run.output()
        );
        let writes = fleet::writes(&proxy.recorded());
        assert!(writes.is_empty(), "{}: writes sent: {writes:#?}", case.what);
        assert_eq!(
            fleet.observe(&client).await,
            before,
            "{}: the registry changed",
            case.what
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_cut_or_truncated_mid_body_is_never_used() {
    let server = support::server();
    let client = server.client();
    let name = support::unique("faults-pages");
    support::seed_model(&client, &name, 8).await;
    let direct = client.model(&name).await.expect("read").expect("exists");
    let proxy = FaultProxy::start(&server.uri).await;
    // Three versions a page: the model's versions take three pages; pages after the first
    // carry a `page_token`.
    let paged = server.client_with(|config| {
        config.base_url = url::Url::parse(&proxy.uri).expect("proxy URL");
        config.version_page_size = 3;
        config.min_backoff = Duration::from_millis(10);
        config.max_backoff = Duration::from_millis(100);
    });

    // A second page cut mid-body on every attempt (the first and five retries): the read
    // fails; it never returns the pages it did read as the whole model.
    proxy.push_matching("page_token", std::iter::repeat_n(Fault::CutBody, 6));
    let error = paged
        .model(&name)
        .await
        .expect_err("every second page is cut");
    assert!(
        matches!(error, mlreg::registry::Error::Transport { .. }),
        "{error:?}"
    );
    assert_eq!(proxy.pending(), 0, "each attempt was cut");

    // A page truncated into a well-formed answer: a decode error, not a shorter list.
    proxy.push_matching("page_token", [Fault::TruncateBody]);
    let error = paged.model(&name).await.expect_err("a truncated page");
    assert!(
        matches!(error, mlreg::registry::Error::Decode { .. }),
        "{error:?}"
    );

    // Cut once, then answered: the retry reads the whole model.
    proxy.push_matching("page_token", [Fault::CutBody]);
    let model = paged.model(&name).await.expect("read after a retry");
    assert_eq!(model, Some(direct));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_alias_record_is_a_warning_the_move_stands_and_a_rerun_writes_nothing() {
    let server = support::server();
    let client = server.client();
    let name = support::unique("faults-alias-record");
    support::seed_model(&client, &name, 2).await;
    support::place(&client, &name, &[], &[("champion", 1)]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    Manifest::model(&name)
        .alias("champion", 2)
        .write(dir.path(), "m.yaml");
    let proxy = FaultProxy::start(&server.uri).await;
    // The only tag write of this run is the alias record: refuse it with an error no retry
    // gets past (a 400 that is not a concurrent-upsert race).
    proxy.push_matching("model-versions/set-tag", [Fault::status(400)]);

    let run = fleet::reconcile(
        &proxy.uri,
        dir.path(),
        &["--model", &name, "--output", "json"],
    )
    .await;
    run.assert_no_panic();
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert_eq!(proxy.pending(), 0, "the record write was attempted");
    let document = support::parse_json(&run.stdout);
    assert_eq!(document["result"]["applied"], 1, "{document}");
    assert_eq!(document["result"]["failed"], 0, "{document}");
    let change = &document["models"][0]["changes"][0];
    assert_eq!(change["kind"], "set_alias", "{change}");
    assert_eq!(change["result"]["status"], "applied", "{change}");
    assert!(
        change["annotation_error"]
            .as_str()
            .is_some_and(|error| error.contains("400")),
        "{change}"
    );
    // One alias write and one refused record write: nothing repeated.
    let writes = fleet::writes(&proxy.recorded());
    assert_eq!(
        writes,
        [
            "POST /api/2.0/mlflow/registered-models/alias",
            "POST /api/2.0/mlflow/model-versions/set-tag",
        ],
        "{writes:#?}"
    );
    let after = support::read_model(&client, &name).await;
    assert_eq!(after.aliases["champion"], 2);
    assert!(
        after.versions[&2].tags.is_empty(),
        "{:?}",
        after.versions[&2].tags
    );

    // The alias is where the manifest wants it, so the rerun has nothing to do: it writes
    // neither the alias nor (the record being no part of the desired state) its record.
    let start = proxy.recorded().len();
    let rerun = fleet::reconcile(
        &proxy.uri,
        dir.path(),
        &["--model", &name, "--output", "json"],
    )
    .await;
    assert_eq!(rerun.code, Some(0), "{}", rerun.output());
    assert_eq!(support::parse_json(&rerun.stdout)["summary"]["total"], 0);
    let writes = fleet::writes(&proxy.recorded()[start..]);
    assert!(writes.is_empty(), "{writes:#?}");
    assert_eq!(support::read_model(&client, &name).await, after);
}
