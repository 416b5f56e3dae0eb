"""Spans in: CoNLL-2003 BIO files and spaCy ``DocBin`` files as a spans project's items with gold spans.

**CoNLL** (:func:`read_conll`, :func:`import_conll`): one token a line, its entity tag in the last column
(``TOKEN -X- _ B-PER``, ``TOKEN\\tB-PER``; the middle columns are ignored), a blank line between sentences,
``-DOCSTART-`` lines between documents (a sentence break too). Each sentence becomes one item: its text is
the tokens joined by single spaces, the way :mod:`labelwright.io.conll` tokenises a text (``str.split()``),
so a CoNLL export imports back to the same texts and spans. Tags: ``O``, ``B-LABEL`` (a span starts),
``I-LABEL`` (a span goes on; after ``O`` or another label it starts one, as IOB1 writes it), where LABEL
is one of the spans question's labels. A line without a tag, any other tag or an unknown label is an error
naming the file, line and token.

**spaCy** (:func:`read_docbin`, :func:`import_docbin`): one item per ``Doc``, its text exactly as stored,
its spans from ``doc.spans[spans_key]`` when the doc has that group, else from ``doc.ents``.

Either way the spans are the items' gold answers for the question, recorded by
:func:`labelwright.services.items.import_items` (all or nothing). A text already in the project (an item
whose field holds exactly that text) is matched: that item is marked gold with these spans. A new text
becomes a new item; where the project keys items by an id field, its id is made from the text
(``sha1:...``), so importing the file again matches the same items. A text given twice is imported once,
and twice with different spans is an error naming both places.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelwright.errors import ValidationError
from labelwright.io.conll import spans_question
from labelwright.io.spacy_docbin import load_spacy
from labelwright.questions.spans import Spans
from labelwright.services.export import iter_items
from labelwright.services.items import external_id, import_items
from labelwright.services.projects import Project
from labelwright.store import Store, loads


@dataclass
class Sentence:
    """One sentence of a CoNLL file: the line of its first token, its text and its spans."""

    line: int
    text: str
    spans: list[dict]


def _tag(tag: str, labels: list[str] | None, file: str, line: int, token: str) -> tuple[str, str | None]:
    """``(prefix, label)`` of a tag (``("O", None)`` outside a span)."""
    if tag == "O":
        return "O", None
    prefix, dash, label = tag.partition("-")
    if not dash or prefix not in ("B", "I") or not label:
        raise ValidationError(f"token {token!r} has the tag {tag!r}: a tag is O, B-LABEL or I-LABEL (BIO or IOB1)",
                              file=file, line=line)
    if labels is not None and label not in labels:
        raise ValidationError(f"token {token!r} has the label {label!r}, which the spans question does not have; "
                              f"its labels are {labels}", file=file, line=line)
    return prefix, label


def read_conll(path: str | Path, labels: list[str] | None = None) -> list[Sentence]:
    """The sentences of a CoNLL-2003 style file; ``labels``: the labels a tag may name (None: any)."""
    file = str(path)
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise ValidationError(f"not UTF-8 text (byte {e.start}): save the file as UTF-8", file=file) from None
    except OSError as e:
        raise ValidationError(f"cannot read the file: {e.strerror or e}", file=file) from None
    out: list[Sentence] = []
    tokens: list[str] = []
    spans: list[dict] = []
    first, at = 0, 0  # the sentence's first line; the next token's character offset

    def flush() -> None:
        nonlocal tokens, spans, at
        if tokens:
            out.append(Sentence(first, " ".join(tokens), spans))
        tokens, spans, at = [], [], 0

    for n, raw in enumerate(lines, start=1):
        cols = raw.split()
        if not cols or cols[0] == "-DOCSTART-":
            flush()
            continue
        token = cols[0]
        if len(cols) < 2:
            raise ValidationError(f"token {token!r} has no tag: a line is the token, then its tag in the last "
                                  "column (TOKEN -X- _ B-PER)", file=file, line=n)
        prefix, label = _tag(cols[-1], labels, file, n, token)
        if not tokens:
            first = n
        start = at
        tokens.append(token)
        at += len(token) + 1
        if label is None:
            continue
        last = spans[-1] if spans else None
        if prefix == "I" and last is not None and last["label"] == label and last["end"] == start - 1:
            last["end"] = start + len(token)  # the span goes on over this token
        else:
            spans.append({"start": start, "end": start + len(token), "label": label})
    flush()
    if not out:
        raise ValidationError("holds no sentences (a token and its tag a line, a blank line between sentences)",
                              file=file)
    return out


def _records(store: Store, project: Project, q: Spans, found: list[tuple[int, str, list[dict]]], place: str
             ) -> list[tuple[int, dict]]:
    """The import's ``(line, record)`` pairs: a text given twice is imported once (twice with other spans is
    an error naming both places); an item of the project with the same text gets its own data back (so
    the import matches it and marks it gold); a new text gets an id from its content when the project keys
    items by an id field."""
    first: dict[str, tuple[int, list[dict]]] = {}
    for n, text, spans in found:
        seen = first.setdefault(text, (n, spans))
        if seen[1] != spans:
            raise ValidationError(f"the same text is tagged differently here and at {place} {seen[0]}: "
                                  f"{text[:60]!r}", line=n)
    existing: dict[str, list[dict]] = {}
    for _id, _ext, data_json, *_rest in iter_items(store, project):
        data = loads(data_json)
        if data.get(q.field) in first:
            existing.setdefault(data[q.field], []).append(data)
    gold, id_field = project.schema.gold.field, project.schema.id_field
    out = []
    for text, (n, spans) in first.items():
        new = {q.field: text}
        if id_field is not None:
            new[id_field] = external_id(project, {q.field: text})
        out += [(n, {**data, gold: {q.name: spans}}) for data in existing.get(text, [new])]
    return out


def _import(store: Store, project: Project, q: Spans, found: list[tuple[int, str, list[dict]]], file: str,
            place: str) -> dict:
    try:
        records = _records(store, project, q, found, place)
    except ValidationError as e:
        raise ValidationError(e.message, file=file, line=e.line) from None
    return import_items(store, project, records, file=file, place=(place + " {}").format)


def import_conll(store: Store, project: Project, path: str | Path, question: str | None = None) -> dict:
    """Import a CoNLL file's sentences as items of ``project`` with their spans as gold answers of its spans
    question (``question``, or its only one); returns :func:`import_items`' counts."""
    q = spans_question(project, question)
    sentences = read_conll(path, q.values)
    return _import(store, project, q, [(s.line, s.text, s.spans) for s in sentences], str(path), "line")


