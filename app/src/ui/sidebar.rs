//! The left pane: who I am and "Log out", message search (`search`), the "New chat" dialog (a direct chat by username, with
//! suggestions as you type, or a new group), the Contacts section (`contacts`), and the
//! conversation list (newest activity first, with unread counts, a distinct "@ N" badge for
//! unread messages that mention me, the last message and how long ago it came; arrow keys move through it).

use super::contacts::ContactsSection;
use super::format;
use super::search::MessageSearch;
use super::state::{use_chat, Chat};
use super::user_search::UserSearchInput;
use crate::api::{CreateGroup, Logout, OpenDirect};
use crate::delivery::unread;
use crate::model::{ConvKind, Conversation, UserId};
use leptos::ev::KeyboardEvent;
use leptos::html;
use leptos::prelude::*;
use leptos::wasm_bindgen::{JsCast, JsValue};
use leptos::web_sys::HtmlElement;
use leptos_router::hooks::use_navigate;
use leptos_router::NavigateOptions;

#[component]
pub fn Sidebar() -> impl IntoView {
    let chat = use_chat();
    let logout = ServerAction::<Logout>::new();
    let (my_name, my_id) = chat.me.with_value(|u| (u.username.clone(), u.id));
    let dialog = NodeRef::<html::Dialog>::new();
    view! {
        <aside class="sidebar">
            <header class="me">
                <h1 class="brand">"Tidings"</h1>
                <span class="who" title="Logged in as">
                    <Avatar name=my_name.clone() user=my_id small=true/>
                    <span class="who-name">{my_name.clone()}</span>
                </span>
                <ActionForm action=logout>
                    <button type="submit" class="ghost">"Log out"</button>
                </ActionForm>
            </header>
            <div class="sidebar-actions">
                <button
                    type="button"
                    class="primary wide"
                    aria-haspopup="dialog"
                    on:click=move |_| {
                        if let Some(d) = dialog.get_untracked() {
                            let _ = d.show_modal();
                        }
                    }
                >
                    "New chat"
                </button>
                // Beside "New chat", not under it: at 200 % zoom every line above the list counts.
                <MessageSearch/>
            </div>
            <NotificationsToggle/>
            <ContactsSection/>
            <NewChatDialog dialog/>
            <ConversationList/>
        </aside>
    }
}

/// "Notifications: off/on". Turning them on is when the browser asks for permission (never on
/// load); if the browser refuses, the person is told where to change that.
#[component]
fn NotificationsToggle() -> impl IntoView {
    let chat = use_chat();
    let on_click = move |_| {
        let turning_off = chat.notifications.get_untracked();
        if turning_off {
            chat.notifications.set(false);
        }
        #[cfg(feature = "hydrate")]
        if turning_off {
            crate::client::notify::save_enabled(chat.me_id(), false);
        } else {
            use crate::client::notify;
            let me = chat.me_id();
            let answer = move |permission: String| match permission.as_str() {
                "granted" => {
                    chat.notifications.try_set(true);
                    notify::save_enabled(me, true);
                }
                "unsupported" => {
                    chat.notice
                        .try_set(Some("This browser cannot show notifications.".into()));
                }
                _ => {
                    chat.notice.try_set(Some(
                        "Notifications are blocked for this site; allow them in the browser's site settings."
                            .into(),
                    ));
                }
            };
            match notify::permission().as_str() {
                "default" => notify::ask(answer),
                other => answer(other.to_owned()),
            }
        }
    };
    view! {
        <button
            type="button"
            class="ghost small notify-toggle"
            aria-pressed=move || chat.notifications.get().to_string()
            on:click=on_click
        >
            {move || if chat.notifications.get() { "Notifications: on" } else { "Notifications: off" }}
        </button>
    }
}

/// A round avatar: the first letter of the name on the user's own colour.
#[component]
pub fn Avatar(
    name: String,
    user: UserId,
    #[prop(optional)] small: bool,
    /// Whether the person is online, for a direct chat's avatar.
    #[prop(optional, into)]
    online: Option<Signal<bool>>,
) -> impl IntoView {
    view! {
        <span class=format!("avatar {}", format::colour(user)) class:small=small aria-hidden="true">
            {initial(&name)}
            {online.map(|online| view! { <span class="dot" class:online=online></span> })}
        </span>
    }
}

