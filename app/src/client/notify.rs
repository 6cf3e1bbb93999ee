//! Desktop notifications through the browser's Notification API, and the two preferences around
//! them (on or off; muted conversations), kept in localStorage per user.
//!
//! The browser is asked for permission only when the person turns notifications on with the
//! visible control, never on load. The API is reached through `js_sys::Reflect` so the app needs
//! no extra `web-sys` bindings; a browser without it simply reports "unsupported".

use crate::model::{ConvId, UserId};
use js_sys::{Array, Function, Object, Promise, Reflect};
use leptos::prelude::window;
use std::collections::HashSet;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

fn api() -> Option<Function> {
    Reflect::get(&js_sys::global(), &"Notification".into())
        .ok()?
        .dyn_into()
        .ok()
}

/// "granted", "denied", "default" (not asked yet) or "unsupported".
pub fn permission() -> String {
    api()
        .and_then(|n| Reflect::get(&n, &"permission".into()).ok()?.as_string())
        .unwrap_or_else(|| "unsupported".into())
}

/// Shows the browser's permission prompt; `done` gets the answer.
pub fn ask(done: impl FnOnce(String) + 'static) {
    let Some(n) = api() else {
        return done(permission());
    };
    let request = Reflect::get(&n, &"requestPermission".into())
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok());
    let promise = request
        .and_then(|f| f.call0(&n).ok())
        .and_then(|p| p.dyn_into::<Promise>().ok());
    match promise {
        Some(promise) => {
            let answered = Closure::once(move |_: JsValue| done(permission()));
            let _ = promise.then(&answered);
            // Runs once, when the person answers; it must live until then.
            answered.forget();
        }
        None => done(permission()),
    }
}

/// Shows a notification; a click on it brings the window forward and runs `on_click`. One per
/// conversation at a time (`tag`): a newer message replaces the older notification.
pub fn show(conv: ConvId, title: &str, body: &str, on_click: impl FnOnce() + 'static) {
    let Some(n) = api() else {
        return;
    };
    let options = Object::new();
    let _ = Reflect::set(&options, &"body".into(), &body.into());
    let _ = Reflect::set(&options, &"tag".into(), &format!("tidings-{conv}").into());
    let _ = Reflect::set(&options, &"icon".into(), &"/favicon.svg".into());
    let args = Array::of2(&title.into(), &options);
    let Ok(note) = Reflect::construct(&n, &args) else {
        return;
    };
    let target = note.clone();
    let clicked = Closure::once_into_js(move |_: JsValue| {
        let _ = window().focus();
        on_click();
        if let Ok(close) = Reflect::get(&target, &"close".into()) {
            if let Ok(close) = close.dyn_into::<Function>() {
                let _ = close.call0(&target);
            }
        }
    });
    let _ = Reflect::set(&note, &"onclick".into(), &clicked);
}

fn storage() -> Option<web_sys::Storage> {
    window().local_storage().ok().flatten()
}

fn key(what: &str, user: UserId) -> String {
    format!("tidings:{what}:{user}")
}

/// Whether this person turned notifications on in this browser.
pub fn load_enabled(user: UserId) -> bool {
    storage()
        .and_then(|s| s.get_item(&key("notify", user)).ok().flatten())
        .is_some_and(|v| v == "on")
}

pub fn save_enabled(user: UserId, on: bool) {
    if let Some(s) = storage() {
        let _ = if on {
            s.set_item(&key("notify", user), "on")
        } else {
            s.remove_item(&key("notify", user))
        };
    }
}

/// The conversations this person muted in this browser.
pub fn load_muted(user: UserId) -> HashSet<ConvId> {
    storage()
        .and_then(|s| s.get_item(&key("muted", user)).ok().flatten())
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

pub fn save_muted(user: UserId, muted: &HashSet<ConvId>) {
    if let (Some(s), Ok(text)) = (storage(), serde_json::to_string(muted)) {
        let _ = s.set_item(&key("muted", user), &text);
    }
}
