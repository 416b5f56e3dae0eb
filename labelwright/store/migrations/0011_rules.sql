-- 0011: rules as annotators (weak supervision). A rule is a keyword list or a regular expression over one
-- item field, made in the browser, or a Python labelling function named by its entry point
-- (labelwright.labelling_functions). Each rule votes through a machine user of its own (user_id, also a
-- machine_annotators row of kind 'rule'): its votes are annotations, an abstention is no row.
-- applied_through: the highest item id the rule has been applied to (new items on import are the ones above).
CREATE TABLE rules (
    id {pk},
    project_id {bigint} NOT NULL REFERENCES projects(id),
    user_id {bigint} NOT NULL UNIQUE REFERENCES users(id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    question TEXT NOT NULL,
    field TEXT,
    pattern TEXT NOT NULL,
    label TEXT,
    enabled INTEGER NOT NULL DEFAULT 1,
    applied_through {bigint} NOT NULL DEFAULT 0,
    votes INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_by {bigint} REFERENCES users(id),
    created_at {float} NOT NULL,
    updated_at {float} NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX rules_project ON rules (project_id, enabled);

-- Per project: whether categorical questions are aggregated by the label model over people and rules
-- (0: rules' votes are left out of the consensus, which stays the people's).
CREATE TABLE rule_settings (
    project_id {bigint} PRIMARY KEY REFERENCES projects(id),
    label_model INTEGER NOT NULL DEFAULT 0,
    updated_at {float} NOT NULL
);
