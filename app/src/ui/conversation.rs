//! The right pane: the open conversation's header, its message log and the composer.
//!
//! The log follows the conversation the way people expect from other chats:
//! - at the bottom, new messages keep the view at the bottom; scrolled up, nothing moves the view
//!   (not new messages, not older pages loaded above, not the window trimming its oldest), and a
//!   "New messages ↓ (N)" button appears;
//! - a freshly opened conversation lands at the "New messages" line, or at the bottom;
//! - after every change and every scroll it tells the chat state which messages are on screen
//!   ([`Chat::saw`](super::state::Chat::saw)), which is what counts as reading them.
//!
//! Message bodies are rendered as text nodes and `<a>` elements for http(s) addresses, never as
//! HTML.
//!
//! Each message has its actions (reply, react, and for my own edit and delete — confirmed in
//! place) on hover and focus; its reactions as toggles with who reacted in the title; a reply shows the quoted
//! original, and clicking the quote scrolls to it (loading older pages until it is there); an
//! opened search result (`Chat::jump`) is shown the same way. Group events are lines of their own.
//!
//! Files: the composer's "Attach" picker, a file dropped on the composer or pasted into it is
//! uploaded at once (progress shown, cancellable) and then sent as its own message. A message's
//! raster image is shown inline in a box of its known size (lazy-loaded, so a long log does not
//! fetch every picture); any other file is a download link with its name and size.

use super::format::{self, Piece, Row};
use super::group::GroupSettings;
use super::sidebar::Avatar;
use super::state::{use_chat, OutboxEntry};
use crate::delivery::unread;
use crate::model::{
    Attachment, Change, ConvId, ConvKind, Conversation, Message, Quote, Seq, UserId, MAX_BODY_CHARS,
};
use leptos::ev::KeyboardEvent;
use leptos::html;
use leptos::prelude::*;
use leptos::wasm_bindgen::JsCast;
use leptos::web_sys::{HtmlDivElement, HtmlElement};
use leptos_router::hooks::use_params_map;

/// The reader is "at the bottom" within this many pixels of it.
const BOTTOM_SLACK: i32 = 48;
/// Scrolling within this many pixels of the top loads the page before.
const TOP_SLACK: i32 = 80;
/// The composer shows a character count from this many characters on.
const COUNT_FROM: usize = MAX_BODY_CHARS - 500;
/// The reaction picker's emoji.
pub const COMMON_EMOJI: [&str; 6] = ["👍", "❤️", "😂", "🎉", "😮", "😢"];

/// Shown at `/` when no conversation is open.
#[component]
pub fn NoConversation() -> impl IntoView {
    let chat = use_chat();
    Effect::new(move |_| chat.close_conversation());
    view! {
        <div class="placeholder">
            <img class="placeholder-art" src="/favicon.svg" alt=""/>
            <h2>"Pick a conversation"</h2>
            <p>"Or start a new chat with someone by their username, or create a group."</p>
        </div>
    }
}

/// `/c/:id`: one conversation. The route's view stays mounted when the id changes, so opening
/// another conversation is just a new value of `id`.
#[component]
pub fn ConversationPane() -> impl IntoView {
    let chat = use_chat();
    let params = use_params_map();
    let id = Memo::new(move |_| {
        params
            .with(|p| p.get("id"))
            .and_then(|s| s.parse::<i64>().ok())
            .map(ConvId)
    });
    Effect::new(move |_| {
        if let Some(id) = id.get() {
            chat.open_conversation(id);
        }
    });

    let conv = Memo::new(move |_| {
        let id = id.get()?;
        chat.conversations.with(|inbox| inbox.get(id).cloned())
    });
    let title = move || conv.with(|c| c.as_ref().map(|c| c.title.clone()).unwrap_or_default());
    // Unread messages in the other conversations (the back control's badge on a phone).
    let elsewhere = Memo::new(move |_| {
        let open = id.get();
        chat.conversations.with(|i| {
            i.total_unread()
                - open
                    .and_then(|o| i.get(o))
                    .map_or(0, crate::delivery::unread)
        })
    });
    let me = chat.me_id();
    let subtitle = move || {
        let c = conv.get()?;
        let typing = chat.typists(c.id);
        if !typing.is_empty() {
            let who = typing.join(", ");
            let verb = if typing.len() == 1 { "is" } else { "are" };
            return Some(format!("{who} {verb} typing…"));
        }
        Some(match c.kind {
            ConvKind::Direct => {
                let peer = c.members.iter().find(|m| m.id != me)?.id;
                if chat.online.with(|o| o.contains(&peer)) {
                    "online".to_owned()
                } else {
                    "direct chat".to_owned()
                }
            }
            ConvKind::Group => {
                let names: Vec<_> = c.members.iter().map(|m| m.username.as_str()).collect();
                format!("{}: {}", members(names.len()), names.join(", "))
            }
        })
    };

    view! {
        <header class="pane-head">
            <a class="back" href="/">
                <span aria-hidden="true">"‹"</span>
                <span class="sr-only">"Back to conversations"</span>
                // On a phone the list is another screen: say here that something waits there.
                <Show when=move || { elsewhere.get() > 0 }>
                    <span class="badge back-badge">
                        <span class="sr-only">", "</span>
                        {move || elsewhere.get()}
                        <span class="sr-only">" unread"</span>
                    </span>
                </Show>
            </a>
            // The screen's top-level heading: on a phone the list (and its "Tidings") is another
            // screen, so without it the conversation screen would have no heading of level 1.
            <div class="pane-title">
                <h1 id="pane-title">{title}</h1>
                <p class="subtitle">{subtitle}</p>
            </div>
            {move || {
                id.get()
                    .map(|id| {
                        let muted = move || chat.muted.with(|m| m.contains(&id));
                        view! {
                            <button
                                type="button"
                                class="ghost small"
                                aria-pressed=move || muted().to_string()
                                title="No desktop notifications for this conversation"
                                on:click=move |_| chat.toggle_mute(id)
                            >
                                {move || if muted() { "Muted" } else { "Mute" }}
                            </button>
                        }
                    })
            }}
            <Show when=move || conv.with(|c| c.as_ref().is_some_and(|c| c.kind == ConvKind::Group))>
                <GroupSettings conv/>
            </Show>
        </header>
        <MessageLog id conv/>
        <Composer id/>
    }
}

