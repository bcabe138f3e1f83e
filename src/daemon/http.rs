//! The daemon's HTTP endpoints (axum, HTTP/1.1), on `--listen`:
//!
//! | path | answer |
//! |---|---|
//! | `/healthz` | 200 `ok` while the process runs (liveness) |
//! | `/readyz` | 200 `ready` when the manifests are valid and the last reconcile succeeded; else 503 and the reason (readiness) |
//! | `/metrics` | Prometheus/OpenMetrics text |
//! | `/status` | JSON: per-model sync state, pending changes, last errors ([`Status`](super::status::Status)) |
//!
//! The handlers only read the shared state; none of them touches the registry, so a slow or
//! unreachable registry never makes the endpoints slow.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::status::Shared;

const TEXT: &str = "text/plain; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const JSON: &str = "application/json";

/// The routes, over the shared state.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .fallback(not_found)
        .with_state(shared)
}

/// Serves the routes on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
}

async fn healthz() -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, TEXT)], "ok\n").into_response()
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
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

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    match shared.metrics.encode() {
        Ok(text) => (StatusCode::OK, [(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Err(error) => internal_error(&error),
    }
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    match serde_json::to_string_pretty(&shared.snapshot()) {
        Ok(mut json) => {
            json.push('\n');
            (StatusCode::OK, [(header::CONTENT_TYPE, JSON)], json).into_response()
        }
        Err(error) => internal_error(&error),
    }
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, TEXT)],
        "not found; try /healthz, /readyz, /metrics or /status\n",
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
