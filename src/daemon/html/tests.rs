use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::daemon::metrics::Metrics;
use crate::daemon::page::{Recorded, Seen};
use crate::daemon::status::{ReconcileRecord, Shared, SyncState, Trigger};
use crate::gate::{GateCheck, GateReport};
use crate::manifest::fixture;
use crate::notify::{Event, EventKind};
use crate::plan::{Action, Change, Reason};
use crate::registry::fake::FakeRegistry;
use crate::stage::Stage::{None as NoStage, Production, Staging};
use crate::target::Target;

const HOSTILE: &str =
    "<img src=x onerror=alert(1)> & \"quoted\" 'single' <script>alert(2)</script>";

#[test]
fn escape_leaves_no_markup() {
    assert_eq!(
        escape("<script>alert(1)</script>"),
        "&lt;script&gt;alert(1)&lt;/script&gt;"
    );
    assert_eq!(
        escape("<img src=x onerror=\"alert('x')\">"),
        "&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;"
    );
    assert_eq!(escape("a & b && c"), "a &amp; b &amp;&amp; c");
    assert_eq!(escape("&amp;"), "&amp;amp;", "an entity is text too");
    assert_eq!(escape("plain, ünïcödé ✓"), "plain, ünïcödé ✓");
    for hostile in [
        HOSTILE,
        "\"><svg onload=alert(1)>",
        "'><a href=javascript:x>",
    ] {
        let escaped = escape(hostile);
        assert!(
            !escaped.contains('<') && !escaped.contains('>'),
            "{escaped}"
        );
        assert!(
            !escaped.contains('"') && !escaped.contains('\''),
            "{escaped}"
        );
    }
}

#[test]
fn path_segments_are_percent_encoded() {
    assert_eq!(path_segment("fraud-v2_x.y~z"), "fraud-v2_x.y~z");
    assert_eq!(path_segment("a/b c&d?#%"), "a%2Fb%20c%26d%3F%23%25");
    assert_eq!(path_segment("é"), "%C3%A9");
}

fn change(action: Action, reason: Reason) -> Change {
    Change { action, reason }
}

