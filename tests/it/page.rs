//! The daemon's status page (`GET /`, `GET /models/NAME`) against the real server, loaded in
//! headless Chromium: models in every state, the DOM checked for each model's state label,
//! declared next to observed values, a blocked gate's reason, and that markup injected into
//! a registry description stays text.
//!
//! `MLREG_PAGE_SCREENSHOT=docs/status-page.png cargo test --test it -- page::` also writes
//! the page's 1280×800 screenshot there (the one docs/daemon.md shows).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mlreg::registry::Registry as _;
use mlreg::stage::Stage::{Production, Staging};

use crate::support::browser;
use crate::support::daemon::{Daemon, http_get};
use crate::support::manifest::Manifest;
use crate::support::proxy::{Fault, FaultProxy};
use crate::support::{self, place, seed_model};

/// What an attacker writes into a registry description.
const INJECTED: &str = "<img src=x onerror=alert(1)> owned";
/// A token the daemon is given: it must never reach the page.
const TOKEN: &str = "page-test-secret-token-4242";

/// `text` as the browser serializes it in the DOM (content and attribute values).
fn serialized(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The `<article>` of `model` in a dumped DOM.
fn card<'d>(dom: &'d str, model: &str) -> &'d str {
    let marker = format!("data-name=\"{}\"", model.replace('&', "&amp;"));
    let start = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no card for {model} in the page:\n{dom}"));
    let start = dom[..start].rfind("<article").unwrap_or(start);
    let end = dom[start..]
        .find("</article>")
        .map_or(dom.len(), |end| start + end);
    &dom[start..end]
}

/// The state label shown on `model`'s card.
fn label(dom: &str, model: &str) -> String {
    let card = card(dom, model);
    let open = "<span class=\"state-label\">";
    card.find(open)
        .and_then(|start| {
            let rest = &card[start + open.len()..];
            rest.find("</span>").map(|end| rest[..end].to_owned())
        })
        .unwrap_or_else(|| panic!("no state label on {model}'s card:\n{card}"))
}

/// The row of `target` on `model`'s card: (declared, observed).
fn row(dom: &str, model: &str, target: &str) -> (String, String) {
    let card = card(dom, model);
    let cell = |class: &str| -> String {
        let marker = format!("data-target=\"{target}\"");
        let row = &card[card
            .find(&marker)
            .unwrap_or_else(|| panic!("no {target} row on {model}'s card:\n{card}"))..];
        let row = &row[..row.find("</tr>").unwrap_or(row.len())];
        let open = format!("<td class=\"mono {class}\">");
        let start = row.find(&open).map(|start| start + open.len()).unwrap_or(0);
        let text = &row[start..];
        let text = &text[..text.find(['<', '\u{a0}']).unwrap_or(text.len())];
        text.trim().to_owned()
    };
    (cell("declared"), cell("observed"))
}

/// The state `/` shows for `model` (its card's `data-state`), as the server renders it.
async fn page_state(address: &str, model: &str) -> String {
    let (_, body) = http_get(address, "/").await.unwrap_or_default();
    let marker = format!("data-name=\"{}\" data-state=\"", serialized(model));
    body.split_once(&marker)
        .and_then(|(_, rest)| rest.split('"').next())
        .unwrap_or_default()
        .to_owned()
}

fn page_url(daemon: &Daemon, path: &str) -> String {
    format!("http://{}{path}", daemon.address)
}

