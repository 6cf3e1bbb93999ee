//! The relay: moves the outbox's events into the Redis Stream `<prefix>:events`, where
//! consumer groups read them (`tidings events tail`, or any Redis client).
//!
//! Every `--relay-interval-ms` it (1) makes sure it is the cluster's one relay — a Redis lock
//! `<prefix>:events:relay` with a 5 s expiry, renewed each round, so when its node dies another
//! takes over within seconds; (2) on MySQL numbers the newly committed outbox rows (see
//! `store::outbox`); (3) appends the events after `outbox_state.relayed_pos` with `XADD …
//! MAXLEN ~ <max> <pos>-0`, and records how far it got.
//!
//! Nothing is lost by a crash anywhere: the outbox is written with the change, and a relay that
//! dies between `XADD` and recording its progress simply starts again from the stream's newest
//! entry. Nothing is doubled either, even if two relays overlap (a stalled holder whose lock
//! expired): each event is added under its own position as the entry id, and Redis refuses an
//! id not above the stream's newest. A stream that lost entries (Redis restarted without its
//! data) is noticed — its newest entry is below `relayed_pos` — and refilled from the outbox,
//! up to MAXLEN events back.
//!
//! Owns its Redis connection and the relay lock; reads and marks the outbox through the store.

use crate::store::Store;
use redis::aio::ConnectionManager;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Events read and appended per round trip.
const BATCH: u32 = 500;
/// How long the relay lock holds without renewal.
const LOCK_TTL: Duration = Duration::from_secs(5);

/// Takes the lock if it is free, renews it if it is ours: 1 when we hold it, else 0.
const LOCK_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
       redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end \
     if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end \
     return 0";

/// Where the relay appends, and how.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Redis, when there is one; without it the outbox alone is the stream (MySQL still needs
    /// its rows numbered).
    pub redis_url: Option<String>,
    pub prefix: String,
    /// This node's name: the lock's value.
    pub node_id: String,
    /// `MAXLEN ~` of the stream.
    pub maxlen: u64,
    pub interval: Duration,
}

impl RelayConfig {
    /// The stream's key.
    pub fn stream(&self) -> String {
        stream_key(&self.prefix)
    }
}

/// The Redis Stream of a deployment whose keys start with `prefix`.
pub fn stream_key(prefix: &str) -> String {
    format!("{prefix}:events")
}

/// Runs until `shutdown`. Does nothing on SQLite without Redis (the outbox is the stream).
pub async fn run(store: Store, config: RelayConfig, shutdown: CancellationToken) {
    let sequencing = store.dialect() == crate::store::Dialect::MySql;
    if config.redis_url.is_none() && !sequencing {
        return;
    }
    let client = match config
        .redis_url
        .as_deref()
        .map(redis::Client::open)
        .transpose()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "the event relay cannot use REDIS_URL; events stay in the outbox");
            return;
        }
    };
    let mut conn: Option<ConnectionManager> = None;
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        // Drain while there is a backlog (a full batch), then wait for the next tick.
        loop {
            let round = round(&store, &config, client.as_ref(), &mut conn).await;
            match round {
                Ok(moved) => {
                    if failing {
                        tracing::info!("the event relay works again");
                        failing = false;
                    }
                    if moved < BATCH as usize || shutdown.is_cancelled() {
                        break;
                    }
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "the event relay failed; events wait in the outbox and are retried");
                        failing = true;
                    }
                    break;
                }
            }
        }
    }
}

/// One round: lock, number, append. Returns how many events it numbered or appended.
async fn round(
    store: &Store,
    config: &RelayConfig,
    client: Option<&redis::Client>,
    conn: &mut Option<ConnectionManager>,
) -> anyhow::Result<usize> {
    let Some(client) = client else {
        return Ok(store.sequence_outbox(BATCH).await?);
    };
    if conn.is_none() {
        let settings = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(1);
        *conn = Some(ConnectionManager::new_with_config(client.clone(), settings).await?);
    }
    let redis = conn.as_mut().expect("connected above");
    let held: i64 = redis::cmd("EVAL")
        .arg(LOCK_SCRIPT)
        .arg(1)
        .arg(format!("{}:relay", config.stream()))
        .arg(&config.node_id)
        .arg(LOCK_TTL.as_millis() as u64)
        .query_async(redis)
        .await?;
    if held != 1 {
        return Ok(0);
    }
    let numbered = store.sequence_outbox(BATCH).await?;
    let appended = append(store, config, redis).await?;
    Ok(numbered.max(appended))
}

/// Appends the next events after what the stream holds; returns how many.
async fn append(
    store: &Store,
    config: &RelayConfig,
    redis: &mut ConnectionManager,
) -> anyhow::Result<usize> {
    let stream = config.stream();
    let relayed = store.relayed_pos().await?;
    let top = newest_entry(redis, &stream).await?;
    let from = if top > relayed {
        // An earlier round appended these but did not get to record it.
        store.set_relayed_pos(top, false).await?;
        top
    } else if top < relayed {
        let back = top.max(relayed - config.maxlen.min(i64::MAX as u64) as i64);
        tracing::warn!(
            stream = %stream,
            newest = top,
            relayed,
            "the event stream lost entries (Redis restarted without its data?); appending them again from the outbox after {back}"
        );
        store.set_relayed_pos(back, true).await?;
        back
    } else {
        relayed
    };
    let page = store.events_after(from, BATCH, None).await?;
    if page.events.is_empty() {
        if page.next > from {
            store.set_relayed_pos(page.next, false).await?;
        }
        return Ok(0);
    }
    let mut pipe = redis::pipe();
    for event in &page.events {
        pipe.cmd("XADD")
            .arg(&stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(config.maxlen)
            .arg(format!("{}-0", event.id))
            .arg("event")
            .arg(serde_json::to_string(event)?)
            .ignore();
    }
    if let Err(e) = pipe.query_async::<()>(redis).await {
        if e.to_string().contains("equal or smaller") {
            // Another relay appended some of these first: the next round starts after its.
            return Ok(0);
        }
        return Err(e.into());
    }
    store.set_relayed_pos(page.next, false).await?;
    Ok(page.events.len())
}

/// The position of the stream's newest entry (0 if it is empty or missing).
pub async fn newest_entry(redis: &mut ConnectionManager, stream: &str) -> anyhow::Result<i64> {
    let newest: redis::Value = redis::cmd("XREVRANGE")
        .arg(stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(redis)
        .await?;
    Ok(crate::stream::entries(&newest)
        .first()
        .and_then(|(id, _)| position(id))
        .unwrap_or(0))
}

/// The event position of a stream entry id `<pos>-0`.
pub fn position(entry_id: &str) -> Option<i64> {
    entry_id.split('-').next()?.parse().ok()
}
