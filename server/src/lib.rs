//! The Tidings server as a library: `main.rs` and the integration tests both start it through
//! [`Server::start`]. Read the modules in the order a message travels:
//!
//! - [`config`]  flags and environment
//! - [`state`]   what every handler shares ([`AppState`])
//! - [`ws`]      one WebSocket connection: reads frames, writes frames, heartbeat, replay
//! - [`commit`]  the write path: group commit, then hand over to fan-out
//! - [`fanout`]  acks and fan-out of committed messages, parallel across conversations
//! - [`store`]   SQLite: users, sessions, conversations, members, messages (the source of truth)
//! - [`hub`]     this node's connections and the fan-out to them
//! - [`bus`]     the other nodes: Redis pub/sub in a cluster, nothing on a single node
//! - [`presence`] who is online anywhere in the cluster
//! - [`backend`] the HTTP API's server side (server functions live in `app::api`)
//! - [`attachments`] uploads and downloads of files (and [`sniff`]: what their bytes are)
//! - [`auth`]    password hashes, session tokens, login limits
//! - [`limits`]  rate limits per user, connection and address
//! - [`listen`]  the front door: accepting, connection cap, header timeout, what is still open
//! - [`http`]    health, readiness and the `/metrics` endpoint
//! - [`metrics`] the Prometheus registry: every metric, recorded into by the modules above
//! - [`protect`] cross-site refusal and the security headers (CSP with the page's nonce)
//! - [`site`]    the static site: embedded in the binary, or a folder
//! - [`lockout`] closes the connections of accounts an operator disabled
//! - [`relay`]   the integration event stream: outbox to Redis Stream
//! - [`stream`]  reading Redis Stream replies
//! - [`api_v1`]  the bot API (`/api/v1`: bearer tokens, events, messages)
//! - [`cli`]     the `tidings` command line: `serve` and the admin commands

// The app's views are deeply nested types; rendering them here needs more than the default 128.
#![recursion_limit = "256"]

pub mod api_v1;
pub mod attachments;
pub mod auth;
pub mod backend;
pub mod bus;
pub mod cli;
pub mod commit;
pub mod config;
pub mod fanout;
pub mod http;
pub mod hub;
pub mod limits;
pub mod listen;
pub mod lockout;
pub mod metrics;
pub mod presence;
pub mod protect;
pub mod relay;
pub mod site;
pub mod sniff;
pub mod state;
pub mod store;
pub mod stream;

pub use state::AppState;
pub mod ws;

