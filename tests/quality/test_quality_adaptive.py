"""Adaptive redundancy: the policy, the per-item posterior, the sparse-data skill fit, and the replay."""

import pickle
import time

import numpy as np
import pandas as pd
import pytest

from labelwright.quality.adaptive import (
    AdaptivePolicy,
    BudgetPolicy,
    ConfidenceTuning,
    WorkerSkill,
    fit_skills,
    fixed_majority,
    item_posterior,
    replay,
    replay_budget,
    replay_tuned,
    tune_confidence,
    weak_annotators,
    weaker_half,
    wilson_lower,
)
from tests.conftest import SHARED


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


def test_fit_skills_gold_anchors_the_fit_by_hand():
    # task g: a says x, b says y, and gold says y; task t: both say x. One EM round, one-coin model:
    # the gold task's posterior is fixed to y, so b is right twice and a once:
    #   s_a = (1 + 4 * 0.7) / (2 + 4) = 0.6333, s_b = (2 + 2.8) / 6 = 0.8, priors = 0.5 each,
    #   P(t = x) = s_a s_b / (s_a s_b + (1 - s_a)(1 - s_b)).
    df = pd.DataFrame({"task": ["g", "g", "t", "t"], "worker": ["a", "b", "a", "b"], "label": ["x", "y", "x", "x"]})
    skills, priors, probas = fit_skills(df, model="one_coin", n_iter=1, gold=pd.Series({"g": "y"}))
    assert skills["a"] == pytest.approx(3.8 / 6)
    assert skills["b"] == pytest.approx(0.8)
    assert priors == pytest.approx({"x": 0.5, "y": 0.5})
    assert probas.loc["g"].tolist() == [0.0, 1.0]
    sa, sb = 3.8 / 6, 0.8
    assert probas.loc["t", "x"] == pytest.approx(sa * sb / (sa * sb + (1 - sa) * (1 - sb)))
    # without gold, g is a coin flip in the first round: a and b are right 1.5 times each
    skills, _, probas = fit_skills(df, model="one_coin", n_iter=1)
    assert skills["a"] == pytest.approx(skills["b"]) and skills["a"] == pytest.approx(4.3 / 6)
    # gold stays fixed however long EM runs, also in the default confusion model; a gold label no worker
    # gave becomes a class; gold on tasks without answers is ignored
    skills, priors, probas = fit_skills(df, gold=pd.Series({"g": "z", "nowhere": "x"}))
    assert list(probas.columns) == ["x", "y", "z"] and set(priors) == {"x", "y", "z"}
    assert probas.loc["g"].tolist() == [0.0, 0.0, 1.0]
    assert "nowhere" not in probas.index


def test_gold_pulls_a_worker_confusion_towards_what_gold_shows():
    # worker "yes" answers 1 on every item, half of them gold 0; others answer the truth
    rows, gold = [], {}
    for t in range(40):
        truth = t % 2
        rows += [(t, "yes", 1), (t, "good1", truth), (t, "good2", truth)]
        gold[t] = truth
    df = pd.DataFrame(rows, columns=["task", "worker", "label"])
    skills, _, _ = fit_skills(df, gold=pd.Series(gold))
    m = skills["yes"].matrix  # rows: true 0, 1; columns: answered 0, 1
    assert m[0, 1] > 0.85 and m[1, 1] > 0.85       # says 1 whatever the truth
    assert float(skills["yes"]) < 0.6 < float(skills["good1"])
    # so a "1" from them is no evidence; a "0" from a good worker decides
    p = item_posterior([1, 0], ["yes", "good1"], [0, 1], skills)
    assert p[0] > 0.9