/// A status holding a model in every state, recorded through [`page::record`] as the
/// reconciler records it.
fn fixture() -> Status {
    let desired = fixture::desired([
        fixture::model("fraud")
            .stage(Production, &[2])
            .alias("champion", 2)
            .build(),
        fixture::model("churn/eu <marquee>")
            .stage(Production, &[3])
            .build(),
        fixture::model("ranker")
            .stage(Production, &[5])
            .stage(Staging, &[6])
            .build(),
        fixture::model("search")
            .tag("team", "search")
            .stages()
            .build(),
        fixture::model("recs").stage(Production, &[1]).build(),
        fixture::model("new-model").stage(Staging, &[1]).build(),
        fixture::model("not-read").alias("champion", 1).build(),
    ]);
    let registry = FakeRegistry::default();
    registry.add_model("fraud", &[(1, NoStage), (2, Production)]);
    registry.add_model("churn/eu <marquee>", &[(3, Staging)]);
    registry.add_model("ranker", &[(4, Production), (5, NoStage), (6, Staging)]);
    registry.add_model("search", &[(1, NoStage)]);
    registry.add_model("recs", &[(1, Production)]);
    registry.add_model("new-model", &[(1, NoStage)]);
    registry.mutate(|snapshot| {
        if let Some(fraud) = snapshot.models.get_mut("fraud") {
            fraud.description = HOSTILE.to_owned();
            fraud.aliases.insert("champion".into(), 2);
        }
    });
    let mut snapshot = registry.state();
    snapshot.models.remove("not-read");

    let entry = |name: &str, state: SyncState| ModelStatus {
        name: name.to_owned(),
        manifest: format!("{name}.yaml").into(),
        state,
        pending_changes: Vec::new(),
        will_apply: false,
        last_error: None,
        gates: Vec::new(),
    };
    let mut status = Status::new("desired-state".into(), false);
    status.page.registry = Some("http://mlflow.internal:5000/".into());
    status.manifests.valid = false;
    status.manifests.models = 7;
    status.manifests.errors = vec![
        "recs.yaml:7:3: unknown field `stagez`, expected one of `stages`, `aliases` <script>"
            .into(),
    ];
    status.models = vec![
        entry("fraud", SyncState::InSync),
        ModelStatus {
            pending_changes: vec![change(
                Action::Transition {
                    version: 3,
                    from: Staging,
                    to: Production,
                },
                Reason::Declared,
            )],
            ..entry("churn/eu <marquee>", SyncState::Drifted)
        },
        ModelStatus {
            pending_changes: vec![change(
                Action::Transition {
                    version: 5,
                    from: NoStage,
                    to: Production,
                },
                Reason::Declared,
            )],
            gates: vec![GateReport {
                change: 0,
                target: Target::Stage(Production),
                version: 5,
                checks: vec![
                    GateCheck {
                        check: "metric val_accuracy".into(),
                        expected: ">= 0.9".into(),
                        observed: "0.85".into(),
                        verdict: Verdict::Fail,
                    },
                    GateCheck {
                        check: "tag validated".into(),
                        expected: "= \"true\"".into(),
                        observed: "\"true\"".into(),
                        verdict: Verdict::Pass,
                    },
                ],
            }],
            ..entry("ranker", SyncState::Blocked)
        },
        ModelStatus {
            pending_changes: vec![change(
                Action::SetModelTag {
                    key: "team".into(),
                    from: None,
                    to: "search".into(),
                },
                Reason::Tag,
            )],
            will_apply: true,
            last_error: Some(
                "the registry refused a change: INVALID_PARAMETER_VALUE <script>x</script>".into(),
            ),
            ..entry("search", SyncState::Drifted)
        },
        entry("recs", SyncState::InSync),
        ModelStatus {
            pending_changes: vec![change(
                Action::Transition {
                    version: 1,
                    from: NoStage,
                    to: Staging,
                },
                Reason::Declared,
            )],
            will_apply: true,
            ..entry("new-model", SyncState::Drifted)
        },
        entry("not-read", SyncState::Unknown),
    ];
    let shared = Shared::new(status, Metrics::new(), CancellationToken::new());
    for (at, trigger) in [
        ("2026-11-28T10:14:33.000000001Z", Trigger::Startup),
        ("2026-11-28T10:15:03.5Z", Trigger::Resync),
    ] {
        shared.update(|status| {
            status.last_reconcile = Some(ReconcileRecord {
                trigger,
                result: ReconcileResult::Failure,
                started_at: at.into(),
                duration_ms: 42,
                changes_applied: 0,
                models_drifted: 2,
                error: Some("1 model(s) did not converge: search: refused".into()),
            });
        });
        page::record(
            &shared,
            &Seen {
                desired: &desired,
                observed: Some(&snapshot),
                report: None,
                commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            },
        );
    }
    let mut status = page::settled(shared.snapshot());
    if let Some(record) = status.page.models.get_mut("fraud") {
        record.events.push_front(Recorded {
            at: "2026-11-28T09:00:00Z".into(),
            event: Event {
                event: EventKind::Applied,
                environment: None,
                model: Some("fraud".into()),
                changes: vec![change(
                    Action::SetAlias {
                        alias: "champion".into(),
                        from: Some(1),
                        to: 2,
                    },
                    Reason::AliasMoved,
                )],
                commit: Some("fedcba9876543210".into()),
                detail: None,
            },
        });
    }
    status.models.sort_by(|a, b| a.name.cmp(&b.name));
    status
}

/// Whether `html` holds an element or attribute made from a hostile string.
fn injected(html: &str) -> bool {
    html.contains("<img")
        || html.contains("<marquee")
        || html.contains("<svg")
        || html.contains("<script>")
        || html.contains("\"quoted\"")
}

#[test]
fn every_state_is_labelled_and_nothing_is_injected() {
    let status = fixture();
    let states: Vec<(&str, PageState)> = status
        .models
        .iter()
        .map(|model| (model.name.as_str(), PageState::of(model, &status)))
        .collect();
    assert_eq!(
        states,
        vec![
            ("churn/eu <marquee>", PageState::Drift),
            ("fraud", PageState::InSync),
            ("new-model", PageState::OutOfSync),
            ("not-read", PageState::Unknown),
            ("ranker", PageState::Blocked),
            ("recs", PageState::Invalid),
            ("search", PageState::Failed),
        ]
    );
    let html = index(&status, &View::default());
    assert!(!injected(&html), "{html}");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quoted&quot;"));
    for label in [
        "in sync",
        "drift",
        "blocked by a gate",
        "failed",
        "invalid manifest",
        "out of sync",
    ] {
        assert!(
            html.contains(&format!("<span class=\"state-label\">{label}</span>")),
            "{label}"
        );
    }
    assert!(html.contains("href=\"/models/churn%2Feu%20%3Cmarquee%3E\""));
    // Declared next to observed: churn declares 3 in Production, the registry has none there.
    assert!(html.contains("<tr class=\"differs\" data-target=\"Production\"><th scope=\"row\" class=\"mono\">Production</th><td class=\"mono declared\">3</td><td class=\"mono observed\">(none)"));
    // A drift found twice is one event; the blocked reason names the failing check.
    let churn = &status.page.models["churn/eu <marquee>"];
    assert_eq!(churn.events.len(), 1);
    assert!(html.contains("metric val_accuracy expected &gt;= 0.9, observed 0.85 (FAIL)"));
    assert!(!html.contains(" style="), "no inline style");
    assert!(!html.contains("<style"), "no inline style");
    assert_eq!(
        html.matches("<script").count(),
        1,
        "only the same-origin script"
    );
}

