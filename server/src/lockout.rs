//! Disabled accounts lose their live connections: every node asks the database every
//! [`SWEEP`] which accounts were disabled lately and closes their sockets here with 4005.
//!
//! Why a sweep and not a message: `tidings user disable` is a separate process that may have no
//! Redis (a single node), so the database is the one place every node and the command share.
//! The query is an index range over `users.disabled_at`, and it looks back [`LOOKBACK`] so a
//! node that was busy, or a clock a little apart from the command's, still sees the change.
//! Sessions are deleted by the command itself, so nothing new can connect in the meantime.

use crate::hub::{CloseReason, Hub};
use crate::store::{now_ms, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often each node looks for newly disabled accounts.
pub const SWEEP: Duration = Duration::from_secs(2);
/// How far back each sweep looks.
const LOOKBACK: Duration = Duration::from_secs(120);

/// Runs until `shutdown`: closes the local connections of accounts disabled lately.
pub async fn run(store: Store, hub: Arc<Hub>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(SWEEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let since = now_ms() - LOOKBACK.as_millis() as i64;
        match store.disabled_since(since).await {
            Ok(users) => {
                for user in users {
                    let closed = hub.close_user(user, CloseReason::Disabled);
                    if closed > 0 {
                        tracing::info!(
                            user = user.0,
                            closed,
                            "closed the connections of a disabled account"
                        );
                    }
                }
            }
            Err(e) => tracing::warn!("could not look for disabled accounts: {e}"),
        }
    }
}
