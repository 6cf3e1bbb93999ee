-- Integrations (issue #11): the transactional outbox behind the event stream, bot accounts with
-- bearer tokens, and incoming webhooks. See migrations/sqlite/0008_integrations.sql for the rules.
-- Here ids come from AUTO_INCREMENT, which does not follow commit order, so `pos` stays NULL
-- until the relay sequences the row (under `outbox_state`'s row lock).
CREATE TABLE outbox (
    id         BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    pos        BIGINT      NULL,
    kind       VARCHAR(16) NOT NULL DEFAULT 'entry',
    conv_id    BIGINT      NULL,
    seq        BIGINT      NULL,
    user_id    BIGINT      NULL,
    created_at BIGINT      NOT NULL,
    UNIQUE KEY outbox_pos (pos)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE outbox_state (
    id          BIGINT NOT NULL PRIMARY KEY,
    last_pos    BIGINT NOT NULL DEFAULT 0,
    relayed_pos BIGINT NOT NULL DEFAULT 0
) ENGINE = InnoDB;
INSERT INTO outbox_state (id, last_pos, relayed_pos) VALUES (1, 0, 0);

ALTER TABLE users ADD COLUMN bot BIGINT NOT NULL DEFAULT 0;

CREATE TABLE api_tokens (
    token_hash CHAR(64) NOT NULL PRIMARY KEY,
    user_id    BIGINT   NOT NULL,
    admin      BIGINT   NOT NULL DEFAULT 0,
    created_at BIGINT   NOT NULL,
    KEY api_tokens_by_user (user_id),
    CONSTRAINT api_tokens_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE webhooks (
    id          BIGINT   NOT NULL AUTO_INCREMENT PRIMARY KEY,
    secret_hash CHAR(64) NOT NULL UNIQUE,
    conv_id     BIGINT   NOT NULL,
    bot_id      BIGINT   NOT NULL,
    created_by  BIGINT   NOT NULL,
    created_at  BIGINT   NOT NULL,
    KEY webhooks_by_conv (conv_id),
    CONSTRAINT webhooks_conv FOREIGN KEY (conv_id) REFERENCES conversations (id) ON DELETE CASCADE,
    CONSTRAINT webhooks_bot FOREIGN KEY (bot_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT webhooks_creator FOREIGN KEY (created_by) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
