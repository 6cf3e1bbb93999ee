//! @mentions: which people a message body names as `@username`, read the same way by the server
//! (which records a mention for each mentioned member when the message is stored) and by the
//! browser (which highlights them, counts them for the "mentions you" badge, and offers members'
//! names as you type `@`).
//!
//! Owns only the rule of what a mention looks like. Who is a member is for the caller to check:
//! a name that is not a member of the conversation mentions nobody.

/// The most people one message mentions (further names are plain text).
pub const MAX_MENTIONS: usize = 20;

/// A character of a username (lower-cased): `a-z 0-9 _ . -`.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_.-".contains(c)
}

/// The mentions in `body`: byte ranges of `@name` (the `@` included) and the name lower-cased.
/// A mention starts at `@` at the start of the text or after a character that cannot be part of a
/// name or address (so `bob@example.com` mentions nobody), and its name is 3–32 username
/// characters; a trailing `.`, `-` or `_` belongs to the sentence ("thanks @bob.").
pub fn spans(body: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut prev: Option<char> = None;
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let starts = c == '@' && prev.is_none_or(|p| !name_char(p) && p != '@');
        prev = Some(c);
        if !starts {
            continue;
        }
        let rest = &body[i + 1..];
        let len = rest.find(|c: char| !name_char(c)).unwrap_or(rest.len());
        let name = rest[..len].trim_end_matches(['.', '-', '_']);
        if (3..=32).contains(&name.len()) {
            let end = i + 1 + name.len();
            out.push((i, end, name.to_ascii_lowercase()));
            while chars.peek().is_some_and(|&(j, _)| j < end) {
                prev = chars.next().map(|(_, c)| c);
            }
        }
    }
    out
}

/// The distinct names `body` mentions, in order, at most [`MAX_MENTIONS`].
pub fn mentioned(body: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    if !body.contains('@') {
        return names;
    }
    for (_, _, name) in spans(body) {
        if names.len() == MAX_MENTIONS {
            break;
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Whether `body` mentions `username` (lower-case, as usernames are stored).
pub fn mentions(body: &str, username: &str) -> bool {
    mentioned(body).iter().any(|n| n == username)
}

/// The `@prefix` being typed just before `caret` (a byte offset in `text`): the byte where its
/// `@` is and the prefix typed so far (possibly empty), for the composer's suggestions.
pub fn typing_at(text: &str, caret: usize) -> Option<(usize, &str)> {
    let before = text.get(..caret)?;
    let at = before.rfind('@')?;
    let prefix = &before[at + 1..];
    let starts = before[..at]
        .chars()
        .next_back()
        .is_none_or(|p| !name_char(p) && p != '@');
    (starts && prefix.len() <= 32 && prefix.chars().all(name_char)).then_some((at, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_at_names_at_word_starts() {
        assert_eq!(
            mentioned("@Alice and @bob_1, thanks @carol. cc @alice"),
            ["alice", "bob_1", "carol"]
        );
        assert!(mentioned("mail bob@example.com or @@dave or @ab").is_empty());
        assert_eq!(mentioned("(@eve) \"@frank\""), ["eve", "frank"]);
        assert!(mentions("hi @Bob!", "bob"));
        assert!(!mentions("hi @bobby", "bob"));
        let body = "é @zoë? @zoe";
        let found = spans(body);
        assert_eq!(found.len(), 1);
        assert_eq!(&body[found[0].0..found[0].1], "@zoe");
        let many: String = (0..30).map(|i| format!("@user{i} ")).collect();
        assert_eq!(mentioned(&many).len(), MAX_MENTIONS);
    }

    #[test]
    fn the_prefix_being_typed_is_found_before_the_caret() {
        assert_eq!(typing_at("hi @al", 6), Some((3, "al")));
        assert_eq!(typing_at("hi @", 4), Some((3, "")));
        assert_eq!(typing_at("@bob", 4), Some((0, "bob")));
        assert_eq!(typing_at("hi @al there", 12), None);
        assert_eq!(typing_at("me@ex", 5), None);
        assert_eq!(typing_at("hi @al", 99), None);
    }
}
