//! The Contacts section of the left pane: a fold-out under "New chat" whose summary carries a
//! badge with the number of requests waiting for my answer. Inside: a field to send a request
//! (with suggestions), the requests to answer (Accept / Decline), my contacts with their presence
//! — one click opens the direct chat — and "Remove" with a confirmation, then the requests I sent
//! (Withdraw). The list itself lives in [`super::state::Chat::contacts`], kept live by `contact`
//! frames; each button's reply is applied too, so the list never waits for the socket.

use super::sidebar::Avatar;
use super::state::{use_chat, Chat};
use super::user_search::UserSearchInput;
use crate::api::{self, ApiError, RequestContact};
use crate::contacts::ContactChange;
use crate::model::{UserId, UserRef};
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;
use leptos_router::NavigateOptions;

/// Which answer a row's button gives.
#[derive(Clone, Copy)]
enum Answer {
    Accept,
    Decline,
    Remove,
}

/// Sends `answer` about `user` and applies the reply, or shows why it was refused.
fn send_answer(chat: Chat, error: RwSignal<Option<String>>, answer: Answer, user: &UserRef) {
    let name = user.username.clone();
    spawn_local(async move {
        let reply: Result<ContactChange, ApiError> = match answer {
            Answer::Accept => api::accept_contact(name).await,
            Answer::Decline => api::decline_contact(name).await,
            Answer::Remove => api::remove_contact(name).await,
        };
        match reply {
            Ok(change) => {
                error.try_set(None);
                chat.contacts.try_update(|list| list.apply(change));
            }
            Err(e) => {
                error.try_set(Some(e.message));
            }
        }
    });
}

#[component]
pub fn ContactsSection() -> impl IntoView {
    let chat = use_chat();
    let request = ServerAction::<RequestContact>::new();
    let form = NodeRef::<html::Form>::new();
    let error = RwSignal::new(None::<String>);
    let request_error = move || {
        request
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| e.message)
    };
    Effect::new(move |_| {
        if let Some(Ok(change)) = request.value().get() {
            chat.contacts.update(|list| list.apply(change));
            if let Some(form) = form.get_untracked() {
                form.reset();
            }
        }
    });
    let waiting = Memo::new(move |_| chat.contacts.with(|c| c.incoming.len()));
    let any_waiting = move || waiting.get() != 0;
    let incoming = move || chat.contacts.with(|c| c.incoming.clone());
    let contacts = move || chat.contacts.with(|c| c.contacts.clone());
    let outgoing = move || chat.contacts.with(|c| c.outgoing.clone());
    view! {
        <section class="contacts" aria-label="Contacts">
            <details>
                <summary>
                    <span class="contacts-title">"Contacts"</span>
                    {move || {
                        let n = waiting.get();
                        (n > 0)
                            .then(|| {
                                view! {
                                    <span class="badge" title="contact requests waiting for you">
                                        {n.to_string()}
                                        <span class="sr-only">
                                            {if n == 1 { " request" } else { " requests" }}
                                        </span>
                                    </span>
                                }
                            })
                    }}
                </summary>
                <div class="contacts-body">
                    <ActionForm action=request node_ref=form>
                        <div class="start-chat">
                            <UserSearchInput
                                label="Add a contact"
                                name="username"
                                id="contact-add"
                                described_by="contact-request-error"
                                invalid=Signal::derive(move || request_error().is_some())
                            />
                            <button type="submit" disabled=move || request.pending().get()>
                                "Send request"
                            </button>
                        </div>
                        <p id="contact-request-error" class="error" role="alert">
                            {request_error}
                        </p>
                    </ActionForm>
                    <p class="error" role="alert">{move || error.get()}</p>
                    <Show when=any_waiting>
                        <h3 class="contacts-heading">"Requests"</h3>
                        <ul class="contact-list" aria-label="Contact requests">
                            <For each=incoming key=|u| u.id let:user>
                                <RequestRow user error/>
                            </For>
                        </ul>
                    </Show>
                    <ul class="contact-list" aria-label="My contacts">
                        <For each=contacts key=|u| u.id let:user>
                            <ContactRow user error/>
                        </For>
                    </ul>
                    <Show when=move || chat.contacts.with(|c| c.contacts.is_empty())>
                        <p class="empty">"No contacts yet: add someone by their username."</p>
                    </Show>
                    <Show when=move || chat.contacts.with(|c| !c.outgoing.is_empty())>
                        <h3 class="contacts-heading">"Waiting for an answer"</h3>
                        <ul class="contact-list" aria-label="Requests I sent">
                            <For each=outgoing key=|u| u.id let:user>
                                <SentRow user error/>
                            </For>
                        </ul>
                    </Show>
                </div>
            </details>
        </section>
    }
    .into_any()
}

