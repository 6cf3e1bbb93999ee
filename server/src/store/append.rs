//! Appending a batch of log entries in one transaction: the seq rule, idempotency, membership and
//! the permission rules of edits, deletions and reactions, decided once per batch instead of once
//! per entry.
//!
//! Every entry — a new message, an edit, a deletion, a reaction added or taken back — takes the
//! conversation's next seq in the same transaction that changes the message's current state (its
//! row, and `reactions`). A batch of plain messages runs exactly the statements it ran before
//! edits existed: the extra facts (targets, reactions) are read only for entries that need them.
//!
//! The work splits in three:
//! 1. **Facts**, read under the write lock: each conversation's `last_seq`, which (conversation,
//!    sender) pairs are memberships (and their role), which (sender, `client_id`) pairs are
//!    already stored; for edits, deletions, reactions and replies also the messages they target
//!    and the reactor's emoji on them. One lookup per distinct key, not per entry.
//! 2. **The plan**, pure and unit-tested: each entry becomes a duplicate (of a stored entry or
//!    of an earlier one in the batch), a refusal, or a new row with the conversation's next seq
//!    and its effects (an edit, reactions on/off, a deletion), checked against the state the
//!    batch's earlier entries left; plus one new `last_seq` per conversation and one read mark per
//!    (conversation, sender of a message).
//! 3. **Writes**: the rows, the mentions (only for messages naming someone as `@username`), the
//!    effects in order (edits, reactions, deletions), the `last_seq`s and the read marks, then
//!    `COMMIT`. The search index follows the rows later, in bulk (see `search`).
//!
//! Two executors carry out the same plan: on MySQL/MariaDB the one below, which needs a handful
//! of set-based statements per batch (network round trips are what costs there); on SQLite the
//! writer thread in `sqlite_writer`, which drives its own connection with prepared statements
//! (the cost there was sqlx's hand-off to its worker thread for every statement).

use super::{now_ms, time, Dialect, Result, Role, Store, StoreError};
use app::model::{
    excerpt, Attachment, AttachmentId, Body, Change, ConvId, Emoji, Entry, Event, Message,
    MessageId, Quote, Seq, UserId, UserRef, MAX_REACTIONS_PER_PERSON,
};
use chrono::{DateTime, Utc};
use sqlx::{FromRow, Row};
use std::collections::{HashMap, HashSet};

/// An entry on its way into a conversation's log, already validated.
#[derive(Clone, Debug)]
pub struct NewEntry {
    pub sender: UserRef,
    pub conv: ConvId,
    pub client_id: String,
    pub op: Op,
}

/// What a [`NewEntry`] does.
#[derive(Clone, Debug)]
pub enum Op {
    /// A new message, perhaps answering the message `reply_to`, perhaps posting the sender's
    /// upload `attachment` (the body may then be empty).
    Message {
        body: Body,
        reply_to: Option<Seq>,
        attachment: Option<AttachmentId>,
    },
    Edit {
        target: Seq,
        body: Body,
    },
    Delete {
        target: Seq,
    },
    React {
        target: Seq,
        emoji: Emoji,
        on: bool,
    },
}

impl Op {
    /// The message this entry needs to know about (edited, deleted, reacted to, replied to).
    pub fn target(&self) -> Option<Seq> {
        match self {
            Op::Message { reply_to, .. } => *reply_to,
            Op::Edit { target, .. } | Op::Delete { target } | Op::React { target, .. } => {
                Some(*target)
            }
        }
    }

    /// The `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Message { .. } => "message",
            Op::Edit { .. } => "edit",
            Op::Delete { .. } => "delete",
            Op::React { on: true, .. } => "react",
            Op::React { on: false, .. } => "unreact",
        }
    }

    /// The `body` column: the text of a message, the emoji of a reaction, nothing otherwise (an
    /// edit's text lives only in the edited message's row, so a deletion leaves no copy).
    pub fn stored_body(&self) -> &str {
        match self {
            Op::Message { body, .. } => body.as_str(),
            Op::React { emoji, .. } => emoji.as_str(),
            Op::Edit { .. } | Op::Delete { .. } => "",
        }
    }

    /// True for a message without a reply or attachment: the row the hot path inserts.
    pub fn is_plain(&self) -> bool {
        matches!(
            self,
            Op::Message {
                reply_to: None,
                attachment: None,
                ..
            }
        )
    }

    /// The upload this entry posts.
    pub fn attachment(&self) -> Option<&AttachmentId> {
        match self {
            Op::Message { attachment, .. } => attachment.as_ref(),
            _ => None,
        }
    }
}

impl NewEntry {
    /// A plain message (no reply).
    pub fn message(sender: UserRef, conv: ConvId, client_id: String, body: Body) -> NewEntry {
        NewEntry {
            sender,
            conv,
            client_id,
            op: Op::Message {
                body,
                reply_to: None,
                attachment: None,
            },
        }
    }
}

/// Where an already stored entry is: what its sender's repeated `client_id` is acked with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub conv: ConvId,
    pub seq: Seq,
    pub id: MessageId,
    pub client_id: String,
    pub at: DateTime<Utc>,
}

/// Why an entry was refused (beyond membership).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The target is not a message of this conversation.
    UnknownMessage,
    /// The target has been deleted.
    MessageDeleted,
    /// Not the sender's to change.
    NotAllowed,
    /// Already `MAX_REACTIONS_PER_PERSON` emoji of the sender on the target.
    TooManyReactions,
    /// The attachment is not an unposted upload of the sender's.
    UnknownAttachment,
}

/// What became of one [`NewEntry`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Appended {
    /// Stored now, with a fresh seq.
    Stored(Entry),
    /// The sender had already sent this `client_id`: here is where the original is.
    Duplicate(Receipt),
    NotMember,
    UnknownConversation,
    Refused(Refusal),
}

/// A message as the plan needs to know it when an entry targets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub sender: UserRef,
    pub body: String,
    pub deleted: bool,
    /// Its attachment, whose bytes go when the message is deleted.
    pub attachment: Option<AttachmentId>,
}

/// An upload a `send` of the batch wants to post.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    pub uploader: UserId,
    /// Already posted with a message (it belongs to that conversation now).
    pub posted: bool,
    pub attachment: Attachment,
}

