//! The integration event stream (issue #11): the transactional outbox, the relay into the
//! Redis Stream `<prefix>:events`, consumer groups through the real `tidings events tail`, and
//! `GET /api/v1/events` for consumers without Redis.
//!
//! Real everything: the server (in process or as the real binary), Redis (the shared one with a
//! fresh prefix, or a private `redis-server` where a test kills it), MariaDB for the cluster.

use crate::cluster::redis_url;
use crate::helpers::{free_addr, spawn_app_with, traffic, Node, RedisServer, TestApp, TRAFFIC};
use crate::reliable::spawn_sender;
use crate::store::TempDb;
use app::events::{AccountChange, EventPage, Payload, StreamEvent};
use app::model::{Change, ConvId, Entry};
use app::protocol::ClientFrame;
use server::store::Store;
use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A fresh Redis key prefix: runs never meet in the shared Redis.
fn fresh_prefix() -> String {
    format!("tidings-test-events-{}", uuid::Uuid::new_v4().simple())
}

/// An admin token (reads every event) made the way an operator makes one.
pub async fn admin_token(store: &Store, name: &str) -> String {
    let token = server::auth::new_token();
    store
        .create_bot(
            &app::model::Username::parse(name).unwrap(),
            &server::auth::token_hash(&token),
            true,
        )
        .await
        .unwrap();
    token
}

