"""Which webhooks listen to an event: the one definition of the rule, as SQL text (the hand-written
statements of the submission's hot path), as SQLAlchemy Core (the rest) and in Python.

An active webhook listens to the events of one project (``project_id``) or of every project (NULL), and to
every kind (``kinds = '*'``) or to the kinds its JSON list names (``'["item.completed", ...]'``). The SQL
spells the test without ``LIKE`` patterns (a literal ``%`` would clash with psycopg's parameter style in
the statements run on the driver's cursor) and reads the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ColumnElement, Text, and_, func, literal, or_

from labelwright.store import tables as t


def of_project(alias: str = "w") -> str:
    """The SQL condition that the row ``alias`` of ``webhooks`` is active and is for the project ``:p`` (or
    for every project)."""
    return f"{alias}.active = 1 AND ({alias}.project_id IS NULL OR {alias}.project_id = :p)"


def listening(kind_sql: str, alias: str = "w") -> str:
    """:func:`of_project`, and the webhook wants events of the kind ``kind_sql``: an SQL text expression (a
    parameter such as ``CAST(:k AS text)``, a quoted literal, a column)."""
    w = alias
    return (of_project(w) + " "
            f"AND ({w}.kinds = '*' OR replace({w}.kinds, '\"' || {kind_sql} || '\"', '') <> {w}.kinds)")


def wants(kinds: str, kind: str) -> bool:
    """:func:`listening`'s test of the kind, in Python, on a webhook's ``kinds`` column."""
    return kinds == "*" or f'"{kind}"' in kinds


def of_project_expr(project_id: int | None) -> ColumnElement[bool]:
    """:func:`of_project` as Core, on ``tables.webhooks``, for the project ``project_id``."""
    w = t.webhooks
    return and_(w.c.active == 1, or_(w.c.project_id.is_(None), w.c.project_id == literal(project_id, BigInteger)))


def listening_expr(kind: str, project_id: int | None) -> ColumnElement[bool]:
    """:func:`listening` as Core: :func:`of_project_expr`, and the webhook wants events of ``kind``."""
    w = t.webhooks
    quoted = literal('"' + kind + '"', Text)
    return and_(of_project_expr(project_id), or_(w.c.kinds == "*", func.replace(w.c.kinds, quoted, "") != w.c.kinds))
