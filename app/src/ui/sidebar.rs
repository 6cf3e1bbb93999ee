//! The left pane: who I am and "Log out", starting a direct chat, creating a group, and the
//! conversation list (newest activity first, with unread counts and the last message).

use super::state::{use_chat, Chat};
use crate::api::{CreateGroup, Logout, OpenDirect};
use crate::delivery::unread;
use crate::model::{ConvKind, Conversation};
use leptos::html;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use leptos_router::NavigateOptions;

#[component]
pub fn Sidebar() -> impl IntoView {
    let chat = use_chat();
    let logout = ServerAction::<Logout>::new();
    let me = chat.me.with_value(|u| u.username.clone());
    view! {
        <aside class="sidebar">
            <header class="me">
                <span class="brand">"Tidings"</span>
                <span class="who" title="Logged in as">
                    <span class="avatar" aria-hidden="true">{initial(&me)}</span>
                    {me.clone()}
                </span>
                <ActionForm action=logout>
                    <button type="submit" class="ghost">"Log out"</button>
                </ActionForm>
            </header>
            <StartChat/>
            <NewGroup/>
            <ConversationList/>
        </aside>
    }
}

/// "Start a chat with [username] (Chat)": opens (or creates) the direct chat and shows it.
#[component]
fn StartChat() -> impl IntoView {
    let chat = use_chat();
    let open_direct = ServerAction::<OpenDirect>::new();
    let form = NodeRef::<html::Form>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(conv)) = open_direct.value().get() {
            if let Some(form) = form.get_untracked() {
                form.reset();
            }
            show(chat, conv, &navigate);
        }
    });
    let error = move || {
        open_direct
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| e.message)
    };
    view! {
        <ActionForm action=open_direct node_ref=form>
            <div class="start-chat">
                <label class="field">
                    <span>"Start a chat with"</span>
                    <input
                        name="username"
                        placeholder="username"
                        autocomplete="off"
                        autocapitalize="none"
                        spellcheck="false"
                        required
                    />
                </label>
                <button type="submit" disabled=move || open_direct.pending().get()>"Chat"</button>
            </div>
            <p class="error" role="alert">{error}</p>
        </ActionForm>
    }
}

/// "New group" reveals the group form: a name and comma-separated members.
#[component]
fn NewGroup() -> impl IntoView {
    let chat = use_chat();
    let create = ServerAction::<CreateGroup>::new();
    let shown = RwSignal::new(false);
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(conv)) = create.value().get() {
            shown.set(false);
            show(chat, conv, &navigate);
        }
    });
    let error = move || {
        create
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| e.message)
    };
    view! {
        <div class="new-group">
            <button
                type="button"
                class="ghost wide"
                aria-expanded=move || shown.get().to_string()
                on:click=move |_| shown.update(|s| *s = !*s)
            >
                "New group"
            </button>
            <Show when=move || shown.get()>
                <ActionForm action=create>
                    <div class="group-form">
                        <label class="field">
                            <span>"Group name"</span>
                            <input name="title" autocomplete="off" required/>
                        </label>
                        <label class="field">
                            <span>"Members"</span>
                            <input
                                name="members"
                                placeholder="alice, bob"
                                autocomplete="off"
                                autocapitalize="none"
                            />
                        </label>
                        <button
                            type="submit"
                            class="primary"
                            disabled=move || create.pending().get()
                        >
                            "Create"
                        </button>
                        <p class="error" role="alert">{error}</p>
                    </div>
                </ActionForm>
            </Show>
        </div>
    }
}

/// Puts a conversation the server just gave us into the list and opens it.
fn show(chat: Chat, conv: Conversation, navigate: &impl Fn(&str, NavigateOptions)) {
    let path = format!("/c/{}", conv.id);
    chat.upsert_conversation(conv);
    navigate(&path, NavigateOptions::default());
}

#[component]
fn ConversationList() -> impl IntoView {
    let chat = use_chat();
    let rows = move || {
        chat.conversations
            .with(|inbox| inbox.iter().cloned().collect::<Vec<_>>())
    };
    view! {
        <nav class="conversations" aria-label="Conversations">
            <Show when=move || chat.conversations.with(|c| c.is_empty())>
                <p class="empty">"No conversations yet. Start a chat or create a group."</p>
            </Show>
            <ul>
                <For each=rows key=|c| (c.id, c.last_seq, c.last_read_seq, c.title.clone()) let:conv>
                    <ConversationRow conv/>
                </For>
            </ul>
        </nav>
    }
}

#[component]
fn ConversationRow(conv: Conversation) -> impl IntoView {
    let chat = use_chat();
    let id = conv.id;
    let href = format!("/c/{id}");
    let is_open = move || chat.open.get() == Some(id);
    let me = chat.me_id();
    // A direct chat's dot shows whether the other person is online.
    let peer = (conv.kind == ConvKind::Direct)
        .then(|| conv.members.iter().find(|m| m.id != me).map(|m| m.id))
        .flatten();
    let peer_online = move || peer.is_some_and(|p| chat.online.with(|o| o.contains(&p)));
    let preview = match &conv.last_message {
        Some(m) if m.sender.id == me => format!("You: {}", m.body),
        Some(m) if conv.kind == ConvKind::Group => format!("{}: {}", m.sender.username, m.body),
        Some(m) => m.body.clone(),
        None => "No messages yet".to_owned(),
    };
    let preview: String = preview.chars().take(80).collect();
    let time = conv
        .last_message
        .as_ref()
        .map(|m| super::conversation::clock(&m.at))
        .unwrap_or_default();
    let unread = unread(&conv);
    let desc_id = format!("conv-desc-{id}");
    view! {
        <li>
            // Named by the title alone, so the list reads (and is found) by conversation name;
            // the preview and unread count are its description.
            <a
                href=href
                class="conv"
                class:active=is_open
                aria-current=move || is_open().then_some("page")
                aria-label=conv.title.clone()
                aria-describedby=desc_id
            >
                <span class="avatar" class:group=conv.kind == ConvKind::Group aria-hidden="true">
                    {initial(&conv.title)}
                    <span class="dot" class:online=peer_online></span>
                </span>
                <span class="conv-main">
                    <span class="conv-top">
                        <span class="conv-title">{conv.title.clone()}</span>
                        <span class="conv-time">{time}</span>
                    </span>
                    <span class="conv-bottom" id=desc_id.clone()>
                        <span class="conv-preview">{preview}</span>
                        {(unread > 0)
                            .then(|| {
                                view! {
                                    <span class="badge" title="unread">
                                        {unread.to_string()}
                                        <span class="sr-only">" unread"</span>
                                    </span>
                                }
                            })}
                    </span>
                </span>
            </a>
        </li>
    }
}

/// The first letter of a name, for the round avatar.
pub fn initial(name: &str) -> String {
    name.chars()
        .next()
        .map(|c| c.to_uppercase().to_string())
        .unwrap_or_default()
}
