//! @mentions over real WebSockets and HTTP, on SQLite and on MariaDB: a member named as
//! `@username` gets an unread mention in the conversation list, which their read mark clears
//! and a deletion takes back; non-members, the sender, addresses and unknown names mention nobody.

use crate::helpers::{spawn_app_on, Client, TestApp, TestUser};
use crate::store::TempDb;
use app::model::{ConvId, Conversation, Seq};
use app::protocol::{ClientFrame, ServerFrame};
use std::time::Duration;

#[tokio::test]
async fn mentions_count_for_members_until_read_or_deleted() {
    for (store, db) in [TempDb::sqlite().await, TempDb::mysql().await] {
        println!("mentions on {:?}", store.dialect());
        drop(store);
        let app = spawn_app_on(&db.url(), |_| {}).await;
        check_mentions(&app).await;
        if let Some(server) = app.server {
            server.stop().await;
        }
        db.drop_db().await;
    }
}

async fn conversation(app: &TestApp, user: &TestUser, conv: ConvId) -> Conversation {
    let (status, body) = app
        .post("/api/conversations", Some(&user.cookie), &[])
        .await;
    assert_eq!(status, 200, "{body}");
    let list: Vec<Conversation> = serde_json::from_value(body).unwrap();
    list.into_iter().find(|c| c.id == conv).expect("listed")
}

/// (unread, mentions) of `conv` for `user`, once it equals `want` (read marks are stored a
/// moment after their frame), or whatever it is after a few seconds.
async fn counts(app: &TestApp, user: &TestUser, conv: ConvId, want: (i64, i64)) -> (i64, i64) {
    for _ in 0..50 {
        let c = conversation(app, user, conv).await;
        if (c.unread, c.mentions) == want {
            return want;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let c = conversation(app, user, conv).await;
    (c.unread, c.mentions)
}

async fn say(c: &mut Client, conv: ConvId, client_id: &str, body: &str) -> Seq {
    c.send_message(conv, client_id, body).await;
    match c.expect_ack(client_id).await {
        ServerFrame::Ack { seq, .. } => seq,
        other => unreachable!("{other:?}"),
    }
}

async fn check_mentions(app: &TestApp) {
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let _dave = app.register("dave").await; // not in the group
    let group = app.create_group(&alice, "Team", "bob carol").await.id;
    let mut a = app.connect(&alice).await;
    let mut b = app.connect(&bob).await;

    // Carol and Bob are named; Dave is not a member, Alice is the sender.
    let first = say(
        &mut a,
        group,
        "m1",
        "hey @bob and @dave, ask @Carol. cc @alice",
    )
    .await;
    assert_eq!(counts(app, &bob, group, (1, 1)).await, (1, 1));
    assert_eq!(counts(app, &carol, group, (1, 1)).await, (1, 1));
    // Neither an address nor a longer name is a mention; the JSON leaves out a zero.
    say(&mut a, group, "m2", "mail bob@example.com or @bobby").await;
    assert_eq!(counts(app, &bob, group, (2, 1)).await, (2, 1));
    let (_, raw) = app
        .post("/api/conversations", Some(&alice.cookie), &[])
        .await;
    assert!(raw[0].get("mentions").is_none(), "{raw}");

    // Bob answers Alice: her mention; his own message reads the conversation for him.
    let answer = say(&mut b, group, "b1", "@alice on it").await;
    assert_eq!(counts(app, &alice, group, (1, 1)).await, (1, 1));
    assert_eq!(counts(app, &bob, group, (0, 0)).await, (0, 0));
    // Alice reads up to the answer: no mention left.
    a.send(&ClientFrame::Read {
        conv: group,
        seq: answer,
    })
    .await;
    assert_eq!(counts(app, &alice, group, (0, 0)).await, (0, 0));

    // A deleted message mentions nobody any more.
    a.send(&ClientFrame::Delete {
        conv: group,
        client_id: "x1".into(),
        target: first,
    })
    .await;
    match a.expect_ack("x1").await {
        ServerFrame::Ack { .. } => {}
        other => unreachable!("{other:?}"),
    }
    assert_eq!(counts(app, &carol, group, (2, 0)).await, (2, 0));

    // Mentions are per conversation: Bob's direct chat with Carol is unaffected.
    let direct = app.open_direct(&carol, "bob").await.id;
    let mut c = app.connect(&carol).await;
    say(&mut c, direct, "c1", "@bob, @bob: twice is one mention").await;
    assert_eq!(counts(app, &bob, direct, (1, 1)).await, (1, 1));
    assert_eq!(counts(app, &bob, group, (0, 0)).await, (0, 0));
}
