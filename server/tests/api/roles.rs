//! Group roles over the real API and sockets: the owner makes and unmakes admins; the owner and
//! admins rename, remove others and delete others' messages, members may not; a role change is
//! an event of the conversation's log, seen live and caught up by `sync`. On SQLite and MariaDB.

use crate::helpers::{spawn_app, spawn_app_on, Client, TestApp, TestUser};
use crate::store::TempDb;
use app::model::{Change, ConvId, Conversation, Event, Role, Seq};
use app::protocol::{ClientFrame, ErrorCode, ServerFrame};
use std::collections::BTreeMap;
use std::time::Duration;

/// `who` asks for `user` to have `role` in `conv`: the status and the reply.
async fn set_role(
    app: &TestApp,
    who: &TestUser,
    conv: ConvId,
    user: &str,
    role: &str,
) -> (u16, serde_json::Value) {
    app.post(
        "/api/set_role",
        Some(&who.cookie),
        &[
            ("conv", &conv.to_string()),
            ("username", user),
            ("role", role),
        ],
    )
    .await
}

async fn rename(app: &TestApp, who: &TestUser, conv: ConvId, title: &str) -> u16 {
    app.post(
        "/api/rename_group",
        Some(&who.cookie),
        &[("conv", &conv.to_string()), ("title", title)],
    )
    .await
    .0
}

async fn remove(app: &TestApp, who: &TestUser, conv: ConvId, user: &str) -> (u16, String) {
    let (status, body) = app
        .post(
            "/api/remove_member",
            Some(&who.cookie),
            &[("conv", &conv.to_string()), ("username", user)],
        )
        .await;
    (status, body["code"].as_str().unwrap_or("").to_owned())
}

/// Sends a message and returns its seq.
async fn say(c: &mut Client, conv: ConvId, client_id: &str) -> Seq {
    c.send_message(conv, client_id, client_id).await;
    match c.expect_ack(client_id).await {
        ServerFrame::Ack { seq, .. } => seq,
        other => unreachable!("{other:?}"),
    }
}

/// Asks to delete message `target`; Ok(()) when acked, Err(code) when refused.
async fn delete(
    c: &mut Client,
    conv: ConvId,
    client_id: &str,
    target: Seq,
) -> Result<(), ErrorCode> {
    c.send(&ClientFrame::Delete {
        conv,
        client_id: client_id.into(),
        target,
    })
    .await;
    let client_id = client_id.to_owned();
    c.expect(move |f| match f {
        ServerFrame::Ack { client_id: id, .. } if id == client_id => Some(Ok(())),
        ServerFrame::Error {
            code,
            client_id: Some(id),
            ..
        } if id == client_id => Some(Err(code)),
        _ => None,
    })
    .await
}

/// The next `role` event that gives someone `role`.
async fn expect_role_event(c: &mut Client, role: Role) -> Event {
    c.expect(|f| match f {
        ServerFrame::Event(e) if matches!(e.change, Change::Role { role: r, .. } if r == role) => {
            Some(e)
        }
        _ => None,
    })
    .await
}

fn roles_in(reply: serde_json::Value) -> Conversation {
    serde_json::from_value(reply).expect("a conversation")
}

