//! The SQLite executor of the append plan: one thread that owns a connection of its own and
//! appends every batch of messages on it.
//!
//! Why not sqlx here: sqlx runs each SQLite statement on a worker thread and hands every
//! statement and every row across a channel, so a transaction of ten small statements is twenty
//! thread hand-offs — at chat rates that, not SQLite, was most of the commit's cost. This thread
//! receives a whole batch at once, runs its statements back to back with prepared statements
//! cached on the connection, and answers once: one hand-off per batch. SQLite allows one writer at
//! a time anyway; the other writes (accounts, groups) still go through sqlx and simply queue on
//! the database's write lock (`busy_timeout`), as two sqlx connections always did.
//!
//! Owns this connection and nothing else; the SQL is the same portable SQL as elsewhere.

use super::append::{Appended, Facts, Keys, NewMessage, Plan};
use super::{now_ms, time, Durability, Result, StoreError};
use app::model::{ConvId, Message, MessageId, UserRef};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

type Job = (Vec<NewMessage>, oneshot::Sender<Result<Vec<Appended>>>);

/// Handle on the writer thread; the thread ends when the last handle is dropped.
#[derive(Clone)]
pub struct SqliteWriter {
    jobs: mpsc::Sender<Job>,
    /// What `PRAGMA synchronous` says on this connection: the durability acks really have.
    pub durability: Durability,
}

impl SqliteWriter {
    /// Opens a connection to the database of `url` (`sqlite://PATH` or `sqlite:PATH`, with or
    /// without `?options`) and starts the thread.
    pub fn open(url: &str, durability: Durability) -> Result<SqliteWriter> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() || path.contains(":memory:") {
            return Err(StoreError::UnsupportedUrl(format!(
                "{url} (an in-memory SQLite database cannot be shared with the writer; use a file)"
            )));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // The same settings as the pool's connections (see `Store::connect`).
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "synchronous", durability.synchronous())?;
        let synchronous: i64 = conn.pragma_query_value(None, "synchronous", |row| row.get(0))?;
        let durability = Durability::from_pragma(synchronous).ok_or_else(|| {
            StoreError::Db(sqlx::Error::Protocol(format!(
                "SQLite reports synchronous = {synchronous}; expected FULL or NORMAL"
            )))
        })?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.set_prepared_statement_cache_capacity(32);
        let (jobs, mut rx) = mpsc::channel::<Job>(16);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let mut conn = conn;
                while let Some((batch, reply)) = rx.blocking_recv() {
                    let _ = reply.send(append(&mut conn, &batch));
                }
            })
            .map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
        Ok(SqliteWriter { jobs, durability })
    }

    pub async fn append(&self, batch: Vec<NewMessage>) -> Result<Vec<Appended>> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send((batch, reply))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

/// One batch, one transaction. `BEGIN IMMEDIATE` takes the write lock first, so the facts read
/// below cannot change before the commit.
fn append(conn: &mut Connection, batch: &[NewMessage]) -> Result<Vec<Appended>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = now_ms();
    let keys = Keys::of(batch);
    let mut facts = Facts::default();
    {
        let mut conv = tx.prepare_cached("SELECT last_seq FROM conversations WHERE id = ?")?;
        for id in &keys.convs {
            if let Some(seq) = conv.query_row([id.0], |r| r.get(0)).optional()? {
                facts.last_seq.insert(*id, seq);
            }
        }
        let mut member =
            tx.prepare_cached("SELECT 1 FROM members WHERE conv_id = ? AND user_id = ?")?;
        for (conv, user) in &keys.memberships {
            if member.exists([conv.0, user.0])? {
                facts.members.insert((*conv, *user));
            }
        }
        let mut stored = tx.prepare_cached(
            "SELECT m.conv_id, m.seq, m.id, m.body, m.created_at, u.username \
             FROM messages m JOIN users u ON u.id = m.sender_id \
             WHERE m.sender_id = ? AND m.client_id = ?",
        )?;
        for (sender, client_id) in &keys.client_ids {
            let found = stored
                .query_row(params![sender.0, client_id], |r| {
                    Ok(Message {
                        conv: ConvId(r.get(0)?),
                        seq: r.get(1)?,
                        id: MessageId(r.get(2)?),
                        client_id: (*client_id).to_owned(),
                        body: r.get(3)?,
                        at: time(r.get(4)?),
                        sender: UserRef {
                            id: *sender,
                            username: r.get(5)?,
                        },
                    })
                })
                .optional()?;
            if let Some(message) = found {
                facts
                    .stored
                    .insert((*sender, (*client_id).to_owned()), message);
            }
        }
    }
    let plan = Plan::new(batch, &facts);
    let mut ids = Vec::with_capacity(plan.rows.len());
    if !plan.rows.is_empty() {
        // One writer, so the next ids are simply counted from the largest (the table's key is
        // (conv_id, seq), which leaves no rowid alias to auto-increment).
        let mut next: i64 = tx
            .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM messages")?
            .query_row([], |r| r.get(0))?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO messages (conv_id, seq, id, sender_id, client_id, body, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )?;
        for row in &plan.rows {
            next += 1;
            let m = row.message;
            insert.execute(params![
                m.conv.0,
                row.seq,
                next,
                m.sender.id.0,
                m.client_id,
                m.body,
                now
            ])?;
            ids.push(MessageId(next));
        }
        let mut last = tx
            .prepare_cached("UPDATE conversations SET last_seq = ?, updated_at = ? WHERE id = ?")?;
        for (conv, seq) in &plan.last_seq {
            last.execute(params![seq, now, conv.0])?;
        }
        let mut read = tx.prepare_cached(
            "UPDATE members SET last_read_seq = ? WHERE conv_id = ? AND user_id = ?",
        )?;
        for (conv, user, seq) in &plan.read_marks {
            read.execute(params![seq, conv.0, user.0])?;
        }
    }
    tx.commit()?;
    Ok(plan.finish(&ids, now))
}
