-- Group roles (issue #9): a group has one owner, any number of admins and its members.
--
-- 0001 limited `members.role` to 'owner' and 'member' with a CHECK, and SQLite cannot change a
-- CHECK in place: the table is rebuilt with the wider rule (it is small, one row per
-- membership, and no other table refers to it).
CREATE TABLE members_0007 (
    conv_id       INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role          TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    last_read_seq INTEGER NOT NULL DEFAULT 0,
    joined_at     INTEGER NOT NULL,
    PRIMARY KEY (conv_id, user_id)
);
INSERT INTO members_0007 (conv_id, user_id, role, last_read_seq, joined_at)
    SELECT conv_id, user_id, role, last_read_seq, joined_at FROM members;
DROP TABLE members;
ALTER TABLE members_0007 RENAME TO members;
CREATE INDEX members_by_user ON members(user_id);

-- A role change is a group event in the conversation's log, stored as an `owner` row (the kind
-- 0002 introduced for "this member owns the group now") whose body names the new role: 'admin'
-- or 'member' (an empty body, as in every row written before this migration, still means
-- owner). A kind of its own would need the CHECK on `messages.kind` widened, which on SQLite
-- means rebuilding the whole log, the largest table by far; the protocol still calls it `role`.
