"""One way for the browser tests to start Chromium and to close what they opened, with closes that cannot hang.

Now and then (a few times in a hundred full runs, only under load) Chromium never answers Playwright's
request to dispose of a browser context, after the test's last assertion, and ``context.close()`` waits
for ever: the test then fails on pytest-timeout's limit and the run loses five minutes. Closing is not
what the tests check, so :func:`close_context` and :func:`launched` bound each close: past
:data:`CLOSE_TIMEOUT_S` they warn (the warning shows in the run's summary) and go on, and a browser that
does not close is killed with its process group.
"""

from __future__ import annotations

import asyncio
import os
import signal
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
CLOSE_TIMEOUT_S = 20.0


def _bounded(obj, coro, what: str) -> bool:
    """Run a Playwright close coroutine of ``obj`` (a sync-API object) for at most CLOSE_TIMEOUT_S."""
    try:
        obj._sync(asyncio.wait_for(coro, CLOSE_TIMEOUT_S))
        return True
    except TimeoutError:
        warnings.warn(f"Chromium did not {what} within {CLOSE_TIMEOUT_S:.0f} s; the test goes on without it",
                      stacklevel=3)
        return False


def close_context(context) -> None:
    """``context.close()``, bounded (see the module's docstring)."""
    _bounded(context, context._impl_obj.close(reason=None), "close a browser context")


def _descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        todo += kids
    return found


def kill_chromium() -> int:
    """SIGKILL the Chromium processes this test process started (through Playwright's driver), with their
    process groups. Returns how many were found."""
    killed = 0
    for pid in _descendants(os.getpid()):
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue
        if "chrom" in Path(exe).name:
            killed += 1
            try:
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            except OSError:
                pass
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    return killed


@contextmanager
def launched(**options) -> Iterator:
    """A Chromium browser (Playwright's sync API) for the block; closed after it, or killed if it will not close."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - playwright is optional outside CI: browser tests skip without it

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, **options)
        try:
            yield browser
        finally:
            if not _bounded(browser, browser._impl_obj.close(reason=None), "close"):
                kill_chromium()