/// What the database says about a batch, read inside its transaction.
#[derive(Debug, Default)]
pub struct Facts {
    /// `last_seq` of every conversation of the batch that exists.
    pub last_seq: HashMap<ConvId, Seq>,
    /// The (conversation, sender) pairs of the batch that are memberships, with the role.
    pub members: HashMap<(ConvId, UserId), Role>,
    /// Entries already stored under a (sender, `client_id`) of the batch.
    pub stored: HashMap<(UserId, String), Receipt>,
    /// The messages (kind `message`) the batch's entries target, by (conversation, seq).
    pub targets: HashMap<(ConvId, Seq), Target>,
    /// The emoji each reactor of the batch has on its target: (conversation, target, reactor).
    pub reactions: HashMap<(ConvId, Seq, UserId), HashSet<String>>,
    /// The uploads the batch's messages post, those that exist.
    pub uploads: HashMap<AttachmentId, Upload>,
}

/// A row to insert.
#[derive(Debug)]
pub struct NewRow<'a> {
    pub entry: &'a NewEntry,
    pub seq: Seq,
    /// For a reply: the replied-to message as it stood.
    quote: Option<Quote>,
    /// The upload it posts.
    attachment: Option<Attachment>,
}

/// The names a new message mentions; the executors record a mention for each one that is a
/// member of the conversation other than the sender.
#[derive(Debug, PartialEq, Eq)]
pub struct Mentions {
    pub conv: ConvId,
    pub seq: Seq,
    pub sender: UserId,
    pub names: Vec<String>,
}

impl Mentions {
    /// The statement that records them, for `names.len()` names; bind [`Mentions::bind_order`].
    pub fn insert_sql(&self) -> String {
        format!(
            "INSERT INTO mentions (user_id, conv_id, seq) SELECT m.user_id, ?, ? FROM members m \
             JOIN users u ON u.id = m.user_id \
             WHERE m.conv_id = ? AND m.user_id <> ? AND u.username IN ({})",
            vec!["?"; self.names.len()].join(", ")
        )
    }
}

/// One reaction put on (`on`) or taken back.
#[derive(Debug, PartialEq, Eq)]
pub struct ReactionChange<'a> {
    pub conv: ConvId,
    pub target: Seq,
    pub user: UserId,
    pub emoji: &'a str,
    pub on: bool,
}

#[derive(Debug)]
enum Outcome {
    /// The `n`th new row (or a repeat of it within the batch: then not `first`).
    Row {
        row: usize,
        first: bool,
    },
    Stored(Receipt),
    NotMember,
    UnknownConversation,
    Refused(Refusal),
}

/// The decisions for one batch; see the module header.
#[derive(Debug)]
pub struct Plan<'a> {
    outcomes: Vec<Outcome>,
    pub rows: Vec<NewRow<'a>>,
    /// (conversation, message, new body), in batch order.
    pub edits: Vec<(ConvId, Seq, &'a str)>,
    /// In batch order.
    pub reactions: Vec<ReactionChange<'a>>,
    /// (conversation, message): empty the body, drop the reactions and the attachment.
    pub deletes: Vec<(ConvId, Seq)>,
    /// (conversation, message, upload): the upload now belongs to that message.
    pub posts: Vec<(ConvId, Seq, &'a AttachmentId)>,
    /// The attachments of deleted messages: their bytes go once the batch is committed.
    pub purged: Vec<AttachmentId>,
    /// The new messages that name people as `@username`, in batch order (only bodies with an
    /// `@` are read for names, so plain chat costs one byte search per message).
    pub mentions: Vec<Mentions>,
    /// The new `last_seq` of each conversation that gets rows.
    pub last_seq: Vec<(ConvId, Seq)>,
    /// The conversations that got a new message (their `updated_at` moves: events do not
    /// reorder the conversation list).
    pub active: Vec<ConvId>,
    /// (conversation, sender, seq): the sender has read their own newest message.
    pub read_marks: Vec<(ConvId, UserId, Seq)>,
}

impl Plan<'_> {
    /// True when every row is a plain message: the executors then run the statements of the
    /// hot path and nothing else.
    pub fn only_plain(&self) -> bool {
        self.edits.is_empty()
            && self.reactions.is_empty()
            && self.deletes.is_empty()
            && self.posts.is_empty()
            && self.rows.iter().all(|r| r.entry.op.is_plain())
    }
}

/// The distinct keys a batch needs facts about, in first-seen order.
pub struct Keys<'a> {
    pub convs: Vec<ConvId>,
    pub memberships: Vec<(ConvId, UserId)>,
    pub client_ids: Vec<(UserId, &'a str)>,
    /// Messages targeted by edits, deletions, reactions and replies.
    pub targets: Vec<(ConvId, Seq)>,
    /// (conversation, target, reactor) of the reactions.
    pub reactors: Vec<(ConvId, Seq, UserId)>,
    /// The uploads messages post.
    pub uploads: Vec<&'a AttachmentId>,
}