/// "1 member", "3 members".
pub fn members(n: usize) -> String {
    if n == 1 {
        "1 member".into()
    } else {
        format!("{n} members")
    }
}

#[component]
fn MessageLog(id: Memo<Option<ConvId>>, conv: Memo<Option<Conversation>>) -> impl IntoView {
    let chat = use_chat();
    let log = NodeRef::<html::Div>::new();
    let me = chat.me_id();
    // At the bottom, new messages keep the view there; the reader scrolling up stops that.
    let following = RwSignal::new(true);
    // The first message on screen and its distance from the top of the view. When not following,
    // it is put back after every change, so nothing added or removed above moves what is read.
    let anchor = StoredValue::new(None::<(Seq, i32)>);
    // The scroll position last seen or set: a smaller one in a scroll event is the reader going up
    // (content growing below never makes it smaller).
    let last_top = StoredValue::new(0);
    // A conversation just opened lands at its "New messages" line, or at the bottom.
    let landing = StoredValue::new(true);
    // A quoted message to scroll to (a reply's quote was clicked): older pages are loaded until
    // it is shown, or there are none left.
    let jump = RwSignal::new(None::<Seq>);
    Effect::new(move |_| {
        let Some(seq) = jump.get() else {
            return;
        };
        chat.messages.track();
        chat.loading_history.track();
        request_animation_frame(move || {
            let Some(el) = log.try_get_untracked().flatten() else {
                return;
            };
            if let Some(item) = find_item(&el, seq) {
                jump.set(None);
                following.set(false);
                // A conversation opened for this message lands here, not at its newest.
                landing.set_value(false);
                item.scroll_into_view();
                anchor.set_value(first_on_screen(&el));
                let _ = item.class_list().add_1("flash");
                let _ = item.focus();
            } else if chat.has_more.get_untracked() {
                chat.load_older();
            } else if !chat.loading_history.get_untracked() {
                // Not in this conversation's history any more.
                jump.set(None);
            }
        });
    });

    // A search result asks for a message of this conversation: the same jump as a quote's.
    Effect::new(move |_| {
        let Some((conv, seq)) = chat.jump.get() else {
            return;
        };
        if id.get() == Some(conv) {
            chat.jump.set(None);
            jump.set(Some(seq));
        }
    });

    Effect::new(move |_| {
        id.track();
        following.set(true);
        anchor.set_value(None);
        last_top.set_value(0);
        landing.set_value(true);
    });

    // Whatever is on screen while the person can see it is read.
    let report_seen = move |el: &HtmlDivElement| {
        if let (Some(conv), Some(seq)) = (id.get_untracked(), last_on_screen(el)) {
            chat.saw(conv, seq);
        }
    };

    // After every change to what is shown (and when the person comes back to the tab): land,
    // follow or hold still, then report what is on screen.
    Effect::new(move |_| {
        chat.messages.track();
        chat.outbox.track();
        chat.divider.track();
        chat.attentive.track();
        request_animation_frame(move || {
            // By the next frame the pane may be gone (e.g. the user left the group).
            let Some(el) = log.try_get_untracked().flatten() else {
                return;
            };
            let has_messages = chat.messages.with_untracked(|m| !m.is_empty());
            if landing.get_value() && has_messages {
                landing.set_value(false);
                match el.query_selector(".new-line").ok().flatten() {
                    Some(line) => {
                        let line: HtmlElement = line.unchecked_into();
                        el.set_scroll_top(line.offset_top() - 12);
                        following.set(near_bottom(&el));
                    }
                    None => el.set_scroll_top(el.scroll_height()),
                }
            } else if following.get_untracked() {
                el.set_scroll_top(el.scroll_height());
            } else if let Some((seq, offset)) = anchor.get_value() {
                if let Some(item) = find_item(&el, seq) {
                    el.set_scroll_top(item.offset_top() - offset);
                }
            }
            last_top.set_value(el.scroll_top());
            anchor.set_value(first_on_screen(&el));
            report_seen(&el);
        });
    });

    let on_scroll = move |_| {
        let Some(el) = log.get_untracked() else {
            return;
        };
        let top = el.scroll_top();
        if near_bottom(&el) {
            if !following.get_untracked() {
                following.set(true);
            }
        } else if top < last_top.get_value() - 2 && following.get_untracked() {
            following.set(false);
        }
        last_top.set_value(top);
        anchor.set_value(first_on_screen(&el));
        report_seen(&el);
        if top < TOP_SLACK && chat.has_more.get_untracked() && !chat.loading_history.get_untracked()
        {
            chat.load_older();
        }
    };
    let jump_to_newest = move |_| {
        if let Some(el) = log.get_untracked() {
            following.set(true);
            el.set_scroll_top(el.scroll_height());
        }
    };

    let is_group = move || conv.with(|c| c.as_ref().is_some_and(|c| c.kind == ConvKind::Group));
    let rows = move || {
        let divider = chat.divider.get();
        let today = format::now_local().date_naive();
        chat.messages.with(|m| {
            chat.events
                .with(|e| format::rows(m.values(), e.values(), divider, today, format::local))
        })
    };
    let pending = move || {
        let Some(id) = id.get() else {
            return Vec::new();
        };
        chat.outbox
            .with(|o| o.pending_in(id).cloned().collect::<Vec<_>>())
    };
    // "Seen" goes under my newest stored message once others have read it; never under a message
    // still sending.
    let seen = move || {
        let c = conv.get()?;
        let (seq, mine) = chat
            .messages
            .with(|m| m.values().last().map(|m| (m.seq, m.sender.id == me)))?;
        if !mine {
            return None;
        }
        let readers: Vec<UserId> = chat.seen.with(|s| {
            s.get(&c.id)
                .map(|by| {
                    by.iter()
                        .filter(|(u, read)| **u != me && **read >= seq)
                        .map(|(u, _)| *u)
                        .collect()
                })
                .unwrap_or_default()
        });
        let others: Vec<_> = c.members.iter().filter(|m| m.id != me).collect();
        let names: Vec<_> = others
            .iter()
            .filter(|m| readers.contains(&m.id))
            .map(|m| m.username.clone())
            .collect();
        match (c.kind, names.len()) {
            (_, 0) => None,
            (ConvKind::Direct, _) => Some("Seen".to_owned()),
            (ConvKind::Group, n) if n == others.len() => Some("Seen by everyone".to_owned()),
            (ConvKind::Group, _) => Some(format!("Seen by {}", names.join(", "))),
        }
    };
    let open_unread = move || {
        let id = id.get()?;
        let n = chat.conversations.with(|i| i.get(id).map(unread))?;
        (n > 0).then_some(n)
    };

    view! {
        <div class="log-wrap">
            <div
                class="log"
                class:group=is_group
                role="log"
                // Not live: older pages loaded by scrolling are no news. New messages are
                // announced by the region below instead.
                aria-live="off"
                aria-labelledby="pane-title"
                node_ref=log
                on:scroll=on_scroll
            >
                <div class="log-top">
                    <Show when=move || chat.has_more.get()>
                        <button
                            type="button"
                            class="ghost small"
                            disabled=move || chat.loading_history.get()
                            on:click=move |_| chat.load_older()
                        >
                            "Load older messages"
                        </button>
                    </Show>
                    <Show when=move || {
                        !chat.has_more.get() && !chat.loading_history.get()
                            && chat.messages.with(|m| m.is_empty())
                            && chat.history_error.with(|e| e.is_none())
                    }>
                        <p class="log-empty">"No messages yet. Say hello!"</p>
                    </Show>
                    <p class="error" role="alert">{move || chat.history_error.get()}</p>
                </div>
                <ol class="messages">
                    <For each=rows key=Row::key let:row>
                        {match row {
                            Row::Day { label, .. } => {
                                view! { <li class="day"><span>{label}</span></li> }.into_any()
                            }
                            Row::NewMessages => {
                                view! { <li class="new-line"><span>"New messages"</span></li> }.into_any()
                            }
                            Row::Message { m, head } => {
                                let mine = m.sender.id == me;
                                view! { <MessageItem m head mine jump/> }.into_any()
                            }
                            Row::System { e } => {
                                view! {
                                    <li class="system" data-event=e.seq>
                                        <span>{format::system_line(&e, me)}</span>
                                    </li>
                                }
                                    .into_any()
                            }
                        }}
                    </For>
                    {move || seen().map(|text| view! { <li class="seen">{text}</li> })}
                    <For each=pending key=|e| (e.client_id.clone(), e.failed.clone()) let:e>
                        <PendingItem e/>
                    </For>
                </ol>
            </div>
            <p class="sr-only" aria-live="polite">{move || chat.announcement.get()}</p>
            <Show when=move || !following.get() && open_unread().is_some()>
                <button type="button" class="jump" on:click=jump_to_newest>
                    "New messages "
                    <span aria-hidden="true">"↓"</span>
                    " (" {move || open_unread().unwrap_or(0)} ")"
                </button>
            </Show>
        </div>
    }
}

