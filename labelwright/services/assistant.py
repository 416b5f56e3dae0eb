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
from sqlalchemy import Connection, RowMapping, bindparam, exists, func, insert, select, update

from labelwright.assist.active import margins, select_batch
from labelwright.assist.features import TextFeatures, text_features
from labelwright.assist.images import PixelStatistics, pixels_available
from labelwright.assist.models import ModelError, load_model
from labelwright.assist.thresholds import choose_thresholds
from labelwright.errors import Conflict, ValidationError
from labelwright.schema import Assist, label_values
from labelwright.services import autolabel, checks
from labelwright.services.assist_state import (
    claim_worker,
    ensure_state,
    get_state,
    release_worker,
)
from labelwright.services.labels import project_labels
from labelwright.services.projects import Project
from labelwright.store import Store, dumps, loads, lookups
from labelwright.store import tables as t
from labelwright.store.lookups import PredictionRow
from labelwright.store.sql import upsert

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


# ---- a step on demand ----------------------------------------------------------------------------


def step_now(store: Store, project: Project, *, lease_seconds: float = 600.0, **kwargs) -> StepReport:
    """:func:`step` under the project's assist lease, for a step asked for by a person (API, CLI): one step at
    a time per project, whoever starts it. :class:`Conflict` when a step is already running."""
    if not claim_worker(store, project.id, time.time(), lease_seconds):
        raise Conflict("the assistant is already running a step for this project; try again in a moment")
    try:
        return step(store, project, **kwargs)
    finally:
        release_worker(store, project.id)


def _assist(project: Project) -> Assist:
    """The project's assist block; :class:`ValidationError` for a project without one (the functions below
    that need it were only ever called for assisted projects, and failed with an AttributeError otherwise)."""
    a = project.schema.assist
    if a is None:
        raise ValidationError(f"project {project.slug!r} has no assistant (add `assist:` to its schema)")
    return a


# ---- features ------------------------------------------------------------------------------------


def item_text(schema, data: dict) -> str:
    """The text the features are computed from: the item's text, markdown and chat fields, in schema order."""
    parts: list[str] = []
    for f in schema.fields:
        value = data.get(f.name)
        if value is None or f.type == "image":
            continue
        if f.type == "chat" and isinstance(value, list):
            parts.extend(f"{turn.get('role', '')}: {turn.get('content', '')}" for turn in value
                         if isinstance(turn, dict))
        else:
            parts.append(str(value))
    return "\n".join(parts)


def _featuriser(store: Store, project: Project, now: float):
    """The project's fitted text featuriser (fitted and stored on first use), or None when the project has no
    text to featurise (only image fields, or no words at all)."""
    if all(f.type == "image" for f in project.schema.fields):
        return None
    fz, i = t.featurisers, t.items
    with store.read() as conn:
        row = conn.execute(select(fz.c.blob).where(fz.c.project_id == project.id)).first()
    if row is not None:
        return TextFeatures.from_bytes(bytes(row.blob)) if row.blob else None
    prefer = {"auto": "auto", "tfidf": "tfidf", "minilm": "embeddings"}[_assist(project).features]
    feats = text_features(prefer)
    with store.read() as conn:
        rows = conn.execute(select(i.c.data).where(i.c.project_id == project.id).order_by(i.c.id)).scalars().all()
    texts = [item_text(project.schema, loads(d)) for d in rows]
    if len(texts) > FIT_SAMPLE:
        pick = np.random.default_rng(0).choice(len(texts), FIT_SAMPLE, replace=False)
        texts = [texts[i] for i in np.sort(pick)]
    if not texts:
        return None
    fitted: TextFeatures | None = feats
    try:
        feats.fit(texts)
        blob, version = feats.to_bytes(), feats.version
    except ValueError:  # no term occurs twice (an empty vocabulary): the items have no usable text
        fitted, blob, version = None, b"", "none"
    with store.write() as conn:
        conn.execute(upsert(conn, fz).values(project_id=project.id, version=version, blob=blob, created_at=now)
                     .on_conflict_do_nothing(index_elements=["project_id"]))
    return fitted


