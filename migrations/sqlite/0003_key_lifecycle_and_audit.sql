-- Key lifecycle (rotate / retire) and the key audit trail (issue 5), SQLite flavour.
-- Keep in step with migrations/postgres/0003_key_lifecycle_and_audit.sql.
-- Forward-only: sqlx records the migration once applied and never runs it again.

-- A retired key no longer serves (edges answer 410, like a revoked one) but, unlike a revoked
-- one, it was taken out of service on schedule after a rotation. NULL while in service.
-- Which key new packaging uses stays files.content_key_id (rotation moves it).
ALTER TABLE content_keys ADD COLUMN retired_at TEXT;

-- One row per key operation: generate, seal, unwrap, rotate, retire, revoke, speke_issue.
-- Never key material: detail is a short human-readable note (an error message at most).
-- No foreign keys on content_id / key_id on purpose: the trail must outlive the title and its
-- keys (content_keys rows cascade away with their file), and failed operations are recorded
-- for ids that may not exist. id is monotonic, so it orders the trail and serves as the cursor.
CREATE TABLE IF NOT EXISTS key_audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN
                    ('generate', 'seal', 'unwrap', 'rotate', 'retire', 'revoke', 'speke_issue')),
    content_id  BLOB,
    key_id      BLOB,
    backend     TEXT NOT NULL,
    ok          BOOLEAN NOT NULL,
    detail      TEXT
);
-- Newest first overall, by time range, and per title.
CREATE INDEX IF NOT EXISTS key_audit_occurred ON key_audit(occurred_at);
CREATE INDEX IF NOT EXISTS key_audit_content ON key_audit(content_id, id);
