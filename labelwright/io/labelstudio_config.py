"""Label Studio labelling configs (XML) to labelwright schemas and back.

A Label Studio config has *object* tags, which show task data (``<Text name="text" value="$text"/>``), and
*control* tags, which ask for an answer about an object (``<Choices name="sentiment" toName="text">``).
Objects become display fields, named after the task data key they show (``$text`` -> ``text``); controls
become questions, named after the control (its ``name`` is the ``from_name`` of its results).

Each control tag that has an equivalent is one :class:`Control` in :data:`CONTROLS`: the question it makes,
how a result's ``value`` reads as an answer, and how an answer is written back as a ``value`` (``Labels``
on a ``Text``: one result per span; ``RectangleLabels`` on an ``Image``: one result per box). Adding a tag
is one entry there; :data:`NOT_YET` names tags still waiting, and :func:`map_config` reports every tag it
did not map, with the reason, instead of failing or dropping it
silently.

The XML is parsed with ``defusedxml`` when it is installed, and a config with a ``<!DOCTYPE`` (where entity
definitions live) is refused either way: a config comes with a project export, from someone else's server,
and a labelling config never needs one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element, ParseError, SubElement, XMLParser, fromstring, tostring

from labelwright.errors import ValidationError
from labelwright.questions.base import finite_number

try:  # defusedxml when installed (the labelstudio extra); otherwise the standard parser, DOCTYPEs refused
    from defusedxml.ElementTree import fromstring as _safe_fromstring
except ImportError:  # pragma: no cover - defusedxml is in the test extra
    _safe_fromstring = None

# object tags that show task data, and the field type each becomes
OBJECTS = {"Text": "text", "HyperText": "text", "Image": "image", "List": "list"}
# tags that only lay out or decorate the page
LAYOUT = {"View", "Header", "Style", "Collapse", "Panel", "Filter", "Choice", "Label", "Bucket", "Relations",
          "Relation", "Shortcut", "Rectangle"}
NAME_OK = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
LIST_SIZES = (2, 9)  # a ranking has 2-9 candidates


@dataclass
class Unmapped:
    """A tag of the config with no labelwright equivalent (yet), and why."""

    tag: str
    name: str | None
    reason: str

    def to_dict(self) -> dict:
        return {"tag": self.tag, "name": self.name, "reason": self.reason}


@dataclass
class Control:
    """One control tag kind: ``question(el, mapping)`` is its labelwright question (a dict), ``answer(value,
    binding)`` reads a result's ``value``, ``value(answer, binding)`` writes one (None: cannot be written)."""

    tag: str
    result_type: str
    question: Callable[[Element, ConfigMapping], dict]
    answer: Callable[[dict, Binding, dict], Any]
    value: Callable[[Any, Binding, dict], dict | list[dict] | None]
    to_self: bool = False  # its results name the control itself as to_name (Pairwise, as its editor does)
    multi: bool = False  # one result per part of the answer (a span each): ``answer`` and ``value`` give lists
    sized: bool = False  # its results carry the image's size (original_width, original_height): RectangleLabels


@dataclass
class Binding:
    """A mapped control: its question, its kind, the object name(s) it labels (``to_name``)."""

    question: dict
    control: Control
    to_name: str
    extra: dict = field(default_factory=dict)  # what a control needs to read its results (a list's key)


@dataclass
class ConfigMapping:
    """What :func:`map_config` made of a config: the display fields, the bound controls by name (=
    ``from_name``), the objects by name, and the tags it did not map."""

    fields: list[dict] = field(default_factory=list)
    controls: dict[str, Binding] = field(default_factory=dict)
    objects: dict[str, dict] = field(default_factory=dict)  # object name -> {tag, key, field}
    unmapped: list[Unmapped] = field(default_factory=list)
    lists: dict[str, int] = field(default_factory=dict)  # List data key -> number of entries

    def questions(self) -> list[dict]:
        return [b.question for b in self.controls.values()]

    def unmapped_names(self) -> set[str]:
        return {u.name for u in self.unmapped if u.name}


