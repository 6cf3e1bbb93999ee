//! Group settings, behind a "Group settings" disclosure in the pane header: rename the group, add a
//! member, remove one (owners; anyone may remove themselves) and leave. Every change is announced
//! by the server to all members as a `conversation` frame, which updates everyone's list.

use super::state::use_chat;
use crate::api::{AddMember, LeaveGroup, RemoveMember, RenameGroup};
use crate::model::{ConvId, Conversation};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use leptos_router::NavigateOptions;

#[component]
pub fn GroupSettings(conv: Memo<Option<Conversation>>) -> impl IntoView {
    let chat = use_chat();
    let rename = ServerAction::<RenameGroup>::new();
    let add = ServerAction::<AddMember>::new();
    let remove = ServerAction::<RemoveMember>::new();
    let leave = ServerAction::<LeaveGroup>::new();
    let new_title = RwSignal::new(String::new());
    let new_member = RwSignal::new(String::new());
    let id = move || conv.with(|c| c.as_ref().map(|c| c.id)).unwrap_or(ConvId(0));

    // Successful changes come back as the updated conversation; show it at once (the server's
    // `conversation` frame will say the same to every member).
    for action in [rename.value(), add.value(), remove.value()] {
        Effect::new(move |_| {
            if let Some(Ok(c)) = action.get() {
                chat.upsert_conversation(c);
            }
        });
    }
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(())) = leave.value().get() {
            navigate("/", NavigateOptions::default());
        }
    });
    let error = move || {
        [
            rename.value().get().and_then(Result::err),
            add.value().get().and_then(Result::err),
            remove.value().get().and_then(Result::err),
            leave.value().get().and_then(Result::err),
        ]
        .into_iter()
        .flatten()
        .next()
        .map(|e| e.message)
    };
    let me = chat.me_id();
    let members = move || conv.with(|c| c.as_ref().map(|c| c.members.clone()).unwrap_or_default());

    view! {
        <details class="group-settings">
            <summary>"Group settings"</summary>
            <div class="group-settings-body">
                <form
                    class="inline-form"
                    on:submit=move |ev| {
                        ev.prevent_default();
                        rename.dispatch(RenameGroup { conv: id(), title: new_title.get_untracked() });
                        new_title.set(String::new());
                    }
                >
                    <input
                        aria-label="New group name"
                        placeholder="New name"
                        prop:value=move || new_title.get()
                        on:input=move |ev| new_title.set(event_target_value(&ev))
                        required
                    />
                    <button type="submit" class="small">"Rename"</button>
                </form>
                <form
                    class="inline-form"
                    on:submit=move |ev| {
                        ev.prevent_default();
                        add.dispatch(AddMember { conv: id(), username: new_member.get_untracked() });
                        new_member.set(String::new());
                    }
                >
                    <input
                        aria-label="Add member"
                        placeholder="username"
                        autocapitalize="none"
                        prop:value=move || new_member.get()
                        on:input=move |ev| new_member.set(event_target_value(&ev))
                        required
                    />
                    <button type="submit" class="small">"Add"</button>
                </form>
                <ul class="member-list" aria-label="Members of this group">
                    <For each=members key=|m| m.id let:m>
                        <li>
                            <span>{m.username.clone()}</span>
                            {(m.id != me)
                                .then(|| {
                                    let name = m.username.clone();
                                    let label = format!("Remove {}", m.username);
                                    view! {
                                        <button
                                            type="button"
                                            class="ghost small"
                                            aria-label=label
                                            on:click=move |_| {
                                                remove.dispatch(RemoveMember { conv: id(), username: name.clone() });
                                            }
                                        >
                                            "Remove"
                                        </button>
                                    }
                                })}
                        </li>
                    </For>
                </ul>
                <button
                    type="button"
                    class="danger small"
                    on:click=move |_| {
                        leave.dispatch(LeaveGroup { conv: id() });
                    }
                >
                    "Leave group"
                </button>
                <p class="error" role="alert">{error}</p>
            </div>
        </details>
    }
}
