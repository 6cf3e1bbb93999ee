//! What the chat needs to know about, and show on, the page around it: whether the person can be
//! reading it (the tab visible and the window focused: [`Chat::attentive`], which decides what
//! counts as read), the passing minutes (for relative times), and the favicon, which wears a dot
//! while anything is unread.

use crate::ui::state::Chat;
use gloo_timers::callback::Interval;
use leptos::prelude::{
    document, window_event_listener_untyped, GetUntracked, Set, Update, WindowListenerHandle,
};
use std::cell::RefCell;

thread_local! {
    /// The window listeners and the minute ticker while the chat page is shown.
    static WATCHING: RefCell<Option<(Vec<WindowListenerHandle>, Interval)>> = const { RefCell::new(None) };
}

/// Keeps `chat.attentive` up to date (stopping any earlier watch).
pub fn watch(chat: Chat) {
    unwatch();
    let update = move || {
        let now = attentive();
        if chat.attentive.try_get_untracked() != Some(now) {
            chat.attentive.try_set(now);
        }
    };
    update();
    // `visibilitychange` is fired at the document and bubbles to the window; `focus` and `blur`
    // on the window are the window's own.
    let handles = ["visibilitychange", "focus", "blur", "pageshow"]
        .into_iter()
        .map(|name| window_event_listener_untyped(name, move |_| update()))
        .collect();
    let ticker = Interval::new(60_000, move || {
        chat.minute.try_update(|m| *m += 1);
    });
    WATCHING.with(|w| *w.borrow_mut() = Some((handles, ticker)));
}

/// Stops watching (the chat page is going away).
pub fn unwatch() {
    if let Some((handles, _ticker)) = WATCHING.with(|w| w.borrow_mut().take()) {
        for handle in handles {
            handle.remove();
        }
    }
}

/// The tab is shown and has the focus.
fn attentive() -> bool {
    let doc = document();
    !doc.hidden() && doc.has_focus().unwrap_or(true)
}

/// Points the favicon at the plain or the "unread" picture.
pub fn show_unread_badge(unread: bool) {
    let href = if unread {
        "/favicon-unread.svg"
    } else {
        "/favicon.svg"
    };
    if let Ok(Some(icon)) = document().query_selector("link[rel~='icon']") {
        if icon.get_attribute("href").as_deref() != Some(href) {
            let _ = icon.set_attribute("href", href);
        }
    }
}
