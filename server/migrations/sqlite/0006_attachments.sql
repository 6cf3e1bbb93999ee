-- Attachments (issue #8): a file uploaded by `uploader_id`, posted with at most one message.
-- `conv_id`/`seq` are NULL until a `send` posts it (in the message's own transaction), then name
-- that message; deleting the message deletes this row (and the bytes). `id` is 128 random bits
-- in hex: it is the download URL's only key, and nobody can guess another's. Content type and
-- image size were read from the bytes by the server. The bytes themselves live in the blob store:
-- on SQLite a folder beside the database file (see server/src/store/blobs.rs).
CREATE TABLE attachments (
    id           TEXT    PRIMARY KEY NOT NULL,
    uploader_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    content_type TEXT    NOT NULL,
    width        INTEGER,
    height       INTEGER,
    created_at   INTEGER NOT NULL,
    conv_id      INTEGER,
    seq          INTEGER,
    FOREIGN KEY (conv_id, seq) REFERENCES messages (conv_id, seq) ON DELETE CASCADE
);
-- One attachment per message, found by the message's key when history and replay join it.
CREATE UNIQUE INDEX attachments_by_message ON attachments (conv_id, seq);
-- The sweep of uploads never posted.
CREATE INDEX attachments_by_created_at ON attachments (created_at);
