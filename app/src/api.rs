//! The HTTP API: Leptos server functions at stable `/api/...` endpoints, and the error type they share.
//!
//! Each function checks the session itself and never trusts an id sent by the client. The work is
//! done by a [`ssr::Backend`] that the server binary provides through Leptos context: `app` stays
//! the contract and the UI, and never depends on the server's storage or fan-out code.
//!
//! Inputs are form-urlencoded (so the login form works before the WASM loads); replies are JSON.

use crate::model::{ConvId, Conversation, HistoryPage, ParseError, Seq, UserRef};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;
use server_fn::error::{FromServerFnError, ServerFnErrorErr};

/// Why an API call failed: a stable machine-readable `code` and a sentence for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: ApiErrorCode,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiErrorCode {
    /// A field is missing or malformed (HTTP 400).
    Invalid,
    /// No valid session: log in first (HTTP 401).
    Unauthorized,
    /// Wrong username or password (HTTP 401).
    BadCredentials,
    /// You are not a member of that conversation, or may not do that to it (HTTP 403).
    Forbidden,
    /// No such user or conversation (HTTP 404).
    NotFound,
    /// The username is taken (HTTP 409).
    Conflict,
    /// Too many attempts; wait and retry (HTTP 429).
    RateLimited,
    /// The upload is over the server's size limit (HTTP 413); nothing was stored.
    TooLarge,
    /// The server failed; retry later (HTTP 500).
    Internal,
    /// The request did not reach the server or its reply was unreadable (client side only).
    Transport,
}

impl ApiError {
    pub fn new(code: ApiErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ApiErrorCode::Invalid, message)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            ApiErrorCode::Unauthorized,
            "not logged in: log in and try again",
        )
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ApiErrorCode::Forbidden, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ApiErrorCode::NotFound, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ApiErrorCode::Internal, message)
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode;
        match self.code {
            ApiErrorCode::Invalid => StatusCode::BAD_REQUEST,
            ApiErrorCode::Unauthorized | ApiErrorCode::BadCredentials => StatusCode::UNAUTHORIZED,
            ApiErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ApiErrorCode::NotFound => StatusCode::NOT_FOUND,
            ApiErrorCode::Conflict => StatusCode::CONFLICT,
            ApiErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ApiErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiErrorCode::Internal | ApiErrorCode::Transport => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ParseError> for ApiError {
    fn from(e: ParseError) -> Self {
        ApiError::invalid(e.to_string())
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::MissingArg(m) => {
                ApiError::invalid(format!("bad request: {m}"))
            }
            ServerFnErrorErr::Request(m) => ApiError::new(
                ApiErrorCode::Transport,
                format!("could not reach the server: {m}"),
            ),
            other => ApiError::internal(other.to_string()),
        }
    }
}

/// Creates an account, logs it in (sets the session cookie) and returns it.
#[server(endpoint = "register")]
pub async fn register(username: String, password: String) -> Result<UserRef, ApiError> {
    use crate::model::{Password, Username};
    ssr::respond(async move {
        let username = Username::parse(&username)?;
        let password = Password::parse(&password)?;
        let backend = ssr::backend()?;
        backend.allow_registration(ssr::client_addr())?;
        let (user, token) = backend.register(username, password).await?;
        ssr::set_session_cookie(&token);
        leptos_axum::redirect("/");
        Ok(user)
    })
    .await
}

/// Checks the password and sets the session cookie.
#[server(endpoint = "login")]
pub async fn login(username: String, password: String) -> Result<UserRef, ApiError> {
    ssr::respond(async move {
        let backend = ssr::backend()?;
        let peer = ssr::peer_key();
        let (user, token) = backend.login(&username, &password, &peer).await?;
        ssr::set_session_cookie(&token);
        leptos_axum::redirect("/");
        Ok(user)
    })
    .await
}

/// Ends the current session (if any) and clears the cookie.
#[server(endpoint = "logout")]
pub async fn logout() -> Result<(), ApiError> {
    ssr::respond(async move {
        if let Some(token) = ssr::session_token() {
            ssr::backend()?.logout(&token).await?;
        }
        ssr::clear_session_cookie();
        leptos_axum::redirect("/login");
        Ok(())
    })
    .await
}

