//! One WebSocket connection at `/ws`, from the authenticated upgrade to the close.
//!
//! A single task per connection reads client frames, writes the frames queued for it by the hub,
//! replays history for `sync` in bounded pages, and keeps the heartbeat. It owns the socket and
//! nothing else: storing goes through the committer, fan-out through the bus and the hub.
//!
//! This loop runs once per delivered frame, so it is kept cheap: the waits that last the whole
//! connection (the hub's close signal, server shutdown) are pinned once instead of being set up
//! again on every turn; whatever has piled up in the queue is written as one batch with a single
//! flush (one `write` system call for many frames); and a write that completes at once — the
//! usual case — arms no timer. Socket buffers start small (a few KiB): an idle connection costs
//! little, and tungstenite grows a buffer only while a big frame needs it.

use crate::hub::{session_key, CloseReason, Conn};
use crate::limits::Limiter;
use crate::metrics::{Limit, Query};
use crate::store::{NewEntry, Op};
use crate::AppState;
use app::api::ssr::session_token_from_headers;
use app::model::{Body, ClientId, ConvId, Emoji, Entry, ParseError, Seq, UserRef};
use app::protocol::{ClientFrame, ErrorCode, ServerFrame, MAX_FRAME_BYTES};
use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::SinkExt;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{interval, timeout, Instant, MissedTickBehavior};

/// Messages per replay page: bounds the work and memory of one step of a catch-up.
pub const REPLAY_PAGE: u32 = 200;
/// Frames above this are refused by the WebSocket layer itself (the connection closes with 1009);
/// frames between [`MAX_FRAME_BYTES`] and this get a `too_large` error and the connection stays.
const HARD_FRAME_LIMIT: usize = 1024 * 1024;
/// Bytes read from the socket at a time. Client frames are small (a `send` is a few hundred
/// bytes); a bigger one grows the buffer. Tungstenite also zero-fills this much per read.
const READ_BUFFER: usize = 1024;
/// Frames are gathered up to this many bytes before tungstenite writes them out; a flush after
/// each batch writes the rest.
const WRITE_BUFFER: usize = 8 * 1024;
/// Most queued frames written per batch, so a busy connection still reads its client in between.
const WRITE_BATCH: usize = 64;

/// Why the server closes a connection: each reason with its close code and the text sent with
/// it, in one place (PROTOCOL.md's "Connection lifetime" lists them). 4000–4999 are the
/// application's own codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    /// 1001: the server is shutting down.
    GoingAway,
    /// 1008: too many refused frames.
    TooManyRefusals,
    /// 1009: a frame over the hard limit.
    TooBig,
    /// 1011: the server failed; reconnect.
    Internal,
    /// 4001: the client read too slowly.
    SlowConsumer,
    /// 4002: nothing heard for the idle timeout.
    IdleTimeout,
    /// 4003: this node may have missed frames from others.
    Resync,
    /// 4004: the session ended.
    LoggedOut,
    /// 4005: an operator disabled the account.
    Disabled,
}

impl Close {
    pub fn code(self) -> u16 {
        match self {
            Close::GoingAway => 1001,
            Close::TooManyRefusals => 1008,
            Close::TooBig => 1009,
            Close::Internal => 1011,
            Close::SlowConsumer => 4001,
            Close::IdleTimeout => 4002,
            Close::Resync => 4003,
            Close::LoggedOut => 4004,
            Close::Disabled => 4005,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Close::GoingAway => "server shutting down",
            Close::TooManyRefusals => "too many refused frames: fix the client and reconnect",
            Close::TooBig => "frame too large: the limit is 1 MiB",
            Close::Internal => "server error; reconnect",
            Close::SlowConsumer => "slow consumer: reconnect and sync",
            Close::IdleTimeout => "idle timeout",
            Close::Resync => "resync: reconnect and sync",
            Close::LoggedOut => "logged out",
            Close::Disabled => "account disabled",
        }
    }
}

