//! Conversations and their members: direct chats (one per pair), groups with their owner and
//! admins, membership and role changes (each checked against the roles inside its own
//! transaction), and read marks. The conversation list a client shows is built here in
//! three queries however many conversations there are.

use super::messages::{message_of, LogRow, LOG_COLUMNS, LOG_JOINS};
use super::{inserted_id, now_ms, time, Dialect, Result, Role, Store, Tx};
use app::model::{
    ConvId, ConvKind, Conversation, Entry, Event, GroupTitle, MemberRole, Message, Seq, UserId,
    UserRef,
};
use sqlx::{FromRow, Row};
use std::collections::HashMap;

/// How far back (in log entries) an unread count looks: the count is exact up to this many
/// entries after the read mark, so a long-unread conversation costs a bounded scan.
pub const UNREAD_WINDOW: i64 = 1000;
/// Conversations counted per statement (each takes three placeholders).
const UNREAD_CHUNK: usize = 200;

/// A group event to append to a conversation's log (see [`Store::log_event`]).
enum GroupEvent<'a> {
    Created(&'a GroupTitle),
    Added(UserId),
    Removed(UserId),
    Left,
    Renamed(&'a GroupTitle),
    /// `user` is the group's owner now (its owner left).
    Owner(UserId),
    /// The owner gave `user` this role (admin or member).
    Role(UserId, Role),
}

/// Why a group change was refused. Nothing was written: no seq was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupRefusal {
    /// The person acting is not a member of the group.
    NotMember,
    /// The person the change is about is not a member.
    NoSuchMember,
    /// The acting person's role does not allow it (or it would change the owner's role).
    NotAllowed,
}

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
        Ok(row.map(|r| Role::from_column(r.get("role"))))
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

    /// Five queries whatever the number of conversations: the list, their members, their last
    /// messages, the unread counts and the unread mentions. `only` narrows it to one conversation (0 never matches a real id).
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
        let mut bots: HashMap<i64, Vec<UserId>> = HashMap::new();
        let rows = sqlx::query(
            "SELECT m.conv_id, m.role, u.id, u.username, u.bot FROM members me \
             JOIN members m ON m.conv_id = me.conv_id JOIN users u ON u.id = m.user_id \
             WHERE me.user_id = ? AND (? = 0 OR me.conv_id = ?) ORDER BY u.username",
        )
        .bind(viewer.0)
        .bind(only)
        .bind(only)
        .fetch_all(&self.pool)
        .await?;
        let mut roles: HashMap<i64, Vec<MemberRole>> = HashMap::new();
        for r in &rows {
            let conv: i64 = r.get("conv_id");
            let user = UserId(r.get("id"));
            members.entry(conv).or_default().push(UserRef {
                id: user,
                username: r.get("username"),
            });
            let role = Role::from_column(r.get("role"));
            if role != Role::Member {
                roles
                    .entry(conv)
                    .or_default()
                    .push(MemberRole { user, role });
            }
            if r.get::<i64, _>("bot") != 0 {
                bots.entry(conv).or_default().push(user);
            }
        }

        // The preview is the newest MESSAGE (events do not count), found by walking the primary
        // key back from the end.
        let mut last: HashMap<i64, Message> = HashMap::new();
        let rows = sqlx::query(&format!(
            "SELECT {LOG_COLUMNS} FROM members me \
             JOIN messages m ON m.conv_id = me.conv_id AND m.seq = \
              (SELECT x.seq FROM messages x WHERE x.conv_id = me.conv_id AND x.kind = 'message' \
               ORDER BY x.seq DESC LIMIT 1) \
             {LOG_JOINS} \
             WHERE me.user_id = ? AND (? = 0 OR me.conv_id = ?)"
        ))
        .bind(viewer.0)
        .bind(only)
        .bind(only)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            if let Some(m) = message_of(LogRow::from_row(r)?) {
                last.insert(m.conv.0, m);
            }
        }

        // Unread: others' messages after my read mark (not my own, not edits, reactions or group
        // events, not deleted ones), within the newest UNREAD_WINDOW entries. Only conversations
        // with anything after the mark are counted, each over its own key range: written as one
        // join, MariaDB read every message of the conversation (a `ref` on conv_id) instead of
        // the range after the mark.
        let mut unread: HashMap<i64, i64> = HashMap::new();
        let ranges: Vec<(i64, i64)> = list
            .iter()
            .filter_map(|r| {
                let (last_seq, read): (i64, i64) = (r.get("last_seq"), r.get("last_read_seq"));
                (last_seq > read).then(|| (r.get("id"), read.max(last_seq - UNREAD_WINDOW)))
            })
            .collect();
        for chunk in ranges.chunks(UNREAD_CHUNK) {
            let sql = vec![
                "SELECT conv_id, COUNT(*) AS n FROM messages WHERE conv_id = ? AND seq > ? \
                 AND kind = 'message' AND sender_id <> ? AND deleted = 0 GROUP BY conv_id";
                chunk.len()
            ]
            .join(" UNION ALL ");
            let mut query = sqlx::query(&sql);
            for (conv, after) in chunk {
                query = query.bind(*conv).bind(*after).bind(viewer.0);
            }
            for r in query.fetch_all(&self.pool).await? {
                unread.insert(r.try_get("conv_id")?, r.try_get("n")?);
            }
        }

        // Unread mentions: mine after my read mark, a range of the mentions key per
        // conversation (deleted messages' mentions are deleted with them).
        let mut mentions: HashMap<i64, i64> = HashMap::new();
        let rows = sqlx::query(
            "SELECT mn.conv_id, COUNT(*) AS n FROM mentions mn \
             JOIN members me ON me.conv_id = mn.conv_id AND me.user_id = mn.user_id \
             WHERE mn.user_id = ? AND mn.seq > me.last_read_seq AND (? = 0 OR mn.conv_id = ?) \
             GROUP BY mn.conv_id",
        )
        .bind(viewer.0)
        .bind(only)
        .bind(only)
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            mentions.insert(r.try_get("conv_id")?, r.try_get("n")?);
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
                    roles: roles.remove(&id).unwrap_or_default(),
                    last_seq,
                    last_read_seq,
                    unread: unread.get(&id).copied().unwrap_or(0),
                    mentions: mentions.get(&id).copied().unwrap_or(0),
                    last_message: last.remove(&id),
                    updated_at: time(r.get("updated_at")),
                    bots: bots.remove(&id).unwrap_or_default(),
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

    /// A new group owned by `owner`, with `others` as members; its log starts with the
    /// `created` event (seq 1).
    pub async fn create_group(
        &self,
        owner: UserId,
        title: &GroupTitle,
        others: &[UserId],
    ) -> Result<(ConvId, Event)> {
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
        let event = self
            .log_event(&mut tx, conv, owner, GroupEvent::Created(title), now)
            .await?;
        insert_member(self.dialect, &mut tx, conv, owner, Role::Owner, now).await?;
        for user in others.iter().filter(|u| **u != owner) {
            insert_member(self.dialect, &mut tx, conv, *user, Role::Member, now).await?;
        }
        tx.commit().await?;
        Ok((conv, event))
    }

    /// `by` adds `user`; the `added` event, or None if they were already a member.
    pub async fn add_member(
        &self,
        conv: ConvId,
        by: UserId,
        user: UserId,
    ) -> Result<Option<Event>> {
        let now = now_ms();
        let mut tx = self.write().await?;
        // The event first: it takes the conversation's row lock before anything else, the lock
        // every writer of this conversation's log takes first.
        let event = self
            .log_event(&mut tx, conv, by, GroupEvent::Added(user), now)
            .await?;
        if !insert_member(self.dialect, &mut tx, conv, user, Role::Member, now).await? {
            // Rolled back: no seq is used.
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(event))
    }

    /// `by` removes `user` (`by == user`: they leave); the `removed` or `left` event. Only the
    /// owner and admins remove others, and nobody removes the owner: checked here, under the
    /// conversation's lock, against the roles as they are now. A group left without an owner
    /// passes to its longest-standing admin, or member if it has no admin: then an `owner` event
    /// follows.
    pub async fn remove_member(
        &self,
        conv: ConvId,
        by: UserId,
        user: UserId,
    ) -> Result<Result<Vec<Event>, GroupRefusal>> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let what = if by == user {
            GroupEvent::Left
        } else {
            GroupEvent::Removed(user)
        };
        // The event first: it takes the conversation's row lock, so the roles read next cannot
        // change before this commits. A refusal drops the transaction: no seq is used.
        let event = self.log_event(&mut tx, conv, by, what, now).await?;
        let Some(mine) = role_in(&mut tx, conv, by).await? else {
            return Ok(Err(GroupRefusal::NotMember));
        };
        if by != user {
            let Some(theirs) = role_in(&mut tx, conv, user).await? else {
                return Ok(Err(GroupRefusal::NoSuchMember));
            };
            if !mine.removes(theirs) {
                return Ok(Err(GroupRefusal::NotAllowed));
            }
        }
        sqlx::query("DELETE FROM members WHERE conv_id = ? AND user_id = ?")
            .bind(conv.0)
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
        let mut events = vec![event];
        let owners: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM members WHERE conv_id = ? AND role = 'owner'")
                .bind(conv.0)
                .fetch_one(&mut *tx)
                .await?
                .get("n");
        if owners == 0 {
            let heir = sqlx::query(
                "SELECT user_id FROM members WHERE conv_id = ? \
                 ORDER BY CASE WHEN role = 'admin' THEN 0 ELSE 1 END, joined_at, user_id LIMIT 1",
            )
            .bind(conv.0)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(heir) = heir {
                let heir = UserId(heir.try_get("user_id")?);
                sqlx::query("UPDATE members SET role = 'owner' WHERE conv_id = ? AND user_id = ?")
                    .bind(conv.0)
                    .bind(heir.0)
                    .execute(&mut *tx)
                    .await?;
                events.push(
                    self.log_event(&mut tx, conv, by, GroupEvent::Owner(heir), now)
                        .await?,
                );
            }
        }
        tx.commit().await?;
        Ok(Ok(events))
    }

    /// `by` renames the group (the owner and admins may); the `renamed` event.
    pub async fn rename(
        &self,
        conv: ConvId,
        by: UserId,
        title: &GroupTitle,
    ) -> Result<Result<Event, GroupRefusal>> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let event = self
            .log_event(&mut tx, conv, by, GroupEvent::Renamed(title), now)
            .await?;
        match role_in(&mut tx, conv, by).await? {
            None => return Ok(Err(GroupRefusal::NotMember)),
            Some(role) if !role.manages() => return Ok(Err(GroupRefusal::NotAllowed)),
            Some(_) => {}
        }
        sqlx::query("UPDATE conversations SET title = ? WHERE id = ? AND kind = 'group'")
            .bind(title.as_str())
            .bind(conv.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(event))
    }

    /// `by`, who must be the owner, gives `user` the role `role` (admin or member); the `role`
    /// event, or `None` when they had it already (nothing is written). The owner's own role
    /// does not change this way: ownership passes only when the owner leaves.
    pub async fn set_role(
        &self,
        conv: ConvId,
        by: UserId,
        user: UserId,
        role: Role,
    ) -> Result<Result<Option<Event>, GroupRefusal>> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let event = self
            .log_event(&mut tx, conv, by, GroupEvent::Role(user, role), now)
            .await?;
        match role_in(&mut tx, conv, by).await? {
            None => return Ok(Err(GroupRefusal::NotMember)),
            Some(mine) if !mine.sets_roles() => return Ok(Err(GroupRefusal::NotAllowed)),
            Some(_) => {}
        }
        match role_in(&mut tx, conv, user).await? {
            None => return Ok(Err(GroupRefusal::NoSuchMember)),
            Some(Role::Owner) => return Ok(Err(GroupRefusal::NotAllowed)),
            Some(had) if had == role => return Ok(Ok(None)),
            Some(_) => {}
        }
        sqlx::query("UPDATE members SET role = ? WHERE conv_id = ? AND user_id = ?")
            .bind(role.as_str())
            .bind(conv.0)
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(Some(event)))
    }

    /// Appends a group event to `conv`'s log inside `tx`: the conversation's next seq, taken
    /// under its row lock like any entry's (the committer's batches queue behind it), and a row
    /// with a server-made `client_id` (`sys:<conv>:<seq>`: unique as the seq is, and never a
    /// valid client's id — `:` is not allowed there — so a client cannot take it first).
    async fn log_event(
        &self,
        tx: &mut Tx,
        conv: ConvId,
        by: UserId,
        what: GroupEvent<'_>,
        now: i64,
    ) -> Result<Event> {
        sqlx::query(
            "UPDATE conversations SET last_seq = last_seq + 1, updated_at = ? WHERE id = ?",
        )
        .bind(now)
        .bind(conv.0)
        .execute(&mut **tx)
        .await?;
        let seq: i64 = sqlx::query("SELECT last_seq FROM conversations WHERE id = ?")
            .bind(conv.0)
            .fetch_one(&mut **tx)
            .await?
            .try_get("last_seq")?;
        let (kind, body, subject) = match what {
            GroupEvent::Created(title) => ("created", title.as_str(), None),
            GroupEvent::Added(user) => ("added", "", Some(user.0)),
            GroupEvent::Removed(user) => ("removed", "", Some(user.0)),
            GroupEvent::Left => ("left", "", None),
            GroupEvent::Renamed(title) => ("renamed", title.as_str(), None),
            GroupEvent::Owner(user) => ("owner", "", Some(user.0)),
            // Stored as an `owner` row naming the role: see migrations/*/0007_roles.sql.
            GroupEvent::Role(user, role) => ("owner", role.as_str(), Some(user.0)),
        };
        // SQLite: under the write lock (BEGIN IMMEDIATE), the next id is the largest plus one,
        // as in the writer thread; MySQL: AUTO_INCREMENT.
        let id = match self.dialect {
            Dialect::Sqlite => Some(
                sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 AS id FROM messages")
                    .fetch_one(&mut **tx)
                    .await?
                    .try_get::<i64, _>("id")?,
            ),
            Dialect::MySql => None,
        };
        sqlx::query(
            "INSERT INTO messages (conv_id, seq, id, sender_id, client_id, body, created_at, \
             kind, subject_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(conv.0)
        .bind(seq)
        .bind(id)
        .bind(by.0)
        .bind(format!("sys:{}:{seq}", conv.0))
        .bind(body)
        .bind(now)
        .bind(kind)
        .bind(subject)
        .execute(&mut **tx)
        .await?;
        super::outbox::record_entry(self.dialect, tx, conv, seq, now).await?;
        let row = sqlx::query(&format!(
            "SELECT {LOG_COLUMNS} FROM messages m {LOG_JOINS} WHERE m.conv_id = ? AND m.seq = ?"
        ))
        .bind(conv.0)
        .bind(seq)
        .fetch_one(&mut **tx)
        .await?;
        match Entry::from(LogRow::from_row(&row)?) {
            Entry::Event(event) => Ok(event),
            Entry::Message(_) => unreachable!("a group event row reads back as an event"),
        }
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

/// `user`'s role in `conv` as `tx` sees it, if they are a member.
async fn role_in(tx: &mut Tx, conv: ConvId, user: UserId) -> Result<Option<Role>> {
    let row = sqlx::query("SELECT role FROM members WHERE conv_id = ? AND user_id = ?")
        .bind(conv.0)
        .bind(user.0)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(|r| Role::from_column(r.get("role"))))
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
