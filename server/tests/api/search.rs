//! Message search over real HTTP, with the messages sent, edited and deleted over real
//! WebSockets, on SQLite (FTS5) and on MariaDB (InnoDB FULLTEXT): what is found, what never is
//! (other people's conversations, conversations left or removed from, deleted and replaced
//! text), paging, and the 400s of bad queries.

use crate::helpers::{spawn_app_on, Client, TestApp, TestUser};
use crate::store::TempDb;
use app::model::{ConvId, MessageId, Seq};
use app::protocol::{ClientFrame, ServerFrame};
use app::search::SearchPage;
use serde_json::Value;

/// Runs `check` on a server over a fresh SQLite file and one over a fresh MariaDB database.
macro_rules! on_both_databases {
    ($($name:ident => $check:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            for (store, db) in [TempDb::sqlite().await, TempDb::mysql().await] {
                let dialect = store.dialect();
                drop(store);
                println!("{} on {dialect:?}", stringify!($check));
                let app = spawn_app_on(&db.url(), |_| {}).await;
                $check(&app, dialect).await;
                if let Some(server) = app.server {
                    server.stop().await;
                }
                db.drop_db().await;
            }
        }
    )*};
}

on_both_databases! {
    search_finds_words_only_in_my_conversations => check_finds_in_my_conversations,
    search_follows_edits_deletions_and_membership => check_follows_changes,
    search_refuses_bad_queries_with_400 => check_bad_queries,
}

/// POSTs a search; the status and the JSON reply.
async fn search_raw(app: &TestApp, user: &TestUser, form: &[(&str, &str)]) -> (u16, Value) {
    app.post("/api/search", Some(&user.cookie), form).await
}

/// A successful search's page.
async fn search(app: &TestApp, user: &TestUser, query: &str, more: &[(&str, &str)]) -> SearchPage {
    let mut form = vec![("query", query)];
    form.extend_from_slice(more);
    let (status, body) = search_raw(app, user, &form).await;
    assert_eq!(status, 200, "{query:?}: {body}");
    serde_json::from_value(body).unwrap()
}

/// The (conversation, seq) of each hit, in order.
fn found(page: &SearchPage) -> Vec<(ConvId, Seq)> {
    page.hits.iter().map(|h| (h.conv, h.seq)).collect()
}

/// Sends a message and waits for its ack; its seq.
async fn say(c: &mut Client, conv: ConvId, client_id: &str, body: &str) -> Seq {
    c.send_message(conv, client_id, body).await;
    acked(c, client_id).await
}

async fn acked(c: &mut Client, client_id: &str) -> Seq {
    match c.expect_ack(client_id).await {
        ServerFrame::Ack { seq, .. } => seq,
        other => unreachable!("{other:?}"),
    }
}

