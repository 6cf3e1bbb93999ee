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
//! The same thread keeps the search index (`messages_fts`) current, in bulk: see
//! [`index_pending`].
//!
//! Owns this connection and nothing else; the SQL is the same portable SQL as elsewhere.

use super::append::{Appended, Done, Facts, Keys, NewEntry, Plan, Receipt, Target, UploadRow};
use super::{now_ms, time, Durability, Result, Role, StoreError};
use app::model::{AttachmentId, ConvId, MessageId, UserRef};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// What the thread is asked to do, in the order asked.
enum Job {
    /// Append a batch, answering with what became of each entry.
    Append(Vec<NewEntry>, oneshot::Sender<Result<Done>>),
    /// Bring the search index up to date, answering once it is.
    Index(oneshot::Sender<Result<()>>),
}

/// Messages appended between two bulk updates of the search index. Each update writes one FTS5
/// segment, so this is the segment size: big enough that writing and merging segments costs
/// little per message, small enough that an update takes a millisecond or two of the writer's
/// time. Searches do not wait for it: they ask for an update first ([`SqliteWriter::index`]).
const INDEX_EVERY: usize = 2048;

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
        let path = super::sqlite_file(url);
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
        // Checkpoints run on a thread of their own (below), never inside an append: copying the
        // log back into the database (and, under `normal`, its fsync) took milliseconds in the
        // middle of a commit, and every send queued behind it waited that long for its ack.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // The schema's `CHECK (kind IN (…eleven kinds…))` made SQLite build and fill a temporary
        // b-tree on every insert into `messages` — about 6 % of the server's own instructions per
        // message (callgrind). Everything this connection writes comes from Rust enums
        // (`Op::kind`), so it skips CHECK constraints; every other connection still enforces them.
        conn.pragma_update(None, "ignore_check_constraints", "ON")?;
        conn.set_prepared_statement_cache_capacity(32);
        let wal_frames = Arc::new(AtomicI64::new(0));
        let checkpoints = spawn_checkpointer(path, wal_frames.clone())?;
        let (jobs, mut rx) = mpsc::channel::<Job>(16);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let mut conn = conn;
                let mut commits: u32 = 0;
                // Whatever a crash left unindexed is indexed before the first append; after
                // that, the thread counts what it appended since the last update.
                let mut unindexed = usize::MAX;
                while let Some(job) = rx.blocking_recv() {
                    match job {
                        Job::Append(batch, reply) => {
                            let done = append(&mut conn, &batch);
                            let stored = done.as_ref().map_or(0, |(appended, _)| {
                                appended
                                    .iter()
                                    .filter(|a| matches!(a, Appended::Stored(_)))
                                    .count()
                            });
                            // The ack first: the index update is not part of this batch.
                            let _ = reply.send(done);
                            unindexed = unindexed.saturating_add(stored);
                            commits = commits.wrapping_add(1);
                            // Checked after every batch, so the writer finishes a checkpoint
                            // right after the checkpointer's pass, while few frames are left.
                            if wal_frames.load(Ordering::Relaxed) > RESTART_FRAMES {
                                finish_checkpoint(&conn);
                                wal_frames.store(0, Ordering::Relaxed);
                            }
                            if commits.is_multiple_of(CHECKPOINT_EVERY) {
                                // Full means one is already due: nothing to add.
                                let _ = checkpoints.try_send(());
                            }
                        }
                        Job::Index(reply) => {
                            let _ = reply.send(index_pending(&mut conn).map(|_| ()));
                            unindexed = 0;
                            continue;
                        }
                    }
                    if unindexed >= INDEX_EVERY {
                        match index_pending(&mut conn) {
                            Ok(n) => tracing::trace!(messages = n, "search index updated"),
                            // The messages stay above the high-water mark: the next update
                            // (or the next search) indexes them.
                            Err(e) => tracing::warn!(error = %e, "search index update failed"),
                        }
                        unindexed = 0;
                    }
                }
            })
            .map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
        Ok(SqliteWriter { jobs, durability })
    }

    pub async fn append(&self, batch: Vec<NewEntry>) -> Result<Done> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Append(batch, reply))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Indexes every message appended so far for search; a search calls this first, so it finds
    /// everything acknowledged before it began.
    pub async fn index(&self) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Index(reply))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

