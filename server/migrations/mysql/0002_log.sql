-- One ordered log per conversation (see migrations/sqlite/0002_log.sql for the rules): every row
-- of `messages` is a message or an event, a message's row keeps its current state, and
-- `reactions` holds the current reactions. Only columns with defaults are added, so a plain
-- message is inserted exactly as before.

ALTER TABLE messages
    ADD COLUMN kind VARCHAR(8) NOT NULL DEFAULT 'message',
    ADD COLUMN target_seq BIGINT NULL,
    ADD COLUMN subject_id BIGINT NULL,
    ADD COLUMN edited_at BIGINT NULL,
    ADD COLUMN deleted BIGINT NOT NULL DEFAULT 0,        -- not TINYINT: sqlx's Any driver cannot read it
    ADD CONSTRAINT messages_subject FOREIGN KEY (subject_id) REFERENCES users (id),
    ADD CONSTRAINT messages_kind CHECK (kind IN ('message', 'edit', 'delete', 'react', 'unreact',
                                                 'created', 'added', 'removed', 'left', 'renamed', 'owner'));

CREATE TABLE reactions (
    conv_id    BIGINT      NOT NULL,
    seq        BIGINT      NOT NULL,
    user_id    BIGINT      NOT NULL,
    emoji      VARCHAR(32) NOT NULL,
    created_at BIGINT      NOT NULL,
    PRIMARY KEY (conv_id, seq, user_id, emoji),
    CONSTRAINT reactions_message FOREIGN KEY (conv_id, seq) REFERENCES messages (conv_id, seq) ON DELETE CASCADE,
    CONSTRAINT reactions_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
