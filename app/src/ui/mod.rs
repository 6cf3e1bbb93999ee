//! The Leptos user interface: the HTML shell, the routes, and the pages.
//!
//! - `/login`: [`auth::LoginPage`] — one form that logs in or registers; works before the WASM loads.
//! - `/` and `/c/:id`: [`chat::ChatPage`] — the two-pane chat (conversation list + message pane).
//!   It stays mounted while the user switches conversations, so the WebSocket lives on.
//!
//! Live state is in [`state`] (the delivery rules it applies in [`crate::delivery`]); how messages
//! and times are put into rows and words is in [`format`]. The components only render them and
//! turn clicks into calls on the state.

mod auth;
mod chat;
mod contacts;
mod conversation;
pub mod format;
mod group;
mod search;
mod sidebar;
pub mod state;
mod user_search;
mod webhooks;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{ParentRoute, Route, Router, Routes},
    path, SsrMode,
};

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/tidings.css"/>
        <Link rel="icon" type_="image/svg+xml" href="/favicon.svg"/>
        <Title text="Tidings"/>
        <Router>
            <Routes fallback=|| view! { <p class="not-found">"Page not found."</p> }>
                <Route path=path!("/login") view=auth::LoginPage/>
                // Async: the server waits for the session check, so a visitor without a session
                // gets a real 302 to /login instead of a page that redirects after loading.
                <ParentRoute path=path!("") view=chat::ChatPage ssr=SsrMode::Async>
                    <Route path=path!("") view=conversation::NoConversation/>
                    <Route path=path!("/c/:id") view=conversation::ConversationPane/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}