def test_item_posterior_with_confusion_matrices_by_hand():
    w = WorkerSkill(0.65, ["x", "y"], np.array([[0.9, 0.1], [0.6, 0.4]]))
    assert float(w) == 0.65
    # P(k | "x") ∝ column x = [0.9, 0.6]; P(k | "y") ∝ [0.1, 0.4]
    assert item_posterior(["x"], ["w"], ["x", "y"], {"w": w}) == pytest.approx([0.6, 0.4])
    assert item_posterior(["y"], ["w"], ["x", "y"], {"w": w}) == pytest.approx([0.2, 0.8])
    # classes in another order, and a prior
    p = item_posterior(["y"], ["w"], ["y", "x"], {"w": w}, priors={"x": 0.8, "y": 0.2})
    assert p == pytest.approx(np.array([0.4 * 0.2, 0.1 * 0.8]) / 0.16)
    # a class the matrix does not know falls back to one-coin at the worker's accuracy
    p = item_posterior(["x"], ["w"], ["x", "y", "z"], {"w": w})
    expected = np.array([0.9, 0.6, 0.35 / 2])
    assert p == pytest.approx(expected / expected.sum())
    # unknown workers get the fit's pooled skill, and with no skills at all one-coin 0.7
    pop = WorkerSkill(0.5, ["x", "y"], np.array([[0.5, 0.5], [0.5, 0.5]]))
    w2 = WorkerSkill(0.65, ["x", "y"], w.matrix, population=pop)
    assert item_posterior(["x"], ["new"], ["x", "y"], {"w": w2}) == pytest.approx([0.5, 0.5])
    assert item_posterior(["x"], ["new"], ["x", "y"], {}) == pytest.approx([0.7, 0.3])
    # mixed float and matrix skills
    p = item_posterior(["x", "x"], ["w", "f"], ["x", "y"], {"w": w, "f": 0.8})
    assert p == pytest.approx(np.array([0.9 * 0.8, 0.6 * 0.2]) / 0.84)


def test_item_posterior_is_fast_with_fitted_skills():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"task": rng.integers(0, 300, 2000), "worker": rng.integers(0, 50, 2000),
                       "label": rng.integers(0, 4, 2000)})
    skills, priors, _ = fit_skills(df)
    assert pickle.loads(pickle.dumps(skills))[0].matrix == pytest.approx(skills[0].matrix)
    workers, labels = [0, 1, 2, 3, 4, 5, 999], [0, 1, 1, 2, 1, 1, 3]
    item_posterior(labels, workers, [0, 1, 2, 3], skills, priors)
    t0 = time.perf_counter()
    for _ in range(200):
        p = item_posterior(labels, workers, [0, 1, 2, 3], skills, priors)
    assert (time.perf_counter() - t0) / 200 < 1e-3
    assert p.sum() == pytest.approx(1.0) and p.argmax() == 1


def test_confusion_model_beats_one_coin_on_biased_workers():
    # five good workers (0.8 both ways) and five yes-sayers (always 1 on positives, 1 on 70% of negatives)
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 2, 300)
    rows = []
    for t in range(300):
        for w in range(10):
            if w < 5:
                label = truth[t] if rng.random() < 0.8 else 1 - truth[t]
            else:
                label = 1 if truth[t] == 1 or rng.random() < 0.7 else 0
            rows.append((t, w, label))
    df = pd.DataFrame(rows, columns=["task", "worker", "label"])
    acc = {}
    for model in ("one_coin", "confusion"):
        _, _, probas = fit_skills(df, model=model)
        acc[model] = (probas.idxmax(axis=1).sort_index().to_numpy() == truth).mean()
    assert acc["confusion"] > acc["one_coin"] + 0.03
    assert acc["confusion"] > 0.9


def test_declared_classes_keep_a_one_class_fit_honest():
    """Fitted on answers that all name one class, the fit must still know the others: without
    ``classes`` a split vote between that worker and a newcomer came out 0.99999 for the unseen class."""
    one = pd.DataFrame({"task": [1], "worker": [10], "label": ["spam"]})
    skills, priors, probas = fit_skills(one, classes=["spam", "ham"])
    assert set(priors) == {"spam", "ham"} and list(probas.columns) == ["ham", "spam"]
    post = item_posterior(["spam", "ham"], [10, 11], ["spam", "ham"], skills, priors)
    assert 0.5 < post[0] < 0.8  # the known worker's vote and the class prior tip it, not certainty
    assert skills[10].classes == ("ham", "spam")


def _hard_and_easy(n=300, seed=2):
    """Binary items; every third is hard (workers 60% right), the rest easy (95%); 9 answers each."""
    rng = np.random.default_rng(seed)
    rows, truth = [], {}
    for t in range(n):
        truth[t] = int(rng.integers(0, 2))
        p = 0.6 if t % 3 == 0 else 0.95
        for w in range(9):
            rows.append((t, f"w{w}", truth[t] if rng.random() < p else 1 - truth[t]))
    return pd.DataFrame(rows, columns=["task", "worker", "label"]), pd.Series(truth)


def test_budget_policy_bounds():
    BudgetPolicy(2.5, 2, 7)
    for bad in (dict(budget=1.5), dict(budget=8), dict(min_answers=0), dict(min_answers=3, max_answers=2),
                dict(step=0), dict(step=1.5)):
        with pytest.raises(ValueError):
            BudgetPolicy(**bad)


