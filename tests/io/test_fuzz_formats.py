"""The format importers fuzzed with random and malformed input, on SQLite and PostgreSQL.

COCO files and dicts, YOLO label folders, Label Studio exports (files, and task lists with their configs),
CoNLL files and spaCy DocBin files, each built from a valid one and then broken: keys removed, values of the
wrong type, numbers out of range, NaN, huge numbers, unicode, truncated files, random bytes spliced in. Each
import either succeeds, or fails with a :class:`labelwright.errors.LabelwrightError` that has a message and
names its place (file, line or field), and then nothing in the database changed: an import lands whole or
not at all (tests/io/test_fuzz_import.py does the same for JSONL, CSV and JSON items).

``LABELWRIGHT_FUZZ_EXAMPLES`` runs more examples, with a fresh seed.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
import zlib
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import func, select

from labelwright.errors import LabelwrightError
from labelwright.io.detection_import import import_coco_gold
from labelwright.io.labelstudio import import_labelstudio, import_tasks
from labelwright.io.spans_import import import_conll, import_docbin
from labelwright.io.yolo_import import import_yolo_gold
from labelwright.services.export import iter_items
from labelwright.services.gold import gold_answers
from labelwright.services.items import add_items
from labelwright.services.projects import create_project, get_project
from labelwright.services.queue import MAX_ACTIVE_MS
from labelwright.store import loads
from labelwright.store import tables as t

FUZZ_EXAMPLES = int(os.environ.get("LABELWRIGHT_FUZZ_EXAMPLES", "0"))
LS_DATA = Path(__file__).parent / "data" / "labelstudio"


def fuzz(examples: int) -> settings:
    return settings(max_examples=FUZZ_EXAMPLES or examples, derandomize=not FUZZ_EXAMPLES, database=None,
                    deadline=None, suppress_health_check=list(HealthCheck))


# ---- what every import must do --------------------------------------------------------------------------

WATCHED = (t.projects, t.items, t.annotations, t.gold, t.skips, t.users, t.memberships, t.machine_annotators,
           t.audit_log, t.events)


def _state(store) -> dict:
    """Every row an import could write."""
    with store.read() as conn:
        return {tab.name: [tuple(r) for r in conn.execute(select(tab).order_by(*tab.columns))] for tab in WATCHED}


def _attempt(store, do):
    """Run an import: its result, or None after a clean failure that named its place and wrote nothing."""
    before = _state(store)
    try:
        return do()
    except LabelwrightError as e:
        assert e.message.strip(), "an error without a message"
        assert e.where(), f"an error that names no file, line or field: {e.message!r}"
        assert _state(store) == before, f"a failed import changed the database ({e})"
        return None


def _items(store, project) -> int:
    with store.read() as conn:
        return conn.execute(select(func.count()).select_from(t.items)
                            .where(t.items.c.project_id == project.id)).scalar_one()


# ---- breaking a valid document --------------------------------------------------------------------------

NASTY = st.sampled_from([
    0, -1, 1, 0.5, 2, 1e308, -1e308, float("nan"), float("inf"), -float("inf"), 10**30, 10**400, -(2**63), "", " ",
    "\x00", "a\x00b", "\ud800", "\u202e", "🐦🐦", "1", "1.5", "b0.jpg", "http://[::1/b0.jpg", "https://a\uff03b/b0.jpg",
    "gull", "crow", "PER", "positive", "left", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
    "2026-02-30T00:00:00Z"])
JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8), NASTY, NASTY,
    st.lists(st.integers(-5, 300) | st.floats(), max_size=6),
    st.dictionaries(st.sampled_from(["id", "name", "value", "choices", "start", "email", "x"]),
                    st.integers() | st.text(max_size=3), max_size=3),
)


def _paths(doc, path=()):
    yield path
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*path, i))


def _at(doc, path):
    for k in path:
        doc = doc[k]
    return doc


def mutate(data, doc, *, edits: tuple[int, int] = (1, 4)):
    """``doc`` after a few random edits at random places: a key or an element dropped, a value swapped for
    junk, wrapped in a list, turned to text, given twice or scaled out of range."""
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(*edits), label="edits")):
        path = data.draw(st.sampled_from(list(_paths(doc))), label="path")
        op = data.draw(st.sampled_from(["drop", "junk", "junk", "wrap", "text", "twice", "scale"]), label="op")
        if not path:
            doc = data.draw(JUNK) if op == "junk" else doc
            continue
        parent, key = _at(doc, path[:-1]), path[-1]
        old = parent[key]
        if op == "drop":
            del parent[key]
        elif op == "junk":
            parent[key] = data.draw(JUNK, label="junk")
        elif op == "wrap":
            parent[key] = [old]
        elif op == "text":
            parent[key] = str(old)
        elif op == "twice" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(old))
        elif op == "twice":
            parent[key] = [old, copy.deepcopy(old)]
        elif isinstance(old, (int, float)) and not isinstance(old, bool):
            parent[key] = old * data.draw(st.sampled_from([-1, 0, 1000, 10**20, 1e300]), label="scale")
    return doc


def damage(data, body: bytes) -> bytes:
    """The file as it is, cut off, with random bytes spliced in, or random bytes instead."""
    how = data.draw(st.sampled_from(["whole", "whole", "whole", "cut", "splice", "bytes"]), label="damage")
    at = data.draw(st.integers(0, len(body)), label="at")
    if how == "cut":
        return body[:at]
    if how == "splice":
        return body[:at] + data.draw(st.binary(min_size=1, max_size=12), label="spliced") + body[at:]
    if how == "bytes":
        return data.draw(st.binary(max_size=60), label="bytes")
    return body


def _file(tmp_path, suffix: str, body: bytes) -> Path:
    path = tmp_path / f"{uuid.uuid4().hex}{suffix}"
    path.write_bytes(body)
    return path


# ---- COCO and YOLO: gold boxes and polygons -------------------------------------------------------------

DETECTION: dict[str, Any] = {
    "name": "Birds", "id_field": "id", "fields": [{"name": "photo", "type": "image"}],
    "questions": [{"name": "shapes", "type": "boxes", "field": "photo", "labels": ["crow", "gull"],
                   "width_field": "w", "height_field": "h"},
                  {"name": "kind", "type": "single_choice", "options": ["sea", "land"]}],
}
BIRDS: list[dict[str, Any]] = [
    {"id": "b0", "photo": "https://cdn.example.org/birds/b0.jpg", "w": 200, "h": 100},
    {"id": "b1", "photo": "https://cdn.example.org/birds/b1.jpg", "w": 50, "h": 50},
    {"id": "b2", "photo": "https://cdn.example.org/birds/b2.jpg"},  # no size: YOLO cannot place it
]
COCO_BOXES = {
    "images": [{"id": 7, "file_name": "b0.jpg", "width": 200, "height": 100},
               {"id": 8, "file_name": "https://cdn.example.org/birds/b1.jpg", "width": 50, "height": 50}],
    "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "gull"}, {"id": 3, "name": "crow"}],
    "annotations": [{"id": 1, "image_id": 7, "category_id": 2, "bbox": [10, 10, 50.5, 40], "iscrowd": 0},
                    {"id": 2, "image_id": 8, "category_id": 3, "bbox": [0, 0, 50, 50], "iscrowd": 0}],
}
COCO_POLYGONS = {**COCO_BOXES, "annotations": [
    {"id": 1, "image_id": 7, "category_id": 3, "bbox": [0, 0, 10, 10],
     "segmentation": [[0, 0, 10, 0, 10, 10], [20, 20, 40, 20, 40, 40]]},
    {"id": 2, "image_id": 8, "category_id": 2, "segmentation": [[1, 1, 49, 1, 25, 49]]}]}


@pytest.fixture
def detection(store):
    """A boxes project and a polygons project with the same three images, one of them gold already."""
    out = {}
    for kind in ("boxes", "polygons"):
        q = {**DETECTION["questions"][0], "type": kind}
        p = create_project(store, {**DETECTION, "slug": f"fz-{kind}", "questions": [q, DETECTION["questions"][1]]})
        add_items(store, p, [{**b, "gold.kind": "sea"} if b["id"] == "b0" else b for b in BIRDS])
        out[kind] = p
    return out


def _gold_holds(store, project, done) -> None:
    """After an import that succeeded: no item was added, and every gold answer is one the schema takes."""
    assert _items(store, project) == len(BIRDS)
    data = {item_id: loads(d) for item_id, _ext, d, *_ in iter_items(store, project)}
    gold = gold_answers(store, project)
    assert sum(done.question in answers for answers in gold.values()) >= done.items
    for item_id, answers in gold.items():
        project.schema.validate_gold(answers, item=data[item_id])


def test_coco(store, detection, tmp_path):
    @fuzz(50)
    @given(st.data(), st.sampled_from(["boxes", "polygons"]), st.booleans())
    def check(data, kind, as_file):
        project = detection[kind]
        coco = mutate(data, COCO_BOXES if kind == "boxes" else COCO_POLYGONS)
        source: Path | dict
        if as_file:  # what `labelwright import-gold` reads
            source = _file(tmp_path, ".json", damage(data, json.dumps(coco, allow_nan=True).encode()))
        else:  # the parsed dict, NaN, huge numbers and lone surrogates included
            source = coco if isinstance(coco, dict) else {"images": coco}
        done = _attempt(store, lambda: import_coco_gold(store, project, source))
        if done is not None:
            _gold_holds(store, project, done)
    check()


YOLO_CLASS = st.sampled_from(["0", "1", "2", "-1", "01", "x", "", "\u00b2", "\u0663", "1.0", "9" * 5000])
YOLO_NUMBER = st.one_of(
    st.floats(0, 1).map(repr), st.text(max_size=4),
    st.sampled_from(["0", "1", "0.5", "1.5", "-0.1", "nan", "inf", "-inf", "1e400", "1e-400", "0x1", "1_0", "",
                     "\u00bd", "0,5", "\u0660.\u0665"]))
YOLO_LINE = st.one_of(
    st.builds(lambda c, ns: " ".join([c, *ns]), YOLO_CLASS, st.lists(YOLO_NUMBER, max_size=9)),
    st.builds(lambda c, ns: " ".join([c, *ns]), st.sampled_from(["0", "1"]),
              st.lists(st.floats(0.05, 0.45).map(repr), min_size=4, max_size=8)),
    st.text(max_size=20), st.sampled_from(["", "   ", "\t"]))
YOLO_CLASSES = st.one_of(
    st.tuples(st.just("classes.txt"), st.lists(st.sampled_from(["crow", "gull", "heron", "", " crow "]), max_size=4)
              .map(lambda names: "\n".join(names).encode())),
    st.tuples(st.just("data.yaml"), st.sampled_from([
        "names: [crow, gull]\n", "names:\n  0: gull\n  1: crow\n", "names: {1: crow}\n", "names: crow\n",
        "names: {0: crow, x: gull}\n", "names: {0: crow, null: gull}\n", "names: [1, 2]\n", "- crow\n", "[", ": : :",
        "names: &a [*a]\n", "names: !!python/object/apply:os.getcwd []\n", "",
        "names: " + "[" * 20_000 + "]" * 20_000 + "\n",  # past the recursion limit, which hypothesis raises by 2000
    ]).map(str.encode) | st.binary(max_size=20)),
    st.just(("classes.txt", None)))
YOLO_FILES = st.sampled_from(["labels/b0.txt", "labels/b1.txt", "labels/train/b0.txt", "labels/b2.txt",
                              "labels/b9.txt", "labels/classes.txt", "b1.txt", "labels/birds/b1.txt"])


def test_yolo(store, detection, tmp_path):
    @fuzz(50)
    @given(st.sampled_from(["boxes", "polygons"]), YOLO_CLASSES,
           st.dictionaries(YOLO_FILES, st.lists(YOLO_LINE, max_size=4), max_size=3),
           st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]), st.sampled_from(["\n", "\r\n"]),
           st.one_of(st.none(), st.binary(max_size=20)), st.booleans())
    def check(kind, classes, files, encoding, newline, junk, folder_named_txt):
        root = tmp_path / uuid.uuid4().hex
        root.mkdir()
        if classes[1] is not None:
            (root / classes[0]).write_bytes(classes[1])
        for rel, lines in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            body = newline.join(lines).encode(encoding, "replace")
            (root / rel).write_bytes(body if junk is None else body[:len(body) // 2] + junk)
        if folder_named_txt and not (root / "labels" / "b1.txt").exists():  # a folder named like a label file
            (root / "labels" / "b1.txt" / "x").mkdir(parents=True)
        project = detection[kind]
        done = _attempt(store, lambda: import_yolo_gold(store, project, root))
        if done is not None:
            _gold_holds(store, project, done)
    check()


# ---- CoNLL and spaCy DocBin: gold spans -----------------------------------------------------------------

SPANS = {"name": "Entities", "fields": [{"name": "text", "type": "text"}],
         "questions": [{"name": "ents", "type": "spans", "field": "text", "labels": ["PER", "LOC", "ORG"]}]}
LABELS = ["PER", "LOC", "ORG", "COMPANY", "", "B-PER"]


@pytest.fixture
def spans(store):
    """A spans project keyed by an id field, with one item already there, and one keyed by content."""
    keyed = create_project(store, {**SPANS, "slug": "fz-keyed", "id_field": "id"})
    add_items(store, keyed, [{"id": "a", "text": "Ann met Bob"}])
    return [keyed, create_project(store, {**SPANS, "slug": "fz-unkeyed"})]


def _spans_landed(store, project, before: int, report: dict) -> None:
    assert _items(store, project) == before + report["inserted"]
    assert report["gold"] <= report["received"]


CONLL_TOKEN = st.one_of(st.sampled_from(["Ann", "met", "Bob", "New", "York", "-DOCSTART-", "été", "🐦", "\x00",
                                         "\u200b", "x" * 300]), st.text(min_size=1, max_size=6))
CONLL_TAG = st.one_of(st.sampled_from(["O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG", "B-COMPANY", "X-PER",
                                       "B-", "-", "b-per", "O-PER", "B-PER-LOC"]), st.text(max_size=5))
CONLL_GOOD = st.builds(lambda tok, tag: f"{tok} -X- _ {tag}", st.sampled_from(["Ann", "met", "Bob", "Zoë", "🐦"]),
                       st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-ORG"]))
CONLL_LINE = st.one_of(
    CONLL_GOOD, CONLL_GOOD, CONLL_GOOD, CONLL_GOOD,
    st.builds(lambda tok, mid, tag: " ".join([tok, *mid, tag]), CONLL_TOKEN,
              st.lists(st.sampled_from(["-X-", "_", "NNP"]), max_size=2), CONLL_TAG),
    st.builds(lambda tok, tag: f"{tok}\t{tag}", CONLL_TOKEN, CONLL_TAG),
    st.sampled_from(["", "", "-DOCSTART- -X- -X- O", "Ann", "   "]), st.text(max_size=15))


def test_conll(store, spans, tmp_path):
    @fuzz(50)
    @given(st.data(), st.lists(CONLL_LINE, max_size=12), st.sampled_from([0, 1]),
           st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16"]), st.sampled_from(["\n", "\r\n"]))
    def check(data, lines, which, encoding, newline):
        project = spans[which]
        path = _file(tmp_path, ".conll", damage(data, newline.join(lines).encode(encoding, "replace")))
        before = _items(store, project)
        report = _attempt(store, lambda: import_conll(store, project, path))
        if report is not None:
            _spans_landed(store, project, before, report)
    check()


def _docbin_bytes(data, nlp) -> bytes:
    """A valid DocBin of random docs and spans (in doc.ents, the "sc" group or another), then broken: as a
    file, or inside (its msgpack fields, under valid zlib)."""
    import srsly  # noqa: PLC0415 - comes with spaCy, an optional extra
    from spacy.tokens import DocBin  # noqa: PLC0415 - optional (the spacy extra)
    from spacy.util import filter_spans  # noqa: PLC0415 - optional

    docs = []
    for text in data.draw(st.lists(st.text(max_size=20) | st.sampled_from(["Ann met Bob", "", " "]), max_size=3),
                          label="texts"):
        doc = nlp.make_doc(text)
        made = []
        for *ends, label in data.draw(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20),
                                                         st.sampled_from(LABELS)), max_size=3), label="spans"):
            span = doc.char_span(*sorted(ends), label=label, alignment_mode="expand") if label else None
            made += [span] if span is not None else []
        group = data.draw(st.sampled_from(["ents", "sc", "other"]), label="group")
        if group == "ents":
            doc.ents = filter_spans(made)
        else:
            doc.spans[group] = made
        docs.append(doc)
    body = DocBin(docs=docs).to_bytes()
    if data.draw(st.booleans(), label="inside"):
        msg = mutate(data, srsly.msgpack_loads(zlib.decompress(body)), edits=(1, 2))
        return zlib.compress(srsly.msgpack_dumps(msg))
    return damage(data, body)


def test_docbin(store, spans, tmp_path):
    spacy = pytest.importorskip("spacy")
    nlp = spacy.blank("xx")

    @fuzz(50)
    @given(st.data(), st.sampled_from([0, 1]))
    def check(data, which):
        project = spans[which]
        try:
            body = _docbin_bytes(data, nlp)
        except (TypeError, ValueError, OverflowError):  # junk msgpack cannot pack (a lone surrogate, a huge int)
            body = b""
        path = _file(tmp_path, ".spacy", body)
        before = _items(store, project)
        report = _attempt(store, lambda: import_docbin(store, project, path))
        if report is not None:
            _spans_landed(store, project, before, report)
    check()


# ---- Label Studio: a whole project ------------------------------------------------------------------------

LS_EXPORTS = ["reviews", "entities", "boxes", "ranking", "preference", "demos"]
LS_CONFIG_EDITS = st.sampled_from([
    None, None, None, ("$text", "$nope"), ('maxRating="5"', 'maxRating="1e9"'), ('maxRating="5"', 'maxRating="x"'),
    ("<Choice ", "<Label "), ('toName="text"', 'toName="image"'), ('value="$image"', 'value="$text"'),
    ('name="sentiment"', 'name="9 bad"'), ("<View>", "<View><Number name='n' toName='text'/>"), ("</View>", ""),
    ("<View>", '<!DOCTYPE v [<!ENTITY a "a">]><View>'), ("<View>", "<Config>"),
])


def _ls(name: str) -> tuple[list, str]:
    return json.loads((LS_DATA / f"{name}.json").read_text()), (LS_DATA / f"{name}.xml").read_text()


@pytest.fixture
def taken(store):
    """A project whose slug an import may ask for."""
    return create_project(store, {**SPANS, "slug": "fz-taken"})


def _ls_landed(store, report) -> None:
    assert _items(store, get_project(store, report.project)) == report.items


def test_labelstudio_tasks(store, taken):
    @fuzz(50)
    @given(st.data(), st.sampled_from(LS_EXPORTS), LS_CONFIG_EDITS, st.sampled_from([None, None, None, "fz-taken"]))
    def check(data, name, edit, slug):
        tasks, config = _ls(name)
        tasks = mutate(data, tasks)
        tasks = tasks if isinstance(tasks, list) else [tasks]  # import_tasks takes a list of what the file held
        config = config.replace(*edit) if edit else config
        slug = slug or f"ls-{uuid.uuid4().hex[:8]}"
        report = _attempt(store, lambda: import_tasks(store, tasks, config, slug=slug, file="export.json"))
        if report is not None:
            _ls_landed(store, report)
    check()


def test_labelstudio_files(store, tmp_path):
    @fuzz(50)
    @given(st.data(), st.sampled_from(LS_EXPORTS), LS_CONFIG_EDITS, st.booleans())
    def check(data, name, edit, break_config):
        tasks, config = _ls(name)
        export = _file(tmp_path, ".json", damage(data, json.dumps(mutate(data, tasks), allow_nan=True).encode()))
        xml = (config.replace(*edit) if edit else config).encode()
        config_path = _file(tmp_path, ".xml", damage(data, xml) if break_config else xml)
        report = _attempt(store, lambda: import_labelstudio(store, export, config_path,
                                                            slug=f"ls-{uuid.uuid4().hex[:8]}"))
        if report is not None:
            _ls_landed(store, report)
    check()


# ---- what the fuzzing found, each input once ----------------------------------------------------------------


def _refused(store, do, match: str) -> LabelwrightError:
    before = _state(store)
    with pytest.raises(LabelwrightError, match=match) as e:
        do()
    assert _state(store) == before
    return e.value


def _folder(tmp_path, files: dict[str, str]) -> Path:
    root = tmp_path / uuid.uuid4().hex
    for rel, body in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(body)
    return root


@pytest.mark.parametrize(("files", "match", "line", "field"), [
    ({"data.yaml": "names: {0: crow, x: gull}\n"}, "names must be a list", None, "names"),  # was a TypeError
    ({"data.yaml": "names: " + "[" * 20_000 + "]" * 20_000}, "not a YAML mapping", None, None),  # a RecursionError
    ({"classes.txt": "crow\n", "labels/b0.txt": "9" * 5000 + " 0.5 0.5 0.1 0.1\n"},  # int() refused 5000 digits
     "class '9999.* is not an index of the 1 classes", 1, "class"),
])
def test_yolo_found(store, detection, tmp_path, files, match, line, field):
    root = _folder(tmp_path, files)
    e = _refused(store, lambda: import_yolo_gold(store, detection["boxes"], root), match)
    assert (e.line, e.field) == (line, field) and str(e.file).startswith(str(root))


def test_yolo_and_coco_found_urls_urlsplit_refuses(store, detection, tmp_path):
    """A folder named like a label file was read as one (IsADirectoryError); an item's image or a COCO file_name
    that urlsplit refuses ("http://[::1/...", an unclosed IPv6 host) raised its ValueError: it is a path."""
    project = detection["boxes"]
    add_items(store, project, [{"id": "b9", "photo": "http://[::1/birds/b9.jpg", "w": 10, "h": 10}])
    root = _folder(tmp_path, {"classes.txt": "crow\n", "labels/b9.txt": "0 0.5 0.5 0.2 0.2\n", "labels/b0.txt/x": ""})
    assert import_yolo_gold(store, project, root).items == 1
    coco = {**COCO_BOXES, "images": [{"id": 7, "file_name": "http://[::1/b0.jpg", "width": 200, "height": 100}],
            "annotations": COCO_BOXES["annotations"][:1]}
    assert import_coco_gold(store, project, coco).items == 1


@pytest.mark.parametrize(("change", "field"), [
    (lambda c: c["annotations"][0].update(bbox=[10**400, 0, 1, 1]), "annotations[0].bbox"),  # was an OverflowError
    (lambda c: c["images"][0].update(width=10**400), "images[0].width"),
])
def test_coco_found(store, detection, change, field):
    coco = copy.deepcopy(COCO_BOXES)
    change(coco)
    assert _refused(store, lambda: import_coco_gold(store, detection["boxes"], coco), "number").field == field


def _results(task: dict, k: int = 0) -> list:
    return task["annotations"][k]["result"]


@pytest.mark.parametrize(("name", "change", "field", "match"), [
    # TypeError: a list of annotations or predictions was assumed
    ("reviews", lambda ts: ts[0].update(annotations=5), "tasks[0].annotations", "should be a list"),
    # ValueError, OverflowError, TypeError from float() and int(); an integer SQLite cannot store
    ("reviews", lambda ts: ts[0]["annotations"][0].update(lead_time="abc"), "tasks[0].annotations[0].lead_time",
     "lead_time should be a number of seconds"),
    ("reviews", lambda ts: ts[0]["annotations"][0].update(lead_time=float("inf")), "tasks[0].annotations[0].lead_time",
     "lead_time"),
    # unhashable lists where text was assumed
    ("preference", lambda ts: _results(ts[0])[0]["value"].update(selected=["left"]),
     "tasks[0].annotations[0].result[0].value", "'left' or 'right'"),
    # PostgreSQL's text refuses NUL (a DataError there)
    ("reviews", lambda ts: ts[0].update(id="a\x00b"), "tasks[0].id", "NUL"),
    # what orjson cannot write (a TypeError at the write): tasks given as objects can hold them
    ("reviews", lambda ts: ts[0]["data"].update(extra=10**30), "tasks[0].data", "cannot store value"),
    ("reviews", lambda ts: _results(ts[0]).append({"from_name": "ghost", "value": {"x": 10**30}}),
     "tasks[0].annotations[0].result[4]", "cannot store value"),
    ("reviews", lambda ts: _results(ts[0])[3]["value"].update(text=["\ud800"]), "tasks[0].annotations[0]",
     "cannot store value"),
    # OverflowError: int() of an infinity, float() of an integer past a float's range
    ("reviews", lambda ts: _results(ts[0])[2]["value"].update(rating=float("inf")),
     "tasks[0].annotations[0].result[2].value", "whole number"),
    ("boxes", lambda ts: _results(ts[0])[0]["value"].update(x=10**400), "tasks[0].annotations[0].result[0].value",
     "finite numbers"),
    ("boxes", lambda ts: _results(ts[0])[0].update(original_width=10**400), "tasks[0].annotations[0].result[0].value",
     "original_width"),
])
def test_labelstudio_found(store, name, change, field, match):
    tasks, config = _ls(name)
    change(tasks)
    e = _refused(store, lambda: import_tasks(store, tasks, config, slug="found", file="export.json"), match)
    assert (e.file, e.field) == ("export.json", field)


def test_labelstudio_found_imports(store):
    """What crashed and is fine: an export nobody has annotated yet (an empty insert of members wrote a blank row,
    an IntegrityError), predictions that are not a list, a from_name that is a list, a lead_time past a day."""
    _, config = _ls("reviews")
    report = import_tasks(store, [{"id": 1, "data": {"text": "not annotated yet"}}], config, slug="fresh")
    assert (report.items, report.people) == (1, [])
    tasks, config = _ls("reviews")
    tasks[0]["predictions"] = True
    _results(tasks[0]).append({"from_name": ["ghost"], "value": {}})
    tasks[0]["annotations"][0]["lead_time"] = 1e300
    report = import_tasks(store, tasks, config, slug="odd")
    assert report.unknown_controls == ["['ghost']"]
    with store.read() as conn:
        assert conn.execute(select(func.max(t.annotations.c.active_ms))).scalar_one() == MAX_ACTIVE_MS


@pytest.mark.parametrize("change", [
    lambda m: m.update(strings=[-1]),  # OverflowError
    lambda m: m.update(flags=[None]),  # AttributeError
    lambda m: m.update(lengths=m["lengths"] * 2),  # IndexError
])
def test_docbin_found(store, spans, tmp_path, change):
    spacy = pytest.importorskip("spacy")
    import srsly  # noqa: PLC0415 - comes with spaCy, an optional extra
    from spacy.tokens import DocBin  # noqa: PLC0415 - optional (the spacy extra)

    doc = spacy.blank("xx").make_doc("Ann met Bob")
    doc.ents = [doc.char_span(0, 3, label="PER")]
    msg = srsly.msgpack_loads(zlib.decompress(DocBin(docs=[doc]).to_bytes()))
    change(msg)
    path = _file(tmp_path, ".spacy", zlib.compress(srsly.msgpack_dumps(msg)))
    assert _refused(store, lambda: import_docbin(store, spans[0], path), "not a spaCy DocBin file").file == str(path)