/// One stored message. The head of a run shows the sender (in groups) and the time; the others
/// show the time on hover. The sender is always named for screen readers. A deleted message is a
/// tombstone; my own can be edited in place (Enter saves, Escape cancels) or deleted (after a
/// confirmation).
#[component]
fn MessageItem(m: Message, head: bool, mine: bool, jump: RwSignal<Option<Seq>>) -> impl IntoView {
    let chat = use_chat();
    let me = chat.me_id();
    let at = format::local(&m.at);
    let colour = format::colour(m.sender.id);
    let who = if mine {
        "You".to_owned()
    } else {
        m.sender.username.clone()
    };
    let (conv, seq) = (m.conv, m.seq);
    let bot = chat
        .conversations
        .with_untracked(|inbox| inbox.get(conv).is_some_and(|c| c.is_bot(m.sender.id)));
    let editing = move || chat.editing.get() == Some(seq);
    let picker = RwSignal::new(false);
    let change = move |c: Change| {
        if let Err(e) = chat.change(conv, c) {
            chat.notice.set(Some(e));
        }
    };
    let quote = m.reply_to.clone().map(|q| {
        let target = q.seq;
        let text = if q.deleted {
            "message deleted".to_owned()
        } else {
            q.excerpt.clone()
        };
        view! {
            <button
                type="button"
                class="quote"
                class:deleted=q.deleted
                title="Show the original message"
                on:click=move |_| jump.set(Some(target))
            >
                <span class="quote-sender">{q.sender.username.clone()}</span>
                <span class="quote-text">{text}</span>
            </button>
        }
    });
    let reactions = m
        .reactions
        .iter()
        .map(|r| {
            let names: Vec<_> = r
                .users
                .iter()
                .map(|u| {
                    if u.id == me {
                        "you".to_owned()
                    } else {
                        u.username.clone()
                    }
                })
                .collect();
            let (emoji, mine_too) = (r.emoji.clone(), r.mine);
            let label = format!("{} {}: {}", r.emoji, r.count, names.join(", "));
            view! {
                <button
                    type="button"
                    class="reaction"
                    class:mine=mine_too
                    aria-pressed=mine_too.to_string()
                    title=label.clone()
                    aria-label=label
                    on:click=move |_| {
                        change(Change::React { target: seq, emoji: emoji.clone(), on: !mine_too })
                    }
                >
                    {r.emoji.clone()}
                    " "
                    <span class="count">{r.count}</span>
                </button>
            }
        })
        .collect_view();
    let deleted = m.deleted;
    let body_text = m.body.clone();
    let quote_for_reply = Quote::of(&m);
    // Deleting asks first, in place: "Delete for everyone?" with Delete and Cancel.
    let confirming = RwSignal::new(false);
    let actions = (!deleted).then(|| {
        let own = mine.then(|| {
            view! {
                <button type="button" class="small ghost" on:click=move |_| chat.editing.set(Some(seq))>
                    "Edit"
                </button>
                <button type="button" class="small ghost" on:click=move |_| confirming.set(true)>
                    "Delete"
                </button>
                <Show when=move || confirming.get()>
                    <span class="confirm" role="group" aria-label="Delete for everyone?">
                        "Delete for everyone? "
                        <button
                            type="button"
                            class="small danger"
                            on:click=move |_| {
                                confirming.set(false);
                                change(Change::Delete { target: seq });
                            }
                        >
                            "Delete for everyone"
                        </button>
                        <button type="button" class="small ghost" on:click=move |_| confirming.set(false)>
                            "Cancel"
                        </button>
                    </span>
                </Show>
            }
        });
        view! {
            <span class="msg-actions">
                <button
                    type="button"
                    class="small ghost"
                    on:click=move |_| {
                        chat.replying.set(Some(quote_for_reply.clone()));
                        focus_composer();
                    }
                >
                    "Reply"
                </button>
                <button
                    type="button"
                    class="small ghost"
                    aria-expanded=move || picker.get().to_string()
                    aria-label="Add a reaction"
                    on:click=move |_| picker.update(|p| *p = !*p)
                >
                    "☺+"
                </button>
                {own}
                <Show when=move || picker.get()>
                    <span class="picker" role="group" aria-label="Reactions">
                        {COMMON_EMOJI
                            .iter()
                            .map(|e| {
                                let emoji = e.to_string();
                                view! {
                                    <button
                                        type="button"
                                        class="small ghost"
                                        on:click=move |_| {
                                            picker.set(false);
                                            change(Change::React { target: seq, emoji: emoji.clone(), on: true });
                                        }
                                    >
                                        {*e}
                                    </button>
                                }
                            })
                            .collect_view()}
                    </span>
                </Show>
            </span>
        }
    });
    view! {
        <li class="msg" class:mine=mine class:head=head class:deleted=deleted data-seq=m.seq tabindex="-1">
            {(!mine)
                .then(|| {
                    view! {
                        <span class="msg-avatar">
                            {head.then(|| view! { <Avatar name=m.sender.username.clone() user=m.sender.id/> })}
                        </span>
                    }
                })}
            <div class="bubble">
                <span class=format!("sender {colour}")>{who}</span>
                {bot.then(|| view! { <span class="bot-badge">"bot"</span> })}
                {quote}
                {m.attachment.clone().filter(|_| !deleted).map(|a| view! { <AttachmentView a=*a/> })}
                {move || {
                    if deleted {
                        view! { <p class="body tombstone">"message deleted"</p> }.into_any()
                    } else if editing() {
                        view! { <EditBox conv seq body=body_text.clone()/> }.into_any()
                    } else if body_text.is_empty() {
                        // A file sent without words.
                        ().into_any()
                    } else {
                        view! { <p class="body">{body(&body_text)}</p> }.into_any()
                    }
                }}
                <span class="reactions">{reactions}</span>
                <span class="meta">
                    {m.edited_at.filter(|_| !deleted).map(|t| {
                        let at = format::local(&t);
                        view! { <span class="edited" title=format::full_time(at)>"edited "</span> }
                    })}
                    <time datetime=m.at.to_rfc3339() title=format::full_time(at)>
                        {format::clock(at)}
                    </time>
                </span>
                {actions}
            </div>
        </li>
    }
}

