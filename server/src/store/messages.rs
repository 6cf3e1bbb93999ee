//! Reading messages: history pages (newest first, keyset on `(conv_id, seq)`, so a page costs
//! the same however far back it is) and the replay behind `sync`. Appending is in `append`.

use super::{time, Result, Store};
use app::model::{ConvId, HistoryPage, Message, MessageId, Seq, UserId, UserRef};
use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

/// Columns selected by every message query: exactly the fields of [`MessageRow`].
pub(crate) const MESSAGE_COLUMNS: &str = "m.conv_id, m.seq, m.id, m.client_id, m.body, \
                                          m.created_at, u.id AS sender_id, \
                                          u.username AS sender_name";

/// The inner query of a page: the page's rows are chosen from `messages` alone, by its primary
/// key `(conv_id, seq)`, before the senders' names are joined. Written as a join, MariaDB (with the
/// statistics of a freshly filled table) started from `users` and sorted the whole conversation:
/// the newest page of 1,000,000 messages took 7 s. The derived table with its own LIMIT cannot be
/// merged away, so both databases scan the key range and stop after one page.
const PAGE: &str = "SELECT conv_id, seq, id, client_id, body, created_at, sender_id FROM messages";

/// A message as the database returns it (joined with its sender's name).
#[derive(Debug, sqlx::FromRow)]
pub struct MessageRow {
    pub conv_id: i64,
    pub seq: i64,
    pub id: i64,
    pub client_id: String,
    pub body: String,
    pub created_at: i64,
    pub sender_id: i64,
    pub sender_name: String,
}

impl From<MessageRow> for Message {
    fn from(r: MessageRow) -> Message {
        Message {
            conv: ConvId(r.conv_id),
            seq: r.seq,
            id: MessageId(r.id),
            client_id: r.client_id,
            body: r.body,
            at: time(r.created_at),
            sender: UserRef {
                id: UserId(r.sender_id),
                username: r.sender_name,
            },
        }
    }
}

fn messages_from(rows: &[AnyRow]) -> Result<Vec<Message>> {
    rows.iter()
        .map(|r| Ok(MessageRow::from_row(r)?.into()))
        .collect()
}

impl Store {
    /// Up to `limit` messages before `before` (or the newest), returned oldest first.
    pub async fn history(
        &self,
        conv: ConvId,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<HistoryPage> {
        let before = before.unwrap_or(i64::MAX);
        let mut rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM ({PAGE} WHERE conv_id = ? AND seq < ? \
             ORDER BY seq DESC LIMIT ?) m JOIN users u ON u.id = m.sender_id ORDER BY m.seq DESC"
        ))
        .bind(conv.0)
        .bind(before)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let mut messages = messages_from(&rows)?;
        messages.reverse();
        Ok(HistoryPage { messages, has_more })
    }

    /// Up to `limit` messages after `after`, oldest first: the replay behind `sync`.
    pub async fn after(&self, conv: ConvId, after: Seq, limit: u32) -> Result<Vec<Message>> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM ({PAGE} WHERE conv_id = ? AND seq > ? \
             ORDER BY seq LIMIT ?) m JOIN users u ON u.id = m.sender_id ORDER BY m.seq"
        ))
        .bind(conv.0)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        messages_from(&rows)
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
