//! The chat's live state in the browser: the signals the views read, and the glue that feeds
//! server frames through the delivery rules.
//!
//! The rules themselves (cursors, gaps, parked messages, the outbox, unread counts) are plain
//! types in [`crate::delivery`], tested there without a browser. [`Chat`] holds one of each and
//! only does what they answer: show these messages, send this `sync`, save the outbox. Everything
//! else here is state that exists for the views: the open conversation's messages, who is online
//! or typing, what others have read.
//!
//! Reading is honest: a message counts as read only once the view reports it was on screen
//! ([`Chat::saw`]) while the person could be looking ([`Chat::attentive`]: the tab visible and
//! focused). Until then it raises the unread count, even in the open conversation, and (if the
//! person turned them on and did not mute the conversation) a desktop notification.
//!
//! The same code is compiled on the server (for server-side rendering, where nothing connects and
//! the state stays empty) and in the browser; the few browser calls sit behind [`platform`].

use crate::api;
use crate::contacts::ContactList;
use crate::delivery::{apply, Ack, Delivery, Inbox, Outbox, Step};
use crate::model::{
    Attachment, Change, ConvId, ConvKind, Conversation, Entry, Event, Message, Quote, Seq, UserId,
    UserRef,
};
use crate::protocol::{ClientFrame, ServerFrame};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::collections::{BTreeMap, HashMap, HashSet};

pub use crate::delivery::OutboxEntry;

/// Most messages kept for the open conversation; older ones are dropped from memory (and can be
/// loaded again by scrolling up).
pub const MAX_OPEN_MESSAGES: usize = 1000;
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

/// Someone typing in a conversation, until `until` (milliseconds since the epoch).
#[derive(Clone, Debug, PartialEq)]
pub struct Typist {
    pub conv: ConvId,
    pub user: UserRef,
    pub until: f64,
}

/// The chat page's state. `Copy`: every field is an arena handle.
#[derive(Clone, Copy)]
pub struct Chat {
    pub me: StoredValue<UserRef>,
    /// My conversations, newest activity first, with their (derived) unread counts.
    pub conversations: RwSignal<Inbox>,
    /// The conversation shown in the message pane.
    pub open: RwSignal<Option<ConvId>>,
    /// The open conversation's messages by seq (a window of at most [`MAX_OPEN_MESSAGES`]).
    pub messages: RwSignal<BTreeMap<Seq, Message>>,
    /// The open conversation's group events (system lines: "alice added carol"), by seq.
    pub events: RwSignal<BTreeMap<Seq, Event>>,
    /// The message the composer's next message answers.
    pub replying: RwSignal<Option<Quote>>,
    /// My message being edited in place, if any.
    pub editing: RwSignal<Option<Seq>>,
    /// Older messages exist before the first one in `messages`.
    pub has_more: RwSignal<bool>,
    pub loading_history: RwSignal<bool>,
    /// The open conversation's history could not be loaded.
    pub history_error: RwSignal<Option<String>>,
    /// My messages not shown as stored yet (pending, or refused).
    pub outbox: RwSignal<Outbox>,
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
    /// The tab is visible and focused: what is on screen is being read.
    pub attentive: RwSignal<bool>,
    /// Seconds until the next connection attempt, while waiting after a failed one.
    pub retry_in: RwSignal<Option<u32>>,
    /// What a screen reader should hear about the open conversation: its newest live message
    /// from someone else (never older pages loaded by scrolling).
    pub announcement: RwSignal<String>,
    /// Desktop notifications are on (turned on by the person, allowed by the browser).
    pub notifications: RwSignal<bool>,
    /// Conversations that never notify.
    pub muted: RwSignal<HashSet<ConvId>>,
    /// A conversation to show (a notification was clicked): the chat layout routes there.
    pub go_to: RwSignal<Option<ConvId>>,
    /// A message to show in its conversation (a search result was opened): once that
    /// conversation is open, its log scrolls to the message, loading older pages until it is
    /// there, and marks it.
    pub jump: RwSignal<Option<(ConvId, Seq)>>,
    /// Ticks every minute, so that relative times ("5 min") stay true.
    pub minute: RwSignal<u64>,
    /// Where the "New messages" line goes in the open conversation: the first message that was
    /// unread when it was opened, or the first that came while the person was away.
    pub divider: RwSignal<Option<Seq>>,
    /// My contacts and the requests waiting either way (from `/api/contacts`, then `contact` frames).
    pub contacts: RwSignal<ContactList>,
    /// Cursors, parked messages, gap requests: nothing a view renders.
    delivery: StoredValue<Delivery>,
    /// When we last told the server the user is typing (milliseconds since the epoch).
    typing_sent_at: StoredValue<f64>,
    /// The group I am leaving myself: its removal needs no explaining.
    leaving: StoredValue<Option<ConvId>>,
}

