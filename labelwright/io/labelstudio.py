"""Label Studio projects in and out: its JSON export plus its labelling config, to a labelwright project.

:func:`import_labelstudio` reads a Label Studio JSON export (one array of tasks) and the project's config
(XML), maps the config to a schema (:mod:`labelwright.io.labelstudio_config`), checks every task, result,
ground truth and prediction against it, and then writes everything in **one transaction**: the project,
its items, the people who annotated (created as annotators when new, made members), their annotations
(``lead_time`` as active time), skipped tasks (``was_cancelled``) as skips, ground truths as gold answers
and predictions as the annotations of a machine annotator per model version (``llm:<slug>.<version>``,
kind ``labelstudio``, never run). A bad record raises a :class:`ValidationError` naming the file and the
place (``tasks[3].annotations[1].sentiment``) before anything is written.

Results of controls without an equivalent (``Number``, ``Polygon``, ...) are kept raw in the
item's data under ``labelstudio_results`` and written back by the export; :class:`ImportReport` says what
did not map and how many results were kept.

:func:`export_tasks` writes a project as Label Studio tasks (annotations per person, ground truth for gold,
predictions for machine annotators, skips as cancelled annotations) that Label Studio 1.23 imports into
a project with the config of :func:`labelwright.io.labelstudio_config.config_for` (or the original one).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select

from labelwright.errors import Conflict, ValidationError
from labelwright.io.labelstudio_config import (
    ConfigMapping,
    config_for,
    listed_fields,
    map_config,
    note_size,
    parse_config,
    results_of,
    synthetic_lists,
)
from labelwright.schema import MAX_OVERLAP, ProjectSchema, parse_schema
from labelwright.services import audit
from labelwright.services.export import iter_items
from labelwright.services.gold import gold_answers, store_gold
from labelwright.services.items import check_external_id, stored_json
from labelwright.services.machines import USER_PREFIX
from labelwright.services.projects import Project, get_project
from labelwright.services.queue import MAX_ACTIVE_MS
from labelwright.services.users import NAME_RE
from labelwright.store import Store, dumps, loads
from labelwright.store import tables as t

RAW_KEY = "labelstudio_results"  # item data key holding results of controls that did not map
MACHINE_KIND = "labelstudio"  # machine_annotators.kind of imported predictions (never run by the worker)


@dataclass
class ImportReport:
    """What an import did, and what it could not map."""

    project: str
    items: int = 0
    annotations: int = 0
    people: list[str] = field(default_factory=list)
    new_people: list[str] = field(default_factory=list)
    skipped: int = 0
    gold: int = 0
    predictions: int = 0
    machines: list[str] = field(default_factory=list)
    unmapped: list[dict] = field(default_factory=list)
    raw_results: int = 0
    empty_annotations: int = 0
    replaced: int = 0
    predictions_without_results: int = 0
    unknown_controls: list[str] = field(default_factory=list)  # from_names in results but not in the config

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class _Person:
    name: str
    ls_id: Any = None


@dataclass
class _Ann:
    person: str
    answers: dict
    active_ms: int
    created: float
    updated: float


@dataclass
class _Task:
    external_id: str
    data: dict
    anns: dict[str, _Ann] = field(default_factory=dict)
    skips: set[str] = field(default_factory=set)
    gold: dict | None = None


# ---- reading --------------------------------------------------------------------------------------------


def read_export(path: str | Path) -> list[dict]:
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise ValidationError(f"cannot read the export: {e.strerror}", file=file) from None
    try:
        tasks = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        line = raw[:e.pos].count(b"\n") + 1
        raise ValidationError(f"not JSON: {e.msg}", file=file, line=line) from None
    if not isinstance(tasks, list):
        raise ValidationError("a Label Studio JSON export is one array of tasks; export the project as JSON "
                              "(not JSON-MIN, CSV or a single task)", file=file)
    return tasks


def import_labelstudio(store: Store, export: str | Path, config: str | Path, *, slug: str | None = None,
                       name: str | None = None, by=None) -> ImportReport:
    """Import the Label Studio export file ``export`` with its config file ``config`` as a new project."""
    try:
        text = Path(config).read_text(encoding="utf-8")
    except OSError as e:
        raise ValidationError(f"cannot read the config: {e.strerror}", file=str(config)) from None
    except UnicodeDecodeError:
        raise ValidationError("the config is not UTF-8 text", file=str(config)) from None
    return import_tasks(store, read_export(export), text, slug=slug, name=name or f"{Path(export).stem}",
                        file=str(export), config_file=str(config), by=by)


def import_tasks(store: Store, tasks: list, config_text: str, *, slug: str | None = None, name: str = "labelstudio",
                 file: str = "export", config_file: str = "config", by=None) -> ImportReport:
    """:func:`import_labelstudio` on tasks already read (a list of dicts) and the config's text."""
    for i, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise ValidationError("a task is an object with a 'data' object", file=file, field=f"tasks[{i}]")
    mapping = map_config(parse_config(config_text, file=config_file), tasks, file=config_file)
    if not mapping.controls:
        reasons = "; ".join(f"<{u.tag} name={u.name!r}>: {u.reason}" for u in mapping.unmapped) or "no control tags"
        raise ValidationError(f"nothing in the config maps to a labelwright question ({reasons})", file=config_file)
    schema = _schema(mapping, tasks, slug, name, config_file)
    report = ImportReport(project=schema.slugified(), unmapped=[u.to_dict() for u in mapping.unmapped])
    people: dict[str, _Person] = {}
    machines: dict[str, str] = {}  # machine user name -> model version
    parsed = [_task(schema, mapping, i, task, people, machines, report, file) for i, task in enumerate(tasks)]
    first: dict[str, int] = {}
    for i, task in enumerate(parsed):
        if first.setdefault(task.external_id, i) != i:
            raise ValidationError(f"tasks[{first[task.external_id]}] has the same id {task.external_id}: a task "
                                  "may appear once", file=file, field=f"tasks[{i}].id")
    _write(store, schema, parsed, people, machines, report, by)
    report.people = sorted(people)
    report.machines = sorted(machines)
    return report