/// Changes the current user's password; every other session (other devices) is logged out.
#[server(endpoint = "change_password")]
pub async fn change_password(current: String, new: String) -> Result<(), ApiError> {
    use crate::model::Password;
    ssr::respond(async move {
        let new = Password::parse(&new)?;
        let (backend, me) = ssr::current_user().await?;
        let token = ssr::session_token().ok_or_else(ApiError::unauthorized)?;
        backend.change_password(&me, &token, &current, new).await
    })
    .await
}

/// Ends every session of the current user (all devices) and clears this one's cookie.
#[server(endpoint = "logout_everywhere")]
pub async fn logout_everywhere() -> Result<(), ApiError> {
    ssr::respond(async move {
        let (backend, me) = ssr::current_user().await?;
        backend.logout_everywhere(&me).await?;
        ssr::clear_session_cookie();
        leptos_axum::redirect("/login");
        Ok(())
    })
    .await
}

/// Who is logged in: the user, or `null` without a valid session.
#[server(endpoint = "me")]
pub async fn me() -> Result<Option<UserRef>, ApiError> {
    ssr::respond(async move {
        match ssr::current_user().await {
            Ok((_, user)) => Ok(Some(user)),
            Err(e) if e.code == ApiErrorCode::Unauthorized => Ok(None),
            Err(e) => Err(e),
        }
    })
    .await
}

/// My conversations, newest activity first.
#[server(endpoint = "conversations")]
pub async fn conversations() -> Result<Vec<Conversation>, ApiError> {
    ssr::respond(async move {
        let (backend, me) = ssr::current_user().await?;
        backend.conversations(&me).await
    })
    .await
}

/// The one direct conversation between me and `username` (created on first use).
#[server(endpoint = "open_direct")]
pub async fn open_direct(username: String) -> Result<Conversation, ApiError> {
    use crate::model::Username;
    ssr::respond(async move {
        let (backend, me) = ssr::current_user().await?;
        backend.open_direct(&me, Username::parse(&username)?).await
    })
    .await
}

/// A new group with me as its owner and `members` (comma or space separated usernames).
#[server(endpoint = "create_group")]
pub async fn create_group(title: String, members: String) -> Result<Conversation, ApiError> {
    use crate::model::{parse_member_list, GroupTitle};
    ssr::respond(async move {
        let (backend, me) = ssr::current_user().await?;
        let title = GroupTitle::parse(&title)?;
        let members = parse_member_list(&members)?;
        backend.create_group(&me, title, members).await
    })
    .await
}

/// Adds `username` to a group I am a member of.
#[server(endpoint = "add_member")]
pub async fn add_member(conv: ConvId, username: String) -> Result<Conversation, ApiError> {
    use crate::model::Username;
    ssr::respond(async move {
        let (backend, me) = ssr::current_user().await?;
        backend
            .add_member(&me, conv, Username::parse(&username)?)
            .await
    })
    .await
}

/// Removes `username` from a group I own or am an admin of (never its owner), or myself.
#[server(endpoint = "remove_member")]
pub async fn remove_member(conv: ConvId, username: String) -> Result<Conversation, ApiError> {
    use crate::model::Username;
    ssr::respond(async move {
        let (backend, me) = ssr::current_user().await?;
        backend
            .remove_member(&me, conv, Username::parse(&username)?)
            .await
    })
    .await
}

/// Leaves a group.
#[server(endpoint = "leave_group")]
pub async fn leave_group(conv: ConvId) -> Result<(), ApiError> {
    ssr::respond(async move {
        let (backend, me) = ssr::current_user().await?;
        backend.leave_group(&me, conv).await
    })
    .await
}

/// Makes `username` an admin (`role=admin`) or a plain member again (`role=member`) of a group
/// I own.
#[server(endpoint = "set_role")]
pub async fn set_role(
    conv: ConvId,
    username: String,
    role: String,
) -> Result<Conversation, ApiError> {
    use crate::model::{Role, Username};
    ssr::respond(async move {
        let (backend, me) = ssr::current_user().await?;
        let user = Username::parse(&username)?;
        backend
            .set_role(&me, conv, user, Role::parse_assignable(&role)?)
            .await
    })
    .await
}

