-- Full-text search of messages (issue #8): an InnoDB FULLTEXT index on the message text.
--
-- InnoDB keeps it current itself, at the commit of the transaction that inserts, edits or
-- deletes a message (a deletion empties `body`, so its words leave the index). Searches keep
-- only live messages (kind 'message', not deleted); event rows (emoji, titles) are indexed too
-- but never returned.
--
-- `body` was utf8mb4_bin, and a FULLTEXT index on a binary collation is case-sensitive: it
-- becomes utf8mb4_unicode_ci ("Hello" finds "hello"). Nothing compares bodies otherwise.
--
-- The default stopword list ("the", "about", "will", …) is attached to an index when it is
-- created, from this session's setting: turned off, so every word of 3+ characters is found
-- (shorter words are below innodb_ft_min_token_size and left out of queries).
SET SESSION innodb_ft_enable_stopword = OFF;

ALTER TABLE messages MODIFY body VARCHAR(4000) NOT NULL COLLATE utf8mb4_unicode_ci;

CREATE FULLTEXT INDEX messages_body_fts ON messages (body);

-- Mentions (issue #8): a row per member a message names as `@username` when it is stored,
-- written in the append's transaction. The "mentions you" badge counts mine after my read mark
-- (a primary-key range); a deleted message's mentions are deleted with its text.
CREATE TABLE mentions (
    user_id BIGINT NOT NULL,
    conv_id BIGINT NOT NULL,
    seq     BIGINT NOT NULL,
    PRIMARY KEY (user_id, conv_id, seq),
    CONSTRAINT mentions_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT mentions_message FOREIGN KEY (conv_id, seq) REFERENCES messages (conv_id, seq) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
