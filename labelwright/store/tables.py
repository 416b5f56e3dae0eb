"""SQLAlchemy Core table objects mirroring the migrated schema (used to build queries).

The DDL itself lives in the numbered files under ``migrations/``; ``tests/store/test_migrations.py``
checks that these objects and the migrated database agree, on SQLite and on PostgreSQL.
"""

from sqlalchemy import BigInteger, Column, Float, Integer, LargeBinary, MetaData, Table, Text

metadata = MetaData()

users = Table(
    "users", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("password_hash", Text),
    Column("disabled", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
)

tokens = Table(
    "tokens", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("token_hash", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("label", Text),
    Column("csrf", Text),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float),
    Column("last_used_at", Float),
    Column("revoked_at", Float),
)

projects = Table(
    "projects", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("slug", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("schema", Text, nullable=False),
    Column("overlap", Integer, nullable=False),
    Column("lease_seconds", Integer, nullable=False),
    Column("created_by", BigInteger),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

items = Table(
    "items", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("project_id", BigInteger, nullable=False),
    Column("external_id", Text, nullable=False),
    Column("data", Text, nullable=False),
    Column("n_assigned", Integer, nullable=False),
    Column("n_done", Integer, nullable=False),
    Column("is_open", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("target", Integer),
    Column("is_gold", Integer, nullable=False),
    Column("queue_rank", Integer, nullable=False),
)

leases = Table(
    "leases", metadata,
    Column("item_id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("project_id", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

annotations = Table(
    "annotations", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("item_id", BigInteger, nullable=False),
    Column("project_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("answers", Text, nullable=False),
    Column("active_ms", BigInteger, nullable=False),
    Column("idempotency_key", Text),
    Column("revision", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("review_status", Text, nullable=False),
    Column("reviewed_answers", Text),
    Column("reported_ms", BigInteger, nullable=False),
    Column("bound_ms", BigInteger, nullable=False),
    Column("reviewed_revision", Integer),
    Column("suggestion", Text),
    Column("suggestion_arm", Text),
)

annotation_revisions = Table(
    "annotation_revisions", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("annotation_id", BigInteger, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("answers", Text, nullable=False),
    Column("active_ms", BigInteger, nullable=False),
    Column("replaced_at", Float, nullable=False),
)

lapsed_leases = Table(
    "lapsed_leases", metadata,
    Column("item_id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("project_id", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("lapsed_at", Float, nullable=False),
)

skips = Table(
    "skips", metadata,
    Column("item_id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("project_id", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
)

gold = Table(
    "gold", metadata,
    Column("item_id", BigInteger, primary_key=True),
    Column("project_id", BigInteger, nullable=False),
    Column("answers", Text, nullable=False),
    Column("created_by", BigInteger),
    Column("created_at", Float, nullable=False),
)

paused_annotators = Table(
    "paused_annotators", metadata,
    Column("project_id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("reason", Text),
    Column("paused_by", BigInteger),
    Column("paused_at", Float, nullable=False),
)

# redundancy.second_opinions = "stronger_half": who gets no second opinions to give (services.second_opinions)
weaker_half = Table(
    "weaker_half", metadata,
    Column("project_id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("accuracy", Float, nullable=False),
    Column("median", Float, nullable=False),
    Column("answers", Integer, nullable=False),
    Column("from_answers", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
)

memberships = Table(
    "memberships", metadata,
    Column("project_id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("role", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("added_by", BigInteger),
    Column("added_at", Float, nullable=False),
    Column("blocked_at", Float),
)

invites = Table(
    "invites", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("token_hash", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("project_id", BigInteger),
    Column("project_role", Text),
    Column("created_by", BigInteger),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("max_uses", Integer, nullable=False),
    Column("uses", Integer, nullable=False),
    Column("revoked_at", Float),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", Float, nullable=False),
    Column("actor_id", BigInteger),
    Column("action", Text, nullable=False),
    Column("project_id", BigInteger),
    Column("target", Text),
    Column("details", Text),
)

events = Table(
    "events", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", Float, nullable=False),
    Column("kind", Text, nullable=False),
    Column("project_id", BigInteger),
    Column("payload", Text, nullable=False),
)

webhooks = Table(
    "webhooks", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("project_id", BigInteger),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("kinds", Text, nullable=False),
    Column("active", Integer, nullable=False),
    Column("created_by", BigInteger),
    Column("created_at", Float, nullable=False),
)

deliveries = Table(
    "deliveries", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("webhook_id", BigInteger, nullable=False),
    Column("event_id", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("delivered_at", Float),
)

reviews = Table(
    "reviews", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("annotation_id", BigInteger, nullable=False),
    Column("project_id", BigInteger, nullable=False),
    Column("reviewer_id", BigInteger),
    Column("decision", Text, nullable=False),
    Column("fixed_answers", Text),
    Column("feedback", Text),
    Column("created_at", Float, nullable=False),
    Column("revision", Integer),
)

review_leases = Table(
    "review_leases", metadata,
    Column("annotation_id", BigInteger, primary_key=True),
    Column("reviewer_id", BigInteger, nullable=False),
    Column("project_id", BigInteger, nullable=False),
    Column("expires_at", Float, nullable=False),
)

qualification_attempts = Table(
    "qualification_attempts", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("project_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("correct", Integer, nullable=False),
    Column("total", Integer, nullable=False),
    Column("passed", Integer),
)

qualification_answers = Table(
    "qualification_answers", metadata,
    Column("attempt_id", BigInteger, primary_key=True),
    Column("item_id", BigInteger, primary_key=True),
    Column("answers", Text, nullable=False),
    Column("correct", Integer, nullable=False),
    Column("checked", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
)

ledger = Table(
    "ledger", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("project_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("kind", Text, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("annotation_id", BigInteger),
    Column("period", Text),
    Column("note", Text),
    Column("created_at", Float, nullable=False),
)

messages = Table(
    "messages", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("project_id", BigInteger, nullable=False),
    Column("from_user", BigInteger),
    Column("to_user", BigInteger),
    Column("body", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

review_questions = Table(  # 0010: an annotator questions a review decision; a reviewer answers
    "review_questions", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("project_id", BigInteger, nullable=False),
    Column("annotation_id", BigInteger, nullable=False),
    Column("review_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("reply", Text),
    Column("replied_by", BigInteger),
    Column("replied_at", Float),
)

signin_failures = Table(
    "signin_failures", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("account", Text, nullable=False),
    Column("user_id", BigInteger),
    Column("address", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

code_runs = Table(  # 0012: code runs started in the last minute, for the per-person limit (services/runs.py)
    "code_runs", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
)

featurisers = Table(
    "featurisers", metadata,
    Column("project_id", BigInteger, primary_key=True),
    Column("version", Text, nullable=False),
    Column("blob", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
)

item_features = Table(
    "item_features", metadata,
    Column("item_id", BigInteger, primary_key=True),
    Column("project_id", BigInteger, nullable=False),
    Column("version", Text, nullable=False),
    Column("vector", LargeBinary, nullable=False),
    Column("holdout", Integer, nullable=False),
)

assist_models = Table(
    "assist_models", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("project_id", BigInteger, nullable=False),
    Column("question", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("n_train", Integer, nullable=False),
    Column("n_validation", Integer, nullable=False),
    Column("accuracy", Float),
    Column("thresholds", Text),
    Column("details", Text),
    Column("created_at", Float, nullable=False),
)

predictions = Table(
    "predictions", metadata,
    Column("item_id", BigInteger, primary_key=True),
    Column("project_id", BigInteger, nullable=False),
    Column("model_id", BigInteger, nullable=False),
    Column("label", Text, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("probas", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

machine_labels = Table(
    "machine_labels", metadata,
    Column("item_id", BigInteger, primary_key=True),
    Column("project_id", BigInteger, nullable=False),
    Column("question", Text, nullable=False),
    Column("label", Text, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("model_id", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("audit", Text, nullable=False),
    Column("audited_by", BigInteger),
    Column("audited_label", Text),
    Column("audited_at", Float),
)

assist_checks = Table(
    "assist_checks", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("project_id", BigInteger, nullable=False),
    Column("item_id", BigInteger, nullable=False),
    Column("kind", Text, nullable=False),
    Column("question", Text, nullable=False),
    Column("shown_label", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("leased_by", BigInteger),
    Column("lease_until", Float),
    Column("checked_by", BigInteger),
    Column("checked_label", Text),
    Column("checked_at", Float),
)

assist_state = Table(
    "assist_state", metadata,
    Column("project_id", BigInteger, primary_key=True),
    Column("auto_label", Text, nullable=False),
    Column("reason", Text),
    Column("audit_since", Float, nullable=False),
    Column("labels_at_train", Integer, nullable=False),
    Column("worker_until", Float, nullable=False),
    Column("features_done", Integer, nullable=False),
    Column("features_total", Integer, nullable=False),
    Column("ranked_at", Float),
    Column("updated_at", Float, nullable=False),
    Column("worker_at", Float),            # 0012: the background worker's last step, whichever process ran it
    Column("worker_error", Text),
    Column("worker_public_error", Text),
)

machine_annotators = Table(
    "machine_annotators", metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("project_id", BigInteger, nullable=False),
    Column("kind", Text, nullable=False),
    Column("config", Text, nullable=False),
    Column("enabled", Integer, nullable=False),
    Column("created_by", BigInteger),
    Column("created_at", Float, nullable=False),
)

llm_calls = Table(
    "llm_calls", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("project_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("item_id", BigInteger),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("cost", Text),
    Column("latency_ms", Integer, nullable=False),
    Column("error", Text),
    Column("created_at", Float, nullable=False),
)

rules = Table(  # 0011: rules as annotators (keyword, regex, python); votes are annotations of user_id
    "rules", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("project_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("question", Text, nullable=False),
    Column("field", Text),
    Column("pattern", Text, nullable=False),
    Column("label", Text),
    Column("enabled", Integer, nullable=False),
    Column("applied_through", BigInteger, nullable=False),
    Column("votes", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("last_error", Text),
    Column("created_by", BigInteger),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

rule_settings = Table(
    "rule_settings", metadata,
    Column("project_id", BigInteger, primary_key=True),
    Column("label_model", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
)
