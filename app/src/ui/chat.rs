//! The chat page: checks the session, then lays out the two panes and owns the live connection.
//!
//! Server-side rendering only decides "logged in or not" (a visitor without a session is
//! redirected to `/login`); everything live — the list, messages, the outbox — is loaded in the
//! browser after hydration, so the server's HTML and the browser's first render always agree.

use super::sidebar::Sidebar;
use super::state::{provide_chat, Chat, Link};
use crate::api;
use crate::model::UserRef;
use leptos::prelude::*;
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
    // reload, load the list, then connect. The socket's first `sync` carries the list's cursors.
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        {
            use crate::client::{socket, storage};
            chat.restore_outbox(storage::load_outbox(chat.me_id()));
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
        crate::client::socket::stop();
    });

    let navigate = use_navigate();
    Effect::new(move |_| {
        if chat.removed_while_open.get().is_some() {
            navigate("/", NavigateOptions::default());
        }
    });

    let status = move || match chat.link.get() {
        Link::Online => "",
        Link::Connecting => "Connecting…",
        Link::Reconnecting => "Reconnecting…",
    };

    view! {
        <div class="chat">
            <Sidebar/>
            <section class="pane">
                <Show when=move || chat.notice.with(Option::is_some)>
                    <div class="notice" role="alert">
                        <span>{move || chat.notice.get()}</span>
                        <button type="button" class="ghost small" on:click=move |_| chat.notice.set(None)>
                            "Dismiss"
                        </button>
                    </div>
                </Show>
                <Outlet/>
            </section>
            <div
                class="link-status"
                class:visible=move || chat.link.get() != Link::Online
                role="status"
            >
                {status}
            </div>
        </div>
    }
}
