"""Spans as a spaCy ``DocBin`` (the ``.spacy`` files ``spacy train`` reads), from a project's aggregated labels.

One ``Doc`` per item with an aggregated label (:func:`labelwright.io.conll.labelled_texts`), tokenised by a
blank pipeline of ``lang`` (no model is needed; the text is kept exactly). Every span goes into
``doc.spans[spans_key]`` (``"sc"``, what spaCy's span categorizer reads; overlaps allowed); the spans that
do not overlap, the first and longest winning, go into ``doc.ents`` too (what the entity recognizer reads).
A span whose ends fall inside a token is widened to whole tokens (``alignment_mode="expand"``). Each doc's
``user_data`` holds ``item_id`` and ``external_id``.

Needs spaCy (``pip install 'labelwright[spacy]'``)::

    from spacy.tokens import DocBin
    docs = list(DocBin().from_disk("ner.spacy").get_docs(spacy.blank("en").vocab))
"""

from __future__ import annotations

from typing import Any

from labelwright.errors import LabelwrightError
from labelwright.io.conll import labelled_texts
from labelwright.services.projects import Project
from labelwright.store import Store


def load_spacy() -> Any:
    """The spacy module, or an error saying how to install it."""
    try:
        import spacy  # noqa: PLC0415 - optional (the spacy extra), and slow to import
    except ImportError:
        raise LabelwrightError("the spaCy export needs spaCy: pip install 'labelwright[spacy]'") from None
    return spacy


def doc_bin(store: Store, project: Project, question: str | None = None, *, lang: str = "xx",
            spans_key: str = "sc") -> Any:
    """The project's spans as a ``spacy.tokens.DocBin``."""
    spacy = load_spacy()
    from spacy.tokens import DocBin  # noqa: PLC0415 - optional
    from spacy.util import filter_spans  # noqa: PLC0415 - optional

    nlp = spacy.blank(lang)
    out = DocBin(store_user_data=True)
    for item_id, ext, text, spans in labelled_texts(store, project, question):
        doc = nlp.make_doc(text)
        made = [doc.char_span(s["start"], s["end"], label=s["label"], alignment_mode="expand") for s in spans]
        made = [s for s in made if s is not None]
        doc.spans[spans_key] = made
        doc.ents = filter_spans(made)
        doc.user_data["item_id"] = item_id
        doc.user_data["external_id"] = ext
        out.add(doc)
    return out
