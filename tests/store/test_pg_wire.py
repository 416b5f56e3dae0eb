"""labelwright.store.pg_wire: statements queued and sent together over libpq, as prepared statements."""

import psycopg
import pytest
from psycopg import errors

from labelwright.store import Store
from labelwright.store.pg_wire import Wire, _prepared
from tests.conftest import PG_URL, require_pg


@pytest.fixture
def conn():
    require_pg()
    with psycopg.connect(PG_URL, autocommit=True) as c:
        c.execute("CREATE TEMPORARY TABLE t (id int PRIMARY KEY, name text, score float8, ok bool)")
        yield c


def test_statements_go_together_and_each_gets_its_own_rows(conn):
    wire = Wire(conn)
    begin = wire.execute("BEGIN")
    ins = wire.execute("INSERT INTO t VALUES (:i, :n, :s, :ok) RETURNING id, name, score, ok",
                       {"i": 1, "n": "it's", "s": 0.5, "ok": True})
    ins2 = wire.execute("INSERT INTO t VALUES (:i, :n, NULL, :ok) RETURNING id, name, score, ok",
                        {"i": 2, "n": None, "ok": False, "unused": "extra keys are ignored"})
    many = wire.execute("SELECT id FROM t WHERE id = ANY(:ids) ORDER BY id", {"ids": [1, 2, 3]})
    # the same :name twice is one parameter; a ::cast is not a parameter
    same = wire.execute("SELECT :x::int + :x::int, 'a:b'", {"x": 20})
    wire.execute("COMMIT")
    assert begin.rows is None  # nothing sent yet
    assert many.fetchall() == [(1,), (2,)]  # reading one result sends everything queued
    assert begin.fetchall() == []
    assert ins.fetchone() == (1, "it's", 0.5, True) and ins.fetchone() is None
    assert ins2.fetchall() == [(2, None, None, False)]
    assert same.fetchone() == (40, "a:b")
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert conn.pgconn.pipeline_status == 0


def test_statements_are_prepared_once_per_connection(conn):
    wire = Wire(conn)
    for n in range(3):
        assert wire.execute("SELECT :n::int * 2", {"n": n}).fetchone() == (n * 2,)
    names = [r[0] for r in conn.execute("SELECT name FROM pg_prepared_statements "
                                        "WHERE statement LIKE 'SELECT $1::int * 2%'").fetchall()]
    assert len(names) == 1 and names[0].startswith("lw")
    assert len([k for k in _prepared[conn] if k[0] == b"SELECT $1::int * 2"]) == 1
    # another Wire on the same connection reuses it
    assert Wire(conn).execute("SELECT :n::int * 2", {"n": 5}).fetchone() == (10,)
    assert conn.execute("SELECT count(*) FROM pg_prepared_statements "
                        "WHERE statement LIKE 'SELECT $1::int * 2%'").fetchone() == (1,)


def test_a_failing_statement_raises_psycopgs_class_and_skips_the_rest(conn):
    wire = Wire(conn)
    wire.execute("BEGIN")
    wire.execute("INSERT INTO t (id) VALUES (:i)", {"i": 1})
    dup = wire.execute("INSERT INTO t (id) VALUES (:i)", {"i": 1})
    after = wire.execute("INSERT INTO t (id) VALUES (:i)", {"i": 2})
    with pytest.raises(errors.UniqueViolation):
        dup.fetchone()
    assert after.rows is None  # PostgreSQL skipped it
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
    assert not conn.closed and conn.pgconn.pipeline_status == 0
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
    # the connection goes on working, prepared statements included
    assert Wire(conn).execute("INSERT INTO t (id) VALUES (:i) RETURNING id", {"i": 3}).fetchone() == (3,)


def test_a_statement_that_cannot_be_prepared_raises_and_is_not_remembered(conn):
    wire = Wire(conn)
    bad = wire.execute("SELECT nope FROM t WHERE id = :i", {"i": 1})
    with pytest.raises(errors.UndefinedColumn):
        bad.fetchone()
    assert not any(b"nope" in k[0] for k in _prepared[conn])
    conn.execute("ALTER TABLE t ADD COLUMN nope int")  # now it can be: prepared afresh, under a new name
    assert Wire(conn).execute("SELECT nope FROM t WHERE id = :i", {"i": 1}).fetchall() == []


def test_a_statement_past_the_timeout_is_query_canceled(conn):
    conn.execute("SET statement_timeout = 50")
    wire = Wire(conn)
    slow = wire.execute("SELECT pg_sleep(:s)", {"s": 1})
    with pytest.raises(errors.QueryCanceled):
        slow.fetchone()
    assert not conn.closed


def test_a_connection_the_server_ended_is_closed_not_reused(conn):
    other = psycopg.connect(PG_URL, autocommit=True)
    try:
        other.execute("SELECT pg_terminate_backend(%s)", [conn.info.backend_pid])
    finally:
        other.close()
    wire = Wire(conn)
    with pytest.raises(psycopg.OperationalError):
        wire.execute("SELECT :x::int", {"x": 1}).fetchone()
    assert conn.closed  # the pool sees it closed and opens another


def test_a_rollback_on_a_hot_connection_keeps_the_prepared_statements():
    """psycopg answers a ROLLBACK with DEALLOCATE ALL on a connection where it prepared statements itself
    (after 5 runs of one query). The hot pool turns that off, so a batch that failed and was rolled back
    does not leave the next call with 'prepared statement "lw1" does not exist' (a 500 seen under load)."""
    require_pg()
    store = Store(PG_URL, pool_size=1)
    try:
        with store.hot_connection() as c:
            assert c.prepare_threshold is None
            assert Wire(c).execute("SELECT :n::int + 1", {"n": 1}).fetchone() == (2,)
            for _ in range(8):  # what psycopg would have prepared on its own
                c.execute("SELECT 1 WHERE %s::int = 1", [1]).fetchone()
            c.execute("BEGIN")
            c.execute("ROLLBACK")
            assert Wire(c).execute("SELECT :n::int + 1", {"n": 2}).fetchone() == (3,)
        assert store.lookup("SELECT :n::int + 1", {"n": 3}) == (4,)  # lookups use the same statements
    finally:
        store.close()


def test_prepared_statements_dropped_behind_its_back_are_prepared_again(conn):
    wire = Wire(conn)
    assert wire.execute("SELECT :n::int * 3", {"n": 1}).fetchone() == (3,)
    conn.execute("DEALLOCATE ALL")  # as a pooler's reset or a DISCARD ALL would
    with pytest.raises(errors.InvalidSqlStatementName):
        Wire(conn).execute("SELECT :n::int * 3", {"n": 2}).fetchone()
    assert Wire(conn).execute("SELECT :n::int * 3", {"n": 3}).fetchone() == (9,)