#[test]
fn the_filter_hides_what_does_not_match() {
    let status = fixture();
    let html = index(
        &status,
        &View {
            filter: "Drift\"><script>".into(),
        },
    );
    assert!(!injected(&html));
    assert!(html.contains("value=\"Drift&quot;&gt;&lt;script&gt;\""));
    let html = index(
        &status,
        &View {
            filter: "blocked".into(),
        },
    );
    assert!(
        html.contains(
            "data-name=\"ranker\" data-state=\"blocked\" data-label=\"blocked by a gate\">"
        )
    );
    assert!(
        html.contains("data-name=\"fraud\" data-state=\"in-sync\" data-label=\"in sync\" hidden>")
    );
}

#[test]
fn snapshots_of_the_pages() {
    let status = fixture();
    insta::assert_snapshot!("index", index(&status, &View::default()));
    let model = model(&status, "ranker").expect("a managed model");
    insta::assert_snapshot!("model", model);
    let fraud = super::model(&status, "fraud").expect("a managed model");
    assert!(!injected(&fraud), "{fraud}");
    assert!(fraud.contains("class=\"registry-description\">&lt;img src=x onerror=alert(1)&gt;"));
    assert!(super::model(&status, "nobody").is_none());
    let missing = not_found(&status, "<img src=x onerror=alert(1)>");
    assert!(!injected(&missing), "{missing}");
}

/// `GET path` on `address`: the status line and headers, and the body.
async fn get(address: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (head.to_lowercase(), body.to_owned())
}

#[tokio::test]
async fn the_routes_serve_the_page_with_its_headers() {
    let mut status = fixture();
    status.models.push(ModelStatus {
        name: "team/odd name & co".into(),
        ..status.models[0].clone()
    });
    let shared = Arc::new(Shared::new(
        status,
        Metrics::new(),
        CancellationToken::new(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let stop = CancellationToken::new();
    let server = tokio::spawn(crate::daemon::http::serve(
        listener,
        shared,
        None,
        stop.clone(),
    ));

    let (head, body) = get(address, "/?q=drift").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/html; charset=utf-8"));
    assert!(head.contains(&format!(
        "content-security-policy: {}",
        CONTENT_SECURITY_POLICY
    )));
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
    assert!(head.contains("x-content-type-options: nosniff"));
    assert!(body.contains("value=\"drift\""));

    let (head, body) = get(address, "/models/team%2Fodd%20name%20%26%20co").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(body.contains("<h3 class=\"name mono\">team/odd name &amp; co</h3>"));
    let (head, _) = get(address, "/models/team/odd%20name%20&%20co").await;
    assert!(
        head.starts_with("http/1.1 200"),
        "an unencoded `/` works too: {head}"
    );
    let (head, body) = get(address, "/models/churn%2Feu%20%3Cmarquee%3E").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!injected(&body));

    let (head, body) = get(address, "/models/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E").await;
    assert!(head.starts_with("http/1.1 404"), "{head}");
    assert!(head.contains("content-type: text/html"));
    assert!(body.contains("No managed model named"));
    assert!(!injected(&body));

    let (head, body) = get(address, "/assets/page.css").await;
    assert!(head.contains("content-type: text/css"));
    assert!(head.contains("x-content-type-options: nosniff"));
    assert_eq!(body, CSS);
    let (head, body) = get(address, "/assets/page.js").await;
    assert!(head.contains("content-type: text/javascript"));
    assert_eq!(body, JS);

    stop.cancel();
    let _ = server.await;
}

#[test]
fn models_are_grouped_by_environment_when_they_have_one() {
    let mut status = fixture();
    for name in ["fraud", "ranker"] {
        if let Some(record) = status.page.models.get_mut(name) {
            record.environment = Some("prod <eu>".into());
        }
    }
    let html = index(&status, &View::default());
    assert_eq!(html.matches("<section class=\"group\"").count(), 2);
    let prod = html
        .find("<h2 class=\"environment\">Environment <span class=\"mono\">prod &lt;eu&gt;</span></h2>")
        .expect("the environment's heading");
    let (outside, inside) = html.split_at(prod);
    assert!(inside.contains("data-name=\"fraud\"") && inside.contains("data-name=\"ranker\""));
    assert!(!outside.contains("data-name=\"fraud\"") && outside.contains("data-name=\"search\""));
}
