"""Adaptive redundancy: the policy, the per-item posterior, the sparse-data skill fit, and the replay."""

import numpy as np
import pandas as pd
import pytest

from labelwright.quality.adaptive import AdaptivePolicy, fit_skills, fixed_majority, item_posterior, replay


def test_policy_bounds():
    p = AdaptivePolicy(2, 7, 0.95)
    assert p.needs_more(1, 0.999)          # below the minimum
    assert not p.needs_more(2, 0.96)       # confident enough
    assert p.needs_more(3, 0.94)           # in doubt
    assert not p.needs_more(7, 0.5)        # at the maximum
    with pytest.raises(ValueError):
        AdaptivePolicy(3, 2)
    with pytest.raises(ValueError):
        AdaptivePolicy(2, 5, 1.0)


def test_item_posterior_by_hand():
    # two workers of skill 0.8 agree on a binary item: 0.8^2 / (0.8^2 + 0.2^2) = 0.9412
    p = item_posterior(["x", "x"], ["a", "b"], ["x", "y"], {"a": 0.8, "b": 0.8})
    assert p == pytest.approx([0.64 / 0.68, 0.04 / 0.68])
    # a worker worse than chance counts against the label they give
    p = item_posterior(["x"], ["bad"], ["x", "y"], {"bad": 0.2})
    assert p[0] == pytest.approx(0.2)
    # three classes: wrong answers spread over the other two; unknown workers get the mean skill
    p = item_posterior(["x", "y"], ["a", "new"], ["x", "y", "z"], {"a": 0.9, "b": 0.5})
    expected = np.array([0.9 * 0.15, 0.05 * 0.7, 0.05 * 0.15])
    assert p == pytest.approx(expected / expected.sum())


def test_fit_skills_on_sparse_data_does_not_collapse():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, 400)
    skill = np.where(np.arange(20) < 15, 0.85, 0.55)
    rows = []
    for t in range(400):
        for w in rng.choice(20, 2, replace=False):   # only two answers per item
            right = rng.random() < skill[w]
            rows.append((t, w, truth[t] if right else 1 - truth[t]))
    df = pd.DataFrame(rows, columns=["task", "worker", "label"])
    skills, priors, probas = fit_skills(df)
    labels = probas.idxmax(axis=1).sort_index()
    assert (labels.to_numpy() == truth).mean() > 0.8
    assert np.mean([skills[w] for w in range(15)]) > np.mean([skills[w] for w in range(15, 20)]) + 0.1
    assert abs(priors[0] - 0.5) < 0.1


def test_replay_asks_more_only_where_items_are_in_doubt():
    rng = np.random.default_rng(2)
    rows, truth = [], {}
    for t in range(300):
        truth[t] = int(rng.integers(0, 2))
        hard = t % 3 == 0
        for w in range(9):
            right = rng.random() < (0.6 if hard else 0.95)
            rows.append((t, f"w{w}", truth[t] if right else 1 - truth[t]))
    df = pd.DataFrame(rows, columns=["task", "worker", "label"])
    truth = pd.Series(truth)
    res = replay(df, truth, AdaptivePolicy(2, 7, 0.95), seed=0)
    base = fixed_majority(df, truth, 5, seed=0)
    assert base.answers_used == 1500
    assert res.answers_used < 0.8 * base.answers_used
    assert res.accuracy >= base.accuracy - 0.02
    assert 600 <= res.answers_used <= 300 * 7
