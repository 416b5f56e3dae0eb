"""The lookups every request makes, hand-written like the queue's hot statements, with named rows.

:meth:`labelwright.store.Store.lookup` runs each as one plain statement outside a transaction (the cheap way
for a read every request makes). The driver's cursor returns plain tuples; the callers wrap them in the
row types here (``TokenRow._make(row)``), so no caller reads a column by its position. Everything else in
labelwright builds its SQL with SQLAlchemy Core (:mod:`labelwright.store.tables`).
"""

from __future__ import annotations

from typing import NamedTuple


class ProjectRow(NamedTuple):
    """A project's columns, as :func:`labelwright.services.projects.project_from_row` reads them (it reads
    them by name: a SQLAlchemy row of the ``projects`` table does as well)."""
    id: int
    slug: str
    name: str
    schema: str  # JSON text
    overlap: int
    lease_seconds: int
    created_at: float
    updated_at: float


PROJECT_COLUMNS = ", ".join(ProjectRow._fields)


class ProjectAccessRow(NamedTuple):
    """:data:`PROJECT_BY_ID` / :data:`PROJECT_BY_SLUG`: the project and the caller's membership of it."""
    id: int
    slug: str
    name: str
    schema: str
    overlap: int
    lease_seconds: int
    created_at: float
    updated_at: float
    member_role: str | None  # None: not a member
    member_status: str | None


class MembershipRow(NamedTuple):
    """:data:`ROLE_IN`: a user's membership of a project."""
    role: str
    status: str  # active or blocked


class PredictionRow(NamedTuple):
    """:data:`PREDICTION_OF`: an item's stored prediction and the model version that made it."""
    label: str  # JSON text
    confidence: float
    version: str


class AnswersAfterRow(NamedTuple):
    """:data:`ANSWERS_AFTER`: how many answers a project received after a given one."""
    n: int


class TokenRow(NamedTuple):
    """:data:`API_TOKEN`: the user an API token belongs to, and whether it may still be used."""
    user_id: int
    name: str
    role: str
    disabled: int
    expires_at: float | None
    revoked_at: float | None


_PROJECT_FOR = (f"SELECT {', '.join('p.' + c for c in ProjectRow._fields)}, m.role, m.status FROM projects p "
                "LEFT JOIN memberships m ON m.project_id = p.id AND m.user_id = :u WHERE p.{key} = :r")
PROJECT_BY_ID = _PROJECT_FOR.format(key="id")
PROJECT_BY_SLUG = _PROJECT_FOR.format(key="slug")
PROJECT_ONLY_BY_ID = f"SELECT {PROJECT_COLUMNS} FROM projects WHERE id = :r"
PROJECT_ONLY_BY_SLUG = f"SELECT {PROJECT_COLUMNS} FROM projects WHERE slug = :r"
ROLE_IN = "SELECT role, status FROM memberships WHERE project_id = :p AND user_id = :u"
# whether the user passed the project's qualification test (every next item of a qualified project asks)
QUALIFIED = "SELECT 1 FROM qualification_attempts WHERE project_id = :p AND user_id = :u AND passed = 1 LIMIT 1"
PREDICTION_OF = ("SELECT p.label, p.confidence, m.version FROM predictions p JOIN assist_models m "
                 "ON m.id = p.model_id WHERE p.item_id = :i")
# whether a webhook delivery is due (the webhook worker's every pass; the usual answer is no)
DELIVERY_DUE = ("SELECT 1 FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id "
                "WHERE d.status = 'pending' AND d.next_attempt_at <= :now AND w.active = 1 LIMIT 1")
# a project's answers after annotation :x (adaptive redundancy asks at every decision whether to refit)
ANSWERS_AFTER = "SELECT count(*) FROM annotations WHERE project_id = :p AND id > :x"
API_TOKEN = ("SELECT u.id, u.name, u.role, u.disabled, t.expires_at, t.revoked_at FROM tokens t "
             "JOIN users u ON u.id = t.user_id WHERE t.token_hash = :h AND t.kind = 'api'")

assert ProjectAccessRow._fields[:len(ProjectRow._fields)] == ProjectRow._fields  # the same first columns
