//! Chat over real WebSockets: direct and group delivery, refusals that leave the connection
//! usable, and the authenticated upgrade.

use crate::helpers::{spawn_app, Client, WAIT};
use app::model::{ConvId, MAX_BODY_CHARS};
use app::protocol::{ErrorCode, ServerFrame};
use std::time::Duration;

#[tokio::test]
async fn direct_chat_both_ways() {
    let app = spawn_app().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let conv = app.open_direct(&alice, "bob").await;
    assert_eq!(
        conv.title, "bob",
        "a direct chat is named after the other person"
    );
    assert_eq!(
        app.open_direct(&alice, "bob").await.id,
        conv.id,
        "one direct chat per pair"
    );
    assert_eq!(app.open_direct(&bob, "alice").await.id, conv.id);

    let mut a = app.connect(&alice).await;
    let mut b = app.connect(&bob).await;
    a.send_message(conv.id, "a-1", "hi bob").await;
    let ServerFrame::Ack { seq, .. } = a.expect_ack("a-1").await else {
        unreachable!()
    };
    assert_eq!(seq, 1);
    let m = b.expect_message().await;
    assert_eq!(
        (m.seq, m.body.as_str(), m.sender.username.as_str()),
        (1, "hi bob", "alice")
    );
    // The sending connection has the ack instead of a copy; the sender's other tabs get the
    // message so they stay in step.
    let mut a_other_tab = app.connect(&alice).await;
    a.send_message(conv.id, "a-2", "second tab?").await;
    a.expect_ack("a-2").await;
    assert_eq!(a_other_tab.expect_message().await.seq, 2);
    assert_eq!(b.expect_message().await.seq, 2);
    let echoes = a.drain(Duration::from_millis(300)).await;
    assert!(
        echoes.iter().all(|f| !matches!(f, ServerFrame::Message(_))),
        "no echo to the sending connection: {echoes:?}"
    );

    b.send_message(conv.id, "b-1", "hello <b>alice</b>").await;
    b.expect_ack("b-1").await;
    let m = a.expect_message().await;
    assert_eq!((m.seq, m.body.as_str()), (3, "hello <b>alice</b>"));

    let list: Vec<app::model::Conversation> = serde_json::from_value(
        app.post("/api/conversations", Some(&alice.cookie), &[])
            .await
            .1,
    )
    .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0].last_message.as_ref().unwrap().body,
        "hello <b>alice</b>"
    );
    assert_eq!(list[0].unread, 1, "alice has not read bob's reply");
}

#[tokio::test]
async fn group_of_three_and_outsider_refused() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let mallory = app.register("mallory").await;
    let group = app.create_group(&alice, "Team", "bob, carol").await;
    assert_eq!(group.members.len(), 3);

    let mut clients = [
        app.connect(&alice).await,
        app.connect(&bob).await,
        app.connect(&carol).await,
    ];
    let mut m = app.connect(&mallory).await;
    clients[1].send_message(group.id, "b-1", "hello team").await;
    for (i, c) in clients.iter_mut().enumerate() {
        if i == 1 {
            assert!(matches!(
                c.expect_ack("b-1").await,
                // Seq 1 is the group's `created` event.
                ServerFrame::Ack { seq: 2, .. }
            ));
            continue;
        }
        let msg = c.expect_message().await;
        assert_eq!((msg.seq, msg.body.as_str()), (2, "hello team"));
    }

    m.send_message(group.id, "m-1", "let me in").await;
    let err = m.recv().await;
    assert!(
        matches!(&err, ServerFrame::Error { code: ErrorCode::NotMember, client_id: Some(c), .. } if c == "m-1"),
        "{err:?}"
    );
    m.send_message(ConvId(9999), "m-2", "anyone?").await;
    assert!(matches!(
        m.recv().await,
        ServerFrame::Error {
            code: ErrorCode::UnknownConversation,
            ..
        }
    ));
    assert_eq!(
        app.store().count_messages(group.id).await.unwrap(),
        2,
        "`created` and one message: nothing stored for the outsider"
    );
    for c in clients.iter_mut() {
        let extra = c.drain(Duration::from_millis(300)).await;
        assert!(
            extra.iter().all(|f| !matches!(f, ServerFrame::Message(_))),
            "{extra:?}"
        );
    }
    let (status, body) = app
        .post(
            "/api/history",
            Some(&mallory.cookie),
            &[("conv", &group.id.to_string())],
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
}

