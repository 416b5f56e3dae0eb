-- 0002: quality in the workflow: gold items, per-item answer targets (adaptive redundancy), paused annotators.

-- How many answers this item wants; NULL means the project's overlap. Adaptive redundancy raises it for
-- items in doubt; gold items carry a very large target (every annotator may answer them once).
ALTER TABLE items ADD COLUMN target INTEGER;
ALTER TABLE items ADD COLUMN is_gold INTEGER NOT NULL DEFAULT 0;
CREATE INDEX items_gold ON items (project_id, id) WHERE is_gold = 1;

-- The known answers of gold items. Kept out of items.data so nothing that serves an item can leak them.
CREATE TABLE gold (
    item_id {bigint} PRIMARY KEY REFERENCES items(id),
    project_id {bigint} NOT NULL REFERENCES projects(id),
    answers TEXT NOT NULL,
    created_by {bigint} REFERENCES users(id),
    created_at {float} NOT NULL
);
CREATE INDEX gold_project ON gold (project_id);

-- Annotators an owner has paused in a project: they get no new items and cannot submit there.
CREATE TABLE paused_annotators (
    project_id {bigint} NOT NULL REFERENCES projects(id),
    user_id {bigint} NOT NULL REFERENCES users(id),
    reason TEXT,
    paused_by {bigint} REFERENCES users(id),
    paused_at {float} NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