def test_budget_spends_exactly_its_answers_where_the_doubt_is():
    df, truth = _hard_and_easy()
    res = replay_budget(df, truth, BudgetPolicy(budget=3.0, min_answers=2, max_answers=7), seed=0)
    assert res.answers_used == 900  # 3 per item on average, to the answer
    per_item = res.per_item
    assert per_item.min() >= 2 and per_item.max() <= 7
    hard = per_item[per_item.index % 3 == 0].mean()
    easy = per_item[per_item.index % 3 != 0].mean()
    assert hard > easy + 1.0, (hard, easy)  # the extra answers went to the hard third
    base = fixed_majority(df, truth, 5, seed=0)
    assert res.accuracy >= base.accuracy - 0.02
    again = replay_budget(df, truth, BudgetPolicy(budget=3.0), seed=0)
    assert (again.per_item == per_item).all()  # the same answer order gives the same run


def test_budget_stops_when_items_run_out_of_answers():
    df, truth = _hard_and_easy(n=30)
    df = df[df["worker"].isin(["w0", "w1", "w2"])]  # 3 recorded answers per item
    res = replay_budget(df, truth, BudgetPolicy(budget=5.0, max_answers=7), seed=1)
    assert res.answers_used == 90 and (res.per_item == 3).all()


def test_half_the_answers_match_five_votes_on_real_crowd_answers():
    """D_PosSent (Zheng et al. 2017: 1,000 sentiment items, 20 answers each): the budget policy at 2.5
    answers per item is at least as accurate as the first 5 answers majority-voted, in the same answer
    orders."""
    folder = SHARED / "zheng_d_sentiment"
    if not folder.exists():
        pytest.skip(f"shared datasets not found at {SHARED} (CI puts a copy of shared/ beside the repo)")
    answers = pd.read_csv(folder / "labels.csv", dtype=str).rename(columns={"item": "task"})
    truth = pd.read_csv(folder / "truth.csv", dtype=str).set_index("item")["label"]
    for seed in (0, 1):
        res = replay_budget(answers, truth, BudgetPolicy(budget=2.5), seed=seed)
        base = fixed_majority(answers, truth, 5, seed=seed)
        assert res.answers_used <= base.answers_used / 2
        assert res.accuracy >= base.accuracy, (seed, res.accuracy, base.accuracy)
        # D_PosSent's crowd has spammers: pausing them buys accuracy for the same answers
        paused = replay_budget(answers, truth, BudgetPolicy(budget=2.5), seed=seed, pause_below=0.25)
        assert paused.answers_used == res.answers_used
        assert paused.accuracy > res.accuracy, (seed, paused.accuracy, res.accuracy)
    # and with the threshold rule, the same accuracy or better for fewer answers (7% here, 11% over 3 orders)
    plain = replay(answers, truth, AdaptivePolicy(2, 7, 0.95), seed=0)
    paused = replay(answers, truth, AdaptivePolicy(2, 7, 0.95), seed=0, pause_below=0.25)
    assert paused.answers_used < 0.95 * plain.answers_used and paused.accuracy >= plain.accuracy, (paused, plain)


