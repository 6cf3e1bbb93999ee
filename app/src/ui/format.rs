//! How messages and times are put into words and rows, as plain functions the views call:
//!
//! - [`rows`]: the open conversation laid out — a separator per day, the "New messages" line, and
//!   each message marked as the head of a *run* (consecutive messages of one sender within a few
//!   minutes, shown under one name, avatar and time) or not.
//! - [`day_label`], [`list_time`], [`full_time`], [`clock`]: "Today", "Yesterday", "Mon 23 Nov";
//!   "now", "5 min", "Mon"; the exact date and time for a tooltip.
//! - [`colour`]: a stable colour per user for avatars and names.
//! - [`linkify`]: a message body cut into text and http(s) links. The pieces are rendered as text
//!   nodes and `<a>` elements, so a body is never interpreted as HTML.
//!
//! Times are shown in the reader's time zone: [`local`] asks the browser for its offset (UTC while
//! rendering on the server, where no message is rendered anyway).

use crate::model::{Change, Event, Message, Role, Seq, UserId};
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc};

/// Messages of one sender closer together than this form one run.
const RUN_GAP_SECS: i64 = 5 * 60;
/// How many user colours the stylesheet defines (`.u0` … `.u7`).
pub const COLOURS: u64 = 8;

/// One row of the message log.
#[derive(Clone, Debug, PartialEq)]
// A row is built once per render of the shown window and moved into the view; boxing the
// message would only add an allocation per row.
#[allow(clippy::large_enum_variant)]
pub enum Row {
    /// The first message of a new day follows.
    Day { date: NaiveDate, label: String },
    /// The first unread message follows.
    NewMessages,
    /// A message; `head` when it starts a run (shows the sender's name, avatar and time).
    Message { m: Message, head: bool },
    /// A group event: a line of its own ("alice added carol").
    System { e: Event },
}

impl Row {
    /// A key for keyed rendering that changes whenever the row would render differently.
    pub fn key(&self) -> String {
        match self {
            Row::Day { date, label } => format!("d{date}{label}"),
            Row::NewMessages => "new".into(),
            // The current state is part of the key: an edit, a deletion or a reaction renders
            // the row again.
            Row::Message { m, head } => format!(
                "m{}{}e{}d{}r{}q{}",
                m.seq,
                if *head { "h" } else { "" },
                m.edited_at.map_or(0, |t| t.timestamp_millis()),
                m.deleted,
                m.reactions
                    .iter()
                    .map(|r| format!("{}{}{}", r.emoji, r.count, r.mine))
                    .collect::<String>(),
                m.reply_to
                    .as_ref()
                    .map_or(String::new(), |q| format!("{}{}", q.excerpt, q.deleted)),
            ),
            Row::System { e } => format!("s{}", e.seq),
        }
    }
}

/// The line a group event shows in the timeline, e.g. "alice added carol". `me` reads as "You".
pub fn system_line(e: &Event, me: UserId) -> String {
    let name = |u: &crate::model::UserRef| {
        if u.id == me {
            "you".to_owned()
        } else {
            u.username.clone()
        }
    };
    let who = if e.sender.id == me {
        "You".to_owned()
    } else {
        e.sender.username.clone()
    };
    match &e.change {
        Change::Created { title } => format!("{who} created the group “{title}”"),
        Change::Added { user } => format!("{who} added {}", name(user)),
        Change::Removed { user } => format!("{who} removed {}", name(user)),
        Change::Left => format!("{who} left the group"),
        Change::Renamed { title } => format!("{who} renamed the group to “{title}”"),
        Change::Owner { user } if user.id == me => "You are the group's owner now".to_owned(),
        Change::Owner { user } => format!("{} is the group's owner now", user.username),
        Change::Role {
            user,
            role: Role::Admin,
        } => format!("{who} made {} an admin", name(user)),
        Change::Role { user, .. } => format!("{who} made {} a member again", name(user)),
        other => format!("{who}: {}", other.kind()),
    }
}

