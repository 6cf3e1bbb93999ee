//! Bot accounts and the `/api/v1` API (issue #11): a token made by the real `tidings bot
//! create`, posts that people see live, idempotency, the membership rule, revocation, the
//! read endpoints and the OpenAPI document.

use crate::helpers::{spawn_app, TestApp};
use app::model::{ConvId, Message};
use app::protocol::ServerFrame;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// Runs `tidings bot ARGS` against the app's database; (success, stdout, stderr).
async fn bot_command(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .arg("bot")
        .args(args)
        .args(["--database-url", &app.db_url])
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("tidings bot finished")
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn post(
    app: &TestApp,
    token: &str,
    conv: ConvId,
    key: Option<&str>,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let mut req = app
        .http
        .post(app.url(&format!("/api/v1/conversations/{conv}/messages")))
        .bearer_auth(token)
        .json(&body);
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// The answer is the JSON error `code` with HTTP `want`.
fn refused(status: u16, body: &serde_json::Value, want: u16, code: &str) {
    assert_eq!(
        (status, body["code"].as_str()),
        (want, Some(code)),
        "{body}"
    );
}

/// Revokes webhook `id` of `conv` as the person with `cookie`; it must succeed.
async fn revoke_webhook(app: &TestApp, cookie: &str, conv: &str, id: &str) {
    let (status, body) = app
        .post(
            "/api/revoke_webhook",
            Some(cookie),
            &[("conv", conv), ("id", id)],
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Posts `text` to a webhook's `path` (no cookie, no token: the path is the secret).
async fn hook(app: &TestApp, path: &str, text: &str) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .json(&serde_json::json!({ "text": text }))
        .send()
        .await
        .unwrap()
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, serde_json::Value) {
    let res = app
        .http
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test]
async fn a_bot_posts_through_the_api_and_people_see_it_live() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let group = app.create_group(&alice, "Deploys", "bob").await;
    let other = app.create_group(&bob, "Private", "alice").await;

    // The operator makes the bot; the token is printed once, on stdout alone.
    let (ok, stdout, stderr) = bot_command(&app, &["create", "deploybot"]).await;
    assert!(ok, "{stderr}");
    let token = stdout.trim().to_owned();
    assert_eq!(token.len(), 64, "{stdout}");
    assert!(stderr.contains("shown only now"), "{stderr}");
    // A bot cannot log in with a password, and a person's name cannot become a bot.
    let (status, _) = app
        .post(
            "/api/login",
            None,
            &[("username", "deploybot"), ("password", "!bot")],
        )
        .await;
    assert_eq!(status, 401);
    let (ok, _, stderr) = bot_command(&app, &["create", "alice"]).await;
    assert!(!ok && stderr.contains("person"), "{stderr}");

    // Added to the group like a person.
    let (status, body) = app
        .post(
            "/api/add_member",
            Some(&alice.cookie),
            &[("conv", &group.id.to_string()), ("username", "deploybot")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, list) = get(&app, &token, "/api/v1/conversations").await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [group.id.0], "only the bot's conversations");

    // Two people connected see the post live.
    let mut a = app.connect(&alice).await;
    let mut b = app.connect(&bob).await;
    let (status, body) = post(
        &app,
        &token,
        group.id,
        Some("deploy-42"),
        serde_json::json!({"body": "v42 is live"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let posted: Message = serde_json::from_value(body).unwrap();
    assert_eq!(posted.body, "v42 is live");
    assert_eq!(posted.sender.username, "deploybot");
    for client in [&mut a, &mut b] {
        let m = client.expect_message().await;
        assert_eq!(
            (m.seq, m.body.as_str(), m.id),
            (posted.seq, "v42 is live", posted.id)
        );
    }

    // The same Idempotency-Key again: the original, nothing stored twice, nothing fanned out.
    let before = app.store().count_messages(group.id).await.unwrap();
    let (status, body) = post(
        &app,
        &token,
        group.id,
        Some("deploy-42"),
        serde_json::json!({"body": "v42 is live"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let again: Message = serde_json::from_value(body).unwrap();
    assert_eq!((again.seq, again.id), (posted.seq, posted.id));
    assert_eq!(app.store().count_messages(group.id).await.unwrap(), before);
    assert!(
        a.drain(Duration::from_millis(300))
            .await
            .iter()
            .all(|f| !matches!(f, ServerFrame::Message(_))),
        "a repeat is not delivered again"
    );

    // Not a member: 403 and nothing stored; no such conversation: 404; bad input: 400.
    let before_other = app.store().count_messages(other.id).await.unwrap();
    let (status, body) = post(
        &app,
        &token,
        other.id,
        None,
        serde_json::json!({"body": "hi"}),
    )
    .await;
    refused(status, &body, 403, "forbidden");
    assert_eq!(
        app.store().count_messages(other.id).await.unwrap(),
        before_other
    );
    let bad: [(ConvId, Option<&str>, serde_json::Value, u16, &str); 4] = [
        (
            ConvId(9999),
            None,
            serde_json::json!({"body": "hi"}),
            404,
            "not_found",
        ),
        (
            group.id,
            None,
            serde_json::json!({"body": "  "}),
            400,
            "invalid",
        ),
        (
            group.id,
            Some("not a key!"),
            serde_json::json!({"body": "x"}),
            400,
            "invalid",
        ),
        (
            group.id,
            None,
            serde_json::json!({"text": "x"}),
            400,
            "invalid",
        ),
    ];
    for (conv, key, json, want, code) in bad {
        let (status, body) = post(&app, &token, conv, key, json).await;
        refused(status, &body, want, code);
    }
    let (status, body) = get(
        &app,
        &token,
        &format!("/api/v1/conversations/{}/messages", other.id),
    )
    .await;
    refused(status, &body, 403, "forbidden");

    // Reading the log: everything after a seq, in pages.
    let (status, page) = get(
        &app,
        &token,
        &format!(
            "/api/v1/conversations/{}/messages?after_seq=0&limit=100",
            group.id
        ),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["messages"][0]["body"], "v42 is live");
    assert_eq!(page["next_seq"], posted.seq);
    assert_eq!(page["events"][0]["change"]["kind"], "created");

    // The OpenAPI document is served.
    let doc: serde_json::Value = app
        .http
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/conversations/{id}/messages"]["post"].is_object());

    // Revoked: 401 from then on, and nothing stored.
    let (ok, stdout, stderr) = bot_command(&app, &["revoke", "deploybot"]).await;
    assert!(ok && stdout.contains("revoked 1"), "{stdout}{stderr}");
    let before = app.store().count_messages(group.id).await.unwrap();
    let (status, body) = post(
        &app,
        &token,
        group.id,
        None,
        serde_json::json!({"body": "still here?"}),
    )
    .await;
    refused(status, &body, 401, "unauthorized");
    assert_eq!(app.store().count_messages(group.id).await.unwrap(), before);
    let (ok, _, stderr) = bot_command(&app, &["revoke", "nobody"]).await;
    assert!(!ok && stderr.contains("no bot"), "{stderr}");
}

#[tokio::test]
async fn an_incoming_webhook_posts_as_its_bot_until_revoked() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let group = app.create_group(&alice, "Builds", "bob").await;
    let conv = group.id.to_string();

    // Only members make webhooks; a person's name cannot be a webhook's bot.
    let (status, body) = app
        .post(
            "/api/create_webhook",
            Some(&carol.cookie),
            &[("conv", &conv), ("name", "ci-bot")],
        )
        .await;
    refused(status, &body, 403, "forbidden");
    let (status, body) = app
        .post(
            "/api/create_webhook",
            Some(&bob.cookie),
            &[("conv", &conv), ("name", "alice")],
        )
        .await;
    refused(status, &body, 409, "conflict");

    let mut a = app.connect(&alice).await;
    let (status, made) = app
        .post(
            "/api/create_webhook",
            Some(&bob.cookie),
            &[("conv", &conv), ("name", "ci-bot")],
        )
        .await;
    assert_eq!(status, 200, "{made}");
    let path = made["path"].as_str().unwrap().to_owned();
    assert!(
        path.starts_with("/hooks/") && path.len() == "/hooks/".len() + 64,
        "{path}"
    );
    assert_eq!(made["webhook"]["bot"]["username"], "ci-bot");
    // The bot joined the group, and shows as a bot.
    let view = app
        .store()
        .conversation_for(alice.user.id, group.id)
        .await
        .unwrap()
        .unwrap();
    let bot = view
        .members
        .iter()
        .find(|m| m.username == "ci-bot")
        .expect("a member")
        .id;
    assert!(view.is_bot(bot) && !view.is_bot(alice.user.id));
    let (status, list) = app
        .post("/api/webhooks", Some(&alice.cookie), &[("conv", &conv)])
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(
        list.to_string().find(&path[7..]).is_none(),
        "the secret is never listed"
    );

    // A POST of {"text"} posts as the bot, live.
    let res = hook(&app, &path, "build 17 passed").await;
    assert_eq!(res.status(), 200);
    let m = a
        .expect(|f| match f {
            ServerFrame::Message(m) if m.body == "build 17 passed" => Some(m),
            _ => None,
        })
        .await;
    assert_eq!(m.sender.id, bot);

    // A wrong secret: 404, nothing stored.
    let before = app.store().count_messages(group.id).await.unwrap();
    let wrong = format!("/hooks/{}", "0".repeat(64));
    let res = hook(&app, &wrong, "sneaky").await;
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
    assert_eq!(app.store().count_messages(group.id).await.unwrap(), before);

    // Revoked: the URL answers 404 from then on.
    let id = made["webhook"]["id"].as_i64().unwrap().to_string();
    revoke_webhook(&app, &alice.cookie, &conv, &id).await;
    let res = hook(&app, &path, "after revoke").await;
    assert_eq!(res.status(), 404);
    assert_eq!(app.store().count_messages(group.id).await.unwrap(), before);
}

#[tokio::test]
async fn a_revoked_webhooks_bot_name_can_be_used_again_in_its_group_only() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    app.register("bob").await;
    let group = app.create_group(&alice, "Builds", "bob").await;
    let other = app.create_group(&alice, "Elsewhere", "bob").await;
    let (conv, elsewhere) = (group.id.to_string(), other.id.to_string());
    let create = |conv: String| {
        let (app, cookie) = (&app, alice.cookie.clone());
        async move {
            app.post(
                "/api/create_webhook",
                Some(&cookie),
                &[("conv", conv.as_str()), ("name", "ci-bot")],
            )
            .await
        }
    };
    let (status, first) = create(conv.clone()).await;
    assert_eq!(status, 200, "{first}");
    let id = first["webhook"]["id"].as_i64().unwrap().to_string();
    revoke_webhook(&app, &alice.cookie, &conv, &id).await;

    // The group's webhook bot outlives the webhook: a new webhook may speak as it again.
    let (status, again) = create(conv.clone()).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        again["webhook"]["bot"], first["webhook"]["bot"],
        "the same bot"
    );
    let res = hook(&app, again["path"].as_str().unwrap(), "back again").await;
    assert_eq!(res.status(), 200);

    // Another group's webhook must not speak as it.
    let (status, body) = create(elsewhere).await;
    refused(status, &body, 409, "conflict");
}