def _with_spammers(n_items: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Binary items, 8 answers each in a random order of 8 workers: five right 85% of the time, three
    answering at random (s0, s1, s2)."""
    rng = np.random.default_rng(seed)
    truth = pd.Series(rng.integers(0, 2, n_items))
    workers = [f"w{i}" for i in range(5)] + [f"s{i}" for i in range(3)]
    rows = []
    for t in range(n_items):
        for w in rng.permutation(workers):
            right = rng.random() < (0.85 if w.startswith("w") else 0.5)
            rows.append((t, w, int(truth[t] if right else 1 - truth[t])))
    return pd.DataFrame(rows, columns=["task", "worker", "label"]), truth


def test_weak_annotators_names_the_spammers_only():
    df, _ = _with_spammers()
    skills, _, _ = fit_skills(df)
    weak = weak_annotators(df, skills, 0.25)
    assert set(weak) == {"s0", "s1", "s2"}, {w: float(s) for w, s in skills.items()}
    w = weak["s0"]
    assert w.answers == 300 and 0.5 < w.bar < w.crowd < 0.9 and w.accuracy < w.bar
    assert w.bar == pytest.approx(0.5 + 0.25 * (w.crowd - 0.5))
    assert set(weak_annotators(df, skills, 0.0)) <= {"s0", "s1", "s2"}  # only those estimated below chance
    assert set(weak_annotators(df, skills, 1.0)) >= {"s0", "s1", "s2"}
    few = df[(df["task"] < 9) | df["worker"].str.startswith("w")]  # the spammers answered 9 items each
    skills, _, _ = fit_skills(few)
    assert weak_annotators(few, skills, 0.25) == {}  # judged on at least 10 answers
    with pytest.raises(ValueError, match="pause_below"):
        weak_annotators(df, skills, 1.5)


def test_with_two_annotators_no_one_is_named():
    """An honest annotator and a random one on the same 60 items: from answers alone no one can tell which
    is which (they disagree on half the items, and either could be the one erring), so neither is named;
    the honest one is never paused for the spammer's disagreements."""
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 60)
    rows = [(t, "honest", int(truth[t])) for t in range(60)] + [(t, "spam", int(rng.integers(0, 2))) for t in range(60)]
    df = pd.DataFrame(rows, columns=["task", "worker", "label"])
    skills, _, _ = fit_skills(df)
    assert weak_annotators(df, skills, 0.25) == {}
    gold = pd.Series(truth[:20])  # twenty gold items tell them apart
    assert set(weak_annotators(df, fit_skills(df, gold=gold)[0], 0.25, gold=gold)) == {"spam"}


def test_gold_keeps_a_colluding_majority_from_pausing_the_honest():
    """Four colluders give the same wrong label on every item, three honest annotators the right one. From
    the answers alone the colluders are the crowd and the honest look weak (no model can tell them apart:
    the docs say so), and 20 gold items anchoring the fit do not get it out of that trap; judged by their
    gold answers, the colluders are the ones named."""
    rng = np.random.default_rng(5)
    truth = pd.Series(rng.integers(0, 2, 200))
    rows = [(t, w, int(truth[t]) if w.startswith("h") else 1 - int(truth[t]))
            for t in range(200) for w in ("h0", "h1", "h2", "c0", "c1", "c2", "c3")]
    df = pd.DataFrame(rows, columns=["task", "worker", "label"])
    skills, _, _ = fit_skills(df)
    assert set(weak_annotators(df, skills, 0.25)) == {"h0", "h1", "h2"}  # the limit of answers alone
    gold = truth.iloc[:20]
    skills, _, _ = fit_skills(df, gold=gold)
    assert set(weak_annotators(df, skills, 0.25)) == {"h0", "h1", "h2"}
    weak = weak_annotators(df, skills, 0.25, gold=gold)
    assert set(weak) == {"c0", "c1", "c2", "c3"} and weak["c0"].accuracy == 0.0
    few = weak_annotators(df, skills, 0.25, gold=gold.iloc[:4])  # under 5 gold answers each: the model decides
    assert set(few) == {"h0", "h1", "h2"}


def test_pausing_spammers_in_a_budget_replay_buys_accuracy_at_the_same_cost():
    df, truth = _with_spammers(seed=1)
    policy = BudgetPolicy(budget=3.0, min_answers=2, max_answers=7)
    gains = []
    for seed in range(3):  # three answer orders
        plain = replay_budget(df, truth, policy, seed=seed)
        paused = replay_budget(df, truth, policy, seed=seed, pause_below=0.25)
        assert paused.answers_used == plain.answers_used == 900
        assert paused.accuracy > plain.accuracy, (seed, paused.accuracy, plain.accuracy)
        gains.append(paused.accuracy - plain.accuracy)
    assert np.mean(gains) > 0.02, gains
    # with a threshold instead of a budget, pausing saves answers at no cost in accuracy
    threshold = AdaptivePolicy(2, 7, 0.95)
    plain = replay(df, truth, threshold, seed=0)
    paused = replay(df, truth, threshold, seed=0, pause_below=0.25)
    assert paused.answers_used < plain.answers_used, (paused.answers_used, plain.answers_used)
    assert paused.accuracy >= plain.accuracy - 0.01, (paused.accuracy, plain.accuracy)
    # a bar no one is under pauses no one: the very same run as without it
    honest = df[df["worker"].str.startswith("w")]
    alone = replay_budget(honest, truth, policy, seed=0)
    same = replay_budget(honest, truth, policy, seed=0, pause_below=0.25)
    assert (same.per_item == alone.per_item).all() and (same.labels == alone.labels).all()


