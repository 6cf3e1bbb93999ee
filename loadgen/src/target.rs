//! The system under test: Tidings or the Socket.IO peer, behind one small interface so that the
//! scenarios never care which one they drive.
//!
//! Each server needs four things from us: an account ([`Kind::register`]), a room
//! ([`Kind::create_room`]: a Tidings group, or just a name for Socket.IO), a connection that has
//! finished its handshake and joined its room ([`Kind::connect`]), and two frame codecs: one that
//! writes a send ([`Kind::send_frame`]) and one that reads whatever arrives ([`Kind::parse`]) into
//! an [`Event`]. The wire details live in [`crate::tidings`] and [`crate::socketio`].

use crate::{socketio, tidings};
use anyhow::Result;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Tidings,
    Socketio,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Tidings => "tidings",
            Kind::Socketio => "socketio",
        }
    }
}

/// A registered user and what proves it on connect.
#[derive(Clone, Debug)]
pub struct Account {
    pub username: String,
    pub user_id: i64,
    /// Tidings: the `tidings_session=…` cookie pair. Socket.IO: the handshake token.
    pub credential: String,
}

/// One chat room: a Tidings group (`conv`) or a Socket.IO room (named after `index`).
#[derive(Clone, Copy, Debug)]
pub struct Room {
    pub index: usize,
    pub conv: i64,
}

impl Room {
    pub fn socketio_name(&self) -> String {
        format!("r{}", self.index)
    }
}

/// What one incoming text frame means to the load generator.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The server accepted our send number `counter` of `epoch`.
    Ack { epoch: u32, counter: u32 },
    /// Another member's message reached us; the body carries its [`crate::stamp::Stamp`].
    Delivery { body: &'a str },
    /// The server refused a frame (Tidings `error`, e.g. `rate_limited`).
    Refused,
    /// A frame to answer at once (Socket.IO's application-level ping).
    Reply(&'static str),
    /// The server ends the session (Socket.IO disconnect packet).
    Closed,
    /// Anything else: hello, presence, our own message echoed back, …
    Other,
}

/// Why a registration failed, and whether trying again may help.
#[derive(Debug)]
pub struct RegisterError {
    pub retry: bool,
    pub message: String,
}

impl RegisterError {
    /// POSTs the registration form to `url`; a response with a success status, or why not.
    /// 429 (a hashing queue full) and 5xx are worth another try; other refusals are ours.
    pub async fn post_form(
        http: &reqwest::Client,
        url: String,
        username: &str,
        password: &str,
    ) -> Result<reqwest::Response, RegisterError> {
        let res = http
            .post(url)
            .form(&[("username", username), ("password", password)])
            .send()
            .await
            .map_err(|e| RegisterError {
                retry: true,
                message: e.to_string(),
            })?;
        let status = res.status();
        if status.is_success() {
            return Ok(res);
        }
        let retry = status.as_u16() == 429 || status.is_server_error();
        let body = res.text().await.unwrap_or_default();
        Err(RegisterError {
            retry,
            message: format!("{status}: {body}"),
        })
    }
}

impl Kind {
    pub async fn register(
        self,
        http: &reqwest::Client,
        base: &str,
        username: &str,
        password: &str,
    ) -> Result<Account, RegisterError> {
        match self {
            Kind::Tidings => tidings::register(http, base, username, password).await,
            Kind::Socketio => socketio::register(http, base, username, password).await,
        }
    }

    /// Creates room `index` with `owner` and `members`; Socket.IO rooms need no creation.
    pub async fn create_room(
        self,
        http: &reqwest::Client,
        base: &str,
        index: usize,
        owner: &Account,
        members: &[&str],
    ) -> Result<Room> {
        let conv = match self {
            Kind::Tidings => {
                tidings::create_group(http, base, owner, &format!("Room {index}"), members).await?
            }
            Kind::Socketio => 0,
        };
        Ok(Room { index, conv })
    }

    /// Opens a WebSocket, authenticates, and (Socket.IO) joins `room`.
    pub async fn connect(self, base: &str, account: &Account, room: Option<&Room>) -> Result<Ws> {
        match self {
            Kind::Tidings => tidings::connect(base, account).await,
            Kind::Socketio => {
                socketio::connect(base, account, room.map(Room::socketio_name).as_deref()).await
            }
        }
    }

    /// The text frame for send slot `counter` of `epoch` carrying `body`.
    pub fn send_frame(self, room: &Room, epoch: u32, counter: u32, body: &str) -> String {
        match self {
            Kind::Tidings => tidings::send_frame(room.conv, epoch, counter, body),
            Kind::Socketio => socketio::send_frame(&room.socketio_name(), epoch, counter, body),
        }
    }

    /// Reads one incoming text frame; `me` is the receiving user's id.
    pub fn parse<'a>(self, text: &'a str, me: i64) -> Event<'a> {
        match self {
            Kind::Tidings => tidings::parse(text, me),
            Kind::Socketio => socketio::parse(text),
        }
    }
}

/// WebSocket buffers sized for small chat frames. tungstenite zero-fills its whole read buffer
/// before every read from the socket: with the default 128 KiB that memset alone would cost
/// more than parsing the frames it reads. Frames here are a few hundred bytes.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(16 * 1024)
}

/// `http://host:port` → `ws://host:port`.
pub fn ws_base(base: &str) -> String {
    let base = base.trim_end_matches('/');
    match base.strip_prefix("http://") {
        Some(rest) => format!("ws://{rest}"),
        None => base.to_owned(),
    }
}