def _schema(mapping: ConfigMapping, tasks: list, slug: str | None, name: str, config_file: str) -> ProjectSchema:
    fields = []
    generated = _generated(mapping)
    for f in mapping.fields:
        have = sum(f["name"] in t["data"] or f["name"] in generated for t in tasks)
        if tasks and have == 0:
            raise ValidationError(f"the config shows ${f['name']}, but no task has {f['name']!r} in its data: is this "
                                  "the config of this export?", file=config_file, field=f["name"])
        fields.append({**f, "required": have == len(tasks)})
    counts = [len([a for a in _listed(t.get("annotations")) if isinstance(a, dict) and not a.get("was_cancelled")])
              + len(_listed(t.get("predictions"))) for t in tasks]
    spec = {"name": name[:200] or "labelstudio", "fields": fields, "questions": mapping.questions(),
            "overlap": max(1, min(MAX_OVERLAP, max(counts, default=1))),
            "description": "Imported from Label Studio."}
    spec["slug"] = slug or (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63] or "labelstudio")
    return parse_schema(spec, file=config_file)


def _listed(value: Any) -> list:
    """A task's annotations or predictions when they are a list, else none (:func:`_task` names the place)."""
    return value if isinstance(value, list) else []


def _generated(mapping: ConfigMapping) -> set[str]:
    return {f"{key}_{k}" for key, n in mapping.lists.items() for k in range(1, n + 1)}


def _when(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _active_ms(lead_time: Any, where: str, file: str) -> int:
    """An annotation's ``lead_time`` (seconds) as active milliseconds, held to 0 to :data:`MAX_ACTIVE_MS` as a
    save's are; anything but a finite number is an error."""
    try:
        seconds = float(lead_time or 0)
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds):
        raise ValidationError(f"lead_time should be a number of seconds, got {lead_time!r:.40}", file=file,
                              field=f"{where}.lead_time")
    return int(round(min(max(0.0, seconds * 1000), MAX_ACTIVE_MS)))


def _person(value: Any, where: str, file: str) -> _Person:
    """The annotator of an annotation: its e-mail address in an export with the people (``completed_by`` an
    object), else ``ls-user-<id>`` (the plain export has bare ids)."""
    if isinstance(value, dict):
        email = value.get("email")
        if isinstance(email, str) and NAME_RE.match(email):
            return _Person(email, value.get("id"))
        value = value.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        return _Person(f"ls-user-{value}", value)
    raise ValidationError("completed_by should be a user id or an object with the user's email (at most 64 "
                          "letters, digits, '.', '@', '_' or '-')", file=file, field=f"{where}.completed_by")


