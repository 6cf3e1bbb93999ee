//! The group info panel, opened from the conversation header: the group's name, its members
//! with their presence and roles (owner, admins), and what the viewer may do there — rename it,
//! add someone, remove someone, make or unmake admins, leave. A side panel on a wide screen, the
//! whole screen on a phone; Escape, "Close" or a click outside close it, and focus goes back to
//! the "Group info" button (the native `<dialog>` does that).
//!
//! Only the controls the viewer's role allows are shown (the server enforces the same rules,
//! `Role::manages`, `Role::removes`, `Role::sets_roles`): a member sees no Rename or Remove, only
//! the owner sees "Make admin" / "Dismiss as admin". Removing someone and leaving ask first.
//! Every change comes back to all members as a `conversation` frame and a log event, so the
//! panel follows role changes live. Owns no state beyond the form fields and the question asked.

use super::conversation::members as member_count;
use super::sidebar::{same, Avatar};
use super::state::use_chat;
use crate::api::{AddMember, LeaveGroup, RemoveMember, RenameGroup, SetRole};
use crate::model::{ConvId, Conversation, Role, UserRef};
use leptos::html;
use leptos::prelude::*;
use leptos::wasm_bindgen::JsCast;
use leptos::web_sys::HtmlElement;
use leptos_router::hooks::use_navigate;
use leptos_router::NavigateOptions;

