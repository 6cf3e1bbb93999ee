//! The store: everything Tidings keeps — users, sessions, conversations, members, messages,
//! contacts — in SQLite (the embedded default) or MySQL/MariaDB (for a cluster), chosen by the
//! URL's scheme.
//! It is the source of truth; fan-out only ever carries copies of its rows.
//!
//! Owns the SQL and the seq rule (per conversation, gap-free, assigned inside the insert's
//! transaction). Knows nothing of sockets, HTTP or the hub. Reads and the occasional write go
//! through sqlx's `Any` driver on both databases: the SQL is portable (`?` placeholders, no
//! `RETURNING`, integer millisecond times) and the few statements that differ are chosen by
//! [`Dialect`]. The hot write — appending batches of messages — has two executors of one plan
//! (see [`append`]): sqlx on MySQL, and on SQLite a writer thread that drives its own connection.
//!
//! By concern: [`accounts`] (users, sessions), [`conversations`] (conversations, members, read
//! marks), [`contacts`] (contact requests, contacts, user search), [`messages`] (history and
//! replay), [`append`] (the batch plan and its MySQL executor), [`sqlite_writer`] (the SQLite
//! executor), [`search`] (full-text search of messages), [`admin`] (the operator's account
//! commands), [`schema`] (migrations and their state), [`attachments`] (uploads' metadata and who
//! may read them), [`blobs`] (their bytes: a folder beside a SQLite database, a table in MySQL)
//! and [`outbox`] (the integration event stream, written in the changes' own transactions).

mod accounts;
mod admin;
pub mod append;
mod attachments;
pub mod blobs;
mod bots;
mod contacts;
mod conversations;
mod messages;
pub mod outbox;
pub mod schema;
mod search;
mod sqlite_writer;
mod webhooks;

pub use admin::AccountRow;
pub use append::{Appended, NewEntry, Op, Receipt, Refusal};
pub use bots::TokenUser;
pub use contacts::{Removed, Requested};
pub use conversations::GroupRefusal;
pub use messages::LogRow;

use chrono::{DateTime, Utc};
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Executor, Row, Transaction};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("that username is taken; pick another")]
    UsernameTaken,
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("SQLite error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the SQLite writer thread has stopped (is the server shutting down?)")]
    WriterGone,
    #[error("could not apply database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "attachment storage in {0} failed: {1} (is the disk full, or the folder not writable?)"
    )]
    Blobs(String, std::io::Error),
    #[error(
        "unsupported DATABASE_URL {0:?}: use sqlite://PATH or mysql://USER:PASSWORD@HOST/DATABASE"
    )]
    UnsupportedUrl(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What a commit survives before it is acknowledged (SQLite; MySQL/MariaDB decide this on the
/// database server: `innodb_flush_log_at_trx_commit`, `sync_binlog`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// Every commit is synced to disk before it counts (`synchronous = FULL`): an acked message
    /// survives a power loss or an OS crash. Group commit keeps it to one sync per batch.
    #[default]
    Full,
    /// The write-ahead log is synced only at checkpoints (`synchronous = NORMAL`): an acked
    /// message survives the process being killed, but an OS crash may lose the last commits.
    Normal,
}

impl Durability {
    /// The value of SQLite's `synchronous` pragma for this setting.
    fn synchronous(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }

    /// What SQLite reports for `PRAGMA synchronous` (2 = FULL, 1 = NORMAL).
    fn from_pragma(value: i64) -> Option<Durability> {
        match value {
            2 | 3 => Some(Durability::Full),
            1 => Some(Durability::Normal),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Full => "full",
            Durability::Normal => "normal",
        }
    }
}

/// A member's role in a conversation: the parsed domain type, stored by its name.
pub use app::model::Role;

/// Which SQL a statement must be written in, where the two databases differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    MySql,
}

impl Dialect {
    /// "Insert this row unless its key exists" (members, contacts): 0 rows affected if it did.
    pub(crate) fn insert_or_ignore(self, insert: &str) -> String {
        match self {
            Dialect::Sqlite => format!("{insert} ON CONFLICT DO NOTHING"),
            Dialect::MySql => insert.replacen("INSERT INTO", "INSERT IGNORE INTO", 1),
        }
    }
}

pub(crate) type Tx = Transaction<'static, Any>;

/// The file of a SQLite URL (`sqlite://PATH` or `sqlite:PATH`, with or without `?options`).
pub(crate) fn sqlite_file(url: &str) -> &str {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    path.split('?').next().unwrap_or(path)
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite only: the thread that appends messages on its own connection.
    writer: Option<sqlite_writer::SqliteWriter>,
    /// Attachments' bytes: a folder beside a SQLite file, a table in MySQL.
    blobs: std::sync::Arc<dyn blobs::BlobStore>,
}

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub(crate) fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl Store {
    /// Opens the database at `url` (`sqlite://PATH`, created if missing; or `mysql://…`, which
    /// must exist) and applies migrations. Commits are fully durable (see [`Durability`]).
    pub async fn connect(url: &str) -> Result<Store> {
        Store::connect_with(url, Durability::Full).await
    }

    /// [`Store::connect`] with a chosen [`Durability`] (SQLite; ignored on MySQL).
    pub async fn connect_with(url: &str, durability: Durability) -> Result<Store> {
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
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the one writer. `synchronous` is the
                            // durability setting: FULL syncs every commit, NORMAL only at
                            // checkpoints (crash-safe for the process, not for the OS).
                            let pragmas = format!(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; \
                                 PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                                durability.synchronous()
                            );
                            conn.execute(pragmas.as_str()).await?;
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
        schema::migrator(dialect).run(&pool).await?;
        // Opened after the migrations, so the writer finds the schema (and WAL mode) in place.
        let writer = match dialect {
            Dialect::Sqlite => Some(sqlite_writer::SqliteWriter::open(url, durability)?),
            Dialect::MySql => None,
        };
        let blobs: std::sync::Arc<dyn blobs::BlobStore> = match dialect {
            Dialect::Sqlite => std::sync::Arc::new(blobs::FsBlobs::beside(sqlite_file(url))?),
            Dialect::MySql => std::sync::Arc::new(blobs::DbBlobs::new(pool.clone())),
        };
        Ok(Store {
            pool,
            dialect,
            writer,
            blobs,
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The durability the SQLite writer's connection actually runs with (read back from SQLite
    /// after setting it), or `None` on MySQL, where the database server decides.
    pub fn durability(&self) -> Option<Durability> {
        self.writer.as_ref().map(|w| w.durability)
    }

    /// Whether each commit waits for a disk sync: SQLite under `full`, and MySQL/MariaDB (whose
    /// default `innodb_flush_log_at_trx_commit = 1` syncs every commit). This is what makes a
    /// commit expensive enough that waiting a little to commit more at once pays.
    pub fn syncs_every_commit(&self) -> bool {
        self.durability() != Some(Durability::Normal)
    }

    /// Starts a write transaction. On SQLite it takes the write lock up front, so two writers
    /// queue on the busy timeout instead of failing when a read lock cannot be upgraded. On MySQL
    /// row locks (the conversation's, taken by the seq update) do the serializing.
    pub(crate) async fn write(&self) -> Result<Tx> {
        Ok(match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::MySql => self.pool.begin().await?,
        })
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

impl Store {
    /// A trivial query, for health checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
