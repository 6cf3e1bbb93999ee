//! Speaking Tidings: the HTTP API for accounts and groups, and the `/ws` frames (PROTOCOL.md).
//!
//! Sending uses the real protocol type, `app::protocol::ClientFrame`, so the frame format lives in
//! one place. Receiving deliberately does not: a full `ServerFrame` allocates a `String` for every
//! field (body, username, client id, timestamp parsed into a `DateTime`), and at a hundred
//! thousand deliveries a second on a 2-core machine shared with the server, that cost would be
//! measured as the server's. [`Incoming`] borrows the few fields we need straight from the frame
//! text and lets serde skip the rest.
//!
//! Two server behaviours are handled so the load generator works across server versions:
//! * the server may or may not echo a `message` back to the sending connection (its `ack` is
//!   the sender's notice): a `message` whose sender is the receiving user is ignored, so only
//!   deliveries to *other* members count;
//! * register may answer 429 `rate_limited` when the password-hashing queue is full: the caller
//!   retries with backoff (see [`crate::setup`]).

use crate::target::{ws_base, Account, Event, RegisterError, Ws};
use anyhow::{anyhow, bail, Context, Result};
use app::model::ConvId;
use app::protocol::ClientFrame;
use futures::StreamExt;
use serde::Deserialize;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// `POST /api/register`: answers the user and sets the `tidings_session` cookie.
pub async fn register(
    http: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> Result<Account, RegisterError> {
    let res =
        RegisterError::post_form(http, format!("{base}/api/register"), username, password).await?;
    let cookie = res
        .cookies()
        .find(|c| c.name() == "tidings_session")
        .map(|c| format!("tidings_session={}", c.value()));
    #[derive(Deserialize)]
    struct User {
        id: i64,
    }
    let user: User = res.json().await.map_err(|e| RegisterError {
        retry: false,
        message: format!("register answer: {e}"),
    })?;
    let credential = cookie.ok_or_else(|| RegisterError {
        retry: false,
        message: "register set no tidings_session cookie".into(),
    })?;
    Ok(Account {
        username: username.to_owned(),
        user_id: user.id,
        credential,
    })
}

/// `POST /api/create_group`: `owner` creates a group with `members`; answers its conversation id.
pub async fn create_group(
    http: &reqwest::Client,
    base: &str,
    owner: &Account,
    title: &str,
    members: &[&str],
) -> Result<i64> {
    let res = http
        .post(format!("{base}/api/create_group"))
        .header("cookie", &owner.credential)
        .form(&[("title", title), ("members", &members.join(","))])
        .send()
        .await?;
    let status = res.status();
    if !status.is_success() {
        bail!(
            "create_group: {status}: {}",
            res.text().await.unwrap_or_default()
        );
    }
    #[derive(Deserialize)]
    struct Group {
        id: i64,
    }
    Ok(res.json::<Group>().await?.id)
}

/// `GET /ws` with the session cookie; returns once the server's `hello` has arrived.
pub async fn connect(base: &str, account: &Account) -> Result<Ws> {
    let mut request = format!("{}/ws", ws_base(base)).into_client_request()?;
    request
        .headers_mut()
        .insert("cookie", account.credential.parse()?);
    // disable_nagle: small frames must not wait for the previous one's ACK.
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
        request,
        Some(crate::target::ws_config()),
        true,
    )
    .await
    .context("ws connect")?;
    let first = tokio::time::timeout(Duration::from_secs(30), ws.next())
        .await
        .map_err(|_| anyhow!("no hello within 30 s"))?;
    match first {
        Some(Ok(Message::Text(text))) if text.contains(r#""type":"hello""#) => Ok(ws),
        other => bail!("expected hello, got {other:?}"),
    }
}

/// Client ids encode the send slot: `e<epoch>n<counter>` (letters and digits, as required).
pub fn send_frame(conv: i64, epoch: u32, counter: u32, body: &str) -> String {
    ClientFrame::Send {
        conv: ConvId(conv),
        client_id: format!("e{epoch}n{counter}"),
        body: body.to_owned(),
        reply_to: None,
        attachment: None,
    }
    .to_json()
}

/// The fields of a server frame the load generator reads; everything else is skipped unread.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow, default)]
    client_id: Option<&'a str>,
    #[serde(default)]
    sender: Option<Sender>,
    #[serde(borrow, default)]
    body: Option<&'a str>,
}

#[derive(Deserialize)]
struct Sender {
    id: i64,
}

pub fn parse(text: &str, me: i64) -> Event<'_> {
    let Ok(frame) = serde_json::from_str::<Incoming>(text) else {
        return Event::Other;
    };
    match frame.kind {
        "message" => match (frame.sender, frame.body) {
            (Some(sender), Some(body)) if sender.id != me => Event::Delivery { body },
            _ => Event::Other,
        },
        "ack" => match frame.client_id.and_then(parse_client_id) {
            Some((epoch, counter)) => Event::Ack { epoch, counter },
            None => Event::Other,
        },
        "error" => Event::Refused,
        _ => Event::Other,
    }
}

fn parse_client_id(id: &str) -> Option<(u32, u32)> {
    let (epoch, counter) = id.strip_prefix('e')?.split_once('n')?;
    Some((epoch.parse().ok()?, counter.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_without_the_full_types() {
        let sent = send_frame(7, 3, 42, "hi");
        assert_eq!(
            sent,
            r#"{"type":"send","conv":7,"client_id":"e3n42","body":"hi"}"#
        );
        let ack = r#"{"type":"ack","client_id":"e3n42","conv":7,"id":310,"seq":42,"at":"2026-11-26T10:00:00.123Z"}"#;
        assert_eq!(
            parse(ack, 1),
            Event::Ack {
                epoch: 3,
                counter: 42
            }
        );
        let msg = r#"{"type":"message","conv":7,"seq":42,"id":310,"client_id":"e3n42","sender":{"id":2,"username":"al\"ice"},"body":"e3 s1 n42 t5 x","at":"…"}"#;
        assert_eq!(
            parse(msg, 1),
            Event::Delivery {
                body: "e3 s1 n42 t5 x"
            }
        );
        // Our own message echoed back is not a delivery.
        assert_eq!(parse(msg, 2), Event::Other);
        let err = r#"{"type":"error","code":"rate_limited","message":"slow \"down\"","client_id":"e3n43"}"#;
        assert_eq!(parse(err, 1), Event::Refused);
        assert_eq!(
            parse(r#"{"type":"hello","user":{"id":1,"username":"a"}}"#, 1),
            Event::Other
        );
    }
}
