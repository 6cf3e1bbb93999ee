-- The search index follows new messages in batches instead of inside every append (issue #7).
--
-- FTS5 writes a new segment of its index at the end of every transaction that added words, and
-- merges segments as they pile up: with the insert trigger of 0005, every append batch paid for a
-- segment and its merges — about a third of the server's instructions per message (callgrind).
-- Now the writer thread indexes new messages in bulk (`sqlite_writer::index_pending`): every few
-- thousand appended messages, and before every search, so a search still finds a message the
-- moment its sender has the ack.
--
-- `search_progress.indexed_upto` is the largest message id the index has seen. Messages above it
-- are not in the index yet, so an edit or a deletion of one must not touch the index (a
-- contentless table cannot be told to forget a row it never had); the batch picks up whatever
-- the message says when its turn comes, and skips it if it is deleted by then.
CREATE TABLE search_progress (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_upto INTEGER NOT NULL
);
-- The old trigger indexed everything there is.
INSERT INTO search_progress (id, indexed_upto) SELECT 1, COALESCE(MAX(id), 0) FROM messages;

DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_update;
DROP TRIGGER messages_fts_delete;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF body, deleted ON messages
WHEN old.kind = 'message' AND old.deleted = 0
    AND old.id <= (SELECT indexed_upto FROM search_progress WHERE id = 1)
BEGIN
    DELETE FROM messages_fts WHERE rowid = old.id;
    INSERT INTO messages_fts (rowid, body) SELECT new.id, new.body WHERE new.deleted = 0;
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.kind = 'message' AND old.deleted = 0
    AND old.id <= (SELECT indexed_upto FROM search_progress WHERE id = 1)
BEGIN
    DELETE FROM messages_fts WHERE rowid = old.id;
END;
