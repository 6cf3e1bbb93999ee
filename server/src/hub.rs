//! The hub: this process's live WebSocket connections, indexed by user and by conversation, and
//! the fan-out of frames to them. It knows who is connected here; `presence` decides what that
//! means cluster-wide.
//!
//! Fan-out never waits: each connection has a bounded queue, a frame is serialized once and
//! cloned (a reference-counted buffer) into each queue with `try_send`, and a connection whose
//! queue is full is told to close as a slow consumer. The lock is a plain mutex that is never held
//! across an `.await`. The hub does not read the database; callers tell it who belongs where.

use crate::metrics::Metrics;
use app::model::{ConvId, UserId};
use app::protocol::ServerFrame;
use axum::extract::ws::Utf8Bytes;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Why the hub asks a connection to close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// Its queue overflowed: the client reads slower than its conversations talk.
    SlowConsumer,
    /// This node may have missed frames from other nodes (Redis came back): catch up.
    Resync,
    /// Its session ended (logout, or logout everywhere): the connection must not outlive it.
    LoggedOut,
    /// An operator disabled the account (`tidings user disable`).
    Disabled,
}

/// The one signal a connection's task waits on besides its socket and queue. One token per
/// connection rather than one per reason: the task pins a single wait for the whole connection.
#[derive(Debug, Default)]
struct Closing {
    token: CancellationToken,
    /// 0 while open, else `CloseReason as u8 + 1`; the first reason wins.
    reason: AtomicU8,
}

/// One live connection as the hub sees it: where to put its frames, and how to make it close.
#[derive(Clone, Debug)]
pub struct Conn {
    pub id: u64,
    pub user: UserId,
    /// Which of the user's sessions opened it ([`session_key`]); logout closes its connections.
    pub session: u64,
    queue: mpsc::Sender<Utf8Bytes>,
    closing: Arc<Closing>,
}

impl Conn {
    /// Queues a frame without waiting. A full queue means the client cannot keep up: it is told
    /// to close (it will reconnect and catch up from the database) rather than slow anyone else.
    pub fn push(&self, payload: Utf8Bytes) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.queue.try_send(payload) {
            self.close(CloseReason::SlowConsumer);
        }
    }

    pub fn push_frame(&self, frame: &ServerFrame) {
        self.push(frame.to_json().into());
    }

    /// Asks the connection's task to close for `reason` (the first reason asked wins).
    pub fn close(&self, reason: CloseReason) {
        let code = match reason {
            CloseReason::SlowConsumer => 1,
            CloseReason::Resync => 2,
            CloseReason::LoggedOut => 3,
            CloseReason::Disabled => 4,
        };
        if self
            .closing
            .reason
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.closing.token.cancel();
        }
    }

    /// Resolves once the hub has asked the connection to close. Owned, so that the connection's
    /// task can pin it once for its whole life instead of registering a waiter per loop turn.
    pub fn closed(&self) -> WaitForCancellationFutureOwned {
        self.closing.token.clone().cancelled_owned()
    }

    /// Why the connection was asked to close, if it was.
    pub fn close_reason(&self) -> Option<CloseReason> {
        match self.closing.reason.load(Ordering::Acquire) {
            1 => Some(CloseReason::SlowConsumer),
            2 => Some(CloseReason::Resync),
            3 => Some(CloseReason::LoggedOut),
            4 => Some(CloseReason::Disabled),
            _ => None,
        }
    }
}

/// A short key for a session, from its token's hash (`auth::token_hash`): what a connection
/// remembers of the session it was opened under, so logout can find it. 64 bits of a SHA-256.
pub fn session_key(token_hash: &str) -> u64 {
    token_hash
        .get(..16)
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .unwrap_or(0)
}

/// Which of a user's sessions ended (by [`session_key`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sessions {
    /// This one (logout).
    One(u64),
    /// All of them (logout everywhere).
    All,
    /// All but this one (the password was changed in it).
    AllBut(u64),
}

impl Sessions {
    pub fn includes(self, session: u64) -> bool {
        match self {
            Sessions::One(key) => key == session,
            Sessions::All => true,
            Sessions::AllBut(key) => key != session,
        }
    }
}

/// Whom a publish leaves out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    Nobody,
    /// Every connection of this user (a presence frame is not for its subject).
    User(UserId),
    /// This one connection (a sender's own connection has its ack instead of the message).
    Conn(u64),
}

