//! The domain's nouns: ids, users, conversations, messages, and the small value types that parse
//! untrusted input into something the rest of the code may rely on (`Username::parse`, `Body::parse`).
//!
//! Shared by the server and the browser, so it must stay free of I/O and of either side's crates.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Defines an integer id type that serializes as a bare number (and as a string map key).
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }
    };
}

id_type!(
    /// A registered account.
    UserId
);
id_type!(
    /// A direct chat or a group.
    ConvId
);
id_type!(
    /// A stored message, unique across all conversations.
    MessageId
);

/// Position of a message inside its conversation: 1, 2, 3, … without gaps.
pub type Seq = i64;

/// The longest message body, in characters.
pub const MAX_BODY_CHARS: usize = 4000;
/// The longest group title, in characters.
pub const MAX_TITLE_CHARS: usize = 80;
/// The most messages one history page returns.
pub const MAX_HISTORY_PAGE: u32 = 100;

/// A user as others see them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UserRef {
    pub id: UserId,
    pub username: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConvKind {
    Direct,
    Group,
}

impl ConvKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConvKind::Direct => "direct",
            ConvKind::Group => "group",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "direct" => Some(ConvKind::Direct),
            "group" => Some(ConvKind::Group),
            _ => None,
        }
    }
}

/// The most characters of a replied-to message quoted beside a reply.
pub const EXCERPT_CHARS: usize = 100;
/// The most different emoji one person may put on one message.
pub const MAX_REACTIONS_PER_PERSON: usize = 16;

/// One stored chat message, in its current state (edited body, deleted tombstone, reactions).
///
/// The fields after `at` are absent from the JSON when they hold nothing, so a plain new message
/// reads exactly as it did before edits and reactions existed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub conv: ConvId,
    pub seq: Seq,
    pub id: MessageId,
    pub client_id: String,
    pub sender: UserRef,
    /// Empty when `deleted`: a deleted message's text is gone from the server.
    pub body: String,
    pub at: DateTime<Utc>,
    /// The message this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Quote>,
    /// When the body was last edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<DateTime<Utc>>,
    /// Deleted: show a tombstone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Reactions, one entry per emoji, in the order the emoji was first used. Filled in history
    /// pages; live and replayed messages get theirs from `react` events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
}

/// What a reply shows of the message it answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub seq: Seq,
    pub sender: UserRef,
    /// The first [`EXCERPT_CHARS`] characters of its current body; empty if it was deleted.
    pub excerpt: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

impl Quote {
    pub fn of(m: &Message) -> Quote {
        Quote {
            seq: m.seq,
            sender: m.sender.clone(),
            excerpt: excerpt(&m.body),
            deleted: m.deleted,
        }
    }
}

/// The first [`EXCERPT_CHARS`] characters of `body`.
pub fn excerpt(body: &str) -> String {
    body.chars().take(EXCERPT_CHARS).collect()
}

/// One emoji on one message: who put it there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub emoji: String,
    pub count: u32,
    /// Whether the person asking is among `users`.
    #[serde(default)]
    pub mine: bool,
    /// Who reacted, earliest first.
    pub users: Vec<UserRef>,
}

/// Everything in a conversation's log that is not a new message: changes to messages and the
/// group's own events. Each has its own seq in the conversation, like a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub conv: ConvId,
    pub seq: Seq,
    pub id: MessageId,
    pub client_id: String,
    /// Who did it.
    pub sender: UserRef,
    pub at: DateTime<Utc>,
    pub change: Change,
}

/// What an [`Event`] changed. `target` is the seq of the message it is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// The message's body is now `body` (empty if it has been deleted since).
    Edit { target: Seq, body: String },
    /// The message is deleted: drop its body and reactions, show a tombstone.
    Delete { target: Seq },
    /// The sender added (`on`) or took back their `emoji` on the message.
    React {
        target: Seq,
        emoji: String,
        on: bool,
    },
    /// The sender created the group with this title (a group's first entry).
    Created { title: String },
    /// The sender added `user` to the group.
    Added { user: UserRef },
    /// The sender removed `user` from the group.
    Removed { user: UserRef },
    /// The sender left the group.
    Left,
    /// The sender renamed the group.
    Renamed { title: String },
    /// `user` is the group's owner now (the owner left, and they were its longest-standing
    /// member).
    Owner { user: UserRef },
}

impl Change {
    /// The message this change is about, if it is about one.
    pub fn target(&self) -> Option<Seq> {
        match self {
            Change::Edit { target, .. }
            | Change::Delete { target }
            | Change::React { target, .. } => Some(*target),
            _ => None,
        }
    }

    /// The stored name of the kind (the `messages.kind` column).
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Edit { .. } => "edit",
            Change::Delete { .. } => "delete",
            Change::React { on: true, .. } => "react",
            Change::React { on: false, .. } => "unreact",
            Change::Created { .. } => "created",
            Change::Added { .. } => "added",
            Change::Removed { .. } => "removed",
            Change::Left => "left",
            Change::Renamed { .. } => "renamed",
            Change::Owner { .. } => "owner",
        }
    }

    /// A group event (a line in the timeline), as opposed to a change to a message.
    pub fn is_system(&self) -> bool {
        self.target().is_none()
    }
}

