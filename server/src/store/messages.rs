//! Reading a conversation's log: history pages (newest first, keyset on `(conv_id, seq)`, so a
//! page costs the same however far back it is) with messages in their current state, and the
//! replay behind `sync` (every entry in seq order). Appending is in `append`.

use super::{time, Result, Store};
use app::model::{
    excerpt, Attachment, AttachmentId, Change, ConvId, Entry, Event, HistoryPage, Message,
    MessageId, Quote, Reaction, Role, Seq, UserId, UserRef,
};
use sqlx::{FromRow, Row};
use std::collections::HashMap;

/// Columns selected by every log query: exactly the fields of [`LogRow`]. `m` is the entry, `u`
/// its sender, `s` the user a group event is about, `t`/`tu` the message it targets and that
/// message's sender.
pub(crate) const LOG_COLUMNS: &str = "m.conv_id, m.seq, m.id, m.client_id, m.kind, m.body, \
     m.target_seq, m.edited_at, m.deleted, m.created_at, \
     u.id AS sender_id, u.username AS sender_name, \
     m.subject_id, s.username AS subject_name, \
     tu.id AS target_sender_id, tu.username AS target_sender_name, \
     t.body AS target_body, t.deleted AS target_deleted, \
     a.id AS att_id, a.name AS att_name, a.size AS att_size, a.content_type AS att_type, \
     a.width AS att_width, a.height AS att_height";

/// The joins that go with [`LOG_COLUMNS`] after `… m`. Each is on a primary or unique key; for
/// a plain message (no target, no subject, no attachment) they find nothing.
pub(crate) const LOG_JOINS: &str = "JOIN users u ON u.id = m.sender_id \
     LEFT JOIN users s ON s.id = m.subject_id \
     LEFT JOIN messages t ON t.conv_id = m.conv_id AND t.seq = m.target_seq \
     LEFT JOIN users tu ON tu.id = t.sender_id \
     LEFT JOIN attachments a ON a.conv_id = m.conv_id AND a.seq = m.seq";

/// The inner query of a page: the page's rows are chosen from `messages` alone, by its primary
/// key `(conv_id, seq)`, before the senders' names are joined. Written as a join, MariaDB (with the
/// statistics of a freshly filled table) started from `users` and sorted the whole conversation:
/// the newest page of 1,000,000 messages took 7 s. The derived table with its own LIMIT cannot be
/// merged away, so both databases scan the key range and stop after one page.
const PAGE: &str = "SELECT conv_id, seq, id, client_id, kind, body, target_seq, subject_id, \
                    edited_at, deleted, created_at, sender_id FROM messages";

/// The kinds a history page lists: messages and group events. Edits, deletions and reactions are
/// already applied to the messages' rows.
const SHOWN_KINDS: &str = "kind NOT IN ('edit', 'delete', 'react', 'unreact')";

/// One entry of the log as the database returns it, with what it refers to.
#[derive(Debug, sqlx::FromRow)]
pub struct LogRow {
    pub conv_id: i64,
    pub seq: i64,
    pub id: i64,
    pub client_id: String,
    pub kind: String,
    pub body: String,
    pub target_seq: Option<i64>,
    pub edited_at: Option<i64>,
    pub deleted: i64,
    pub created_at: i64,
    pub sender_id: i64,
    pub sender_name: String,
    pub subject_id: Option<i64>,
    pub subject_name: Option<String>,
    pub target_sender_id: Option<i64>,
    pub target_sender_name: Option<String>,
    pub target_body: Option<String>,
    pub target_deleted: Option<i64>,
    pub att_id: Option<String>,
    pub att_name: Option<String>,
    pub att_size: Option<i64>,
    pub att_type: Option<String>,
    pub att_width: Option<i64>,
    pub att_height: Option<i64>,
}

impl LogRow {
    /// The message's attachment, when it has one (a deleted message has none left).
    fn attachment(&mut self) -> Option<Attachment> {
        let id = AttachmentId::parse(self.att_id.take()?).ok()?;
        Some(Attachment {
            id,
            name: self.att_name.take().unwrap_or_default(),
            size: self
                .att_size
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            content_type: self.att_type.take().unwrap_or_default(),
            width: self.att_width.and_then(|w| u32::try_from(w).ok()),
            height: self.att_height.and_then(|h| u32::try_from(h).ok()),
        })
    }
}

