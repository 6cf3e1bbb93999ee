//! Presence: a user is online while any node has a connection of theirs.
//!
//! Each node knows its own connections (the hub). In a cluster it also keeps a table of which
//! users the other nodes have, fed by the bus: a node announces a user the moment their first
//! connection arrives there or their last one leaves, and repeats its full list every third of
//! the TTL (`--presence-ttl-secs`, 30 s). An entry not refreshed within the TTL is dropped, so a
//! killed node's users go offline within that time. Transitions are published on the user's
//! conversation channels, so everyone who shares a conversation with them hears it, on whichever
//! node they are.
//!
//! A plain table: it sends nothing. Its answers say what to announce ([`Announcement`]), and
//! the caller hands them to the bus, which publishes them; so the bus may know presence (it
//! feeds the table what other nodes say) without presence knowing the bus.

use crate::hub::Hub;
use app::model::{ConvId, UserId};
use app::protocol::ServerFrame;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
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
    /// This node's name, as its notes carry it.
    node: String,
    /// How long another node's word about a user holds without being repeated.
    ttl: Duration,
    /// Other nodes' users: user → node → when that node last vouched for them.
    remote: Mutex<HashMap<UserId, HashMap<String, Instant>>>,
}

impl Presence {
    pub fn new(node: &str, ttl: Duration) -> Presence {
        Presence {
            node: node.to_owned(),
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

    /// `user`'s first connection here has arrived; they are in `convs`. Other nodes are told
    /// always; the people in `convs` only if the user was not online elsewhere already.
    pub fn arrived(&self, user: UserId, convs: Vec<ConvId>) -> Announcement {
        self.changed(user, convs, true)
    }

    /// `user`'s last connection here has closed; they were in `convs`. The people in `convs`
    /// hear it only if the user is not still online elsewhere.
    pub fn departed(&self, user: UserId, convs: Vec<ConvId>) -> Announcement {
        self.changed(user, convs, false)
    }

    fn changed(&self, user: UserId, convs: Vec<ConvId>, online: bool) -> Announcement {
        let (on, off) = if online {
            (vec![user], vec![])
        } else {
            (vec![], vec![user])
        };
        Announcement {
            note: PresenceNote {
                node: self.node.clone(),
                online: on,
                offline: off,
                full: false,
            },
            user,
            online,
            convs: if self.online_elsewhere(user) {
                Vec::new()
            } else {
                convs
            },
        }
    }

    /// This node's whole list (`online`: the users connected here), repeated every
    /// [`Presence::heartbeat`] so that other nodes' entries do not expire.
    pub fn full_list(&self, online: Vec<UserId>) -> PresenceNote {
        PresenceNote {
            node: self.node.clone(),
            online,
            offline: vec![],
            full: true,
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

/// What a presence change asks the bus to publish.
#[derive(Debug)]
pub struct Announcement {
    /// For the other nodes' tables.
    pub note: PresenceNote,
    pub user: UserId,
    pub online: bool,
    /// Where the people to tell are (empty when nobody needs telling): each hears
    /// [`Announcement::frame`], on every node, and the user themself does not.
    pub convs: Vec<ConvId>,
}

impl Announcement {
    /// The frame the people in [`Announcement::convs`] get.
    pub fn frame(&self) -> ServerFrame {
        ServerFrame::Presence {
            user: self.user,
            online: self.online,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_nodes_vouch_until_they_say_otherwise_or_fall_silent() {
        let hub = Hub::new();
        let p = Presence::new("here", Duration::from_secs(30));
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

    #[test]
    fn an_arrival_is_announced_to_peers_only_if_new_to_the_cluster() {
        let p = Presence::new("here", Duration::from_secs(30));
        let first = p.arrived(UserId(1), vec![ConvId(10), ConvId(11)]);
        assert_eq!(first.note.node, "here");
        assert_eq!(first.note.online, vec![UserId(1)]);
        assert!(first.note.offline.is_empty() && !first.note.full);
        assert_eq!(first.convs, vec![ConvId(10), ConvId(11)]);
        assert_eq!(
            first.frame(),
            ServerFrame::Presence {
                user: UserId(1),
                online: true
            }
        );
        // Another node vouches for user 1: leaving here is news for the other nodes only.
        p.heard(PresenceNote {
            node: "there".into(),
            online: vec![UserId(1)],
            offline: vec![],
            full: false,
        });
        let left = p.departed(UserId(1), vec![ConvId(10)]);
        assert_eq!(left.note.offline, vec![UserId(1)]);
        assert!(left.convs.is_empty(), "still online there");
    }
}