/// One entry of a conversation's log: a message, or an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Message(Message),
    Event(Event),
}

impl Entry {
    pub fn conv(&self) -> ConvId {
        match self {
            Entry::Message(m) => m.conv,
            Entry::Event(e) => e.conv,
        }
    }

    pub fn seq(&self) -> Seq {
        match self {
            Entry::Message(m) => m.seq,
            Entry::Event(e) => e.seq,
        }
    }

    pub fn id(&self) -> MessageId {
        match self {
            Entry::Message(m) => m.id,
            Entry::Event(e) => e.id,
        }
    }

    pub fn client_id(&self) -> &str {
        match self {
            Entry::Message(m) => &m.client_id,
            Entry::Event(e) => &e.client_id,
        }
    }

    pub fn sender(&self) -> &UserRef {
        match self {
            Entry::Message(m) => &m.sender,
            Entry::Event(e) => &e.sender,
        }
    }

    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Entry::Message(m) => m.at,
            Entry::Event(e) => e.at,
        }
    }
}

/// An emoji reaction as typed: 1–32 bytes, at most 10 characters, no letters, digits, spaces
/// or control characters (so nothing but emoji and their joiners and modifiers in practice).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Emoji(String);

impl Emoji {
    pub fn parse(raw: String) -> Result<Self, ParseError> {
        let ok_char = |c: char| {
            !c.is_ascii() && !c.is_alphanumeric() && !c.is_whitespace() && !c.is_control()
        };
        if (1..=32).contains(&raw.len()) && raw.chars().count() <= 10 && raw.chars().all(ok_char) {
            Ok(Emoji(raw))
        } else {
            Err(ParseError::Emoji)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A conversation as one particular member sees it (a direct chat is titled by the other person).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConvId,
    pub kind: ConvKind,
    pub title: String,
    pub members: Vec<UserRef>,
    /// The seq of the newest message (0 when empty).
    pub last_seq: Seq,
    /// The highest seq this member has read.
    pub last_read_seq: Seq,
    /// `last_seq - last_read_seq`, never negative.
    pub unread: i64,
    pub last_message: Option<Message>,
    /// Time of the newest activity (last message, or creation).
    pub updated_at: DateTime<Utc>,
    /// Which of `members` are bots (shown as bots). Absent when none is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bots: Vec<UserId>,
}

impl Conversation {
    /// Whether `user` is one of this conversation's bots.
    pub fn is_bot(&self, user: UserId) -> bool {
        self.bots.contains(&user)
    }
}

/// An incoming webhook of a conversation: its secret URL posts as `bot` (issue #11).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: i64,
    pub conv: ConvId,
    /// Who its posts are from: a bot account, a member of the conversation.
    pub bot: UserRef,
    pub created_by: UserRef,
    pub created_at: DateTime<Utc>,
}

/// A webhook just made, with its secret URL's path (`/hooks/<secret>`): shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewWebhook {
    pub webhook: Webhook,
    pub path: String,
}

/// One page of history, oldest first: the messages of a range of seqs in their current state,
/// and the group events (system lines) of the same range. Changes to messages (edits,
/// deletions, reactions) are already applied, so they are not listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// True when older entries exist before the first one in this page: ask for the next page
    /// `before` the smallest seq of `messages` and `events`.
    pub has_more: bool,
}

/// Why a piece of user input was refused. The message tells the person what to change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("username must be 3 to 32 characters of a-z, 0-9, '_', '.' or '-'")]
    Username,
    #[error("password must be at least 8 characters (and at most 1024)")]
    Password,
    #[error("message is empty")]
    EmptyBody,
    #[error("message is longer than {MAX_BODY_CHARS} characters")]
    BodyTooLarge,
    #[error("client_id must be 1 to 64 characters of letters, digits and '-'")]
    ClientId,
    #[error("group name must be 1 to {MAX_TITLE_CHARS} characters")]
    Title,
    #[error("a reaction must be one emoji (at most 10 characters, no letters or spaces)")]
    Emoji,
    #[error("type at least {MIN_SEARCH_CHARS} characters of a username (a-z, 0-9, '_', '.' or '-') to search")]
    SearchPrefix,
}

