//! Hard to break (#10): every bad input gets its documented error and changes nothing, every
//! limit holds, and the promises about closing connections are kept — checked from outside,
//! over real HTTP and WebSocket connections, as an independent client would.

use crate::helpers::{free_addr, spawn_app, spawn_app_with, Client, Node, TestApp, TRAFFIC, WAIT};
use app::model::ConvId;
use app::protocol::{ClientFrame, ErrorCode, ServerFrame};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use server::store::Durability;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
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

/// Upgrades, retrying while the user is at the connection cap: a closed connection frees its
/// place only once the server has noticed it closing.
async fn upgrade_once_a_place_frees(app: &TestApp, cookie: &str) -> Client {
    loop {
        match upgrade(app, cookie).await {
            Ok(client) => return client,
            Err((429, text)) if text.contains("too many connections") => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(other) => panic!("{other:?}"),
        }
    }
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
    let third = upgrade_once_a_place_frees(&app, &alice.cookie).await;
    drop(third);
    let fourth = upgrade_once_a_place_frees(&app, &alice.cookie).await;
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

#[tokio::test]
async fn sigterm_closes_every_websocket_with_1001_and_keeps_every_acked_message() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("term.db").display());
    let mut node = Node::start(free_addr(), &db_url, &TRAFFIC).await;
    let app = TestApp::attach(node.addr);
    // 5 people, 10 sockets each: one of each person's sends while the other nine listen.
    let mut users = Vec::new();
    for i in 0..5 {
        users.push(app.register(&format!("user{i}")).await);
    }
    let names: Vec<_> = users[1..].iter().map(|u| u.user.username.clone()).collect();
    let conv = app
        .create_group(&users[0], "Shutdown", &names.join(","))
        .await
        .id;
    let acked = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (n, user) in users.iter().enumerate() {
        for socket in 0..10 {
            let mut client = app.connect(user).await;
            let acked = acked.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                if socket != 0 {
                    return (close_code(&mut client).await, mine);
                }
                // A sender that does not wait: a frame every millisecond while it reads acks,
                // so the server always has unread frames when it closes.
                let (mut out, mut incoming) = client.socket.split();
                let writer = tokio::spawn(async move {
                    for i in 0.. {
                        let frame = ClientFrame::Send {
                            conv,
                            client_id: format!("u{n}-{i}"),
                            body: "still here".into(),
                            reply_to: None,
                            attachment: None,
                        };
                        if out
                            .send(WsMessage::Text(frame.to_json().into()))
                            .await
                            .is_err()
                        {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                });
                let code = loop {
                    match tokio::time::timeout(WAIT, incoming.next()).await {
                        Ok(Some(Ok(WsMessage::Text(text)))) => {
                            if let Ok(ServerFrame::Ack { client_id, .. }) =
                                serde_json::from_str(&text)
                            {
                                mine.push(client_id);
                                acked.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Ok(Some(Ok(WsMessage::Close(frame)))) => {
                            break frame.map(|f| u16::from(f.code))
                        }
                        Ok(Some(Ok(_))) => {}
                        _ => break None,
                    }
                };
                writer.abort();
                (code, mine)
            }));
        }
    }
    while acked.load(Ordering::SeqCst) < 1000 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let status = node.terminate().await;
    assert!(status.success(), "clean exit: {status}");
    let mut all_acked = Vec::new();
    let mut codes = Vec::new();
    for task in tasks {
        let (code, mine) = task.await.unwrap();
        codes.push(code);
        all_acked.extend(mine);
    }
    assert_eq!(codes, vec![Some(1001); 50], "every socket heard 1001");
    let store = server::store::Store::connect(&db_url).await.unwrap();
    let stored: std::collections::HashSet<String> = store
        .after(conv, 0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.client_id().to_owned())
        .collect();
    let lost: Vec<_> = all_acked
        .iter()
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(lost.is_empty(), "acked but not stored: {lost:?}");
    println!(
        "SIGTERM during traffic: 50 sockets closed with 1001, {} acked, {} stored, none lost",
        all_acked.len(),
        stored.len()
    );
}

