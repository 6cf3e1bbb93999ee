//! A username field that suggests people as you type (a combobox): after two characters it asks
//! `/api/search_users` and lists up to ten matches under the field. Arrow keys move through
//! them, Enter or a click picks one — which fills the field and submits its form — and Escape
//! closes the list (without closing the dialog around it). Typing a full name and submitting
//! works the same without the list.

use super::sidebar::Avatar;
use super::state::use_chat;
use crate::api;
use crate::contacts::Relation;
use crate::model::{UserRef, UsernamePrefix};
use leptos::ev::KeyboardEvent;
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;

#[component]
pub fn UserSearchInput(
    /// The visible label of the field.
    label: &'static str,
    /// The form field's name.
    name: &'static str,
    /// A page-unique id stem for the list and its options.
    id: &'static str,
    /// The id of the element that shows this field's error.
    described_by: &'static str,
    /// The field's last submission was refused.
    #[prop(into)]
    invalid: Signal<bool>,
    #[prop(optional)] autofocus: bool,
) -> impl IntoView {
    let chat = use_chat();
    let input = NodeRef::<html::Input>::new();
    let results = RwSignal::new(Vec::<UserRef>::new());
    let active = RwSignal::new(None::<usize>);
    let focused = RwSignal::new(false);
    // Answers can come back out of order: only the newest question's answer is shown.
    let asked = StoredValue::new(0u64);
    let list_id = format!("{id}-suggestions");
    let option_id = move |i: usize| format!("{id}-option-{i}");
    let expanded = move || focused.get() && results.with(|r| !r.is_empty());

    let close = move || {
        results.set(Vec::new());
        active.set(None);
    };
    let pick = move |user: UserRef| {
        close();
        if let Some(input) = input.get_untracked() {
            input.set_value(&user.username);
            if let Some(form) = input.form() {
                let _ = form.request_submit();
            }
        }
    };
    let on_input = move |ev| {
        let typed = event_target_value(&ev);
        asked.update_value(|n| *n += 1);
        let question = asked.get_value();
        active.set(None);
        if UsernamePrefix::parse(&typed).is_err() {
            results.set(Vec::new());
            return;
        }
        spawn_local(async move {
            let found = api::search_users(typed).await.unwrap_or_default();
            if asked.try_get_value() == Some(question) {
                results.try_set(found);
            }
        });
    };
    let on_keydown = move |ev: KeyboardEvent| {
        let count = results.with_untracked(Vec::len);
        match ev.key().as_str() {
            "ArrowDown" | "ArrowUp" if count > 0 => {
                ev.prevent_default();
                let down = ev.key() == "ArrowDown";
                active.update(|a| {
                    *a = Some(match (*a, down) {
                        (None, true) => 0,
                        (None, false) => count - 1,
                        (Some(i), true) => (i + 1) % count,
                        (Some(i), false) => (i + count - 1) % count,
                    })
                });
            }
            "Enter" => {
                let chosen = active
                    .get_untracked()
                    .and_then(|i| results.with_untracked(|r| r.get(i).cloned()));
                if let Some(user) = chosen {
                    ev.prevent_default();
                    pick(user);
                }
            }
            "Escape" if count > 0 => {
                // Closes the list only; a second Escape closes the dialog.
                ev.prevent_default();
                ev.stop_propagation();
                close();
            }
            _ => {}
        }
    };
    let hint = move |user: &UserRef| {
        chat.contacts
            .with(|c| match c.relation(user.id) {
                Relation::Contact => "contact",
                Relation::Incoming => "asked you",
                Relation::Outgoing => "request sent",
                Relation::None => "",
            })
            .to_owned()
    };
    let rows = move || results.get().into_iter().enumerate().collect::<Vec<_>>();
    view! {
        <div class="user-search">
            <label class="field">
                <span>{label}</span>
                <input
                    node_ref=input
                    name=name
                    placeholder="username"
                    autocomplete="off"
                    autocapitalize="none"
                    spellcheck="false"
                    autofocus=autofocus
                    required
                    role="combobox"
                    aria-autocomplete="list"
                    aria-controls=list_id.clone()
                    aria-expanded=move || expanded().to_string()
                    aria-activedescendant=move || active.get().map(option_id)
                    aria-invalid=move || invalid.get().to_string()
                    aria-describedby=described_by
                    on:input=on_input
                    on:keydown=on_keydown
                    on:focus=move |_| focused.set(true)
                    on:blur=move |_| focused.set(false)
                />
            </label>
            <ul
                id=list_id
                class="suggestions"
                role="listbox"
                // Not named after the field: the field's label must find the field alone.
                aria-label="Suggested people"
                hidden=move || !expanded()
            >
                <For each=rows key=|(i, u)| (*i, u.id) let:((i, user))>
                    {
                        let name = user.username.clone();
                        let hint = hint(&user);
                        let chosen = user.clone();
                        view! {
                            <li
                                id=option_id(i)
                                role="option"
                                class="suggestion"
                                aria-selected=move || (active.get() == Some(i)).to_string()
                                // Keeps the focus in the field, so the list stays open for the click.
                                on:mousedown=|ev| ev.prevent_default()
                                on:click=move |_| pick(chosen.clone())
                            >
                                <Avatar name=name.clone() user=user.id small=true/>
                                <span class="suggestion-name">{name}</span>
                                <span class="suggestion-hint">{hint}</span>
                            </li>
                        }
                    }
                </For>
            </ul>
        </div>
    }
    .into_any()
}