def _task(schema: ProjectSchema, mapping: ConfigMapping, i: int, task: dict, people: dict, machines: dict,
          report: ImportReport, file: str) -> _Task:
    where = f"tasks[{i}]"
    data = dict(task["data"])
    for key in mapping.lists:
        for k, entry in enumerate(data.get(key) or [], start=1):
            title, body = entry.get("title"), entry.get("body")
            shown = "\n\n".join(str(x) for x in (title, body) if x not in (None, "")) or str(entry.get("id"))
            data[f"{key}_{k}"] = shown
    if RAW_KEY in data:
        raise ValidationError(f"the task's data already has a key {RAW_KEY!r}, which the import uses for results it "
                              "does not map", file=file, field=f"{where}.data.{RAW_KEY}")
    try:
        schema.validate_item(data)
    except ValidationError as e:
        where_data = f"{where}.data" + (f".{e.field}" if e.field else "")
        raise ValidationError(e.message, file=file, field=where_data) from None
    stored_json(data, file=file, field=f"{where}.data")
    ext = str(task["id"]) if task.get("id") is not None else f"task-{i + 1}"
    check_external_id(ext, file=file, field=f"{where}.id")
    out = _Task(ext, data)
    raw: list[dict] = []
    seen_controls: set[str] = set()
    anns = task.get("annotations") or []
    if not isinstance(anns, list):
        raise ValidationError("annotations should be a list", file=file, field=f"{where}.annotations")
    for j, ann in enumerate(anns):
        aw = f"{where}.annotations[{j}]"
        if not isinstance(ann, dict):
            raise ValidationError("an annotation is an object", file=file, field=aw)
        person = _person(ann.get("completed_by"), aw, file)
        people.setdefault(person.name, person)
        if ann.get("was_cancelled"):
            out.skips.add(person.name)
            report.skipped += 1
            continue
        answers, kept = _answers(schema, mapping, ann.get("result"), data, aw, file, seen_controls)
        if kept:
            raw.append({"annotator": person.name, "ground_truth": bool(ann.get("ground_truth")), "result": kept})
            report.raw_results += len(kept)
        if ann.get("ground_truth") and answers:
            try:
                out.gold = schema.validate_gold(answers)
            except ValidationError as e:
                raise ValidationError(e.message, file=file, field=f"{aw}.{e.field}" if e.field else aw) from None
        if not answers:
            report.empty_annotations += 1
            continue
        _add(out, _Ann(person.name, answers, _active_ms(ann.get("lead_time"), aw, file),
                       _when(ann.get("created_at")) or time.time(), _when(ann.get("updated_at")) or time.time()),
             report)
    preds = task.get("predictions") or []
    for j, pred in enumerate(preds if isinstance(preds, list) else []):
        pw = f"{where}.predictions[{j}]"
        if not isinstance(pred, dict):  # the plain export lists prediction ids only
            report.predictions_without_results += 1
            continue
        version = str(pred.get("model_version") or "predictions")
        machine = _machine_name(schema.slugified(), version)
        machines.setdefault(machine, version)
        answers, kept = _answers(schema, mapping, pred.get("result"), data, pw, file, seen_controls)
        if kept:
            raw.append({"annotator": machine, "prediction": True, "result": kept})
            report.raw_results += len(kept)
        if answers:
            _add(out, _Ann(machine, answers, 0, _when(pred.get("created_at")) or time.time(),
                           _when(pred.get("updated_at")) or time.time()), report)
            report.predictions += 1
    if raw:
        out.data[RAW_KEY] = raw
    known = mapping.unmapped_names()
    report.unknown_controls = sorted(set(report.unknown_controls) | (seen_controls - known))
    return out


def _add(task: _Task, ann: _Ann, report: ImportReport) -> None:
    """One annotation per person and item: a later one (by update time) replaces an earlier one."""
    old = task.anns.get(ann.person)
    if old is not None:
        report.replaced += 1
        if old.updated > ann.updated:
            return
    task.anns[ann.person] = ann


def _machine_name(slug: str, version: str) -> str:
    short = re.sub(r"[^A-Za-z0-9_.@\-]+", "-", version).strip("-") or "predictions"
    return (USER_PREFIX + f"{slug}.{short}")[:64]