/// A message's file: a raster image inline (sized before it loads, so the log does not jump, and
/// loaded only when scrolled near), anything else a download link with its name and size. Both
/// point at the members-only URL; the server decides what may be shown inline.
#[component]
fn AttachmentView(a: Attachment) -> impl IntoView {
    let url = a.url();
    let label = format!("{} ({})", a.name, a.human_size());
    if a.is_inline_image() {
        // Scaled down to the bubble by the stylesheet; width/height give the box its ratio.
        let href = url.clone();
        view! {
            <a class="attachment-image" href=href target="_blank" rel="noopener" title=label>
                <img
                    src=url
                    alt=a.name.clone()
                    width=a.width.map(|w| w.to_string())
                    height=a.height.map(|h| h.to_string())
                    loading="lazy"
                    decoding="async"
                />
            </a>
        }
        .into_any()
    } else {
        view! {
            <a class="attachment-file" href=url download=a.name.clone() title=label>
                <span class="attachment-icon" aria-hidden="true">"📎"</span>
                <span class="attachment-name">{a.name.clone()}</span>
                <span class="attachment-size">{a.human_size()}</span>
            </a>
        }
        .into_any()
    }
}

/// My message's body being edited in place: Enter saves, Shift+Enter is a new line, Escape
/// cancels.
#[component]
fn EditBox(conv: ConvId, seq: Seq, body: String) -> impl IntoView {
    let chat = use_chat();
    let text = RwSignal::new(body.clone());
    let input = NodeRef::<html::Textarea>::new();
    Effect::new(move |_| {
        if let Some(el) = input.get() {
            let _ = el.focus();
        }
    });
    let save = move || {
        let new = text.get_untracked();
        if new == body {
            chat.editing.set(None);
            return;
        }
        match chat.change(
            conv,
            Change::Edit {
                target: seq,
                body: new,
            },
        ) {
            Ok(()) => chat.editing.set(None),
            Err(e) => chat.notice.set(Some(e)),
        }
    };
    view! {
        <textarea
            class="edit-box"
            aria-label="Edit message"
            node_ref=input
            prop:value=move || text.get()
            on:input=move |ev| text.set(event_target_value(&ev))
            on:keydown=move |ev: KeyboardEvent| {
                if ev.key() == "Escape" {
                    ev.prevent_default();
                    chat.editing.set(None);
                } else if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                    ev.prevent_default();
                    save();
                }
            }
        ></textarea>
        <span class="edit-hint">"Enter to save, Escape to cancel"</span>
    }
}

