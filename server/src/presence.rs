//! Presence: a user is online while any node has a connection of theirs.
//!
//! Each node knows its own connections (the hub). In a cluster it also keeps a table of which
//! users the other nodes have, fed by the bus: a node announces a user the moment their first
//! connection arrives there or their last one leaves, and repeats its full list every third of
//! the TTL (`--presence-ttl-secs`, 30 s). An entry not refreshed within the TTL is dropped, so a
//! killed node's users go offline within that time. Transitions are published on the user's conversation channels, so
//! everyone who shares a conversation with them hears it, on whichever node they are.
//!
//! Owns only that table; it reads the store to find a departed user's conversations.

use crate::bus::Bus;
use crate::hub::{Hub, Skip};
use crate::store::Store;
use app::model::{ConvId, UserId};
use app::protocol::ServerFrame;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What nodes tell each other on the presence channel.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PresenceNote {
    pub node: String,
    /// Users who are connected to `node` now (`full`: this is its whole list).
    pub online: Vec<UserId>,
    /// Users whose last connection to `node` just closed.
    pub offline: Vec<UserId>,
    pub full: bool,
}

pub struct Presence {
    /// How long another node's word about a user holds without being repeated.
    ttl: Duration,
    /// Other nodes' users: user → node → when that node last vouched for them.
    remote: Mutex<HashMap<UserId, HashMap<String, Instant>>>,
}

impl Presence {
    pub fn new(ttl: Duration) -> Presence {
        Presence {
            ttl,
            remote: Mutex::default(),
        }
    }

    /// How often a node repeats its list: three times per TTL, so one lost note costs nothing.
    pub fn heartbeat(&self) -> Duration {
        self.ttl / 3
    }

    /// Online anywhere: here, or on a node that vouched for them within the TTL.
    pub fn is_online(&self, hub: &Hub, user: UserId) -> bool {
        hub.is_online(user) || self.online_elsewhere(user)
    }

    fn online_elsewhere(&self, user: UserId) -> bool {
        let remote = self.remote.lock().unwrap_or_else(|p| p.into_inner());
        remote
            .get(&user)
            .is_some_and(|nodes| nodes.values().any(|at| at.elapsed() < self.ttl))
    }

    /// `user`'s first connection here has arrived.
    pub fn arrived(&self, hub: &Hub, bus: &Bus, user: UserId) {
        bus.presence(PresenceNote::single(bus, user, true));
        if !self.online_elsewhere(user) {
            announce(bus, user, &hub.conversations_of(user), true);
        }
    }

    /// `user`'s last connection here has closed; they were in `convs`.
    pub fn departed(&self, bus: &Bus, user: UserId, convs: &[ConvId]) {
        bus.presence(PresenceNote::single(bus, user, false));
        if !self.online_elsewhere(user) {
            announce(bus, user, convs, false);
        }
    }

    /// Applies another node's note.
    pub fn heard(&self, note: PresenceNote) {
        let mut remote = self.remote.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if note.full {
            // Users the node no longer lists are gone from it.
            for nodes in remote.values_mut() {
                nodes.remove(&note.node);
            }
        }
        for user in note.online {
            remote
                .entry(user)
                .or_default()
                .insert(note.node.clone(), now);
        }
        for user in note.offline {
            if let Some(nodes) = remote.get_mut(&user) {
                nodes.remove(&note.node);
            }
        }
        remote.retain(|_, nodes| !nodes.is_empty());
    }

    /// Drops what other nodes stopped vouching for; returns the users that leaves offline
    /// everywhere (not connected here either).
    pub fn sweep(&self, hub: &Hub) -> Vec<UserId> {
        let mut remote = self.remote.lock().unwrap_or_else(|p| p.into_inner());
        let mut gone = Vec::new();
        remote.retain(|user, nodes| {
            nodes.retain(|_, at| at.elapsed() < self.ttl);
            if nodes.is_empty() {
                if !hub.is_online(*user) {
                    gone.push(*user);
                }
                return false;
            }
            true
        });
        gone
    }
}

impl PresenceNote {
    fn single(bus: &Bus, user: UserId, online: bool) -> PresenceNote {
        PresenceNote {
            node: bus.node_id().to_owned(),
            online: if online { vec![user] } else { vec![] },
            offline: if online { vec![] } else { vec![user] },
            full: false,
        }
    }
}

/// Tells everyone in `convs` (on every node) that `user` came online or went offline.
fn announce(bus: &Bus, user: UserId, convs: &[ConvId], online: bool) {
    let frame = ServerFrame::Presence { user, online };
    for conv in convs {
        bus.publish_skipping(*conv, &frame, Skip::User(user));
    }
}

/// In a cluster: repeats this node's list every heartbeat, and tells local clients about users
/// whose node stopped vouching for them (it died).
pub async fn run_heartbeat(presence: Arc<Presence>, hub: Arc<Hub>, bus: Bus, store: Store) {
    let mut tick = tokio::time::interval(presence.heartbeat() / 2);
    let mut beat = false;
    loop {
        tick.tick().await;
        beat = !beat;
        if beat {
            bus.presence(PresenceNote {
                node: bus.node_id().to_owned(),
                online: hub.local_users(),
                offline: vec![],
                full: true,
            });
        }
        for user in presence.sweep(&hub) {
            // Only this node's clients need telling here: every node sweeps for its own.
            let frame = ServerFrame::Presence {
                user,
                online: false,
            };
            match store.conversation_ids(user).await {
                Ok(convs) => {
                    let payload = frame.to_json();
                    for conv in convs {
                        hub.publish_payload(conv, payload.as_str().into(), Skip::User(user));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not look up a departed user's conversations")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_nodes_vouch_until_they_say_otherwise_or_fall_silent() {
        let hub = Hub::new();
        let p = Presence::new(Duration::from_secs(30));
        let note = |node: &str, online: Vec<i64>, offline: Vec<i64>, full| PresenceNote {
            node: node.into(),
            online: online.into_iter().map(UserId).collect(),
            offline: offline.into_iter().map(UserId).collect(),
            full,
        };
        p.heard(note("a", vec![1, 2], vec![], true));
        p.heard(note("b", vec![2], vec![], false));
        assert!(p.is_online(&hub, UserId(1)) && p.is_online(&hub, UserId(2)));
        p.heard(note("a", vec![2], vec![], true)); // a's full list no longer has 1
        assert!(!p.is_online(&hub, UserId(1)));
        p.heard(note("b", vec![], vec![2], false));
        assert!(p.is_online(&hub, UserId(2)), "still on a");
        assert!(p.sweep(&hub).is_empty(), "nothing expired yet");
    }
}
