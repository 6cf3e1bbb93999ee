//! The chat's live state in the browser, and the delivery rules that keep it right.
//!
//! [`Chat`] is a bundle of signals that the views read (conversation list, the open conversation's
//! messages, the outbox, the connection status) plus the bookkeeping no view renders: the last
//! `seq` held per conversation (the *cursors*) and messages that arrived ahead of a gap.
//!
//! Every server frame goes through [`Chat::on_frame`], which enforces the delivery contract:
//! - a message whose seq we already hold is ignored (replays and live frames may overlap);
//! - a message that skips a seq is parked and the gap is asked for with a `sync` for that
//!   conversation; parked messages are applied once the gap is filled, so order is never broken;
//! - a sent message stays in the outbox (shown as pending, saved in localStorage) until its `ack`,
//!   and is re-sent with the same `client_id` after every reconnect; the server deduplicates.
//!
//! The same code is compiled on the server (for server-side rendering, where nothing connects and
//! the state stays empty) and in the browser; the few browser calls sit behind [`platform`].

use crate::api;
use crate::model::{ConvId, Conversation, Message, Seq, UserId, UserRef, MAX_BODY_CHARS};
use crate::protocol::{ClientFrame, ServerFrame};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Most messages kept for the open conversation; older ones are dropped from memory (and can be
/// loaded again by scrolling up).
pub const MAX_OPEN_MESSAGES: usize = 1000;
/// Most messages parked ahead of a gap per conversation; past this we drop them and rely on the
/// replay, which brings them again.
const MAX_PARKED: usize = 1000;
/// Most unsent messages the outbox holds.
pub const MAX_OUTBOX: usize = 200;
/// Messages per history page.
pub const HISTORY_PAGE: u32 = 50;
/// How long a "typing" hint lasts unless repeated, in milliseconds.
pub const TYPING_TTL_MS: f64 = 5000.0;

/// The state of the connection to `/ws`, as the status line shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// First connection of this page, not open yet.
    Connecting,
    Online,
    /// Lost the connection (or the browser is offline); retrying with backoff.
    Reconnecting,
}

/// A message the user sent that the server has not acknowledged yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub client_id: String,
    pub conv: ConvId,
    pub body: String,
    /// Set when the server refused it; the user may retry or discard it.
    #[serde(default)]
    pub failed: Option<String>,
}

/// Someone typing in a conversation, until `until` (milliseconds since the epoch).
#[derive(Clone, Debug, PartialEq)]
pub struct Typist {
    pub conv: ConvId,
    pub user: UserRef,
    pub until: f64,
}

/// Delivery bookkeeping that no view renders.
#[derive(Default)]
struct Delivery {
    /// The last seq held per conversation: everything up to it has been applied.
    cursors: HashMap<ConvId, Seq>,
    /// Messages that arrived after a gap, waiting for the gap to be filled.
    parked: HashMap<ConvId, BTreeMap<Seq, Message>>,
    /// Conversations whose gap we asked for and whose replay has not finished yet.
    gap_asked: HashSet<ConvId>,
    /// The highest seq we told the server we have read, per conversation.
    read_sent: HashMap<ConvId, Seq>,
    /// When we last told the server the user is typing (milliseconds since the epoch).
    typing_sent_at: f64,
}

/// The chat page's state. `Copy`: every field is an arena handle.
#[derive(Clone, Copy)]
pub struct Chat {
    pub me: StoredValue<UserRef>,
    /// My conversations, newest activity first.
    pub conversations: RwSignal<Vec<Conversation>>,
    /// The conversation shown in the message pane.
    pub open: RwSignal<Option<ConvId>>,
    /// The open conversation's messages by seq (a window of at most [`MAX_OPEN_MESSAGES`]).
    pub messages: RwSignal<BTreeMap<Seq, Message>>,
    /// Older messages exist before the first one in `messages`.
    pub has_more: RwSignal<bool>,
    pub loading_history: RwSignal<bool>,
    /// The open conversation's history could not be loaded.
    pub history_error: RwSignal<Option<String>>,
    pub outbox: RwSignal<Vec<OutboxEntry>>,
    pub link: RwSignal<Link>,
    /// Users known to be online (from `presence` frames).
    pub online: RwSignal<HashSet<UserId>>,
    pub typing: RwSignal<Vec<Typist>>,
    /// A problem worth telling the user that belongs to no form (e.g. a refused frame).
    pub notice: RwSignal<Option<String>>,
    /// How far other members have read, per conversation (from `read` frames seen since the page
    /// loaded): drives the "Seen" mark in direct chats.
    pub seen: RwSignal<HashMap<ConvId, HashMap<UserId, Seq>>>,
    /// The open conversation was taken away (I left or was removed): leave its page.
    pub removed_while_open: RwSignal<Option<ConvId>>,
    delivery: StoredValue<Delivery>,
}

