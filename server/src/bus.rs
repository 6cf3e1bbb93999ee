//! The bus: how what one node commits reaches the other nodes' connections.
//!
//! A single node has nothing to carry: frames go straight to its hub (`Bus::Local`). In a
//! cluster (`REDIS_URL` set) every frame is still delivered to the local hub first, and also
//! published on Redis — serialized once, on a channel per conversation (`<prefix>:conv:<id>`) or
//! per user (`<prefix>:user:<id>`, for membership changes). Each node subscribes to exactly the
//! channels of the conversations and users it has connections for; the hub tells it which.
//!
//! Redis pub/sub is only the fast path: a node that loses Redis keeps storing and delivering
//! locally, reconnects with backoff, and then closes its connections with 4003 "resync" so that
//! every client catches up from the database. Owns the Redis connections; never touches the store.

pub use crate::hub::Sessions;
use crate::hub::{Hub, Skip, SubChange, Topic};
use crate::metrics::Metrics;
use crate::presence::{Announcement, Presence, PresenceNote};
use app::model::{ConvId, UserId};
use app::protocol::ServerFrame;
use axum::extract::ws::Utf8Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// A membership change for one user, carried on their user channel.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserNote {
    /// Conversation the user now belongs to (`Some(true)`), left (`Some(false)`), or neither.
    pub membership: Option<(ConvId, bool)>,
    /// The frames to show their connections.
    pub frames: Vec<ServerFrame>,
}

/// Ends sessions' connections on every node: carried on the user's channel beside `UserNote`s.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndSessions {
    pub end_sessions: Sessions,
}

#[derive(Clone)]
pub enum Bus {
    Local(Arc<Hub>),
    Redis(Arc<RedisBus>),
}

pub struct RedisBus {
    hub: Arc<Hub>,
    presence: Arc<Presence>,
    node_id: String,
    prefix: String,
    /// Frames waiting for the publisher task. Bounded: if Redis stalls, frames are dropped
    /// rather than stalling the committer (remote clients recover them by sync).
    outbound: mpsc::Sender<(String, String)>,
    subs: mpsc::UnboundedSender<SubChange>,
    /// Whether the subscriber is connected (for /healthz).
    pub up: AtomicBool,
    /// Where reconnects are counted.
    metrics: Arc<Metrics>,
}

impl Bus {
    /// Delivers `frame` to every member of `conv`, on every node. Never waits.
    pub fn publish(&self, conv: ConvId, frame: &ServerFrame) {
        self.publish_skipping(conv, frame, Skip::Nobody);
    }

    /// The same, leaving out `skip` (a user everywhere, or one connection of this node).
    pub fn publish_skipping(&self, conv: ConvId, frame: &ServerFrame, skip: Skip) {
        let payload = frame.to_json();
        match self {
            Bus::Local(hub) => hub.publish_payload(conv, payload.into(), skip),
            Bus::Redis(bus) => {
                bus.hub
                    .publish_payload(conv, Utf8Bytes::from(payload.as_str()), skip);
                // A skipped connection lives on this node only; other nodes deliver to all.
                let except = match skip {
                    Skip::User(user) => user.0,
                    Skip::Nobody | Skip::Conn(_) => 0,
                };
                bus.send(Topic::Conv(conv), &format!("{except} {payload}"));
            }
        }
    }

    /// Applies a membership change for `user` and shows them `note.frame`, on every node.
    pub fn to_user(&self, user: UserId, note: UserNote) {
        let hub = match self {
            Bus::Local(hub) => hub,
            Bus::Redis(bus) => &bus.hub,
        };
        apply(hub, user, &note);
        if let Bus::Redis(bus) = self {
            let payload = serde_json::to_string(&note).expect("notes serialize");
            bus.send(Topic::User(user), &payload);
        }
    }

    /// Closes the connections of `user`'s ended `sessions` with "logged out", on every node.
    pub fn end_sessions(&self, user: UserId, sessions: Sessions) {
        let hub = match self {
            Bus::Local(hub) => hub,
            Bus::Redis(bus) => &bus.hub,
        };
        hub.end_sessions(user, sessions);
        if let Bus::Redis(bus) = self {
            let note = EndSessions {
                end_sessions: sessions,
            };
            let payload = serde_json::to_string(&note).expect("notes serialize");
            bus.send(Topic::User(user), &payload);
        }
    }

    /// Publishes what presence asked to announce: its note to the other nodes, and its frame
    /// to the people in its conversations (on every node, never to the user themself).
    pub fn announce(&self, announcement: Announcement) {
        let frame = announcement.frame();
        for conv in &announcement.convs {
            self.publish_skipping(*conv, &frame, Skip::User(announcement.user));
        }
        self.presence(announcement.note);
    }

