"""The project assistant: features, the model, its predictions and the queue's order (issue 9).

A project with an ``assist`` block (see :class:`labelwright.schema.Assist`) gets one step of work at a
time from :func:`step` (the assist worker runs it in the background; ``labelwright assist run`` in the
foreground). Each step does what is due, in order, and never holds a transaction open over a model call:

1. **Features** (:func:`featurise`): every item's text (its text, markdown and chat fields) becomes one vector,
   computed once and stored in ``item_features``. The featuriser (TF-IDF + SVD, or all-MiniLM-L6-v2 when the
   ``embeddings`` extra is installed) is fitted once per project on the items there and kept in
   ``featurisers``, so items imported later get comparable vectors.
2. **The model.** ``builtin``: logistic regressions on the features, trained on the people's aggregated
   labels of finished items (never gold answers) once there are ``min_train`` of them, and retrained after every
   ``retrain_every`` new ones. Training is cross-fitted: five fold models, each scoring the labelled items it
   did not see (out-of-sample probabilities, for label errors and, on the random validation sample, for the
   thresholds: see :func:`ensure_holdout`), and together, averaged, scoring every item. An ``http(s)`` or
   ``python:`` model (:mod:`labelwright.assist.models`) is asked for the items it has not scored; its
   validation figures are its predictions on the people-labelled items. Every prediction is stored in
   ``predictions`` with the model (``assist_models``) that made it.
3. **The queue's order** (``order: uncertainty``): open items are ranked most uncertain first, the first batch
   spread out by k-center diversity (:func:`labelwright.assist.active.select_batch`), after a random cold start.
   The queue picks ``ORDER BY queue_rank, id``, so ranking costs the claim nothing.
4. **Auto-labelling and its audit** (:mod:`labelwright.services.autolabel`), and **label errors** into the
   check queue (:mod:`labelwright.services.checks`).

A model that fails (unreachable, wrong answers, an exception) stops the step, which reports the error;
nothing the queue needs waits for it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from sqlalchemy import text

from labelwright.schema import label_values
from labelwright.services.assist_state import (
    claim_worker,
    ensure_state,
    get_state,
    release_worker,
)
from labelwright.services.projects import Project
from labelwright.store import dumps, loads

log = logging.getLogger("labelwright.assist")

FEATURE_BATCH = 2_000  # items featurised per write
FIT_SAMPLE = 20_000  # the most items a TF-IDF featuriser is fitted on
PREDICT_BATCH = 256  # items per call to an external model
LABEL_ERRORS_PER_TRAIN = 50  # the most suspected label errors a training adds to the check queue
RANK_BATCH_SHARE = 0.02  # the diverse first batch of the uncertainty order: 2% of the open items (at least 50)


@dataclass
class StepReport:
    """What one :func:`step` did."""

    featurised: int = 0
    trained: str | None = None
    predicted: int = 0
    ranked: int = 0
    auto_labelled: int = 0
    audit: dict | None = None
    label_errors: int = 0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    # the error without the excerpt of a model server's answer (what non-owners see; see api/assist.py)
    public_error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


# ---- state ---------------------------------------------------------------------------------------


def step_now(store, project: Project, *, lease_seconds: float = 600.0, **kwargs) -> StepReport:
    """:func:`step` under the project's assist lease, for a step asked for by a person (API, CLI): one step at
    a time per project, whoever starts it. :class:`Conflict` when a step is already running."""
    from labelwright.errors import Conflict

    if not claim_worker(store, project.id, time.time(), lease_seconds):
        raise Conflict("the assistant is already running a step for this project; try again in a moment")
    try:
        return step(store, project, **kwargs)
    finally:
        release_worker(store, project.id)


# ---- features ------------------------------------------------------------------------------------


def item_text(schema, data: dict) -> str:
    """The text the features are computed from: the item's text, markdown and chat fields, in schema order."""
    parts = []
    for f in schema.fields:
        value = data.get(f.name)
        if value is None or f.type == "image":
            continue
        if f.type == "chat" and isinstance(value, list):
            parts.extend(f"{t.get('role', '')}: {t.get('content', '')}" for t in value if isinstance(t, dict))
        else:
            parts.append(str(value))
    return "\n".join(parts)