impl Chat {
    pub fn new(me: UserRef) -> Self {
        Chat {
            me: StoredValue::new(me),
            conversations: RwSignal::new(Vec::new()),
            open: RwSignal::new(None),
            messages: RwSignal::new(BTreeMap::new()),
            has_more: RwSignal::new(false),
            loading_history: RwSignal::new(false),
            history_error: RwSignal::new(None),
            outbox: RwSignal::new(Vec::new()),
            link: RwSignal::new(Link::Connecting),
            online: RwSignal::new(HashSet::new()),
            typing: RwSignal::new(Vec::new()),
            notice: RwSignal::new(None),
            seen: RwSignal::new(HashMap::new()),
            removed_while_open: RwSignal::new(None),
            delivery: StoredValue::new(Delivery::default()),
        }
    }

    pub fn me_id(&self) -> UserId {
        self.me.with_value(|u| u.id)
    }

    // ----- the conversation list -------------------------------------------------------------

    /// Replaces the list with the server's (on start and after every reconnect). Known cursors are
    /// kept, so that the `sync` that follows replays what we missed; a new conversation starts at
    /// its `last_seq` (its older messages come from history when it is opened).
    pub fn set_conversations(&self, mut list: Vec<Conversation>) {
        let open = self.open.get_untracked();
        self.delivery.update_value(|d| {
            let ids: HashSet<ConvId> = list.iter().map(|c| c.id).collect();
            d.cursors.retain(|id, _| ids.contains(id));
            d.parked.retain(|id, _| ids.contains(id));
            for c in &list {
                d.cursors.entry(c.id).or_insert(c.last_seq);
            }
        });
        for c in &mut list {
            if Some(c.id) == open {
                c.unread = 0;
            }
        }
        sort_newest_first(&mut list);
        self.conversations.set(list);
    }

    /// Adds or updates one conversation (from `open_direct`, `create_group` or a `conversation`
    /// frame).
    pub fn upsert_conversation(&self, conv: Conversation) {
        self.delivery.update_value(|d| {
            d.cursors.entry(conv.id).or_insert(conv.last_seq);
        });
        self.conversations.update(|list| {
            match list.iter_mut().find(|c| c.id == conv.id) {
                Some(existing) => {
                    // Keep what live messages taught us if the frame is older news.
                    let keep_preview = existing.last_seq > conv.last_seq;
                    let (last_seq, last_message, updated_at, unread) = (
                        existing.last_seq,
                        existing.last_message.clone(),
                        existing.updated_at,
                        existing.unread,
                    );
                    *existing = conv;
                    if keep_preview {
                        existing.last_seq = last_seq;
                        existing.last_message = last_message;
                        existing.updated_at = updated_at;
                        existing.unread = unread;
                    }
                }
                None => list.push(conv),
            }
            sort_newest_first(list);
        });
    }

    fn remove_conversation(&self, id: ConvId) {
        self.delivery.update_value(|d| {
            d.cursors.remove(&id);
            d.parked.remove(&id);
            d.gap_asked.remove(&id);
        });
        self.seen.update(|seen| {
            seen.remove(&id);
        });
        self.conversations
            .update(|list| list.retain(|c| c.id != id));
        if self.open.get_untracked() == Some(id) {
            // The chat layout sees this and routes back to `/`.
            self.removed_while_open.set(Some(id));
        }
    }

