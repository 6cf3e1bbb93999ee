//! The WebSocket protocol at `/ws`: every frame either side may send, defined once and used by both
//! the server and the browser. JSON text frames, tagged by `"type"` in snake_case. See PROTOCOL.md.
//!
//! Pure data: no I/O here, and nothing that only one side can compile.

use crate::contacts::ContactChange;
use crate::model::{
    AttachmentId, ConvId, Conversation, Entry, Event, Message, MessageId, Seq, UserId, UserRef,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Largest text frame the server reads; anything bigger is refused with `too_large`.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// What a browser (or any client) sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Post `body` to `conv`. `client_id` is chosen by the client and makes re-sending safe.
    Send {
        conv: ConvId,
        client_id: String,
        body: String,
        /// The seq of the message this one answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<Seq>,
        /// A file this user uploaded (`POST /api/attachments`) and has not posted yet; with it
        /// the body may be blank.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attachment: Option<AttachmentId>,
    },
    /// Replace the body of my message `target`. Acknowledged like a send (its own `client_id`,
    /// its own seq in the conversation's log).
    Edit {
        conv: ConvId,
        client_id: String,
        target: Seq,
        body: String,
    },
    /// Delete message `target` (mine; in a group, the owner and admins may delete anyone's).
    Delete {
        conv: ConvId,
        client_id: String,
        target: Seq,
    },
    /// Put (`on: true`) or take back (`on: false`) my `emoji` on message `target`.
    React {
        conv: ConvId,
        client_id: String,
        target: Seq,
        emoji: String,
        on: bool,
    },
    /// "I hold every message up to this seq": the server replays what came after, in order,
    /// then answers `synced`.
    Sync {
        #[serde(with = "cursor_keys")]
        cursors: BTreeMap<ConvId, Seq>,
    },
    /// "I have read up to `seq`" (read receipts).
    Read {
        conv: ConvId,
        seq: Seq,
    },
    /// "I am typing in `conv`" (ephemeral; never stored).
    Typing {
        conv: ConvId,
    },
    Ping,
}

/// JSON object keys are strings. serde reads `{"7": 3}` into integer keys only when it reads
/// the map directly, not through an internally tagged enum (which buffers), so parse them here.
mod cursor_keys {
    use super::{ConvId, Seq};
    use serde::{de::Error, Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(map: &BTreeMap<ConvId, Seq>, s: S) -> Result<S::Ok, S::Error> {
        map.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<ConvId, Seq>, D::Error> {
        BTreeMap::<String, Seq>::deserialize(d)?
            .into_iter()
            .map(|(key, seq)| match key.parse() {
                Ok(id) => Ok((ConvId(id), seq)),
                Err(_) => Err(D::Error::custom(format!(
                    "cursor key {key:?} is not a conversation id"
                ))),
            })
            .collect()
    }
}

/// What the server sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// First frame on every connection: who the session belongs to.
    Hello {
        user: UserRef,
    },
    /// To the sending connection only, once the message is committed.
    Ack {
        client_id: String,
        conv: ConvId,
        id: MessageId,
        seq: Seq,
        at: DateTime<Utc>,
    },
    /// A stored message, to every connection of every member (the sender's included).
    Message(Message),
    /// Any other entry of a conversation's log (an edit, a deletion, a reaction, a group event),
    /// delivered exactly like a `message`: same seq sequence, same ack, same replay.
    Event(Event),
    /// The user was added to a conversation, it changed (renamed, members, roles), or the user
    /// left it or was removed (`removed: true`).
    Conversation {
        conversation: Conversation,
        removed: bool,
        /// With `removed: true`, who removed the user, when it was someone else (absent when
        /// they left themselves).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<UserRef>,
    },
    /// A member read up to `seq`.
    Read {
        conv: ConvId,
        user: UserId,
        seq: Seq,
    },
    /// A member is typing (lasts a few seconds unless repeated).
    Typing {
        conv: ConvId,
        user: UserRef,
    },
    /// A user who shares a conversation with you came online or went offline.
    Presence {
        user: UserId,
        online: bool,
    },
    /// The replay asked for by `sync` is complete; live frames follow.
    Synced,
    /// A refused frame. Nothing was stored and the connection stays open.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
    Pong,
    /// My relation with `user` changed (see `contacts`): a contact request sent or received,
    /// accepted, declined or withdrawn, or a contact removed. Goes to every connection of both
    /// people, the one who acted included.
    Contact(ContactChange),
}

/// Why a frame was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or not a frame this protocol knows.
    BadFrame,
    /// The conversation exists but you are not a member.
    NotMember,
    /// The frame or the message body is over the limit.
    TooLarge,
    /// The message body is blank.
    Empty,
    /// No such conversation.
    UnknownConversation,
    /// Sending too fast; slow down and retry.
    RateLimited,
    /// The server failed; retry later.
    Internal,
    /// The `target` (or `reply_to`) is not a message of this conversation.
    UnknownMessage,
    /// The `target` (or `reply_to`) has been deleted.
    MessageDeleted,
    /// Not yours to change: only the sender edits a message; only the sender or the group's
    /// owner or an admin deletes it.
    NotAllowed,
    /// Already [`crate::model::MAX_REACTIONS_PER_PERSON`] different emoji of yours on that message.
    TooManyReactions,
    /// The `attachment` of a `send` is not an upload of yours that is still unposted (unknown,
    /// someone else's, already posted, or expired).
    UnknownAttachment,
}

