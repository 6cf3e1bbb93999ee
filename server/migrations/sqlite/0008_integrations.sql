-- Integrations (issue #11): the transactional outbox behind the event stream, bot accounts with
-- bearer tokens, and incoming webhooks.
--
-- `outbox`: one small row per stream event, written in the SAME transaction as the change it
-- announces. A conversation-log entry is only referenced by (conv_id, seq); the relay builds the
-- event's JSON by joining the log when it publishes, so the hot path serializes nothing.
-- `kind` is 'entry' for a log entry, otherwise the account change ('user_created',
-- 'user_disabled', 'user_enabled', 'bot_created', 'bot_revoked') of `user_id`.
-- `pos` is the event's position in the stream (gap-free, in commit order). On SQLite the one
-- writer makes `pos = id` at insert; on MySQL ids do not follow commit order, so the relay
-- assigns `pos` (see store/outbox.rs).
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY,
    pos        INTEGER UNIQUE,
    kind       TEXT    NOT NULL DEFAULT 'entry',
    conv_id    INTEGER,
    seq        INTEGER,
    user_id    INTEGER,
    created_at INTEGER NOT NULL
);

-- One row: how far the relay has sequenced (`last_pos`, MySQL) and appended to the Redis Stream
-- (`relayed_pos`). Events above `relayed_pos` are still to be appended.
CREATE TABLE outbox_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    last_pos    INTEGER NOT NULL DEFAULT 0,
    relayed_pos INTEGER NOT NULL DEFAULT 0
);
INSERT INTO outbox_state (id, last_pos, relayed_pos) VALUES (1, 0, 0);

-- A bot is a user row that cannot log in (its password hash is not a valid hash) and
-- authenticates with bearer tokens instead. `admin` bots (operator-made) may read every event.
ALTER TABLE users ADD COLUMN bot INTEGER NOT NULL DEFAULT 0;

-- Bearer tokens: sha256 of a 256-bit random token, never the token.
CREATE TABLE api_tokens (
    token_hash TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    admin      INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX api_tokens_by_user ON api_tokens(user_id);

-- Incoming webhooks: a secret URL that posts into one conversation as a bot.
CREATE TABLE webhooks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    secret_hash TEXT    NOT NULL UNIQUE,          -- sha256 of the URL's secret
    conv_id     INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    bot_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_by  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL
);
CREATE INDEX webhooks_by_conv ON webhooks(conv_id);
