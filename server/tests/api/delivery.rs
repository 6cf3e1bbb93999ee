//! Delivery guarantees: idempotent re-sends, catch-up by `sync`, gap-free seqs under concurrent
//! senders, slow consumers cut loose without slowing their room, silent connections closed.

use crate::helpers::{
    free_addr, spawn_app, spawn_app_with, traffic, Client, Node, TestApp, TRAFFIC,
};
use app::model::ConvId;
use app::protocol::{ClientFrame, ServerFrame};
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test]
async fn a_repeated_client_id_is_stored_and_fanned_out_once() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let conv = app.open_direct(&alice, "bob").await;
    let mut a = app.connect(&alice).await;
    let mut b = app.connect(&bob).await;

    a.send_message(conv.id, "same-id", "once").await;
    let first = a.expect_ack("same-id").await;
    // Re-sent, as a client does after a reconnect, from a second connection even.
    let mut a2 = app.connect(&alice).await;
    a2.send_message(conv.id, "same-id", "once").await;
    let second = a2.expect_ack("same-id").await;
    assert_eq!(first, second, "the second ack equals the first");

    assert_eq!(app.store().count_messages(conv.id).await.unwrap(), 1);
    let frames = b.drain(Duration::from_millis(500)).await;
    let messages = frames
        .iter()
        .filter(|f| matches!(f, ServerFrame::Message(_)))
        .count();
    assert_eq!(messages, 1, "{frames:?}");
}

#[tokio::test]
async fn an_offline_member_catches_up_on_500_messages_in_order() {
    let app = spawn_app_with(traffic).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let group = app.create_group(&alice, "Busy", "bob, carol").await;

    // Carol saw the first 20 (seqs 2–21, after the group's `created` event), then went offline.
    let mut a = app.connect(&alice).await;
    for i in 1..=20 {
        a.send_message(group.id, &format!("early-{i}"), "early")
            .await;
    }
    a.expect_ack("early-20").await;
    for i in 1..=500 {
        a.send_message(group.id, &format!("late-{i}"), &format!("late {i}"))
            .await;
    }
    a.expect_ack("late-500").await;

    let mut c = app.connect(&carol).await;
    c.send(&ClientFrame::Sync {
        cursors: BTreeMap::from([(group.id, 21)]),
    })
    .await;
    let mut seqs = Vec::new();
    loop {
        let Some(frame) = c.try_recv(std::time::Duration::from_secs(5)).await else {
            panic!("stalled after {} messages: {:?}", seqs.len(), seqs.last())
        };
        match frame {
            ServerFrame::Message(m) => {
                assert_eq!(m.body, format!("late {}", m.seq - 21));
                seqs.push(m.seq);
            }
            ServerFrame::Synced => break,
            _ => {}
        }
    }
    assert_eq!(seqs, (22..=521).collect::<Vec<_>>());
    // Bob never synced and gets nothing replayed; a sync from zero gives him everything.
    let mut b = app.connect(&bob).await;
    b.send(&ClientFrame::Sync {
        cursors: BTreeMap::from([(group.id, 0)]),
    })
    .await;
    let mut count = 0;
    loop {
        match b.recv().await {
            ServerFrame::Message(_) => count += 1,
            ServerFrame::Synced => break,
            _ => {}
        }
    }
    assert_eq!(count, 520);
}

#[tokio::test]
async fn syncing_a_foreign_conversation_is_refused() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    app.register("bob").await;
    let eve = app.register("eve").await;
    let conv = app.open_direct(&alice, "bob").await;
    let mut e = app.connect(&eve).await;
    e.send(&ClientFrame::Sync {
        cursors: BTreeMap::from([(conv.id, 0), (ConvId(31337), 0)]),
    })
    .await;
    let frames = e.drain(Duration::from_millis(500)).await;
    assert!(
        frames.iter().all(|f| !matches!(f, ServerFrame::Message(_))),
        "{frames:?}"
    );
    assert!(frames.iter().any(|f| matches!(f, ServerFrame::Synced)));
}

