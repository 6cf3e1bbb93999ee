-- Contacts become explicit (issue #9): someone asks, the other accepts or declines. The same
-- change as migrations/sqlite/0002, in MySQL's types.
--
-- `contacts` now holds accepted contacts only, one row per direction. 0001 wrote a pair there
-- whenever a direct chat opened, without anyone agreeing, and nothing read it: those rows go.
DELETE FROM contacts;

-- Requests waiting for an answer; `pair_key` ("<lower id>:<higher id>") allows one per pair,
-- whichever way.
CREATE TABLE contact_requests (
    from_id    BIGINT      NOT NULL,
    to_id      BIGINT      NOT NULL,
    pair_key   VARCHAR(64) NOT NULL,
    created_at BIGINT      NOT NULL,
    PRIMARY KEY (from_id, to_id),
    UNIQUE KEY contact_requests_pair (pair_key),
    KEY contact_requests_to (to_id),
    CONSTRAINT contact_requests_from FOREIGN KEY (from_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT contact_requests_target FOREIGN KEY (to_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
