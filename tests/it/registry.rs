//! The MLflow REST client against the real server: every call, typed errors, paged
//! snapshots, lenient decoding, retries through a fault-injecting proxy, and secrets that
//! never show.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mlreg::registry::mlflow::MlflowClient;
use mlreg::registry::{Auth, Error, Registry, RegistryConfig};
use mlreg::stage::Stage;

use crate::support::proxy::{Fault, FaultProxy};
use crate::support::{self, Server, read_model as read};

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn model_writes_round_trip() {
    let client = support::client();
    let name = support::unique("roundtrip");
    client
        .create_model(
            &name,
            Some("first description"),
            &tags(&[("team", "search"), ("task", "ranking")]),
        )
        .await
        .expect("create model");
    let model = read(&client, &name).await;
    assert_eq!(model.name, name);
    assert_eq!(model.description, "first description");
    assert_eq!(model.tags, tags(&[("team", "search"), ("task", "ranking")]));
    assert!(model.versions.is_empty() && model.aliases.is_empty());
    assert!(model.creation_timestamp > 0);

    client
        .update_description(&name, "second description")
        .await
        .expect("update description");
    client
        .set_model_tag(&name, "team", "ads")
        .await
        .expect("overwrite a tag");
    client
        .set_model_tag(&name, "owner", "")
        .await
        .expect("set an empty tag");
    client
        .delete_model_tag(&name, "task")
        .await
        .expect("delete a tag");
    client
        .delete_model_tag(&name, "never-set")
        .await
        .expect("deleting a missing tag is idempotent");
    let model = read(&client, &name).await;
    assert_eq!(model.description, "second description");
    assert_eq!(model.tags, tags(&[("owner", ""), ("team", "ads")]));

    // An empty description is sent as such and clears it.
    client
        .update_description(&name, "")
        .await
        .expect("clear description");
    assert_eq!(read(&client, &name).await.description, "");

    client.delete_model(&name).await.expect("delete model");
    assert!(client.model(&name).await.expect("read").is_none());
    let error = client
        .delete_model(&name)
        .await
        .expect_err("a second delete finds nothing");
    assert!(error.is_not_found(), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn version_writes_round_trip() {
    let client = support::client();
    let name = support::unique("versions");
    let numbers = support::seed_model(&client, &name, 3).await;
    assert_eq!(numbers, [1, 2, 3]);
    let run_id = support::create_run().await;
    let fourth = client
        .create_version(
            &name,
            &format!("s3://bucket/{name}/4"),
            Some(&run_id),
            &tags(&[("git_sha", "abc123")]),
        )
        .await
        .expect("create version with a run and tags");
    assert_eq!(fourth, 4);

    let version = client
        .get_version(&name, 4)
        .await
        .expect("get version")
        .expect("version 4 exists");
    assert_eq!(version.version, 4);
    assert_eq!(version.stage, Stage::None);
    assert_eq!(version.run_id, run_id);
    assert_eq!(version.source, format!("s3://bucket/{name}/4"));
    assert_eq!(version.tags, tags(&[("git_sha", "abc123")]));
    assert!(version.is_ready(), "{version:?}");
    assert!(client.get_version(&name, 99).await.expect("get").is_none());
    assert!(
        client
            .get_version(&support::unique("nomodel"), 1)
            .await
            .expect("get")
            .is_none()
    );

    // Transitions never archive the peers: two versions may share Production.
    client
        .transition(&name, 1, Stage::Production)
        .await
        .expect("v1 to Production");
    client
        .transition(&name, 2, Stage::Production)
        .await
        .expect("v2 to Production");
    client
        .transition(&name, 3, Stage::Staging)
        .await
        .expect("v3 to Staging");
    client
        .transition(&name, 3, Stage::Staging)
        .await
        .expect("repeating a transition is harmless");
    let model = read(&client, &name).await;
    let stages: Vec<(u64, Stage)> = model
        .versions
        .values()
        .map(|v| (v.version, v.stage))
        .collect();
    assert_eq!(
        stages,
        [
            (1, Stage::Production),
            (2, Stage::Production),
            (3, Stage::Staging),
            (4, Stage::None)
        ]
    );
    client
        .transition(&name, 1, Stage::Archived)
        .await
        .expect("archive v1");
    assert_eq!(
        read(&client, &name).await.versions[&1].stage,
        Stage::Archived
    );

    // Aliases: set, move, delete (idempotent).
    client.set_alias(&name, "champion", 2).await.expect("set");
    client.set_alias(&name, "challenger", 3).await.expect("set");
    assert_eq!(
        read(&client, &name).await.aliases,
        BTreeMap::from([("challenger".to_owned(), 3), ("champion".to_owned(), 2)])
    );
    client.set_alias(&name, "champion", 3).await.expect("move");
    let model = read(&client, &name).await;
    assert_eq!(model.aliases["champion"], 3);
    assert_eq!(model.aliases_of(3), ["challenger", "champion"]);
    client
        .delete_alias(&name, "challenger")
        .await
        .expect("delete");
    client
        .delete_alias(&name, "challenger")
        .await
        .expect("deleting a missing alias is idempotent");
    assert_eq!(
        read(&client, &name).await.aliases,
        BTreeMap::from([("champion".to_owned(), 3)])
    );

    // Version tags.
    client
        .set_version_tag(&name, 2, "validated", "true")
        .await
        .expect("set version tag");
    client
        .delete_version_tag(&name, 4, "git_sha")
        .await
        .expect("delete version tag");
    client
        .delete_version_tag(&name, 4, "git_sha")
        .await
        .expect("idempotent");
    let model = read(&client, &name).await;
    assert_eq!(model.versions[&2].tags, tags(&[("validated", "true")]));
    assert!(model.versions[&4].tags.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_typed_by_error_code() {
    let client = support::client();
    let name = support::unique("errors");
    support::seed_model(&client, &name, 1).await;

    let error = client
        .transition(&name, 7, Stage::Production)
        .await
        .expect_err("version 7 does not exist");
    assert_eq!(error.code(), Some("RESOURCE_DOES_NOT_EXIST"), "{error}");
    assert!(error.is_not_found());
    assert!(
        matches!(
            error,
            Error::Api {
                status: 404,
                method: "POST",
                endpoint: "model-versions/transition-stage",
                ..
            }
        ),
        "{error:?}"
    );

    let error = client
        .create_model(&name, None, &BTreeMap::new())
        .await
        .expect_err("the model exists");
    assert_eq!(error.code(), Some("RESOURCE_ALREADY_EXISTS"), "{error}");
    assert!(matches!(error, Error::Api { status: 400, .. }), "{error:?}");

    let error = client
        .set_alias(&name, "latest", 1)
        .await
        .expect_err("`latest` is reserved");
    assert_eq!(error.code(), Some("INVALID_PARAMETER_VALUE"), "{error}");

    let missing = support::unique("missing");
    let error = client
        .create_version(&missing, "s3://bucket/x", None, &BTreeMap::new())
        .await
        .expect_err("no such model");
    assert!(error.is_not_found(), "{error}");
    let error = client
        .set_model_tag(&missing, "k", "v")
        .await
        .expect_err("no such model");
    assert!(error.is_not_found(), "{error}");
    assert!(client.model(&missing).await.expect("read").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn names_with_quotes_and_backslashes_are_read_exactly() {
    let client = support::client();
    let base = support::unique("quote");
    let tricky = format!(r#"it's "{base}" \"#);
    // Differs only where the filter uses a wildcard: must not leak into the read.
    let lookalike = format!(r#"itxs x{base}x x"#);
    support::seed_model(&client, &tricky, 2).await;
    support::seed_model(&client, &lookalike, 3).await;
    let model = read(&client, &tricky).await;
    assert_eq!(model.name, tricky);
    assert_eq!(model.versions.keys().copied().collect::<Vec<_>>(), [1, 2]);
    assert!(
        model
            .versions
            .values()
            .all(|v| v.source.starts_with(&format!("s3://bucket/{tricky}/")))
    );
    assert_eq!(read(&client, &lookalike).await.versions.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_of_the_shared_server_holds_models_with_tags_aliases_and_versions() {
    let client = support::client();
    let name = support::unique("snapshot");
    client
        .create_model(&name, Some("described"), &tags(&[("k", "v")]))
        .await
        .expect("create");
    for n in 1..=3 {
        client
            .create_version(
                &name,
                &format!("s3://bucket/{name}/{n}"),
                None,
                &BTreeMap::new(),
            )
            .await
            .expect("create version");
    }
    support::place(
        &client,
        &name,
        &[(2, Stage::Production), (3, Stage::Staging)],
        &[("champion", 2)],
    )
    .await;
    let snapshot = client.snapshot().await.expect("snapshot");
    let model = snapshot
        .models
        .get(&name)
        .expect("the model is in the snapshot");
    assert_eq!(model, &read(&client, &name).await);
    assert_eq!(model.description, "described");
    assert_eq!(model.tags, tags(&[("k", "v")]));
    assert_eq!(model.aliases_of(2), ["champion"]);
    assert_eq!(
        model
            .versions_in(Stage::Production)
            .map(|v| v.version)
            .collect::<Vec<_>>(),
        [2]
    );
}

/// On a server of its own: an empty registry first (MLflow answers `{}`), then a registry
/// read in several pages, with a request count that grows with pages, not models.
#[tokio::test(flavor = "multi_thread")]
async fn snapshot_of_an_empty_registry_then_across_pages() {
    let server = Server::start();
    let client = server.client_with(|config| {
        config.model_page_size = 2;
        config.version_page_size = 3;
    });
    let snapshot = client
        .snapshot()
        .await
        .expect("snapshot of an empty registry");
    assert!(snapshot.models.is_empty());
    assert_eq!(client.request_count(), 2, "one search of each kind");
    assert!(client.model("nothing").await.expect("read").is_none());

    // 5 models with 2 versions each: 3 pages of models, 4 pages of versions.
    let seeder = server.client();
    let mut names = Vec::new();
    for i in 0..5 {
        let name = format!("paged-{i}");
        support::seed_model(&seeder, &name, 2).await;
        names.push(name);
    }
    support::place(
        &seeder,
        "paged-0",
        &[(1, Stage::Production)],
        &[("champion", 2)],
    )
    .await;
    support::place(&seeder, "paged-4", &[(2, Stage::Staging)], &[("old", 1)]).await;

    let before = client.request_count();
    let snapshot = client.snapshot().await.expect("paged snapshot");
    assert_eq!(client.request_count() - before, 3 + 4, "pages, not models");
    assert_eq!(snapshot.models.keys().cloned().collect::<Vec<_>>(), names);
    for name in &names {
        let model = &snapshot.models[name];
        assert_eq!(
            model.versions.keys().copied().collect::<Vec<_>>(),
            [1, 2],
            "{name}"
        );
        assert_eq!(model, &read(&seeder, name).await, "{name}");
    }
    assert_eq!(snapshot.models["paged-0"].aliases["champion"], 2);
    assert_eq!(
        snapshot.models["paged-0"].versions[&1].stage,
        Stage::Production
    );
    assert_eq!(
        snapshot.models["paged-4"].versions[&2].stage,
        Stage::Staging
    );

    // The same registry in single pages costs two requests.
    let big_pages = server.client();
    big_pages.snapshot().await.expect("snapshot");
    assert_eq!(big_pages.request_count(), 2);

    // One model with more versions than a page, read alone.
    let before = client.request_count();
    for n in 3..=7 {
        seeder
            .create_version(
                "paged-1",
                &format!("s3://bucket/paged-1/{n}"),
                None,
                &BTreeMap::new(),
            )
            .await
            .expect("create version");
    }
    let model = read(&client, "paged-1").await;
    assert_eq!(model.versions.len(), 7);
    // One get, then three pages of three versions.
    assert_eq!(client.request_count() - before, 1 + 3);

    // Models deleted while the model pages are read shift the offset pages, so the search
    // skips the model after each deleted one. Each skipped model's versions are read without
    // it; the snapshot reads that model on its own rather than leaving it out. The victims
    // sort first, each with a version, and one is deleted after every page of models.
    let victims: Vec<String> = (0..30).map(|i| format!("a-gone-{i:02}")).collect();
    for victim in &victims {
        support::seed_model(&seeder, victim, 1).await;
    }
    let queue = Arc::new(Mutex::new(
        victims.iter().rev().cloned().collect::<Vec<_>>(),
    ));
    let deleted: Arc<Mutex<Vec<String>>> = Arc::default();
    let single_reads = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let churned = server
        .client_with(|config| config.model_page_size = 2)
        .with_observer({
            let (queue, deleted, single_reads) = (
                Arc::clone(&queue),
                Arc::clone(&deleted),
                Arc::clone(&single_reads),
            );
            let seeder = seeder.clone();
            move |endpoint, _, _| {
                if endpoint == "registered-models/get" {
                    single_reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                if endpoint != "registered-models/search" {
                    return;
                }
                let Some(victim) = queue.lock().expect("queue").pop() else {
                    return;
                };
                // Delete before the next page is asked for: block this task on a runtime of
                // its own (the observer is synchronous).
                let seeder = seeder.clone();
                let name = victim.clone();
                std::thread::spawn(move || {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime")
                        .block_on(seeder.delete_model(&name))
                        .expect("delete a victim");
                })
                .join()
                .expect("deleting thread");
                deleted.lock().expect("deleted").push(victim);
            }
        });
    let snapshot = churned.snapshot().await.expect("snapshot during deletions");
    let deleted = deleted.lock().expect("deleted").clone();
    assert!(deleted.len() >= 10, "deleted only {deleted:?}");
    assert!(
        single_reads.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "no model was skipped by the pages, so nothing was tested"
    );
    let after = big_pages.snapshot().await.expect("snapshot after");
    for (name, model) in &after.models {
        assert_eq!(
            snapshot.models.get(name),
            Some(model),
            "`{name}` exists, unchanged, but the snapshot read beside the deletions differs"
        );
    }
    for name in snapshot.models.keys() {
        assert!(
            after.models.contains_key(name) || deleted.contains(name),
            "`{name}` was never in the registry"
        );
    }

    // Stopping the dedicated server deletes its data.
    let data_dir = server.data_dir.clone();
    assert!(data_dir.join("mlflow.db").exists());
    drop(server);
    assert!(!data_dir.exists(), "{} is left behind", data_dir.display());
}

/// Where CI registers versions all the time, a whole-registry read still succeeds: the two
/// searches run at the same time, so the model search may see a version (as its latest, or
/// behind an alias) that the version search has not; that model is read again on its own,
/// model first, where a version created in between is harmless.
#[tokio::test(flavor = "multi_thread")]
async fn snapshots_succeed_while_versions_are_registered_and_aliased_nonstop() {
    let server = support::server();
    let names: Vec<String> = (0..4).map(|_| support::unique("busy")).collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for name in &names {
        let writer = server.client();
        support::seed_model(&writer, name, 1).await;
        writer
            .set_alias(name, "newest", 1)
            .await
            .expect("first alias");
        let stop = Arc::clone(&stop);
        let name = name.clone();
        writers.push(tokio::spawn(async move {
            let mut written = 0_u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let number = writer
                    .create_version(&name, "s3://bucket/busy", None, &BTreeMap::new())
                    .await
                    .expect("register a version");
                writer
                    .set_alias(&name, "newest", number)
                    .await
                    .expect("move the alias");
                written += 1;
            }
            written
        }));
    }
    let single_reads = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let reader = server.client().with_observer({
        let single_reads = Arc::clone(&single_reads);
        move |endpoint, _, _| {
            if endpoint == "registered-models/get" {
                single_reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    for round in 0..20 {
        let snapshot = reader
            .snapshot()
            .await
            .unwrap_or_else(|error| panic!("snapshot {round} beside the writers: {error}"));
        for name in &names {
            let model = &snapshot.models[name];
            let newest = model.aliases["newest"];
            assert!(
                model.versions.contains_key(&newest),
                "round {round}: `{name}`'s alias points at version {newest}, which the snapshot lacks"
            );
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        let written = writer.await.expect("writer");
        assert!(written >= 5, "a writer registered only {written} versions");
    }
    assert!(
        single_reads.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "no read ever caught a writer between the two searches, so nothing was tested"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_json_error_body_is_a_clean_typed_error() {
    let server = support::server();
    let url = url::Url::parse(&format!("{}/not-mlflow/", server.uri)).expect("URL");
    let client = MlflowClient::new(RegistryConfig::new(url)).expect("client");
    let error = client.snapshot().await.expect_err("wrong base path");
    let Error::Api {
        status,
        code,
        message,
        endpoint,
        ..
    } = &error
    else {
        panic!("not an API error: {error:?}");
    };
    assert_eq!(*status, 404);
    assert_eq!(*code, None);
    // Both searches are sent at once; the first answer ends the read.
    assert!(
        ["registered-models/search", "model-versions/search"].contains(endpoint),
        "{endpoint}"
    );
    assert!(message.contains("Not Found"), "{message}");
    assert!(
        !message.contains('<') && !message.contains('\n'),
        "{message}"
    );
    assert!(client.request_count() <= 2, "a 404 is not retried");
    // A 404 that is not MLflow's RESOURCE_DOES_NOT_EXIST says nothing about the model.
    let error = client
        .model("anything")
        .await
        .expect_err("a wrong base path is not a missing model");
    assert!(
        matches!(
            error,
            Error::Api {
                status: 404,
                code: None,
                ..
            }
        ),
        "{error:?}"
    );
}

fn fast_retries(config: &mut RegistryConfig) {
    config.max_retries = 3;
    config.min_backoff = Duration::from_millis(10);
    config.max_backoff = Duration::from_millis(100);
}

async fn proxied_client(proxy: &FaultProxy) -> MlflowClient {
    let mut config = RegistryConfig::new(url::Url::parse(&proxy.uri).expect("URL"));
    fast_retries(&mut config);
    MlflowClient::new(config).expect("client")
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_and_target_state_writes_are_retried_on_transient_failures() {
    let server = support::server();
    let proxy = FaultProxy::start(&server.uri).await;
    let client = proxied_client(&proxy).await;
    let name = support::unique("retry");
    support::seed_model(&support::client(), &name, 2).await;

    // Reads: 503, a dropped connection, 502, then through.
    proxy.push([Fault::status(503), Fault::Close, Fault::status(502)]);
    assert_eq!(read(&client, &name).await.versions.len(), 2);
    assert_eq!(proxy.pending(), 0);
    assert_eq!(
        client.request_count(),
        3 + 2,
        "3 failures, then get and search"
    );
    assert_eq!(proxy.requests(), client.request_count());

    // A transition whose answer is lost is repeated: it sets a target state.
    proxy.push([Fault::ForwardThenClose, Fault::ForwardThenStatus(500)]);
    client
        .transition(&name, 2, Stage::Production)
        .await
        .expect("transition through lost answers");
    assert_eq!(proxy.pending(), 0);

    // Upserts and deletes.
    proxy.push([Fault::status(429), Fault::status(504)]);
    client.set_alias(&name, "champion", 2).await.expect("alias");
    proxy.push([Fault::status(503)]);
    client
        .delete_alias(&name, "champion")
        .await
        .expect("delete alias");
    proxy.push([Fault::status(408)]);
    client
        .update_description(&name, "through a 408")
        .await
        .expect("update");
    let model = read(&support::client(), &name).await;
    assert_eq!(model.versions[&2].stage, Stage::Production);
    assert!(model.aliases.is_empty());
    assert_eq!(model.description, "through a 408");

    // Retries are bounded: four 503s exhaust three retries.
    let before = client.request_count();
    proxy.push(std::iter::repeat_n(Fault::status(503), 4));
    let error = client.model(&name).await.expect_err("retries exhausted");
    assert!(matches!(error, Error::Api { status: 503, .. }), "{error:?}");
    assert_eq!(client.request_count() - before, 4);

    // Client errors are never retried.
    proxy.push([Fault::status(403), Fault::status(503)]);
    let error = client.model(&name).await.expect_err("forbidden");
    assert!(error.is_auth(), "{error}");
    assert_eq!(proxy.pending(), 1, "the 403 ended the call");
}

#[tokio::test(flavor = "multi_thread")]
async fn creations_are_retried_only_when_the_server_cannot_have_acted() {
    let server = support::server();
    let proxy = FaultProxy::start(&server.uri).await;
    let client = proxied_client(&proxy).await;
    let direct = support::client();
    let name = support::unique("create-retry");

    // A 503 may come after a commit: not retried, and here nothing was created.
    proxy.push([Fault::status(503)]);
    let error = client
        .create_model(&name, None, &BTreeMap::new())
        .await
        .expect_err("503 on create");
    assert!(matches!(error, Error::Api { status: 503, .. }), "{error:?}");
    assert_eq!(client.request_count(), 1);
    assert!(direct.model(&name).await.expect("read").is_none());

    // The server created the model but the client was told 429: the retry finds it
    // created, which counts as success.
    proxy.push([Fault::ForwardThenStatus(429)]);
    client
        .create_model(&name, Some("d"), &BTreeMap::new())
        .await
        .expect("create through a lying 429");
    assert_eq!(read(&direct, &name).await.description, "d");

    // Versions: a 429 is retried, a 503 is not, a lost answer is an error (never a
    // duplicate version).
    proxy.push([Fault::status(429)]);
    let v1 = client
        .create_version(&name, "s3://bucket/v1", None, &BTreeMap::new())
        .await
        .expect("create version through a 429");
    assert_eq!(v1, 1);
    proxy.push([Fault::status(503)]);
    client
        .create_version(&name, "s3://bucket/v2", None, &BTreeMap::new())
        .await
        .expect_err("503 is not retried");
    proxy.push([Fault::ForwardThenClose]);
    let error = client
        .create_version(&name, "s3://bucket/v2", None, &BTreeMap::new())
        .await
        .expect_err("lost answer");
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    assert_eq!(proxy.pending(), 0);
    // Exactly one version per request that reached the server.
    assert_eq!(
        read(&direct, &name)
            .await
            .versions
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        [1, 2]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_is_honoured_and_capped() {
    let server = support::server();
    let proxy = FaultProxy::start(&server.uri).await;
    let mut config = RegistryConfig::new(url::Url::parse(&proxy.uri).expect("URL"));
    config.min_backoff = Duration::from_millis(1);
    config.max_backoff = Duration::from_secs(3);
    let client = MlflowClient::new(config.clone()).expect("client");
    let name = support::unique("retry-after");
    support::seed_model(&support::client(), &name, 1).await;

    proxy.push([Fault::Status {
        status: 429,
        retry_after: Some(1),
    }]);
    let started = Instant::now();
    read(&client, &name).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    config.max_backoff = Duration::from_millis(50);
    let client = MlflowClient::new(config).expect("client");
    proxy.push([Fault::Status {
        status: 503,
        retry_after: Some(3600),
    }]);
    let started = Instant::now();
    read(&client, &name).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// An endpoint and the status it answered, as the observer saw them.
type Observation = (&'static str, Option<u16>);

#[tokio::test(flavor = "multi_thread")]
async fn the_observer_sees_every_request() {
    let server = support::server();
    let proxy = FaultProxy::start(&server.uri).await;
    let seen: Arc<Mutex<Vec<Observation>>> = Arc::default();
    let client = proxied_client(&proxy).await.with_observer({
        let seen = Arc::clone(&seen);
        move |endpoint, latency, status| {
            assert!(latency < Duration::from_secs(60));
            seen.lock().expect("observations").push((endpoint, status));
        }
    });
    proxy.push([Fault::status(503), Fault::Close]);
    assert!(
        client
            .model(&support::unique("observed"))
            .await
            .expect("read")
            .is_none()
    );
    assert_eq!(
        *seen.lock().expect("observations"),
        [
            ("registered-models/get", Some(503)),
            ("registered-models/get", None),
            ("registered-models/get", Some(404)),
        ]
    );
}

/// Collects log output in memory.
/// Basic and bearer credentials reach neither `Debug` nor `Display` of the client and of
/// its errors, nor any log line at full verbosity. Logs are checked on the binary, in its
/// own process: an in-process subscriber is unreliable here, because tracing caches each
/// callsite's interest process-wide and other tests hit the same callsites concurrently.
#[tokio::test(flavor = "multi_thread")]
async fn credentials_never_show_in_debug_errors_or_logs() {
    const PASSWORD: &str = "pw-Sup3rSecret-41";
    const TOKEN: &str = "tok-Sup3rSecret-42";
    const BASIC: &str = "YWxpY2U6cHctU3VwM3JTZWNyZXQtNDE=";
    let server = support::server();
    let mut texts = Vec::new();
    for auth in [
        Auth::Basic {
            username: "alice".into(),
            password: PASSWORD.into(),
        },
        Auth::Bearer(TOKEN.into()),
    ] {
        for base in [
            server.uri.clone(),
            format!("{}/wrong-prefix", server.uri),
            // Nothing listens on port 9 of the loopback: a transport error.
            "http://127.0.0.1:9".to_owned(),
        ] {
            let mut config = RegistryConfig::new(url::Url::parse(&base).expect("URL"));
            config.auth = auth.clone();
            config.max_retries = 1;
            config.min_backoff = Duration::from_millis(1);
            let client = MlflowClient::new(config).expect("client");
            texts.push(format!("{client:?}"));
            match client.model(&support::unique("secret")).await {
                // The plain server ignores credentials.
                Ok(model) => assert!(model.is_none()),
                Err(error) => {
                    texts.push(format!("{error}"));
                    texts.push(format!("{error:?}"));
                    texts.push(format!("{:#}", anyhow::Error::from(error)));
                }
            }
        }
    }
    assert!(texts.len() > 6, "errors were produced: {texts:#?}");
    assert!(texts[0].contains("<redacted>"), "{}", texts[0]);

    for (variable, value) in [
        ("MLFLOW_TRACKING_PASSWORD", PASSWORD),
        ("MLFLOW_TRACKING_TOKEN", TOKEN),
    ] {
        for base in [
            server.uri.clone(),
            format!("{}/wrong-prefix", server.uri),
            "http://127.0.0.1:9".to_owned(),
        ] {
            let mut command = support::mlreg();
            command
                .env("MLFLOW_TRACKING_URI", &base)
                .env(variable, value)
                .env("RUST_LOG", "trace")
                .env("MLREG_RETRY_MIN_BACKOFF", "1ms")
                .env("MLREG_RETRY_MAX_BACKOFF", "5ms")
                .args(["-vvv", "versions", &support::unique("secret")]);
            if variable == "MLFLOW_TRACKING_PASSWORD" {
                command.env("MLFLOW_TRACKING_USERNAME", "alice");
            }
            let (_, stdout, stderr) = support::output(&mut command);
            assert!(
                stderr.contains("mlflow request"),
                "trace logs were written ({base}):\n{stderr}"
            );
            texts.push(stdout);
            texts.push(stderr);
        }
    }
    for text in &texts {
        for secret in [PASSWORD, TOKEN, BASIC] {
            assert!(!text.contains(secret), "a secret leaked into:\n{text}");
        }
    }
}

/// Logs a pyfunc model under `model` in a new run, in the way both MLflow 2 and 3 accept
/// (`artifact_path=`); prints the run id.
const LOG_PYFUNC: &str = r#"
import mlflow

class Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return [1 for _ in range(len(model_input))]

with mlflow.start_run() as run:
    mlflow.pyfunc.log_model(artifact_path="model", python_model=Constant())
print(run.info.run_id)
"#;

/// What a `{run: ID}` selector registers from, on whichever MLflow the tests run against:
/// MLflow 3, the run's logged model (`models:/m-…`); MLflow 2, the run's artifacts
/// (`<artifact_uri>/model`). The version mlreg registers loads back with MLflow's client.
#[tokio::test]
async fn a_run_selector_registers_from_what_the_server_version_offers() {
    let server = support::server();
    let client = server.client();
    let python = std::env::var_os("MLREG_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"))
        .join("bin/python");
    let run_python = |script: &'static str, args: Vec<String>| {
        let python = python.clone();
        let uri = server.uri.clone();
        async move {
            let done = tokio::process::Command::new(python)
                .arg("-c")
                .arg(script)
                .args(args)
                .env("MLFLOW_TRACKING_URI", uri)
                .env_remove("MLFLOW_REGISTRY_URI")
                .output()
                .await
                .expect("run python");
            let stdout = String::from_utf8_lossy(&done.stdout).into_owned();
            assert!(
                done.status.success(),
                "{stdout}{}",
                String::from_utf8_lossy(&done.stderr)
            );
            stdout.lines().last().unwrap_or_default().to_owned()
        }
    };
    let run = run_python(LOG_PYFUNC, Vec::new()).await;
    let name = support::unique("select-any-server");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("m.yaml"),
        format!(
            "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  stages:\n    Staging: {{run: {run}}}\n"
        ),
    )
    .expect("write manifest");
    let reconcile = || {
        server
            .mlreg()
            .args(["reconcile", "--dir"])
            .arg(dir.path())
            .output()
            .expect("run mlreg")
    };
    let first = reconcile();
    assert!(first.status.success(), "{first:?}");
    let model = read(&client, &name).await;
    assert_eq!(model.versions.len(), 1, "{model:#?}");
    let version = &model.versions[&1];
    assert_eq!(version.run_id, run);
    assert_eq!(version.stage, Stage::Staging);
    assert!(
        version.source.starts_with("models:/m-") || version.source.ends_with("/artifacts/model"),
        "{}",
        version.source
    );
    let loaded = run_python(
        "import sys, mlflow; print(len(mlflow.pyfunc.load_model(sys.argv[1]).predict([[0], [1]])))",
        vec![format!("models:/{name}/1")],
    )
    .await;
    assert_eq!(loaded, "2");
    // The selector resolves now: nothing more is registered.
    let second = reconcile();
    assert!(second.status.success(), "{second:?}");
    assert_eq!(read(&client, &name).await.versions.len(), 1);
}

/// A workspace on a server that cannot honour it (MLflow 3.x without `--enable-workspaces`
/// refuses the header; MLflow 2.x ignores it and would act on its only namespace) stops the
/// run with a message that says so, before anything is applied. Runs in both passes of CI,
/// so each server version meets its own branch.
#[tokio::test(flavor = "multi_thread")]
async fn a_workspace_the_server_cannot_honour_stops_the_run_before_anything_is_applied() {
    let name = support::unique("no-workspaces");
    let dir = tempfile::tempdir().expect("temp dir");
    crate::support::manifest::Manifest::model(&name)
        .description("must not be created")
        .write(dir.path(), "m.yaml");
    let (code, stdout, stderr) = support::output(
        support::mlreg()
            .env("MLFLOW_WORKSPACE", "team-a")
            .args(["reconcile", "--dir"])
            .arg(dir.path()),
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("workspace `team-a` is configured, but")
            && (stderr.contains("not enabled on this server")
                || stderr.contains("this server has no workspaces")),
        "{stderr}"
    );
    let client = support::client();
    assert!(
        client.model(&name).await.expect("read").is_none(),
        "nothing is applied"
    );
}

/// A `{loggedModel: m-…}` selector that no version matches and the server cannot register
/// (no such logged model on MLflow 3; no logged models at all on MLflow 2) is refused at
/// plan time, naming it, with nothing applied. Runs in both passes of CI.
#[tokio::test(flavor = "multi_thread")]
async fn a_logged_model_the_server_does_not_have_is_refused_before_anything_is_applied() {
    let client = support::client();
    let name = support::unique("no-logged-model");
    support::seed_model(&client, &name, 1).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let id = "m-0123456789abcdef0123456789abcdef";
    std::fs::write(
        dir.path().join("m.yaml"),
        format!(
            "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  description: must stay unset\n  aliases:\n    champion: {{loggedModel: {id}}}\n"
        ),
    )
    .expect("write manifest");
    let (code, stdout, stderr) = support::output(
        support::mlreg()
            .args(["reconcile", "--dir"])
            .arg(dir.path()),
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains(&format!("logged model `{id}` does not exist")),
        "{stdout}\n{stderr}"
    );
    let model = read(&client, &name).await;
    assert_eq!(model.versions.len(), 1, "no version registered");
    assert!(
        model.aliases.is_empty() && model.description.is_empty(),
        "{model:#?}"
    );
}
