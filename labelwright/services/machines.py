"""Machine annotators: LLMs added to a project as annotators, working through the same queue as people.

A machine annotator is a user of its own (``llm:<name>``, role annotator, no password, a member of its one
project) and a ``machine_annotators`` row holding its endpoint: an OpenAI-compatible chat-completions server
(:class:`labelwright.assist.llm.LLMEndpoint`), the model, prices, and the *name of the environment variable*
holding its API key, read at call time, never stored.

:func:`run_llm_annotators` works like a person at the queue: :func:`labelwright.services.queue.claim_next`
(so gold items, overlap, "never twice" and leases hold for it too), ask the model, then
:func:`labelwright.services.queue.submit`. No transaction is open while the model is asked. Every call is
recorded in ``llm_calls`` (tokens, exact cost, latency, error). A failed call gives the lease back at once,
so people get the item; three failures in a row stop that annotator for the run, and an item it failed on
three times is skipped by it (left to people).

Its answers are annotations, so quality reports, truth inference and gold accuracy treat it like any
worker; pay leaves it out (:mod:`labelwright.services.pay`).

With the schema's ``assist.llm_first``, items no machine annotator has answered yet get ``queue_rank`` 1
and those one has answered 0, so people's queue (``ORDER BY queue_rank, id``) serves the machine-answered
items first: with adaptive redundancy, "the LLM first, people where it is in doubt". See docs/assist.md.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import httpx
import pydantic
from pydantic import SecretStr
from sqlalchemy import ColumnElement, Row, exists, func, insert, literal_column, select, update

from labelwright.assist.llm import LLMAnnotator, LLMEndpoint, LLMError, build_messages
from labelwright.errors import Busy, Conflict, Forbidden, NotFound, ValidationError
from labelwright.services import audit, qualification, queue
from labelwright.services.access import release_leases
from labelwright.services.projects import Project
from labelwright.services.users import NAME_RE, User
from labelwright.store import Store, dumps, loads, locks
from labelwright.store import tables as t

log = logging.getLogger(__name__)

KIND_LLM = "llm"
USER_PREFIX = "llm:"  # a machine annotator's user name; create_user refuses ':', so no person can take one
MAX_FAILURES_IN_A_ROW = 3  # failed calls in a row before an annotator stops for the run
MAX_ITEM_FAILURES = 3  # failed calls on one item before the annotator skips it (people get it)
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# LLMEndpoint fields that may be tuned besides the ones add_llm_annotator names (never api_key).
OPTIONS = ("temperature", "timeout_s", "max_retries", "backoff_s", "use_json_schema")
_FIELD_NAMES = {"price_per_million_input": "price_input_per_million",
                "price_per_million_output": "price_output_per_million"}



def _machine_answered() -> ColumnElement[bool]:
    """Whether a machine annotator has answered the item (of ``items``, in an UPDATE of it)."""
    a, m = t.annotations, t.machine_annotators
    return exists().select_from(a.join(m, m.c.user_id == a.c.user_id)).where(a.c.item_id == t.items.c.id)


def _endpoint(config: dict, api_key: str | None = None) -> LLMEndpoint:
    """The endpoint of a stored (or proposed) config, checked by :class:`LLMEndpoint` itself."""
    values = {k: v for k, v in config.items() if k != "api_key_env"}
    try:
        return LLMEndpoint(**values, api_key=SecretStr(api_key) if api_key is not None else None)
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        where = str(first["loc"][0]) if first.get("loc") else None
        message = first["msg"].removeprefix("Value error, ")
        raise ValidationError(message, field=_FIELD_NAMES.get(where, where) if where is not None else None) from None


def _short(user_name: str) -> str:
    return user_name.removeprefix(USER_PREFIX)


# ---- adding, listing, enabling -----------------------------------------------------------------


def add_llm_annotator(store: Store, project: Project, *, name: str, base_url: str, model: str,
                      api_key_env: str | None = None, price_input_per_million: str = "0",
                      price_output_per_million: str = "0", send_image_urls: bool = False,
                      options: dict | None = None, by: User | None = None) -> dict:
    """Add an LLM to ``project`` as annotator ``llm:<name>``; returns its entry (as :func:`list_machine_annotators`).

    ``api_key_env`` names the environment variable that holds the API key of the server process that calls
    the model; the key itself is never stored. Prices are decimal strings per million tokens. ``options``:
    other :class:`LLMEndpoint` settings (``temperature``, ``timeout_s``, ``max_retries``, ``backoff_s``,
    ``use_json_schema``). Recorded in the audit log."""
    if not NAME_RE.match(name or ""):
        raise ValidationError("a machine annotator's name is 1-64 letters, digits, '_', '.', '@' or '-'",
                              field="name")
    if api_key_env is not None and not ENV_NAME_RE.match(api_key_env):
        raise ValidationError("api_key_env is the NAME of an environment variable (letters, digits, '_'), "
                              "such as OPENAI_API_KEY, never the key itself", field="api_key_env")
    extra = dict(options or {})
    unknown = sorted(set(extra) - set(OPTIONS))
    if unknown:
        raise ValidationError(f"unknown option(s) {unknown}; options are {list(OPTIONS)}", field="options")
    config = {"base_url": base_url, "model": model, "price_per_million_input": str(price_input_per_million),
              "price_per_million_output": str(price_output_per_million), "send_image_urls": bool(send_image_urls),
              **extra}
    endpoint = _endpoint(config)
    build_messages(project.schema, {})  # refuses, now, a schema the model could not answer
    config = {**endpoint.model_dump(include=set(config)), "api_key_env": api_key_env}
    user_name = USER_PREFIX + name
    now = time.time()
    u = t.users
    by_id = getattr(by, "id", None)
    with store.write() as conn:
        if conn.execute(select(u.c.id).where(u.c.name == user_name)).first():
            raise Conflict(f"a machine annotator named {name!r} already exists (each name is used once, in one "
                           "project): choose another name", field="name")
        uid = conn.execute(insert(u).values(name=user_name, role="annotator", password_hash=None, disabled=0,
                                            created_at=now).returning(u.c.id)).scalar_one()
        conn.execute(insert(t.memberships).values(project_id=project.id, user_id=uid, role="annotator",
                                                  status="active", added_by=by_id, added_at=now))
        conn.execute(insert(t.machine_annotators).values(user_id=uid, project_id=project.id, kind=KIND_LLM,
                                                         config=dumps(config), enabled=1, created_by=by_id,
                                                         created_at=now))
        audit.record(conn, by, "machine.add", project.id, user_name,
                     {"model": endpoint.model, "base_url": endpoint.base_url, "api_key_env": api_key_env})
    if _llm_first(project):
        rank_for_llm_first(store, project)
    return next(m for m in list_machine_annotators(store, project) if m["name"] == name)


def list_machine_annotators(store: Store, project: Project) -> list[dict]:
    """The project's machine annotators with what they did: calls, errors, tokens, total cost (a decimal
    string, exact), items answered, and the last error."""
    m, u, c, a = t.machine_annotators, t.users, t.llm_calls, t.annotations
    with store.read() as conn:
        rows = conn.execute(select(m.c.user_id, u.c.name, m.c.kind, m.c.config, m.c.enabled, m.c.created_at)
                            .select_from(m.join(u, u.c.id == m.c.user_id))
                            .where(m.c.project_id == project.id, m.c.kind != "rule")  # rules: services/rules.py
                            .order_by(u.c.name)).all()
        calls = {r.user_id: (r.n, r.errors, r.prompt_tokens, r.completion_tokens) for r in conn.execute(
            select(c.c.user_id, func.count().label("n"), func.count(c.c.error).label("errors"),
                   func.coalesce(func.sum(c.c.prompt_tokens), 0).label("prompt_tokens"),
                   func.coalesce(func.sum(c.c.completion_tokens), 0).label("completion_tokens"))
            .where(c.c.project_id == project.id).group_by(c.c.user_id))}
        costs: dict[int, Decimal] = {}
        for r in conn.execute(select(c.c.user_id, c.c.cost, func.count().label("n"))
                              .where(c.c.project_id == project.id, c.c.cost.is_not(None))
                              .group_by(c.c.user_id, c.c.cost)):
            costs[r.user_id] = costs.get(r.user_id, Decimal(0)) + Decimal(r.cost) * int(r.n)
        answered = {r.user_id: r.n for r in conn.execute(
            select(a.c.user_id, func.count().label("n")).select_from(a.join(m, m.c.user_id == a.c.user_id))
            .where(a.c.project_id == project.id).group_by(a.c.user_id))}
        latest_errors = (select(func.max(c.c.id)).where(c.c.project_id == project.id, c.c.error.is_not(None))
                         .group_by(c.c.user_id))
        last_error = {r.user_id: (r.error, r.created_at) for r in conn.execute(
            select(c.c.user_id, c.c.error, c.c.created_at).where(c.c.id.in_(latest_errors)))}
    out = []
    for r in rows:
        uid, user_name, kind, enabled, created_at = r.user_id, r.name, r.kind, r.enabled, r.created_at
        c = loads(r.config)
        n, errors, prompt_tokens, completion_tokens = calls.get(uid, (0, 0, 0, 0))
        err, err_at = last_error.get(uid, (None, None))
        out.append({"name": _short(user_name), "user": user_name, "kind": kind, "model": c.get("model"),
                    "base_url": c.get("base_url"), "api_key_env": c.get("api_key_env"),
                    "price_input_per_million": c.get("price_per_million_input"),
                    "price_output_per_million": c.get("price_per_million_output"),
                    "send_image_urls": bool(c.get("send_image_urls")), "enabled": bool(enabled),
                    "calls": int(n), "errors": int(errors), "prompt_tokens": int(prompt_tokens),
                    "completion_tokens": int(completion_tokens), "cost": _money(costs.get(uid, Decimal(0))),
                    "items_answered": int(answered.get(uid, 0)), "last_error": err, "last_error_at": err_at,
                    "created_at": created_at})
    return out


def set_enabled(store: Store, project: Project, name: str, enabled: bool, *, by: User | None = None) -> dict:
    """Enable or disable machine annotator ``name`` of ``project`` (disabling gives back its leases);
    recorded in the audit log. Returns its entry."""
    m, u = t.machine_annotators, t.users
    with store.write() as conn:
        row = conn.execute(select(m.c.user_id, m.c.enabled).select_from(m.join(u, u.c.id == m.c.user_id))
                           .where(m.c.project_id == project.id, u.c.name == USER_PREFIX + name)).first()
        if row is None:
            raise NotFound(f"no machine annotator {name!r} in project {project.slug!r}")
        if bool(row.enabled) != enabled:
            conn.execute(update(m).where(m.c.user_id == row.user_id).values(enabled=int(enabled)))
            if not enabled:
                release_leases(conn, project.id, row.user_id)
            audit.record(conn, by, "machine.enable" if enabled else "machine.disable", project.id,
                         USER_PREFIX + name)
    return next(m for m in list_machine_annotators(store, project) if m["name"] == name)


def machine_user_ids(store: Store, project: Project | None = None) -> set[int]:
    """The user ids of the machine annotators (of one project, or of all)."""
    m = t.machine_annotators
    stmt = select(m.c.user_id)
    if project is not None:
        stmt = stmt.where(m.c.project_id == project.id)
    with store.read() as conn:
        return set(conn.execute(stmt).scalars())


def projects_with_machine_annotators(store: Store) -> list[int]:
    """Ids of the projects that have an enabled LLM annotator (what the machine worker visits)."""
    m = t.machine_annotators
    with store.read() as conn:
        return list(conn.execute(select(m.c.project_id).distinct().where(m.c.enabled == 1, m.c.kind == KIND_LLM)
                                 .order_by(m.c.project_id)).scalars())


# ---- llm_first: the queue's order --------------------------------------------------------------


def _llm_first(project: Project) -> bool:
    return project.schema.assist is not None and project.schema.assist.llm_first


def rank_for_llm_first(store: Store, project: Project) -> int:
    """Set ``queue_rank`` of the project's non-gold items: 0 where a machine annotator has answered, 1 where
    none has. Only rows whose rank changes are written (never the slot counters). Returns how many."""
    i = t.items
    with store.write() as conn:
        done = conn.execute(update(i).where(i.c.project_id == project.id, i.c.is_gold == 0, i.c.queue_rank != 0,
                                            _machine_answered()).values(queue_rank=0)).rowcount
        waiting = conn.execute(update(i).where(i.c.project_id == project.id, i.c.is_gold == 0, i.c.queue_rank != 1,
                                               ~_machine_answered()).values(queue_rank=1)).rowcount
    return done + waiting


def _rank_new_items(store: Store, project: Project) -> None:
    """Rank 1 for open items that came in since (imported with rank 0) and no machine annotator answered:
    the cheap part of :func:`rank_for_llm_first` that each run repeats."""
    i = t.items
    with store.write() as conn:
        conn.execute(update(i).where(i.c.project_id == project.id, i.c.is_open == 1, i.c.is_gold == 0,
                                     i.c.queue_rank == 0, ~_machine_answered()).values(queue_rank=1))


def _rank_answered(store: Store, item_id: int) -> None:
    i = t.items
    with store.write() as conn:
        conn.execute(update(i).where(i.c.id == item_id, i.c.is_gold == 0, i.c.queue_rank != 0).values(queue_rank=0))


# ---- running -----------------------------------------------------------------------------------


def _money(d: Decimal) -> str:
    """A plain decimal string (never '1E-7')."""
    return format(d.normalize(), "f") if d else "0"


def _record(store: Store, project: Project, user_id: int, item_id: int | None, *, prompt_tokens,
            completion_tokens, cost: Decimal | None, latency_ms: int, error: str | None, now: float | None) -> None:
    with store.write() as conn:
        conn.execute(insert(t.llm_calls).values(
            project_id=project.id, user_id=user_id, item_id=item_id, prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens, cost=None if cost is None else _money(cost), latency_ms=latency_ms,
            error=None if error is None else error[:2000], created_at=now or time.time()))


def _item_failures(store: Store, user_id: int, item_id: int) -> int:
    c = t.llm_calls
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(c).where(
            c.c.user_id == user_id, c.c.item_id == item_id, c.c.error.is_not(None))).scalar_one())


@contextmanager
def _exclusive(store: Store, user_id: int):
    """Whether this process may run machine annotator ``user_id`` now (another run of it is not under way,
    here or, on PostgreSQL, in another server process). No transaction is held: on PostgreSQL a
    session-level advisory lock on an idle autocommit connection."""
    if store.dialect == "postgresql":
        with store.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            key: ColumnElement = literal_column(locks.MACHINE)  # this schema's (labelwright.store.locks)
            got = conn.execute(select(func.pg_try_advisory_lock(key, user_id))).scalar()
            try:
                yield bool(got)
            finally:
                if got:
                    conn.execute(select(func.pg_advisory_unlock(key, user_id)))
        return
    with store.caches.machine_runs.hold(user_id) as got:  # SQLite: held across this host's processes too
        yield got


def _enabled(store: Store, project: Project) -> list[Row]:
    """(user_id, name, config) of the project's enabled LLM annotators that are active members."""
    m, u, ms = t.machine_annotators, t.users, t.memberships
    with store.read() as conn:
        return list(conn.execute(
            select(m.c.user_id, u.c.name, m.c.config)
            .select_from(m.join(u, u.c.id == m.c.user_id)
                         .join(ms, (ms.c.project_id == m.c.project_id) & (ms.c.user_id == m.c.user_id)))
            .where(m.c.project_id == project.id, m.c.kind == KIND_LLM, m.c.enabled == 1, ms.c.status == "active",
                   u.c.disabled == 0).order_by(m.c.user_id)).all())


