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

use crate::hub::{CloseReason, Conn};
use crate::store::NewMessage;
use crate::AppState;
use app::api::ssr::session_token_from_headers;
use app::model::{Body, ClientId, ConvId, ParseError, Seq, UserRef};
use app::protocol::{ClientFrame, ErrorCode, ServerFrame, MAX_FRAME_BYTES};
use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::SinkExt;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::{interval, timeout, Instant, MissedTickBehavior};

/// Messages per replay page: bounds the work and memory of one step of a catch-up.
pub const REPLAY_PAGE: u32 = 200;
/// Frames above this are refused by the WebSocket layer itself (the connection closes with 1009);
/// frames between [`MAX_FRAME_BYTES`] and this get a `too_large` error and the connection stays.
const HARD_FRAME_LIMIT: usize = 1024 * 1024;
/// Bytes read from the socket at a time. Client frames are small (a `send` is a few hundred
/// bytes); a bigger one grows the buffer. Tungstenite also zero-fills this much per read.
const READ_BUFFER: usize = 2 * 1024;
/// Frames are gathered up to this many bytes before tungstenite writes them out; a flush after
/// each batch writes the rest.
const WRITE_BUFFER: usize = 8 * 1024;
/// Most queued frames written per batch, so a busy connection still reads its client in between.
const WRITE_BATCH: usize = 64;

/// Close codes (4000–4999 are the application's own).
pub mod close {
    pub const GOING_AWAY: u16 = 1001;
    pub const INTERNAL: u16 = 1011;
    pub const SLOW_CONSUMER: u16 = 4001;
    pub const IDLE_TIMEOUT: u16 = 4002;
    pub const RESYNC: u16 = 4003;
    pub const DISABLED: u16 = 4004;
}

/// `GET /ws`: upgrades only requests with a valid session cookie and an allowed `Origin`.
pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers, &state.config.allowed_origins) {
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    let Some(token) = session_token_from_headers(&headers) else {
        return (
            StatusCode::UNAUTHORIZED,
            "log in first: no session cookie\n",
        )
            .into_response();
    };
    let user = match state.authenticate(&token).await {
        Ok(user) => user,
        Err(e) => {
            return (
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED),
                e.message,
            )
                .into_response()
        }
    };
    ws.max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| async move {
            let conn_user = user.username.clone();
            tracing::debug!(user = %conn_user, "websocket open");
            Connection::new(state, user, socket).run().await;
            tracing::debug!(user = %conn_user, "websocket closed");
        })
}

/// Browsers always send `Origin` on WebSocket requests; it must name this server (same host) or
/// one of the configured extra origins. Non-browser clients send none and are let through: they
/// still need the cookie, which a cross-site page cannot attach to its own requests anyway.
fn origin_allowed(headers: &HeaderMap, extra: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    origin_host.eq_ignore_ascii_case(host)
        || extra.iter().any(|o| o.trim_end_matches('/') == origin)
}

/// Why the connection loop ended.
enum End {
    /// The client closed or vanished; nothing more to send.
    Gone,
    /// We close with this code and reason.
    Close(u16, &'static str),
}

struct Connection {
    state: AppState,
    user: UserRef,
    socket: WebSocket,
    /// Conversations still to replay for `sync`, with the last seq already sent.
    replay: VecDeque<(ConvId, Seq)>,
}

impl Connection {
    fn new(state: AppState, user: UserRef, socket: WebSocket) -> Self {
        Connection {
            state,
            user,
            socket,
            replay: VecDeque::new(),
        }
    }

    async fn run(mut self) {
        let (conn, mut queue) = self
            .state
            .hub
            .connect(self.user.id, self.state.config.outbound_queue);
        let end = self.serve(&conn, &mut queue).await;
        if let Some(convs) = self.state.hub.disconnect(&conn) {
            self.state
                .presence
                .departed(&self.state.bus, self.user.id, &convs);
        }
        if let End::Close(code, reason) = end {
            if code == close::SLOW_CONSUMER {
                self.state
                    .hub
                    .stats
                    .slow_consumers
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(user = %self.user.username, "closed a slow consumer");
            }
            let frame = CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            };
            // Best effort: a slow or vanished client may never read it.
            let _ = timeout(
                Duration::from_secs(1),
                self.socket.send(WsMessage::Close(Some(frame))),
            )
            .await;
        }
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
                    return Err(End::Close(close::INTERNAL, "server error; reconnect"));
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
            self.state
                .presence
                .arrived(&self.state.hub, &self.state.bus, self.user.id);
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
        // Grows with the batches that actually come: an idle connection allocates nothing here.
        let mut outgoing = Vec::new();