def read_docbin(path: str | Path, spans_key: str = "sc") -> list[tuple[str, list[dict]]]:
    """``(text, spans)`` of each ``Doc`` of a spaCy ``DocBin`` file."""
    spacy = load_spacy()
    from spacy.tokens import DocBin  # noqa: PLC0415 - optional (the spacy extra)

    out = []
    try:  # untrusted bytes: spaCy's decoding fails in many ways (msgpack, zlib, arrays, spans, strings)
        for doc in DocBin().from_disk(path).get_docs(spacy.blank("xx").vocab):
            group: Any = doc.spans[spans_key] if spans_key in doc.spans else doc.ents
            out.append((doc.text, [{"start": s.start_char, "end": s.end_char, "label": s.label_} for s in group]))
    except (ValueError, OSError, KeyError, TypeError, IndexError, AttributeError, OverflowError) as e:
        raise ValidationError(f"not a spaCy DocBin file ({type(e).__name__}: {e})", file=str(path)) from None
    return out


def import_docbin(store: Store, project: Project, path: str | Path, question: str | None = None, *,
                  spans_key: str = "sc") -> dict:
    """Import a ``DocBin``'s docs as items of ``project`` with their spans as gold answers (doc ``n`` is
    named ``doc n`` in errors, counting from 1); an unknown label is an error naming the doc."""
    q = spans_question(project, question)
    found = []
    for n, (text, spans) in enumerate(read_docbin(path, spans_key), start=1):
        for s in spans:
            if s["label"] not in q.values:
                raise ValidationError(f"the span {text[s['start']:s['end']]!r} has the label {s['label']!r}, which "
                                      f"the spans question does not have; its labels are {q.values}",
                                      file=f"{path}, doc {n}")
        found.append((n, text, spans))
    try:
        return _import(store, project, q, found, str(path), "doc")
    except ValidationError as e:  # import_items counts lines: here they are docs
        where = f"{path}, doc {e.line}" if e.line is not None else e.file
        raise ValidationError(e.message, field=e.field, file=where) from None
