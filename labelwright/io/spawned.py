"""A command's standard output as a stream of blocks: how the server runs its large exports in a child process.

A server process must not fork (:mod:`labelwright.io.forked` says why), but it may start a fresh
interpreter: :class:`subprocess.Popen` forks and executes at once, so nothing of the server is copied, and
the child (``labelwright export -o -``) then forks its own workers and makes the file on several cores.
The server only relays bytes, so its memory stays flat however large the project.

:func:`stream_output` starts the command and waits for its first block of output before it returns, so a
command that fails before writing anything (a project deleted meanwhile, a database the child cannot
open) is an ordinary error the caller can answer with, not a truncated download:

* the blocks come as the child writes them (a pipe; the child blocks while the reader is slow, so neither
  side holds more than a block or two);
* the child's standard error goes to a temporary file (a pipe could fill and stall it); its last lines
  are the message of the :class:`ChildFailed` raised if it exits with an error, before its first block or
  after its last (the server logs it; the client sees a reference);
* if the reader stops early and closes the output (:class:`labelwright.api.streaming.ClosingStream` does
  when a client goes away; the garbage collector does too, late) the child is killed, with the workers it
  forked (it leads a process group of its own). The child is always waited for: no zombie is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence

BLOCK = 1 << 20  # bytes read from the pipe at a time
STDERR_TAIL = 4000  # characters of the child's standard error kept for the message


class ChildFailed(RuntimeError):
    """The child process exited with an error; the message ends with the last of its standard error. Not a
    :class:`~labelwright.errors.LabelwrightError`: the server logs it under a reference and shows the client
    only that (the child's standard error may name files and settings)."""


def stream_output(argv: Sequence[str], env: Mapping[str, str],
                  on_end: Callable[[], None] | None = None) -> ChildOutput:
    """Run ``argv`` with the environment ``env`` and return its standard output as blocks of bytes. Blocks
    until the first block (or the child's exit): :class:`ChildFailed` if it exits with an error before any
    output. Iterating raises :class:`ChildFailed` if the child fails later, after the blocks it wrote;
    :meth:`ChildOutput.close` before the end kills the child. ``on_end`` is called once when the child has
    ended (finished, failed or killed), or if it could not be started."""
    errors = tempfile.TemporaryFile()
    try:
        # bufsize=0: stdout is the raw pipe, and read(BLOCK) returns whatever one read() gives, up to BLOCK
        child = subprocess.Popen(list(argv), bufsize=0, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=errors, env=dict(env),
                                 start_new_session=True)  # a group of its own: killed with its workers
    except BaseException:
        errors.close()
        if on_end is not None:
            on_end()
        raise
    out = ChildOutput(child, errors, on_end)
    try:
        out.first = out.read()
    except BaseException:
        out.close()
        raise
    return out


class ChildOutput:
    """A running child's standard output, block by block (an iterator), and :meth:`close`, which kills the
    child if it is still running: whether or not anyone started reading (a generator's ``close()`` runs
    nothing of a generator that never started, which would leave the child blocked on a full pipe)."""

    def __init__(self, child: subprocess.Popen, errors, on_end: Callable[[], None] | None = None) -> None:
        self._child = child
        self._errors = errors
        self._on_end = on_end
        self._ended = False  # the child was waited for: exited on its own, or killed
        self.first: bytes | None = None  # read before the caller gets this, so an early failure raises

    def read(self) -> bytes:
        """The next block; b"" once the child closed its output (then :class:`ChildFailed` if it failed)."""
        if self._ended:
            return b""
        assert self._child.stdout is not None
        block = self._child.stdout.read(BLOCK)
        if not block:
            self._ended = True
            try:
                _finish(self._child, self._errors)
            finally:
                self._done()
        return block

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        block, self.first = (self.first, None) if self.first else (self.read(), None)
        if not block:
            raise StopIteration
        return block

    def close(self) -> None:
        """Kill the child and the workers it forked if it still runs, and wait for it (idempotent)."""
        if not self._ended:
            self._ended = True
            try:
                _stop(self._child, self._errors)
            finally:
                self._done()

    def __del__(self) -> None:  # a safety net: the caller should close it (ClosingStream does)
        try:
            self.close()
        except Exception:  # noqa: BLE001 - nothing to tell at collection time
            pass

    def _done(self) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()


def _finish(child: subprocess.Popen, errors) -> None:
    """The child closed its output: wait for it, and raise with its standard error if it failed."""
    code = child.wait()
    if child.stdout is not None:
        child.stdout.close()
    errors.seek(0)
    tail = errors.read()[-STDERR_TAIL:].decode(errors="replace").strip()
    errors.close()
    if code != 0:
        raise ChildFailed(f"the export process failed (exit status {code})" + (f": {tail}" if tail else ""))


def _stop(child: subprocess.Popen, errors) -> None:
    """Kill the child and the workers it forked, and wait for it."""
    if child.poll() is None:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    child.wait()
    if child.stdout is not None:
        child.stdout.close()
    errors.close()
