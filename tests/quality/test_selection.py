"""AutoSelect: the method chosen per question from held-out answers, its reason, and tempered confidence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelwright.quality import QualityInputError, aggregate, expected_calibration_error
from labelwright.quality.selection import AutoSelect, select_proba
from tests.conftest import SHARED
from tests.quality.test_quality_categorical import shared_slice


def homogeneous(seed: int, n_tasks: int = 30, n_workers: int = 5, per_task: int = 3, k: int = 3,
                accuracy: float = 0.75) -> pd.DataFrame:
    """A small project: every worker right with the same probability, wrong answers spread evenly."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_tasks)
    rows = []
    for t in range(n_tasks):
        for w in rng.choice(n_workers, per_task, replace=False):
            label = truth[t] if rng.random() < accuracy else (truth[t] + rng.integers(1, k)) % k
            rows.append((f"t{t}", f"w{w}", f"c{label}"))
    return pd.DataFrame(rows, columns=["task", "worker", "label"])


def top_share(df: pd.DataFrame) -> pd.Series:
    return df.groupby("task")["label"].agg(lambda s: s.value_counts().iloc[0])


def ann_bob_cat() -> pd.DataFrame:
    """The consensus pages' small project: ann flawless, bob wrong once, cat wrong on every fifth item."""
    rows = []
    for i in range(1, 30):
        truth, wrong = ("spam", "ham") if i % 2 else ("ham", "spam")
        for name in ("ann", "bob", "cat"):
            label = wrong if (name == "cat" and i % 5 == 0) or (name == "bob" and i == 7) else truth
            rows.append((i, name, label))
    rows += [(30, "ann", "spam"), (30, "bob", "ham")]
    return pd.DataFrame(rows, columns=["task", "worker", "label"])


def test_fitted_surface_and_reason_on_a_real_slice():
    df, truth = shared_slice("zheng_s_dog", 150)
    model = AutoSelect().fit(df)
    assert model.chosen_ in model.scores_.index
    assert list(model.scores_.columns) == ["loglik", "temperature", "z", "answers", "gold", "majority"]
    assert model.scores_["answers"].iloc[0] == 300  # one hidden answer per task, two folds
    assert model.scores_.loc["default", "z"] == 0.0
    assert model.chosen_ in model.reason_ or "default" in model.reason_
    assert "held-out answers" in model.reason_
    assert model.probas_.attrs == {"method": model.method_, "reason": model.reason_}
    assert model.method_.startswith("AutoSelect: ")
    np.testing.assert_allclose(model.probas_.sum(axis=1), 1.0)
    # as accurate as the default on this slice (127 of 150, tests/quality/test_quality_aggregate.py)
    assert int((model.labels_.reindex(truth.index) == truth).sum()) >= 127


def test_picks_the_model_that_explains_held_out_answers():
    """A third of the crowd are spammers who always answer c0: majority vote is fooled on some tasks, the
    worker models are not, and the held-out answers say so. (With half the crowd spamming, most clear
    majorities would be wrong and every method that overturns them would be refused: see the docs.)"""
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, 600)
    rows = []
    for t in range(600):
        for w in rng.choice(12, 5, replace=False):
            spam = w < 4
            label = 0 if spam else (truth[t] if rng.random() < 0.85 else (truth[t] + 1) % 3)
            rows.append((t, f"w{w}", f"c{label}"))
    df = pd.DataFrame(rows, columns=["task", "worker", "label"])
    model = AutoSelect(candidates=("default", "MajorityVote", "MACE")).fit(df)
    table = model.scores_
    assert table.loc["MajorityVote", "loglik"] < table.loc["default", "loglik"]
    assert model.chosen_ != "MajorityVote"
    right = pd.Series([f"c{x}" for x in truth], index=range(600))
    assert (model.labels_.reindex(right.index) == right).mean() > 0.9


def test_a_method_that_collapses_onto_one_label_is_not_chosen():
    """YouTube spam by WRENCH's labelling functions (each votes one class, abstentions dropped): Dawid-Skene,
    and so the default, put every comment in one class, which held-out answers cannot see (the confusion
    matrices follow the posterior); the check against clear majorities does."""
    wrench = SHARED / "youtube_spam" / "wrench"
    if not (wrench / "labels_train.csv").exists():
        pytest.skip(f"shared datasets not found at {SHARED}")
    df = pd.read_csv(wrench / "labels_train.csv", dtype=str).rename(columns={"item": "task"})
    truth = pd.read_csv(wrench / "truth_train.csv", dtype=str).set_index("item")["label"]
    truth = truth[truth.index.isin(set(df["task"]))]
    model = AutoSelect().fit(df)
    assert model.scores_.loc["default", "majority"] < 0.6
    assert model.chosen_ != "default" and "swapped or collapsed" in model.reason_
    assert (model.labels_.reindex(truth.index) == truth).mean() > 0.85


