-- Control plane schema, SQLite flavour. Types follow how sqlx encodes Rust values:
-- uuid::Uuid -> 16-byte BLOB, time::OffsetDateTime -> TEXT, bool -> BOOLEAN (0/1).
-- Foreign keys are enforced by the connection option foreign_keys=ON.
-- Keep in step with migrations/postgres/0001_init.sql: same tables, columns and constraints.
-- Times are always written by the application (UTC); no column relies on NOW().

-- Viewers and uploaders; id is the JWT `sub`, upserted on the first authenticated request.
CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    email       TEXT,
    created_at  TEXT NOT NULL
);

CREATE TABLE organizations (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE organization_members (
    organization_id BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role            TEXT NOT NULL DEFAULT 'member',
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX organization_members_user ON organization_members(user_id);

CREATE TABLE projects (
    id              BLOB PRIMARY KEY,
    organization_id BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    created_at      TEXT NOT NULL
);

CREATE TABLE project_members (
    project_id  BLOB NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user ON project_members(user_id);

-- Uploaded sources and, once transcoded, titles. content_key_id points at content_keys(id);
-- it has no foreign key because content_keys references files (SQLite cannot add one later).
CREATE TABLE files (
    id                  BLOB PRIMARY KEY,
    owner_id            TEXT NOT NULL REFERENCES users(id),
    organization_id     BLOB REFERENCES organizations(id) ON DELETE SET NULL,
    project_id          BLOB REFERENCES projects(id) ON DELETE SET NULL,
    name                TEXT NOT NULL,
    mime_type           TEXT NOT NULL,
    size_bytes          INTEGER NOT NULL,
    storage_path        TEXT NOT NULL,
    drm_protected       BOOLEAN NOT NULL DEFAULT FALSE,
    hls_manifest_url    TEXT,
    transcoding_status  TEXT NOT NULL DEFAULT 'pending',
    content_key_id      BLOB,
    encrypted_at        TEXT,
    created_at          TEXT NOT NULL
);
CREATE INDEX files_owner ON files(owner_id);

-- Per-title AES-128 keys. content_key holds ONLY the wrapped at-rest envelope
-- (playback::keywrap, purpose at-rest, bound to file id and key id); never plaintext.
-- iv records how segment IVs are derived: 'media-sequence' = no IV in the key info,
-- ffmpeg derives it from the segment sequence and writes it into the playlist.
CREATE TABLE content_keys (
    id          BLOB PRIMARY KEY,
    content_id  BLOB NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    content_key TEXT NOT NULL,
    iv          TEXT NOT NULL,
    algorithm   TEXT NOT NULL DEFAULT 'AES-128',
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX content_keys_content ON content_keys(content_id);

CREATE TABLE media_licenses (
    id           BLOB PRIMARY KEY,
    content_id   BLOB NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key_id       BLOB REFERENCES content_keys(id) ON DELETE CASCADE,
    issued_at    TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    license_type TEXT NOT NULL DEFAULT 'rental',
    device_id    TEXT,
    revoked      BOOLEAN NOT NULL DEFAULT FALSE
);

-- job_id is the backend's own id (MediaConvert); NULL for the local ffmpeg backend.
-- attempts counts executions started; a job left 'processing' by a crash is re-run while
-- attempts < transcode.max_attempts, else failed.
CREATE TABLE transcoding_jobs (
    id            BLOB PRIMARY KEY,
    file_id       BLOB NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    job_id        TEXT UNIQUE,
    status        TEXT NOT NULL DEFAULT 'pending',
    input_url     TEXT NOT NULL,
    output_bucket TEXT,
    output_prefix TEXT,
    manifest_url  TEXT,
    progress      INTEGER NOT NULL DEFAULT 0,
    error_message TEXT,
    enable_drm    BOOLEAN NOT NULL DEFAULT FALSE,
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
-- At most one live job per file (the API answers 409 otherwise).
CREATE UNIQUE INDEX transcoding_jobs_one_live ON transcoding_jobs(file_id)
    WHERE status IN ('pending', 'processing');
CREATE INDEX transcoding_jobs_status ON transcoding_jobs(status);

CREATE TABLE subscription_tiers (
    id                     BLOB PRIMARY KEY,
    name                   TEXT NOT NULL UNIQUE,
    max_concurrent_streams INTEGER NOT NULL DEFAULT 3,
    can_use_drm            BOOLEAN NOT NULL DEFAULT FALSE,
    price_monthly_cents    INTEGER NOT NULL
);
INSERT INTO subscription_tiers (id, name, max_concurrent_streams, can_use_drm, price_monthly_cents) VALUES
    (X'00000000000040008000000000000001', 'free',       1,  FALSE, 0),
    (X'00000000000040008000000000000002', 'pro',        3,  TRUE,  1999),
    (X'00000000000040008000000000000003', 'enterprise', 10, TRUE,  9999);

CREATE TABLE user_subscriptions (
    id          BLOB PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tier_id     BLOB NOT NULL REFERENCES subscription_tiers(id),
    status      TEXT NOT NULL DEFAULT 'active',
    started_at  TEXT NOT NULL,
    expires_at  TEXT
);
-- One active subscription per user (upserted by `control-plane subscribe`).
CREATE UNIQUE INDEX user_subscriptions_one_active ON user_subscriptions(user_id)
    WHERE status = 'active';
