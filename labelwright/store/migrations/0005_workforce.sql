-- 0005: the workforce: qualification tests, review, pay (an append-only ledger), messages.

-- Review of a submission. review_status: pending (not reviewed), accepted, fixed, rejected.
-- reviewed_answers: a reviewer's fix, kept beside the annotator's own answers.
ALTER TABLE annotations ADD COLUMN review_status TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE annotations ADD COLUMN reviewed_answers TEXT;

-- Every review decision (a changed decision is a new row; the latest counts).
CREATE TABLE reviews (
    id {pk},
    annotation_id {bigint} NOT NULL REFERENCES annotations(id),
    project_id {bigint} NOT NULL REFERENCES projects(id),
    reviewer_id {bigint} REFERENCES users(id),
    decision TEXT NOT NULL,
    fixed_answers TEXT,
    feedback TEXT,
    created_at {float} NOT NULL
);
CREATE INDEX reviews_annotation ON reviews (annotation_id);
CREATE INDEX reviews_project ON reviews (project_id, id);

-- A reviewer holds a submission while reviewing it, so two reviewers do not get the same one.
CREATE TABLE review_leases (
    annotation_id {bigint} PRIMARY KEY REFERENCES annotations(id),
    reviewer_id {bigint} NOT NULL REFERENCES users(id),
    project_id {bigint} NOT NULL REFERENCES projects(id),
    expires_at {float} NOT NULL
);

-- Qualification: each attempt, and each answer in it (kept apart from annotations: a retake answers
-- the same items again).
CREATE TABLE qualification_attempts (
    id {pk},
    project_id {bigint} NOT NULL REFERENCES projects(id),
    user_id {bigint} NOT NULL REFERENCES users(id),
    started_at {float} NOT NULL,
    finished_at {float},
    correct INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    passed INTEGER
);
CREATE INDEX qualification_attempts_user ON qualification_attempts (project_id, user_id);
CREATE TABLE qualification_answers (
    attempt_id {bigint} NOT NULL REFERENCES qualification_attempts(id),
    item_id {bigint} NOT NULL REFERENCES items(id),
    answers TEXT NOT NULL,
    correct INTEGER NOT NULL,
    checked INTEGER NOT NULL,
    created_at {float} NOT NULL,
    PRIMARY KEY (attempt_id, item_id)
);

-- Money, in integer minor units of the project's currency. Append-only: a correction is a new entry.
-- kind: reward (per accepted item), hourly (active time of an accepted item), bonus, reversal.
CREATE TABLE ledger (
    id {pk},
    project_id {bigint} NOT NULL REFERENCES projects(id),
    user_id {bigint} NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL,
    amount_minor {bigint} NOT NULL,
    currency TEXT NOT NULL,
    annotation_id {bigint} REFERENCES annotations(id),
    period TEXT,
    note TEXT,
    created_at {float} NOT NULL
);
CREATE INDEX ledger_user ON ledger (project_id, user_id, id);
CREATE INDEX ledger_annotation ON ledger (annotation_id);

-- In-app messages from a project's managers to its annotators (to_user NULL: every member).
CREATE TABLE messages (
    id {pk},
    project_id {bigint} NOT NULL REFERENCES projects(id),
    from_user {bigint} REFERENCES users(id),
    to_user {bigint} REFERENCES users(id),
    body TEXT NOT NULL,
    created_at {float} NOT NULL
);
CREATE INDEX messages_project ON messages (project_id, id);
