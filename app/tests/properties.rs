//! Properties of the contract, over generated inputs: every frame either side can send survives
//! JSON and back unchanged; the frame decoder refuses garbage without panicking; and each input
//! parser accepts exactly what its rule says, idempotently. Run with
//! `cargo test -p app --features ssr --test properties` (PROPTEST_CASES raises the case count).

use app::model::{
    parse_member_list, Body, ClientId, ConvId, ConvKind, Conversation, GroupTitle, MemberRole,
    Message, MessageId, ParseError, Password, Role, UserId, UserRef, Username, MAX_BODY_CHARS,
    MAX_TITLE_CHARS,
};
use app::protocol::{ClientFrame, ErrorCode, ServerFrame};
use chrono::{DateTime, Utc};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;

fn id() -> impl Strategy<Value = i64> {
    prop_oneof![0..1_000i64, any::<i64>()]
}

fn text() -> impl Strategy<Value = String> {
    // Quotes, backslashes, control characters, non-BMP characters: whatever JSON must escape.
    prop_oneof![any::<String>(), "[\"\\\\\n\t\u{0}é😀a-z]{0,20}"]
}

fn time() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..4_102_444_800_000).prop_map(|ms| DateTime::from_timestamp_millis(ms).unwrap())
}

fn user() -> impl Strategy<Value = UserRef> {
    (id(), text()).prop_map(|(id, username)| UserRef {
        id: UserId(id),
        username,
    })
}

fn message() -> impl Strategy<Value = Message> {
    (
        (id(), id(), id(), text(), user(), text(), time()),
        (option::of(time()), any::<bool>()),
    )
        .prop_map(
            |((conv, seq, id, client_id, sender, body, at), (edited_at, deleted))| Message {
                conv: ConvId(conv),
                seq,
                id: MessageId(id),
                client_id,
                sender,
                body,
                at,
                reply_to: None,
                edited_at,
                deleted,
                reactions: Vec::new(),
                attachment: None,
            },
        )
}

fn member_role() -> impl Strategy<Value = MemberRole> {
    (
        id(),
        prop_oneof![Just(Role::Owner), Just(Role::Admin), Just(Role::Member)],
    )
        .prop_map(|(user, role)| MemberRole {
            user: UserId(user),
            role,
        })
}

fn conversation() -> impl Strategy<Value = Conversation> {
    (
        (
            id(),
            prop_oneof![Just(ConvKind::Direct), Just(ConvKind::Group)],
            text(),
        ),
        (vec(user(), 0..4), vec(member_role(), 0..3)),
        (id(), id(), id()),
        option::of(message()),
        time(),
    )
        .prop_map(
            |(
                (id, kind, title),
                (members, roles),
                (last_seq, last_read_seq, unread),
                last_message,
                updated_at,
            )| {
                Conversation {
                    id: ConvId(id),
                    kind,
                    title,
                    members,
                    roles,
                    last_seq,
                    last_read_seq,
                    unread,
                    mentions: unread / 2,
                    last_message,
                    updated_at,
                    bots: Vec::new(),
                }
            },
        )
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        Just(ErrorCode::BadFrame),
        Just(ErrorCode::NotMember),
        Just(ErrorCode::TooLarge),
        Just(ErrorCode::Empty),
        Just(ErrorCode::UnknownConversation),
        Just(ErrorCode::RateLimited),
        Just(ErrorCode::Internal),
    ]
}

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        (id(), text(), text(), option::of(id())).prop_map(|(conv, client_id, body, reply_to)| {
            ClientFrame::Send {
                conv: ConvId(conv),
                client_id,
                body,
                reply_to,
                attachment: None,
            }
        }),
        (id(), text(), id(), text()).prop_map(|(conv, client_id, target, body)| {
            ClientFrame::Edit {
                conv: ConvId(conv),
                client_id,
                target,
                body,
            }
        }),
        (id(), text(), id()).prop_map(|(conv, client_id, target)| ClientFrame::Delete {
            conv: ConvId(conv),
            client_id,
            target,
        }),
        (id(), text(), id(), text(), any::<bool>()).prop_map(
            |(conv, client_id, target, emoji, on)| ClientFrame::React {
                conv: ConvId(conv),
                client_id,
                target,
                emoji,
                on,
            }
        ),
        btree_map(id().prop_map(ConvId), id(), 0..8)
            .prop_map(|cursors| ClientFrame::Sync { cursors }),
        (id(), id()).prop_map(|(conv, seq)| ClientFrame::Read {
            conv: ConvId(conv),
            seq
        }),
        id().prop_map(|conv| ClientFrame::Typing { conv: ConvId(conv) }),
        Just(ClientFrame::Ping),
    ]
}

