//! The one integration-test binary (one link step, which matters on two cores). Every test
//! starts the real server on a free port with a fresh database and talks to it over real
//! sockets: HTTP for the API, WebSocket for chat.

mod accounts;
mod admin;
mod attachments;
mod bots;
mod changes;
mod chat;
mod cluster;
mod contacts;
mod crash;
mod delivery;
mod events;
mod groups;
mod hardening;
mod helpers;
mod history;
mod mentions;
mod reliable;
mod roles;
mod search;
mod store;
