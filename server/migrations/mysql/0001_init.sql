-- Tidings schema (MySQL / MariaDB): the same tables as migrations/sqlite, in MySQL's types.
-- Times are integer milliseconds since the Unix epoch. utf8mb4 so that any message body fits.

CREATE TABLE users (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    username      VARCHAR(32)  NOT NULL UNIQUE,       -- already lower-cased by Username::parse
    password_hash VARCHAR(255) NOT NULL,              -- argon2 PHC string
    created_at    BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE sessions (
    token_hash CHAR(64) NOT NULL PRIMARY KEY,          -- sha256 of the cookie's token, never the token
    user_id    BIGINT   NOT NULL,
    created_at BIGINT   NOT NULL,
    expires_at BIGINT   NOT NULL,
    KEY sessions_by_user (user_id),
    CONSTRAINT sessions_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE conversations (
    id         BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind       VARCHAR(8)   NOT NULL,                 -- 'direct' | 'group'
    title      VARCHAR(320) COLLATE utf8mb4_unicode_ci,  -- groups only
    direct_key VARCHAR(64)  UNIQUE,                   -- "<lower id>:<higher id>": one direct chat per pair
    last_seq   BIGINT       NOT NULL DEFAULT 0,       -- bumped under this row's lock: gap-free seqs
    created_at BIGINT       NOT NULL,
    updated_at BIGINT       NOT NULL,
    CHECK (kind IN ('direct', 'group'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE members (
    conv_id       BIGINT     NOT NULL,
    user_id       BIGINT     NOT NULL,
    role          VARCHAR(8) NOT NULL,                -- 'owner' | 'member'
    last_read_seq BIGINT     NOT NULL DEFAULT 0,
    joined_at     BIGINT     NOT NULL,
    PRIMARY KEY (conv_id, user_id),
    KEY members_by_user (user_id),
    CONSTRAINT members_conv FOREIGN KEY (conv_id) REFERENCES conversations (id) ON DELETE CASCADE,
    CONSTRAINT members_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CHECK (role IN ('owner', 'member'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE messages (
    conv_id    BIGINT      NOT NULL,
    seq        BIGINT      NOT NULL,
    id         BIGINT      NOT NULL AUTO_INCREMENT,
    sender_id  BIGINT      NOT NULL,
    client_id  VARCHAR(64) NOT NULL,
    body       VARCHAR(4000) NOT NULL,                -- MAX_BODY_CHARS (sqlx's Any driver reads TEXT as bytes)
    created_at BIGINT      NOT NULL,
    PRIMARY KEY (conv_id, seq),
    UNIQUE KEY messages_id (id),
    UNIQUE KEY messages_idempotency (sender_id, client_id),   -- makes re-sending idempotent
    CONSTRAINT messages_conv FOREIGN KEY (conv_id) REFERENCES conversations (id) ON DELETE CASCADE,
    CONSTRAINT messages_sender FOREIGN KEY (sender_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE contacts (
    user_id    BIGINT NOT NULL,
    contact_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, contact_id),
    CONSTRAINT contacts_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT contacts_contact FOREIGN KEY (contact_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