def _featuriser(store, project: Project, now: float):
    """The project's fitted text featuriser (fitted and stored on first use), or None when the project has no
    text to featurise (only image fields, or no words at all)."""
    from labelwright.assist.features import TextFeatures, text_features

    if all(f.type == "image" for f in project.schema.fields):
        return None
    with store.read() as conn:
        row = conn.execute(text("SELECT blob FROM featurisers WHERE project_id = :p"), {"p": project.id}).first()
    if row is not None:
        return TextFeatures.from_bytes(bytes(row[0])) if row[0] else None
    prefer = {"auto": "auto", "tfidf": "tfidf", "minilm": "embeddings"}[project.schema.assist.features]
    feats = text_features(prefer)
    with store.read() as conn:
        rows = conn.execute(text("SELECT data FROM items WHERE project_id = :p ORDER BY id"), {"p": project.id}).all()
    texts = [item_text(project.schema, loads(r[0])) for r in rows]
    if len(texts) > FIT_SAMPLE:
        pick = np.random.default_rng(0).choice(len(texts), FIT_SAMPLE, replace=False)
        texts = [texts[i] for i in np.sort(pick)]
    if not texts:
        return None
    try:
        feats.fit(texts)
        blob, version = feats.to_bytes(), feats.version
    except ValueError:  # no term occurs twice (an empty vocabulary): the items have no usable text
        feats, blob, version = None, b"", "none"
    with store.write() as conn:
        conn.execute(text("INSERT INTO featurisers (project_id, version, blob, created_at) VALUES (:p, :v, :b, :now) "
                          "ON CONFLICT (project_id) DO NOTHING"),
                     {"p": project.id, "v": version, "b": blob, "now": now})
    return feats


def _image_fields(project: Project):
    from labelwright.assist.images import pixels_available

    fields = [f.name for f in project.schema.fields if f.type == "image"]
    return fields if fields and pixels_available() else []


def featurise(store, project: Project, *, now: float | None = None, batch: int = FEATURE_BATCH,
              on_progress=None, media_root=None) -> int:
    """Compute and store the features of every item that has none; return how many were computed.

    An item's vector is its text features (:mod:`labelwright.assist.features`) followed by the pixel
    statistics of each image field (:mod:`labelwright.assist.images`, images under ``media_root``), the
    whole scaled to norm 1."""
    from labelwright.assist.images import PixelStatistics

    now = now or time.time()
    with store.read() as conn:
        missing = conn.execute(text(
            "SELECT 1 FROM items i WHERE i.project_id = :p AND NOT EXISTS "
            "(SELECT 1 FROM item_features f WHERE f.item_id = i.id) LIMIT 1"), {"p": project.id}).first()
    if missing is None:  # nothing to do: do not read the stored featuriser back (tens of MB) for nothing
        return 0
    feats = _featuriser(store, project, now)
    images = _image_fields(project)
    if feats is None and not images:
        return 0
    pixels = PixelStatistics(media_root) if images else None
    version = "+".join(([feats.version] if feats is not None else []) + ([pixels.version] if images else []))
    done = 0
    while True:
        with store.read() as conn:
            rows = conn.execute(text(
                "SELECT i.id, i.data FROM items i WHERE i.project_id = :p AND NOT EXISTS "
                "(SELECT 1 FROM item_features f WHERE f.item_id = i.id) ORDER BY i.id LIMIT :n"),
                {"p": project.id, "n": batch}).all()
        if not rows:
            break
        data = [loads(r[1]) for r in rows]
        parts = []
        if feats is not None:
            parts.append(feats.transform([item_text(project.schema, d) for d in data]))
        for name in images:
            parts.append(pixels.transform([d.get(name) for d in data]))
        x = np.concatenate(parts, axis=1).astype(np.float32)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0).astype("<f4")
        with store.write() as conn:
            conn.execute(text("INSERT INTO item_features (item_id, project_id, version, vector) "
                              "VALUES (:i, :p, :v, :x) ON CONFLICT (item_id) DO NOTHING"),
                         [{"i": r[0], "p": project.id, "v": version, "x": x[k].tobytes()}
                          for k, r in enumerate(rows)])
        done += len(rows)
        _progress(store, project, now)
        if on_progress is not None:
            on_progress(done)
    if done == 0:
        _progress(store, project, now)
    return done


