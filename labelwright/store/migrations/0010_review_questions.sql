-- 0010: an annotator questions a review decision on their own submission (one question per decision);
-- the project's reviewers see the open questions on the review page and answer them.
CREATE TABLE review_questions (
    id {pk},
    project_id {bigint} NOT NULL REFERENCES projects(id),
    annotation_id {bigint} NOT NULL REFERENCES annotations(id),
    review_id {bigint} NOT NULL REFERENCES reviews(id),
    user_id {bigint} NOT NULL REFERENCES users(id),
    body TEXT NOT NULL,
    created_at {float} NOT NULL,
    reply TEXT,
    replied_by {bigint} REFERENCES users(id),
    replied_at {float}
);
CREATE UNIQUE INDEX review_questions_decision ON review_questions (review_id);
CREATE INDEX review_questions_open ON review_questions (project_id, replied_at, id);
CREATE INDEX review_questions_user ON review_questions (user_id, created_at);
