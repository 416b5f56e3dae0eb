"""Sending a transaction's statements to PostgreSQL together, for the hot path: a thin layer over libpq.

:class:`Wire` queues statements and sends everything queued in one go when a result is first read
(libpq's pipeline mode: one round trip for all of them). Each statement is a server-side prepared
statement, prepared on the connection the first time it is sent there (in the same round trip), so
PostgreSQL plans the big claim and submit statements once per connection, not once per call.

Why not psycopg's own pipeline mode (``Connection.pipeline()``)? It is the same protocol, but it costs
about 60 microseconds of Python per statement (a cursor, an adapters map, a queue of generators) against
about 5 here, and the hot path sends about ten statements per annotation. Everything else is still
psycopg's: the dumping of parameters and the loading of rows (:class:`psycopg.adapt.Transformer`, with the
connection's adapters, as a cursor does) and the error
classes (a deadlock is :class:`psycopg.errors.DeadlockDetected`, a timeout
:class:`psycopg.errors.QueryCanceled`).

The hot pool's connections have psycopg's own automatic preparing turned off (``prepare_threshold =
None``): psycopg answers a ``ROLLBACK`` on a connection where it prepared statements with ``DEALLOCATE
ALL``, which would drop these too.
"""

from __future__ import annotations

import itertools
import re
import select
import weakref
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_COMMAND_OK = pq.ExecStatus.COMMAND_OK
_FATAL_ERROR = pq.ExecStatus.FATAL_ERROR
_PIPELINE_SYNC = pq.ExecStatus.PIPELINE_SYNC

_PARAM = re.compile(rb"(?<![:\w]):([A-Za-z_]\w*)")  # a :name parameter (not a ::cast)
# A statement with :name parameters -> (the statement with $1, $2, ..., the names in that order).
_converted: dict[str, tuple[bytes, tuple[str, ...]]] = {}

# The statements prepared on each connection: (query, parameter types) -> the prepared statement's name.
_prepared: weakref.WeakKeyDictionary[psycopg.Connection, dict[tuple, bytes]] = weakref.WeakKeyDictionary()
_names = itertools.count(1)  # never reused: a name whose PREPARE failed is simply dropped


class Result:
    """The rows of one queued statement; reading them first sends what is queued, if it has not gone."""

    __slots__ = ("_flush", "rows", "_pos")

    def __init__(self, flush: Callable[[], None]):
        self._flush = flush
        self.rows: list | None = None
        self._pos = 0

    def fetchone(self):
        if self.rows is None:
            self._flush()
        assert self.rows is not None
        if self._pos >= len(self.rows):
            return None
        self._pos += 1
        return self.rows[self._pos - 1]

    def fetchall(self) -> list:
        if self.rows is None:
            self._flush()
        assert self.rows is not None
        rest, self._pos = self.rows[self._pos:], len(self.rows)
        return rest


