//! The login page: one form with one "Username" and one "Password" field, and two buttons, "Log in"
//! and "Register".
//!
//! Before the WASM has loaded it is a plain HTML form: "Log in" posts to `/api/login`, "Register"
//! (through `formaction`) to `/api/register`. On success the server redirects to `/`; on failure it
//! redirects back here with the error encoded in the URL (`?__err=...`), which we decode and show.
//! Once hydrated, the same buttons dispatch the server functions without a page load, and the
//! router follows the server's redirect.

use crate::api::{ApiError, Login, Register};
use leptos::ev::SubmitEvent;
use leptos::html;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use server_fn::error::ServerFnUrlError;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Intent {
    Login,
    Register,
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let register = ServerAction::<Register>::new();
    // Which button submitted: set by the buttons' click (Enter in a field "clicks" the first one).
    let intent = RwSignal::new(Intent::Login);
    // Which action ran last, so that the error shown belongs to it.
    let last = RwSignal::new(None::<Intent>);
    let username = NodeRef::<html::Input>::new();
    let password = NodeRef::<html::Input>::new();
    let query = use_query_map();

    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let (Some(user), Some(pass)) = (username.get(), password.get()) else {
            return;
        };
        let (username, password) = (user.value(), pass.value());
        let which = intent.get_untracked();
        last.set(Some(which));
        match which {
            Intent::Login => {
                login.dispatch(Login { username, password });
            }
            Intent::Register => {
                register.dispatch(Register { username, password });
            }
        }
    };

    let error = move || {
        let live = match last.get() {
            Some(Intent::Login) => login.value().get().and_then(Result::err),
            Some(Intent::Register) => register.value().get().and_then(Result::err),
            None => None,
        };
        live.map(|e| e.message).or_else(|| {
            // A plain form post that failed comes back with the error in the URL.
            query
                .with(|q| q.get("__err"))
                .map(|e| ServerFnUrlError::<ApiError>::decode_err(&e).message)
        })
    };
    let busy = move || login.pending().get() || register.pending().get();
    // Both fields are marked when the server refused them (it does not say which one was wrong).
    let invalid = move || error().is_some().to_string();

    view! {
        <main class="auth">
            <form class="auth-card" method="post" action="/api/login" on:submit=on_submit>
                <h1 class="brand">"Tidings"</h1>
                <p class="lede">"Log in, or pick a name and a password to create an account."</p>
                <label class="field">
                    <span>"Username"</span>
                    <input
                        node_ref=username
                        name="username"
                        autocomplete="username"
                        autocapitalize="none"
                        spellcheck="false"
                        required
                        aria-invalid=invalid
                        aria-describedby="login-hint login-error"
                    />
                </label>
                <label class="field">
                    <span>"Password"</span>
                    <input
                        node_ref=password
                        type="password"
                        name="password"
                        autocomplete="current-password"
                        required
                        aria-invalid=invalid
                        aria-describedby="login-hint login-error"
                    />
                </label>
                <p class="hint" id="login-hint">"Usernames: 3–32 of a–z, 0–9, _ . - · passwords: 8 characters or more."</p>
                <p class="error" id="login-error" role="alert">{error}</p>
                <div class="actions">
                    <button
                        type="submit"
                        class="primary"
                        disabled=busy
                        on:click=move |_| intent.set(Intent::Login)
                    >
                        "Log in"
                    </button>
                    <button
                        type="submit"
                        formaction="/api/register"
                        disabled=busy
                        on:click=move |_| intent.set(Intent::Register)
                    >
                        "Register"
                    </button>
                </div>
            </form>
        </main>
    }
}
