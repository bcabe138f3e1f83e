//! The MLflow REST client: [`MlflowClient`] implements [`Registry`] over the registry API
//! of an MLflow tracking server (`{base_url}/api/2.0/mlflow/...`, see mlflow-api.md).
//!
//! Wire conventions: GET parameters go in the query string (repeated keys for lists),
//! every other method carries a JSON body (DELETE included, which MLflow requires), and
//! version numbers are JSON strings. Answers are decoded leniently (`wire`).
//!
//! Each call carries its own retry policy (`retry`): reads and writes that set a target
//! state are retried on transient failures, creations only when the server cannot have
//! acted on them.
//!
//! Credentials are attached per request through reqwest's `basic_auth`/`bearer_auth`,
//! which mark the header sensitive; neither the client's `Debug` nor any error or log line
//! contains them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use backon::Retryable as _;
use futures_util::StreamExt as _;
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;

/// The header naming the MLflow 3.10+ workspace of a request (MLflow's
/// `WORKSPACE_HEADER_NAME`; header names are case-insensitive).
pub const WORKSPACE_HEADER: &str = "X-MLflow-Workspace";
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::retry::{self, Attempt, Policy};
use super::wire::{
    self, Empty, ErrorBody, LoggedModelResponse, ModelVersion, ModelVersionResponse,
    RegisteredModel, RegisteredModelResponse, RunResponse, SearchModelsResponse,
    SearchVersionsResponse,
};
use super::{
    Auth, Error, Metrics, ObservedModel, ObservedVersion, Registry, RegistryConfig, Result, Scope,
    ScopedSnapshot, Snapshot,
};
use crate::stage::Stage;

/// Receives, for every HTTP request sent (retries included), the endpoint (the path after
/// `/api/2.0/mlflow/`), its latency (until the whole answer was read) and the HTTP status
/// (`None` when no answer came). Meant to feed a latency histogram.
pub type RequestObserver = Arc<dyn Fn(&'static str, Duration, Option<u16>) + Send + Sync>;

/// How many times a whole read is attempted when the registry changes under it.
const READ_ATTEMPTS: u32 = 3;

/// How many models a snapshot reads again on their own at once (see `read_snapshot`).
const REREADS_IN_FLIGHT: usize = 8;

/// The most bytes a `name IN (...)` filter takes in the URL, percent-encoded. Request lines
/// are limited by servers and proxies (gunicorn: 4094 bytes, nginx: 8 KiB); the rest of a
/// search's URL (path prefix, paging, ordering, page token) stays well within the other
/// half of gunicorn's limit.
const FILTER_URL_BUDGET: usize = 2000;

/// How many filtered searches of one scoped read are sent at once.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Before the registry's size is known, the most chunks a scoped read may take; a larger
/// scope is read whole (see [`MlflowClient::scoped_is_cheaper`]).
const MAX_BLIND_CHUNKS: usize = 4;

mod webhooks;

pub use webhooks::{Webhook, WebhookEvent, WebhookSpec};
mod register;

/// The endpoints used, as paths after `/api/2.0/mlflow/`.
mod endpoint {
    pub const SEARCH_MODELS: &str = "registered-models/search";
    pub const GET_MODEL: &str = "registered-models/get";
    pub const CREATE_MODEL: &str = "registered-models/create";
    pub const UPDATE_MODEL: &str = "registered-models/update";
    pub const DELETE_MODEL: &str = "registered-models/delete";
    pub const SET_MODEL_TAG: &str = "registered-models/set-tag";
    pub const DELETE_MODEL_TAG: &str = "registered-models/delete-tag";
    pub const ALIAS: &str = "registered-models/alias";
    pub const SEARCH_VERSIONS: &str = "model-versions/search";
    pub const GET_VERSION: &str = "model-versions/get";
    pub const CREATE_VERSION: &str = "model-versions/create";
    pub const TRANSITION: &str = "model-versions/transition-stage";
    pub const SET_VERSION_TAG: &str = "model-versions/set-tag";
    pub const DELETE_VERSION_TAG: &str = "model-versions/delete-tag";
    pub const GET_RUN: &str = "runs/get";
    /// Followed by `/{model_id}` (MLflow 3).
    pub const GET_LOGGED_MODEL: &str = "logged-models";
    /// The webhook API (MLflow 3.3+): list and create here, `/{webhook_id}` to update or
    /// delete one (see `webhooks`).
    pub const WEBHOOKS: &str = "webhooks";
    /// One workspace (MLflow 3.10+), under `/api/3.0/mlflow/` (as `/{name}`).
    pub const GET_WORKSPACE: &str = "../../3.0/mlflow/workspaces";
}

/// The HTTP methods MLflow's registry API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Get,
    Post,
    Patch,
    Delete,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
        }
    }

    fn method(self) -> reqwest::Method {
        match self {
            Verb::Get => reqwest::Method::GET,
            Verb::Post => reqwest::Method::POST,
            Verb::Patch => reqwest::Method::PATCH,
            Verb::Delete => reqwest::Method::DELETE,
        }
    }
}

/// One logical call: what to send and how it may be retried.
#[derive(Debug)]
struct Call {
    verb: Verb,
    endpoint: &'static str,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
    policy: Policy,
    /// A path segment after the endpoint (`logged-models/{model_id}`), percent-encoded
    /// when the URL is built.
    segment: Option<String>,
}

impl Call {
    fn get(endpoint: &'static str, query: Vec<(&'static str, String)>) -> Self {
        Call {
            verb: Verb::Get,
            endpoint,
            query,
            body: None,
            policy: Policy::Safe,
            segment: None,
        }
    }

    fn with_body(verb: Verb, endpoint: &'static str, body: Value, policy: Policy) -> Self {
        Call {
            verb,
            endpoint,
            query: Vec::new(),
            body: Some(body),
            policy,
            segment: None,
        }
    }

    /// The same call on `{endpoint}/{segment}` (a path parameter such as an id).
    fn at(mut self, segment: impl Into<String>) -> Self {
        self.segment = Some(segment.into());
        self
    }
}

/// A client of MLflow's registry REST API.
///
/// Cheap to clone; clones share the connection pool, the request counter and the observer.
#[derive(Clone)]
pub struct MlflowClient {
    http: reqwest::Client,
    config: Arc<RegistryConfig>,
    /// `{base_url}/api/2.0/mlflow/`, ending with a slash so endpoints join under it.
    api: url::Url,
    requests: Arc<AtomicU64>,
    observer: Option<RequestObserver>,
    /// Set when the server refused a `name IN (...)` filter: scoped reads are whole reads
    /// from then on (shared by clones, so once per process).
    filter_refused: Arc<AtomicBool>,
    /// How many registered models the last read that listed them all found
    /// (`usize::MAX`: none yet); the cost rule of scoped reads uses it.
    registry_models: Arc<AtomicUsize>,
    /// Set once the configured workspace was found on the server (shared by clones, so
    /// once per process); see [`MlflowClient::check_workspace`].
    workspace_checked: Arc<tokio::sync::OnceCell<()>>,
}

