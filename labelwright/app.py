"""The application factory. ``create_app(settings)`` builds everything; importing this module does not."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from labelwright import __version__
from labelwright.api import build_router as api_router
from labelwright.api.hot import HotRoutes
from labelwright.api.limits import BodyLimit
from labelwright.errors import INTERNAL_ERROR, Busy, LabelwrightError, log_unexpected
from labelwright.services import export_process
from labelwright.services.assist_worker import AssistWorker
from labelwright.services.machine_worker import MachineWorker
from labelwright.services.webhook_worker import WebhookWorker
from labelwright.settings import Settings
from labelwright.store import TIMED_OUT, Store, timed_out
from labelwright.web import assets, render_error, render_server_error
from labelwright.web.router import build_router as web_router
from labelwright.web.router import make_env

STATIC_DIR = Path(__file__).parent / "web" / "static"
log = logging.getLogger("labelwright")


def create_app(settings: Settings | None = None, store: Store | None = None, *,
               hot_routes: bool = True) -> FastAPI:
    """Build the web app (API + UI) for ``settings``. Pass ``store`` to share one with the caller.
    ``hot_routes=False`` leaves out :class:`HotRoutes`: every request then takes FastAPI's path (the tests
    that check both paths answer alike use it)."""
    settings = settings or Settings.load()
    own_store = store is None
    store = store or Store(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous,
                           pool_size=settings.pool_size, statement_timeout_ms=settings.statement_timeout_ms,
                           pg_batches=settings.pg_batches)
    store.check_ready()

    @asynccontextmanager
    async def lifespan(app):
        # The webhook worker: a thread per server process, sending queued deliveries (several
        # processes share the work safely; see labelwright.services.webhook_worker).
        worker = (WebhookWorker(store, allow_private=settings.webhook_allow_private).start()
                  if settings.webhook_worker else None)
        app.state.webhook_worker = worker
        # The assist worker (labelwright.services.assist_worker) and the machine annotators' worker
        # (labelwright.services.machine_worker): threads too, safe to run in several processes at once.
        assist = (AssistWorker(store, interval=settings.assist_interval_seconds, media_root=settings.media_root,
                               python_models=settings.python_models).start()
                  if settings.assist_worker else None)
        machines = MachineWorker(store).start() if settings.machine_worker else None
        app.state.assist_worker, app.state.machine_worker = assist, machines
        yield
        for running in (worker, assist, machines):
            if running is not None:
                await asyncio.to_thread(running.stop)
        if own_store:
            store.close()

    app = LabelwrightApp(title="labelwright", version=__version__, lifespan=lifespan,
                         openapi_url="/api/v1/openapi.json", docs_url="/api/v1/docs", redoc_url=None)
    app.state.settings = settings
    app.state.store = store
    app.state.export_slots = export_process.child_slots()  # the large exports it runs in child processes

    app.state.jinja = make_env()

    app.include_router(api_router())
    app.include_router(web_router())
    # /static/<version>/...: cached as immutable (mounted before /static)
    app.mount(f"/static/{assets.version()}", assets.ImmutableStaticFiles(directory=STATIC_DIR), name="static-v")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(LabelwrightError)
    async def _lw_error(request: Request, exc: LabelwrightError):
        if request.url.path.startswith("/api/"):
            return JSONResponse(exc.to_dict(), status_code=exc.status, headers=getattr(exc, "headers", None))
        return render_error(request, exc)

    async def _db_timeout(request: Request, exc: Exception):
        # PostgreSQL's statement_timeout (Settings.statement_timeout_ms) cancelled a statement: 503, try again
        if not timed_out(exc):
            raise exc
        return await _lw_error(request, Busy(TIMED_OUT))

    for kind in (sqlalchemy.exc.OperationalError, psycopg.errors.QueryCanceled):
        app.add_exception_handler(kind, _db_timeout)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # A bug: log the traceback under a short reference the person can quote, and answer with a
        # styled page (or JSON for the API) that shows the reference and nothing of the traceback.
        ref = log_unexpected(log, exc, request.method, request.url.path)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": INTERNAL_ERROR, "reference": ref}, status_code=500)
        try:
            return render_server_error(request, ref)
        except Exception:  # noqa: BLE001 - the page itself failed: plain text still tells the reference
            return HTMLResponse(f"Internal error (reference {ref}): the server's log has the details.",
                                status_code=500)

    @app.exception_handler(RequestValidationError)
    async def _request_error(request: Request, exc: RequestValidationError):
        err = exc.errors()[0]
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        return JSONResponse({"error": err.get("msg", "invalid request"), "field": ".".join(loc) or None},
                            status_code=422)

    @app.get("/healthz", include_in_schema=False)
    def healthz():
        store.ping()
        return {"ok": True, "version": __version__}

    app.front = BodyLimit(HotRoutes(app.fastapi, store=store) if hot_routes else app.fastapi, settings=settings)
    return app


class LabelwrightApp(FastAPI):
    """FastAPI with a front door for HTTP requests: :class:`BodyLimit` (every request's body bound), then
    :class:`HotRoutes` (the annotators' next / submit requests, answered directly), then FastAPI itself
    (its telemetry checks, error middleware, routing) for everything else.

    The front door sits outside FastAPI's middleware stack because the hot routes are most of the traffic
    and that stack's layers cost more than the routes' own work; HotRoutes answers errors, unexpected ones
    included, the way the app's exception handlers do (tested on both paths)."""

    front: Any = None  # set by create_app

    async def __call__(self, scope, receive, send) -> None:
        if self.front is not None and scope["type"] == "http":
            return await self.front(scope, receive, send)
        return await super().__call__(scope, receive, send)

    async def fastapi(self, scope, receive, send) -> None:
        """The app without its front door."""
        await super().__call__(scope, receive, send)