class Wire:
    """Statements for one connection (``%(name)s`` parameters), queued and sent together.

    If a statement fails, PostgreSQL skips the rest of those sent with it; the error (psycopg's class
    for its SQLSTATE) is raised by :meth:`flush`, so by whoever reads a result, and the transaction is
    left aborted for its owner to roll back."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn
        self.pg = conn.pgconn
        self._tx = Transformer(conn)
        self._queued: list[tuple[bytes, Sequence[Any], tuple[int, ...], Any, Result]] = []
        prepared = _prepared.get(conn)
        if prepared is None:
            prepared = _prepared[conn] = {}
        self._prepared = prepared

    def execute(self, statement: str, params: dict | None = None) -> Result:
        """Queue ``statement`` (``:name`` parameters, taken from ``params``); its :class:`Result` has the
        rows once the queue has been sent."""
        converted = _converted.get(statement)
        if converted is None:
            converted = _converted[statement] = _convert(statement)
        query, names = converted
        tx = self._tx
        if names:
            assert params is not None, statement
            dumped = tx.dump_sequence([params[name] for name in names], [PyFormat.AUTO] * len(names))
            types, formats = tuple(tx.types or ()), tx.formats
        else:
            dumped, types, formats = [], (), None
        result = Result(self.flush)
        self._queued.append((query, dumped, types, formats, result))
        return result

    def clear(self) -> None:
        """Forget what is queued and was never sent."""
        self._queued.clear()

    def flush(self) -> None:
        """Send everything queued (preparing what this connection has not seen), one round trip, and hand
        each statement its rows."""
        queued, self._queued = self._queued, []
        if not queued:
            return
        pg = self.pg
        expect: list[tuple | Result] = []  # in order: a PREPARE's key, or a statement's Result
        pg.enter_pipeline_mode()
        try:
            for query, dumped, types, formats, result in queued:
                key = (query, types)
                name = self._prepared.get(key)
                if name is None:
                    name = self._prepared[key] = b"lw%d" % next(_names)
                    pg.send_prepare(name, query, types)
                    expect.append(key)
                pg.send_query_prepared(name, dumped, formats)
                expect.append(result)
            pg.pipeline_sync()
            self._send()
            error = None
            for what in expect:
                res = self._result()
                if isinstance(what, tuple):  # a PREPARE
                    if res.status != _COMMAND_OK:
                        self._prepared.pop(what, None)
                        error = error or self._error(res)
                elif res.status == _TUPLES_OK:
                    self._tx.set_pgresult(res)
                    what.rows = self._tx.load_rows(0, res.ntuples, tuple)
                elif res.status == _COMMAND_OK:
                    what.rows = []
                elif error is None:  # the failing statement (those after it come back PIPELINE_ABORTED)
                    error = self._error(res)
                if self._result_or_none() is not None:
                    raise psycopg.InterfaceError("more than one result for a statement")
            if self._result().status != _PIPELINE_SYNC:
                raise psycopg.InterfaceError("expected the end of the pipeline")
        except BaseException:
            self.conn.close()  # its state is unknown: not fit for anyone else (the pool replaces it)
            raise
        pg.exit_pipeline_mode()
        if error is not None:
            if isinstance(error, pg_errors.InvalidSqlStatementName):
                # Someone dropped this session's prepared statements (DEALLOCATE ALL, DISCARD ALL): prepare
                # afresh from the next statement on (this transaction is lost; a batch reruns its calls).
                self._prepared.clear()
            raise error

    def _error(self, res: pq.abc.PGresult) -> psycopg.Error:
        return pg_errors.error_from_result(res, encoding=self.conn.info.encoding)

    def _send(self) -> None:
        pg = self.pg
        while pg.flush():  # the socket is full: wait until it takes more (reading what has come meanwhile)
            if _wait(pg.socket, select.POLLIN | select.POLLOUT) & select.POLLIN:
                pg.consume_input()

    def _result(self) -> pq.abc.PGresult:
        res = self._result_or_none()
        if res is None:
            raise psycopg.InterfaceError("a result is missing")
        return res

    def _result_or_none(self) -> pq.abc.PGresult | None:
        pg = self.pg
        while pg.is_busy():
            _wait(pg.socket, select.POLLIN)
            pg.consume_input()
        return pg.get_result()


def _convert(statement: str) -> tuple[bytes, tuple[str, ...]]:
    """``statement``'s ``:name`` parameters numbered in order of first appearance ($1, $2, ...)."""
    names: list[str] = []

    def number(m: re.Match) -> bytes:
        name = m.group(1).decode()
        if name not in names:
            names.append(name)
        return b"$%d" % (names.index(name) + 1)
    return _PARAM.sub(number, statement.encode()), tuple(names)


def _wait(fd: int, events: int) -> int:
    """Wait until socket ``fd`` is ready for ``events``; returns the events that happened."""
    poller = select.poll()
    poller.register(fd, events)
    got = 0
    for _fd, ready in poller.poll():
        got |= ready
    return got
