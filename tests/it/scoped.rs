//! Scoped reads against the real server (DESIGN.md "Scale"): the shared server holds every
//! other test's models, which is exactly the large shared registry a scoped read is for.
//! Requests are counted through the recording proxy and in `--output json` stats.

use std::collections::BTreeSet;

use futures_util::future::join_all;
use mlreg::registry::mlflow::MlflowClient;
use mlreg::registry::{Registry, Scope};
use serde_json::Value;

use crate::support::fleet::{self, A, Fleet};
use crate::support::manifest::Manifest;
use crate::support::proxy::{Fault, FaultProxy, Recorded};
use crate::support::{self, parse_json as json};

/// The query-string spelling of a `name IN (` filter, as reqwest encodes it.
const IN_FILTER: &str = "filter=name+IN+%28";

fn searches<'a>(recorded: &'a [Recorded], endpoint: &str) -> Vec<&'a Recorded> {
    recorded
        .iter()
        .filter(|request| request.target.contains(&format!("/{endpoint}?")))
        .collect()
}

fn filtered(requests: &[&Recorded]) -> usize {
    requests
        .iter()
        .filter(|request| request.target.contains(IN_FILTER))
        .count()
}

/// Names that need escaping in a filter, one that differs from the first only where a
/// `LIKE` wildcard would match, and enough long names to take more than one chunk.
fn awkward_names() -> Vec<String> {
    let base = support::unique("scoped");
    let mut names = vec![
        format!(r#"it's "{base}" \"#),
        format!(r"{base} \' ends with a backslash \\"),
        format!("{base} 100% _under_ (paren), comma; semicolon"),
    ];
    names.extend((0..30).map(|i| format!("{base}-long-{i:02}-{}", "l".repeat(80))));
    names
}

async fn seed_all(client: &MlflowClient, names: &[String], versions: u64) {
    join_all(
        names
            .iter()
            .map(|name| support::seed_model(client, name, versions)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scoped_read_is_the_whole_read_of_its_models_across_chunks_and_escapes() {
    let server = support::server();
    let client = server.client();
    let names = awkward_names();
    seed_all(&client, &names, 2).await;
    let base = names[0].clone();
    // Differs from the first name only where an `_` wildcard would match: must not leak.
    let lookalike = base.replace(['\'', '"', '\\'], "x");
    support::seed_model(&client, &lookalike, 3).await;
    support::place(&client, &names[0], &[], &[("champion", 2)]).await;

    let proxy = FaultProxy::start(&server.uri).await;
    let scoped_client = MlflowClient::from_url(&proxy.uri).expect("client");
    let missing = support::unique("scoped-missing");
    let scope = Scope::only(names.iter().cloned().chain([missing.clone()]));
    let scoped = scoped_client.scoped_snapshot(&scope).await.expect("scoped");
    let whole = client.snapshot().await.expect("whole");

    for name in &names {
        assert_eq!(
            scoped.snapshot.models.get(name),
            whole.models.get(name),
            "{name}"
        );
        assert_eq!(scoped.snapshot.models[name].versions.len(), 2, "{name}");
    }
    assert_eq!(scoped.snapshot.models[&names[0]].aliases["champion"], 2);
    assert!(!scoped.snapshot.models.contains_key(&missing));
    assert!(!scoped.snapshot.models.contains_key(&lookalike));
    assert!(scoped.others.is_empty());

    // Only filtered searches, more than one chunk, the same chunks for models and versions,
    // and no fallback to a whole read (which would hide a wrong escape).
    let recorded = proxy.recorded();
    let models = searches(&recorded, "registered-models/search");
    let versions = searches(&recorded, "model-versions/search");
    assert!(versions.len() > 1, "one chunk only: {}", versions.len());
    assert_eq!(filtered(&versions), versions.len());
    assert_eq!(filtered(&models), models.len());
    assert_eq!(models.len(), versions.len());
    assert_eq!(recorded.len(), models.len() + versions.len(), "no re-reads");
    assert!(recorded.iter().all(|r| r.target.len() < 4000));
    eprintln!(
        "scoped read of {} models: {} requests",
        scope.models.len(),
        recorded.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scoped_plan_reads_only_the_managed_models_and_lists_every_unmanaged_one() {
    let server = support::server();
    let client = server.client();
    let managed = [
        support::unique("scoped-plan"),
        format!("{} it's", support::unique("scoped-plan")),
    ];
    let unmanaged = support::unique("scoped-unmanaged");
    seed_all(&client, &managed, 2).await;
    support::seed_model(&client, &unmanaged, 1).await;
    let dir = tempfile::tempdir().expect("temp dir");
    for (i, name) in managed.iter().enumerate() {
        Manifest::model(name)
            .stage("Production", &[2])
            .write(dir.path(), &format!("m{i}.yaml"));
    }

    let before = client.snapshot().await.expect("whole");
    let proxy = FaultProxy::start(&server.uri).await;
    let mut command = fleet::command(&proxy.uri);
    command
        .args(["plan", "--output", "json", "--dir"])
        .arg(dir.path());
    let run = fleet::run(command).await;
    assert_eq!(run.code, Some(0), "{}", run.output());
    let after = client.snapshot().await.expect("whole");
    let document = json(&run.stdout);
    let full_plan = document.clone();

    // The plan: both managed models, promoting version 2.
    assert_eq!(
        document["models"].as_array().map(Vec::len),
        Some(2),
        "{}",
        run.stdout
    );
    assert_eq!(document["summary"]["promote"], 2, "{}", run.stdout);
    // Every model of the registry that no manifest names and that existed throughout.
    let listed: BTreeSet<&str> = document["unmanaged"]
        .as_array()
        .expect("unmanaged")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for name in before
        .models
        .keys()
        .filter(|n| after.models.contains_key(*n))
    {
        if !managed.contains(name) {
            assert!(listed.contains(name.as_str()), "`{name}` is not listed");
        }
    }
    assert!(listed.contains(unmanaged.as_str()));
    assert!(managed.iter().all(|name| !listed.contains(name.as_str())));

    // One model search (paged) and one filtered version search: nothing per registry row.
    let recorded = proxy.recorded();
    let models = searches(&recorded, "registered-models/search");
    let versions = searches(&recorded, "model-versions/search");
    assert_eq!(versions.len(), 1, "{versions:#?}");
    assert_eq!(filtered(&versions), 1);
    assert_eq!(filtered(&models), 0, "the model search lists them all");
    assert_eq!(
        document["stats"]["requests"].as_u64(),
        Some(u64::try_from(recorded.len()).expect("count"))
    );
    assert_eq!(recorded.len(), models.len() + 1);
    eprintln!(
        "scoped plan of 2 models in a registry of {} models: {} requests",
        after.models.len(),
        recorded.len()
    );

    // `--model` reads only the selected model, and lists nothing else.
    let start = proxy.recorded().len();
    let mut command = fleet::command(&proxy.uri);
    command
        .args(["plan", "--output", "json", "--model", &managed[1], "--dir"])
        .arg(dir.path());
    let run = fleet::run(command).await;
    assert_eq!(run.code, Some(0), "{}", run.output());
    let document = json(&run.stdout);
    assert_eq!(
        document["models"].as_array().map(Vec::len),
        Some(1),
        "{}",
        run.stdout
    );
    assert_eq!(document["unmanaged"], Value::Array(vec![]));
    let recorded = &proxy.recorded()[start..];
    assert_eq!(recorded.len(), 2, "{recorded:#?}");
    assert!(recorded.iter().all(|r| r.target.contains(IN_FILTER)));

    // `--skip-unmanaged`: the same plan of every managed model, from the two filtered
    // searches alone (no listing of the registry's other models).
    let start = proxy.recorded().len();
    let mut command = fleet::command(&proxy.uri);
    command
        .args(["plan", "--output", "json", "--skip-unmanaged", "--dir"])
        .arg(dir.path());
    let run = fleet::run(command).await;
    assert_eq!(run.code, Some(0), "{}", run.output());
    let skipped = json(&run.stdout);
    assert_eq!(skipped["models"], full_plan["models"], "{}", run.stdout);
    assert_eq!(skipped["summary"], full_plan["summary"], "{}", run.stdout);
    assert_eq!(skipped["unmanaged"], Value::Array(vec![]));
    let recorded = &proxy.recorded()[start..];
    assert_eq!(recorded.len(), 2, "{recorded:#?}");
    assert!(recorded.iter().all(|r| r.target.contains(IN_FILTER)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_refusing_the_filter_gets_the_whole_read_once_per_process() {
    let server = support::server();
    let client = server.client();
    let name = format!(r"{} \'", support::unique("scoped-refused"));
    support::seed_model(&client, &name, 2).await;
    let refuse = || Fault::Refuse {
        status: 400,
        code: "INVALID_PARAMETER_VALUE",
    };

    // The client: the refused read falls back to the whole read, and later reads of the
    // same client (and its clones) do not try the filter again.
    let proxy = FaultProxy::start(&server.uri).await;
    proxy.push_matching(IN_FILTER, (0..10).map(|_| refuse()));
    let scoped_client = MlflowClient::from_url(&proxy.uri).expect("client");
    let scope = Scope::listing_others([name.clone()]);
    let first = scoped_client
        .scoped_snapshot(&scope)
        .await
        .expect("falls back");
    assert_eq!(
        first.snapshot.models.get(&name),
        client.model(&name).await.expect("read").as_ref()
    );
    assert!(!first.others.is_empty() && !first.others.contains(&name));
    let recorded = proxy.recorded();
    assert_eq!(
        filtered(&recorded.iter().collect::<Vec<_>>()),
        1,
        "asked once"
    );
    let clone = scoped_client.clone();
    let second = clone.scoped_snapshot(&scope).await.expect("whole read");
    assert_eq!(second.snapshot, first.snapshot);
    let recorded = proxy.recorded();
    assert_eq!(
        filtered(&recorded.iter().collect::<Vec<_>>()),
        1,
        "not asked again"
    );

    // The binary: the plan is right, and the fallback is said at debug level.
    let proxy = FaultProxy::start(&server.uri).await;
    proxy.push_matching(IN_FILTER, (0..10).map(|_| refuse()));
    let dir = tempfile::tempdir().expect("temp dir");
    Manifest::model(&name)
        .stage("Production", &[2])
        .write(dir.path(), "m.yaml");
    let mut command = fleet::command(&proxy.uri);
    command
        .args(["plan", "--output", "json", "-vv", "--model", &name, "--dir"])
        .arg(dir.path());
    let run = fleet::run(command).await;
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert_eq!(json(&run.stdout)["summary"]["promote"], 1, "{}", run.stdout);
    assert!(
        run.stderr.contains("refused a `name IN` filter"),
        "{}",
        run.output()
    );
    // The model and version searches of the scoped read are sent at once; either may be
    // the one refused first (the other is abandoned), and neither is sent again.
    let recorded = proxy.recorded();
    let refused = filtered(&recorded.iter().collect::<Vec<_>>());
    assert!((1..=2).contains(&refused), "{recorded:#?}");
    let versions = searches(&recorded, "model-versions/search");
    assert!(
        versions.iter().any(|r| !r.target.contains("filter=")),
        "a whole read"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconcile_is_verified_with_one_read_of_the_models_it_changed() {
    let server = support::server();
    let client = server.client();
    let fleet = Fleet::seed(&client, "scoped-verify", 20).await;
    // However few models other tests left on the server, the 20 stay a minority of the
    // registry, so the verification is read scoped, as on a shared registry.
    let bystanders: Vec<String> = (0..25)
        .map(|_| support::unique("scoped-bystander"))
        .collect();
    seed_all(&client, &bystanders, 0).await;
    fleet.declare(A);
    let proxy = FaultProxy::start(&server.uri).await;
    let run = fleet::reconcile(&proxy.uri, fleet.dir(), &["--output", "json"]).await;
    assert_eq!(run.code, Some(0), "{}", run.output());
    fleet.assert_in(&client, A, "after reconcile").await;
    let document = json(&run.stdout);
    assert_eq!(document["result"]["success"], true, "{}", run.stdout);

    let recorded = proxy.recorded();
    let gets = searches(&recorded, "registered-models/get");
    let versions = searches(&recorded, "model-versions/search");
    // One stale-plan re-read per model (a get and its version search), and two scoped
    // reads: the plan's and the verification's.
    assert_eq!(
        gets.len(),
        20,
        "one re-read per model before applying, none after"
    );
    assert_eq!(
        filtered(&versions),
        2,
        "the plan's read and the verification"
    );
    assert_eq!(versions.len(), 2 + 20);
    let writes = fleet::writes(&recorded).len();
    let reads = recorded.len() - writes;
    assert_eq!(
        document["stats"]["requests"].as_u64(),
        Some(u64::try_from(recorded.len()).expect("count"))
    );
    eprintln!(
        "reconcile of 20 models: {} requests ({writes} writes, {reads} reads)",
        recorded.len()
    );
}
