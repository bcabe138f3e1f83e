//! Snapshots of the plan and apply-report renderings (text, Markdown, JSON) of one plan
//! built by hand, so that every change of the output is seen and reviewed.
//!
//! The plan holds every [`Action`] and every [`Reason`], an in-sync model, unmanaged models
//! (one with a control character, one with a `|`), a description long enough to be cut and
//! one with a newline; the report has applied, failed and skipped outcomes, a failed audit
//! tag, an error, remaining changes and a diagnostic. Snapshots: `snapshots/render/*.snap`.
//! No MLflow server is needed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use mlreg::apply::{ApplyReport, Convergence, ModelReport, Outcome, OutcomeStatus};
use mlreg::diagnostic::Diagnostic;
use mlreg::gate::{GateCheck, GateReport, Verdict};
use mlreg::plan::{Action, Change, ModelPlan, Plan, Reason};
use mlreg::render::plan::{Stats, write_json, write_markdown, write_report_text, write_text};
use mlreg::stage::Stage::{Archived, None as NoStage, Production, Staging};
use mlreg::target::Target;

use crate::support::snapshot;

fn change(action: Action, reason: Reason) -> Change {
    Change { action, reason }
}

/// The changes of `bert`: every kind of change but creating a model.
fn bert_changes() -> Vec<Change> {
    vec![
        change(
            Action::SetDescription {
                from: "Detects fake reviews.\nSecond line.".into(),
                to: "Detects fake reviews in English, French and German product pages, \
                     retrained weekly"
                    .into(),
            },
            Reason::Description,
        ),
        change(
            Action::SetModelTag {
                key: "team".into(),
                from: None,
                to: "nlp".into(),
            },
            Reason::Tag,
        ),
        change(
            Action::SetModelTag {
                key: "tier".into(),
                from: Some("silver".into()),
                to: "gold".into(),
            },
            Reason::Tag,
        ),
        change(
            Action::SetVersionTag {
                version: 4,
                key: "validated".into(),
                from: None,
                to: "true".into(),
            },
            Reason::Tag,
        ),
        change(
            Action::Transition {
                version: 4,
                from: Staging,
                to: Production,
            },
            Reason::Declared,
        ),
        change(
            Action::Transition {
                version: 5,
                from: NoStage,
                to: Staging,
            },
            Reason::Declared,
        ),
        change(
            Action::SetAlias {
                alias: "champion".into(),
                from: Some(3),
                to: 4,
            },
            Reason::AliasMoved,
        ),
        change(
            Action::SetAlias {
                alias: "challenger".into(),
                from: None,
                to: 5,
            },
            Reason::AliasMoved,
        ),
        change(
            Action::DeleteAlias {
                alias: "old".into(),
                version: 2,
            },
            Reason::AliasRemoved,
        ),
        change(
            Action::Transition {
                version: 3,
                from: Production,
                to: Archived,
            },
            Reason::NotDeclaredInStage,
        ),
        change(
            Action::Transition {
                version: 1,
                from: NoStage,
                to: Archived,
            },
            Reason::Retention,
        ),
    ]
}

/// The change of `fraud`, which the registry lacks.
fn fraud_changes() -> Vec<Change> {
    vec![change(
        Action::CreateModel {
            description: Some("Scores card payments".into()),
            tags: BTreeMap::from([
                ("owner".to_owned(), "risk team".to_owned()),
                ("team".to_owned(), "risk".to_owned()),
            ]),
        },
        Reason::CreateModel,
    )]
}

fn model_plan(model: &str, changes: Vec<Change>) -> ModelPlan {
    ModelPlan {
        model: model.into(),
        manifest: PathBuf::from(format!("desired-state/{model}.yaml")),
        changes,
        basis: None,
        gates: Vec::new(),
    }
}