def _image_fields(project: Project):
    fields = [f.name for f in project.schema.fields if f.type == "image"]
    return fields if fields and pixels_available() else []


def featurise(store: Store, project: Project, *, now: float | None = None, batch: int = FEATURE_BATCH,
              on_progress=None, media_root=None) -> int:
    """Compute and store the features of every item that has none; return how many were computed.

    An item's vector is its text features (:mod:`labelwright.assist.features`) followed by the pixel
    statistics of each image field (:mod:`labelwright.assist.images`, images under ``media_root``), the
    whole scaled to norm 1."""
    now = now or time.time()
    i, f = t.items, t.item_features
    unfeaturised = select(i.c.id, i.c.data).where(i.c.project_id == project.id,
                                                  ~exists().where(f.c.item_id == i.c.id)).order_by(i.c.id)
    with store.read() as conn:
        missing = conn.execute(unfeaturised.limit(1)).first()
    if missing is None:  # nothing to do: do not read the stored featuriser back (tens of MB) for nothing
        return 0
    feats = _featuriser(store, project, now)
    images = _image_fields(project)
    if feats is None and not images:
        return 0
    pixels = PixelStatistics(media_root) if images else None
    version = "+".join(([feats.version] if feats is not None else []) + ([pixels.version] if pixels else []))
    done = 0
    while True:
        with store.read() as conn:
            rows = conn.execute(unfeaturised.limit(batch)).all()
        if not rows:
            break
        data = [loads(r.data) for r in rows]
        parts: list[np.ndarray] = []
        if feats is not None:
            parts.append(feats.transform([item_text(project.schema, d) for d in data]))
        if pixels is not None:
            parts.extend(pixels.transform([d.get(name) for d in data]) for name in images)
        x = np.concatenate(parts, axis=1).astype(np.float32)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0).astype("<f4")
        with store.write() as conn:
            conn.execute(upsert(conn, f).on_conflict_do_nothing(index_elements=["item_id"]),
                         [{"item_id": r.id, "project_id": project.id, "version": version, "vector": x[k].tobytes()}
                          for k, r in enumerate(rows)])
        done += len(rows)
        _progress(store, project, now)
        if on_progress is not None:
            on_progress(done)
    if done == 0:
        _progress(store, project, now)
    return done


def _progress(store: Store, project: Project, now: float) -> None:
    st, f, i = t.assist_state, t.item_features, t.items
    with store.write() as conn:
        ensure_state(conn, project.id, now)
        conn.execute(update(st).where(st.c.project_id == project.id).values(
            features_done=select(func.count()).select_from(f).where(f.c.project_id == project.id).scalar_subquery(),
            features_total=select(func.count()).select_from(i).where(i.c.project_id == project.id).scalar_subquery(),
            updated_at=now))


def load_features(store: Store, project: Project) -> tuple[np.ndarray, np.ndarray]:
    """``(item ids, vectors)`` of the project's featurised items, in item order."""
    f = t.item_features
    with store.read() as conn:
        rows = conn.execute(select(f.c.item_id, f.c.vector).where(f.c.project_id == project.id)
                            .order_by(f.c.item_id)).all()
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    ids = np.fromiter((r.item_id for r in rows), dtype=np.int64, count=len(rows))
    x = np.frombuffer(b"".join(bytes(r.vector) for r in rows), dtype="<f4").reshape(len(rows), -1)
    return ids, x


def holdout_ids(store: Store, project: Project) -> set[int]:
    """The items of the random validation sample (see :func:`ensure_holdout`)."""
    f = t.item_features
    with store.read() as conn:
        return set(conn.execute(select(f.c.item_id).where(f.c.project_id == project.id, f.c.holdout == 1))
                   .scalars())


