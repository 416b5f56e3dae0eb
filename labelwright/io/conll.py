"""Spans as CoNLL-2003 style BIO lines, from a project's aggregated labels.

One line per token, ``TOKEN -X- _ TAG`` (the CoNLL-2003 columns: word, part of speech, chunk, entity; the two
middle ones are placeholders), a blank line after each item, ``-DOCSTART- -X- -X- O`` first. Tokens are the
text's runs of non-whitespace (``str.split()``'s tokens, so a token never holds a space; punctuation stays
attached to its word). A token is tagged with a span it shares at least one character with: ``B-LABEL`` for
the span's first token, ``I-LABEL`` for the rest, ``O`` outside every span. CoNLL cannot hold overlapping
spans: where they overlap, the one that starts first (the longer on a tie) wins and the others are counted
in :attr:`ConllExport.dropped`.

Which spans: the aggregated label of the spans question (:func:`labelwright.services.labels.project_labels`:
span voting with per-annotator skill, gold where an item has it); items without a label (no answers yet)
are left out. A span that ends after its item's text is an error naming the item.

spaCy reads the lines back with ``spacy.training.converters.conll_ner_to_docs`` (``spacy convert -c ner``).
labelwright reads them back, as gold spans, with :func:`labelwright.io.spans_import.import_conll`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from labelwright.errors import ValidationError
from labelwright.questions.spans import Spans
from labelwright.services.export import iter_items
from labelwright.services.labels import project_labels
from labelwright.services.projects import Project
from labelwright.store import Store, loads

DOCSTART = "-DOCSTART- -X- -X- O"
_TOKEN = re.compile(r"\S+")


def tokenize(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` of each whitespace-separated token."""
    return [(m.start(), m.end()) for m in _TOKEN.finditer(text)]


def bio_tags(text: str, spans: list[dict]) -> tuple[list[tuple[str, str]], int]:
    """``([(token, tag), ...], spans dropped for overlapping another)`` for one text."""
    toks = tokenize(text)
    tags = ["O"] * len(toks)
    dropped = 0
    for s in sorted(spans, key=lambda s: (s["start"], -s["end"])):
        hit = [i for i, (a, b) in enumerate(toks) if a < s["end"] and b > s["start"]]
        if not hit or any(tags[i] != "O" for i in hit):
            dropped += 1
            continue
        for k, i in enumerate(hit):
            tags[i] = ("B-" if k == 0 else "I-") + s["label"]
    return [(text[a:b], tag) for (a, b), tag in zip(toks, tags)], dropped


def spans_question(project: Project, name: str | None) -> Spans:
    """The project's spans question: ``name``, or its only one."""
    qs = [q for q in project.schema.questions if isinstance(q, Spans)]
    if name is not None:
        qs = [q for q in qs if q.name == name]
    if len(qs) != 1:
        found = [q.name for q in project.schema.questions if isinstance(q, Spans)]
        raise ValidationError(f"name one spans question of the project ({found})" if found and name is None
                              else f"no spans question {name!r}; the project's spans questions: {found}",
                              field="question")
    return qs[0]


def labelled_texts(store: Store, project: Project, question: str | None = None
                   ) -> Iterator[tuple[int, str, str, list[dict]]]:
    """``(item_id, external_id, text, spans)`` of every item with an aggregated label, in item order; spans
    are checked against the text."""
    q = spans_question(project, question)
    labels = project_labels(store, project).get(q.name)
    by_item = {item_id: label for item_id, label, _ in labels.items()} if labels is not None else {}
    for item_id, ext, data_json, _anns, _key, _gold in iter_items(store, project):
        spans = by_item.get(item_id)
        if spans is None:
            continue
        text = loads(data_json).get(q.field)
        text = text if isinstance(text, str) else ""
        q.check_text(spans, text, f"item {ext}: ")
        yield item_id, str(ext), text, spans


@dataclass
class ConllExport:
    """The lines of a CoNLL export (:func:`conll_export`) and what could not be written."""

    lines: list[str] = field(default_factory=list)
    items: int = 0
    dropped: int = 0

    def to_bytes(self) -> bytes:
        return "\n".join(self.lines).encode() + b"\n"


def conll_export(store: Store, project: Project, question: str | None = None) -> ConllExport:
    out = ConllExport(lines=[DOCSTART, ""])
    for _item_id, _ext, text, spans in labelled_texts(store, project, question):
        pairs, dropped = bio_tags(text, spans)
        if not pairs:
            continue
        out.lines += [f"{tok} -X- _ {tag}" for tok, tag in pairs] + [""]
        out.items += 1
        out.dropped += dropped
    return out
