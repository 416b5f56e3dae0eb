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
import time

from labelwright.services import assistant
from labelwright.services.background import Background
from labelwright.services.projects import list_projects
from labelwright.store import Store

log = logging.getLogger("labelwright.assist")

LEASE_SECONDS = 600.0
MAX_BACKOFF = 600.0


class AssistWorker(Background):
    """``run_once()`` does one step for each assisted project that is due; ``start()``/``stop()`` run passes
    in a thread every ``interval`` seconds. ``last`` keeps each project's last report in this process (by
    project id); its time and error also go to ``assist_state``, which the assist page reads."""

    name = "labelwright-assist"
    max_backoff = MAX_BACKOFF

    def __init__(self, store: Store, interval: float = 10.0, *, media_root=None, python_models: tuple[str, ...] = ()):
        super().__init__(interval)
        self.store = store
        self.media_root = media_root
        self.python_models = tuple(python_models)
        self.last: dict[int, dict] = {}

    def run_once(self, now: float | None = None) -> dict[int, dict]:
        done: dict[int, dict] = {}
        for project in list_projects(self.store):
            if project.schema.assist is None or self._stop.is_set():
                continue
            clock = time.monotonic()
            if self.waiting(project.id, clock):
                continue
            if not assistant.claim_worker(self.store, project.id, now or time.time(), LEASE_SECONDS):
                continue  # another process is on it
            report = None
            try:
                report = assistant.step(self.store, project, now=now, media_root=self.media_root,
                                        python_models=self.python_models).to_dict()
            except Exception as e:  # the database went away mid-step...: log, back off, carry on
                log.exception("assist step failed for project %s", project.slug)
                report = {"error": f"{type(e).__name__}: {e}", "public_error": f"{type(e).__name__}"}
            finally:  # the outcome goes to the database: the assist page shows it whichever process serves it
                try:
                    assistant.release_worker(self.store, project.id, report, now)
                except Exception:  # noqa: BLE001 - the database is gone: the lease runs out by itself
                    log.exception("could not record the assist step of project %s", project.slug)
            done[project.id] = self.last[project.id] = report
            if report.get("error"):
                self.back_off(project.id, clock)
            else:
                self.forgive(project.id)
        return done
