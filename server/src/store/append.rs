//! Appending a batch of messages in one transaction: the seq rule, idempotency and membership,
//! decided once per batch instead of once per message.
//!
//! The work splits in three:
//! 1. **Facts**, read under the write lock: each conversation's `last_seq`, which (conversation,
//!    sender) pairs are memberships, and which (sender, `client_id`) pairs are already stored.
//!    One lookup per distinct conversation / pair, not per message.
//! 2. **The plan**, pure and unit-tested: each message becomes a duplicate (of a stored message or
//!    of an earlier one in the batch), a refusal, or a new row with the conversation's next seq;
//!    plus one new `last_seq` per conversation and one read mark per (conversation, sender).
//! 3. **Writes**: the rows, the `last_seq`s and the read marks, then `COMMIT`.
//!
//! Two executors carry out the same plan: on MySQL/MariaDB the one below, which needs a handful
//! of set-based statements per batch (network round trips are what costs there); on SQLite the
//! writer thread in `sqlite_writer`, which drives its own connection with prepared statements
//! (the cost there was sqlx's hand-off to its worker thread for every statement).

use super::messages::{MessageRow, MESSAGE_COLUMNS};
use super::{now_ms, time, Dialect, Result, Store, StoreError};
use app::model::{ConvId, Message, MessageId, Seq, UserId, UserRef};
use sqlx::{FromRow, Row};
use std::collections::{HashMap, HashSet};

/// A message on its way in, already validated.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub sender: UserRef,
    pub conv: ConvId,
    pub client_id: String,
    pub body: String,
}

/// What became of one [`NewMessage`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Appended {
    /// Stored now, with a fresh seq.
    Stored(Message),
    /// The sender had already sent this `client_id`: here is the original.
    Duplicate(Message),
    NotMember,
    UnknownConversation,
}

/// What the database says about a batch, read inside its transaction.
#[derive(Debug, Default)]
pub struct Facts {
    /// `last_seq` of every conversation of the batch that exists.
    pub last_seq: HashMap<ConvId, Seq>,
    /// The (conversation, sender) pairs of the batch that are memberships.
    pub members: HashSet<(ConvId, UserId)>,
    /// Messages already stored under a (sender, `client_id`) of the batch.
    pub stored: HashMap<(UserId, String), Message>,
}

/// A row to insert.
#[derive(Debug)]
pub struct NewRow<'a> {
    pub message: &'a NewMessage,
    pub seq: Seq,
}

#[derive(Debug)]
enum Outcome {
    /// The `n`th new row (or a repeat of it within the batch: then not `first`).
    Row {
        row: usize,
        first: bool,
    },
    Stored(Message),
    NotMember,
    UnknownConversation,
}

/// The decisions for one batch; see the module header.
#[derive(Debug)]
pub struct Plan<'a> {
    outcomes: Vec<Outcome>,
    pub rows: Vec<NewRow<'a>>,
    /// The new `last_seq` of each conversation that gets rows.
    pub last_seq: Vec<(ConvId, Seq)>,
    /// (conversation, sender, seq): the sender has read their own newest message.
    pub read_marks: Vec<(ConvId, UserId, Seq)>,
}

/// The distinct keys a batch needs facts about, in first-seen order.
pub struct Keys<'a> {
    pub convs: Vec<ConvId>,
    pub memberships: Vec<(ConvId, UserId)>,
    pub client_ids: Vec<(UserId, &'a str)>,
}