impl ServerFrame {
    pub fn error(code: ErrorCode, message: impl Into<String>, client_id: Option<String>) -> Self {
        ServerFrame::Error {
            code,
            message: message.into(),
            client_id,
        }
    }

    /// Serializes the frame. Our types always serialize, so this cannot fail.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("protocol frames always serialize")
    }
}

/// A log entry's frame: `message` for a message, `event` for everything else.
impl From<Entry> for ServerFrame {
    fn from(entry: Entry) -> Self {
        match entry {
            Entry::Message(m) => ServerFrame::Message(m),
            Entry::Event(e) => ServerFrame::Event(e),
        }
    }
}

impl ClientFrame {
    /// Reads one client text frame: what the server runs on every frame a WebSocket receives
    /// (and what `fuzz/` feeds arbitrary bytes to).
    pub fn decode(text: &str) -> Result<ClientFrame, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("protocol frames always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Change, ConvKind};
    use serde_json::json;

    fn alice() -> UserRef {
        UserRef {
            id: UserId(1),
            username: "alice".into(),
        }
    }

    fn roundtrip_server(frame: ServerFrame) -> serde_json::Value {
        let text = frame.to_json();
        let back: ServerFrame = serde_json::from_str(&text).unwrap();
        assert_eq!(back, frame);
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn client_frames_match_the_documented_json() {
        let send: ClientFrame =
            serde_json::from_value(json!({"type":"send","conv":7,"client_id":"c-1","body":"hi"}))
                .unwrap();
        assert_eq!(
            send,
            ClientFrame::Send {
                conv: ConvId(7),
                client_id: "c-1".into(),
                body: "hi".into(),
                reply_to: None,
                attachment: None,
            }
        );
        assert_eq!(
            send.to_json(),
            r#"{"type":"send","conv":7,"client_id":"c-1","body":"hi"}"#,
            "an old client's send is unchanged"
        );
        let react: ClientFrame = serde_json::from_value(
            json!({"type":"react","conv":7,"client_id":"c-2","target":3,"emoji":"👍","on":true}),
        )
        .unwrap();
        assert_eq!(
            react,
            ClientFrame::React {
                conv: ConvId(7),
                client_id: "c-2".into(),
                target: 3,
                emoji: "👍".into(),
                on: true
            }
        );
        let edit: ClientFrame = serde_json::from_value(
            json!({"type":"edit","conv":7,"client_id":"c-3","target":3,"body":"fixed"}),
        )
        .unwrap();
        assert!(matches!(edit, ClientFrame::Edit { target: 3, .. }));
        let reply: ClientFrame = serde_json::from_value(
            json!({"type":"send","conv":7,"client_id":"c-4","body":"yes","reply_to":3}),
        )
        .unwrap();
        assert!(matches!(
            reply,
            ClientFrame::Send {
                reply_to: Some(3),
                attachment: None,
                ..
            }
        ));
        let id = "0123456789abcdef".repeat(2);
        let file: ClientFrame = serde_json::from_value(
            json!({"type":"send","conv":7,"client_id":"c-5","body":"","attachment":id}),
        )
        .unwrap();
        assert!(matches!(
            &file,
            ClientFrame::Send { attachment: Some(a), .. } if a.as_str() == id
        ));
        assert_eq!(
            serde_json::to_value(&file).unwrap()["attachment"],
            json!(id),
            "the id travels as a plain string"
        );
        assert!(
            serde_json::from_value::<ClientFrame>(
                json!({"type":"send","conv":7,"client_id":"c-6","body":"","attachment":"../x"}),
            )
            .is_err(),
            "an id that is not 32 hex digits is a bad frame"
        );
        let sync: ClientFrame =
            serde_json::from_value(json!({"type":"sync","cursors":{"7":3,"9":0}})).unwrap();
        let ClientFrame::Sync { cursors } = &sync else {
            panic!("{sync:?}")
        };
        assert_eq!(cursors[&ConvId(7)], 3);
        assert_eq!(
            serde_json::to_value(&sync).unwrap(),
            json!({"type":"sync","cursors":{"7":3,"9":0}})
        );
        assert_eq!(
            serde_json::from_str::<ClientFrame>(r#"{"type":"ping"}"#).unwrap(),
            ClientFrame::Ping
        );
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"launch"}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"send","conv":"x"}"#).is_err());
    }

    #[test]
    fn server_frames_round_trip_with_their_tags() {
        let at = DateTime::parse_from_rfc3339("2026-11-26T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let msg = Message {
            conv: ConvId(7),
            seq: 3,
            id: MessageId(42),
            client_id: "c-1".into(),
            sender: alice(),
            body: "<script>x</script>".into(),
            at,
            reply_to: None,
            edited_at: None,
            deleted: false,
            reactions: Vec::new(),
            attachment: None,
        };
        let v = roundtrip_server(ServerFrame::Message(msg.clone()));
        assert_eq!(
            v.as_object().unwrap().len(),
            8,
            "a plain message has no empty extras: {v}"
        );
        assert_eq!(v["type"], "message");
        assert_eq!(v["sender"]["username"], "alice");
        assert_eq!(v["seq"], 3);
        assert_eq!(v["at"], "2026-11-26T10:00:00Z");

        let v = roundtrip_server(ServerFrame::Ack {
            client_id: "c-1".into(),
            conv: ConvId(7),
            id: MessageId(42),
            seq: 3,
            at,
        });
        assert_eq!(
            v,
            json!({"type":"ack","client_id":"c-1","conv":7,"id":42,"seq":3,"at":"2026-11-26T10:00:00Z"})
        );

        let v = roundtrip_server(ServerFrame::error(ErrorCode::NotMember, "no", None));
        assert_eq!(
            v,
            json!({"type":"error","code":"not_member","message":"no"})
        );
        let v = roundtrip_server(ServerFrame::Hello { user: alice() });
        assert_eq!(
            v,
            json!({"type":"hello","user":{"id":1,"username":"alice"}})
        );
        roundtrip_server(ServerFrame::Conversation {
            conversation: Conversation {
                id: ConvId(7),
                kind: ConvKind::Group,
                title: "Team".into(),
                members: vec![alice()],
                last_seq: 3,
                last_read_seq: 1,
                unread: 2,
                mentions: 0,
                last_message: Some(msg),
                updated_at: at,
                roles: Vec::new(),
                bots: Vec::new(),
            },
            removed: false,
            by: None,
        });
        let v = roundtrip_server(ServerFrame::Conversation {
            conversation: Conversation {
                id: ConvId(7),
                kind: ConvKind::Group,
                title: "Team".into(),
                members: vec![alice()],
                roles: vec![crate::model::MemberRole {
                    user: UserId(1),
                    role: crate::model::Role::Owner,
                }],
                last_seq: 3,
                last_read_seq: 1,
                unread: 2,
                mentions: 0,
                bots: Vec::new(),
                last_message: None,
                updated_at: at,
            },
            removed: true,
            by: Some(alice()),
        });
        assert_eq!(
            v["conversation"]["roles"],
            json!([{"user":1,"role":"owner"}])
        );
        assert_eq!(v["by"], json!({"id":1,"username":"alice"}));
        for f in [ServerFrame::Pong, ServerFrame::Synced] {
            roundtrip_server(f);
        }
        let v = roundtrip_server(ServerFrame::Event(Event {
            conv: ConvId(7),
            seq: 4,
            id: MessageId(43),
            client_id: "c-2".into(),
            sender: alice(),
            at,
            change: Change::React {
                target: 3,
                emoji: "👍".into(),
                on: false,
            },
        }));
        assert_eq!(v["type"], "event");
        assert_eq!(
            v["change"],
            json!({"kind":"react","target":3,"emoji":"👍","on":false})
        );
        let v = roundtrip_server(ServerFrame::Event(Event {
            conv: ConvId(7),
            seq: 5,
            id: MessageId(44),
            client_id: "sys:7:5".into(),
            sender: alice(),
            at,
            change: Change::Left,
        }));
        assert_eq!(v["change"], json!({"kind":"left"}));
        let v = roundtrip_server(ServerFrame::Event(Event {
            conv: ConvId(7),
            seq: 6,
            id: MessageId(45),
            client_id: "sys:7:6".into(),
            sender: alice(),
            at,
            change: Change::Role {
                user: alice(),
                role: crate::model::Role::Admin,
            },
        }));
        assert_eq!(
            v["change"],
            json!({"kind":"role","user":{"id":1,"username":"alice"},"role":"admin"})
        );
        let v = roundtrip_server(ServerFrame::error(ErrorCode::MessageDeleted, "gone", None));
        assert_eq!(v["code"], "message_deleted");
        let v = roundtrip_server(ServerFrame::Presence {
            user: UserId(1),
            online: true,
        });
        assert_eq!(v, json!({"type":"presence","user":1,"online":true}));
        let v = roundtrip_server(ServerFrame::Contact(ContactChange {
            user: alice(),
            relation: crate::contacts::Relation::Incoming,
        }));
        assert_eq!(
            v,
            json!({"type":"contact","user":{"id":1,"username":"alice"},"relation":"incoming"})
        );
    }
}