def _answers(schema: ProjectSchema, mapping: ConfigMapping, result: Any, data: dict, where: str,
             file: str, unknown: set[str] | None = None) -> tuple[dict, list[dict]]:
    """``(answers, results kept raw)`` of one annotation's or prediction's ``result`` list; the names of
    controls the result names and the mapping does not know go into ``unknown``."""
    if result is None:
        return {}, []
    if not isinstance(result, list):
        raise ValidationError("result should be a list", file=file, field=f"{where}.result")
    answers: dict = {}
    kept: list[dict] = []
    unmapped = unknown if unknown is not None else set()
    for k, r in enumerate(result):
        rw = f"{where}.result[{k}]"
        if not isinstance(r, dict) or not isinstance(r.get("value"), dict):
            raise ValidationError("a result is an object with a 'value' object", file=file, field=rw)
        b = mapping.controls.get(str(r.get("from_name")))
        if b is None:
            stored_json(r, file=file, field=rw)
            kept.append(r)
            unmapped.add(str(r.get("from_name")))  # as text: a from_name may be any JSON value
            continue
        try:
            note_size(b, r, data)  # RectangleLabels: the image's size, kept in the item's data
            answer = b.control.answer(r["value"], b, data)
        except ValueError as e:
            raise ValidationError(str(e), file=file, field=f"{rw}.value") from None
        name = r["from_name"]
        if b.control.multi:  # one result per span: the answer is all of them
            answers[name] = answers.get(name, []) + answer
            continue
        if name in answers:
            if b.question["type"] != "text":
                raise ValidationError(f"a second result for {name!r} in one annotation", file=file, field=rw)
            answer = answers[name] + "\n" + answer
        answers[name] = answer
    try:
        clean = schema.validate_answers(answers, data) if answers else {}
    except ValidationError as e:
        raise ValidationError(e.message, file=file, field=f"{where}.{e.field}" if e.field else where) from None
    stored_json(clean, file=file, field=where)
    return clean, kept


# ---- writing: one transaction --------------------------------------------------------------------------


def _write(store: Store, schema: ProjectSchema, tasks: list[_Task], people: dict[str, _Person],
           machines: dict[str, str], report: ImportReport, by) -> None:
    now = time.time()
    slug = schema.slugified()
    i, a = t.items, t.annotations
    with store.write() as conn:
        if conn.execute(select(t.projects.c.id).where(t.projects.c.slug == slug)).first():
            raise Conflict(f"a project with slug {slug!r} already exists: pass --slug to choose another", field="slug")
        pid = conn.execute(insert(t.projects).values(
            slug=slug, name=schema.name, schema=schema.to_json(), overlap=schema.overlap,
            lease_seconds=schema.lease_seconds, created_by=getattr(by, "id", None), created_at=now, updated_at=now,
        ).returning(t.projects.c.id)).scalar_one()
        audit.record(conn, by, "project.create", pid, slug, {"name": schema.name, "from": "labelstudio"})
        ids = _users(conn, [*people, *machines], report, now)
        for machine, version in machines.items():
            if conn.execute(select(t.machine_annotators.c.user_id).where(
                    t.machine_annotators.c.user_id == ids[machine])).first():
                raise Conflict(f"the machine annotator {machine!r} exists in another project: import with another "
                               "--slug", field="slug")
            conn.execute(insert(t.machine_annotators).values(
                user_id=ids[machine], project_id=pid, kind=MACHINE_KIND, enabled=0, created_by=getattr(by, "id", None),
                config=dumps({"model_version": version, "source": "Label Studio predictions"}), created_at=now))
        members = [{"project_id": pid, "user_id": ids[n], "role": "annotator", "status": "active",
                    "added_by": getattr(by, "id", None), "added_at": now} for n in [*people, *machines]]
        if members:  # an export nobody has annotated yet has none (and an empty list would insert one blank row)
            conn.execute(insert(t.memberships), members)
        if tasks:
            rows = []
            for task in tasks:
                n = len(task.anns)
                target = n if n > schema.overlap else None
                rows.append({"project_id": pid, "external_id": task.external_id, "data": dumps(task.data),
                             "n_assigned": n, "n_done": n, "is_open": int(n < (target or schema.overlap)),
                             "created_at": now, "target": target, "is_gold": 0, "queue_rank": 0})
            conn.execute(insert(i), rows)
            item_ids = dict(conn.execute(select(i.c.external_id, i.c.id).where(i.c.project_id == pid)).all())
            anns = [{"item_id": item_ids[task.external_id], "project_id": pid, "user_id": ids[x.person],
                     "answers": dumps(x.answers), "active_ms": x.active_ms, "revision": 1, "created_at": x.created,
                     "updated_at": max(x.updated, x.created), "review_status": "pending",
                     "reported_ms": x.active_ms, "bound_ms": x.active_ms}
                    for task in tasks for x in task.anns.values()]
            if anns:
                conn.execute(insert(a), anns)
            skips = [{"item_id": item_ids[task.external_id], "user_id": ids[p], "project_id": pid, "created_at": now}
                     for task in tasks for p in sorted(task.skips) if p not in task.anns]
            if skips:
                conn.execute(insert(t.skips), skips)
            gold = [(item_ids[task.external_id], dumps(task.gold)) for task in tasks if task.gold]
            store_gold(conn, pid, gold, getattr(by, "id", None), now)
            report.items = len(tasks)
            report.annotations = len(anns) - report.predictions
            report.gold = len(gold)


