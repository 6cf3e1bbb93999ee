//! The conversation's one log beyond new messages: edits, deletions, reactions, replies and group
//! events, live between people, through a reconnect, and refused where they must be.

use crate::helpers::{spawn_app, Client, TestApp, TestUser};
use app::delivery::apply;
use app::model::{Change, ConvId, Event, HistoryPage, Message, Seq};
use app::protocol::{ClientFrame, ErrorCode, ServerFrame};
use sqlx::{Connection, Row};
use std::collections::BTreeMap;
use std::time::Duration;

fn edit(conv: ConvId, client_id: &str, target: Seq, body: &str) -> ClientFrame {
    ClientFrame::Edit {
        conv,
        client_id: client_id.into(),
        target,
        body: body.into(),
    }
}

fn delete(conv: ConvId, client_id: &str, target: Seq) -> ClientFrame {
    ClientFrame::Delete {
        conv,
        client_id: client_id.into(),
        target,
    }
}

fn react(conv: ConvId, client_id: &str, target: Seq, emoji: &str, on: bool) -> ClientFrame {
    ClientFrame::React {
        conv,
        client_id: client_id.into(),
        target,
        emoji: emoji.into(),
        on,
    }
}

async fn expect_event(c: &mut Client) -> Event {
    c.expect(|f| match f {
        ServerFrame::Event(e) => Some(e),
        _ => None,
    })
    .await
}

/// The seq an ack gives `client_id`.
async fn acked(c: &mut Client, client_id: &str) -> Seq {
    match c.expect_ack(client_id).await {
        ServerFrame::Ack { seq, .. } => seq,
        other => unreachable!("{other:?}"),
    }
}

/// The error frame answering `client_id`.
async fn refused(c: &mut Client, client_id: &str) -> ErrorCode {
    let client_id = client_id.to_owned();
    c.expect(move |f| match f {
        ServerFrame::Error {
            code,
            client_id: Some(c),
            ..
        } if c == client_id => Some(code),
        ServerFrame::Ack { client_id: c, .. } if c == client_id => {
            panic!("{client_id} was stored, not refused")
        }
        _ => None,
    })
    .await
}