async fn owner_admins_and_members(app: TestApp) {
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    app.register("dave").await;
    let group = app.create_group(&alice, "Crew", "bob carol dave").await;
    let conv = group.id;
    assert_eq!(group.role_of(alice.user.id), Role::Owner);
    assert_eq!(group.role_of(bob.user.id), Role::Member);
    let mut a = app.connect(&alice).await;
    let mut b = app.connect(&bob).await;
    let mut c = app.connect(&carol).await;
    let alices = say(&mut a, conv, "a-1").await;
    let carols = say(&mut c, conv, "c-1").await;

    // A member may not give roles, rename, remove others, or delete others' messages; nothing
    // of it is logged.
    let before = app
        .store()
        .conversation_for(alice.user.id, conv)
        .await
        .unwrap()
        .unwrap();
    let (status, body) = set_role(&app, &bob, conv, "carol", "admin").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    assert_eq!(rename(&app, &bob, conv, "Bob's").await, 403);
    assert_eq!(
        remove(&app, &bob, conv, "dave").await,
        (403, "forbidden".into())
    );
    assert_eq!(
        delete(&mut b, conv, "b-del-1", carols).await,
        Err(ErrorCode::NotAllowed)
    );
    let after = app
        .store()
        .conversation_for(alice.user.id, conv)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.last_seq, before.last_seq, "refusals take no seq");

    // Bad role requests change nothing either.
    for (user, role, code) in [
        ("bob", "owner", "invalid"),
        ("bob", "boss", "invalid"),
        ("ghost", "admin", "not_found"),
        ("alice", "member", "forbidden"),
    ] {
        let (_, body) = set_role(&app, &alice, conv, user, role).await;
        assert_eq!(body["code"], code, "{user} {role}: {body}");
    }

    // The owner makes bob an admin: the reply, everyone's live log and their lists say so.
    let (status, body) = set_role(&app, &alice, conv, "bob", "admin").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(roles_in(body).role_of(bob.user.id), Role::Admin);
    // The event (in the log) and the conversation frame (for the list) may come in either order.
    let (mut promoted, mut seen) = (None, None);
    while promoted.is_none() || seen.is_none() {
        match c.recv().await {
            ServerFrame::Event(e) if matches!(e.change, Change::Role { .. }) => promoted = Some(e),
            ServerFrame::Conversation { conversation, .. }
                if conversation.role_of(bob.user.id) == Role::Admin =>
            {
                seen = Some(conversation)
            }
            _ => {}
        }
    }
    let (promoted, seen) = (promoted.unwrap(), seen.unwrap());
    assert_eq!(promoted.sender.id, alice.user.id);
    assert_eq!(
        promoted.change,
        Change::Role {
            user: bob.user.clone(),
            role: Role::Admin
        }
    );
    assert_eq!(seen.role_of(alice.user.id), Role::Owner);
    // The same again is no change: nothing is logged.
    let (status, _) = set_role(&app, &alice, conv, "bob", "admin").await;
    assert_eq!(status, 200);
    let list = app
        .store()
        .conversation_for(carol.user.id, conv)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(list.last_seq, promoted.seq);

    // An admin renames, deletes others' messages and removes members; the removed member hears
    // who removed them.
    let (status, body) = set_role(&app, &bob, conv, "carol", "admin").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "only the owner"
    );
    assert_eq!(rename(&app, &bob, conv, "Bob's crew").await, 200);
    assert_eq!(delete(&mut b, conv, "b-del-2", carols).await, Ok(()));
    assert_eq!(
        remove(&app, &bob, conv, "carol").await,
        (200, String::new())
    );
    let by = c
        .expect(|f| match f {
            ServerFrame::Conversation {
                removed: true, by, ..
            } => Some(by),
            _ => None,
        })
        .await;
    assert_eq!(by.map(|u| u.username).as_deref(), Some("bob"));
    // Nobody removes the owner.
    assert_eq!(
        remove(&app, &bob, conv, "alice").await,
        (403, "forbidden".into())
    );
    assert_eq!(
        delete(&mut b, conv, "b-del-3", alices).await,
        Ok(()),
        "even the owner's"
    );

    // Demoted, bob is a member again.
    let (status, body) = set_role(&app, &alice, conv, "bob", "member").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(roles_in(body).role_of(bob.user.id), Role::Member);
    let demoted = expect_role_event(&mut b, Role::Member).await;
    assert_eq!(
        demoted.change,
        Change::Role {
            user: bob.user.clone(),
            role: Role::Member
        }
    );
    assert_eq!(rename(&app, &bob, conv, "Mine now").await, 403);
    assert_eq!(
        remove(&app, &bob, conv, "dave").await,
        (403, "forbidden".into())
    );

    // The owner leaves: an admin inherits the group before any longer-standing member.
    let (status, _) = set_role(&app, &alice, conv, "dave", "admin").await;
    assert_eq!(status, 200);
    let (status, _) = app
        .post(
            "/api/leave_group",
            Some(&alice.cookie),
            &[("conv", &conv.to_string())],
        )
        .await;
    assert_eq!(status, 200);
    let heir = b
        .expect(|f| match f {
            ServerFrame::Event(Event {
                change: Change::Owner { user },
                ..
            }) => Some(user),
            _ => None,
        })
        .await;
    assert_eq!(heir.username, "dave");
    let view = app
        .store()
        .conversation_for(bob.user.id, conv)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.role_of(heir.id), Role::Owner);
    assert_eq!(
        view.roles.len(),
        1,
        "dave is the owner now, and no longer an admin"
    );
}

#[tokio::test]
async fn roles_decide_who_renames_removes_and_deletes_on_sqlite() {
    owner_admins_and_members(spawn_app().await).await;
}

#[tokio::test]
async fn roles_decide_who_renames_removes_and_deletes_on_mariadb() {
    let (store, db) = TempDb::mysql().await;
    drop(store);
    owner_admins_and_members(spawn_app_on(&db.url(), |_| {}).await).await;
    db.drop_db().await;
}

#[tokio::test]
async fn a_member_offline_during_a_promotion_catches_up_to_it() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let group = app.create_group(&alice, "Crew", "bob").await;
    let conv = group.id;
    let mut b = app.connect(&bob).await;
    let cursor = say(&mut b, conv, "b-1").await;
    drop(b);

    let (status, _) = set_role(&app, &alice, conv, "bob", "admin").await;
    assert_eq!(status, 200);

    let mut b = app.connect(&bob).await;
    b.send(&ClientFrame::Sync {
        cursors: BTreeMap::from([(conv, cursor)]),
    })
    .await;
    let mut replayed = Vec::new();
    loop {
        match b.recv().await {
            ServerFrame::Event(e) => replayed.push((e.seq, e.change)),
            ServerFrame::Message(m) => panic!("no new message was sent: {m:?}"),
            ServerFrame::Synced => break,
            _ => {}
        }
    }
    assert_eq!(
        replayed,
        [(
            cursor + 1,
            Change::Role {
                user: bob.user.clone(),
                role: Role::Admin
            }
        )]
    );
    // And the list a reconnecting client loads says so too.
    let list: Vec<Conversation> = serde_json::from_value(
        app.post("/api/conversations", Some(&bob.cookie), &[])
            .await
            .1,
    )
    .unwrap();
    assert_eq!(list[0].role_of(bob.user.id), Role::Admin);
    assert!(b
        .drain(Duration::from_millis(200))
        .await
        .iter()
        .all(|f| !matches!(f, ServerFrame::Event(_))));
}
