//! Speaking Socket.IO 4 directly over a WebSocket, without a Socket.IO client library: the
//! protocol is a one-digit Engine.IO packet type, then (for messages) a one-digit Socket.IO
//! packet type, an optional ack id and a JSON array.
//!
//! ```text
//! GET /socket.io/?EIO=4&transport=websocket
//! server: 0{"sid":"…","pingInterval":25000,…}   Engine.IO open
//! client: 40{"token":"…"}                        Socket.IO connect, with auth
//! server: 40{"sid":"…"}                          connected (44{…} = refused)
//! client: 420["join","r7"]   server: 430[]       event with ack id 0, and its ack
//! client: 42<id>["message","r7","<body>"]        our send, ack id = epoch << 32 | counter
//! server: 43<id>[]                               its ack
//! server: 42["message","<body>"]                 another member's message
//! server: 2    client: 3                         Engine.IO ping / pong
//! ```
//!
//! As for Tidings, incoming events are read as borrowed `&str`s (see [`crate::tidings`] for why).
//! The ack id carries the send slot, so no per-send bookkeeping is needed to match acks.

use crate::target::{ws_base, Account, Event, RegisterError, Ws};
use anyhow::{anyhow, bail, Context, Result};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// The peer's `POST /register`: answers `{"id","username","token"}`.
pub async fn register(
    http: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> Result<Account, RegisterError> {
    let res =
        RegisterError::post_form(http, format!("{base}/register"), username, password).await?;
    #[derive(Deserialize)]
    struct Registered {
        id: i64,
        token: String,
    }
    let answer: Registered = res.json().await.map_err(|e| RegisterError {
        retry: false,
        message: format!("register answer: {e}"),
    })?;
    Ok(Account {
        username: username.to_owned(),
        user_id: answer.id,
        credential: answer.token,
    })
}

/// Opens the WebSocket transport, connects to the default namespace with the token, and joins
/// `room` (waiting for the join's ack, so the room is ours before anyone sends to it).
pub async fn connect(base: &str, account: &Account, room: Option<&str>) -> Result<Ws> {
    let url = format!("{}/socket.io/?EIO=4&transport=websocket", ws_base(base));
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(crate::target::ws_config()), true)
            .await
            .context("ws connect")?;
    expect(&mut ws, "0").await?;
    let connect = serde_json::json!({ "token": account.credential });
    ws.send(Message::text(format!("40{connect}"))).await?;
    let answer = expect(&mut ws, "4").await?;
    if !answer.starts_with("40") {
        bail!("socket.io connect refused: {answer}");
    }
    if let Some(room) = room {
        ws.send(Message::text(format!(r#"420["join","{room}"]"#)))
            .await?;
        expect(&mut ws, "430").await?;
    }
    Ok(ws)
}

/// Reads frames until one starts with `prefix` (answering pings meanwhile); returns it.
async fn expect(ws: &mut Ws, prefix: &str) -> Result<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| anyhow!("no {prefix}… frame within 30 s"))?;
        match frame {
            Some(Ok(Message::Text(text))) if text.starts_with(prefix) => {
                return Ok(text.to_string())
            }
            Some(Ok(Message::Text(text))) if text.as_str() == "2" => {
                ws.send(Message::text("3")).await?;
            }
            Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => {}
            other => bail!("expected {prefix}…, got {other:?}"),
        }
    }
}

/// `42<ack id>["message","<room>","<body>"]`. Room names and bodies need no JSON escaping
/// (see [`crate::stamp`]).
pub fn send_frame(room: &str, epoch: u32, counter: u32, body: &str) -> String {
    let ack_id = ((epoch as u64) << 32) | counter as u64;
    format!(r#"42{ack_id}["message","{room}","{body}"]"#)
}

pub fn parse(text: &str) -> Event<'_> {
    if text == "2" {
        return Event::Reply("3");
    }
    if let Some(rest) = text.strip_prefix("43") {
        let digits = rest.find('[').map_or(rest, |end| &rest[..end]);
        return match digits.parse::<u64>() {
            Ok(id) => Event::Ack {
                epoch: (id >> 32) as u32,
                counter: id as u32,
            },
            Err(_) => Event::Other,
        };
    }
    if let Some(args) = text.strip_prefix("42") {
        return match serde_json::from_str::<(&str, &str)>(args) {
            Ok(("message", body)) => Event::Delivery { body },
            _ => Event::Other,
        };
    }
    // 41: the server disconnected us from the namespace; 1: Engine.IO close.
    if text == "41" || text == "1" {
        return Event::Closed;
    }
    Event::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip() {
        let frame = send_frame("r7", 3, 42, "e3 s1 n42 t5 x");
        assert_eq!(frame, r#"4212884901930["message","r7","e3 s1 n42 t5 x"]"#);
        assert_eq!(
            parse("4312884901930[]"),
            Event::Ack {
                epoch: 3,
                counter: 42
            }
        );
        assert_eq!(
            parse(r#"42["message","e3 s1 n42 t5 x"]"#),
            Event::Delivery {
                body: "e3 s1 n42 t5 x"
            }
        );
        assert_eq!(parse("2"), Event::Reply("3"));
        assert_eq!(parse("41"), Event::Closed);
        assert_eq!(parse(r#"42["other","x"]"#), Event::Other);
    }
}
