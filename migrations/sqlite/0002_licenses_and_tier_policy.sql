-- Licenses issued at the edge and the license policy of each tier (issue 4), SQLite flavour.
-- Keep in step with migrations/postgres/0002_licenses_and_tier_policy.sql.
-- Forward-only: sqlx records the migration once applied and never runs it again.

-- How long a license lasts (seconds from issue) and whether devices may store it offline.
ALTER TABLE subscription_tiers ADD COLUMN license_duration_secs INTEGER NOT NULL DEFAULT 3600;
ALTER TABLE subscription_tiers ADD COLUMN persistent_licenses BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE subscription_tiers SET persistent_licenses = TRUE WHERE name = 'enterprise';

-- Which DRM system issued the license: clearkey, aes128, fairplay, widevine, playready.
-- NULL for rows written before this migration.
ALTER TABLE media_licenses ADD COLUMN drm_system TEXT;
-- Licenses are looked up per title and per viewer.
CREATE INDEX IF NOT EXISTS media_licenses_content ON media_licenses(content_id);
CREATE INDEX IF NOT EXISTS media_licenses_user ON media_licenses(user_id);