/// Renames a group I own or am an admin of.
#[server(endpoint = "rename_group")]
pub async fn rename_group(conv: ConvId, title: String) -> Result<Conversation, ApiError> {
    use crate::model::GroupTitle;
    ssr::respond(async move {
        let (backend, me) = ssr::current_user().await?;
        backend
            .rename_group(&me, conv, GroupTitle::parse(&title)?)
            .await
    })
    .await
}

/// Up to `limit` (≤ 100, default 50) messages before `before_seq` (default: the newest), oldest first.
#[server(endpoint = "history")]
pub async fn history(
    conv: ConvId,
    before_seq: Option<Seq>,
    limit: Option<u32>,
) -> Result<HistoryPage, ApiError> {
    use crate::model::MAX_HISTORY_PAGE;
    ssr::respond(async move {
        let (backend, me) = ssr::current_user().await?;
        let limit = limit.unwrap_or(50);
        if !(1..=MAX_HISTORY_PAGE).contains(&limit) {
            return Err(ApiError::invalid(format!(
                "limit must be between 1 and {MAX_HISTORY_PAGE}"
            )));
        }
        backend.history(&me, conv, before_seq, limit).await
    })
    .await
}

/// Messages of my conversations (or of `conv` only) that contain every word of `query`, newest
/// first, `limit` (1–50, default 20) at a time; the next page is `before` the last hit's `id`.
/// Only conversations I am a member of now; deleted messages never match.
#[server(endpoint = "search")]
pub async fn search(
    query: String,
    conv: Option<ConvId>,
    before: Option<crate::model::MessageId>,
    limit: Option<u32>,
) -> Result<crate::search::SearchPage, ApiError> {
    use crate::search::{SearchQuery, DEFAULT_SEARCH_PAGE, MAX_SEARCH_PAGE};
    ssr::respond(async move {
        let (backend, me) = ssr::current_user().await?;
        let query = SearchQuery::parse(&query).map_err(|e| ApiError::invalid(e.to_string()))?;
        let limit = limit.unwrap_or(DEFAULT_SEARCH_PAGE);
        if !(1..=MAX_SEARCH_PAGE).contains(&limit) {
            return Err(ApiError::invalid(format!(
                "limit must be between 1 and {MAX_SEARCH_PAGE}"
            )));
        }
        backend.search(&me, query, conv, before, limit).await
    })
    .await
}

// ----- contacts and user search (issue #9) -----------------------------------------------------

/// My contacts and the requests waiting either way.
#[server(endpoint = "contacts")]
pub async fn contacts() -> Result<crate::contacts::ContactList, ApiError> {
    ssr::respond(async move {
        let (backend, me) = ssr::current_user().await?;
        backend.contacts(&me).await
    })
    .await
}

/// Asks `username` to become my contact (or accepts, if they already asked me).
#[server(endpoint = "request_contact")]
pub async fn request_contact(username: String) -> Result<crate::contacts::ContactChange, ApiError> {
    use crate::model::Username;
    ssr::respond(async move {
        let (backend, me) = ssr::current_user().await?;
        backend
            .request_contact(&me, Username::parse(&username)?)
            .await
    })
    .await
}

/// Accepts the request `username` sent me; opens our direct chat.
#[server(endpoint = "accept_contact")]
pub async fn accept_contact(username: String) -> Result<crate::contacts::ContactChange, ApiError> {
    use crate::model::Username;
    ssr::respond(async move {
        let (backend, me) = ssr::current_user().await?;
        backend
            .accept_contact(&me, Username::parse(&username)?)
            .await
    })
    .await
}

/// Declines the request `username` sent me.
#[server(endpoint = "decline_contact")]
pub async fn decline_contact(username: String) -> Result<crate::contacts::ContactChange, ApiError> {
    use crate::model::Username;
    ssr::respond(async move {
        let (backend, me) = ssr::current_user().await?;
        backend
            .decline_contact(&me, Username::parse(&username)?)
            .await
    })
    .await
}