impl<'a> Keys<'a> {
    pub fn of(batch: &'a [NewMessage]) -> Keys<'a> {
        let mut seen = (HashSet::new(), HashSet::new(), HashSet::new());
        let mut keys = Keys {
            convs: Vec::new(),
            memberships: Vec::new(),
            client_ids: Vec::new(),
        };
        for m in batch {
            if seen.0.insert(m.conv) {
                keys.convs.push(m.conv);
            }
            if seen.1.insert((m.conv, m.sender.id)) {
                keys.memberships.push((m.conv, m.sender.id));
            }
            if seen.2.insert((m.sender.id, m.client_id.as_str())) {
                keys.client_ids.push((m.sender.id, m.client_id.as_str()));
            }
        }
        keys
    }
}

impl<'a> Plan<'a> {
    /// Decides every message of `batch` from `facts`.
    pub fn new(batch: &'a [NewMessage], facts: &Facts) -> Plan<'a> {
        let mut last_seq = facts.last_seq.clone();
        let mut earlier: HashMap<(UserId, &str), usize> = HashMap::new();
        let mut read_marks: HashMap<(ConvId, UserId), Seq> = HashMap::new();
        let mut rows = Vec::new();
        let mut outcomes = Vec::with_capacity(batch.len());
        for m in batch {
            let key = (m.sender.id, m.client_id.clone());
            let outcome = if let Some(stored) = facts.stored.get(&key) {
                Outcome::Stored(stored.clone())
            } else if let Some(&row) = earlier.get(&(m.sender.id, m.client_id.as_str())) {
                Outcome::Row { row, first: false }
            } else if !facts.members.contains(&(m.conv, m.sender.id)) {
                if last_seq.contains_key(&m.conv) {
                    Outcome::NotMember
                } else {
                    Outcome::UnknownConversation
                }
            } else if let Some(seq) = last_seq.get_mut(&m.conv) {
                *seq += 1;
                read_marks.insert((m.conv, m.sender.id), *seq);
                earlier.insert((m.sender.id, m.client_id.as_str()), rows.len());
                rows.push(NewRow {
                    message: m,
                    seq: *seq,
                });
                Outcome::Row {
                    row: rows.len() - 1,
                    first: true,
                }
            } else {
                // A membership of a conversation that does not exist cannot happen (foreign
                // key), but if it did, refusing is the honest answer.
                Outcome::UnknownConversation
            };
            outcomes.push(outcome);
        }
        let mut changed: Vec<(ConvId, Seq)> = last_seq
            .into_iter()
            .filter(|(conv, seq)| facts.last_seq.get(conv) != Some(seq))
            .collect();
        changed.sort_unstable();
        let mut read_marks: Vec<_> = read_marks
            .into_iter()
            .map(|((conv, user), seq)| (conv, user, seq))
            .collect();
        read_marks.sort_unstable();
        Plan {
            outcomes,
            rows,
            last_seq: changed,
            read_marks,
        }
    }

    /// What became of each message, given the ids the database gave the new rows (in row order)
    /// and the time they were stored.
    pub fn finish(self, ids: &[MessageId], now: i64) -> Vec<Appended> {
        let built: Vec<Message> = self
            .rows
            .iter()
            .zip(ids)
            .map(|(row, id)| Message {
                conv: row.message.conv,
                seq: row.seq,
                id: *id,
                client_id: row.message.client_id.clone(),
                sender: row.message.sender.clone(),
                body: row.message.body.clone(),
                at: time(now),
            })
            .collect();
        self.outcomes
            .into_iter()
            .map(|outcome| match outcome {
                Outcome::Row { row, first: true } => Appended::Stored(built[row].clone()),
                Outcome::Row { row, first: false } => Appended::Duplicate(built[row].clone()),
                Outcome::Stored(message) => Appended::Duplicate(message),
                Outcome::NotMember => Appended::NotMember,
                Outcome::UnknownConversation => Appended::UnknownConversation,
            })
            .collect()
    }
}

impl Store {
    /// Stores a batch of messages in ONE transaction (group commit) and says what became of each.
    /// Each stored message gets the conversation's next seq; a repeated (sender, client_id)
    /// returns the original instead of storing it twice.
    pub async fn append(&self, batch: Vec<NewMessage>) -> Result<Vec<Appended>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(writer) = &self.writer {
            return writer.append(batch).await;
        }
        // Another node's batch may deadlock with ours despite the lock order below (e.g. on
        // index locks); the database then rolls one back whole, and trying again is safe.
        let mut attempt = 0;
        loop {
            match self.append_mysql(&batch).await {
                Err(StoreError::Db(sqlx::Error::Database(e)))
                    if e.code().as_deref() == Some("40001") && attempt < 5 =>
                {
                    attempt += 1;
                    tracing::debug!(attempt, "deadlock while storing messages; retrying");
                }
                other => return other,
            }
        }
    }