class ConfigError(ValidationError):
    """A labelling config that cannot be read."""


# ---- the controls ---------------------------------------------------------------------------------------


def _bad(message: str) -> ValueError:
    return ValueError(message)


def _choices_question(el: Element, m: ConfigMapping) -> dict:
    options = [c.get("alias") or c.get("value") for c in el.iter("Choice")]
    if any(not o for o in options):
        raise _bad("a <Choice> has no value")
    if not 2 <= len(options) <= 50:
        raise _bad(f"has {len(options)} choices; labelwright's choice questions have 2-50")
    multiple = el.get("choice", "single") == "multiple"
    q: dict = {"name": el.get("name"), "type": "multiple_choice" if multiple else "single_choice",
               "options": options}
    return q


def _choices_answer(value: dict, b: Binding, data: dict) -> Any:
    got = value.get("choices")
    if not isinstance(got, list) or not all(isinstance(c, str) for c in got):
        raise _bad("value.choices should be a list of strings")
    if b.question["type"] == "multiple_choice":
        return got
    if len(got) != 1:
        raise _bad(f"a single-choice control has {len(got)} choices in one result")
    return got[0]


def _choices_value(answer: Any, b: Binding, data: dict) -> dict | None:
    return {"choices": answer if isinstance(answer, list) else [answer]}


def _rating_question(el: Element, m: ConfigMapping) -> dict:
    try:
        top = int(el.get("maxRating", "5"))
    except ValueError:
        raise _bad(f"maxRating {el.get('maxRating')!r} is not a whole number") from None
    if not 2 <= top <= 21:
        raise _bad(f"maxRating {top}: labelwright's ratings have 2-21 points")
    return {"name": el.get("name"), "type": "rating", "min": 1, "max": top}


def _rating_answer(value: dict, b: Binding, data: dict) -> Any:
    got = value.get("rating")
    if isinstance(got, bool) or not (isinstance(got, int) or (isinstance(got, float) and got.is_integer())):
        raise _bad("value.rating should be a whole number")
    return int(got)


def _rating_value(answer: Any, b: Binding, data: dict) -> dict | None:
    return {"rating": answer}


def _textarea_question(el: Element, m: ConfigMapping) -> dict:
    q: dict = {"name": el.get("name"), "type": "text"}
    if el.get("rows") == "1" or el.get("editable") == "false":
        q["multiline"] = False
    return q


def _textarea_answer(value: dict, b: Binding, data: dict) -> Any:
    got = value.get("text")
    if isinstance(got, str):
        return got
    if not isinstance(got, list) or not all(isinstance(s, str) for s in got):
        raise _bad("value.text should be a list of strings")
    return "\n".join(got)  # several submissions of one box: one text, a line each


def _textarea_value(answer: Any, b: Binding, data: dict) -> dict | None:
    return {"text": [answer]}


def _pairwise_question(el: Element, m: ConfigMapping) -> dict:
    names = [n.strip() for n in (el.get("toName") or "").split(",")]
    if len(names) != 2:
        raise _bad("toName should name two objects (left,right)")
    fields = []
    for n in names:
        obj = m.objects.get(n)
        if obj is None or obj["field"] is None:
            raise _bad(f"toName names {n!r}, which is not a Text, HyperText or Image tag showing task data")
        fields.append(obj["field"])
    return {"name": el.get("name"), "type": "pairwise", "a": fields[0], "b": fields[1], "rationale": "none"}


_SIDES = {"left": "A", "right": "B"}


def _pairwise_answer(value: dict, b: Binding, data: dict) -> Any:
    got = value.get("selected")
    if not isinstance(got, str) or got not in _SIDES:
        raise _bad("value.selected should be 'left' or 'right'")
    return _SIDES[got]


def _pairwise_value(answer: Any, b: Binding, data: dict) -> dict | None:
    choice = answer.get("choice") if isinstance(answer, dict) else answer
    side = {"A": "left", "B": "right"}.get(str(choice))
    return None if side is None else {"selected": side}  # Label Studio has no tie nor "both bad"


