"""labelwright.assist: auto-labelling thresholds, the audit, and confident learning, on the YouTube spam set."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from labelwright.assist import (
    audit,
    audit_sample,
    choose_thresholds,
    clopper_pearson_lower,
    clopper_pearson_upper,
    find_label_issues,
    out_of_sample_probas,
)
from labelwright.quality import QualityInputError
from tests.conftest import SHARED

YOUTUBE = SHARED / "youtube_spam" / "items.csv"
needs_data = pytest.mark.skipif(not YOUTUBE.exists(), reason=f"shared dataset missing: {YOUTUBE}")


@lru_cache(maxsize=1)
def youtube():
    """TF-IDF features and labels (0 = ham, 1 = spam) of the 1,956 UCI YouTube comments."""
    df = pd.read_csv(YOUTUBE)
    X = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit_transform(df["text"])
    return X, df["label"].to_numpy()


@lru_cache(maxsize=1)
def split_probas():
    """A model trained on 800 comments; probabilities on a 600-comment validation part and the 556 left."""
    X, y = youtube()
    order = np.random.default_rng(0).permutation(len(y))
    train, val, test = order[:800], order[800:1400], order[1400:]
    model = LogisticRegression(C=10, max_iter=1000).fit(X[train], y[train])
    return model.predict_proba(X[val]), y[val], model.predict_proba(X[test]), y[test]


# --- the bound ---------------------------------------------------------------------------------------------------

def test_twenty_out_of_twenty_does_not_pass_095():
    # The one-sided 95% Clopper-Pearson lower bound of 20/20 is 0.05 ** (1/20) = 0.861: twenty right answers
    # are not evidence of 95% accuracy. 59/59 is the fewest that clears 0.95 (0.05 ** (1/59) = 0.9505).
    assert clopper_pearson_lower(20, 20, 0.95) == pytest.approx(0.05 ** (1 / 20))
    assert clopper_pearson_lower(20, 20, 0.95) == pytest.approx(0.861, abs=1e-3)
    assert clopper_pearson_lower(58, 58, 0.95) < 0.95 < clopper_pearson_lower(59, 59, 0.95)
    probas = np.tile([[0.02, 0.98]], (20, 1))
    th = choose_thresholds(probas, np.ones(20, dtype=int), target_accuracy=0.95)
    assert th.thresholds == (None, None)
    assert (th.apply(probas) == -1).all()


def test_bounds_bracket_the_estimate():
    assert clopper_pearson_lower(0, 10, 0.95) == 0.0 and clopper_pearson_upper(10, 10, 0.95) == 1.0
    assert clopper_pearson_lower(41, 50, 0.95) < 41 / 50 < clopper_pearson_upper(41, 50, 0.95)


def test_synthetic_thresholds_stop_at_the_first_failure():
    # 200 items predicted class 0, sorted by score: the top 150 right, then 50 with every other one wrong.
    score = np.linspace(0.99, 0.6, 200)
    labels = np.zeros(200, dtype=int)
    labels[150::2] = 1
    probas = np.c_[score, 1 - score]
    th = choose_thresholds(probas, labels, target_accuracy=0.95, confidence=0.95)
    t = th.thresholds[0]
    assert t is not None and score[149] >= t > score[199]
    assert th.lower_bound[0] >= 0.95 and th.correct[0] / th.support[0] >= 0.95
    assert th.thresholds[1] is None                  # nothing is predicted class 1
    assert "Clopper-Pearson" in th.method and "Bonferroni over 2 classes" in th.method
    assert th.per_class_confidence == pytest.approx(0.975)
    assert th.to_dict()["thresholds"][0] == t


def test_bad_input_is_refused():
    with pytest.raises(QualityInputError, match="class indices"):
        choose_thresholds(np.full((3, 2), 0.5), np.array([0, 1, 2]), 0.9)
    with pytest.raises(QualityInputError, match="between 0 and 1"):
        choose_thresholds(np.full((3, 2), 0.5), np.array([0, 1, 1]), 1.0)


# --- thresholds on real data -------------------------------------------------------------------------------------

@needs_data
def test_thresholds_meet_the_target_on_held_out_comments():
    val_p, val_y, test_p, test_y = split_probas()
    th = choose_thresholds(val_p, val_y, target_accuracy=0.95, confidence=0.95)
    assert all(t is not None for t in th.thresholds)
    assert all(lb >= 0.95 for lb in th.lower_bound)
    auto = th.apply(test_p)
    labelled = auto >= 0
    share, accuracy = labelled.mean(), (auto[labelled] == test_y[labelled]).mean()
    print(f"\nyoutube_spam target 0.95: thresholds {th.thresholds}, auto-labelled {labelled.sum()}/{len(auto)} "
          f"= {share:.1%}, held-out accuracy {accuracy:.3f} (all items: {(test_p.argmax(1) == test_y).mean():.3f})")
    assert accuracy >= 0.95
    assert share >= 0.6


@needs_data
def test_a_class_that_cannot_meet_the_target_gets_none():
    val_p, val_y, _, _ = split_probas()
    strict = choose_thresholds(val_p, val_y, target_accuracy=0.99)
    assert None in strict.thresholds
    none = strict.thresholds.index(None)
    assert strict.lower_bound[none] < 0.99
    few = choose_thresholds(val_p[:50], val_y[:50], target_accuracy=0.95)   # 50 items cannot show 95%
    assert few.thresholds == (None, None)


# --- the audit ---------------------------------------------------------------------------------------------------

def test_audit_fails_when_the_upper_bound_misses_the_target():
    result = audit([1] * 50, [1] * 41 + [0] * 9, target_accuracy=0.95)
    assert not result.passed
    assert result.upper_bound == pytest.approx(0.9028, abs=1e-4)
    assert result.reason == ("audited accuracy 41/50 = 82% (upper 95% bound 90.3%) is below the 95% target: "
                             "auto-labelling stops")


def test_audit_passes_when_the_sample_is_consistent_or_too_small_to_tell():
    assert audit(["spam"] * 50, ["spam"] * 48 + ["ham"] * 2, 0.95).passed
    small = audit([0] * 5, [0, 0, 0, 0, 1], 0.95)    # 4/5: bad, but five items cannot contradict 95%
    assert small.passed and "consistent" in small.reason
    assert audit([], [], 0.95).passed
    with pytest.raises(QualityInputError):
        audit([1, 2], [1], 0.95)


def test_audit_sample_is_reproducible_and_leaves_the_global_seed_alone():
    ids = [f"item-{i}" for i in range(1000)]
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    first = audit_sample(ids, rate=0.05, seed=7)
    assert np.random.random() == before
    assert first == audit_sample(ids, rate=0.05, seed=7) != audit_sample(ids, rate=0.05, seed=8)
    assert len(first) == 50 and len(set(first)) == 50 and first == sorted(first, key=ids.index)
    assert audit_sample(ids, rate=0.0, seed=1) == []


# --- label errors ------------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def flipped_youtube():
    X, y = youtube()
    flip = np.random.default_rng(5).random(len(y)) < 0.05
    noisy = np.where(flip, 1 - y, y)
    return noisy, flip, out_of_sample_probas(X, noisy, n_splits=5, seed=0)


@needs_data
@pytest.mark.parametrize("method", ["prune_by_noise_rate", "confident_learning"])
def test_confident_learning_finds_flipped_labels(method):
    noisy, flip, probas = flipped_youtube()
    issues = find_label_issues(noisy, probas, class_names=["ham", "spam"], method=method)
    flagged = np.zeros(len(noisy), dtype=bool)
    flagged[issues["index"]] = True
    precision, recall = (flagged & flip).sum() / flagged.sum(), (flagged & flip).sum() / flip.sum()
    print(f"\n{method}: {flip.sum()} flipped of {len(noisy)}, {flagged.sum()} flagged, "
          f"precision {precision:.2f}, recall {recall:.2f}")
    assert precision > 0.5                            # ten times the 5% flip rate
    assert recall > 0.5
    assert issues["self_confidence"].is_monotonic_increasing
    top = issues.iloc[0]
    assert top["reason"] == (f"given {top['given']!r}, the model says {top['suggested']!r} with "
                             f"{top['suggested_proba']:.2f}; the class {top['given']!r} usually scores "
                             f"{top['class_threshold']:.2f}")


@needs_data
def test_matches_cleanlab():
    """The same items as cleanlab 2.x (a test dependency only: labelwright does not need it at run time)."""
    from cleanlab.filter import find_label_issues as cleanlab_find  # noqa: PLC0415 - test-only peer, slow to import

    noisy, _, probas = flipped_youtube()
    ours = set(find_label_issues(noisy, probas)["index"])
    theirs = set(np.flatnonzero(cleanlab_find(noisy, probas, filter_by="prune_by_noise_rate")))
    assert len(ours ^ theirs) <= 0.05 * max(len(ours), 1)
