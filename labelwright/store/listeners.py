"""Which webhooks listen to an event: the one definition of the rule, as SQL and in Python.

An active webhook listens to the events of one project (``project_id``) or of every project (NULL), and to
every kind (``kinds = '*'``) or to the kinds its JSON list names (``'["item.completed", ...]'``). The SQL
spells the test without ``LIKE`` patterns (a literal ``%`` would clash with psycopg's parameter style in
the statements run on the driver's cursor) and reads the same on SQLite and PostgreSQL.
"""

from __future__ import annotations


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
