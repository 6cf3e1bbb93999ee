//! The client's delivery rules, as plain data: no signals, no browser, no I/O.
//!
//! A client that keeps the contract of PROTOCOL.md ("Delivery rules a client relies on") needs to
//! remember three things, one type each:
//!
//! - [`Delivery`]: per conversation, the highest seq it holds (the *cursor*), log entries that
//!   arrived ahead of a gap (*parked*), and which gaps it asked for. Given a server frame it answers
//!   with a [`Step`]: the entries (messages and events: edits, deletions, reactions, group events)
//!   that are now next in order (to apply, oldest first) and the `sync` to send, if any. An entry
//!   whose seq is already held is ignored; one that skips a seq is parked and the gap asked for
//!   once; parked entries follow as soon as the gap is filled. [`apply`] applies an event to the
//!   messages shown.
//! - [`Outbox`]: what the user sent that is not shown as stored yet. An entry stays until its
//!   message is shown (it came back as a `message`, or its `ack` turned it into one) and is re-sent
//!   with its original `client_id` after every reconnect; the server stores it once.
//! - [`Inbox`]: the conversation list: newest activity first, each one's last message and how far
//!   I have read it. The unread count is derived from those ([`unread`]), never stored apart.
//!
//! The browser's reactive state (`ui::state::Chat`) holds one of each and does what the [`Step`]
//! says; the unit tests below drive them directly.

use crate::model::{
    excerpt, Attachment, Change, ConvId, Conversation, Entry, Event, Message, MessageId, Reaction,
    Role, Seq, UserId, UserRef, MAX_BODY_CHARS,
};
use crate::protocol::ClientFrame;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Most messages parked ahead of a gap per conversation; past this we drop them and rely on the
/// replay, which brings them again.
const MAX_PARKED: usize = 1000;
/// Most unsent messages the outbox holds.
pub const MAX_OUTBOX: usize = 200;

// ----- what one frame means ----------------------------------------------------------------------

/// What the client should do after a frame.
#[derive(Debug, Default, PartialEq)]
#[must_use]
pub struct Step {
    /// Log entries that are now next in order, oldest first: show or apply them (list preview,
    /// open pane).
    pub show: Vec<Entry>,
    /// Ask the server to replay what comes after these cursors (a gap to fill).
    pub sync: Option<BTreeMap<ConvId, Seq>>,
    /// A message named a conversation this client does not know yet: fetch the list.
    pub refresh_list: bool,
}

impl Step {
    /// The `sync` frame to send, if the step asks for one.
    pub fn sync_frame(&self) -> Option<ClientFrame> {
        self.sync.as_ref().map(|cursors| ClientFrame::Sync {
            cursors: cursors.clone(),
        })
    }
}

/// The server's `ack`: my message `client_id` is stored as `conv`/`seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    pub client_id: String,
    pub conv: ConvId,
    pub id: MessageId,
    pub seq: Seq,
    pub at: DateTime<Utc>,
}

// ----- cursors and gaps ------------------------------------------------------------------------

/// Cursors, parked messages and gap requests: everything about *which* messages the client holds.
#[derive(Debug)]
pub struct Delivery {
    me: UserRef,
    /// The last seq held per conversation: everything up to it has been shown.
    cursors: HashMap<ConvId, Seq>,
    /// Entries that arrived after a gap, waiting for the gap to be filled.
    parked: HashMap<ConvId, BTreeMap<Seq, Entry>>,
    /// Conversations whose gap we asked for and whose replay has not finished yet.
    gap_asked: HashSet<ConvId>,
    /// The highest seq we told the server we have read, per conversation.
    read_sent: HashMap<ConvId, Seq>,
}

impl Delivery {
    pub fn new(me: UserRef) -> Self {
        Delivery {
            me,
            cursors: HashMap::new(),
            parked: HashMap::new(),
            gap_asked: HashSet::new(),
            read_sent: HashMap::new(),
        }
    }

    pub fn me(&self) -> &UserRef {
        &self.me
    }

    /// Follows exactly the conversations of a fresh list (on start and after every reconnect).
    /// Known cursors are kept, so the `sync` that follows replays what we missed; a new
    /// conversation starts at its `last_seq` (its older messages come from history when opened).
    pub fn follow(&mut self, list: &[Conversation]) {
        let ids: HashSet<ConvId> = list.iter().map(|c| c.id).collect();
        self.cursors.retain(|id, _| ids.contains(id));
        self.parked.retain(|id, _| ids.contains(id));
        self.gap_asked.retain(|id| ids.contains(id));
        for c in list {
            self.track(c.id, c.last_seq);
        }
    }

    /// Starts following one conversation at `last_seq`, unless it is followed already.
    pub fn track(&mut self, conv: ConvId, last_seq: Seq) {
        self.cursors.entry(conv).or_insert(last_seq);
    }

    /// Stops following a conversation (I left it or was removed).
    pub fn forget(&mut self, conv: ConvId) {
        self.cursors.remove(&conv);
        self.parked.remove(&conv);
        self.gap_asked.remove(&conv);
        self.read_sent.remove(&conv);
    }

    /// The highest seq held in `conv`, if it is followed.
    pub fn cursor(&self, conv: ConvId) -> Option<Seq> {
        self.cursors.get(&conv).copied()
    }

    /// A freshly opened connection: ask for everything after every cursor. A full sync replaces
    /// any gap request in flight.
    pub fn resync(&mut self) -> ClientFrame {
        self.gap_asked.clear();
        ClientFrame::Sync {
            cursors: self.cursors.iter().map(|(k, v)| (*k, *v)).collect(),
        }
    }

    /// A `message` frame: see [`Delivery::on_entry`].
    pub fn on_message(&mut self, m: Message, outbox: &mut Outbox) -> Step {
        self.on_entry(Entry::Message(m), outbox)
    }

    /// An `event` frame: see [`Delivery::on_entry`].
    pub fn on_event(&mut self, e: Event, outbox: &mut Outbox) -> Step {
        self.on_entry(Entry::Event(e), outbox)
    }