/// Removes `username` from my contacts, or withdraws the request I sent them.
#[server(endpoint = "remove_contact")]
pub async fn remove_contact(username: String) -> Result<crate::contacts::ContactChange, ApiError> {
    use crate::model::Username;
    ssr::respond(async move {
        let (backend, me) = ssr::current_user().await?;
        backend
            .remove_contact(&me, Username::parse(&username)?)
            .await
    })
    .await
}

/// Up to [`crate::model::MAX_SEARCH_RESULTS`] other users whose name starts with `prefix`
/// (at least [`crate::model::MIN_SEARCH_CHARS`] characters), by name.
#[server(endpoint = "search_users")]
pub async fn search_users(prefix: String) -> Result<Vec<UserRef>, ApiError> {
    use crate::model::UsernamePrefix;
    ssr::respond(async move {
        let (backend, me) = ssr::current_user().await?;
        backend
            .search_users(&me, UsernamePrefix::parse(&prefix)?)
            .await
    })
    .await
}

/// Makes an incoming webhook for group `conv` (I am a member): its posts come from a bot named
/// `name` (a new name, or that of another webhook of this group), which joins the group. The
/// answer carries the secret URL's path, shown this once.
#[server(endpoint = "create_webhook")]
pub async fn create_webhook(
    conv: ConvId,
    name: String,
) -> Result<crate::model::NewWebhook, ApiError> {
    use crate::model::Username;
    ssr::respond(async move {
        let (backend, me) = ssr::current_user().await?;
        backend
            .create_webhook(&me, conv, Username::parse(&name)?)
            .await
    })
    .await
}

/// The webhooks of group `conv` (I am a member), oldest first.
#[server(endpoint = "webhooks")]
pub async fn webhooks(conv: ConvId) -> Result<Vec<crate::model::Webhook>, ApiError> {
    ssr::respond(async move {
        let (backend, me) = ssr::current_user().await?;
        backend.webhooks(&me, conv).await
    })
    .await
}

/// Revokes webhook `id` of group `conv` (I am a member): its URL answers 404 from now on.
#[server(endpoint = "revoke_webhook")]
pub async fn revoke_webhook(conv: ConvId, id: i64) -> Result<(), ApiError> {
    ssr::respond(async move {
        let (backend, me) = ssr::current_user().await?;
        backend.revoke_webhook(&me, conv, id).await
    })
    .await
}

/// The server side of the API: the interface the server binary implements, and the plumbing that
/// turns cookies and errors into HTTP.
#[cfg(feature = "ssr")]
pub mod ssr {
    use super::{ApiError, ApiErrorCode};
    use crate::contacts::{ContactChange, ContactList};
    use crate::model::UsernamePrefix;
    use crate::model::{
        ConvId, Conversation, GroupTitle, HistoryPage, Password, Role, Seq, UserRef, Username,
    };
    use http::{header, request::Parts, HeaderValue};
    use leptos::prelude::*;
    use leptos_axum::ResponseOptions;
    use std::future::Future;
    use std::sync::Arc;

    /// Name of the session cookie.
    pub const SESSION_COOKIE: &str = "tidings_session";

