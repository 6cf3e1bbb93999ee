//! The right pane: the open conversation's header, its message log (scroll up for older history)
//! and the composer. Message bodies are always rendered as text, never as HTML.

use super::group::GroupSettings;
use super::state::{use_chat, OutboxEntry};
use crate::model::{ConvId, ConvKind, Message};
use chrono::{DateTime, Utc};
use leptos::ev::KeyboardEvent;
use leptos::html;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

/// Shown at `/` when no conversation is open.
#[component]
pub fn NoConversation() -> impl IntoView {
    let chat = use_chat();
    Effect::new(move |_| chat.close_conversation());
    view! {
        <div class="placeholder">
            <img class="placeholder-art" src="/favicon.svg" alt=""/>
            <h2>"Pick a conversation"</h2>
            <p>"Or start a chat with someone by their username, or create a group."</p>
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
                format!("{} members: {}", names.len(), names.join(", "))
            }
        })
    };

    view! {
        <header class="pane-head">
            <div class="pane-title">
                <h2>{title}</h2>
                <p class="subtitle">{subtitle}</p>
            </div>
            <Show when=move || conv.with(|c| c.as_ref().is_some_and(|c| c.kind == ConvKind::Group))>
                <GroupSettings conv/>
            </Show>
        </header>
        <MessageLog id direct=Signal::derive(move || conv.with(|c| c.as_ref().is_some_and(|c| c.kind == ConvKind::Direct)))/>
        <Composer id/>
    }
}

#[component]
fn MessageLog(
    id: Memo<Option<ConvId>>,
    /// In a direct chat the sender of each message is obvious, so names are not shown.
    direct: Signal<bool>,
) -> impl IntoView {
    let chat = use_chat();
    let log = NodeRef::<html::Div>::new();
    // Whether the reader is at the newest messages (then new ones scroll into view).
    let at_bottom = StoredValue::new(true);
    // Scroll height and position before older messages were prepended, to keep the reader's place.
    let anchor = StoredValue::new(None::<(i32, i32)>);

    Effect::new(move |_| {
        id.track();
        at_bottom.set_value(true);
    });
    Effect::new(move |_| {
        chat.messages.track();
        chat.outbox.track();
        request_animation_frame(move || {
            // By the next frame the pane may be gone (e.g. the user left the group).
            let Some(el) = log.try_get_untracked().flatten() else {
                return;
            };
            match anchor.try_update_value(|a| a.take()).flatten() {
                Some((height, top)) => el.set_scroll_top(el.scroll_height() - height + top),
                None if at_bottom.try_get_value() == Some(true) => {
                    el.set_scroll_top(el.scroll_height())
                }
                None => {}
            }
        });
    });

    let load_older = move || {
        if let Some(el) = log.get_untracked() {
            anchor.set_value(Some((el.scroll_height(), el.scroll_top())));
        }
        chat.load_older();
    };
    let on_scroll = move |_| {
        let Some(el) = log.get_untracked() else {
            return;
        };
        let (top, height, visible) = (el.scroll_top(), el.scroll_height(), el.client_height());
        at_bottom.set_value(height - top - visible < 48);
        if top < 80 && chat.has_more.get_untracked() && !chat.loading_history.get_untracked() {
            load_older();
        }
    };

    let messages = move || {
        chat.messages
            .with(|m| m.values().cloned().collect::<Vec<_>>())
    };
    let pending = move || {
        let Some(id) = id.get() else {
            return Vec::new();
        };
        chat.outbox
            .with(|o| o.pending_in(id).cloned().collect::<Vec<_>>())
    };
    let me = chat.me_id();
    // "Seen": in a direct chat, the other person has read my latest message.
    let seen = move || {
        let conv = id.get()?;
        let (seq, mine) = chat
            .messages
            .with(|m| m.values().last().map(|m| (m.seq, m.sender.id == me)))?;
        let read = chat.seen.with(|s| {
            s.get(&conv)
                .map(|by| by.iter().filter(|(u, _)| **u != me).map(|(_, s)| *s).max())
        });
        (direct.get() && mine && read.flatten().is_some_and(|r| r >= seq)).then_some(())
    };

    view! {
        <div
            class="log"
            class:direct=direct
            role="log"
            aria-label="Messages"
            node_ref=log
            on:scroll=on_scroll
        >
            <div class="log-top">
                <Show when=move || chat.has_more.get()>
                    <button
                        type="button"
                        class="ghost small"
                        disabled=move || chat.loading_history.get()
                        on:click=move |_| load_older()
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
                <For each=messages key=|m| m.seq let:m>
                    <MessageItem mine=m.sender.id == me m/>
                </For>
                <For each=pending key=|e| (e.client_id.clone(), e.failed.clone()) let:e>
                    <PendingItem e/>
                </For>
            </ol>
            <Show when=move || seen().is_some()>
                <p class="seen">"Seen"</p>
            </Show>
        </div>
    }
}

#[component]
fn MessageItem(m: Message, mine: bool) -> impl IntoView {
    view! {
        <li class="msg" class:mine=mine data-seq=m.seq>
            <div class="bubble">
                <span class="sender">{m.sender.username}</span>
                // Text, not HTML: Leptos escapes it, so "<script>" shows as typed.
                <p class="body">{m.body}</p>
                <span class="meta">
                    <time datetime=m.at.to_rfc3339()>{clock(&m.at)}</time>
                </span>
            </div>
        </li>
    }
}

/// A message in the outbox: "Sending…" until acknowledged, or the server's refusal with Retry and
/// Discard.
#[component]
fn PendingItem(e: OutboxEntry) -> impl IntoView {
    let chat = use_chat();
    let failed = e.failed.is_some();
    let state = if failed { "failed" } else { "pending" };
    let (retry_id, discard_id) = (e.client_id.clone(), e.client_id.clone());
    view! {
        <li class="msg mine" class:pending=!failed class:failed=failed data-state=state>
            <div class="bubble">
                <p class="body">{e.body}</p>
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

#[component]
fn Composer(id: Memo<Option<ConvId>>) -> impl IntoView {
    let chat = use_chat();
    let text = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
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
    let on_keydown = move |ev: KeyboardEvent| {
        // Enter sends; Shift+Enter makes a new line; Enter that finishes an IME composition does not.
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            send();
        }
    };
    view! {
        <form
            class="composer"
            on:submit=move |ev| {
                ev.prevent_default();
                send();
            }
        >
            <textarea
                aria-label="Message"
                placeholder="Write a message…"
                rows="1"
                prop:value=move || text.get()
                on:input=move |ev| {
                    text.set(event_target_value(&ev));
                    if let Some(conv) = id.get_untracked() {
                        chat.user_is_typing(conv);
                    }
                }
                on:keydown=on_keydown
            ></textarea>
            <button type="submit" class="primary">"Send"</button>
        </form>
        <p class="error composer-error" role="alert">{move || error.get()}</p>
    }
}

/// "14:05" in the reader's time zone (the browser's), or UTC while rendering on the server.
pub fn clock(at: &DateTime<Utc>) -> String {
    #[cfg(feature = "hydrate")]
    {
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(
            at.timestamp_millis() as f64
        ));
        format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        at.format("%H:%M").to_string()
    }
}