    /// Tells the other nodes about this node's users (nothing to tell on a single node).
    pub fn presence(&self, note: PresenceNote) {
        if let Bus::Redis(bus) = self {
            let payload = serde_json::to_string(&note).expect("notes serialize");
            bus.send(Topic::Presence, &payload);
        }
    }

    pub fn node_id(&self) -> &str {
        match self {
            Bus::Local(_) => "single",
            Bus::Redis(bus) => &bus.node_id,
        }
    }

    /// Waits until the subscriptions requested so far are active, so that a reader of the
    /// database after this point cannot miss a frame published meanwhile.
    pub async fn settled(&self) {
        if let Bus::Redis(bus) = self {
            let (tx, rx) = oneshot::channel();
            if bus.subs.send(SubChange::Barrier(tx)).is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
            }
        }
    }

    /// "ok", "down" or "none" (single node), for /healthz.
    pub fn redis_state(&self) -> &'static str {
        match self {
            Bus::Local(_) => "none",
            Bus::Redis(bus) if bus.up.load(Ordering::Relaxed) => "ok",
            Bus::Redis(_) => "down",
        }
    }
}

fn apply(hub: &Hub, user: UserId, note: &UserNote) {
    match note.membership {
        Some((conv, true)) => hub.join(conv, user),
        Some((conv, false)) => hub.leave(conv, user),
        None => {}
    }
    for frame in &note.frames {
        hub.send_to_user(user, frame);
    }
}

impl RedisBus {
    /// Connects to Redis and starts the publisher and the subscriber. `signals` is the channel
    /// the hub reports on: its sending end (`subs`, for barriers) and its receiving end
    /// (`changes`, for the subscriber).
    pub async fn connect(
        url: &str,
        prefix: &str,
        node_id: &str,
        hub: Arc<Hub>,
        presence: Arc<Presence>,
        metrics: Arc<Metrics>,
        signals: (
            mpsc::UnboundedSender<SubChange>,
            mpsc::UnboundedReceiver<SubChange>,
        ),
    ) -> anyhow::Result<Arc<RedisBus>> {
        let (subs, changes) = signals;
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1);
        let connection =
            redis::aio::ConnectionManager::new_with_config(client.clone(), config).await?;
        let (outbound, queued) = mpsc::channel(PUBLISH_QUEUE);
        // Every node listens to the presence channel for as long as it runs.
        let _ = subs.send(SubChange::Subscribe(Topic::Presence));
        let bus = Arc::new(RedisBus {
            hub,
            presence,
            node_id: node_id.to_owned(),
            prefix: prefix.to_owned(),
            outbound,
            subs,
            up: AtomicBool::new(false),
            metrics: metrics.clone(),
        });
        tokio::spawn(publisher(connection, queued, metrics));
        tokio::spawn(subscriber(client, bus.clone(), changes));
        Ok(bus)
    }

    fn channel(&self, topic: Topic) -> String {
        match topic {
            Topic::Conv(c) => format!("{}:conv:{c}", self.prefix),
            Topic::User(u) => format!("{}:user:{u}", self.prefix),
            Topic::Presence => format!("{}:presence", self.prefix),
        }
    }

    fn topic(&self, channel: &str) -> Option<Topic> {
        let rest = channel.strip_prefix(&self.prefix)?.strip_prefix(':')?;
        if rest == "presence" {
            return Some(Topic::Presence);
        }
        let (kind, id) = rest.split_once(':')?;
        let id: i64 = id.parse().ok()?;
        match kind {
            "conv" => Some(Topic::Conv(ConvId(id))),
            "user" => Some(Topic::User(UserId(id))),
            _ => None,
        }
    }

    /// Queues `<node id> <payload>` for publishing; the node id lets the sender skip its own
    /// echo. Never waits: when the queue is full (Redis stalled) the frame is dropped, and the
    /// other nodes' clients fetch it from the database when they notice the gap or resync.
    fn send(&self, topic: Topic, payload: &str) {
        let envelope = format!("{} {payload}", self.node_id);
        if self
            .outbound
            .try_send((self.channel(topic), envelope))
            .is_err()
        {
            tracing::warn!(
                "Redis publish queue full; dropping a frame (clients will catch up by sync)"
            );
        }
    }

    fn deliver(&self, msg: &redis::Msg) {
        let Some(topic) = self.topic(msg.get_channel_name()) else {
            return;
        };
        let Ok(text) = std::str::from_utf8(msg.get_payload_bytes()) else {
            return;
        };
        let Some((sender, payload)) = text.split_once(' ') else {
            return;
        };
        if sender == self.node_id {
            return;
        }
        match topic {
            Topic::Conv(conv) => {
                // `<user to skip, 0 for none> <frame>`
                let Some((except, frame)) = payload.split_once(' ') else {
                    return;
                };
                let skip = match except.parse() {
                    Ok(0) | Err(_) => Skip::Nobody,
                    Ok(id) => Skip::User(UserId(id)),
                };
                self.hub.publish_payload(conv, Utf8Bytes::from(frame), skip)
            }
            Topic::User(user) => match serde_json::from_str::<UserNote>(payload) {
                Ok(note) => apply(&self.hub, user, &note),
                Err(e) => match serde_json::from_str::<EndSessions>(payload) {
                    Ok(end) => self.hub.end_sessions(user, end.end_sessions),
                    Err(_) => tracing::warn!(error = %e, "unreadable note on the bus"),
                },
            },
            Topic::Presence => match serde_json::from_str::<PresenceNote>(payload) {
                Ok(note) => self.presence.heard(note),
                Err(e) => tracing::warn!(error = %e, "unreadable presence note on the bus"),
            },
        }
    }
}

