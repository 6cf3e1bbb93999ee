//! Contacts over the real HTTP API and real WebSockets: a request seen live, accept, decline,
//! remove and withdraw; the refusals (yourself, an unknown user, a repeat, someone else's
//! request) that answer a documented error and change nothing; a contact's presence; and the
//! user search of the "New chat" dialog. `check_contact_store` runs on SQLite and MariaDB from
//! the store suite.

use crate::helpers::{spawn_app, Client, TestApp, TestUser};
use app::contacts::{ContactChange, ContactList, Relation, MAX_PENDING_REQUESTS};
use app::model::{UserId, UserRef, Username, UsernamePrefix};
use app::protocol::ServerFrame;
use server::store::{Removed, Requested, Store};
use std::time::Duration;

/// POSTs `username` to a contact endpoint: the status, and the JSON reply.
async fn call(
    app: &TestApp,
    me: &TestUser,
    endpoint: &str,
    other: &str,
) -> (u16, serde_json::Value) {
    app.post(
        &format!("/api/{endpoint}"),
        Some(&me.cookie),
        &[("username", other)],
    )
    .await
}

/// The same, for a call that must succeed: my side of the change.
async fn change(app: &TestApp, me: &TestUser, endpoint: &str, other: &str) -> ContactChange {
    let (status, body) = call(app, me, endpoint, other).await;
    assert_eq!(status, 200, "{endpoint} {other}: {body}");
    serde_json::from_value(body).unwrap()
}

async fn list(app: &TestApp, me: &TestUser) -> ContactList {
    let (status, body) = app.post("/api/contacts", Some(&me.cookie), &[]).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).unwrap()
}

async fn expect_contact(c: &mut Client) -> ContactChange {
    c.expect(|f| match f {
        ServerFrame::Contact(change) => Some(change),
        _ => None,
    })
    .await
}

/// Asserts that no `contact` frame reaches `c` for a while (after a refused call).
async fn no_contact_frame(c: &mut Client) {
    let frames = c.drain(Duration::from_millis(300)).await;
    assert!(
        !frames.iter().any(|f| matches!(f, ServerFrame::Contact(_))),
        "{frames:?}"
    );
}

fn names(users: &[UserRef]) -> Vec<&str> {
    users.iter().map(|u| u.username.as_str()).collect()
}

#[tokio::test]
async fn a_request_arrives_live_and_accepting_makes_both_contacts() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let mut a = app.connect(&alice).await;
    let mut b = app.connect(&bob).await;

    let sent = change(&app, &alice, "request_contact", "Bob").await;
    assert_eq!(
        (sent.user.username.as_str(), sent.relation),
        ("bob", Relation::Outgoing)
    );
    // Bob hears it at once, and so does Alice's own connection (her other tabs).
    let heard = expect_contact(&mut b).await;
    assert_eq!(
        (heard.user, heard.relation),
        (alice.user.clone(), Relation::Incoming)
    );
    assert_eq!(expect_contact(&mut a).await.relation, Relation::Outgoing);
    assert_eq!(names(&list(&app, &bob).await.incoming), ["alice"]);
    assert_eq!(names(&list(&app, &alice).await.outgoing), ["bob"]);

    let accepted = change(&app, &bob, "accept_contact", "alice").await;
    assert_eq!(accepted.relation, Relation::Contact);
    // Bob is now her contact, and accepting opened their direct chat (the frames may come in
    // either order).
    let (mut heard, mut direct) = (None, None);
    while heard.is_none() || direct.is_none() {
        match a.recv().await {
            ServerFrame::Contact(c) => heard = Some(c),
            ServerFrame::Conversation { conversation, .. } => direct = Some(conversation),
            _ => {}
        }
    }
    let (heard, direct) = (heard.unwrap(), direct.unwrap());
    assert_eq!(
        (heard.user, heard.relation),
        (bob.user.clone(), Relation::Contact)
    );
    assert_eq!(direct.title, "bob");

    for (me, other) in [(&alice, "bob"), (&bob, "alice")] {
        let mine = list(&app, me).await;
        assert_eq!(names(&mine.contacts), [other]);
        assert!(
            mine.incoming.is_empty() && mine.outgoing.is_empty(),
            "{mine:?}"
        );
    }
    // The chat is live for both without reconnecting.
    b.send_message(direct.id, "hi-1", "hello contact").await;
    assert_eq!(a.expect_message().await.body, "hello contact");
}