fn server_frame() -> impl Strategy<Value = ServerFrame> {
    prop_oneof![
        user().prop_map(|user| ServerFrame::Hello { user }),
        (text(), id(), id(), id(), time()).prop_map(|(client_id, conv, id, seq, at)| {
            ServerFrame::Ack {
                client_id,
                conv: ConvId(conv),
                id: MessageId(id),
                seq,
                at,
            }
        }),
        message().prop_map(ServerFrame::Message),
        (conversation(), any::<bool>(), option::of(user())).prop_map(
            |(conversation, removed, by)| ServerFrame::Conversation {
                conversation,
                removed,
                by,
            }
        ),
        (id(), id(), id()).prop_map(|(conv, user, seq)| ServerFrame::Read {
            conv: ConvId(conv),
            user: UserId(user),
            seq
        }),
        (id(), user()).prop_map(|(conv, user)| ServerFrame::Typing {
            conv: ConvId(conv),
            user
        }),
        (id(), any::<bool>()).prop_map(|(user, online)| ServerFrame::Presence {
            user: UserId(user),
            online
        }),
        Just(ServerFrame::Synced),
        (error_code(), text(), option::of(text())).prop_map(|(code, message, client_id)| {
            ServerFrame::Error {
                code,
                message,
                client_id,
            }
        }),
        Just(ServerFrame::Pong),
    ]
}

proptest! {
    #[test]
    fn every_client_frame_survives_json(frame in client_frame()) {
        let json = frame.to_json();
        prop_assert_eq!(serde_json::from_str::<ClientFrame>(&json).unwrap(), frame);
    }

    #[test]
    fn every_server_frame_survives_json(frame in server_frame()) {
        let json = frame.to_json();
        prop_assert_eq!(serde_json::from_str::<ServerFrame>(&json).unwrap(), frame);
    }

    #[test]
    fn the_client_frame_decoder_refuses_garbage_without_panicking(
        raw in prop_oneof![
            any::<String>(),
            r#"\{"type":"(send|edit|delete|react|sync|read|typing|ping|x)"(,"[a-z_]{1,9}":(-?[0-9]{1,25}|"[^"]{0,5}"|\{"[0-9a-z]{0,3}":-?[0-9]{0,20}\}|null|\[\]))*\}"#,
        ]
    ) {
        // Either a frame that encodes back to something that decodes the same, or an error.
        if let Ok(frame) = serde_json::from_str::<ClientFrame>(&raw) {
            prop_assert_eq!(serde_json::from_str::<ClientFrame>(&frame.to_json()).unwrap(), frame);
        }
    }

    #[test]
    fn usernames_accept_exactly_their_rule(raw in prop_oneof![any::<String>(), "[ A-Za-z0-9_.!é-]{0,40}"]) {
        let lowered = raw.trim().to_ascii_lowercase();
        let rule = (3..=32).contains(&lowered.len())
            && lowered.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
        match Username::parse(&raw) {
            Ok(name) => {
                prop_assert!(rule);
                prop_assert_eq!(name.as_str(), lowered.as_str());
                prop_assert_eq!(Username::parse(name.as_str()), Ok(name.clone()));
            }
            Err(e) => {
                prop_assert!(!rule);
                prop_assert_eq!(e, ParseError::Username);
            }
        }
    }

    #[test]
    fn bodies_keep_what_was_typed_within_the_limit(raw in prop_oneof![
        any::<String>(),
        "[ \n\té]{0,3}",
        (MAX_BODY_CHARS - 2..MAX_BODY_CHARS + 3).prop_map(|n| "é".repeat(n)),
    ]) {
        let n = raw.chars().count();
        match Body::parse(raw.clone()) {
            Ok(body) => {
                prop_assert!(!raw.trim().is_empty() && n <= MAX_BODY_CHARS);
                prop_assert_eq!(body.into_inner(), raw);
            }
            Err(ParseError::EmptyBody) => prop_assert!(raw.trim().is_empty()),
            Err(ParseError::BodyTooLarge) => prop_assert!(n > MAX_BODY_CHARS),
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn client_ids_titles_and_passwords_accept_exactly_their_rules(raw in prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9 -]{0,70}",
        "[ é]{0,2}[a-z]{0,85}",
    ]) {
        let client_rule = (1..=64).contains(&raw.len())
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        prop_assert_eq!(ClientId::parse(raw.clone()).is_ok(), client_rule);
        let trimmed = raw.trim();
        let title_rule = !trimmed.is_empty() && trimmed.chars().count() <= MAX_TITLE_CHARS;
        match GroupTitle::parse(&raw) {
            Ok(title) => {
                prop_assert!(title_rule);
                prop_assert_eq!(title.as_str(), trimmed);
            }
            Err(_) => prop_assert!(!title_rule),
        }
        prop_assert_eq!(Password::parse(&raw).is_ok(), (8..=1024).contains(&raw.chars().count()));
    }

    #[test]
    fn member_lists_are_sorted_unique_valid_names(raw in "[a-zA-Z0-9_ ,!]{0,60}") {
        match parse_member_list(&raw) {
            Ok(names) => {
                let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
                let mut expected = names.clone();
                expected.sort();
                expected.dedup();
                prop_assert_eq!(&names, &expected);
                for name in names {
                    prop_assert!(Username::parse(name).is_ok());
                }
            }
            Err(e) => {
                prop_assert_eq!(e, ParseError::Username);
                prop_assert!(raw
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .any(|part| !part.is_empty() && Username::parse(part).is_err()));
            }
        }
    }
}
