"""Bring your own model: class probabilities from a model you run, over HTTP or as a Python object.

A :class:`Predictor` turns items into a probability for each label of one question; labelwright records its
``version`` with every prediction. Two adapters implement it:

- :class:`HttpModel` posts batches of items to a URL you serve (the protocol is in docs/assist.md,
  "Bring your own model"); nothing is sent until :meth:`HttpModel.predict_proba` is called.
- :class:`PythonModel` imports ``python:package.module:attr`` and calls it in-process.

:func:`load_model` picks one from a spec string. Whatever the model returns is checked the same way: one
row per item, label keys that the question has, finite non-negative values, labels left out count as 0, a
row summing to 0 is refused, and rows are normalised to sum to 1. Any problem raises :class:`ModelError`
saying what was wrong and where (the model, the prediction's index and the item's id). Nothing here retries:
the caller decides when to try again. This module touches no database and no server state.

An HTTP model, with an :class:`httpx.MockTransport` standing in for your server::

    >>> import httpx, json
    >>> def server(request):
    ...     items = json.loads(request.content)["items"]
    ...     return httpx.Response(200, json={"model_version": "demo-1", "predictions": [
    ...         {"id": item["id"], "probabilities": {"spam": 3, "ham": 1}} for item in items]})
    >>> with HttpModel("http://127.0.0.1:9000/predict", question="spam",
    ...                transport=httpx.MockTransport(server)) as model:
    ...     p = model.predict_proba([{"id": 17, "data": {"text": "WIN a FREE phone"}}], ["spam", "ham"])
    >>> p.tolist(), model.version
    ([[0.75, 0.25]], 'demo-1')

A Python model is any importable class, object or function taking ``(items, labels)``::

    # my_models/spam.py, loaded with load_model("python:my_models.spam:SpamModel", question="spam")
    class SpamModel:
        version = "spam-words-1"

        def predict_proba(self, items, labels):   # labels == ["spam", "ham"]
            p = [0.9 if "free" in item["data"]["text"].lower() else 0.2 for item in items]
            return [{"spam": x, "ham": 1 - x} for x in p]

A real server: ``python examples/model_server.py --port 9000``, then
``load_model("http://127.0.0.1:9000/predict", question="spam")``. See docs/assist.md, "Bring your own model".
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx
import numpy as np

from labelwright.errors import LabelwrightError

__all__ = ["HttpModel", "ModelError", "Predictor", "PythonModel", "load_model"]

MAX_VERSION_LENGTH = 200
"""The longest ``model_version`` accepted from a server."""


class ModelError(LabelwrightError):
    """A model gave no usable predictions: unreachable, too slow, refused, or replied with invalid ones.

    ``excerpt``: the start of what the server answered, when that is the problem; it ends the message, and
    ``public`` is the message without it (for people who may configure a URL but not read other services'
    pages through it)."""

    status = 502

    def __init__(self, message: str, *, excerpt: str | None = None):
        super().__init__(message + (f": {excerpt!r}" if excerpt is not None else ""))
        self.public = message
        self.excerpt = excerpt


@runtime_checkable
class Predictor(Protocol):
    """Anything that gives class probabilities for items.

    ``items`` are ``[{"id": int, "data": {...item fields...}}]``; ``labels`` the question's label values in
    order (strings, or ints for a rating question). The result is a float array ``(len(items), len(labels))``
    whose rows sum to 1. ``version`` names the model that made the latest predictions.
    """

    @property
    def version(self) -> str: ...

    def predict_proba(self, items: list[dict], labels: list) -> np.ndarray: ...


# ---- checking what a model returned --------------------------------------------------------------


class _Invalid(Exception):
    """One problem in a model's output, without the where (the caller adds it)."""


