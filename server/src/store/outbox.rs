//! The transactional outbox: the durable event stream for integrations (issue #11).
//!
//! Every change a consumer hears of leaves one small `outbox` row in the SAME transaction as the
//! change: a log entry only by its `(conv_id, seq)`, an account change by its user and kind. The
//! hot path therefore serializes nothing: one set-based INSERT per committed batch
//! ([`record_appended`] on SQLite's writer thread, [`record_appended_mysql`] on MySQL), and the
//! JSON of [`StreamEvent`]s is built here, when the events are read, by joining the log.
//!
//! An event's place in the stream is its `pos`: gap-free, increasing in commit order. On SQLite
//! the one writer gives each row `pos = id = MAX(id) + 1` as it inserts it. On MySQL
//! AUTO_INCREMENT ids are handed out at insert, not at commit, so a row with a lower id may
//! become visible after a higher one; there the rows are inserted without `pos` and
//! [`Store::sequence_outbox`] (run by the relay) numbers the committed ones under
//! `outbox_state`'s row lock, so a reader paging by `pos` can never skip a late commit.
//!
//! Owns the `outbox` and `outbox_state` tables; knows nothing of Redis (see `relay`).

use super::messages::{LogRow, LOG_COLUMNS, LOG_JOINS};
use super::{append::NewRow, time, Dialect, Result, Store, Tx};
use app::events::{AccountChange, EventPage, Payload, StreamEvent, EVENTS_VERSION};
use app::model::{ConvId, Entry, Seq, UserId, UserRef};
use sqlx::{FromRow, Row};
use std::collections::{BTreeMap, HashMap};

/// Conversations resolved per statement when events are read.
const CONV_CHUNK: usize = 100;

/// SQLite writer thread: the outbox rows of the batch just inserted into `messages`. The batch's
/// rows are exactly those with `id >= first_id` (the writer counts ids up from the largest under
/// the write lock), and they get consecutive outbox ids and positions in the same order.
///
/// Two statements, not one `INSERT … SELECT` that also reads `MAX(id)` of `outbox`: a statement
/// that inserts into the table it reads makes SQLite stage the rows in a temporary b-tree first,
/// and the derived table was materialized in another — two temporary tables built and freed per
/// batch, ~34,000 instructions per commit under callgrind, a seventh of the server's total.
pub(crate) fn record_appended(
    tx: &rusqlite::Transaction<'_>,
    first_id: i64,
) -> rusqlite::Result<()> {
    let base: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM outbox")?
        .query_row([], |r| r.get(0))?;
    tx.prepare_cached(
        "INSERT INTO outbox (id, pos, conv_id, seq, created_at) \
         SELECT ?2 + m.id - ?1 + 1, ?2 + m.id - ?1 + 1, m.conv_id, m.seq, m.created_at \
         FROM messages m WHERE m.id >= ?1 ORDER BY m.id",
    )?
    .execute([first_id, base])?;
    Ok(())
}