def _progress(store, project: Project, now: float) -> None:
    with store.write() as conn:
        ensure_state(conn, project.id, now)
        conn.execute(text(
            "UPDATE assist_state SET features_done = (SELECT count(*) FROM item_features WHERE project_id = :p), "
            "features_total = (SELECT count(*) FROM items WHERE project_id = :p), updated_at = :now "
            "WHERE project_id = :p"), {"p": project.id, "now": now})


def load_features(store, project: Project) -> tuple[np.ndarray, np.ndarray]:
    """``(item ids, vectors)`` of the project's featurised items, in item order."""
    with store.read() as conn:
        rows = conn.execute(text("SELECT item_id, vector FROM item_features WHERE project_id = :p ORDER BY item_id"),
                            {"p": project.id}).all()
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    x = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype="<f4").reshape(len(rows), -1)
    return ids, x


def holdout_ids(store, project: Project) -> set[int]:
    """The items of the random validation sample (see :func:`ensure_holdout`)."""
    with store.read() as conn:
        return {r[0] for r in conn.execute(text(
            "SELECT item_id FROM item_features WHERE project_id = :p AND holdout = 1"), {"p": project.id})}


def ensure_holdout(store, project: Project, *, now: float | None = None) -> int:
    """With auto-labelling on, draw the random validation sample: ``max(min_validation, validation_share *
    items)`` ordinary items (all of them in a small project), drawn uniformly from the items nobody has
    started on, so they are exchangeable with the items the machine may label. They go to people first (a
    negative ``queue_rank``, in random order), are never machine-labelled, and the thresholds are chosen on
    them alone: items people labelled in some other order (import order, the uncertainty order) are not a
    random sample of what is left, and a threshold validated on them promises nothing about the rest.
    Returns how many items were added to the sample."""
    auto = project.schema.assist.auto_label
    if auto is None:
        return 0
    with store.read() as conn:
        n = conn.execute(text("SELECT count(*) FROM items WHERE project_id = :p AND is_gold = 0"),
                         {"p": project.id}).scalar()
        have = conn.execute(text("SELECT count(*) FROM item_features WHERE project_id = :p AND holdout = 1"),
                            {"p": project.id}).scalar()
        want = min(n, max(auto.min_validation, int(np.ceil(auto.validation_share * n))))
        if have >= want:
            return 0
        pool = [r[0] for r in conn.execute(text(
            "SELECT f.item_id FROM item_features f JOIN items i ON i.id = f.item_id WHERE f.project_id = :p "
            "AND f.holdout = 0 AND i.is_gold = 0 AND i.n_assigned = 0 AND i.n_done = 0 AND NOT EXISTS "
            "(SELECT 1 FROM machine_labels ml WHERE ml.item_id = i.id) ORDER BY f.item_id"), {"p": project.id})]
    if not pool:
        return 0
    rng = np.random.default_rng([project.id, have])
    picked = rng.choice(len(pool), size=min(len(pool), want - have), replace=False)
    rows = [{"i": pool[int(j)], "r": -(have + k + 1)} for k, j in enumerate(picked)]
    with store.write() as conn:
        conn.execute(text("UPDATE item_features SET holdout = 1 WHERE item_id = :i"), rows)
        conn.execute(text("UPDATE items SET queue_rank = :r WHERE id = :i"), rows)
    return len(rows)


