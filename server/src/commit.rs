//! The write path of a log entry (a message, an edit, a deletion, a reaction): persist, then
//! hand over to fan-out.
//!
//! One task owns it. Sends from every connection queue up in a bounded channel; the task takes
//! whatever has piled up (up to `max_batch`) and stores it in ONE transaction (group commit), so
//! under load the database does one fsync for many messages. Only after the commit does the
//! batch go to the [`Fanout`] stage, in commit order, which is seq order, so live delivery on
//! this node never reorders a conversation. While fan-out serializes and queues frames on
//! other cores, this task is already committing the next batch.
//!
//! Under load the batches would still be small where commits are fast: at 2,000 sends/s a
//! SQLite commit with its fsync took well under a millisecond, so a batch held 1.35 messages on
//! average and the disk sync, paid per commit, was a quarter of the server's CPU. Hence the
//! *commit window* ([`Batching::delay`]): when the previous batch was taken only moments ago —
//! sends are streaming in — the task waits up to the window after a batch's first message for
//! more to join it. A lone send after a quiet spell commits at once, so an idle chat's latency
//! is untouched; a busy node trades up to one window of latency for far fewer syncs.
//!
//! Owns no state of its own: the store assigns seqs, the fan-out stage acks and publishes.

use crate::fanout::{Committed, Fanout, Outcome};
use crate::hub::Conn;
use crate::metrics::{Metrics, Query};
use crate::store::{Appended, NewEntry, Refusal, Store};
use app::protocol::{ErrorCode, ServerFrame};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How the committer forms batches.
#[derive(Clone, Copy, Debug)]
pub struct Batching {
    /// Most entries in one transaction.
    pub max_batch: usize,
    /// The commit window: how long a batch may wait for more entries while sends stream in
    /// (zero: commit whatever is there at once).
    pub delay: Duration,
}

impl Batching {
    /// Sends count as streaming in when the previous batch was taken less than this many
    /// windows ago; otherwise a batch commits without waiting.
    const BUSY_WINDOWS: u32 = 4;
}

/// A send waiting for its commit, with the connection that gets the ack.
struct Pending {
    message: NewEntry,
    reply_to: Conn,
}

#[derive(Clone)]
pub struct Committer {
    queue: mpsc::Sender<Pending>,
    /// True while a batch is being stored and handed over (set once per batch), for shutdown.
    /// What was stored is counted in [`Metrics`].
    committing: Arc<AtomicBool>,
}

/// The committer has stopped (the server is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the server is shutting down")]
pub struct Stopped;

impl Committer {
    /// Starts the commit task. It ends when every `Committer` clone has been dropped.
    pub fn spawn(
        store: Store,
        fanout: Fanout,
        batching: Batching,
        metrics: Arc<Metrics>,
    ) -> Committer {
        let batching = Batching {
            max_batch: batching.max_batch.max(1),
            ..batching
        };
        let (queue, rx) = mpsc::channel(batching.max_batch * 4);
        let committing = Arc::new(AtomicBool::new(false));
        tokio::spawn(run(
            rx,
            store,
            fanout,
            batching,
            committing.clone(),
            metrics,
        ));
        Committer { queue, committing }
    }

    /// True when nothing waits to be committed and no batch is under way (for shutdown).
    pub fn is_idle(&self) -> bool {
        self.queue.capacity() == self.queue.max_capacity()
            && !self.committing.load(Ordering::Acquire)
    }

    /// Queues a validated message. Waits only when the queue is full, which slows down the
    /// connections that send, never the ones that receive.
    pub async fn submit(&self, message: NewEntry, reply_to: Conn) -> Result<(), Stopped> {
        self.queue
            .send(Pending { message, reply_to })
            .await
            .map_err(|_| Stopped)
    }
}