def _labels(labels: Any) -> tuple[list, dict[str, int]]:
    """The labels as a list (numpy integers made ints) and ``str(label) -> column``."""
    if isinstance(labels, (str, bytes, Mapping)) or not isinstance(labels, (Sequence, np.ndarray)):
        raise TypeError(f"labels must be a list of the question's label values, got {labels!r:.200}")
    if len(labels) == 0:
        raise ValueError("labels must be a non-empty list of the question's label values, got []")
    out: list = []
    index: dict[str, int] = {}
    for i, label in enumerate(labels):
        if isinstance(label, np.integer):
            label = int(label)
        elif isinstance(label, np.str_):
            label = str(label)
        if isinstance(label, bool) or not isinstance(label, (str, int)):
            raise TypeError(f"label {label!r} at position {i} is neither a string nor an int")
        if str(label) in index:
            raise ValueError(f"labels must be distinct; {label!r} appears twice in {list(labels)!r}")
        index[str(label)] = i
        out.append(label)
    return out, index


def _check_items(items: Sequence) -> list:
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
        raise TypeError(f"items must be a list of {{'id': ..., 'data': {{...}}}}, got {type(items).__name__}")
    ids: set = set()
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or "id" not in item or not isinstance(item.get("data"), Mapping):
            raise TypeError(f"item {i} must be {{'id': ..., 'data': {{...}}}}, got {item!r:.200}")
        if isinstance(item["id"], bool) or not isinstance(item["id"], (int, str)):
            raise TypeError(f"item {i}: id {item['id']!r} is neither an int nor a string")
        if item["id"] in ids:
            raise ValueError(f"item ids must be distinct; {item['id']!r} appears twice")
        ids.add(item["id"])
    return [item["id"] for item in items]


def _row_from_mapping(probabilities: Any, labels: Sequence, index: dict[str, int]) -> np.ndarray:
    if not isinstance(probabilities, Mapping):
        raise _Invalid(f"probabilities must be an object {{label: probability}}, got {probabilities!r:.200}")
    row = np.zeros(len(labels))
    seen: set[int] = set()
    for key, value in probabilities.items():
        j = index.get(str(key)) if not isinstance(key, bool) else None
        if j is None:
            raise _Invalid(f"unknown label {key!r}; labels are {list(labels)!r}")
        if j in seen:
            raise _Invalid(f"label {labels[j]!r} is given twice")
        seen.add(j)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise _Invalid(f"probability of {labels[j]!r} is {value!r:.50}, not a number")
        try:
            row[j] = value
        except OverflowError:
            raise _Invalid(f"probability of {labels[j]!r} is an integer too large for a float") from None
    return _check_row(row, labels)


def _check_row(row: np.ndarray, labels: Sequence) -> np.ndarray:
    for j, value in enumerate(row):
        if not math.isfinite(value):
            raise _Invalid(f"probability of {labels[j]!r} is {value}, not a finite number")
        if value < 0:
            raise _Invalid(f"probability of {labels[j]!r} is {value}, below 0")
    top = row.max()
    if top == 0:
        raise _Invalid(f"every probability is 0 (or left out); labels are {list(labels)!r}")
    row = row / top  # no overflow when summing huge values
    return row / row.sum()


