//! The webhooks section of a group's info panel: list the group's incoming webhooks, make one
//! (named after the bot its posts come from; its secret URL is shown once, to copy), revoke one.
//! Any member may do each; the server checks membership. Loaded when opened, not with the page.

use crate::api::{create_webhook, revoke_webhook, webhooks};
use crate::model::{ConvId, Webhook};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// The absolute URL of a path on this server (the browser's origin in front of it).
fn absolute(path: &str) -> String {
    #[cfg(feature = "hydrate")]
    {
        let origin = leptos::prelude::window()
            .location()
            .origin()
            .unwrap_or_default();
        return format!("{origin}{path}");
    }
    #[allow(unreachable_code)]
    path.to_owned()
}

#[component]
pub fn Webhooks(#[prop(into)] conv: Signal<ConvId>) -> impl IntoView {
    // Only a different group counts as a change: the group's data changes too when a webhook's
    // bot joins it, and that must not close the section that just showed the new URL.
    let conv = Memo::new(move |_| conv.get());
    let open = RwSignal::new(false);
    let list = RwSignal::new(Vec::<Webhook>::new());
    // The URL of the webhook just made: shown until the panel's next change.
    let fresh = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let name = RwSignal::new(String::new());
    let load = move || {
        let conv = conv.get_untracked();
        spawn_local(async move {
            match webhooks(conv).await {
                Ok(found) => {
                    list.try_set(found);
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    // Another group: start closed, with nothing of the last one's. Only a group different from
    // the one seen before counts. The memo is read here, not just tracked: a memo is computed
    // lazily, and its first computation counts as a change to whatever tracks it — that was
    // the first click on "Webhooks" (`load` reads it), so the section closed itself at once.
    Effect::new(move |seen: Option<ConvId>| {
        let now = conv.get();
        if seen.is_some_and(|seen| seen != now) {
            open.set(false);
            fresh.set(None);
            error.set(None);
            list.set(Vec::new());
        }
        now
    });
    let toggle = move |_| {
        let opening = !open.get_untracked();
        open.set(opening);
        if opening {
            error.set(None);
            load();
        }
    };
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (conv, bot) = (conv.get_untracked(), name.get_untracked());
        spawn_local(async move {
            match create_webhook(conv, bot).await {
                Ok(made) => {
                    fresh.try_set(Some(absolute(&made.path)));
                    name.try_set(String::new());
                    error.try_set(None);
                    load();
                }
                Err(e) => {
                    fresh.try_set(None);
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    let revoke = move |id: i64| {
        let conv = conv.get_untracked();
        spawn_local(async move {
            match revoke_webhook(conv, id).await {
                Ok(()) => {
                    fresh.try_set(None);
                    error.try_set(None);
                    load();
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    view! {
        <h3 class="dialog-section">
            <button
                type="button"
                class="ghost small"
                aria-expanded=move || open.get().to_string()
                on:click=toggle
            >
                "Webhooks"
            </button>
        </h3>
        <Show when=move || open.get()>
            <p class="subtitle">
                "A secret URL that posts " <code>"{\"text\": \"…\"}"</code>
                " into this group as a bot."
            </p>
            <form class="inline-form" on:submit=create>
                <input
                    aria-label="Webhook bot name"
                    placeholder="bot name, e.g. ci-bot"
                    autocapitalize="none"
                    prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev))
                    required
                />
                <button type="submit" class="small">"Create webhook"</button>
            </form>
            {move || {
                fresh
                    .get()
                    .map(|url| {
                        view! {
                            <p class="webhook-url" role="status">
                                "Copy this URL now; it is not shown again: "
                                <code data-testid="webhook-url">{url}</code>
                            </p>
                        }
                    })
            }}
            <ul class="member-list" aria-label="Webhooks of this group">
                <For each=move || list.get() key=|w| w.id let:w>
                    {
                        let id = w.id;
                        let bot = w.bot.username.clone();
                        view! {
                            <li>
                                <span class="member-name">
                                    {bot.clone()} " " <span class="bot-badge">"bot"</span>
                                    " · by " {w.created_by.username.clone()}
                                </span>
                                <button
                                    type="button"
                                    class="ghost small"
                                    aria-label=format!("Revoke webhook {bot}")
                                    on:click=move |_| revoke(id)
                                >
                                    "Revoke"
                                </button>
                            </li>
                        }
                    }
                </For>
            </ul>
            <p class="error" role="alert">{move || error.get()}</p>
        </Show>
    }
}
