//! The chat page: checks the session, then lays out the two panes and owns the live connection.
//!
//! Server-side rendering only decides "logged in or not" (a visitor without a session is
//! redirected to `/login`); everything live — the list, messages, the outbox — is loaded in the
//! browser after hydration, so the server's HTML and the browser's first render always agree.
//!
//! On a wide screen both panes show side by side; at 700 px and below (phones, or a desktop at
//! 200 % zoom) they are two screens: the list, or the open conversation with a back control. The
//! window title and the favicon say how much is unread: "(3) Tidings".

use super::sidebar::Sidebar;
use super::state::{provide_chat, Chat, Link};
use crate::api;
use crate::model::UserRef;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{Outlet, Redirect};
use leptos_router::hooks::use_navigate;
use leptos_router::NavigateOptions;

#[component]
pub fn ChatPage() -> impl IntoView {
    let me = Resource::new(|| (), |_| api::me());
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(Some(user)) => view! { <ChatLayout me=user/> }.into_any(),
                    Ok(None) => view! { <Redirect path="/login"/> }.into_any(),
                    Err(e) => {
                        view! {
                            <main class="auth">
                                <div class="auth-card">
                                    <p class="error" role="alert">{e.message}</p>
                                    <a href="/">"Try again"</a>
                                </div>
                            </main>
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// The two panes: conversations on the left, the open conversation (the nested route) on the right.
#[component]
fn ChatLayout(me: UserRef) -> impl IntoView {
    let chat = Chat::new(me);
    provide_chat(chat);

    // In the browser only (effects do not run on the server): restore the outbox saved before a
    // reload, watch whether the person is looking, load the list, then connect. The socket's first
    // `sync` carries the list's cursors.
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        {
            use crate::client::{notify, page, socket, storage};
            let me = chat.me_id();
            chat.restore_outbox(storage::load_outbox(me));
            chat.notifications
                .set(notify::load_enabled(me) && notify::permission() == "granted");
            chat.muted.set(notify::load_muted(me));
            page::watch(chat);
            leptos::task::spawn_local(async move {
                chat.refresh_conversations().await;
                if chat.link.try_get_untracked().is_some() {
                    socket::start(chat);
                }
            });
        }
    });
    on_cleanup(|| {
        #[cfg(feature = "hydrate")]
        {
            crate::client::socket::stop();
            crate::client::page::unwatch();
        }
    });

    let unread = Memo::new(move |_| chat.conversations.with(|i| i.total_unread()));
    // `try_get`: on the server the document's <title> is written after the body, and a page
    // whose Suspense rendered this layout more than once reads a title of a disposed copy; it
    // must not panic (that ended the response, an empty page at random under load).
    let title = move || match unread.try_get().unwrap_or(0) {
        0 => "Tidings".to_owned(),
        n => format!("({n}) Tidings"),
    };
    Effect::new(move |_| {
        let _any = unread.get() > 0;
        #[cfg(feature = "hydrate")]
        crate::client::page::show_unread_badge(_any);
    });

    let navigate = use_navigate();
    Effect::new(move |_| {
        if chat.removed_while_open.get().is_some() {
            navigate("/", NavigateOptions::default());
        }
    });
    // A notification was clicked.
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(conv) = chat.go_to.get() {
            chat.go_to.set(None);
            navigate(&format!("/c/{conv}"), NavigateOptions::default());
        }
    });

    let main = NodeRef::<leptos::html::Main>::new();
    // After a few failures the wait grows (up to 30 s): say how long, and offer not to wait.
    let waiting = move || {
        chat.retry_in
            .get()
            .filter(|s| *s >= 2 && chat.link.get() == Link::Reconnecting)
    };
    let status = move || match (chat.link.get(), waiting()) {
        (Link::Online, _) => String::new(),
        (Link::Connecting, _) => "Connecting…".into(),
        (Link::Reconnecting, Some(s)) => format!("Reconnecting in {s} s"),
        (Link::Reconnecting, None) => "Reconnecting…".into(),
    };

    view! {
        <Title text=title/>
        <div class="chat" class:has-open=move || chat.open.get().is_some()>
            // Focused by hand: the router would treat the click as a navigation.
            <a
                class="skip-link"
                href="#main"
                on:click=move |ev| {
                    ev.prevent_default();
                    if let Some(main) = main.get_untracked() {
                        let _ = main.focus();
                    }
                }
            >
                "Skip to the conversation"
            </a>
            <Sidebar/>
            <main class="pane" id="main" tabindex="-1" node_ref=main>
                <Outlet/>
            </main>
            // Outside both panes, so that it shows on either screen of a phone.
            <Show when=move || chat.notice.with(Option::is_some)>
                <div class="notice" role="alert">
                    <span>{move || chat.notice.get()}</span>
                    <button type="button" class="ghost small" on:click=move |_| chat.notice.set(None)>
                        "Dismiss"
                    </button>
                </div>
            </Show>
            <div class="link-status" class:visible=move || chat.link.get() != Link::Online>
                <span role="status">{status}</span>
                <Show when=move || waiting().is_some()>
                    <button
                        type="button"
                        class="small"
                        on:click=move |_| {
                            #[cfg(feature = "hydrate")]
                            crate::client::socket::retry_now();
                        }
                    >
                        "Retry now"
                    </button>
                </Show>
            </div>
        </div>
    }
}
