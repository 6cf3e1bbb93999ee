//! Attachments' metadata (the `attachments` table) and the rules of who may read one; the bytes
//! are the [`BlobStore`](super::blobs::BlobStore)'s. Posting an attachment with a message happens
//! inside the append transaction (`append.rs`), deleting it with the message's deletion there too.
//!
//! An upload belongs to its uploader until a `send` posts it, then to the conversation it was
//! posted in: [`Store::readable_attachment`] answers only its members (or, before that, only the
//! uploader), checked against the database on every download.

use super::{now_ms, Result, Store};
use app::model::{Attachment, AttachmentId, UserId};
use axum::body::Bytes;
use sqlx::FromRow;

/// The columns of [`AttachmentRow`] (`a` is `attachments`).
const COLUMNS: &str = "a.id, a.name, a.size, a.content_type, a.width, a.height";

/// An attachment's metadata as stored.
#[derive(Debug, sqlx::FromRow)]
struct AttachmentRow {
    id: String,
    name: String,
    size: i64,
    content_type: String,
    width: Option<i64>,
    height: Option<i64>,
}

impl AttachmentRow {
    fn into_attachment(self) -> Option<Attachment> {
        Some(Attachment {
            id: AttachmentId::parse(self.id).ok()?,
            name: self.name,
            size: u64::try_from(self.size).unwrap_or(0),
            content_type: self.content_type,
            width: self.width.and_then(|w| u32::try_from(w).ok()),
            height: self.height.and_then(|h| u32::try_from(h).ok()),
        })
    }
}

impl Store {
    /// Keeps a new upload of `uploader`: the bytes first, then the row that makes them
    /// reachable (a failure in between leaves only an orphan blob for the sweep).
    pub async fn save_upload(
        &self,
        uploader: UserId,
        attachment: &Attachment,
        bytes: Bytes,
    ) -> Result<()> {
        self.blobs.put(&attachment.id, bytes).await?;
        let inserted = sqlx::query(
            "INSERT INTO attachments (id, uploader_id, name, size, content_type, width, height, \
             created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(attachment.id.as_str())
        .bind(uploader.0)
        .bind(&attachment.name)
        .bind(i64::try_from(attachment.size).unwrap_or(i64::MAX))
        .bind(&attachment.content_type)
        .bind(attachment.width.map(i64::from))
        .bind(attachment.height.map(i64::from))
        .bind(now_ms())
        .execute(&self.pool)
        .await;
        if let Err(e) = inserted {
            let _ = self
                .blobs
                .delete(std::slice::from_ref(&attachment.id))
                .await;
            return Err(e.into());
        }
        Ok(())
    }

    /// The attachment `id` with its bytes, if `viewer` may read it: a member of the conversation
    /// it was posted in, or its uploader while it is unposted. Anyone else gets `None`, exactly as
    /// for an id that does not exist (nothing tells an outsider that it does).
    pub async fn readable_attachment(
        &self,
        viewer: UserId,
        id: &AttachmentId,
    ) -> Result<Option<(Attachment, Bytes)>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM attachments a WHERE a.id = ? AND \
             ((a.conv_id IS NULL AND a.uploader_id = ?) OR EXISTS \
              (SELECT 1 FROM members m WHERE m.conv_id = a.conv_id AND m.user_id = ?))"
        ))
        .bind(id.as_str())
        .bind(viewer.0)
        .bind(viewer.0)
        .fetch_optional(&self.pool)
        .await?;
        let Some(attachment) = row
            .map(|r| AttachmentRow::from_row(&r))
            .transpose()?
            .and_then(AttachmentRow::into_attachment)
        else {
            return Ok(None);
        };
        Ok(self.blobs.get(id).await?.map(|bytes| (attachment, bytes)))
    }

    /// Deletes uploads never posted that are older than `before` (ms), rows then bytes; returns
    /// how many. A `send` posting one meanwhile wins: only rows still unposted are deleted.
    pub async fn delete_unposted(&self, before: i64) -> Result<usize> {
        let rows = sqlx::query(
            "SELECT id FROM attachments WHERE conv_id IS NULL AND created_at < ? LIMIT 1000",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await?;
        let mut gone = Vec::new();
        for row in &rows {
            let id: String = sqlx::Row::try_get(row, "id")?;
            let done = sqlx::query("DELETE FROM attachments WHERE id = ? AND conv_id IS NULL")
                .bind(&id)
                .execute(&self.pool)
                .await?;
            if done.rows_affected() == 1 {
                if let Ok(id) = AttachmentId::parse(id) {
                    gone.push(id);
                }
            }
        }
        self.blobs.delete(&gone).await?;
        Ok(gone.len())
    }

    /// Of these blob ids, those with no `attachments` row (orphans: left by a crash between a
    /// blob's write and its row, or between a deletion's commit and the blob's removal).
    pub async fn orphan_blobs(&self, ids: Vec<AttachmentId>) -> Result<Vec<AttachmentId>> {
        let mut out = Vec::new();
        for id in ids {
            let known = sqlx::query("SELECT 1 AS x FROM attachments WHERE id = ?")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?
                .is_some();
            if !known {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// The blob store (for the sweep, and tests that look at what is stored).
    pub fn blobs(&self) -> &dyn super::blobs::BlobStore {
        &*self.blobs
    }

    /// How many attachment rows exist (tests: "nothing stored").
    pub async fn count_attachments(&self) -> Result<i64> {
        Ok(sqlx::Row::try_get(
            &sqlx::query("SELECT COUNT(*) AS n FROM attachments")
                .fetch_one(&self.pool)
                .await?,
            "n",
        )?)
    }
}