/// A channel a node may subscribe to. Defined here, not in `bus`, because the hub is what
/// decides them (first member in, last member out); the bus only carries them out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    Conv(ConvId),
    User(UserId),
    /// Nodes telling each other which users they have (see `presence`).
    Presence,
}

/// What the hub asks of the subscriber, in order.
#[derive(Debug)]
pub enum SubChange {
    Subscribe(Topic),
    Unsubscribe(Topic),
    /// Answered once every change queued before it has been confirmed by Redis (or Redis is
    /// down, in which case the reconnect's resync covers the gap).
    Barrier(oneshot::Sender<()>),
}

#[derive(Default)]
struct Inner {
    /// Live connections per user.
    conns: HashMap<UserId, Vec<Conn>>,
    /// Locally connected members per conversation: whom a message in it reaches.
    rooms: HashMap<ConvId, HashSet<UserId>>,
    /// The conversations each locally connected user belongs to (the inverse of `rooms`).
    joined: HashMap<UserId, HashSet<ConvId>>,
    /// Users whose coming online has been announced to their peers.
    announced: HashSet<UserId>,
    /// Bumped by every `leave`: a membership list read from the store before a bump may be stale.
    leave_epoch: u64,
}

#[derive(Default)]
pub struct Hub {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
    /// Where connections opened and frames queued are counted.
    metrics: Arc<Metrics>,
    /// Where to report which conversations and users have connections here (the Redis bus
    /// subscribes accordingly); `None` on a single node.
    signals: Option<mpsc::UnboundedSender<SubChange>>,
}

impl Hub {
    /// A hub with metrics of its own (for tests).
    pub fn new() -> Hub {
        Hub::default()
    }

    /// A hub that counts into `metrics` and, in a cluster, reports subscription changes on
    /// `signals` (unbounded, but holding at most one entry per room or user that changes, never
    /// per message).
    pub fn with(metrics: Arc<Metrics>, signals: Option<mpsc::UnboundedSender<SubChange>>) -> Hub {
        Hub {
            metrics,
            signals,
            ..Hub::default()
        }
    }

    fn signal(&self, change: SubChange) {
        if let Some(signals) = &self.signals {
            let _ = signals.send(change);
        }
    }

    /// Closes every connection with "resync": clients reconnect and catch up from the database.
    pub fn resync_all(&self) {
        let inner = self.lock();
        for conn in inner.conns.values().flatten() {
            conn.close(CloseReason::Resync);
        }
    }

    /// Closes every local connection of `user` for `reason`; how many there were.
    pub fn close_user(&self, user: UserId, reason: CloseReason) -> usize {
        let inner = self.lock();
        let conns = inner
            .conns
            .get(&user)
            .map(|c| c.as_slice())
            .unwrap_or_default();
        for conn in conns {
            conn.close(reason);
        }
        conns.len()
    }

    /// Registers a connection for `user` with a queue of `capacity` frames. Returns the handle
    /// and the receiving end of its queue. If this is the user's first connection, everyone who
    /// shares a conversation with them is told they came online (after `set_conversations`).
    pub fn connect(&self, user: UserId, capacity: usize) -> (Conn, mpsc::Receiver<Utf8Bytes>) {
        self.connect_session(user, 0, capacity)
    }