    /// Fetches the list again (after a reconnect, or when a message names an unknown conversation).
    pub fn refresh_conversations(&self) -> impl std::future::Future<Output = ()> + 'static {
        let chat = *self;
        async move {
            match api::conversations().await {
                Ok(list) => {
                    if chat.conversations.try_get_untracked().is_some() {
                        chat.set_conversations(list);
                    }
                }
                Err(e) => platform::log(&format!("could not load conversations: {e}")),
            }
        }
    }

    // ----- the open conversation --------------------------------------------------------------

    /// Shows `id` in the message pane: loads its newest page of history and marks it read.
    pub fn open_conversation(&self, id: ConvId) {
        if self.open.get_untracked() == Some(id) {
            return;
        }
        self.open.set(Some(id));
        self.messages.set(BTreeMap::new());
        self.has_more.set(false);
        self.history_error.set(None);
        self.conversations.update(|list| {
            if let Some(c) = list.iter_mut().find(|c| c.id == id) {
                c.unread = 0;
            }
        });
        self.load_history(id, None);
    }

    pub fn close_conversation(&self) {
        self.open.set(None);
        self.messages.set(BTreeMap::new());
        self.has_more.set(false);
    }

    /// Loads the page before the oldest message shown (scrolling up).
    pub fn load_older(&self) {
        let Some(id) = self.open.get_untracked() else {
            return;
        };
        if self.loading_history.get_untracked() || !self.has_more.get_untracked() {
            return;
        }
        let first = self.messages.with_untracked(|m| m.keys().next().copied());
        if let Some(first) = first {
            self.load_history(id, Some(first));
        }
    }

    fn load_history(&self, id: ConvId, before: Option<Seq>) {
        self.loading_history.set(true);
        let chat = *self;
        spawn_local(async move {
            let page = api::history(id, before, Some(HISTORY_PAGE)).await;
            // The user may have left the page or switched conversations meanwhile.
            if chat.open.try_get_untracked() != Some(Some(id)) {
                return;
            }
            chat.loading_history.set(false);
            match page {
                Ok(page) => {
                    let newest = page.messages.last().map(|m| m.seq);
                    chat.messages.update(|msgs| {
                        for m in page.messages {
                            msgs.insert(m.seq, m);
                        }
                    });
                    chat.has_more.set(page.has_more);
                    if let Some(seq) = newest {
                        chat.mark_read(id, seq);
                    }
                }
                Err(e) => chat.history_error.set(Some(e.message)),
            }
        });
    }

    /// Tells the server (and our other tabs) that we read `conv` up to `seq`, once per new seq.
    fn mark_read(&self, conv: ConvId, seq: Seq) {
        let fresh = self.delivery.try_update_value(|d| {
            let sent = d.read_sent.entry(conv).or_insert(0);
            if seq > *sent {
                *sent = seq;
                true
            } else {
                false
            }
        });
        if fresh == Some(true) {
            platform::transmit(&ClientFrame::Read { conv, seq });
        }
    }

    // ----- sending ----------------------------------------------------------------------------

    /// Queues `body` for `conv` in the outbox and sends it if the socket is open. Returns an error
    /// for the person when the message cannot even be queued.
    pub fn send(&self, conv: ConvId, body: String) -> Result<(), String> {
        if body.trim().is_empty() {
            return Err("Type a message first.".into());
        }
        if body.chars().count() > MAX_BODY_CHARS {
            return Err(format!(
                "A message holds at most {MAX_BODY_CHARS} characters."
            ));
        }
        if self.outbox.with_untracked(|o| o.len()) >= MAX_OUTBOX {
            return Err("Too many unsent messages; wait for the connection to come back.".into());
        }
        let entry = OutboxEntry {
            client_id: platform::new_client_id(),
            conv,
            body,
            failed: None,
        };
        platform::transmit(&entry.frame());
        self.change_outbox(|o| o.push(entry));
        Ok(())
    }

    pub fn retry(&self, client_id: &str) {
        let mut frame = None;
        self.change_outbox(|o| {
            if let Some(e) = o.iter_mut().find(|e| e.client_id == client_id) {
                e.failed = None;
                frame = Some(e.frame());
            }
        });
        if let Some(frame) = frame {
            platform::transmit(&frame);
        }
    }

    pub fn discard(&self, client_id: &str) {
        self.change_outbox(|o| o.retain(|e| e.client_id != client_id));
    }

    /// Restores the outbox saved by an earlier page (after a reload).
    pub fn restore_outbox(&self, saved: Vec<OutboxEntry>) {
        let saved: Vec<_> = saved.into_iter().take(MAX_OUTBOX).collect();
        self.outbox.set(saved);
    }

    /// Every change to the outbox goes through here so that localStorage always matches it.
    fn change_outbox(&self, f: impl FnOnce(&mut Vec<OutboxEntry>)) {
        self.outbox.update(f);
        self.outbox
            .with_untracked(|o| platform::save_outbox(self.me_id(), o));
    }

    /// The user typed in `conv`: tell the others, at most every few seconds.
    pub fn user_is_typing(&self, conv: ConvId) {
        let now = platform::now_ms();
        let due = self.delivery.try_update_value(|d| {
            if now - d.typing_sent_at > TYPING_TTL_MS / 2.0 {
                d.typing_sent_at = now;
                true
            } else {
                false
            }
        });
        if due == Some(true) {
            platform::transmit(&ClientFrame::Typing { conv });
        }
    }

    /// Who is typing in `conv` right now (reactive).
    pub fn typists(&self, conv: ConvId) -> Vec<String> {
        self.typing.with(|t| {
            t.iter()
                .filter(|x| x.conv == conv)
                .map(|x| x.user.username.clone())
                .collect()
        })
    }

    // ----- the connection ---------------------------------------------------------------------

    /// Called each time the socket opens: catch up on the list, ask for everything after our
    /// cursors, and re-send the outbox (same `client_id`s, so nothing is stored twice).
    pub fn on_connected(&self) {
        self.link.set(Link::Online);
        self.resend_outbox();
        let chat = *self;
        spawn_local(async move {
            chat.refresh_conversations().await;
            let Some(cursors) = chat.delivery.try_update_value(|d| {
                // A full sync replaces any gap request in flight.
                d.gap_asked.clear();
                d.cursors.iter().map(|(k, v)| (*k, *v)).collect()
            }) else {
                return;
            };
            platform::transmit(&ClientFrame::Sync { cursors });
            // Also re-announce how far we read the open conversation.
            if let Some(id) = chat.open.try_get_untracked().flatten() {
                chat.delivery.update_value(|d| {
                    d.read_sent.remove(&id);
                });
                if let Some(seq) = chat.messages.with_untracked(|m| m.keys().last().copied()) {
                    chat.mark_read(id, seq);
                }
            }
        });
    }

    /// Forgets "typing" hints that have expired.
    pub fn prune_typing(&self, now_ms: f64) {
        if self
            .typing
            .with_untracked(|t| t.iter().any(|x| x.until <= now_ms))
        {
            self.typing.update(|t| t.retain(|x| x.until > now_ms));
        }
    }

    /// Sends every unacknowledged, unrefused message again, with its original `client_id`.
    fn resend_outbox(&self) {
        for entry in self.outbox.get_untracked() {
            if entry.failed.is_none() {
                platform::transmit(&entry.frame());
            }
        }
    }

    pub fn on_disconnected(&self) {
        self.link.set(Link::Reconnecting);
        self.online.set(HashSet::new());
        self.typing.set(Vec::new());
    }

    /// Applies one frame from the server.
    pub fn on_frame(&self, frame: ServerFrame) {
        match frame {
            ServerFrame::Hello { .. } | ServerFrame::Pong => {}
            ServerFrame::Message(m) => self.on_message(m),
            ServerFrame::Ack { client_id, .. } => {
                self.change_outbox(|o| o.retain(|e| e.client_id != client_id));
            }
            ServerFrame::Synced => self.on_synced(),
            ServerFrame::Conversation {
                conversation,
                removed,
            } => {
                if removed {
                    self.remove_conversation(conversation.id);
                } else {
                    self.upsert_conversation(conversation);
                }
            }
            ServerFrame::Error {
                message, client_id, ..
            } => match client_id {
                Some(id) => self.change_outbox(|o| {
                    if let Some(e) = o.iter_mut().find(|e| e.client_id == id) {
                        e.failed = Some(message);
                    }
                }),
                None => self.notice.set(Some(message)),
            },
            ServerFrame::Read { conv, user, seq } => {
                if user != self.me_id() {
                    self.seen.update(|seen| {
                        let read = seen.entry(conv).or_default().entry(user).or_insert(0);
                        *read = (*read).max(seq);
                    });
                } else {
                    // Another tab of mine read it.
                    self.conversations.update(|list| {
                        if let Some(c) = list.iter_mut().find(|c| c.id == conv) {
                            c.last_read_seq = c.last_read_seq.max(seq);
                            c.unread = (c.last_seq - c.last_read_seq).max(0);
                        }
                    });
                }
            }
            ServerFrame::Typing { conv, user } => {
                if user.id != self.me_id() {
                    let until = platform::now_ms() + TYPING_TTL_MS;
                    self.typing.update(|t| {
                        t.retain(|x| !(x.conv == conv && x.user.id == user.id));
                        t.push(Typist { conv, user, until });
                    });
                }
            }
            ServerFrame::Presence { user, online } => self.online.update(|set| {
                if online {
                    set.insert(user);
                } else {
                    set.remove(&user);
                }
            }),
        }
    }

    /// The delivery rule for one message: ignore what we hold, park what comes after a gap (and ask
    /// for the gap), apply what comes next in order.
    fn on_message(&self, m: Message) {
        enum Verdict {
            Apply(Vec<Message>),
            Unknown(Message),
            AskGap(Seq),
            Nothing,
        }
        let conv = m.conv;
        let verdict = self
            .delivery
            .try_update_value(|d| match d.cursors.get(&conv).copied() {
                None => {
                    d.cursors.insert(conv, m.seq);
                    Verdict::Unknown(m)
                }
                Some(held) if m.seq <= held => Verdict::Nothing,
                Some(held) if m.seq == held + 1 => {
                    let mut ready = vec![m];
                    let mut next = held + 2;
                    if let Some(parked) = d.parked.get_mut(&conv) {
                        while let Some(p) = parked.remove(&next) {
                            ready.push(p);
                            next += 1;
                        }
                        // Anything parked at or below the new cursor is a duplicate now.
                        parked.retain(|seq, _| *seq >= next);
                    }
                    d.cursors.insert(conv, next - 1);
                    Verdict::Apply(ready)
                }
                Some(held) => {
                    let parked = d.parked.entry(conv).or_default();
                    if parked.len() < MAX_PARKED {
                        parked.insert(m.seq, m);
                    }
                    if d.gap_asked.insert(conv) {
                        Verdict::AskGap(held)
                    } else {
                        Verdict::Nothing
                    }
                }
            });
        match verdict {
            Some(Verdict::Apply(ready)) => {
                for m in ready {
                    self.apply(m);
                }
            }
            Some(Verdict::Unknown(m)) => {
                // A conversation we have not heard of (its `conversation` frame may still be on
                // its way): show the message and fetch the list for its title.
                self.apply(m);
                spawn_local(self.refresh_conversations());
            }
            Some(Verdict::AskGap(held)) => {
                let cursors = BTreeMap::from([(conv, held)]);
                platform::transmit(&ClientFrame::Sync { cursors });
            }
            Some(Verdict::Nothing) | None => {}
        }
    }

    /// After a replay: a conversation still holding parked messages has a gap the replay did not
    /// fill (the messages came live while it ran), so ask once more.
    fn on_synced(&self) {
        let again: BTreeMap<ConvId, Seq> = self
            .delivery
            .try_update_value(|d| {
                d.gap_asked.clear();
                let mut again = BTreeMap::new();
                for (conv, parked) in &d.parked {
                    if !parked.is_empty() {
                        if let Some(held) = d.cursors.get(conv) {
                            again.insert(*conv, *held);
                        }
                    }
                }
                d.gap_asked.extend(again.keys().copied());
                again
            })
            .unwrap_or_default();
        if !again.is_empty() {
            platform::transmit(&ClientFrame::Sync { cursors: again });
        }
    }

    /// Shows a message that is next in order: list preview, unread count, the open pane, outbox.
    fn apply(&self, m: Message) {
        let mine = m.sender.id == self.me_id();
        let is_open = self.open.get_untracked() == Some(m.conv);
        if mine {
            let id = m.client_id.clone();
            if self
                .outbox
                .with_untracked(|o| o.iter().any(|e| e.client_id == id))
            {
                self.change_outbox(|o| o.retain(|e| e.client_id != id));
            }
        }
        self.typing
            .update(|t| t.retain(|x| !(x.conv == m.conv && x.user.id == m.sender.id)));
        self.conversations.update(|list| {
            if let Some(c) = list.iter_mut().find(|c| c.id == m.conv) {
                // A replayed message the server's list already counted is not news.
                let news = m.seq > c.last_seq;
                if news {
                    c.last_seq = m.seq;
                    c.updated_at = m.at;
                    c.last_message = Some(m.clone());
                }
                if is_open || mine {
                    c.last_read_seq = c.last_read_seq.max(m.seq);
                    c.unread = 0;
                } else if news {
                    c.unread += 1;
                }
                sort_newest_first(list);
            }
        });
        if is_open {
            let (conv, seq) = (m.conv, m.seq);
            let mut trimmed = false;
            self.messages.update(|msgs| {
                msgs.insert(m.seq, m);
                while msgs.len() > MAX_OPEN_MESSAGES {
                    msgs.pop_first();
                    trimmed = true;
                }
            });
            if trimmed {
                self.has_more.set(true);
            }
            self.mark_read(conv, seq);
        }
    }
}

