"""PostgreSQL advisory-lock keys: one class of lock each, in the schema this store works in.

Advisory locks belong to the whole database, while ids (users, projects) repeat across schemas: two
labelwright instances in one database (``pg_schema``, one schema each; the test suite runs that way) must
not serialise each other's annotators or migrations. Every lock is therefore taken with two keys: the hash
of the current schema and the lock's class, and the id it guards (0 for a lock of the whole instance).
``COALESCE``: a schema that does not exist yet (a first migration) still gets a key.
"""

from __future__ import annotations


def key_sql(kind: str) -> str:
    """SQL for the first key of lock class ``kind`` (a short name: ``user``, ``pay``...) in this schema. The
    class is joined with "/", never ":", which the statements' `:name` parameters would take for one."""
    if not kind.isidentifier():
        raise ValueError(f"a lock class is a plain name, not {kind!r}")
    return f"hashtext(COALESCE(current_schema(), '') || '/{kind}')"


USER = key_sql("user")          # one annotator's claims and submissions, in order (labelwright.services.queue)
MIGRATE = key_sql("migrate")    # one migration at a time (labelwright.store.migrate)
PAY = key_sql("pay")            # one settlement of a project's pay at a time (labelwright.services.pay)
SIGNIN = key_sql("signin")      # the sign-in limits' window (labelwright.services.signin)
MACHINE = key_sql("machine")    # one run per machine annotator (labelwright.services.machines)
CODE_RUNS = key_sql("code_runs")  # one person's code-run count (labelwright.services.runs)
