-- Attachments (issue #8); see migrations/sqlite/0006_attachments.sql for the rules. In a cluster
-- every node must reach every file, so the bytes live in this database too
-- (`attachment_blobs`, one row per file, written once and read whole; a file is at most
-- --max-upload-bytes, 10 MiB by default, below MariaDB's default max_allowed_packet of 16 MiB).
-- BIGINT throughout: sqlx's Any driver reads no narrower integers.
CREATE TABLE attachments (
    id           CHAR(32)     NOT NULL PRIMARY KEY,
    uploader_id  BIGINT       NOT NULL,
    name         VARCHAR(255) NOT NULL,
    size         BIGINT       NOT NULL,
    content_type VARCHAR(100) NOT NULL,
    width        BIGINT       NULL,
    height       BIGINT       NULL,
    created_at   BIGINT       NOT NULL,
    conv_id      BIGINT       NULL,
    seq          BIGINT       NULL,
    UNIQUE KEY attachments_by_message (conv_id, seq),
    KEY attachments_by_created_at (created_at),
    CONSTRAINT attachments_uploader FOREIGN KEY (uploader_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT attachments_message FOREIGN KEY (conv_id, seq) REFERENCES messages (conv_id, seq) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE attachment_blobs (
    id   CHAR(32) NOT NULL PRIMARY KEY,
    data LONGBLOB NOT NULL
) ENGINE = InnoDB;