/// Adds the messages above the index's high-water mark (`search_progress`, migration 0009) to
/// the search index in one transaction, in id order, and moves the mark to the newest message.
/// Deleted messages are skipped; edited ones go in as they read now. Returns how many went in.
fn index_pending(conn: &mut Connection) -> Result<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let upto: i64 = tx
        .prepare_cached("SELECT indexed_upto FROM search_progress WHERE id = 1")?
        .query_row([], |r| r.get(0))?;
    let newest: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM messages")?
        .query_row([], |r| r.get(0))?;
    if newest <= upto {
        return Ok(0);
    }
    let added = tx
        .prepare_cached(
            "INSERT INTO messages_fts (rowid, body) SELECT id, body FROM messages \
             WHERE id > ? AND id <= ? AND kind = 'message' AND deleted = 0 ORDER BY id",
        )?
        .execute([upto, newest])?;
    tx.prepare_cached("UPDATE search_progress SET indexed_upto = ? WHERE id = 1")?
        .execute([newest])?;
    tx.commit()?;
    Ok(added)
}

/// Appends between two checkpoints. A plain message dirties about six pages (the row, three
/// indexes, the conversation, the read mark), so this keeps the log near SQLite's own default of
/// 1,000 pages between checkpoints.
const CHECKPOINT_EVERY: u32 = 100;

/// The log's size, in frames (about 4 KiB each), past which the writer finishes a checkpoint
/// itself (see [`finish_checkpoint`]): about 16 MiB.
const RESTART_FRAMES: i64 = 4096;

/// Finishes, on the writer's own connection, what the checkpointer could not.
///
/// Why: SQLite starts the write-ahead log over from its beginning only when a write begins after
/// a checkpoint copied *every* frame back. The checkpointer runs beside the writer, so under
/// steady sends there were always frames appended during its run, and the log never restarted:
/// it grew by every commit (480 MB after a minute at 2,000 sends/s), and each commit wrote past
/// its end, where the kernel allocates and zeroes fresh blocks — 11 % of the server's CPU in
/// `ext4_block_write_begin` (perf). Here, between two batches, no frame can be added: the
/// checkpoint copies the few frames the checkpointer left (it did the bulk), and the next
/// commit writes over the log's start again, into pages the kernel already has.
///
/// It runs at the first batch boundary after the checkpointer reports a long log, so only the
/// frames of the batches appended during that pass are left to copy. Run at a fixed count of
/// commits instead, it had up to two passes' worth to copy and sync, and under `normal` those
/// 3–13 ms stalls of the writer were the end-to-end p99 (0.25 % of commits took over 3 ms).
fn finish_checkpoint(conn: &Connection) {
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    }) {
        Ok((log, copied)) => {
            tracing::debug!(log, copied, "write-ahead log checkpointed to restart")
        }
        Err(e) => {
            tracing::warn!(error = %e, "checkpoint on the writer failed; the next one retries")
        }
    }
}

/// The checkpointer: a thread with its own connection that copies the write-ahead log back into
/// the database whenever the writer says enough has been appended. `PASSIVE` never blocks the
/// writer (it copies what no reader still needs and leaves the rest for next time), so appends
/// go on while it works. It ends with the writer (the sending side is dropped).
/// It reports the log's size after each run in `wal_frames`.
fn spawn_checkpointer(
    path: &str,
    wal_frames: Arc<AtomicI64>,
) -> Result<std::sync::mpsc::SyncSender<()>> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let (due, rx) = std::sync::mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                });
                match done {
                    Ok((log, copied)) => {
                        wal_frames.store(log, Ordering::Relaxed);
                        tracing::trace!(log, copied, "checkpoint")
                    }
                    Err(e) => tracing::warn!(error = %e, "checkpoint failed; the next one retries"),
                }
            }
        })
        .map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
    Ok(due)
}