    /// A log entry: ignore what we hold, park what comes after a gap (and ask for the gap once),
    /// show what comes next in order together with anything parked right behind it.
    pub fn on_entry(&mut self, m: Entry, outbox: &mut Outbox) -> Step {
        let conv = m.conv();
        let seq = m.seq();
        let mut step = Step::default();
        match self.cursor(conv) {
            None => {
                // A conversation we have not heard of (its `conversation` frame may still be on its
                // way): show the entry and fetch the list for its title.
                self.cursors.insert(conv, seq);
                step.show.push(m);
                step.refresh_list = true;
            }
            Some(held) if seq <= held => {}
            Some(held) if seq == held + 1 => {
                step.show.push(m);
                let mut next = held + 2;
                if let Some(parked) = self.parked.get_mut(&conv) {
                    while let Some(p) = parked.remove(&next) {
                        step.show.push(p);
                        next += 1;
                    }
                    // Anything parked at or below the new cursor is a duplicate now.
                    parked.retain(|seq, _| *seq >= next);
                }
                self.cursors.insert(conv, next - 1);
            }
            Some(held) => {
                let parked = self.parked.entry(conv).or_default();
                if parked.len() < MAX_PARKED {
                    parked.entry(seq).or_insert(m);
                }
                if self.gap_asked.insert(conv) {
                    step.sync = Some(BTreeMap::from([(conv, held)]));
                }
            }
        }
        // My entries leave the outbox once they are shown as stored.
        for m in &step.show {
            if m.sender().id == self.me.id {
                outbox.take(m.client_id());
            }
        }
        step
    }

    /// An `ack` for a message of mine. The server may not send that message back to this
    /// connection, so the ack and the outbox entry together *are* the message (sender me, body
    /// from the entry, seq/id/time from the ack), under exactly the rules of a `message` frame
    /// with that seq; a `message` frame for it that comes anyway is then a duplicate.
    pub fn on_ack(&mut self, ack: Ack, outbox: &mut Outbox) -> Step {
        let held = self.cursor(ack.conv);
        if held.is_some_and(|held| ack.seq <= held) {
            // Already shown (its `message` frame came first): it is stored, nothing is pending.
            outbox.take(&ack.client_id);
            return Step::default();
        }
        let Some(entry) = outbox.get(&ack.client_id) else {
            // Not ours to rebuild (the outbox forgot it): fetch it like any gap.
            return match held {
                Some(held) if self.gap_asked.insert(ack.conv) => Step {
                    sync: Some(BTreeMap::from([(ack.conv, held)])),
                    ..Step::default()
                },
                Some(_) => Step::default(),
                None => Step {
                    refresh_list: true,
                    ..Step::default()
                },
            };
        };
        let entry = match &entry.change {
            None => Entry::Message(Message {
                conv: ack.conv,
                seq: ack.seq,
                id: ack.id,
                client_id: ack.client_id,
                sender: self.me.clone(),
                body: entry.body.clone(),
                at: ack.at,
                reply_to: entry.reply_to.clone(),
                edited_at: None,
                deleted: false,
                reactions: Vec::new(),
                attachment: entry.attachment.clone().map(Box::new),
            }),
            Some(change) => Entry::Event(Event {
                conv: ack.conv,
                seq: ack.seq,
                id: ack.id,
                client_id: ack.client_id,
                sender: self.me.clone(),
                at: ack.at,
                change: change.clone(),
            }),
        };
        self.on_entry(entry, outbox)
    }

    /// `synced`: the replay is complete. A conversation still holding parked messages has a gap
    /// the replay did not fill (they came live while it ran), so ask once more.
    pub fn on_synced(&mut self) -> Step {
        self.gap_asked.clear();
        let mut again = BTreeMap::new();
        for (conv, parked) in &self.parked {
            if !parked.is_empty() {
                if let Some(held) = self.cursors.get(conv) {
                    again.insert(*conv, *held);
                }
            }
        }
        self.gap_asked.extend(again.keys().copied());
        Step {
            sync: (!again.is_empty()).then_some(again),
            ..Step::default()
        }
    }

    /// The `read` receipt to send for having read `conv` up to `seq`: once per new seq.
    pub fn read_receipt(&mut self, conv: ConvId, seq: Seq) -> Option<ClientFrame> {
        let sent = self.read_sent.entry(conv).or_insert(0);
        (seq > *sent).then(|| {
            *sent = seq;
            ClientFrame::Read { conv, seq }
        })
    }
}

// ----- the outbox ------------------------------------------------------------------------------

/// A message the user sent, or a change they made (edit, deletion, reaction), that is not shown
/// as stored yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub client_id: String,
    pub conv: ConvId,
    /// The message's text (empty for a change).
    pub body: String,
    /// Set when the server refused it; the user may retry or discard it.
    #[serde(default)]
    pub failed: Option<String>,
    /// The message this one answers, quoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<crate::model::Quote>,
    /// Not a message but this change to one (`edit`, `delete` or `react`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// The uploaded file this message posts (already on the server, not yet posted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
}

impl OutboxEntry {
    /// The frame for this entry (the same `client_id` every time).
    pub fn frame(&self) -> ClientFrame {
        let (conv, client_id) = (self.conv, self.client_id.clone());
        match &self.change {
            None => ClientFrame::Send {
                conv,
                client_id,
                body: self.body.clone(),
                reply_to: self.reply_to.as_ref().map(|q| q.seq),
                attachment: self.attachment.as_ref().map(|a| a.id.clone()),
            },
            Some(Change::Edit { target, body }) => ClientFrame::Edit {
                conv,
                client_id,
                target: *target,
                body: body.clone(),
            },
            Some(Change::Delete { target }) => ClientFrame::Delete {
                conv,
                client_id,
                target: *target,
            },
            Some(Change::React { target, emoji, on }) => ClientFrame::React {
                conv,
                client_id,
                target: *target,
                emoji: emoji.clone(),
                on: *on,
            },
            // Group events are made by the server, never queued by a client.
            Some(_) => ClientFrame::Ping,
        }
    }