#[tokio::test]
async fn declining_and_withdrawing_leave_nothing_behind() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let carol = app.register("carol").await;
    let mut a = app.connect(&alice).await;

    change(&app, &alice, "request_contact", "carol").await;
    assert_eq!(expect_contact(&mut a).await.relation, Relation::Outgoing);
    let declined = change(&app, &carol, "decline_contact", "alice").await;
    assert_eq!(declined.relation, Relation::None);
    let heard = expect_contact(&mut a).await;
    assert_eq!(
        (heard.user, heard.relation),
        (carol.user.clone(), Relation::None)
    );
    assert_eq!(list(&app, &alice).await, ContactList::default());
    assert_eq!(list(&app, &carol).await, ContactList::default());
    // Declined is gone: nothing left to accept, and no chat was opened.
    let (status, body) = call(&app, &carol, "accept_contact", "alice").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (_, convs) = app
        .post("/api/conversations", Some(&alice.cookie), &[])
        .await;
    assert_eq!(convs, serde_json::json!([]));

    // Asking again is allowed after a decline; the asker may withdraw it.
    let mut c = app.connect(&carol).await;
    change(&app, &alice, "request_contact", "carol").await;
    assert_eq!(expect_contact(&mut c).await.relation, Relation::Incoming);
    let withdrawn = change(&app, &alice, "remove_contact", "carol").await;
    assert_eq!(withdrawn.relation, Relation::None);
    let heard = expect_contact(&mut c).await;
    assert_eq!(
        (heard.user, heard.relation),
        (alice.user.clone(), Relation::None)
    );
    assert_eq!(list(&app, &carol).await, ContactList::default());
}

#[tokio::test]
async fn removing_a_contact_tells_both_and_keeps_the_chat() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    change(&app, &alice, "request_contact", "bob").await;
    change(&app, &bob, "accept_contact", "alice").await;
    let mut b = app.connect(&bob).await;

    let removed = change(&app, &alice, "remove_contact", "bob").await;
    assert_eq!(removed.relation, Relation::None);
    let heard = expect_contact(&mut b).await;
    assert_eq!(
        (heard.user, heard.relation),
        (alice.user.clone(), Relation::None)
    );
    assert_eq!(list(&app, &alice).await, ContactList::default());
    assert_eq!(list(&app, &bob).await, ContactList::default());
    // Their direct chat and its history stay; anyone may still open a chat by username.
    let (_, convs) = app.post("/api/conversations", Some(&bob.cookie), &[]).await;
    assert_eq!(convs.as_array().map(Vec::len), Some(1), "{convs}");
    app.open_direct(&alice, "bob").await;

    let (status, body) = call(&app, &bob, "remove_contact", "alice").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
}

