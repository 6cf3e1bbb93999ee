-- Full-text search of messages (issue #8): an FTS5 index of every live message's current text.
--
-- Contentless (`content=''`): the index keeps only the words, not a second copy of the text, so a
-- deleted message's text is nowhere but gone; `contentless_delete=1` lets a row be removed by
-- its rowid alone. The rowid is the message's `id`. Results are read from `messages`, joined on
-- the id, and only live messages (kind 'message', not deleted) are indexed at all.
--
-- The triggers keep it current inside the very statement that changes a message, so inside its
-- transaction, whichever connection writes (the append writer thread or sqlx): a new message is
-- added, an edit replaces the words, a deletion (body emptied, deleted = 1) removes them.
-- unicode61 with diacritics folded: "cafe" finds "café", case never matters.
CREATE VIRTUAL TABLE messages_fts USING fts5(
    body,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

INSERT INTO messages_fts (rowid, body)
    SELECT id, body FROM messages WHERE kind = 'message' AND deleted = 0;

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
WHEN new.kind = 'message' AND new.deleted = 0
BEGIN
    INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF body, deleted ON messages
WHEN old.kind = 'message' AND old.deleted = 0
BEGIN
    DELETE FROM messages_fts WHERE rowid = old.id;
    INSERT INTO messages_fts (rowid, body) SELECT new.id, new.body WHERE new.deleted = 0;
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.kind = 'message' AND old.deleted = 0
BEGIN
    DELETE FROM messages_fts WHERE rowid = old.id;
END;

-- Mentions (issue #8): a row per member a message names as `@username` when it is stored,
-- written in the append's transaction. The "mentions you" badge counts mine after my read mark
-- (a primary-key range); a deleted message's mentions are deleted with its text.
CREATE TABLE mentions (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    conv_id INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (user_id, conv_id, seq),
    FOREIGN KEY (conv_id, seq) REFERENCES messages(conv_id, seq) ON DELETE CASCADE
);
