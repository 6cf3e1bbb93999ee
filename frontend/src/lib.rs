//! The WASM entry points.
//!
//! - `hydrate` (the main path, called by the script cargo-leptos puts in the server's HTML): turns
//!   the server-rendered page into the live app.
//! - with the `csr` feature (the `trunk serve` path, for quick UI work): renders the whole app in
//!   the browser on start, against a running server that Trunk proxies `/api` and `/ws` to.

#![recursion_limit = "256"]

use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}

/// Client-side-only start (Trunk). Not compiled into the cargo-leptos bundle, where it would
/// render the app a second time next to the hydrated one.
#[cfg(feature = "csr")]
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