def _rows(result: Any, labels: Sequence, index: dict[str, int], ids: list) -> np.ndarray:
    """A Python model's result, checked: a 2-D array-like or a list of {label: probability} in item order."""
    n = len(ids)
    if isinstance(result, Sequence) and not isinstance(result, (str, bytes)) and result \
            and all(isinstance(r, Mapping) for r in result):
        if len(result) != n:
            raise _Invalid(f"{len(result)} predictions for {n} items; give one per item, in item order")
        out = np.empty((n, len(labels)))
        for i, probabilities in enumerate(result):
            try:
                out[i] = _row_from_mapping(probabilities, labels, index)
            except _Invalid as e:
                raise _Invalid(f"prediction {i} (item {ids[i]!r}): {e}") from None
        return out
    try:
        matrix = np.asarray(result, dtype=float)
    except (TypeError, ValueError):
        raise _Invalid(f"the result is neither a 2-D array of numbers nor a list of {{label: probability}} "
                       f"dicts: {result!r:.200}") from None
    if matrix.shape != (n, len(labels)):
        raise _Invalid(f"the result has shape {matrix.shape}; expected ({n}, {len(labels)}), one row per item "
                       f"and one column per label in the order {list(labels)!r}")
    finite = np.isfinite(matrix)
    bad = ~finite.all(axis=1) | (np.where(finite, matrix, 0) < 0).any(axis=1) | (matrix.max(axis=1) <= 0)
    if bad.any():
        i = int(np.argmax(bad))
        try:
            _check_row(matrix[i], labels)
        except _Invalid as e:
            raise _Invalid(f"row {i} (item {ids[i]!r}): {e}") from None
    matrix = matrix / matrix.max(axis=1, keepdims=True)  # no overflow when summing huge values
    return matrix / matrix.sum(axis=1, keepdims=True)


# ---- over HTTP -----------------------------------------------------------------------------------