impl Chat {
    pub fn new(me: UserRef) -> Self {
        Chat {
            me: StoredValue::new(me.clone()),
            conversations: RwSignal::new(Inbox::default()),
            open: RwSignal::new(None),
            messages: RwSignal::new(BTreeMap::new()),
            events: RwSignal::new(BTreeMap::new()),
            replying: RwSignal::new(None),
            editing: RwSignal::new(None),
            has_more: RwSignal::new(false),
            loading_history: RwSignal::new(false),
            history_error: RwSignal::new(None),
            outbox: RwSignal::new(Outbox::default()),
            link: RwSignal::new(Link::Connecting),
            online: RwSignal::new(HashSet::new()),
            typing: RwSignal::new(Vec::new()),
            notice: RwSignal::new(None),
            seen: RwSignal::new(HashMap::new()),
            removed_while_open: RwSignal::new(None),
            attentive: RwSignal::new(true),
            minute: RwSignal::new(0),
            retry_in: RwSignal::new(None),
            notifications: RwSignal::new(false),
            muted: RwSignal::new(HashSet::new()),
            go_to: RwSignal::new(None),
            jump: RwSignal::new(None),
            announcement: RwSignal::new(String::new()),
            divider: RwSignal::new(None),
            contacts: RwSignal::new(ContactList::default()),
            delivery: StoredValue::new(Delivery::new(me)),
            typing_sent_at: StoredValue::new(0.0),
            leaving: StoredValue::new(None),
        }
    }

    pub fn me_id(&self) -> UserId {
        self.me.with_value(|u| u.id)
    }

    // ----- the conversation list -------------------------------------------------------------

    /// Replaces the list with the server's (on start and after every reconnect), and tells the
    /// server again about reads it missed.
    pub fn set_conversations(&self, list: Vec<Conversation>) {
        self.delivery.update_value(|d| d.follow(&list));
        let untold = self
            .conversations
            .try_update(|inbox| inbox.replace(list))
            .unwrap_or_default();
        for (conv, seq) in untold {
            platform::transmit(&ClientFrame::Read { conv, seq });
        }
    }

    /// Adds or updates one conversation (from `open_direct`, `create_group` or a `conversation`
    /// frame).
    pub fn upsert_conversation(&self, conv: Conversation) {
        self.delivery
            .update_value(|d| d.track(conv.id, conv.last_seq));
        self.conversations.update(|inbox| inbox.upsert(conv));
    }

    /// I am leaving group `conv` (so its removal is no news to me).
    pub fn leaving(&self, conv: ConvId) {
        self.leaving.set_value(Some(conv));
    }

    /// `conv` is no longer mine: I left it, or `by` removed me (then say so: being dropped
    /// without a word reads as a bug).
    fn remove_conversation(&self, id: ConvId, by: Option<UserRef>) {
        let title = self
            .conversations
            .with_untracked(|i| i.get(id).map(|c| c.title.clone()));
        if let Some(title) = title {
            if self.leaving.get_value() != Some(id) {
                self.notice.set(Some(match by {
                    Some(by) => format!("{} removed you from “{title}”.", by.username),
                    None => format!("You were removed from “{title}”."),
                }));
            }
        }
        self.delivery.update_value(|d| d.forget(id));
        self.seen.update(|seen| {
            seen.remove(&id);
        });
        self.conversations.update(|inbox| inbox.remove(id));
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

    /// Fetches my contacts and requests again (on every connect: `contact` frames sent while
    /// the socket was down are lost, the list is not).
    pub fn refresh_contacts(&self) -> impl std::future::Future<Output = ()> + 'static {
        let chat = *self;
        async move {
            match api::contacts().await {
                Ok(list) => {
                    chat.contacts.try_set(list);
                }
                Err(e) => platform::log(&format!("could not load contacts: {e}")),
            }
        }
    }

