-- 0012: two things a server process used to keep in its own memory, now in the database so that every
-- process behind a proxy sees the same.
-- Code runs started, for the limit of runs one person may start in a minute (labelwright.services.runs).
-- Rows older than a minute are deleted as new ones come; nothing else is kept (a run's output is for the
-- person who asked).
CREATE TABLE code_runs (
    id {pk},
    user_id {bigint} NOT NULL,
    created_at {float} NOT NULL
);
CREATE INDEX code_runs_user ON code_runs (user_id, created_at);
CREATE INDEX code_runs_time ON code_runs (created_at);
-- The assist worker's last step of a project, whichever process ran it (labelwright.services.assist_worker):
-- when, and its error (the full text for owners; public_error, the exception's class, for managers).
ALTER TABLE assist_state ADD COLUMN worker_at {float};
ALTER TABLE assist_state ADD COLUMN worker_error TEXT;
ALTER TABLE assist_state ADD COLUMN worker_public_error TEXT;
