-- One ordered log per conversation: `messages` holds every entry of a conversation's log, in seq
-- order. A row is a message (kind 'message') or an event about one ('edit', 'delete', 'react',
-- 'unreact') or about the group ('created', 'added', 'removed', 'left', 'renamed', 'owner').
-- A message's row keeps its CURRENT state (edited body and time, deleted flag with the body
-- emptied), so history needs no replay; the event rows are what `sync` replays.
--
-- Only columns with defaults are added, so a plain message is inserted exactly as before.

ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'message'
    CHECK (kind IN ('message', 'edit', 'delete', 'react', 'unreact',
                    'created', 'added', 'removed', 'left', 'renamed', 'owner'));
-- The message an entry refers to: the one replied to (kind 'message'), or the one edited,
-- deleted or reacted to. Never indexed: it is only followed from the row that holds it.
ALTER TABLE messages ADD COLUMN target_seq INTEGER;
-- The user a group event is about ('added', 'removed', 'owner').
ALTER TABLE messages ADD COLUMN subject_id INTEGER REFERENCES users(id);
ALTER TABLE messages ADD COLUMN edited_at INTEGER;
ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
-- Per kind, `body` is: the message's current text ('' once deleted); '' for 'edit' (the new text
-- is read from the edited message, so deleting it leaves no copy); the emoji for 'react' and
-- 'unreact'; the title for 'created' and 'renamed'; '' otherwise.

-- The current reactions (the log's 'react'/'unreact' rows are their history).
CREATE TABLE reactions (
    conv_id    INTEGER NOT NULL,
    seq        INTEGER NOT NULL,              -- the message's seq
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    emoji      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (conv_id, seq, user_id, emoji),
    FOREIGN KEY (conv_id, seq) REFERENCES messages(conv_id, seq) ON DELETE CASCADE
);