    // ----- the open conversation --------------------------------------------------------------

    /// Shows `id` in the message pane: loads its newest page of history, with the "New messages"
    /// line before the first unread one. Reading it is up to [`Chat::saw`].
    pub fn open_conversation(&self, id: ConvId) {
        if self.open.get_untracked() == Some(id) {
            return;
        }
        self.divider
            .set(self.conversations.with_untracked(|i| i.first_unread(id)));
        self.open.set(Some(id));
        self.messages.set(BTreeMap::new());
        self.events.set(BTreeMap::new());
        self.replying.set(None);
        self.editing.set(None);
        self.has_more.set(false);
        self.history_error.set(None);
        self.load_history(id, None);
    }

    pub fn close_conversation(&self) {
        self.open.set(None);
        self.divider.set(None);
        self.messages.set(BTreeMap::new());
        self.events.set(BTreeMap::new());
        self.replying.set(None);
        self.editing.set(None);
        self.has_more.set(false);
    }

    /// The view showed `conv` up to `seq` on screen. Read, if the person could see it.
    pub fn saw(&self, conv: ConvId, seq: Seq) {
        if self.attentive.get_untracked() && self.open.get_untracked() == Some(conv) {
            self.mark_read(conv, seq);
        }
    }

    /// Loads the page before the oldest message shown (scrolling up).
    pub fn load_older(&self) {
        let Some(id) = self.open.get_untracked() else {
            return;
        };
        if self.loading_history.get_untracked() || !self.has_more.get_untracked() {
            return;
        }
        // The next page ends before the oldest entry shown, message or system line.
        let first = self.messages.with_untracked(|m| m.keys().next().copied());
        let first_event = self.events.with_untracked(|e| e.keys().next().copied());
        let first = match (first, first_event) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
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
                    chat.messages.update(|msgs| {
                        for m in page.messages {
                            // A live copy may be newer than the page (an edit or reaction
                            // applied since): keep it.
                            msgs.entry(m.seq).or_insert(m);
                        }
                    });
                    if !page.events.is_empty() {
                        chat.events.update(|events| {
                            for e in page.events {
                                events.insert(e.seq, e);
                            }
                        });
                    }
                    chat.has_more.set(page.has_more);
                }
                Err(e) => chat.history_error.set(Some(e.message)),
            }
        });
    }

    /// I read `conv` up to `seq`: count it read here, and tell the server (and so my other tabs
    /// and the other members), once per new seq.
    fn mark_read(&self, conv: ConvId, seq: Seq) {
        self.conversations
            .maybe_update(|inbox| inbox.mark_read(conv, seq));
        if let Some(Some(frame)) = self
            .delivery
            .try_update_value(|d| d.read_receipt(conv, seq))
        {
            platform::transmit(&frame);
        }
    }

    // ----- sending ----------------------------------------------------------------------------

    /// Queues `body` for `conv` in the outbox and sends it if the socket is open. Returns an error
    /// for the person when the message cannot even be queued.
    pub fn send(&self, conv: ConvId, body: String) -> Result<(), String> {
        let client_id = platform::new_client_id();
        let reply_to = self
            .replying
            .get_untracked()
            .filter(|_| self.open.get_untracked() == Some(conv));
        let frame = self
            .change_outbox(|o| o.queue(conv, client_id, body, reply_to))
            .unwrap_or_else(|| Err("The chat is closed.".into()))?;
        self.replying.set(None);
        platform::transmit(&frame);
        Ok(())
    }

    /// Queues a message posting `attachment` (uploaded already) to `conv`, with `body` as its
    /// optional caption, and sends it.
    pub fn send_attachment(
        &self,
        conv: ConvId,
        body: String,
        attachment: Attachment,
    ) -> Result<(), String> {
        let client_id = platform::new_client_id();
        let frame = self
            .change_outbox(|o| o.queue_attachment(conv, client_id, body, attachment))
            .unwrap_or_else(|| Err("The chat is closed.".into()))?;
        platform::transmit(&frame);
        Ok(())
    }

    /// Queues a change to a message of `conv` (edit, deletion, reaction) and sends it. It shows
    /// once the server acknowledges it, like everyone else sees it.
    pub fn change(&self, conv: ConvId, change: Change) -> Result<(), String> {
        let client_id = platform::new_client_id();
        let frame = self
            .change_outbox(|o| o.queue_change(conv, client_id, change))
            .unwrap_or_else(|| Err("The chat is closed.".into()))?;
        platform::transmit(&frame);
        Ok(())
    }

    pub fn retry(&self, client_id: &str) {
        if let Some(Some(frame)) = self.change_outbox(|o| o.retry(client_id)) {
            platform::transmit(&frame);
        }
    }

    pub fn discard(&self, client_id: &str) {
        self.change_outbox(|o| o.take(client_id));
    }

    /// Restores the outbox saved by an earlier page (after a reload).
    pub fn restore_outbox(&self, saved: Vec<OutboxEntry>) {
        self.outbox.set(Outbox::restore(saved));
    }

    /// Every change to the outbox goes through here so that localStorage always matches it.
    fn change_outbox<U>(&self, f: impl FnOnce(&mut Outbox) -> U) -> Option<U> {
        let out = self.outbox.try_update(f);
        self.outbox
            .with_untracked(|o| platform::save_outbox(self.me_id(), o.entries()));
        out
    }

    /// The user typed in `conv`: tell the others, at most every few seconds.
    pub fn user_is_typing(&self, conv: ConvId) {
        let now = platform::now_ms();
        let due = self.typing_sent_at.try_update_value(|sent_at| {
            let due = now - *sent_at > TYPING_TTL_MS / 2.0;
            if due {
                *sent_at = now;
            }
            due
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
            chat.refresh_contacts().await;
            chat.refresh_conversations().await;
            let Some(sync) = chat.delivery.try_update_value(|d| d.resync()) else {
                return;
            };
            platform::transmit(&sync);
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
        for frame in self.outbox.with_untracked(Outbox::resend) {
            platform::transmit(&frame);
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
            ServerFrame::Message(m) => self.deliver(|d, o| d.on_message(m, o)),
            ServerFrame::Event(e) => self.deliver(|d, o| d.on_event(e, o)),
            ServerFrame::Ack {
                client_id,
                conv,
                id,
                seq,
                at,
            } => {
                let ack = Ack {
                    client_id,
                    conv,
                    id,
                    seq,
                    at,
                };
                self.deliver(|d, o| d.on_ack(ack, o))
            }
            ServerFrame::Synced => self.deliver(|d, _| d.on_synced()),
            ServerFrame::Conversation {
                conversation,
                removed,
                by,
            } => {
                if removed {
                    self.remove_conversation(conversation.id, by);
                } else {
                    self.upsert_conversation(conversation);
                }
            }
            ServerFrame::Error {
                message, client_id, ..
            } => match client_id {
                // A refused change (edit, deletion, reaction) is dropped with a notice: there is
                // nothing to retry that could succeed. A refused message stays, with Retry.
                Some(id)
                    if self
                        .outbox
                        .with_untracked(|o| o.get(&id).is_some_and(|e| !e.is_message())) =>
                {
                    self.change_outbox(|o| o.take(&id));
                    self.notice.set(Some(message));
                }
                Some(id) => {
                    self.change_outbox(|o| o.refused(&id, message));
                }
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
                    self.conversations
                        .maybe_update(|inbox| inbox.mark_read(conv, seq));
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
            ServerFrame::Contact(change) => self.contacts.update(|list| list.apply(change)),
        }
    }

    /// Runs one delivery rule and does what it answers: show messages, ask for a gap, fetch the
    /// list. The outbox is saved only when the rule changed it.
    fn deliver(&self, rule: impl FnOnce(&mut Delivery, &mut Outbox) -> Step) {
        let Some(Some((step, outbox_changed))) = self.delivery.try_update_value(|d| {
            self.outbox.try_maybe_update(|o| {
                let before = o.entries().len();
                let step = rule(d, o);
                let changed = o.entries().len() != before;
                (changed, (step, changed))
            })
        }) else {
            return;
        };
        if outbox_changed {
            self.outbox
                .with_untracked(|o| platform::save_outbox(self.me_id(), o.entries()));
        }
        if let Some(frame) = step.sync_frame() {
            platform::transmit(&frame);
        }
        for entry in step.show {
            match entry {
                Entry::Message(m) => self.show(m),
                Entry::Event(e) => self.show_event(e),
            }
        }
        if step.refresh_list {
            spawn_local(self.refresh_conversations());
        }
    }

    /// Shows a message that is next in order: list preview, the open pane. Whether it is read is
    /// for the view to say ([`Chat::saw`]).
    fn show(&self, m: Message) {
        let me = self.me_id();
        let is_open = self.open.get_untracked() == Some(m.conv);
        let caught_up = self
            .conversations
            .with_untracked(|i| i.first_unread(m.conv).is_none());
        self.typing
            .update(|t| t.retain(|x| !(x.conv == m.conv && x.user.id == m.sender.id)));
        let news = self
            .conversations
            .try_update(|inbox| self.me.with_value(|me| inbox.record(&m, me)))
            .unwrap_or(false);
        let seen_now = is_open && self.attentive.get_untracked();
        // A message deleted since (it comes as a tombstone in a replay) is no news to tell.
        if news && m.sender.id != me && !seen_now && !m.deleted {
            self.notify(&m);
        }
        if is_open {
            if m.sender.id == me {
                // Writing means having caught up: the line has done its job.
                self.divider.set(None);
            } else {
                if !self.attentive.get_untracked() && caught_up {
                    // The first news while the person is away: back, they see where it starts.
                    self.divider.set(Some(m.seq));
                }
                if !m.deleted {
                    let body: String = m.preview_text().chars().take(300).collect();
                    self.announcement
                        .set(format!("{}: {body}", m.sender.username));
                }
            }
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
                // System lines older than the window go with it, so that the next page starts
                // right before the oldest message shown.
                let first = self.messages.with_untracked(|m| m.keys().next().copied());
                if let Some(first) = first {
                    if self
                        .events
                        .with_untracked(|e| e.keys().next().is_some_and(|s| *s < first))
                    {
                        self.events.update(|e| e.retain(|seq, _| *seq > first));
                    }
                }
            }
        }
    }

    /// Applies an event that is next in order: to the list's preview and cursor, and to the open
    /// pane (the changed message, or a new system line). Never a notification or unread.
    fn show_event(&self, e: Event) {
        let me = self.me_id();
        self.conversations
            .update(|inbox| inbox.record_event(&e, me));
        if self.open.get_untracked() != Some(e.conv) {
            return;
        }
        if e.change.is_system() {
            self.events.update(|events| {
                events.insert(e.seq, e);
            });
        } else {
            if matches!(e.change, Change::Delete { target } if self.editing.get_untracked() == Some(target))
            {
                self.editing.set(None);
            }
            self.messages.update(|msgs| apply(msgs, &e, me));
        }
    }

    // ----- notifications ----------------------------------------------------------------------

    /// A desktop notification for a message the person is not looking at, unless notifications
    /// are off or the conversation is muted — a message that mentions them (`@username`) is
    /// notified even in a muted conversation. Clicking it opens the conversation.
    fn notify(&self, m: &Message) {
        let mentioned = self
            .me
            .with_value(|me| crate::mentions::mentions(&m.body, &me.username));
        if !self.notifications.get_untracked()
            || (!mentioned && self.muted.with_untracked(|muted| muted.contains(&m.conv)))
        {
            return;
        }
        let Some((kind, title)) = self
            .conversations
            .with_untracked(|i| i.get(m.conv).map(|c| (c.kind, c.title.clone())))
        else {
            return;
        };
        let heading = match (kind, mentioned) {
            (ConvKind::Direct, false) => m.sender.username.clone(),
            (ConvKind::Direct, true) => format!("{} mentioned you", m.sender.username),
            (ConvKind::Group, false) => format!("{} in {title}", m.sender.username),
            (ConvKind::Group, true) => format!("{} mentioned you in {title}", m.sender.username),
        };
        let body: String = m.preview_text().chars().take(200).collect();
        platform::notify(*self, m.conv, &heading, &body);
    }

    /// Turns muting `conv` on or off.
    pub fn toggle_mute(&self, conv: ConvId) {
        self.muted.update(|muted| {
            if !muted.remove(&conv) {
                muted.insert(conv);
            }
        });
        self.muted
            .with_untracked(|muted| platform::save_muted(self.me_id(), muted));
    }
}

/// Provides the chat state to the components below.
pub fn provide_chat(chat: Chat) {
    provide_context(chat);
}

/// The chat state provided by the chat layout.
pub fn use_chat() -> Chat {
    expect_context::<Chat>()
}

#[cfg(feature = "hydrate")]
mod platform {
    pub use crate::client::notify::save_muted;
    pub use crate::client::socket::transmit;
    pub use crate::client::storage::save_outbox;
    use crate::model::ConvId;
    use leptos::prelude::Set;

    pub fn notify(chat: super::Chat, conv: ConvId, title: &str, body: &str) {
        crate::client::notify::show(conv, title, body, move || {
            chat.go_to.try_set(Some(conv));
        });
    }

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
        /// The notifications it tried to show (title, body).
        pub static NOTES: std::cell::RefCell<Vec<(String, String)>> = const { std::cell::RefCell::new(Vec::new()) };
        static NEXT_ID: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    pub fn notify(_chat: super::Chat, _conv: crate::model::ConvId, _title: &str, _body: &str) {
        #[cfg(test)]
        NOTES.with(|n| n.borrow_mut().push((_title.into(), _body.into())));
    }
    pub fn save_muted(_user: UserId, _muted: &std::collections::HashSet<crate::model::ConvId>) {}

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
    //! The reactive layer only: the rules themselves are tested in `crate::delivery`.
    use super::*;
    use crate::model::{ConvKind, MessageId};
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
            roles: Vec::new(),
            last_seq,
            last_read_seq: last_seq,
            unread: 0,
            mentions: 0,
            last_message: None,
            updated_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
            bots: Vec::new(),
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
            reply_to: None,
            edited_at: None,
            deleted: false,
            reactions: Vec::new(),
            attachment: None,
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

    fn unread(chat: &Chat) -> i64 {
        chat.conversations
            .with_untracked(|i| crate::delivery::unread(i.get(CONV).unwrap()))
    }

    fn sent() -> Vec<ClientFrame> {
        platform::SENT.with(|s| s.borrow_mut().drain(..).collect())
    }

    #[test]
    fn frames_reach_the_pane_the_list_and_the_server() {
        let chat = chat_at(1);
        chat.on_frame(message(3, 2));
        assert!(shown(&chat).is_empty());
        assert!(
            matches!(&sent()[..], [ClientFrame::Sync { cursors }] if cursors[&CONV] == 1),
            "the gap is asked for"
        );
        chat.on_frame(message(2, 2));
        assert_eq!(shown(&chat), [2, 3]);
        let c = chat
            .conversations
            .with_untracked(|i| i.get(CONV).cloned().unwrap());
        assert_eq!(c.last_message.as_ref().unwrap().body, "m3");
        // Screen readers hear the newest live message of the open conversation.
        assert_eq!(chat.announcement.get_untracked(), "bob: m3");
    }

    #[test]
    fn a_message_is_read_once_seen_by_someone_looking() {
        let chat = chat_at(0);
        chat.on_frame(message(1, 2));
        chat.on_frame(message(2, 2));
        // In the open conversation, but not on screen yet.
        assert_eq!(unread(&chat), 2);
        // On screen in a hidden or unfocused tab: still unread, and nobody is told.
        chat.attentive.set(false);
        chat.saw(CONV, 2);
        assert_eq!(unread(&chat), 2);
        assert!(!sent().iter().any(|f| matches!(f, ClientFrame::Read { .. })));
        // The person looks: read, and the server hears it once.
        chat.attentive.set(true);
        chat.saw(CONV, 1);
        chat.saw(CONV, 2);
        chat.saw(CONV, 2);
        assert_eq!(unread(&chat), 0);
        let reads: Vec<_> = sent()
            .into_iter()
            .filter(|f| matches!(f, ClientFrame::Read { .. }))
            .collect();
        assert_eq!(
            reads,
            [
                ClientFrame::Read { conv: CONV, seq: 1 },
                ClientFrame::Read { conv: CONV, seq: 2 }
            ]
        );
    }

    #[test]
    fn the_new_messages_line_marks_what_came_while_away() {
        let chat = chat_at(0);
        // Opened with message 1 unread, then read: the line from opening is stale.
        chat.divider.set(Some(1));
        chat.on_frame(message(1, 2));
        chat.saw(CONV, 1);
        chat.attentive.set(false);
        chat.on_frame(message(2, 2));
        chat.on_frame(message(3, 2));
        assert_eq!(chat.divider.get_untracked(), Some(2));
        // Writing clears it.
        chat.on_frame(message(4, 1));
        assert_eq!(chat.divider.get_untracked(), None);
    }

    #[test]
    fn reads_the_server_missed_are_told_again_after_a_reconnect() {
        let chat = chat_at(2);
        chat.on_frame(message(3, 2));
        chat.saw(CONV, 3);
        sent();
        // The receipt was lost with the connection: the fresh list still says 2.
        let mut fresh = conversation(3);
        fresh.last_read_seq = 2;
        chat.set_conversations(vec![fresh]);
        assert_eq!(sent(), [ClientFrame::Read { conv: CONV, seq: 3 }]);
        assert_eq!(unread(&chat), 0);
    }

    #[test]
    fn unread_counts_follow_my_other_tabs_and_my_own_messages() {
        let chat = chat_at(0);
        chat.close_conversation();
        for seq in 1..=3 {
            chat.on_frame(message(seq, 2));
        }
        assert_eq!(unread(&chat), 3);
        // Another tab of mine read up to 2.
        chat.on_frame(ServerFrame::Read {
            conv: CONV,
            user: UserId(1),
            seq: 2,
        });
        assert_eq!(unread(&chat), 1);
        // My own message means I have read the conversation.
        chat.on_frame(message(4, 1));
        assert_eq!(unread(&chat), 0);
    }

    #[test]
    fn others_read_receipts_feed_seen() {
        let chat = chat_at(0);
        for seq in [2, 1] {
            chat.on_frame(ServerFrame::Read {
                conv: CONV,
                user: UserId(2),
                seq,
            });
        }
        assert_eq!(chat.seen.get_untracked()[&CONV][&UserId(2)], 2);
    }

    #[test]
    fn a_refused_change_leaves_the_outbox_with_a_notice() {
        let chat = chat_at(1);
        chat.change(
            CONV,
            Change::Edit {
                target: 1,
                body: "fixed".into(),
            },
        )
        .unwrap();
        let id = chat
            .outbox
            .with_untracked(|o| o.entries()[0].client_id.clone());
        chat.on_frame(ServerFrame::error(
            crate::protocol::ErrorCode::NotAllowed,
            "not yours",
            Some(id),
        ));
        assert!(chat.outbox.with_untracked(Outbox::is_empty));
        assert_eq!(chat.notice.get_untracked().as_deref(), Some("not yours"));
    }

    #[test]
    fn events_change_the_open_pane_and_group_events_become_lines() {
        let chat = chat_at(0);
        chat.on_frame(message(1, 2));
        chat.on_frame(ServerFrame::Event(Event {
            conv: CONV,
            seq: 2,
            id: MessageId(102),
            client_id: "x-2".into(),
            sender: user(2, "bob"),
            at: Utc.timestamp_opt(1_700_000_002, 0).unwrap(),
            change: Change::React {
                target: 1,
                emoji: "👍".into(),
                on: true,
            },
        }));
        chat.on_frame(ServerFrame::Event(Event {
            conv: CONV,
            seq: 3,
            id: MessageId(103),
            client_id: "sys:7:3".into(),
            sender: user(2, "bob"),
            at: Utc.timestamp_opt(1_700_000_003, 0).unwrap(),
            change: Change::Renamed {
                title: "Trip".into(),
            },
        }));
        assert_eq!(chat.messages.get_untracked()[&1].reactions[0].count, 1);
        assert_eq!(
            chat.events
                .get_untracked()
                .keys()
                .copied()
                .collect::<Vec<_>>(),
            [3]
        );
        assert_eq!(unread(&chat), 1, "the message, not the events");
    }

    #[test]
    fn a_sent_message_is_pending_until_its_ack_shows_it() {
        let chat = chat_at(0);
        assert!(chat.send(CONV, "   ".into()).is_err());
        chat.send(CONV, "hello".into()).unwrap();
        let id = chat
            .outbox
            .with_untracked(|o| o.entries()[0].client_id.clone());
        assert!(matches!(&sent()[..], [ClientFrame::Send { client_id, .. }] if *client_id == id));
        chat.on_frame(ServerFrame::Ack {
            client_id: id,
            conv: CONV,
            id: MessageId(1),
            seq: 1,
            at: Utc.timestamp_opt(1_700_000_100, 0).unwrap(),
        });
        assert!(chat.outbox.with_untracked(Outbox::is_empty));
        assert_eq!(shown(&chat), [1]);
        assert_eq!(
            chat.messages.with_untracked(|m| m[&1].body.clone()),
            "hello"
        );
        // Refused, retried, discarded.
        chat.send(CONV, "again".into()).unwrap();
        let id = chat
            .outbox
            .with_untracked(|o| o.entries()[0].client_id.clone());
        chat.on_frame(ServerFrame::error(
            crate::protocol::ErrorCode::RateLimited,
            "slow down",
            Some(id.clone()),
        ));
        assert_eq!(
            chat.outbox
                .with_untracked(|o| o.entries()[0].failed.clone()),
            Some("slow down".into())
        );
        sent();
        chat.retry(&id);
        assert_eq!(sent().len(), 1);
        chat.discard(&id);
        assert!(chat.outbox.with_untracked(Outbox::is_empty));
    }

    #[test]
    fn notifications_only_for_what_the_person_is_not_looking_at() {
        let chat = chat_at(0);
        platform::NOTES.with(|n| n.borrow_mut().clear());
        chat.attentive.set(false);
        chat.on_frame(message(1, 2)); // notifications are off
        chat.notifications.set(true);
        chat.attentive.set(true);
        chat.on_frame(message(2, 2)); // open and looked at
        chat.attentive.set(false);
        chat.on_frame(message(3, 2)); // open, but the person is away
        chat.on_frame(message(4, 1)); // mine
        chat.toggle_mute(CONV);
        chat.on_frame(message(5, 2)); // muted
        chat.toggle_mute(CONV);
        chat.attentive.set(true);
        chat.close_conversation();
        chat.on_frame(message(5, 2)); // held already
        chat.on_frame(message(6, 2)); // not open
        let notes = platform::NOTES.with(|n| n.borrow_mut().drain(..).collect::<Vec<_>>());
        assert_eq!(
            notes,
            [("bob".into(), "m3".into()), ("bob".into(), "m6".into())]
        );
    }

    #[test]
    fn the_open_conversation_keeps_a_bounded_window() {
        let chat = chat_at(0);
        chat.on_frame(ServerFrame::Event(Event {
            conv: CONV,
            seq: 1,
            id: MessageId(101),
            client_id: "sys:7:1".into(),
            sender: user(2, "bob"),
            at: Utc.timestamp_opt(1_700_000_001, 0).unwrap(),
            change: Change::Left,
        }));
        for seq in 2..=(MAX_OPEN_MESSAGES as Seq + 11) {
            chat.on_frame(message(seq, 2));
        }
        let seqs = shown(&chat);
        assert_eq!(seqs.len(), MAX_OPEN_MESSAGES);
        assert_eq!(seqs[0], 12);
        assert!(chat.has_more.get_untracked());
        assert!(
            chat.events.with_untracked(BTreeMap::is_empty),
            "a system line older than the window goes with it"
        );
    }
}