def _ranker_question(el: Element, m: ConfigMapping) -> dict:
    if el.find("Bucket") is not None:
        raise _bad("a Ranker with Buckets sorts items into groups; labelwright's ranking orders every candidate")
    obj = m.objects.get(el.get("toName") or "")
    if obj is None or obj["tag"] != "List":
        raise _bad("toName should name a <List>")
    key = obj["key"]
    n = m.lists.get(key)
    if n is None:
        raise _bad(f"no task has a list under {key!r} to rank")
    return {"name": el.get("name"), "type": "ranking", "candidates": [f"{key}_{k}" for k in range(1, n + 1)]}


def _list_ids(data: dict, key: str) -> list[str]:
    return [str(entry.get("id")) for entry in data.get(key) or []]


def _ranker_answer(value: dict, b: Binding, data: dict) -> Any:
    ranked = value.get("ranker")
    if not isinstance(ranked, dict) or len(ranked) != 1:
        raise _bad("value.ranker should be {list name: [ids, best first]}")
    order = next(iter(ranked.values()))
    key = b.extra["key"]
    ids = _list_ids(data, key)
    if not isinstance(order, list) or sorted(map(str, order)) != sorted(ids):
        raise _bad(f"value.ranker should order every id of the task's {key!r} list once: {ids}")
    return [f"{key}_{ids.index(str(i)) + 1}" for i in order]


def _labels_question(el: Element, m: ConfigMapping) -> dict:
    obj = m.objects.get(el.get("toName") or "")
    if obj is None or obj["tag"] not in ("Text", "HyperText") or obj["field"] is None:
        raise _bad("labelwright's spans are over a Text field: toName should name a <Text> showing task data")
    values = [lab.get("alias") or lab.get("value") for lab in el.iter("Label")]
    if not values or any(not v for v in values):
        raise _bad("a <Label> has no value")
    return {"name": el.get("name"), "type": "spans", "field": obj["field"], "labels": values, "allow_overlap": True}


def _code_points(text: str, units: int) -> int:
    """A JavaScript (UTF-16) offset into ``text`` as a Python (code point) offset: Label Studio counts as
    the browser does, so a character outside the BMP (an emoji) counts twice there."""
    if text.isascii() or all(ord(c) < 0x10000 for c in text):
        return units
    seen = 0
    for i, c in enumerate(text):
        if seen >= units:
            return i
        seen += 2 if ord(c) >= 0x10000 else 1
    return len(text)


def _utf16(text: str, index: int) -> int:
    return index + sum(1 for c in text[:index] if ord(c) >= 0x10000)


def _labels_answer(value: dict, b: Binding, data: dict) -> Any:
    start, end, labels = value.get("start"), value.get("end"), value.get("labels")
    if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool) or isinstance(end, bool):
        raise _bad("value.start and value.end should be character offsets")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise _bad("value.labels should be a list of labels")
    text = data.get(b.question["field"])
    text = text if isinstance(text, str) else ""
    a, z = _code_points(text, start), _code_points(text, end)
    return [{"start": a, "end": z, "label": label} for label in labels]


def _labels_value(answer: Any, b: Binding, data: dict) -> list[dict] | None:
    text = data.get(b.question["field"])
    text = text if isinstance(text, str) else ""
    return [{"start": _utf16(text, s["start"]), "end": _utf16(text, s["end"]), "text": text[s["start"]:s["end"]],
             "labels": [s["label"]]} for s in answer]


def _rect_question(el: Element, m: ConfigMapping) -> dict:
    obj = m.objects.get(el.get("toName") or "")
    if obj is None or obj["tag"] != "Image" or obj["field"] is None:
        raise _bad("labelwright's boxes are on an image field: toName should name an <Image> showing task data")
    values = [lab.get("alias") or lab.get("value") for lab in el.iter("Label")]
    if not values or any(not v for v in values):
        raise _bad("a <Label> has no value")
    width, height = image_size_keys(obj["field"])
    return {"name": el.get("name"), "type": "boxes", "field": obj["field"], "labels": values,
            "width_field": width, "height_field": height}


