//! The schema's migrations: which ones this binary carries (per dialect), and, for
//! `tidings check`, whether a database has them all — asked without creating or changing
//! anything (a missing SQLite file is reported, not created).

use super::{Dialect, Result, StoreError};
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Row};

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL: Migrator = sqlx::migrate!("./migrations/mysql");

/// The migrations of `dialect`'s schema.
pub fn migrator(dialect: Dialect) -> &'static Migrator {
    match dialect {
        Dialect::Sqlite => &SQLITE,
        Dialect::MySql => &MYSQL,
    }
}

impl Dialect {
    /// The dialect a `DATABASE_URL` speaks.
    pub fn of_url(url: &str) -> Result<Dialect> {
        if url.starts_with("sqlite:") {
            Ok(Dialect::Sqlite)
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            Ok(Dialect::MySql)
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
        }
    }
}

/// The file behind a `sqlite://PATH?options` (or `sqlite:PATH`) URL.
pub fn sqlite_path(url: &str) -> &str {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    path.split('?').next().unwrap_or(path)
}

/// How a database's schema compares with this binary's migrations.
#[derive(Debug, PartialEq, Eq)]
pub enum SchemaState {
    /// Every migration applied: the newest version.
    Current(i64),
    /// These versions (with their descriptions) are not applied yet.
    Behind(Vec<(i64, String)>),
    /// The database was migrated by a newer `tidings`: versions this binary does not know.
    Ahead(Vec<i64>),
}

/// Opens `url` without creating it (SQLite: the file must exist) and compares its applied
/// migrations with ours.
pub async fn schema_state(url: &str) -> Result<SchemaState> {
    sqlx::any::install_default_drivers();
    let dialect = Dialect::of_url(url)?;
    let url = match dialect {
        Dialect::Sqlite => {
            let path = sqlite_path(url);
            if !std::path::Path::new(path).is_file() {
                return Err(StoreError::Db(sqlx::Error::Configuration(
                    format!("there is no SQLite database at {path} (`tidings migrate` creates it)")
                        .into(),
                )));
            }
            format!("sqlite://{path}?mode=ro")
        }
        Dialect::MySql => url.to_owned(),
    };
    let pool: AnyPool = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect(&url)
        .await?;
    let applied: Vec<i64> = match sqlx::query(
        "SELECT version FROM _sqlx_migrations WHERE success = 1 ORDER BY version",
    )
    .fetch_all(&pool)
    .await
    {
        Ok(rows) => rows.iter().map(|r| r.get::<i64, _>("version")).collect(),
        // No bookkeeping table: nothing was ever applied.
        Err(sqlx::Error::Database(_)) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    pool.close().await;
    let ours = migrator(dialect);
    let ahead: Vec<i64> = applied
        .iter()
        .copied()
        .filter(|v| !ours.iter().any(|m| m.version == *v))
        .collect();
    if !ahead.is_empty() {
        return Ok(SchemaState::Ahead(ahead));
    }
    let behind: Vec<(i64, String)> = ours
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
        .map(|m| (m.version, m.description.to_string()))
        .collect();
    if behind.is_empty() {
        Ok(SchemaState::Current(applied.last().copied().unwrap_or(0)))
    } else {
        Ok(SchemaState::Behind(behind))
    }
}
