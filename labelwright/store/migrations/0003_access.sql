-- 0003: the workforce's access: project membership with a role, invite links, an audit log.

-- Who works in which project, and as what. Owners need no membership (they see every project).
-- role: annotator (labels), reviewer (labels and reviews), manager (runs the project).
-- status: active, or blocked (removed by a manager: sees nothing of the project, leases released).
CREATE TABLE memberships (
    project_id {bigint} NOT NULL REFERENCES projects(id),
    user_id {bigint} NOT NULL REFERENCES users(id),
    role TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    added_by {bigint} REFERENCES users(id),
    added_at {float} NOT NULL,
    blocked_at {float},
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id, status);

-- Until 0003 every annotator could work in every project: keep it so for the projects that exist.
INSERT INTO memberships (project_id, user_id, role, status, added_at)
SELECT p.id, u.id, 'annotator', 'active', p.created_at FROM projects p CROSS JOIN users u WHERE u.role <> 'owner';

-- Invite links: whoever opens one (before it expires, while uses remain) creates their account with
-- the given role, and joins the project, if any, with project_role.
CREATE TABLE invites (
    id {pk},
    token_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    project_id {bigint} REFERENCES projects(id),
    project_role TEXT,
    created_by {bigint} REFERENCES users(id),
    created_at {float} NOT NULL,
    expires_at {float} NOT NULL,
    max_uses INTEGER NOT NULL DEFAULT 1,
    uses INTEGER NOT NULL DEFAULT 0,
    revoked_at {float}
);

-- Who changed what: roles, memberships, blocks, pauses, gold, tokens, invites. Append-only.
CREATE TABLE audit_log (
    id {pk},
    at {float} NOT NULL,
    actor_id {bigint} REFERENCES users(id),
    action TEXT NOT NULL,
    project_id {bigint} REFERENCES projects(id),
    target TEXT,
    details TEXT
);
CREATE INDEX audit_log_project ON audit_log (project_id, id);
