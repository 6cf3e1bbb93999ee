//! The store on its own, against a temporary SQLite file: seqs, idempotency, membership, pages.

use app::model::{ConvId, GroupTitle, Username};
use server::store::{Appended, NewMessage, Store};

async fn temp_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    (Store::connect(&url).await.unwrap(), dir)
}

fn new(sender: &app::model::UserRef, conv: ConvId, client_id: &str) -> NewMessage {
    NewMessage {
        sender: sender.clone(),
        conv,
        client_id: client_id.into(),
        body: format!("body of {client_id}"),
    }
}

#[tokio::test]
async fn seqs_are_per_conversation_gap_free_and_idempotent() {
    let (store, _dir) = temp_store().await;
    let a = store
        .create_user(&Username::parse("ann").unwrap(), "h")
        .await
        .unwrap();
    let b = store
        .create_user(&Username::parse("ben").unwrap(), "h")
        .await
        .unwrap();
    let (direct, created) = store.open_direct(a.id, b.id).await.unwrap();
    assert!(created);
    assert_eq!(
        store.open_direct(b.id, a.id).await.unwrap(),
        (direct, false)
    );
    let group = store
        .create_group(a.id, &GroupTitle::parse("G").unwrap(), &[b.id])
        .await
        .unwrap();

    let batch = [
        new(&a, direct, "1"),
        new(&b, group, "2"),
        new(&a, direct, "3"),
        new(&a, direct, "1"),
    ];
    let out = store.append(&batch).await.unwrap();
    let seqs: Vec<_> = out
        .iter()
        .map(|r| match r {
            Appended::Stored(m) => ("stored", m.conv, m.seq),
            Appended::Duplicate(m) => ("dup", m.conv, m.seq),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        seqs,
        [
            ("stored", direct, 1),
            ("stored", group, 1),
            ("stored", direct, 2),
            ("dup", direct, 1)
        ]
    );
    // A later re-send returns the very same message.
    let again = store.append(&[new(&a, direct, "1")]).await.unwrap();
    assert_eq!(
        again[0],
        Appended::Duplicate(match &out[0] {
            Appended::Stored(m) => m.clone(),
            _ => unreachable!(),
        })
    );
    assert_eq!(store.count_messages(direct).await.unwrap(), 2);
}

#[tokio::test]
async fn outsiders_and_unknown_conversations_store_nothing() {
    let (store, _dir) = temp_store().await;
    let a = store
        .create_user(&Username::parse("ann").unwrap(), "h")
        .await
        .unwrap();
    let b = store
        .create_user(&Username::parse("ben").unwrap(), "h")
        .await
        .unwrap();
    let c = store
        .create_user(&Username::parse("cat").unwrap(), "h")
        .await
        .unwrap();
    let (direct, _) = store.open_direct(a.id, b.id).await.unwrap();
    let out = store
        .append(&[new(&c, direct, "x"), new(&c, ConvId(777), "y")])
        .await
        .unwrap();
    assert_eq!(out, [Appended::NotMember, Appended::UnknownConversation]);
    assert_eq!(store.count_messages(direct).await.unwrap(), 0);
    assert!(
        store
            .create_user(&Username::parse("ANN").unwrap(), "h")
            .await
            .is_err(),
        "case-insensitive unique"
    );
}

#[tokio::test]
async fn unread_counts_follow_reads_and_own_messages() {
    let (store, _dir) = temp_store().await;
    let a = store
        .create_user(&Username::parse("ann").unwrap(), "h")
        .await
        .unwrap();
    let b = store
        .create_user(&Username::parse("ben").unwrap(), "h")
        .await
        .unwrap();
    let (direct, _) = store.open_direct(a.id, b.id).await.unwrap();
    store
        .append(&[
            new(&a, direct, "1"),
            new(&a, direct, "2"),
            new(&a, direct, "3"),
        ])
        .await
        .unwrap();
    let unread = |list: Vec<app::model::Conversation>| list[0].unread;
    assert_eq!(unread(store.conversations_for(a.id).await.unwrap()), 0);
    assert_eq!(unread(store.conversations_for(b.id).await.unwrap()), 3);
    assert_eq!(store.mark_read(direct, b.id, 2).await.unwrap(), 2);
    assert_eq!(
        store.mark_read(direct, b.id, 1).await.unwrap(),
        2,
        "never backwards"
    );
    assert_eq!(
        store.mark_read(direct, b.id, 99).await.unwrap(),
        3,
        "never past the end"
    );
    assert_eq!(unread(store.conversations_for(b.id).await.unwrap()), 0);
}

#[tokio::test]
async fn pages_and_replay_are_keyset_slices() {
    let (store, _dir) = temp_store().await;
    let a = store
        .create_user(&Username::parse("ann").unwrap(), "h")
        .await
        .unwrap();
    let (note, _) = store.open_direct(a.id, a.id).await.unwrap();
    let batch: Vec<_> = (1..=30).map(|i| new(&a, note, &i.to_string())).collect();
    store.append(&batch).await.unwrap();
    let page = store.history(note, Some(11), 5).await.unwrap();
    assert_eq!(
        page.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [6, 7, 8, 9, 10]
    );
    assert!(page.has_more);
    let first = store.history(note, Some(3), 5).await.unwrap();
    assert_eq!((first.messages.len(), first.has_more), (2, false));
    let after = store.after(note, 27, 10).await.unwrap();
    assert_eq!(
        after.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [28, 29, 30]
    );
}
