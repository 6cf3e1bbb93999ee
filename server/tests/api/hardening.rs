//! Hard to break (#10): every bad input gets its documented error and changes nothing, every
//! limit holds, and the promises about closing connections are kept — checked from outside,
//! over real HTTP and WebSocket connections, as an independent client would.

use crate::helpers::{spawn_app, spawn_app_with, Client, WAIT};
use server::store::Durability;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use app::model::ConvId;
use app::protocol::{ClientFrame, ErrorCode, ServerFrame};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn missing_or_malformed_api_fields_answer_400_invalid() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let cookie = Some(alice.cookie.as_str());
    let cases: [(&str, &[(&str, &str)]); 7] = [
        ("/api/register", &[("username", "nopassword")]),
        ("/api/register", &[("password", "long enough pw")]),
        ("/api/history", &[("conv", "1"), ("limit", "abc")]),
        ("/api/history", &[("conv", "1"), ("limit", "-1")]),
        ("/api/history", &[("conv", "abc")]),
        ("/api/history", &[]),
        ("/api/rename_group", &[("conv", "1")]),
    ];
    for (path, form) in cases {
        let (status, body) = app.post(path, cookie, form).await;
        assert_eq!(
            (status, body["code"].clone()),
            (400, json!("invalid")),
            "{path} {form:?}: {body}"
        );
    }
    // Nothing was created by the refused registration.
    let (status, body) = app
        .post(
            "/api/login",
            None,
            &[("username", "nopassword"), ("password", "")],
        )
        .await;
    assert_eq!((status, body["code"].clone()), (401, json!("bad_credentials")));
}

#[tokio::test]
async fn read_and_typing_outside_your_conversations_are_refused() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    app.register("bob").await;
    let eve = app.register("eve").await;
    let conv = app.open_direct(&alice, "bob").await;
    let mut a = app.connect(&alice).await;
    let mut e = app.connect(&eve).await;

    for (frame, code) in [
        (ClientFrame::Read { conv: conv.id, seq: 1 }, ErrorCode::NotMember),
        (ClientFrame::Typing { conv: conv.id }, ErrorCode::NotMember),
        (
            ClientFrame::Read { conv: ConvId(31337), seq: 1 },
            ErrorCode::UnknownConversation,
        ),
        (
            ClientFrame::Typing { conv: ConvId(31337) },
            ErrorCode::UnknownConversation,
        ),
    ] {
        e.send(&frame).await;
        match e.recv().await {
            ServerFrame::Error { code: got, client_id, .. } => {
                assert_eq!((got, client_id), (code, None), "{frame:?}")
            }
            other => panic!("{frame:?}: expected an error, got {other:?}"),
        }
    }
    // Nothing reached the members, and the connection still works.
    let leaked = a.drain(Duration::from_millis(300)).await;
    assert!(leaked.is_empty(), "{leaked:?}");
    e.send(&ClientFrame::Ping).await;
    assert_eq!(e.recv().await, ServerFrame::Pong);
}

#[tokio::test]
async fn removing_yourself_from_a_group_succeeds() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let group = app.create_group(&alice, "Plans", "bob").await;
    let (status, body) = app
        .post(
            "/api/remove_member",
            Some(&bob.cookie),
            &[("conv", &group.id.to_string()), ("username", "bob")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], json!(group.id.0));
    let (_, list) = app.post("/api/conversations", Some(&bob.cookie), &[]).await;
    assert_eq!(list, json!([]), "bob is out");
    let (_, list) = app
        .post("/api/conversations", Some(&alice.cookie), &[])
        .await;
    assert_eq!(list[0]["members"].as_array().unwrap().len(), 1);
}

/// Reads until the server's close frame; its code, or None if the connection ended without one.
async fn close_code(client: &mut Client) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, client.socket.next()).await {
            Ok(Some(Ok(WsMessage::Close(frame)))) => return frame.map(|f| f.code.into()),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) | Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn a_frame_over_one_mebibyte_is_closed_with_1009() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mut a = app.connect(&alice).await;
    let huge = format!(
        r#"{{"type":"send","conv":1,"client_id":"x","body":"{}"}}"#,
        "x".repeat(1536 * 1024)
    );
    let _ = a.socket.send(WsMessage::Text(huge.into())).await;
    assert_eq!(close_code(&mut a).await, Some(1009));
    // Between 64 KiB and 1 MiB the frame is refused and the connection stays.
    let mut a = app.connect(&alice).await;
    let big = format!(
        r#"{{"type":"send","conv":1,"client_id":"x","body":"{}"}}"#,
        "x".repeat(100 * 1024)
    );
    a.send_text(&big).await;
    assert!(matches!(
        a.recv().await,
        ServerFrame::Error { code: ErrorCode::TooLarge, .. }
    ));
}

#[tokio::test]
async fn durability_is_full_unless_asked_otherwise_and_reported() {
    let app = spawn_app().await;
    let health: serde_json::Value = app.http.get(app.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["durability"], json!("full"), "{health}");
    let app = spawn_app_with(|c| c.durability = Durability::Normal).await;
    let health: serde_json::Value = app.http.get(app.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["durability"], json!("normal"), "{health}");
}
