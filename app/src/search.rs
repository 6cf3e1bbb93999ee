//! Message search as both sides see it: the query a person typed, parsed into plain words
//! ([`SearchQuery`]), and the answer ([`SearchPage`] of [`SearchHit`]s) whose matched words are
//! marked as [`SnippetPart`]s — text pieces the UI renders as elements, never HTML.
//!
//! Owns the rules of what a query is and what counts as a match to highlight. It does not know
//! either database's query language: the store turns [`SearchQuery::terms`] into an FTS5 or
//! MySQL boolean expression itself, and because the words here are only letters and digits,
//! nothing a person types can reach either parser as syntax.

use crate::model::{ConvId, MessageId, Seq, UserRef};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// The most words one query may hold (every word must match).
pub const MAX_QUERY_WORDS: usize = 8;
/// The longest word, in characters (longer ones are not words people search for).
pub const MAX_WORD_CHARS: usize = 64;
/// The most results one page returns; the default is [`DEFAULT_SEARCH_PAGE`].
pub const MAX_SEARCH_PAGE: u32 = 50;
pub const DEFAULT_SEARCH_PAGE: u32 = 20;
/// The last word is also matched as the start of longer words (search as you type) once it has
/// this many characters; shorter prefixes would match too much to be useful or fast.
pub const MIN_PREFIX_CHARS: usize = 3;
/// About this many characters of a long message are shown around its first match.
pub const SNIPPET_CHARS: usize = 160;

/// Why a query was refused. Each says what to type instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("type something to search for")]
    Empty,
    #[error("a search is at most {MAX_QUERY_CHARS} characters")]
    TooLong,
    #[error("search for words: letters or digits (quotes, '*' and other symbols are ignored)")]
    NoWords,
    #[error("a search may hold at most {MAX_QUERY_WORDS} words")]
    TooManyWords,
    #[error("a search word is at most {MAX_WORD_CHARS} characters")]
    WordTooLong,
    #[error("search for words of at least {0} characters on this server")]
    WordsTooShort(usize),
}

/// A search as typed, parsed: its words, lower-cased, in order, without repeats. Every word must
/// occur in a message for it to match; the last one may also begin a longer word
/// ([`SearchQuery::prefix`]). Anything that is not a letter or digit separates words, exactly as
/// the full-text indexes split the messages, so quotes, `*`, `-`, `(`, `NEAR` syntax and the like
/// are never operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchQuery {
    terms: Vec<String>,
}

impl SearchQuery {
    pub fn parse(raw: &str) -> Result<SearchQuery, QueryError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(QueryError::Empty);
        }
        if raw.chars().count() > MAX_QUERY_CHARS {
            return Err(QueryError::TooLong);
        }
        let mut terms: Vec<String> = Vec::new();
        for word in words(raw) {
            let word = word.to_lowercase();
            if word.chars().count() > MAX_WORD_CHARS {
                return Err(QueryError::WordTooLong);
            }
            if !terms.contains(&word) {
                terms.push(word);
            }
        }
        if terms.is_empty() {
            return Err(QueryError::NoWords);
        }
        if terms.len() > MAX_QUERY_WORDS {
            return Err(QueryError::TooManyWords);
        }
        Ok(SearchQuery { terms })
    }

    /// The words, lower-cased (letters and digits only).
    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    /// Whether the last word also matches longer words that start with it.
    pub fn prefix(&self) -> bool {
        self.terms
            .last()
            .is_some_and(|t| t.chars().count() >= MIN_PREFIX_CHARS)
    }

    /// The query with the words an index cannot hold left out: MariaDB's InnoDB indexes only
    /// words of `innodb_ft_min_token_size` (3) characters or more, so shorter ones would make
    /// every search miss. `WordsTooShort` when nothing is left.
    pub fn searchable(mut self, min_chars: usize) -> Result<SearchQuery, QueryError> {
        self.terms.retain(|t| t.chars().count() >= min_chars);
        if self.terms.is_empty() {
            Err(QueryError::WordsTooShort(min_chars))
        } else {
            Ok(self)
        }
    }

    /// Whether `word` (as it stands in a message) is one this query matches.
    fn matches(&self, word: &str) -> bool {
        let word = word.to_lowercase();
        let last = self.terms.len() - 1;
        self.terms.iter().enumerate().any(|(i, t)| {
            *t == word || (i == last && self.prefix() && word.starts_with(t.as_str()))
        })
    }

    /// `body` cut to about [`SNIPPET_CHARS`] characters around its first match, in pieces, the
    /// matched words marked. Pieces concatenate to the shown text; a cut is marked by `…`.
    pub fn snippet(&self, body: &str) -> Vec<SnippetPart> {
        let hits: Vec<(usize, usize)> = word_spans(body)
            .filter(|&(s, e)| self.matches(&body[s..e]))
            .collect();
        // The shown window, in bytes on char boundaries.
        let (mut from, mut to) = (0, body.len());
        if body.chars().count() > SNIPPET_CHARS {
            let first = hits.first().map_or(0, |h| h.0);
            let before: usize = body[..first]
                .char_indices()
                .rev()
                .nth(SNIPPET_CHARS / 4)
                .map_or(0, |(i, _)| i);
            from = before;
            to = body[from..]
                .char_indices()
                .nth(SNIPPET_CHARS)
                .map_or(body.len(), |(i, _)| from + i);
        }
        let mut parts = Vec::new();
        let mut push = |text: &str, hit: bool| {
            if !text.is_empty() {
                parts.push(SnippetPart {
                    text: text.to_owned(),
                    hit,
                });
            }
        };
        if from > 0 {
            push("…", false);
        }
        let mut at = from;
        for (s, e) in hits {
            if e <= from || s >= to {
                continue;
            }
            let (s, e) = (s.max(from), e.min(to));
            push(&body[at..s], false);
            push(&body[s..e], true);
            at = e;
        }
        push(&body[at..to], false);
        if to < body.len() {
            push("…", false);
        }
        parts
    }
}