/// Lays out messages and group events (each oldest first) in seq order, with day separators, the
/// "New messages" line before the first message at or after `divider`, and runs (a group event
/// ends a run).
pub fn rows<'a>(
    messages: impl IntoIterator<Item = &'a Message>,
    events: impl IntoIterator<Item = &'a Event>,
    divider: Option<Seq>,
    today: NaiveDate,
    local: impl Fn(&DateTime<Utc>) -> DateTime<FixedOffset>,
) -> Vec<Row> {
    let mut out = Vec::new();
    let mut divider = divider;
    let mut prev: Option<(&Message, NaiveDate)> = None;
    let mut last_day: Option<NaiveDate> = None;
    let mut events = events.into_iter().peekable();
    let mut messages = messages.into_iter().peekable();
    loop {
        let next_is_event = match (messages.peek(), events.peek()) {
            (Some(m), Some(e)) => e.seq < m.seq,
            (None, Some(_)) => true,
            (Some(_), None) => false,
            (None, None) => break,
        };
        let at = if next_is_event {
            events.peek().map(|e| e.at)
        } else {
            messages.peek().map(|m| m.at)
        }
        .expect("peeked");
        let date = local(&at).date_naive();
        let new_day = last_day != Some(date);
        if new_day {
            out.push(Row::Day {
                date,
                label: day_label(date, today),
            });
            last_day = Some(date);
        }
        if next_is_event {
            let e = events.next().expect("peeked");
            out.push(Row::System { e: e.clone() });
            prev = None;
            continue;
        }
        let m = messages.next().expect("peeked");
        let line_here = divider.is_some_and(|d| m.seq >= d);
        if line_here {
            out.push(Row::NewMessages);
            divider = None;
        }
        let continues_run = prev.is_some_and(|(p, _)| {
            p.sender.id == m.sender.id && (m.at - p.at).num_seconds() < RUN_GAP_SECS
        });
        out.push(Row::Message {
            m: m.clone(),
            head: new_day || line_here || !continues_run,
        });
        prev = Some((m, date));
    }
    out
}

/// "Today", "Yesterday", "Mon 23 Nov", or "Mon 23 Nov 2025" when not this year.
pub fn day_label(date: NaiveDate, today: NaiveDate) -> String {
    if date == today {
        "Today".into()
    } else if today.pred_opt() == Some(date) {
        "Yesterday".into()
    } else if date.year() == today.year() {
        date.format("%a %-d %b").to_string()
    } else {
        date.format("%a %-d %b %Y").to_string()
    }
}

/// A conversation's last activity, for the list: "now", "5 min", "14:05" (today), "Yesterday",
/// a weekday within the week, else a date.
pub fn list_time(at: DateTime<FixedOffset>, now: DateTime<FixedOffset>) -> String {
    let ago = (now - at).num_seconds();
    let (day, today) = (at.date_naive(), now.date_naive());
    if ago < 60 {
        "now".into()
    } else if ago < 60 * 60 {
        format!("{} min", ago / 60)
    } else if day == today {
        at.format("%H:%M").to_string()
    } else if today.pred_opt() == Some(day) {
        "Yesterday".into()
    } else if (today - day).num_days() < 7 {
        at.format("%a").to_string()
    } else if day.year() == today.year() {
        at.format("%-d %b").to_string()
    } else {
        at.format("%-d %b %Y").to_string()
    }
}

/// "Mon 23 Nov 2026, 14:05": the exact moment, for a tooltip.
pub fn full_time(at: DateTime<FixedOffset>) -> String {
    at.format("%a %-d %b %Y, %H:%M").to_string()
}

/// "14:05".
pub fn clock(at: DateTime<FixedOffset>) -> String {
    at.format("%H:%M").to_string()
}

/// The reader's local time for `at`.
pub fn local(at: &DateTime<Utc>) -> DateTime<FixedOffset> {
    #[cfg(feature = "hydrate")]
    let offset_secs = {
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(
            at.timestamp_millis() as f64
        ));
        // Minutes *behind* UTC, so negated.
        -(date.get_timezone_offset() * 60.0) as i32
    };
    #[cfg(not(feature = "hydrate"))]
    let offset_secs = 0;
    let offset = FixedOffset::east_opt(offset_secs).unwrap_or(FixedOffset::east_opt(0).unwrap());
    at.with_timezone(&offset)
}