    /// [`Hub::connect`] for a connection opened under the session with key `session`.
    pub fn connect_session(
        &self,
        user: UserId,
        session: u64,
        capacity: usize,
    ) -> (Conn, mpsc::Receiver<Utf8Bytes>) {
        let (queue, rx) = mpsc::channel(capacity.max(1));
        let conn = Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            user,
            session,
            queue,
            closing: Arc::default(),
        };
        self.metrics.connections_opened.inc();
        let mut inner = self.lock();
        let list = inner.conns.entry(user).or_default();
        if list.is_empty() {
            self.signal(SubChange::Subscribe(Topic::User(user)));
        }
        list.push(conn.clone());
        (conn, rx)
    }

    /// A connection that is not registered here: it receives only what is pushed to it
    /// directly (the ack or refusal of an entry it submits), never fan-out, and does not make
    /// its user online. For an HTTP request that sends through the committer (`api_v1`).
    pub fn detached(&self, user: UserId, capacity: usize) -> (Conn, mpsc::Receiver<Utf8Bytes>) {
        let (queue, rx) = mpsc::channel(capacity.max(1));
        let conn = Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            user,
            session: 0,
            queue,
            closing: Arc::default(),
        };
        (conn, rx)
    }

    /// The current leave epoch: read it before reading memberships from the store, and hand it
    /// to [`Hub::set_conversations`].
    pub fn leave_epoch(&self) -> u64 {
        self.lock().leave_epoch
    }

    /// Declares the conversations a connected user belongs to, as read from the store after
    /// `epoch` was taken. Returns `Some(true)` when this makes the user newly online on this node
    /// (for presence), or `None` if someone left a conversation meanwhile: the list may name a
    /// conversation the user no longer belongs to, so read it again.
    pub fn set_conversations(&self, user: UserId, convs: &[ConvId], epoch: u64) -> Option<bool> {
        let mut inner = self.lock();
        if inner.leave_epoch != epoch {
            return None;
        }
        if !inner.conns.contains_key(&user) {
            return Some(false);
        }
        let first_time = inner.announced.insert(user);
        for conv in convs {
            self.add_to_room(&mut inner, *conv, user);
        }
        inner.joined.entry(user).or_default();
        Some(first_time)
    }

    /// Forgets a connection. When it was the user's last here, the user leaves every room, and
    /// the conversations they were in are returned (for presence).
    pub fn disconnect(&self, conn: &Conn) -> Option<Vec<ConvId>> {
        let mut inner = self.lock();
        let list = inner.conns.get_mut(&conn.user)?;
        list.retain(|c| c.id != conn.id);
        if !list.is_empty() {
            return None;
        }
        inner.conns.remove(&conn.user);
        let announced = inner.announced.remove(&conn.user);
        self.signal(SubChange::Unsubscribe(Topic::User(conn.user)));
        let convs: Vec<ConvId> = inner
            .joined
            .remove(&conn.user)
            .into_iter()
            .flatten()
            .collect();
        for conv in &convs {
            self.remove_from_room(&mut inner, *conv, conn.user);
        }
        announced.then_some(convs)
    }

    /// The conversations a locally connected user is in.
    pub fn conversations_of(&self, user: UserId) -> Vec<ConvId> {
        self.lock()
            .joined
            .get(&user)
            .into_iter()
            .flatten()
            .copied()
            .collect()
    }

    /// Users with at least one connection here.
    pub fn local_users(&self) -> Vec<UserId> {
        self.lock().conns.keys().copied().collect()
    }

    /// Sends `frame` to every local connection of every member of `conv`, serialized once.
    pub fn publish(&self, conv: ConvId, frame: &ServerFrame) {
        self.publish_payload(conv, frame.to_json().into(), Skip::Nobody);
    }

    /// The same with a ready payload, leaving out `skip`.
    pub fn publish_payload(&self, conv: ConvId, payload: Utf8Bytes, skip: Skip) {
        let inner = self.lock();
        let Some(room) = inner.rooms.get(&conv) else {
            return;
        };
        let mut queued = 0;
        for user in room {
            if skip == Skip::User(*user) {
                continue;
            }
            for conn in inner.conns.get(user).into_iter().flatten() {
                if skip != Skip::Conn(conn.id) {
                    conn.push(payload.clone());
                    queued += 1;
                }
            }
        }
        self.metrics.frames_queued.inc_by(queued);
    }

    /// Sends `frame` to every local connection of `user`.
    pub fn send_to_user(&self, user: UserId, frame: &ServerFrame) {
        let payload: Utf8Bytes = frame.to_json().into();
        let inner = self.lock();
        let conns = inner
            .conns
            .get(&user)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for conn in conns {
            conn.push(payload.clone());
        }
        self.metrics.frames_queued.inc_by(conns.len() as u64);
    }

    /// `user` joined `conv`: if they are connected here, messages in it now reach them.
    pub fn join(&self, conv: ConvId, user: UserId) {
        let mut inner = self.lock();
        if inner.conns.contains_key(&user) {
            self.add_to_room(&mut inner, conv, user);
        }
    }

    /// `user` left `conv` (or was removed): nothing more from it reaches them.
    pub fn leave(&self, conv: ConvId, user: UserId) {
        let mut inner = self.lock();
        inner.leave_epoch += 1;
        self.remove_from_room(&mut inner, conv, user);
        if let Some(convs) = inner.joined.get_mut(&user) {
            convs.remove(&conv);
        }
    }

    /// Adds a connected user to a room; the first member here subscribes the node to it.
    fn add_to_room(&self, inner: &mut Inner, conv: ConvId, user: UserId) {
        let room = inner.rooms.entry(conv).or_default();
        if room.is_empty() {
            self.signal(SubChange::Subscribe(Topic::Conv(conv)));
        }
        room.insert(user);
        inner.joined.entry(user).or_default().insert(conv);
    }

    /// Takes a user out of a room; the last one out unsubscribes the node from it.
    fn remove_from_room(&self, inner: &mut Inner, conv: ConvId, user: UserId) {
        if let Some(room) = inner.rooms.get_mut(&conv) {
            room.remove(&user);
            if room.is_empty() {
                inner.rooms.remove(&conv);
                self.signal(SubChange::Unsubscribe(Topic::Conv(conv)));
            }
        }
    }

    /// Whether `user` is a member of `conv` as far as this node's live view goes.
    pub fn is_member(&self, user: UserId, conv: ConvId) -> bool {
        self.lock()
            .joined
            .get(&user)
            .is_some_and(|convs| convs.contains(&conv))
    }

    /// Closes `user`'s connections here that were opened under the ended `sessions` with
    /// "logged out".
    pub fn end_sessions(&self, user: UserId, sessions: Sessions) {
        let inner = self.lock();
        for conn in inner.conns.get(&user).into_iter().flatten() {
            if sessions.includes(conn.session) {
                conn.close(CloseReason::LoggedOut);
            }
        }
    }

    /// How many connections `user` has open here.
    pub fn connections_of(&self, user: UserId) -> usize {
        self.lock().conns.get(&user).map_or(0, Vec::len)
    }

    pub fn is_online(&self, user: UserId) -> bool {
        self.lock().conns.contains_key(&user)
    }

    /// (connections, users) currently connected here.
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.conns.values().map(Vec::len).sum(), inner.conns.len())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that matters
        // more than losing the node, so keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(rx: &mut mpsc::Receiver<Utf8Bytes>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(t) = rx.try_recv() {
            out.push(t.to_string());
        }
        out
    }

    #[test]
    fn publish_reaches_members_only_and_full_queues_mark_slow() {
        let hub = Hub::new();
        let (a, mut a_rx) = hub.connect(UserId(1), 2);
        let (b, mut b_rx) = hub.connect(UserId(2), 8);
        let (_c, mut c_rx) = hub.connect(UserId(3), 8);
        hub.set_conversations(UserId(1), &[ConvId(10)], 0).unwrap();
        hub.set_conversations(UserId(2), &[ConvId(10)], 0).unwrap();
        hub.set_conversations(UserId(3), &[ConvId(11)], 0).unwrap();
        text(&mut a_rx);
        text(&mut b_rx);
        for _ in 0..3 {
            hub.publish(ConvId(10), &ServerFrame::Pong);
        }
        assert_eq!(text(&mut b_rx).len(), 3);
        assert!(text(&mut c_rx).is_empty());
        // a's queue held 2 of 3: it is flagged slow instead of blocking the publisher.
        assert_eq!(text(&mut a_rx).len(), 2);
        assert_eq!(a.close_reason(), Some(CloseReason::SlowConsumer));
        assert_eq!(b.close_reason(), None);
    }

    #[test]
    fn first_and_last_connection_are_reported_for_presence() {
        let hub = Hub::new();
        let (b1, _b1_rx) = hub.connect(UserId(2), 8);
        assert_eq!(
            hub.set_conversations(UserId(2), &[ConvId(10)], 0),
            Some(true)
        );
        let (b2, _b2_rx) = hub.connect(UserId(2), 8);
        assert_eq!(
            hub.set_conversations(UserId(2), &[ConvId(10)], 0),
            Some(false)
        );
        assert_eq!(hub.disconnect(&b1), None, "second tab still open");
        assert_eq!(hub.disconnect(&b2), Some(vec![ConvId(10)]));
        assert!(!hub.is_online(UserId(2)));
        assert!(!hub.is_member(UserId(2), ConvId(10)));
    }

    #[test]
    fn a_membership_list_read_before_a_leave_is_refused() {
        let hub = Hub::new();
        let (_a, _rx) = hub.connect(UserId(1), 8);
        let epoch = hub.leave_epoch();
        // (the store is read here; meanwhile the user is removed from conversation 10)
        hub.leave(ConvId(10), UserId(1));
        assert!(hub
            .set_conversations(UserId(1), &[ConvId(10)], epoch)
            .is_none());
        assert!(hub
            .set_conversations(UserId(1), &[], hub.leave_epoch())
            .is_some());
        assert!(!hub.is_member(UserId(1), ConvId(10)));
    }
}