    /// Everything the server functions need from the server. Implemented once, by the `server`
    /// crate, and handed to Leptos as `Arc<dyn Backend>` context.
    #[async_trait::async_trait]
    pub trait Backend: Send + Sync + 'static {
        /// Creates the account and a session; returns the user and the session token.
        async fn register(
            &self,
            username: Username,
            password: Password,
        ) -> Result<(UserRef, String), ApiError>;
        /// `peer` identifies the caller (IP address) for rate limiting.
        async fn login(
            &self,
            username: &str,
            password: &str,
            peer: &str,
        ) -> Result<(UserRef, String), ApiError>;
        async fn logout(&self, token: &str) -> Result<(), ApiError>;
        /// Checks `current`, sets `new`, and ends every other session of `me` (closing their
        /// connections); the session `token` stays.
        async fn change_password(
            &self,
            me: &UserRef,
            token: &str,
            current: &str,
            new: Password,
        ) -> Result<(), ApiError>;
        /// Ends every session of `me` and closes all their connections.
        async fn logout_everywhere(&self, me: &UserRef) -> Result<(), ApiError>;
        /// Whether the caller (by address, when known) may register another account now;
        /// `RateLimited` if not.
        fn allow_registration(&self, _peer: Option<std::net::IpAddr>) -> Result<(), ApiError> {
            Ok(())
        }
        /// The user a session token belongs to, or `Unauthorized`. A session in use is kept
        /// alive: the server may extend it and re-issue the cookie ([`set_session_cookie`]).
        async fn authenticate(&self, token: &str) -> Result<UserRef, ApiError>;
        /// Extra attributes for the session cookie (e.g. "; Secure").
        fn cookie_attributes(&self) -> &str;
        /// The session cookie's `Max-Age` in seconds: a session's lifetime.
        fn session_max_age(&self) -> u64 {
            30 * 24 * 3600
        }
        async fn conversations(&self, me: &UserRef) -> Result<Vec<Conversation>, ApiError>;
        async fn open_direct(
            &self,
            me: &UserRef,
            other: Username,
        ) -> Result<Conversation, ApiError>;
        async fn create_group(
            &self,
            me: &UserRef,
            title: GroupTitle,
            members: Vec<Username>,
        ) -> Result<Conversation, ApiError>;
        async fn add_member(
            &self,
            me: &UserRef,
            conv: ConvId,
            user: Username,
        ) -> Result<Conversation, ApiError>;
        async fn remove_member(
            &self,
            me: &UserRef,
            conv: ConvId,
            user: Username,
        ) -> Result<Conversation, ApiError>;
        async fn leave_group(&self, me: &UserRef, conv: ConvId) -> Result<(), ApiError>;
        async fn rename_group(
            &self,
            me: &UserRef,
            conv: ConvId,
            title: GroupTitle,
        ) -> Result<Conversation, ApiError>;
        async fn set_role(
            &self,
            me: &UserRef,
            conv: ConvId,
            user: Username,
            role: Role,
        ) -> Result<Conversation, ApiError>;
        async fn history(
            &self,
            me: &UserRef,
            conv: ConvId,
            before_seq: Option<Seq>,
            limit: u32,
        ) -> Result<HistoryPage, ApiError>;
        /// Full-text search of `me`'s conversations (or of `conv`, which `me` must be in).
        async fn search(
            &self,
            me: &UserRef,
            query: crate::search::SearchQuery,
            conv: Option<ConvId>,
            before: Option<crate::model::MessageId>,
            limit: u32,
        ) -> Result<crate::search::SearchPage, ApiError>;

        // Contacts and user search (issue #9).
        async fn contacts(&self, me: &UserRef) -> Result<ContactList, ApiError>;
        async fn request_contact(
            &self,
            me: &UserRef,
            other: Username,
        ) -> Result<ContactChange, ApiError>;
        async fn accept_contact(
            &self,
            me: &UserRef,
            other: Username,
        ) -> Result<ContactChange, ApiError>;
        async fn decline_contact(
            &self,
            me: &UserRef,
            other: Username,
        ) -> Result<ContactChange, ApiError>;
        async fn remove_contact(
            &self,
            me: &UserRef,
            other: Username,
        ) -> Result<ContactChange, ApiError>;
        async fn search_users(
            &self,
            me: &UserRef,
            prefix: UsernamePrefix,
        ) -> Result<Vec<UserRef>, ApiError>;