    /// A message (not a change): shown as pending in its conversation.
    pub fn is_message(&self) -> bool {
        self.change.is_none()
    }
}

/// Unacknowledged messages, oldest first. Saved in localStorage by the browser so that a reload
/// still sends them (see `client::storage`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outbox {
    entries: Vec<OutboxEntry>,
}

impl Outbox {
    /// The outbox an earlier page saved.
    pub fn restore(saved: Vec<OutboxEntry>) -> Self {
        Outbox {
            entries: saved.into_iter().take(MAX_OUTBOX).collect(),
        }
    }

    pub fn entries(&self) -> &[OutboxEntry] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The messages (not changes) of one conversation, oldest first.
    pub fn pending_in(&self, conv: ConvId) -> impl Iterator<Item = &OutboxEntry> {
        self.entries
            .iter()
            .filter(move |e| e.conv == conv && e.is_message())
    }

    pub fn get(&self, client_id: &str) -> Option<&OutboxEntry> {
        self.entries.iter().find(|e| e.client_id == client_id)
    }

    /// Queues `body` for `conv` under a fresh `client_id` and returns the frame to send. The
    /// error is for the person when the message cannot even be queued.
    pub fn queue(
        &mut self,
        conv: ConvId,
        client_id: String,
        body: String,
        reply_to: Option<crate::model::Quote>,
    ) -> Result<ClientFrame, String> {
        check_body(&body)?;
        self.push(OutboxEntry {
            client_id,
            conv,
            body,
            failed: None,
            reply_to,
            change: None,
            attachment: None,
        })
    }

    /// Queues a message posting `attachment` (uploaded already), with `body` as its optional
    /// caption, and returns the frame to send.
    pub fn queue_attachment(
        &mut self,
        conv: ConvId,
        client_id: String,
        body: String,
        attachment: Attachment,
    ) -> Result<ClientFrame, String> {
        let body = if body.trim().is_empty() {
            String::new()
        } else {
            check_body(&body)?;
            body
        };
        self.push(OutboxEntry {
            client_id,
            conv,
            body,
            failed: None,
            reply_to: None,
            change: None,
            attachment: Some(attachment),
        })
    }

    /// Queues a change to a message (edit, deletion, reaction) under a fresh `client_id` and
    /// returns the frame to send.
    pub fn queue_change(
        &mut self,
        conv: ConvId,
        client_id: String,
        change: Change,
    ) -> Result<ClientFrame, String> {
        if let Change::Edit { body, .. } = &change {
            check_body(body)?;
        }
        self.push(OutboxEntry {
            client_id,
            conv,
            body: String::new(),
            failed: None,
            reply_to: None,
            change: Some(change),
            attachment: None,
        })
    }

    fn push(&mut self, entry: OutboxEntry) -> Result<ClientFrame, String> {
        if self.entries.len() >= MAX_OUTBOX {
            return Err("Too many unsent messages; wait for the connection to come back.".into());
        }
        let frame = entry.frame();
        self.entries.push(entry);
        Ok(frame)
    }

    /// Removes an entry (its message is shown as stored, or the user discarded it).
    pub fn take(&mut self, client_id: &str) -> Option<OutboxEntry> {
        let at = self.entries.iter().position(|e| e.client_id == client_id)?;
        Some(self.entries.remove(at))
    }

    /// The server refused an entry: keep it, with the reason, until retried or discarded.
    pub fn refused(&mut self, client_id: &str, reason: String) -> bool {
        match self.entries.iter_mut().find(|e| e.client_id == client_id) {
            Some(e) => {
                e.failed = Some(reason);
                true
            }
            None => false,
        }
    }

    /// Clears a refusal and returns the frame to send again.
    pub fn retry(&mut self, client_id: &str) -> Option<ClientFrame> {
        let e = self.entries.iter_mut().find(|e| e.client_id == client_id)?;
        e.failed = None;
        Some(e.frame())
    }

    /// The frames to send after a reconnect: every entry not refused, with its original id.
    pub fn resend(&self) -> Vec<ClientFrame> {
        self.entries
            .iter()
            .filter(|e| e.failed.is_none())
            .map(OutboxEntry::frame)
            .collect()
    }
}

/// Why a body cannot even be queued, for the person.
fn check_body(body: &str) -> Result<(), String> {
    if body.trim().is_empty() {
        return Err("Type a message first.".into());
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(format!(
            "A message holds at most {MAX_BODY_CHARS} characters."
        ));
    }
    Ok(())
}

// ----- applying events to messages ---------------------------------------------------------------

/// Applies an event to the messages shown (by seq): an edit, deletion or reaction changes its
/// target (and the quotes of the replies to it); a group event changes no message. Applying the
/// same event twice leaves the same state, so a replay over a history page is harmless.
pub fn apply(messages: &mut BTreeMap<Seq, Message>, e: &Event, me: UserId) {
    let Some(target) = e.change.target() else {
        return;
    };
    if let Some(m) = messages.get_mut(&target) {
        apply_to(m, e, me);
    }
    if matches!(e.change, Change::Edit { .. } | Change::Delete { .. }) {
        for m in messages.range_mut(target + 1..).map(|(_, m)| m) {
            if let Some(q) = m.reply_to.as_mut().filter(|q| q.seq == target) {
                match &e.change {
                    Change::Edit { body, .. } => q.excerpt = excerpt(body),
                    _ => {
                        q.excerpt.clear();
                        q.deleted = true;
                    }
                }
            }
        }
    }
}

