//! History: keyset pages without gaps or repeats, and durability across a restart.

use crate::helpers::{spawn_app, spawn_app_with, traffic};
use app::model::HistoryPage;

#[tokio::test]
async fn history_pages_backwards_over_250_messages_without_gaps_or_repeats() {
    let app = spawn_app_with(traffic).await;
    let alice = app.register("alice").await;
    app.register("bob").await;
    let conv = app.open_direct(&alice, "bob").await;
    let mut a = app.connect(&alice).await;
    for i in 1..=250 {
        a.send_message(conv.id, &format!("c-{i}"), &format!("message {i}"))
            .await;
    }
    a.expect_ack("c-250").await;

    let mut seqs = Vec::new();
    let mut before: Option<i64> = None;
    let mut pages = 0;
    loop {
        let mut form = vec![("conv", conv.id.to_string()), ("limit", "100".to_string())];
        if let Some(b) = before {
            form.push(("before_seq", b.to_string()));
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = app.post("/api/history", Some(&alice.cookie), &form).await;
        assert_eq!(status, 200, "{body}");
        let page: HistoryPage = serde_json::from_value(body).unwrap();
        pages += 1;
        let page_seqs: Vec<i64> = page.messages.iter().map(|m| m.seq).collect();
        assert!(
            page_seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "each page is oldest-first and contiguous"
        );
        before = page_seqs.first().copied();
        seqs.splice(0..0, page_seqs);
        if !page.has_more {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seqs, (1..=250).collect::<Vec<_>>());

    let (status, body) = app
        .post(
            "/api/history",
            Some(&alice.cookie),
            &[("conv", &conv.id.to_string()), ("limit", "101")],
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid")));
}

#[tokio::test]
async fn history_survives_a_restart_on_the_same_database() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let conv = app.open_direct(&alice, "bob").await;
    let mut a = app.connect(&alice).await;
    a.send_message(conv.id, "before-restart", "remember me")
        .await;
    a.expect_ack("before-restart").await;

    app.restart().await;

    // Sessions live in the database too: the old cookie still works.
    let (status, body) = app
        .post(
            "/api/history",
            Some(&bob.cookie),
            &[("conv", &conv.id.to_string())],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let page: HistoryPage = serde_json::from_value(body).unwrap();
    assert_eq!(page.messages.len(), 1);
    assert_eq!(page.messages[0].body, "remember me");
    // And the seq continues where it was.
    let mut a = app.connect(&alice).await;
    a.send_message(conv.id, "after-restart", "still here").await;
    let ack = a.expect_ack("after-restart").await;
    assert!(
        matches!(ack, app::protocol::ServerFrame::Ack { seq: 2, .. }),
        "{ack:?}"
    );
}
