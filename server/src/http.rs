//! Operator endpoints: `/healthz` (is this process alive, and a report), `/readyz` (can it
//! serve: database and, in a cluster, Redis reachable) and `/metrics` (Prometheus text format).
//! Read-only views of the other modules' counters.

use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::atomic::Ordering;

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

/// `GET /metrics`: counters and gauges in Prometheus' text exposition format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let (connections, users) = state.hub.counts();
    let hub = &state.hub.stats;
    let commit = &state.committer.stats;
    let rows: [(&str, &str, &str, u64); 9] = [
        (
            "tidings_connections",
            "gauge",
            "Open WebSocket connections",
            connections as u64,
        ),
        (
            "tidings_users_online",
            "gauge",
            "Users with at least one connection",
            users as u64,
        ),
        (
            "tidings_connections_opened_total",
            "counter",
            "WebSocket connections accepted",
            hub.connections_opened.load(Ordering::Relaxed),
        ),
        (
            "tidings_frames_queued_total",
            "counter",
            "Frames queued to connections",
            hub.frames_queued.load(Ordering::Relaxed),
        ),
        (
            "tidings_slow_consumers_total",
            "counter",
            "Connections closed for not keeping up",
            hub.slow_consumers.load(Ordering::Relaxed),
        ),
        (
            "tidings_messages_stored_total",
            "counter",
            "Messages committed",
            commit.stored.load(Ordering::Relaxed),
        ),
        (
            "tidings_duplicate_sends_total",
            "counter",
            "Re-sent messages answered with the original ack",
            commit.duplicates.load(Ordering::Relaxed),
        ),
        (
            "tidings_commit_batches_total",
            "counter",
            "Transactions written by the committer",
            commit.batches.load(Ordering::Relaxed),
        ),
        (
            "tidings_commit_failures_total",
            "counter",
            "Batches that failed to commit",
            commit.failed_batches.load(Ordering::Relaxed),
        ),
    ];
    let refusals = &state.limits.refusals;
    let refused: [(&str, &std::sync::atomic::AtomicU64); 6] = [
        ("send", &refusals.sends),
        ("connect", &refusals.connects),
        ("connections_per_user", &refusals.connections_per_user),
        ("connections_per_node", &refusals.connections_per_node),
        ("registration", &refusals.registrations),
        ("bad_frames_close", &refusals.bad_frame_closes),
    ];
    let mut out = String::with_capacity(2048);
    out.push_str(
        "# HELP tidings_rate_limited_total Requests refused by a limit, by limit\n\
         # TYPE tidings_rate_limited_total counter\n",
    );
    for (limit, count) in refused {
        out.push_str(&format!(
            "tidings_rate_limited_total{{limit=\"{limit}\"}} {}\n",
            count.load(Ordering::Relaxed)
        ));
    }
    for (name, kind, help, value) in rows {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
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