def _graded(n_items: int = 300, seed: int = 1) -> tuple[pd.DataFrame, pd.Series]:
    """Binary items, 8 answers each in a random order: four workers right 82-90% of the time, four 62-68%
    (no spammer: pausing at 0.25 names none of them)."""
    rng = np.random.default_rng(seed)
    truth = pd.Series(rng.integers(0, 2, n_items))
    accuracy = {"a0": .9, "a1": .88, "a2": .85, "a3": .82, "b0": .68, "b1": .66, "b2": .64, "b3": .62}
    rows = []
    for t in range(n_items):
        for w in rng.permutation(list(accuracy)):
            right = rng.random() < accuracy[w]
            rows.append((t, w, int(truth[t] if right else 1 - truth[t])))
    return pd.DataFrame(rows, columns=["task", "worker", "label"]), truth


def test_weaker_half_is_below_the_median_of_those_judged():
    df, _ = _graded()
    skills, _, _ = fit_skills(df)
    weaker = weaker_half(df, skills)
    assert set(weaker) == {"b0", "b1", "b2", "b3"}, {w: float(s) for w, s in skills.items()}
    median = float(np.median([float(s) for s in skills.values()]))
    assert all(h.bar == pytest.approx(median) and h.accuracy < median and h.answers == 300 for h in weaker.values())
    assert weak_annotators(df, skills, 0.25) == {}  # nobody here is a spammer to pause
    # nobody is held back in a team too small for the stronger half to give an item all the answers it may want
    assert weaker_half(df, skills, min_workers=9) == {} and set(weaker_half(df, skills, min_workers=8)) == set(weaker)
    # a worker with under 10 answers does not move the median, and is compared with it by their estimate:
    # nine answers like the crowd's give second opinions, nine against it do not (yet)
    truth = df.groupby("task")["label"].agg(lambda x: x.mode().iloc[0])
    newcomers = pd.DataFrame({"task": list(range(9)) * 2, "worker": ["agrees"] * 9 + ["disagrees"] * 9,
                              "label": [int(truth[t]) for t in range(9)] + [1 - int(truth[t]) for t in range(9)]})
    both = pd.concat([df, newcomers], ignore_index=True)
    skills, _, _ = fit_skills(both)
    held = weaker_half(both, skills)
    assert set(held) == set(weaker) | {"disagrees"}, {w: float(s) for w, s in skills.items()}
    assert held["disagrees"].answers == 9 and held["b0"].bar == pytest.approx(
        float(np.median([float(skills[w]) for w in skills if w not in ("agrees", "disagrees")])))
    # ties at the median stay in the stronger half; one worker judged alone has no half
    assert weaker_half(df, {w: 0.8 for w in skills}) == {}
    assert weaker_half(df[df["worker"] == "a0"], {"a0": 0.9}) == {}
    with pytest.raises(ValueError, match="second_opinions"):
        replay_budget(df, pd.Series(dtype=int), BudgetPolicy(), second_opinions="best")


def test_second_opinions_from_the_stronger_half_buy_accuracy_at_the_same_cost():
    """Where answers differ in worth but nobody is bad enough to pause, the extra answers of a budget go
    further from the stronger half: 3 points over three answer orders, the same number of answers."""
    df, truth = _graded()
    policy = BudgetPolicy(budget=3.0, max_answers=4)  # up to 4 answers: the stronger four can give them all
    for seed in range(3):
        anyone = replay_budget(df, truth, policy, seed=seed)
        half = replay_budget(df, truth, policy, seed=seed, second_opinions="stronger_half")
        assert half.answers_used == anyone.answers_used == 900
        assert half.accuracy >= anyone.accuracy + 0.02, (seed, half.accuracy, anyone.accuracy)
    # with a threshold, fewer answers (an item whose stronger half has all answered stops) and no loss
    threshold = AdaptivePolicy(2, 4, 0.95)
    anyone = replay(df, truth, threshold, seed=0)
    half = replay(df, truth, threshold, seed=0, second_opinions="stronger_half")
    assert half.answers_used < anyone.answers_used and half.accuracy >= anyone.accuracy, (half, anyone)
    # up to 7 answers, 8 workers are too few (the stronger four could not give an item 7): nobody is held back
    seven = BudgetPolicy(budget=3.0)
    assert (replay_budget(df, truth, seven, seed=0, second_opinions="stronger_half").labels
            == replay_budget(df, truth, seven, seed=0).labels).all()


