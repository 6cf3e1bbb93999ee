-- Accounts an operator disabled (`tidings user disable`): NULL while the account may log in, else
-- when it was disabled (ms). The index serves each node's sweep for recently disabled users,
-- whose open connections it closes.
ALTER TABLE users ADD COLUMN disabled_at BIGINT NULL;
CREATE INDEX users_by_disabled_at ON users(disabled_at);