        // Incoming webhooks (issue #11).
        async fn create_webhook(
            &self,
            me: &UserRef,
            conv: ConvId,
            name: Username,
        ) -> Result<crate::model::NewWebhook, ApiError>;
        async fn webhooks(
            &self,
            me: &UserRef,
            conv: ConvId,
        ) -> Result<Vec<crate::model::Webhook>, ApiError>;
        async fn revoke_webhook(&self, me: &UserRef, conv: ConvId, id: i64)
            -> Result<(), ApiError>;
    }

    pub type SharedBackend = Arc<dyn Backend>;

    pub fn backend() -> Result<SharedBackend, ApiError> {
        use_context::<SharedBackend>()
            .ok_or_else(|| ApiError::internal("server misconfigured: no backend in context"))
    }

    /// The session token from the request's cookie, if any.
    pub fn session_token() -> Option<String> {
        let parts = use_context::<Parts>()?;
        session_token_from_headers(&parts.headers)
    }

    /// Reads the session cookie out of a request's headers (also used by the WebSocket upgrade).
    pub fn session_token_from_headers(headers: &http::HeaderMap) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == SESSION_COOKIE)
            .map(|(_, value)| value.to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The logged-in user, or `Unauthorized`.
    pub async fn current_user() -> Result<(SharedBackend, UserRef), ApiError> {
        let backend = backend()?;
        let token = session_token().ok_or_else(ApiError::unauthorized)?;
        let user = backend.authenticate(&token).await?;
        Ok((backend, user))
    }

    /// The address a request comes from, as the server determined it (the connection's peer,
    /// or what a trusted proxy says it forwarded); the server puts it in the request.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ClientAddr(pub std::net::IpAddr);

    /// The caller's address, if the server told us.
    pub fn client_addr() -> Option<std::net::IpAddr> {
        use_context::<Parts>()
            .and_then(|p| p.extensions.get::<ClientAddr>().copied())
            .map(|ClientAddr(ip)| ip)
    }

    /// Who is calling, for rate limits: the caller's address, or "unknown".
    pub fn peer_key() -> String {
        client_addr().map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }

    pub fn set_session_cookie(token: &str) {
        let (attrs, max_age) = backend()
            .map(|b| (b.cookie_attributes().to_owned(), b.session_max_age()))
            .unwrap_or_else(|_| (String::new(), 30 * 24 * 3600));
        set_cookie(&format!(
            "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{attrs}"
        ));
    }

    pub fn clear_session_cookie() {
        set_cookie(&format!(
            "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
        ));
    }

    fn set_cookie(value: &str) {
        if let (Some(res), Ok(value)) = (
            use_context::<ResponseOptions>(),
            HeaderValue::from_str(value),
        ) {
            res.append_header(header::SET_COOKIE, value);
        }
    }

    /// A plain form post that failed is sent back to its form with the error in the URL. With a
    /// `Referer` server_fn does that itself; without one it redirected to `/` exactly as a
    /// success does, so the person never saw why. Then the form is the login page (for login
    /// and register) or the home page, with the same `__path`/`__err` query.
    fn form_error_redirect(parts: &Parts, error: &ApiError) {
        use server_fn::error::ServerFnUrlError;
        if parts.headers.contains_key(header::REFERER) {
            return;
        }
        let path = parts.uri.path();
        let page = if path.ends_with("/login") || path.ends_with("/register") {
            "/login"
        } else {
            "/"
        };
        let Ok(url) = ServerFnUrlError::new(path, error.clone()).to_url(&format!("http://x{page}"))
        else {
            return;
        };
        let location = format!("{}?{}", url.path(), url.query().unwrap_or_default());
        if let (Some(res), Ok(value)) = (
            use_context::<ResponseOptions>(),
            HeaderValue::from_str(&location),
        ) {
            res.insert_header(header::LOCATION, value);
        }
    }

    /// Runs a server function's body and, on error, sets the HTTP status that matches the error.
    /// A plain HTML form post keeps the redirect back to the form instead, which shows the error.
    pub async fn respond<T>(
        body: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        let result = body.await;
        if let Err(e) = &result {
            if e.code == ApiErrorCode::Internal {
                leptos::logging::error!("api error: {}", e.message);
            }
            let parts = use_context::<Parts>();
            let from_form = parts
                .as_ref()
                .and_then(|p| p.headers.get(header::ACCEPT))
                .and_then(|v| v.to_str().ok().map(|v| v.contains("text/html")))
                .unwrap_or(false);
            if let (false, Some(res)) = (from_form, use_context::<ResponseOptions>()) {
                res.set_status(e.status());
            }
            if let (true, Some(parts)) = (from_form, &parts) {
                form_error_redirect(parts, e);
            }
        }
        result
    }
}
