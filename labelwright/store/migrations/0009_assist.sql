-- 0009: the project assistant (issue 9): item features, models and their predictions, machine labels and
-- their audits, the check queue, LLM machine annotators and their calls, the queue's order.

-- The queue picks ORDER BY queue_rank, id: 0 for every item keeps import order; "order: uncertainty"
-- writes ranks from the assistant, "llm_first" ranks items an LLM has not answered after those it has.
ALTER TABLE items ADD COLUMN queue_rank INTEGER NOT NULL DEFAULT 0;
DROP INDEX items_queue;
CREATE INDEX items_queue ON items (project_id, is_open, is_gold, queue_rank, id);

-- What the annotator was shown for the assisted question: the suggestion (JSON) and the arm
-- ('shown', or 'hidden' for the anchoring control group); NULL when the item had no prediction.
ALTER TABLE annotations ADD COLUMN suggestion TEXT;
ALTER TABLE annotations ADD COLUMN suggestion_arm TEXT;

-- The fitted featuriser of a project (TF-IDF vocabulary and projection), so later items get the same features.
CREATE TABLE featurisers (
    project_id {bigint} PRIMARY KEY REFERENCES projects(id),
    version TEXT NOT NULL,
    blob {blob} NOT NULL,
    created_at {float} NOT NULL
);

-- One vector per item (float32, little-endian), computed once by the assist worker. holdout = 1: the item is
-- in the random validation sample auto-labelling's thresholds are chosen on (people label those first).
CREATE TABLE item_features (
    item_id {bigint} PRIMARY KEY REFERENCES items(id),
    project_id {bigint} NOT NULL REFERENCES projects(id),
    version TEXT NOT NULL,
    vector {blob} NOT NULL,
    holdout INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX item_features_project ON item_features (project_id, item_id);

-- Every model the assistant trained (builtin) or asked (http / python): its validation figures and thresholds.
CREATE TABLE assist_models (
    id {pk},
    project_id {bigint} NOT NULL REFERENCES projects(id),
    question TEXT NOT NULL,
    version TEXT NOT NULL,
    n_train INTEGER NOT NULL,
    n_validation INTEGER NOT NULL,
    accuracy {float},
    thresholds TEXT,
    details TEXT,
    created_at {float} NOT NULL
);
CREATE INDEX assist_models_project ON assist_models (project_id, id);

-- The current prediction per item (label JSON, its probability, all probabilities JSON), with its model.
CREATE TABLE predictions (
    item_id {bigint} PRIMARY KEY REFERENCES items(id),
    project_id {bigint} NOT NULL REFERENCES projects(id),
    model_id {bigint} NOT NULL REFERENCES assist_models(id),
    label TEXT NOT NULL,
    confidence {float} NOT NULL,
    probas TEXT NOT NULL,
    created_at {float} NOT NULL
);
CREATE INDEX predictions_project ON predictions (project_id, item_id);

-- Items labelled by the machine (auto-labelling). audit: 'none', 'sampled' (in the check queue),
-- 'correct' or 'wrong' (a reviewer's verdict; audited_label is their label).
CREATE TABLE machine_labels (
    item_id {bigint} PRIMARY KEY REFERENCES items(id),
    project_id {bigint} NOT NULL REFERENCES projects(id),
    question TEXT NOT NULL,
    label TEXT NOT NULL,
    confidence {float} NOT NULL,
    model_id {bigint} NOT NULL REFERENCES assist_models(id),
    created_at {float} NOT NULL,
    audit TEXT NOT NULL DEFAULT 'none',
    audited_by {bigint} REFERENCES users(id),
    audited_label TEXT,
    audited_at {float}
);
CREATE INDEX machine_labels_project ON machine_labels (project_id, created_at);

-- The check queue for reviewers: audits of machine labels and suspected label errors.
CREATE TABLE assist_checks (
    id {pk},
    project_id {bigint} NOT NULL REFERENCES projects(id),
    item_id {bigint} NOT NULL REFERENCES items(id),
    kind TEXT NOT NULL,
    question TEXT NOT NULL,
    shown_label TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at {float} NOT NULL,
    leased_by {bigint} REFERENCES users(id),
    lease_until {float},
    checked_by {bigint} REFERENCES users(id),
    checked_label TEXT,
    checked_at {float},
    UNIQUE (item_id, kind)
);
CREATE INDEX assist_checks_open ON assist_checks (project_id, checked_at, id);

-- Per project: whether auto-labelling runs (and why it stopped), when the assistant last trained, and the
-- assist worker's lease (several server processes share one database).
CREATE TABLE assist_state (
    project_id {bigint} PRIMARY KEY REFERENCES projects(id),
    auto_label TEXT NOT NULL DEFAULT 'on',
    reason TEXT,
    audit_since {float} NOT NULL DEFAULT 0,
    labels_at_train INTEGER NOT NULL DEFAULT 0,
    worker_until {float} NOT NULL DEFAULT 0,
    features_done INTEGER NOT NULL DEFAULT 0,
    features_total INTEGER NOT NULL DEFAULT 0,
    ranked_at {float},
    updated_at {float} NOT NULL
);

-- LLMs added to a project as annotators: a user of their own, the endpoint (never the key: api_key_env
-- names the environment variable holding it), prices.
CREATE TABLE machine_annotators (
    user_id {bigint} PRIMARY KEY REFERENCES users(id),
    project_id {bigint} NOT NULL REFERENCES projects(id),
    kind TEXT NOT NULL,
    config TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_by {bigint} REFERENCES users(id),
    created_at {float} NOT NULL
);
CREATE INDEX machine_annotators_project ON machine_annotators (project_id);

-- Each call to an LLM: tokens, exact cost (a decimal string), latency, and the error if it failed.
CREATE TABLE llm_calls (
    id {pk},
    project_id {bigint} NOT NULL REFERENCES projects(id),
    user_id {bigint} NOT NULL REFERENCES users(id),
    item_id {bigint} REFERENCES items(id),
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    cost TEXT,
    latency_ms INTEGER NOT NULL,
    error TEXT,
    created_at {float} NOT NULL
);
CREATE INDEX llm_calls_project ON llm_calls (project_id, created_at);