#[tokio::test]
async fn refused_requests_answer_a_documented_error_and_change_nothing() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    change(&app, &alice, "request_contact", "bob").await;
    let mut b = app.connect(&bob).await;
    let before = (list(&app, &alice).await, list(&app, &bob).await);

    for (who, endpoint, other, status, code) in [
        (&alice, "request_contact", "alice", 400, "invalid"), // yourself
        (&alice, "request_contact", "ALICE", 400, "invalid"), // yourself, any case
        (&alice, "request_contact", "nobody", 404, "not_found"),
        (&alice, "request_contact", "x", 400, "invalid"), // not a username
        (&alice, "request_contact", "bob", 409, "conflict"), // a repeat
        // Accepting or declining is for the person asked: not for a stranger, not for the asker.
        (&carol, "accept_contact", "alice", 404, "not_found"),
        (&carol, "decline_contact", "alice", 404, "not_found"),
        (&alice, "accept_contact", "bob", 404, "not_found"),
        (&alice, "decline_contact", "bob", 404, "not_found"),
        (&carol, "remove_contact", "alice", 404, "not_found"),
        (&alice, "accept_contact", "nobody", 404, "not_found"),
    ] {
        let (got, body) = call(&app, who, endpoint, other).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{} {endpoint} {other}: {body}",
            who.user.username
        );
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    no_contact_frame(&mut b).await;
    assert_eq!((list(&app, &alice).await, list(&app, &bob).await), before);
    assert_eq!(list(&app, &carol).await, ContactList::default());

    // Once they are contacts, asking again is a conflict too.
    change(&app, &bob, "accept_contact", "alice").await;
    let (status, body) = call(&app, &bob, "request_contact", "alice").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    assert_eq!(names(&list(&app, &bob).await.contacts), ["alice"]);

    // Without a session: 401.
    let (status, body) = app.post("/api/contacts", None, &[]).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    let (status, _) = app
        .post("/api/request_contact", None, &[("username", "bob")])
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn asking_someone_who_asked_you_accepts_their_request() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let mut b = app.connect(&bob).await;
    change(&app, &bob, "request_contact", "alice").await;
    let crossed = change(&app, &alice, "request_contact", "bob").await;
    assert_eq!(crossed.relation, Relation::Contact);
    let heard = b
        .expect(|f| match f {
            ServerFrame::Contact(c) if c.relation == Relation::Contact => Some(c),
            _ => None,
        })
        .await;
    assert_eq!(heard.user, alice.user);
    assert_eq!(names(&list(&app, &bob).await.contacts), ["alice"]);
}

#[tokio::test]
async fn a_contact_is_seen_coming_online_and_going_offline() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    // They never chatted: the contact alone makes them see each other.
    change(&app, &alice, "request_contact", "bob").await;
    change(&app, &bob, "accept_contact", "alice").await;

    let mut a = app.connect(&alice).await;
    let b = app.connect(&bob).await;
    let presence = |want: bool| {
        move |f| match f {
            ServerFrame::Presence { user, online } if online == want => Some(user),
            _ => None,
        }
    };
    assert_eq!(a.expect(presence(true)).await, bob.user.id);
    // A new connection of Alice's is told at once that Bob is online.
    let mut a2 = app.connect(&alice).await;
    assert_eq!(a2.expect(presence(true)).await, bob.user.id);
    drop(b);
    assert_eq!(a.expect(presence(false)).await, bob.user.id);

    // Someone who only asked sees nothing of the other's presence.
    let carol = app.register("carol").await;
    change(&app, &carol, "request_contact", "alice").await;
    let mut c = app.connect(&carol).await;
    let _alice_again = app.connect(&alice).await;
    let frames = c.drain(Duration::from_millis(300)).await;
    assert!(
        !frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Presence { .. })),
        "{frames:?}"
    );
}