/// `GET /api/v1/events` with `token`: the status and the reply.
async fn get_events(app: &TestApp, token: Option<&str>, query: &str) -> (u16, serde_json::Value) {
    let mut req = app.http.get(app.url(&format!("/api/v1/events{query}")));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Every event through the API, paging with `next` until it stops moving.
async fn all_events(app: &TestApp, token: &str, limit: u32) -> Vec<StreamEvent> {
    let (mut after, mut out) = (0, Vec::new());
    loop {
        let (status, body) =
            get_events(app, Some(token), &format!("?after={after}&limit={limit}")).await;
        assert_eq!(status, 200, "{body}");
        let page: EventPage = serde_json::from_value(body).unwrap();
        out.extend(page.events);
        if page.next == after {
            return out;
        }
        after = page.next;
    }
}

/// The store on its own (run on SQLite and on MariaDB by `store.rs`): a batch through the
/// committer's executor, group events and account changes each leave exactly one event; on
/// MySQL they get positions only when sequenced; refused and repeated entries leave none.
pub async fn check_outbox(store: Store) {
    use app::model::{Body, GroupTitle, Username};
    use server::store::NewEntry;
    let ann = store
        .create_user(&Username::parse("ann").unwrap(), "x")
        .await
        .unwrap();
    let ben = store
        .create_user(&Username::parse("ben").unwrap(), "x")
        .await
        .unwrap();
    let (group, _) = store
        .create_group(ann.id, &GroupTitle::parse("G").unwrap(), &[ben.id])
        .await
        .unwrap();
    let msg = |who: &app::model::UserRef, id: &str| {
        NewEntry::message(
            who.clone(),
            group,
            id.into(),
            Body::parse(format!("m {id}")).unwrap(),
        )
    };
    let batch = vec![
        msg(&ann, "a"),
        msg(&ben, "b"),
        msg(&ann, "a"),
        msg(&ann, "c"),
    ];
    store.append(batch.clone()).await.unwrap();
    store.append(batch).await.unwrap(); // all repeats: no new events
    let outsider = store
        .create_user(&Username::parse("cat").unwrap(), "x")
        .await
        .unwrap();
    store.append(vec![msg(&outsider, "x")]).await.unwrap(); // refused: none
    store
        .set_disabled(&Username::parse("ben").unwrap(), true)
        .await
        .unwrap();
    while store.sequence_outbox(2).await.unwrap() > 0 {}
    let page = store.events_after(0, 100, None).await.unwrap();
    let kinds: Vec<String> = page
        .events
        .iter()
        .map(|e| match &e.payload {
            Payload::Account { user, change, .. } => format!("{} {change:?}", user.username),
            Payload::Message { message } => format!("message {}", message.body),
            Payload::Event { event } => event.change.kind().to_owned(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "ann Created",
            "ben Created",
            "created",
            "message m a",
            "message m b",
            "message m c",
            "cat Created",
            "ben Disabled"
        ]
    );
    assert_eq!(
        page.events.iter().map(|e| e.id).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    assert_eq!(page.next, 8);
    // Paging: windows of 3, then nothing more.
    let first = store.events_after(0, 3, None).await.unwrap();
    assert_eq!((first.events.len(), first.next), (3, 3));
    let rest = store.events_after(3, 100, None).await.unwrap();
    assert_eq!((rest.events.len(), rest.next), (5, 8));
    let none = store.events_after(8, 100, None).await.unwrap();
    assert_eq!((none.events.len(), none.next), (0, 8));
    // A member's view: only its conversations' events.
    let mine = store.events_after(0, 100, Some(ben.id)).await.unwrap();
    assert_eq!(mine.events.len(), 4);
    let theirs = store.events_after(0, 100, Some(outsider.id)).await.unwrap();
    assert!(theirs.events.is_empty());
    assert_eq!(theirs.next, 8);
}

#[tokio::test]
async fn without_redis_the_outbox_is_the_stream_and_the_api_pages_it() {
    let app = spawn_app_with(|_| {}).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let group = app.create_group(&alice, "Launch", "bob").await;
    let mut a = app.connect(&alice).await;
    for (i, body) in ["one", "two", "three"].iter().enumerate() {
        a.send_message(group.id, &format!("m{i}"), body).await;
        a.expect_ack(&format!("m{i}")).await;
    }
    a.send(&ClientFrame::Edit {
        conv: group.id,
        client_id: "e1".into(),
        target: 2,
        body: "one, edited".into(),
    })
    .await;
    a.expect_ack("e1").await;
    a.send(&ClientFrame::React {
        conv: group.id,
        client_id: "r1".into(),
        target: 3,
        emoji: "👍".into(),
        on: true,
    })
    .await;
    a.expect_ack("r1").await;
    let (status, body) = app
        .post(
            "/api/rename_group",
            Some(&alice.cookie),
            &[("conv", &group.id.to_string()), ("title", "Launch day")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let store = app.store();
    store
        .set_disabled(&app::model::Username::parse("bob").unwrap(), true)
        .await
        .unwrap();
    let admin = admin_token(&store, "auditor").await;

    // Every change is an event, in commit order, numbered 1, 2, 3, … without gaps.
    let events = all_events(&app, &admin, 4).await;
    assert_eq!(
        events.iter().map(|e| e.id).collect::<Vec<_>>(),
        (1..=events.len() as i64).collect::<Vec<_>>()
    );
    assert!(events.iter().all(|e| e.version == 1));
    let summary: Vec<String> = events
        .iter()
        .map(|e| match &e.payload {
            Payload::Account { user, change, bot } => {
                format!("account {} {change:?} bot={bot}", user.username)
            }
            Payload::Message { message } => format!("message {} {}", message.seq, message.body),
            Payload::Event { event } => format!("event {} {}", event.seq, event.change.kind()),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "account alice Created bot=false",
            "account bob Created bot=false",
            "event 1 created",
            "message 2 one, edited", // its state when published: edited since
            "message 3 two",
            "message 4 three",
            "event 5 edit",
            "event 6 react",
            "event 7 renamed",
            "account bob Disabled bot=false",
            "account auditor Created bot=true",
        ]
    );
    assert!(events[2].at <= events[3].at);
    assert_eq!(
        events.iter().find_map(|e| match &e.payload {
            Payload::Event { event } => match &event.change {
                Change::Renamed { title } => Some(title.clone()),
                _ => None,
            },
            _ => None,
        }),
        Some("Launch day".to_owned())
    );
    drop(bob);

    // A bot's token sees only its conversations' events (none yet), and `next` still moves.
    let token = server::auth::new_token();
    store
        .create_bot(
            &app::model::Username::parse("helper").unwrap(),
            &server::auth::token_hash(&token),
            false,
        )
        .await
        .unwrap();
    let (status, body) = get_events(&app, Some(&token), "?after=0&limit=100").await;
    assert_eq!(status, 200, "{body}");
    let page: EventPage = serde_json::from_value(body).unwrap();
    assert!(page.events.is_empty(), "{page:?}");
    assert_eq!(
        page.next,
        events.len() as i64 + 1,
        "past the bot's own account event"
    );
    // Added to the group, it sees the group's events.
    let (status, body) = app
        .post(
            "/api/add_member",
            Some(&alice.cookie),
            &[("conv", &group.id.to_string()), ("username", "helper")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let seen = all_events(&app, &token, 100).await;
    assert!(seen.len() >= 8, "{seen:?}");
    assert!(seen.iter().all(|e| matches!(&e.payload,
        Payload::Message { message } if message.conv == group.id)
        || matches!(&e.payload, Payload::Event { event } if event.conv == group.id)));

    // Refusals: JSON errors with the API's codes, nothing else.
    let (status, body) = get_events(&app, None, "?after=0").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    let (status, body) = get_events(&app, Some("not-a-token"), "?after=0").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    let (status, body) = get_events(&app, Some(&admin), "?after=0&limit=0").await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid")));
    let (status, body) = get_events(&app, Some(&admin), "?after=x").await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid")));
}

/// A running `tidings events tail`, its output read line by line into `seen`.
struct Tail {
    child: Child,
    reader: tokio::task::JoinHandle<()>,
}

impl Tail {
    fn start(
        prefix: &str,
        redis: &str,
        group: &str,
        seen: Arc<std::sync::Mutex<Vec<i64>>>,
    ) -> Tail {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tidings"))
            .args([
                "events",
                "tail",
                "--group",
                group,
                "--from-start",
                "--redis-url",
                redis,
                "--redis-prefix",
                prefix,
            ])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("run tidings events tail");
        let stdout = child.stdout.take().unwrap();
        let reader = tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let event: StreamEvent =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
                seen.lock().unwrap().push(event.id);
            }
        });
        Tail { child, reader }
    }

    /// SIGKILL; then read what it had already written.
    async fn kill(mut self) {
        self.child.kill().await.unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.reader).await;
    }
}

/// Waits until `seen` holds every id of `1..=total`; returns (distinct, duplicates).
async fn until_all(seen: &Arc<std::sync::Mutex<Vec<i64>>>, total: i64) -> (usize, usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (distinct, len) = {
            let seen = seen.lock().unwrap();
            (seen.iter().copied().collect::<BTreeSet<_>>(), seen.len())
        };
        if distinct.len() as i64 >= total {
            assert_eq!(
                distinct,
                (1..=total).collect(),
                "exactly the stream's events"
            );
            return (distinct.len(), len - distinct.len());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {total} events arrived",
            distinct.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn consumer_groups_read_every_event_through_consumer_kills() {
    const MESSAGES: usize = 5000;
    let prefix = fresh_prefix();
    let redis = redis_url();
    let app = spawn_app_with(|c| {
        traffic(c);
        c.redis_url = Some(redis.clone());
        c.redis_prefix = prefix.clone();
        c.relay_interval_ms = 20;
    })
    .await;
    let alice = app.register("alice").await;
    let _bob = app.register("bob").await;
    let group = app.create_group(&alice, "Firehose", "bob").await;

    // The consumer runs while the events are produced, and is killed twice.
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tail = Tail::start(&prefix, &redis, "g1", seen.clone());
    let producer = {
        let app_addr = app.addr;
        let cookie = alice.cookie.clone();
        let conv = group.id;
        tokio::spawn(async move {
            let acked = Arc::new(AtomicUsize::new(0));
            spawn_sender(vec![app_addr], cookie, conv, MESSAGES, acked)
                .await
                .unwrap()
        })
    };
    for threshold in [MESSAGES / 4, MESSAGES / 2] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while seen.lock().unwrap().len() < threshold {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the consumer stalled"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tail.kill().await;
        tail = Tail::start(&prefix, &redis, "g1", seen.clone());
    }
    tokio::time::timeout(Duration::from_secs(180), producer)
        .await
        .expect("producer finished")
        .unwrap();
    let store = app.store();
    let total = store.last_event_pos().await.unwrap();
    assert_eq!(
        total,
        2 + 1 + MESSAGES as i64,
        "2 accounts, created, the messages"
    );
    let (distinct, duplicates) = until_all(&seen, total).await;
    tail.kill().await;

    // A second group reads the same events on its own.
    let seen2 = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tail2 = Tail::start(&prefix, &redis, "g2", seen2.clone());
    let (distinct2, duplicates2) = until_all(&seen2, total).await;
    tail2.kill().await;
    assert_eq!(
        duplicates2, 0,
        "an undisturbed consumer gets each event once"
    );

    // Every stored message is among them.
    let stored: Vec<Entry> = store.after(group.id, 0, 10_000).await.unwrap();
    assert_eq!(stored.len(), MESSAGES + 1);
    println!(
        "consumer groups: {total} events; g1 (killed twice) saw {distinct} distinct, \
         {duplicates} delivered twice, 0 missing; g2 saw {distinct2}, {duplicates2} twice"
    );
}

/// Reads the whole stream `<prefix>:events` directly: entry ids and events.
async fn read_stream(redis: &str, prefix: &str) -> Vec<(String, StreamEvent)> {
    let client = redis::Client::open(redis).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let reply: redis::Value = redis::cmd("XRANGE")
        .arg(format!("{prefix}:events"))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    server::stream::entries(&reply)
        .into_iter()
        .map(|(id, event)| {
            let event: StreamEvent = serde_json::from_str(&event.expect("event field")).unwrap();
            (id, event)
        })
        .collect()
}

/// Waits until the stream's newest entry is the outbox's last event (positions are 1..=n once
/// every committed row is numbered, so n is the number of rows).
async fn until_relayed(redis: &str, prefix: &str, store: &Store) -> Vec<(String, StreamEvent)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let newest = store.outbox_len().await.unwrap();
        let stream = read_stream(redis, prefix).await;
        if stream.last().map(|(_, e)| e.id) == Some(newest) {
            return stream;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream reached {:?} of {newest}",
            stream.last().map(|(_, e)| e.id)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The stream holds each event once, as `<id>-0`, ids 1..=n in order, and a `message` event
/// for every message the database stores in `conv`.
async fn assert_complete(stream: &[(String, StreamEvent)], store: &Store, conv: ConvId) {
    let ids: Vec<i64> = stream.iter().map(|(_, e)| e.id).collect();
    assert_eq!(
        ids,
        (1..=ids.len() as i64).collect::<Vec<_>>(),
        "gap-free, no duplicates"
    );
    assert!(stream.iter().all(|(id, e)| *id == format!("{}-0", e.id)));
    let in_stream: BTreeSet<i64> = stream
        .iter()
        .filter_map(|(_, e)| match &e.payload {
            Payload::Message { message } if message.conv == conv => Some(message.id.0),
            _ => None,
        })
        .collect();
    let in_db: BTreeSet<i64> = store
        .after(conv, 0, 100_000)
        .await
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Entry::Message(_)))
        .map(|e| e.id().0)
        .collect();
    assert!(
        in_stream == in_db,
        "an event for every stored message, and no other: {} stored messages missing from the \
         stream, {} stream messages not stored",
        in_db.difference(&in_stream).count(),
        in_stream.difference(&in_db).count()
    );
}

#[tokio::test]
async fn a_killed_node_and_a_restarted_redis_lose_no_event() {
    const MESSAGES: usize = 1000;
    let port = free_addr().port();
    let mut redis = RedisServer::start(port).await;
    let redis_url = redis.url();
    let prefix = fresh_prefix();
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("events.db").display());
    let mut args = vec![
        "--redis-url",
        &redis_url,
        "--redis-prefix",
        &prefix,
        "--relay-interval-ms",
        "20",
    ];
    args.extend_from_slice(&TRAFFIC);
    let mut node = Node::start(free_addr(), &db_url, &args).await;
    let app = TestApp::attach(node.addr);
    let alice = app.register("alice").await;
    let _bob = app.register("bob").await;
    let group = app.create_group(&alice, "Chaos", "bob").await;

    let acked = Arc::new(AtomicUsize::new(0));
    let sender = spawn_sender(
        vec![node.addr],
        alice.cookie.clone(),
        group.id,
        MESSAGES,
        acked.clone(),
    );
    let wait_for = |n: usize| {
        let acked = acked.clone();
        async move {
            while acked.load(Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    // SIGKILL the node during heavy sending.
    wait_for(MESSAGES * 3 / 10).await;
    node.kill_and_restart().await;
    // Kill Redis mid-relay (it keeps no data: the stream is gone), start it again.
    wait_for(MESSAGES * 6 / 10).await;
    redis.kill().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let redis = RedisServer::start(port).await;
    tokio::time::timeout(Duration::from_secs(180), sender)
        .await
        .expect("sender finished")
        .unwrap();

    let store = Store::connect(&db_url).await.unwrap();
    let stream = until_relayed(&redis_url, &prefix, &store).await;
    assert_complete(&stream, &store, group.id).await;
    println!(
        "SIGKILL + Redis restart: {} events in the stream, {} messages stored, 0 missing, 0 duplicates",
        stream.len(),
        MESSAGES
    );
    drop(node);
    drop(redis);
}

#[tokio::test]
async fn a_cluster_on_mariadb_relays_each_event_once_in_commit_order() {
    const MESSAGES: usize = 600;
    let (_store, db) = TempDb::mysql().await;
    let db_url = db.url();
    let prefix = fresh_prefix();
    let redis = redis_url();
    let mut nodes = Vec::new();
    for i in 0..2 {
        let node_id = format!("node-{i}");
        let mut args = vec![
            "--redis-url",
            &redis,
            "--redis-prefix",
            &prefix,
            "--node-id",
            &node_id,
            "--relay-interval-ms",
            "20",
        ];
        args.extend_from_slice(&TRAFFIC);
        nodes.push(Node::start(free_addr(), &db_url, &args).await);
    }
    let (a, b) = (
        TestApp::attach(nodes[0].addr),
        TestApp::attach(nodes[1].addr),
    );
    let alice = a.register("alice").await;
    let bob = b.register("bob").await;
    let group = a.create_group(&alice, "Both nodes", "bob").await;
    // Both nodes commit concurrently into the same conversation.
    let acked = Arc::new(AtomicUsize::new(0));
    let senders = [
        spawn_sender(
            vec![nodes[0].addr],
            alice.cookie.clone(),
            group.id,
            MESSAGES,
            acked.clone(),
        ),
        spawn_sender(
            vec![nodes[1].addr],
            bob.cookie.clone(),
            group.id,
            MESSAGES,
            acked.clone(),
        ),
    ];
    // The relay's node dies halfway: the other takes the lock over.
    while acked.load(Ordering::SeqCst) < MESSAGES {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let lock: Option<String> = {
        let client = redis::Client::open(redis.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("GET")
            .arg(format!("{prefix}:events:relay"))
            .query_async(&mut conn)
            .await
            .unwrap()
    };
    let holder = lock.expect("one relay holds the lock");
    let dead = if holder == "node-0" { 0 } else { 1 };
    nodes[dead].kill().await;
    let survivor = nodes[1 - dead].addr;
    for (i, sender) in senders.into_iter().enumerate() {
        if i == dead {
            sender.abort();
        } else {
            tokio::time::timeout(Duration::from_secs(180), sender)
                .await
                .expect("sender finished")
                .unwrap();
        }
    }
    let store = Store::connect(&db_url).await.unwrap();
    let stream = until_relayed(&redis, &prefix, &store).await;
    assert_complete(&stream, &store, group.id).await;

    // The API on the surviving node pages the same events.
    let token = admin_token(&store, "auditor").await;
    let api = TestApp::attach(survivor);
    let events = all_events(&api, &token, 250).await;
    let from_api: Vec<i64> = events.iter().map(|e| e.id).collect();
    let stream_ids: Vec<i64> = stream.iter().map(|(_, e)| e.id).collect();
    assert_eq!(&from_api[..stream_ids.len()], &stream_ids[..]);
    assert!(matches!(
        events.last().map(|e| &e.payload),
        Some(Payload::Account {
            change: AccountChange::Created,
            bot: true,
            ..
        })
    ));
    println!(
        "cluster: {} events relayed once each, in order, across a relay failover",
        stream.len()
    );
    drop(nodes);
    db.drop_db().await;
}