# ---- people's labels -----------------------------------------------------------------------------


def people_labels(store, project: Project) -> tuple[np.ndarray, np.ndarray]:
    """``(item ids, class indices)`` of the assisted question's labels from people: ordinary items with all the
    answers they want (their aggregated label). Machine labels are not included, and neither are gold items:
    the model never learns gold answers, so its suggestions on gold items are no better than on any item and
    gold keeps measuring people (:mod:`labelwright.services.suggestions`)."""
    from labelwright.services.labels import project_labels

    q = project.schema.assist_question()
    ql = project_labels(store, project, machine=False).get(q.name)
    if ql is None or len(ql.tasks) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    with store.read() as conn:
        done = {r[0] for r in conn.execute(text(
            "SELECT id FROM items WHERE project_id = :p AND is_gold = 0 AND n_done > 0 AND "
            "n_done >= COALESCE(target, :o)"), {"p": project.id, "o": project.overlap})}
    codes = {v: i for i, v in enumerate(label_values(q))}
    pairs = [(t, codes[v]) for t, v, _ in ql.items() if t in done and v in codes]
    if not pairs:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    ids, y = zip(*pairs)
    return np.array(ids, dtype=np.int64), np.array(y, dtype=np.int64)


# ---- models and predictions ----------------------------------------------------------------------


def latest_model(store, project: Project) -> dict | None:
    with store.read() as conn:
        row = conn.execute(text("SELECT * FROM assist_models WHERE project_id = :p ORDER BY id DESC LIMIT 1"),
                           {"p": project.id}).mappings().first()
    return _model_row(row) if row is not None else None


def list_models(store, project: Project) -> list[dict]:
    with store.read() as conn:
        rows = conn.execute(text("SELECT * FROM assist_models WHERE project_id = :p ORDER BY id"),
                            {"p": project.id}).mappings().all()
    return [_model_row(r) for r in rows]


def _model_row(row) -> dict:
    out = dict(row)
    out["thresholds"] = loads(row["thresholds"]) if row["thresholds"] else None
    out["details"] = loads(row["details"]) if row["details"] else {}
    return out