#[tokio::test]
async fn user_search_finds_others_by_prefix_with_bounds() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let store = app.store();
    for name in ["albert", "alfred", "al_x", "alb.y", "bob"] {
        store
            .create_user(&Username::parse(name).unwrap(), "h")
            .await
            .unwrap();
    }
    let search = |prefix: &'static str| {
        let app = &app;
        let cookie = alice.cookie.clone();
        async move {
            app.post("/api/search_users", Some(&cookie), &[("prefix", prefix)])
                .await
        }
    };
    let (status, body) = search("AL").await;
    assert_eq!(status, 200, "{body}");
    let found: Vec<UserRef> = serde_json::from_value(body).unwrap();
    // Sorted by name, never myself, only id and username.
    assert_eq!(names(&found), ["al_x", "alb.y", "albert", "alfred"]);
    let (_, body) = search("al_").await;
    assert_eq!(
        body,
        serde_json::json!([{"id": found[0].id, "username": "al_x"}]),
        "'_' is not a wildcard"
    );
    let (_, body) = search("zz").await;
    assert_eq!(body, serde_json::json!([]));
    for bad in ["a", "", "a%", "al b"] {
        let (status, body) = search(bad).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid")),
            "{bad:?}: {body}"
        );
    }
    let (status, _) = app
        .post("/api/search_users", None, &[("prefix", "al")])
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn requests_and_answers_reach_people_on_other_nodes() {
    let (nodes, db) = crate::cluster::cluster(2).await;
    let (one, two) = (
        TestApp::attach(nodes[0].addr),
        TestApp::attach(nodes[1].addr),
    );
    let alice = one.register("alice").await;
    let bob = two.register("bob").await;
    let mut a = one.connect(&alice).await;
    let mut b = two.connect(&bob).await;

    change(&one, &alice, "request_contact", "bob").await;
    let heard = expect_contact(&mut b).await;
    assert_eq!(
        (heard.user, heard.relation),
        (alice.user.clone(), Relation::Incoming)
    );
    change(&two, &bob, "accept_contact", "alice").await;
    // Bob is her contact now, and their new chat carries his presence to Alice's node (the two
    // notes may come in either order).
    let (mut heard, mut online) = (None, None);
    while heard.is_none() || online.is_none() {
        match a.recv().await {
            // (Her own request's `outgoing` echo comes first.)
            ServerFrame::Contact(c) if c.relation != Relation::Outgoing => heard = Some(c),
            ServerFrame::Presence { user, online: true } => online = Some(user),
            _ => {}
        }
    }
    let heard = heard.unwrap();
    assert_eq!(
        (heard.user, heard.relation),
        (bob.user.clone(), Relation::Contact)
    );
    assert_eq!(online, Some(bob.user.id));
    drop(nodes);
    db.drop_db().await;
}

/// A database from before explicit contacts: the rows that opening a direct chat used to write
/// into `contacts` are not contacts (nobody agreed to them), and migration 0003 removes them.
#[tokio::test]
async fn upgrading_drops_the_implicit_contacts_and_keeps_the_chats() {
    use sqlx::{Connection, Executor};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    {
        // The schema as the first release left it: only migration 0001 applied.
        let mut first = sqlx::migrate!("./migrations/sqlite");
        first.migrations = first.migrations.iter().take(1).cloned().collect();
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        first.run(&mut conn).await.unwrap();
        conn.execute(
            "INSERT INTO users (id, username, password_hash, created_at) VALUES \
             (1, 'ann', 'h', 0), (2, 'ben', 'h', 0); \
             INSERT INTO conversations (id, kind, title, direct_key, last_seq, created_at, updated_at) \
             VALUES (1, 'direct', NULL, '1:2', 0, 0, 0); \
             INSERT INTO members (conv_id, user_id, role, last_read_seq, joined_at) \
             VALUES (1, 1, 'member', 0, 0), (1, 2, 'member', 0, 0); \
             INSERT INTO contacts (user_id, contact_id, created_at) VALUES (1, 2, 0), (2, 1, 0);",
        )
        .await
        .unwrap();
    }
    let store = Store::connect(&url).await.unwrap();
    for user in [UserId(1), UserId(2)] {
        assert_eq!(
            store.contacts_of(user).await.unwrap(),
            ContactList::default()
        );
        assert_eq!(store.conversations_for(user).await.unwrap().len(), 1);
    }
    // And the new table works on the upgraded database.
    assert_eq!(
        store.request_contact(UserId(1), UserId(2)).await.unwrap(),
        Requested::Sent
    );
}