/// The reader's current local time.
pub fn now_local() -> DateTime<FixedOffset> {
    #[cfg(feature = "hydrate")]
    let now = DateTime::from_timestamp_millis(js_sys::Date::now() as i64);
    #[cfg(not(feature = "hydrate"))]
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| DateTime::from_timestamp(d.as_secs() as i64, 0));
    local(&now.unwrap_or_default())
}

/// The user's colour class, the same on every page and for every reader.
pub fn colour(user: UserId) -> String {
    // A multiplicative hash spreads consecutive ids over the palette.
    let mixed = (user.0 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    format!("u{}", mixed % COLOURS)
}

/// A piece of a message body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    /// An `http://` or `https://` address, shown as a link.
    Link(String),
}

/// Cuts a body into text and links. A link runs from `http://` or `https://` to the next space
/// (or `<`, `>`, `"`, which an address cannot hold), minus trailing punctuation (a full stop or closing bracket after an address is the sentence's,
/// unless the address opened that bracket itself).
pub fn linkify(body: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = body;
    while let Some(start) = find_scheme(rest) {
        let (before, from) = rest.split_at(start);
        text.push_str(before);
        let end = from
            .find(|c: char| c.is_whitespace() || "<>\"".contains(c))
            .unwrap_or(from.len());
        let url = trim_trailing(&from[..end]);
        let scheme_len = if url.starts_with("https://") { 8 } else { 7 };
        if url.len() > scheme_len {
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Link(url.to_owned()));
            rest = &from[url.len()..];
        } else {
            // A bare "https://" is just text.
            text.push_str(&from[..scheme_len]);
            rest = &from[scheme_len..];
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    pieces
}

/// Where the next `http://` or `https://` starts, at the start of a word (so "xhttps://" is not
/// a link), case-insensitively.
fn find_scheme(s: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("http").map(|i| i + from) {
        let word_start = s[..i]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || "([{<\"'".contains(c));
        if word_start && (lower[i..].starts_with("http://") || lower[i..].starts_with("https://")) {
            return Some(i);
        }
        from = i + 4;
    }
    None
}