#[tokio::test]
async fn bad_frames_get_errors_and_the_connection_stays_usable() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    app.register("bob").await;
    let conv = app.open_direct(&alice, "bob").await;
    let mut a = app.connect(&alice).await;

    let too_long = "x".repeat(MAX_BODY_CHARS + 1);
    let huge_frame = format!(
        r#"{{"type":"send","conv":1,"client_id":"z","body":"{}"}}"#,
        "y".repeat(70 * 1024)
    );
    let cases: Vec<(String, ErrorCode)> = vec![
        ("this is not json".into(), ErrorCode::BadFrame),
        (r#"{"type":"launch_missiles"}"#.into(), ErrorCode::BadFrame),
        (
            r#"{"type":"send","conv":"one"}"#.into(),
            ErrorCode::BadFrame,
        ),
        (
            format!(
                r#"{{"type":"send","conv":{},"client_id":"c-1","body":"   "}}"#,
                conv.id
            ),
            ErrorCode::Empty,
        ),
        (
            format!(
                r#"{{"type":"send","conv":{},"client_id":"c-2","body":"{too_long}"}}"#,
                conv.id
            ),
            ErrorCode::TooLarge,
        ),
        (huge_frame, ErrorCode::TooLarge),
    ];
    for (text, code) in cases {
        a.send_text(&text).await;
        match a.recv().await {
            ServerFrame::Error { code: got, .. } => assert_eq!(got, code, "for {:.60}", text),
            other => panic!("expected an error for {text:.60}, got {other:?}"),
        }
    }
    assert_eq!(app.store().count_messages(conv.id).await.unwrap(), 0);

    a.send(&app::protocol::ClientFrame::Ping).await;
    assert_eq!(a.recv().await, ServerFrame::Pong);
    a.send_message(conv.id, "ok-1", "still here").await;
    a.expect_ack("ok-1").await;
}

#[tokio::test]
async fn upgrade_without_a_valid_session_is_refused() {
    let app = spawn_app().await;
    for cookie in [None, Some("tidings_session=not-a-real-token")] {
        match Client::connect(app.addr, cookie).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 401),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("upgrade accepted without a session"),
        }
    }
}

#[tokio::test]
async fn ping_pong_and_hello_identify_the_user() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/ws", app.addr),
    )
    .unwrap();
    req.headers_mut()
        .insert("cookie", alice.cookie.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    use futures::StreamExt;
    let first = tokio::time::timeout(WAIT, socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let hello: ServerFrame = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(
        hello,
        ServerFrame::Hello {
            user: alice.user.clone()
        }
    );
}

#[tokio::test]
async fn presence_follows_connections_and_new_chats() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    app.open_direct(&alice, "bob").await;
    let presence = |f: ServerFrame| match f {
        ServerFrame::Presence { user, online } => Some((user, online)),
        _ => None,
    };

    let mut a = app.connect(&alice).await;
    let mut b = app.connect(&bob).await;
    assert_eq!(
        a.expect(presence).await,
        (bob.user.id, true),
        "alice sees bob arrive"
    );
    assert_eq!(
        b.expect(presence).await,
        (alice.user.id, true),
        "bob's initial state has alice"
    );
    // A second tab changes nothing; closing the last one does.
    let b2 = app.connect(&bob).await;
    drop(b2);
    drop(b);
    assert_eq!(a.expect(presence).await, (bob.user.id, false));

    // Carol is online but shares nothing with alice: alice hears of her only once they share a chat.
    let mut c = app.connect(&carol).await;
    let quiet = a.drain(Duration::from_millis(300)).await;
    assert!(
        quiet.iter().all(|f| presence(f.clone()).is_none()),
        "{quiet:?}"
    );
    app.open_direct(&carol, "alice").await;
    assert_eq!(a.expect(presence).await, (carol.user.id, true));
    assert_eq!(c.expect(presence).await, (alice.user.id, true));
}