#[tokio::test]
async fn half_sent_requests_time_out_and_connections_are_capped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|c| {
        c.header_timeout_secs = 0.5;
        c.max_connections = 20;
    })
    .await;
    // 20 partial upgrades, then silence: each is closed after the header timeout.
    let mut half_open = Vec::new();
    for _ in 0..20 {
        let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        tcp.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
            .await
            .unwrap();
        half_open.push(tcp);
    }
    // Meanwhile the node is full: one more connection is closed at once, unanswered.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(WAIT, extra.read(&mut buf))
        .await
        .expect("closed, not left hanging");
    assert!(matches!(n, Ok(0) | Err(_)), "refused at the cap: {n:?}");
    for mut tcp in half_open {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut rest)).await;
        assert!(
            closed.is_ok(),
            "a half-sent request was closed by the server"
        );
    }
    // Once they are gone there is room again.
    let res = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn login_limits_count_the_real_peer_not_a_forged_forwarded_for() {
    let app = spawn_app_with(|c| c.login_attempts = 2).await; // 10 failures per address
    let from = |ip: &str| {
        reqwest::Client::builder()
            .local_address(ip.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let login = |client: reqwest::Client, user: String, xff: String| {
        let url = app.url("/api/login");
        async move {
            client
                .post(url)
                .header("x-forwarded-for", xff)
                .form(&[("username", user.as_str()), ("password", "wrong password")])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let here = from("127.0.0.1");
    let mut statuses = Vec::new();
    for i in 0..12 {
        // A new account and a new forged address every time: only the peer address is left.
        statuses.push(login(here.clone(), format!("victim{i}"), format!("10.0.0.{i}")).await);
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    assert_eq!(&statuses[10..], &[429, 429], "the peer's bucket is spent");
    // Someone else, from another address, is not locked out by it.
    assert_eq!(
        login(from("127.0.0.2"), "other".into(), String::new()).await,
        401
    );
}

#[tokio::test]
async fn forwarded_for_is_believed_from_a_trusted_proxy() {
    let app = spawn_app_with(|c| {
        c.login_attempts = 1; // 5 failures per address
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let login = |user: String, xff: &'static str| {
        let req = app
            .http
            .post(app.url("/api/login"))
            .header("x-forwarded-for", xff);
        async move {
            req.form(&[("username", user.as_str()), ("password", "wrong password")])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for i in 0..5 {
        assert_eq!(login(format!("a{i}"), "203.0.113.7").await, 401);
    }
    assert_eq!(login("a9".into(), "203.0.113.7").await, 429);
    assert_eq!(
        login("b0".into(), "203.0.113.8").await,
        401,
        "another client behind the proxy"
    );
}

#[tokio::test]
async fn registrations_per_address_are_limited() {
    let app = spawn_app_with(|c| c.registrations_per_hour = 2).await;
    app.register("first").await;
    app.register("second").await;
    let (status, body) = app
        .post(
            "/api/register",
            None,
            &[("username", "third"), ("password", "long enough pw")],
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (429, json!("rate_limited")),
        "{body}"
    );
    let other = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let res = other
        .post(app.url("/api/register"))
        .form(&[("username", "third"), ("password", "long enough pw")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        200,
        "another address may, and 'third' was not taken by the refusal"
    );
}

#[tokio::test]
async fn logout_closes_that_sessions_websockets_and_logout_everywhere_closes_all() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let res = app
        .http
        .post(app.url("/api/login"))
        .form(&[("username", "alice"), ("password", "correct horse battery")])
        .send()
        .await
        .unwrap();
    let phone = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let mut laptop_tabs = [
        Client::connect(app.addr, Some(&alice.cookie))
            .await
            .unwrap(),
        Client::connect(app.addr, Some(&alice.cookie))
            .await
            .unwrap(),
    ];
    let mut on_phone = Client::connect(app.addr, Some(&phone)).await.unwrap();

    let (status, _) = app.post("/api/logout", Some(&alice.cookie), &[]).await;
    assert_eq!(status, 200);
    for tab in &mut laptop_tabs {
        assert_eq!(
            close_code(tab).await,
            Some(4004),
            "the session's sockets close"
        );
    }
    assert_eq!(
        upgrade(&app, &alice.cookie).await.err().map(|e| e.0),
        Some(401)
    );
    on_phone.send(&ClientFrame::Ping).await;
    assert_eq!(
        on_phone.recv().await,
        ServerFrame::Pong,
        "other sessions stay"
    );

    let (status, _) = app.post("/api/logout_everywhere", Some(&phone), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(close_code(&mut on_phone).await, Some(4004));
    let (_, me) = app.post("/api/me", Some(&phone), &[]).await;
    assert_eq!(me, serde_json::Value::Null, "every session is gone");
}

#[tokio::test]
async fn readyz_answers_503_while_redis_is_down_and_healthz_stays_200() {
    let mut redis = crate::helpers::RedisServer::start(free_addr().port()).await;
    let url = redis.url();
    let app = spawn_app_with(|c| c.redis_url = Some(url)).await;
    let get = |path: &'static str| {
        let req = app.http.get(app.url(path));
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<serde_json::Value>().await.unwrap())
        }
    };
    // Ready once the Redis subscription is up (it comes up just after start).
    let mut answer = get("/readyz").await;
    for _ in 0..100 {
        if answer.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = get("/readyz").await;
    }
    assert_eq!(
        (answer.0, answer.1["ready"].clone()),
        (200, json!(true)),
        "{}",
        answer.1
    );
    redis.kill().await;
    let mut answer = get("/readyz").await;
    for _ in 0..100 {
        if answer.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = get("/readyz").await;
    }
    assert_eq!(answer.0, 503, "{}", answer.1);
    assert_eq!(
        (answer.1["ready"].clone(), answer.1["redis"].clone()),
        (json!(false), json!("down"))
    );
    let (status, health) = get("/healthz").await;
    assert_eq!(
        (status, health["redis"].clone()),
        (200, json!("down")),
        "alive all the same"
    );
}

#[tokio::test]
async fn a_direct_chat_with_yourself_is_refused() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let (status, body) = app
        .post(
            "/api/open_direct",
            Some(&alice.cookie),
            &[("username", "alice")],
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (400, json!("invalid")),
        "{body}"
    );
    let (_, list) = app
        .post("/api/conversations", Some(&alice.cookie), &[])
        .await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn metrics_count_refusals_by_limit() {
    let app = spawn_app_with(|c| {
        c.send_rate = 1;
        c.send_burst = 1;
    })
    .await;
    let alice = app.register("alice").await;
    app.register("bob").await;
    let conv = app.open_direct(&alice, "bob").await.id;
    let mut a = app.connect(&alice).await;
    a.send_message(conv, "one", "hi").await;
    a.send_message(conv, "two", "hi").await;
    a.expect_ack("one").await;
    a.expect(|f| {
        matches!(
            f,
            ServerFrame::Error {
                code: ErrorCode::RateLimited,
                ..
            }
        )
        .then_some(())
    })
    .await;
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("tidings_rate_limited_total{limit=\"send\"} 1\n"),
        "{text}"
    );
}

/// The value of the series that `series` (name and labels, as printed) names in `/metrics`.
fn series(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn metrics_count_frames_errors_commits_queries_and_memory() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    app.register("bob").await;
    app.register("carol").await;
    let conv = app.open_direct(&alice, "bob").await.id;
    let theirs = app
        .open_direct(&app.register("dave").await, "carol")
        .await
        .id;
    let mut a = app.connect(&alice).await;
    for n in 0..3 {
        a.send_message(conv, &format!("m{n}"), "hello").await;
    }
    for n in 0..3 {
        a.expect_ack(&format!("m{n}")).await;
    }
    // An unreadable frame, and typing where alice is not a member: two error codes.
    a.send_text("not a frame").await;
    a.send(&ClientFrame::Typing { conv: theirs }).await;
    for want in [ErrorCode::BadFrame, ErrorCode::NotMember] {
        a.expect(|f| match f {
            ServerFrame::Error { code, .. } if code == want => Some(()),
            _ => None,
        })
        .await;
    }
    // A page of history over HTTP: a timed query.
    let (status, page) = app
        .post(
            "/api/history",
            Some(&alice.cookie),
            &[("conv", &conv.to_string()), ("limit", "50")],
        )
        .await;
    assert_eq!(status, 200, "{page}");

    let res = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = res.text().await.unwrap();
    assert_eq!(series(&text, "tidings_frames_in_total{type=\"send\"}"), 3.0);
    assert_eq!(
        series(&text, "tidings_frames_in_total{type=\"typing\"}"),
        1.0
    );
    assert_eq!(series(&text, "tidings_frames_in_total{type=\"edit\"}"), 0.0);
    assert_eq!(
        series(&text, "tidings_errors_total{code=\"bad_frame\"}"),
        1.0
    );
    assert_eq!(
        series(&text, "tidings_errors_total{code=\"not_member\"}"),
        1.0
    );
    assert_eq!(
        series(&text, "tidings_errors_total{code=\"rate_limited\"}"),
        0.0
    );
    assert_eq!(series(&text, "tidings_messages_stored_total"), 3.0);
    assert_eq!(series(&text, "tidings_connections"), 1.0);
    assert_eq!(series(&text, "tidings_connections_opened_total"), 1.0);
    assert_eq!(series(&text, "tidings_slow_consumers_total"), 0.0);
    let batches = series(&text, "tidings_commit_batches_total");
    assert!((1.0..=3.0).contains(&batches), "{batches}");
    assert_eq!(series(&text, "tidings_commit_batch_size_count"), batches);
    assert_eq!(series(&text, "tidings_commit_batch_size_sum"), 3.0);
    assert_eq!(series(&text, "tidings_commit_seconds_count"), batches);
    assert!(series(&text, "tidings_commit_seconds_sum") > 0.0);
    assert_eq!(
        series(&text, "tidings_db_query_seconds_count{query=\"append\"}"),
        batches
    );
    assert_eq!(
        series(&text, "tidings_db_query_seconds_count{query=\"history\"}"),
        1.0
    );
    assert_eq!(
        series(&text, "tidings_rate_limited_total{limit=\"login\"}"),
        0.0
    );
    // No Redis here: the series are there, at zero.
    assert_eq!(series(&text, "tidings_redis_reconnects_total"), 0.0);
    assert_eq!(series(&text, "tidings_redis_publish_seconds_count"), 0.0);
    let rss = series(&text, "process_resident_memory_bytes");
    assert!(rss > 1e6, "a live server holds more than a megabyte: {rss}");
}

#[tokio::test]
async fn a_failed_form_login_without_referer_goes_back_to_the_form_with_the_error() {
    let app = spawn_app().await;
    app.register("alice").await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |password: &'static str| {
        browser
            .post(app.url("/api/login"))
            .header("accept", "text/html")
            .form(&[("username", "alice"), ("password", password)])
            .send()
    };
    let failed = post("wrong password").await.unwrap();
    let location = failed.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(failed.status(), 302);
    assert!(
        location.starts_with("/login?") && location.contains("__err="),
        "{location}"
    );
    let ok = post("correct horse battery").await.unwrap();
    assert_eq!(
        (
            ok.status().as_u16(),
            ok.headers()["location"].to_str().unwrap()
        ),
        (302, "/")
    );
}

#[tokio::test]
async fn changing_the_password_ends_every_other_session() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let (_, other) = {
        let res = app
            .http
            .post(app.url("/api/login"))
            .form(&[("username", "alice"), ("password", "correct horse battery")])
            .send()
            .await
            .unwrap();
        let cookie = res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        (res.status(), cookie)
    };
    let mut stolen = Client::connect(app.addr, Some(&other)).await.unwrap();
    let mut mine = app.connect(&alice).await;

    let (status, body) = app
        .post(
            "/api/change_password",
            Some(&alice.cookie),
            &[("current", "wrong"), ("new", "a new long password")],
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (401, json!("bad_credentials"))
    );
    let (status, body) = app
        .post(
            "/api/change_password",
            Some(&alice.cookie),
            &[("current", "correct horse battery"), ("new", "short")],
        )
        .await;
    assert_eq!((status, body["code"].clone()), (400, json!("invalid")));
    let (status, body) = app
        .post(
            "/api/change_password",
            Some(&alice.cookie),
            &[
                ("current", "correct horse battery"),
                ("new", "a new long password"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        close_code(&mut stolen).await,
        Some(4004),
        "the other session's socket closes"
    );
    let (_, me) = app.post("/api/me", Some(&other), &[]).await;
    assert_eq!(me, serde_json::Value::Null, "the other session is gone");
    mine.send(&ClientFrame::Ping).await;
    assert_eq!(mine.recv().await, ServerFrame::Pong, "this one stays");
    let (status, _) = app
        .post(
            "/api/login",
            None,
            &[("username", "alice"), ("password", "a new long password")],
        )
        .await;
    assert_eq!(status, 200);
}

/// A page is rendered on one worker thread and its response may be finished on another, so
/// nothing the page holds may be tied to the thread that made it. (A thread-local value in the
/// composer did exactly that: when the last chunk happened to be written from another thread,
/// dropping the page panicked and the browser got an empty response — at random, 8 loads in
/// 200 here.) The real binary, so the runtime has a thread per core.
#[tokio::test]
async fn pages_load_whole_whichever_thread_finishes_them() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("pages.db").display());
    let node = Node::start(free_addr(), &db_url, &TRAFFIC).await;
    let app = TestApp::attach(node.addr);
    let alice = app.register("alice").await;
    app.register("bob").await;
    let conv = app.open_direct(&alice, "bob").await.id;
    let http = reqwest::Client::new();
    const LOADS: usize = 200;
    let loads = (0..LOADS).map(|_| {
        let request = http
            .get(app.url(&format!("/c/{}", conv.0)))
            .header("cookie", &alice.cookie);
        async move {
            let Ok(response) = request.send().await else {
                return false;
            };
            response.status() == 200
                && response
                    .text()
                    .await
                    .is_ok_and(|page| page.contains("</html>"))
        }
    });
    let whole = futures::future::join_all(loads)
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count();
    assert_eq!(
        whole,
        LOADS,
        "{} of {LOADS} page loads broke off",
        LOADS - whole
    );
}

/// The `set-cookie` value that sets the session cookie, if the reply has one.
fn session_set_cookie(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tidings_session="))
        .map(str::to_owned)
}

#[tokio::test]
async fn cross_site_requests_to_the_cookie_api_are_refused_with_403() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    app.register("bob").await;
    let own = format!("http://{}", app.addr);
    let evil = "https://evil.example";
    let group = [("title", "Plans"), ("members", "bob")];
    let refused: [&[(&str, &str)]; 5] = [
        &[("sec-fetch-site", "cross-site"), ("origin", evil)],
        &[("sec-fetch-site", "cross-site")],
        &[("origin", evil)],
        &[("origin", "null")],
        // Another subdomain or port of the same site is not this server either.
        &[
            ("sec-fetch-site", "same-site"),
            ("origin", "http://127.0.0.1:1"),
        ],
    ];
    for headers in refused {
        let (status, body, _) = app
            .post_with("/api/create_group", Some(&alice.cookie), &group, headers)
            .await;
        assert_eq!(
            (status, body["code"].clone()),
            (403, json!("forbidden")),
            "{headers:?}: {body}"
        );
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("cross-site") && message.contains("Origin"),
            "{message}"
        );
    }
    // The no-JS login form posted from another site gets the same answer, not a redirect, and
    // no cookie (login CSRF).
    let (status, body, headers) = app
        .post_with(
            "/api/login",
            None,
            &[("username", "alice"), ("password", "correct horse battery")],
            &[
                ("accept", "text/html"),
                ("sec-fetch-site", "cross-site"),
                ("origin", evil),
            ],
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (403, json!("forbidden")),
        "{body}"
    );
    assert_eq!(session_set_cookie(&headers), None);
    // Uploads are cookie-authenticated too.
    let res = app
        .http
        .post(app.url("/api/attachments?name=a.txt"))
        .header("cookie", &alice.cookie)
        .header("sec-fetch-site", "cross-site")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Nothing was created.
    let (_, list) = app
        .post("/api/conversations", Some(&alice.cookie), &[])
        .await;
    assert_eq!(list, json!([]));

    // The app's own pages, a typed-in request, and clients that send neither header go through.
    let allowed: [&[(&str, &str)]; 4] = [
        &[("sec-fetch-site", "same-origin"), ("origin", &own)],
        &[("sec-fetch-site", "same-origin")],
        &[("sec-fetch-site", "none")],
        &[],
    ];
    for (n, headers) in allowed.into_iter().enumerate() {
        let title = format!("Plans {n}");
        let (status, body, _) = app
            .post_with(
                "/api/create_group",
                Some(&alice.cookie),
                &[("title", &title), ("members", "bob")],
                headers,
            )
            .await;
        assert_eq!(status, 200, "{headers:?}: {body}");
    }
    // Bearer-token and webhook routes are not the cookie API: a cross-site request gets their
    // own answers (no token: 401; no such hook: 404), not this refusal.
    let res = app
        .http
        .get(app.url("/api/v1/conversations"))
        .header("sec-fetch-site", "cross-site")
        .header("origin", evil)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .http
        .post(app.url("/hooks/0123456789abcdef0123456789abcdef"))
        .header("sec-fetch-site", "cross-site")
        .header("origin", evil)
        .json(&json!({"text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_ne!(res.status(), 403);
}

#[tokio::test]
async fn cross_site_origins_listed_in_allowed_origins_are_let_through() {
    let app = spawn_app_with(|c| c.allowed_origins = vec!["http://localhost:8080".into()]).await;
    let alice = app.register("alice").await;
    let (status, body, _) = app
        .post_with(
            "/api/me",
            Some(&alice.cookie),
            &[],
            &[
                ("sec-fetch-site", "same-site"),
                ("origin", "http://localhost:8080"),
            ],
        )
        .await;
    assert_eq!(
        (status, body["username"].clone()),
        (200, json!("alice")),
        "{body}"
    );
}

#[tokio::test]
async fn html_pages_carry_security_headers_and_a_csp_with_their_scripts_nonce() {
    let app = spawn_app().await;
    let mut nonces = Vec::new();
    for path in ["/login", "/login", "/no-such-page"] {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        assert!([200, 404].contains(&res.status().as_u16()), "{path}");
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "same-origin", "{path}");
        let csp = header("content-security-policy");
        for directive in [
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'self'",
            "'wasm-unsafe-eval'",
        ] {
            assert!(csp.contains(directive), "{path}: {directive} in {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        let script_src = csp
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("script-src "))
            .unwrap_or_else(|| panic!("no script-src in {csp}"));
        let nonce = script_src
            .split_whitespace()
            .find_map(|s| s.strip_prefix("'nonce-")?.strip_suffix('\''))
            .unwrap_or_else(|| panic!("no nonce in {script_src}"))
            .to_owned();
        assert!(nonce.len() >= 16, "{nonce}");
        let body = res.text().await.unwrap();
        let scripts: Vec<&str> = body.split("<script").skip(1).collect();
        assert!(!scripts.is_empty(), "{path} has scripts to hydrate");
        for script in scripts {
            let tag = &script[..script.find('>').unwrap_or(script.len())];
            assert!(
                tag.contains(&format!("nonce=\"{nonce}\"")),
                "{path}: <script{tag}> lacks the header's nonce {nonce}"
            );
        }
        nonces.push(nonce);
    }
    assert!(
        nonces[0] != nonces[1] && nonces[1] != nonces[2],
        "a fresh nonce per page"
    );
    // Every other answer says nosniff too.
    let res = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn a_session_in_use_slides_and_an_unused_one_expires() {
    const TTL: f64 = 3.0;
    let app = spawn_app_with(|c| c.session_ttl_secs = TTL).await;
    // The session from signing up is left unused; the one from logging in is used. (Password
    // hashing is slow in a debug build: the first may be old already, never younger.)
    let idle = app.register("alice").await.cookie;
    let (status, _, headers) = app
        .post_with(
            "/api/login",
            None,
            &[("username", "alice"), ("password", "correct horse battery")],
            &[],
        )
        .await;
    assert_eq!(status, 200);
    let used = session_set_cookie(&headers).unwrap();
    assert!(
        used.contains("Max-Age=3;") || used.ends_with("Max-Age=3"),
        "{used}"
    );
    let used = used.split(';').next().unwrap().to_owned();

    let start = std::time::Instant::now();
    let (mut requests, mut renewals) = (0, 0);
    while start.elapsed() < Duration::from_secs_f64(TTL * 2.0) {
        let (status, body, headers) = app.post_with("/api/me", Some(&used), &[], &[]).await;
        assert_eq!(
            (status, body["username"].clone()),
            (200, json!("alice")),
            "after {:?}",
            start.elapsed()
        );
        requests += 1;
        if let Some(cookie) = session_set_cookie(&headers) {
            assert!(
                cookie.starts_with(&format!("{used}; ")),
                "the same token: {cookie}"
            );
            assert!(cookie.contains("Max-Age=3"), "{cookie}");
            renewals += 1;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // It outlived its first expiry, renewed now and then, not on every request.
    assert!(
        renewals >= 2 && renewals * 3 < requests,
        "{renewals} renewals in {requests} requests"
    );
    let (_, me) = app.post("/api/me", Some(&used), &[]).await;
    assert_eq!(me["username"], json!("alice"));
    // The unused one expired on time, and using it now does not bring it back.
    let (_, me) = app.post("/api/me", Some(&idle), &[]).await;
    assert_eq!(me, json!(null));
    let (status, body) = app.post("/api/conversations", Some(&idle), &[]).await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test]
async fn log_format_json_writes_one_json_object_per_line() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .arg("--help")
        .output()
        .expect("tidings --help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--log-format")
            && help.contains("TIDINGS_LOG_FORMAT")
            && help.contains("json"),
        "{help}"
    );

    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("tidings.db").display());
    let addr = free_addr();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args([
            "--addr",
            &addr.to_string(),
            "--database-url",
            &db_url,
            "--log",
            "info",
        ])
        .env("TIDINGS_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start tidings");
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let line = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("listening") {
                return line;
            }
        }
        panic!("tidings ended without saying it listens");
    })
    .await
    .expect("a log line within 10 s");
    let _ = child.kill().await;
    let log: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert_eq!(log["level"], json!("INFO"), "{log}");
    assert!(log["timestamp"].is_string(), "{log}");
    assert_eq!(log["fields"]["addr"], json!(addr.to_string()), "{log}");
    assert!(
        log["fields"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("listening"),
        "{log}"
    );
}
