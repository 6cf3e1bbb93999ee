//! Several real `tidings` processes on one MariaDB database and one Redis form one service:
//! users on different nodes chat one-to-one and in a group, and see membership changes live.
//! Each run uses its own database and its own Redis key prefix, so runs never meet.

use crate::helpers::{free_addr, Client, Node, RedisServer, TestApp, TestUser, TRAFFIC};
use crate::reliable::{receive_all, spawn_sender};
use crate::store::TempDb;
use app::model::{Change, ConvId, Seq};
use app::protocol::{ClientFrame, ServerFrame};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub fn redis_url() -> String {
    std::env::var("TIDINGS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// `count` nodes sharing a fresh MariaDB database and a fresh Redis prefix.
pub async fn cluster(count: usize) -> (Vec<Node>, TempDb) {
    cluster_with(count, &[]).await
}

/// The same, with extra flags for every node.
async fn cluster_with(count: usize, extra: &[&str]) -> (Vec<Node>, TempDb) {
    let (_store, db) = TempDb::mysql().await; // creates the database and runs the migrations
    let TempDb::MySql { server, name } = &db else {
        unreachable!()
    };
    let db_url = format!("{server}/{name}");
    let prefix = format!("tidings-test-{name}");
    let redis_url = redis_url();
    let mut nodes = Vec::new();
    for i in 0..count {
        let node_id = format!("node-{i}");
        let mut args = vec![
            "--redis-url",
            &redis_url,
            "--redis-prefix",
            &prefix,
            "--node-id",
            &node_id,
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&TRAFFIC);
        nodes.push(Node::start(free_addr(), &db_url, &args).await);
    }
    (nodes, db)
}

/// Reads `conv` until holding seqs 1..=total, the way the browser does: accept the next seq,
/// ask for a gap, drop what it already has. Returns the accepted seqs and the gaps it asked for.
async fn read_all(client: &mut Client, conv: ConvId, total: Seq) -> (Vec<Seq>, usize) {
    let (mut accepted, mut gaps) = (Vec::new(), 0);
    while (accepted.len() as Seq) < total {
        let have = accepted.last().copied().unwrap_or(0);
        let seq = match client.recv().await {
            ServerFrame::Message(m) if m.conv == conv => m.seq,
            // Events are entries of the same log (a group starts with its `created` event).
            ServerFrame::Event(e) if e.conv == conv => e.seq,
            // The sending connection's copy of its own message is its ack.
            ServerFrame::Ack { conv: c, seq, .. } if c == conv => seq,
            _ => continue,
        };
        if seq == have + 1 {
            accepted.push(seq);
        } else if seq > have + 1 {
            gaps += 1;
            client
                .send(&ClientFrame::Sync {
                    cursors: BTreeMap::from([(conv, have)]),
                })
                .await;
        }
    }
    (accepted, gaps)
}

/// The next `event` frame of `conv`.
async fn next_event(c: &mut Client, conv: ConvId) -> app::model::Event {
    c.expect(move |f| match f {
        ServerFrame::Event(e) if e.conv == conv => Some(e),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn users_on_three_nodes_chat_directly_and_in_a_group_of_five() {
    let (nodes, db) = cluster(3).await;
    let apps: Vec<TestApp> = nodes.iter().map(|n| TestApp::attach(n.addr)).collect();
    let mut users: Vec<TestUser> = Vec::new();
    for i in 0..5 {
        users.push(apps[i % 3].register(&format!("user{i}")).await);
    }
    // Everyone connects to "their" node before anything happens.
    let mut clients = Vec::new();
    for (i, user) in users.iter().enumerate() {
        clients.push(apps[i % 3].connect(user).await);
    }

    // A direct chat opened on node 0 reaches user1's connection on node 1 live.
    let direct = apps[0].open_direct(&users[0], "user1").await;
    let seen = clients[1]
        .expect(|f| match f {
            ServerFrame::Conversation { conversation, .. } => Some(conversation),
            _ => None,
        })
        .await;
    assert_eq!(seen.id, direct.id);
    clients[0]
        .send_message(direct.id, "d-0", "hello from node 0")
        .await;
    assert_eq!(clients[1].expect_message().await.body, "hello from node 0");
    clients[1]
        .send_message(direct.id, "d-1", "hello from node 1")
        .await;
    let m = clients[0]
        .expect(|f| match f {
            ServerFrame::Message(m) if m.seq == 2 => Some(m),
            _ => None,
        })
        .await;
    assert_eq!(m.body, "hello from node 1");

    // An edit on node 1 and a reaction on node 0 cross to the other node as events, in the log's
    // order.
    clients[1]
        .send(&ClientFrame::Edit {
            conv: direct.id,
            client_id: "e-1".into(),
            target: 2,
            body: "hello from node 1 (edited)".into(),
        })
        .await;
    clients[0]
        .send(&ClientFrame::React {
            conv: direct.id,
            client_id: "r-0".into(),
            target: 2,
            emoji: "👍".into(),
            on: true,
        })
        .await;
    let edit = next_event(&mut clients[0], direct.id).await;
    assert_eq!(
        edit.change,
        Change::Edit {
            target: 2,
            body: "hello from node 1 (edited)".into()
        }
    );
    let reaction = next_event(&mut clients[1], direct.id).await;
    assert_eq!(
        (reaction.sender.id, reaction.change),
        (
            users[0].user.id,
            Change::React {
                target: 2,
                emoji: "👍".into(),
                on: true
            }
        )
    );
    assert_eq!(
        [edit.seq, reaction.seq]
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        [3, 4].into(),
        "one seq each"
    );

    // A group of five across the three nodes; each member sends 20 messages concurrently.
    let names: Vec<String> = (1..5).map(|i| format!("user{i}")).collect();
    let group = apps[2]
        .create_group(&users[0], "Everyone", &names.join(","))
        .await;
    for c in clients.iter_mut() {
        c.expect(|f| match f {
            ServerFrame::Conversation { conversation, .. } if conversation.id == group.id => {
                Some(())
            }
            _ => None,
        })
        .await;
    }
    let per_sender = 20;
    let total = (per_sender * clients.len()) as Seq;
    let mut tasks = Vec::new();
    for (i, mut client) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for n in 0..per_sender {
                client
                    .send_message(group.id, &format!("g-{i}-{n}"), &format!("{i}:{n}"))
                    .await;
            }
            read_all(&mut client, group.id, total + 1).await
        }));
    }
    let mut gaps = 0;
    for t in tasks {
        let (seqs, g) = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("every member got everything")
            .unwrap();
        assert_eq!(
            seqs,
            (1..=total + 1).collect::<Vec<_>>(),
            "created, then the messages"
        );
        gaps += g;
    }
    println!("5 members on 3 nodes: {total} group messages each received once, in order ({gaps} gaps filled by sync)");
    drop(nodes);
    db.drop_db().await;
}

/// Two nodes, a sender on one and two members on the other, and the private Redis between them
/// is killed mid-traffic and restarted: every acknowledged message still reaches both members
/// exactly once, in order (the node that lost Redis makes its clients resync from MariaDB).
#[tokio::test]
async fn a_redis_restart_mid_traffic_loses_nothing() {
    let mut redis = RedisServer::start(free_addr().port()).await;
    let (_store, db) = TempDb::mysql().await;
    let TempDb::MySql { server, name } = &db else {
        unreachable!()
    };
    let db_url = format!("{server}/{name}");
    let url = redis.url();
    let mut nodes = Vec::new();
    for id in ["a", "b"] {
        let args = [
            "--redis-url",
            url.as_str(),
            "--redis-prefix",
            "t",
            "--node-id",
            id,
            TRAFFIC[0],
            TRAFFIC[1],
            TRAFFIC[2],
            TRAFFIC[3],
        ];
        nodes.push(Node::start(free_addr(), &db_url, &args).await);
    }
    let app = TestApp::attach(nodes[0].addr);
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let conv = app
        .create_group(&alice, "Through outages", "bob, carol")
        .await
        .id;

    let total = 600;
    let receivers = [bob.cookie.clone(), carol.cookie.clone()]
        .map(|cookie| tokio::spawn(receive_all(vec![nodes[1].addr], cookie, conv, total + 1)));
    let acked = Arc::new(AtomicUsize::new(0));
    let sender = spawn_sender(
        vec![nodes[0].addr],
        alice.cookie.clone(),
        conv,
        total,
        acked.clone(),
    );

    while acked.load(Ordering::SeqCst) < total / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    redis.kill().await;
    let acked_while_down = acked.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let acked_after_outage = acked.load(Ordering::SeqCst);
    let redis = RedisServer::start(redis.port).await;

    let resent = tokio::time::timeout(Duration::from_secs(120), sender)
        .await
        .expect("sender done")
        .unwrap();
    for r in receivers {
        let (seqs, _) = tokio::time::timeout(Duration::from_secs(120), r)
            .await
            .expect("receiver done")
            .unwrap();
        assert_eq!(
            seqs,
            (1..=total as Seq + 1).collect::<Vec<_>>(),
            "created, then the messages"
        );
    }
    println!(
        "Redis killed after {acked_while_down} acks ({} more acked while it was down), restarted: \
         {total} messages reached both members on the other node once, in order; {resent} re-sends",
        acked_after_outage - acked_while_down
    );
    // Both nodes got their subscription back, and say so in /metrics; the publisher timed its
    // round trips to Redis.
    for node in &nodes {
        assert!(node.metric("tidings_redis_reconnects_total").await >= 1);
        assert!(node.metric("tidings_redis_publish_seconds_count").await >= 1);
    }
    drop((nodes, redis));
    db.drop_db().await;
}

/// A node is killed with SIGKILL under its clients: they reconnect to another node and catch up.
#[tokio::test]
async fn clients_of_a_killed_node_catch_up_on_another() {
    let (mut nodes, db) = cluster(2).await;
    let (a, b) = (nodes[0].addr, nodes[1].addr);
    let app = TestApp::attach(a);
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let conv = app.create_group(&alice, "Failover", "bob").await.id;

    let total = 500;
    // Both start on node B; when it dies they move to node A. Besides the messages, the log gets
    // an edit and a reaction (made on node A while the sender is busy): the receiver holds every
    // entry once and in order, events included.
    let entries = total + 3; // `created`, the messages, an edit and a reaction
    let receiver = tokio::spawn(receive_all(vec![b, a], bob.cookie.clone(), conv, entries));
    let acked = Arc::new(AtomicUsize::new(0));
    let sender = spawn_sender(vec![b, a], alice.cookie.clone(), conv, total, acked.clone());
    while acked.load(Ordering::SeqCst) < total / 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut other = TestApp::attach(a).connect(&alice).await;
    other
        .send(&ClientFrame::Edit {
            conv,
            client_id: "edit-1".into(),
            target: 2,
            body: "message 0, edited".into(),
        })
        .await;
    other
        .send(&ClientFrame::React {
            conv,
            client_id: "react-2".into(),
            target: 3,
            emoji: "👍".into(),
            on: true,
        })
        .await;
    let mut event_seqs = Vec::new();
    for id in ["edit-1", "react-2"] {
        match other.expect_ack(id).await {
            ServerFrame::Ack { seq, .. } => event_seqs.push(seq),
            f => unreachable!("{f:?}"),
        }
    }
    while acked.load(Ordering::SeqCst) < total / 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut dead = nodes.remove(1);
    dead.kill().await;

    let resent = tokio::time::timeout(Duration::from_secs(120), sender)
        .await
        .expect("sender done")
        .unwrap();
    let (seqs, _) = tokio::time::timeout(Duration::from_secs(120), receiver)
        .await
        .expect("receiver done")
        .unwrap();
    assert_eq!(seqs, (1..=entries as Seq).collect::<Vec<_>>());
    // The events are where their acks said, and what they say holds on the surviving node.
    let store = server::store::Store::connect(&db.url()).await.unwrap();
    let log = store.after(conv, 0, entries as u32 + 10).await.unwrap();
    assert_eq!(log.len(), entries, "each entry stored once");
    for (seq, kind) in event_seqs.iter().zip(["edit", "react"]) {
        match &log[*seq as usize - 1] {
            app::model::Entry::Event(e) => assert_eq!(e.change.kind(), kind),
            other => panic!("seq {seq} should be the {kind}: {other:?}"),
        }
    }
    let page = store.history(bob.user.id, conv, Some(4), 3).await.unwrap();
    assert_eq!(page.messages[0].body, "message 0, edited");
    assert_eq!(page.messages[1].reactions[0].count, 1);
    println!("node killed at {} acks: {total} messages, an edit and a reaction delivered once, in order, via the surviving node ({resent} re-sends)", total / 2);
    drop(nodes);
    db.drop_db().await;
}

/// Presence across nodes: seen online within a second; after the node is SIGKILLed (it cannot
/// say goodbye) seen offline within the TTL plus five seconds.
#[tokio::test]
async fn presence_crosses_nodes_and_a_killed_nodes_users_go_offline() {
    let ttl = 3.0;
    let (mut nodes, db) = cluster_with(2, &["--presence-ttl-secs", &ttl.to_string()]).await;
    let (app_a, app_b) = (
        TestApp::attach(nodes[0].addr),
        TestApp::attach(nodes[1].addr),
    );
    let alice = app_a.register("alice").await;
    let bob = app_b.register("bob").await;
    app_a.open_direct(&alice, "bob").await;
    let presence = |f: ServerFrame| match f {
        ServerFrame::Presence { user, online } => Some((user, online)),
        _ => None,
    };

    let mut a = app_a.connect(&alice).await;
    let started = std::time::Instant::now();
    let mut b = app_b.connect(&bob).await;
    let seen = tokio::time::timeout(Duration::from_secs(1), a.expect(presence))
        .await
        .expect("within 1 s");
    assert_eq!(seen, (bob.user.id, true));
    let online_after = started.elapsed();
    assert_eq!(
        b.expect(presence).await,
        (alice.user.id, true),
        "bob's initial state crosses nodes too"
    );

    let mut node_b = nodes.remove(1);
    node_b.kill().await;
    let killed = std::time::Instant::now();
    let seen = tokio::time::timeout(Duration::from_secs_f64(ttl + 5.0), a.expect(presence))
        .await
        .expect("within TTL + 5 s");
    assert_eq!(seen, (bob.user.id, false));
    println!("presence across nodes: online after {online_after:?}; offline {:?} after SIGKILL (TTL {ttl} s)", killed.elapsed());
    drop(nodes);
    db.drop_db().await;
}

#[tokio::test]
async fn logging_out_on_one_node_closes_the_sessions_sockets_on_another() {
    let (nodes, db) = cluster(2).await;
    let apps: Vec<TestApp> = nodes.iter().map(|n| TestApp::attach(n.addr)).collect();
    let alice = apps[0].register("alice").await;
    let mut elsewhere = apps[1].connect(&alice).await;
    let (status, _) = apps[0].post("/api/logout", Some(&alice.cookie), &[]).await;
    assert_eq!(status, 200);
    let deadline = tokio::time::Instant::now() + crate::helpers::WAIT;
    let code = loop {
        use futures::StreamExt;
        match tokio::time::timeout_at(deadline, elsewhere.socket.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame)))) => {
                break frame.map(|f| u16::from(f.code))
            }
            Ok(Some(Ok(_))) => continue,
            _ => break None,
        }
    };
    assert_eq!(
        code,
        Some(4004),
        "closed through the bus, on the other node"
    );
    drop(nodes);
    db.drop_db().await;
}