impl OutboxEntry {
    fn frame(&self) -> ClientFrame {
        ClientFrame::Send {
            conv: self.conv,
            client_id: self.client_id.clone(),
            body: self.body.clone(),
        }
    }
}

fn sort_newest_first(list: &mut [Conversation]) {
    list.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(b.id.cmp(&a.id)));
}

/// Provides the chat state to the components below.
pub fn provide_chat(chat: Chat) {
    provide_context(chat);
}

/// The chat state provided by the chat layout.
pub fn use_chat() -> Chat {
    expect_context::<Chat>()
}

/// The browser calls the state needs. In the browser they reach the socket, localStorage, the clock
/// and the router; during server-side rendering nothing is connected, so they do nothing.
#[cfg(feature = "hydrate")]
mod platform {
    pub use crate::client::socket::transmit;
    pub use crate::client::storage::save_outbox;

    pub fn new_client_id() -> String {
        uuid::Uuid::new_v4().to_string()
    }

    pub fn now_ms() -> f64 {
        js_sys::Date::now()
    }

    pub fn log(text: &str) {
        leptos::logging::warn!("{text}");
    }
}

#[cfg(not(feature = "hydrate"))]
mod platform {
    use crate::model::UserId;
    use crate::protocol::ClientFrame;

    #[cfg(test)]
    thread_local! {
        /// What the state tried to send, for the unit tests below.
        pub static SENT: std::cell::RefCell<Vec<ClientFrame>> = const { std::cell::RefCell::new(Vec::new()) };
        static NEXT_ID: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    pub fn transmit(_frame: &ClientFrame) -> bool {
        #[cfg(test)]
        SENT.with(|s| s.borrow_mut().push(_frame.clone()));
        false
    }
    pub fn save_outbox(_user: UserId, _entries: &[super::OutboxEntry]) {}
    pub fn new_client_id() -> String {
        #[cfg(test)]
        return NEXT_ID.with(|n| {
            n.set(n.get() + 1);
            format!("c-{}", n.get())
        });
        #[cfg(not(test))]
        String::new()
    }
    pub fn now_ms() -> f64 {
        0.0
    }
    pub fn log(text: &str) {
        leptos::logging::warn!("{text}");
    }
}

#[cfg(all(test, not(feature = "hydrate")))]
mod tests {
    use super::*;
    use crate::model::{ConvKind, MessageId};
    use crate::protocol::ErrorCode;
    use chrono::{TimeZone, Utc};