/// Every byte but the unreserved ones percent-encoded (one path segment).
fn encoded(name: &str) -> String {
    name.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn the_status_page_shows_every_state_in_a_real_browser() {
    // Before anything else: a missing browser fails here, with the installer's output.
    browser::chromium();
    let client = support::client();
    let prefix = support::unique("page");
    let synced = format!("{prefix}-synced");
    let drifted = format!("{prefix}-drifted");
    let gated = format!("{prefix} gated & co #1");
    let failing = format!("{prefix}-failing");
    let broken = format!("{prefix}-broken");

    client
        .create_model(&synced, Some(INJECTED), &BTreeMap::new())
        .await
        .expect("create the in-sync model");
    for n in 1..=2 {
        client
            .create_version(
                &synced,
                &format!("s3://bucket/{prefix}/{n}"),
                None,
                &BTreeMap::new(),
            )
            .await
            .expect("create a version");
    }
    place(&client, &synced, &[(2, Production)], &[("champion", 2)]).await;
    seed_model(&client, &drifted, 2).await;
    place(&client, &drifted, &[(1, Production)], &[]).await;
    seed_model(&client, &gated, 2).await;
    place(&client, &gated, &[(1, Production)], &[]).await;
    seed_model(&client, &failing, 1).await;
    seed_model(&client, &broken, 1).await;
    place(&client, &broken, &[(1, Staging)], &[]).await;

    // The daemon runs in a scratch directory and reads `desired-state` there, so the page
    // (and its screenshot) shows the relative paths a deployment would.
    let root = tempfile::tempdir().expect("temp dir");
    let desired = Path::new("desired-state");
    std::fs::create_dir(root.path().join(desired)).expect("create the desired-state directory");
    let dir = root.path().join(desired);
    Manifest::model(&synced)
        .stage("Production", &[2])
        .alias("champion", 2)
        .write(&dir, "synced.yaml");
    Manifest::model(&drifted)
        .stage("Production", &[1])
        .write(&dir, "drifted.yaml");
    Manifest::model(&gated)
        .stage("Production", &[2])
        .spec_lines("  gates:\n    Production:\n      tags:\n        validated: \"true\"\n")
        .write(&dir, "gated.yaml");
    Manifest::model(&failing)
        .tag("team", "search")
        .write(&dir, "failing.yaml");
    let broken_file = Manifest::model(&broken)
        .stage("Staging", &[1])
        .write(&dir, "broken.yaml");

    // The manifests are a git checkout: the page shows its commit.
    let git = |args: &[&str]| {
        let output = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=mlreg test",
                "-c",
                "user.email=test@example.com",
            ])
            .args(args)
            .current_dir(root.path())
            .output()
            .expect("run git");
        assert!(output.status.success(), "git {args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "desired state"]);
    let commit = git(&["rev-parse", "HEAD"]);

    // The registry refuses the failing model's tag (the only model-tag write here).
    let proxy = FaultProxy::start(&support::server().uri).await;
    proxy.push_matching(
        "registered-models/set-tag",
        (0..2000).map(|_| Fault::Refuse {
            status: 400,
            code: "INVALID_PARAMETER_VALUE",
        }),
    );
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mlreg"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("MLFLOW_TRACKING_URI", &proxy.uri)
        .env("MLFLOW_TRACKING_TOKEN", TOKEN)
        .env("MLREG_REQUEST_TIMEOUT", "10s")
        .env("NO_COLOR", "1")
        .current_dir(root.path());
    let mut daemon = Daemon::spawn(command, desired, &["--interval", "1s"]);
    let address = daemon.address.clone();
    daemon
        .wait_for("the first states", || {
            let address = address.clone();
            let (synced, gated, failing) = (synced.clone(), gated.clone(), failing.clone());
            async move {
                page_state(&address, &synced).await == "in-sync"
                    && page_state(&address, &gated).await == "blocked"
                    && page_state(&address, &failing).await == "failed"
            }
        })
        .await;
    // Drift made by hand, reported and not reverted (no --self-heal).
    client
        .transition(&drifted, 1, Staging)
        .await
        .expect("move a version by hand");
    daemon
        .wait_for("the drift to be reported", || {
            let address = address.clone();
            let drifted = drifted.clone();
            async move { page_state(&address, &drifted).await == "drift" }
        })
        .await;

    let dom = browser::dump_dom(&page_url(&daemon, "/")).await;
    assert_eq!(label(&dom, &synced), "in sync");
    assert_eq!(label(&dom, &drifted), "drift");
    assert_eq!(label(&dom, &gated), "blocked by a gate");
    assert_eq!(label(&dom, &failing), "failed");
    assert_eq!(label(&dom, &broken), "in sync");
    // Declared next to what the registry holds.
    assert_eq!(row(&dom, &synced, "Production"), ("2".into(), "2".into()));
    assert_eq!(row(&dom, &synced, "@champion"), ("2".into(), "2".into()));
    assert_eq!(
        row(&dom, &drifted, "Production"),
        ("1".into(), "(none)".into())
    );
    assert_eq!(
        row(&dom, &drifted, "Staging"),
        ("(none)".into(), "1".into())
    );
    assert_eq!(row(&dom, &gated, "Production"), ("2".into(), "1".into()));
    // The blocked gate's reason, and the failure's.
    let gated_card = card(&dom, &gated);
    assert!(
        gated_card.contains("Held by a gate:</b> version 2 → Production: tag validated expected"),
        "{gated_card}"
    );
    assert!(gated_card.contains("observed (unset)"), "{gated_card}");
    let failing_card = card(&dom, &failing);
    assert!(
        failing_card.contains("INVALID_PARAMETER_VALUE"),
        "{failing_card}"
    );
    assert!(
        failing_card.contains("<span class=\"kind failed\">failed</span>"),
        "{failing_card}"
    );
    assert!(card(&dom, &drifted).contains("<span class=\"kind drift\">drift</span>"));
    // The injected markup is text: no element came of it.
    assert!(!dom.contains("<img"), "an <img> element was made:\n{dom}");
    assert!(
        card(&dom, &synced).contains(&serialized(INJECTED)),
        "{}",
        card(&dom, &synced)
    );
    assert_eq!(
        dom.matches("<script").count(),
        1,
        "only the page's own script"
    );
    assert!(
        dom.contains("<html lang=\"en\" data-script=\"ready\">"),
        "the page's same-origin script did not run under its Content-Security-Policy"
    );
    // The header: readiness, the registry without credentials, counts per state.
    assert!(
        dom.contains("Not ready"),
        "a failing reconcile is not ready"
    );
    assert!(dom.contains(&proxy.uri), "the registry address is shown");
    assert!(!dom.contains(TOKEN), "the token reached the page");
    assert!(
        dom.contains(&format!("title=\"{commit}\">{}</dd>", &commit[..12])),
        "the manifests' commit is shown"
    );
    assert!(
        card(&dom, &drifted).contains(&format!("title=\"{commit}\"")),
        "the drift event carries the commit"
    );
    for (slug, at_least) in [("in-sync", 2), ("drift", 1), ("blocked", 1), ("failed", 1)] {
        let marker = format!("data-state=\"{slug}\"><b>");
        let count: usize = dom
            .split(&marker)
            .nth(1)
            .and_then(|rest| rest.split("</b>").next())
            .and_then(|count| count.parse().ok())
            .unwrap_or_else(|| panic!("no count for {slug}"));
        assert!(count >= at_least, "{slug}: {count}");
    }

    // One model in full, by a name with spaces, `&` and `#` (URL-encoded).
    let model =
        browser::dump_dom(&page_url(&daemon, &format!("/models/{}", encoded(&gated)))).await;
    assert!(
        model.contains(&format!(
            "<h3 class=\"name mono\">{}</h3>",
            serialized(&gated)
        )),
        "{model}"
    );
    assert!(model.contains("<td>tag validated</td>"), "{model}");
    assert!(model.contains("class=\"verdict fail\""), "{model}");
    assert!(model.contains("Pending changes"), "{model}");
    let synced_page =
        browser::dump_dom(&page_url(&daemon, &format!("/models/{}", encoded(&synced)))).await;
    assert!(!synced_page.contains("<img"), "{synced_page}");
    assert!(synced_page.contains(&serialized(INJECTED)), "{synced_page}");
    let missing = browser::dump_dom(&page_url(&daemon, "/models/no%20such%20model")).await;
    assert!(missing.contains("No managed model named"), "{missing}");
    let (code, _) = daemon.get("/models/no%20such%20model").await;
    assert_eq!(code, 404);

    // The screenshot: always taken (the command must work), kept where asked.
    let shots = tempfile::tempdir().expect("temp dir");
    let shot = shots.path().join("page.png");
    browser::screenshot(&page_url(&daemon, "/"), &shot, 1280, 800).await;
    if let Some(target) = std::env::var_os("MLREG_PAGE_SCREENSHOT") {
        keep(&shot, &PathBuf::from(target));
    }
    let phone = shots.path().join("phone.png");
    browser::screenshot(&page_url(&daemon, "/"), &phone, 390, 844).await;
    if let Some(target) = std::env::var_os("MLREG_PAGE_SCREENSHOT_PHONE") {
        keep(&phone, &PathBuf::from(target));
    }

    // An invalid manifest: the model keeps its last valid declaration and says why.
    std::fs::write(
        &broken_file,
        format!(
            "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: {broken}\nspec:\n  stagez:\n    Staging: 1\n"
        ),
    )
    .expect("break the manifest");
    daemon
        .wait_for("the manifests to be invalid", || {
            let address = address.clone();
            let broken = broken.clone();
            async move { page_state(&address, &broken).await == "invalid" }
        })
        .await;
    let dom = browser::dump_dom(&page_url(&daemon, "/")).await;
    assert_eq!(label(&dom, &broken), "invalid manifest");
    let broken_card = card(&dom, &broken);
    assert!(
        broken_card.contains("desired-state/broken.yaml:6:"),
        "{broken_card}"
    );
    assert!(broken_card.contains("stagez"), "{broken_card}");
    assert!(dom.contains("id=\"manifest-problems\""), "{dom}");
    assert_eq!(label(&dom, &gated), "blocked by a gate");
    assert_eq!(daemon.terminate(), 0);
}

/// Copies the screenshot to `target` (relative to the crate when relative).
fn keep(shot: &Path, target: &Path) {
    let target = if target.is_absolute() {
        target.to_path_buf()
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(target)
    };
    std::fs::copy(shot, &target)
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", target.display()));
}