def run_llm_annotators(store: Store, project: Project, *, max_items: int = 50, now: float | None = None,
                       transport: httpx.BaseTransport | None = None, environ: Mapping[str, str] | None = None,
                       on_progress: Callable[[dict], None] | None = None,
                       cancel: Callable[[], bool] | None = None) -> dict:
    """Let each enabled LLM annotator of ``project`` answer up to ``max_items`` items from the queue.

    Returns ``{"answered", "failed", "cost" (decimal string), "annotators": [per annotator: name,
    answered, failed, cost, stopped (why it stopped early, or None)]}``. ``now``: the clock for claims and
    submissions (default: the time of each); ``transport``: the httpx transport (tests); ``environ``: where
    API keys are read (default ``os.environ``); ``on_progress(event)`` after each call; ``cancel()``:
    checked before each item, True ends the run."""
    environ = os.environ if environ is None else environ
    if _llm_first(project):
        _rank_new_items(store, project)
    total: dict[str, Any] = {"answered": 0, "failed": 0, "cost": Decimal(0), "annotators": []}
    for annotator in _enabled(store, project):
        user_id, user_name, config = annotator.user_id, annotator.name, annotator.config
        with _exclusive(store, user_id) as mine:
            result: dict[str, Any]
            if not mine:
                result = {"name": _short(user_name), "answered": 0, "failed": 0, "cost": Decimal(0),
                          "stopped": "already running elsewhere"}
            else:
                result = _run_one(store, project, User(user_id, user_name, "annotator"), loads(config),
                                  max_items=max_items, now=now, transport=transport, environ=environ,
                                  on_progress=on_progress, cancel=cancel)
        total["answered"] += result["answered"]
        total["failed"] += result["failed"]
        total["cost"] += result["cost"]
        total["annotators"].append({**result, "cost": _money(result["cost"])})
    total["cost"] = _money(total["cost"])
    return total