async fn history(app: &TestApp, user: &TestUser, conv: ConvId) -> HistoryPage {
    let (status, body) = app
        .post(
            "/api/history",
            Some(&user.cookie),
            &[("conv", &conv.to_string()), ("limit", "100")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).unwrap()
}

fn by_seq(page: &HistoryPage) -> BTreeMap<Seq, Message> {
    page.messages.iter().map(|m| (m.seq, m.clone())).collect()
}

#[tokio::test]
async fn edit_react_reply_and_delete_reach_the_other_person_live_and_in_history() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let conv = app.open_direct(&alice, "bob").await.id;
    let mut a = app.connect(&alice).await;
    let mut b = app.connect(&bob).await;

    a.send_message(conv, "m-1", "the secret plan is tuesday")
        .await;
    assert_eq!(acked(&mut a, "m-1").await, 1);
    assert_eq!(b.expect_message().await.seq, 1);

    // Edit: the sender gets the ack (its copy), the other person the event.
    a.send(&edit(conv, "e-1", 1, "the plan is wednesday")).await;
    assert_eq!(acked(&mut a, "e-1").await, 2);
    let e = expect_event(&mut b).await;
    assert_eq!(
        (e.seq, e.sender.id, e.change),
        (
            2,
            alice.user.id,
            Change::Edit {
                target: 1,
                body: "the plan is wednesday".into()
            }
        )
    );

    // Reaction, both ways.
    b.send(&react(conv, "r-1", 1, "👍", true)).await;
    assert_eq!(acked(&mut b, "r-1").await, 3);
    let e = expect_event(&mut a).await;
    assert_eq!(
        (e.seq, e.sender.id, e.change),
        (
            3,
            bob.user.id,
            Change::React {
                target: 1,
                emoji: "👍".into(),
                on: true
            }
        )
    );

    // Reply: the message carries a quote of the (edited) original.
    b.send(&ClientFrame::Send {
        conv,
        client_id: "m-2".into(),
        body: "works for me".into(),
        reply_to: Some(1),
        attachment: None,
    })
    .await;
    assert_eq!(acked(&mut b, "m-2").await, 4);
    let reply = a.expect_message().await;
    let quote = reply.reply_to.expect("a quote");
    assert_eq!(
        (quote.seq, quote.sender.id, quote.excerpt.as_str()),
        (1, alice.user.id, "the plan is wednesday")
    );

    // History as bob sees it before the deletion: edited, with bob's reaction.
    let page = history(&app, &bob, conv).await;
    let first = &page.messages[0];
    assert_eq!(first.body, "the plan is wednesday");
    assert!(first.edited_at.is_some());
    assert_eq!(first.reactions.len(), 1);
    let r = &first.reactions[0];
    assert_eq!(
        (r.emoji.as_str(), r.count, r.mine, r.users[0].id),
        ("👍", 1, true, bob.user.id)
    );
    assert!(
        !history(&app, &alice, conv).await.messages[0].reactions[0].mine,
        "mine is per viewer"
    );
    assert_eq!(
        page.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [1, 4],
        "history lists messages; edits and reactions are applied, not listed"
    );

    // Delete: a tombstone everywhere, and the text gone from the database.
    a.send(&delete(conv, "d-1", 1)).await;
    assert_eq!(acked(&mut a, "d-1").await, 5);
    let e = expect_event(&mut b).await;
    assert_eq!(e.change, Change::Delete { target: 1 });
    let page = history(&app, &bob, conv).await;
    let (first, reply) = (&page.messages[0], &page.messages[1]);
    assert!(first.deleted && first.body.is_empty() && first.reactions.is_empty());
    let quote = reply.reply_to.as_ref().unwrap();
    assert!(quote.deleted && quote.excerpt.is_empty());

    let mut db = sqlx::SqliteConnection::connect(&app.db_url).await.unwrap();
    let copies: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM messages WHERE body LIKE '%tuesday%' OR body LIKE '%wednesday%'",
    )
    .fetch_one(&mut db)
    .await
    .unwrap()
    .get("n");
    assert_eq!(copies, 0, "no copy of a deleted message's text is kept");
    let reactions: i64 = sqlx::query("SELECT COUNT(*) AS n FROM reactions")
        .fetch_one(&mut db)
        .await
        .unwrap()
        .get("n");
    assert_eq!(reactions, 0);

    // A deleted message can be neither edited, reacted to nor answered.
    a.send(&edit(conv, "e-2", 1, "again")).await;
    assert_eq!(refused(&mut a, "e-2").await, ErrorCode::MessageDeleted);
    b.send(&react(conv, "r-2", 1, "👍", true)).await;
    assert_eq!(refused(&mut b, "r-2").await, ErrorCode::MessageDeleted);

    // Unread counts only the other person's messages: bob's reply, not his reaction, not the
    // edit and deletion. Alice has read her own messages; bob's reply (seq 4) is unread for her.
    let (_, list) = app
        .post("/api/conversations", Some(&alice.cookie), &[])
        .await;
    assert_eq!(list[0]["unread"], 1, "{list}");
    assert_eq!(
        list[0]["last_message"]["seq"], 4,
        "the preview is a message"
    );
}

