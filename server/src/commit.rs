//! The write path of a message: persist, then acknowledge, then publish.
//!
//! One task owns it. Sends from every connection queue up in a bounded channel; the task takes
//! whatever has piled up (up to `max_batch`) and stores it in ONE transaction (group commit), so
//! under load the database does one fsync for many messages. Only after the commit does each
//! sender get its `ack` and each conversation its `message` frames — in commit order, which is
//! seq order, so live delivery on this node never reorders a conversation.
//!
//! Owns no state of its own: the store assigns seqs, the bus (and through it the hub) delivers.

use crate::bus::Bus;
use crate::hub::Conn;
use crate::store::{Appended, NewMessage, Store};
use app::protocol::{ErrorCode, ServerFrame};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A send waiting for its commit, with the connection that gets the ack.
struct Pending {
    message: NewMessage,
    reply_to: Conn,
}

#[derive(Default, Debug)]
pub struct CommitStats {
    pub stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub batches: AtomicU64,
    pub failed_batches: AtomicU64,
}

#[derive(Clone)]
pub struct Committer {
    queue: mpsc::Sender<Pending>,
    pub stats: Arc<CommitStats>,
}

/// The committer has stopped (the server is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the server is shutting down")]
pub struct Stopped;

impl Committer {
    /// Starts the commit task. It ends when every `Committer` clone has been dropped.
    pub fn spawn(store: Store, bus: Bus, max_batch: usize) -> Committer {
        let max_batch = max_batch.max(1);
        let (queue, rx) = mpsc::channel(max_batch * 4);
        let stats = Arc::new(CommitStats::default());
        tokio::spawn(run(rx, store, bus, max_batch, stats.clone()));
        Committer { queue, stats }
    }

    /// Queues a validated message. Waits only when the queue is full, which slows down the
    /// connections that send, never the ones that receive.
    pub async fn submit(&self, message: NewMessage, reply_to: Conn) -> Result<(), Stopped> {
        self.queue
            .send(Pending { message, reply_to })
            .await
            .map_err(|_| Stopped)
    }
}

async fn run(
    mut rx: mpsc::Receiver<Pending>,
    store: Store,
    bus: Bus,
    max_batch: usize,
    stats: Arc<CommitStats>,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(max_batch);
    let mut messages: Vec<NewMessage> = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        messages.clear();
        messages.extend(batch.iter().map(|p| p.message.clone()));
        stats.batches.fetch_add(1, Ordering::Relaxed);
        match store.append(&messages).await {
            Ok(results) => {
                for (pending, result) in batch.drain(..).zip(results) {
                    if let Some(message) = acknowledge(&stats, pending, result) {
                        bus.publish(message.conv, &ServerFrame::Message(message));
                    }
                }
            }
            Err(e) => {
                // Nothing of this batch was stored. The senders' clients keep the messages in
                // their outboxes and re-send them with the same client_id.
                stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, count = batch.len(), "storing messages failed");
                for pending in batch.drain(..) {
                    pending.reply_to.push_frame(&ServerFrame::error(
                        ErrorCode::Internal,
                        "the message could not be stored; retry",
                        Some(pending.message.client_id),
                    ));
                }
            }
        }
    }
}

/// Answers the sender; returns the message if it is new and must be published.
fn acknowledge(
    stats: &CommitStats,
    pending: Pending,
    result: Appended,
) -> Option<app::model::Message> {
    let client_id = pending.message.client_id;
    let ack = |m: &app::model::Message| ServerFrame::Ack {
        client_id: m.client_id.clone(),
        conv: m.conv,
        id: m.id,
        seq: m.seq,
        at: m.at,
    };
    match result {
        Appended::Stored(message) => {
            stats.stored.fetch_add(1, Ordering::Relaxed);
            pending.reply_to.push_frame(&ack(&message));
            Some(message)
        }
        // Already stored and fanned out once: the sender only needs the original ack again.
        Appended::Duplicate(message) => {
            stats.duplicates.fetch_add(1, Ordering::Relaxed);
            pending.reply_to.push_frame(&ack(&message));
            None
        }
        Appended::NotMember => {
            pending.reply_to.push_frame(&ServerFrame::error(
                ErrorCode::NotMember,
                "you are not a member of this conversation",
                Some(client_id),
            ));
            None
        }
        Appended::UnknownConversation => {
            pending.reply_to.push_frame(&ServerFrame::error(
                ErrorCode::UnknownConversation,
                "no such conversation",
                Some(client_id),
            ));
            None
        }
    }
}
