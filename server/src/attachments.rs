//! Attachments over HTTP: `POST /api/attachments` takes an upload, `GET /api/attachments/{id}`
//! serves one to whoever may read it, and [`sweep`] deletes uploads that were never posted.
//!
//! Owns the HTTP side only: reading the body within the size limit, sniffing it, and the headers
//! that keep a file from ever running in the app's origin. Who may read what is the store's
//! rule (`store/attachments.rs`); posting a file with a message is a `send` through the
//! committer like any other (`store/append.rs`).
//!
//! Serving untrusted files from the app's own origin is safe only together: the type is sniffed
//! here (HTML and SVG become `text/plain`), `X-Content-Type-Options: nosniff` stops the browser
//! from guessing otherwise, only png/jpeg/gif/webp are `inline` (everything else is
//! `attachment`: downloaded, never rendered), and `Content-Security-Policy: sandbox` makes even a
//! document opened by hand run in an opaque origin without script.

use crate::sniff::sniff;
use crate::store::Store;
use crate::AppState;
use app::api::ssr::session_token_from_headers;
use app::api::{ApiError, ApiErrorCode};
use app::model::{human_size, Attachment, AttachmentId, UserRef};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use std::time::Duration;

/// How long an upload may wait to be posted before [`sweep`] deletes it.
pub const UNPOSTED_TTL: Duration = Duration::from_secs(3600);
/// How often [`sweep`] runs.
const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// The CSP of every download: no script, no plugins, an opaque origin, nothing loaded.
const DOWNLOAD_CSP: &str = "sandbox; default-src 'none'";

fn refuse(error: ApiError) -> Response {
    (error.status(), Json(error)).into_response()
}

async fn user_of(state: &AppState, headers: &HeaderMap) -> Result<UserRef, Response> {
    let token =
        session_token_from_headers(headers).ok_or_else(|| refuse(ApiError::unauthorized()))?;
    state.authenticate(&token).await.map_err(refuse)
}

/// `?name=` of an upload.
#[derive(serde::Deserialize)]
pub struct UploadQuery {
    #[serde(default)]
    name: String,
}

/// `POST /api/attachments?name=NAME` with the file's bytes as the body (any content type; it is
/// ignored). Answers the attachment's metadata; it is the uploader's until a `send` posts it.
/// Over `--max-upload-bytes`: 413 `too_large`, and nothing is stored — refused from
/// `Content-Length` before any byte is read, or the moment the streamed body passes the limit.
pub async fn upload(
    State(state): State<AppState>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let user = match user_of(&state, &headers).await {
        Ok(user) => user,
        Err(refused) => return refused,
    };
    let limit = state.config.max_upload_bytes;
    let too_large = || {
        refuse(ApiError::new(
            ApiErrorCode::TooLarge,
            format!(
                "the file is larger than this server accepts ({}); send a smaller one",
                human_size(limit)
            ),
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return too_large();
    }
    // At most `limit` bytes are ever held: the body is read frame by frame and dropped the
    // moment it passes the limit (a client may lie in Content-Length, or send none).
    let capacity = declared.unwrap_or(0).min(limit) as usize;
    let mut bytes = Vec::with_capacity(capacity);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return refuse(ApiError::invalid("the upload was interrupted; try again"));
        };
        if (bytes.len() + chunk.len()) as u64 > limit {
            return too_large();
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.is_empty() {
        return refuse(ApiError::invalid("the file is empty; pick another"));
    }
    let sniffed = sniff(&bytes);
    let attachment = Attachment {
        id: AttachmentId::from_random(rand::random()),
        name: app::model::clean_file_name(&query.name),
        size: bytes.len() as u64,
        content_type: sniffed.content_type.to_owned(),
        width: sniffed.size.map(|(w, _)| w),
        height: sniffed.size.map(|(_, h)| h),
    };
    match state
        .store
        .save_upload(user.id, &attachment, Bytes::from(bytes))
        .await
    {
        Ok(()) => Json(attachment).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "storing an upload failed");
            refuse(ApiError::internal(
                "the file could not be stored; try again later",
            ))
        }
    }
}