#[tokio::test]
async fn a_member_offline_during_an_edit_a_delete_and_three_reactions_catches_up_exactly() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let dave = app.register("dave").await; // a third member, who reacts
    let group = app.create_group(&alice, "Plans", "bob, dave").await.id;
    let mut a = app.connect(&alice).await;
    let mut d = app.connect(&dave).await;

    for i in 1..=3 {
        a.send_message(group, &format!("m-{i}"), &format!("message {i}"))
            .await;
        acked(&mut a, &format!("m-{i}")).await;
    }
    // Bob holds everything up to 4 (the `created` event, then messages 2–4) from history, then
    // goes offline.
    let held = history(&app, &bob, group).await;
    let mut state = by_seq(&held);
    let cursor = 4;

    a.send(&edit(group, "e-1", 2, "message one, edited")).await;
    a.send(&delete(group, "d-1", 3)).await;
    a.send(&react(group, "r-1", 4, "🎉", true)).await;
    for id in ["e-1", "d-1", "r-1"] {
        acked(&mut a, id).await;
    }
    // After Alice's, so that who reacted first is known.
    d.send(&react(group, "r-2", 4, "🎉", true)).await;
    d.send(&react(group, "r-3", 2, "👀", true)).await;
    for id in ["r-2", "r-3"] {
        acked(&mut d, id).await;
    }

    // Bob comes back and syncs from his cursor: the events come in seq order.
    let mut b = app.connect(&bob).await;
    b.send(&ClientFrame::Sync {
        cursors: BTreeMap::from([(group, cursor)]),
    })
    .await;
    let mut seqs = Vec::new();
    loop {
        match b.recv().await {
            ServerFrame::Event(e) => {
                seqs.push(e.seq);
                apply(&mut state, &e, bob.user.id);
            }
            ServerFrame::Message(m) => panic!("no new message was sent: {m:?}"),
            ServerFrame::Synced => break,
            _ => {}
        }
    }
    assert_eq!(seqs, [5, 6, 7, 8, 9]);
    // What bob now holds is exactly what a fresh history page says.
    let fresh = by_seq(&history(&app, &bob, group).await);
    assert_eq!(state, fresh);
    assert_eq!(fresh[&2].body, "message one, edited");
    assert!(fresh[&3].deleted);
    assert_eq!(
        (
            fresh[&4].reactions[0].emoji.as_str(),
            fresh[&4].reactions[0].count
        ),
        ("🎉", 2)
    );
}

#[tokio::test]
async fn outsiders_and_other_peoples_messages_are_refused() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let direct = app.open_direct(&alice, "bob").await.id;
    let group = app.create_group(&alice, "Team", "bob").await.id;
    let mut a = app.connect(&alice).await;
    let mut b = app.connect(&bob).await;
    let mut c = app.connect(&carol).await;
    a.send_message(direct, "m-1", "mine").await;
    acked(&mut a, "m-1").await;
    b.send_message(group, "g-1", "bob's").await;
    acked(&mut b, "g-1").await;

    // Carol is in neither conversation.
    c.send(&edit(direct, "c-1", 1, "hijacked")).await;
    assert_eq!(refused(&mut c, "c-1").await, ErrorCode::NotMember);
    c.send(&react(direct, "c-2", 1, "👎", true)).await;
    assert_eq!(refused(&mut c, "c-2").await, ErrorCode::NotMember);
    c.send(&delete(direct, "c-3", 1)).await;
    assert_eq!(refused(&mut c, "c-3").await, ErrorCode::NotMember);

    // Bob may not edit or delete Alice's message in their direct chat.
    b.send(&edit(direct, "b-1", 1, "not yours")).await;
    assert_eq!(refused(&mut b, "b-1").await, ErrorCode::NotAllowed);
    b.send(&delete(direct, "b-2", 1)).await;
    assert_eq!(refused(&mut b, "b-2").await, ErrorCode::NotAllowed);
    // Targets must exist; emoji must be emoji.
    b.send(&react(direct, "b-3", 99, "👍", true)).await;
    assert_eq!(refused(&mut b, "b-3").await, ErrorCode::UnknownMessage);
    b.send(&react(direct, "b-4", 1, "lol", true)).await;
    assert_eq!(refused(&mut b, "b-4").await, ErrorCode::BadFrame);

    // Nothing of that was stored.
    let store = app.store();
    assert_eq!(store.count_messages(direct).await.unwrap(), 1);
    assert_eq!(history(&app, &alice, direct).await.messages[0].body, "mine");

    // In a group, its owner (Alice) may delete Bob's message; Bob still cannot edit hers.
    a.send(&delete(group, "a-2", 2)).await;
    assert_eq!(acked(&mut a, "a-2").await, 3);
    assert_eq!(
        expect_event(&mut b).await.change,
        Change::Delete { target: 2 }
    );
    assert!(history(&app, &bob, group).await.messages[0].deleted);
}

