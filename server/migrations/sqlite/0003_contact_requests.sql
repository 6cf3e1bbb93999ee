-- Contacts become explicit (issue #9): someone asks, the other accepts or declines.
--
-- `contacts` keeps its shape and now holds accepted contacts only, one row per direction (so
-- "my contacts" is a primary-key range). 0001 wrote a pair there whenever a direct chat opened,
-- without anyone agreeing, and nothing ever read it: those rows are not contacts, so they go.
DELETE FROM contacts;

-- Requests waiting for an answer. `pair_key` ("<lower id>:<higher id>") allows one per pair,
-- whichever way: two people asking each other at the same moment cannot both be pending.
CREATE TABLE contact_requests (
    from_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    to_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    pair_key   TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (from_id, to_id)
);
CREATE INDEX contact_requests_to ON contact_requests(to_id);
