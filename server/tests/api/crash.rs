//! Crash safety with the real binary: the server is killed with SIGKILL (twice) while a sender
//! fires 1,000 messages at a group of three. Clients behave as the browser does: re-send what is
//! unacknowledged with the same client_id, and catch up from their cursors after reconnecting.
//! Afterwards the database holds each message exactly once with seqs 1..=1000, and every member
//! accepted each exactly once, in order.

use crate::helpers::{free_addr, Client, Node};
use app::model::{ConvId, Seq};
use app::protocol::{ClientFrame, ServerFrame};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TOTAL: usize = 1000;

/// Connects, retrying while the server is down.
async fn connect_retrying(addr: SocketAddr, cookie: &str) -> Client {
    loop {
        match Client::connect(addr, Some(cookie)).await {
            Ok(c) => return c,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A member that reads the group until it holds seqs 1..=TOTAL. Returns the seqs it accepted,
/// in the order it accepted them, and how many duplicate frames it dropped.
async fn receive_all(addr: SocketAddr, cookie: String, conv: ConvId) -> (Vec<Seq>, usize) {
    let mut accepted = Vec::with_capacity(TOTAL);
    let mut dropped = 0;
    let cursor = |a: &Vec<Seq>| a.last().copied().unwrap_or(0);
    while accepted.len() < TOTAL {
        let mut c = connect_retrying(addr, &cookie).await;
        let sync = ClientFrame::Sync {
            cursors: BTreeMap::from([(conv, cursor(&accepted))]),
        };
        if !c.try_send(&sync).await {
            continue; // the server died under us: reconnect
        }
        while accepted.len() < TOTAL {
            let Some(frame) = c.try_recv(Duration::from_secs(5)).await else {
                break;
            };
            if let ServerFrame::Message(m) = frame {
                let have = cursor(&accepted);
                if m.seq == have + 1 {
                    accepted.push(m.seq);
                } else if m.seq > have + 1 {
                    // A gap: ask for what is missing; the rest arrives in order.
                    let sync = ClientFrame::Sync {
                        cursors: BTreeMap::from([(conv, have)]),
                    };
                    if !c.try_send(&sync).await {
                        break;
                    }
                } else {
                    dropped += 1;
                }
            }
        }
    }
    (accepted, dropped)
}

#[tokio::test]
async fn nothing_acknowledged_is_lost_or_doubled_through_two_sigkills() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("crash.db").display());
    let mut node = Node::start(free_addr(), &db_url, &[]).await;
    let addr = node.addr;

    let app = crate::helpers::TestApp::attach(addr);
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let conv = app
        .create_group(&alice, "Crash test", "bob, carol")
        .await
        .id;

    let receivers = [bob.cookie.clone(), carol.cookie.clone()]
        .map(|cookie| tokio::spawn(receive_all(addr, cookie, conv)));

    // The sender: at most 100 in flight; after any reconnect, re-send everything unacknowledged.
    let acked = Arc::new(AtomicUsize::new(0));
    let sender = {
        let acked = acked.clone();
        let cookie = alice.cookie.clone();
        tokio::spawn(async move {
            let mut unacked: BTreeSet<usize> = (0..TOTAL).collect();
            let mut ever_sent = BTreeSet::new();
            let mut resent = 0;
            'reconnect: while !unacked.is_empty() {
                let mut c = connect_retrying(addr, &cookie).await;
                let mut in_flight = BTreeSet::new();
                'conn: loop {
                    for &i in unacked.iter() {
                        if in_flight.len() >= 100 {
                            break;
                        }
                        if in_flight.insert(i) {
                            if !ever_sent.insert(i) {
                                resent += 1;
                            }
                            let send = ClientFrame::Send {
                                conv,
                                client_id: format!("msg-{i}"),
                                body: format!("message {i}"),
                            };
                            if !c.try_send(&send).await {
                                continue 'reconnect;
                            }
                        }
                    }
                    if unacked.is_empty() {
                        break 'conn;
                    }
                    match c.try_recv(Duration::from_secs(5)).await {
                        Some(ServerFrame::Ack { client_id, .. }) => {
                            let i: usize = client_id.trim_start_matches("msg-").parse().unwrap();
                            if unacked.remove(&i) {
                                acked.fetch_add(1, Ordering::SeqCst);
                            }
                            in_flight.remove(&i);
                        }
                        Some(_) => {}
                        None => break 'conn,
                    }
                }
            }
            resent
        })
    };

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
            (1..=TOTAL as Seq).collect::<Vec<_>>(),
            "each member accepts every seq once, in order"
        );
        dropped_total += dropped;
    }

    let store = server::store::Store::connect(&db_url).await.unwrap();
    assert_eq!(
        store.count_messages(conv).await.unwrap(),
        TOTAL as i64,
        "no message stored twice"
    );
    let page = store.after(conv, 0, TOTAL as u32 + 10).await.unwrap();
    assert_eq!(
        page.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=TOTAL as Seq).collect::<Vec<_>>()
    );
    let bodies: BTreeSet<_> = page.iter().map(|m| m.body.clone()).collect();
    assert_eq!(bodies.len(), TOTAL, "every message exactly once");
    println!(
        "{TOTAL} messages, {kills} SIGKILLs: stored {} (seqs 1..={TOTAL}), {resent} re-sent after reconnects, \
         {dropped_total} duplicate frames dropped by receivers, losses 0",
        page.len()
    );
    drop(node);
}