/// A valid username: 3–32 characters of `a-z 0-9 _ . -`, lower-cased on the way in so that
/// uniqueness is case-insensitive.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let name = raw.trim().to_ascii_lowercase();
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c);
        if (3..=32).contains(&name.len()) && name.chars().all(ok_char) {
            Ok(Username(name))
        } else {
            Err(ParseError::Username)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that meets the length rule. Never logged, never stored: only its argon2 hash is.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let n = raw.chars().count();
        if (8..=1024).contains(&n) {
            Ok(Password(raw.to_owned()))
        } else {
            Err(ParseError::Password)
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// A message body: not blank, at most [`MAX_BODY_CHARS`] characters. Kept exactly as typed;
/// the UI renders it as text, never as HTML.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Body(String);

impl Body {
    pub fn parse(raw: String) -> Result<Self, ParseError> {
        if raw.trim().is_empty() {
            Err(ParseError::EmptyBody)
        } else if raw.chars().count() > MAX_BODY_CHARS {
            Err(ParseError::BodyTooLarge)
        } else {
            Ok(Body(raw))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// The sender's own id for a message (a UUID in practice), which makes re-sending idempotent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(raw: String) -> Result<Self, ParseError> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-';
        if (1..=64).contains(&raw.len()) && raw.chars().all(ok_char) {
            Ok(ClientId(raw))
        } else {
            Err(ParseError::ClientId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A group's name: trimmed, 1–80 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupTitle(String);

impl GroupTitle {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let title = raw.trim();
        if !title.is_empty() && title.chars().count() <= MAX_TITLE_CHARS {
            Ok(GroupTitle(title.to_owned()))
        } else {
            Err(ParseError::Title)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The fewest characters a user search needs.
pub const MIN_SEARCH_CHARS: usize = 2;
/// The most users one search returns.
pub const MAX_SEARCH_RESULTS: u32 = 10;

/// The start of a username, to search by: trimmed, lower-cased, [`MIN_SEARCH_CHARS`] to 32
/// characters of the username alphabet. Short prefixes are refused so that one search never
/// walks the whole user table (and nobody lists it a letter at a time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsernamePrefix(String);

impl UsernamePrefix {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let prefix = raw.trim().to_ascii_lowercase();
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c);
        if (MIN_SEARCH_CHARS..=32).contains(&prefix.len()) && prefix.chars().all(ok_char) {
            Ok(UsernamePrefix(prefix))
        } else {
            Err(ParseError::SearchPrefix)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The smallest string above every username that starts with this prefix (its last
    /// character bumped by one), so that a search is the index range `[prefix, upper)`: no
    /// `LIKE`, whose `_` would be a wildcard. The alphabet is ASCII below `z`, so the bump stays ASCII.
    pub fn upper_bound(&self) -> String {
        let mut bytes = self.0.clone().into_bytes();
        if let Some(last) = bytes.last_mut() {
            *last += 1;
        }
        String::from_utf8(bytes).expect("ASCII stays ASCII")
    }
}

/// Splits a "alice, bob carol" member list into usernames, refusing the whole list if one is bad.
pub fn parse_member_list(raw: &str) -> Result<Vec<Username>, ParseError> {
    let mut names: Vec<Username> = raw
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(Username::parse)
        .collect::<Result<_, _>>()?;
    names.sort_by(|a, b| a.0.cmp(&b.0));
    names.dedup();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased_and_checked() {
        assert_eq!(Username::parse(" Alice.B ").unwrap().as_str(), "alice.b");
        for bad in ["ab", "a b c", "名前名前", "x<script>", &"a".repeat(33), ""] {
            assert_eq!(Username::parse(bad), Err(ParseError::Username), "{bad:?}");
        }
    }

    #[test]
    fn bodies_refuse_blank_and_oversized() {
        assert_eq!(Body::parse("  \n ".into()), Err(ParseError::EmptyBody));
        assert_eq!(
            Body::parse("é".repeat(MAX_BODY_CHARS + 1)),
            Err(ParseError::BodyTooLarge)
        );
        assert_eq!(
            Body::parse("é".repeat(MAX_BODY_CHARS))
                .unwrap()
                .as_str()
                .chars()
                .count(),
            MAX_BODY_CHARS
        );
        assert_eq!(
            Body::parse("<b>hi</b>".into()).unwrap().as_str(),
            "<b>hi</b>"
        );
    }

    #[test]
    fn passwords_and_client_ids() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("long enough").is_ok());
        assert!(format!("{:?}", Password::parse("secret-password").unwrap()).contains(".."));
        assert!(ClientId::parse("3f2a-11".into()).is_ok());
        assert!(ClientId::parse("".into()).is_err());
        assert!(ClientId::parse("a b".into()).is_err());
    }

    #[test]
    fn search_prefixes_are_bounded_and_range_friendly() {
        let p = UsernamePrefix::parse(" Al_ ").unwrap();
        assert_eq!((p.as_str(), p.upper_bound().as_str()), ("al_", "al`"));
        assert_eq!(UsernamePrefix::parse("bz").unwrap().upper_bound(), "b{");
        for bad in ["a", "", "  b ", "a%", "ü1", &"a".repeat(33)] {
            assert_eq!(
                UsernamePrefix::parse(bad),
                Err(ParseError::SearchPrefix),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn member_lists_split_and_dedup() {
        let names = parse_member_list("bob, Alice  bob,carol").unwrap();
        let names: Vec<_> = names.iter().map(|n| n.as_str()).collect();
        assert_eq!(names, ["alice", "bob", "carol"]);
        assert!(parse_member_list("bob, x").is_err());
    }
}