/// `GET /ws`: upgrades only requests with a valid session cookie and an allowed `Origin`.
pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // Browsers always send `Origin` on WebSocket handshakes: it must be this server or an
    // `--allowed-origins` entry (see `protect`).
    if !crate::protect::origin_allowed(&headers, &state.config.allowed_origins) {
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    let Some(token) = session_token_from_headers(&headers) else {
        return (
            StatusCode::UNAUTHORIZED,
            "log in first: no session cookie\n",
        )
            .into_response();
    };
    let session = session_key(&crate::auth::token_hash(&token));
    let user = match state.authenticate(&token).await {
        Ok(user) => user,
        Err(e) => return (e.status(), e.message).into_response(),
    };
    // Limits per user, checked before the upgrade so a refused client costs no socket task.
    let open = state.hub.connections_of(user.id);
    if open >= state.config.max_connections_per_user {
        state.metrics.refused(Limit::ConnectionsPerUser);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many connections: you have {open} open; close a tab or wait\n"),
        )
            .into_response();
    }
    if !state.limits.allow_connect(user.id) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "too many new connections this minute; wait and reconnect\n",
        )
            .into_response();
    }
    ws.max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        // The connection's future is handed over as it is, not wrapped in another `async`
        // block: a wrapper would keep its own copy of the captured state and socket beside the
        // one moved into `Connection` (about 0.7 KiB more per connection, for its whole life).
        .on_upgrade(move |socket| Connection::new(state, user, session, socket).run())
}

/// The conversations a connection still has to replay for `sync`, in order, each with the last
/// seq already sent. Each conversation is in it at most once, so however often a client repeats
/// `sync` it holds no more entries than the user has conversations.
#[derive(Default)]
struct Replay(VecDeque<(ConvId, Seq)>);

