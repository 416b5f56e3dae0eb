-- 0007: time that the server saw, leases that lapsed, review of one revision, and the queue flag repaired.

-- Active time: active_ms is what pay, hourly rates and the export use: the time the client reported,
-- but never more than the server saw (reported_ms: what the client said, summed over amends;
-- bound_ms: how long the item was held under a live lease, plus for each amend the time since the last
-- save, at most the project's lease time).
ALTER TABLE annotations ADD COLUMN reported_ms {bigint} NOT NULL DEFAULT 0;
ALTER TABLE annotations ADD COLUMN bound_ms {bigint} NOT NULL DEFAULT 0;
UPDATE annotations SET reported_ms = active_ms, bound_ms = active_ms;

-- The revision a reviewer decided on (reviewed work is frozen for its author).
ALTER TABLE annotations ADD COLUMN reviewed_revision INTEGER;
ALTER TABLE reviews ADD COLUMN revision INTEGER;
UPDATE annotations SET reviewed_revision = revision WHERE review_status <> 'pending';

-- A lease that expired and was reclaimed: its holder may still submit while the item has room (a
-- submission needs an item handed to its author), and the lease's life bounds the time they claim.
CREATE TABLE lapsed_leases (
    item_id {bigint} NOT NULL REFERENCES items(id),
    user_id {bigint} NOT NULL REFERENCES users(id),
    project_id {bigint} NOT NULL REFERENCES projects(id),
    created_at {float} NOT NULL,
    expires_at {float} NOT NULL,
    lapsed_at {float} NOT NULL,
    PRIMARY KEY (item_id, user_id)
);
CREATE INDEX lapsed_leases_project ON lapsed_leases (project_id, lapsed_at);

-- is_open is derived: n_assigned < COALESCE(target, overlap). Earlier writers could leave it wrong.
UPDATE items SET is_open = CASE WHEN n_assigned < COALESCE(target, (SELECT p.overlap FROM projects p
    WHERE p.id = items.project_id)) THEN 1 ELSE 0 END;