#[tokio::test]
async fn a_repeated_edit_is_stored_once_and_fanned_out_once() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let conv = app.open_direct(&alice, "bob").await.id;
    let mut a = app.connect(&alice).await;
    let mut b = app.connect(&bob).await;
    a.send_message(conv, "m-1", "helo").await;
    acked(&mut a, "m-1").await;
    b.expect_message().await;

    let frame = edit(conv, "e-1", 1, "hello");
    a.send(&frame).await;
    a.send(&frame).await; // in the same batch, most likely
    let first = acked(&mut a, "e-1").await;
    let second = acked(&mut a, "e-1").await;
    // And again after a reconnect, from the database.
    let mut a2 = app.connect(&alice).await;
    a2.send(&frame).await;
    let third = acked(&mut a2, "e-1").await;
    assert_eq!((first, second, third), (2, 2, 2));
    assert_eq!(app.store().count_messages(conv).await.unwrap(), 2);
    let events: Vec<_> = b
        .drain(Duration::from_millis(500))
        .await
        .into_iter()
        .filter(|f| matches!(f, ServerFrame::Event(_)))
        .collect();
    assert_eq!(events.len(), 1, "one event fanned out: {events:?}");
}

#[tokio::test]
async fn group_changes_are_lines_in_the_log() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    app.register("carol").await;
    let group = app.create_group(&alice, "Plans", "bob").await.id;
    let mut b = app.connect(&bob).await;
    let conv = group.to_string();
    // A client id that looks like a system event's is refused, so it can never collide with one.
    let mut a = app.connect(&alice).await;
    a.send_message(group, &format!("sys:{group}:2"), "sneaky")
        .await;
    let code = a
        .expect(|f| match f {
            ServerFrame::Error { code, .. } => Some(code),
            ServerFrame::Ack { .. } => panic!("a system-looking client id was stored"),
            _ => None,
        })
        .await;
    assert_eq!(code, ErrorCode::BadFrame);

    let (status, _) = app
        .post(
            "/api/add_member",
            Some(&alice.cookie),
            &[("conv", &conv), ("username", "carol")],
        )
        .await;
    assert_eq!(status, 200);
    let e = expect_event(&mut b).await;
    assert_eq!(e.seq, 2, "after the group's `created` event");
    assert!(
        matches!(&e.change, Change::Added { user } if user.username == "carol"),
        "{e:?}"
    );
    assert_eq!(e.sender.username, "alice");

    let (status, _) = app
        .post(
            "/api/rename_group",
            Some(&alice.cookie),
            &[("conv", &conv), ("title", "Trip")],
        )
        .await;
    assert_eq!(status, 200);
    let e = expect_event(&mut b).await;
    assert_eq!(
        (e.seq, e.change),
        (
            3,
            Change::Renamed {
                title: "Trip".into()
            }
        )
    );

    let (status, _) = app
        .post(
            "/api/remove_member",
            Some(&alice.cookie),
            &[("conv", &conv), ("username", "carol")],
        )
        .await;
    assert_eq!(status, 200);
    let e = expect_event(&mut b).await;
    assert!(matches!(&e.change, Change::Removed { user } if user.username == "carol"));

    b.send_message(group, "b-1", "hi").await;
    assert_eq!(acked(&mut b, "b-1").await, 5);
    let page = history(&app, &bob, group).await;
    assert_eq!(
        page.events
            .iter()
            .map(|e| e.change.kind())
            .collect::<Vec<_>>(),
        ["created", "added", "renamed", "removed"]
    );
    assert_eq!(
        page.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(page.messages.iter().map(|m| m.seq).collect::<Vec<_>>(), [5]);
    // Group events are not unread messages.
    let (_, list) = app
        .post("/api/conversations", Some(&alice.cookie), &[])
        .await;
    assert_eq!(list[0]["unread"], 1, "only bob's message: {list}");
}