/// A plan whose `fraud` promotion is gated: every verdict, a tag value with a `|` and a
/// control character (registry text, so escaped everywhere); `churn` passes its gate.
fn gated_plan() -> Plan {
    let check = |check: &str, expected: &str, observed: &str, verdict| GateCheck {
        check: check.into(),
        expected: expected.into(),
        observed: observed.into(),
        verdict,
    };
    let mut fraud = model_plan(
        "fraud",
        vec![
            change(
                Action::Transition {
                    version: 4,
                    from: Staging,
                    to: Production,
                },
                Reason::Declared,
            ),
            change(
                Action::Transition {
                    version: 3,
                    from: Production,
                    to: Archived,
                },
                Reason::NotDeclaredInStage,
            ),
        ],
    );
    fraud.gates = vec![GateReport {
        change: 0,
        target: Target::Stage(Production),
        version: 4,
        checks: vec![
            check("metric val_accuracy", ">= 0.9", "0.93", Verdict::Pass),
            check("metric latency_p95_ms", "<= 50", "71.5", Verdict::Fail),
            check(
                "metric f1",
                "> 0.5",
                "run `abc` could not be read: GET runs/get: HTTP 503",
                Verdict::Unverifiable,
            ),
            check(
                "tag approved_by",
                "* (any value)",
                "a|b\u{1b}[31m",
                Verdict::Pass,
            ),
            check(
                "soak in Staging",
                "at least 24h",
                "no mlreg.transition record",
                Verdict::Fail,
            ),
            check(
                "noRegression val_accuracy",
                ">= 0.915 (version 3: 0.92, tolerance 0.005)",
                "0.93",
                Verdict::Pass,
            ),
        ],
    }];
    let mut churn = model_plan(
        "churn",
        vec![change(
            Action::SetAlias {
                alias: "champion".into(),
                from: None,
                to: 2,
            },
            Reason::AliasMoved,
        )],
    );
    churn.gates = vec![GateReport {
        change: 0,
        target: Target::Alias("champion".into()),
        version: 2,
        checks: vec![check(
            "noRegression auc",
            "not worse than the current holder of @champion",
            "no version holds @champion now",
            Verdict::Pass,
        )],
    }];
    Plan {
        models: vec![churn, fraud],
        unmanaged: Vec::new(),
    }
}

/// The plan: `bert` with changes, `churn` in sync, `fraud` to create, two unmanaged models.
fn plan() -> Plan {
    Plan {
        models: vec![
            model_plan("bert", bert_changes()),
            model_plan("churn", Vec::new()),
            model_plan("fraud", fraud_changes()),
        ],
        unmanaged: vec!["a|b".into(), "legacy\u{1b}[2J".into()],
    }
}

/// An apply of [`plan`] where `bert` fails half-way and `fraud` converges after a re-plan.
fn report() -> ApplyReport {
    let outcomes = bert_changes()
        .into_iter()
        .enumerate()
        .map(|(index, change)| Outcome {
            change,
            result: match index {
                0..=4 => OutcomeStatus::Applied,
                5 => OutcomeStatus::Failed {
                    error: "POST model-versions/transition-stage: 500 Internal Server Error: \
                            database is locked"
                        .into(),
                },
                _ => OutcomeStatus::Skipped,
            },
            annotation_error: (index == 4).then(|| "409 Conflict: tag write refused".into()),
            registered: None,
        })
        .collect();
    let remaining = bert_changes().into_iter().skip(5).collect();
    ApplyReport {
        models: vec![
            ModelReport {
                model: "bert".into(),
                manifest: PathBuf::from("desired-state/bert.yaml"),
                status: Convergence::Failed,
                replanned: false,
                outcomes,
                error: Some("version 5 did not reach Staging".into()),
                remaining,
                diagnostics: vec![Diagnostic::global(
                    "version 6 of model `bert` was deleted while planning",
                )],
            },
            ModelReport {
                model: "fraud".into(),
                manifest: PathBuf::from("desired-state/fraud.yaml"),
                status: Convergence::Converged,
                replanned: true,
                outcomes: fraud_changes()
                    .into_iter()
                    .map(|change| Outcome {
                        change,
                        result: OutcomeStatus::Applied,
                        annotation_error: None,
                        registered: None,
                    })
                    .collect(),
                error: None,
                remaining: Vec::new(),
                diagnostics: Vec::new(),
            },
        ],
        interrupted: false,
    }
}

