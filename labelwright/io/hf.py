"""A project's items as a pandas DataFrame or a Hugging Face ``datasets.Dataset``, and back.

Out (:func:`to_pandas`, :func:`to_dataset`, :func:`save_dataset`): one row per item::

    external_id | <every key of the item's data> | gold | annotations | label.<question> | confidence.<question>

``gold`` (named after the schema's ``gold.field``) holds an item's gold answers, in the shape the import
takes, or nothing; ``annotations`` every answer (annotator, answers, active_ms, review); ``label.*`` and
``confidence.*`` the aggregated label (:mod:`labelwright.services.labels`). In a ``Dataset`` the columns
whose values have no single Arrow type (``gold``, ``annotations``, metadata of mixed types) are JSON text.

In (:func:`from_pandas`, :func:`from_dataset`): the rows are imported as items with
:func:`labelwright.services.items.import_items` (all or nothing, errors naming the row and field). The
columns the export adds (``external_id``, ``annotations``, ``label.*``, ``confidence.*``) are dropped, and
``gold`` goes back in as gold answers, so a frame or dataset exported from one project imports into
another with the same items and gold. ``datasets`` is an optional dependency (the ``hf`` extra).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd

from labelwright.errors import ValidationError
from labelwright.io.readers import read_dataframe
from labelwright.services.export import iter_items
from labelwright.services.gold import gold_answers
from labelwright.services.items import import_items
from labelwright.services.labels import LabelWalker, project_labels
from labelwright.services.projects import Project
from labelwright.store import Store, loads

if TYPE_CHECKING:
    import datasets

ADDED = ("external_id", "annotations")
ADDED_PREFIXES = ("label.", "confidence.")


def _datasets():
    try:
        import datasets  # noqa: PLC0415 - optional (the hf extra), and slow to import
    except ImportError:
        raise ValidationError("Hugging Face datasets are not installed: pip install 'labelwright[hf]'") from None
    return datasets


def quiet() -> None:
    """No progress bars from ``datasets`` (the CLI shows its own status)."""
    _datasets().disable_progress_bars()


def item_rows(store: Store, project: Project) -> Iterator[dict]:
    """The rows of :func:`to_pandas`, one dict per item, in id order."""
    schema = project.schema
    gold_key = schema.gold.field
    gold = gold_answers(store, project)
    labels_of = LabelWalker(project_labels(store, project))
    qs = [q.name for q in schema.questions]
    for item_id, ext, data_json, anns, _key, _is_gold in iter_items(store, project):
        row: dict[str, Any] = {"external_id": ext, **loads(data_json)}
        row[gold_key] = gold.get(item_id)
        row["annotations"] = [{"annotator": a[0], "answers": a[6], "active_ms": a[1], "review": a[5]}
                              for a in anns]
        labels = labels_of(item_id)
        for q in qs:
            got = labels.get(q)
            row[f"label.{q}"] = got["label"] if got else None
            row[f"confidence.{q}"] = got["confidence"] if got else None
        yield row


def to_pandas(store: Store, project: Project) -> pd.DataFrame:
    """One row per item (see the module's docstring); nested values stay Python lists and dicts."""
    return pd.DataFrame.from_records(list(item_rows(store, project)))


def _inputs(record: dict) -> dict:
    out = {}
    for k, v in record.items():
        if k in ADDED or k.startswith(ADDED_PREFIXES):
            continue
        out[k] = v
    return out


def from_pandas(store: Store, project: Project, df: pd.DataFrame, *, name: str = "DataFrame") -> dict:
    """Import a DataFrame's rows as items (a missing value, None or NaN, is a missing field)."""
    return import_items(store, project, ((n, _inputs(r)) for n, r in read_dataframe(df, name)),
                        file=name, place="row {}".format)


def _column_is_plain(values: list) -> bool:
    kinds = {type(v) for v in values if v is not None}
    return len(kinds) <= 1 and not kinds & {dict}


def to_dataset(store: Store, project: Project) -> datasets.Dataset:
    """The rows of :func:`to_pandas` as a ``datasets.Dataset``; ``gold``, ``annotations`` and metadata
    columns of mixed types are JSON text."""
    ds = _datasets()
    rows = list(item_rows(store, project))
    fields = {f.name for f in project.schema.fields}
    columns: dict[str, list] = {}
    for row in rows:
        for k in row:
            columns.setdefault(k, [])
    for k in columns:
        columns[k] = [row.get(k) for row in rows]
    gold_key = project.schema.gold.field
    for k, values in columns.items():
        json_text = k in ("annotations", gold_key) or (
            k not in fields and not k.startswith(ADDED_PREFIXES) and k != "external_id"
            and not _column_is_plain(values))
        if json_text:
            columns[k] = [None if v is None else orjson.dumps(v).decode() for v in values]
    return ds.Dataset.from_dict(columns)


def save_dataset(store: Store, project: Project, folder: str | Path) -> int:
    """:func:`to_dataset` saved with ``save_to_disk`` (``datasets.load_from_disk(folder)`` reads it); returns
    the number of rows."""
    d = to_dataset(store, project)
    d.save_to_disk(str(folder))
    return d.num_rows


def from_dataset(store: Store, project: Project, source, *, split: str | None = None) -> dict:
    """Import a ``datasets.Dataset``, or a folder saved with ``save_to_disk`` (a ``DatasetDict`` needs
    ``split``), as items. The ``annotations`` column is ignored; ``gold`` (JSON text or an object) is gold."""
    ds = _datasets()
    name = "Dataset"
    if isinstance(source, (str, Path)):
        name = str(source)
        if not Path(source).is_dir():
            raise ValidationError("no dataset folder here (save one with Dataset.save_to_disk)", file=name)
        try:
            source = ds.load_from_disk(str(source))
        except FileNotFoundError as e:
            raise ValidationError(f"not a saved dataset: {e}", file=name) from None
    if isinstance(source, ds.DatasetDict):
        if split is None or split not in source:
            raise ValidationError(f"the dataset has splits {list(source)}: name one with split=", file=name)
        source = source[split]
    if not isinstance(source, ds.Dataset):
        raise ValidationError(f"expected a datasets.Dataset or a saved dataset folder, not {type(source).__name__}",
                              file=name)

    def records() -> Iterator[tuple[int, dict]]:
        for n, row in enumerate(source, start=1):
            yield n, _inputs({k: v for k, v in row.items() if v is not None})

    return import_items(store, project, records(), file=name, place="row {}".format)