def _crowd(n_items: int, accuracy: float, seed: int, workers: int = 9) -> tuple[pd.DataFrame, pd.Series]:
    """Binary items, ``workers`` answers each, every worker right with probability ``accuracy``."""
    rng = np.random.default_rng(seed)
    truth = pd.Series(rng.integers(0, 2, n_items))
    rows = [(t, f"w{w}", truth[t] if rng.random() < accuracy else 1 - truth[t])
            for t in range(n_items) for w in rng.permutation(workers)]
    return pd.DataFrame(rows, columns=["task", "worker", "label"]), truth


def test_wilson_lower_by_hand():
    # 50 of 100 at 95% two-sided (z = 1.96): the textbook interval is [0.4038, 0.5962]
    assert wilson_lower(0.5, 100, 1.96) == pytest.approx(0.4038, abs=1e-4)
    assert wilson_lower(1.0, 20, 0.8416) < 0.98      # 20 of 20 is not proof of 98%
    assert wilson_lower(0.9, 0, 1.0) == 0.0


def test_tuning_needs_enough_gold():
    df, truth = _crowd(100, 0.8, seed=1)
    t = tune_confidence(df, truth.iloc[:10], 0.9)
    assert t.confidence is None and t.gold_items == 10
    assert "needs 20 gold items with at least 2 answers" in t.reason
    with pytest.raises(ValueError):
        tune_confidence(df, truth.iloc[:30], 1.0)
    with pytest.raises(ValueError):
        tune_confidence(df, truth.iloc[:30], 0.9, assurance=0.3)


def test_a_higher_target_needs_a_higher_confidence_and_more_answers():
    """70%-accurate workers: two answers are about 70% right, seven about 87%. Tuned on 200 gold items,
    each target gets the lowest threshold whose gold accuracy (lower bound) reaches it."""
    df, truth = _crowd(400, 0.7, seed=2)
    gold = truth.iloc[:200]
    tunings = [tune_confidence(df, gold, target, min_answers=2, max_answers=7) for target in (0.6, 0.75, 0.8)]
    assert all(isinstance(t, ConfidenceTuning) and t.gold_items == 200 for t in tunings)
    confidences = [t.confidence for t in tunings]
    assert confidences == sorted(confidences) and confidences[0] < confidences[-1], confidences
    assert tunings[0].answers < tunings[-1].answers
    for t in tunings:  # the chosen point is on the curve, and meets its target with the lower bound
        c, acc, used = next(row for row in t.curve if row[0] == t.confidence)
        assert (acc, used) == (t.accuracy, t.answers)
        assert wilson_lower(acc, 200, 0.8416) >= t.target
        assert "tuned on 200 gold items" in t.reason
    # a target the crowd cannot reach on gold: the highest threshold, and the reason says so
    out_of_reach = tune_confidence(df, gold, 0.97, min_answers=2, max_answers=7)
    assert out_of_reach.confidence == 0.99 and "is only" in out_of_reach.reason


def test_tuning_reads_the_gold_not_the_ordinary_items():
    """The same answers with the gold labels flipped: the crowd now looks wrong on gold, so no threshold
    reaches the target; the ordinary items (whose truth is never given) cannot change that."""
    df, truth = _crowd(300, 0.85, seed=3)
    gold = truth.iloc[:100]
    honest = tune_confidence(df, gold, 0.9)
    assert honest.confidence is not None and honest.confidence < 0.99 and honest.accuracy >= 0.9
    flipped = tune_confidence(df, 1 - gold, 0.9)
    assert flipped.accuracy < 0.5 and flipped.confidence == 0.99


def test_replay_tuned_reaches_its_target_on_the_items_not_used_as_gold():
    df, truth = _crowd(1000, 0.75, seed=4)
    res, tuning = replay_tuned(df, truth, target=0.88, gold_share=0.2, seed=0)
    assert len(res.gold) == 200 and tuning.gold_items == 200
    assert (res.per_item.loc[res.gold] == 7).all()          # every gold item was answered up to max...
    assert res.answers_used == res.per_item.sum()            # ...and those answers are paid for
    ordinary = res.per_item.drop(res.gold)
    assert ordinary.min() >= 2 and ordinary.max() <= 7 and ordinary.mean() < 5
    assert res.accuracy >= 0.85, res.accuracy                # on the 800 items not used as gold
    # by default the target is what five answers majority-voted give on the gold
    default, t = replay_tuned(df, truth, gold_share=0.2, seed=0)
    assert 0.8 < t.target < 0.95 and default.accuracy > 0.8
