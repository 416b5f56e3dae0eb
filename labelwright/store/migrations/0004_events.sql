-- 0004: events and webhooks. An event is written in the same transaction as the change it reports,
-- with one delivery row per webhook that wants it (an outbox): nothing is sent in the request path,
-- and a crash loses no event. A background worker sends the deliveries, retrying with back-off.

CREATE TABLE events (
    id {pk},
    at {float} NOT NULL,
    kind TEXT NOT NULL,
    project_id {bigint} REFERENCES projects(id),
    payload TEXT NOT NULL
);
CREATE INDEX events_project ON events (project_id, id);

-- project_id NULL: every project. kinds: a JSON list of event kinds, or '*'.
CREATE TABLE webhooks (
    id {pk},
    project_id {bigint} REFERENCES projects(id),
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    kinds TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_by {bigint} REFERENCES users(id),
    created_at {float} NOT NULL
);

-- status: pending (next_attempt_at says when), delivered, failed (gave up after the last attempt).
CREATE TABLE deliveries (
    id {pk},
    webhook_id {bigint} NOT NULL REFERENCES webhooks(id),
    event_id {bigint} NOT NULL REFERENCES events(id),
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at {float} NOT NULL,
    last_status_code INTEGER,
    last_error TEXT,
    created_at {float} NOT NULL,
    delivered_at {float},
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
