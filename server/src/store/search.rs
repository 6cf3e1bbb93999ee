//! Full-text search of messages, on each database's own index: SQLite FTS5 (`messages_fts`,
//! migration 0005) and InnoDB FULLTEXT on `messages.body` on MySQL/MariaDB.
//!
//! Owns the two query languages: a parsed [`SearchQuery`] (plain lower-case words, see
//! `app::search`) becomes an FTS5 `MATCH` expression or a MySQL boolean-mode `AGAINST` string
//! here, and nowhere else. Keeping the index current is not done here: on SQLite the writer
//! thread adds new messages in bulk (`sqlite_writer::index_pending`, migration 0009), and a
//! search asks it to catch up first, so it finds every acknowledged message; the triggers of
//! 0005/0009 apply edits and deletions of indexed messages inside their own statements. On MySQL
//! InnoDB maintains the FULLTEXT index at the transaction's commit.
//!
//! A search starts from the index (never a scan of `messages`), newest first by message id, and
//! keeps a match only if the searcher is a member of its conversation now and it is a live
//! message (kind `message`, not deleted). Pages are keyset on the id: `before` the last id seen.

use super::{time, Dialect, Result, Store};
use app::model::{ConvId, MessageId, UserId, UserRef};
use app::search::{SearchHit, SearchPage, SearchQuery};

/// The shortest word each index holds: FTS5's unicode61 keeps every word; InnoDB drops words
/// shorter than `innodb_ft_min_token_size` (3 by default, a server start-up setting).
const MYSQL_MIN_WORD: usize = 3;

/// A matched message as the query returns it.
#[derive(Debug, sqlx::FromRow)]
struct HitRow {
    conv_id: i64,
    seq: i64,
    id: i64,
    body: String,
    created_at: i64,
    edited_at: Option<i64>,
    sender_id: i64,
    sender_name: String,
}

/// What is selected per hit, `m` being the message and `u` its sender.
const HIT_COLUMNS: &str = "m.conv_id, m.seq, m.id, m.body, m.created_at, m.edited_at, \
     u.id AS sender_id, u.username AS sender_name";

/// FTS5: every word as a quoted string (so `AND`, `NEAR` or `-` are words, not operators), the
/// last one with `*` when it is a prefix; juxtaposed strings must all match.
fn fts5_expression(query: &SearchQuery) -> String {
    // Terms are letters and digits only, so there is no `"` to double.
    expression(query, |t, star| format!("\"{t}\"{star}"))
}

/// MySQL boolean mode: `+word` (required) each, the last `+word*` when it is a prefix.
fn mysql_expression(query: &SearchQuery) -> String {
    expression(query, |t, star| format!("+{t}{star}"))
}

/// The query's words, each written by `word` (with `*` or nothing: the star goes on a prefix,
/// the last word only), joined by spaces.
fn expression(query: &SearchQuery, word: impl Fn(&str, &str) -> String) -> String {
    let last = query.terms().len().saturating_sub(1);
    query
        .terms()
        .iter()
        .enumerate()
        .map(|(i, t)| word(t, if i == last && query.prefix() { "*" } else { "" }))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Store {
    /// The shortest word this database's index holds; shorter words are left out of queries
    /// ([`SearchQuery::searchable`]).
    pub fn min_search_word(&self) -> usize {
        match self.dialect {
            Dialect::Sqlite => 1,
            Dialect::MySql => MYSQL_MIN_WORD,
        }
    }

    /// Up to `limit` live messages matching `query` in `viewer`'s conversations (or in `conv`),
    /// newest first, with ids below `before`. The caller has checked `viewer`'s membership of
    /// `conv`; the query checks membership of every hit's conversation anyway.
    pub async fn search(
        &self,
        viewer: UserId,
        query: &SearchQuery,
        conv: Option<ConvId>,
        before: Option<MessageId>,
        limit: u32,
    ) -> Result<SearchPage> {
        if let Some(writer) = &self.writer {
            // The writer indexes in bulk: first what was appended since its last update.
            writer.index().await?;
        }
        let in_conv = if conv.is_some() {
            " AND m.conv_id = ?"
        } else {
            ""
        };
        let (sql, expression) = match self.dialect {
            // The FTS table drives the join (CROSS JOIN keeps SQLite from reordering it), in
            // descending rowid = message id, which FTS5 delivers in order without sorting.
            Dialect::Sqlite => (
                format!(
                    "SELECT {HIT_COLUMNS} FROM messages_fts \
                     CROSS JOIN messages m ON m.id = messages_fts.rowid \
                     JOIN members mb ON mb.conv_id = m.conv_id AND mb.user_id = ? \
                     JOIN users u ON u.id = m.sender_id \
                     WHERE messages_fts MATCH ? AND messages_fts.rowid < ?{in_conv} \
                     AND m.kind = 'message' AND m.deleted = 0 \
                     ORDER BY messages_fts.rowid DESC LIMIT ?"
                ),
                fts5_expression(query),
            ),
            Dialect::MySql => (
                format!(
                    "SELECT {HIT_COLUMNS} FROM messages m \
                     JOIN members mb ON mb.conv_id = m.conv_id AND mb.user_id = ? \
                     JOIN users u ON u.id = m.sender_id \
                     WHERE MATCH (m.body) AGAINST (? IN BOOLEAN MODE) AND m.id < ?{in_conv} \
                     AND m.kind = 'message' AND m.deleted = 0 \
                     ORDER BY m.id DESC LIMIT ?"
                ),
                mysql_expression(query),
            ),
        };
        let mut q = sqlx::query_as::<_, HitRow>(&sql)
            .bind(viewer.0)
            .bind(expression)
            .bind(before.map_or(i64::MAX, |id| id.0));
        if let Some(conv) = conv {
            q = q.bind(conv.0);
        }
        // One more than asked tells whether another page exists.
        let mut rows = q.bind(i64::from(limit) + 1).fetch_all(&self.pool).await?;
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let hits = rows
            .into_iter()
            .map(|r| SearchHit {
                conv: ConvId(r.conv_id),
                seq: r.seq,
                id: MessageId(r.id),
                sender: UserRef {
                    id: UserId(r.sender_id),
                    username: r.sender_name,
                },
                at: time(r.created_at),
                edited_at: r.edited_at.map(time),
                snippet: query.snippet(&r.body),
            })
            .collect();
        Ok(SearchPage { hits, has_more })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_quote_every_word_and_star_only_a_long_last_one() {
        let q = SearchQuery::parse(r#"near" AND (caf"#).unwrap();
        assert_eq!(fts5_expression(&q), r#""near" "and" "caf"*"#);
        assert_eq!(mysql_expression(&q), "+near +and +caf*");
        let q = SearchQuery::parse("hello go").unwrap();
        assert_eq!(fts5_expression(&q), r#""hello" "go""#);
        assert_eq!(mysql_expression(&q), "+hello +go");
    }
}