/// The byte offset in `text` of a position given in UTF-16 code units (a textarea's caret).
fn byte_offset(text: &str, units: usize) -> usize {
    let mut seen = 0;
    for (i, c) in text.char_indices() {
        if seen >= units {
            return i;
        }
        seen += c.len_utf16();
    }
    text.len()
}

/// Puts the cursor in the composer.
fn focus_composer() {
    #[cfg(feature = "hydrate")]
    if let Some(el) = leptos::prelude::document().get_element_by_id("composer") {
        let _ = el.unchecked_into::<HtmlElement>().focus();
    }
}

/// A body as text, links and mentions: Leptos escapes text, so "<script>" shows as typed. An
/// `@name` of a member of the open conversation is marked (more strongly when it is me).
fn body(text: &str) -> impl IntoView {
    let chat = use_chat();
    let me = chat.me.with_value(|u| u.username.clone());
    let members: Vec<String> = chat
        .open
        .get_untracked()
        .and_then(|id| {
            chat.conversations.with_untracked(|inbox| {
                inbox
                    .get(id)
                    .map(|c| c.members.iter().map(|m| m.username.clone()).collect())
            })
        })
        .unwrap_or_default();
    format::linkify(text)
        .into_iter()
        .flat_map(|piece| match piece {
            Piece::Text(text) => with_mentions(&text, &members, &me),
            Piece::Link(url) => {
                let text = url.clone();
                vec![
                    view! { <a href=url target="_blank" rel="noopener noreferrer">{text}</a> }
                        .into_any(),
                ]
            }
        })
        .collect_view()
}

/// `text` with the `@name`s of `members` as marked elements.
fn with_mentions(text: &str, members: &[String], me: &str) -> Vec<AnyView> {
    let mut out = Vec::new();
    let mut at = 0;
    for (start, end, name) in crate::mentions::spans(text) {
        if !members.contains(&name) {
            continue;
        }
        if start > at {
            out.push(text[at..start].to_owned().into_any());
        }
        let shown = text[start..end].to_owned();
        let mine = name == me;
        out.push(view! { <span class="mention" class:me=mine>{shown}</span> }.into_any());
        at = end;
    }
    if at < text.len() {
        out.push(text[at..].to_owned().into_any());
    }
    out
}