/// "New chat": a modal dialog with the two ways to start one. Escape, "Close" or a click outside
/// close it; starting a chat closes it and opens the chat.
#[component]
fn NewChatDialog(dialog: NodeRef<html::Dialog>) -> impl IntoView {
    let chat = use_chat();
    let open_direct = ServerAction::<OpenDirect>::new();
    let create = ServerAction::<CreateGroup>::new();
    let direct_form = NodeRef::<html::Form>::new();
    let group_form = NodeRef::<html::Form>::new();
    let close = move || {
        if let Some(d) = dialog.get_untracked() {
            d.close();
        }
    };
    let navigate = use_navigate();
    let started = move |conv: Conversation| {
        for form in [direct_form, group_form] {
            if let Some(form) = form.get_untracked() {
                form.reset();
            }
        }
        close();
        show(chat, conv, &navigate);
    };
    let started_direct = started.clone();
    Effect::new(move |_| {
        if let Some(Ok(conv)) = open_direct.value().get() {
            started_direct(conv);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(conv)) = create.value().get() {
            started(conv);
        }
    });
    let direct_error = move || {
        open_direct
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| e.message)
    };
    let group_error = move || {
        create
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| e.message)
    };
    view! {
        <dialog
            class="new-chat"
            node_ref=dialog
            aria-labelledby="new-chat-title"
            // A click on the backdrop lands on the dialog itself; clicks inside land on its content.
            on:click=move |ev| {
                let on_backdrop = ev
                    .target()
                    .zip(dialog.get_untracked())
                    .is_some_and(|(target, d)| same(&target, &d));
                if on_backdrop {
                    close();
                }
            }
        >
            <div class="dialog-body">
                <header class="dialog-head">
                    <h2 id="new-chat-title">"New chat"</h2>
                    <button type="button" class="ghost small" on:click=move |_| close()>"Close"</button>
                </header>
                <ActionForm action=open_direct node_ref=direct_form>
                    <div class="start-chat">
                        <UserSearchInput
                            label="Start a chat with"
                            name="username"
                            id="new-chat-user"
                            described_by="direct-error"
                            invalid=Signal::derive(move || direct_error().is_some())
                            autofocus=true
                        />
                        <button type="submit" class="primary" disabled=move || open_direct.pending().get()>"Chat"</button>
                    </div>
                    <p id="direct-error" class="error" role="alert">{direct_error}</p>
                </ActionForm>
                <h3 class="dialog-section">"Or a new group"</h3>
                <ActionForm action=create node_ref=group_form>
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
                                aria-invalid=move || group_error().is_some().to_string()
                                aria-describedby="group-error"
                            />
                        </label>
                        <button type="submit" class="primary" disabled=move || create.pending().get()>
                            "Create group"
                        </button>
                        <p id="group-error" class="error" role="alert">{group_error}</p>
                    </div>
                </ActionForm>
            </div>
        </dialog>
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
    let list = NodeRef::<html::Ul>::new();
    let rows = move || {
        chat.conversations
            .with(|inbox| inbox.iter().cloned().collect::<Vec<_>>())
    };
    // Up and down arrows move between conversations (Tab still leaves the list).
    let on_keydown = move |ev: KeyboardEvent| {
        let step: i32 = match ev.key().as_str() {
            "ArrowDown" => 1,
            "ArrowUp" => -1,
            _ => return,
        };
        let Some(ul) = list.get_untracked() else {
            return;
        };
        let links: Vec<HtmlElement> = (0..ul.children().length())
            .filter_map(|i| ul.children().item(i)?.first_element_child())
            .map(JsCast::unchecked_into)
            .collect();
        let active = document().active_element();
        let Some(at) = links
            .iter()
            .position(|l| active.as_ref().is_some_and(|a| same(a, l)))
        else {
            return;
        };
        let next = (at as i32 + step).clamp(0, links.len() as i32 - 1) as usize;
        ev.prevent_default();
        let _ = links[next].focus();
    };
    view! {
        <nav class="conversations" aria-label="Conversations">
            <Show when=move || chat.conversations.with(|c| c.is_empty())>
                <p class="empty">"No conversations yet. Start one with “New chat”."</p>
            </Show>
            <ul node_ref=list on:keydown=on_keydown>
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
    // A direct chat shows the other person: their colour, and whether they are online.
    let peer = (conv.kind == ConvKind::Direct)
        .then(|| conv.members.iter().find(|m| m.id != me).map(|m| m.id))
        .flatten();
    let peer_online =
        Signal::derive(move || peer.is_some_and(|p| chat.online.with(|o| o.contains(&p))));
    let preview = match &conv.last_message {
        Some(m) if m.sender.id == me => format!("You: {}", m.preview_text()),
        Some(m) if conv.kind == ConvKind::Group => {
            format!("{}: {}", m.sender.username, m.preview_text())
        }
        Some(m) => m.preview_text(),
        None => "No messages yet".to_owned(),
    };
    let preview: String = preview.chars().take(80).collect();
    let last_at = conv.last_message.as_ref().map(|m| m.at);
    let time = move || {
        chat.minute.track();
        last_at.map(|at| format::list_time(format::local(&at), format::now_local()))
    };
    let full_time = last_at.map(|at| format::full_time(format::local(&at)));
    let unread = unread(&conv);
    let mentions = conv.mentions.max(0);
    let desc_id = format!("conv-desc-{id}");
    let described_by = desc_id.clone();
    let avatar = match (conv.kind, peer) {
        (ConvKind::Direct, Some(peer)) => {
            view! { <Avatar name=conv.title.clone() user=peer online=peer_online/> }.into_any()
        }
        _ => view! {
            <span class="avatar group" aria-hidden="true">{initial(&conv.title)}</span>
        }
        .into_any(),
    };
    view! {
        <li>
            // Named by the title alone, so the list reads (and is found) by conversation name;
            // the preview and unread count are its description.
            <a
                href=href
                class="conv"
                class:active=is_open
                class:unread={unread > 0}
                aria-current=move || is_open().then_some("page")
                aria-label=conv.title.clone()
                aria-describedby=described_by
            >
                {avatar}
                <span class="conv-main">
                    <span class="conv-top">
                        <span class="conv-title">{conv.title.clone()}</span>
                        {move || {
                            chat.muted
                                .with(|m| m.contains(&id))
                                .then(|| view! { <span class="muted-mark">"muted"</span> })
                        }}
                        <span class="conv-time" title=full_time>{time}</span>
                    </span>
                    <span class="conv-bottom" id=desc_id>
                        <span class="conv-preview">{preview}</span>
                        {(mentions > 0)
                            .then(|| {
                                view! {
                                    <span class="badge mention" title="mentions you">
                                        "@" {mentions.to_string()}
                                        <span class="sr-only">" mentioning you"</span>
                                    </span>
                                }
                            })}
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

/// Whether two DOM handles are the same node.
pub fn same(a: &impl AsRef<JsValue>, b: &impl AsRef<JsValue>) -> bool {
    a.as_ref() == b.as_ref()
}

/// The first letter of a name, for the round avatar.
pub fn initial(name: &str) -> String {
    name.chars()
        .next()
        .map(|c| c.to_uppercase().to_string())
        .unwrap_or_default()
}