def ensure_holdout(store: Store, project: Project, *, now: float | None = None) -> int:
    """With auto-labelling on, draw the random validation sample: ``max(min_validation, validation_share *
    items)`` ordinary items (all of them in a small project), drawn uniformly from the items nobody has
    started on, so they are exchangeable with the items the machine may label. They go to people first (a
    negative ``queue_rank``, in random order), are never machine-labelled, and the thresholds are chosen on
    them alone: items people labelled in some other order (import order, the uncertainty order) are not a
    random sample of what is left, and a threshold validated on them promises nothing about the rest.
    Returns how many items were added to the sample."""
    auto = _assist(project).auto_label
    if auto is None:
        return 0
    i, f, ml = t.items, t.item_features, t.machine_labels
    with store.read() as conn:
        n = conn.execute(select(func.count()).select_from(i)
                         .where(i.c.project_id == project.id, i.c.is_gold == 0)).scalar_one()
        have = conn.execute(select(func.count()).select_from(f)
                            .where(f.c.project_id == project.id, f.c.holdout == 1)).scalar_one()
        want = min(n, max(auto.min_validation, int(np.ceil(auto.validation_share * n))))
        if have >= want:
            return 0
        pool = list(conn.execute(
            select(f.c.item_id).select_from(f.join(i, i.c.id == f.c.item_id))
            .where(f.c.project_id == project.id, f.c.holdout == 0, i.c.is_gold == 0, i.c.n_assigned == 0,
                   i.c.n_done == 0, ~exists().where(ml.c.item_id == i.c.id))
            .order_by(f.c.item_id)).scalars())
    if not pool:
        return 0
    rng = np.random.default_rng([project.id, have])
    picked = rng.choice(len(pool), size=min(len(pool), want - have), replace=False)
    rows = [{"item": pool[int(j)], "rank": -(have + k + 1)} for k, j in enumerate(picked)]
    with store.write() as conn:
        conn.execute(update(f).where(f.c.item_id == bindparam("item")).values(holdout=1), rows)
        conn.execute(_SET_RANK, rows)
    return len(rows)


# one item's queue_rank (executed with many {"item", "rank"} rows)
_SET_RANK = update(t.items).where(t.items.c.id == bindparam("item")).values(queue_rank=bindparam("rank"))


# ---- people's labels -----------------------------------------------------------------------------


def people_labels(store: Store, project: Project) -> tuple[np.ndarray, np.ndarray]:
    """``(item ids, class indices)`` of the assisted question's labels from people: ordinary items with all the
    answers they want (their aggregated label). Machine labels are not included, and neither are gold items:
    the model never learns gold answers, so its suggestions on gold items are no better than on any item and
    gold keeps measuring people (:mod:`labelwright.services.suggestions`)."""
    q = project.schema.assist_question()
    ql = project_labels(store, project, machine=False).get(q.name)
    if ql is None or len(ql.tasks) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    i = t.items
    with store.read() as conn:
        done = set(conn.execute(select(i.c.id).where(
            i.c.project_id == project.id, i.c.is_gold == 0, i.c.n_done > 0,
            i.c.n_done >= func.coalesce(i.c.target, project.overlap))).scalars())
    codes = {v: k for k, v in enumerate(label_values(q))}
    pairs = [(task, codes[v]) for task, v, _ in ql.items() if task in done and v in codes]
    if not pairs:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    ids, y = zip(*pairs)
    return np.array(ids, dtype=np.int64), np.array(y, dtype=np.int64)


# ---- models and predictions ----------------------------------------------------------------------


def latest_model(store: Store, project: Project) -> dict | None:
    m = t.assist_models
    with store.read() as conn:
        row = conn.execute(select(m).where(m.c.project_id == project.id).order_by(m.c.id.desc()).limit(1)
                           ).mappings().first()
    return _model_row(row) if row is not None else None


def list_models(store: Store, project: Project) -> list[dict]:
    m = t.assist_models
    with store.read() as conn:
        rows = conn.execute(select(m).where(m.c.project_id == project.id).order_by(m.c.id)).mappings().all()
    return [_model_row(r) for r in rows]


