//! The store on its own: seqs, idempotency, membership, pages. Every check runs twice, against a
//! temporary SQLite file and against a fresh database on the MariaDB/MySQL server at
//! `TIDINGS_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306`), dropped afterwards.

use app::model::{Body, Change, ConvId, Emoji, Entry, GroupTitle, Username};
use server::store::{Appended, GroupRefusal, NewEntry, Op, Refusal, Store};
use sqlx::{Connection, Executor};

/// A store on a throwaway database, and what it takes to throw it away.
pub enum TempDb {
    Sqlite(tempfile::TempDir), // held for its Drop
    MySql { server: String, name: String },
}

pub fn mysql_server_url() -> String {
    std::env::var("TIDINGS_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

impl TempDb {
    pub async fn sqlite() -> (Store, TempDb) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        (Store::connect(&url).await.unwrap(), TempDb::Sqlite(dir))
    }

    pub async fn mysql() -> (Store, TempDb) {
        let server = mysql_server_url();
        let name = format!("tidings_test_{}_{}", std::process::id(), rand_suffix());
        let mut admin = sqlx::MySqlConnection::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("MariaDB/MySQL at {server} is needed for these tests (scripts/test starts it): {e}"));
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let store = Store::connect(&format!("{server}/{name}")).await.unwrap();
        (store, TempDb::MySql { server, name })
    }

    /// The database's URL (for starting a server or a command on it).
    pub fn url(&self) -> String {
        match self {
            TempDb::Sqlite(dir) => format!("sqlite://{}", dir.path().join("store.db").display()),
            TempDb::MySql { server, name } => format!("{server}/{name}"),
        }
    }

    pub async fn drop_db(self) {
        if let TempDb::MySql { server, name } = self {
            let mut admin = sqlx::MySqlConnection::connect(&server).await.unwrap();
            admin
                .execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
                .await
                .unwrap();
        }
    }
}

fn rand_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// Runs `check` against a fresh SQLite store and a fresh MySQL store.
macro_rules! on_both_backends {
    ($($name:ident => $check:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            for (store, db) in [TempDb::sqlite().await, TempDb::mysql().await] {
                let dialect = store.dialect();
                println!("{} on {dialect:?}", stringify!($check));
                $check(store).await;
                db.drop_db().await;
            }
        }
    )*};
}

on_both_backends! {
    seqs_are_per_conversation_gap_free_and_idempotent => check_seqs_and_idempotency,
    outsiders_and_unknown_conversations_store_nothing => check_outsiders,
    unread_counts_follow_reads_and_own_messages => check_unread,
    pages_and_replay_are_keyset_slices => check_pages,
    memberships_and_conversation_views => check_memberships,
    edits_deletions_reactions_and_replies_change_current_state => check_changes,
    contacts_requests_and_search => check_contact_store,
    expired_sessions_stop_working_and_are_deleted => check_expired_sessions,
    every_change_leaves_one_stream_event_in_commit_order => check_outbox,
    search_finds_every_appended_message_through_bulk_indexing => check_search_index,
    a_webhook_bot_serves_its_conversation_only_and_outlives_its_webhooks => check_webhook_bots,
}

