//! The daemon's HTTP endpoints (axum, HTTP/1.1), on `--listen`:
//!
//! | path | answer |
//! |---|---|
//! | `/` | the status page: every managed model, HTML ([`super::html`]); `?q=` filters |
//! | `/models/NAME` | one model in full (NAME percent-decoded; 404 page for an unknown one) |
//! | `/assets/page.css`, `/assets/page.js` | the page's stylesheet and script |
//! | `/healthz` | 200 `ok` while the process runs (liveness) |
//! | `/readyz` | 200 `ready` when the manifests are valid and the last reconcile succeeded; else 503 and the reason (readiness) |
//! | `/metrics` | Prometheus/OpenMetrics text |
//! | `/status` | JSON: per-model sync state, pending changes, last errors ([`Status`](super::status::Status)) |
//! | `POST /hooks/mlflow` | with `--mlflow-webhook-secret-env`: an MLflow webhook delivery, verified ([`super::webhook`]); 202 at once, the reconcile runs after; 401 with no detail when refused |
//!
//! The handlers only read the shared state; none of them touches the registry, so a slow or
//! unreachable registry never makes the endpoints slow.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::status::Shared;
use super::webhook::{self, Delivery, Verifier};
use super::{html, page};

/// The largest webhook body read: MLflow's payloads are a few hundred bytes.
const MAX_WEBHOOK_BODY: usize = 64 * 1024;

/// What `POST /hooks/mlflow` needs: the verifier and where verified events go.
#[derive(Debug, Clone)]
pub struct Hooks {
    /// Checks signatures, timestamps and replays.
    pub verifier: Arc<Verifier>,
    /// The models named by verified events, for the daemon's loop.
    pub events: mpsc::Sender<String>,
}

/// The state of the routes.
#[derive(Debug, Clone)]
struct AppState {
    shared: Arc<Shared>,
    hooks: Option<Hooks>,
}

const TEXT: &str = "text/plain; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const JSON: &str = "application/json";
const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// The routes, over the shared state; `POST /hooks/mlflow` only with `hooks`.
pub fn router(shared: Arc<Shared>, hooks: Option<Hooks>) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/", get(page_index))
        .route("/models/{*name}", get(page_model))
        .route(html::CSS_PATH, get(page_css))
        .route(html::JS_PATH, get(page_js));
    if hooks.is_some() {
        router = router.route("/hooks/mlflow", post(mlflow_hook));
    }
    router
        .fallback(not_found)
        .with_state(AppState { shared, hooks })
}

/// Serves the routes on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    hooks: Option<Hooks>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(shared, hooks))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
}

async fn healthz() -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, TEXT)], "ok\n").into_response()
}

async fn readyz(State(AppState { shared, .. }): State<AppState>) -> Response {
    match shared.readiness() {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, TEXT)],
            "ready\n".to_owned(),
        ),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, TEXT)],
            format!("not ready: {reason}\n"),
        ),
    }
    .into_response()
}

async fn metrics(State(AppState { shared, .. }): State<AppState>) -> Response {
    match shared.metrics.encode() {
        Ok(text) => (StatusCode::OK, [(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Err(error) => internal_error(&error),
    }
}

async fn status(State(AppState { shared, .. }): State<AppState>) -> Response {
    match serde_json::to_string_pretty(&shared.snapshot()) {
        Ok(mut json) => {
            json.push('\n');
            (StatusCode::OK, [(header::CONTENT_TYPE, JSON)], json).into_response()
        }
        Err(error) => internal_error(&error),
    }
}

/// The headers of the page and its assets: the content type, a Content-Security-Policy
/// allowing only same-origin script and style files, no sniffing, no framing, no caching.
fn page_headers(content_type: &'static str) -> [(header::HeaderName, &'static str); 6] {
    [
        (header::CONTENT_TYPE, content_type),
        (
            header::CONTENT_SECURITY_POLICY,
            html::CONTENT_SECURITY_POLICY,
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ]
}

async fn page_index(
    State(AppState { shared, .. }): State<AppState>,
    RawQuery(query): RawQuery,
) -> Response {
    let filter = query
        .as_deref()
        .and_then(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == "q")
                .map(|(_, value)| value.into_owned())
        })
        .unwrap_or_default();
    let view = html::View { filter };
    let body = html::index(&page::settled(shared.snapshot()), &view);
    (StatusCode::OK, page_headers(HTML), body).into_response()
}

async fn page_model(
    State(AppState { shared, .. }): State<AppState>,
    Path(name): Path<String>,
) -> Response {
    let status = page::settled(shared.snapshot());
    match html::model(&status, &name) {
        Some(body) => (StatusCode::OK, page_headers(HTML), body).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            page_headers(HTML),
            html::not_found(&status, &name),
        )
            .into_response(),
    }
}

async fn page_css() -> Response {
    (StatusCode::OK, page_headers(CSS), html::CSS).into_response()
}

async fn page_js() -> Response {
    (StatusCode::OK, page_headers(JAVASCRIPT), html::JS).into_response()
}

/// An MLflow webhook delivery: verified before its body is read, answered at once; the
/// model it names (if any) is queued for the daemon's loop, which reads the registry itself.
async fn mlflow_hook(
    State(AppState { shared, hooks }): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(hooks) = hooks else {
        return not_found().await;
    };
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default();
    let delivery = Delivery {
        id: header(webhook::DELIVERY_ID_HEADER),
        timestamp: header(webhook::TIMESTAMP_HEADER),
        signature: header(webhook::SIGNATURE_HEADER),
        body: &body,
    };
    let verdict = if body.len() > MAX_WEBHOOK_BODY {
        Err(webhook::Refusal::BadSignature)
    } else {
        hooks.verifier.verify(&delivery, now)
    };
    if let Err(refusal) = verdict {
        shared.metrics.webhook_refused(refusal.as_str());
        tracing::warn!(reason = refusal.as_str(), "refused a webhook delivery");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, TEXT)],
            "unauthorized\n",
        )
            .into_response();
    }
    shared.metrics.webhook_received();
    if let Some(model) = webhook::model_of(&body)
        && hooks.events.try_send(model).is_err()
    {
        // A full queue already holds reconciles to run; the resync catches the rest.
        shared.metrics.webhook_dropped();
    }
    (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, TEXT)],
        "accepted\n",
    )
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, TEXT)],
        "not found; try / (the status page), /healthz, /readyz, /metrics or /status\n",
    )
        .into_response()
}

fn internal_error(error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "cannot render an endpoint");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, TEXT)],
        format!("internal error: {error}\n"),
    )
        .into_response()
}