use crate::auth::HashPool;
use crate::bus::{Bus, RedisBus};
use crate::commit::Committer;
use crate::config::Config;
use crate::fanout::Fanout;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::store::Store;
use anyhow::Context;
use app::api::ssr::SharedBackend;
use axum::routing::{get, post};
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running server: its address, and the means to stop it.
pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Opens the database, starts the committer and binds the listener. Returns once the server
    /// accepts connections (port 0 picks a free port; see `addr`).
    pub async fn start(mut config: Config) -> anyhow::Result<Server> {
        // One committed batch can put an ack and an echo per message into a sender's queue at
        // once; a queue smaller than that would cut off fast senders as slow consumers.
        let min_queue = 2 * config.max_batch.max(1) + 16;
        if config.outbound_queue < min_queue {
            tracing::warn!(
                outbound_queue = config.outbound_queue,
                max_batch = config.max_batch,
                "the outbound queue must hold two frames per batched message; raising it to {min_queue}"
            );
            config.outbound_queue = min_queue;
        }
        let leptos_options = leptos_options(&config);
        let addr = leptos_options.site_addr;
        let store = Store::connect_with(&config.database_url, config.durability)
            .await
            .with_context(|| format!("opening the database at {}", config.database_url))?;
        let node_id: Arc<str> = config
            .node_id
            .clone()
            .unwrap_or_else(|| format!("node-{:08x}", rand::random::<u32>()))
            .into();
        let presence = Arc::new(presence::Presence::new(
            &node_id,
            Duration::from_secs_f64(config.presence_ttl_secs.max(0.3)),
        ));
        let metrics = Arc::new(Metrics::new());
        let (hub, bus) = match &config.redis_url {
            None => {
                let hub = Arc::new(Hub::with(metrics.clone(), None));
                (hub.clone(), Bus::Local(hub))
            }
            Some(url) => {
                let (signals, changes) = tokio::sync::mpsc::unbounded_channel();
                let hub = Arc::new(Hub::with(metrics.clone(), Some(signals.clone())));
                let bus = RedisBus::connect(
                    url,
                    &config.redis_prefix,
                    &node_id,
                    hub.clone(),
                    presence.clone(),
                    metrics.clone(),
                    (signals, changes),
                )
                .await
                .with_context(|| {
                    format!("connecting to Redis at {url} (is it running? check REDIS_URL)")
                })?;
                (hub, Bus::Redis(bus))
            }
        };
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let fanout = Fanout::spawn(bus.clone(), cores);
        let default_delay_us = if store.syncs_every_commit() { 1000 } else { 0 };
        let batching = commit::Batching {
            max_batch: config.max_batch,
            delay: Duration::from_micros(config.commit_delay_us.unwrap_or(default_delay_us)),
        };
        let committer = Committer::spawn(store.clone(), fanout, batching, metrics.clone());
        if let Bus::Redis(_) = &bus {
            tokio::spawn(presence_heartbeat(
                presence.clone(),
                hub.clone(),
                bus.clone(),
                store.clone(),
            ));
        }
        let limits = Arc::new(limits::Limits::new(&config, metrics.clone()));
        tokio::spawn({
            let limits = Arc::downgrade(&limits);
            async move {
                let mut every = tokio::time::interval(Duration::from_secs(60));
                loop {
                    every.tick().await;
                    match limits.upgrade() {
                        Some(limits) => limits.housekeeping(),
                        None => return,
                    }
                }
            }
        });
        // Expired sessions no longer authenticate; this only keeps the table from growing.
        tokio::spawn({
            let store = store.clone();
            async move {
                let mut every = tokio::time::interval(Duration::from_secs(3600));
                loop {
                    every.tick().await;
                    match store.delete_expired_sessions().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(sessions = n, "deleted expired sessions"),
                        Err(e) => tracing::warn!(error = %e, "deleting expired sessions failed"),
                    }
                }
            }
        });
        tokio::spawn(attachments::sweep(store.clone()));
        let state = AppState {
            limits,
            open: listen::Tracker::default(),
            hashes: HashPool::new(config.hash_threads(), config.hash_queue),
            metrics,
            config: Arc::new(config),
            store,
            hub,
            committer,
            bus,
            presence,
            node_id,
            shutdown: CancellationToken::new(),
            leptos_options,
        };
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("listening on {addr} (is another server running there? set --addr)")
        })?;
        let addr = listener.local_addr()?;
        tokio::spawn(lockout::run(
            state.store.clone(),
            state.hub.clone(),
            state.shutdown.clone(),
        ));
        tokio::spawn(relay::run(
            state.store.clone(),
            relay::RelayConfig {
                redis_url: state.config.redis_url.clone(),
                prefix: state.config.redis_prefix.clone(),
                node_id: state.node_id.to_string(),
                maxlen: state.config.events_maxlen,
                interval: Duration::from_millis(state.config.relay_interval_ms.max(1)),
            },
            state.shutdown.clone(),
        ));
        let router = router(state.clone());
        let door = listen::Door {
            max_connections: state.config.max_connections,
            header_timeout: state.config.header_timeout(),
            metrics: state.metrics.clone(),
        };
        let task = tokio::spawn(run(state.clone(), listener, router, door));
        tracing::info!(
            %addr,
            site = match site::Source::for_config(&state.config) {
                site::Source::Embedded => "embedded",
                site::Source::Disk => &*state.leptos_options.site_root,
            },
            node = %state.node_id,
            database = %state.config.database_url,
            redis = state.config.redis_url.as_deref().unwrap_or("none"),
            "tidings is listening on http://{addr}"
        );
        Ok(Server { addr, state, task })
    }

    /// Stops accepting, closes every WebSocket with 1001, and waits for them and for the commits
    /// under way (see [`run`]).
    pub async fn stop(self) {
        self.state.shutdown.cancel();
        let _ = self.task.await;
    }

    /// Runs until the HTTP server fails or `stop` is requested elsewhere.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await??;
        Ok(())
    }
}