/// A webhook's bot name: new, or the bot already serving this conversation (even after its
/// webhook was revoked); never a person, an operator's bot, or another conversation's bot.
async fn check_webhook_bots(store: Store) {
    use server::store::StoreError;
    let a = user(&store, "ann").await;
    let b = user(&store, "ben").await;
    let (group, _) = store
        .create_group(a.id, &GroupTitle::parse("G").unwrap(), &[b.id])
        .await
        .unwrap();
    let (other, _) = store
        .create_group(a.id, &GroupTitle::parse("H").unwrap(), &[b.id])
        .await
        .unwrap();
    let name = |n: &str| Username::parse(n).unwrap();
    let bot = store.webhook_bot(group, &name("ci-bot")).await.unwrap();
    store.add_member(group, a.id, bot.id).await.unwrap();
    let hook = store
        .create_webhook(group, bot.id, a.id, "secret-1")
        .await
        .unwrap();
    assert_eq!(
        store.webhook_bot(group, &name("ci-bot")).await.unwrap(),
        bot
    );
    assert!(store.delete_webhook(group, hook.id).await.unwrap());
    assert_eq!(
        store.webhook_bot(group, &name("ci-bot")).await.unwrap(),
        bot,
        "revoking the webhook leaves its bot to the conversation"
    );
    for (conv, taken) in [(other, "ci-bot"), (group, "ben")] {
        assert!(
            matches!(
                store.webhook_bot(conv, &name(taken)).await,
                Err(StoreError::UsernameTaken)
            ),
            "{taken} in {conv:?}"
        );
    }
    // An operator's bot in the group is not a webhook's to speak as.
    let ops = store
        .create_bot(&name("ops-bot"), "token-digest", false)
        .await
        .unwrap();
    store.add_member(group, a.id, ops.id).await.unwrap();
    assert!(matches!(
        store.webhook_bot(group, &name("ops-bot")).await,
        Err(StoreError::UsernameTaken)
    ));
}

/// The search index follows appends in bulk on SQLite (every couple of thousand messages, and
/// before each search): whatever was appended is found, whichever side of a bulk update it fell
/// on, and an edit or deletion made before its message was indexed is what the index holds.
async fn check_search_index(store: Store) {
    use app::search::SearchQuery;
    let a = user(&store, "ann").await;
    let b = user(&store, "ben").await;
    let (direct, _) = store.open_direct(a.id, b.id).await.unwrap();
    let hits = |word: &str| {
        let store = store.clone();
        let query = SearchQuery::parse(word).unwrap();
        async move {
            let page = store.search(b.id, &query, None, None, 50).await.unwrap();
            page.hits.iter().map(|h| h.seq).collect::<Vec<_>>()
        }
    };
    // More than one bulk update's worth, in batches as the committer sends them.
    let total = 2_600;
    for start in (0..total).step_by(100) {
        let batch = (start..start + 100)
            .map(|i| new(&a, direct, &format!("w{i:05}")))
            .collect();
        store.append(batch).await.unwrap();
    }
    // Bodies are "body of w00000"...: the first, one at a bulk boundary, the last.
    for (word, seq) in [("w00000", 1), ("w02047", 2048), ("w02599", 2600)] {
        assert_eq!(hits(word).await, [seq], "{word}");
    }
    // Appended after the last search, changed before anything indexed them.
    store
        .append(vec![
            new(&a, direct, "late1"),
            new(&a, direct, "late2"),
            op(
                &a,
                direct,
                "edit",
                Op::Edit {
                    target: 2601,
                    body: Body::parse("rewritten before indexing".into()).unwrap(),
                },
            ),
            op(&a, direct, "del", Op::Delete { target: 2602 }),
        ])
        .await
        .unwrap();
    assert!(hits("late1").await.is_empty());
    assert_eq!(hits("rewritten").await, [2601]);
    assert!(hits("late2").await.is_empty());
    // And an indexed message edited afterwards is found by its new words only.
    store
        .append(vec![op(
            &a,
            direct,
            "edit2",
            Op::Edit {
                target: 1,
                body: Body::parse("zeppelin".into()).unwrap(),
            },
        )])
        .await
        .unwrap();
    assert!(hits("w00000").await.is_empty());
    assert_eq!(hits("zeppelin").await, [1]);
}