/// One batch, one transaction. `BEGIN IMMEDIATE` takes the write lock first, so the facts read
/// below cannot change before the commit.
fn append(conn: &mut Connection, batch: &[NewEntry]) -> Result<Done> {
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
            tx.prepare_cached("SELECT role FROM members WHERE conv_id = ? AND user_id = ?")?;
        for (conv, user) in &keys.memberships {
            let role: Option<String> = member
                .query_row([conv.0, user.0], |r| r.get(0))
                .optional()?;
            if let Some(role) = role {
                facts
                    .members
                    .insert((*conv, *user), Role::from_column(&role));
            }
        }
        let mut stored = tx.prepare_cached(
            "SELECT conv_id, seq, id, created_at FROM messages \
             WHERE sender_id = ? AND client_id = ?",
        )?;
        for (sender, client_id) in &keys.client_ids {
            let found = stored
                .query_row(params![sender.0, client_id], |r| {
                    Ok(Receipt {
                        conv: ConvId(r.get(0)?),
                        seq: r.get(1)?,
                        id: MessageId(r.get(2)?),
                        client_id: (*client_id).to_owned(),
                        at: time(r.get(3)?),
                    })
                })
                .optional()?;
            if let Some(receipt) = found {
                facts
                    .stored
                    .insert((*sender, (*client_id).to_owned()), receipt);
            }
        }
        // Only for edits, deletions, reactions and replies.
        if !keys.targets.is_empty() {
            let mut target = tx.prepare_cached(
                "SELECT m.sender_id, u.username, m.body, m.deleted, a.id \
                 FROM messages m JOIN users u ON u.id = m.sender_id \
                 LEFT JOIN attachments a ON a.conv_id = m.conv_id AND a.seq = m.seq \
                 WHERE m.conv_id = ? AND m.seq = ? AND m.kind = 'message'",
            )?;
            for (conv, seq) in &keys.targets {
                let found = target
                    .query_row(params![conv.0, seq], |r| {
                        Ok(Target {
                            sender: UserRef {
                                id: app::model::UserId(r.get(0)?),
                                username: r.get(1)?,
                            },
                            body: r.get(2)?,
                            deleted: r.get::<_, i64>(3)? != 0,
                            attachment: r
                                .get::<_, Option<String>>(4)?
                                .and_then(|id| AttachmentId::parse(id).ok()),
                        })
                    })
                    .optional()?;
                if let Some(found) = found {
                    facts.targets.insert((*conv, *seq), found);
                }
            }
        }
        // Only for messages with attachments: the uploads they post.
        if !keys.uploads.is_empty() {
            let mut upload = tx.prepare_cached(
                "SELECT id, uploader_id, conv_id, name, size, content_type, width, height \
                 FROM attachments WHERE id = ?",
            )?;
            for id in &keys.uploads {
                let found = upload
                    .query_row([id.as_str()], |r| {
                        Ok(UploadRow {
                            id: r.get(0)?,
                            uploader_id: r.get(1)?,
                            conv_id: r.get(2)?,
                            name: r.get(3)?,
                            size: r.get(4)?,
                            content_type: r.get(5)?,
                            width: r.get(6)?,
                            height: r.get(7)?,
                        })
                    })
                    .optional()?;
                if let Some((id, upload)) = found.and_then(UploadRow::into_fact) {
                    facts.uploads.insert(id, upload);
                }
            }
        }
        if !keys.reactors.is_empty() {
            let mut mine = tx.prepare_cached(
                "SELECT emoji FROM reactions WHERE conv_id = ? AND seq = ? AND user_id = ?",
            )?;
            for (conv, seq, user) in &keys.reactors {
                let emoji = mine
                    .query_map(params![conv.0, seq, user.0], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<_>>()?;
                facts.reactions.insert((*conv, *seq, *user), emoji);
            }
        }
    }
    let mut plan = Plan::new(batch, &facts);
    let mut ids = Vec::with_capacity(plan.rows.len());
    if !plan.rows.is_empty() {
        // One writer, so the next ids are simply counted from the largest (the table's key is
        // (conv_id, seq), which leaves no rowid alias to auto-increment).
        let mut next: i64 = tx
            .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM messages")?
            .query_row([], |r| r.get(0))?;
        let first_id = next + 1;
        // Plain messages leave the log's columns to their defaults: the hot path's statement.
        let mut insert = tx.prepare_cached(
            "INSERT INTO messages (conv_id, seq, id, sender_id, client_id, body, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )?;
        for row in &plan.rows {
            next += 1;
            let m = row.entry;
            if m.op.is_plain() {
                insert.execute(params![
                    m.conv.0,
                    row.seq,
                    next,
                    m.sender.id.0,
                    m.client_id,
                    m.op.stored_body(),
                    now
                ])?;
            } else {
                tx.prepare_cached(
                    "INSERT INTO messages (conv_id, seq, id, sender_id, client_id, body, \
                     created_at, kind, target_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )?
                .execute(params![
                    m.conv.0,
                    row.seq,
                    next,
                    m.sender.id.0,
                    m.client_id,
                    m.op.stored_body(),
                    now,
                    m.op.kind(),
                    m.op.target(),
                ])?;
            }
            ids.push(MessageId(next));
        }
        for mention in &plan.mentions {
            let mut params: Vec<&dyn rusqlite::ToSql> = vec![
                &mention.conv.0,
                &mention.seq,
                &mention.conv.0,
                &mention.sender.0,
            ];
            params.extend(mention.names.iter().map(|n| n as &dyn rusqlite::ToSql));
            tx.prepare_cached(&mention.insert_sql())?
                .execute(params.as_slice())?;
        }
        // The stream events of these rows, in the same transaction (one statement).
        super::outbox::record_appended(&tx, first_id)?;
        if !plan.only_plain() {
            apply_effects(&tx, &plan, now)?;
        }
        let mut last = tx
            .prepare_cached("UPDATE conversations SET last_seq = ?, updated_at = ? WHERE id = ?")?;
        for (conv, seq) in &plan.last_seq {
            if plan.active.binary_search(conv).is_ok() {
                last.execute(params![seq, now, conv.0])?;
            } else {
                // Only events: the conversation's place in the list does not move.
                tx.prepare_cached("UPDATE conversations SET last_seq = ? WHERE id = ?")?
                    .execute(params![seq, conv.0])?;
            }
        }
        let mut read = tx.prepare_cached(
            "UPDATE members SET last_read_seq = ? WHERE conv_id = ? AND user_id = ?",
        )?;
        for (conv, user, seq) in &plan.read_marks {
            read.execute(params![seq, conv.0, user.0])?;
        }
    }
    tx.commit()?;
    let purged = std::mem::take(&mut plan.purged);
    Ok((plan.finish(&ids, now), purged))
}

/// Edits, reactions and deletions, in that order (the plan refused whatever an earlier deletion
/// in the batch made impossible, so a deletion coming last leaves the right state).
fn apply_effects(tx: &rusqlite::Transaction<'_>, plan: &Plan<'_>, now: i64) -> Result<()> {
    for (conv, seq, body) in &plan.edits {
        tx.prepare_cached(
            "UPDATE messages SET body = ?, edited_at = ? WHERE conv_id = ? AND seq = ?",
        )?
        .execute(params![body, now, conv.0, seq])?;
    }
    for r in &plan.reactions {
        if r.on {
            tx.prepare_cached(
                "INSERT INTO reactions (conv_id, seq, user_id, emoji, created_at) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )?
            .execute(params![r.conv.0, r.target, r.user.0, r.emoji, now])?;
        } else {
            tx.prepare_cached(
                "DELETE FROM reactions WHERE conv_id = ? AND seq = ? AND user_id = ? AND emoji = ?",
            )?
            .execute(params![r.conv.0, r.target, r.user.0, r.emoji])?;
        }
    }
    for (conv, seq, id) in &plan.posts {
        tx.prepare_cached("UPDATE attachments SET conv_id = ?, seq = ? WHERE id = ?")?
            .execute(params![conv.0, seq, id.as_str()])?;
    }
    for (conv, seq) in &plan.deletes {
        tx.prepare_cached("DELETE FROM reactions WHERE conv_id = ? AND seq = ?")?
            .execute(params![conv.0, seq])?;
        tx.prepare_cached("DELETE FROM attachments WHERE conv_id = ? AND seq = ?")?
            .execute(params![conv.0, seq])?;
        tx.prepare_cached("DELETE FROM mentions WHERE conv_id = ? AND seq = ?")?
            .execute(params![conv.0, seq])?;
        tx.prepare_cached(
            "UPDATE messages SET body = '', deleted = 1 WHERE conv_id = ? AND seq = ?",
        )?
        .execute(params![conv.0, seq])?;
    }
    Ok(())
}
