//! The store: everything Tidings keeps — users, sessions, conversations, members, messages — in
//! SQLite (the embedded default) or MySQL/MariaDB (for a cluster), chosen by the URL's scheme.
//! It is the source of truth; fan-out only ever carries copies of its rows.
//!
//! Owns the SQL and the seq rule (per conversation, gap-free, assigned inside the insert's
//! transaction). Knows nothing of sockets, HTTP or the hub. One implementation serves both
//! databases through sqlx's `Any` driver: the SQL is portable (`?` placeholders, no `RETURNING`,
//! integer millisecond times) and the few statements that differ are chosen by [`Dialect`].

use app::model::{
    ConvId, ConvKind, Conversation, GroupTitle, HistoryPage, Message, MessageId, Seq, UserId,
    UserRef, Username,
};
use chrono::{DateTime, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Row, Transaction};
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("that username is taken; pick another")]
    UsernameTaken,
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("could not apply database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "unsupported DATABASE_URL {0:?}: use sqlite://PATH or mysql://USER:PASSWORD@HOST/DATABASE"
    )]
    UnsupportedUrl(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A member's role in a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Owner,
    Member,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Member => "member",
        }
    }
}

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

/// Which SQL a statement must be written in, where the two databases differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    MySql,
}

impl Dialect {
    /// "Insert this row unless its key exists" (members, contacts): 0 rows affected if it did.
    fn insert_or_ignore(self, insert: &str) -> String {
        match self {
            Dialect::Sqlite => format!("{insert} ON CONFLICT DO NOTHING"),
            Dialect::MySql => insert.replacen("INSERT INTO", "INSERT IGNORE INTO", 1),
        }
    }
}

type Tx = Transaction<'static, Any>;

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
}

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Columns selected by every message query, in the order [`message_from_row`] reads them.
const MESSAGE_COLUMNS: &str = "m.conv_id, m.seq, m.id, m.client_id, m.body, m.created_at, \
                               u.id AS sender_id, u.username AS sender_name";

fn message_from_row(row: &AnyRow) -> Message {
    Message {
        conv: ConvId(row.get("conv_id")),
        seq: row.get("seq"),
        id: MessageId(row.get("id")),
        client_id: row.get("client_id"),
        body: row.get("body"),
        at: time(row.get("created_at")),
        sender: UserRef {
            id: UserId(row.get("sender_id")),
            username: row.get("sender_name"),
        },
    }
}