        loop {
            tokio::select! {
                _ = &mut closed => return closing(conn),
                _ = &mut shutdown => return End::Close(close::GOING_AWAY, "server shutting down"),
                incoming = self.socket.recv() => {
                    let Some(Ok(msg)) = incoming else { return End::Gone };
                    last_heard = Instant::now();
                    match msg {
                        WsMessage::Text(text) => {
                            if let Err(end) = Box::pin(self.on_text(conn, text.as_str())).await {
                                return end;
                            }
                        }
                        WsMessage::Binary(_) => conn.push_frame(&ServerFrame::error(
                            ErrorCode::BadFrame, "binary frames are not part of the protocol; send JSON text", None)),
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
                        return End::Close(close::IDLE_TIMEOUT, "idle timeout");
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
    /// failure to write ends the connection.
    async fn on_text(&mut self, conn: &Conn, text: &str) -> Result<(), End> {
        if text.len() > MAX_FRAME_BYTES {
            conn.push_frame(&ServerFrame::error(
                ErrorCode::TooLarge,
                format!("frame is over {MAX_FRAME_BYTES} bytes"),
                None,
            ));
            return Ok(());
        }
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(e) => {
                conn.push_frame(&ServerFrame::error(
                    ErrorCode::BadFrame,
                    format!("unreadable frame: {e}"),
                    None,
                ));
                return Ok(());
            }
        };
        match frame {
            ClientFrame::Send {
                conv,
                client_id,
                body,
            } => self.on_send(conn, conv, client_id, body).await,
            ClientFrame::Sync { cursors } => {
                for (conv, seq) in cursors {
                    if self.state.hub.is_member(self.user.id, conv) {
                        self.replay.push_back((conv, seq.max(0)));
                    } else {
                        conn.push_frame(&ServerFrame::error(
                            ErrorCode::NotMember,
                            format!("cannot sync conversation {conv}: you are not a member"),
                            None,
                        ));
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
                }
                Ok(())
            }
            ClientFrame::Ping => {
                conn.push_frame(&ServerFrame::Pong);
                Ok(())
            }
        }
    }

    async fn on_send(
        &mut self,
        conn: &Conn,
        conv: ConvId,
        client_id: String,
        body: String,
    ) -> Result<(), End> {
        let refuse = |code, message: String, client_id: String| {
            conn.push_frame(&ServerFrame::error(code, message, Some(client_id)));
            Ok(())
        };
        let client_id = match ClientId::parse(client_id) {
            Ok(id) => id,
            Err(e) => return refuse(ErrorCode::BadFrame, e.to_string(), String::new()),
        };
        let body = match Body::parse(body) {
            Ok(body) => body,
            Err(e) => {
                let code = if e == ParseError::EmptyBody {
                    ErrorCode::Empty
                } else {
                    ErrorCode::TooLarge
                };
                return refuse(code, e.to_string(), client_id.into_inner());
            }
        };
        let message = NewMessage {
            sender: self.user.clone(),
            conv,
            client_id: client_id.into_inner(),
            body: body.into_inner(),
        };
        // Membership is checked again inside the commit's transaction, against the database.
        self.state
            .committer
            .submit(message, conn.clone())
            .await
            .map_err(|_| End::Close(close::GOING_AWAY, "server shutting down"))
    }

    /// Sends the next page of the pending replay, then `synced` once all cursors are caught up.
    async fn replay_page(&mut self, conn: &Conn) -> Result<(), End> {
        let Some((conv, after)) = self.replay.front().copied() else {
            return Ok(());
        };
        let page = match self.state.store.after(conv, after, REPLAY_PAGE).await {
            Ok(page) => page,
            Err(e) => {
                tracing::error!(error = %e, "replay query failed");
                return Err(End::Close(close::INTERNAL, "server error; reconnect"));
            }
        };
        let full = page.len() == REPLAY_PAGE as usize;
        let last = page.last().map(|m| m.seq);
        let frames = page
            .into_iter()
            .map(|message| WsMessage::Text(ServerFrame::Message(message).to_json().into()));
        self.write(conn, frames).await?;
        match (full, last) {
            (true, Some(last)) => self.replay[0].1 = last,
            _ => {
                self.replay.pop_front();
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
                        Err(_) => return Err(End::Close(close::SLOW_CONSUMER, SLOW)),
                    },
                    _ = conn.closed() => return Err(closing(conn)),
                }
            }
        };
        written.map_err(|_| End::Gone)
    }
}

const SLOW: &str = "slow consumer: reconnect and sync";

/// How to close a connection the hub asked to close.
fn closing(conn: &Conn) -> End {
    match conn.close_reason() {
        Some(CloseReason::Resync) => End::Close(close::RESYNC, "resync: reconnect and sync"),
        Some(CloseReason::Disabled) => End::Close(close::DISABLED, "account disabled"),
        Some(CloseReason::SlowConsumer) | None => End::Close(close::SLOW_CONSUMER, SLOW),
    }
}
