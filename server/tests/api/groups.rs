//! Group membership over the HTTP API, and the `conversation` frames it sends to live clients.

use crate::helpers::{spawn_app, Client};
use app::model::Conversation;
use app::protocol::{ErrorCode, ServerFrame};

async fn expect_conversation(c: &mut Client) -> (Conversation, bool) {
    c.expect(|f| match f {
        ServerFrame::Conversation {
            conversation,
            removed,
            ..
        } => Some((conversation, removed)),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn add_rename_remove_and_leave_reach_live_clients() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let mut b = app.connect(&bob).await;
    let mut c = app.connect(&carol).await;

    let group = app.create_group(&alice, "Plans", "bob").await;
    let (seen, removed) = expect_conversation(&mut b).await;
    assert_eq!(
        (seen.id, seen.title.as_str(), removed),
        (group.id, "Plans", false)
    );

    let conv = group.id.to_string();
    let (status, body) = app
        .post(
            "/api/add_member",
            Some(&bob.cookie),
            &[("conv", &conv), ("username", "carol")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (seen, _) = expect_conversation(&mut c).await;
    assert_eq!(seen.members.len(), 3);
    // Carol now receives the group's messages live, without reconnecting.
    b.send_message(group.id, "b-1", "welcome carol").await;
    assert_eq!(c.expect_message().await.body, "welcome carol");

    // Only the owner and admins rename (see roles.rs): carol is neither.
    let (status, body) = app
        .post(
            "/api/rename_group",
            Some(&carol.cookie),
            &[("conv", &conv), ("title", "Trip")],
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let (status, _) = app
        .post(
            "/api/rename_group",
            Some(&alice.cookie),
            &[("conv", &conv), ("title", "Trip")],
        )
        .await;
    assert_eq!(status, 200);
    let renamed = b
        .expect(|f| match f {
            ServerFrame::Conversation { conversation, .. } if conversation.title == "Trip" => {
                Some(conversation)
            }
            _ => None,
        })
        .await;
    assert_eq!(renamed.id, group.id);

    // Only the owner (and admins) remove others.
    let (status, body) = app
        .post(
            "/api/remove_member",
            Some(&bob.cookie),
            &[("conv", &conv), ("username", "carol")],
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let (status, _) = app
        .post(
            "/api/remove_member",
            Some(&alice.cookie),
            &[("conv", &conv), ("username", "carol")],
        )
        .await;
    assert_eq!(status, 200);
    let (_, removed) = c
        .expect(|f| match f {
            ServerFrame::Conversation {
                removed: true,
                conversation,
                by,
            } => {
                assert_eq!(by.map(|u| u.username).as_deref(), Some("alice"));
                Some((conversation, true))
            }
            _ => None,
        })
        .await;
    assert!(removed);
    c.send_message(group.id, "c-9", "am I still here?").await;
    assert!(matches!(
        c.expect(|f| match f {
            ServerFrame::Error { code, .. } => Some(code),
            _ => None,
        })
        .await,
        ErrorCode::NotMember
    ));

    let (status, _) = app
        .post("/api/leave_group", Some(&bob.cookie), &[("conv", &conv)])
        .await;
    assert_eq!(status, 200);
    let list: Vec<Conversation> = serde_json::from_value(
        app.post("/api/conversations", Some(&bob.cookie), &[])
            .await
            .1,
    )
    .unwrap();
    assert!(list.is_empty(), "bob left: {list:?}");
    let (status, _) = app
        .post("/api/history", Some(&bob.cookie), &[("conv", &conv)])
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn bad_group_requests_change_nothing() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    app.register("bob").await;
    for (title, members, code) in [
        ("", "bob", "invalid"),
        ("Team", "bob, ghost", "not_found"),
        ("Team", "bad name!", "invalid"),
    ] {
        let (status, body) = app
            .post(
                "/api/create_group",
                Some(&alice.cookie),
                &[("title", title), ("members", members)],
            )
            .await;
        assert_eq!(body["code"], code, "{title}/{members}: {body}");
        assert!(status >= 400);
    }
    let (_, body) = app
        .post(
            "/api/open_direct",
            Some(&alice.cookie),
            &[("username", "ghost")],
        )
        .await;
    assert_eq!(body["code"], "not_found");
    let direct = app.open_direct(&alice, "bob").await;
    let (_, body) = app
        .post(
            "/api/add_member",
            Some(&alice.cookie),
            &[("conv", &direct.id.to_string()), ("username", "alice")],
        )
        .await;
    assert_eq!(body["code"], "invalid", "a direct chat takes no members");
    let (_, body) = app
        .post(
            "/api/rename_group",
            Some(&alice.cookie),
            &[("conv", "424242"), ("title", "x")],
        )
        .await;
    assert_eq!(body["code"], "not_found");
    let list: Vec<Conversation> = serde_json::from_value(
        app.post("/api/conversations", Some(&alice.cookie), &[])
            .await
            .1,
    )
    .unwrap();
    assert_eq!(list.len(), 1);
}
