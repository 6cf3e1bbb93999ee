//! Hard to break (#10): every bad input gets its documented error and changes nothing, every
//! limit holds, and the promises about closing connections are kept — checked from outside,
//! over real HTTP and WebSocket connections, as an independent client would.

use crate::helpers::{spawn_app, spawn_app_with, Client, WAIT};
use app::model::ConvId;
use app::protocol::{ClientFrame, ErrorCode, ServerFrame};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use server::store::Durability;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message as WsMessage;

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
    assert_eq!(
        (status, body["code"].clone()),
        (401, json!("bad_credentials"))
    );
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
        (
            ClientFrame::Read {
                conv: conv.id,
                seq: 1,
            },
            ErrorCode::NotMember,
        ),
        (ClientFrame::Typing { conv: conv.id }, ErrorCode::NotMember),
        (
            ClientFrame::Read {
                conv: ConvId(31337),
                seq: 1,
            },
            ErrorCode::UnknownConversation,
        ),
        (
            ClientFrame::Typing {
                conv: ConvId(31337),
            },
            ErrorCode::UnknownConversation,
        ),
    ] {
        e.send(&frame).await;
        match e.recv().await {
            ServerFrame::Error {
                code: got,
                client_id,
                ..
            } => {
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
        ServerFrame::Error {
            code: ErrorCode::TooLarge,
            ..
        }
    ));
}

#[tokio::test]
async fn durability_is_full_unless_asked_otherwise_and_reported() {
    let app = spawn_app().await;
    let health: serde_json::Value = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["durability"], json!("full"), "{health}");
    let app = spawn_app_with(|c| c.durability = Durability::Normal).await;
    let health: serde_json::Value = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["durability"], json!("normal"), "{health}");
}

#[tokio::test]
async fn sends_beyond_the_users_rate_are_refused_and_not_stored() {
    let app = spawn_app_with(|c| {
        c.send_rate = 1;
        c.send_burst = 5;
    })
    .await;
    let alice = app.register("alice").await;
    app.register("bob").await;
    let conv = app.open_direct(&alice, "bob").await.id;
    // Two tabs share one allowance.
    let mut tabs = [app.connect(&alice).await, app.connect(&alice).await];
    for i in 0..30 {
        tabs[i % 2]
            .send_message(conv, &format!("m-{i}"), "hi")
            .await;
    }
    let (mut acked, mut limited) = (Vec::new(), Vec::new());
    for tab in &mut tabs {
        while acked.len() + limited.len() < 30 {
            match tab.try_recv(Duration::from_secs(2)).await {
                Some(ServerFrame::Ack { client_id, .. }) => acked.push(client_id),
                Some(ServerFrame::Error {
                    code: ErrorCode::RateLimited,
                    client_id,
                    ..
                }) => limited.push(client_id.expect("the refused send's client_id")),
                Some(_) => {}
                None => break,
            }
        }
    }
    assert_eq!(acked.len() + limited.len(), 30, "every send answered");
    assert!(acked.len() >= 5, "the burst goes through: {acked:?}");
    assert!(
        limited.len() >= 20,
        "the rest is refused: {} acked",
        acked.len()
    );
    let stored = app.store().count_messages(conv).await.unwrap();
    assert_eq!(stored as usize, acked.len(), "refused sends stored nothing");
    // The refusal is not a punishment: once the allowance refills, the same client_id goes in.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    tabs[0].send_message(conv, &limited[0], "hi").await;
    tabs[0].expect_ack(&limited[0]).await;
}

#[tokio::test]
async fn a_connection_sending_too_many_bad_frames_is_closed_with_1008() {
    let app = spawn_app_with(|c| c.bad_frames_per_minute = 5).await;
    let alice = app.register("alice").await;
    let mut a = app.connect(&alice).await;
    for _ in 0..5 {
        a.send_text("not json").await;
        assert!(matches!(
            a.recv().await,
            ServerFrame::Error {
                code: ErrorCode::BadFrame,
                ..
            }
        ));
    }
    a.send_text(r#"{"type":"launch_missiles"}"#).await;
    assert_eq!(close_code(&mut a).await, Some(1008));
    // Another connection of the same user starts with its own allowance.
    let mut b = app.connect(&alice).await;
    b.send(&ClientFrame::Ping).await;
    assert_eq!(b.recv().await, ServerFrame::Pong);
}

/// The HTTP status and text a WebSocket upgrade is refused with, if it is.
async fn upgrade(app: &crate::helpers::TestApp, cookie: &str) -> Result<Client, (u16, String)> {
    match Client::connect(app.addr, Some(cookie)).await {
        Ok(client) => Ok(client),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err((
            res.status().as_u16(),
            String::from_utf8_lossy(res.body().as_deref().unwrap_or_default()).into_owned(),
        )),
        Err(e) => panic!("unexpected upgrade failure: {e}"),
    }
}

#[tokio::test]
async fn connections_per_user_and_new_connections_per_minute_are_capped() {
    let app = spawn_app_with(|c| {
        c.max_connections_per_user = 2;
        c.connects_per_minute = 4;
    })
    .await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let first = upgrade(&app, &alice.cookie).await.expect("1st");
    let _second = upgrade(&app, &alice.cookie).await.expect("2nd");
    let refused = upgrade(&app, &alice.cookie)
        .await
        .err()
        .expect("3rd open one");
    assert_eq!(refused.0, 429);
    assert!(refused.1.contains("too many connections"), "{refused:?}");
    let _bob = upgrade(&app, &bob.cookie)
        .await
        .expect("others are not affected");
    drop(first);
    // The closed one frees its place once the server has noticed (refusals for being at the
    // cap do not use up the per-minute allowance).
    let third = loop {
        match upgrade(&app, &alice.cookie).await {
            Ok(client) => break client,
            Err((429, text)) if text.contains("too many connections") => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(other) => panic!("{other:?}"),
        }
    };
    drop(third);
    let fourth = loop {
        match upgrade(&app, &alice.cookie).await {
            Ok(client) => break client,
            Err((429, text)) if text.contains("too many connections") => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(other) => panic!("{other:?}"),
        }
    };
    drop(fourth);
    // Four new connections this minute used up the allowance.
    let refused = loop {
        match upgrade(&app, &alice.cookie).await {
            Err((429, text)) if text.contains("too many connections") => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => break other,
        }
    };
    let refused = refused
        .err()
        .expect("the 5th connection this minute is refused");
    assert_eq!(refused.0, 429);
    assert!(refused.1.contains("new connections"), "{refused:?}");
}