async fn check_finds_in_my_conversations(app: &TestApp, _: server::store::Dialect) {
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let direct = app.open_direct(&alice, "bob").await.id;
    let group = app.create_group(&alice, "Team", "bob carol").await.id;
    let theirs = app.open_direct(&bob, "carol").await.id; // alice never joined
    let mut a = app.connect(&alice).await;
    let mut b = app.connect(&bob).await;
    let mut c = app.connect(&carol).await;

    let d1 = say(&mut a, direct, "d1", "The quarterly report is ready").await;
    let g1 = say(&mut b, group, "g1", "Quarterly numbers look <b>great</b>").await;
    say(&mut c, theirs, "t1", "our quarterly secret").await;
    say(&mut a, direct, "d2", "lunch at noon?").await;

    // Every conversation of mine, newest first; theirs is not searched.
    let page = search(app, &alice, "quarterly", &[]).await;
    assert_eq!(found(&page), [(group, g1), (direct, d1)]);
    assert!(!page.has_more);
    let hit = &page.hits[0];
    assert_eq!(hit.sender.username, "bob");
    // The match is marked as a piece of text; the body's markup is text too.
    let shown: Vec<(&str, bool)> = hit
        .snippet
        .iter()
        .map(|p| (p.text.as_str(), p.hit))
        .collect();
    assert_eq!(
        shown,
        [("Quarterly", true), (" numbers look <b>great</b>", false)]
    );
    // Case does not matter; the last word also matches longer words; every word must match.
    assert_eq!(
        found(&search(app, &alice, "QUARTERLY report", &[]).await),
        [(direct, d1)]
    );
    assert_eq!(found(&search(app, &alice, "quarter", &[]).await).len(), 2);
    assert!(search(app, &alice, "quarterly lunch", &[])
        .await
        .hits
        .is_empty());
    // Bob and Carol find their own conversation.
    assert_eq!(
        found(&search(app, &carol, "secret", &[]).await),
        [(theirs, 1)]
    );
    assert!(search(app, &alice, "secret", &[]).await.hits.is_empty());

    // One conversation only.
    let direct_s = direct.to_string();
    let in_direct = search(app, &alice, "quarterly", &[("conv", &direct_s)]).await;
    assert_eq!(found(&in_direct), [(direct, d1)]);
    // Not into a conversation I am not in.
    let theirs_s = theirs.to_string();
    let (status, body) =
        search_raw(app, &alice, &[("query", "quarterly"), ("conv", &theirs_s)]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    // Nor without a session.
    let (status, _) = app
        .post("/api/search", None, &[("query", "quarterly")])
        .await;
    assert_eq!(status, 401);

    // Pages: `before` the last hit's id.
    let first = search(app, &alice, "quarterly", &[("limit", "1")]).await;
    assert_eq!((found(&first), first.has_more), (vec![(group, g1)], true));
    let before = first.hits[0].id.0.to_string();
    let second = search(
        app,
        &alice,
        "quarterly",
        &[("limit", "1"), ("before", &before)],
    )
    .await;
    assert_eq!(
        (found(&second), second.has_more),
        (vec![(direct, d1)], false)
    );
    let last: MessageId = second.hits[0].id;
    let past = search(app, &alice, "quarterly", &[("before", &last.0.to_string())]).await;
    assert!(past.hits.is_empty());
}

async fn check_follows_changes(app: &TestApp, _: server::store::Dialect) {
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let direct = app.open_direct(&alice, "bob").await.id;
    let left = app.create_group(&alice, "Left", "carol").await.id;
    let removed = app.create_group(&alice, "Removed", "carol").await.id;
    let mut a = app.connect(&alice).await;

    let m = say(&mut a, direct, "m1", "meet me at the lighthouse").await;
    say(&mut a, direct, "m2", "bring the telescope").await;
    say(&mut a, left, "l1", "plans for the harbour").await;
    say(&mut a, removed, "r1", "plans for the orchard").await;
    assert_eq!(search(app, &carol, "plans", &[]).await.hits.len(), 2);

    // An edit: found by the new text only.
    a.send(&ClientFrame::Edit {
        conv: direct,
        client_id: "e1".into(),
        target: m,
        body: "meet me at the observatory".into(),
    })
    .await;
    acked(&mut a, "e1").await;
    assert!(search(app, &bob, "lighthouse", &[]).await.hits.is_empty());
    let page = search(app, &bob, "observatory", &[]).await;
    assert_eq!(found(&page), [(direct, m)]);
    assert!(page.hits[0].edited_at.is_some());

    // A deletion: never found again, by any of its words.
    a.send(&ClientFrame::Delete {
        conv: direct,
        client_id: "x1".into(),
        target: m,
    })
    .await;
    acked(&mut a, "x1").await;
    for word in ["observatory", "meet"] {
        assert!(search(app, &bob, word, &[]).await.hits.is_empty(), "{word}");
    }
    assert_eq!(search(app, &bob, "telescope", &[]).await.hits.len(), 1);

    // Membership is checked now: carol leaves one group and is removed from the other.
    let (status, body) = app
        .post(
            "/api/leave_group",
            Some(&carol.cookie),
            &[("conv", &left.to_string())],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        found(&search(app, &carol, "plans", &[]).await),
        [(removed, 2)]
    );
    let (status, body) = app
        .post(
            "/api/remove_member",
            Some(&alice.cookie),
            &[("conv", &removed.to_string()), ("username", "carol")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(search(app, &carol, "plans", &[]).await.hits.is_empty());
    assert_eq!(search(app, &alice, "plans", &[]).await.hits.len(), 2);
}

async fn check_bad_queries(app: &TestApp, dialect: server::store::Dialect) {
    let alice = app.register("alice").await;
    let _bob = app.register("bob").await;
    let direct = app.open_direct(&alice, "bob").await.id;
    let mut a = app.connect(&alice).await;
    say(&mut a, direct, "q1", "a \"quoted\" word and NEAR(this) one").await;

    let long = "x ".repeat(101);
    let many = "one two three four five six seven eight nine";
    let none: &[(&str, &str)] = &[];
    let zero: &[(&str, &str)] = &[("limit", "0")];
    let over: &[(&str, &str)] = &[("limit", "51")];
    let bad: Vec<(&str, &[(&str, &str)])> = vec![
        ("", none),
        ("   ", none),
        ("\"", none),
        ("* ( ) - + \" :", none),
        (long.as_str(), none),
        (many, none),
        ("word", zero),
        ("word", over),
    ];
    for (query, more) in bad {
        let mut form = vec![("query", query)];
        form.extend_from_slice(more);
        let (status, body) = search_raw(app, &alice, &form).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid")),
            "{query:?} {more:?}: {body}"
        );
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // No `query` field at all is a 400 too.
    let (status, _) = search_raw(app, &alice, &[]).await;
    assert_eq!(status, 400);

    // Whatever query syntax is typed is taken as words: never an error from the index.
    for query in [
        "\"quoted",
        "quoted\"",
        "NEAR(quoted",
        "quoted AND OR NOT",
        "quoted*",
        "-quoted +word",
        "quoted:word",
        "^quoted",
    ] {
        let page = search(app, &alice, query, &[]).await;
        let _ = page; // found or not, it answered 200
    }
    assert_eq!(search(app, &alice, "\"quoted", &[]).await.hits.len(), 1);
    assert_eq!(search(app, &alice, "near(THIS)", &[]).await.hits.len(), 1);

    // Words below the index's minimum: MariaDB indexes words of 3+ characters only.
    let (status, body) = search_raw(app, &alice, &[("query", "a")]).await;
    match dialect {
        server::store::Dialect::Sqlite => assert_eq!(status, 200, "{body}"),
        server::store::Dialect::MySql => {
            assert_eq!(
                (status, body["code"].as_str()),
                (400, Some("invalid")),
                "{body}"
            )
        }
    }
}
