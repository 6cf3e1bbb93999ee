//! The outbox in localStorage, so that a message typed before a reload (or a crash of the tab) is
//! still sent afterwards, with the same `client_id`. One key per user, so that someone who logs in
//! on the same browser never sends another person's messages.

use crate::delivery::OutboxEntry;
use crate::model::UserId;
use leptos::prelude::window;

fn key(user: UserId) -> String {
    format!("tidings:outbox:{user}")
}

fn local_storage() -> Option<web_sys::Storage> {
    window().local_storage().ok().flatten()
}

/// Saves the outbox (or clears the key when it is empty). Storage can be full or disabled; then
/// the outbox only lives as long as the page, which is the best we can do.
pub fn save_outbox(user: UserId, entries: &[OutboxEntry]) {
    let Some(storage) = local_storage() else {
        return;
    };
    let result = if entries.is_empty() {
        storage.remove_item(&key(user))
    } else {
        match serde_json::to_string(entries) {
            Ok(text) => storage.set_item(&key(user), &text),
            Err(_) => Ok(()),
        }
    };
    if result.is_err() {
        leptos::logging::warn!("could not save the outbox to localStorage");
    }
}

/// The outbox saved by an earlier page; empty if there is none or it is unreadable.
pub fn load_outbox(user: UserId) -> Vec<OutboxEntry> {
    local_storage()
        .and_then(|s| s.get_item(&key(user)).ok().flatten())
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}