impl<'a> Keys<'a> {
    pub fn of(batch: &'a [NewEntry]) -> Keys<'a> {
        let mut seen = (
            HashSet::new(),
            HashSet::new(),
            HashSet::new(),
            HashSet::new(),
            HashSet::new(),
        );
        let mut keys = Keys {
            convs: Vec::new(),
            memberships: Vec::new(),
            client_ids: Vec::new(),
            targets: Vec::new(),
            reactors: Vec::new(),
            uploads: Vec::new(),
        };
        for m in batch {
            if seen.0.insert(m.conv) {
                keys.convs.push(m.conv);
            }
            if seen.1.insert((m.conv, m.sender.id)) {
                keys.memberships.push((m.conv, m.sender.id));
            }
            if seen.2.insert((m.sender.id, m.client_id.as_str())) {
                keys.client_ids.push((m.sender.id, m.client_id.as_str()));
            }
            if let Some(upload) = m.op.attachment() {
                if !keys.uploads.contains(&upload) {
                    keys.uploads.push(upload);
                }
            }
            if let Some(target) = m.op.target() {
                if seen.3.insert((m.conv, target)) {
                    keys.targets.push((m.conv, target));
                }
                if matches!(m.op, Op::React { .. }) && seen.4.insert((m.conv, target, m.sender.id))
                {
                    keys.reactors.push((m.conv, target, m.sender.id));
                }
            }
        }
        keys
    }
}

impl<'a> Plan<'a> {
    /// Decides every entry of `batch` from `facts`.
    pub fn new(batch: &'a [NewEntry], facts: &Facts) -> Plan<'a> {
        let mut last_seq = facts.last_seq.clone();
        let mut earlier: HashMap<(UserId, &str), usize> = HashMap::new();
        let mut read_marks: HashMap<(ConvId, UserId), Seq> = HashMap::new();
        // The state the batch's earlier entries leave, for the later ones. New messages are
        // tracked only when something in the batch targets a message (never on the hot path).
        let targeting = batch.iter().any(|e| e.op.target().is_some());
        let mut targets = facts.targets.clone();
        let mut reactions = facts.reactions.clone();
        let mut uploads = facts.uploads.clone();
        let mut plan = Plan {
            outcomes: Vec::with_capacity(batch.len()),
            rows: Vec::new(),
            edits: Vec::new(),
            reactions: Vec::new(),
            deletes: Vec::new(),
            posts: Vec::new(),
            purged: Vec::new(),
            mentions: Vec::new(),
            last_seq: Vec::new(),
            active: Vec::new(),
            read_marks: Vec::new(),
        };
        let mut active = HashSet::new();
        for m in batch {
            let key = (m.sender.id, m.client_id.clone());
            let outcome = if let Some(stored) = facts.stored.get(&key) {
                Outcome::Stored(stored.clone())
            } else if let Some(&row) = earlier.get(&(m.sender.id, m.client_id.as_str())) {
                Outcome::Row { row, first: false }
            } else if !facts.members.contains_key(&(m.conv, m.sender.id)) {
                if last_seq.contains_key(&m.conv) {
                    Outcome::NotMember
                } else {
                    Outcome::UnknownConversation
                }
            } else if !last_seq.contains_key(&m.conv) {
                // A membership of a conversation that does not exist cannot happen (foreign
                // key), but if it did, refusing is the honest answer.
                Outcome::UnknownConversation
            } else {
                let role = facts.members[&(m.conv, m.sender.id)];
                match check(m, role, &targets, &reactions)
                    .and_then(|quote| Ok((quote, claim(m, &mut uploads)?)))
                {
                    Err(refusal) => Outcome::Refused(refusal),
                    Ok((quote, attachment)) => {
                        let seq = last_seq.get_mut(&m.conv).expect("checked above");
                        *seq += 1;
                        let seq = *seq;
                        apply(m, seq, targeting, &mut targets, &mut reactions, &mut plan);
                        if let Some(id) = m.op.attachment() {
                            plan.posts.push((m.conv, seq, id));
                        }
                        if let Op::Message { .. } = m.op {
                            read_marks.insert((m.conv, m.sender.id), seq);
                            if active.insert(m.conv) {
                                plan.active.push(m.conv);
                            }
                        }
                        earlier.insert((m.sender.id, m.client_id.as_str()), plan.rows.len());
                        plan.rows.push(NewRow {
                            entry: m,
                            seq,
                            quote,
                            attachment,
                        });
                        Outcome::Row {
                            row: plan.rows.len() - 1,
                            first: true,
                        }
                    }
                }
            };
            plan.outcomes.push(outcome);
        }
        plan.last_seq = last_seq
            .into_iter()
            .filter(|(conv, seq)| facts.last_seq.get(conv) != Some(seq))
            .collect();
        plan.last_seq.sort_unstable();
        plan.active.sort_unstable();
        plan.read_marks = read_marks
            .into_iter()
            .map(|((conv, user), seq)| (conv, user, seq))
            .collect();
        plan.read_marks.sort_unstable();
        plan
    }

    /// What became of each entry, given the ids the database gave the new rows (in row order)
    /// and the time they were stored.
    pub fn finish(self, ids: &[MessageId], now: i64) -> Vec<Appended> {
        let at = time(now);
        let built: Vec<Entry> = self
            .rows
            .into_iter()
            .zip(ids)
            .map(|(row, id)| {
                let e = row.entry;
                match &e.op {
                    Op::Message { body, .. } => Entry::Message(Message {
                        conv: e.conv,
                        seq: row.seq,
                        id: *id,
                        client_id: e.client_id.clone(),
                        sender: e.sender.clone(),
                        body: body.as_str().to_owned(),
                        at,
                        reply_to: row.quote,
                        edited_at: None,
                        deleted: false,
                        reactions: Vec::new(),
                        attachment: row.attachment.map(Box::new),
                    }),
                    op => Entry::Event(Event {
                        conv: e.conv,
                        seq: row.seq,
                        id: *id,
                        client_id: e.client_id.clone(),
                        sender: e.sender.clone(),
                        at,
                        change: match op {
                            Op::Edit { target, body } => Change::Edit {
                                target: *target,
                                body: body.as_str().to_owned(),
                            },
                            Op::Delete { target } => Change::Delete { target: *target },
                            Op::React { target, emoji, on } => Change::React {
                                target: *target,
                                emoji: emoji.as_str().to_owned(),
                                on: *on,
                            },
                            Op::Message { .. } => unreachable!("matched above"),
                        },
                    }),
                }
            })
            .collect();
        self.outcomes
            .into_iter()
            .map(|outcome| match outcome {
                Outcome::Row { row, first: true } => Appended::Stored(built[row].clone()),
                Outcome::Row { row, first: false } => Appended::Duplicate(receipt(&built[row])),
                Outcome::Stored(receipt) => Appended::Duplicate(receipt),
                Outcome::NotMember => Appended::NotMember,
                Outcome::UnknownConversation => Appended::UnknownConversation,
                Outcome::Refused(r) => Appended::Refused(r),
            })
            .collect()
    }
}

fn receipt(e: &Entry) -> Receipt {
    Receipt {
        conv: e.conv(),
        seq: e.seq(),
        id: e.id(),
        client_id: e.client_id().to_owned(),
        at: e.at(),
    }
}

/// The upload `m` posts, if any: it must be the sender's and not posted yet (in the database or
/// earlier in the batch). Someone else's id is refused like an unknown one, so it tells the
/// sender nothing about it. Marks it posted for the rest of the batch.
fn claim(
    m: &NewEntry,
    uploads: &mut HashMap<AttachmentId, Upload>,
) -> Result<Option<Attachment>, Refusal> {
    let Some(id) = m.op.attachment() else {
        return Ok(None);
    };
    match uploads.get_mut(id) {
        Some(upload) if upload.uploader == m.sender.id && !upload.posted => {
            upload.posted = true;
            Ok(Some(upload.attachment.clone()))
        }
        _ => Err(Refusal::UnknownAttachment),
    }
}

/// The permission rules: may `m` be stored, given the state so far? A reply gets its quote.
fn check(
    m: &NewEntry,
    role: Role,
    targets: &HashMap<(ConvId, Seq), Target>,
    reactions: &HashMap<(ConvId, Seq, UserId), HashSet<String>>,
) -> Result<Option<Quote>, Refusal> {
    let Some(seq) = m.op.target() else {
        return Ok(None);
    };
    let target = targets.get(&(m.conv, seq)).ok_or(Refusal::UnknownMessage)?;
    if target.deleted {
        return Err(Refusal::MessageDeleted);
    }
    let mine = target.sender.id == m.sender.id;
    match &m.op {
        Op::Message { .. } => {
            return Ok(Some(Quote {
                seq,
                sender: target.sender.clone(),
                excerpt: excerpt(&target.body),
                deleted: false,
            }))
        }
        Op::Edit { .. } if !mine => return Err(Refusal::NotAllowed),
        Op::Delete { .. } if !mine && !role.manages() => return Err(Refusal::NotAllowed),
        Op::React {
            emoji, on: true, ..
        } => {
            let have = reactions.get(&(m.conv, seq, m.sender.id));
            let len = have.map_or(0, HashSet::len);
            let has = have.is_some_and(|set| set.contains(emoji.as_str()));
            if !has && len >= MAX_REACTIONS_PER_PERSON {
                return Err(Refusal::TooManyReactions);
            }
        }
        _ => {}
    }
    Ok(None)
}

/// Records the effects of an accepted entry: in the plan's writes, and in the batch's view of
/// the state for the entries after it.
fn apply<'a>(
    m: &'a NewEntry,
    seq: Seq,
    targeting: bool,
    targets: &mut HashMap<(ConvId, Seq), Target>,
    reactions: &mut HashMap<(ConvId, Seq, UserId), HashSet<String>>,
    plan: &mut Plan<'a>,
) {
    match &m.op {
        Op::Message {
            body, attachment, ..
        } => {
            if body.as_str().contains('@') {
                let names = app::mentions::mentioned(body.as_str());
                if !names.is_empty() {
                    plan.mentions.push(Mentions {
                        conv: m.conv,
                        seq,
                        sender: m.sender.id,
                        names,
                    });
                }
            }
            if targeting {
                targets.insert(
                    (m.conv, seq),
                    Target {
                        sender: m.sender.clone(),
                        body: body.as_str().to_owned(),
                        deleted: false,
                        attachment: attachment.clone(),
                    },
                );
            }
        }
        Op::Edit { target, body } => {
            if let Some(t) = targets.get_mut(&(m.conv, *target)) {
                t.body = body.as_str().to_owned();
            }
            plan.edits.push((m.conv, *target, body.as_str()));
        }
        Op::Delete { target } => {
            if let Some(t) = targets.get_mut(&(m.conv, *target)) {
                t.body.clear();
                t.deleted = true;
                plan.purged.extend(t.attachment.take());
            }
            reactions.retain(|(conv, seq, _), _| (*conv, *seq) != (m.conv, *target));
            plan.deletes.push((m.conv, *target));
        }
        Op::React { target, emoji, on } => {
            let set = reactions.entry((m.conv, *target, m.sender.id)).or_default();
            if *on {
                set.insert(emoji.as_str().to_owned());
            } else {
                set.remove(emoji.as_str());
            }
            plan.reactions.push(ReactionChange {
                conv: m.conv,
                target: *target,
                user: m.sender.id,
                emoji: emoji.as_str(),
                on: *on,
            });
        }
    }
}

impl Store {
    /// Stores a batch of entries in ONE transaction (group commit) and says what became of each.
    /// Each stored entry gets the conversation's next seq; a repeated (sender, client_id)
    /// returns the original's receipt instead of storing it twice.
    pub async fn append(&self, batch: Vec<NewEntry>) -> Result<Vec<Appended>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let (appended, purged) = match &self.writer {
            Some(writer) => writer.append(batch).await?,
            None => self.append_retrying(&batch).await?,
        };
        // The deleted messages' attachment rows went in the transaction, so nobody can fetch
        // them any more; now their bytes go. Should that fail, they are orphans for the sweep.
        if !purged.is_empty() {
            if let Err(e) = self.blobs.delete(&purged).await {
                tracing::warn!(error = %e, "deleting a deleted message's attachment failed");
            }
        }
        Ok(appended)
    }

