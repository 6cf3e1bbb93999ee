//! The group info panel, opened from the conversation header: rename the group, add a member,
//! see who is in it (and online), remove someone, leave. A side panel on a wide screen, the whole
//! screen on a phone; Escape, "Close" or a click outside close it.
//!
//! Removing someone and leaving ask for confirmation first. The server decides who may do what
//! (only the owner removes others; anyone may remove themselves) and announces every change to
//! all members as a `conversation` frame, which updates everyone's list. The conversation data
//! does not say who the owner is, so Remove is offered to everyone and a refusal is shown.

use super::conversation::members as member_count;
use super::sidebar::{same, Avatar};
use super::state::use_chat;
use crate::api::{AddMember, LeaveGroup, RemoveMember, RenameGroup};
use crate::model::{ConvId, Conversation};
use leptos::html;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use leptos_router::NavigateOptions;

/// What the person is being asked to confirm.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Confirm {
    Remove(String),
    Leave,
}

#[component]
pub fn GroupSettings(conv: Memo<Option<Conversation>>) -> impl IntoView {
    let chat = use_chat();
    let rename = ServerAction::<RenameGroup>::new();
    let add = ServerAction::<AddMember>::new();
    let remove = ServerAction::<RemoveMember>::new();
    let leave = ServerAction::<LeaveGroup>::new();
    let new_title = RwSignal::new(String::new());
    let new_member = RwSignal::new(String::new());
    let confirm = RwSignal::new(None::<Confirm>);
    // The outcome of the latest change only: a success clears an earlier refusal.
    let error = RwSignal::new(None::<String>);
    let panel = NodeRef::<html::Dialog>::new();
    let id = move || conv.with(|c| c.as_ref().map(|c| c.id)).unwrap_or(ConvId(0));
    let close = move || {
        confirm.set(None);
        if let Some(p) = panel.get_untracked() {
            p.close();
        }
    };

    // Successful changes come back as the updated conversation; show it at once (the server's
    // `conversation` frame will say the same to every member).
    for action in [rename.value(), add.value(), remove.value()] {
        Effect::new(move |_| match action.get() {
            Some(Ok(c)) => {
                error.set(None);
                chat.upsert_conversation(c);
            }
            Some(Err(e)) => error.set(Some(e.message)),
            None => {}
        });
    }
    let navigate = use_navigate();
    Effect::new(move |_| match leave.value().get() {
        Some(Ok(())) => {
            close();
            navigate("/", NavigateOptions::default());
        }
        Some(Err(e)) => error.set(Some(e.message)),
        None => {}
    });
    let me = chat.me_id();
    let members = move || conv.with(|c| c.as_ref().map(|c| c.members.clone()).unwrap_or_default());
    let heading = move || format!("Members ({})", members().len());
    let title = move || conv.with(|c| c.as_ref().map(|c| c.title.clone()).unwrap_or_default());

    view! {
        <button
            type="button"
            class="ghost small"
            aria-haspopup="dialog"
            on:click=move |_| {
                error.set(None);
                if let Some(p) = panel.get_untracked() {
                    let _ = p.show_modal();
                }
            }
        >
            "Group info"
        </button>
        <dialog
            class="panel"
            node_ref=panel
            aria-labelledby="group-info-title"
            on:close=move |_| confirm.set(None)
            on:click=move |ev| {
                let on_backdrop = ev
                    .target()
                    .zip(panel.get_untracked())
                    .is_some_and(|(target, p)| same(&target, &p));
                if on_backdrop {
                    close();
                }
            }
        >
            <div class="dialog-body">
                <header class="dialog-head">
                    <h2 id="group-info-title">{title}</h2>
                    <button type="button" class="ghost small" on:click=move |_| close()>"Close"</button>
                </header>
                <p class="subtitle">"Group · " {move || member_count(members().len())}</p>
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
                <h3 class="dialog-section">{heading}</h3>
                <ul class="member-list" aria-label="Members of this group">
                    <For each=members key=|m| m.id let:m>
                        {
                            let name = m.username.clone();
                            let online = Signal::derive(move || chat.online.with(|o| o.contains(&m.id)));
                            let asking = {
                                let name = name.clone();
                                move || confirm.get() == Some(Confirm::Remove(name.clone()))
                            };
                            view! {
                                <li>
                                    <Avatar name=name.clone() user=m.id small=true online/>
                                    <span class="member-name">
                                        {name.clone()}
                                        {(m.id == me).then_some(" (you)")}
                                        {conv.with(|c| c.as_ref().is_some_and(|c| c.is_bot(m.id)))
                                            .then(|| view! { " " <span class="bot-badge">"bot"</span> })}
                                    </span>
                                    {(m.id != me)
                                        .then(|| {
                                            let ask = name.clone();
                                            let confirmed = name.clone();
                                            view! {
                                                <Show
                                                    when=asking.clone()
                                                    fallback=move || {
                                                        let ask = ask.clone();
                                                        view! {
                                                            <button
                                                                type="button"
                                                                class="ghost small"
                                                                aria-label=format!("Remove {ask}")
                                                                on:click=move |_| confirm.set(Some(Confirm::Remove(ask.clone())))
                                                            >
                                                                "Remove"
                                                            </button>
                                                        }
                                                    }
                                                >
                                                    {
                                                        let confirmed = confirmed.clone();
                                                        let question = format!("Remove {confirmed}?");
                                                        view! {
                                                            <span class="confirm" role="group" aria-label=question>
                                                                <button
                                                                    type="button"
                                                                    class="danger small"
                                                                    on:click=move |_| {
                                                                        confirm.set(None);
                                                                        error.set(None);
                                                                        remove.dispatch(RemoveMember { conv: id(), username: confirmed.clone() });
                                                                    }
                                                                >
                                                                    "Yes, remove"
                                                                </button>
                                                                <button type="button" class="ghost small" on:click=move |_| confirm.set(None)>
                                                                    "Cancel"
                                                                </button>
                                                            </span>
                                                        }
                                                    }
                                                </Show>
                                            }
                                        })}
                                </li>
                            }
                        }
                    </For>
                </ul>
                <super::webhooks::Webhooks conv=Signal::derive(id)/>
                <Show
                    when=move || confirm.get() == Some(Confirm::Leave)
                    fallback=move || view! {
                        <button type="button" class="danger small" on:click=move |_| confirm.set(Some(Confirm::Leave))>
                            "Leave group"
                        </button>
                    }
                >
                    <div class="confirm" role="group" aria-label="Leave this group?">
                        <p>"Leave this group? You will stop getting its messages."</p>
                        <button
                            type="button"
                            class="danger small"
                            on:click=move |_| {
                                confirm.set(None);
                                error.set(None);
                                chat.leaving(id());
                                leave.dispatch(LeaveGroup { conv: id() });
                            }
                        >
                            "Yes, leave"
                        </button>
                        <button type="button" class="ghost small" on:click=move |_| confirm.set(None)>
                            "Cancel"
                        </button>
                    </div>
                </Show>
                <p class="error" role="alert">{move || error.get()}</p>
            </div>
        </dialog>
    }
}