impl Store {
    /// Opens the database at `url` (`sqlite://PATH`, created if missing; or `mysql://…`, which
    /// must exist) and applies migrations.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            Dialect::MySql
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let pool = match dialect {
            Dialect::Sqlite => {
                let url = if url.contains("mode=") {
                    url.to_owned()
                } else {
                    format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
                };
                AnyPoolOptions::new()
                    .max_connections(8)
                    .min_connections(1)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the one writer; NORMAL sync is still
                            // crash-safe for the process (kill -9 loses nothing committed), only
                            // an OS crash may lose the last commits.
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await?
            }
            Dialect::MySql => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // READ COMMITTED: a send that waited on another node's lock then sees
                            // that node's committed row (e.g. the same client_id sent twice).
                            conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
        };
        match dialect {
            Dialect::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Dialect::MySql => sqlx::migrate!("./migrations/mysql").run(&pool).await?,
        }
        Ok(Store { pool, dialect })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Starts a write transaction. On SQLite it takes the write lock up front, so two writers
    /// queue on the busy timeout instead of failing when a read lock cannot be upgraded. On MySQL
    /// row locks (the conversation's, taken by the seq update) do the serializing.
    async fn write(&self) -> Result<Tx> {
        Ok(match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::MySql => self.pool.begin().await?,
        })
    }

    // ----- users and sessions -------------------------------------------------------------

    pub async fn create_user(&self, username: &Username, password_hash: &str) -> Result<UserRef> {
        let mut tx = self.write().await?;
        let res =
            sqlx::query("INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)")
                .bind(username.as_str())
                .bind(password_hash)
                .bind(now_ms())
                .execute(&mut *tx)
                .await;
        let done = match res {
            Ok(done) => done,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::UsernameTaken)
            }
            Err(e) => return Err(e.into()),
        };
        let id = inserted_id(self.dialect, &mut tx, &done).await?;
        tx.commit().await?;
        Ok(UserRef {
            id: UserId(id),
            username: username.as_str().to_owned(),
        })
    }

    /// The user and their password hash.
    pub async fn user_with_hash(&self, username: &str) -> Result<Option<(UserRef, String)>> {
        let row = sqlx::query("SELECT id, username, password_hash FROM users WHERE username = ?")
            .bind(username.trim().to_ascii_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| {
            (
                UserRef {
                    id: UserId(r.get("id")),
                    username: r.get("username"),
                },
                r.get("password_hash"),
            )
        }))
    }

    pub async fn user_by_name(&self, username: &Username) -> Result<Option<UserRef>> {
        Ok(self
            .user_with_hash(username.as_str())
            .await?
            .map(|(u, _)| u))
    }

    pub async fn create_session(
        &self,
        user: UserId,
        token_hash: &str,
        ttl: Duration,
    ) -> Result<()> {
        let now = now_ms();
        sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
            .bind(token_hash)
            .bind(user.0)
            .bind(now)
            .bind(now + ttl.as_millis() as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn session_user(&self, token_hash: &str) -> Result<Option<UserRef>> {
        let row = sqlx::query(
            "SELECT u.id, u.username FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = ? AND s.expires_at > ?",
        )
        .bind(token_hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| UserRef {
            id: UserId(r.get("id")),
            username: r.get("username"),
        }))
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ----- conversations and members -------------------------------------------------------

    /// Ids of every conversation `user` belongs to.
    pub async fn conversation_ids(&self, user: UserId) -> Result<Vec<ConvId>> {
        let rows = sqlx::query("SELECT conv_id FROM members WHERE user_id = ?")
            .bind(user.0)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| ConvId(r.get("conv_id"))).collect())
    }

    /// Everyone who shares at least one conversation with `user` (for presence).
    pub async fn co_members(&self, user: UserId) -> Result<Vec<UserId>> {
        let rows = sqlx::query(
            "SELECT DISTINCT other.user_id FROM members me \
             JOIN members other ON other.conv_id = me.conv_id \
             WHERE me.user_id = ? AND other.user_id <> ?",
        )
        .bind(user.0)
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| UserId(r.get("user_id"))).collect())
    }

    pub async fn role(&self, conv: ConvId, user: UserId) -> Result<Option<Role>> {
        let row = sqlx::query("SELECT role FROM members WHERE conv_id = ? AND user_id = ?")
            .bind(conv.0)
            .bind(user.0)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| {
            if r.get::<String, _>("role") == "owner" {
                Role::Owner
            } else {
                Role::Member
            }
        }))
    }

    pub async fn kind(&self, conv: ConvId) -> Result<Option<ConvKind>> {
        let row = sqlx::query("SELECT kind FROM conversations WHERE id = ?")
            .bind(conv.0)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|r| ConvKind::parse(r.get("kind"))))
    }

    pub async fn members(&self, conv: ConvId) -> Result<Vec<UserRef>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username FROM members m JOIN users u ON u.id = m.user_id \
             WHERE m.conv_id = ? ORDER BY u.username",
        )
        .bind(conv.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| UserRef {
                id: UserId(r.get("id")),
                username: r.get("username"),
            })
            .collect())
    }

    /// `viewer`'s conversations, newest activity first, with members, last message and unread count.
    pub async fn conversations_for(&self, viewer: UserId) -> Result<Vec<Conversation>> {
        self.load_conversations(viewer, None).await
    }

    /// One conversation as `viewer` sees it, if `viewer` is a member.
    pub async fn conversation_for(
        &self,
        viewer: UserId,
        conv: ConvId,
    ) -> Result<Option<Conversation>> {
        Ok(self.load_conversations(viewer, Some(conv)).await?.pop())
    }

    /// Three queries whatever the number of conversations: the list, their members, their last
    /// messages. `only` narrows it to one conversation (0 never matches a real id).
    async fn load_conversations(
        &self,
        viewer: UserId,
        only: Option<ConvId>,
    ) -> Result<Vec<Conversation>> {
        let only = only.map_or(0, |c| c.0);
        let list = sqlx::query(
            "SELECT c.id, c.kind, c.title, c.last_seq, c.updated_at, me.last_read_seq \
             FROM members me JOIN conversations c ON c.id = me.conv_id \
             WHERE me.user_id = ? AND (? = 0 OR c.id = ?) ORDER BY c.updated_at DESC, c.id DESC",
        )
        .bind(viewer.0)
        .bind(only)
        .bind(only)
        .fetch_all(&self.pool)
        .await?;
        if list.is_empty() {
            return Ok(Vec::new());
        }

        let mut members: HashMap<i64, Vec<UserRef>> = HashMap::new();
        let rows = sqlx::query(
            "SELECT m.conv_id, u.id, u.username FROM members me \
             JOIN members m ON m.conv_id = me.conv_id JOIN users u ON u.id = m.user_id \
             WHERE me.user_id = ? AND (? = 0 OR me.conv_id = ?) ORDER BY u.username",
        )
        .bind(viewer.0)
        .bind(only)
        .bind(only)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            members.entry(r.get("conv_id")).or_default().push(UserRef {
                id: UserId(r.get("id")),
                username: r.get("username"),
            });
        }

        let mut last: HashMap<i64, Message> = HashMap::new();
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM members me \
             JOIN conversations c ON c.id = me.conv_id \
             JOIN messages m ON m.conv_id = c.id AND m.seq = c.last_seq \
             JOIN users u ON u.id = m.sender_id \
             WHERE me.user_id = ? AND (? = 0 OR me.conv_id = ?)"
        ))
        .bind(viewer.0)
        .bind(only)
        .bind(only)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let m = message_from_row(r);
            last.insert(m.conv.0, m);
        }

        Ok(list
            .iter()
            .map(|r| {
                let id: i64 = r.get("id");
                let kind = ConvKind::parse(r.get("kind")).unwrap_or(ConvKind::Group);
                let members = members.remove(&id).unwrap_or_default();
                let title = match kind {
                    ConvKind::Group => r.get::<Option<String>, _>("title").unwrap_or_default(),
                    // A direct chat is named after the other person (or yourself, for a note-to-self).
                    ConvKind::Direct => members
                        .iter()
                        .find(|m| m.id != viewer)
                        .or(members.first())
                        .map(|m| m.username.clone())
                        .unwrap_or_default(),
                };
                let last_seq: i64 = r.get("last_seq");
                let last_read_seq: i64 = r.get("last_read_seq");
                Conversation {
                    id: ConvId(id),
                    kind,
                    title,
                    members,
                    last_seq,
                    last_read_seq,
                    unread: (last_seq - last_read_seq).max(0),
                    last_message: last.remove(&id),
                    updated_at: time(r.get("updated_at")),
                }
            })
            .collect())
    }

    /// The one direct conversation between `a` and `b`, created on first use (then `true`).
    pub async fn open_direct(&self, a: UserId, b: UserId) -> Result<(ConvId, bool)> {
        let key = format!("{}:{}", a.0.min(b.0), a.0.max(b.0));
        let mut tx = self.write().await?;
        let existing = sqlx::query("SELECT id FROM conversations WHERE direct_key = ?")
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = existing {
            return Ok((ConvId(row.get("id")), false));
        }
        let now = now_ms();
        let conv = sqlx::query(
            "INSERT INTO conversations (kind, title, direct_key, last_seq, created_at, updated_at) \
             VALUES ('direct', NULL, ?, 0, ?, ?)",
        )
        .bind(&key)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let conv = inserted_id(self.dialect, &mut tx, &conv).await?;
        let conv = ConvId(conv);
        let mut people = vec![a];
        if b != a {
            people.push(b);
        }
        for user in &people {
            insert_member(self.dialect, &mut tx, conv, *user, Role::Member, now).await?;
        }
        if a != b {
            for (x, y) in [(a, b), (b, a)] {
                sqlx::query(&self.dialect.insert_or_ignore(
                    "INSERT INTO contacts (user_id, contact_id, created_at) VALUES (?, ?, ?)",
                ))
                .bind(x.0)
                .bind(y.0)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok((conv, true))
    }

    /// A new group owned by `owner`, with `others` as members.
    pub async fn create_group(
        &self,
        owner: UserId,
        title: &GroupTitle,
        others: &[UserId],
    ) -> Result<ConvId> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let conv = sqlx::query(
            "INSERT INTO conversations (kind, title, direct_key, last_seq, created_at, updated_at) \
             VALUES ('group', ?, NULL, 0, ?, ?)",
        )
        .bind(title.as_str())
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let conv = inserted_id(self.dialect, &mut tx, &conv).await?;
        let conv = ConvId(conv);
        insert_member(self.dialect, &mut tx, conv, owner, Role::Owner, now).await?;
        for user in others.iter().filter(|u| **u != owner) {
            insert_member(self.dialect, &mut tx, conv, *user, Role::Member, now).await?;
        }
        tx.commit().await?;
        Ok(conv)
    }

    /// Adds `user`; returns false if they were already a member.
    pub async fn add_member(&self, conv: ConvId, user: UserId) -> Result<bool> {
        let mut tx = self.write().await?;
        let added =
            insert_member(self.dialect, &mut tx, conv, user, Role::Member, now_ms()).await?;
        tx.commit().await?;
        Ok(added)
    }

    /// Removes `user`; returns false if they were not a member. A group left without an owner
    /// hands ownership to its longest-standing member.
    pub async fn remove_member(&self, conv: ConvId, user: UserId) -> Result<bool> {
        let mut tx = self.write().await?;
        let removed = sqlx::query("DELETE FROM members WHERE conv_id = ? AND user_id = ?")
            .bind(conv.0)
            .bind(user.0)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        let owners: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM members WHERE conv_id = ? AND role = 'owner'")
                .bind(conv.0)
                .fetch_one(&mut *tx)
                .await?
                .get("n");
        if owners == 0 {
            sqlx::query(
                "UPDATE members SET role = 'owner' WHERE conv_id = ? AND user_id = \
                 (SELECT user_id FROM (SELECT user_id FROM members WHERE conv_id = ? \
                  ORDER BY joined_at, user_id LIMIT 1) AS first_member)",
            )
            .bind(conv.0)
            .bind(conv.0)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    pub async fn rename(&self, conv: ConvId, title: &GroupTitle) -> Result<()> {
        sqlx::query(
            "UPDATE conversations SET title = ?, updated_at = ? WHERE id = ? AND kind = 'group'",
        )
        .bind(title.as_str())
        .bind(now_ms())
        .bind(conv.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records that `user` has read `conv` up to `seq` (never moves backwards, never past the end).
    /// Returns the stored value.
    pub async fn mark_read(&self, conv: ConvId, user: UserId, seq: Seq) -> Result<Seq> {
        sqlx::query(
            "UPDATE members SET last_read_seq = \
             (SELECT CASE WHEN ? < last_seq THEN ? ELSE last_seq END FROM conversations WHERE id = ?) \
             WHERE conv_id = ? AND user_id = ? AND last_read_seq < ?",
        )
        .bind(seq)
        .bind(seq)
        .bind(conv.0)
        .bind(conv.0)
        .bind(user.0)
        .bind(seq)
        .execute(&self.pool)
        .await?;
        let row =
            sqlx::query("SELECT last_read_seq FROM members WHERE conv_id = ? AND user_id = ?")
                .bind(conv.0)
                .bind(user.0)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map_or(0, |r| r.get("last_read_seq")))
    }

    // ----- messages ----------------------------------------------------------------------

    /// Stores a batch of messages in ONE transaction (group commit) and says what became of each.
    /// Each stored message gets the conversation's next seq; a repeated (sender, client_id)
    /// returns the original instead of storing it twice.
    pub async fn append(&self, batch: &[NewMessage]) -> Result<Vec<Appended>> {
        // Another node's batch may deadlock with ours despite the lock order below (e.g. on
        // index locks); the database then rolls one back whole, and trying again is safe.
        let mut attempt = 0;
        loop {
            match self.append_once(batch).await {
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

    async fn append_once(&self, batch: &[NewMessage]) -> Result<Vec<Appended>> {
        let mut tx = self.write().await?;
        let now = now_ms();
        // SQLite: one writer at a time, so the next id is simply max + 1 (the messages table's
        // key is (conv_id, seq), which leaves no rowid alias to auto-increment). MySQL: many
        // nodes write at once, so the column is AUTO_INCREMENT and the database picks, and the
        // batch first locks its conversations in id order so that two nodes' batches queue
        // behind each other instead of deadlocking.
        let mut next_id = match self.dialect {
            Dialect::Sqlite => Some(
                sqlx::query("SELECT COALESCE(MAX(id), 0) AS max_id FROM messages")
                    .fetch_one(&mut *tx)
                    .await?
                    .get::<i64, _>("max_id"),
            ),
            Dialect::MySql => {
                let mut convs: Vec<i64> = batch.iter().map(|m| m.conv.0).collect();
                convs.sort_unstable();
                convs.dedup();
                let marks = vec!["?"; convs.len()].join(", ");
                let sql = format!(
                    "SELECT id FROM conversations WHERE id IN ({marks}) ORDER BY id FOR UPDATE"
                );
                let mut lock = sqlx::query(&sql);
                for conv in convs {
                    lock = lock.bind(conv);
                }
                lock.fetch_all(&mut *tx).await?;
                None
            }
        };
        let mut out = Vec::with_capacity(batch.len());
        for new in batch {
            out.push(append_one(&mut tx, new, now, &mut next_id).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Up to `limit` messages before `before` (or the newest), returned oldest first.
    pub async fn history(
        &self,
        conv: ConvId,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<HistoryPage> {
        let before = before.unwrap_or(i64::MAX);
        let mut rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id \
             WHERE m.conv_id = ? AND m.seq < ? ORDER BY m.seq DESC LIMIT ?"
        ))
        .bind(conv.0)
        .bind(before)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let mut messages: Vec<Message> = rows.iter().map(message_from_row).collect();
        messages.reverse();
        Ok(HistoryPage { messages, has_more })
    }

    /// Up to `limit` messages after `after`, oldest first: the replay behind `sync`.
    pub async fn after(&self, conv: ConvId, after: Seq, limit: u32) -> Result<Vec<Message>> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id \
             WHERE m.conv_id = ? AND m.seq > ? ORDER BY m.seq LIMIT ?"
        ))
        .bind(conv.0)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(message_from_row).collect())
    }

    /// Number of stored messages in `conv` (for tests and metrics).
    pub async fn count_messages(&self, conv: ConvId) -> Result<i64> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM messages WHERE conv_id = ?")
                .bind(conv.0)
                .fetch_one(&self.pool)
                .await?
                .get("n"),
        )
    }
}

/// The id the database gave the row just inserted by `done` on `tx` (an auto-increment key).
/// MySQL reports it with the result; SQLite's `Any` bridge does not, so ask the connection.
async fn inserted_id(
    dialect: Dialect,
    tx: &mut Tx,
    done: &sqlx::any::AnyQueryResult,
) -> Result<i64> {
    match dialect {
        Dialect::MySql => done.last_insert_id().ok_or_else(|| {
            StoreError::Db(sqlx::Error::Protocol(
                "MySQL returned no inserted id".into(),
            ))
        }),
        Dialect::Sqlite => Ok(sqlx::query("SELECT last_insert_rowid() AS id")
            .fetch_one(&mut **tx)
            .await?
            .get("id")),
    }
}

/// Inserts a membership; returns false if it already existed.
async fn insert_member(
    dialect: Dialect,
    tx: &mut Tx,
    conv: ConvId,
    user: UserId,
    role: Role,
    now: i64,
) -> Result<bool> {
    // New members start with everything so far marked read: they joined after it was said.
    let insert = dialect.insert_or_ignore(
        "INSERT INTO members (conv_id, user_id, role, last_read_seq, joined_at) \
         SELECT ?, ?, ?, last_seq, ? FROM conversations WHERE id = ?",
    );
    let done = sqlx::query(&insert)
        .bind(conv.0)
        .bind(user.0)
        .bind(role.as_str())
        .bind(now)
        .bind(conv.0)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

async fn append_one(
    tx: &mut Tx,
    new: &NewMessage,
    now: i64,
    next_id: &mut Option<i64>,
) -> Result<Appended> {
    let existing = sqlx::query(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id \
         WHERE m.sender_id = ? AND m.client_id = ?"
    ))
    .bind(new.sender.id.0)
    .bind(&new.client_id)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(row) = existing {
        return Ok(Appended::Duplicate(message_from_row(&row)));
    }
    let member = sqlx::query("SELECT 1 FROM members WHERE conv_id = ? AND user_id = ?")
        .bind(new.conv.0)
        .bind(new.sender.id.0)
        .fetch_optional(&mut **tx)
        .await?;
    if member.is_none() {
        let exists = sqlx::query("SELECT 1 FROM conversations WHERE id = ?")
            .bind(new.conv.0)
            .fetch_optional(&mut **tx)
            .await?;
        return Ok(if exists.is_some() {
            Appended::NotMember
        } else {
            Appended::UnknownConversation
        });
    }
    // The seq comes from the conversation row, bumped inside this transaction: gap-free because
    // the transaction holds the write lock until it commits or rolls back as a whole.
    sqlx::query("UPDATE conversations SET last_seq = last_seq + 1, updated_at = ? WHERE id = ?")
        .bind(now)
        .bind(new.conv.0)
        .execute(&mut **tx)
        .await?;
    let seq: i64 = sqlx::query("SELECT last_seq FROM conversations WHERE id = ?")
        .bind(new.conv.0)
        .fetch_one(&mut **tx)
        .await?
        .get("last_seq");
    // SQLite gets the id we counted; MySQL gets NULL, which AUTO_INCREMENT replaces.
    let counted = next_id.as_mut().map(|id| {
        *id += 1;
        *id
    });
    let done = sqlx::query(
        "INSERT INTO messages (conv_id, seq, id, sender_id, client_id, body, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(new.conv.0)
    .bind(seq)
    .bind(counted)
    .bind(new.sender.id.0)
    .bind(&new.client_id)
    .bind(&new.body)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let id = match counted {
        Some(id) => id,
        None => inserted_id(Dialect::MySql, tx, &done).await?,
    };
    // The sender has read their own message.
    sqlx::query("UPDATE members SET last_read_seq = ? WHERE conv_id = ? AND user_id = ?")
        .bind(seq)
        .bind(new.conv.0)
        .bind(new.sender.id.0)
        .execute(&mut **tx)
        .await?;
    Ok(Appended::Stored(Message {
        conv: new.conv,
        seq,
        id: MessageId(id),
        client_id: new.client_id.clone(),
        sender: new.sender.clone(),
        body: new.body.clone(),
        at: time(now),
    }))
}

impl Store {
    /// A trivial query, for health checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