def image_size_keys(field_name: str) -> tuple[str, str]:
    """The item data keys holding an image field's size in pixels (from the results' original_width and
    original_height at import; what the export converts pixels back to percent with)."""
    return f"{field_name}_width", f"{field_name}_height"


def _size(b: Binding, data: dict) -> tuple[float, float] | None:
    w, h = finite_number(data.get(b.question["width_field"])), finite_number(data.get(b.question["height_field"]))
    return (w, h) if w is not None and h is not None and w > 0 and h > 0 else None


def _rect_answer(value: dict, b: Binding, data: dict) -> Any:
    size = _size(b, data)
    if size is None:
        raise _bad("a rectangle's result should carry the image's original_width and original_height (Label "
                   "Studio writes them once the image has loaded): without them its percent cannot be pixels")
    if value.get("rotation") not in (None, 0, 0.0):
        raise _bad(f"a rotated rectangle (rotation {value.get('rotation')}) has no labelwright equivalent")
    x, y, w, h = (finite_number(value.get(k)) for k in ("x", "y", "width", "height"))
    if x is None or y is None or w is None or h is None:
        raise _bad("value.x, y, width and height should be finite numbers (percent of the image)")
    labels = value.get("rectanglelabels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise _bad("value.rectanglelabels should be a list of labels")
    iw, ih = size
    box = {"x": round(x * iw / 100, 2), "y": round(y * ih / 100, 2), "w": round(w * iw / 100, 2),
           "h": round(h * ih / 100, 2)}
    return [{**box, "label": label} for label in labels]


def _rect_value(answer: Any, b: Binding, data: dict) -> list[dict] | None:
    size = _size(b, data)
    if size is None:
        return None
    iw, ih = size
    return [{"x": box["x"] * 100 / iw, "y": box["y"] * 100 / ih, "width": box["w"] * 100 / iw,
             "height": box["h"] * 100 / ih, "rotation": 0, "rectanglelabels": [box["label"]]} for box in answer]


def result_extra(b: Binding, data: dict) -> dict:
    """What a result carries besides its value: the image's size for a sized control (RectangleLabels)."""
    size = _size(b, data) if b.control.sized else None
    if size is None:
        return {}
    return {"original_width": _whole(size[0]), "original_height": _whole(size[1]), "image_rotation": 0}


def note_size(b: Binding, result: dict, data: dict) -> None:
    """Keep the image's size a sized control's result carries (``original_width``, ``original_height``) in
    the item's data, where the boxes question reads it; a size that differs from one already kept is an error."""
    if not b.control.sized:
        return
    for key, given in ((b.question["width_field"], result.get("original_width")),
                       (b.question["height_field"], result.get("original_height"))):
        if (finite_number(given) or 0) <= 0:
            continue
        have = data.get(key)
        if have is not None and have != given:
            raise _bad(f"the image's size differs between results ({key} {have} and {given})")
        data[key] = given


def _whole(v: float) -> int | float:
    return int(v) if v == int(v) else v


RANKER_COLUMN = "_"  # where a Ranker without buckets keeps its order (as Label Studio 1.23's editor does)


def _ranker_value(answer: Any, b: Binding, data: dict) -> dict | None:
    if b.extra.get("synth"):  # a labelwright ranking: the list is made of its candidate fields, ids their names
        return {"ranker": {RANKER_COLUMN: list(answer)}}
    ids = _list_ids(data, b.extra["key"])
    order = [ids[int(name.rsplit("_", 1)[1]) - 1] for name in answer]
    return {"ranker": {RANKER_COLUMN: order}}


CONTROLS: dict[str, Control] = {c.tag: c for c in (
    Control("Choices", "choices", _choices_question, _choices_answer, _choices_value),
    Control("Rating", "rating", _rating_question, _rating_answer, _rating_value),
    Control("TextArea", "textarea", _textarea_question, _textarea_answer, _textarea_value),
    Control("Pairwise", "pairwise", _pairwise_question, _pairwise_answer, _pairwise_value, to_self=True),
    Control("Ranker", "ranker", _ranker_question, _ranker_answer, _ranker_value),
    Control("Labels", "labels", _labels_question, _labels_answer, _labels_value, multi=True),
    Control("RectangleLabels", "rectanglelabels", _rect_question, _rect_answer, _rect_value, multi=True, sized=True),
)}
# control tags labelwright will map once the question type exists (their results are kept, raw)
NOT_YET: dict[str, str] = {}


# ---- reading a config -----------------------------------------------------------------------------------


def parse_config(text: str, *, file: str | None = None) -> Element:
    """The config's root element, parsed safely; a clear error for anything that is not a config."""
    if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
        raise ConfigError("the config has a DOCTYPE or an ENTITY, refused for safety (a labelling config never "
                          "needs one): remove it", file=file)
    try:
        root = _safe_fromstring(text) if _safe_fromstring is not None else fromstring(text, parser=XMLParser())
    except ParseError as e:
        line = e.position[0] if getattr(e, "position", None) else None
        raise ConfigError(f"not well-formed XML: {e}", file=file, line=line) from None
    except ValueError as e:  # defusedxml's refusals (entities, external references)
        raise ConfigError(f"the config uses an XML feature refused for safety: {e}", file=file) from None
    if root.tag != "View":
        raise ConfigError(f"a Label Studio config starts with <View>, not <{root.tag}>", file=file)
    return root


def list_sizes(tasks: Sequence[dict], keys: Sequence[str]) -> dict[str, int]:
    """How many entries the tasks' lists under ``keys`` have (they must all have as many, 2-9, each with an
    ``id``): what a Ranker's candidates become."""
    out: dict[str, int] = {}
    for key in keys:
        sizes = set()
        for i, task in enumerate(tasks):
            entries = (task.get("data") or {}).get(key)
            where = f"tasks[{i}].data.{key}"
            if not isinstance(entries, list) or not all(isinstance(e, dict) and "id" in e for e in entries):
                raise ValidationError("a List's data should be a list of objects with an 'id'", field=where)
            if len({str(e["id"]) for e in entries}) != len(entries):
                raise ValidationError("the list's ids repeat", field=where)
            sizes.add(len(entries))
        if len(sizes) > 1:
            raise ValidationError(f"the tasks' lists under {key!r} have {sorted(sizes)} entries: a ranking needs "
                                  "the same number of candidates in every task", field=f"tasks[*].data.{key}")
        if sizes:
            n = sizes.pop()
            if not LIST_SIZES[0] <= n <= LIST_SIZES[1]:
                raise ValidationError(f"lists of {n} entries: a ranking has {LIST_SIZES[0]}-{LIST_SIZES[1]} "
                                      "candidates", field=f"tasks[*].data.{key}")
            out[key] = n
    return out


def list_keys(root: Element) -> list[str]:
    return [el.get("value", "")[1:] for el in root.iter("List") if el.get("value", "").startswith("$")]


def map_config(root: Element, tasks: Sequence[dict] = (), *, file: str | None = None) -> ConfigMapping:
    """Map a parsed config to fields and questions; ``tasks`` (the export's) tell how long ranked lists are."""
    m = ConfigMapping()
    m.lists = list_sizes(tasks, list_keys(root))
    for el in root.iter():
        tag = el.tag
        if tag in OBJECTS:
            _add_object(m, el)
    for el in root.iter():
        tag = el.tag
        if tag in OBJECTS or tag in LAYOUT:
            continue
        name = el.get("name")
        if tag in CONTROLS:
            _add_control(m, el, CONTROLS[tag], file)
        elif tag in NOT_YET:
            m.unmapped.append(Unmapped(tag, name, NOT_YET[tag]))
        elif name is not None and el.get("toName") is not None:
            m.unmapped.append(Unmapped(tag, name, "no labelwright question type is like it; its results are "
                                                  "kept raw in each item's data under 'labelstudio_results'"))
        elif name is not None and el.get("value", "").startswith("$"):
            m.unmapped.append(Unmapped(tag, name, "an object labelwright cannot show; its data is kept in "
                                                  "the item as metadata"))
    return m


def _add_object(m: ConfigMapping, el: Element) -> None:
    name, value = el.get("name"), el.get("value", "")
    if not name:
        return
    if not value.startswith("$"):  # a constant text, not task data
        m.objects[name] = {"tag": el.tag, "key": None, "field": None}
        return
    key = value[1:]
    if el.tag == "List":
        m.objects[name] = {"tag": "List", "key": key, "field": None}
        n = m.lists.get(key, 0)
        for k in range(1, n + 1):
            m.fields.append({"name": f"{key}_{k}", "type": "text", "label": f"{el.get('title') or key} #{k}"})
        return
    if not NAME_OK.match(key):
        m.unmapped.append(Unmapped(el.tag, name, f"its data key {key!r} is not a labelwright field name "
                                                 "(letters, digits, '_' and '-')"))
        m.objects[name] = {"tag": el.tag, "key": key, "field": None}
        return
    m.objects[name] = {"tag": el.tag, "key": key, "field": key}
    if all(f["name"] != key for f in m.fields):
        spec: dict = {"name": key, "type": OBJECTS[el.tag]}
        if el.get("title"):
            spec["label"] = el.get("title")
        m.fields.append(spec)


def _add_control(m: ConfigMapping, el: Element, control: Control, file: str | None) -> None:
    name = el.get("name")
    if not name or not NAME_OK.match(name):
        m.unmapped.append(Unmapped(el.tag, name, "its name is not a labelwright question name (letters, "
                                                 "digits, '_' and '-', at most 64)"))
        return
    if el.get("perRegion") == "true" or el.get("perItem") == "true":
        m.unmapped.append(Unmapped(el.tag, name, "answers per region or per item have no labelwright "
                                                 "equivalent; the results are kept raw"))
        return
    try:
        question = control.question(el, m)
    except ValueError as e:
        m.unmapped.append(Unmapped(el.tag, name, str(e)))
        return
    question["required"] = el.get("required") == "true"
    extra = {}
    if control.tag == "Ranker":
        extra["key"] = m.objects[el.get("toName") or ""]["key"]
        extra["synth"] = extra["key"] == f"{name}_list"
    m.controls[name] = Binding(question, control, el.get("toName") or "", extra)


# ---- writing a config -----------------------------------------------------------------------------------


def config_for(schema) -> tuple[str, ConfigMapping]:
    """A Label Studio config for a labelwright schema (objects named after the fields, controls after the
    questions), and its mapping; questions without an equivalent are reported in ``unmapped``."""
    root = Element("View")
    m = ConfigMapping()
    listed = listed_fields(schema)
    for f in schema.fields:
        if f.name in listed:  # shown by its List
            continue
        if f.type == "image":
            SubElement(root, "Image", name=f.name, value=f"${f.name}")
        elif f.type in ("text", "markdown"):
            SubElement(root, "Header", value=f.title)
            SubElement(root, "Text", name=f.name, value=f"${f.name}")
        else:  # chat: shown as its JSON text
            m.unmapped.append(Unmapped("field", f.name, f"a {f.type} field has no Label Studio object"))
            continue
        m.objects[f.name] = {"tag": "Image" if f.type == "image" else "Text", "key": f.name, "field": f.name}
    for q in schema.questions:
        if q.type == "ranking":
            key = ranked_list(q)
            m.lists[key] = len(q.candidates)
            m.objects[key] = {"tag": "List", "key": key, "field": None}
    shown = {f.name for f in schema.fields if f.type != "chat"}
    first = next((n for n, o in m.objects.items() if o["tag"] != "List"), None)
    for q in schema.questions:
        el = _control_for(root, q, shown, first)
        if el is None:
            m.unmapped.append(Unmapped("question", q.name, f"a {q.type} question has no Label Studio control"))
            continue
        _add_control(m, el, CONTROLS[el.tag], None)
    return tostring(root, encoding="unicode"), m


def _control_for(root: Element, q, shown: set[str], first: str | None) -> Element | None:
    def control(tag: str, **attrs: str) -> Element:
        if q.required:
            attrs["required"] = "true"
        return SubElement(root, tag, {"name": q.name, **attrs})

    if q.type in ("single_choice", "multiple_choice", "rating", "text") and first is None:
        return None
    if q.type in ("single_choice", "multiple_choice"):
        el = control("Choices", toName=first or "", choice="multiple" if q.type == "multiple_choice" else "single")
        for o in q.options:
            SubElement(el, "Choice", {"value": o.value})
        return el
    if q.type == "rating":
        return control("Rating", toName=first or "", maxRating=str(q.max)) if q.min == 1 else None
    if q.type == "text":
        return control("TextArea", toName=first or "")
    if q.type == "pairwise" and q.a in shown and q.b in shown:
        return control("Pairwise", toName=f"{q.a},{q.b}")
    if q.type == "spans" and q.field in shown:
        el = control("Labels", toName=q.field)
        for value in q.values:
            SubElement(el, "Label", {"value": value})
        return el
    if q.type == "boxes" and q.field in shown and q.width_field and q.height_field:
        el = control("RectangleLabels", toName=q.field)
        for value in q.labels:
            SubElement(el, "Label", {"value": value})
        return el
    if q.type == "ranking":
        key = ranked_list(q)
        SubElement(root, "List", {"name": key, "value": f"${key}", "title": q.title})
        return control("Ranker", toName=key)
    return None


def ranked_list(q) -> str:
    """The task data key of the List a ranking question's candidates come from: ``items`` for candidates
    ``items_1``..``items_n`` (a ranking imported from Label Studio), else ``<question>_list`` (made by the
    export from the candidate fields)."""
    prefixes = {c.rsplit("_", 1)[0] for c in q.candidates}
    if len(prefixes) == 1:
        key = prefixes.pop()
        if q.candidates == [f"{key}_{k}" for k in range(1, len(q.candidates) + 1)]:
            return key
    return f"{q.name}_list"


def listed_fields(schema) -> set[str]:
    """The fields made from a Label Studio List at import (``items_1``..): the export's List shows them."""
    return {c for q in schema.questions if q.type == "ranking" and ranked_list(q) != f"{q.name}_list"
            for c in q.candidates}


def synthetic_lists(schema, data: dict) -> dict:
    """The List data of the schema's ranking questions whose candidates are plain fields (added to a task's
    data by the export): ``{key: [{id: field, title: its title, body: its value}]}``."""
    out = {}
    for q in schema.questions:
        if q.type == "ranking" and ranked_list(q) == f"{q.name}_list" and ranked_list(q) not in data:
            out[ranked_list(q)] = [{"id": c, "title": schema.field(c).title, "body": data.get(c)} for c in q.candidates]
    return out


def results_of(mapping: ConfigMapping, answers: Mapping[str, Any], data: dict) -> tuple[list[dict], list[str]]:
    """Label Studio results for labelwright ``answers``, and the questions whose answer cannot be written."""
    out: list[dict] = []
    lost: list[str] = []
    for name, answer in answers.items():
        b = mapping.controls.get(name)
        if b is None or answer is None:
            if answer is not None:
                lost.append(name)
            continue
        value = b.control.value(answer, b, data)
        if value is None:
            lost.append(name)
            continue
        to_name = name if b.control.to_self else b.to_name
        extra = result_extra(b, data)
        for v in value if isinstance(value, list) else [value]:
            out.append({"from_name": name, "to_name": to_name, "type": b.control.result_type, "origin": "manual",
                        **extra, "value": v, "id": f"{name}-{len(out)}"})
    return out, lost
