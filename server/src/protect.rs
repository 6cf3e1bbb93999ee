//! What the server asks of browsers and tells them: cross-site requests to the cookie API are
//! refused, and every response carries the security headers (on HTML pages a Content Security
//! Policy whose script nonce is the one Leptos puts on the page's own scripts).
//!
//! The session cookie is `SameSite=Lax`, which already keeps it off most cross-site requests;
//! this is the second lock, and it also stops login CSRF (a cross-site form that logs the victim
//! into the attacker's account), which carries no cookie at all.

use app::api::ApiError;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

/// Whether `origin` (an `Origin` header's value) names this server — the same host and port as
/// the request's `Host` — or one of the configured extra origins (`--allowed-origins`).
pub fn origin_matches(origin: &str, headers: &HeaderMap, extra: &[String]) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    (!host.is_empty() && origin_host.eq_ignore_ascii_case(host))
        || extra.iter().any(|o| o.trim_end_matches('/') == origin)
}

/// `Origin`, when the request has one: browsers send it on every WebSocket handshake and on
/// every POST; it must pass [`origin_matches`]. Requests without it (curl, bots) pass: they still
/// need the cookie, which a cross-site page cannot attach to its own requests anyway.
pub fn origin_allowed(headers: &HeaderMap, extra: &[String]) -> bool {
    match headers.get(header::ORIGIN).map(|v| v.to_str()) {
        None => true,
        Some(Ok(origin)) => origin_matches(origin, headers, extra),
        Some(Err(_)) => false,
    }
}

/// Why a request to the cookie API is refused as cross-site, or `None` when it may go on.
///
/// - `Origin`, when present, must be this server or an `--allowed-origins` entry
///   ([`origin_allowed`]); `Origin: null` (sandboxed frames, privacy redirects) never is.
/// - `Sec-Fetch-Site` (sent by every current browser): `same-origin` and `none` (typed in the
///   address bar, a bookmark) pass; `same-site` (another subdomain or port of the same site,
///   which may belong to someone else) and `cross-site` pass only with an `Origin` listed in
///   `--allowed-origins` (a dev server such as trunk's on another port).
/// - Neither header: not a browser, so no ambient cookie to abuse; it passes.
pub fn cross_site_refusal(headers: &HeaderMap, extra: &[String]) -> Option<&'static str> {
    if !origin_allowed(headers, extra) {
        return Some("its Origin is not this server");
    }
    let site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match site {
        "same-site" | "cross-site" => {
            let listed = headers
                .get(header::ORIGIN)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|o| extra.iter().any(|e| e.trim_end_matches('/') == o));
            (!listed).then_some("it comes from another site (Sec-Fetch-Site)")
        }
        // same-origin, none, absent, or a value from the future.
        _ => None,
    }
}

/// The routes whose caller is identified by the session cookie: the server functions and the
/// no-JS form posts (`/api/...`), uploads included. Not the bot API (`/api/v1`, bearer tokens),
/// not the webhooks (`/hooks/…`, a secret in the path), and not `GET` of an attachment, which a
/// link in another site may open (SameSite=Lax sends the cookie only on such navigations, and a
/// GET changes nothing).
fn cookie_api(method: &Method, path: &str) -> bool {
    path.starts_with("/api/")
        && !path.starts_with("/api/v1/")
        && !(path.starts_with("/api/attachments/")
            && (method == Method::GET || method == Method::HEAD))
}

/// Middleware: refuses cross-site requests to the cookie API with 403 `forbidden` (the API's
/// JSON error shape) before anything runs; see [`cross_site_refusal`].
pub async fn refuse_cross_site(
    State(extra): State<Arc<[String]>>,
    request: Request,
    next: Next,
) -> Response {
    if cookie_api(request.method(), request.uri().path()) {
        if let Some(why) = cross_site_refusal(request.headers(), &extra) {
            tracing::info!(
                path = request.uri().path(),
                origin = ?request.headers().get(header::ORIGIN),
                site = ?request.headers().get("sec-fetch-site"),
                "refused a cross-site request"
            );
            let error = ApiError::forbidden(format!(
                "cross-site request refused: {why}. The /api/ endpoints take requests only from \
                 Tidings' own pages; scripts and programs should send no Origin or \
                 Sec-Fetch-Site header (or use a bot token with /api/v1), and a development \
                 front end on another origin must be listed in --allowed-origins"
            ));
            return (error.status(), Json(error)).into_response();
        }
    }
    next.run(request).await
}

/// The Content Security Policy of a page whose scripts carry `nonce`. Scripts run only from this
/// server's files or with the page's nonce (no inline handlers, no injected `<script>`); the WASM
/// needs `'wasm-unsafe-eval'` to be compiled. No plugins, no `<base>` elsewhere, forms post only
/// here, and no other site may frame the page (clickjacking).
pub fn page_policy(nonce: &str) -> String {
    format!(
        "script-src 'nonce-{nonce}' 'self' 'wasm-unsafe-eval'; object-src 'none'; \
         base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The policy of an HTML response that has none of its own (one the page renderer did not
/// make): the same without a nonce, so no inline script runs at all.
const FALLBACK_POLICY: &str = "script-src 'self' 'wasm-unsafe-eval'; object-src 'none'; \
     base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// Called while Leptos renders a page (the routes' context): sets the page's policy with the
/// nonce leptos_axum generated for this request, the one its `<script nonce>` tags carry.
pub fn provide_page_policy() {
    use leptos::prelude::use_context;
    let (Some(nonce), Some(res)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    if let Ok(value) = HeaderValue::from_str(&page_policy(&nonce)) {
        res.insert_header(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// Middleware: `X-Content-Type-Options: nosniff` and `Referrer-Policy: same-origin` on every
/// response, and a script-restricting CSP on HTML that came without one.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "same-origin");
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        set(headers, header::CONTENT_SECURITY_POLICY, FALLBACK_POLICY);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cross_site_rules() {
        let host = ("host", "chat.example:3000");
        let extra = ["http://localhost:8080".to_owned()];
        let ok = |pairs: &[(&'static str, &'static str)]| {
            cross_site_refusal(&headers(pairs), &extra).is_none()
        };
        assert!(ok(&[host]), "no browser headers: curl");
        assert!(ok(&[host, ("sec-fetch-site", "same-origin")]));
        assert!(ok(&[host, ("sec-fetch-site", "none")]));
        assert!(ok(&[
            host,
            ("origin", "https://chat.example:3000"),
            ("sec-fetch-site", "same-origin")
        ]));
        assert!(!ok(&[host, ("sec-fetch-site", "cross-site")]));
        assert!(!ok(&[host, ("sec-fetch-site", "same-site")]));
        assert!(!ok(&[host, ("origin", "https://evil.example")]));
        assert!(!ok(&[host, ("origin", "null")]));
        assert!(ok(&[
            host,
            ("origin", "http://localhost:8080"),
            ("sec-fetch-site", "same-site")
        ]));
        assert!(cookie_api(&Method::POST, "/api/login"));
        assert!(cookie_api(&Method::POST, "/api/attachments"));
        assert!(!cookie_api(&Method::GET, "/api/attachments/abc"));
        assert!(!cookie_api(
            &Method::POST,
            "/api/v1/conversations/1/messages"
        ));
        assert!(!cookie_api(&Method::POST, "/hooks/secret"));
        assert!(!cookie_api(&Method::GET, "/login"));
    }
}
