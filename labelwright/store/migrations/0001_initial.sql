-- 0001: the labelling line: users, tokens, projects, items, leases, annotations, skips.
-- {pk}, {float} and {bigint} are filled in per dialect by labelwright.store.migrate.
CREATE TABLE users (
    id {pk},
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password_hash TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at {float} NOT NULL
);

CREATE TABLE tokens (
    id {pk},
    user_id {bigint} NOT NULL REFERENCES users(id),
    token_hash TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    label TEXT,
    csrf TEXT,
    created_at {float} NOT NULL,
    expires_at {float},
    last_used_at {float},
    revoked_at {float}
);
CREATE INDEX tokens_user ON tokens (user_id, kind);

CREATE TABLE projects (
    id {pk},
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    schema TEXT NOT NULL,
    overlap INTEGER NOT NULL,
    lease_seconds INTEGER NOT NULL,
    created_by {bigint} REFERENCES users(id),
    created_at {float} NOT NULL,
    updated_at {float} NOT NULL
);

CREATE TABLE items (
    id {pk},
    project_id {bigint} NOT NULL REFERENCES projects(id),
    external_id TEXT NOT NULL,
    data TEXT NOT NULL,
    n_assigned INTEGER NOT NULL DEFAULT 0,
    n_done INTEGER NOT NULL DEFAULT 0,
    is_open INTEGER NOT NULL DEFAULT 1,
    created_at {float} NOT NULL,
    UNIQUE (project_id, external_id)
);
CREATE INDEX items_queue ON items (project_id, is_open, id);

CREATE TABLE leases (
    item_id {bigint} NOT NULL REFERENCES items(id),
    user_id {bigint} NOT NULL REFERENCES users(id),
    project_id {bigint} NOT NULL REFERENCES projects(id),
    created_at {float} NOT NULL,
    expires_at {float} NOT NULL,
    PRIMARY KEY (item_id, user_id)
);
CREATE INDEX leases_expiry ON leases (project_id, expires_at);
CREATE INDEX leases_user ON leases (user_id, project_id);

CREATE TABLE annotations (
    id {pk},
    item_id {bigint} NOT NULL REFERENCES items(id),
    project_id {bigint} NOT NULL REFERENCES projects(id),
    user_id {bigint} NOT NULL REFERENCES users(id),
    answers TEXT NOT NULL,
    active_ms {bigint} NOT NULL DEFAULT 0,
    idempotency_key TEXT,
    revision INTEGER NOT NULL DEFAULT 1,
    created_at {float} NOT NULL,
    updated_at {float} NOT NULL,
    UNIQUE (item_id, user_id),
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX annotations_project_time ON annotations (project_id, created_at);
CREATE INDEX annotations_user ON annotations (user_id, project_id, id);

-- Every earlier version of an amended annotation, so an amendment never destroys a record.
CREATE TABLE annotation_revisions (
    id {pk},
    annotation_id {bigint} NOT NULL REFERENCES annotations(id),
    revision INTEGER NOT NULL,
    answers TEXT NOT NULL,
    active_ms {bigint} NOT NULL,
    replaced_at {float} NOT NULL
);
CREATE INDEX annotation_revisions_annotation ON annotation_revisions (annotation_id);

CREATE TABLE skips (
    item_id {bigint} NOT NULL REFERENCES items(id),
    user_id {bigint} NOT NULL REFERENCES users(id),
    project_id {bigint} NOT NULL REFERENCES projects(id),
    created_at {float} NOT NULL,
    PRIMARY KEY (item_id, user_id)
);
