-- 0013: second opinions from the stronger half (redundancy.second_opinions = "stronger_half",
-- labelwright.services.second_opinions). At every skill refit the project's annotators whose estimated
-- accuracy is below the median (of those with 10 answers or more) are listed here, replacing the last
-- list; the queue serves them no ordinary item that already has from_answers answers (redundancy.min),
-- so an item in doubt gets its next answer from the stronger half. They still get first answers and gold.
CREATE TABLE weaker_half (
    project_id {bigint} NOT NULL REFERENCES projects(id),
    user_id {bigint} NOT NULL REFERENCES users(id),
    accuracy {float} NOT NULL,
    median {float} NOT NULL,
    answers INTEGER NOT NULL,
    from_answers INTEGER NOT NULL,
    updated_at {float} NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