def _full_probas(model, x: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((x.shape[0], k))
    out[:, model.classes_] = model.predict_proba(x)
    return out


def _cross_fitted(x: np.ndarray, y: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray | None, list]:
    """Cross-fitting: ``(out-of-sample probabilities, fold models)``. Each labelled item is scored by the
    model of the fold that held it out; the fold models together are the deployed model (the mean of their
    probabilities), so the scores the thresholds are chosen on come from the same models as the scores they
    are applied to. (A model refitted on every label would be more confident than the validation saw, and
    more items would clear a threshold than it was validated for.) ``(None, [])`` when a class has fewer
    than 2 labels: no fold could hold it out."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y, minlength=k)
    present = counts[counts > 0]
    if len(present) < 2 or present.min() < 2:
        return None, []
    folds = StratifiedKFold(n_splits=int(min(5, present.min())), shuffle=True, random_state=seed)
    out = np.zeros((len(y), k))
    models = []
    for train, test in folds.split(x, y):
        m = LogisticRegression(max_iter=1000).fit(x[train], y[train])
        out[test] = _full_probas(m, x[test], k)
        models.append(m)
    return out, models


@dataclass
class Validation:
    """What a model's validation gives: per labelled item its out-of-sample probabilities."""

    ids: np.ndarray
    labels: np.ndarray
    probas: np.ndarray | None


def _holdout_only(store, project: Project, val: Validation) -> Validation:
    """With auto-labelling on, the validation sample is the random holdout (:func:`ensure_holdout`) only."""
    if project.schema.assist.auto_label is None or val.probas is None:
        return val
    keep = np.isin(val.ids, np.fromiter(holdout_ids(store, project), dtype=np.int64))
    return Validation(val.ids[keep], val.labels[keep], val.probas[keep] if keep.any() else None)


def _figures(project: Project, val: Validation) -> tuple[float | None, dict | None]:
    from labelwright.assist.thresholds import choose_thresholds

    if val.probas is None or len(val.labels) == 0:
        return None, None
    accuracy = float((val.probas.argmax(axis=1) == val.labels).mean())
    auto = project.schema.assist.auto_label
    thresholds = None
    if auto is not None:
        thresholds = choose_thresholds(val.probas, val.labels, auto.target_accuracy, auto.confidence).to_dict()
    return accuracy, thresholds


def _insert_model(conn, project: Project, version: str, n_train: int, val: Validation, details: dict,
                  now: float) -> int:
    accuracy, thresholds = _figures(project, val)
    return conn.execute(text(
        "INSERT INTO assist_models (project_id, question, version, n_train, n_validation, accuracy, thresholds, "
        "details, created_at) VALUES (:p, :q, :v, :n, :nv, :a, :t, :d, :now) RETURNING id"),
        {"p": project.id, "q": project.schema.assist_question().name, "v": version, "n": n_train,
         "nv": len(val.labels) if val.probas is not None else 0, "a": accuracy,
         "t": dumps(thresholds) if thresholds else None, "d": dumps(details), "now": now}).scalar_one()


def _store_predictions(store, project: Project, model_id: int, ids, probas: np.ndarray, now: float) -> int:
    classes = label_values(project.schema.assist_question())
    top = probas.argmax(axis=1)
    rows = [{"i": int(i), "p": project.id, "m": model_id, "l": dumps(classes[int(c)]), "c": float(probas[k, c]),
             "ps": dumps([round(float(v), 5) for v in probas[k]]), "now": now}
            for k, (i, c) in enumerate(zip(ids, top))]
    for start in range(0, len(rows), 5_000):
        with store.write() as conn:
            conn.execute(text(
                "INSERT INTO predictions (item_id, project_id, model_id, label, confidence, probas, created_at) "
                "VALUES (:i, :p, :m, :l, :c, :ps, :now) ON CONFLICT (item_id) DO UPDATE SET "
                "model_id = excluded.model_id, label = excluded.label, confidence = excluded.confidence, "
                "probas = excluded.probas, created_at = excluded.created_at"), rows[start:start + 5_000])
    return len(rows)


def train_builtin(store, project: Project, *, now: float | None = None, force: bool = False) -> dict | None:
    """Train the builtin model when due (``min_train`` labels, then every ``retrain_every`` new ones), store its
    predictions for every featurised item, and return ``{"model": row, "validation": Validation}``; None when
    not due or too few labels."""
    from sklearn.linear_model import LogisticRegression

    now = now or time.time()
    a = project.schema.assist
    k = len(label_values(project.schema.assist_question()))
    ids, x = load_features(store, project)
    lab_ids, y = people_labels(store, project)
    state = get_state(store, project)
    n_labels = len(lab_ids)
    due = n_labels >= a.min_train and (latest_model(store, project) is None
                                       or n_labels - state["labels_at_train"] >= a.retrain_every)
    if not (due or force) or len(ids) == 0:
        return None
    pos = np.searchsorted(ids, lab_ids)
    have = (pos < len(ids)) & (ids[np.minimum(pos, len(ids) - 1)] == lab_ids)
    lab_ids, y, xl = lab_ids[have], y[have], x[pos[have]]
    if len(np.unique(y)) < 2:
        return None
    started = time.perf_counter()
    oos, models = _cross_fitted(xl, y, k)
    everything = Validation(lab_ids, y, oos)
    val = _holdout_only(store, project, everything)
    if models:
        probas = np.mean([_full_probas(m, x, k) for m in models], axis=0)
        # A labelled item keeps its out-of-sample score: a prediction from models that learned its own label
        # would hand that label back (as a suggestion, to someone asked for one more answer).
        probas[pos[have]] = oos
    else:
        probas = _full_probas(LogisticRegression(max_iter=1000).fit(xl, y), x, k)
    seconds = time.perf_counter() - started
    with store.read() as conn:
        n = conn.execute(text("SELECT count(*) FROM assist_models WHERE project_id = :p"), {"p": project.id}).scalar()
    with store.read() as conn:
        fv = conn.execute(text("SELECT version FROM featurisers WHERE project_id = :p"), {"p": project.id}).scalar()
    version = f"builtin-{n + 1}"
    details = {"kind": "builtin", "features": fv,
               "classifier": f"logistic regression, mean of {len(models)} cross-fitted fold models" if models
               else "logistic regression (too few labels per class to cross-fit: no thresholds)",
               "train_seconds": round(seconds, 3), "classes": label_values(project.schema.assist_question())}
    with store.write() as conn:
        model_id = _insert_model(conn, project, version, len(y), val, details, now)
        ensure_state(conn, project.id, now)
        conn.execute(text("UPDATE assist_state SET labels_at_train = :n, updated_at = :now WHERE project_id = :p"),
                     {"n": n_labels, "now": now, "p": project.id})
    _store_predictions(store, project, model_id, ids, probas, now)
    return {"model": latest_model(store, project), "validation": val, "labelled": everything}


def predict_external(store, project: Project, predictor, *, now: float | None = None,
                     batch: int = PREDICT_BATCH) -> dict | None:
    """Ask an http / python model for every item it has not scored; refresh its validation figures when
    ``retrain_every`` new people labels have come in. Raises :class:`labelwright.assist.models.ModelError`."""
    now = now or time.time()
    q = project.schema.assist_question()
    classes = label_values(q)
    predicted = 0
    model_id = None
    # The version the model last answered with (a new HttpModel knows its own only after a reply).
    latest = latest_model(store, project)
    version = latest["version"] if latest is not None and latest["details"].get("kind") == "external" \
        else predictor.version
    while True:
        with store.read() as conn:
            rows = conn.execute(text(
                "SELECT i.id, i.data FROM items i WHERE i.project_id = :p AND NOT EXISTS "
                "(SELECT 1 FROM predictions pr JOIN assist_models m ON m.id = pr.model_id "
                " WHERE pr.item_id = i.id AND m.version = :v) ORDER BY i.id LIMIT :n"),
                {"p": project.id, "v": version, "n": batch}).all()
        if not rows:
            break
        probas = predictor.predict_proba([{"id": r[0], "data": loads(r[1])} for r in rows], classes)
        version = predictor.version  # a model that changed version re-scores every item
        model_id = _external_model_id(store, project, version, now)
        predicted += _store_predictions(store, project, model_id, [r[0] for r in rows], np.asarray(probas), now)
    state = get_state(store, project)
    lab_ids, y = people_labels(store, project)
    model = latest_model(store, project)
    if model is None or model["version"] != version:
        if model_id is None:
            return None
        model = latest_model(store, project)
    if predicted == 0 and len(lab_ids) - state["labels_at_train"] < project.schema.assist.retrain_every \
            and model["n_validation"] > 0:
        return {"model": model, "validation": None, "predicted": 0}
    val = _holdout_only(store, project, _validation_of_predictions(store, project, model["id"], lab_ids, y,
                                                                   len(classes)))
    accuracy, thresholds = _figures(project, val)
    with store.write() as conn:
        conn.execute(text("UPDATE assist_models SET n_validation = :nv, accuracy = :a, thresholds = :t "
                          "WHERE id = :m"),
                     {"nv": len(val.labels), "a": accuracy, "t": dumps(thresholds) if thresholds else None,
                      "m": model["id"]})
        ensure_state(conn, project.id, now)
        conn.execute(text("UPDATE assist_state SET labels_at_train = :n, updated_at = :now WHERE project_id = :p"),
                     {"n": len(lab_ids), "now": now, "p": project.id})
    return {"model": latest_model(store, project), "validation": val, "predicted": predicted}


def _external_model_id(store, project: Project, version: str, now: float) -> int:
    with store.write() as conn:
        row = conn.execute(text("SELECT id FROM assist_models WHERE project_id = :p AND version = :v "
                                "ORDER BY id DESC LIMIT 1"), {"p": project.id, "v": version}).first()
        if row is not None:
            return row[0]
        return _insert_model(conn, project, version, 0, Validation(np.zeros(0), np.zeros(0), None),
                             {"kind": "external", "model": project.schema.assist.model,
                              "classes": label_values(project.schema.assist_question())}, now)


def _validation_of_predictions(store, project: Project, model_id: int, lab_ids, y, k: int) -> Validation:
    with store.read() as conn:
        got = {r[0]: loads(r[1]) for r in conn.execute(text(
            "SELECT item_id, probas FROM predictions WHERE project_id = :p AND model_id = :m"),
            {"p": project.id, "m": model_id})}
    keep = [j for j, i in enumerate(lab_ids.tolist()) if i in got]
    if not keep:
        return Validation(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), None)
    probas = np.array([got[int(lab_ids[j])] for j in keep], dtype=float).reshape(len(keep), k)
    return Validation(lab_ids[keep], y[keep], probas)