    const CONV: ConvId = ConvId(7);

    fn user(id: i64, name: &str) -> UserRef {
        UserRef {
            id: UserId(id),
            username: name.into(),
        }
    }

    fn conversation(last_seq: Seq) -> Conversation {
        Conversation {
            id: CONV,
            kind: ConvKind::Direct,
            title: "bob".into(),
            members: vec![user(1, "alice"), user(2, "bob")],
            last_seq,
            last_read_seq: last_seq,
            unread: 0,
            last_message: None,
            updated_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        }
    }

    fn message(seq: Seq, from: i64) -> ServerFrame {
        ServerFrame::Message(Message {
            conv: CONV,
            seq,
            id: MessageId(100 + seq),
            client_id: format!("x-{seq}"),
            sender: if from == 1 {
                user(1, "alice")
            } else {
                user(2, "bob")
            },
            body: format!("m{seq}"),
            at: Utc.timestamp_opt(1_700_000_000 + seq, 0).unwrap(),
        })
    }

    /// Alice's chat with one direct conversation holding `last_seq` messages, shown in the pane.
    fn chat_at(last_seq: Seq) -> Chat {
        platform::SENT.with(|s| s.borrow_mut().clear());
        // Signals live in an owner's arena; each test thread gets its own, kept for the test.
        let owner = Owner::new_root(None);
        owner.set();
        std::mem::forget(owner);
        let chat = Chat::new(user(1, "alice"));
        chat.set_conversations(vec![conversation(last_seq)]);
        chat.open.set(Some(CONV));
        chat
    }