// Hand-written: the configuration's `Debug` redacts secrets already, but the client only
// shows what helps debugging, never headers.
impl fmt::Debug for MlflowClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MlflowClient")
            .field("api", &self.api.as_str())
            .field("auth", &self.config.auth)
            .field("insecure_tls", &self.config.insecure_tls)
            .field("requests", &self.request_count())
            .finish_non_exhaustive()
    }
}

impl MlflowClient {
    /// Builds a client: TLS (the platform's roots, plus `ca_cert_path` when set, or no
    /// verification at all with `insecure_tls`), timeouts and the `mlreg/<version>` user
    /// agent. Fails with [`Error::Config`] on an unreadable CA bundle or a base URL that
    /// cannot carry a path.
    pub fn new(config: RegistryConfig) -> Result<Self> {
        // reqwest is built without a default crypto provider; the first caller installs
        // ring for the process and later calls are no-ops.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let mut api = config.base_url.clone();
        if api.cannot_be_a_base() || !matches!(api.scheme(), "http" | "https") {
            return Err(Error::Config(format!(
                "registry address must be an http:// or https:// URL, not `{api}`"
            )));
        }
        api.set_query(None);
        api.set_fragment(None);
        // Keep a path prefix (`mlflow server --static-prefix /mlflow`, or a proxy path).
        let path = format!("{}/api/2.0/mlflow/", api.path().trim_end_matches('/'));
        api.set_path(&path);

        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("mlreg/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .tcp_keepalive(Duration::from_secs(30))
            .referer(false);
        if api.scheme() == "http" {
            // A new connection per request on plain HTTP. `mlflow server` with more than one
            // worker (MLflow's default is 4) leaves Nagle's algorithm on for the sockets it
            // accepts and writes each answer's headers and body separately, so on a reused
            // connection the body waits for this side's delayed ACK: ~40 ms per request. A
            // new connection starts in quick-ACK mode and does not wait; over loopback or a
            // LAN, its handshake costs far less (docs/benchmarks.md). HTTPS keeps its pool:
            // a TLS handshake is expensive, and TLS registries sit behind proxies that turn
            // Nagle off.
            builder = builder.pool_max_idle_per_host(0);
        }
        if config.insecure_tls {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        if let Some(path) = &config.ca_cert_path {
            let pem = std::fs::read(path).map_err(|error| {
                Error::Config(format!(
                    "cannot read the CA bundle {} (MLFLOW_TRACKING_SERVER_CERT_PATH): {error}",
                    path.display()
                ))
            })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| {
                Error::Config(format!(
                    "the CA bundle {} is not PEM: {error}",
                    path.display()
                ))
            })?;
            if certificates.is_empty() {
                return Err(Error::Config(format!(
                    "the CA bundle {} holds no certificate",
                    path.display()
                )));
            }
            builder = builder.tls_certs_merge(certificates);
        }
        if let Some(path) = &config.client_cert_path {
            builder = builder.identity(client_identity(path)?);
        }
        let http = builder
            .build()
            .map_err(|error| Error::Config(format!("cannot set up the HTTP client: {error}")))?;
        Ok(MlflowClient {
            http,
            config: Arc::new(config),
            api,
            requests: Arc::new(AtomicU64::new(0)),
            observer: None,
            filter_refused: Arc::new(AtomicBool::new(false)),
            registry_models: Arc::new(AtomicUsize::new(usize::MAX)),
            workspace_checked: Arc::new(tokio::sync::OnceCell::new()),
        })
    }

    /// A client for `url` with the default configuration and no credentials.
    pub fn from_url(url: &str) -> Result<Self> {
        let base_url = url::Url::parse(url)
            .map_err(|error| Error::Config(format!("`{url}` is not a URL: {error}")))?;
        MlflowClient::new(RegistryConfig::new(base_url))
    }

    /// Calls `observer` after every HTTP request (see [`RequestObserver`]).
    pub fn with_observer(
        mut self,
        observer: impl Fn(&'static str, Duration, Option<u16>) + Send + Sync + 'static,
    ) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// The tracking server's base URL (never contains credentials).
    pub fn base_url(&self) -> &url::Url {
        &self.config.base_url
    }

    /// How many HTTP requests this client (and its clones) has sent, retries included.
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Registers a new version of `name` from `source` and returns its number.
    ///
    /// Not idempotent: it is retried only when the server cannot have acted on it (408,
    /// 429, connection failures), so a lost answer is an error rather than a duplicate.
    pub async fn create_version(
        &self,
        name: &str,
        source: &str,
        run_id: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Result<u64> {
        let mut body = json!({"name": name, "source": source, "tags": wire::tag_list(tags)});
        if let Some(run_id) = run_id {
            body["run_id"] = json!(run_id);
        }
        let call = Call::with_body(Verb::Post, endpoint::CREATE_VERSION, body, Policy::Create);
        let answer: ModelVersionResponse = self.call(&call).await?;
        let version = answer.model_version.ok_or_else(|| Error::Decode {
            endpoint: endpoint::CREATE_VERSION,
            detail: "the answer holds no model_version".into(),
        })?;
        wire::parse_version(&version.version).map_err(|detail| Error::Decode {
            endpoint: endpoint::CREATE_VERSION,
            detail,
        })
    }

    /// Reads one version (with its tags); `Ok(None)` when it or its model does not exist.
    pub async fn get_version(&self, name: &str, version: u64) -> Result<Option<ObservedVersion>> {
        let call = Call::get(
            endpoint::GET_VERSION,
            vec![("name", name.to_owned()), ("version", version.to_string())],
        );
        let answer: ModelVersionResponse = match self.call(&call).await {
            Ok(answer) => answer,
            Err(error) if is_missing(&error) => return Ok(None),
            Err(error) => return Err(error),
        };
        answer
            .model_version
            .map(|version| decode_version(endpoint::GET_VERSION, version))
            .transpose()
    }

    /// Deletes a registered model with its versions, tags and aliases (MLflow hard-deletes).
    /// A model that does not exist is an error, except when a retry finds it gone (the
    /// first attempt deleted it but its answer was lost).
    pub async fn delete_model(&self, name: &str) -> Result<()> {
        let call = Call::with_body(
            Verb::Delete,
            endpoint::DELETE_MODEL,
            json!({"name": name}),
            Policy::Safe,
        );
        match self.call_counting::<Empty>(&call).await {
            (Ok(_), _) => Ok(()),
            (Err(error), attempts) if attempts > 1 && is_missing(&error) => Ok(()),
            (Err(error), _) => Err(error),
        }
    }

    /// Sends one logical call (with its retries) and decodes the answer.
    async fn call<T: DeserializeOwned + Default>(&self, call: &Call) -> Result<T> {
        self.call_counting(call).await.0
    }

    /// Checks, once per process, that the configured workspace exists on a server that
    /// has workspaces. An MLflow 2.x server (or 3.x before 3.10) ignores the workspace
    /// header and would act on its one namespace, so a workspace it cannot confirm stops
    /// the run before anything is read or written. A transport error or a 5xx is returned
    /// as is (and checked again by the next call).
    async fn check_workspace(&self) -> Result<()> {
        let Some(workspace) = self.config.workspace.clone() else {
            return Ok(());
        };
        self.workspace_checked
            .get_or_try_init(|| async {
                let mut call = Call::get(endpoint::GET_WORKSPACE, Vec::new());
                call.segment = Some(workspace.clone());
                let answer: Result<serde_json::Value> = Box::pin(self.call_counting(&call)).await.0;
                match answer {
                    Ok(_) => Ok(()),
                    Err(error) => Err(workspace_error(&workspace, error)),
                }
            })
            .await
            .map(|_| ())
    }

    /// Like [`Self::call`], and also says how many attempts were made.
    async fn call_counting<T: DeserializeOwned + Default>(&self, call: &Call) -> (Result<T>, u32) {
        if call.endpoint != endpoint::GET_WORKSPACE
            && let Err(error) = self.check_workspace().await
        {
            return (Err(error), 0);
        }
        let attempts = AtomicU32::new(0);
        let max_backoff = self.config.max_backoff;
        let result = (|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.attempt(call).await
        })
        .retry(retry::backoff(&self.config))
        .when(|attempt: &Attempt| call.policy.allows(attempt))
        .adjust(|attempt, delay| retry::next_delay(attempt, delay, max_backoff))
        .notify(|attempt, delay| {
            tracing::info!(
                method = call.verb.as_str(),
                endpoint = call.endpoint,
                delay_ms = delay.as_millis() as u64,
                error = %error_chain(&attempt.error),
                "retrying registry call"
            );
        })
        .await;
        let attempts = attempts.load(Ordering::Relaxed);
        let result = result
            .map_err(|attempt| attempt.error)
            .and_then(|body| decode(call.endpoint, &body));
        (result, attempts)
    }

    /// Sends one HTTP request and returns the body of a successful answer.
    async fn attempt(&self, call: &Call) -> Result<Vec<u8>, Attempt> {
        let method = call.verb.as_str();
        let mut url = self.api.join(call.endpoint).map_err(|error| {
            Error::Config(format!(
                "cannot build the URL of {}: {error}",
                call.endpoint
            ))
        })?;
        if let Some(segment) = &call.segment {
            url.path_segments_mut()
                .map_err(|()| Error::Config(format!("cannot build the URL of {}", call.endpoint)))?
                .push(segment);
        }
        let mut request = self.http.request(call.verb.method(), url);
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        if let Some(body) = &call.body {
            // Sets `Content-Type: application/json`, which MLflow checks on POST.
            request = request.json(body);
        }
        request = match &self.config.auth {
            Auth::None => request,
            // Both mark the Authorization header sensitive.
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Basic { username, password } => request.basic_auth(username, Some(password)),
        };
        if let Some(workspace) = &self.config.workspace {
            request = request.header(WORKSPACE_HEADER, workspace);
        }

        self.requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let response = match request.send().await {
            Ok(response) => response,
            Err(source) => {
                let latency = started.elapsed();
                self.observe(call.endpoint, latency, None);
                tracing::debug!(
                    method,
                    endpoint = call.endpoint,
                    latency_ms = latency.as_millis() as u64,
                    error = %error_chain(&source),
                    "mlflow request failed"
                );
                return Err(Error::Transport {
                    method,
                    endpoint: call.endpoint,
                    source,
                }
                .into());
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(retry::parse_retry_after);
        let body = response.bytes().await.map(|body| body.to_vec());
        let latency = started.elapsed();
        self.observe(call.endpoint, latency, Some(status.as_u16()));
        tracing::debug!(
            method,
            endpoint = call.endpoint,
            status = status.as_u16(),
            latency_ms = latency.as_millis() as u64,
            "mlflow request"
        );
        let body = body.map_err(|source| Error::Transport {
            method,
            endpoint: call.endpoint,
            source,
        })?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(Attempt {
                error: api_error(method, call.endpoint, status, &body),
                retry_after,
            })
        }
    }

    fn observe(&self, endpoint: &'static str, latency: Duration, status: Option<u16>) {
        if let Some(observer) = &self.observer {
            observer(endpoint, latency, status);
        }
    }

    /// Reads every page of a search, in order.
    async fn search_all<P: Page>(
        &self,
        endpoint: &'static str,
        query: Vec<(&'static str, String)>,
    ) -> Result<Vec<P::Item>> {
        let mut items = Vec::new();
        let mut token = String::new();
        loop {
            let mut page_query = query.clone();
            if !token.is_empty() {
                page_query.push(("page_token", token.clone()));
            }
            let page: P = self.call(&Call::get(endpoint, page_query)).await?;
            let (page_items, next) = page.split();
            items.extend(page_items);
            if next.is_empty() {
                return Ok(items);
            }
            if next == token {
                return Err(Error::Decode {
                    endpoint,
                    detail: "the server sent the same page token twice".into(),
                });
            }
            token = next;
        }
    }

    /// Registered models matching `filter` (all when `None`), by name (one paged search).
    async fn search_models(&self, filter: Option<String>) -> Result<Vec<RegisteredModel>> {
        let mut query = vec![
            ("max_results", self.config.model_page_size.to_string()),
            ("order_by", "name ASC".to_owned()),
        ];
        if let Some(filter) = filter {
            query.push(("filter", filter));
        }
        self.search_all::<SearchModelsResponse>(endpoint::SEARCH_MODELS, query)
            .await
    }

    /// Model versions matching `filter` (all when `None`), ordered by name then number so
    /// offset paging is stable.
    async fn search_versions(&self, filter: Option<String>) -> Result<Vec<ModelVersion>> {
        let mut query = vec![
            ("max_results", self.config.version_page_size.to_string()),
            ("order_by", "name ASC".to_owned()),
            ("order_by", "version_number ASC".to_owned()),
        ];
        if let Some(filter) = filter {
            query.push(("filter", filter));
        }
        self.search_all::<SearchVersionsResponse>(endpoint::SEARCH_VERSIONS, query)
            .await
    }

    /// One read of the whole registry; the inner `Err` says why it must be read again.
    ///
    /// The two searches are sent at the same time: the server answers them in parallel, so
    /// the read costs about the slower of the two. [`assemble`] checks each side's
    /// references against the other's. A model whose two sides disagree (a version created,
    /// deleted or re-aliased while the searches ran, which with concurrent searches may be
    /// seen by either side first) or whose versions came without it (a model created, or
    /// skipped because a deletion shifted the offset pages) is read again on its own, in
    /// the order that makes creations harmless (see [`MlflowClient::read_model`]). It is
    /// kept when it exists and left out when it was deleted. Only a whole-registry problem
    /// (a row read twice: the pages shifted) sends the whole read round again.
    async fn read_snapshot(&self) -> Result<Result<Snapshot, String>> {
        let (models, versions) =
            tokio::try_join!(self.search_models(None), self.search_versions(None))?;
        let (mut snapshot, reread) = match assemble(models, versions)? {
            Ok(assembled) => assembled,
            Err(reason) => return Ok(Err(reason)),
        };
        self.reread(&mut snapshot, reread).await?;
        self.registry_models
            .store(snapshot.models.len(), Ordering::Relaxed);
        Ok(Ok(snapshot))
    }

    /// Reads the models `assemble` set aside again, one by one: each is kept when it
    /// exists and left out when it was deleted.
    async fn reread(&self, snapshot: &mut Snapshot, reread: BTreeSet<String>) -> Result<()> {
        if !reread.is_empty() {
            tracing::info!(
                models = reread.len(),
                "models changed while the registry was read; reading them again one by one"
            );
        }
        let mut reads = futures_util::stream::iter(reread)
            .map(|name| async move { (self.model(&name).await, name) })
            .buffer_unordered(REREADS_IN_FLIGHT);
        while let Some((model, name)) = reads.next().await {
            match model? {
                Some(model) => {
                    snapshot.models.insert(name, model);
                }
                None => {
                    snapshot.models.remove(&name);
                }
            }
        }
        Ok(())
    }

    /// Whether a scoped read of `scope` costs less than one whole read.
    ///
    /// Both send the model search; they differ in the version rows read and the number of
    /// version searches. The server's time grows with the rows it returns, so a scope
    /// holding at most half of the registry's models (as counted by the last read that
    /// listed them all) is read scoped, and a larger one whole: its versions are most of
    /// the rows anyway, and one unfiltered search returns them in fewer requests. Before
    /// the registry's size is known (the first read of a process), a scope of at most
    /// [`MAX_BLIND_CHUNKS`] chunks (a few hundred models) is read scoped: at worst it
    /// sends that many extra requests for rows a whole read returns too.
    fn scoped_is_cheaper(&self, chunks: usize, scope: &Scope) -> bool {
        match self.registry_models.load(Ordering::Relaxed) {
            usize::MAX => chunks <= MAX_BLIND_CHUNKS,
            known => scope.models.len().saturating_mul(2) <= known,
        }
    }

    /// One scoped read; the inner `Err` says why it must be read again.
    ///
    /// The same checks as [`Self::read_snapshot`]: the model search (all models when the
    /// scope lists the others, else filtered like the versions) and the filtered version
    /// searches are sent at once, [`assemble`] checks the scope's models against their
    /// versions, and a model whose two sides disagree is read again on its own.
    async fn read_scoped(
        &self,
        scope: &Scope,
        filters: &[String],
    ) -> Result<Result<ScopedSnapshot, String>> {
        let models = async {
            if scope.list_others {
                self.search_models(None).await
            } else {
                self.search_chunks(filters, |filter| self.search_models(Some(filter)))
                    .await
            }
        };
        let versions = self.search_chunks(filters, |filter| self.search_versions(Some(filter)));
        let (models, versions) = tokio::try_join!(models, versions)?;
        let mut in_scope = Vec::new();
        let mut others = BTreeSet::new();
        let mut listed = 0;
        for model in models {
            listed += 1;
            if scope.models.contains(&model.name) {
                in_scope.push(model);
            } else if !scope.list_others {
                // Not asked for; a filtered search returns none of these.
            } else if !others.insert(model.name.clone()) {
                return Ok(Err(format!("model `{}` was read twice", model.name)));
            }
        }
        // `name IN` matches exactly; anything else is not part of the scope.
        let versions = versions
            .into_iter()
            .filter(|version| scope.models.contains(&version.name))
            .collect();
        let (mut snapshot, reread) = match assemble(in_scope, versions)? {
            Ok(assembled) => assembled,
            Err(reason) => return Ok(Err(reason)),
        };
        self.reread(&mut snapshot, reread).await?;
        if scope.list_others {
            self.registry_models.store(listed, Ordering::Relaxed);
        }
        Ok(Ok(ScopedSnapshot { snapshot, others }))
    }

    /// Runs `search` for every filter, a few at once, and concatenates the results.
    async fn search_chunks<'a, T, F>(
        &'a self,
        filters: &'a [String],
        search: impl Fn(String) -> F + 'a,
    ) -> Result<Vec<T>>
    where
        F: Future<Output = Result<Vec<T>>> + 'a,
    {
        let mut pages = futures_util::stream::iter(filters.iter().cloned().map(search))
            .buffer_unordered(CHUNKS_IN_FLIGHT);
        let mut items = Vec::new();
        while let Some(chunk) = pages.next().await {
            items.extend(chunk?);
        }
        Ok(items)
    }

    /// One read of one model; the inner `Err` says why it is inconsistent.
    ///
    /// The model first, then its versions, never at the same time: a version created or
    /// aliased between the two requests then shows up only in the version read, which is
    /// consistent (a model whose latest versions or aliases name a version the version read
    /// lacks is not). A registry where CI registers versions all the time would otherwise
    /// keep this read from ever agreeing with itself.
    async fn read_model(&self, name: &str) -> Result<Option<Result<ObservedModel, String>>> {
        let call = Call::get(endpoint::GET_MODEL, vec![("name", name.to_owned())]);
        let answer: RegisteredModelResponse = match self.call(&call).await {
            Ok(answer) => answer,
            Err(error) if is_missing(&error) => return Ok(None),
            Err(error) => return Err(error),
        };
        let Some(model) = answer.registered_model else {
            return Err(Error::Decode {
                endpoint: endpoint::GET_MODEL,
                detail: "the answer holds no registered_model".into(),
            });
        };
        let versions = self
            .search_versions(Some(name_filter(name)))
            .await?
            .into_iter()
            // The filter may match more than `name` (see `name_filter`).
            .filter(|version| version.name == name)
            .collect();
        let (mut snapshot, reread) = match assemble(vec![model], versions)? {
            Ok(assembled) => assembled,
            Err(reason) => return Ok(Some(Err(reason))),
        };
        let Some(model) = snapshot.models.remove(name) else {
            return Err(Error::Decode {
                endpoint: endpoint::GET_MODEL,
                detail: format!("asked for `{name}`, got another model"),
            });
        };
        if !reread.is_empty() {
            return Ok(Some(Err(format!(
                "`{name}` changed between reading the model and its versions"
            ))));
        }
        Ok(Some(Ok(model)))
    }
}

/// A page of a search answer.
trait Page: DeserializeOwned + Default {
    type Item;
    /// The items and the next page token (`""` on the last page).
    fn split(self) -> (Vec<Self::Item>, String);
}

impl Page for SearchModelsResponse {
    type Item = RegisteredModel;
    fn split(self) -> (Vec<RegisteredModel>, String) {
        (self.registered_models, self.next_page_token)
    }
}

impl Page for SearchVersionsResponse {
    type Item = ModelVersion;
    fn split(self) -> (Vec<ModelVersion>, String) {
        (self.model_versions, self.next_page_token)
    }
}

/// Puts the models and versions of two separate reads together, and checks they agree.
///
/// Returns the snapshot and the names of models to read again on their own: those whose
/// aliases or latest versions name a version the version read lacks (a version created,
/// deleted or moved between the reads), and those whose versions were read without the
/// model (created during the read, or skipped because a deletion shifted the model pages).
/// The versions of the latter are not in the snapshot. Returns the inner `Err` (a reason)
/// when the whole read must be repeated: a model or version read twice (offset paging
/// shifted under a concurrent write).
fn assemble(
    models: Vec<RegisteredModel>,
    versions: Vec<ModelVersion>,
) -> Result<Result<(Snapshot, BTreeSet<String>), String>> {
    let mut snapshot = Snapshot::default();
    let mut latest: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for model in models {
        let (model, latest_versions) = model.into_observed().map_err(|detail| Error::Decode {
            endpoint: endpoint::SEARCH_MODELS,
            detail,
        })?;
        if snapshot.models.contains_key(&model.name) {
            return Ok(Err(format!("model `{}` was read twice", model.name)));
        }
        latest.insert(model.name.clone(), latest_versions);
        snapshot.models.insert(model.name.clone(), model);
    }
    let mut reread = BTreeSet::new();
    for version in versions {
        let name = version.name.clone();
        let version = decode_version(endpoint::SEARCH_VERSIONS, version)?;
        let Some(model) = snapshot.models.get_mut(&name) else {
            reread.insert(name);
            continue;
        };
        let number = version.version;
        if model.versions.insert(number, version).is_some() {
            return Ok(Err(format!("version {number} of `{name}` was read twice")));
        }
    }
    for model in snapshot.models.values() {
        let named = model
            .aliases
            .values()
            .chain(latest.get(&model.name).into_iter().flatten());
        let mut unread = named.filter(|version| !model.versions.contains_key(version));
        if let Some(version) = unread.next() {
            tracing::debug!(
                model = %model.name,
                version,
                "an alias or latest version names a version the version read lacks"
            );
            reread.insert(model.name.clone());
        }
    }
    Ok(Ok((snapshot, reread)))
}

/// The client certificate and key of `MLFLOW_TRACKING_CLIENT_CERT_PATH`: one PEM file
/// holding the certificate (and its chain) and the private key, as MLflow's own client
/// (`requests`' `cert`) expects.
fn client_identity(path: &std::path::Path) -> Result<reqwest::Identity> {
    let pem = std::fs::read(path).map_err(|error| {
        Error::Config(format!(
            "cannot read the client certificate {} (MLFLOW_TRACKING_CLIENT_CERT_PATH): {error}",
            path.display()
        ))
    })?;
    let text = String::from_utf8_lossy(&pem);
    let has_certificate = text.contains("-----BEGIN CERTIFICATE-----");
    let has_key = text
        .lines()
        .any(|line| line.starts_with("-----BEGIN ") && line.ends_with("PRIVATE KEY-----"));
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(Error::Config(format!(
            "the private key in {} (MLFLOW_TRACKING_CLIENT_CERT_PATH) is encrypted, which is not \
             supported (nor by MLflow's client); write it decrypted, e.g. with `openssl pkey`",
            path.display()
        )));
    }
    if !has_certificate || !has_key {
        return Err(Error::Config(format!(
            "the client certificate {} (MLFLOW_TRACKING_CLIENT_CERT_PATH) must be one PEM file \
             holding the certificate and its private key; it lacks {}",
            path.display(),
            match (has_certificate, has_key) {
                (false, false) => "both",
                (false, true) => "the certificate",
                _ => "the private key",
            }
        )));
    }
    reqwest::Identity::from_pem(&pem).map_err(|error| {
        Error::Config(format!(
            "the client certificate {} (MLFLOW_TRACKING_CLIENT_CERT_PATH) is not usable: {}",
            path.display(),
            error_chain(&error)
        ))
    })
}

/// What a failed workspace check means, as a configuration error that says what to do.
fn workspace_error(workspace: &str, error: Error) -> Error {
    let reason = match (&error, error.code()) {
        (_, Some("RESOURCE_DOES_NOT_EXIST")) => format!(
            "the server has no workspace `{workspace}` (create it, or fix `workspace` / MLFLOW_WORKSPACE)"
        ),
        (_, Some("FEATURE_DISABLED")) => format!(
            "workspace `{workspace}` is configured, but workspaces are not enabled on this server (start it with `mlflow server --enable-workspaces`, or remove `workspace` / MLFLOW_WORKSPACE)"
        ),
        (Error::Api { status: 404, .. }, _) => format!(
            "workspace `{workspace}` is configured, but this server has no workspaces (MLflow 3.10 or newer): it would ignore the workspace and act on its only namespace, so nothing is read or written (remove `workspace` / MLFLOW_WORKSPACE, or upgrade the server)"
        ),
        _ => return error,
    };
    Error::Config(reason)
}

/// Whether MLflow itself said the model or version does not exist. A bare 404 without
/// MLflow's `error_code` (a wrong base path, a proxy's page) is not an answer about the
/// model, and stays an error.
fn is_missing(error: &Error) -> bool {
    error.code() == Some("RESOURCE_DOES_NOT_EXIST") && !error.is_unknown_workspace()
}

fn decode_version(endpoint: &'static str, version: ModelVersion) -> Result<ObservedVersion> {
    version
        .into_observed()
        .map_err(|detail| Error::Decode { endpoint, detail })
}

/// A model-version search filter that matches the model `name`.
///
/// MLflow's filter parser (sqlparse, then `_strip_quotes`) takes a quoted value verbatim:
/// it has no escape for a quote inside a value (`'it''s'` is read as `it''s`), and a
/// backslash before the closing quote confuses the tokenizer. Names holding `'`, `"` or
/// `\` (all legal in MLflow) are therefore matched with `LIKE`, each such character
/// replaced by the one-character wildcard `_`; callers keep only the exact name. `%` and
/// `_` in a name only widen a `LIKE` match, which the same exact comparison undoes.
fn name_filter(name: &str) -> String {
    if name.contains(['\'', '"', '\\']) {
        let pattern: String = name
            .chars()
            .map(|c| {
                if matches!(c, '\'' | '"' | '\\') {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        format!("name LIKE '{pattern}'")
    } else {
        format!("name='{name}'")
    }
}

/// A filter's length in a URL query string, as reqwest encodes it.
fn encoded_len(text: &str) -> usize {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .map(str::len)
        .sum()
}

/// `name` as a quoted string inside a `name IN (...)` list.
///
/// MLflow tokenizes the filter with sqlparse and then reads the parenthesized list with
/// Python's `ast.literal_eval` (`SearchUtils._parse_list_from_sql_token`), so a list item
/// is a Python string literal, escapes included. sqlparse, though, ends a quoted string
/// at `\'` wrongly when a backslash precedes the closing quote, so `'` and `\` (and `"`,
/// and control characters) are written as `\xNN` escapes, which sqlparse sees as plain
/// characters and `literal_eval` decodes to exactly the name.
fn in_list_literal(name: &str) -> String {
    let mut literal = String::with_capacity(name.len() + 2);
    literal.push('\'');
    for c in name.chars() {
        match c {
            '\'' | '"' | '\\' => literal.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if c.is_control() => match u32::from(c) {
                code @ 0..=0xff => literal.push_str(&format!("\\x{code:02x}")),
                code => literal.push_str(&format!("\\u{code:04x}")),
            },
            c => literal.push(c),
        }
    }
    literal.push('\'');
    literal
}

/// `name IN (...)` filters covering `names`, each within [`FILTER_URL_BUDGET`] encoded
/// bytes (a single name longer than that gets a filter of its own).
fn in_filters<'a>(names: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    const OPEN: &str = "name IN (";
    let mut filters = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    for name in names {
        let literal = in_list_literal(name);
        let literal_len = encoded_len(&literal) + encoded_len(",");
        if !current.is_empty() && current_len + literal_len > FILTER_URL_BUDGET {
            current.push(')');
            filters.push(std::mem::take(&mut current));
        }
        if current.is_empty() {
            current.push_str(OPEN);
            current_len = encoded_len(OPEN) + encoded_len(")");
        } else {
            current.push(',');
        }
        current.push_str(&literal);
        current_len += literal_len;
    }
    if !current.is_empty() {
        current.push(')');
        filters.push(current);
    }
    filters
}

/// Decodes a successful answer; an empty body counts as `{}`.
fn decode<T: DeserializeOwned + Default>(endpoint: &'static str, body: &[u8]) -> Result<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|error| Error::Decode {
        endpoint,
        detail: format!("{error}; the answer starts with: {}", excerpt(body)),
    })
}

/// The typed error for an answer with an error status. MLflow sends
/// `{"error_code", "message"}`; proxies and Flask's defaults send HTML or plain text, of
/// which a short single line is kept.
fn api_error(
    method: &'static str,
    endpoint: &'static str,
    status: StatusCode,
    body: &[u8],
) -> Error {
    let mlflow = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .filter(|error| !error.error_code.is_empty() || !error.message.is_empty());
    let (code, message) = match mlflow {
        Some(error) => (
            Some(error.error_code).filter(|code| !code.is_empty()),
            single_line(&error.message, 500),
        ),
        None => (None, excerpt(body)),
    };
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("no message").to_owned()
    } else {
        message
    };
    Error::Api {
        method,
        endpoint,
        status: status.as_u16(),
        code,
        message,
    }
}

/// The start of a body as one short line; HTML tags are dropped.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.trim_start().starts_with('<') {
        let mut stripped = String::with_capacity(text.len());
        let mut in_tag = false;
        for c in text.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => {
                    in_tag = false;
                    stripped.push(' ');
                }
                _ if !in_tag => stripped.push(c),
                _ => {}
            }
        }
        single_line(&stripped, 200)
    } else {
        single_line(&text, 200)
    }
}

