//! What every request handler and connection shares: [`AppState`], handles only (cheap to
//! clone), built once by `Server::start`.
//!
//! Owns no behaviour: each field's module says what it does.

use crate::auth::HashPool;
use crate::bus::Bus;
use crate::commit::Committer;
use crate::config::Config;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::{limits, listen, presence};
use leptos::prelude::LeptosOptions;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Everything a request handler may need. Cheap to clone (handles only).
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub hub: Arc<Hub>,
    pub committer: Committer,
    pub bus: Bus,
    pub presence: Arc<presence::Presence>,
    /// This node's name (logs, health, the bus).
    pub node_id: Arc<str>,
    /// Where argon2 runs: a few threads behind a bounded queue.
    pub hashes: HashPool,
    /// Rate limits (sends, connects, sign-ups, logins, bad frames).
    pub limits: Arc<limits::Limits>,
    /// The Prometheus registry and every metric (`/metrics`).
    pub metrics: Arc<Metrics>,
    /// What is still open (connections, WebSocket tasks): shutdown waits for it.
    pub open: listen::Tracker,
    /// Cancelled when the server shuts down; open WebSockets close with 1001 "going away".
    pub shutdown: CancellationToken,
    pub leptos_options: LeptosOptions,
}

impl axum::extract::FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
