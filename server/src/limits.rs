//! Rate limits: how much one user, one connection or one address may do per unit of time, so
//! that no client can spend the server's CPU, disk or sockets for everyone else.
//!
//! The counting is governor's (GCRA: one atomic word of state per key, no timers); this module
//! chooses the keys and quotas from the configuration and counts its refusals in [`Metrics`].
//! A user's send limiter is looked up once per connection and shared by all of the user's
//! connections on this node, so a `send` costs one atomic update, no lookup and no allocation.

use crate::config::Config;
use crate::metrics::{Limit, Metrics};
use app::model::UserId;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A limit for one thing (a user's sends, a connection's bad frames).
pub type Limiter = DefaultDirectRateLimiter;

pub struct Limits {
    send_quota: Quota,
    /// Login attempts per account (lower-cased name) and per client address; also wrong
    /// current passwords when changing one (per account).
    logins_per_account: DefaultKeyedRateLimiter<String>,
    logins_per_peer: DefaultKeyedRateLimiter<String>,
    /// One send limiter per user with a connection here (or recently: see `housekeeping`).
    senders: Mutex<HashMap<UserId, Arc<Limiter>>>,
    bad_frame_quota: Quota,
    connects: DefaultKeyedRateLimiter<UserId>,
    registrations: DefaultKeyedRateLimiter<IpAddr>,
    /// Where refusals are counted, by [`Limit`].
    pub metrics: Arc<Metrics>,
}

/// The span `--login-attempts` counts over.
const LOGIN_WINDOW: Duration = Duration::from_secs(300);

fn at_least_one(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).expect("not zero")
}

impl Limits {
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Limits {
        let per_minute = |n| Quota::per_minute(at_least_one(n));
        let logins = |n: u32| {
            // `n` attempts at once, then one more every LOGIN_WINDOW / n: n per window.
            let n = at_least_one(n);
            Quota::with_period(LOGIN_WINDOW / n.get())
                .expect("a window over a count is not zero")
                .allow_burst(n)
        };
        Limits {
            logins_per_account: RateLimiter::keyed(logins(config.login_attempts)),
            logins_per_peer: RateLimiter::keyed(logins(config.login_attempts.saturating_mul(5))),
            send_quota: Quota::per_second(at_least_one(config.send_rate))
                .allow_burst(at_least_one(config.send_burst)),
            senders: Mutex::default(),
            bad_frame_quota: per_minute(config.bad_frames_per_minute),
            connects: RateLimiter::keyed(per_minute(config.connects_per_minute)),
            registrations: RateLimiter::keyed(Quota::per_hour(at_least_one(
                config.registrations_per_hour,
            ))),
            metrics,
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
            self.metrics.refused(Limit::Connect);
        }
        ok
    }

    /// Whether `address` may register another account now (counts it if so).
    pub fn allow_registration(&self, address: IpAddr) -> bool {
        let ok = self.registrations.check_key(&address).is_ok();
        if !ok {
            self.metrics.refused(Limit::Registration);
        }
        ok
    }

    /// Whether a login to `account` from `peer` may be tried now (counts it if so): a password
    /// check costs argon2 time and gives a guesser a try, so each address and each account get
    /// `--login-attempts` (×5 per address) per 5 minutes. The address is asked first, so that a
    /// client past its own allowance no longer spends anyone's account allowance.
    ///
    /// Every attempt counts, right or wrong: governor's cells cannot be given back, and a
    /// limit that a correct password resets would only spare the guesser who already knows
    /// one. A person's few logins a day stay far below it.
    pub fn allow_login(&self, account: &str, peer: &str) -> bool {
        let ok = self.logins_per_peer.check_key(&peer.to_owned()).is_ok()
            && self.allow_password_check(account);
        if !ok {
            self.metrics.refused(Limit::Login);
        }
        ok
    }

    /// Whether `account`'s password may be checked now (counts it if so): a login, or the
    /// current password of a password change. Refusals are the caller's to count.
    pub fn allow_password_check(&self, account: &str) -> bool {
        let key = account.trim().to_ascii_lowercase();
        self.logins_per_account.check_key(&key).is_ok()
    }

    /// Forgets what no longer limits anyone: keys whose allowance is full again, and the send
    /// limiters of users with no connection here. Run every minute or so; keeps the tables as
    /// small as the set of recently active users and addresses.
    pub fn housekeeping(&self) {
        self.connects.retain_recent();
        self.connects.shrink_to_fit();
        self.registrations.retain_recent();
        self.registrations.shrink_to_fit();
        for logins in [&self.logins_per_account, &self.logins_per_peer] {
            logins.retain_recent();
            logins.shrink_to_fit();
        }
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
        let limits = Limits::new(&config, Arc::default());
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

    #[test]
    fn logins_are_limited_per_account_and_per_address() {
        let config = Config::parse_from(["tidings", "--login-attempts", "2"]);
        let metrics = Arc::new(Metrics::new());
        let limits = Limits::new(&config, metrics.clone());
        // Two per account (names compare case-blind), ten per address.
        assert!(limits.allow_login("Bob", "1.1.1.1"));
        assert!(limits.allow_login("bob ", "2.2.2.2"));
        assert!(
            !limits.allow_login("BOB", "3.3.3.3"),
            "bob's allowance is spent"
        );
        assert!(limits.allow_login("ann", "3.3.3.3"), "ann's is not");
        assert!(
            !limits.allow_password_check("bob"),
            "nor may bob's password be checked"
        );
        for n in 0..10 {
            assert!(limits.allow_login(&format!("user{n}"), "4.4.4.4"), "{n}");
        }
        assert!(
            !limits.allow_login("someone", "4.4.4.4"),
            "the address's is spent"
        );
        assert!(
            limits.allow_password_check("someone"),
            "a refused address did not spend the account's allowance"
        );
        let text = metrics.render(Default::default());
        assert!(
            text.contains("tidings_rate_limited_total{limit=\"login\"} 2\n"),
            "{text}"
        );
        // Allowances that have filled up again are forgotten; spent ones are kept.
        limits.housekeeping();
        assert!(!limits.allow_login("bob", "5.5.5.5"));
    }
}