def python_model_allowed(spec: str, allowed: tuple[str, ...] | list[str]) -> bool:
    """Whether ``python:package.module:attr`` names a module under one of the ``allowed`` packages."""
    module = spec.removeprefix("python:").partition(":")[0]
    return any(module == a or module.startswith(a + ".") for a in allowed if a)


def load_predictor(project: Project, python_models: tuple[str, ...] | list[str] = ()):
    """The project's external model (:mod:`labelwright.assist.models`), or None for ``builtin``.

    A ``python:`` model is code the server imports and calls with item data; a schema comes from whoever may
    create projects, so only modules under the packages the server's operator lists in the setting
    ``assist_python_models`` may be named (none by default). Raises :class:`ModelError` otherwise."""
    from labelwright.assist.models import ModelError, load_model

    spec = project.schema.assist.model
    if spec == "builtin":
        return None
    if spec.startswith("python:") and not python_model_allowed(spec, python_models):
        raise ModelError(f"model {spec}: python: models must be allowed by the server's operator; start the "
                         "server with LABELWRIGHT_ASSIST_PYTHON_MODELS=<package> (comma-separated) to allow "
                         "modules under that package")
    return load_model(spec, question=project.schema.assist_question().name)


def prediction_for(store, item_id: int) -> dict | None:
    """The stored prediction of one item: ``{label, confidence, model}``."""
    row = store.lookup("SELECT p.label, p.confidence, m.version FROM predictions p JOIN assist_models m "
                       "ON m.id = p.model_id WHERE p.item_id = :i", {"i": item_id})
    if row is None:
        return None
    return {"label": loads(row[0]), "confidence": round(float(row[1]), 4), "model": row[2]}