def _model_row(row: RowMapping) -> dict:
    out = dict(row)
    out["thresholds"] = loads(row["thresholds"]) if row["thresholds"] else None
    out["details"] = loads(row["details"]) if row["details"] else {}
    return out


def _full_probas(model, x: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((x.shape[0], k))
    out[:, model.classes_] = model.predict_proba(x)
    return out


def _logistic():
    """The assistant's model: logistic regression (scikit-learn, imported here: it takes a second to import,
    and the server and CLI start without it)."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 - see the docstring

    return LogisticRegression(max_iter=1000)


def _cross_fitted(x: np.ndarray, y: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray | None, list]:
    """Cross-fitting: ``(out-of-sample probabilities, fold models)``. Each labelled item is scored by the
    model of the fold that held it out; the fold models together are the deployed model (the mean of their
    probabilities), so the scores the thresholds are chosen on come from the same models as the scores they
    are applied to. (A model refitted on every label would be more confident than the validation saw, and
    more items would clear a threshold than it was validated for.) ``(None, [])`` when a class has fewer
    than 2 labels: no fold could hold it out."""
    counts = np.bincount(y, minlength=k)
    present = counts[counts > 0]
    if len(present) < 2 or present.min() < 2:
        return None, []
    from sklearn.model_selection import StratifiedKFold  # noqa: PLC0415 - scikit-learn takes a second to import

    folds = StratifiedKFold(n_splits=int(min(5, present.min())), shuffle=True, random_state=seed)
    out = np.zeros((len(y), k))
    models = []
    for train, test in folds.split(x, y):
        m = _logistic().fit(x[train], y[train])
        out[test] = _full_probas(m, x[test], k)
        models.append(m)
    return out, models


@dataclass
class Validation:
    """What a model's validation gives: per labelled item its out-of-sample probabilities."""

    ids: np.ndarray
    labels: np.ndarray
    probas: np.ndarray | None


def _holdout_only(store: Store, project: Project, val: Validation) -> Validation:
    """With auto-labelling on, the validation sample is the random holdout (:func:`ensure_holdout`) only."""
    if _assist(project).auto_label is None or val.probas is None:
        return val
    keep = np.isin(val.ids, np.fromiter(holdout_ids(store, project), dtype=np.int64))
    return Validation(val.ids[keep], val.labels[keep], val.probas[keep] if keep.any() else None)


def _figures(project: Project, val: Validation) -> tuple[float | None, dict | None]:
    if val.probas is None or len(val.labels) == 0:
        return None, None
    accuracy = float((val.probas.argmax(axis=1) == val.labels).mean())
    auto = _assist(project).auto_label
    thresholds = None
    if auto is not None:
        thresholds = choose_thresholds(val.probas, val.labels, auto.target_accuracy, auto.confidence).to_dict()
    return accuracy, thresholds


def _insert_model(conn: Connection, project: Project, version: str, n_train: int, val: Validation, details: dict,
                  now: float) -> int:
    accuracy, thresholds = _figures(project, val)
    m = t.assist_models
    return conn.execute(insert(m).values(
        project_id=project.id, question=project.schema.assist_question().name, version=version, n_train=n_train,
        n_validation=len(val.labels) if val.probas is not None else 0, accuracy=accuracy,
        thresholds=dumps(thresholds) if thresholds else None, details=dumps(details), created_at=now)
        .returning(m.c.id)).scalar_one()


def _store_predictions(store: Store, project: Project, model_id: int, ids, probas: np.ndarray, now: float) -> int:
    classes = label_values(project.schema.assist_question())
    top = probas.argmax(axis=1)
    rows = [{"item_id": int(i), "project_id": project.id, "model_id": model_id, "label": dumps(classes[int(c)]),
             "confidence": float(probas[k, c]), "probas": dumps([round(float(v), 5) for v in probas[k]]),
             "created_at": now}
            for k, (i, c) in enumerate(zip(ids, top))]
    for start in range(0, len(rows), 5_000):
        with store.write() as conn:
            add = upsert(conn, t.predictions)
            conn.execute(add.on_conflict_do_update(index_elements=["item_id"], set_={
                name: add.excluded[name] for name in ("model_id", "label", "confidence", "probas", "created_at")}),
                rows[start:start + 5_000])
    return len(rows)


def _set_labels_at_train(conn: Connection, project: Project, n_labels: int, now: float) -> None:
    st = t.assist_state
    ensure_state(conn, project.id, now)
    conn.execute(update(st).where(st.c.project_id == project.id).values(labels_at_train=n_labels, updated_at=now))


def train_builtin(store: Store, project: Project, *, now: float | None = None, force: bool = False) -> dict | None:
    """Train the builtin model when due (``min_train`` labels, then every ``retrain_every`` new ones), store its
    predictions for every featurised item, and return ``{"model": row, "validation": Validation}``; None when
    not due or too few labels."""
    now = now or time.time()
    a = _assist(project)
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
        probas = _full_probas(_logistic().fit(xl, y), x, k)
    seconds = time.perf_counter() - started
    m, fz = t.assist_models, t.featurisers
    with store.read() as conn:
        n = conn.execute(select(func.count()).select_from(m).where(m.c.project_id == project.id)).scalar_one()
        fv = conn.execute(select(fz.c.version).where(fz.c.project_id == project.id)).scalar()
    version = f"builtin-{n + 1}"
    details = {"kind": "builtin", "features": fv,
               "classifier": f"logistic regression, mean of {len(models)} cross-fitted fold models" if models
               else "logistic regression (too few labels per class to cross-fit: no thresholds)",
               "train_seconds": round(seconds, 3), "classes": label_values(project.schema.assist_question())}
    with store.write() as conn:
        model_id = _insert_model(conn, project, version, len(y), val, details, now)
        _set_labels_at_train(conn, project, n_labels, now)
    _store_predictions(store, project, model_id, ids, probas, now)
    return {"model": latest_model(store, project), "validation": val, "labelled": everything}


def predict_external(store: Store, project: Project, predictor, *, now: float | None = None,
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
    i, pr, m = t.items, t.predictions, t.assist_models
    while True:
        scored = exists().select_from(pr.join(m, m.c.id == pr.c.model_id)).where(pr.c.item_id == i.c.id,
                                                                                   m.c.version == version)
        with store.read() as conn:
            rows = conn.execute(select(i.c.id, i.c.data).where(i.c.project_id == project.id, ~scored)
                                .order_by(i.c.id).limit(batch)).all()
        if not rows:
            break
        probas = predictor.predict_proba([{"id": r.id, "data": loads(r.data)} for r in rows], classes)
        version = predictor.version  # a model that changed version re-scores every item
        model_id = _external_model_id(store, project, version, now)
        predicted += _store_predictions(store, project, model_id, [r.id for r in rows], np.asarray(probas), now)
    state = get_state(store, project)
    lab_ids, y = people_labels(store, project)
    model = latest_model(store, project)
    if model is None or model["version"] != version:
        if model_id is None:
            return None
        model = latest_model(store, project)
    if model is None:  # the row _external_model_id wrote was deleted meanwhile (the project was deleted)
        return None
    if predicted == 0 and len(lab_ids) - state["labels_at_train"] < _assist(project).retrain_every \
            and model["n_validation"] > 0:
        return {"model": model, "validation": None, "predicted": 0}
    val = _holdout_only(store, project, _validation_of_predictions(store, project, model["id"], lab_ids, y,
                                                                   len(classes)))
    accuracy, thresholds = _figures(project, val)
    with store.write() as conn:
        conn.execute(update(m).where(m.c.id == model["id"]).values(
            n_validation=len(val.labels), accuracy=accuracy, thresholds=dumps(thresholds) if thresholds else None))
        _set_labels_at_train(conn, project, len(lab_ids), now)
    return {"model": latest_model(store, project), "validation": val, "predicted": predicted}


def _external_model_id(store: Store, project: Project, version: str, now: float) -> int:
    m = t.assist_models
    with store.write() as conn:
        found = conn.execute(select(m.c.id).where(m.c.project_id == project.id, m.c.version == version)
                             .order_by(m.c.id.desc()).limit(1)).scalar()
        if found is not None:
            return found
        return _insert_model(conn, project, version, 0, Validation(np.zeros(0), np.zeros(0), None),
                             {"kind": "external", "model": _assist(project).model,
                              "classes": label_values(project.schema.assist_question())}, now)


def _validation_of_predictions(store: Store, project: Project, model_id: int, lab_ids, y, k: int) -> Validation:
    pr = t.predictions
    with store.read() as conn:
        got = {r.item_id: loads(r.probas) for r in conn.execute(
            select(pr.c.item_id, pr.c.probas).where(pr.c.project_id == project.id, pr.c.model_id == model_id))}
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
    spec = _assist(project).model
    if spec == "builtin":
        return None
    if spec.startswith("python:") and not python_model_allowed(spec, python_models):
        raise ModelError(f"model {spec}: python: models must be allowed by the server's operator; start the "
                         "server with LABELWRIGHT_ASSIST_PYTHON_MODELS=<package> (comma-separated) to allow "
                         "modules under that package")
    return load_model(spec, question=project.schema.assist_question().name)


def prediction_for(store: Store, item_id: int) -> dict | None:
    """The stored prediction of one item: ``{label, confidence, model}``."""
    raw = store.lookup(lookups.PREDICTION_OF, {"i": item_id})
    if raw is None:
        return None
    row = PredictionRow._make(raw)
    return {"label": loads(row.label), "confidence": round(float(row.confidence), 4), "model": row.version}


# ---- the queue's order ---------------------------------------------------------------------------


def rank(store: Store, project: Project, *, now: float | None = None, seed: int = 0) -> int:
    """Write ``queue_rank`` for the project's open ordinary items: most uncertain first (the first batch
    spread out by k-center diversity); before any model, a random order (the cold start). Returns how many."""
    now = now or time.time()
    i, f, pr, st = t.items, t.item_features, t.predictions, t.assist_state
    with store.read() as conn:
        open_ids = np.array(conn.execute(
            select(i.c.id).where(i.c.project_id == project.id, i.c.is_open == 1, i.c.is_gold == 0,
                                 ~exists().where(f.c.item_id == i.c.id, f.c.holdout == 1))
            .order_by(i.c.id)).scalars().all(), dtype=np.int64)
        preds = {r.item_id: loads(r.probas) for r in conn.execute(
            select(pr.c.item_id, pr.c.probas).where(pr.c.project_id == project.id))}
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
    rows = [{"item": int(k), "rank": int(v)} for k, v in zip(open_ids, ranks)]
    for start in range(0, len(rows), 5_000):
        with store.write() as conn:
            conn.execute(_SET_RANK, rows[start:start + 5_000])
    with store.write() as conn:
        ensure_state(conn, project.id, now)
        conn.execute(update(st).where(st.c.project_id == project.id).values(ranked_at=now))
    return len(rows)


# ---- one step ------------------------------------------------------------------------------------


def step(store: Store, project: Project, *, now: float | None = None, predictor=None, force_train: bool = False,
         media_root=None, python_models: tuple[str, ...] | list[str] = ()) -> StepReport:
    """Do the assistant's due work for one project (see the module docstring). Model failures are reported
    in ``error``, not raised. ``media_root``: where image fields' files are (the server's ``--media-root``);
    ``python_models``: the packages ``python:`` models may come from (:func:`load_predictor`)."""
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
    if a.label_errors and trained is not None and labelled is not None:
        report.label_errors = checks.add_label_errors(store, project, trained["model"], labelled,
                                                      now=now, limit=LABEL_ERRORS_PER_TRAIN)
    return report
