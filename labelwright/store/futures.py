"""Handing results from a writer thread back to the event loops waiting for them (SQLite's writer and
PostgreSQL's batcher both answer many callers, on possibly several loops, after one commit)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


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