# ---- the queue's order ---------------------------------------------------------------------------


def rank(store, project: Project, *, now: float | None = None, seed: int = 0) -> int:
    """Write ``queue_rank`` for the project's open ordinary items: most uncertain first (the first batch
    spread out by k-center diversity); before any model, a random order (the cold start). Returns how many."""
    from labelwright.assist.active import margins, select_batch

    now = now or time.time()
    with store.read() as conn:
        open_ids = np.array([r[0] for r in conn.execute(text(
            "SELECT id FROM items WHERE project_id = :p AND is_open = 1 AND is_gold = 0 AND NOT EXISTS "
            "(SELECT 1 FROM item_features f WHERE f.item_id = items.id AND f.holdout = 1) ORDER BY id"),
            {"p": project.id})], dtype=np.int64)
        preds = {r[0]: loads(r[1]) for r in conn.execute(text(
            "SELECT item_id, probas FROM predictions WHERE project_id = :p"), {"p": project.id})}
    if len(open_ids) == 0:
        return 0
    ranks = np.zeros(len(open_ids), dtype=np.int64)
    scored = np.array([i in preds for i in open_ids.tolist()])
    if not scored.any():
        ranks = np.random.default_rng(seed).permutation(len(open_ids)) + 1
    else:
        sids = open_ids[scored]
        probas = np.array([preds[i] for i in sids.tolist()], dtype=float)
        ids, x = load_features(store, project)
        pos = np.searchsorted(ids, sids)
        k = min(len(sids), max(50, int(RANK_BATCH_SHARE * len(sids))))
        first = select_batch(x[pos], probas, np.zeros(len(sids), dtype=bool), k, cold_start=0)
        order = list(first.tolist())
        chosen = set(order)
        order += [j for j in np.argsort(margins(probas), kind="stable").tolist() if j not in chosen]
        r = np.empty(len(sids), dtype=np.int64)
        r[np.array(order, dtype=np.int64)] = np.arange(1, len(sids) + 1)
        ranks[scored] = r
        ranks[~scored] = len(sids) + 1 + np.arange(int((~scored).sum()))  # not yet scored: after the rest
    rows = [{"i": int(i), "r": int(v)} for i, v in zip(open_ids, ranks)]
    for start in range(0, len(rows), 5_000):
        with store.write() as conn:
            conn.execute(text("UPDATE items SET queue_rank = :r WHERE id = :i"), rows[start:start + 5_000])
    with store.write() as conn:
        ensure_state(conn, project.id, now)
        conn.execute(text("UPDATE assist_state SET ranked_at = :now WHERE project_id = :p"),
                     {"now": now, "p": project.id})
    return len(rows)