impl From<LogRow> for Entry {
    fn from(mut r: LogRow) -> Entry {
        let attachment = r.attachment();
        let sender = UserRef {
            id: UserId(r.sender_id),
            username: r.sender_name,
        };
        let target = r.target_seq.unwrap_or(0);
        let subject = || UserRef {
            id: UserId(r.subject_id.unwrap_or(0)),
            username: r.subject_name.clone().unwrap_or_default(),
        };
        let change = match r.kind.as_str() {
            "message" => {
                let reply_to = match (r.target_seq, r.target_sender_id) {
                    (Some(seq), Some(id)) => Some(Quote {
                        seq,
                        sender: UserRef {
                            id: UserId(id),
                            username: r.target_sender_name.unwrap_or_default(),
                        },
                        excerpt: excerpt(r.target_body.as_deref().unwrap_or("")),
                        deleted: r.target_deleted.unwrap_or(0) != 0,
                    }),
                    _ => None,
                };
                return Entry::Message(Message {
                    conv: ConvId(r.conv_id),
                    seq: r.seq,
                    id: MessageId(r.id),
                    client_id: r.client_id,
                    sender,
                    body: r.body,
                    at: time(r.created_at),
                    reply_to,
                    edited_at: r.edited_at.map(time),
                    deleted: r.deleted != 0,
                    reactions: Vec::new(),
                    attachment: attachment.map(Box::new),
                });
            }
            // The edit's text is read from the edited message: its current body (empty once it
            // is deleted; the deletion follows later in the log).
            "edit" => Change::Edit {
                target,
                body: r.target_body.unwrap_or_default(),
            },
            "delete" => Change::Delete { target },
            "react" | "unreact" => Change::React {
                target,
                emoji: r.body,
                on: r.kind == "react",
            },
            "created" => Change::Created { title: r.body },
            "added" => Change::Added { user: subject() },
            "removed" => Change::Removed { user: subject() },
            "left" => Change::Left,
            // An `owner` row records a role change: its body names the new role (`admin`,
            // `member`), or is empty when the subject became the owner (see 0007_roles.sql).
            "owner" if r.body.is_empty() => Change::Owner { user: subject() },
            "owner" => Change::Role {
                user: subject(),
                role: Role::from_column(&r.body),
            },
            _ => Change::Renamed { title: r.body },
        };
        Entry::Event(Event {
            conv: ConvId(r.conv_id),
            seq: r.seq,
            id: MessageId(r.id),
            client_id: r.client_id,
            sender,
            at: time(r.created_at),
            change,
        })
    }
}

/// A message's row as a [`Message`], when the row is a message (the conversation list's preview).
pub(crate) fn message_of(row: LogRow) -> Option<Message> {
    match Entry::from(row) {
        Entry::Message(m) => Some(m),
        Entry::Event(_) => None,
    }
}

/// One reaction row, for aggregating a page's reactions.
#[derive(Debug, sqlx::FromRow)]
struct ReactionRow {
    seq: i64,
    emoji: String,
    user_id: i64,
    username: String,
}

impl Store {
    /// Up to `limit` messages and group events before `before` (or the newest), oldest first, in
    /// their current state as `viewer` sees it (reactions say whether they are `viewer`'s).
    pub async fn history(
        &self,
        viewer: UserId,
        conv: ConvId,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<HistoryPage> {
        let before = before.unwrap_or(i64::MAX);
        let mut rows = sqlx::query(&format!(
            "SELECT {LOG_COLUMNS} FROM ({PAGE} WHERE conv_id = ? AND seq < ? AND {SHOWN_KINDS} \
             ORDER BY seq DESC LIMIT ?) m {LOG_JOINS} ORDER BY m.seq DESC"
        ))
        .bind(conv.0)
        .bind(before)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        rows.reverse();
        let mut messages = Vec::new();
        let mut events = Vec::new();
        for row in &rows {
            match Entry::from(LogRow::from_row(row)?) {
                Entry::Message(m) => messages.push(m),
                Entry::Event(e) => events.push(e),
            }
        }
        if let (Some(first), Some(last)) = (messages.first(), messages.last()) {
            let (first, last) = (first.seq, last.seq);
            let reactions = self.reactions(viewer, conv, first, last).await?;
            for m in &mut messages {
                if let Some(r) = reactions.get(&m.seq) {
                    m.reactions = r.clone();
                }
            }
        }
        Ok(HistoryPage {
            messages,
            events,
            has_more,
        })
    }

    /// The reactions on the messages `first..=last` of `conv`, per message, one [`Reaction`]
    /// per emoji in the order it was first used.
    async fn reactions(
        &self,
        viewer: UserId,
        conv: ConvId,
        first: Seq,
        last: Seq,
    ) -> Result<HashMap<Seq, Vec<Reaction>>> {
        let rows = sqlx::query(
            "SELECT r.seq, r.emoji, r.user_id, u.username FROM reactions r \
             JOIN users u ON u.id = r.user_id \
             WHERE r.conv_id = ? AND r.seq >= ? AND r.seq <= ? \
             ORDER BY r.seq, r.created_at, r.user_id",
        )
        .bind(conv.0)
        .bind(first)
        .bind(last)
        .fetch_all(&self.pool)
        .await?;
        let mut out: HashMap<Seq, Vec<Reaction>> = HashMap::new();
        for row in &rows {
            let r = ReactionRow::from_row(row)?;
            let list = out.entry(r.seq).or_default();
            let at = match list.iter().position(|x| x.emoji == r.emoji) {
                Some(at) => at,
                None => {
                    list.push(Reaction {
                        emoji: r.emoji,
                        count: 0,
                        mine: false,
                        users: Vec::new(),
                    });
                    list.len() - 1
                }
            };
            let reaction = &mut list[at];
            reaction.count += 1;
            reaction.mine |= r.user_id == viewer.0;
            reaction.users.push(UserRef {
                id: UserId(r.user_id),
                username: r.username,
            });
        }
        Ok(out)
    }

    /// Up to `limit` entries after `after`, oldest first: the replay behind `sync`. Messages come
    /// in their current body and flags; their reactions come as the `react` events that follow
    /// them (every change to a message has a higher seq than the message).
    pub async fn after(&self, conv: ConvId, after: Seq, limit: u32) -> Result<Vec<Entry>> {
        let rows = sqlx::query(&format!(
            "SELECT {LOG_COLUMNS} FROM ({PAGE} WHERE conv_id = ? AND seq > ? \
             ORDER BY seq LIMIT ?) m {LOG_JOINS} ORDER BY m.seq"
        ))
        .bind(conv.0)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(LogRow::from_row(r)?.into()))
            .collect()
    }

    /// Number of stored log entries in `conv` (for tests and metrics).
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