/// Frames that may wait for Redis before new ones are dropped.
const PUBLISH_QUEUE: usize = 16_384;
/// Most frames sent to Redis in one pipeline (one round trip).
const PUBLISH_BATCH: usize = 256;

/// The publisher task: sends queued frames to Redis, as many per round trip as are waiting.
async fn publisher(
    mut connection: redis::aio::ConnectionManager,
    mut queued: mpsc::Receiver<(String, String)>,
    metrics: Arc<Metrics>,
) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while queued.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for (channel, envelope) in batch.drain(..) {
            pipe.cmd("PUBLISH").arg(channel).arg(envelope).ignore();
        }
        let started = std::time::Instant::now();
        let published = pipe.query_async::<()>(&mut connection).await;
        metrics
            .redis_publish_seconds
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = published {
            metrics.redis_publish_failures.inc();
            // Local members already have these; remote ones catch up after their resync.
            tracing::warn!(error = %e, "publishing to Redis failed; other nodes will resync");
        }
    }
}

/// The subscriber task: keeps Redis subscribed to what the hub needs, hands incoming frames to
/// the hub, and reconnects with backoff when Redis goes away.
async fn subscriber(
    client: redis::Client,
    bus: Arc<RedisBus>,
    mut changes: mpsc::UnboundedReceiver<SubChange>,
) {
    let mut wanted: HashSet<Topic> = HashSet::new();
    let mut backoff = Duration::from_millis(250);
    let mut first = true;
    loop {
        let connected =
            tokio::time::timeout(Duration::from_secs(3), client.get_async_pubsub()).await;
        let (mut sink, mut stream) = match connected {
            Ok(Ok(pubsub)) => pubsub.split(),
            _ => {
                // Down: keep track of what is wanted and answer barriers, then retry.
                let retry = tokio::time::sleep(backoff);
                tokio::pin!(retry);
                loop {
                    tokio::select! {
                        _ = &mut retry => break,
                        change = changes.recv() => match change {
                            None => return,
                            Some(change) => track(&mut wanted, change),
                        },
                    }
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let channels: Vec<String> = wanted.iter().map(|t| bus.channel(*t)).collect();
        if !channels.is_empty() && sink.subscribe(&channels).await.is_err() {
            continue;
        }
        bus.up.store(true, Ordering::Relaxed);
        backoff = Duration::from_millis(250);
        if first {
            tracing::info!("connected to Redis");
        } else {
            // Whatever was published while we were away is in the database: make every local
            // client catch up from there.
            tracing::info!("reconnected to Redis; asking local clients to resync");
            bus.metrics.redis_reconnects.inc();
            bus.hub.resync_all();
        }
        first = false;
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => bus.deliver(&msg),
                    None => break,
                },
                change = changes.recv() => {
                    let Some(change) = change else { return };
                    let result = match &change {
                        SubChange::Subscribe(t) if !wanted.contains(t) => sink.subscribe(bus.channel(*t)).await,
                        SubChange::Unsubscribe(t) if wanted.contains(t) => sink.unsubscribe(bus.channel(*t)).await,
                        _ => Ok(()),
                    };
                    track(&mut wanted, change);
                    if result.is_err() {
                        break;
                    }
                }
            }
        }
        bus.up.store(false, Ordering::Relaxed);
        tracing::warn!("lost the Redis subscription; serving local clients and reconnecting");
    }
}

fn track(wanted: &mut HashSet<Topic>, change: SubChange) {
    match change {
        SubChange::Subscribe(t) => {
            wanted.insert(t);
        }
        SubChange::Unsubscribe(t) => {
            wanted.remove(&t);
        }
        SubChange::Barrier(done) => {
            let _ = done.send(());
        }
    }
}
