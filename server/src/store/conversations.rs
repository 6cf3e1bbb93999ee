//! Conversations and their members: direct chats (one per pair), groups and their owners,
//! membership changes, and read marks. The conversation list a client shows is built here in
//! three queries however many conversations there are.

use super::messages::{MessageRow, MESSAGE_COLUMNS};
use super::{inserted_id, now_ms, time, Dialect, Result, Role, Store, Tx};
use app::model::{ConvId, ConvKind, Conversation, GroupTitle, Message, Seq, UserId, UserRef};
use sqlx::{FromRow, Row};
use std::collections::HashMap;

impl Store {
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
            let m = Message::from(MessageRow::from_row(r)?);
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
        let mut tx = self.write().await?;
        let opened = open_direct_in(self.dialect, &mut tx, a, b).await?;
        tx.commit().await?;
        Ok(opened)
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
}

/// [`Store::open_direct`] inside a write transaction of the caller's (accepting a contact request
/// opens the pair's chat in the same transaction). Opening a chat makes nobody a contact: that
/// takes a request and its acceptance (see `contacts`).
pub(crate) async fn open_direct_in(
    dialect: Dialect,
    tx: &mut Tx,
    a: UserId,
    b: UserId,
) -> Result<(ConvId, bool)> {
    let key = format!("{}:{}", a.0.min(b.0), a.0.max(b.0));
    let existing = sqlx::query("SELECT id FROM conversations WHERE direct_key = ?")
        .bind(&key)
        .fetch_optional(&mut **tx)
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
    .execute(&mut **tx)
    .await?;
    let conv = ConvId(inserted_id(dialect, tx, &conv).await?);
    let mut people = vec![a];
    if b != a {
        people.push(b);
    }
    for user in &people {
        insert_member(dialect, tx, conv, *user, Role::Member, now).await?;
    }
    Ok((conv, true))
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