/// In a cluster: repeats this node's list of users every presence heartbeat, and tells local
/// clients about users whose node stopped vouching for them (it died). Presence keeps the table
/// and says what to tell; the bus carries it; the store knows where the departed were.
async fn presence_heartbeat(
    presence: Arc<presence::Presence>,
    hub: Arc<Hub>,
    bus: Bus,
    store: Store,
) {
    let mut tick = tokio::time::interval(presence.heartbeat() / 2);
    let mut beat = false;
    loop {
        tick.tick().await;
        beat = !beat;
        if beat {
            bus.presence(presence.full_list(hub.local_users()));
        }
        for user in presence.sweep(&hub) {
            // Only this node's clients need telling here: every node sweeps for its own.
            let frame = app::protocol::ServerFrame::Presence {
                user,
                online: false,
            };
            match store.conversation_ids(user).await {
                Ok(convs) => {
                    let payload = frame.to_json();
                    for conv in convs {
                        hub.publish_payload(conv, payload.as_str().into(), hub::Skip::User(user));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not look up a departed user's conversations")
                }
            }
        }
    }
}

/// How long shutdown waits for connections to close and commits to finish before it gives up.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves until shutdown, then ends in order: stop accepting; WebSockets close with 1001 and
/// HTTP connections finish their request (the tracker counts both); the committer writes what
/// was already handed to it. Whatever was acked was committed before its ack, so the order only
/// decides what else gets stored and who hears a proper close instead of a reset.
async fn run(
    state: AppState,
    listener: tokio::net::TcpListener,
    router: Router,
    door: listen::Door,
) -> std::io::Result<()> {
    listen::serve(
        listener,
        router,
        door,
        state.open.clone(),
        state.shutdown.clone(),
    )
    .await;
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    if tokio::time::timeout_at(deadline, state.open.all_closed())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; stopping anyway");
    }
    while !state.committer.is_idle() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// The whole HTTP surface: WebSocket, operator endpoints, server functions, pages, static files.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(app::App);
    let backend: SharedBackend = Arc::new(state.clone());
    let options = state.leptos_options.clone();
    Router::new()
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(http::healthz))
        .route("/readyz", get(http::readyz))
        .route("/metrics", get(http::metrics))
        .route("/api/attachments", post(attachments::upload))
        .route("/api/attachments/{id}", get(attachments::download))
        .merge(api_v1::routes())
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                provide_context(backend.clone());
                protect::provide_page_policy();
            },
            move || app::shell(options.clone()),
        )
        .fallback(site::fallback)
        .layer(axum::middleware::from_fn(http::api_error_status))
        .layer(axum::middleware::from_fn_with_state(
            Arc::<[String]>::from(state.config.allowed_origins.clone()),
            protect::refuse_cross_site,
        ))
        .layer(axum::middleware::from_fn(protect::security_headers))
        .layer(axum::middleware::from_fn_with_state(
            Arc::<[std::net::IpAddr]>::from(state.config.trusted_proxies.clone()),
            listen::client_addr,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Leptos' settings: from cargo-leptos' environment when it runs us, otherwise our defaults.
/// `--addr` and `--site-root` win over both.
fn leptos_options(config: &Config) -> LeptosOptions {
    // get_configuration(None) reads what cargo-leptos sets at build or run time, and complains
    // loudly without it, so only ask when it is there.
    let from_cargo_leptos = option_env!("LEPTOS_OUTPUT_NAME").is_some()
        || std::env::var_os("LEPTOS_OUTPUT_NAME").is_some();
    let mut options = from_cargo_leptos
        .then(|| get_configuration(None).ok())
        .flatten()
        .map(|c| c.leptos_options)
        .unwrap_or_else(|| {
            LeptosOptions::builder()
                .output_name("tidings")
                .site_root(
                    std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".into()),
                )
                .site_pkg_dir("pkg")
                .site_addr(
                    std::env::var("LEPTOS_SITE_ADDR")
                        .ok()
                        .and_then(|a| a.parse().ok())
                        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3000))),
                )
                .build()
        });
    if let Some(addr) = config.addr {
        options.site_addr = addr;
    }
    if let Some(root) = &config.site_root {
        options.site_root = root.as_str().into();
    }
    options
}
