//! The integration event stream's schema: what a consumer of the Redis Stream `<prefix>:events`
//! (field `event`), of `tidings events tail` and of `GET /api/v1/events` reads, one JSON object
//! per event. Defined once, here; documented in PROTOCOL.md ("Event stream").
//!
//! Stable contract: fields are only ever added. A change that would alter the meaning of an
//! existing field raises [`EVENTS_VERSION`], and every event carries the version it was written
//! in, so a consumer can tell. Pure data, no I/O.

use crate::model::{Event, Message, UserRef};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The version of this schema; every [`StreamEvent`] carries it as `version`.
pub const EVENTS_VERSION: u32 = 1;

/// One event of the stream. `id` is its position: gap-free and increasing in commit order, the
/// same number everywhere (the Redis Stream entry is `<id>-0`; `GET /api/v1/events?after=<id>`
/// continues after it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamEvent {
    pub version: u32,
    pub id: i64,
    /// When the change was committed.
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub payload: Payload,
}

/// What happened, tagged by `type`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    /// A new message in a conversation, in its state when the event was published (the same
    /// shape as the WebSocket `message` frame; a message deleted before then has an empty body
    /// and `deleted: true`, and its text is never published).
    Message { message: Message },
    /// Any other entry of a conversation's log: an edit, a deletion, a reaction, or a group
    /// event (the same shape as the WebSocket `event` frame).
    Event { event: Event },
    /// An account-level change.
    Account {
        user: UserRef,
        change: AccountChange,
        /// The account is a bot.
        #[serde(default)]
        bot: bool,
    },
}

/// What changed about an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountChange {
    /// Registered (or created by an operator).
    Created,
    /// An operator disabled it: it can no longer log in.
    Disabled,
    /// An operator enabled it again.
    Enabled,
    /// Its bot tokens were revoked (a bot account).
    Revoked,
}

impl AccountChange {
    /// The outbox's `kind` column for this change.
    pub fn kind(self) -> &'static str {
        match self {
            AccountChange::Created => "user_created",
            AccountChange::Disabled => "user_disabled",
            AccountChange::Enabled => "user_enabled",
            AccountChange::Revoked => "bot_revoked",
        }
    }

    /// The change an outbox `kind` names.
    pub fn of_kind(kind: &str) -> Option<AccountChange> {
        Some(match kind {
            "user_created" => AccountChange::Created,
            "user_disabled" => AccountChange::Disabled,
            "user_enabled" => AccountChange::Enabled,
            "bot_revoked" => AccountChange::Revoked,
            _ => return None,
        })
    }
}

/// A page of `GET /api/v1/events`: the events after `after` that the token may see, and where
/// to continue (`next`: pass it as `after`; it moves past events the token may not see, so a
/// page can be empty and still advance).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPage {
    pub events: Vec<StreamEvent>,
    pub next: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UserId;

    #[test]
    fn an_account_event_reads_as_documented_and_round_trips() {
        let event = StreamEvent {
            version: EVENTS_VERSION,
            id: 7,
            at: DateTime::from_timestamp_millis(0).unwrap(),
            payload: Payload::Account {
                user: UserRef {
                    id: UserId(3),
                    username: "deploybot".into(),
                },
                change: AccountChange::Created,
                bot: true,
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"version":1,"id":7,"at":"1970-01-01T00:00:00Z","type":"account",
                "user":{"id":3,"username":"deploybot"},"change":"created","bot":true})
        );
        assert_eq!(serde_json::from_value::<StreamEvent>(json).unwrap(), event);
        for change in [
            AccountChange::Created,
            AccountChange::Disabled,
            AccountChange::Enabled,
            AccountChange::Revoked,
        ] {
            assert_eq!(AccountChange::of_kind(change.kind()), Some(change));
        }
    }
}
