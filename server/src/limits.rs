//! Rate limits: how much one user, one connection or one address may do per unit of time, so
//! that no client can spend the server's CPU, disk or sockets for everyone else.
//!
//! The counting is governor's (GCRA: one atomic word of state per key, no timers); this module
//! chooses the keys and quotas from the configuration and counts refusals for `/metrics`.
//! A user's send limiter is looked up once per connection and shared by all of the user's
//! connections on this node, so a `send` costs one atomic update, no lookup and no allocation.

use crate::config::Config;
use app::model::UserId;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A limit for one thing (a user's sends, a connection's bad frames).
pub type Limiter = DefaultDirectRateLimiter;

/// Refusals by limit, for `/metrics`.
#[derive(Debug, Default)]
pub struct Refusals {
    pub sends: AtomicU64,
    pub connects: AtomicU64,
    pub connections_per_user: AtomicU64,
    pub connections_per_node: AtomicU64,
    pub bad_frame_closes: AtomicU64,
    pub registrations: AtomicU64,
}

impl Refusals {
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

pub struct Limits {
    send_quota: Quota,
    /// One send limiter per user with a connection here (or recently: see `housekeeping`).
    senders: Mutex<HashMap<UserId, Arc<Limiter>>>,
    bad_frame_quota: Quota,
    connects: DefaultKeyedRateLimiter<UserId>,
    registrations: DefaultKeyedRateLimiter<IpAddr>,
    pub refusals: Refusals,
}

fn at_least_one(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).expect("not zero")
}

impl Limits {
    pub fn new(config: &Config) -> Limits {
        let per_minute = |n| Quota::per_minute(at_least_one(n));
        Limits {
            send_quota: Quota::per_second(at_least_one(config.send_rate))
                .allow_burst(at_least_one(config.send_burst)),
            senders: Mutex::default(),
            bad_frame_quota: per_minute(config.bad_frames_per_minute),
            connects: RateLimiter::keyed(per_minute(config.connects_per_minute)),
            registrations: RateLimiter::keyed(Quota::per_hour(at_least_one(
                config.registrations_per_hour,
            ))),
            refusals: Refusals::default(),
        }
    }

    /// The send limiter `user`'s connections on this node share.
    pub fn sender(&self, user: UserId) -> Arc<Limiter> {
        self.lock()
            .entry(user)
            .or_insert_with(|| Arc::new(RateLimiter::direct(self.send_quota)))
            .clone()
    }

    /// A fresh bad-frame allowance for one connection.
    pub fn bad_frames(&self) -> Limiter {
        RateLimiter::direct(self.bad_frame_quota)
    }

    /// Whether `user` may open another WebSocket now (counts it if so).
    pub fn allow_connect(&self, user: UserId) -> bool {
        let ok = self.connects.check_key(&user).is_ok();
        if !ok {
            Refusals::count(&self.refusals.connects);
        }
        ok
    }

    /// Whether `address` may register another account now (counts it if so).
    pub fn allow_registration(&self, address: IpAddr) -> bool {
        let ok = self.registrations.check_key(&address).is_ok();
        if !ok {
            Refusals::count(&self.refusals.registrations);
        }
        ok
    }

    /// Forgets what no longer limits anyone: keys whose allowance is full again, and the send
    /// limiters of users with no connection here. Run every minute or so; keeps the tables as
    /// small as the set of recently active users and addresses.
    pub fn housekeeping(&self) {
        self.connects.retain_recent();
        self.connects.shrink_to_fit();
        self.registrations.retain_recent();
        self.registrations.shrink_to_fit();
        self.lock()
            .retain(|_, limiter| Arc::strong_count(limiter) > 1);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, Arc<Limiter>>> {
        self.senders
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn a_users_connections_share_one_send_allowance() {
        let config = Config::parse_from(["tidings", "--send-rate", "1", "--send-burst", "3"]);
        let limits = Limits::new(&config);
        let (tab1, tab2) = (limits.sender(UserId(1)), limits.sender(UserId(1)));
        assert!(tab1.check().is_ok() && tab2.check().is_ok() && tab1.check().is_ok());
        assert!(
            tab2.check().is_err(),
            "the burst is the user's, not the tab's"
        );
        assert!(
            limits.sender(UserId(2)).check().is_ok(),
            "others are not affected"
        );
        drop((tab1, tab2));
        limits.housekeeping();
        assert_eq!(limits.lock().len(), 0, "no connection, no limiter kept");
    }
}