/// `GET /api/attachments/{id}`: the bytes, for a member of the conversation the file was posted
/// in (or its uploader, before it is posted). Anyone else, and any id that is not (or no longer)
/// there, gets the same 404.
pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let user = match user_of(&state, &headers).await {
        Ok(user) => user,
        Err(refused) => return refused,
    };
    let not_found = || {
        refuse(ApiError::not_found(
            "no such attachment (it may have been deleted, or is not in a conversation of yours)",
        ))
    };
    let Ok(id) = AttachmentId::parse(id) else {
        return not_found();
    };
    let (attachment, bytes) = match state.store.readable_attachment(user.id, &id).await {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::error!(error = %e, "reading an attachment failed");
            return refuse(ApiError::internal(
                "the file could not be read; try again later",
            ));
        }
    };
    // A file never changes under its id, so the id is its ETag: a revalidation (after the
    // authorization above, every time) costs no bytes.
    let etag = format!("\"{}\"", id.as_str());
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        bytes.into_response()
    };
    let h = response.headers_mut();
    let value = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""));
    h.insert(header::CONTENT_TYPE, value(&attachment.content_type));
    h.insert(
        header::CONTENT_DISPOSITION,
        value(&content_disposition(&attachment)),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DOWNLOAD_CSP),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    // Private: only this user's browser may keep it, and it asks again each time (so a deleted
    // message's file, or a departed member, stops being served).
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    h.insert(header::ETAG, value(&etag));
    response
}

/// `inline` for the raster images the page shows, `attachment` (download) for everything else;
/// the name both as plain ASCII and exactly (RFC 6266 / 8187).
fn content_disposition(a: &Attachment) -> String {
    let kind = if a.is_inline_image() {
        "inline"
    } else {
        "attachment"
    };
    let ascii: String = a
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut exact = String::new();
    for b in a.name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            exact.push(b as char);
        } else {
            exact.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{exact}")
}

/// Every [`SWEEP_EVERY`]: deletes uploads older than [`UNPOSTED_TTL`] that no message posted,
/// and blobs with no row that were already orphans at the previous sweep (a blob is written just
/// before its row, so one seen once may be an upload under way; seen twice, ten minutes apart,
/// it is left over from a crash).
pub async fn sweep(store: Store) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    let mut suspects: Vec<AttachmentId> = Vec::new();
    loop {
        every.tick().await;
        let before = crate::store::now_ms() - UNPOSTED_TTL.as_millis() as i64;
        match store.delete_unposted(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(uploads = n, "deleted uploads that were never posted"),
            Err(e) => tracing::warn!(error = %e, "deleting unposted uploads failed"),
        }
        let orphans = match store.blobs().list().await {
            Ok(ids) => store.orphan_blobs(ids).await,
            Err(e) => Err(e),
        };
        match orphans {
            Ok(orphans) => {
                let (stale, fresh): (Vec<_>, Vec<_>) =
                    orphans.into_iter().partition(|id| suspects.contains(id));
                if !stale.is_empty() {
                    tracing::info!(blobs = stale.len(), "deleting attachment bytes with no row");
                    if let Err(e) = store.blobs().delete(&stale).await {
                        tracing::warn!(error = %e, "deleting orphan attachment bytes failed");
                    }
                }
                suspects = fresh;
            }
            Err(e) => tracing::warn!(error = %e, "looking for orphan attachment bytes failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str, content_type: &str) -> Attachment {
        Attachment {
            id: AttachmentId::from_random([1; 16]),
            name: name.into(),
            size: 1,
            content_type: content_type.into(),
            width: None,
            height: None,
        }
    }

    #[test]
    fn only_raster_images_are_inline_and_names_are_quoted_safely() {
        assert_eq!(
            content_disposition(&named("cat.png", "image/png")),
            "inline; filename=\"cat.png\"; filename*=UTF-8''cat.png"
        );
        assert_eq!(
            content_disposition(&named("a b\"ü.svg", "text/plain; charset=utf-8")),
            "attachment; filename=\"a b__.svg\"; filename*=UTF-8''a%20b%22%C3%BC.svg"
        );
    }
}