/// A message in the outbox: "Sending…" until shown as stored, or the server's refusal with Retry
/// and Discard.
#[component]
fn PendingItem(e: OutboxEntry) -> impl IntoView {
    let chat = use_chat();
    let failed = e.failed.is_some();
    let state = if failed { "failed" } else { "pending" };
    let (retry_id, discard_id) = (e.client_id.clone(), e.client_id.clone());
    view! {
        <li class="msg mine head" class:pending=!failed class:failed=failed data-state=state>
            <div class="bubble">
                <span class="sender">"You"</span>
                {e.attachment.as_ref().map(|a| {
                    view! { <p class="attachment-pending">"📎 " {a.name.clone()} " (" {a.human_size()} ")"</p> }
                })}
                {(!e.body.is_empty()).then(|| view! { <p class="body">{body(&e.body)}</p> })}
                {match e.failed {
                    None => view! { <span class="meta">"Sending…"</span> }.into_any(),
                    Some(reason) => {
                        view! {
                            <span class="meta failed-reason" role="alert">
                                "Not sent: " {reason}
                            </span>
                            <span class="failed-actions">
                                <button type="button" class="small" on:click=move |_| chat.retry(&retry_id)>
                                    "Retry"
                                </button>
                                <button type="button" class="small ghost" on:click=move |_| chat.discard(&discard_id)>
                                    "Discard"
                                </button>
                            </span>
                        }
                            .into_any()
                    }
                }}
            </div>
        </li>
    }
}

/// The upload under way in the browser (nothing on the server side).
#[cfg(feature = "hydrate")]
type UploadHandle = crate::client::upload::Upload;
#[cfg(not(feature = "hydrate"))]
type UploadHandle = ();

/// Where the handle is kept. In the browser the request is not `Send`, so it lives in local
/// storage. On the server it must not: a page is rendered on one worker thread and may be
/// dropped on another, and a local value dropped off its thread panics (it did, killing page
/// loads at random).
#[cfg(feature = "hydrate")]
type HandleStorage = LocalStorage;
#[cfg(not(feature = "hydrate"))]
type HandleStorage = SyncStorage;

/// The composer's one upload at a time: its name and how much is sent, and the request.
#[derive(Clone, Copy)]
struct Uploading {
    /// (file name, fraction sent 0–1) while an upload runs.
    shown: RwSignal<Option<(String, f64)>>,
    handle: StoredValue<Option<UploadHandle>, HandleStorage>,
}

impl Uploading {
    fn new() -> Self {
        Uploading {
            shown: RwSignal::new(None),
            handle: StoredValue::new_with_storage(None),
        }
    }

    /// Stops the upload under way; nothing is sent.
    fn cancel(self) {
        self.handle.update_value(|h| {
            #[cfg(feature = "hydrate")]
            if let Some(upload) = h.take() {
                upload.cancel();
            }
            #[cfg(not(feature = "hydrate"))]
            h.take();
        });
        self.shown.set(None);
    }

    /// Uploads `file`, then sends it to `conv` as a message of its own.
    #[cfg(feature = "hydrate")]
    fn start(
        self,
        file: leptos::web_sys::File,
        conv: ConvId,
        chat: super::state::Chat,
        error: RwSignal<Option<String>>,
    ) {
        use crate::client::upload::Upload;
        if self.shown.get_untracked().is_some() {
            error.set(Some(
                "One file at a time: wait for this upload, or cancel it.".into(),
            ));
            return;
        }
        let name = file.name();
        error.set(None);
        self.shown.set(Some((name.clone(), 0.0)));
        let shown = self.shown;
        let handle = self.handle;
        let started = Upload::start(
            &file,
            move |fraction| shown.set(Some((name.clone(), fraction))),
            move |result| {
                shown.set(None);
                match result {
                    Ok(attachment) => {
                        if let Err(e) = chat.send_attachment(conv, String::new(), attachment) {
                            error.set(Some(e));
                        }
                    }
                    Err(e) => error.set(Some(e)),
                }
                // Not dropped here: this runs inside one of the request's own callbacks.
                request_animation_frame(move || handle.set_value(None));
            },
        );
        match started {
            Ok(upload) => self.handle.set_value(Some(upload)),
            Err(e) => {
                self.shown.set(None);
                error.set(Some(e));
            }
        }
    }
}

