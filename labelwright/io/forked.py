"""Ordered work in forked processes: the pieces of one output made on several cores, read back in order.

A large export is bound by Python work per item (parsing, formatting), one core's worth under the GIL;
:func:`in_order` spreads its chunks over ``workers`` processes forked from the caller, so each inherits
what the caller computed first (the project, its aggregated labels) without copying or pickling it:

* worker ``w`` makes pieces ``w``, ``w + workers``, ``w + 2 * workers``... and writes each through a pipe
  of its own as it is made, length first;
* the caller reads piece 0 from worker 0, piece 1 from worker 1, and so on: the pieces come out in order,
  and since a worker blocks while its pipe is full, no worker runs more than about one piece ahead of the
  reader, so memory stays a piece per worker however long the output;
* an exception in a worker reaches the caller (as :class:`WorkerError` with the worker's message, in its
  place in the order); if the caller stops early (an error of its own, a closed generator) the workers
  are killed. Every worker is waited for: no zombie is left.

Forking is POSIX-only and safe only where the caller controls its threads (the CLI): a server process
must not fork (its event loop and connection pools would be copied), so the server's exports run in
one process. Workers leave with ``os._exit``: they run none of the parent's clean-up (they must not close
the parent's database connections, which they share).
"""

from __future__ import annotations

import os
import signal
import struct
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import BinaryIO

_HEADER = struct.Struct("<BQ")  # kind (0: a piece, 1: an error message), length
_PIECE, _ERROR = 0, 1


class WorkerError(RuntimeError):
    """A worker process failed; the message is its exception's, with the worker's traceback after it."""


def default_workers(most: int) -> int:
    """How many workers to fork by default: the cores this process may run on (its CPU affinity), at most
    ``most``; 1 (no fork) but on Linux, where forking a process that has loaded native libraries and
    started threads is routine (macOS's system libraries are not safe to use after a fork)."""
    if not sys.platform.startswith("linux"):
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(most, cores))


def in_order(n: int, make: Callable[[int], bytes], workers: int, start: Callable[[], None] | None = None,
             stop: Callable[[], None] | None = None) -> Iterator[bytes]:
    """``make(0), make(1), ..., make(n - 1)``, computed by ``workers`` forked processes (in this process
    when ``workers <= 1`` or there is only one piece). ``start``: run once in each worker before its first
    piece (to open its own database connections); ``stop``: once after its last, or after its error (to
    close them)."""
    if workers <= 1 or n < 2 or not hasattr(os, "fork"):
        if start is not None:
            start()
        try:
            for j in range(n):
                yield make(j)
        finally:
            if stop is not None:
                stop()
        return
    workers = min(workers, n)
    readers: list[BinaryIO] = []
    pids: list[int] = []
    done = False
    try:
        for w in range(workers):
            r, wfd = os.pipe()
            pid = os.fork()
            if pid == 0:  # the worker
                os.close(r)
                for other in readers:
                    other.close()
                _work(w, workers, n, make, (start, stop), wfd)  # never returns
            os.close(wfd)
            pids.append(pid)
            readers.append(os.fdopen(r, "rb", buffering=1 << 20))
        for j in range(n):
            yield _read(readers[j % workers], j)
        done = True
    finally:
        for f in readers:
            f.close()  # a worker still writing gets EPIPE (or SIGPIPE) and ends
        for pid in pids:
            _reap(pid, kill=not done)


def aside(make: Callable[[], bytes], start: Callable[[], None] | None = None,
          stop: Callable[[], None] | None = None) -> Callable[[], bytes]:
    """Start ``make()`` in one forked process (``start`` and ``stop`` as in :func:`in_order`) and return a
    function that waits for its bytes: the caller works on meanwhile, on another core. The function raises
    :class:`WorkerError` if the process failed, and must be called (it reaps the process)."""
    if not hasattr(os, "fork"):
        def here() -> bytes:
            return b"".join(in_order(1, lambda _j: make(), 1, start, stop))
        return here
    r, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        os.close(r)
        _work(0, 1, 1, lambda _j: make(), (start, stop), wfd)  # never returns
    os.close(wfd)
    reader = os.fdopen(r, "rb", buffering=1 << 20)

    def result() -> bytes:
        done = False
        try:
            piece = _read(reader, 0)
            done = True
            return piece
        finally:
            reader.close()
            _reap(pid, kill=not done)
    return result


def _work(w: int, workers: int, n: int, make: Callable[[int], bytes], hooks: tuple, fd: int) -> None:
    start, stop = hooks
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends the workers with the parent
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # the reader went away: end quietly
        with os.fdopen(fd, "wb", buffering=1 << 20) as out:
            failed = None
            try:
                if start is not None:
                    start()
                for j in range(w, n, workers):
                    piece = make(j)
                    out.write(_HEADER.pack(_PIECE, len(piece)))
                    out.write(piece)
            except BaseException as e:  # noqa: BLE001 - handed to the parent, in its place in the order
                failed = f"{type(e).__name__}: {e}\n{traceback.format_exc()}".encode(errors="replace")
            if stop is not None:  # before the error goes out: the parent kills the workers once it has it
                stop()
            if failed is not None:
                out.write(_HEADER.pack(_ERROR, len(failed)))
                out.write(failed)
                code = 1
    except BaseException:  # noqa: BLE001 - the parent has gone; nothing to tell it
        code = 1
    finally:
        os._exit(code)


def _read(f, j: int) -> bytes:
    header = f.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise WorkerError(f"a worker process ended before piece {j} (killed, or out of memory)")
    kind, length = _HEADER.unpack(header)
    body = f.read(length)
    if len(body) < length:
        raise WorkerError(f"a worker process ended in the middle of piece {j} (killed, or out of memory)")
    if kind == _ERROR:
        raise WorkerError(body.decode(errors="replace"))
    return body


def _reap(pid: int, kill: bool) -> None:
    """Wait for worker ``pid`` (it has written its last piece and is leaving); with ``kill`` (the reader
    stopped early) kill it first if it is still running."""
    try:
        if kill and os.waitpid(pid, os.WNOHANG)[0] == 0:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
