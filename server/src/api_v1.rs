//! `/api/v1`: the API for programs (bots, integrations), authenticated by a bearer token
//! (`Authorization: Bearer <token>`, made by `tidings bot create`), JSON in and out, errors as
//! `{"code","message"}` with the same codes and statuses as the rest of the HTTP API.
//!
//! - `GET /api/v1/events?after=ID&limit=N`: the event stream from the outbox (see
//!   `store::outbox`), for consumers without Redis; an admin token sees every event, a bot's
//!   token those of its conversations.
//! - `GET /api/v1/conversations`: the bot's conversations.
//! - `POST /api/v1/conversations/{id}/messages` (`{"body"}`, optional `Idempotency-Key`): posts
//!   through the same committer as a WebSocket `send` — the same membership check, body rules,
//!   per-user rate limit, seq, fan-out and idempotency (the key is the `client_id`).
//! - `GET /api/v1/conversations/{id}/messages?after_seq=N&limit=M`: the log after seq N.
//! - `GET /api/v1/openapi.json`: this API described in OpenAPI 3.
//! - `POST /hooks/{secret}` (`{"text"}`): an incoming webhook, posting as its bot; the secret
//!   is the credential (made in the group's settings, see `store::webhooks`).
//!
//! Parses and authorizes; the work is the store's. Never trusts an id without checking
//! membership.

use crate::auth::token_hash;
use crate::store::{NewEntry, Op, TokenUser};
use crate::AppState;
use app::api::{ApiError, ApiErrorCode};
use app::events::EventPage;
use app::model::{
    Body, ClientId, ConvId, Conversation, Entry, Event, Message, Seq, UserRef, MAX_HISTORY_PAGE,
};
use app::protocol::{ErrorCode, ServerFrame};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The most events one page of `/api/v1/events` returns.
pub const MAX_EVENTS_PAGE: u32 = 1000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events", get(events))
        .route("/api/v1/conversations", get(conversations))
        .route(
            "/api/v1/conversations/{id}/messages",
            post(post_message).get(messages),
        )
        .route("/api/v1/openapi.json", get(openapi))
        .route("/hooks/{secret}", post(webhook))
}

#[derive(Debug, Deserialize)]
pub struct WebhookPost {
    pub text: String,
}

/// `POST /hooks/{secret}` with `{"text": …}`: posts as the webhook's bot (an `Idempotency-Key`
/// is honoured here too). A wrong or revoked secret is 404 and stores nothing.
async fn webhook(
    State(state): State<AppState>,
    Path(secret): Path<String>,
    headers: HeaderMap,
    body: Result<Json<WebhookPost>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Message>, V1Error> {
    let Some(hook) = state.store.webhook_by_secret(&token_hash(&secret)).await? else {
        return Err(ApiError::not_found("no such webhook (revoked, or a wrong URL)").into());
    };
    let Json(post) = body
        .map_err(|e| ApiError::invalid(format!("send a JSON object {{\"text\": \"…\"}}: {e}")))?;
    let client_id = idempotency_key(&headers)?;
    let text = Body::parse(post.text)?;
    submit(&state, hook.bot, hook.conv, client_id, text, None).await
}

/// The OpenAPI document of `/api/v1`, written by hand beside this module.
const OPENAPI: &str = include_str!("api_v1_openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// An error answered as JSON with its status.
pub struct V1Error(pub ApiError);

impl IntoResponse for V1Error {
    fn into_response(self) -> Response {
        (self.0.status(), Json(self.0)).into_response()
    }
}

impl From<ApiError> for V1Error {
    fn from(e: ApiError) -> Self {
        V1Error(e)
    }
}

impl From<app::model::ParseError> for V1Error {
    fn from(e: app::model::ParseError) -> Self {
        V1Error(e.into())
    }
}

impl From<crate::store::StoreError> for V1Error {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "an /api/v1 request failed");
        V1Error(ApiError::internal(
            "the server could not do that; retry later",
        ))
    }
}

/// The bot (or admin) a request's bearer token speaks for.
pub struct Bearer(pub TokenUser);

