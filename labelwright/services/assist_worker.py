"""The assist worker: runs :func:`labelwright.services.assistant.step` for every project with an ``assist``
block, outside any request, in a daemon thread of each server process.

Several server processes may share one PostgreSQL database: a project's step runs under a lease in
``assist_state`` (``worker_until``), so one process works on a project at a time; a process that dies
mid-step loses nothing but time (the lease runs out and another takes the project). A step that fails (a
model that cannot be reached, answers nonsense or raises) is logged and its error kept for the assist page;
the project is tried again after a back-off that doubles up to :data:`MAX_BACKOFF` seconds. Nothing the
queue does waits for this worker: people keep labelling while the model trains, and a model that never
answers only means no suggestions, order or machine labels.
"""

from __future__ import annotations

import logging
import threading
import time

from labelwright.services import assistant
from labelwright.services.projects import list_projects

log = logging.getLogger("labelwright.assist")

LEASE_SECONDS = 600.0
MAX_BACKOFF = 600.0


class AssistWorker:
    """``run_once()`` does one step for each assisted project that is due; ``start()``/``stop()`` run passes
    in a thread every ``interval`` seconds. ``last`` keeps each project's last report (by project id)."""

    def __init__(self, store, interval: float = 10.0, *, media_root=None, python_models: tuple[str, ...] = ()):
        self.store = store
        self.media_root = media_root
        self.python_models = tuple(python_models)
        self.interval = interval
        self.last: dict[int, dict] = {}
        self._backoff: dict[int, tuple[float, float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: float | None = None) -> dict[int, dict]:
        done: dict[int, dict] = {}
        for project in list_projects(self.store):
            if project.schema.assist is None or self._stop.is_set():
                continue
            clock = time.monotonic()
            until, wait = self._backoff.get(project.id, (0.0, 0.0))
            if clock < until:
                continue
            if not assistant.claim_worker(self.store, project.id, now or time.time(), LEASE_SECONDS):
                continue  # another process is on it
            try:
                report = assistant.step(self.store, project, now=now, media_root=self.media_root,
                                        python_models=self.python_models).to_dict()
            except Exception as e:  # the database went away mid-step...: log, back off, carry on
                log.exception("assist step failed for project %s", project.slug)
                report = {"error": f"{type(e).__name__}: {e}"}
            finally:
                assistant.release_worker(self.store, project.id)
            done[project.id] = self.last[project.id] = report
            if report.get("error"):
                wait = min(max(wait * 2, self.interval), MAX_BACKOFF)
                self._backoff[project.id] = (clock + wait, wait)
            else:
                self._backoff.pop(project.id, None)
        return done

    def start(self) -> AssistWorker:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="labelwright-assist", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 120.0) -> None:
        """Stop after the step in flight, if any (waits at most ``timeout`` seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # listing projects failed (database restarting...): try again later
                log.exception("assist worker pass failed")
            self._stop.wait(self.interval)
