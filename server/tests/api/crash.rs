//! Crash safety with the real binary: the server is killed with SIGKILL (twice) while a sender
//! fires 1,000 messages at a group of three. Clients behave as the browser does: re-send what is
//! unacknowledged with the same client_id, and catch up from their cursors after reconnecting.
//! Afterwards the database holds each message exactly once with seqs 2..=1001 (after the
//! group's `created` event), and every member accepted each exactly once, in order.

use crate::helpers::{free_addr, Node, TRAFFIC};
use crate::reliable::{receive_all, spawn_sender};
use app::model::Seq;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TOTAL: usize = 1000;

#[tokio::test]
async fn nothing_acknowledged_is_lost_or_doubled_through_two_sigkills() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("crash.db").display());
    let mut node = Node::start(free_addr(), &db_url, &TRAFFIC).await;
    let addr = node.addr;

    let app = crate::helpers::TestApp::attach(addr);
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let conv = app
        .create_group(&alice, "Crash test", "bob, carol")
        .await
        .id;

    // The log holds the group's `created` event (seq 1), then the messages.
    let entries = TOTAL + 1;
    let receivers = [bob.cookie.clone(), carol.cookie.clone()]
        .map(|cookie| tokio::spawn(receive_all(vec![addr], cookie, conv, entries)));

    // The sender: re-sends everything unacknowledged after any reconnect.
    let acked = Arc::new(AtomicUsize::new(0));
    let sender = spawn_sender(vec![addr], alice.cookie.clone(), conv, TOTAL, acked.clone());

    // The chaos: SIGKILL the server after roughly 30% and 65% of the acks.
    let mut kills = 0;
    for threshold in [TOTAL * 3 / 10, TOTAL * 65 / 100] {
        while acked.load(Ordering::SeqCst) < threshold {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        node.kill_and_restart().await;
        kills += 1;
    }

    let resent = tokio::time::timeout(Duration::from_secs(120), sender)
        .await
        .expect("sender finished")
        .unwrap();
    let mut dropped_total = 0;
    for r in receivers {
        let (seqs, dropped) = tokio::time::timeout(Duration::from_secs(120), r)
            .await
            .expect("receiver finished")
            .unwrap();
        assert_eq!(
            seqs,
            (1..=entries as Seq).collect::<Vec<_>>(),
            "each member accepts every seq once, in order"
        );
        dropped_total += dropped;
    }

    let store = server::store::Store::connect(&db_url).await.unwrap();
    assert_eq!(
        store.count_messages(conv).await.unwrap(),
        entries as i64,
        "no message stored twice"
    );
    let page = store.after(conv, 1, TOTAL as u32 + 10).await.unwrap();
    assert_eq!(
        page.iter().map(app::model::Entry::seq).collect::<Vec<_>>(),
        (2..=entries as Seq).collect::<Vec<_>>()
    );
    let bodies: BTreeSet<_> = page
        .iter()
        .map(|e| match e {
            app::model::Entry::Message(m) => m.body.clone(),
            other => panic!("only messages were sent: {other:?}"),
        })
        .collect();
    assert_eq!(bodies.len(), TOTAL, "every message exactly once");
    println!(
        "{TOTAL} messages, {kills} SIGKILLs: stored {} (seqs 2..={entries}), {resent} re-sent after reconnects, \
         {dropped_total} duplicate frames dropped by receivers, losses 0",
        page.len()
    );
    drop(node);
}
