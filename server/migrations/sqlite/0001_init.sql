-- Tidings schema (SQLite). Times are integer milliseconds since the Unix epoch, so the same SQL
-- reads the same on MySQL/MariaDB (whose migrations live in migrations/mysql).

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,      -- already lower-cased by Username::parse
    password_hash TEXT    NOT NULL,             -- argon2 PHC string
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT    PRIMARY KEY,             -- sha256 of the cookie's token, never the token
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions(user_id);

CREATE TABLE conversations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL CHECK (kind IN ('direct', 'group')),
    title      TEXT,                            -- groups only; a direct chat is titled by the other user
    direct_key TEXT    UNIQUE,                  -- "<lower user id>:<higher user id>": one direct chat per pair
    last_seq   INTEGER NOT NULL DEFAULT 0,      -- seq of the newest message; the next one gets last_seq + 1
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL                 -- newest activity, for ordering the list
);

CREATE TABLE members (
    conv_id       INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role          TEXT    NOT NULL CHECK (role IN ('owner', 'member')),
    last_read_seq INTEGER NOT NULL DEFAULT 0,
    joined_at     INTEGER NOT NULL,
    PRIMARY KEY (conv_id, user_id)
);
CREATE INDEX members_by_user ON members(user_id);

CREATE TABLE messages (
    conv_id    INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    id         INTEGER NOT NULL UNIQUE,
    sender_id  INTEGER NOT NULL REFERENCES users(id),
    client_id  TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (conv_id, seq),
    UNIQUE (sender_id, client_id)               -- makes re-sending idempotent
);

-- People a user has chatted with directly (for suggestions and presence).
CREATE TABLE contacts (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    contact_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, contact_id)
);