/// Applies an edit, deletion or reaction to the message it targets.
pub fn apply_to(m: &mut Message, e: &Event, me: UserId) {
    match &e.change {
        Change::Edit { body, .. } if !m.deleted => {
            m.body = body.clone();
            m.edited_at = Some(e.at);
        }
        Change::Delete { .. } => {
            m.body.clear();
            m.deleted = true;
            m.reactions.clear();
            // The server deleted the file with the message.
            m.attachment = None;
        }
        Change::React { emoji, on, .. } if !m.deleted => {
            let at = m.reactions.iter().position(|r| &r.emoji == emoji);
            match (at, *on) {
                (Some(at), true) => {
                    let r = &mut m.reactions[at];
                    if !r.users.iter().any(|u| u.id == e.sender.id) {
                        r.users.push(e.sender.clone());
                        r.count += 1;
                        r.mine |= e.sender.id == me;
                    }
                }
                (None, true) => m.reactions.push(Reaction {
                    emoji: emoji.clone(),
                    count: 1,
                    mine: e.sender.id == me,
                    users: vec![e.sender.clone()],
                }),
                (Some(at), false) => {
                    let r = &mut m.reactions[at];
                    if let Some(i) = r.users.iter().position(|u| u.id == e.sender.id) {
                        r.users.remove(i);
                        r.count = r.count.saturating_sub(1);
                        if e.sender.id == me {
                            r.mine = false;
                        }
                    }
                    if r.users.is_empty() {
                        m.reactions.remove(at);
                    }
                }
                (None, false) => {}
            }
        }
        _ => {}
    }
}

// ----- the conversation list ---------------------------------------------------------------------

/// How many messages of `c` I have not read: others' messages after my read position (never my
/// own, edits, reactions or group events). The server counts them for its list; [`Inbox`] keeps
/// the count true as live messages and reads come in.
pub fn unread(c: &Conversation) -> i64 {
    c.unread.max(0)
}

/// What an [`Inbox`] knows about one conversation's unread count beyond the server's list.
#[derive(Clone, Debug, Default, PartialEq)]
struct Counted {
    /// The `last_seq` the server's count covered.
    upto: Seq,
    /// The server's count (of others' messages after its read mark, up to `upto`).
    base: i64,
    /// Others' messages after `upto` that came live.
    live: std::collections::BTreeSet<Seq>,
    /// The server's count of unread messages that mention me, up to `upto`.
    base_mentions: i64,
    /// Those of `live` that mention me.
    live_mentions: std::collections::BTreeSet<Seq>,
}

impl Counted {
    fn of(c: &Conversation) -> Counted {
        Counted {
            upto: c.last_seq,
            base: c.unread,
            live: Default::default(),
            base_mentions: c.mentions,
            live_mentions: Default::default(),
        }
    }

    /// Unread mentions of me when I have read up to `read` (as [`Counted::unread`]).
    fn mentions(&self, read: Seq) -> i64 {
        let base = if read >= self.upto {
            0
        } else {
            self.base_mentions
        };
        base + self.live_mentions.range(read + 1..).count() as i64
    }

    /// Both counts into `c`, for its read mark.
    fn apply(&self, c: &mut Conversation) {
        c.unread = self.unread(c.last_read_seq);
        c.mentions = self.mentions(c.last_read_seq);
    }

    /// Unread when I have read up to `read`. A read that ends inside what the server counted
    /// keeps the server's count (which messages of that range were others' is not known here)
    /// until the next list; in practice reads end at the newest message.
    fn unread(&self, read: Seq) -> i64 {
        let base = if read >= self.upto { 0 } else { self.base };
        base + self.live.range(read + 1..).count() as i64
    }
}

/// My conversations, newest activity first, with what live messages and receipts taught us since
/// the server's list was fetched.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inbox {
    list: Vec<Conversation>,
    counted: HashMap<ConvId, Counted>,
}