/// MySQL executor: the outbox rows of a batch's new log entries, in one multi-row INSERT.
pub(crate) async fn record_appended_mysql(
    tx: &mut Tx,
    rows: &[NewRow<'_>],
    now: i64,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO outbox (conv_id, seq, created_at) VALUES {}",
        vec!["(?, ?, ?)"; rows.len()].join(", ")
    );
    let mut query = sqlx::query(&sql);
    for row in rows {
        query = query.bind(row.entry.conv.0).bind(row.seq).bind(now);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// One log entry appended outside the committer (a group event), inside its transaction.
pub(crate) async fn record_entry(
    dialect: Dialect,
    tx: &mut Tx,
    conv: ConvId,
    seq: Seq,
    now: i64,
) -> Result<()> {
    insert_one(dialect, tx, "entry", Some(conv), Some(seq), None, now).await
}

/// An account change, inside the transaction that makes it.
pub(crate) async fn record_account(
    dialect: Dialect,
    tx: &mut Tx,
    user: UserId,
    change: AccountChange,
    now: i64,
) -> Result<()> {
    insert_one(dialect, tx, change.kind(), None, None, Some(user), now).await
}

async fn insert_one(
    dialect: Dialect,
    tx: &mut Tx,
    kind: &str,
    conv: Option<ConvId>,
    seq: Option<Seq>,
    user: Option<UserId>,
    now: i64,
) -> Result<()> {
    let sql = match dialect {
        // Under the write lock (BEGIN IMMEDIATE): the next id is the largest plus one, and
        // the position is the id (one writer: commit order).
        Dialect::Sqlite => {
            "INSERT INTO outbox (id, pos, kind, conv_id, seq, user_id, created_at) \
             SELECT b.n, b.n, ?, ?, ?, ?, ? FROM (SELECT COALESCE(MAX(id), 0) + 1 AS n FROM outbox) b"
        }
        Dialect::MySql => {
            "INSERT INTO outbox (kind, conv_id, seq, user_id, created_at) VALUES (?, ?, ?, ?, ?)"
        }
    };
    sqlx::query(sql)
        .bind(kind)
        .bind(conv.map(|c| c.0))
        .bind(seq)
        .bind(user.map(|u| u.0))
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// One outbox row as read back.
#[derive(Debug, sqlx::FromRow)]
struct OutboxRow {
    pos: i64,
    kind: String,
    conv_id: Option<i64>,
    seq: Option<i64>,
    user_id: Option<i64>,
    created_at: i64,
}

/// An account as an account event shows it.
#[derive(Debug, sqlx::FromRow)]
struct AccountRef {
    id: i64,
    username: String,
    bot: i64,
}

impl Store {
    /// MySQL: gives the committed rows without a position the next positions, in id order, up
    /// to `limit` of them; returns how many. Serialized by `outbox_state`'s row lock, so two
    /// relays running at once (a lock that expired under a stalled one) still number each row
    /// once. SQLite numbers rows as it inserts them: nothing to do.
    pub async fn sequence_outbox(&self, limit: u32) -> Result<usize> {
        if self.dialect == Dialect::Sqlite {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;
        let last: i64 = sqlx::query("SELECT last_pos FROM outbox_state WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *tx)
            .await?
            .try_get("last_pos")?;
        let ids: Vec<i64> =
            sqlx::query("SELECT id FROM outbox WHERE pos IS NULL ORDER BY id LIMIT ?")
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get("id"))
                .collect::<Result<_, _>>()?;
        if ids.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "UPDATE outbox SET pos = CASE id {} END WHERE id IN ({})",
            vec!["WHEN ? THEN ?"; ids.len()].join(" "),
            vec!["?"; ids.len()].join(", ")
        );
        let mut query = sqlx::query(&sql);
        for (i, id) in ids.iter().enumerate() {
            query = query.bind(*id).bind(last + 1 + i as i64);
        }
        for id in &ids {
            query = query.bind(*id);
        }
        query.execute(&mut *tx).await?;
        sqlx::query("UPDATE outbox_state SET last_pos = ? WHERE id = 1")
            .bind(last + ids.len() as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ids.len())
    }

    /// The position up to which events have been appended to the Redis Stream.
    pub async fn relayed_pos(&self) -> Result<i64> {
        Ok(
            sqlx::query("SELECT relayed_pos FROM outbox_state WHERE id = 1")
                .fetch_one(&self.pool)
                .await?
                .try_get("relayed_pos")?,
        )
    }

    /// Records that every event up to `pos` is in the Redis Stream (or, `back`, that the
    /// stream lost them and they must be appended again).
    pub async fn set_relayed_pos(&self, pos: i64, back: bool) -> Result<()> {
        let sql = if back {
            "UPDATE outbox_state SET relayed_pos = ? WHERE id = 1"
        } else {
            "UPDATE outbox_state SET relayed_pos = ? WHERE id = 1 AND relayed_pos < ?"
        };
        let mut query = sqlx::query(sql).bind(pos);
        if !back {
            query = query.bind(pos);
        }
        query.execute(&self.pool).await?;
        Ok(())
    }

    /// How many events the outbox holds, numbered or not (on MySQL a committed row waits for
    /// the relay to give it a position).
    pub async fn outbox_len(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM outbox")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// The highest position given so far (0 when the stream is empty).
    pub async fn last_event_pos(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COALESCE(MAX(pos), 0) AS n FROM outbox")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// The events at positions `after + 1 ..= after + limit`, oldest first. With `member`, only
    /// those of conversations that user is a member of now (a bot's view; account events are
    /// left out); without, all of them (the relay's and an admin's view). `next` is where the
    /// next page starts: past this window, or at the newest event if the window reaches it.
    pub async fn events_after(
        &self,
        after: i64,
        limit: u32,
        member: Option<UserId>,
    ) -> Result<EventPage> {
        let after = after.max(0);
        // The newest position first: every position up to it is committed and visible (they
        // are gap-free and become visible in order), so the window below cannot miss a row
        // that commits while it is read.
        let newest = self.last_event_pos().await?;
        let upto = after.saturating_add(i64::from(limit.max(1))).min(newest);
        let rows = match member {
            None => {
                sqlx::query(
                    "SELECT pos, kind, conv_id, seq, user_id, created_at FROM outbox \
                     WHERE pos > ? AND pos <= ? ORDER BY pos",
                )
                .bind(after)
                .bind(upto)
                .fetch_all(&self.pool)
                .await?
            }
            Some(user) => {
                sqlx::query(
                    "SELECT pos, kind, conv_id, seq, user_id, created_at FROM outbox \
                     WHERE pos > ? AND pos <= ? \
                     AND conv_id IN (SELECT conv_id FROM members WHERE user_id = ?) ORDER BY pos",
                )
                .bind(after)
                .bind(upto)
                .bind(user.0)
                .fetch_all(&self.pool)
                .await?
            }
        };
        let rows = rows
            .iter()
            .map(OutboxRow::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next = upto.max(after);
        let events = self.resolve(rows).await?;
        Ok(EventPage { events, next })
    }

    /// Builds the events of outbox rows: log entries joined from `messages`, accounts from
    /// `users`. A row whose entry is gone (its conversation deleted) yields nothing.
    async fn resolve(&self, rows: Vec<OutboxRow>) -> Result<Vec<StreamEvent>> {
        // Per conversation, the range of seqs to read (one key range each).
        let mut ranges: BTreeMap<i64, (Seq, Seq)> = BTreeMap::new();
        let mut users: Vec<i64> = Vec::new();
        for r in &rows {
            if let (Some(conv), Some(seq)) = (r.conv_id, r.seq) {
                let range = ranges.entry(conv).or_insert((seq, seq));
                range.0 = range.0.min(seq);
                range.1 = range.1.max(seq);
            } else if let Some(user) = r.user_id {
                users.push(user);
            }
        }
        let mut entries: HashMap<(i64, Seq), Entry> = HashMap::new();
        let ranges: Vec<_> = ranges.into_iter().collect();
        for chunk in ranges.chunks(CONV_CHUNK) {
            let sql = format!(
                "SELECT {LOG_COLUMNS} FROM messages m {LOG_JOINS} WHERE {}",
                vec!["(m.conv_id = ? AND m.seq >= ? AND m.seq <= ?)"; chunk.len()].join(" OR ")
            );
            let mut query = sqlx::query(&sql);
            for (conv, (first, last)) in chunk {
                query = query.bind(*conv).bind(*first).bind(*last);
            }
            for row in query.fetch_all(&self.pool).await? {
                let entry = Entry::from(LogRow::from_row(&row)?);
                entries.insert((entry.conv().0, entry.seq()), entry);
            }
        }
        let mut accounts: HashMap<i64, AccountRef> = HashMap::new();
        users.sort_unstable();
        users.dedup();
        for chunk in users.chunks(CONV_CHUNK) {
            let sql = format!(
                "SELECT id, username, bot FROM users WHERE id IN ({})",
                vec!["?"; chunk.len()].join(", ")
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&self.pool).await? {
                let account = AccountRef::from_row(&row)?;
                accounts.insert(account.id, account);
            }
        }
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let payload = match (r.conv_id, r.seq, r.user_id) {
                    (Some(conv), Some(seq), _) => match entries.get(&(conv, seq))?.clone() {
                        Entry::Message(message) => Payload::Message { message },
                        Entry::Event(event) => Payload::Event { event },
                    },
                    (_, _, Some(user)) => {
                        let account = accounts.get(&user)?;
                        Payload::Account {
                            user: UserRef {
                                id: UserId(account.id),
                                username: account.username.clone(),
                            },
                            change: AccountChange::of_kind(&r.kind)?,
                            bot: account.bot != 0,
                        }
                    }
                    _ => return None,
                };
                Some(StreamEvent {
                    version: EVENTS_VERSION,
                    id: r.pos,
                    at: time(r.created_at),
                    payload,
                })
            })
            .collect())
    }
}