async fn run(
    mut rx: mpsc::Receiver<Pending>,
    store: Store,
    fanout: Fanout,
    batching: Batching,
    committing: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
) {
    let Batching { max_batch, delay } = batching;
    let mut batch: Vec<Pending> = Vec::with_capacity(max_batch);
    // When the previous batch was taken; none at first, so the first send commits at once.
    let mut last_taken: Option<Instant> = None;
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        // Set before the window: the entries already taken are in flight.
        committing.store(true, Ordering::Release);
        let taken = Instant::now();
        let streaming = last_taken.is_some_and(|t| taken - t < delay * Batching::BUSY_WINDOWS);
        last_taken = Some(taken);
        if streaming && !delay.is_zero() {
            fill_until(&mut rx, &mut batch, max_batch, taken + delay).await;
        }
        let started = Instant::now();
        // The messages move into the store (its SQLite writer runs on another thread); the
        // senders and client ids stay here to answer them.
        let (messages, senders): (Vec<NewEntry>, Vec<(Conn, String)>) = batch
            .drain(..)
            .map(|p| {
                let client_id = p.message.client_id.clone();
                (p.message, (p.reply_to, client_id))
            })
            .unzip();
        metrics.commit_batches.inc();
        metrics.commit_batch_size.observe(messages.len() as f64);
        let appended = store.append(messages).await;
        metrics.query_took(Query::Append, started);
        match appended {
            Ok(results) => {
                let committed: Vec<Committed> = senders
                    .into_iter()
                    .zip(results)
                    .filter_map(|(sender, result)| settle(&metrics, sender, result))
                    .collect();
                fanout.hand_over(committed).await;
            }
            Err(e) => {
                // Nothing of this batch was stored. The senders' clients keep the messages in
                // their outboxes and re-send them with the same client_id.
                metrics.commit_failures.inc();
                tracing::error!(error = %e, count = senders.len(), "storing messages failed");
                for (reply_to, client_id) in senders {
                    metrics.error_sent(ErrorCode::Internal);
                    reply_to.push_frame(&ServerFrame::error(
                        ErrorCode::Internal,
                        "the message could not be stored; retry",
                        Some(client_id),
                    ));
                }
            }
        }
        metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        committing.store(false, Ordering::Release);
    }
}

/// Adds what arrives before `deadline` to `batch`, up to `max_batch` entries.
async fn fill_until(
    rx: &mut mpsc::Receiver<Pending>,
    batch: &mut Vec<Pending>,
    max_batch: usize,
    deadline: Instant,
) {
    let deadline = tokio::time::Instant::from_std(deadline);
    while batch.len() < max_batch {
        let room = max_batch - batch.len();
        match tokio::time::timeout_at(deadline, rx.recv_many(batch, room)).await {
            Ok(0) | Err(_) => return, // closed (shutting down: commit what we have) or time is up
            Ok(_) => {}
        }
    }
}

/// Counts the outcome; refusals are answered here (they have nothing to order), stored and
/// duplicate messages go on to fan-out.
fn settle(
    metrics: &Metrics,
    (reply_to, client_id): (Conn, String),
    result: Appended,
) -> Option<Committed> {
    let refuse = |code, message: &str| {
        metrics.error_sent(code);
        reply_to.push_frame(&ServerFrame::error(code, message, Some(client_id.clone())));
        None
    };
    match result {
        Appended::Stored(entry) => {
            metrics.messages_stored.inc();
            Some(Committed {
                sender: reply_to,
                what: Outcome::Fresh(entry),
            })
        }
        // Already stored and fanned out once: the sender only needs the original ack again.
        Appended::Duplicate(receipt) => {
            metrics.duplicate_sends.inc();
            Some(Committed {
                sender: reply_to,
                what: Outcome::Repeat(receipt),
            })
        }
        Appended::NotMember => refuse(
            ErrorCode::NotMember,
            "you are not a member of this conversation",
        ),
        Appended::UnknownConversation => {
            refuse(ErrorCode::UnknownConversation, "no such conversation")
        }
        Appended::Refused(Refusal::UnknownMessage) => refuse(
            ErrorCode::UnknownMessage,
            "there is no such message in this conversation",
        ),
        Appended::Refused(Refusal::MessageDeleted) => {
            refuse(ErrorCode::MessageDeleted, "that message has been deleted")
        }
        Appended::Refused(Refusal::NotAllowed) => refuse(
            ErrorCode::NotAllowed,
            "you may edit only your own messages, and delete only your own (a group's owner and \
             admins may delete any)",
        ),
        Appended::Refused(Refusal::TooManyReactions) => refuse(
            ErrorCode::TooManyReactions,
            "you already have the most reactions allowed on that message; take one back first",
        ),
        Appended::Refused(Refusal::UnknownAttachment) => refuse(
            ErrorCode::UnknownAttachment,
            "that attachment is not an unposted upload of yours (each upload is posted once, \
             and unposted uploads expire): upload the file again",
        ),
    }
}
