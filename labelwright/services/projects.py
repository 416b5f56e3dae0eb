"""Projects: create, read, list, and the progress summary an owner sees."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

from sqlalchemy import ColumnElement, Connection, Row, case, delete, func, insert, select, update

from labelwright.errors import Conflict, NotFound, ValidationError
from labelwright.schema import MAX_OVERLAP, ProjectSchema, parse_schema
from labelwright.services import audit
from labelwright.store import Store, loads, lookups
from labelwright.store import tables as t
from labelwright.store.lookups import ProjectAccessRow, ProjectRow
from labelwright.store.slots import reflag


@dataclass(frozen=True)
class Project:
    id: int
    slug: str
    name: str
    schema: ProjectSchema
    overlap: int
    lease_seconds: int
    created_at: float
    updated_at: float

    def to_dict(self, owner: bool = True) -> dict:
        """The project as JSON. ``owner=False`` (what annotators get) leaves out how gold items are
        mixed in: an annotator who knew the rate could guess which items are gold."""
        return {"id": self.id, "slug": self.slug, "name": self.name, "overlap": self.overlap,
                "lease_seconds": self.lease_seconds, "created_at": self.created_at,
                "schema": self.schema.model_dump(exclude_none=True, exclude=None if owner else {"gold"})}


def create_project(store: Store, schema: ProjectSchema | dict | str, created_by: int | None = None, by=None) -> Project:
    """A new project from ``schema``; recorded in the audit log as ``by``'s (a user; None: the command line).
    A project made by a manager, who must become its manager, is
    :func:`labelwright.services.access.create_project_for`."""
    with store.write() as conn:
        pid = insert_project(conn, schema, created_by, by)
    return get_project(store, pid)


def insert_project(conn: Connection, schema: ProjectSchema | dict | str, created_by: int | None = None,
                   by=None) -> int:
    """:func:`create_project` in the caller's transaction; returns the new project's id."""
    if not isinstance(schema, ProjectSchema):
        schema = parse_schema(schema)
    slug = schema.slugified()
    now = time.time()
    if conn.execute(select(t.projects.c.id).where(t.projects.c.slug == slug)).first():
        raise Conflict(f"a project with slug {slug!r} already exists: set `slug:` in the schema", field="slug")
    pid = conn.execute(insert(t.projects).values(
        slug=slug, name=schema.name, schema=schema.to_json(), overlap=schema.overlap,
        lease_seconds=schema.lease_seconds, created_by=created_by, created_at=now, updated_at=now,
    ).returning(t.projects.c.id)).scalar_one()
    # the API passes only created_by: the entry names that user rather than "(command line)"
    actor = by if by is not None or created_by is None else SimpleNamespace(id=created_by)
    audit.record(conn, actor, "project.create", pid, slug, {"name": schema.name})
    return pid


def project_from_row(store: Store, row: ProjectRow | ProjectAccessRow | Row) -> Project:
    """A :class:`Project` from a row with the columns of :class:`labelwright.store.lookups.ProjectRow`,
    read by name (a ``ProjectRow``, or a SQLAlchemy row of the ``projects`` table)."""
    pid, schema_json = row.id, row.schema
    # Parsing a schema costs ~100 us; comparing its text with the one parsed last costs ~1 us. Keyed by the
    # text itself, the cache cannot serve a schema another server process has since replaced.
    cached = store.caches.schemas.get(pid)
    if cached is not None and cached[0] == schema_json:
        schema = cached[1]
    else:
        schema = ProjectSchema.model_validate(loads(schema_json))
        store.caches.schemas[pid] = (schema_json, schema)
    return Project(id=pid, slug=row.slug, name=row.name, schema=schema, overlap=row.overlap,
                   lease_seconds=row.lease_seconds, created_at=row.created_at, updated_at=row.updated_at)


def get_project(store: Store, ref: int | str, conn=None) -> Project:
    """A project by numeric id or slug."""
    if isinstance(ref, str) and ref.isdigit():
        ref = int(ref)
    sql = lookups.PROJECT_ONLY_BY_ID if isinstance(ref, int) else lookups.PROJECT_ONLY_BY_SLUG
    if conn is None:
        row = store.lookup(sql, {"r": ref})  # one statement, no transaction: this runs on every request
    else:
        cur = store.cursor(conn)
        cur.execute(store.sql(sql), {"r": ref})
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"no project {ref!r}")
    return project_from_row(store, ProjectRow._make(row))


def list_projects(store: Store) -> list[Project]:
    with store.read() as conn:
        rows = conn.execute(select(t.projects).order_by(t.projects.c.id)).all()
    return [project_from_row(store, r) for r in rows]


def newer_updated_at(now: float) -> ColumnElement:
    """A project's ``updated_at`` after a change, for an ``update(t.projects).values(updated_at=...)``: ``now``,
    or just past the old value if that is not earlier (clocks of two servers differ). Every change moves it,
    so it can serve as the version of what hangs off the project."""
    p = t.projects
    return case((p.c.updated_at < now, now), else_=p.c.updated_at + 0.001)


def change_schema(store: Store, project_id: int,
                  fn: Callable[[ProjectSchema, Connection], ProjectSchema]) -> Project:
    """Read-modify-write of a project's schema in one transaction: the row is read locked (``FOR UPDATE`` on
    PostgreSQL; SQLite's write transaction is ``BEGIN IMMEDIATE``, one writer at a time), ``fn(schema, conn)``
    returns the new schema (it may write more on ``conn``, e.g. the audit entry, or raise to change
    nothing), and the schema, its overlap and lease columns and ``updated_at`` are written. Two changes made
    at once (through two server processes, say) both land: the second reads what the first wrote. Items
    re-open or close to match a new overlap in the same transaction. Returns the project as committed."""
    p = t.projects
    read = select(*(p.c[name] for name in ProjectRow._fields)).where(p.c.id == project_id)
    with store.write() as conn:
        row = conn.execute(read.with_for_update() if store.dialect == "postgresql" else read).first()
        if row is None:
            raise NotFound(f"no project {project_id!r}")
        before = project_from_row(store, row)
        schema = fn(before.schema, conn)
        conn.execute(update(p).where(p.c.id == project_id).values(
            schema=schema.to_json(), overlap=schema.overlap, lease_seconds=schema.lease_seconds,
            updated_at=newer_updated_at(time.time())))
        if schema.overlap != before.overlap:
            conn.execute(reflag(t.items.c.project_id == project_id, overlap=schema.overlap))
        _follow_second_opinions(conn, project_id, schema)
        return get_project(store, project_id, conn)


def _follow_second_opinions(conn: Connection, project_id: int, schema: ProjectSchema) -> None:
    """Keep the project's weaker half (:mod:`labelwright.services.second_opinions`) in step with its
    settings in the same transaction: forgotten when the setting is off, its ``from_answers`` moved with
    ``redundancy.min``."""
    r, wh = schema.redundancy, t.weaker_half
    if r is None or r.second_opinions != "stronger_half":
        conn.execute(delete(wh).where(wh.c.project_id == project_id))
    else:
        conn.execute(update(wh).where(wh.c.project_id == project_id, wh.c.from_answers != r.min)
                     .values(from_answers=r.min))


def set_overlap(store: Store, project: Project, overlap: int) -> Project:
    """Change how many annotators each item needs; re-open or close items to match."""
    if not 1 <= overlap <= MAX_OVERLAP:
        raise ValidationError(f"overlap must be 1..{MAX_OVERLAP}", field="overlap")

    def change(schema: ProjectSchema, _conn: Connection) -> ProjectSchema:
        update_schema: dict = {"overlap": overlap}
        if schema.redundancy is not None:  # overlap is adaptive redundancy's minimum
            r = schema.redundancy
            update_schema["redundancy"] = r.model_copy(update={"min": overlap, "max": max(r.max, overlap)})
        return schema.model_copy(update=update_schema)

    return change_schema(store, project.id, change)


def expire(store: Store, project: Project, by=None, at: float | None = None) -> Project:
    """Stop handing out work in the project (from ``at``, default now). Answers already given stay; leases
    end as they would."""
    at = at or time.time()

    def change(schema: ProjectSchema, conn: Connection) -> ProjectSchema:
        audit.record(conn, by, "project.expire", project.id, None, {"at": at})
        return schema.model_copy(update={"expires_at": at})

    return change_schema(store, project.id, change)


def progress(store: Store, project: Project, now: float | None = None) -> dict:
    """Items done / in progress / waiting, annotations per annotator, throughput over the last hour."""
    now = now or time.time()
    i, a, le = t.items, t.annotations, t.leases
    want = func.coalesce(i.c.target, project.overlap)
    with store.read() as conn:
        total, done, started, needed = conn.execute(select(
            func.count(),
            func.coalesce(func.sum((i.c.n_done >= want).cast(t.items.c.n_done.type)), 0),
            func.coalesce(func.sum((i.c.n_done > 0).cast(t.items.c.n_done.type)), 0),
            func.coalesce(func.sum(want), 0),
        ).where(i.c.project_id == project.id, i.c.is_gold == 0)).one()
        n_gold = conn.execute(select(func.count()).where(
            i.c.project_id == project.id, i.c.is_gold == 1)).scalar_one()
        leased_untouched = conn.execute(
            select(func.count(func.distinct(le.c.item_id)))
            .select_from(le.join(i, i.c.id == le.c.item_id))
            .where(le.c.project_id == project.id, le.c.expires_at > now, i.c.n_done == 0, i.c.is_gold == 0)
        ).scalar_one()
        per_user = conn.execute(
            select(t.users.c.name, func.count(a.c.id), func.sum(a.c.active_ms),
                   func.max(a.c.created_at))
            .select_from(a.join(t.users, t.users.c.id == a.c.user_id))
            .where(a.c.project_id == project.id)
            .group_by(t.users.c.name).order_by(func.count(a.c.id).desc())
        ).all()
        recent = conn.execute(
            select(a.c.created_at).where(a.c.project_id == project.id, a.c.created_at > now - 3600)
        ).scalars().all()
        annotations_total = conn.execute(
            select(func.count()).select_from(a).where(a.c.project_id == project.id)).scalar_one()
        active_leases = conn.execute(
            select(func.count()).select_from(le)
            .where(le.c.project_id == project.id, le.c.expires_at > now)).scalar_one()
    per_minute = [0] * 60
    for ts in recent:
        idx = int((now - ts) // 60)
        if 0 <= idx < 60:
            per_minute[59 - idx] += 1
    in_progress = int(started) - int(done) + int(leased_untouched)
    return {
        "project": project.slug,
        "overlap": project.overlap,
        "items": {"total": int(total), "done": int(done), "in_progress": in_progress,
                  "waiting": int(total) - int(done) - in_progress, "gold": int(n_gold)},
        "annotations": int(annotations_total),
        "annotations_needed": int(needed),
        "active_leases": int(active_leases),
        "annotators": [{"name": n, "annotations": int(c), "active_seconds": round(float(ms or 0) / 1000, 1),
                        "last_at": last} for n, c, ms, last in per_user],
        "last_hour": {"annotations": len(recent), "per_minute": per_minute},
    }


SETTABLE = ("instructions", "description", "gold", "qualification", "review", "pay", "expires_at", "lease_seconds",
            "history_size", "overlap", "redundancy", "truth_inference")


def update_settings(store: Store, project: Project, changes: dict, by=None) -> Project:
    """Change a running project's settings (not its fields or questions): ``SETTABLE`` keys, each replaced
    whole (``null`` removes an optional section). Validated like a new schema; recorded in the audit log
    with the values before and after. The other settings are those committed when this one is written
    (:func:`change_schema`), not those of ``project``, which may be older."""
    if not isinstance(changes, dict) or not changes:
        raise ValidationError("send the settings to change, e.g. {\"pay\": {...}}", field="settings")
    unknown = sorted(set(changes) - set(SETTABLE))
    if unknown:
        raise ValidationError(f"{unknown[0]!r} cannot be changed here; settable: {list(SETTABLE)}", field=unknown[0])

    def change(schema: ProjectSchema, conn: Connection) -> ProjectSchema:
        current = schema.model_dump(exclude_none=True)
        before = {k: current.get(k) for k in changes}
        updated = {k: v for k, v in {**current, **changes}.items() if v is not None}
        new = parse_schema(updated)
        audit.record(conn, by, "project.settings", project.id, None,
                     {"before": before, "after": {k: new.model_dump(exclude_none=True).get(k) for k in changes}})
        return new

    return change_schema(store, project.id, change)