impl Replay {
    /// Adds a replay of `conv` after `after`. If `conv` is already waiting or under way it keeps
    /// its place, and its position moves forward if the client holds more than was sent: what
    /// this connection already sent is on its way to the client anyway.
    fn request(&mut self, conv: ConvId, after: Seq) {
        match self.0.iter_mut().find(|(c, _)| *c == conv) {
            Some(entry) => entry.1 = entry.1.max(after),
            None => self.0.push_back((conv, after)),
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why the connection loop ended.
enum End {
    /// The client closed or vanished; nothing more to send.
    Gone,
    /// We close, for this reason.
    Close(Close),
}

struct Connection {
    state: AppState,
    user: UserRef,
    socket: WebSocket,
    /// The session it was opened under ([`session_key`]): its logout closes this connection.
    session: u64,
    /// Conversations still to replay for `sync`, with the last seq already sent.
    replay: Replay,
    /// The user's send allowance on this node, shared with their other connections.
    sends: Arc<Limiter>,
    /// This connection's allowance of refused frames; made at the first refusal.
    bad_frames: Option<Box<Limiter>>,
}

impl Connection {
    fn new(state: AppState, user: UserRef, session: u64, socket: WebSocket) -> Self {
        let sends = state.limits.sender(user.id);
        Connection {
            state,
            user,
            socket,
            session,
            replay: Replay::default(),
            sends,
            bad_frames: None,
        }
    }

    async fn run(mut self) {
        // Counted as open until the close is written: shutdown waits for it.
        let _open = self.state.open.open();
        tracing::debug!(user = %self.user.username, "websocket open");
        let (conn, mut queue) = self.state.hub.connect_session(
            self.user.id,
            self.session,
            self.state.config.outbound_queue,
        );
        let end = self.serve(&conn, &mut queue).await;
        if let Some(convs) = self.state.hub.disconnect(&conn) {
            let departure = self.state.presence.departed(self.user.id, convs);
            self.state.bus.announce(departure);
        }
        if let End::Close(close) = end {
            if close == Close::SlowConsumer {
                self.state.metrics.slow_consumers.inc();
                tracing::info!(user = %self.user.username, "closed a slow consumer");
            }
            let frame = CloseFrame {
                code: close.code(),
                reason: Utf8Bytes::from_static(close.reason()),
            };
            // Best effort: a slow or vanished client may never read it.
            let sent = timeout(
                Duration::from_secs(1),
                self.socket.send(WsMessage::Close(Some(frame))),
            )
            .await;
            // The closing handshake: read (and drop) what the client still sends until its own
            // close arrives. Closing the socket with unread data in it would make the kernel
            // send a reset, and a client may then lose our close frame and see 1006.
            if matches!(sent, Ok(Ok(()))) {
                let _ = timeout(Duration::from_secs(2), async {
                    while let Some(Ok(_)) = self.socket.recv().await {}
                })
                .await;
            }
        }
        tracing::debug!(user = %self.user.username, "websocket closed");
    }

    async fn serve(
        &mut self,
        conn: &Conn,
        queue: &mut tokio::sync::mpsc::Receiver<Utf8Bytes>,
    ) -> End {
        // The database work of the greeting, of a client frame and of a replay page is boxed:
        // an idle connection's task then holds only the loop's own small state, not room for the
        // largest query future it might ever await (a few KiB each, times every connection).
        if let Err(end) = Box::pin(self.greet(conn)).await {
            return end;
        }
        self.converse(conn, queue).await
    }

    /// Joins the hub's rooms, waits for the bus, and sends `hello` and who is online.
    async fn greet(&mut self, conn: &Conn) -> Result<(), End> {
        // Subscribe before anything is read from the database: whatever is committed from now on
        // reaches this connection's queue, and the client's `sync` replays what came before. The
        // two may overlap; the client drops seqs it already holds, so nothing is lost or doubled.
        let arrived = loop {
            let epoch = self.state.hub.leave_epoch();
            let convs = match self.state.store.conversation_ids(self.user.id).await {
                Ok(convs) => convs,
                Err(e) => {
                    tracing::error!(error = %e, "loading conversations for a new connection failed");
                    return Err(End::Close(Close::Internal));
                }
            };
            // Retried only if someone left a conversation while we read: rare and cheap.
            if let Some(arrived) = self
                .state
                .hub
                .set_conversations(self.user.id, &convs, epoch)
            {
                break arrived;
            }
        };
        // In a cluster, "subscribed" means Redis has confirmed it: wait for that before the
        // client can read history, or a message published meanwhile by another node is missed.
        self.state.bus.settled().await;
        if arrived {
            let convs = self.state.hub.conversations_of(self.user.id);
            let arrival = self.state.presence.arrived(self.user.id, convs);
            self.state.bus.announce(arrival);
        }
        // Hello, then who of the people this user shares a conversation with is online.
        let mut hello = vec![ServerFrame::Hello {
            user: self.user.clone(),
        }];
        match self.state.store.co_members(self.user.id).await {
            Ok(peers) => hello.extend(
                peers
                    .into_iter()
                    .filter(|peer| self.state.presence.is_online(&self.state.hub, *peer))
                    .map(|user| ServerFrame::Presence { user, online: true }),
            ),
            Err(e) => tracing::warn!(error = %e, "could not load the initial presence"),
        }
        let frames = hello
            .into_iter()
            .map(|frame| WsMessage::Text(frame.to_json().into()));
        self.write(conn, frames).await
    }

    /// The connection's life after the greeting: see the module header.
    async fn converse(
        &mut self,
        conn: &Conn,
        queue: &mut tokio::sync::mpsc::Receiver<Utf8Bytes>,
    ) -> End {
        let config = &self.state.config;
        let idle_timeout = config.idle_timeout();
        let mut heartbeat = interval(config.ping_interval());
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        heartbeat.tick().await;
        let mut last_heard = Instant::now();
        let closed = conn.closed();
        let shutdown = self.state.shutdown.clone().cancelled_owned();
        tokio::pin!(closed, shutdown);
        let reads = ReadGate::new();
        // Grows with the batches that actually come: an idle connection allocates nothing here.
        let mut outgoing = Vec::new();

        loop {
            tokio::select! {
                _ = &mut closed => return closing(conn),
                _ = &mut shutdown => return End::Close(Close::GoingAway),
                incoming = reads.next(&mut self.socket) => {
                    let msg = match incoming {
                        Some(Ok(msg)) => msg,
                        Some(Err(e)) => return read_failed(e),
                        None => return End::Gone,
                    };
                    last_heard = Instant::now();
                    match msg {
                        WsMessage::Text(text) => {
                            if let Err(end) = Box::pin(self.on_text(conn, text.as_str())).await {
                                return end;
                            }
                        }
                        WsMessage::Binary(_) => if let Err(end) = self.refuse(conn, ServerFrame::error(
                            ErrorCode::BadFrame, "binary frames are not part of the protocol; send JSON text", None)) {
                            return end;
                        },
                        WsMessage::Close(_) => return End::Gone,
                        WsMessage::Ping(_) | WsMessage::Pong(_) => {}
                    }
                }
                n = queue.recv_many(&mut outgoing, WRITE_BATCH) => {
                    if n == 0 {
                        return End::Gone;
                    }
                    let frames = outgoing.drain(..).map(WsMessage::Text);
                    if let Err(end) = self.write(conn, frames).await {
                        return end;
                    }
                }
                _ = std::future::ready(()), if !self.replay.is_empty() => {
                    if let Err(end) = Box::pin(self.replay_page(conn)).await {
                        return end;
                    }
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() >= idle_timeout {
                        return End::Close(Close::IdleTimeout);
                    }
                    let ping = std::iter::once(WsMessage::Ping(Default::default()));
                    if let Err(end) = self.write(conn, ping).await {
                        return end;
                    }
                }
            }
        }
    }

    /// Handles one client text frame. Refusals are answered with an `error` frame; only a
    /// failure to write, or too many refusals, ends the connection.
    async fn on_text(&mut self, conn: &Conn, text: &str) -> Result<(), End> {
        if text.len() > MAX_FRAME_BYTES {
            return self.refuse(
                conn,
                ServerFrame::error(
                    ErrorCode::TooLarge,
                    format!("frame is over {MAX_FRAME_BYTES} bytes"),
                    None,
                ),
            );
        }
        let frame = match ClientFrame::decode(text) {
            Ok(frame) => {
                self.state.metrics.frame_in(&frame);
                frame
            }
            Err(e) => {
                return self.refuse(
                    conn,
                    ServerFrame::error(ErrorCode::BadFrame, format!("unreadable frame: {e}"), None),
                )
            }
        };
        match frame {
            ClientFrame::Send {
                conv,
                client_id,
                body,
                reply_to,
                attachment,
            } => {
                self.on_change(conn, conv, client_id, || {
                    // With a file the words are optional; whether the upload is this user's to
                    // post is checked in the commit's transaction.
                    let body = match attachment {
                        Some(_) => Body::caption(body),
                        None => Body::parse(body),
                    }
                    .map_err(refused_body)?;
                    Ok(Op::Message {
                        body,
                        reply_to,
                        attachment,
                    })
                })
                .await
            }
            ClientFrame::Edit {
                conv,
                client_id,
                target,
                body,
            } => {
                self.on_change(conn, conv, client_id, || {
                    let body = parse_body(body)?;
                    Ok(Op::Edit { target, body })
                })
                .await
            }
            ClientFrame::Delete {
                conv,
                client_id,
                target,
            } => {
                self.on_change(conn, conv, client_id, || Ok(Op::Delete { target }))
                    .await
            }
            ClientFrame::React {
                conv,
                client_id,
                target,
                emoji,
                on,
            } => {
                self.on_change(conn, conv, client_id, || {
                    let emoji =
                        Emoji::parse(emoji).map_err(|e| (ErrorCode::BadFrame, e.to_string()))?;
                    Ok(Op::React { target, emoji, on })
                })
                .await
            }
            ClientFrame::Sync { cursors } => {
                for (conv, seq) in cursors {
                    if self.state.hub.is_member(self.user.id, conv) {
                        self.replay.request(conv, seq.max(0));
                    } else {
                        self.refuse_outsider(conn, conv, "sync").await?;
                    }
                }
                if self.replay.is_empty() {
                    conn.push_frame(&ServerFrame::Synced);
                }
                Ok(())
            }
            ClientFrame::Read { conv, seq } => {
                if self.state.hub.is_member(self.user.id, conv) {
                    match self.state.store.mark_read(conv, self.user.id, seq).await {
                        Ok(seq) => {
                            let read = ServerFrame::Read {
                                conv,
                                user: self.user.id,
                                seq,
                            };
                            self.state.bus.publish(conv, &read);
                        }
                        Err(e) => tracing::warn!(error = %e, "storing a read receipt failed"),
                    }
                } else {
                    self.refuse_outsider(conn, conv, "mark as read").await?;
                }
                Ok(())
            }
            ClientFrame::Typing { conv } => {
                if self.state.hub.is_member(self.user.id, conv) {
                    let typing = ServerFrame::Typing {
                        conv,
                        user: self.user.clone(),
                    };
                    self.state.bus.publish(conv, &typing);
                } else {
                    self.refuse_outsider(conn, conv, "type in").await?;
                }
                Ok(())
            }
            ClientFrame::Ping => {
                conn.push_frame(&ServerFrame::Pong);
                Ok(())
            }
        }
    }

    /// Answers a frame about a conversation this user is not in: `unknown_conversation` when it
    /// does not exist, `not_member` when it does (only refusals pay for the lookup).
    async fn refuse_outsider(&mut self, conn: &Conn, conv: ConvId, what: &str) -> Result<(), End> {
        let frame = match self.state.store.kind(conv).await {
            Ok(None) => ServerFrame::error(
                ErrorCode::UnknownConversation,
                format!("cannot {what} conversation {conv}: there is no such conversation"),
                None,
            ),
            Ok(Some(_)) => ServerFrame::error(
                ErrorCode::NotMember,
                format!("cannot {what} conversation {conv}: you are not a member"),
                None,
            ),
            Err(e) => {
                tracing::warn!(error = %e, "looking up a conversation failed");
                ServerFrame::error(
                    ErrorCode::Internal,
                    format!("cannot {what} conversation {conv} now; retry"),
                    None,
                )
            }
        };
        self.refuse(conn, frame)
    }

    /// Answers a refused frame with `error`, and closes the connection (1008) once it has sent
    /// more refused frames than the configured rate: a client stuck in a loop of bad frames, or
    /// probing, should not cost the server work forever.
    fn refuse(&mut self, conn: &Conn, error: ServerFrame) -> Result<(), End> {
        if let ServerFrame::Error { code, .. } = &error {
            self.state.metrics.error_sent(*code);
        }
        conn.push_frame(&error);
        let limits = &self.state.limits;
        let allowance = self
            .bad_frames
            .get_or_insert_with(|| Box::new(limits.bad_frames()));
        if allowance.check().is_err() {
            self.state.metrics.refused(Limit::BadFramesClose);
            return Err(End::Close(Close::TooManyRefusals));
        }
        Ok(())
    }

    /// A `send`, `edit`, `delete` or `react`: parses the client id, then the rest with `op`
    /// (which says why it refuses), and queues the entry for the committer.
    /// Membership and the permission rules are checked inside the commit's transaction.
    async fn on_change(
        &mut self,
        conn: &Conn,
        conv: ConvId,
        client_id: String,
        op: impl FnOnce() -> Result<Op, (ErrorCode, String)>,
    ) -> Result<(), End> {
        let client_id = match ClientId::parse(client_id) {
            Ok(id) => id,
            Err(e) => {
                let error =
                    ServerFrame::error(ErrorCode::BadFrame, e.to_string(), Some(String::new()));
                return self.refuse(conn, error);
            }
        };
        // One atomic update of the user's allowance; a refused change is not stored, and the
        // client keeps it to re-send (same client_id) a moment later.
        if self.sends.check().is_err() {
            self.state.metrics.refused(Limit::Send);
            self.state.metrics.error_sent(ErrorCode::RateLimited);
            conn.push_frame(&ServerFrame::error(
                ErrorCode::RateLimited,
                "sending too fast: wait a moment and re-send",
                Some(client_id.into_inner()),
            ));
            return Ok(());
        }
        let op = match op() {
            Ok(op) => op,
            Err((code, message)) => {
                let error = ServerFrame::error(code, message, Some(client_id.into_inner()));
                return self.refuse(conn, error);
            }
        };
        let entry = NewEntry {
            sender: self.user.clone(),
            conv,
            client_id: client_id.into_inner(),
            op,
        };
        self.state
            .committer
            .submit(entry, conn.clone())
            .await
            .map_err(|_| End::Close(Close::GoingAway))
    }

    /// Sends the next page of the pending replay, then `synced` once all cursors are caught up.
    async fn replay_page(&mut self, conn: &Conn) -> Result<(), End> {
        let Some((conv, after)) = self.replay.0.front().copied() else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let page = self.state.store.after(conv, after, REPLAY_PAGE).await;
        self.state.metrics.query_took(Query::Replay, started);
        let page = match page {
            Ok(page) => page,
            Err(e) => {
                tracing::error!(error = %e, "replay query failed");
                return Err(End::Close(Close::Internal));
            }
        };
        let full = page.len() == REPLAY_PAGE as usize;
        let last = page.last().map(Entry::seq);
        let frames = page
            .into_iter()
            .map(|entry| WsMessage::Text(ServerFrame::from(entry).to_json().into()));
        self.write(conn, frames).await?;
        match (full, last) {
            (true, Some(last)) => self.replay.0[0].1 = last,
            _ => {
                self.replay.0.pop_front();
                if self.replay.is_empty() {
                    self.send(conn, ServerFrame::Synced.to_json().into())
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn send(&mut self, conn: &Conn, payload: Utf8Bytes) -> Result<(), End> {
        self.write(conn, std::iter::once(WsMessage::Text(payload)))
            .await
    }

    /// Writes frames as one batch (buffered, then one flush), giving up if the hub closes the
    /// connection meanwhile or the client stays stuck for the idle timeout: a client that stopped
    /// reading must not pin this task (and its memory) forever.
    async fn write(
        &mut self,
        conn: &Conn,
        frames: impl Iterator<Item = WsMessage>,
    ) -> Result<(), End> {
        let socket = &mut self.socket;
        let write = async move {
            for frame in frames {
                socket.feed(frame).await?;
            }
            socket.flush().await
        };
        tokio::pin!(write);
        // Most writes fit in the socket's send buffer and finish on the first poll; only one that
        // has to wait for the client arms the timeout.
        let written = match futures::poll!(&mut write) {
            std::task::Poll::Ready(done) => done,
            std::task::Poll::Pending => {
                let limit = self.state.config.idle_timeout();
                tokio::select! {
                    done = timeout(limit, &mut write) => match done {
                        Ok(done) => done,
                        Err(_) => return Err(End::Close(Close::SlowConsumer)),
                    },
                    _ = conn.closed() => return Err(closing(conn)),
                }
            }
        };
        written.map_err(|_| End::Gone)
    }
}

/// Polls the socket for client frames only when the socket itself has asked to be polled.
///
/// The connection's task wakes mostly for frames queued by the hub, and `select!` then polls
/// every branch, the socket included. Asking tungstenite for a frame that has not arrived is not
/// free: it runs its read path down through hyper's upgrade wrappers to tokio's readiness check —
/// about 900 instructions, twice per delivered frame, 8 % of the server's instructions per
/// delivery under a chat load (callgrind). The gate hands the socket a waker of its own, which
/// notes that the socket became readable before waking the task; until it fires, polling the
/// gate costs two atomic operations.
struct ReadGate {
    ready: Arc<ReadReady>,
    waker: std::task::Waker,
}

struct ReadReady {
    /// Set when the socket may have something to read: at first, by the socket's waker, and after
    /// every frame read (tungstenite may hold more already read from the socket).
    ready: std::sync::atomic::AtomicBool,
    task: futures::task::AtomicWaker,
}

impl std::task::Wake for ReadReady {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.store(true, std::sync::atomic::Ordering::Release);
        self.task.wake();
    }
}

impl ReadGate {
    fn new() -> ReadGate {
        let ready = Arc::new(ReadReady {
            ready: std::sync::atomic::AtomicBool::new(true),
            task: futures::task::AtomicWaker::new(),
        });
        let waker = std::task::Waker::from(ready.clone());
        ReadGate { ready, waker }
    }

    /// The next client frame, like `WebSocket::recv`.
    fn next<'a>(
        &'a self,
        socket: &'a mut WebSocket,
    ) -> impl std::future::Future<Output = Option<Result<WsMessage, axum::Error>>> + 'a {
        use futures::StreamExt;
        use std::sync::atomic::Ordering;
        std::future::poll_fn(move |cx| {
            self.ready.task.register(cx.waker());
            if !self.ready.ready.swap(false, Ordering::AcqRel) {
                return std::task::Poll::Pending;
            }
            let polled = socket.poll_next_unpin(&mut std::task::Context::from_waker(&self.waker));
            if polled.is_ready() {
                self.ready.ready.store(true, Ordering::Release);
            }
            polled
        })
    }
}

/// A message body, or why it is refused.
fn parse_body(body: String) -> Result<Body, (ErrorCode, String)> {
    Body::parse(body).map_err(refused_body)
}

/// The error frame's code and text for a refused body.
fn refused_body(e: ParseError) -> (ErrorCode, String) {
    let code = if e == ParseError::EmptyBody {
        ErrorCode::Empty
    } else {
        ErrorCode::TooLarge
    };
    (code, e.to_string())
}

/// How to end a connection whose socket could not be read. A frame over the hard limit is the
/// client's mistake and gets a close frame saying so (1009, as RFC 6455 asks); anything else
/// (reset, broken framing) means the client is gone or not speaking WebSocket.
fn read_failed(error: axum::Error) -> End {
    match error.into_inner().downcast::<tungstenite::Error>() {
        Ok(e) if matches!(*e, tungstenite::Error::Capacity(_)) => End::Close(Close::TooBig),
        _ => End::Gone,
    }
}

/// How to close a connection the hub asked to close.
fn closing(conn: &Conn) -> End {
    match conn.close_reason() {
        Some(CloseReason::Resync) => End::Close(Close::Resync),
        Some(CloseReason::LoggedOut) => End::Close(Close::LoggedOut),
        Some(CloseReason::Disabled) => End::Close(Close::Disabled),
        Some(CloseReason::SlowConsumer) | None => End::Close(Close::SlowConsumer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_syncs_do_not_grow_the_replay_queue() {
        let mut replay = Replay::default();
        for round in 0..10_000 {
            replay.request(ConvId(7), 0);
            replay.request(ConvId(9), round % 3);
        }
        assert_eq!(replay.0, VecDeque::from([(ConvId(7), 0), (ConvId(9), 2)]));
        // A page already sent is not sent again; a client that holds more moves it forward.
        replay.0[0].1 = 200;
        replay.request(ConvId(7), 0);
        replay.request(ConvId(9), 40);
        assert_eq!(
            replay.0,
            VecDeque::from([(ConvId(7), 200), (ConvId(9), 40)])
        );
    }
}
