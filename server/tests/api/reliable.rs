//! Clients that behave as the browser does when the network or a server fails: a sender that
//! re-sends everything unacknowledged (same client_id) after reconnecting, and a receiver that
//! keeps a cursor, syncs after every (re)connect, asks for gaps and drops what it already has.
//! Both rotate through the given nodes when a connection breaks.

use crate::helpers::Client;
use app::model::{ConvId, Seq};
use app::protocol::{ClientFrame, ServerFrame};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// A connection that stays silent this long is considered dead (as the browser does).
const SILENCE: Duration = Duration::from_secs(5);

/// Connects to the next node that answers, starting after the one used last.
async fn connect_retrying(addrs: &[SocketAddr], turn: &mut usize, cookie: &str) -> Client {
    loop {
        let addr = addrs[*turn % addrs.len()];
        *turn += 1;
        match Client::connect(addr, Some(cookie)).await {
            Ok(c) => return c,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Reads `conv` until holding seqs 1..=total. Returns the seqs in the order accepted and how
/// many duplicate frames were dropped.
pub async fn receive_all(
    addrs: Vec<SocketAddr>,
    cookie: String,
    conv: ConvId,
    total: usize,
) -> (Vec<Seq>, usize) {
    let mut accepted = Vec::with_capacity(total);
    let mut dropped = 0;
    let mut turn = 0;
    let cursor = |a: &Vec<Seq>| a.last().copied().unwrap_or(0);
    while accepted.len() < total {
        let mut c = connect_retrying(&addrs, &mut turn, &cookie).await;
        // Stay on the node that worked, unless it fails.
        turn -= 1;
        let sync = ClientFrame::Sync {
            cursors: BTreeMap::from([(conv, cursor(&accepted))]),
        };
        if !c.try_send(&sync).await {
            turn += 1;
            continue;
        }
        while accepted.len() < total {
            let Some(frame) = c.try_recv(SILENCE).await else {
                turn += 1;
                break;
            };
            // Messages and events are entries of one log with one seq sequence.
            let seq = match frame {
                ServerFrame::Message(m) => Some(m.seq),
                ServerFrame::Event(e) => Some(e.seq),
                _ => None,
            };
            if let Some(seq) = seq {
                let have = cursor(&accepted);
                if seq == have + 1 {
                    accepted.push(seq);
                } else if seq > have + 1 {
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

/// Sends `total` messages (`msg-0` …) to `conv`, at most 100 unacknowledged, re-sending the
/// unacknowledged ones after every reconnect. Counts acks in `acked`; returns how many sends
/// were repeats.
pub fn spawn_sender(
    addrs: Vec<SocketAddr>,
    cookie: String,
    conv: ConvId,
    total: usize,
    acked: Arc<AtomicUsize>,
) -> JoinHandle<usize> {
    tokio::spawn(async move {
        let mut unacked: BTreeSet<usize> = (0..total).collect();
        let mut ever_sent = BTreeSet::new();
        let mut resent = 0;
        let mut turn = 0;
        'reconnect: while !unacked.is_empty() {
            let mut c = connect_retrying(&addrs, &mut turn, &cookie).await;
            turn -= 1;
            let mut in_flight = BTreeSet::new();
            loop {
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
                            reply_to: None,
                            attachment: None,
                        };
                        if !c.try_send(&send).await {
                            turn += 1;
                            continue 'reconnect;
                        }
                    }
                }
                if unacked.is_empty() {
                    break 'reconnect;
                }
                match c.try_recv(SILENCE).await {
                    Some(ServerFrame::Ack { client_id, .. }) => {
                        let i: usize = client_id.trim_start_matches("msg-").parse().unwrap();
                        if unacked.remove(&i) {
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                        in_flight.remove(&i);
                    }
                    Some(_) => {}
                    None => {
                        turn += 1;
                        continue 'reconnect;
                    }
                }
            }
        }
        resent
    })
}
