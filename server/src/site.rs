//! The static site (the browser app's JS, WASM and CSS, and the favicons): served from memory
//! when this binary was built with it inside (feature `embed-site`, see the `site-assets`
//! crate), otherwise from the folder `--site-root` / `LEPTOS_SITE_ROOT` / `target/site`.
//! Anything that is not a site file falls through to the app's 404 page.
//!
//! An explicit site folder always wins over the embedded copy, so `cargo leptos watch` (which
//! sets `LEPTOS_SITE_ROOT`) and `--site-root` serve what is on disk even from a one-file build.
//!
//! Caching: no file name carries a content hash (leptos 0.8's `<HydrationScripts>` would look
//! the hashes up in a file beside the executable on every render, which defeats one file), so
//! nothing is `immutable`. The app's JS and WASM must match the HTML the server renders, so
//! `pkg/` is `no-cache`: the browser keeps its copy but asks every time, and the ETag (a hash
//! of the bytes) turns that into a 304 without a body. Other assets (favicons) may be reused
//! for an hour. Compression is done at build time: a client that accepts gzip gets the `.gz`
//! body the site build wrote, so no CPU is spent per request.

use crate::config::Config;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;

/// Where static files come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Compiled into the binary.
    Embedded,
    /// A folder on disk (leptos' file handler serves it).
    Disk,
}

impl Source {
    /// Embedded when this binary carries the site and no folder was asked for.
    pub fn for_config(config: &Config) -> Source {
        let folder_asked =
            config.site_root.is_some() || std::env::var_os("LEPTOS_SITE_ROOT").is_some();
        if EMBEDDED && !folder_asked {
            Source::Embedded
        } else {
            Source::Disk
        }
    }
}

/// Whether this binary was built with the site inside.
pub const EMBEDDED: bool = cfg!(feature = "embed-site");

/// The router's fallback: a site file, or else leptos (static files on disk, then the app's
/// 404 page).
pub async fn fallback(State(state): State<AppState>, req: Request) -> Response {
    if Source::for_config(&state.config) == Source::Embedded {
        if let Some(res) = embedded::respond(&req) {
            return res;
        }
    }
    let uri = req.uri().clone();
    // The not-found page is rendered by Leptos too: it gets the page policy with its nonce.
    leptos_axum::file_and_error_handler_with_context::<AppState, _>(
        crate::protect::provide_page_policy,
        app::shell,
    )(uri, State(state), req)
    .await
}

/// The `Content-Type` of a site file, by extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The caching rule for a site file (see the module header for why).
fn cache_control(path: &str) -> &'static str {
    if path.starts_with("pkg/") {
        "no-cache"
    } else {
        "public, max-age=3600"
    }
}

/// Whether an `Accept-Encoding` value admits gzip (a `q=0` refuses it).
fn accepts_gzip(accept_encoding: &str) -> bool {
    accept_encoding.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

/// Whether an `If-None-Match` value names `etag` (or is `*`).
fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// Builds the response for one file: 304 when the client's copy is current, the gzip body
/// when accepted, the plain body otherwise (HEAD: headers only).
#[cfg_attr(not(feature = "embed-site"), allow(dead_code))]
fn file_response(
    req: &Request,
    path: &str,
    body: &'static [u8],
    gzip: Option<&'static [u8]>,
    etag: &'static str,
) -> Response {
    use axum::http::{header, HeaderValue, Method, StatusCode};
    let headers = req.headers();
    let header_str = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let mut res = Response::builder()
        .header(header::ETAG, etag)
        .header(header::CACHE_CONTROL, cache_control(path))
        .header(header::VARY, "accept-encoding");
    if header_str(header::IF_NONE_MATCH).is_some_and(|v| etag_matches(v, etag)) {
        return res
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .expect("static headers are valid");
    }
    let bytes = match gzip {
        Some(gz) if header_str(header::ACCEPT_ENCODING).is_some_and(accepts_gzip) => {
            res = res.header(header::CONTENT_ENCODING, "gzip");
            gz
        }
        _ => body,
    };
    res = res
        .header(header::CONTENT_TYPE, content_type(path))
        .header(header::CONTENT_LENGTH, bytes.len());
    let body = if req.method() == Method::HEAD {
        Body::empty()
    } else {
        Body::from(bytes)
    };
    res.body(body).expect("static headers are valid")
}

#[cfg(feature = "embed-site")]
mod embedded {
    use super::*;
    use axum::http::Method;

    /// The embedded file the request names, if it is a GET or HEAD of one.
    pub fn respond(req: &Request) -> Option<Response> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return None;
        }
        let path = req.uri().path().trim_start_matches('/');
        let asset = site_assets::get(path)?;
        Some(file_response(req, path, asset.body, asset.gzip, asset.etag))
    }
}

#[cfg(not(feature = "embed-site"))]
mod embedded {
    use super::*;

    /// Nothing is embedded in this build.
    pub fn respond(_req: &Request) -> Option<Response> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_accepted_unless_refused() {
        assert!(accepts_gzip("gzip, deflate, br"));
        assert!(accepts_gzip("br;q=1.0, gzip;q=0.8"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("br, deflate"));
        assert!(!accepts_gzip("identity"));
    }

    #[test]
    fn etags_match_lists_and_weak_forms() {
        let etag = "\"00ff\"";
        assert!(etag_matches("\"00ff\"", etag));
        assert!(etag_matches("\"aa\", W/\"00ff\"", etag));
        assert!(etag_matches("*", etag));
        assert!(!etag_matches("\"00fe\"", etag));
    }

    fn get(path: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = Request::builder().uri(format!("/{path}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Body::empty()).unwrap();
        file_response(&req, path, b"plain bytes", Some(b"gz bytes"), "\"1234\"")
    }

    #[test]
    fn files_answer_with_validators_caching_and_precompressed_bodies() {
        let res = get("pkg/tidings.js", &[("accept-encoding", "gzip, br")]);
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-encoding"], "gzip");
        assert_eq!(res.headers()["content-length"], "8");
        assert_eq!(res.headers()["cache-control"], "no-cache");
        assert_eq!(res.headers()["etag"], "\"1234\"");
        assert_eq!(
            res.headers()["content-type"],
            "text/javascript; charset=utf-8"
        );

        let res = get("favicon.svg", &[]);
        assert!(res.headers().get("content-encoding").is_none());
        assert_eq!(res.headers()["content-length"], "11");
        assert_eq!(res.headers()["cache-control"], "public, max-age=3600");

        let res = get("pkg/tidings_bg.wasm", &[("if-none-match", "\"1234\"")]);
        assert_eq!(res.status(), 304);
    }
}
