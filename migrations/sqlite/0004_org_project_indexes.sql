-- Organizations, projects and list pagination (issue 5), SQLite flavour.
-- Keep in step with migrations/postgres/0004_org_project_indexes.sql.
-- Forward-only and re-runnable: every statement is IF NOT EXISTS.

-- A project's name is unique inside its organization (the API answers 409 on a duplicate).
-- Lists of an organization's projects are paged by id.
CREATE UNIQUE INDEX IF NOT EXISTS projects_org_name ON projects(organization_id, name);
CREATE INDEX IF NOT EXISTS projects_org_id ON projects(organization_id, id);
-- A viewer's own files are paged by id.
CREATE INDEX IF NOT EXISTS files_owner_id ON files(owner_id, id);
-- Transcoding jobs are paged by id (optionally filtered by status).
CREATE INDEX IF NOT EXISTS transcoding_jobs_status_id ON transcoding_jobs(status, id);
