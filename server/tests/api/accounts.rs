//! Register, log in, log out, who-am-I, over the real HTTP endpoints.

use crate::helpers::spawn_app;
use serde_json::json;

#[tokio::test]
async fn register_login_me_logout() {
    let app = spawn_app().await;
    let alice = app.register("Alice").await;
    assert_eq!(alice.user.username, "alice", "usernames are lower-cased");
    assert!(alice.cookie.len() > 40);

    let (status, me) = app.post("/api/me", Some(&alice.cookie), &[]).await;
    assert_eq!((status, me["username"].clone()), (200, json!("alice")));

    // Logging in again gives a second, independent session.
    let res = app
        .http
        .post(app.url("/api/login"))
        .form(&[("username", "ALICE"), ("password", "correct horse battery")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let set_cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
        "{set_cookie}"
    );

    let (status, _) = app.post("/api/logout", Some(&alice.cookie), &[]).await;
    assert_eq!(status, 200);
    let (status, me) = app.post("/api/me", Some(&alice.cookie), &[]).await;
    assert_eq!(
        (status, me),
        (200, serde_json::Value::Null),
        "the old session is gone"
    );
}

#[tokio::test]
async fn bad_registrations_and_logins_are_refused() {
    let app = spawn_app().await;
    app.register("bob").await;
    for (name, password, code) in [
        ("bob", "another password", "conflict"),
        ("BOB", "another password", "conflict"),
        ("b", "long enough pw", "invalid"),
        ("bad name!", "long enough pw", "invalid"),
        ("carol", "short", "invalid"),
    ] {
        let (status, body) = app
            .post(
                "/api/register",
                None,
                &[("username", name), ("password", password)],
            )
            .await;
        assert_eq!(body["code"], code, "{name}/{password}: {body}");
        assert!(status >= 400);
    }
    let (status, body) = app
        .post(
            "/api/login",
            None,
            &[("username", "bob"), ("password", "wrong password")],
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("bad_credentials"))
    );
    let (status, body) = app
        .post(
            "/api/login",
            None,
            &[("username", "nobody"), ("password", "wrong password")],
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("bad_credentials")),
        "no hint that the user does not exist"
    );
    let (status, body) = app.post("/api/conversations", None, &[]).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    let (status, _) = app
        .post("/api/conversations", Some("tidings_session=forged"), &[])
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn repeated_wrong_passwords_are_rate_limited() {
    let app = spawn_app().await;
    app.register("dave").await;
    let mut last = 0;
    for _ in 0..11 {
        let (status, _) = app
            .post(
                "/api/login",
                None,
                &[("username", "dave"), ("password", "guess guess")],
            )
            .await;
        last = status;
    }
    assert_eq!(last, 429);
    // Even the right password waits out the window: guessing must not pay.
    let (status, _) = app
        .post(
            "/api/login",
            None,
            &[("username", "dave"), ("password", "correct horse battery")],
        )
        .await;
    assert_eq!(status, 429);
}

#[tokio::test]
async fn password_is_stored_as_argon2_hash() {
    let app = spawn_app().await;
    app.register("erin").await;
    let (_, hash) = app.store().user_with_hash("erin").await.unwrap().unwrap();
    assert!(hash.starts_with("$argon2"), "{hash}");
    assert!(!hash.contains("correct horse"));
}

#[tokio::test]
async fn a_burst_of_sign_ups_beyond_the_hash_queue_is_refused_not_queued() {
    // One hashing thread and no waiting room: while it hashes, further sign-ups are answered
    // `rate_limited` at once and create nothing; once it is free they succeed.
    let app = crate::helpers::spawn_app_with(|c| {
        c.hash_threads = 1;
        c.hash_queue = 0;
    })
    .await;
    let names: Vec<String> = (0..8).map(|i| format!("burst{i}")).collect();
    let forms: Vec<[(&str, &str); 2]> = names
        .iter()
        .map(|name| {
            [
                ("username", name.as_str()),
                ("password", "correct horse battery"),
            ]
        })
        .collect();
    let replies = futures::future::join_all(
        forms
            .iter()
            .map(|form| app.post("/api/register", None, form)),
    )
    .await;
    let refused: Vec<&String> = names
        .iter()
        .zip(&replies)
        .filter(|(_, (status, _))| *status == 429)
        .map(|(name, _)| name)
        .collect();
    assert!(!refused.is_empty(), "{replies:?}");
    for (status, body) in &replies {
        match status {
            200 => {}
            429 => assert_eq!(body["code"], json!("rate_limited"), "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    // Nothing was created for the refused ones: once the thread is free they register (a
    // sign-up still hashing from the burst may keep it busy a moment longer).
    for name in refused {
        let form = [
            ("username", name.as_str()),
            ("password", "correct horse battery"),
        ];
        let mut tries = 0;
        loop {
            let (status, body) = app.post("/api/register", None, &form).await;
            match status {
                200 => break,
                429 if tries < 100 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                other => panic!("{name}: {other} {body}"),
            }
        }
    }
}
