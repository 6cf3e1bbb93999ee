//! "Search messages": a search box in the sidebar (beside "New chat"; the scope and the results
//! take the lines under both) (all my conversations, or only the open one),
//! the results under it — conversation, sender, time and the text with the matched words in
//! `<mark>` — and opening a result: the conversation opens and its log scrolls to the message
//! and marks it (`Chat::jump`, the same jump as a reply's quote), loading older pages until the
//! message is there.
//!
//! The search runs on Enter (or the button), never per keystroke: each one is a query on the
//! server's full-text index. Matched words arrive as text pieces (`SnippetPart`) and are
//! rendered as text nodes inside elements, never as HTML.

use super::format;
use super::state::use_chat;
use crate::api;
use crate::model::ConvId;
use crate::search::{SearchHit, SnippetPart, MAX_QUERY_CHARS};
use leptos::ev::{KeyboardEvent, SubmitEvent};
use leptos::prelude::*;
use leptos::task::spawn_local;

#[component]
pub fn MessageSearch() -> impl IntoView {
    let chat = use_chat();
    let query = RwSignal::new(String::new());
    let only_open = RwSignal::new(false);
    let hits = RwSignal::new(Vec::<SearchHit>::new());
    let has_more = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let searching = RwSignal::new(false);
    // Whether results (or "no results") are shown.
    let shown = RwSignal::new(false);
    // What the shown results answer, for "More results".
    let asked = StoredValue::new(None::<(String, Option<ConvId>)>);
    // Answers can come back out of order: only the newest question's answer is shown.
    let generation = StoredValue::new(0u64);

    let run = move |more: bool| {
        let question = if more {
            asked.get_value()
        } else {
            let scope = if only_open.get_untracked() {
                chat.open.get_untracked()
            } else {
                None
            };
            Some((query.get_untracked(), scope))
        };
        let Some((text, scope)) = question else {
            return;
        };
        let before = if more {
            hits.with_untracked(|h| h.last().map(|h| h.id))
        } else {
            None
        };
        asked.set_value(Some((text.clone(), scope)));
        generation.update_value(|n| *n += 1);
        let mine = generation.get_value();
        searching.set(true);
        spawn_local(async move {
            let page = api::search(text, scope, before, None).await;
            if generation.try_get_value() != Some(mine) {
                return;
            }
            searching.try_set(false);
            shown.try_set(true);
            match page {
                Ok(page) => {
                    error.try_set(None);
                    has_more.try_set(page.has_more);
                    if more {
                        hits.try_update(|h| h.extend(page.hits));
                    } else {
                        hits.try_set(page.hits);
                    }
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                    has_more.try_set(false);
                    if !more {
                        hits.try_set(Vec::new());
                    }
                }
            }
        });
    };
    let clear = move || {
        generation.update_value(|n| *n += 1);
        shown.set(false);
        searching.set(false);
        hits.set(Vec::new());
        error.set(None);
        query.set(String::new());
    };
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        run(false);
    };
    let on_keydown = move |ev: KeyboardEvent| {
        if ev.key() == "Escape" && shown.get_untracked() {
            ev.prevent_default();
            clear();
        }
    };

    // Opening goes through `go_to`, the route change a notification's click makes.
    let open = move |hit: &SearchHit| {
        chat.jump.set(Some((hit.conv, hit.seq)));
        if chat.open.get_untracked() != Some(hit.conv) {
            chat.go_to.set(Some(hit.conv));
        }
    };
    let title_of = move |conv: ConvId| {
        chat.conversations
            .with_untracked(|inbox| inbox.get(conv).map(|c| c.title.clone()).unwrap_or_default())
    };
    let results = move || {
        hits.get()
            .into_iter()
            .map(|hit| {
                let at = format::local(&hit.at);
                let label = format!(
                    "{} in {}, {}",
                    hit.sender.username,
                    title_of(hit.conv),
                    format::full_time(at)
                );
                let text = snippet(&hit.snippet);
                let (conv, seq) = (hit.conv.0.to_string(), hit.seq.to_string());
                let place = title_of(hit.conv);
                let who = hit.sender.username.clone();
                let stamp = hit.at.to_rfc3339();
                let when = format::list_time(at, format::now_local());
                view! {
                    <li>
                        <button
                            type="button"
                            class="search-hit"
                            data-conv=conv
                            data-seq=seq
                            title=label
                            on:click=move |_| open(&hit)
                        >
                            <span class="hit-head">
                                <span class="hit-where">{place}</span>
                                <span class="hit-who">{who}</span>
                                <time datetime=stamp>{when}</time>
                            </span>
                            <span class="hit-text">{text}</span>
                        </button>
                    </li>
                }
            })
            .collect::<Vec<_>>()
    };

    view! {
        <form class="message-search" role="search" on:submit=on_submit>
                <label class="sr-only" for="message-search-input">"Search messages"</label>
                <input
                    id="message-search-input"
                    type="search"
                    placeholder="Search messages"
                    autocomplete="off"
                    maxlength=MAX_QUERY_CHARS.to_string()
                    prop:value=move || query.get()
                    on:input=move |ev| query.set(event_target_value(&ev))
                    on:keydown=on_keydown
                />
                <button type="submit" class="ghost small" disabled=move || searching.get()>
                    "Search"
                </button>
        </form>
            <Show when=move || chat.open.get().is_some()>
                <label class="search-scope">
                    <input
                        type="checkbox"
                        prop:checked=move || only_open.get()
                        on:change=move |ev| only_open.set(event_target_checked(&ev))
                    />
                    " Only this conversation"
                </label>
            </Show>
            <Show when=move || shown.get()>
                <div class="search-results" aria-live="polite">
                    <div class="search-results-head">
                        <span>
                            {move || match (error.get(), hits.with(Vec::len)) {
                                (Some(_), _) => String::new(),
                                (None, 0) => "No messages found".to_owned(),
                                (None, 1) => "1 message".to_owned(),
                                (None, n) if has_more.get() => format!("{n}+ messages"),
                                (None, n) => format!("{n} messages"),
                            }}
                        </span>
                        <button type="button" class="ghost small" on:click=move |_| clear()>
                            "Close"
                        </button>
                    </div>
                    <p class="error" role="alert">{move || error.get()}</p>
                    <ul class="search-hits">{results}</ul>
                    <Show when=move || has_more.get()>
                        <button
                            type="button"
                            class="ghost small wide"
                            disabled=move || searching.get()
                            on:click=move |_| run(true)
                        >
                            "More results"
                        </button>
                    </Show>
                </div>
            </Show>
    }
}

/// The result's text: matched words in `<mark>`, everything as text nodes.
fn snippet(parts: &[SnippetPart]) -> Vec<AnyView> {
    parts
        .iter()
        .map(|p| {
            let text = p.text.clone();
            if p.hit {
                view! { <mark>{text}</mark> }.into_any()
            } else {
                text.into_any()
            }
        })
        .collect()
}
