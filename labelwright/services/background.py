"""A pass of work run again and again in a daemon thread of the server process: the shape the assist and
machine-annotator workers share (:mod:`labelwright.services.assist_worker`,
:mod:`labelwright.services.machine_worker`).

A subclass gives :meth:`Background.run_once` (one pass; tests call it directly with the clock they want) and
:meth:`Background.busy` (whether a pass's result means there may be more to do at once). :meth:`start` runs
passes in a thread, waiting ``interval`` seconds after a pass with nothing more to do; a pass that raises
(the database restarting...) is logged and the thread carries on. :meth:`stop` asks it to end and waits
for the pass in flight. Each project that failed waits before it is tried again: :meth:`back_off` doubles
its wait from ``interval`` up to ``max_backoff`` seconds, :meth:`forgive` resets it.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("labelwright.background")


class Background:
    name = "labelwright-worker"
    max_backoff = 600.0

    def __init__(self, interval: float):
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._backoff: dict[int, tuple[float, float]] = {}  # project id -> (not before, current wait)

    def run_once(self, now: float | None = None):  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    def busy(self, result) -> bool:
        """Whether to start the next pass at once (there may be more work) instead of after ``interval``."""
        return False

    # ---- per-project back-off ------------------------------------------------------------------

    def waiting(self, project_id: int, clock: float) -> bool:
        return clock < self._backoff.get(project_id, (0.0, 0.0))[0]

    def back_off(self, project_id: int, clock: float) -> None:
        wait = min(max(self._backoff.get(project_id, (0.0, 0.0))[1] * 2, self.interval), self.max_backoff)
        self._backoff[project_id] = (clock + wait, wait)

    def forgive(self, project_id: int) -> None:
        self._backoff.pop(project_id, None)

    # ---- the thread ----------------------------------------------------------------------------

    def start(self):
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 70.0) -> None:
        """Stop after the pass in flight, if any (waits at most ``timeout`` seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                more = self.busy(self.run_once())
            except Exception:  # a bad pass must not end the thread
                log.exception("%s: a pass failed", self.name)
                more = False
            if not more:
                self._stop.wait(self.interval)
