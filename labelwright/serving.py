"""The server's process model: one process, or several on one port, each with its own listening socket.

:func:`serve` runs the app (:func:`labelwright.app.create_app`) under uvicorn for a :class:`Settings`
object, which it hands to every server process itself (pickled to a fresh interpreter), never through
environment variables.

With ``workers > 1`` each worker process opens its own socket on the same address with ``SO_REUSEPORT``,
so the kernel spreads new connections evenly over the processes. (With one socket shared by all, a
connection goes to whichever process wakes first, and keep-alive connections stay where they landed:
under load some processes held far more annotators than others, who then got a smaller share.) The
parent only supervises: a worker that dies is started again, and SIGTERM or SIGINT stops them all.

One process is the right choice for SQLite (its writer thread commits many requests at once) and, since
PostgreSQL calls are batched the same way (:mod:`labelwright.store.pg_batch`), usually for PostgreSQL
too; more processes help when one core cannot parse the HTTP of all the requests (see
``docs/benchmarks.md``). Several machines, or processes on several ports, go behind a reverse proxy
(``docs/operations.md``).
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import time
from multiprocessing.process import BaseProcess

import uvicorn

from labelwright.app import create_app
from labelwright.settings import Settings

RESTART_DELAY_S = 1.0  # a worker that died is started again after this long


def listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` and listening, as uvicorn binds (IPv6 for a host with a colon);
    ``reuse_port``: several processes bind the same port and the kernel spreads connections over them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_worker(settings: Settings, log_level: str, reuse_port: bool) -> None:
    """One server process: the app for ``settings`` under uvicorn on its own socket."""
    sock = listening_socket(settings.host, settings.port, reuse_port=reuse_port)
    config = uvicorn.Config(create_app(settings), log_level=log_level, access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


def serve(settings: Settings, workers: int = 1, log_level: str = "warning") -> None:
    """Serve until stopped: in this process when ``workers`` is 1, else in ``workers`` child processes."""
    if workers <= 1:
        run_worker(settings, log_level, reuse_port=False)
        return
    Supervisor(settings, workers, log_level).run()


class Supervisor:
    """Starts ``workers`` server processes, starts again any that dies, stops them all on SIGTERM/SIGINT."""

    def __init__(self, settings: Settings, workers: int, log_level: str):
        self.settings, self.workers, self.log_level = settings, workers, log_level
        self.context = multiprocessing.get_context("spawn")  # a fresh interpreter: no state inherited
        self.processes: list[BaseProcess] = []
        self.stopping = False

    def _start(self) -> BaseProcess:
        process = self.context.Process(target=run_worker, args=(self.settings, self.log_level, True),
                                       name="labelwright-server", daemon=False)
        process.start()
        return process

    def _stop(self, *_args) -> None:
        self.stopping = True

    def run(self) -> None:
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.processes = [self._start() for _ in range(self.workers)]
            while not self.stopping:
                time.sleep(0.2)
                for i, process in enumerate(self.processes):
                    if not process.is_alive() and not self.stopping:
                        time.sleep(RESTART_DELAY_S)
                        self.processes[i] = self._start()
        finally:
            for process in self.processes:
                if process.is_alive():
                    process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
            for process in self.processes:
                process.join(timeout=30)
                if process.is_alive():
                    process.kill()
                    process.join()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
