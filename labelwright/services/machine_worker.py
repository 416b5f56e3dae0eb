"""The machine worker: lets the projects' LLM annotators work the queue in the background.

Each pass (:meth:`MachineWorker.run_once`) visits every project with an enabled LLM annotator and calls
:func:`labelwright.services.machines.run_llm_annotators` with a small ``batch``, so no project waits long
behind another and a stop request is honoured within one model call. No transaction is held over a model
call (claims and submissions are short transactions of their own), so several server processes sharing a
PostgreSQL database may each run a worker: the queue hands each item out once, and a session-level advisory
lock keeps one machine annotator to one process at a time.

A project whose pass answered nothing and failed (the endpoint is down, the key is missing) is left alone
for a while: the wait doubles from ``interval`` up to :data:`MAX_BACKOFF` seconds, and any answer resets it.

:meth:`MachineWorker.start` runs passes in a daemon thread every ``interval`` seconds (sooner while there is
work); :meth:`MachineWorker.stop` ends it. Tests call :meth:`run_once`.
"""

from __future__ import annotations

import logging
import time

from labelwright.errors import NotFound
from labelwright.services import machines
from labelwright.services.background import Background
from labelwright.services.projects import get_project
from labelwright.store import Store

log = logging.getLogger("labelwright.machines")

MAX_BACKOFF = 300.0  # the longest wait before a failing project is tried again, in seconds


class MachineWorker(Background):
    """Runs the LLM annotators of ``store``'s projects: ``run_once()`` for one pass, ``start()``/``stop()``
    for a thread. ``interval``: seconds between passes when there is nothing to do; ``batch``: items each
    annotator answers per project and pass; ``transport``: an httpx transport (tests)."""

    name = "labelwright-machines"
    max_backoff = MAX_BACKOFF

    def __init__(self, store: Store, interval: float = 2.0, *, batch: int = 5, transport=None):
        super().__init__(interval)
        self.store = store
        self.batch = batch
        self.transport = transport

    def run_once(self, now: float | None = None) -> dict:
        """One pass over the projects with enabled LLM annotators; returns ``{"answered", "failed"}``."""
        clock = time.time() if now is None else now
        done = {"answered": 0, "failed": 0}
        for project_id in machines.projects_with_machine_annotators(self.store):
            if self._stop.is_set():
                break
            if self.waiting(project_id, clock):
                continue
            try:
                project = get_project(self.store, project_id)
            except NotFound:
                continue
            result = machines.run_llm_annotators(self.store, project, max_items=self.batch, now=now,
                                                 transport=self.transport, cancel=self._stop.is_set)
            done["answered"] += result["answered"]
            done["failed"] += result["failed"]
            stuck = not result["answered"] and (result["failed"] or any(a["stopped"] for a in result["annotators"]))
            if stuck:
                self.back_off(project_id, clock)
            else:
                self.forgive(project_id)
        return done

    def busy(self, result) -> bool:
        return result["answered"] > 0  # answers came: there may be more, go again