fn trim_trailing(url: &str) -> &str {
    let mut url = url;
    loop {
        let Some(last) = url.chars().next_back() else {
            return url;
        };
        let balanced = |open: char| url.matches(open).count() >= url.matches(last).count();
        let drop = match last {
            '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '"' | '>' => true,
            ')' => !balanced('('),
            ']' => !balanced('['),
            '}' => !balanced('{'),
            _ => false,
        };
        if !drop {
            return url;
        }
        url = &url[..url.len() - last.len_utf8()];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConvId, MessageId, UserRef};
    use chrono::TimeZone;

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    const NONE: &[Event] = &[];

    fn msg(seq: Seq, from: i64, at: DateTime<Utc>) -> Message {
        Message {
            conv: ConvId(1),
            seq,
            id: MessageId(seq),
            client_id: format!("c{seq}"),
            sender: UserRef {
                id: UserId(from),
                username: format!("user{from}"),
            },
            body: "hi".into(),
            at,
            reply_to: None,
            edited_at: None,
            deleted: false,
            reactions: Vec::new(),
            attachment: None,
        }
    }

    fn shape(rows: &[Row]) -> Vec<String> {
        rows.iter()
            .map(|r| match r {
                Row::Day { label, .. } => format!("[{label}]"),
                Row::NewMessages => "--new--".into(),
                Row::Message { m, head } => format!("{}{}", m.seq, if *head { "*" } else { "" }),
                Row::System { e } => format!("s{}", e.seq),
            })
            .collect()
    }

    #[test]
    fn group_events_interleave_by_seq_and_end_a_run() {
        let today = date(2026, 11, 26);
        let messages = [
            msg(1, 1, at(2026, 11, 26, 9, 0)),
            msg(3, 1, at(2026, 11, 26, 9, 1)),
        ];
        let alice = UserRef {
            id: UserId(1),
            username: "alice".into(),
        };
        let added = Event {
            conv: ConvId(1),
            seq: 2,
            id: MessageId(2),
            client_id: "sys:1:2".into(),
            sender: alice.clone(),
            at: at(2026, 11, 26, 9, 0),
            change: Change::Added {
                user: UserRef {
                    id: UserId(3),
                    username: "carol".into(),
                },
            },
        };
        let rows = rows(&messages, [&added], None, today, |t| {
            t.with_timezone(&utc())
        });
        assert_eq!(shape(&rows), ["[Today]", "1*", "s2", "3*"]);
        assert_eq!(system_line(&added, UserId(2)), "alice added carol");
        assert_eq!(system_line(&added, UserId(3)), "alice added you");
        let renamed = Event {
            change: Change::Renamed {
                title: "Trip".into(),
            },
            ..added
        };
        assert_eq!(
            system_line(&renamed, UserId(1)),
            "You renamed the group to “Trip”"
        );
        let owner = Event {
            change: Change::Owner {
                user: UserRef {
                    id: UserId(3),
                    username: "carol".into(),
                },
            },
            ..renamed
        };
        assert_eq!(
            system_line(&owner, UserId(1)),
            "carol is the group's owner now"
        );
        assert_eq!(
            system_line(&owner, UserId(3)),
            "You are the group's owner now"
        );
        let promoted = Event {
            change: Change::Role {
                user: UserRef {
                    id: UserId(3),
                    username: "carol".into(),
                },
                role: Role::Admin,
            },
            ..owner.clone()
        };
        assert_eq!(
            system_line(&promoted, UserId(2)),
            "alice made carol an admin"
        );
        assert_eq!(system_line(&promoted, UserId(3)), "alice made you an admin");
        let demoted = Event {
            change: Change::Role {
                user: UserRef {
                    id: UserId(3),
                    username: "carol".into(),
                },
                role: Role::Member,
            },
            ..owner
        };
        assert_eq!(
            system_line(&demoted, UserId(1)),
            "You made carol a member again"
        );
    }

    #[test]
    fn days_get_separators_and_runs_group_one_sender_within_minutes() {
        let today = date(2026, 11, 26);
        let messages = [
            msg(1, 1, at(2026, 11, 20, 9, 0)),
            msg(2, 1, at(2026, 11, 25, 22, 0)),
            msg(3, 1, at(2026, 11, 25, 22, 3)),
            msg(4, 2, at(2026, 11, 25, 22, 4)),
            msg(5, 2, at(2026, 11, 25, 22, 30)),
            // Same sender, a minute later, but a new day.
            msg(6, 2, at(2026, 11, 26, 0, 0)),
            msg(7, 2, at(2026, 11, 26, 0, 1)),
        ];
        let rows = rows(&messages, NONE, None, today, |t| t.with_timezone(&utc()));
        assert_eq!(
            shape(&rows),
            [
                "[Fri 20 Nov]",
                "1*",
                "[Yesterday]",
                "2*",
                "3",
                "4*",
                "5*",
                "[Today]",
                "6*",
                "7"
            ]
        );
    }

    #[test]
    fn the_new_messages_line_starts_a_run_and_is_placed_once() {
        let today = date(2026, 11, 26);
        let messages: Vec<_> = (1..=4)
            .map(|s| msg(s, 2, at(2026, 11, 26, 10, s as u32)))
            .collect();
        let rows = rows(&messages, NONE, Some(3), today, |t| t.with_timezone(&utc()));
        assert_eq!(shape(&rows), ["[Today]", "1*", "2", "--new--", "3*", "4"]);
        // A line before the window's first message goes before it.
        let rows = super::rows(&messages[2..], NONE, Some(1), today, |t| {
            t.with_timezone(&utc())
        });
        assert_eq!(shape(&rows), ["[Today]", "--new--", "3*", "4"]);
    }

    #[test]
    fn days_are_read_in_the_readers_time_zone() {
        // 23:30 UTC is already tomorrow in Tokyo.
        let tokyo = FixedOffset::east_opt(9 * 3600).unwrap();
        let messages = [msg(1, 1, at(2026, 11, 25, 23, 30))];
        let rows = rows(&messages, NONE, None, date(2026, 11, 26), |t| {
            t.with_timezone(&tokyo)
        });
        assert_eq!(shape(&rows), ["[Today]", "1*"]);
    }

    #[test]
    fn day_labels_and_list_times() {
        let today = date(2026, 11, 26);
        assert_eq!(day_label(today, today), "Today");
        assert_eq!(day_label(date(2026, 11, 25), today), "Yesterday");
        assert_eq!(day_label(date(2026, 11, 23), today), "Mon 23 Nov");
        assert_eq!(day_label(date(2025, 11, 23), today), "Sun 23 Nov 2025");
        assert_eq!(day_label(date(2026, 12, 31), date(2027, 1, 1)), "Yesterday");

        let now = at(2026, 11, 26, 15, 0).with_timezone(&utc());
        let ago = |t: DateTime<Utc>| list_time(t.with_timezone(&utc()), now);
        assert_eq!(
            ago(at(2026, 11, 26, 14, 59) + chrono::Duration::seconds(30)),
            "now"
        );
        assert_eq!(ago(at(2026, 11, 26, 14, 55)), "5 min");
        assert_eq!(ago(at(2026, 11, 26, 9, 5)), "09:05");
        assert_eq!(ago(at(2026, 11, 25, 23, 0)), "Yesterday");
        assert_eq!(ago(at(2026, 11, 23, 8, 0)), "Mon");
        assert_eq!(ago(at(2026, 11, 2, 8, 0)), "2 Nov");
        assert_eq!(ago(at(2025, 11, 2, 8, 0)), "2 Nov 2025");
        assert_eq!(
            full_time(at(2026, 11, 23, 8, 7).with_timezone(&utc())),
            "Mon 23 Nov 2026, 08:07"
        );
    }

    #[test]
    fn colours_are_stable_and_spread() {
        assert_eq!(colour(UserId(42)), colour(UserId(42)));
        let used: std::collections::HashSet<_> = (1..=16).map(|i| colour(UserId(i))).collect();
        assert!(used.len() >= 6, "{used:?}");
    }

    #[test]
    fn links_are_cut_out_of_text_and_nothing_else() {
        use Piece::{Link, Text};
        assert_eq!(linkify("no links here"), [Text("no links here".into())]);
        assert_eq!(
            linkify("see https://example.org/a?b=1&c=2. Thanks"),
            [
                Text("see ".into()),
                Link("https://example.org/a?b=1&c=2".into()),
                Text(". Thanks".into())
            ]
        );
        assert_eq!(
            linkify("(http://x.org/wiki/Rust_(language)) and HTTPS://Y.org,"),
            [
                Text("(".into()),
                Link("http://x.org/wiki/Rust_(language)".into()),
                Text(") and ".into()),
                Link("HTTPS://Y.org".into()),
                Text(",".into())
            ]
        );
        // Other schemes, a bare scheme and a scheme inside a word stay text.
        for text in [
            "javascript:alert(1)",
            "ftp://x.org",
            "https:// nothing",
            "xhttps://x.org",
            "<a href=\"https://x.org\">",
        ] {
            let pieces = linkify(text);
            let links: Vec<_> = pieces.iter().filter(|p| matches!(p, Link(_))).collect();
            let rebuilt: String = pieces
                .iter()
                .map(|p| match p {
                    Text(t) | Link(t) => t.as_str(),
                })
                .collect();
            assert_eq!(rebuilt, text, "nothing is lost or added");
            if text.starts_with("<a") {
                assert_eq!(links, [&Link("https://x.org".into())]);
            } else {
                assert!(links.is_empty(), "{text}: {links:?}");
            }
        }
    }
}