#[component]
fn Composer(id: Memo<Option<ConvId>>) -> impl IntoView {
    let chat = use_chat();
    let text = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let uploading = Uploading::new();
    let dragging = RwSignal::new(false);
    // A file from the picker, a drop or a paste goes the same way.
    #[cfg(feature = "hydrate")]
    let take_file = move |file: Option<leptos::web_sys::File>| {
        if let (Some(file), Some(conv)) = (file, id.get_untracked()) {
            uploading.start(file, conv, chat, error);
        }
    };
    let on_pick = move |_ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        take_file(crate::client::upload::picked_file(&_ev));
    };
    let on_drag_over = move |_ev: leptos::ev::DragEvent| {
        #[cfg(feature = "hydrate")]
        if crate::client::upload::drags_files(&_ev) {
            _ev.prevent_default();
            dragging.set(true);
        }
    };
    let on_drop = move |_ev: leptos::ev::DragEvent| {
        dragging.set(false);
        #[cfg(feature = "hydrate")]
        if let Some(file) = crate::client::upload::dropped_file(&_ev) {
            _ev.prevent_default();
            take_file(Some(file));
        }
    };
    let on_paste = move |_ev: leptos::ev::ClipboardEvent| {
        #[cfg(feature = "hydrate")]
        if let Some(file) = crate::client::upload::pasted_file(&_ev) {
            // A pasted file is sent; pasted text goes into the composer as usual.
            _ev.prevent_default();
            take_file(Some(file));
        }
    };
    // Leaving the conversation cancels an upload meant for it.
    Effect::new(move |previous: Option<Option<ConvId>>| {
        let now = id.get();
        if previous.is_some_and(|p| p != now) {
            uploading.cancel();
        }
        now
    });
    let progress = move || {
        uploading.shown.get().map(|(name, fraction)| {
            let percent = (fraction * 100.0).round() as u32;
            view! {
                <div class="uploading" role="status">
                    <span class="upload-name">"Uploading " {name} "…"</span>
                    <progress max="100" value=percent.to_string() aria-label="Upload progress">
                        {format!("{percent} %")}
                    </progress>
                    <span class="upload-percent">{format!("{percent} %")}</span>
                    <button type="button" class="small ghost" on:click=move |_| uploading.cancel()>
                        "Cancel"
                    </button>
                </div>
            }
        })
    };
    let input = NodeRef::<html::Textarea>::new();
    // Opening a conversation puts the cursor where the person will type.
    Effect::new(move |_| {
        id.track();
        request_animation_frame(move || {
            if let Some(el) = input.try_get_untracked().flatten() {
                let _ = el.focus();
            }
        });
    });
    let count = move || text.with(|t| t.chars().count());
    let over = move || count() > MAX_BODY_CHARS;
    let near_limit = move || count() >= COUNT_FROM;
    let send = move || {
        let Some(conv) = id.get_untracked() else {
            return;
        };
        match chat.send(conv, text.get_untracked()) {
            Ok(()) => {
                text.set(String::new());
                error.set(None);
            }
            Err(e) => error.set(Some(e)),
        }
    };
    // "@" and the start of a member's name: the names to pick from (the `@`'s byte offset, the
    // caret's, and the names), and the one the arrow keys are on.
    let suggest = RwSignal::new(None::<(usize, usize, Vec<String>)>);
    let active = RwSignal::new(0usize);
    let look_for_mention = move || {
        let Some(el) = input.get_untracked() else {
            return;
        };
        let value = el.value();
        let caret = el
            .selection_start()
            .ok()
            .flatten()
            .map(|units| byte_offset(&value, units as usize))
            .unwrap_or(value.len());
        let found = crate::mentions::typing_at(&value, caret).and_then(|(at, prefix)| {
            let prefix = prefix.to_ascii_lowercase();
            let me = chat.me_id();
            let names: Vec<String> = id.get_untracked().and_then(|conv| {
                chat.conversations.with_untracked(|inbox| {
                    inbox.get(conv).map(|c| {
                        c.members
                            .iter()
                            .filter(|m| m.id != me && m.username.starts_with(&prefix))
                            .take(8)
                            .map(|m| m.username.clone())
                            .collect()
                    })
                })
            })?;
            (!names.is_empty()).then_some((at, caret, names))
        });
        active.set(0);
        suggest.set(found);
    };
    let pick = move |name: String| {
        let Some((at, caret, _)) = suggest.get_untracked() else {
            return;
        };
        let value = text.get_untracked();
        let (Some(before), Some(after)) = (value.get(..at), value.get(caret..)) else {
            return;
        };
        let before = format!("{before}@{name} ");
        let units = before.encode_utf16().count() as u32;
        text.set(format!("{before}{after}"));
        suggest.set(None);
        if let Some(el) = input.get_untracked() {
            el.set_value(&text.get_untracked());
            let _ = el.set_selection_range(units, units);
            let _ = el.focus();
        }
    };
    let on_keydown = move |ev: KeyboardEvent| {
        // With names offered: arrows move, Enter or Tab takes one, Escape closes the list.
        if let Some((_, _, names)) = suggest.get_untracked() {
            match ev.key().as_str() {
                "ArrowDown" | "ArrowUp" => {
                    ev.prevent_default();
                    let n = names.len();
                    active.update(|a| {
                        *a = if ev.key() == "ArrowDown" {
                            (*a + 1) % n
                        } else {
                            (*a + n - 1) % n
                        }
                    });
                    return;
                }
                "Enter" | "Tab" if !ev.shift_key() && !ev.is_composing() => {
                    ev.prevent_default();
                    let i = active.get_untracked().min(names.len() - 1);
                    pick(names[i].clone());
                    return;
                }
                "Escape" => {
                    ev.prevent_default();
                    suggest.set(None);
                    return;
                }
                _ => {}
            }
        }
        // Enter sends; Shift+Enter makes a new line; Enter that finishes an IME composition does not.
        if ev.key() == "Escape" && chat.replying.get_untracked().is_some() {
            chat.replying.set(None);
        } else if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            send();
        }
    };
    let replying = move || {
        chat.replying.get().map(|q| {
            view! {
                <div class="replying">
                    <span class="quote-sender">"Replying to " {q.sender.username.clone()}</span>
                    <span class="quote-text">{q.excerpt.clone()}</span>
                    <button
                        type="button"
                        class="small ghost"
                        aria-label="Cancel the reply"
                        on:click=move |_| chat.replying.set(None)
                    >
                        "✕"
                    </button>
                </div>
            }
        })
    };
    view! {
        {replying}
        {progress}
        <form
            class="composer"
            class:dragging=move || dragging.get()
            on:submit=move |ev| {
                ev.prevent_default();
                send();
            }
            on:dragover=on_drag_over
            on:dragleave=move |_| dragging.set(false)
            on:drop=on_drop
        >
            <label class="attach" title="Attach a file">
                <span class="sr-only">"Attach a file"</span>
                <span aria-hidden="true">"📎"</span>
                <input type="file" class="sr-only" on:change=on_pick/>
            </label>
            <textarea
                id="composer"
                node_ref=input
                aria-label="Message"
                aria-describedby="composer-count composer-error"
                aria-invalid=move || over().to_string()
                placeholder="Write a message…"
                rows="1"
                prop:value=move || text.get()
                aria-autocomplete="list"
                aria-controls="mention-suggestions"
                aria-expanded=move || suggest.with(Option::is_some).to_string()
                aria-activedescendant=move || {
                    suggest.with(|s| s.is_some().then(|| format!("mention-{}", active.get())))
                }
                on:input=move |ev| {
                    text.set(event_target_value(&ev));
                    look_for_mention();
                    if let Some(conv) = id.get_untracked() {
                        chat.user_is_typing(conv);
                    }
                }
                on:keydown=on_keydown
                on:paste=on_paste
                on:blur=move |_| suggest.set(None)
            ></textarea>
            <ul
                id="mention-suggestions"
                class="suggestions mention-suggestions"
                role="listbox"
                aria-label="Members"
                hidden=move || suggest.with(Option::is_none)
            >
                {move || {
                    suggest
                        .get()
                        .map(|(_, _, names)| {
                            names
                                .into_iter()
                                .enumerate()
                                .map(|(i, name)| {
                                    let chosen = name.clone();
                                    view! {
                                        <li
                                            id=format!("mention-{i}")
                                            class="suggestion"
                                            role="option"
                                            aria-selected=move || (active.get() == i).to_string()
                                            // Before the textarea's blur closes the list.
                                            on:mousedown=move |ev| {
                                                ev.prevent_default();
                                                pick(chosen.clone());
                                            }
                                        >
                                            "@"
                                            {name}
                                        </li>
                                    }
                                })
                                .collect_view()
                        })
                }}
            </ul>
            <span id="composer-count" class="counter" class:over=over class:shown=near_limit>
                {move || near_limit().then(|| format!("{} / {MAX_BODY_CHARS}", count()))}
            </span>
            <button type="submit" class="primary">"Send"</button>
        </form>
        <p id="composer-error" class="error composer-error" role="alert">{move || error.get()}</p>
    }
}