/// The words of `text` as the indexes see them: maximal runs of letters and digits.
fn words(text: &str) -> impl Iterator<Item = &str> {
    word_spans(text).map(move |(s, e)| &text[s..e])
}

/// Byte ranges of the words of `text`.
fn word_spans(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut chars = text.char_indices().peekable();
    std::iter::from_fn(move || {
        while let Some(&(_, c)) = chars.peek() {
            if c.is_alphanumeric() {
                break;
            }
            chars.next();
        }
        let (start, _) = *chars.peek()?;
        let mut end = start;
        while let Some(&(i, c)) = chars.peek() {
            if !c.is_alphanumeric() {
                break;
            }
            end = i + c.len_utf8();
            chars.next();
        }
        Some((start, end))
    })
}

/// A piece of a result's text: matched (`hit`) or not. The UI shows hits as `<mark>` elements
/// around text nodes; the server never sends markup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnippetPart {
    pub text: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hit: bool,
}

/// One message that matched, in its current state (edited text; deleted ones never match).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    pub conv: ConvId,
    pub seq: Seq,
    pub id: MessageId,
    pub sender: UserRef,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<DateTime<Utc>>,
    pub snippet: Vec<SnippetPart>,
}

/// One page of results, newest message first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    /// More (older) matches exist: ask again with `before` = the last hit's `id`.
    pub has_more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(q: &str, body: &str) -> String {
        SearchQuery::parse(q)
            .unwrap()
            .snippet(body)
            .into_iter()
            .map(|p| {
                if p.hit {
                    format!("[{}]", p.text)
                } else {
                    p.text
                }
            })
            .collect()
    }

    #[test]
    fn queries_are_words_whatever_syntax_was_typed() {
        let q = SearchQuery::parse(r#" "Hello   wörld* (NEAR OR -x) hello "#).unwrap();
        assert_eq!(q.terms(), ["hello", "wörld", "near", "or", "x"]);
        assert!(!q.prefix(), "a one-letter last word is not a prefix");
        assert!(SearchQuery::parse("unbalanced \"quote").unwrap().prefix());
        for (bad, err) in [
            ("", QueryError::Empty),
            ("   ", QueryError::Empty),
            ("\"", QueryError::NoWords),
            ("* ( ) \" - +", QueryError::NoWords),
            ("a ".repeat(150).as_str(), QueryError::TooLong),
            ("a b c d e f g h i", QueryError::TooManyWords),
            ("x".repeat(65).as_str(), QueryError::WordTooLong),
        ] {
            assert_eq!(SearchQuery::parse(bad), Err(err), "{bad:?}");
        }
        let q = SearchQuery::parse("go to the moon").unwrap();
        assert_eq!(q.clone().searchable(3).unwrap().terms(), ["the", "moon"]);
        assert_eq!(
            SearchQuery::parse("go to").unwrap().searchable(3),
            Err(QueryError::WordsTooShort(3))
        );
    }

    #[test]
    fn snippets_mark_whole_words_and_the_last_as_a_prefix() {
        assert_eq!(
            marked("cat", "Cat, cats and a cat."),
            "[Cat], [cats] and a [cat]."
        );
        assert_eq!(marked("cat dog", "cats dog dogs"), "cats [dog] [dogs]");
        assert_eq!(marked("<b>", "<b>bold</b> b"), "<[b]>bold</[b]> [b]");
        assert_eq!(marked("ünï", "ÜNÏCODE ünï"), "[ÜNÏCODE] [ünï]");
    }

    #[test]
    fn long_bodies_are_cut_around_the_first_match() {
        let body = format!("{} needle {}", "hay ".repeat(200), "straw ".repeat(200));
        let parts = SearchQuery::parse("needle").unwrap().snippet(&body);
        assert_eq!(parts.first().unwrap().text, "…");
        assert_eq!(parts.last().unwrap().text, "…");
        assert!(parts.iter().any(|p| p.hit && p.text == "needle"));
        let shown: usize = parts.iter().map(|p| p.text.chars().count()).sum();
        assert!(shown <= SNIPPET_CHARS + 2, "{shown}");
        // No match in the text (it matched by diacritics folding): the start is shown.
        let parts = SearchQuery::parse("zzz").unwrap().snippet(&body);
        assert!(parts[0].text.starts_with("hay"));
    }
}
