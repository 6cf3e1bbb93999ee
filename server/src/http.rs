//! Operator endpoints: `/healthz` (is this process alive, and a report), `/readyz` (can it
//! serve: database and, in a cluster, Redis reachable) and `/metrics` (Prometheus text format,
//! encoded by the `metrics` module). Read-only: nothing here counts or formats a metric.

use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// How long a readiness check waits for the database.
const DB_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

async fn database_ok(state: &AppState) -> bool {
    matches!(
        tokio::time::timeout(DB_CHECK, state.store.ping()).await,
        Ok(Ok(()))
    )
}

/// `GET /readyz`: 200 `{"ready":true,…}` when the database answers (within 2 s) and, in a
/// cluster, the Redis subscription is up; 503 with `"ready":false` otherwise. For load balancers:
/// send traffic only to ready nodes.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let db_ok = database_ok(&state).await;
    let redis = state.bus.redis_state();
    let ready = db_ok && redis != "down";
    let body = serde_json::json!({
        "ready": ready,
        "database": if db_ok { "ok" } else { "down" },
        "redis": redis,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `GET /healthz`: the process is alive: always 200, with a JSON report (whether it can serve
/// is `/readyz`'s question).
pub async fn healthz(State(state): State<AppState>) -> Response {
    let db_ok = database_ok(&state).await;
    let (connections, users) = state.hub.counts();
    let body = serde_json::json!({
        "status": if db_ok { "ok" } else { "degraded" },
        "database": if db_ok { "ok" } else { "down" },
        "version": env!("CARGO_PKG_VERSION"),
        "node": &*state.node_id,
        "redis": state.bus.redis_state(),
        "durability": state.store.durability().map_or("database", |d| d.as_str()),
        "connections": connections,
        "users_online": users,
    });
    (StatusCode::OK, Json(body)).into_response()
}

/// `GET /metrics`: every metric in Prometheus' text format (see `metrics`); what is open now
/// is read from the hub at scrape time.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let (connections, users_online) = state.hub.counts();
    let text = state.metrics.render(crate::metrics::Now {
        connections,
        users_online,
    });
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
}

/// Server-function errors answer with the status their code names (`invalid` → 400, …).
///
/// A server function's own errors get their status from `app::api::ssr::respond`, but an
/// argument that is missing or malformed (`limit=abc`, no `conv`) fails while the arguments are
/// decoded, before the function runs, and server_fn answers every such error with 500. The
/// JSON body still carries the right code, so this reads the code back from error replies (only
/// those: small, and never on a success) and sets the matching status.
pub async fn api_error_status(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
    };
    if let Ok(error) = serde_json::from_slice::<app::api::ApiError>(&bytes) {
        parts.status = error.status();
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}