def test_small_projects_keep_the_default_and_never_need_truth():
    df = homogeneous(0)
    model = AutoSelect().fit(df)
    assert model.chosen_ == "default"  # 60 held-out answers cannot overturn the incumbent
    assert "60 held-out answers are too few to choose another (at least 200 needed)" in model.reason_
    # with the floor lowered, the z test alone keeps it
    assert "significantly" in AutoSelect(min_observations=0).fit(df).reason_
    shuffled = AutoSelect().fit(df.sample(frac=1.0, random_state=1))
    assert shuffled.chosen_ == model.chosen_  # row order does not matter
    pd.testing.assert_frame_equal(shuffled.probas_, model.probas_)


def test_two_to_one_splits_in_a_30x3_project_stay_well_below_one():
    for seed in range(4):
        df = homogeneous(seed)
        conf = AutoSelect().fit(df).probas_.max(axis=1)
        shares = top_share(df)
        split = conf[shares[shares == 2].index]
        # equal workers right 75% of the time over 3 classes: a 2-1 split is right with probability 0.84
        assert split.mean() < 0.9, (seed, split.describe())
        assert split.max() < 0.95, (seed, split.max())
    df = ann_bob_cat()
    conf = AutoSelect().fit(df).probas_.max(axis=1)
    split = conf.loc[[5, 7, 10, 15, 20, 25]]
    unanimous = conf.loc[[1, 2, 3, 4, 6]]
    assert split.between(0.5, 0.99).all(), split
    assert (unanimous < 0.9995).all() and unanimous.min() > split.max()


def test_a_small_project_with_unequal_annotators_keeps_the_default():
    """30 items x 3 answers from a 99%, a 90% and a 60% annotator: one-coin Dawid-Skene predicts the 60
    held-out answers better by z = 7 and, chosen, scores every 2-1 split 1.00000. Below 200 held-out
    observations the default is kept (its 2-1 splits: 0.9986, about what these skills imply)."""
    for seed in range(8):
        for skills in ((0.99, 0.9, 0.6), (0.95, 0.95, 0.7)):
            rng = np.random.default_rng(seed)
            truth = rng.integers(0, 2, 30)
            rows = [(t, f"w{w}", f"c{truth[t] if rng.random() < a else 1 - truth[t]}")
                    for t in range(30) for w, a in enumerate(skills)]
            df = pd.DataFrame(rows, columns=["task", "worker", "label"])
            model = AutoSelect().fit(df)
            assert model.chosen_ == "default", (seed, skills, model.reason_)
            assert "60 held-out answers are too few to choose another" in model.reason_
            shares = top_share(df)
            split = model.probas_.max(axis=1)[shares[shares == 2].index]
            assert (split < 0.999).all(), (seed, skills, split.max())


def test_calibration_on_real_slices_is_no_worse_than_the_default():
    for folder, bound in (("zheng_d_sentiment", 0.05), ("zheng_s_dog", 0.12)):
        df, truth = shared_slice(folder, 150)
        probas = select_proba(df).reindex(truth.index)
        hit = (probas.idxmax(axis=1) == truth).to_numpy()
        ece = expected_calibration_error(probas.max(axis=1), hit)
        default = aggregate(df).reindex(truth.index)
        ece_default = expected_calibration_error(default["confidence"], (default["label"] == truth).to_numpy())
        assert ece < bound and ece <= ece_default + 0.005, (folder, ece, ece_default)


def test_gold_joins_the_comparison_and_sets_the_temperature():
    df, truth = shared_slice("zheng_s_dog", 150)
    gold = truth.iloc[::3]
    model = AutoSelect().fit(df, gold)
    assert (model.scores_["gold"] == len(gold)).all()
    assert "gold" in model.reason_ and "from gold" in model.method_
    assert (model.labels_.reindex(gold.index) == gold).all()
    assert (model.probas_.max(axis=1).reindex(gold.index) == 1.0).all()
    rest = truth.drop(gold.index)
    hit = (model.labels_.reindex(rest.index) == rest).to_numpy()
    assert expected_calibration_error(model.probas_.max(axis=1).reindex(rest.index), hit) < 0.06
    few = AutoSelect().fit(df, truth.iloc[:3])  # too few gold tasks to compare or calibrate on
    assert (few.scores_["gold"] == 0).all() and "gold" not in few.method_


def test_edge_cases_and_errors():
    one_answer = pd.DataFrame({"task": [1, 2, 3], "worker": ["a", "b", "a"], "label": ["x", "y", "x"]})
    model = AutoSelect().fit(one_answer)
    assert model.chosen_ == "default" and "no task has two answers" in model.reason_
    single = pd.DataFrame({"task": [1, 1, 2], "worker": ["a", "b", "a"], "label": ["x", "x", "x"]})
    assert AutoSelect().fit(single).labels_.tolist() == ["x", "x"]
    with pytest.raises(QualityInputError, match="must include 'default'"):
        AutoSelect(candidates=("MACE",)).fit(homogeneous(0))
    with pytest.raises(QualityInputError, match="must include 'default'"):
        AutoSelect(candidates=("default", "Oracle")).fit(homogeneous(0))
    with pytest.raises(QualityInputError, match="no column"):
        AutoSelect().fit(pd.DataFrame({"task": [1]}))
    assert repr(AutoSelect(min_z=3.0)).startswith("AutoSelect(candidates=(")