/// Which control an error is about, so that its field is marked invalid and linked to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Rename,
    Add,
    Other,
}

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
    let set_role = ServerAction::<SetRole>::new();
    let new_title = RwSignal::new(String::new());
    let new_member = RwSignal::new(String::new());
    let confirm = RwSignal::new(None::<Confirm>);
    // The outcome of the latest change only: a success clears an earlier refusal.
    let error = RwSignal::new(None::<(Source, String)>);
    let failed =
        move |source: Source| error.with(|e| e.as_ref().is_some_and(|(s, _)| *s == source));
    let panel = NodeRef::<html::Dialog>::new();
    // Where the focus goes once a change has redrawn the row that had it (a selector inside
    // the panel): the new role button, or the panel's Close button after a removal.
    let focus_after = StoredValue::new(None::<String>);
    let id = move || conv.with(|c| c.as_ref().map(|c| c.id)).unwrap_or(ConvId(0));
    let close = move || {
        confirm.set(None);
        if let Some(p) = panel.get_untracked() {
            p.close();
        }
    };

    // Successful changes come back as the updated conversation; show it at once (the server's
    // `conversation` frame will say the same to every member).
    for (action, source) in [
        (rename.value(), Source::Rename),
        (add.value(), Source::Add),
        (remove.value(), Source::Other),
        (set_role.value(), Source::Other),
    ] {
        Effect::new(move |_| match action.get() {
            Some(Ok(c)) => {
                error.set(None);
                chat.upsert_conversation(c);
                if let Some(selector) = focus_after.get_value() {
                    focus_after.set_value(None);
                    refocus(panel, selector);
                }
            }
            Some(Err(e)) => error.set(Some((source, e.message))),
            None => {}
        });
    }
    let navigate = use_navigate();
    Effect::new(move |_| match leave.value().get() {
        Some(Ok(())) => {
            close();
            navigate("/", NavigateOptions::default());
        }
        Some(Err(e)) => error.set(Some((Source::Other, e.message))),
        None => {}
    });
    let me = chat.me_id();
    let my_role = move || conv.with(|c| c.as_ref().map_or(Role::Member, |c| c.role_of(me)));
    // Owner first, then admins, then everyone else, by name; each row keyed by its role and
    // mine, so a role change redraws the rows whose controls it changes.
    let members = move || {
        conv.with(|c| {
            let Some(c) = c.as_ref() else {
                return Vec::new();
            };
            let mut rows: Vec<(UserRef, Role)> = c
                .members
                .iter()
                .map(|m| (m.clone(), c.role_of(m.id)))
                .collect();
            rows.sort_by(|(a, ra), (b, rb)| ra.cmp(rb).then_with(|| a.username.cmp(&b.username)));
            rows
        })
    };
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
                    <button type="button" class="ghost small" data-close="" on:click=move |_| close()>"Close"</button>
                </header>
                <p class="subtitle">"Group · " {move || member_count(members().len())}</p>
                <Show when=move || my_role().manages()>
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
                            aria-invalid=move || failed(Source::Rename).to_string()
                            aria-describedby=move || failed(Source::Rename).then_some("group-panel-error")
                            placeholder="New name"
                            prop:value=move || new_title.get()
                            on:input=move |ev| new_title.set(event_target_value(&ev))
                            required
                        />
                        <button type="submit" class="small">"Rename"</button>
                    </form>
                </Show>
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
                        aria-invalid=move || failed(Source::Add).to_string()
                        aria-describedby=move || failed(Source::Add).then_some("group-panel-error")
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
                    <For each=members key=move |(m, role)| (m.id, *role, my_role()) let:row>
                        {
                            let (m, role) = row;
                            let mine = untrack(my_role);
                            let name = m.username.clone();
                            let online = Signal::derive(move || chat.online.with(|o| o.contains(&m.id)));
                            let asking = {
                                let name = name.clone();
                                move || confirm.get() == Some(Confirm::Remove(name.clone()))
                            };
                            let badge = match role {
                                Role::Owner => Some("owner"),
                                Role::Admin => Some("admin"),
                                Role::Member => None,
                            };
                            let others = m.id != me;
                            // What I may do to this member: the same rules the server applies.
                            let may_remove = others && mine.removes(role);
                            let may_set_role = others && mine.sets_roles() && role != Role::Owner;
                            let role_button = may_set_role.then(|| {
                                let (label, text, to) = match role {
                                    Role::Admin => (format!("Dismiss {name} as admin"), "Dismiss as admin", "member"),
                                    _ => (format!("Make {name} an admin"), "Make admin", "admin"),
                                };
                                let who = name.clone();
                                view! {
                                    <button
                                        type="button"
                                        class="ghost small"
                                        aria-label=label
                                        data-role-for=name.clone()
                                        on:click=move |_| {
                                            error.set(None);
                                            focus_after.set_value(Some(format!("[data-role-for=\"{who}\"]")));
                                            set_role.dispatch(SetRole {
                                                conv: id(),
                                                username: who.clone(),
                                                role: to.to_owned(),
                                            });
                                        }
                                    >
                                        {text}
                                    </button>
                                }
                            });
                            view! {
                                <li>
                                    <Avatar name=name.clone() user=m.id small=true online/>
                                    <span class="member-name">
                                        {name.clone()}
                                        {(m.id == me).then_some(" (you)")}
                                        <span class="sr-only">{move || if online.get() { ", online" } else { "" }}</span>
                                        {conv.with(|c| c.as_ref().is_some_and(|c| c.is_bot(m.id)))
                                            .then(|| view! { " " <span class="bot-badge">"bot"</span> })}
                                    </span>
                                    {badge.map(|b| view! { <span class=format!("role-badge {b}")>{b}</span> })}
                                    <span class="member-actions">
                                    {role_button}
                                    {may_remove
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
                                                                        focus_after.set_value(Some("[data-close]".to_owned()));
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
                                    </span>
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
                <p id="group-panel-error" class="error" role="alert">
                    {move || error.with(|e| e.as_ref().map(|(_, message)| message.clone()))}
                </p>
            </div>
        </dialog>
    }
}

/// Puts the focus on the element matching `selector` inside the panel, once the change that
/// removed the focused control has been drawn (the next frame).
fn refocus(panel: NodeRef<html::Dialog>, selector: String) {
    request_animation_frame(move || {
        let Some(p) = panel.try_get_untracked().flatten() else {
            return;
        };
        if let Ok(Some(el)) = p.query_selector(&selector) {
            let _ = el.unchecked_into::<HtmlElement>().focus();
        }
    });
}