// ----- measuring the log -------------------------------------------------------------------------
// Items' `offsetTop` is measured from the top of the log's content (the log is `position:
// relative` in the stylesheet), so it does not change while scrolling.

fn near_bottom(el: &HtmlDivElement) -> bool {
    el.scroll_height() - el.scroll_top() - el.client_height() < BOTTOM_SLACK
}

/// The rows of the message list, in order.
fn list_items(el: &HtmlDivElement) -> Option<leptos::web_sys::HtmlCollection> {
    Some(el.query_selector("ol.messages").ok()??.children())
}

fn item(items: &leptos::web_sys::HtmlCollection, i: u32) -> Option<HtmlElement> {
    items.item(i).map(JsCast::unchecked_into)
}

fn seq_of(item: &HtmlElement) -> Option<Seq> {
    item.get_attribute("data-seq")?.parse().ok()
}

/// The index of the first row whose `edge` (top or bottom) is below `y`: rows are in order, so a
/// binary search.
fn first_below(
    items: &leptos::web_sys::HtmlCollection,
    y: i32,
    edge: impl Fn(&HtmlElement) -> i32,
) -> u32 {
    let (mut lo, mut hi) = (0, items.length());
    while lo < hi {
        let mid = (lo + hi) / 2;
        match item(items, mid) {
            Some(e) if edge(&e) > y => hi = mid,
            _ => lo = mid + 1,
        }
    }
    lo
}

/// The first message at least partly on screen, and its offset from the top of the view.
fn first_on_screen(el: &HtmlDivElement) -> Option<(Seq, i32)> {
    let items = list_items(el)?;
    let top = el.scroll_top();
    let start = first_below(&items, top, |e| e.offset_top() + e.offset_height());
    (start..items.length()).find_map(|i| {
        let e = item(&items, i)?;
        seq_of(&e).map(|seq| (seq, e.offset_top() - top))
    })
}

/// The newest message at least partly on screen.
fn last_on_screen(el: &HtmlDivElement) -> Option<Seq> {
    let items = list_items(el)?;
    let (top, bottom) = (el.scroll_top(), el.scroll_top() + el.client_height());
    let end = first_below(&items, bottom - 1, |e| e.offset_top());
    (0..end).rev().find_map(|i| {
        let e = item(&items, i)?;
        if e.offset_top() + e.offset_height() <= top {
            return Some(None); // everything further up is off screen too
        }
        seq_of(&e).map(Some)
    })?
}

fn find_item(el: &HtmlDivElement, seq: Seq) -> Option<HtmlElement> {
    let found = el
        .query_selector(&format!("li[data-seq=\"{seq}\"]"))
        .ok()??;
    Some(found.unchecked_into())
}