/// Renders with `write` into text.
fn render(write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    write(&mut out).expect("rendering into a Vec cannot fail");
    String::from_utf8(out).expect("the renderings are UTF-8")
}

/// Snapshots `text` as `snapshots/render/<name>.snap`; JSON has its `mlreg_version`
/// filtered, so a release does not change the snapshots.
fn assert_rendering(name: &str, description: &str, text: &str) {
    let mut settings = snapshot::settings("render", description);
    settings.add_filter(
        r#""mlreg_version": "[^"]*""#,
        r#""mlreg_version": "[VERSION]""#,
    );
    settings.bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn the_text_plan() {
    let text = render(|out| write_text(out, &plan(), false));
    assert_rendering("plan.txt", "write_text(plan, color: false)", &text);
}

#[test]
fn the_text_of_an_empty_plan() {
    let text = render(|out| write_text(out, &Plan::default(), false));
    assert_rendering(
        "empty-plan.txt",
        "write_text(Plan::default(), color: false)",
        &text,
    );
}

#[test]
fn the_markdown_plan() {
    let text = render(|out| write_markdown(out, &plan(), None));
    assert_rendering("plan.md", "write_markdown(plan, None)", &text);
}

#[test]
fn the_markdown_of_an_empty_plan() {
    let text = render(|out| write_markdown(out, &Plan::default(), None));
    assert_rendering(
        "empty-plan.md",
        "write_markdown(Plan::default(), None)",
        &text,
    );
}

#[test]
fn the_markdown_report() {
    let text = render(|out| write_markdown(out, &plan(), Some(&report())));
    assert_rendering("report.md", "write_markdown(plan, Some(report))", &text);
}

#[test]
fn the_json_plan() {
    let stats = Stats {
        requests: 7,
        elapsed_ms: 42,
    };
    let text = render(|out| write_json(out, &plan(), None, stats));
    assert_rendering(
        "plan.json",
        "write_json(plan, None, 7 requests in 42 ms)",
        &text,
    );
}

#[test]
fn the_json_report() {
    let stats = Stats {
        requests: 19,
        elapsed_ms: 1250,
    };
    let text = render(|out| write_json(out, &plan(), Some(&report()), stats));
    assert_rendering(
        "report.json",
        "write_json(plan, Some(report), 19 requests in 1250 ms)",
        &text,
    );
}

#[test]
fn the_gated_plan_in_every_format() {
    let plan = gated_plan();
    let text = render(|out| write_text(out, &plan, false));
    assert_rendering(
        "gated-plan.txt",
        "write_text(gated_plan, color: false)",
        &text,
    );
    let markdown = render(|out| write_markdown(out, &plan, None));
    assert_rendering(
        "gated-plan.md",
        "write_markdown(gated_plan, None)",
        &markdown,
    );
    let stats = Stats {
        requests: 5,
        elapsed_ms: 30,
    };
    let json = render(|out| write_json(out, &plan, None, stats));
    assert_rendering("gated-plan.json", "write_json(gated_plan, None)", &json);
    for rendering in [&text, &markdown, &json] {
        assert!(!rendering.contains('\u{1b}'), "raw ESC in:\n{rendering}");
    }
}

#[test]
fn the_text_report() {
    let text = render(|out| write_report_text(out, &report(), false));
    assert_rendering(
        "report.txt",
        "write_report_text(report, color: false)",
        &text,
    );
}

#[test]
fn the_text_of_an_interrupted_report() {
    let mut report = report();
    report.interrupted = true;
    report.models.truncate(1);
    report.models[0].status = Convergence::Interrupted;
    report.models[0].error = None;
    report.models[0].remaining.clear();
    report.models[0].diagnostics.clear();
    let text = render(|out| write_report_text(out, &report, false));
    assert_rendering(
        "interrupted-report.txt",
        "write_report_text(report of bert interrupted, color: false)",
        &text,
    );
}
