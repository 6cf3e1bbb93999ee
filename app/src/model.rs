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
    /// The file posted with this message (its bytes are fetched from [`Attachment::url`]);
    /// gone once the message is deleted. Boxed: most messages have none, and a message travels
    /// by value through the commit and fan-out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Box<Attachment>>,
}

impl Message {
    /// What a one-line preview (the conversation list, a notification) shows: the body, or for
    /// a file sent without words, its name.
    pub fn preview_text(&self) -> String {
        match &self.attachment {
            Some(a) if self.body.trim().is_empty() => format!("📎 {}", a.name),
            _ => self.body.clone(),
        }
    }
}

/// The largest upload by default (the server's `--max-upload-bytes`).
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 10 * 1024 * 1024;
/// The longest file name kept, in characters.
pub const MAX_FILE_NAME_CHARS: usize = 255;

/// An uploaded file as a message carries it: what a client needs to show it without fetching
/// it (a link with name and size, or an image box of the right size).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: AttachmentId,
    /// The name it was uploaded under (path parts and control characters removed).
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// Sniffed from the bytes by the server, never taken from the uploader.
    pub content_type: String,
    /// Pixels, for the images the server could read the size of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

/// The only types a browser is allowed to render in place: raster images, which cannot run
/// script. Everything else (SVG and HTML included) is offered as a download.
pub const INLINE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

impl Attachment {
    /// Where its bytes are served (to members of its conversation only).
    pub fn url(&self) -> String {
        format!("/api/attachments/{}", self.id.as_str())
    }

    /// Shown inline as an image (a safe raster type), rather than as a download link.
    pub fn is_inline_image(&self) -> bool {
        INLINE_TYPES.contains(&self.content_type.as_str())
    }

    /// "12 KB", "3.4 MB": the size as a person reads it.
    pub fn human_size(&self) -> String {
        human_size(self.size)
    }
}

/// A byte count as a person reads it (powers of 1024, one decimal below 10).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// An upload's id: 128 random bits as 32 lowercase hex digits, so nobody can guess another's.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AttachmentId(String);

impl AttachmentId {
    pub fn parse(raw: String) -> Result<Self, ParseError> {
        if raw.len() == 32 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(AttachmentId(raw))
        } else {
            Err(ParseError::AttachmentId)
        }
    }

    /// A fresh id from 16 random bytes (the server's CSPRNG).
    pub fn from_random(bytes: [u8; 16]) -> Self {
        AttachmentId(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AttachmentId {
    type Error = ParseError;
    fn try_from(raw: String) -> Result<Self, ParseError> {
        AttachmentId::parse(raw)
    }
}

impl From<AttachmentId> for String {
    fn from(id: AttachmentId) -> String {
        id.0
    }
}

/// A file's name as uploaded, made safe to store and show: only its last path part, control
/// characters and quotes dropped, at most [`MAX_FILE_NAME_CHARS`]; never empty ("file").
pub fn clean_file_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let name: String = last
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(MAX_FILE_NAME_CHARS)
        .collect();
    let name = name.trim();
    if name.is_empty() || name == "." || name == ".." {
        "file".to_owned()
    } else {
        name.to_owned()
    }
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
    /// admin, or member when it had no admin).
    Owner { user: UserRef },
    /// The owner made `user` an admin (`role: admin`) or a plain member again (`role: member`).
    Role { user: UserRef, role: Role },
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

    /// The kind's name: the JSON `kind`, and the `messages.kind` column — except a role change,
    /// which is stored as an `owner` row whose body names the role (see
    /// `migrations/*/0007_roles.sql`: SQLite cannot widen that column's CHECK without rebuilding
    /// the whole log table).
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
            Change::Role { .. } => "role",
        }
    }

    /// A group event (a line in the timeline), as opposed to a change to a message.
    pub fn is_system(&self) -> bool {
        self.target().is_none()
    }
}

/// What a member of a group may do there. Everyone in a direct chat is a `Member`.
///
/// The owner (one per group) promotes members to admin and demotes admins; the owner and the
/// admins rename the group, remove others (never the owner) and delete others' messages;
/// everyone adds members, leaves, and edits and deletes their own messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    /// The stored name (the `members.role` column, and a role change's body).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// A stored role (`members.role`); anything unknown reads as the least one, `Member`.
    pub fn from_column(s: &str) -> Role {
        match s {
            "owner" => Role::Owner,
            "admin" => Role::Admin,
            _ => Role::Member,
        }
    }

    /// A role someone may be given by the owner: `admin` or `member` (ownership only passes
    /// when the owner leaves).
    pub fn parse_assignable(raw: &str) -> Result<Role, ParseError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            _ => Err(ParseError::Role),
        }
    }

    /// Renames the group, removes others and deletes others' messages.
    pub fn manages(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    /// Makes and unmakes admins.
    pub fn sets_roles(self) -> bool {
        self == Role::Owner
    }

    /// Whether someone with this role may remove a member who has `other`: managers remove
    /// anyone but the owner.
    pub fn removes(self, other: Role) -> bool {
        self.manages() && other != Role::Owner
    }
}

