//! Where attachments' bytes live: the [`BlobStore`] interface and its two implementations.
//!
//! - [`FsBlobs`], the embedded default beside a SQLite database: one file per attachment in a
//!   folder next to the database file (`tidings.db` → `tidings.db.files/`). Files keep SQLite
//!   small and backups of it fast, and the folder is where an operator expects the data.
//! - [`DbBlobs`], for a cluster on MySQL/MariaDB: a table (`attachment_blobs`) in the database
//!   every node already shares, so a file uploaded through one node is served by any other with
//!   no extra service to run. Larger installs would add a third implementation on an
//!   S3-compatible object store (README, "Scaling out").
//!
//! Owns the bytes only, keyed by [`AttachmentId`]; who may read them, and which message they
//! belong to, is the `attachments` table's business (`store/attachments.rs`). A blob is written
//! once, before its metadata row, and deleted after its row is gone: a crash in between leaves an
//! orphan for the sweep, never a row without bytes that the store would hand out.

use super::{Result, StoreError};
use app::model::AttachmentId;
use async_trait::async_trait;
use axum::body::Bytes;
use sqlx::{AnyPool, Row};
use std::path::PathBuf;

/// Stores and serves the bytes of attachments.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `bytes` under `id` (a fresh id: never overwritten).
    async fn put(&self, id: &AttachmentId, bytes: Bytes) -> Result<()>;
    /// The bytes stored under `id`, if any.
    async fn get(&self, id: &AttachmentId) -> Result<Option<Bytes>>;
    /// Deletes these blobs; ids with no blob are ignored.
    async fn delete(&self, ids: &[AttachmentId]) -> Result<()>;
    /// Every id stored, for the sweep of orphans (bounded by how many uploads there are).
    async fn list(&self) -> Result<Vec<AttachmentId>>;
    /// What to tell an operator about where the bytes are.
    fn describe(&self) -> String;
}

/// One file per attachment in a folder beside the SQLite database.
pub struct FsBlobs {
    dir: PathBuf,
}

impl FsBlobs {
    /// The folder for the database at `db_path` (created if missing): `<db file>.files`.
    pub fn beside(db_path: &str) -> Result<FsBlobs> {
        let dir = PathBuf::from(format!("{db_path}.files"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| StoreError::Blobs(dir.display().to_string(), e))?;
        Ok(FsBlobs { dir })
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn path(&self, id: &AttachmentId) -> PathBuf {
        // The id is 32 hex digits (checked by its type), so it cannot leave the folder.
        self.dir.join(id.as_str())
    }

    fn failed(&self, e: std::io::Error) -> StoreError {
        StoreError::Blobs(self.dir.display().to_string(), e)
    }
}

#[async_trait]
impl BlobStore for FsBlobs {
    async fn put(&self, id: &AttachmentId, bytes: Bytes) -> Result<()> {
        // Written under a temporary name and renamed, so a reader never sees half a file.
        let tmp = self.dir.join(format!("{}.part", id.as_str()));
        let path = self.path(id);
        let written = async {
            tokio::fs::write(&tmp, &bytes).await?;
            tokio::fs::File::open(&tmp).await?.sync_all().await?;
            tokio::fs::rename(&tmp, &path).await
        }
        .await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(self.failed(e));
        }
        Ok(())
    }

    async fn get(&self, id: &AttachmentId) -> Result<Option<Bytes>> {
        match tokio::fs::read(self.path(id)).await {
            Ok(bytes) => Ok(Some(bytes.into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.failed(e)),
        }
    }

    async fn delete(&self, ids: &[AttachmentId]) -> Result<()> {
        for id in ids {
            match tokio::fs::remove_file(self.path(id)).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.failed(e)),
            }
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<AttachmentId>> {
        let mut out = Vec::new();
        let mut dir = tokio::fs::read_dir(&self.dir)
            .await
            .map_err(|e| self.failed(e))?;
        while let Some(entry) = dir.next_entry().await.map_err(|e| self.failed(e))? {
            // Anything else in the folder (a `.part` being written) is not a blob.
            if let Some(Ok(id)) = entry
                .file_name()
                .to_str()
                .map(|name| AttachmentId::parse(name.to_owned()))
            {
                out.push(id);
            }
        }
        Ok(out)
    }

    fn describe(&self) -> String {
        format!("files in {}", self.dir.display())
    }
}

/// One row per attachment in the shared MySQL/MariaDB database.
pub struct DbBlobs {
    pool: AnyPool,
}

impl DbBlobs {
    pub fn new(pool: AnyPool) -> DbBlobs {
        DbBlobs { pool }
    }
}

#[async_trait]
impl BlobStore for DbBlobs {
    async fn put(&self, id: &AttachmentId, bytes: Bytes) -> Result<()> {
        sqlx::query("INSERT INTO attachment_blobs (id, data) VALUES (?, ?)")
            .bind(id.as_str())
            .bind(bytes.to_vec())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get(&self, id: &AttachmentId) -> Result<Option<Bytes>> {
        let row = sqlx::query("SELECT data FROM attachment_blobs WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => Some(row.try_get::<Vec<u8>, _>("data")?.into()),
            None => None,
        })
    }

    async fn delete(&self, ids: &[AttachmentId]) -> Result<()> {
        for id in ids {
            sqlx::query("DELETE FROM attachment_blobs WHERE id = ?")
                .bind(id.as_str())
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<AttachmentId>> {
        let rows = sqlx::query("SELECT id FROM attachment_blobs")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| r.try_get::<String, _>("id").ok())
            .filter_map(|id| AttachmentId::parse(id).ok())
            .collect())
    }

    fn describe(&self) -> String {
        "the database's attachment_blobs table".into()
    }
}