    fn shown(chat: &Chat) -> Vec<Seq> {
        chat.messages
            .with_untracked(|m| m.keys().copied().collect())
    }

    fn sent() -> Vec<ClientFrame> {
        platform::SENT.with(|s| s.borrow_mut().drain(..).collect())
    }

    fn syncs(frames: &[ClientFrame]) -> Vec<BTreeMap<ConvId, Seq>> {
        frames
            .iter()
            .filter_map(|f| match f {
                ClientFrame::Sync { cursors } => Some(cursors.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn messages_in_order_are_shown_once() {
        let chat = chat_at(2);
        for seq in [3, 4, 4, 2, 5] {
            chat.on_frame(message(seq, 2));
        }
        assert_eq!(shown(&chat), [3, 4, 5]);
        let c = chat.conversations.get_untracked();
        assert_eq!(c[0].last_seq, 5);
        assert_eq!(c[0].last_message.as_ref().unwrap().body, "m5");
        assert!(syncs(&sent()).is_empty());
    }

    #[test]
    fn a_gap_is_asked_for_once_and_filled_in_order() {
        let chat = chat_at(1);
        chat.on_frame(message(4, 2));
        chat.on_frame(message(5, 2));
        assert!(
            shown(&chat).is_empty(),
            "nothing after a gap is shown before the gap"
        );
        assert_eq!(syncs(&sent()), [BTreeMap::from([(CONV, 1)])]);
        // The replay fills the gap; the parked messages follow in order; duplicates are dropped.
        for seq in [2, 3, 4, 5] {
            chat.on_frame(message(seq, 2));
        }
        chat.on_frame(ServerFrame::Synced);
        assert_eq!(shown(&chat), [2, 3, 4, 5]);
        assert!(syncs(&sent()).is_empty());
    }

    #[test]
    fn a_gap_left_after_a_replay_is_asked_for_again() {
        let chat = chat_at(1);
        chat.on_frame(message(3, 2));
        chat.on_frame(ServerFrame::Synced);
        assert_eq!(
            syncs(&sent()),
            [BTreeMap::from([(CONV, 1)]), BTreeMap::from([(CONV, 1)])]
        );
    }

    #[test]
    fn unread_counts_grow_only_for_conversations_not_open() {
        let chat = chat_at(0);
        chat.on_frame(message(1, 2));
        assert_eq!(chat.conversations.get_untracked()[0].unread, 0);
        chat.close_conversation();
        chat.on_frame(message(2, 2));
        chat.on_frame(message(3, 2));
        assert_eq!(chat.conversations.get_untracked()[0].unread, 2);
        // My own message means I have read the conversation.
        chat.on_frame(message(4, 1));
        assert_eq!(chat.conversations.get_untracked()[0].unread, 0);
    }

    #[test]
    fn a_replay_does_not_count_unread_messages_twice() {
        let chat = chat_at(1);
        chat.close_conversation();
        // Reconnected: the fresh list already says 3 unread up to seq 4; the replay brings 2..4.
        let mut fresh = conversation(4);
        fresh.last_read_seq = 1;
        fresh.unread = 3;
        chat.set_conversations(vec![fresh]);
        for seq in [2, 3, 4, 5] {
            chat.on_frame(message(seq, 2));
        }
        let c = &chat.conversations.get_untracked()[0];
        assert_eq!((c.last_seq, c.unread), (5, 4));
    }

    #[test]
    fn read_receipts_mark_what_others_saw_and_what_my_other_tabs_read() {
        let chat = chat_at(0);
        chat.close_conversation();
        for seq in 1..=3 {
            chat.on_frame(message(seq, 2));
        }
        chat.on_frame(ServerFrame::Read {
            conv: CONV,
            user: UserId(2),
            seq: 2,
        });
        chat.on_frame(ServerFrame::Read {
            conv: CONV,
            user: UserId(2),
            seq: 1,
        });
        assert_eq!(chat.seen.get_untracked()[&CONV][&UserId(2)], 2);
        assert_eq!(chat.conversations.get_untracked()[0].unread, 3);
        // Another tab of mine read up to 2: one unread left.
        chat.on_frame(ServerFrame::Read {
            conv: CONV,
            user: UserId(1),
            seq: 2,
        });
        assert_eq!(chat.conversations.get_untracked()[0].unread, 1);
    }

    #[test]
    fn the_outbox_holds_a_message_until_its_ack_and_keeps_refusals() {
        let chat = chat_at(0);
        assert!(chat.send(CONV, "   ".into()).is_err());
        chat.send(CONV, "hello".into()).unwrap();
        chat.send(CONV, "world".into()).unwrap();
        let outbox = chat.outbox.get_untracked();
        assert_eq!(outbox.len(), 2);
        let (first, second) = (outbox[0].client_id.clone(), outbox[1].client_id.clone());

        // Reconnecting re-sends both with the same client ids.
        sent();
        chat.resend_outbox();
        let resent: Vec<_> = sent()
            .into_iter()
            .filter_map(|f| match f {
                ClientFrame::Send { client_id, .. } => Some(client_id),
                _ => None,
            })
            .collect();
        assert_eq!(resent, [first.clone(), second.clone()]);

        chat.on_frame(ServerFrame::Ack {
            client_id: first.clone(),
            conv: CONV,
            id: MessageId(1),
            seq: 1,
            at: Utc.timestamp_opt(1_700_000_100, 0).unwrap(),
        });
        chat.on_frame(ServerFrame::error(
            ErrorCode::TooLarge,
            "too long",
            Some(second.clone()),
        ));
        let outbox = chat.outbox.get_untracked();
        assert_eq!(outbox.len(), 1);
        assert_eq!(outbox[0].failed.as_deref(), Some("too long"));

        chat.retry(&second);
        assert_eq!(chat.outbox.get_untracked()[0].failed, None);
        assert!(
            matches!(&sent()[..], [ClientFrame::Send { client_id, .. }] if *client_id == second)
        );
        chat.discard(&second);
        assert!(chat.outbox.get_untracked().is_empty());
    }

    #[test]
    fn my_message_arriving_before_its_ack_clears_the_outbox() {
        let chat = chat_at(0);
        chat.send(CONV, "hi".into()).unwrap();
        let id = chat.outbox.get_untracked()[0].client_id.clone();
        let ServerFrame::Message(mut m) = message(1, 1) else {
            unreachable!()
        };
        m.client_id = id;
        chat.on_frame(ServerFrame::Message(m));
        assert!(chat.outbox.get_untracked().is_empty());
        assert_eq!(shown(&chat), [1]);
    }

    #[test]
    fn the_open_conversation_keeps_a_bounded_window() {
        let chat = chat_at(0);
        for seq in 1..=(MAX_OPEN_MESSAGES as Seq + 10) {
            chat.on_frame(message(seq, 2));
        }
        let seqs = shown(&chat);
        assert_eq!(seqs.len(), MAX_OPEN_MESSAGES);
        assert_eq!(seqs[0], 11);
        assert!(chat.has_more.get_untracked());
    }
}