def _users(conn: Connection, names: list[str], report: ImportReport, now: float) -> dict[str, int]:
    """Ids of the people and machines by name, creating the missing ones (annotators without a password:
    send them a sign-in link)."""
    u = t.users
    found = dict(conn.execute(select(u.c.name, u.c.id).where(u.c.name.in_(names))).all())
    for n in names:
        if n not in found:
            found[n] = conn.execute(insert(u).values(name=n, role="annotator", password_hash=None, disabled=0,
                                                     created_at=now).returning(u.c.id)).scalar_one()
            if not n.startswith(USER_PREFIX):
                report.new_people.append(n)
    return found


# ---- export ---------------------------------------------------------------------------------------------


def export_tasks(store: Store, project: Project | str) -> tuple[list[dict], str, list[str]]:
    """``(tasks, config, warnings)``: the project as Label Studio tasks, the config they go with, and what could
    not be written (answers Label Studio cannot hold, such as a pairwise tie)."""
    if not isinstance(project, Project):
        project = get_project(store, project)
    config, mapping = config_for(project.schema)
    warnings = [f"{u.tag} {u.name!r}: {u.reason}" for u in mapping.unmapped]
    gold = gold_answers(store, project)
    listed = listed_fields(project.schema)
    machines, skips = _machines_and_skips(store, project)
    lost: dict[str, int] = {}
    out = []
    for item_id, ext, data_json, anns, _key, _is_gold in iter_items(store, project):
        data = loads(data_json)
        raw = data.pop(RAW_KEY, [])
        data.update(synthetic_lists(project.schema, data))
        for name in listed:
            data.pop(name, None)
        task: dict = {"data": data, "annotations": [], "predictions": []}
        if ext.isdigit():
            task["meta"] = {"labelwright_external_id": ext}
        truth = gold.get(item_id)
        truth_written = False
        for name, ms, created, updated, _rev, status, answers, fixed, _seen in anns:
            if status == "rejected":
                continue
            ans = loads(fixed) if fixed is not None else answers
            result, missing = results_of(mapping, ans, data)
            for q in missing:
                lost[q] = lost.get(q, 0) + 1
            result += [r for entry in raw if entry["annotator"] == name for r in entry["result"]]
            if name in machines:
                task["predictions"].append({"model_version": machines[name], "result": result})
                continue
            is_truth = truth is not None and not truth_written and all(ans.get(k) == v for k, v in truth.items())
            truth_written |= is_truth
            task["annotations"].append({"completed_by": {"email": name}, "result": result, "was_cancelled": False,
                                        "ground_truth": is_truth, "lead_time": ms / 1000, "created_at": created,
                                        "updated_at": updated})
        written = {a[0] for a in anns if a[5] != "rejected"}
        for entry in raw:  # results of controls that did not map, from someone with no mapped answer here
            if entry["annotator"] in written:
                continue
            if entry.get("prediction"):
                task["predictions"].append({"model_version": machines.get(entry["annotator"], entry["annotator"]),
                                            "result": entry["result"]})
            else:
                task["annotations"].append({"completed_by": {"email": entry["annotator"]}, "result": entry["result"],
                                            "was_cancelled": False, "ground_truth": bool(entry.get("ground_truth"))})
        if truth is not None and not truth_written:
            result, _ = results_of(mapping, truth, data)
            task["annotations"].append({"result": result, "was_cancelled": False, "ground_truth": True})
        for name in skips.get(item_id, ()):
            task["annotations"].append({"completed_by": {"email": name}, "result": [], "was_cancelled": True,
                                        "ground_truth": False})
        out.append(task)
    warnings += [f"{n} answer(s) to {q!r} have no Label Studio form (a pairwise tie or 'both bad'; boxes on an image "
                 "whose size the item does not give) and were left out"
                 for q, n in sorted(lost.items())]
    return out, config, warnings


def _machines_and_skips(store: Store, project: Project) -> tuple[dict[str, str], dict[int, list[str]]]:
    m, u, s = t.machine_annotators, t.users, t.skips
    with store.read() as conn:
        machines = {}
        for name, config in conn.execute(select(u.c.name, m.c.config).select_from(m.join(u, u.c.id == m.c.user_id))
                                         .where(m.c.project_id == project.id)):
            machines[name] = loads(config).get("model_version") or name.removeprefix(USER_PREFIX)
        skips: dict[int, list[str]] = {}
        for item_id, name in conn.execute(select(s.c.item_id, u.c.name).select_from(s.join(u, u.c.id == s.c.user_id))
                                          .where(s.c.project_id == project.id).order_by(s.c.item_id, u.c.name)):
            skips.setdefault(item_id, []).append(name)
    return machines, skips
