//! Attachments over real HTTP and WebSockets: upload, post with a `send`, the other member
//! downloads the same bytes; outsiders get nothing and cannot post someone else's upload; HTML
//! and SVG are downloads, never documents; an upload over the limit is refused with nothing
//! stored; deleting the message deletes the file. On SQLite (files beside the database) and on
//! MariaDB (the shared table), the latter served by two servers on one database.

use crate::helpers::{spawn_app, spawn_app_on, spawn_app_with, Client, TestApp, TestUser};
use crate::store::TempDb;
use app::model::{Attachment, ConvId, HistoryPage};
use app::protocol::{ClientFrame, ErrorCode, ServerFrame};
use std::path::PathBuf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The start of a 3×2 PNG as the sniffer reads it (signature and IHDR; the rest is filler).
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x03\x00\x00\x00\x02\x08\x02\
\x00\x00\x00\x12\x16\xf1\x4d\x00\x00\x00\x12IDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x08\x19\x18\xfe\x03\
\x00\x2e\xf3\x05\xfb\x6a\xa8\x2e\x7e\x00\x00\x00\x00IEND\xaeB`\x82";

/// Uploads `bytes` as `name`; the status and the JSON reply.
async fn upload(
    app: &TestApp,
    user: &TestUser,
    name: &str,
    bytes: &[u8],
) -> (u16, serde_json::Value) {
    let res = app
        .http
        .post(app.url("/api/attachments"))
        .query(&[("name", name)])
        .header("cookie", &user.cookie)
        .body(bytes.to_vec())
        .send()
        .await
        .expect("upload request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

async fn uploaded(app: &TestApp, user: &TestUser, name: &str, bytes: &[u8]) -> Attachment {
    let (status, body) = upload(app, user, name, bytes).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).expect("attachment json")
}

/// GETs the attachment as `user` (or without a cookie).
async fn download(app: &TestApp, user: Option<&TestUser>, a: &Attachment) -> reqwest::Response {
    let mut req = app.http.get(app.url(&a.url()));
    if let Some(user) = user {
        req = req.header("cookie", &user.cookie);
    }
    req.send().await.expect("download request")
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

async fn post(client: &mut Client, conv: ConvId, client_id: &str, a: &Attachment) {
    client
        .send(&ClientFrame::Send {
            conv,
            client_id: client_id.into(),
            body: String::new(),
            reply_to: None,
            attachment: Some(a.id.clone()),
        })
        .await;
}

async fn acked_seq(client: &mut Client, client_id: &str) -> i64 {
    match client.expect_ack(client_id).await {
        ServerFrame::Ack { seq, .. } => seq,
        _ => unreachable!(),
    }
}

async fn refused(client: &mut Client) -> ErrorCode {
    client
        .expect(|f| match f {
            ServerFrame::Error { code, .. } => Some(code),
            _ => None,
        })
        .await
}

async fn history(app: &TestApp, user: &TestUser, conv: ConvId) -> HistoryPage {
    let (status, body) = app
        .post(
            "/api/history",
            Some(&user.cookie),
            &[("conv", &conv.to_string())],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).unwrap()
}

/// The folder beside a test app's SQLite database where the bytes are.
fn files_dir(app: &TestApp) -> PathBuf {
    PathBuf::from(format!(
        "{}.files",
        app.db_url.strip_prefix("sqlite://").expect("a SQLite app")
    ))
}

fn files_in(app: &TestApp) -> Vec<String> {
    std::fs::read_dir(files_dir(app))
        .expect("the files folder exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn an_image_is_posted_and_only_members_fetch_it() {
    let app = spawn_app().await;
    let (alice, bob, carol) = (
        app.register("alice").await,
        app.register("bob").await,
        app.register("carol").await,
    );
    let conv = app.open_direct(&alice, "bob").await.id;
    let carols = app.open_direct(&carol, "bob").await.id;
    let (mut a, mut b, mut c) = (
        app.connect(&alice).await,
        app.connect(&bob).await,
        app.connect(&carol).await,
    );

    let image = uploaded(&app, &alice, "../cat.png", PNG).await;
    assert_eq!(
        (
            image.name.as_str(),
            image.size,
            image.content_type.as_str(),
            image.width,
            image.height
        ),
        ("cat.png", PNG.len() as u64, "image/png", Some(3), Some(2))
    );
    assert_eq!(image.id.as_str().len(), 32, "128 random bits");
    assert!(files_in(&app).contains(&image.id.as_str().to_owned()));

    // Unposted, it is the uploader's alone.
    assert_eq!(download(&app, Some(&alice), &image).await.status(), 200);
    assert_eq!(download(&app, Some(&bob), &image).await.status(), 404);
    assert_eq!(download(&app, None, &image).await.status(), 401);

    // Someone else's upload cannot be posted, not even into a conversation of theirs; an
    // outsider cannot post into ours.
    post(&mut c, carols, "c-1", &image).await;
    assert_eq!(refused(&mut c).await, ErrorCode::UnknownAttachment);
    post(&mut c, conv, "c-2", &image).await;
    assert_eq!(refused(&mut c).await, ErrorCode::NotMember);

    // Alice posts it: bob sees it live with its metadata, and downloads the same bytes.
    post(&mut a, conv, "a-1", &image).await;
    let seq = acked_seq(&mut a, "a-1").await;
    let m = b.expect_message().await;
    assert_eq!((m.seq, m.body.as_str()), (seq, ""));
    assert_eq!(m.attachment.as_deref(), Some(&image));
    let res = download(&app, Some(&bob), &image).await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "content-type"), "image/png");
    assert_eq!(
        header(&res, "content-disposition"),
        "inline; filename=\"cat.png\"; filename*=UTF-8''cat.png"
    );
    assert_eq!(header(&res, "x-content-type-options"), "nosniff");
    assert!(header(&res, "content-security-policy").contains("sandbox"));
    assert!(header(&res, "cache-control").contains("private"));
    assert_eq!(&res.bytes().await.unwrap()[..], PNG);

    // Carol, not a member, gets the same 404 as for an id that does not exist.
    assert_eq!(download(&app, Some(&carol), &image).await.status(), 404);
    let made_up = Attachment {
        id: app::model::AttachmentId::from_random([7; 16]),
        ..image.clone()
    };
    assert_eq!(download(&app, Some(&alice), &made_up).await.status(), 404);

    // The same send again is the same message; the upload cannot be posted twice.
    post(&mut a, conv, "a-1", &image).await;
    assert_eq!(acked_seq(&mut a, "a-1").await, seq);
    post(&mut a, conv, "a-2", &image).await;
    assert_eq!(refused(&mut a).await, ErrorCode::UnknownAttachment);

    // History and the conversation list carry it too.
    let page = history(&app, &bob, conv).await;
    assert_eq!(page.messages.len(), 1, "one message, not two");
    assert_eq!(page.messages[0].attachment.as_deref(), Some(&image));
    // A member who joins a group later sees files posted before (they belong to the group).
    let group = app.create_group(&alice, "pics", "bob").await.id;
    let photo = uploaded(&app, &alice, "photo.png", PNG).await;
    post(&mut a, group, "a-3", &photo).await;
    acked_seq(&mut a, "a-3").await;
    assert_eq!(download(&app, Some(&carol), &photo).await.status(), 404);
    let (status, body) = app
        .post(
            "/api/add_member",
            Some(&alice.cookie),
            &[("conv", &group.to_string()), ("username", "carol")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(download(&app, Some(&carol), &photo).await.status(), 200);
}

#[tokio::test]
async fn html_and_svg_are_served_as_downloads_never_as_documents() {
    let app = spawn_app().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let conv = app.open_direct(&alice, "bob").await.id;
    let mut a = app.connect(&alice).await;
    let files: [(&str, &[u8]); 2] = [
        (
            "page.html",
            b"<!doctype html><script>fetch('/api/me').then(r=>r.text()).then(alert)</script>",
        ),
        (
            "logo.svg",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(document.cookie)\"/>",
        ),
    ];
    for (i, (name, bytes)) in files.into_iter().enumerate() {
        let file = uploaded(&app, &alice, name, bytes).await;
        let client_id = format!("f-{i}");
        post(&mut a, conv, &client_id, &file).await;
        acked_seq(&mut a, &client_id).await;
        let res = download(&app, Some(&bob), &file).await;
        assert_eq!(res.status(), 200, "{name}");
        let content_type = header(&res, "content-type").to_owned();
        assert!(
            !content_type.contains("html") && !content_type.contains("svg"),
            "{name} served as {content_type}"
        );
        assert!(
            header(&res, "content-disposition").starts_with("attachment;"),
            "{name} must download"
        );
        assert_eq!(header(&res, "x-content-type-options"), "nosniff");
        let csp = header(&res, "content-security-policy");
        assert!(
            csp.contains("sandbox") && csp.contains("default-src 'none'"),
            "{csp}"
        );
        assert_eq!(
            &res.bytes().await.unwrap()[..],
            bytes,
            "{name}: the bytes as sent"
        );
    }
}

/// Sends a chunked upload (no Content-Length, so the limit can only be found by reading) of
/// `total` bytes over a raw socket; returns the response's status line and body.
async fn chunked_upload(app: &TestApp, user: &TestUser, total: usize) -> String {
    let mut socket = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/attachments?name=big.bin HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.addr, user.cookie
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; 1024];
    let mut sent = 0;
    while sent < total {
        let n = chunk.len().min(total - sent);
        let frame = [format!("{n:x}\r\n").as_bytes(), &chunk[..n], b"\r\n"].concat();
        // The server may answer and close before everything is sent: that is the point.
        if socket.write_all(&frame).await.is_err() {
            break;
        }
        sent += n;
    }
    let _ = socket.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn an_upload_over_the_limit_is_refused_and_nothing_is_stored() {
    let app = spawn_app_with(|c| c.max_upload_bytes = 4096).await;
    let alice = app.register("alice").await;

    // Declared too large: refused before a byte is read.
    let (status, body) = upload(&app, &alice, "big.bin", &[1u8; 4097]).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["code"], "too_large");
    assert!(
        body["message"].as_str().unwrap().contains("4.0 KB"),
        "the message names the limit: {body}"
    );
    // Not declared: refused once the body passes the limit, however much more is coming.
    let answer = chunked_upload(&app, &alice, 64 * 1024).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("too_large"), "{answer}");
    // An empty file is refused too.
    assert_eq!(upload(&app, &alice, "empty.txt", b"").await.0, 400);

    assert_eq!(app.store().count_attachments().await.unwrap(), 0);
    assert!(files_in(&app).is_empty(), "{:?}", files_in(&app));

    // Exactly the limit is fine.
    let file = uploaded(&app, &alice, "fits.bin", &[2u8; 4096]).await;
    assert_eq!(
        (file.size, file.content_type.as_str()),
        (4096, "application/octet-stream")
    );
    assert_eq!(files_in(&app), [file.id.as_str()]);
}

#[tokio::test]
async fn deleting_the_message_deletes_the_file_and_unposted_uploads_expire() {
    let app = spawn_app().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let conv = app.open_direct(&alice, "bob").await.id;
    let (mut a, mut b) = (app.connect(&alice).await, app.connect(&bob).await);
    let file = uploaded(&app, &alice, "notes.txt", b"meeting at noon").await;
    post(&mut a, conv, "a-1", &file).await;
    let seq = acked_seq(&mut a, "a-1").await;
    b.expect_message().await;
    assert_eq!(download(&app, Some(&bob), &file).await.status(), 200);

    a.send(&ClientFrame::Delete {
        conv,
        client_id: "d-1".into(),
        target: seq,
    })
    .await;
    acked_seq(&mut a, "d-1").await;
    assert_eq!(download(&app, Some(&bob), &file).await.status(), 404);
    assert_eq!(download(&app, Some(&alice), &file).await.status(), 404);
    assert!(files_in(&app).is_empty(), "the bytes are gone");
    assert_eq!(app.store().count_attachments().await.unwrap(), 0);
    let page = history(&app, &bob, conv).await;
    assert!(page.messages[0].deleted && page.messages[0].attachment.is_none());

    // An upload never posted is swept once it is old enough (here: everything up to now).
    let stale = uploaded(&app, &alice, "draft.txt", b"never sent").await;
    let store = app.store();
    assert_eq!(store.delete_unposted(0).await.unwrap(), 0, "not old enough");
    let later = server::store::now_ms() + 1;
    assert_eq!(store.delete_unposted(later).await.unwrap(), 1);
    assert_eq!(download(&app, Some(&alice), &stale).await.status(), 404);
    assert!(files_in(&app).is_empty());
}

#[tokio::test]
async fn the_shared_store_serves_a_file_from_every_node() {
    let (store, db) = TempDb::mysql().await;
    let limit = |c: &mut server::config::Config| c.max_upload_bytes = 4096;
    let (one, two) = (
        spawn_app_on(&db.url(), limit).await,
        spawn_app_on(&db.url(), limit).await,
    );
    let alice = one.register("alice").await;
    let bob = one.register("bob").await;
    let carol = one.register("carol").await;
    let conv = one.open_direct(&alice, "bob").await.id;
    let mut a = one.connect(&alice).await;

    // Over the limit: nothing in either table.
    assert_eq!(upload(&one, &alice, "big.bin", &[0u8; 4097]).await.0, 413);
    assert!(chunked_upload(&one, &alice, 64 * 1024)
        .await
        .starts_with("HTTP/1.1 413"));
    assert_eq!(store.count_attachments().await.unwrap(), 0);
    assert!(store.blobs().list().await.unwrap().is_empty());

    // Uploaded and posted through one node, fetched through the other.
    let image = uploaded(&one, &alice, "cat.png", PNG).await;
    post(&mut a, conv, "a-1", &image).await;
    let seq = acked_seq(&mut a, "a-1").await;
    let res = download(&two, Some(&bob), &image).await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "x-content-type-options"), "nosniff");
    assert_eq!(&res.bytes().await.unwrap()[..], PNG);
    assert_eq!(download(&two, Some(&carol), &image).await.status(), 404);
    let page = history(&two, &bob, conv).await;
    assert_eq!(page.messages[0].attachment.as_deref(), Some(&image));

    // Deleted through one node: gone from the other, bytes and all.
    a.send(&ClientFrame::Delete {
        conv,
        client_id: "d-1".into(),
        target: seq,
    })
    .await;
    acked_seq(&mut a, "d-1").await;
    assert_eq!(download(&two, Some(&bob), &image).await.status(), 404);
    assert_eq!(store.count_attachments().await.unwrap(), 0);
    assert!(store.blobs().list().await.unwrap().is_empty());
    drop((one, two));
    db.drop_db().await;
}