    /// The MySQL/MariaDB executor: seven statements per batch whatever its size.
    async fn append_mysql(&self, batch: &[NewMessage]) -> Result<Vec<Appended>> {
        debug_assert_eq!(self.dialect, Dialect::MySql);
        let keys = Keys::of(batch);
        let mut tx = self.write().await?;
        let now = now_ms();
        let mut facts = Facts::default();

        // 1. Lock the batch's conversations in id order (so two nodes' batches queue instead of
        //    deadlocking) and read their last seqs.
        let mut convs = keys.convs.clone();
        convs.sort_unstable();
        let sql = format!(
            "SELECT id, last_seq FROM conversations WHERE id IN ({}) ORDER BY id FOR UPDATE",
            repeat(convs.len(), "?", ", ")
        );
        let mut query = sqlx::query(&sql);
        for conv in &convs {
            query = query.bind(conv.0);
        }
        for row in query.fetch_all(&mut *tx).await? {
            facts
                .last_seq
                .insert(ConvId(row.try_get("id")?), row.try_get("last_seq")?);
        }

        // 2. Memberships of the senders.
        let sql = format!(
            "SELECT conv_id, user_id FROM members WHERE {}",
            repeat(
                keys.memberships.len(),
                "(conv_id = ? AND user_id = ?)",
                " OR "
            )
        );
        let mut query = sqlx::query(&sql);
        for (conv, user) in &keys.memberships {
            query = query.bind(conv.0).bind(user.0);
        }
        for row in query.fetch_all(&mut *tx).await? {
            facts.members.insert((
                ConvId(row.try_get("conv_id")?),
                UserId(row.try_get("user_id")?),
            ));
        }

        // 3. Client ids already stored (re-sends after a reconnect).
        let sql =
            format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id WHERE {}",
            repeat(keys.client_ids.len(), "(m.sender_id = ? AND m.client_id = ?)", " OR ")
        );
        let mut query = sqlx::query(&sql);
        for (sender, client_id) in &keys.client_ids {
            query = query.bind(sender.0).bind(*client_id);
        }
        for row in query.fetch_all(&mut *tx).await? {
            let message = Message::from(MessageRow::from_row(&row)?);
            facts
                .stored
                .insert((message.sender.id, message.client_id.clone()), message);
        }