/// Someone asked me: Accept or Decline.
#[component]
fn RequestRow(user: UserRef, error: RwSignal<Option<String>>) -> impl IntoView {
    let name = user.username.clone();
    view! {
        <PersonRow user=user.clone()>
            <AnswerButton
                user=user.clone()
                error
                answer=Answer::Accept
                text="Accept"
                label=format!("Accept {name}")
                class="primary small"
            />
            <AnswerButton
                user=user.clone()
                error
                answer=Answer::Decline
                text="Decline"
                label=format!("Decline {name}")
                class="ghost small"
            />
        </PersonRow>
    }
    .into_any()
}

/// A person in one of the lists: avatar and name, then the row's buttons.
#[component]
fn PersonRow(user: UserRef, children: Children) -> impl IntoView {
    view! {
        <li class="contact">
            <Avatar name=user.username.clone() user=user.id small=true/>
            <span class="contact-name">{user.username}</span>
            {children()}
        </li>
    }
    .into_any()
}

/// A button that gives `answer` about `user`; `label` names it with the person for screen
/// readers ("Accept bob"), since every row has the same buttons.
#[component]
fn AnswerButton(
    user: UserRef,
    error: RwSignal<Option<String>>,
    answer: Answer,
    text: &'static str,
    label: String,
    class: &'static str,
) -> impl IntoView {
    let chat = use_chat();
    view! {
        <button
            type="button"
            class=class
            aria-label=label
            on:click=move |_| send_answer(chat, error, answer, &user)
        >
            {text}
        </button>
    }
    .into_any()
}

/// A contact: whether they are online; a click opens our direct chat; Remove asks first.
#[component]
fn ContactRow(user: UserRef, error: RwSignal<Option<String>>) -> impl IntoView {
    let chat = use_chat();
    let id: UserId = user.id;
    let online = Signal::derive(move || chat.online.with(|o| o.contains(&id)));
    let confirming = RwSignal::new(false);
    let navigate = use_navigate();
    let name = user.username.clone();
    let open_chat = move |_| {
        let name = name.clone();
        let navigate = navigate.clone();
        spawn_local(async move {
            match api::open_direct(name).await {
                Ok(conv) => {
                    let path = format!("/c/{}", conv.id);
                    chat.upsert_conversation(conv);
                    navigate(&path, NavigateOptions::default());
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    let removed = user.clone();
    let who = user.username.clone();
    let label = move || {
        let status = if online.get() { "online" } else { "offline" };
        format!("{who}, {status}")
    };
    view! {
        <li class="contact">
            <button
                type="button"
                class="ghost contact-open"
                title=format!("Chat with {}", user.username)
                // The name, and what the green dot says.
                aria-label=label
                on:click=open_chat
            >
                <Avatar name=user.username.clone() user=id small=true online/>
                <span class="contact-name">{user.username.clone()}</span>
            </button>
            <Show
                when=move || confirming.get()
                fallback=move || {
                    view! {
                        <button
                            type="button"
                            class="ghost small"
                            aria-label=format!("Remove {}", removed.username)
                            on:click=move |_| confirming.set(true)
                        >
                            "Remove"
                        </button>
                    }
                }
            >
                {
                    let gone = user.clone();
                    view! {
                        <div class="confirm" role="group" aria-label="Confirm removal">
                            <p>{format!("Remove {} from your contacts?", gone.username)}</p>
                            <button
                                type="button"
                                class="danger small"
                                on:click=move |_| send_answer(chat, error, Answer::Remove, &gone)
                            >
                                "Remove"
                            </button>
                            <button type="button" class="ghost small" on:click=move |_| confirming.set(false)>
                                "Cancel"
                            </button>
                        </div>
                    }
                }
            </Show>
        </li>
    }
    .into_any()
}

/// A request I sent that waits: Withdraw.
#[component]
fn SentRow(user: UserRef, error: RwSignal<Option<String>>) -> impl IntoView {
    let label = format!("Withdraw the request to {}", user.username);
    view! {
        <PersonRow user=user.clone()>
            <AnswerButton user error answer=Answer::Remove text="Withdraw" label class="ghost small"/>
        </PersonRow>
    }
    .into_any()
}
