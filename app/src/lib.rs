//! Tidings' shared crate: the typed contract between browser and server (`model`, `protocol`,
//! `api`, `search`), the client's delivery rules as plain data (`delivery`), and the Leptos user interface
//! (`ui`, plus the browser-only `client`).
//!
//! Compiled twice: with `ssr` into the server binary and with `hydrate` into the WASM bundle.
//! Never both at once. Server-only code sits behind `ssr`, browser-only code behind `hydrate`.

pub mod api;
#[cfg(feature = "hydrate")]
pub mod client;
pub mod contacts;
pub mod delivery;
pub mod events;
pub mod mentions;
pub mod model;
pub mod protocol;
pub mod search;
pub mod ui;

pub use ui::{shell, App};
