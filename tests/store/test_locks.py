"""Advisory locks are per schema (labelwright.store.locks): two labelwright instances in one PostgreSQL
database, one schema each, never block each other, while inside one schema a lock still excludes."""

import pytest
from sqlalchemy import create_engine, text

from labelwright.store import locks
from labelwright.store.queue_sql import LOCK_USER, TRY_LOCK_USER
from tests.conftest import PG_URL, PgSchema, require_pg


@pytest.fixture
def two_schemas():
    require_pg()
    a, b = PgSchema(), PgSchema()
    engines = [create_engine(s.url) for s in (a, b)]
    try:
        yield engines
    finally:
        for e in engines:
            e.dispose()
        a.drop()
        b.drop()


def _try(engine, statement: str, **params) -> bool:
    with engine.connect() as conn:
        got = conn.execute(text(statement), params).scalar()
        conn.rollback()
        return bool(got)


def test_a_users_lock_in_one_schema_does_not_block_the_same_id_in_another(two_schemas):
    a, b = two_schemas
    with a.connect() as held:
        held.execute(text(LOCK_USER.replace(":u", "7")))  # user 7 of instance A, held in this transaction
        assert not _try(a, TRY_LOCK_USER, u=7)  # the same instance: excluded
        assert _try(b, TRY_LOCK_USER, u=7)  # instance B's user 7 is someone else
        assert _try(a, TRY_LOCK_USER, u=8)  # another user of A
        for kind in ("migrate", "pay", "signin"):  # other classes of lock never meet the users' locks
            assert _try(a, f"SELECT pg_try_advisory_xact_lock({locks.key_sql(kind)}, 7)")
        held.rollback()
    assert _try(a, TRY_LOCK_USER, u=7)


def test_a_schema_that_does_not_exist_yet_still_gets_a_key():
    require_pg()
    engine = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)
                           + ("&" if "?" in PG_URL else "?") + "options=-csearch_path%3Dlw_no_such_schema")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT current_schema()")).scalar() is None
            assert conn.execute(text(f"SELECT {locks.MIGRATE}")).scalar() is not None  # a key, not NULL
    finally:
        engine.dispose()
    with pytest.raises(ValueError):
        locks.key_sql("x'; DROP TABLE users; --")