impl FromRequestParts<AppState> for Bearer {
    type Rejection = V1Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, V1Error> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let unauthorized = || {
            V1Error(ApiError::new(
                ApiErrorCode::Unauthorized,
                "send a valid bot token as `Authorization: Bearer <token>` (tidings bot create)",
            ))
        };
        let Some(token) = token else {
            return Err(unauthorized());
        };
        match state.store.token_user(&token_hash(token)).await? {
            Some(user) => Ok(Bearer(user)),
            None => Err(unauthorized()),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    /// Continue after this event id (0, or absent: from the beginning).
    #[serde(default)]
    pub after: i64,
    /// At most this many events (1–1000, default 100).
    pub limit: Option<u32>,
}

/// `GET /api/v1/events?after=ID&limit=N`: `{"events":[…],"next":ID}`; pass `next` as `after`.
async fn events(
    State(state): State<AppState>,
    Bearer(who): Bearer,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<EventPage>, V1Error> {
    let Query(query) = query.map_err(|e| ApiError::invalid(format!("bad query: {e}")))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_EVENTS_PAGE).contains(&limit) {
        return Err(ApiError::invalid(format!("limit must be 1–{MAX_EVENTS_PAGE}")).into());
    }
    if query.after < 0 {
        return Err(ApiError::invalid("after must be an event id (0 or more)").into());
    }
    let member = (!who.admin).then_some(who.user.id);
    Ok(Json(
        state.store.events_after(query.after, limit, member).await?,
    ))
}

/// `GET /api/v1/conversations`: the bot's conversations, as `/api/conversations` lists them.
async fn conversations(
    State(state): State<AppState>,
    Bearer(who): Bearer,
) -> Result<Json<Vec<Conversation>>, V1Error> {
    Ok(Json(state.store.conversations_for(who.user.id).await?))
}

#[derive(Debug, Deserialize)]
pub struct PostMessage {
    pub body: String,
    /// The seq of the message this one answers.
    #[serde(default)]
    pub reply_to: Option<Seq>,
}

/// How long a post waits for its commit before answering `internal` (retry with the same key).
const COMMIT_WAIT: Duration = Duration::from_secs(10);

/// `POST /api/v1/conversations/{id}/messages`: the stored message (on a repeated
/// `Idempotency-Key`, the original's seq, id and time; nothing is stored twice).
async fn post_message(
    State(state): State<AppState>,
    Bearer(who): Bearer,
    conv: Result<Path<i64>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
    body: Result<Json<PostMessage>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Message>, V1Error> {
    let Path(conv) = conv.map_err(|_| ApiError::invalid("the conversation id is a number"))?;
    let Json(post) = body
        .map_err(|e| ApiError::invalid(format!("send a JSON object {{\"body\": \"…\"}}: {e}")))?;
    let client_id = idempotency_key(&headers)?;
    let text = Body::parse(post.body)?;
    submit(
        &state,
        who.user,
        ConvId(conv),
        client_id,
        text,
        post.reply_to,
    )
    .await
}

/// Posts `text` to `conv` as `sender` through the committer, exactly as a WebSocket `send`:
/// the sender's rate limit on this node, then membership, seq, fan-out and idempotency (by
/// `client_id`) in the commit. Answers with the stored message (or the original of a repeat).
pub(crate) async fn submit(
    state: &AppState,
    sender: UserRef,
    conv: ConvId,
    client_id: ClientId,
    text: Body,
    reply_to: Option<Seq>,
) -> Result<Json<Message>, V1Error> {
    // The same allowance as the sender's WebSocket sends, on this node.
    if state.limits.sender(sender.id).check().is_err() {
        state.metrics.refused(crate::metrics::Limit::Send);
        return Err(ApiError::new(
            ApiErrorCode::RateLimited,
            "sending too fast: retry in a moment with the same Idempotency-Key",
        )
        .into());
    }
    let entry = NewEntry {
        sender: sender.clone(),
        conv,
        client_id: client_id.as_str().to_owned(),
        op: Op::Message {
            body: text.clone(),
            reply_to,
            attachment: None,
        },
    };
    let (conn, mut answers) = state.hub.detached(sender.id, 4);
    if state.committer.submit(entry, conn).await.is_err() {
        return Err(ApiError::internal("the server is shutting down; retry").into());
    }
    let answer = tokio::time::timeout(COMMIT_WAIT, answers.recv())
        .await
        .ok()
        .flatten()
        .and_then(|frame| serde_json::from_str::<ServerFrame>(frame.as_str()).ok());
    match answer {
        Some(ServerFrame::Ack {
            client_id,
            conv,
            id,
            seq,
            at,
        }) => Ok(Json(Message {
            conv,
            seq,
            id,
            client_id,
            sender,
            body: text.as_str().to_owned(),
            at,
            reply_to: None,
            edited_at: None,
            deleted: false,
            reactions: Vec::new(),
            attachment: None,
        })),
        Some(ServerFrame::Error { code, message, .. }) => Err(V1Error(ApiError::new(
            match code {
                ErrorCode::NotMember | ErrorCode::NotAllowed => ApiErrorCode::Forbidden,
                ErrorCode::UnknownConversation | ErrorCode::UnknownMessage => {
                    ApiErrorCode::NotFound
                }
                ErrorCode::RateLimited => ApiErrorCode::RateLimited,
                ErrorCode::Internal => ApiErrorCode::Internal,
                _ => ApiErrorCode::Invalid,
            },
            message,
        ))),
        _ => Err(ApiError::internal(
            "the message was not confirmed in time; retry with the same Idempotency-Key",
        )
        .into()),
    }
}

/// The request's `Idempotency-Key` as the entry's `client_id`, or (without one) 128 random
/// bits in hex, which never repeat.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<ClientId, V1Error> {
    match headers.get("idempotency-key") {
        Some(key) => {
            let key = key.to_str().unwrap_or_default().to_owned();
            ClientId::parse(key).map_err(|_| {
                V1Error(ApiError::invalid(
                    "Idempotency-Key: 1–64 letters, digits or '-' (a UUID will do)",
                ))
            })
        }
        None => Ok(ClientId::parse(crate::auth::new_token()[..32].to_owned())
            .expect("hex is a valid client id")),
    }
}

#[derive(Debug, Deserialize)]
pub struct MessagesQuery {
    #[serde(default)]
    pub after_seq: Seq,
    pub limit: Option<u32>,
}

/// A page of a conversation's log for a bot.
#[derive(Debug, Serialize)]
pub struct LogPage {
    /// New messages, in their current state, oldest first.
    pub messages: Vec<Message>,
    /// Everything else of the log in the same range (edits, deletions, reactions, group events).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// The highest seq of this page (pass it as `after_seq`), or `after_seq` if it is empty.
    pub next_seq: Seq,
}

/// `GET /api/v1/conversations/{id}/messages?after_seq=N&limit=M` (1–100, default 50).
async fn messages(
    State(state): State<AppState>,
    Bearer(who): Bearer,
    conv: Result<Path<i64>, axum::extract::rejection::PathRejection>,
    query: Result<Query<MessagesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<LogPage>, V1Error> {
    let Path(conv) = conv.map_err(|_| ApiError::invalid("the conversation id is a number"))?;
    let Query(query) = query.map_err(|e| ApiError::invalid(format!("bad query: {e}")))?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_HISTORY_PAGE).contains(&limit) || query.after_seq < 0 {
        return Err(ApiError::invalid(format!(
            "limit must be 1–{MAX_HISTORY_PAGE} and after_seq 0 or more"
        ))
        .into());
    }
    let conv = ConvId(conv);
    if state.store.role(conv, who.user.id).await?.is_none() {
        return Err(match state.store.kind(conv).await? {
            Some(_) => ApiError::forbidden("the bot is not a member of this conversation"),
            None => ApiError::not_found("no such conversation"),
        }
        .into());
    }
    let entries = state.store.after(conv, query.after_seq, limit).await?;
    let next_seq = entries.last().map_or(query.after_seq, Entry::seq);
    let (mut messages, mut events) = (Vec::new(), Vec::new());
    for entry in entries {
        match entry {
            Entry::Message(m) => messages.push(m),
            Entry::Event(e) => events.push(e),
        }
    }
    Ok(Json(LogPage {
        messages,
        events,
        next_seq,
    }))
}