#[tokio::test]
async fn concurrent_senders_get_gap_free_unique_seqs() {
    let app = spawn_app_with(traffic).await;
    let owner = app.register("owner").await;
    let mut users = Vec::new();
    for i in 0..8 {
        users.push(app.register(&format!("sender{i}")).await);
    }
    let names: Vec<_> = users.iter().map(|u| u.user.username.clone()).collect();
    let group = app.create_group(&owner, "Crowd", &names.join(",")).await;

    let mut tasks = Vec::new();
    for user in &users {
        let mut client = app.connect(user).await;
        let conv = group.id;
        let name = user.user.username.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                client
                    .send_message(conv, &format!("{name}-{i}"), "hi")
                    .await;
            }
            let mut acks = Vec::new();
            while acks.len() < 50 {
                if let ServerFrame::Ack { seq, .. } = client.recv().await {
                    acks.push(seq);
                }
            }
            acks
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let acks = t.await.unwrap();
        assert!(
            acks.windows(2).all(|w| w[0] < w[1]),
            "one sender's messages keep their order"
        );
        all.extend(acks);
    }
    all.sort();
    assert_eq!(
        all,
        (2..=401).collect::<Vec<_>>(),
        "after the `created` event"
    );
    let metrics = &app.server.as_ref().unwrap().state.metrics;
    println!(
        "400 concurrent sends committed in {} transactions",
        metrics.commit_batches.get()
    );
}

#[tokio::test]
async fn a_client_that_never_reads_is_closed_while_the_room_keeps_receiving() {
    // The real binary in its own process, so its memory is measured alone. A small queue, and
    // batches small enough that one commit's acks and echoes fit in it.
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("slow.db").display());
    let node = Node::start(
        free_addr(),
        &db_url,
        &[
            &["--outbound-queue", "64", "--max-batch", "16"],
            &TRAFFIC[..],
        ]
        .concat(),
    )
    .await;
    let app = TestApp::attach(node.addr);
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let stuck = app.register("stuck").await;
    let group = app.create_group(&alice, "Flood", "bob, carol, stuck").await;

    let mut a = app.connect(&alice).await;
    let mut receivers = vec![app.connect(&bob).await, app.connect(&carol).await];
    let _never_reads: Client = app.connect(&stuck).await;
    let rss_before = node.rss_kib();

    // Enough bytes (~24 MB) to fill the kernel's socket buffers for the stuck client, after
    // which only its bounded queue is left to fill.
    let body = "x".repeat(4000);
    let total = 6000;
    let readers: Vec<_> = receivers
        .drain(..)
        .map(|mut r| {
            tokio::spawn(async move {
                let mut seqs = Vec::with_capacity(total);
                while seqs.len() < total {
                    if let ServerFrame::Message(m) = r.recv().await {
                        seqs.push(m.seq);
                    }
                }
                seqs
            })
        })
        .collect();
    for i in 0..total {
        a.send_message(group.id, &format!("f-{i}"), &body).await;
        // The sender reads its acks and echoes as it goes, or it would be the slow one.
        if i % 20 == 19 {
            a.expect_ack(&format!("f-{i}")).await;
        }
    }
    for r in readers {
        let seqs = r.await.unwrap();
        assert_eq!(
            seqs,
            (2..=total as i64 + 1).collect::<Vec<_>>(),
            "the others got everything (after the `created` event), in order"
        );
    }
    assert_eq!(
        node.metric("tidings_slow_consumers_total").await,
        1,
        "the stuck client was cut loose"
    );
    // The readers have finished and dropped their sockets; give the server a moment to notice.
    let mut open = node.metric("tidings_connections").await;
    for _ in 0..50 {
        if open == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        open = node.metric("tidings_connections").await;
    }
    assert_eq!(
        open, 1,
        "the stuck connection is gone (the readers finished; the sender's remains)"
    );
    let rss_after = node.rss_kib();
    println!("server RSS before {rss_before} KiB, after {total} x 4 KB messages to a stuck client: {rss_after} KiB");
    // Unbounded, the stuck client's queue alone would hold 24 MB.
    assert!(
        rss_after < rss_before + 16 * 1024,
        "memory stayed bounded: {rss_before} -> {rss_after} KiB"
    );
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let app = spawn_app_with(|c| {
        c.ping_interval_secs = 0.2;
        c.idle_timeout_secs = 1.0;
    })
    .await;
    let alice = app.register("alice").await;
    let hub = app.server.as_ref().unwrap().state.hub.clone();

    // A client that keeps reading answers the server's pings and stays connected.
    let mut lively = app.connect(&alice).await;
    let frames = lively.drain(Duration::from_millis(2500)).await;
    assert!(frames.is_empty(), "{frames:?}");
    lively.send(&ClientFrame::Ping).await;
    assert_eq!(lively.recv().await, ServerFrame::Pong);
    drop(lively);

    // One that never reads never answers: it is closed and its state freed.
    let _silent = app.connect(&alice).await;
    let mut waited = Duration::ZERO;
    while hub.counts().0 > 0 && waited < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
    }
    assert_eq!(hub.counts(), (0, 0), "the silent connection was closed");
}