    async fn append_retrying(&self, batch: &[NewEntry]) -> Result<Done> {
        // Another node's batch may deadlock with ours despite the lock order below (e.g. on
        // index locks); the database then rolls one back whole, and trying again is safe.
        let mut attempt = 0;
        loop {
            match self.append_mysql(batch).await {
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

    /// The MySQL/MariaDB executor: seven statements per batch of plain messages whatever its
    /// size; edits, deletions, reactions and replies add their own (rare) statements.
    async fn append_mysql(&self, batch: &[NewEntry]) -> Result<Done> {
        debug_assert_eq!(self.dialect, Dialect::MySql);
        let keys = Keys::of(batch);
        let mut tx = self.write().await?;
        let now = now_ms();
        let mut facts = Facts::default();

        // 1. Lock the batch's conversations in id order (so two nodes' batches queue instead of
        //    deadlocking) and read their last seqs.
        let mut convs = keys.convs.clone();
        convs.sort_unstable();
        let sql = format!(
            "SELECT id, last_seq FROM conversations WHERE id IN ({}) ORDER BY id FOR UPDATE",
            repeat(convs.len(), "?", ", ")
        );
        let mut query = sqlx::query(&sql);
        for conv in &convs {
            query = query.bind(conv.0);
        }
        for row in query.fetch_all(&mut *tx).await? {
            facts
                .last_seq
                .insert(ConvId(row.try_get("id")?), row.try_get("last_seq")?);
        }

        // 2. Memberships of the senders.
        let sql = format!(
            "SELECT conv_id, user_id, role FROM members WHERE {}",
            repeat(
                keys.memberships.len(),
                "(conv_id = ? AND user_id = ?)",
                " OR "
            )
        );
        let mut query = sqlx::query(&sql);
        for (conv, user) in &keys.memberships {
            query = query.bind(conv.0).bind(user.0);
        }
        for row in query.fetch_all(&mut *tx).await? {
            facts.members.insert(
                (
                    ConvId(row.try_get("conv_id")?),
                    UserId(row.try_get("user_id")?),
                ),
                Role::from_column(row.try_get("role")?),
            );
        }

        // 3. Client ids already stored (re-sends after a reconnect).
        let sql = format!(
            "SELECT conv_id, seq, id, sender_id, client_id, created_at FROM messages WHERE {}",
            repeat(
                keys.client_ids.len(),
                "(sender_id = ? AND client_id = ?)",
                " OR "
            )
        );
        let mut query = sqlx::query(&sql);
        for (sender, client_id) in &keys.client_ids {
            query = query.bind(sender.0).bind(*client_id);
        }
        for row in query.fetch_all(&mut *tx).await? {
            let receipt = Receipt {
                conv: ConvId(row.try_get("conv_id")?),
                seq: row.try_get("seq")?,
                id: MessageId(row.try_get("id")?),
                client_id: row.try_get("client_id")?,
                at: time(row.try_get("created_at")?),
            };
            let sender = UserId(row.try_get("sender_id")?);
            facts
                .stored
                .insert((sender, receipt.client_id.clone()), receipt);
        }

        // 3b. Only for edits, deletions, reactions and replies: their targets, and the
        //     reactors' emoji on them.
        if !keys.targets.is_empty() {
            let sql = format!(
                "SELECT m.conv_id, m.seq, m.sender_id, u.username, m.body, m.deleted, \
                 a.id AS attachment FROM messages m JOIN users u ON u.id = m.sender_id \
                 LEFT JOIN attachments a ON a.conv_id = m.conv_id AND a.seq = m.seq \
                 WHERE m.kind = 'message' AND ({})",
                repeat(keys.targets.len(), "(m.conv_id = ? AND m.seq = ?)", " OR ")
            );
            let mut query = sqlx::query(&sql);
            for (conv, seq) in &keys.targets {
                query = query.bind(conv.0).bind(*seq);
            }
            for row in query.fetch_all(&mut *tx).await? {
                facts.targets.insert(
                    (ConvId(row.try_get("conv_id")?), row.try_get("seq")?),
                    Target {
                        sender: UserRef {
                            id: UserId(row.try_get("sender_id")?),
                            username: row.try_get("username")?,
                        },
                        body: row.try_get("body")?,
                        deleted: row.try_get::<i64, _>("deleted")? != 0,
                        attachment: row
                            .try_get::<Option<String>, _>("attachment")?
                            .and_then(|id| AttachmentId::parse(id).ok()),
                    },
                );
            }
        }
        // 3c. Only for messages with attachments: the uploads they post.
        if !keys.uploads.is_empty() {
            let sql = format!(
                "SELECT id, uploader_id, conv_id, name, size, content_type, width, height \
                 FROM attachments WHERE id IN ({}) FOR UPDATE",
                repeat(keys.uploads.len(), "?", ", ")
            );
            let mut query = sqlx::query(&sql);
            for id in &keys.uploads {
                query = query.bind(id.as_str());
            }
            for row in query.fetch_all(&mut *tx).await? {
                let upload = UploadRow::from_row(&row)?;
                if let Some((id, upload)) = upload.into_fact() {
                    facts.uploads.insert(id, upload);
                }
            }
        }
        if !keys.reactors.is_empty() {
            let sql = format!(
                "SELECT conv_id, seq, user_id, emoji FROM reactions WHERE {}",
                repeat(
                    keys.reactors.len(),
                    "(conv_id = ? AND seq = ? AND user_id = ?)",
                    " OR "
                )
            );
            let mut query = sqlx::query(&sql);
            for (conv, seq, user) in &keys.reactors {
                query = query.bind(conv.0).bind(*seq).bind(user.0);
            }
            for row in query.fetch_all(&mut *tx).await? {
                facts
                    .reactions
                    .entry((
                        ConvId(row.try_get("conv_id")?),
                        row.try_get("seq")?,
                        UserId(row.try_get("user_id")?),
                    ))
                    .or_default()
                    .insert(row.try_get("emoji")?);
            }
        }

        let mut plan = Plan::new(batch, &facts);
        let mut ids = Vec::with_capacity(plan.rows.len());
        if !plan.rows.is_empty() {
            // 4. The rows, in one statement; AUTO_INCREMENT picks the ids. Plain messages leave
            //    the log's columns to their defaults.
            let plain = plan.rows.iter().all(|r| r.entry.op.is_plain());
            let sql = if plain {
                format!(
                    "INSERT INTO messages (conv_id, seq, id, sender_id, client_id, body, created_at) \
                     VALUES {}",
                    repeat(plan.rows.len(), "(?, ?, NULL, ?, ?, ?, ?)", ", ")
                )
            } else {
                format!(
                    "INSERT INTO messages (conv_id, seq, id, sender_id, client_id, body, created_at, \
                     kind, target_seq) VALUES {}",
                    repeat(plan.rows.len(), "(?, ?, NULL, ?, ?, ?, ?, ?, ?)", ", ")
                )
            };
            let mut query = sqlx::query(&sql);
            for row in &plan.rows {
                let m = row.entry;
                query = query
                    .bind(m.conv.0)
                    .bind(row.seq)
                    .bind(m.sender.id.0)
                    .bind(m.client_id.as_str())
                    .bind(m.op.stored_body())
                    .bind(now);
                if !plain {
                    query = query.bind(m.op.kind()).bind(m.op.target());
                }
            }
            query.execute(&mut *tx).await?;
            // 4b. Their stream events, in the same transaction (one statement).
            super::outbox::record_appended_mysql(&mut tx, &plan.rows, now).await?;

            // 5. The ids it picked (consecutive is not promised under concurrent inserts).
            let sql = format!(
                "SELECT conv_id, seq, id FROM messages WHERE {}",
                repeat(
                    plan.last_seq.len(),
                    "(conv_id = ? AND seq > ? AND seq <= ?)",
                    " OR "
                )
            );
            let mut query = sqlx::query(&sql);
            for (conv, last) in &plan.last_seq {
                query = query.bind(conv.0).bind(facts.last_seq[conv]).bind(*last);
            }
            let mut by_seq = HashMap::new();
            for row in query.fetch_all(&mut *tx).await? {
                let key: (i64, i64) = (row.try_get("conv_id")?, row.try_get("seq")?);
                by_seq.insert(key, MessageId(row.try_get("id")?));
            }
            for row in &plan.rows {
                let id = by_seq.get(&(row.entry.conv.0, row.seq)).ok_or_else(|| {
                    StoreError::Db(sqlx::Error::Protocol(
                        "an inserted message could not be read back".into(),
                    ))
                })?;
                ids.push(*id);
            }

            // 5a. Mentions of members, one statement per message that names anyone (before the
            //     effects: a deletion later in the batch takes them away again).
            for mention in &plan.mentions {
                let sql = mention.insert_sql();
                let mut query = sqlx::query(&sql)
                    .bind(mention.conv.0)
                    .bind(mention.seq)
                    .bind(mention.conv.0)
                    .bind(mention.sender.0);
                for name in &mention.names {
                    query = query.bind(name.as_str());
                }
                query.execute(&mut *tx).await?;
            }

            // 5b. The effects on messages' current state, in batch order by kind (the plan has
            //     refused whatever a deletion earlier in the batch made impossible).
            for (conv, seq, body) in &plan.edits {
                sqlx::query(
                    "UPDATE messages SET body = ?, edited_at = ? WHERE conv_id = ? AND seq = ?",
                )
                .bind(*body)
                .bind(now)
                .bind(conv.0)
                .bind(*seq)
                .execute(&mut *tx)
                .await?;
            }
            for r in &plan.reactions {
                let sql = if r.on {
                    self.dialect.insert_or_ignore(
                        "INSERT INTO reactions (conv_id, seq, user_id, emoji, created_at) \
                         VALUES (?, ?, ?, ?, ?)",
                    )
                } else {
                    "DELETE FROM reactions WHERE conv_id = ? AND seq = ? AND user_id = ? \
                     AND emoji = ?"
                        .to_owned()
                };
                let mut query = sqlx::query(&sql)
                    .bind(r.conv.0)
                    .bind(r.target)
                    .bind(r.user.0)
                    .bind(r.emoji);
                if r.on {
                    query = query.bind(now);
                }
                query.execute(&mut *tx).await?;
            }
            for (conv, seq, id) in &plan.posts {
                sqlx::query("UPDATE attachments SET conv_id = ?, seq = ? WHERE id = ?")
                    .bind(conv.0)
                    .bind(*seq)
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            for (conv, seq) in &plan.deletes {
                for table in ["reactions", "mentions", "attachments"] {
                    sqlx::query(&format!(
                        "DELETE FROM {table} WHERE conv_id = ? AND seq = ?"
                    ))
                    .bind(conv.0)
                    .bind(*seq)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "UPDATE messages SET body = '', deleted = 1 WHERE conv_id = ? AND seq = ?",
                )
                .bind(conv.0)
                .bind(*seq)
                .execute(&mut *tx)
                .await?;
            }

            // 6. The conversations' new last seqs (and the activity time of those with news).
            let active = if plan.active.is_empty() {
                String::new()
            } else {
                format!(
                    ", updated_at = CASE WHEN id IN ({}) THEN ? ELSE updated_at END",
                    repeat(plan.active.len(), "?", ", ")
                )
            };
            let sql = format!(
                "UPDATE conversations SET last_seq = CASE id {} END{active} WHERE id IN ({})",
                repeat(plan.last_seq.len(), "WHEN ? THEN ?", " "),
                repeat(plan.last_seq.len(), "?", ", ")
            );
            let mut query = sqlx::query(&sql);
            for (conv, seq) in &plan.last_seq {
                query = query.bind(conv.0).bind(*seq);
            }
            if !plan.active.is_empty() {
                for conv in &plan.active {
                    query = query.bind(conv.0);
                }
                query = query.bind(now);
            }
            for (conv, _) in &plan.last_seq {
                query = query.bind(conv.0);
            }
            query.execute(&mut *tx).await?;

            // 7. The senders have read their own messages.
            if !plan.read_marks.is_empty() {
                let sql = format!(
                    "UPDATE members SET last_read_seq = CASE {} ELSE last_read_seq END WHERE {}",
                    repeat(
                        plan.read_marks.len(),
                        "WHEN conv_id = ? AND user_id = ? THEN ?",
                        " "
                    ),
                    repeat(
                        plan.read_marks.len(),
                        "(conv_id = ? AND user_id = ?)",
                        " OR "
                    )
                );
                let mut query = sqlx::query(&sql);
                for (conv, user, seq) in &plan.read_marks {
                    query = query.bind(conv.0).bind(user.0).bind(*seq);
                }
                for (conv, user, _) in &plan.read_marks {
                    query = query.bind(conv.0).bind(user.0);
                }
                query.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        let purged = std::mem::take(&mut plan.purged);
        Ok((plan.finish(&ids, now), purged))
    }
}

/// What an executor answers: what became of each entry, and the attachments whose bytes are to
/// go now that their messages' deletion is committed.
pub type Done = (Vec<Appended>, Vec<AttachmentId>);

/// An upload's row as the plan needs it.
#[derive(Debug, sqlx::FromRow)]
pub struct UploadRow {
    pub id: String,
    pub uploader_id: i64,
    pub conv_id: Option<i64>,
    pub name: String,
    pub size: i64,
    pub content_type: String,
    pub width: Option<i64>,
    pub height: Option<i64>,
}

impl UploadRow {
    pub fn into_fact(self) -> Option<(AttachmentId, Upload)> {
        let id = AttachmentId::parse(self.id).ok()?;
        let upload = Upload {
            uploader: UserId(self.uploader_id),
            posted: self.conv_id.is_some(),
            attachment: Attachment {
                id: id.clone(),
                name: self.name,
                size: u64::try_from(self.size).unwrap_or(0),
                content_type: self.content_type,
                width: self.width.and_then(|w| u32::try_from(w).ok()),
                height: self.height.and_then(|h| u32::try_from(h).ok()),
            },
        };
        Some((id, upload))
    }
}

/// `n` copies of `item` joined by `separator`: the placeholders of a statement built per batch.
fn repeat(n: usize, item: &str, separator: &str) -> String {
    vec![item; n].join(separator)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64) -> UserRef {
        UserRef {
            id: UserId(id),
            username: format!("u{id}"),
        }
    }

    fn entry(sender: i64, conv: i64, client_id: &str, op: Op) -> NewEntry {
        NewEntry {
            sender: user(sender),
            conv: ConvId(conv),
            client_id: client_id.into(),
            op,
        }
    }

    fn msg(sender: i64, conv: i64, client_id: &str) -> NewEntry {
        NewEntry::message(
            user(sender),
            ConvId(conv),
            client_id.into(),
            Body::parse(format!("body of {client_id}")).unwrap(),
        )
    }

    fn edit(sender: i64, conv: i64, client_id: &str, target: Seq) -> NewEntry {
        let body = Body::parse(format!("edited by {client_id}")).unwrap();
        entry(sender, conv, client_id, Op::Edit { target, body })
    }

    fn react(
        sender: i64,
        conv: i64,
        client_id: &str,
        target: Seq,
        emoji: &str,
        on: bool,
    ) -> NewEntry {
        let emoji = Emoji::parse(emoji.into()).unwrap();
        entry(sender, conv, client_id, Op::React { target, emoji, on })
    }

    fn target(sender: i64, deleted: bool) -> Target {
        Target {
            sender: user(sender),
            body: "the original".into(),
            deleted,
            attachment: None,
        }
    }

    /// Conversation 10 at seq 5 with members 1 (owner) and 2; messages 3 (by 2) and 4 (by 1,
    /// deleted).
    fn facts() -> Facts {
        Facts {
            last_seq: HashMap::from([(ConvId(10), 5)]),
            members: HashMap::from([
                ((ConvId(10), UserId(1)), Role::Owner),
                ((ConvId(10), UserId(2)), Role::Member),
            ]),
            targets: HashMap::from([
                ((ConvId(10), 3), target(2, false)),
                ((ConvId(10), 4), target(1, true)),
            ]),
            ..Facts::default()
        }
    }

    fn kinds(out: &[Appended]) -> Vec<String> {
        out.iter()
            .map(|a| match a {
                Appended::Stored(Entry::Message(m)) => format!("message {}", m.seq),
                Appended::Stored(Entry::Event(e)) => format!("{} {}", e.change.kind(), e.seq),
                Appended::Duplicate(r) => format!("dup {}", r.seq),
                Appended::NotMember => "not_member".into(),
                Appended::UnknownConversation => "unknown_conversation".into(),
                Appended::Refused(r) => format!("{r:?}"),
            })
            .collect()
    }

    #[test]
    fn seqs_follow_each_conversation_and_read_marks_the_senders_newest() {
        let batch = [
            msg(1, 10, "a"),
            msg(2, 10, "b"),
            msg(1, 20, "c"),
            msg(1, 10, "d"),
        ];
        let facts = Facts {
            last_seq: HashMap::from([(ConvId(10), 5), (ConvId(20), 0)]),
            members: HashMap::from([
                ((ConvId(10), UserId(1)), Role::Member),
                ((ConvId(10), UserId(2)), Role::Member),
                ((ConvId(20), UserId(1)), Role::Member),
            ]),
            ..Facts::default()
        };
        let plan = Plan::new(&batch, &facts);
        let seqs: Vec<_> = plan.rows.iter().map(|r| (r.entry.conv.0, r.seq)).collect();
        assert_eq!(seqs, [(10, 6), (10, 7), (20, 1), (10, 8)]);
        assert_eq!(plan.last_seq, [(ConvId(10), 8), (ConvId(20), 1)]);
        assert_eq!(plan.active, [ConvId(10), ConvId(20)]);
        assert!(plan.only_plain(), "plain messages take the hot path");
        assert_eq!(
            plan.read_marks,
            [
                (ConvId(10), UserId(1), 8),
                (ConvId(10), UserId(2), 7),
                (ConvId(20), UserId(1), 1)
            ]
        );
        let ids: Vec<_> = (100..104).map(MessageId).collect();
        let out = plan.finish(&ids, 0);
        assert!(
            matches!(&out[3], Appended::Stored(Entry::Message(m)) if m.seq == 8 && m.id == MessageId(103))
        );
    }

    #[test]
    fn repeats_refusals_and_unknown_conversations_take_no_seq() {
        let stored = Receipt {
            conv: ConvId(10),
            seq: 3,
            id: MessageId(7),
            client_id: "old".into(),
            at: time(0),
        };
        let batch = [
            msg(1, 10, "old"), // stored before: its original comes back
            msg(1, 10, "new"),
            msg(1, 10, "new"), // repeated within the batch
            msg(3, 10, "x"),   // not a member
            msg(1, 99, "y"),   // no such conversation
        ];
        let facts = Facts {
            last_seq: HashMap::from([(ConvId(10), 3)]),
            members: HashMap::from([((ConvId(10), UserId(1)), Role::Member)]),
            stored: HashMap::from([((UserId(1), "old".to_string()), stored.clone())]),
            ..Facts::default()
        };
        let plan = Plan::new(&batch, &facts);
        assert_eq!(plan.rows.len(), 1);
        assert_eq!(plan.last_seq, [(ConvId(10), 4)]);
        let out = plan.finish(&[MessageId(8)], 0);
        assert_eq!(out[0], Appended::Duplicate(stored));
        assert!(matches!(&out[1], Appended::Stored(Entry::Message(m)) if m.seq == 4));
        assert!(matches!(&out[2], Appended::Duplicate(r) if r.seq == 4 && r.id == MessageId(8)));
        assert_eq!(out[3], Appended::NotMember);
        assert_eq!(out[4], Appended::UnknownConversation);
    }

    #[test]
    fn edits_are_the_senders_and_deletions_the_senders_or_the_managers() {
        let batch = [
            edit(1, 10, "e1", 3),                         // not mine
            edit(2, 10, "e2", 3),                         // mine
            edit(2, 10, "e3", 9),                         // no such message
            edit(1, 10, "e4", 4),                         // deleted
            entry(2, 10, "d1", Op::Delete { target: 4 }), // deleted already
            entry(1, 10, "d2", Op::Delete { target: 3 }), // the owner deletes 2's
            edit(2, 10, "e5", 3),                         // deleted just before
            react(1, 10, "r1", 3, "👍", true),            // deleted just before
        ];
        let plan = Plan::new(&batch, &facts());
        assert!(!plan.only_plain());
        assert_eq!(plan.edits, [(ConvId(10), 3, "edited by e2")]);
        assert_eq!(plan.deletes, [(ConvId(10), 3)]);
        assert!(plan.reactions.is_empty());
        assert!(plan.active.is_empty(), "events do not move the list");
        assert!(plan.read_marks.is_empty(), "events are not messages");
        assert_eq!(plan.last_seq, [(ConvId(10), 7)]);
        let out = plan.finish(&[MessageId(50), MessageId(51)], 0);
        assert_eq!(
            kinds(&out),
            [
                "NotAllowed",
                "edit 6",
                "UnknownMessage",
                "MessageDeleted",
                "MessageDeleted",
                "delete 7",
                "MessageDeleted",
                "MessageDeleted"
            ]
        );
        // A member who is not the owner may not delete another's message.
        let batch = [entry(2, 10, "d", Op::Delete { target: 5 })];
        let plan = Plan::new(
            &batch,
            &Facts {
                targets: HashMap::from([((ConvId(10), 5), target(1, false))]),
                ..facts()
            },
        );
        assert_eq!(kinds(&plan.finish(&[], 0)), ["NotAllowed"]);
        // An admin may, like the owner.
        let mut admin = Facts {
            targets: HashMap::from([((ConvId(10), 5), target(1, false))]),
            ..facts()
        };
        admin.members.insert((ConvId(10), UserId(2)), Role::Admin);
        let plan = Plan::new(&batch, &admin);
        assert_eq!(plan.deletes, [(ConvId(10), 5)]);
    }

    #[test]
    fn reactions_toggle_in_order_and_are_capped_per_person() {
        let mut facts = facts();
        let full: HashSet<String> = (0..MAX_REACTIONS_PER_PERSON)
            .map(|i| char::from_u32(0x1F600 + i as u32).unwrap().to_string())
            .collect();
        let first = full.iter().next().unwrap().clone();
        facts.reactions.insert((ConvId(10), 3, UserId(1)), full);
        let batch = [
            react(2, 10, "a", 3, "👍", true),
            react(2, 10, "b", 3, "👍", false),
            react(1, 10, "c", 3, "👍", true), // 1 has the most already
            react(1, 10, "d", 3, &first, true), // one 1 has: no new emoji
            react(1, 10, "e", 3, &first, false),
            react(1, 10, "f", 3, "👍", true), // room again
            react(3, 10, "g", 3, "👍", true), // not a member
        ];
        let plan = Plan::new(&batch, &facts);
        let toggles: Vec<_> = plan
            .reactions
            .iter()
            .map(|r| (r.user.0, r.emoji == "👍", r.on))
            .collect();
        assert_eq!(
            toggles,
            [
                (2, true, true),
                (2, true, false),
                (1, false, true),
                (1, false, false),
                (1, true, true)
            ]
        );
        let ids: Vec<_> = (60..65).map(MessageId).collect();
        let out = plan.finish(&ids, 0);
        assert_eq!(
            kinds(&out),
            [
                "react 6",
                "unreact 7",
                "TooManyReactions",
                "react 8",
                "unreact 9",
                "react 10",
                "not_member"
            ]
        );
    }

    #[test]
    fn an_upload_is_posted_once_and_only_by_its_uploader() {
        let id = |n: u8| AttachmentId::from_random([n; 16]);
        let upload = |n: u8, uploader: i64, posted: bool| {
            let attachment = Attachment {
                id: id(n),
                name: format!("f{n}.png"),
                size: 10,
                content_type: "image/png".into(),
                width: Some(3),
                height: Some(2),
            };
            (
                id(n),
                Upload {
                    uploader: UserId(uploader),
                    posted,
                    attachment,
                },
            )
        };
        let post = |sender: i64, client_id: &str, n: u8| {
            entry(
                sender,
                10,
                client_id,
                Op::Message {
                    body: Body::caption(String::new()).unwrap(),
                    reply_to: None,
                    attachment: Some(id(n)),
                },
            )
        };
        let mut facts = facts();
        facts.uploads =
            HashMap::from([upload(1, 1, false), upload(2, 2, false), upload(3, 1, true)]);
        let batch = [
            post(2, "a", 1), // someone else's
            post(1, "b", 1), // mine
            post(1, "c", 1), // posted just before
            post(1, "d", 3), // posted long ago
            post(1, "e", 9), // no such upload
            post(1, "b", 1), // the same send again
            entry(1, 10, "x", Op::Delete { target: 6 }),
        ];
        let plan = Plan::new(&batch, &facts);
        assert!(!plan.only_plain());
        assert_eq!(plan.posts, [(ConvId(10), 6, &id(1))]);
        assert_eq!(
            plan.purged,
            [id(1)],
            "deleted in the same batch: its bytes go"
        );
        let out = plan.finish(&[MessageId(1), MessageId(2)], 0);
        assert_eq!(
            kinds(&out),
            [
                "UnknownAttachment",
                "message 6",
                "UnknownAttachment",
                "UnknownAttachment",
                "UnknownAttachment",
                "dup 6",
                "delete 7"
            ]
        );
        let Appended::Stored(Entry::Message(m)) = &out[1] else {
            unreachable!()
        };
        assert_eq!(
            m.attachment.as_ref().map(|a| a.name.as_str()),
            Some("f1.png")
        );
    }

    #[test]
    fn a_reply_quotes_its_target_even_one_sent_in_the_same_batch() {
        let reply = |client_id: &str, to: Seq| {
            entry(
                1,
                10,
                client_id,
                Op::Message {
                    body: Body::parse("yes".into()).unwrap(),
                    reply_to: Some(to),
                    attachment: None,
                },
            )
        };
        let batch = [
            reply("r1", 3),
            msg(2, 10, "m"),
            reply("r2", 7),
            reply("r3", 4),
            reply("r4", 99),
        ];
        let plan = Plan::new(&batch, &facts());
        assert!(!plan.only_plain());
        assert_eq!(plan.active, [ConvId(10)]);
        let out = plan.finish(&[MessageId(1), MessageId(2), MessageId(3)], 0);
        let quote = |i: usize| match &out[i] {
            Appended::Stored(Entry::Message(m)) => m
                .reply_to
                .clone()
                .map(|q| (q.seq, q.sender.id.0, q.excerpt)),
            other => panic!("{other:?}"),
        };
        assert_eq!(quote(0), Some((3, 2, "the original".into())));
        assert_eq!(quote(2), Some((7, 2, "body of m".into())));
        assert_eq!(kinds(&out[3..]), ["MessageDeleted", "UnknownMessage"]);
    }
}