class HttpModel:
    """A model served over HTTP: ``POST {url}`` with a batch of items, a reply with their probabilities.

    The request is ``{"question": ..., "labels": [...], "items": [{"id": ..., "data": {...}}]}``, at most
    ``batch_size`` items each; the reply is ``{"model_version": "...", "predictions": [{"id": ...,
    "probabilities": {label: p}}]}``. ``version`` is the latest reply's ``model_version``; before any reply it
    is ``"http:" + host + path`` of the URL. Redirects are not followed and nothing is retried: a connect
    error, a timeout (``timeout`` seconds per request), a non-2xx status or an invalid reply raises
    :class:`ModelError` naming the URL (without credentials or query string) and what was wrong.
    ``headers`` are sent with every request (e.g. ``{"Authorization": "Bearer ..."}``); ``transport`` is
    passed to :class:`httpx.Client`. Nothing is sent until :meth:`predict_proba` is called.
    """

    def __init__(self, url: str, *, question: str, timeout: float = 10.0, batch_size: int = 64,
                 headers: dict | None = None, transport: httpx.BaseTransport | None = None):
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError(f"a model URL must be http(s)://host[:port]/path, e.g. "
                             f"http://127.0.0.1:9000/predict; got {url!r}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        if parts.port is not None:
            host += f":{parts.port}"
        self.url = url
        self.question = question
        self.timeout = float(timeout)
        self.batch_size = batch_size
        self.version = f"http:{host}{parts.path}"
        self._where = f"model at {parts.scheme.lower()}://{host}{parts.path}"
        self._client = httpx.Client(timeout=httpx.Timeout(self.timeout), headers=headers, transport=transport,
                                    follow_redirects=False)

    def __repr__(self) -> str:
        return f"HttpModel({self._where.removeprefix('model at ')!r}, question={self.question!r})"

    def __enter__(self) -> HttpModel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections; the model cannot be used afterwards."""
        self._client.close()

    def predict_proba(self, items: list[dict], labels: list) -> np.ndarray:
        """Probabilities ``(len(items), len(labels))`` from the server, one request per ``batch_size`` items.

        All batches of one call must come from the same ``model_version``; if it changes in between (the
        server reloaded its model) :class:`ModelError` is raised, so that no prediction is recorded with
        another model's version.
        """
        labels, index = _labels(labels)
        ids = _check_items(items)
        if self._client.is_closed:
            raise RuntimeError(f"{self!r} is closed")
        out = np.empty((len(ids), len(labels)))
        n_batches = -(-len(ids) // self.batch_size)
        version = None
        for b in range(n_batches):
            start = b * self.batch_size
            batch = items[start:start + self.batch_size]
            where = self._where if n_batches == 1 else f"{self._where}: batch {b + 1} of {n_batches}"
            reply = self._post(batch, labels, where)
            try:
                batch_version, rows = _parse_reply(reply, labels, index, [item["id"] for item in batch])
            except _Invalid as e:
                raise ModelError(f"{where}: {e}") from None
            if version is not None and batch_version != version:
                raise ModelError(f"{where}: model_version changed from {version!r} to {batch_version!r} "
                                 "during one call (the server reloaded its model?); try again")
            version = self.version = batch_version
            out[start:start + len(batch)] = rows
        return out

    def _post(self, batch: list, labels: list, where: str) -> Any:
        body = {"question": self.question, "labels": list(labels),
                "items": [{"id": item["id"], "data": item["data"]} for item in batch]}
        content = json.dumps(body, ensure_ascii=False, default=str).encode()
        try:
            r = self._client.post(self.url, content=content, headers={"Content-Type": "application/json"})
        except httpx.TimeoutException:
            raise ModelError(f"{where}: no reply within {self.timeout:g} s") from None
        except httpx.TransportError as e:
            what = "cannot connect" if isinstance(e, httpx.ConnectError) else "the connection failed"
            raise ModelError(f"{where}: {what} ({type(e).__name__}: {e})") from None
        except httpx.HTTPError as e:
            raise ModelError(f"{where}: request failed ({type(e).__name__}: {e})") from None
        if r.is_redirect:
            raise ModelError(f"{where}: HTTP {r.status_code} redirect to {r.headers.get('location')!r}; "
                             "redirects are not followed, so configure the final URL")
        if not r.is_success:
            raise ModelError(f"{where}: HTTP {r.status_code}", excerpt=r.text[:300])
        try:
            return json.loads(r.content)
        except ValueError as e:
            raise ModelError(f"{where}: the reply is not valid JSON ({e})", excerpt=r.text[:200]) from None


def _parse_reply(reply: Any, labels: list, index: dict[str, int], ids: list) -> tuple[str, np.ndarray]:
    if not isinstance(reply, dict) or "predictions" not in reply:
        raise _Invalid(f"the reply must be a JSON object with 'model_version' and 'predictions', got "
                       f"{json.dumps(reply)[:200]}")
    version = reply.get("model_version")
    if not isinstance(version, str) or not version.strip() or len(version) > MAX_VERSION_LENGTH:
        raise _Invalid(f"'model_version' must be a non-empty string of at most {MAX_VERSION_LENGTH} "
                       f"characters naming the model that made these predictions, got {version!r:.100}")
    predictions = reply["predictions"]
    if not isinstance(predictions, list):
        raise _Invalid(f"'predictions' must be a list, got {type(predictions).__name__}")
    position = {item_id: i for i, item_id in enumerate(ids)}
    out = np.empty((len(ids), len(labels)))
    done: set[int] = set()
    for k, prediction in enumerate(predictions):
        if not isinstance(prediction, dict) or "id" not in prediction or "probabilities" not in prediction:
            raise _Invalid(f"prediction {k} must be an object with 'id' and 'probabilities', got "
                           f"{json.dumps(prediction)[:200]}")
        item_id = prediction["id"]
        i = position.get(item_id) if isinstance(item_id, (int, str)) and not isinstance(item_id, bool) else None
        if i is None:
            raise _Invalid(f"prediction {k}: item {item_id!r} was not sent in this request")
        if i in done:
            raise _Invalid(f"prediction {k} (item {item_id!r}): item {item_id!r} comes back more than once")
        try:
            out[i] = _row_from_mapping(prediction["probabilities"], labels, index)
        except _Invalid as e:
            raise _Invalid(f"prediction {k} (item {item_id!r}): {e}") from None
        done.add(i)
    if len(done) < len(ids):
        missing = [item_id for i, item_id in enumerate(ids) if i not in done]
        shown = ", ".join(repr(m) for m in missing[:10]) + (", ..." if len(missing) > 10 else "")
        raise _Invalid(f"no prediction for {len(missing)} of the {len(ids)} items sent ({shown}); every item "
                       "sent must come back once")
    return version, out


# ---- in-process ----------------------------------------------------------------------------------


class PythonModel:
    """A model in this process: ``python:package.module:attr``.

    The module is imported and ``attr`` (dotted for nested attributes) taken from it when the model is made;
    a class is instantiated with no arguments. Each call then runs ``obj.predict_proba(items, labels)`` if
    the object has it, else ``obj(items, labels)``. The result is a 2-D array-like ``(len(items),
    len(labels))`` with columns in the order of ``labels``, or a list of ``{label: probability}`` dicts in
    item order; it is checked and normalised like an HTTP reply. ``version`` is the object's ``version``
    attribute when that is a string (read at every access, so a model can change it when it retrains), else
    the spec. An exception raised by the model is wrapped in :class:`ModelError` (the original is its
    ``__cause__``).
    """

    def __init__(self, spec: str, *, question: str):
        self.spec = spec
        self.question = question
        self.model = _resolve(spec)
        predict = getattr(self.model, "predict_proba", None)
        if callable(predict):
            self._predict = predict
        elif callable(self.model):
            self._predict = self.model
        else:
            raise ModelError(f"{spec}: {type(self.model).__name__} {self.model!r:.80} is not a model; give a "
                             "class, an object with predict_proba(items, labels), or a function (items, labels)")

    def __repr__(self) -> str:
        return f"PythonModel({self.spec!r}, question={self.question!r})"

    @property
    def version(self) -> str:
        version = getattr(self.model, "version", None)
        return version if isinstance(version, str) and version else self.spec

    def predict_proba(self, items: list[dict], labels: list) -> np.ndarray:
        """Probabilities ``(len(items), len(labels))`` from the model, checked and normalised."""
        labels, index = _labels(labels)
        ids = _check_items(items)
        if not ids:
            return np.empty((0, len(labels)))
        try:
            result = self._predict(items, list(labels))
        except Exception as e:
            raise ModelError(f"model {self.spec} raised {type(e).__name__}: {e}") from e
        try:
            return _rows(result, labels, index, ids)
        except _Invalid as e:
            raise ModelError(f"model {self.spec}: {e}") from None


def _resolve(spec: str) -> Any:
    rest = spec.removeprefix("python:") if isinstance(spec, str) else ""
    module_name, _, attr = rest.partition(":")
    if not (isinstance(spec, str) and spec.startswith("python:") and module_name and attr):
        raise ValueError(f"a Python model spec is python:package.module:attr, e.g. "
                         f"python:my_models.spam:SpamModel; got {spec!r}")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as e:
        raise ModelError(f"{spec}: cannot import {module_name!r} ({type(e).__name__}: {e}); is it installed "
                         "or on PYTHONPATH?") from e
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ModelError(f"{spec}: {module_name!r} has no attribute {attr!r}") from None
    if inspect.isclass(obj):
        try:
            obj = obj()
        except Exception as e:
            raise ModelError(f"{spec}: {attr}() failed ({type(e).__name__}: {e}); a model class must be "
                             "constructible with no arguments") from e
    return obj


def load_model(spec: str, *, question: str, timeout: float = 10.0) -> Predictor:
    """The model a spec names: ``http(s)://...`` gives an :class:`HttpModel` (with ``timeout`` seconds per
    request), ``python:package.module:attr`` a :class:`PythonModel`. Anything else is a ``ValueError``."""
    if isinstance(spec, str) and spec[:8].lower().startswith(("http://", "https://")):
        return HttpModel(spec, question=question, timeout=timeout)
    if isinstance(spec, str) and spec.startswith("python:"):
        return PythonModel(spec, question=question)
    raise ValueError(f"model spec {spec!r} is neither an http(s) URL (e.g. http://127.0.0.1:9000/predict) nor "
                     "a Python entry point (python:package.module:attr)")