        let plan = Plan::new(batch, &facts);
        let mut ids = Vec::with_capacity(plan.rows.len());
        if !plan.rows.is_empty() {
            // 4. The rows, in one statement; AUTO_INCREMENT picks the ids.
            let sql = format!(
                "INSERT INTO messages (conv_id, seq, id, sender_id, client_id, body, created_at) \
                 VALUES {}",
                repeat(plan.rows.len(), "(?, ?, NULL, ?, ?, ?, ?)", ", ")
            );
            let mut query = sqlx::query(&sql);
            for row in &plan.rows {
                let m = row.message;
                query = query
                    .bind(m.conv.0)
                    .bind(row.seq)
                    .bind(m.sender.id.0)
                    .bind(m.client_id.as_str())
                    .bind(m.body.as_str())
                    .bind(now);
            }
            query.execute(&mut *tx).await?;

            // 5. The ids it picked (consecutive is not promised under concurrent inserts).
            let sql = format!(
                "SELECT conv_id, seq, id FROM messages WHERE {}",
                repeat(
                    plan.last_seq.len(),
                    "(conv_id = ? AND seq > ? AND seq <= ?)",
                    " OR "
                )
            );
            let mut query = sqlx::query(&sql);
            for (conv, last) in &plan.last_seq {
                query = query.bind(conv.0).bind(facts.last_seq[conv]).bind(*last);
            }
            let mut by_seq = HashMap::new();
            for row in query.fetch_all(&mut *tx).await? {
                let key: (i64, i64) = (row.try_get("conv_id")?, row.try_get("seq")?);
                by_seq.insert(key, MessageId(row.try_get("id")?));
            }
            for row in &plan.rows {
                let id = by_seq.get(&(row.message.conv.0, row.seq)).ok_or_else(|| {
                    StoreError::Db(sqlx::Error::Protocol(
                        "an inserted message could not be read back".into(),
                    ))
                })?;
                ids.push(*id);
            }

            // 6. The conversations' new last seqs.
            let sql = format!(
                "UPDATE conversations SET last_seq = CASE id {} END, updated_at = ? \
                 WHERE id IN ({})",
                repeat(plan.last_seq.len(), "WHEN ? THEN ?", " "),
                repeat(plan.last_seq.len(), "?", ", ")
            );
            let mut query = sqlx::query(&sql);
            for (conv, seq) in &plan.last_seq {
                query = query.bind(conv.0).bind(*seq);
            }
            query = query.bind(now);
            for (conv, _) in &plan.last_seq {
                query = query.bind(conv.0);
            }
            query.execute(&mut *tx).await?;

            // 7. The senders have read their own messages.
            let sql = format!(
                "UPDATE members SET last_read_seq = CASE {} ELSE last_read_seq END WHERE {}",
                repeat(
                    plan.read_marks.len(),
                    "WHEN conv_id = ? AND user_id = ? THEN ?",
                    " "
                ),
                repeat(
                    plan.read_marks.len(),
                    "(conv_id = ? AND user_id = ?)",
                    " OR "
                )
            );
            let mut query = sqlx::query(&sql);
            for (conv, user, seq) in &plan.read_marks {
                query = query.bind(conv.0).bind(user.0).bind(*seq);
            }
            for (conv, user, _) in &plan.read_marks {
                query = query.bind(conv.0).bind(user.0);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(plan.finish(&ids, now))
    }
}

/// `n` copies of `item` joined by `separator`: the placeholders of a statement built per batch.
fn repeat(n: usize, item: &str, separator: &str) -> String {
    vec![item; n].join(separator)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(sender: i64, conv: i64, client_id: &str) -> NewMessage {
        NewMessage {
            sender: UserRef {
                id: UserId(sender),
                username: format!("u{sender}"),
            },
            conv: ConvId(conv),
            client_id: client_id.into(),
            body: format!("body of {client_id}"),
        }
    }

    #[test]
    fn seqs_follow_each_conversation_and_read_marks_the_senders_newest() {
        let batch = [
            msg(1, 10, "a"),
            msg(2, 10, "b"),
            msg(1, 20, "c"),
            msg(1, 10, "d"),
        ];
        let facts = Facts {
            last_seq: HashMap::from([(ConvId(10), 5), (ConvId(20), 0)]),
            members: HashSet::from([
                (ConvId(10), UserId(1)),
                (ConvId(10), UserId(2)),
                (ConvId(20), UserId(1)),
            ]),
            stored: HashMap::new(),
        };
        let plan = Plan::new(&batch, &facts);
        let seqs: Vec<_> = plan
            .rows
            .iter()
            .map(|r| (r.message.conv.0, r.seq))
            .collect();
        assert_eq!(seqs, [(10, 6), (10, 7), (20, 1), (10, 8)]);
        assert_eq!(plan.last_seq, [(ConvId(10), 8), (ConvId(20), 1)]);
        assert_eq!(
            plan.read_marks,
            [
                (ConvId(10), UserId(1), 8),
                (ConvId(10), UserId(2), 7),
                (ConvId(20), UserId(1), 1)
            ]
        );
        let ids: Vec<_> = (100..104).map(MessageId).collect();
        let out = plan.finish(&ids, 0);
        assert!(matches!(&out[3], Appended::Stored(m) if m.seq == 8 && m.id == MessageId(103)));
    }

    #[test]
    fn repeats_refusals_and_unknown_conversations_take_no_seq() {
        let stored = Message {
            conv: ConvId(10),
            seq: 3,
            id: MessageId(7),
            client_id: "old".into(),
            sender: UserRef {
                id: UserId(1),
                username: "u1".into(),
            },
            body: "earlier".into(),
            at: time(0),
        };
        let batch = [
            msg(1, 10, "old"), // stored before: its original comes back
            msg(1, 10, "new"),
            msg(1, 10, "new"), // repeated within the batch
            msg(3, 10, "x"),   // not a member
            msg(1, 99, "y"),   // no such conversation
        ];
        let facts = Facts {
            last_seq: HashMap::from([(ConvId(10), 3)]),
            members: HashSet::from([(ConvId(10), UserId(1))]),
            stored: HashMap::from([((UserId(1), "old".to_string()), stored.clone())]),
        };
        let plan = Plan::new(&batch, &facts);
        assert_eq!(plan.rows.len(), 1);
        assert_eq!(plan.last_seq, [(ConvId(10), 4)]);
        let out = plan.finish(&[MessageId(8)], 0);
        assert_eq!(out[0], Appended::Duplicate(stored));
        assert!(matches!(&out[1], Appended::Stored(m) if m.seq == 4));
        assert!(matches!(&out[2], Appended::Duplicate(m) if m.seq == 4 && m.id == MessageId(8)));
        assert_eq!(out[3], Appended::NotMember);
        assert_eq!(out[4], Appended::UnknownConversation);
    }
}
