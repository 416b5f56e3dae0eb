"""Bradley-Terry (with Davidson ties), the noisy variant, bootstrap intervals; PandaLM scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelwright.quality import BradleyTerry, NoisyBradleyTerry, QualityInputError, bootstrap_scores
from tests.conftest import SHARED


def votes(rows):
    return pd.DataFrame(rows, columns=["worker", "left", "right", "label"])


def test_two_candidates_match_the_closed_form():
    # a beats b 3 times out of 4: the maximum-likelihood log-odds is log 3 (reg=0 for the closed form)
    df = votes([("w", "a", "b", "a")] * 3 + [("w", "a", "b", "b")])
    bt = BradleyTerry(reg=0.0).fit(df)
    assert bt.scores_["a"] - bt.scores_["b"] == pytest.approx(np.log(3), abs=1e-6)
    assert bt.scores_.sum() == pytest.approx(0.0)
    p = bt.predict_proba(pd.DataFrame({"left": ["a"], "right": ["b"]}))
    assert p.loc[0, "p_left"] == pytest.approx(0.75, abs=1e-6)
    assert p.loc[0, "p_tie"] == 0.0
    assert bt.fit_predict(df).idxmax() == "a"


def test_davidson_ties_closed_form():
    # a-b only: 2 wins for a, 1 for b, 1 tie. Davidson MLE: pi_a/pi_b = 2, nu = 2 * 1 / sqrt(2 * 1) * ... check
    df = votes([("w", "a", "b", "a"), ("w", "a", "b", "a"), ("w", "b", "a", "b"), ("w", "a", "b", "tie")])
    bt = BradleyTerry(reg=0.0).fit(df)
    p = bt.predict_proba(pd.DataFrame({"left": ["a"], "right": ["b"]})).iloc[0]
    # with one pair the fit reproduces the observed shares exactly
    assert (p.p_left, p.p_right, p.p_tie) == pytest.approx((0.5, 0.25, 0.25), abs=1e-6)
    assert set(bt.probas_.columns) == {"left", "right", "p_left", "p_right", "p_tie"}


def test_tie_modes():
    df = votes([("w", "a", "b", "a"), ("w", "a", "b", "tie"), ("w", "b", "c", "b"), ("w", "a", "c", None)])
    half = BradleyTerry(ties="half").fit(df)
    ignore = BradleyTerry(ties="ignore").fit(df)
    davidson = BradleyTerry().fit(df)
    assert half.tie_rate_ == 0.0 and ignore.tie_rate_ == 0.0 and davidson.tie_rate_ > 0
    assert list(half.scores_.sort_values().index) == ["c", "b", "a"]
    # ignoring the a-b tie leaves a with a clean win over b, so a's lead grows
    assert ignore.scores_["a"] - ignore.scores_["b"] > half.scores_["a"] - half.scores_["b"]


def test_undefeated_candidate_stays_finite():
    df = votes([("w", "a", "b", "a")] * 5)
    scores = BradleyTerry().fit(df).scores_
    assert np.isfinite(scores).all() and scores["a"] > scores["b"]


def test_bad_input_is_explained():
    with pytest.raises(QualityInputError, match="neither its left"):
        BradleyTerry().fit(votes([("w", "a", "b", "c")]))
    with pytest.raises(QualityInputError, match="with itself"):
        BradleyTerry().fit(votes([("w", "a", "a", "a")]))
    with pytest.raises(QualityInputError, match="empty"):
        BradleyTerry().fit(votes([]))
    with pytest.raises(QualityInputError, match="no column 'label'"):
        BradleyTerry().fit(pd.DataFrame({"worker": ["w"], "left": ["a"], "right": ["b"]}))
    with pytest.raises(QualityInputError, match="not in the fitted data"):
        BradleyTerry().fit(votes([("w", "a", "b", "a")])).predict_proba(pd.DataFrame({"left": ["a"], "right": ["z"]}))


def synthetic(seed=0, n_items=20, n_votes=3000):
    rng = np.random.default_rng(seed)
    true = pd.Series(np.linspace(-2, 2, n_items), index=[f"c{i:02d}" for i in range(n_items)])
    i, j = rng.integers(0, n_items, n_votes), rng.integers(0, n_items, n_votes)
    keep = i != j
    i, j = i[keep], j[keep]
    worker = rng.integers(0, 10, len(i))
    p_left = 1 / (1 + np.exp(-(true.to_numpy()[i] - true.to_numpy()[j])))
    p_left = np.where(worker < 3, 0.5, p_left)  # workers 0-2 click at random
    left_wins = rng.random(len(i)) < p_left
    df = pd.DataFrame({"worker": [f"w{w}" for w in worker], "left": true.index[i], "right": true.index[j]})
    df["label"] = np.where(left_wins, df["left"], df["right"])
    return df, true


def test_noisy_bradley_terry_finds_random_clickers_and_the_order():
    df, true = synthetic()
    noisy = NoisyBradleyTerry().fit(df)
    assert noisy.skills_[["w0", "w1", "w2"]].max() < noisy.skills_.drop(["w0", "w1", "w2"]).min()
    rho = np.corrcoef(true.rank(), noisy.scores_.reindex(true.index).rank())[0, 1]
    assert rho > 0.95
    plain = BradleyTerry().fit(df)
    # random clicks shrink plain BT's scores toward 0; the noisy model undoes most of that
    assert np.ptp(noisy.scores_) > np.ptp(plain.scores_)
    assert list(noisy.biases_.columns) == ["left", "right", "tie"]


def test_bootstrap_intervals_cover_the_estimate_and_are_seeded():
    df, _ = synthetic(n_items=5, n_votes=400)
    a = bootstrap_scores(BradleyTerry(), df, n_boot=20, random_state=1)
    b = bootstrap_scores(BradleyTerry(), df, n_boot=20, random_state=1)
    pd.testing.assert_frame_equal(a, b)
    assert ((a["low"] <= a["score"]) & (a["score"] <= a["high"])).all()


def test_pandalm_model_scores():
    path = SHARED / "pandalm_pairwise" / "pairs.csv"
    if not path.exists():
        pytest.skip(f"shared datasets not found at {SHARED} (CI puts a copy of shared/ beside the repo)")
    pairs = pd.read_csv(path, dtype=str)
    info = pd.read_csv(SHARED / "pandalm_pairwise" / "pair_info.csv", dtype=str).set_index("pair")
    left, right = pairs["pair"].map(info["left_model"]), pairs["pair"].map(info["right_model"])
    df = pd.DataFrame({"worker": pairs["worker"], "left": left, "right": right,
                       "label": np.where(pairs["label"] == "1", left, np.where(pairs["label"] == "2", right, "tie"))})
    strengths = np.exp(BradleyTerry(ties="ignore", reg=0.0).fit(df).scores_)
    # SOURCE.md: model-level Bradley-Terry on all non-tie votes, geometric mean 1
    expected = {"llama-7b": 2.17, "pythia-6.9b": 1.11, "bloom-7b": 0.99, "opt-7b": 0.78, "cerebras-gpt-6.7B": 0.54}
    assert strengths.round(2).to_dict() == expected
    davidson = BradleyTerry().fit(df)
    assert list(davidson.scores_.sort_values(ascending=False).index) == list(expected)
