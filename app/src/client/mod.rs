//! Browser-only code (compiled with the `hydrate` feature): the reconnecting WebSocket that feeds
//! the chat state, the localStorage that keeps the outbox across page reloads, the page around
//! the chat (is the person looking; the favicon), desktop notifications, and file uploads with
//! progress.
//!
//! The delivery rules themselves (cursors, gaps, outbox) live in [`crate::delivery`], fed by the
//! reactive state in [`crate::ui::state`]; this module is only the plumbing to the browser.

pub mod notify;
pub mod page;
pub mod socket;
pub mod storage;
pub mod upload;