async fn check_expired_sessions(store: Store) {
    let a = user(&store, "ann").await;
    store
        .create_session(a.id, "expired", std::time::Duration::ZERO)
        .await
        .unwrap();
    store
        .create_session(a.id, "live", std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(store.session_user("expired").await.unwrap(), None);
    assert_eq!(store.delete_expired_sessions().await.unwrap(), 1);
    assert_eq!(store.delete_expired_sessions().await.unwrap(), 0);
    assert_eq!(store.session_user("live").await.unwrap(), Some(a));
}

use crate::contacts::check_contact_store;
use crate::events::check_outbox;

async fn user(store: &Store, name: &str) -> app::model::UserRef {
    let name = Username::parse(name).unwrap();
    store.create_user(&name, "not-a-real-hash").await.unwrap()
}

fn new(sender: &app::model::UserRef, conv: ConvId, client_id: &str) -> NewEntry {
    NewEntry::message(
        sender.clone(),
        conv,
        client_id.into(),
        Body::parse(format!("body of {client_id}")).unwrap(),
    )
}

async fn check_seqs_and_idempotency(store: Store) {
    let a = user(&store, "ann").await;
    let b = user(&store, "ben").await;
    let (direct, created) = store.open_direct(a.id, b.id).await.unwrap();
    assert!(created);
    assert_eq!(
        store.open_direct(b.id, a.id).await.unwrap(),
        (direct, false)
    );
    let (group, _) = store
        .create_group(a.id, &GroupTitle::parse("G").unwrap(), &[b.id])
        .await
        .unwrap();

    let batch = [
        new(&a, direct, "1"),
        new(&b, group, "2"),
        new(&a, direct, "3"),
        new(&a, direct, "1"),
    ];
    let out = store.append(batch.to_vec()).await.unwrap();
    let seqs: Vec<_> = out
        .iter()
        .map(|r| match r {
            Appended::Stored(m) => ("stored", m.conv(), m.seq()),
            Appended::Duplicate(m) => ("dup", m.conv, m.seq),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        seqs,
        [
            ("stored", direct, 1),
            ("stored", group, 2), // after the group's `created` event
            ("stored", direct, 2),
            ("dup", direct, 1)
        ]
    );
    // A later re-send returns the very same message's receipt.
    let again = store.append(vec![new(&a, direct, "1")]).await.unwrap();
    let (Appended::Duplicate(receipt), Appended::Stored(Entry::Message(first))) =
        (&again[0], &out[0])
    else {
        panic!("{again:?}")
    };
    assert_eq!(
        (receipt.conv, receipt.seq, receipt.id, receipt.at),
        (first.conv, first.seq, first.id, first.at)
    );
    assert_eq!(store.count_messages(direct).await.unwrap(), 2);
}

async fn check_outsiders(store: Store) {
    let a = user(&store, "ann").await;
    let b = user(&store, "ben").await;
    let c = user(&store, "cat").await;
    let (direct, _) = store.open_direct(a.id, b.id).await.unwrap();
    let out = store
        .append(vec![new(&c, direct, "x"), new(&c, ConvId(777), "y")])
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

async fn check_unread(store: Store) {
    let a = user(&store, "ann").await;
    let b = user(&store, "ben").await;
    let (direct, _) = store.open_direct(a.id, b.id).await.unwrap();
    store
        .append(vec![
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

async fn check_pages(store: Store) {
    let a = user(&store, "ann").await;
    let (note, _) = store.open_direct(a.id, a.id).await.unwrap();
    let batch: Vec<_> = (1..=30).map(|i| new(&a, note, &i.to_string())).collect();
    store.append(batch.to_vec()).await.unwrap();
    let page = store.history(a.id, note, Some(11), 5).await.unwrap();
    assert_eq!(
        page.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [6, 7, 8, 9, 10]
    );
    assert!(page.has_more);
    let first = store.history(a.id, note, Some(3), 5).await.unwrap();
    assert_eq!((first.messages.len(), first.has_more), (2, false));
    let after = store.after(note, 27, 10).await.unwrap();
    assert_eq!(
        after.iter().map(Entry::seq).collect::<Vec<_>>(),
        [28, 29, 30]
    );
}

async fn check_memberships(store: Store) {
    let a = user(&store, "ann").await;
    let b = user(&store, "ben").await;
    let c = user(&store, "cat").await;
    let (group, _) = store
        .create_group(a.id, &GroupTitle::parse("Plans").unwrap(), &[b.id])
        .await
        .unwrap();
    store
        .append(vec![new(&a, group, "1"), new(&b, group, "2")])
        .await
        .unwrap();
    assert!(store.add_member(group, a.id, c.id).await.unwrap().is_some());
    assert!(
        store.add_member(group, a.id, c.id).await.unwrap().is_none(),
        "already a member"
    );
    let view = store.conversation_for(c.id, group).await.unwrap().unwrap();
    assert_eq!(
        (view.title.as_str(), view.members.len(), view.unread),
        ("Plans", 3, 0),
        "joiners start with all read"
    );
    assert_eq!(
        (view.last_seq, view.last_message.unwrap().seq),
        (4, 3),
        "created 1, messages 2 and 3, added 4: the preview is the last message"
    );
    // A plain member may not rename the group (nothing is logged), nor remove anyone; the owner
    // may rename it.
    let trip = GroupTitle::parse("Trip").unwrap();
    assert_eq!(
        store.rename(group, b.id, &trip).await.unwrap(),
        Err(GroupRefusal::NotAllowed)
    );
    assert_eq!(
        store.remove_member(group, b.id, c.id).await.unwrap(),
        Err(GroupRefusal::NotAllowed)
    );
    store.rename(group, a.id, &trip).await.unwrap().unwrap();
    // The owner leaves: the longest-standing member inherits the group, and the log says so.
    let events = store
        .remove_member(group, a.id, a.id)
        .await
        .unwrap()
        .unwrap();
    let changes: Vec<_> = events.into_iter().map(|e| (e.seq, e.change)).collect();
    assert_eq!(
        changes,
        [(6, Change::Left), (7, Change::Owner { user: b.clone() })],
        "created 1, messages 2 and 3, added 4, renamed 5"
    );
    assert_eq!(
        store.remove_member(group, a.id, a.id).await.unwrap(),
        Err(GroupRefusal::NotMember),
        "not a member any more: nothing logged"
    );
    assert_eq!(
        store.role(group, b.id).await.unwrap(),
        Some(server::store::Role::Owner)
    );
    assert_eq!(store.role(group, a.id).await.unwrap(), None);
    assert!(store.conversation_for(a.id, group).await.unwrap().is_none());
    let list = store.conversations_for(b.id).await.unwrap();
    assert_eq!((list.len(), list[0].title.as_str()), (1, "Trip"));
    let (direct, _) = store.open_direct(b.id, c.id).await.unwrap();
    let list = store.conversations_for(c.id).await.unwrap();
    assert_eq!(list.iter().map(|v| v.id).collect::<Vec<_>>().len(), 2);
    assert_eq!(
        store
            .conversation_for(c.id, direct)
            .await
            .unwrap()
            .unwrap()
            .title,
        "ben"
    );
    store
        .create_session(b.id, "hash-1", std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        store.session_user("hash-1").await.unwrap().unwrap().id,
        b.id
    );
    store.delete_session("hash-1").await.unwrap();
    assert!(store.session_user("hash-1").await.unwrap().is_none());
}

/// Two stores on one MySQL database stand for two server nodes: their group commits interleave
/// on the same conversation, and the seqs still come out gap-free and unique.
#[tokio::test]
async fn two_nodes_writing_one_mysql_conversation_keep_seqs_gap_free() {
    let (node_a, db) = TempDb::mysql().await;
    let TempDb::MySql { server, name } = &db else {
        unreachable!()
    };
    let node_b = Store::connect(&format!("{server}/{name}")).await.unwrap();
    let a = user(&node_a, "ann").await;
    let b = user(&node_a, "ben").await;
    let (group, _) = node_a
        .create_group(a.id, &GroupTitle::parse("G").unwrap(), &[b.id])
        .await
        .unwrap();
    let (other, _) = node_a
        .create_group(b.id, &GroupTitle::parse("H").unwrap(), &[a.id])
        .await
        .unwrap();

    let mut tasks = Vec::new();
    for (store, user, tag) in [
        (node_a.clone(), a.clone(), "a"),
        (node_b.clone(), b.clone(), "b"),
    ] {
        for worker in 0..4 {
            let (store, user) = (store.clone(), user.clone());
            tasks.push(tokio::spawn(async move {
                let mut stored = 0;
                for round in 0..25 {
                    // Batches touching two conversations in different orders: the case for deadlocks.
                    let convs = if (worker + round) % 2 == 0 {
                        [group, other]
                    } else {
                        [other, group]
                    };
                    let batch: Vec<_> = (0..4)
                        .map(|i| new(&user, convs[i % 2], &format!("{tag}-{worker}-{round}-{i}")))
                        .collect();
                    let out = store
                        .append(batch.to_vec())
                        .await
                        .expect("batch commits (after retries)");
                    stored += out
                        .iter()
                        .filter(|r| matches!(r, Appended::Stored(_)))
                        .count();
                }
                stored
            }));
        }
    }
    let mut stored = 0;
    for t in tasks {
        stored += t.await.unwrap();
    }
    assert_eq!(stored, 2 * 4 * 25 * 4);
    for conv in [group, other] {
        let seqs: Vec<_> = node_b
            .after(conv, 0, 1000)
            .await
            .unwrap()
            .iter()
            .map(Entry::seq)
            .collect();
        assert_eq!(
            seqs,
            (1..=401).collect::<Vec<_>>(),
            "gap-free and unique in {conv}"
        );
    }
    db.drop_db().await;
}

fn op(sender: &app::model::UserRef, conv: ConvId, client_id: &str, op: Op) -> NewEntry {
    NewEntry {
        sender: sender.clone(),
        conv,
        client_id: client_id.into(),
        op,
    }
}

fn emoji(e: &str) -> Emoji {
    Emoji::parse(e.into()).unwrap()
}

async fn check_changes(store: Store) {
    let a = user(&store, "ann").await;
    let b = user(&store, "ben").await;
    let c = user(&store, "cat").await;
    let (group, _) = store
        .create_group(a.id, &GroupTitle::parse("G").unwrap(), &[b.id, c.id])
        .await
        .unwrap();
    store
        .append(vec![new(&b, group, "1"), new(&c, group, "2")])
        .await
        .unwrap();
    let body = |s: &str| Body::parse(s.into()).unwrap();
    // One batch with every kind, including refusals and a reply to a message of the same batch.
    let out = store
        .append(vec![
            op(
                &b,
                group,
                "e",
                Op::Edit {
                    target: 2,
                    body: body("edited"),
                },
            ),
            op(
                &c,
                group,
                "e-x",
                Op::Edit {
                    target: 2,
                    body: body("not mine"),
                },
            ),
            op(
                &a,
                group,
                "r1",
                Op::React {
                    target: 2,
                    emoji: emoji("👍"),
                    on: true,
                },
            ),
            op(
                &c,
                group,
                "r2",
                Op::React {
                    target: 2,
                    emoji: emoji("👍"),
                    on: true,
                },
            ),
            op(
                &c,
                group,
                "r3",
                Op::React {
                    target: 2,
                    emoji: emoji("🎉"),
                    on: true,
                },
            ),
            op(
                &c,
                group,
                "r4",
                Op::React {
                    target: 2,
                    emoji: emoji("🎉"),
                    on: false,
                },
            ),
            op(&a, group, "d", Op::Delete { target: 3 }), // the owner deletes cat's
            op(&b, group, "d-x", Op::Delete { target: 3 }),
            op(
                &b,
                group,
                "m3",
                Op::Message {
                    body: body("re: edited"),
                    reply_to: Some(2),
                    attachment: None,
                },
            ),
            op(
                &b,
                group,
                "x",
                Op::Edit {
                    target: 77,
                    body: body("?"),
                },
            ),
        ])
        .await
        .unwrap();
    let summary: Vec<String> = out
        .iter()
        .map(|o| match o {
            Appended::Stored(e) => format!("{}", e.seq()),
            Appended::Refused(r) => format!("{r:?}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "4",
            "NotAllowed",
            "5",
            "6",
            "7",
            "8",
            "9",
            "MessageDeleted",
            "10",
            "UnknownMessage"
        ]
    );
    assert_eq!(out[1], Appended::Refused(Refusal::NotAllowed));

    let page = store.history(c.id, group, None, 50).await.unwrap();
    let seqs: Vec<_> = page.messages.iter().map(|m| m.seq).collect();
    assert_eq!(
        seqs,
        [2, 3, 10],
        "after the group's `created` event (seq 1)"
    );
    let (first, second, reply) = (&page.messages[0], &page.messages[1], &page.messages[2]);
    assert_eq!(
        (first.body.as_str(), first.edited_at.is_some()),
        ("edited", true)
    );
    assert_eq!(first.reactions.len(), 1, "🎉 was taken back");
    let thumbs = &first.reactions[0];
    assert_eq!(
        (thumbs.emoji.as_str(), thumbs.count, thumbs.mine),
        ("👍", 2, true)
    );
    assert_eq!(
        thumbs
            .users
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        ["ann", "cat"]
    );
    assert!(second.deleted && second.body.is_empty());
    let quote = reply.reply_to.as_ref().unwrap();
    assert_eq!(
        (quote.seq, quote.sender.id, quote.excerpt.as_str()),
        (2, b.id, "edited")
    );

    // The replay brings every entry in order, events with their changes.
    let replay = store.after(group, 3, 100).await.unwrap();
    let kinds: Vec<String> = replay
        .iter()
        .map(|e| match e {
            Entry::Message(m) => format!("message {}", m.seq),
            Entry::Event(e) => format!("{} {}", e.change.kind(), e.seq),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "edit 4",
            "react 5",
            "react 6",
            "react 7",
            "unreact 8",
            "delete 9",
            "message 10"
        ]
    );
    let Entry::Event(edit) = &replay[0] else {
        unreachable!()
    };
    assert_eq!(
        edit.change,
        Change::Edit {
            target: 2,
            body: "edited".into()
        }
    );

    // Unread: ann has not read anything and wrote only events: ben's and cat's messages count
    // (cat's deleted one not), reactions and edits do not.
    let list = store.conversations_for(a.id).await.unwrap();
    assert_eq!((list[0].last_seq, list[0].unread), (10, 2));
    assert_eq!(list[0].last_message.as_ref().unwrap().seq, 10);

    // Group events take seqs too; a repeat add takes none.
    let added = store
        .add_member(group, a.id, user(&store, "dan").await.id)
        .await
        .unwrap();
    assert_eq!(added.map(|e| e.seq), Some(11));
    let renamed = store
        .rename(group, a.id, &GroupTitle::parse("H").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (renamed.seq, renamed.change),
        (12, Change::Renamed { title: "H".into() })
    );
    let page = store.history(c.id, group, None, 50).await.unwrap();
    assert_eq!(
        page.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 11, 12],
        "created, added, renamed"
    );
}

/// Under steady appends the SQLite write-ahead log starts over instead of growing by every
/// commit. The checkpointer runs beside the writer, so it never copies everything by itself
/// while sends keep coming; before the writer finished its checkpoints, a minute of
/// 2,000 sends/s left a 480 MB log, and every commit wrote into freshly allocated blocks.
#[tokio::test]
async fn the_sqlite_write_ahead_log_starts_over_under_steady_appends() {
    let (store, db) = TempDb::sqlite().await;
    let a = user(&store, "ann").await;
    let mut tasks = Vec::new();
    // Eight senders in eight conversations, one message per commit: 4,000 commits of about
    // seven 4 KiB frames each, ~115 MB of log if it never started over.
    for n in 0..8 {
        let b = user(&store, &format!("peer{n}")).await;
        let (conv, _) = store.open_direct(a.id, b.id).await.unwrap();
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..500 {
                store
                    .append(vec![new(&b, conv, &format!("s{n}m{i}"))])
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let TempDb::Sqlite(dir) = &db else {
        unreachable!()
    };
    let wal = std::fs::metadata(dir.path().join("store.db-wal"))
        .unwrap()
        .len();
    assert!(
        wal < 48 << 20,
        "the write-ahead log grew to {} MiB over 4,000 commits",
        wal >> 20
    );
    db.drop_db().await;
}
