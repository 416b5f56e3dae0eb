"""What SQLite's writer and PostgreSQL's batchers share: taking the calls that wait in their queue as one
batch, and handing the results back to the event loops waiting for them (both answer many callers, on
possibly several loops, after one commit)."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Iterable
from typing import Any


def take_batch(jobs: queue.SimpleQueue, limit: int) -> list | None:
    """Wait for the first job in ``jobs``, then take the others already waiting, at most ``limit`` in all.
    None when the first is ``None`` (the thread is told to stop). A ``None`` met after the first is put back,
    so that the thread stops after this batch (or another thread sharing the queue stops)."""
    first = jobs.get()
    if first is None:
        return None
    batch = [first]
    while len(batch) < limit:
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            break
        if job is None:
            jobs.put(None)
            break
        batch.append(job)
    return batch


def deliver(results: Iterable[tuple[asyncio.AbstractEventLoop, asyncio.Future, bool, Any]]) -> None:
    """Settle each ``(loop, future, ok, value)`` on its own loop: ``value`` is the result when ``ok``, else
    the exception to raise. One callback per loop; a closed loop has nobody left to answer."""
    by_loop: dict = {}
    for loop, fut, ok, value in results:
        by_loop.setdefault(loop, []).append((fut, ok, value))
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, items)
        except RuntimeError:  # the loop has closed; nobody is waiting any more
            pass


def _settle(items) -> None:
    for fut, ok, value in items:
        if fut.cancelled():
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)