/// An error and its causes on one line (`outer: inner: root`), for log fields.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// Collapses whitespace (newlines included) and cuts at `max` characters.
fn single_line(text: &str, max: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        line
    } else {
        let mut cut: String = line.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

impl Registry for MlflowClient {
    async fn snapshot(&self) -> Result<Snapshot> {
        let mut reason = String::new();
        for attempt in 1..=READ_ATTEMPTS {
            match self.read_snapshot().await? {
                Ok(snapshot) => return Ok(snapshot),
                Err(why) => {
                    tracing::info!(attempt, reason = %why, "the registry changed during the read; reading it again");
                    reason = why;
                }
            }
        }
        Err(Error::Inconsistent(format!(
            "{reason} (still changing after {READ_ATTEMPTS} reads)"
        )))
    }

    async fn scoped_snapshot(&self, scope: &Scope) -> Result<ScopedSnapshot> {
        let filters = in_filters(&scope.models);
        if filters.is_empty() && !scope.list_others {
            return Ok(ScopedSnapshot::default());
        }
        if self.filter_refused.load(Ordering::Relaxed)
            || !self.scoped_is_cheaper(filters.len(), scope)
        {
            return Ok(ScopedSnapshot::from_whole(self.snapshot().await?, scope));
        }
        let mut reason = String::new();
        for attempt in 1..=READ_ATTEMPTS {
            match self.read_scoped(scope, &filters).await {
                Ok(Ok(scoped)) => return Ok(scoped),
                Ok(Err(why)) => {
                    tracing::info!(attempt, reason = %why, "the registry changed during the read; reading it again");
                    reason = why;
                }
                Err(error) if error.code() == Some("INVALID_PARAMETER_VALUE") => {
                    // An older or stricter server (or a proxy) that does not take the
                    // filter: read whole, and do not ask again.
                    tracing::debug!(error = %error, "the server refused a `name IN` filter; reading the whole registry instead");
                    self.filter_refused.store(true, Ordering::Relaxed);
                    return Ok(ScopedSnapshot::from_whole(self.snapshot().await?, scope));
                }
                Err(error) => return Err(error),
            }
        }
        Err(Error::Inconsistent(format!(
            "{reason} (still changing after {READ_ATTEMPTS} reads)"
        )))
    }

    async fn model(&self, name: &str) -> Result<Option<ObservedModel>> {
        let mut reason = String::new();
        for attempt in 1..=READ_ATTEMPTS {
            match self.read_model(name).await? {
                None => return Ok(None),
                Some(Ok(model)) => return Ok(Some(model)),
                Some(Err(why)) => {
                    tracing::info!(attempt, model = name, reason = %why, "the model changed during the read; reading it again");
                    reason = why;
                }
            }
        }
        Err(Error::Inconsistent(format!(
            "{reason} (still changing after {READ_ATTEMPTS} reads)"
        )))
    }

    async fn run_metrics(&self, run_id: &str) -> Result<Option<Metrics>> {
        let call = Call::get(endpoint::GET_RUN, vec![("run_id", run_id.to_owned())]);
        match self.call::<RunResponse>(&call).await {
            Ok(answer) => Ok(answer.run.map(wire::Run::latest_metrics)),
            Err(error) if is_missing(&error) => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn logged_model_metrics(&self, model_id: &str) -> Result<Option<Metrics>> {
        let mut call = Call::get(endpoint::GET_LOGGED_MODEL, Vec::new());
        call.segment = Some(model_id.to_owned());
        match self.call::<LoggedModelResponse>(&call).await {
            Ok(answer) => Ok(answer.model.map(wire::Run::latest_metrics)),
            // An MLflow 2 server has no logged models: its answer is a bare 404.
            Err(error) if is_missing(&error) || matches!(error, Error::Api { status: 404, .. }) => {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    async fn registration_source(
        &self,
        selector: &crate::manifest::Selector,
    ) -> Result<super::SourceLookup> {
        self.lookup_source(selector).await
    }

    async fn create_version(&self, name: &str, source: &super::RegistrationSource) -> Result<u64> {
        self.create_version_from(name, source).await
    }

    async fn version_status(
        &self,
        name: &str,
        version: u64,
    ) -> Result<Option<super::VersionStatus>> {
        self.status_of(name, version).await
    }

    async fn create_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        let mut body = json!({"name": name, "tags": wire::tag_list(tags)});
        if let Some(description) = description {
            body["description"] = json!(description);
        }
        let call = Call::with_body(Verb::Post, endpoint::CREATE_MODEL, body, Policy::Create);
        match self.call_counting::<Empty>(&call).await {
            (Ok(_), _) => Ok(()),
            // Retried only when the server said it did not act (408/429) or the connection
            // failed; if it exists now, an earlier attempt created it after all.
            (Err(error), attempts)
                if attempts > 1 && error.code() == Some("RESOURCE_ALREADY_EXISTS") =>
            {
                tracing::info!(model = name, "a retried create found the model created");
                Ok(())
            }
            (Err(error), _) => Err(error),
        }
    }

    async fn update_description(&self, name: &str, description: &str) -> Result<()> {
        // Always sends `description`: MLflow clears it when the field is missing.
        let call = Call::with_body(
            Verb::Patch,
            endpoint::UPDATE_MODEL,
            json!({"name": name, "description": description}),
            Policy::Safe,
        );
        self.call::<Empty>(&call).await.map(drop)
    }

    async fn set_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        let call = Call::with_body(
            Verb::Post,
            endpoint::SET_MODEL_TAG,
            json!({"name": name, "key": key, "value": value}),
            Policy::Upsert,
        );
        self.call::<Empty>(&call).await.map(drop)
    }

    async fn delete_model_tag(&self, name: &str, key: &str) -> Result<()> {
        let call = Call::with_body(
            Verb::Delete,
            endpoint::DELETE_MODEL_TAG,
            json!({"name": name, "key": key}),
            Policy::Safe,
        );
        self.call::<Empty>(&call).await.map(drop)
    }

    async fn transition(&self, name: &str, version: u64, stage: Stage) -> Result<()> {
        // Retry-safe although MLflow's Python client does not retry it: with
        // `archive_existing_versions=false` the call only sets the version's stage to a
        // target value and touches no other version, so repeating it after a lost answer
        // converges to the same state (only timestamps move).
        let call = Call::with_body(
            Verb::Post,
            endpoint::TRANSITION,
            json!({
                "name": name,
                "version": version.to_string(),
                "stage": stage.as_str(),
                "archive_existing_versions": false,
            }),
            Policy::Safe,
        );
        self.call::<Empty>(&call).await.map(drop)
    }

    async fn set_alias(&self, name: &str, alias: &str, version: u64) -> Result<()> {
        let call = Call::with_body(
            Verb::Post,
            endpoint::ALIAS,
            json!({"name": name, "alias": alias, "version": version.to_string()}),
            Policy::Upsert,
        );
        self.call::<Empty>(&call).await.map(drop)
    }

    async fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        let call = Call::with_body(
            Verb::Delete,
            endpoint::ALIAS,
            json!({"name": name, "alias": alias}),
            Policy::Safe,
        );
        self.call::<Empty>(&call).await.map(drop)
    }

    async fn set_version_tag(
        &self,
        name: &str,
        version: u64,
        key: &str,
        value: &str,
    ) -> Result<()> {
        let call = Call::with_body(
            Verb::Post,
            endpoint::SET_VERSION_TAG,
            json!({"name": name, "version": version.to_string(), "key": key, "value": value}),
            Policy::Upsert,
        );
        self.call::<Empty>(&call).await.map(drop)
    }

    async fn delete_version_tag(&self, name: &str, version: u64, key: &str) -> Result<()> {
        let call = Call::with_body(
            Verb::Delete,
            endpoint::DELETE_VERSION_TAG,
            json!({"name": name, "version": version.to_string(), "key": key}),
            Policy::Safe,
        );
        self.call::<Empty>(&call).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str, aliases: &[(&str, &str)], latest: &[&str]) -> RegisteredModel {
        let json = json!({
            "name": name,
            "aliases": aliases.iter().map(|(a, v)| json!({"alias": a, "version": v})).collect::<Vec<_>>(),
            "latest_versions": latest.iter().map(|v| json!({"name": name, "version": v})).collect::<Vec<_>>(),
        });
        serde_json::from_value(json).expect("model")
    }

    fn version(name: &str, number: &str, stage: &str) -> ModelVersion {
        serde_json::from_value(json!({"name": name, "version": number, "current_stage": stage}))
            .expect("version")
    }

    #[test]
    fn assembles_models_and_versions() {
        let snapshot = assemble(
            vec![
                model("a", &[("champion", "2")], &["2"]),
                model("b", &[], &[]),
            ],
            vec![
                version("a", "1", "Archived"),
                version("a", "2", "Production"),
            ],
        )
        .expect("decodes")
        .expect("consistent")
        .0;
        let a = &snapshot.models["a"];
        assert_eq!(a.versions[&2].stage, Stage::Production);
        assert_eq!(a.aliases["champion"], 2);
        assert!(snapshot.models["b"].versions.is_empty());
    }

    #[test]
    fn rows_read_twice_repeat_the_read_and_disagreeing_models_are_read_again() {
        let repeat = |models, versions| {
            assemble(models, versions)
                .expect("decodes")
                .expect_err("read again")
        };
        let reason = repeat(vec![model("a", &[], &[]), model("a", &[], &[])], vec![]);
        assert!(reason.contains("read twice"), "{reason}");
        let reason = repeat(
            vec![model("a", &[], &[])],
            vec![version("a", "1", "None"), version("a", "1", "None")],
        );
        assert!(
            reason.contains("version 1 of `a` was read twice"),
            "{reason}"
        );

        // Per model: an alias or latest version the version read lacks, and versions of a
        // model the model read lacks, are set aside for a read of their own; the rest of
        // the snapshot stands.
        let (snapshot, reread) = assemble(
            vec![
                model("alias", &[("x", "3")], &[]),
                model("latest", &[], &["4"]),
                model("fine", &[("y", "1")], &["1"]),
            ],
            vec![
                version("alias", "1", "None"),
                version("fine", "1", "None"),
                version("latest", "1", "None"),
                version("new", "1", "None"),
                version("new", "2", "None"),
            ],
        )
        .expect("decodes")
        .expect("no row read twice");
        assert_eq!(
            reread.into_iter().collect::<Vec<_>>(),
            ["alias", "latest", "new"]
        );
        assert_eq!(
            snapshot.models.keys().collect::<Vec<_>>(),
            ["alias", "fine", "latest"]
        );
        assert_eq!(snapshot.models["fine"].aliases["y"], 1);
    }

    #[test]
    fn garbage_from_the_server_is_a_decode_error() {
        let error = assemble(vec![], vec![version("a", "one", "None")]).expect_err("not a number");
        assert!(matches!(error, Error::Decode { .. }), "{error}");
        let error = decode::<SearchModelsResponse>("registered-models/search", b"<p>Log in</p>")
            .expect_err("not JSON");
        assert!(matches!(error, Error::Decode { .. }), "{error}");
        assert!(error.to_string().contains("starts with: Log in"), "{error}");
        let empty: SearchModelsResponse = decode("x", b" \n").expect("empty is {}");
        assert!(empty.registered_models.is_empty());
    }

    #[test]
    fn name_filters_survive_quotes() {
        assert_eq!(name_filter("bert_v2"), "name='bert_v2'");
        assert_eq!(name_filter("it's"), "name LIKE 'it_s'");
        assert_eq!(name_filter(r#"a"b\c"#), "name LIKE 'a_b_c'");
    }

    #[test]
    fn in_filters_quote_names_as_python_literals_and_stay_within_the_url_budget() {
        assert_eq!(
            in_filters(&["a".to_owned(), "b c".to_owned()]),
            ["name IN ('a','b c')"]
        );
        assert_eq!(
            in_list_literal("it's \"a\\b\\\ttab'"),
            r"'it\x27s \x22a\x5cb\x5c\x09tab\x27'"
        );
        let names: Vec<String> = (0..500)
            .map(|i| format!("model-{i:04}-{}", "x".repeat(40)))
            .collect();
        let filters = in_filters(&names);
        assert!(filters.len() > 1, "{}", filters.len());
        assert!(filters.iter().all(|f| encoded_len(f) <= FILTER_URL_BUDGET));
        let listed = filters
            .iter()
            .map(|f| f.matches("'model-").count())
            .sum::<usize>();
        assert_eq!(listed, names.len());
        // A name too long for the budget gets a filter of its own.
        let huge = "y".repeat(FILTER_URL_BUDGET * 2);
        assert_eq!(in_filters(&[huge.clone(), "z".into()]).len(), 2);
        assert!(in_filters(&[]).is_empty());
    }

    #[test]
    fn scoped_reads_are_chosen_by_cost() {
        let client = MlflowClient::from_url("http://127.0.0.1:9").expect("client");
        let scope = |n: usize| Scope::only((0..n).map(|i| i.to_string()));
        // Before the registry's size is known: by the number of chunks.
        assert!(client.scoped_is_cheaper(MAX_BLIND_CHUNKS, &scope(10)));
        assert!(!client.scoped_is_cheaper(MAX_BLIND_CHUNKS + 1, &scope(10)));
        // Then: at most half of the registry's models.
        client.registry_models.store(20, Ordering::Relaxed);
        assert!(client.scoped_is_cheaper(1, &scope(10)));
        assert!(!client.scoped_is_cheaper(1, &scope(11)));
        client.registry_models.store(100_000, Ordering::Relaxed);
        assert!(client.scoped_is_cheaper(50, &scope(5000)));
    }

    #[test]
    fn error_bodies_become_one_short_line() {
        let html = b"<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server.</p>\n";
        let error = api_error("GET", "registered-models/get", StatusCode::NOT_FOUND, html);
        let Error::Api {
            status,
            code,
            message,
            ..
        } = &error
        else {
            panic!("not an API error: {error:?}");
        };
        assert_eq!((*status, code.as_deref()), (404, None));
        assert_eq!(
            message,
            "404 Not Found Not Found The requested URL was not found on the server."
        );
        let json = br#"{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Registered Model with name=x not found"}"#;
        let error = api_error("GET", "registered-models/get", StatusCode::NOT_FOUND, json);
        assert_eq!(error.code(), Some("RESOURCE_DOES_NOT_EXIST"));
        assert!(error.is_not_found());
        let error = api_error("GET", "x", StatusCode::SERVICE_UNAVAILABLE, b"");
        assert!(
            error.to_string().ends_with("HTTP 503: Service Unavailable"),
            "{error}"
        );
        let long = "word ".repeat(100);
        let error = api_error("GET", "x", StatusCode::FORBIDDEN, long.as_bytes());
        let Error::Api { message, .. } = &error else {
            panic!("not an API error");
        };
        assert!(
            message.chars().count() <= 201 && message.ends_with('…'),
            "{message}"
        );
    }

    #[test]
    fn a_path_prefix_of_the_base_url_is_kept() {
        for (base, api) in [
            (
                "http://127.0.0.1:5000",
                "http://127.0.0.1:5000/api/2.0/mlflow/",
            ),
            ("http://h/mlflow/", "http://h/mlflow/api/2.0/mlflow/"),
            ("https://h/a/b?x=1", "https://h/a/b/api/2.0/mlflow/"),
        ] {
            let client = MlflowClient::from_url(base).expect("client");
            assert_eq!(client.api.as_str(), api);
            assert_eq!(
                client
                    .api
                    .join(endpoint::SEARCH_MODELS)
                    .expect("join")
                    .path(),
                format!("{}registered-models/search", client.api.path())
            );
        }
        assert!(matches!(
            MlflowClient::from_url("mailto:someone@example.com"),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn tls_options_build_a_client() {
        let base = url::Url::parse("https://mlflow.example").expect("URL");
        let mut insecure = RegistryConfig::new(base.clone());
        insecure.insecure_tls = true;
        MlflowClient::new(insecure).expect("insecure TLS");

        // The system bundle, when this machine has one, is a valid extra trust root.
        let system = std::path::Path::new("/etc/ssl/certs/ca-certificates.crt");
        if system.exists() {
            let mut config = RegistryConfig::new(base.clone());
            config.ca_cert_path = Some(system.to_path_buf());
            MlflowClient::new(config).expect("a PEM bundle");
        }

        let mut not_pem = RegistryConfig::new(base);
        not_pem.ca_cert_path = Some(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml").into());
        let error = MlflowClient::new(not_pem).expect_err("not a certificate");
        assert!(error.to_string().contains("no certificate"), "{error}");
    }

    #[test]
    fn a_client_certificate_file_holds_the_certificate_and_its_key() {
        let key = rcgen::KeyPair::generate().expect("key");
        let certificate = rcgen::CertificateParams::new(vec!["client".to_owned()])
            .expect("parameters")
            .self_signed(&key)
            .expect("certificate");
        let dir = tempfile::tempdir().expect("temporary directory");
        let client_with = |file: &str, pem: &str| {
            let path = dir.path().join(file);
            std::fs::write(&path, pem).expect("write");
            let mut config = RegistryConfig::new(url::Url::parse("https://h").expect("URL"));
            config.client_cert_path = Some(path);
            MlflowClient::new(config)
        };
        client_with("both.pem", &(certificate.pem() + &key.serialize_pem()))
            .expect("certificate and key");
        client_with("key-first.pem", &(key.serialize_pem() + &certificate.pem()))
            .expect("in either order");
        for (file, pem, expected) in [
            (
                "certificate.pem",
                certificate.pem(),
                "lacks the private key",
            ),
            ("key.pem", key.serialize_pem(), "lacks the certificate"),
            ("empty.pem", String::new(), "lacks both"),
            (
                "encrypted.pem",
                certificate.pem()
                    + "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
                "is encrypted",
            ),
        ] {
            let error = client_with(file, &pem).expect_err(file);
            assert!(matches!(error, Error::Config(_)), "{file}: {error}");
            let text = error.to_string();
            assert!(
                text.contains(expected)
                    && text.contains(file)
                    && text.contains("MLFLOW_TRACKING_CLIENT_CERT_PATH"),
                "{file}: {text}"
            );
        }
        let mut missing = RegistryConfig::new(url::Url::parse("https://h").expect("URL"));
        missing.client_cert_path = Some("/nonexistent/client.pem".into());
        let error = MlflowClient::new(missing).expect_err("no such file");
        assert!(
            error.to_string().contains("/nonexistent/client.pem"),
            "{error}"
        );
    }

    #[test]
    fn a_missing_ca_bundle_is_a_configuration_error() {
        let mut config = RegistryConfig::new(url::Url::parse("https://h").expect("URL"));
        config.ca_cert_path = Some("/nonexistent/ca.pem".into());
        let error = MlflowClient::new(config).expect_err("no such file");
        assert!(matches!(error, Error::Config(_)), "{error}");
        assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
    }
}