/// A member of a conversation whose role is above `Member` (a conversation lists only these).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberRole {
    pub user: UserId,
    pub role: Role,
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
    /// The members whose role is above `Member` (a group's owner and admins); absent from the
    /// JSON when empty (a direct chat). See [`Conversation::role_of`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<MemberRole>,
    /// The seq of the newest message (0 when empty).
    pub last_seq: Seq,
    /// The highest seq this member has read.
    pub last_read_seq: Seq,
    /// `last_seq - last_read_seq`, never negative.
    pub unread: i64,
    /// How many of the unread messages mention this member (`@username`); absent when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mentions: i64,
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

impl Conversation {
    /// `user`'s role here: listed in `roles`, else `Member`.
    pub fn role_of(&self, user: UserId) -> Role {
        self.roles
            .iter()
            .find(|r| r.user == user)
            .map_or(Role::Member, |r| r.role)
    }

    /// Records that `user` has `role` now (a `role` or `owner` event applied to the list).
    pub fn set_role(&mut self, user: UserId, role: Role) {
        self.roles.retain(|r| r.user != user);
        if role != Role::Member {
            self.roles.push(MemberRole { user, role });
        }
    }
}

fn is_zero(n: &i64) -> bool {
    *n == 0
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
    #[error("a role must be \"admin\" or \"member\"")]
    Role,
    #[error("a reaction must be one emoji (at most 10 characters, no letters or spaces)")]
    Emoji,
    #[error("attachment must be the 32-character id the upload answered with")]
    AttachmentId,
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

    /// The words sent with an attachment: like [`Body::parse`], but a blank one is allowed (and
    /// stored empty), since the file is the message.
    pub fn caption(raw: String) -> Result<Self, ParseError> {
        if raw.trim().is_empty() {
            Ok(Body(String::new()))
        } else {
            Body::parse(raw)
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
    fn attachment_ids_names_and_sizes() {
        let id = AttachmentId::from_random([0xab; 16]);
        assert_eq!(id.as_str(), "ab".repeat(16));
        assert_eq!(AttachmentId::parse(id.as_str().into()), Ok(id));
        for bad in ["", "AB", &"A".repeat(32), &"g".repeat(32), &"a".repeat(33)] {
            assert!(AttachmentId::parse(bad.into()).is_err(), "{bad:?}");
        }
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("C:\\x\\a\"b.png"), "ab.png");
        assert_eq!(clean_file_name("a\nb"), "ab");
        assert_eq!(clean_file_name(" .. "), "file");
        assert_eq!(human_size(900), "900 B");
        assert_eq!(human_size(1536), "1.5 KB");
        assert_eq!(human_size(10 * 1024 * 1024), "10 MB");
        assert_eq!(Body::caption("  ".into()).unwrap().as_str(), "");
        assert_eq!(Body::caption("hi".into()).unwrap().as_str(), "hi");
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
    fn roles_parse_and_say_what_they_allow() {
        assert_eq!(Role::parse_assignable(" Admin "), Ok(Role::Admin));
        assert_eq!(Role::parse_assignable("member"), Ok(Role::Member));
        for bad in ["owner", "", "root", "admins"] {
            assert_eq!(
                Role::parse_assignable(bad),
                Err(ParseError::Role),
                "{bad:?}"
            );
        }
        for role in [Role::Owner, Role::Admin, Role::Member] {
            assert_eq!(Role::from_column(role.as_str()), role);
        }
        assert_eq!(Role::from_column("nonsense"), Role::Member);
        assert!(Role::Owner.manages() && Role::Admin.manages() && !Role::Member.manages());
        assert!(Role::Owner.sets_roles() && !Role::Admin.sets_roles());
        assert!(Role::Admin.removes(Role::Admin) && Role::Admin.removes(Role::Member));
        assert!(!Role::Admin.removes(Role::Owner) && !Role::Member.removes(Role::Member));
    }

    #[test]
    fn a_conversation_knows_its_roles() {
        let mut c = Conversation {
            id: ConvId(1),
            kind: ConvKind::Group,
            title: "t".into(),
            members: Vec::new(),
            roles: vec![MemberRole {
                user: UserId(1),
                role: Role::Owner,
            }],
            last_seq: 0,
            last_read_seq: 0,
            unread: 0,
            mentions: 0,
            bots: Vec::new(),
            last_message: None,
            updated_at: DateTime::<Utc>::default(),
        };
        assert_eq!(c.role_of(UserId(1)), Role::Owner);
        assert_eq!(c.role_of(UserId(2)), Role::Member);
        c.set_role(UserId(2), Role::Admin);
        assert_eq!(c.role_of(UserId(2)), Role::Admin);
        c.set_role(UserId(2), Role::Member);
        assert_eq!(c.roles.len(), 1, "members are not listed");
    }

    #[test]
    fn member_lists_split_and_dedup() {
        let names = parse_member_list("bob, Alice  bob,carol").unwrap();
        let names: Vec<_> = names.iter().map(|n| n.as_str()).collect();
        assert_eq!(names, ["alice", "bob", "carol"]);
        assert!(parse_member_list("bob, x").is_err());
    }
}