impl Inbox {
    pub fn iter(&self) -> impl Iterator<Item = &Conversation> {
        self.list.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn get(&self, id: ConvId) -> Option<&Conversation> {
        self.list.iter().find(|c| c.id == id)
    }

    /// The first entry of `conv` I have not read, if any message is unread.
    pub fn first_unread(&self, conv: ConvId) -> Option<Seq> {
        let c = self.get(conv)?;
        (unread(c) > 0).then_some(c.last_read_seq + 1)
    }

    /// Unread messages that mention me, in all conversations.
    pub fn total_mentions(&self) -> i64 {
        self.list.iter().map(|c| c.mentions.max(0)).sum()
    }

    /// Everything unread, for the window title.
    pub fn total_unread(&self) -> i64 {
        self.list.iter().map(unread).sum()
    }

    /// Replaces the list with the server's. A read position never moves backwards: reads this
    /// page made may not have reached the server (a receipt sent while the socket was down is
    /// lost). Returns those reads, to tell the server again.
    pub fn replace(&mut self, mut list: Vec<Conversation>) -> Vec<(ConvId, Seq)> {
        let mut untold = Vec::new();
        self.counted.clear();
        for c in &mut list {
            let counted = Counted::of(c);
            if let Some(old) = self.get(c.id) {
                if old.last_read_seq > c.last_read_seq {
                    c.last_read_seq = old.last_read_seq;
                    counted.apply(c);
                    untold.push((c.id, c.last_read_seq));
                }
            }
            self.counted.insert(c.id, counted);
        }
        self.list = list;
        self.sort();
        untold
    }

    /// Adds or updates one conversation (from `open_direct`, `create_group`, a group change or a
    /// `conversation` frame).
    pub fn upsert(&mut self, mut conv: Conversation) {
        match self.list.iter_mut().find(|c| c.id == conv.id) {
            Some(existing) => {
                if existing.last_seq > conv.last_seq {
                    // Older news: keep what live messages taught us.
                    conv.last_seq = existing.last_seq;
                    conv.last_message = existing.last_message.take();
                    conv.updated_at = existing.updated_at;
                    conv.unread = existing.unread;
                    conv.mentions = existing.mentions;
                    conv.last_read_seq = conv.last_read_seq.max(existing.last_read_seq);
                } else {
                    let mut counted = Counted::of(&conv);
                    if let Some(old) = self.counted.get(&conv.id) {
                        counted.live = old.live.range(conv.last_seq + 1..).copied().collect();
                        counted.live_mentions = old
                            .live_mentions
                            .range(conv.last_seq + 1..)
                            .copied()
                            .collect();
                    }
                    conv.last_read_seq = conv.last_read_seq.max(existing.last_read_seq);
                    counted.apply(&mut conv);
                    self.counted.insert(conv.id, counted);
                }
                *existing = conv;
            }
            None => {
                self.counted.insert(conv.id, Counted::of(&conv));
                self.list.push(conv);
            }
        }
        self.sort();
    }

    pub fn remove(&mut self, id: ConvId) {
        self.list.retain(|c| c.id != id);
        self.counted.remove(&id);
    }

    /// A message shown in order: it becomes the preview if it is news (a replayed message the
    /// server's list already counted is not), and counts as unread if it is someone else's (and
    /// as an unread mention if it names `me` as `@username`). Mine means I have read the
    /// conversation. Returns whether it was news.
    pub fn record(&mut self, m: &Message, me: &UserRef) -> bool {
        let Some(c) = self.list.iter_mut().find(|c| c.id == m.conv) else {
            return false;
        };
        let counted = self.counted.entry(c.id).or_insert_with(|| Counted::of(c));
        let news = m.seq > c.last_seq;
        if news {
            c.last_seq = m.seq;
            c.updated_at = m.at;
            c.last_message = Some(m.clone());
        }
        if m.sender.id == me.id {
            c.last_read_seq = c.last_read_seq.max(m.seq);
        } else if m.seq > counted.upto && !m.deleted {
            counted.live.insert(m.seq);
            if crate::mentions::mentions(&m.body, &me.username) {
                counted.live_mentions.insert(m.seq);
            }
        }
        counted.apply(c);
        self.sort();
        news
    }

    /// An event shown in order: it moves the conversation's cursor (never its place in the list
    /// or its unread count) and, when it changes the message shown as the preview, the preview.
    pub fn record_event(&mut self, e: &Event, me: UserId) {
        let Some(c) = self.list.iter_mut().find(|c| c.id == e.conv) else {
            return;
        };
        c.last_seq = c.last_seq.max(e.seq);
        if let Some(last) = c
            .last_message
            .as_mut()
            .filter(|m| Some(m.seq) == e.change.target())
        {
            apply_to(last, e, me);
        }
        if let (Change::Delete { target }, Some(counted)) =
            (&e.change, self.counted.get_mut(&e.conv))
        {
            // A deleted message no longer waits to be read.
            if counted.live.remove(target) {
                counted.live_mentions.remove(target);
                counted.apply(c);
            }
        }
        match &e.change {
            Change::Renamed { title } => c.title = title.clone(),
            // Roles travel in the log too, so a member who was offline learns them from `sync`.
            Change::Role { user, role } => c.set_role(user.id, *role),
            Change::Owner { user } => c.set_role(user.id, Role::Owner),
            _ => {}
        }
    }

    /// I have read `conv` up to `seq` (here or in another tab). False when that is not news.
    pub fn mark_read(&mut self, conv: ConvId, seq: Seq) -> bool {
        match self.list.iter_mut().find(|c| c.id == conv) {
            Some(c) if seq > c.last_read_seq => {
                c.last_read_seq = seq;
                let counted = self.counted.entry(c.id).or_insert_with(|| Counted::of(c));
                counted.apply(c);
                true
            }
            _ => false,
        }
    }

    fn sort(&mut self) {
        self.list
            .sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(b.id.cmp(&a.id)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ConvKind;
    use chrono::TimeZone;

    const CONV: ConvId = ConvId(7);
    const ALICE: UserId = UserId(1);

    fn user(id: i64) -> UserRef {
        UserRef {
            id: UserId(id),
            username: if id == 1 { "alice" } else { "bob" }.into(),
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    fn conversation(id: ConvId, last_seq: Seq) -> Conversation {
        Conversation {
            id,
            kind: ConvKind::Direct,
            title: "bob".into(),
            members: vec![user(1), user(2)],
            roles: Vec::new(),
            last_seq,
            last_read_seq: last_seq,
            unread: 0,
            mentions: 0,
            last_message: None,
            updated_at: at(id.0),
            bots: Vec::new(),
        }
    }

    /// Message `seq` of CONV, from user `from`.
    fn message(seq: Seq, from: i64) -> Message {
        Message {
            conv: CONV,
            seq,
            id: MessageId(100 + seq),
            client_id: format!("x-{seq}"),
            sender: user(from),
            body: format!("m{seq}"),
            at: at(seq),
            reply_to: None,
            edited_at: None,
            deleted: false,
            reactions: Vec::new(),
            attachment: None,
        }
    }

    /// Alice's delivery state, following CONV at `last_seq`.
    fn alice_at(last_seq: Seq) -> (Delivery, Outbox) {
        let mut d = Delivery::new(user(1));
        d.follow(&[conversation(CONV, last_seq)]);
        (d, Outbox::default())
    }

    fn seqs(step: &Step) -> Vec<Seq> {
        step.show.iter().map(Entry::seq).collect()
    }

    fn ack(client_id: &str, seq: Seq) -> Ack {
        Ack {
            client_id: client_id.into(),
            conv: CONV,
            id: MessageId(100 + seq),
            seq,
            at: at(seq),
        }
    }

    #[test]
    fn messages_in_order_are_shown_once() {
        let (mut d, mut o) = alice_at(2);
        let mut shown = Vec::new();
        for seq in [3, 4, 4, 2, 5] {
            let step = d.on_message(message(seq, 2), &mut o);
            assert_eq!(step.sync, None);
            shown.extend(seqs(&step));
        }
        assert_eq!(shown, [3, 4, 5]);
        assert_eq!(d.cursor(CONV), Some(5));
    }

    #[test]
    fn a_gap_is_asked_for_once_and_filled_in_order() {
        let (mut d, mut o) = alice_at(1);
        let step = d.on_message(message(4, 2), &mut o);
        assert!(
            step.show.is_empty(),
            "nothing after a gap is shown before the gap"
        );
        assert_eq!(step.sync, Some(BTreeMap::from([(CONV, 1)])));
        assert_eq!(d.on_message(message(5, 2), &mut o), Step::default());
        // The replay fills the gap; the parked messages follow in order; duplicates are dropped.
        assert_eq!(seqs(&d.on_message(message(2, 2), &mut o)), [2]);
        assert_eq!(seqs(&d.on_message(message(3, 2), &mut o)), [3, 4, 5]);
        assert_eq!(d.on_message(message(4, 2), &mut o), Step::default());
        assert_eq!(d.on_synced(), Step::default());
        assert_eq!(d.cursor(CONV), Some(5));
    }

    #[test]
    fn a_gap_left_after_a_replay_is_asked_for_again() {
        let (mut d, mut o) = alice_at(1);
        let first = d.on_message(message(3, 2), &mut o);
        assert_eq!(first.sync, Some(BTreeMap::from([(CONV, 1)])));
        assert_eq!(d.on_synced().sync, Some(BTreeMap::from([(CONV, 1)])));
        // A full resync (new connection) carries every cursor.
        assert_eq!(
            d.resync(),
            ClientFrame::Sync {
                cursors: BTreeMap::from([(CONV, 1)])
            }
        );
    }

    #[test]
    fn a_message_of_an_unknown_conversation_is_shown_and_the_list_fetched() {
        let (mut d, mut o) = alice_at(0);
        let mut m = message(9, 2);
        m.conv = ConvId(8);
        let step = d.on_message(m, &mut o);
        assert_eq!((seqs(&step), step.refresh_list), (vec![9], true));
        assert_eq!(d.cursor(ConvId(8)), Some(9));
        // Following a fresh list keeps known cursors and drops conversations no longer in it.
        d.follow(&[conversation(ConvId(8), 12)]);
        assert_eq!((d.cursor(ConvId(8)), d.cursor(CONV)), (Some(9), None));
    }

    #[test]
    fn the_outbox_holds_a_message_until_it_is_shown_and_keeps_refusals() {
        let (mut d, mut o) = alice_at(0);
        assert!(o.queue(CONV, "c-0".into(), "   ".into(), None).is_err());
        assert!(o
            .queue(CONV, "c-0".into(), "é".repeat(MAX_BODY_CHARS + 1), None)
            .is_err());
        let frame = o.queue(CONV, "c-1".into(), "hello".into(), None).unwrap();
        assert_eq!(
            frame,
            ClientFrame::Send {
                conv: CONV,
                client_id: "c-1".into(),
                body: "hello".into(),
                reply_to: None,
                attachment: None,
            }
        );
        o.queue(CONV, "c-2".into(), "world".into(), None).unwrap();

        // Reconnecting re-sends both with the same client ids.
        let resent: Vec<_> = o
            .resend()
            .into_iter()
            .map(|f| match f {
                ClientFrame::Send { client_id, .. } => client_id,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(resent, ["c-1", "c-2"]);

        let step = d.on_ack(ack("c-1", 1), &mut o);
        assert_eq!(seqs(&step), [1]);
        assert!(o.refused("c-2", "too long".into()));
        assert_eq!(o.entries().len(), 1);
        assert_eq!(o.entries()[0].failed.as_deref(), Some("too long"));
        assert!(
            o.resend().is_empty(),
            "a refused message waits for the person"
        );

        assert!(
            matches!(o.retry("c-2"), Some(ClientFrame::Send { client_id, .. }) if client_id == "c-2")
        );
        assert_eq!(o.entries()[0].failed, None);
        assert!(o.take("c-2").is_some());
        assert!(o.is_empty());
    }

    #[test]
    fn an_ack_becomes_my_message_under_the_cursor_rules() {
        let (mut d, mut o) = alice_at(3);
        o.queue(CONV, "c-1".into(), "hi".into(), None).unwrap();
        let step = d.on_ack(ack("c-1", 4), &mut o);
        assert_eq!(step.sync, None);
        let [Entry::Message(m)] = &step.show[..] else {
            panic!("{step:?}")
        };
        assert_eq!(
            (m.seq, m.id, &m.body, &m.sender, &m.client_id, m.at),
            (
                4,
                MessageId(104),
                &"hi".to_owned(),
                &user(1),
                &"c-1".to_owned(),
                at(4)
            )
        );
        assert!(o.is_empty(), "shown as stored: no longer pending");
        assert_eq!(d.cursor(CONV), Some(4));
        // The server's `message` for it (before the server stops echoing it) is a duplicate.
        let mut echo = message(4, 1);
        echo.client_id = "c-1".into();
        assert_eq!(d.on_message(echo, &mut o), Step::default());
        // So is the same ack again (a re-send after a reconnect is answered with the first ack).
        assert_eq!(d.on_ack(ack("c-1", 4), &mut o), Step::default());
    }

    #[test]
    fn an_ack_after_a_gap_is_parked_and_the_gap_asked_for() {
        let (mut d, mut o) = alice_at(3);
        o.queue(CONV, "c-1".into(), "hi".into(), None).unwrap();
        // Seq 4 (Bob's) has not reached us yet.
        let step = d.on_ack(ack("c-1", 5), &mut o);
        assert!(step.show.is_empty());
        assert_eq!(step.sync, Some(BTreeMap::from([(CONV, 3)])));
        assert_eq!(o.entries().len(), 1, "still pending until it can be shown");
        // The replay brings 4 and (before the server change) 5 as well: both shown once, in order.
        assert_eq!(seqs(&d.on_message(message(4, 2), &mut o)), [4, 5]);
        assert!(o.is_empty());
        let mut echo = message(5, 1);
        echo.client_id = "c-1".into();
        assert_eq!(d.on_message(echo, &mut o), Step::default());
    }

    #[test]
    fn my_message_arriving_before_its_ack_clears_the_outbox() {
        let (mut d, mut o) = alice_at(0);
        o.queue(CONV, "c-1".into(), "hi".into(), None).unwrap();
        let mut m = message(1, 1);
        m.client_id = "c-1".into();
        assert_eq!(seqs(&d.on_message(m, &mut o)), [1]);
        assert!(o.is_empty());
        assert_eq!(d.on_ack(ack("c-1", 1), &mut o), Step::default());
    }

    #[test]
    fn an_ack_the_outbox_forgot_is_fetched_like_a_gap() {
        let (mut d, mut o) = alice_at(3);
        let step = d.on_ack(ack("gone", 4), &mut o);
        assert_eq!(
            (step.show.len(), step.sync),
            (0, Some(BTreeMap::from([(CONV, 3)])))
        );
        assert_eq!(d.on_ack(ack("gone-too", 5), &mut o), Step::default());
    }

    #[test]
    fn read_receipts_go_out_once_per_new_seq() {
        let (mut d, _) = alice_at(0);
        assert_eq!(
            d.read_receipt(CONV, 2),
            Some(ClientFrame::Read { conv: CONV, seq: 2 })
        );
        assert_eq!(d.read_receipt(CONV, 2), None);
        assert_eq!(d.read_receipt(CONV, 1), None);
        assert!(d.read_receipt(CONV, 3).is_some());
    }

    #[test]
    fn unread_is_derived_and_counts_only_others_messages() {
        let mut inbox = Inbox::default();
        let mut other = conversation(ConvId(8), 0);
        other.updated_at = at(100);
        inbox.replace(vec![conversation(CONV, 2), other]);
        assert_eq!(inbox.iter().next().unwrap().id, ConvId(8));
        for seq in 3..=5 {
            inbox.record(&message(seq, 2), &user(1));
        }
        assert_eq!(unread(inbox.get(CONV).unwrap()), 3);
        assert_eq!(inbox.total_unread(), 3);
        assert_eq!(inbox.first_unread(CONV), Some(3));
        assert_eq!(inbox.first_unread(ConvId(8)), None);
        // Another tab of mine read up to 4: one left; then I reply, which reads everything.
        assert!(inbox.mark_read(CONV, 4));
        assert!(!inbox.mark_read(CONV, 3), "never backwards");
        assert_eq!(unread(inbox.get(CONV).unwrap()), 1);
        let mut reply = message(6, 1);
        reply.at = at(200);
        inbox.record(&reply, &user(1));
        assert_eq!(unread(inbox.get(CONV).unwrap()), 0);
        assert_eq!(
            inbox.iter().next().unwrap().id,
            CONV,
            "newest activity first"
        );
    }

    #[test]
    fn a_replay_does_not_count_unread_messages_twice() {
        let mut inbox = Inbox::default();
        inbox.replace(vec![conversation(CONV, 1)]);
        // Reconnected: the fresh list already says 3 unread up to seq 4; the replay brings 2..5.
        let mut fresh = conversation(CONV, 4);
        fresh.last_read_seq = 1;
        fresh.unread = 3;
        inbox.replace(vec![fresh]);
        for seq in 2..=5 {
            inbox.record(&message(seq, 2), &user(1));
        }
        let c = inbox.get(CONV).unwrap();
        assert_eq!((c.last_seq, unread(c)), (5, 4));
        assert_eq!(c.last_message.as_ref().unwrap().body, "m5");
    }

    #[test]
    fn mentions_of_me_count_beside_unread_until_read_or_deleted() {
        let mut inbox = Inbox::default();
        // The server's list: 2 unread after seq 1, one of them mentions me.
        let mut listed = conversation(CONV, 3);
        listed.last_read_seq = 1;
        listed.unread = 2;
        listed.mentions = 1;
        inbox.replace(vec![listed]);
        let mention = |seq: Seq, body: &str| Message {
            body: body.into(),
            ..message(seq, 2)
        };
        inbox.record(&mention(4, "hi @alice"), &user(1));
        inbox.record(&mention(5, "hi @alicex and mail@alice.com"), &user(1));
        inbox.record(&mention(6, "@ALICE again"), &user(1));
        let c = inbox.get(CONV).unwrap();
        assert_eq!((unread(c), c.mentions), (5, 3));
        assert_eq!(inbox.total_mentions(), 3);
        inbox.record_event(&event(7, 2, Change::Delete { target: 6 }), ALICE);
        assert_eq!(inbox.get(CONV).unwrap().mentions, 2);
        inbox.mark_read(CONV, 4);
        assert_eq!(inbox.get(CONV).unwrap().mentions, 0);
    }

    #[test]
    fn older_news_does_not_undo_what_live_messages_taught() {
        let mut inbox = Inbox::default();
        inbox.replace(vec![conversation(CONV, 1)]);
        inbox.record(&message(2, 2), &user(1));
        inbox.mark_read(CONV, 2);
        // A rename announced with the list as it was before message 2, and a stale read position.
        let mut renamed = conversation(CONV, 1);
        renamed.title = "renamed".into();
        renamed.last_read_seq = 0;
        inbox.upsert(renamed);
        let c = inbox.get(CONV).unwrap();
        assert_eq!((c.title.as_str(), c.last_seq, unread(c)), ("renamed", 2, 0));
        assert_eq!(c.last_message.as_ref().unwrap().seq, 2);
        // A fresh list never moves my read position back either, and says what to tell again.
        let mut stale = conversation(CONV, 2);
        stale.last_read_seq = 0;
        assert_eq!(inbox.replace(vec![stale]), [(CONV, 2)]);
        assert_eq!(unread(inbox.get(CONV).unwrap()), 0);
        inbox.remove(CONV);
        assert!(inbox.is_empty());
    }

    fn event(seq: Seq, from: i64, change: Change) -> Event {
        Event {
            conv: CONV,
            seq,
            id: MessageId(100 + seq),
            client_id: format!("x-{seq}"),
            sender: user(from),
            at: at(seq),
            change,
        }
    }

    fn react(target: Seq, emoji: &str, on: bool) -> Change {
        Change::React {
            target,
            emoji: emoji.into(),
            on,
        }
    }

    #[test]
    fn events_share_the_cursor_and_gap_rules_of_messages() {
        let (mut d, mut o) = alice_at(2);
        let edit = Change::Edit {
            target: 2,
            body: "fixed".into(),
        };
        // An event after a gap is parked like a message and follows once the gap is filled.
        let step = d.on_event(event(4, 2, edit.clone()), &mut o);
        assert_eq!(step.sync, Some(BTreeMap::from([(CONV, 2)])));
        assert_eq!(seqs(&d.on_message(message(3, 2), &mut o)), [3, 4]);
        assert_eq!(d.on_event(event(4, 2, edit), &mut o), Step::default());
        assert_eq!(d.cursor(CONV), Some(4));
    }

    #[test]
    fn an_ack_of_my_change_becomes_my_event() {
        let (mut d, mut o) = alice_at(3);
        let frame = o
            .queue_change(CONV, "c-1".into(), react(3, "👍", true))
            .unwrap();
        assert_eq!(
            frame,
            ClientFrame::React {
                conv: CONV,
                client_id: "c-1".into(),
                target: 3,
                emoji: "👍".into(),
                on: true
            }
        );
        assert_eq!(
            o.pending_in(CONV).count(),
            0,
            "a change is not a pending message"
        );
        assert_eq!(o.resend().len(), 1, "but it is re-sent after a reconnect");
        let step = d.on_ack(ack("c-1", 4), &mut o);
        let [Entry::Event(e)] = &step.show[..] else {
            panic!("{step:?}")
        };
        assert_eq!(
            (e.seq, e.sender.id, &e.change),
            (4, ALICE, &react(3, "👍", true))
        );
        assert!(o.is_empty());
        assert!(o
            .queue_change(
                CONV,
                "c-2".into(),
                Change::Edit {
                    target: 3,
                    body: "  ".into()
                }
            )
            .is_err());
    }

    #[test]
    fn events_change_the_messages_shown_and_applying_twice_changes_nothing_more() {
        let mut shown: BTreeMap<Seq, Message> = BTreeMap::new();
        shown.insert(1, message(1, 2));
        let mut reply = message(2, 1);
        reply.reply_to = Some(crate::model::Quote::of(&shown[&1]));
        shown.insert(2, reply);

        let edit = event(
            3,
            2,
            Change::Edit {
                target: 1,
                body: "edited".into(),
            },
        );
        apply(&mut shown, &edit, ALICE);
        assert_eq!(
            (shown[&1].body.as_str(), shown[&1].edited_at),
            ("edited", Some(at(3)))
        );
        assert_eq!(shown[&2].reply_to.as_ref().unwrap().excerpt, "edited");

        for e in [
            event(4, 1, react(1, "👍", true)),
            event(5, 2, react(1, "👍", true)),
            event(5, 2, react(1, "👍", true)), // twice: no second count
            event(6, 2, react(1, "🎉", true)),
            event(7, 2, react(1, "🎉", false)),
        ] {
            apply(&mut shown, &e, ALICE);
        }
        let r = &shown[&1].reactions;
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(
            (r[0].emoji.as_str(), r[0].count, r[0].mine),
            ("👍", 2, true)
        );
        apply(&mut shown, &event(8, 1, react(1, "👍", false)), ALICE);
        assert_eq!(
            (shown[&1].reactions[0].count, shown[&1].reactions[0].mine),
            (1, false)
        );

        let delete = event(9, 2, Change::Delete { target: 1 });
        apply(&mut shown, &delete, ALICE);
        let m = &shown[&1];
        assert!(m.deleted && m.body.is_empty() && m.reactions.is_empty());
        let q = shown[&2].reply_to.as_ref().unwrap();
        assert!(q.deleted && q.excerpt.is_empty());
        // Nothing changes a deleted message back.
        apply(&mut shown, &edit, ALICE);
        apply(&mut shown, &event(10, 1, react(1, "👍", true)), ALICE);
        assert!(shown[&1].body.is_empty() && shown[&1].reactions.is_empty());
    }

    #[test]
    fn events_are_never_unread_and_update_the_preview() {
        let mut inbox = Inbox::default();
        inbox.replace(vec![conversation(CONV, 2)]);
        inbox.record(&message(3, 2), &user(1));
        assert_eq!(unread(inbox.get(CONV).unwrap()), 1);
        let before = inbox.get(CONV).unwrap().updated_at;
        inbox.record_event(
            &event(
                4,
                2,
                Change::Edit {
                    target: 3,
                    body: "edited".into(),
                },
            ),
            ALICE,
        );
        inbox.record_event(&event(5, 2, react(3, "👍", true)), ALICE);
        let c = inbox.get(CONV).unwrap();
        assert_eq!((c.last_seq, unread(c), c.updated_at), (5, 1, before));
        assert_eq!(c.last_message.as_ref().unwrap().body, "edited");
        // The unread message is deleted: nothing is left to read.
        inbox.record_event(&event(6, 2, Change::Delete { target: 3 }), ALICE);
        let c = inbox.get(CONV).unwrap();
        assert_eq!(unread(c), 0);
        assert!(c.last_message.as_ref().unwrap().deleted);
        inbox.record_event(
            &event(
                7,
                2,
                Change::Renamed {
                    title: "Trip".into(),
                },
            ),
            ALICE,
        );
        assert_eq!(inbox.get(CONV).unwrap().title, "Trip");
        // Role changes in the log update who may do what, live and after a catch-up alike.
        let bob = UserRef {
            id: UserId(2),
            username: "bob".into(),
        };
        inbox.record_event(
            &event(
                8,
                1,
                Change::Role {
                    user: bob.clone(),
                    role: Role::Admin,
                },
            ),
            ALICE,
        );
        assert_eq!(inbox.get(CONV).unwrap().role_of(UserId(2)), Role::Admin);
        inbox.record_event(
            &event(
                9,
                1,
                Change::Role {
                    user: bob,
                    role: Role::Member,
                },
            ),
            ALICE,
        );
        let c = inbox.get(CONV).unwrap();
        assert_eq!((c.role_of(UserId(2)), c.last_seq), (Role::Member, 9));
    }
}