/// The store's side of contacts, run on SQLite and on MariaDB by the store suite.
pub async fn check_contact_store(store: Store) {
    let user = |name: &str| {
        let store = store.clone();
        let name = Username::parse(name).unwrap();
        async move { store.create_user(&name, "h").await.unwrap() }
    };
    let (ann, ben, cat) = (user("ann").await, user("ben").await, user("cat").await);

    // Opening a direct chat makes nobody a contact any more.
    store.open_direct(ann.id, cat.id).await.unwrap();
    assert_eq!(
        store.contacts_of(ann.id).await.unwrap(),
        ContactList::default()
    );

    assert_eq!(
        store.request_contact(ann.id, ben.id).await.unwrap(),
        Requested::Sent
    );
    assert_eq!(
        store.request_contact(ann.id, ben.id).await.unwrap(),
        Requested::AlreadyAsked
    );
    assert_eq!(
        store.relation(ben.id, ann.id).await.unwrap(),
        Relation::Incoming
    );
    assert_eq!(
        store.accept_contact(ann.id, ben.id).await.unwrap(),
        None,
        "not the asker"
    );
    assert_eq!(
        store.accept_contact(cat.id, ann.id).await.unwrap(),
        None,
        "not a stranger"
    );
    let (conv, created) = store.accept_contact(ben.id, ann.id).await.unwrap().unwrap();
    assert!(created);
    assert_eq!(
        store.open_direct(ann.id, ben.id).await.unwrap(),
        (conv, false)
    );
    assert_eq!(
        store.accept_contact(ben.id, ann.id).await.unwrap(),
        None,
        "only once"
    );
    assert_eq!(
        store.request_contact(ben.id, ann.id).await.unwrap(),
        Requested::AlreadyContacts
    );
    assert_eq!(
        names(&store.contacts_of(ann.id).await.unwrap().contacts),
        ["ben"]
    );

    // A request to someone who asked first accepts theirs, in an existing chat.
    assert_eq!(
        store.request_contact(cat.id, ann.id).await.unwrap(),
        Requested::Sent
    );
    assert!(matches!(
        store.request_contact(ann.id, cat.id).await.unwrap(),
        Requested::Accepted { created: false, .. }
    ));
    assert_eq!(
        names(&store.contacts_of(cat.id).await.unwrap().contacts),
        ["ann"]
    );

    assert_eq!(
        store.remove_contact(ann.id, ben.id).await.unwrap(),
        Removed::Contact
    );
    assert_eq!(
        store.relation(ben.id, ann.id).await.unwrap(),
        Relation::None
    );
    assert_eq!(
        store.remove_contact(ann.id, ben.id).await.unwrap(),
        Removed::Nothing
    );
    assert_eq!(
        store.request_contact(ben.id, ann.id).await.unwrap(),
        Requested::Sent
    );
    assert!(
        !store.decline_contact(ben.id, ann.id).await.unwrap(),
        "not the asker"
    );
    assert!(store.decline_contact(ann.id, ben.id).await.unwrap());
    assert_eq!(
        store.request_contact(ben.id, ann.id).await.unwrap(),
        Requested::Sent
    );
    assert_eq!(
        store.remove_contact(ben.id, ann.id).await.unwrap(),
        Removed::Withdrawn
    );
    assert_eq!(
        store.contacts_of(ben.id).await.unwrap(),
        ContactList::default()
    );

    // At most MAX_PENDING_REQUESTS unanswered requests per person; the next changes nothing.
    let mut last = None;
    for i in 0..MAX_PENDING_REQUESTS {
        let other = user(&format!("p{i:03}")).await;
        assert_eq!(
            store.request_contact(ben.id, other.id).await.unwrap(),
            Requested::Sent
        );
        last = Some(other);
    }
    assert_eq!(
        store.request_contact(ben.id, ann.id).await.unwrap(),
        Requested::TooManyPending
    );
    assert_eq!(
        store.relation(ben.id, ann.id).await.unwrap(),
        Relation::None
    );
    let last = last.unwrap();
    assert_eq!(
        store.relation(last.id, ben.id).await.unwrap(),
        Relation::Incoming
    );

    // Search: a bounded index range, by name, never the searcher.
    let prefix = |p: &str| UsernamePrefix::parse(p).unwrap();
    let found = store.search_users(ben.id, &prefix("p0"), 10).await.unwrap();
    assert_eq!(found.len(), 10);
    assert_eq!(found[0].username, "p000");
    assert_eq!(found[9].username, "p009");
    assert!(store
        .search_users(ann.id, &prefix("an"), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .search_users(UserId(0), &prefix("an"), 10)
            .await
            .unwrap()
            .iter()
            .map(|u| u.id)
            .collect::<Vec<_>>(),
        [ann.id]
    );
}