def _run_one(store: Store, project: Project, user: User, config: dict, *, max_items: int, now, transport, environ,
             on_progress, cancel) -> dict:
    result: dict[str, Any] = {"name": _short(user.name), "answered": 0, "failed": 0, "cost": Decimal(0),
                              "stopped": None}
    key = None
    env = config.get("api_key_env")
    if env:
        key = environ.get(env)
        if not key:
            result["stopped"] = f"the environment variable {env} (its API key) is not set in this process"
            log.warning("machine annotator %s: %s", user.name, result["stopped"])
            return result
    endpoint = _endpoint(config, key)

    def redact(message: str) -> str:
        return message.replace(key, "[api key]") if key else message

    in_a_row = 0
    client = httpx.Client(timeout=httpx.Timeout(endpoint.timeout_s), transport=transport)
    with client, LLMAnnotator(endpoint, project.schema, client=client) as annotator:
        while result["answered"] + result["failed"] < max_items:
            if cancel is not None and cancel():
                result["stopped"] = "cancelled"
                break
            try:
                item = queue.claim_next(store, project, user, now=now)
            except (Forbidden, Busy) as e:  # paused, qualification failed, the queue busy
                result["stopped"] = str(e)
                break
            if item is None:
                break
            started = time.perf_counter()
            try:
                answer = annotator.annotate(item["data"])
            except (LLMError, httpx.HTTPError) as e:
                queue.release(store, item["id"], user)  # people get it meanwhile
                cost = getattr(e, "cost", None)
                _record(store, project, user.id, item["id"], prompt_tokens=getattr(e, "prompt_tokens", None),
                        completion_tokens=getattr(e, "completion_tokens", None), cost=cost,
                        latency_ms=int((time.perf_counter() - started) * 1000),
                        error=redact(f"{type(e).__name__}: {e}"), now=now)
                result["failed"] += 1
                result["cost"] += cost or 0
                in_a_row += 1
                if (item.get("stage") != "qualification"
                        and _item_failures(store, user.id, item["id"]) >= MAX_ITEM_FAILURES):
                    queue.skip(store, item["id"], user)  # the model cannot answer this one: leave it to people
                _progress(on_progress, user, item, ok=False, result=result)
                if in_a_row >= MAX_FAILURES_IN_A_ROW:
                    result["stopped"] = f"{in_a_row} failures in a row; last: {redact(str(e))}"
                    log.warning("machine annotator %s stopped: %s", user.name, result["stopped"])
                    break
                continue
            except BaseException:
                queue.release(store, item["id"], user)
                raise
            in_a_row = 0
            latency_ms = int(answer.latency_s * 1000)
            error = None
            try:
                if item.get("stage") == "qualification":
                    qualification.answer(store, project, user, item["id"], answer.answers, now=now)
                else:
                    queue.submit(store, item["id"], user, answer.answers, active_ms=latency_ms, now=now)
            except (Conflict, Forbidden, NotFound, ValidationError) as e:
                error = f"answer not saved: {e}"
                queue.release(store, item["id"], user)
            _record(store, project, user.id, item["id"], prompt_tokens=answer.prompt_tokens,
                    completion_tokens=answer.completion_tokens, cost=answer.cost, latency_ms=latency_ms,
                    error=error, now=now)
            result["cost"] += answer.cost or 0
            if error is not None:
                result["failed"] += 1
                _progress(on_progress, user, item, ok=False, result=result)
                continue
            result["answered"] += 1
            if _llm_first(project) and item.get("stage") != "qualification":
                _rank_answered(store, item["id"])
            _progress(on_progress, user, item, ok=True, result=result)
    return result


def _progress(on_progress, user: User, item: dict, *, ok: bool, result: dict) -> None:
    if on_progress is not None:
        on_progress({"annotator": _short(user.name), "item_id": item["id"], "ok": ok,
                     "answered": result["answered"], "failed": result["failed"], "cost": _money(result["cost"])})
