//! The fan-out stage: what happens to a message after its commit — the sender's `ack` and the
//! `message` frame for everyone else — done beside the committer instead of inside it.
//!
//! Why a stage of its own: the committer's job is to keep the database busy with the next batch.
//! Serializing frames and queueing them to hundreds of connections is CPU work that can run on
//! another core meanwhile. Work is split into shards by conversation (one task per core), so
//! different conversations are delivered in parallel while each conversation's frames still
//! leave in commit order — which is seq order — and a sender's ack never overtakes an earlier
//! message of the same conversation on its connection.
//!
//! Owns no state: the bus (and through it the hub) delivers, the committer decides what.

use crate::bus::Bus;
use crate::hub::{Conn, Skip};
use crate::store::Receipt;
use app::model::{ConvId, Entry};
use app::protocol::ServerFrame;
use tokio::sync::mpsc;

/// One committed log entry (a message or an event) and the connection that sent it.
pub struct Committed {
    pub sender: Conn,
    pub what: Outcome,
}

pub enum Outcome {
    /// Stored now: ack the sender, publish to everyone else.
    Fresh(Entry),
    /// A re-sent `client_id`: the sender gets its ack again, nobody gets a second copy.
    Repeat(Receipt),
}

impl Committed {
    fn conv(&self) -> ConvId {
        match &self.what {
            Outcome::Fresh(entry) => entry.conv(),
            Outcome::Repeat(receipt) => receipt.conv,
        }
    }
}

/// Batches a shard may have waiting before the committer waits for it (backpressure).
const SHARD_QUEUE: usize = 64;

#[derive(Clone)]
pub struct Fanout {
    shards: Vec<mpsc::Sender<Vec<Committed>>>,
}

impl Fanout {
    /// Starts `shards` fan-out tasks (at least one). They end when every `Fanout` is dropped.
    pub fn spawn(bus: Bus, shards: usize) -> Fanout {
        let shards = (0..shards.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(SHARD_QUEUE);
                tokio::spawn(run(rx, bus.clone()));
                tx
            })
            .collect();
        Fanout { shards }
    }

    /// Hands a committed batch over, in commit order. Waits only while a shard is full.
    pub async fn hand_over(&self, batch: impl IntoIterator<Item = Committed>) {
        let mut split: Vec<Vec<Committed>> = self.shards.iter().map(|_| Vec::new()).collect();
        for item in batch {
            let shard = item.conv().0.unsigned_abs() as usize % self.shards.len();
            split[shard].push(item);
        }
        for (shard, items) in self.shards.iter().zip(split) {
            if !items.is_empty() {
                // Only fails when the server is stopping; then nobody is listening anyway.
                let _ = shard.send(items).await;
            }
        }
    }
}

async fn run(mut rx: mpsc::Receiver<Vec<Committed>>, bus: Bus) {
    while let Some(items) = rx.recv().await {
        for item in items {
            deliver(&bus, item);
        }
    }
}

fn deliver(bus: &Bus, item: Committed) {
    // The ack carries everything the sending connection lacks (it has the body, or the change it
    // asked for): it is that connection's copy of the entry, so the published frame skips it.
    match item.what {
        Outcome::Fresh(entry) => {
            item.sender.push_frame(&ServerFrame::Ack {
                client_id: entry.client_id().to_owned(),
                conv: entry.conv(),
                id: entry.id(),
                seq: entry.seq(),
                at: entry.at(),
            });
            let conv = entry.conv();
            bus.publish_skipping(conv, &ServerFrame::from(entry), Skip::Conn(item.sender.id));
        }
        Outcome::Repeat(r) => item.sender.push_frame(&ServerFrame::Ack {
            client_id: r.client_id,
            conv: r.conv,
            id: r.id,
            seq: r.seq,
            at: r.at,
        }),
    }
}
