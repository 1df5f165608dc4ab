-- Per-title protection of transcoding jobs (issue 15), SQLite flavour.
-- Keep in step with migrations/postgres/0005_job_protection.sql.
-- `cbcs`, `cenc`, `aes-128` or `none`; NULL on rows from before this column, which the runner
-- reads as `aes-128` when enable_drm is true and `none` otherwise (what those jobs asked for).
ALTER TABLE transcoding_jobs ADD COLUMN protection TEXT;