# ---- one step ------------------------------------------------------------------------------------


def step(store, project: Project, *, now: float | None = None, predictor=None, force_train: bool = False,
         media_root=None, python_models: tuple[str, ...] | list[str] = ()) -> StepReport:
    """Do the assistant's due work for one project (see the module docstring). Model failures are reported
    in ``error``, not raised. ``media_root``: where image fields' files are (the server's ``--media-root``);
    ``python_models``: the packages ``python:`` models may come from (:func:`load_predictor`)."""
    from labelwright.assist.models import ModelError
    from labelwright.services import autolabel, checks

    now = now or time.time()
    a = project.schema.assist
    report = StepReport()
    if a is None:
        report.error = "the project has no assist block"
        return report
    report.featurised = featurise(store, project, now=now, media_root=media_root)
    held = ensure_holdout(store, project, now=now)
    if held:
        report.notes.append(f"{held} items drawn into the validation sample")
    trained = None
    try:
        if a.model == "builtin":
            trained = train_builtin(store, project, now=now, force=force_train)
        else:
            own = predictor is None
            predictor = predictor or load_predictor(project, python_models)
            try:
                trained = predict_external(store, project, predictor, now=now)
            finally:
                if own and hasattr(predictor, "close"):
                    predictor.close()
            if trained is not None:
                report.predicted = trained.get("predicted", 0)
    except ModelError as e:
        report.error = str(e)
        report.public_error = e.public
        log.warning("assist model failed for project %s: %s", project.slug, e)
    except Exception as e:  # a broken model must not stop the worker
        report.error = report.public_error = f"{type(e).__name__}: {e}"
        log.exception("assist step failed for project %s", project.slug)
    if trained is not None and a.model == "builtin":
        report.trained = trained["model"]["version"]
        report.predicted = len(load_features(store, project)[0])
    state = get_state(store, project)
    model = latest_model(store, project)
    if a.order == "uncertainty" and (state["ranked_at"] is None or trained is not None or report.featurised):
        report.ranked = rank(store, project, now=now)
    if a.auto_label is not None and model is not None:
        report.auto_labelled = autolabel.apply(store, project, model, now=now)
        report.audit = autolabel.evaluate(store, project, now=now).to_dict()
    labelled = (trained or {}).get("labelled") or (trained or {}).get("validation")
    if a.label_errors and labelled is not None:
        report.label_errors = checks.add_label_errors(store, project, trained["model"], labelled,
                                                      now=now, limit=LABEL_ERRORS_PER_TRAIN)
    return report
