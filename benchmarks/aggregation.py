"""Truth inference on the real crowdsourcing datasets, side by side with crowd-kit in the same process.

    PYTHONPATH=. .venv-bench/bin/python benchmarks/aggregation.py [--only categorical,calibration,...]

Sections: categorical (accuracy per method and dataset, ours next to crowd-kit's), calibration (ECE of
``aggregate``, without and with gold), selection (``AutoSelect`` against the best single method, ours and
crowd-kit's, on the ten datasets and on others it was not designed on; ``--svg`` writes reliability diagrams
into docs/img/), numeric (MAE of the rating models), pairwise (PandaLM and synthetic
pairs), speed (1,000,000 synthetic answers). Prints Markdown tables. crowd-kit is optional: without it
the crowd-kit columns read "n/a". The figures in docs/benchmarks.md come from this script.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.quality_data import (  # noqa: E402
    AFFECT_TASKS,
    BEST_PUBLISHED,
    CATEGORICAL,
    PUBLISHED,
    SHARED,
    load,
    load_pairs,
    markdown_table,
)
from benchmarks.reliability_svg import write_reliability_svg  # noqa: E402
from labelwright import quality as lq  # noqa: E402

warnings.filterwarnings("ignore")
try:
    import crowdkit
    from crowdkit import aggregation as ck
except ImportError:  # the comparison columns then read n/a
    ck = None

METHODS = {  # table name -> (ours, crowd-kit's twin)
    "MV": (lambda: lq.MajorityVote(), lambda: ck.MajorityVote()),
    "Wawa": (lambda: lq.Wawa(), lambda: ck.Wawa()),
    "DS": (lambda: lq.DawidSkene(), lambda: ck.DawidSkene(n_iter=100)),
    "OneCoinDS": (lambda: lq.OneCoinDawidSkene(), lambda: ck.OneCoinDawidSkene(n_iter=100)),
    "GLAD": (lambda: lq.GLAD(), lambda: ck.GLAD()),
    "MACE": (lambda: lq.MACE(), lambda: ck.MACE()),
}


def accuracy(labels: pd.Series, truth: pd.Series) -> float:
    return float((labels.reindex(truth.index) == truth).mean())


def timed(fn, *args):
    start = time.perf_counter()
    try:
        return fn(*args), time.perf_counter() - start
    except Exception as e:  # noqa: BLE001 - a failing peer is reported, not fatal
        return e, time.perf_counter() - start


def fmt(x, digits=4):
    if isinstance(x, Exception):
        return f"fails ({type(x).__name__})"
    return "n/a" if x is None else f"{x:.{digits}f}"


# ---- categorical -------------------------------------------------------------------------------


def categorical(datasets: dict) -> None:
    print("\n### Accuracy per method: labelwright / crowd-kit (same process)\n")
    header = ["dataset"] + list(METHODS) + ["`aggregate`", "best published"]
    rows, times, means = [], [], {m: [] for m in list(METHODS) + ["aggregate"]}
    iterations = []
    for name, (df, truth) in datasets.items():
        row, trow, irow = [name], [name], [name]
        for method, (ours, theirs) in METHODS.items():
            model = ours()
            mine, t_mine = timed(model.fit_predict, df)
            a_mine = accuracy(mine, truth)
            means[method].append(a_mine)
            if ck is None:
                a_ck, t_ck = None, None
            else:
                peer = theirs()
                res, t_ck = timed(peer.fit_predict, df)
                a_ck = res if isinstance(res, Exception) else accuracy(res, truth)
                if method in ("DS", "GLAD"):
                    irow.append(f"{model.n_iter_} / {len(getattr(peer, 'loss_history_', []))}")
            row.append(f"{a_mine:.4f} / {fmt(a_ck)}")
            trow.append(f"{t_mine:.2f} / {fmt(t_ck, 2)}")
        agg, _ = timed(lq.aggregate, df)
        means["aggregate"].append(accuracy(agg["label"], truth))
        row += [f"**{means['aggregate'][-1]:.4f}**", f"{BEST_PUBLISHED.get(name, '-')}"]
        rows.append(row)
        times.append(trow)
        iterations.append(irow)
        print(f"  done {name}", file=sys.stderr, flush=True)
    rows.append(["**mean**"] + [f"{np.mean(means[m]):.4f}" for m in METHODS]
                + [f"**{np.mean(means['aggregate']):.4f}**", ""])
    print(markdown_table(header, rows))
    print("\nPublished crowd-kit accuracies (JOSS 2024) for the same four datasets:\n")
    pub = [[m] + [f"{PUBLISHED[m][d]:.3f}" for d in BEST_PUBLISHED] for m in PUBLISHED]
    print(markdown_table(["method"] + list(BEST_PUBLISHED), pub))
    print("\n### Seconds per fit: labelwright / crowd-kit\n")
    print(markdown_table(["dataset"] + list(METHODS), times))
    if ck is not None:
        print("\n### EM iterations run: labelwright / crowd-kit\n")
        print("crowd-kit stops as soon as its objective goes down once; labelwright's DS stops when the"
              " log-likelihood per answer gains less than `tol`, GLAD when its log posterior does.\n")
        print(markdown_table(["dataset", "DS", "GLAD"], iterations))
    if ck is not None:
        print("\n### crowd-kit MACE with the answers sorted by worker and label\n")
        print("crowd-kit 1.4.2's MACE indexes its strategy matrix by sorted worker id and sorted label but"
              " looks workers and labels up by order of first appearance, so unless the orders agree,"
              " workers get each other's strategies over the wrong labels. Sorting the input by label, then"
              " (stably) by worker makes them agree:\n")
        rows = []
        for name, (df, truth) in datasets.items():
            srt = df.sort_values(["label"], kind="stable").sort_values(["worker"], kind="stable")
            rows.append([name, f"{accuracy(ck.MACE().fit_predict(df), truth):.4f}",
                         f"{accuracy(ck.MACE().fit_predict(srt), truth):.4f}",
                         f"{accuracy(lq.MACE().fit_predict(df), truth):.4f}"])
        print(markdown_table(["dataset", "crowd-kit MACE, input as is", "crowd-kit MACE, sorted",
                     "labelwright MACE"], rows))


# ---- calibration -------------------------------------------------------------------------------


def calibration(datasets: dict, gold_share: float = 0.2) -> None:
    print(f"\n### Calibration of `aggregate` confidence (10 equal bins; gold: a random {gold_share:.0%} of the"
          " truth, scored on the other tasks)\n")
    rows, pooled = [], {"none": ([], []), "gold": ([], [])}
    rng = np.random.default_rng(0)
    for name, (df, truth) in datasets.items():
        res = lq.aggregate(df).reindex(truth.index)
        hit = (res["label"] == truth).to_numpy()
        gold = truth[rng.random(len(truth)) < gold_share]
        rest = truth.drop(gold.index)
        res_g = lq.aggregate(df, gold=gold).reindex(rest.index)
        hit_g = (res_g["label"] == rest).to_numpy()
        pooled["none"][0].append(res["confidence"].to_numpy())
        pooled["none"][1].append(hit)
        pooled["gold"][0].append(res_g["confidence"].to_numpy())
        pooled["gold"][1].append(hit_g)
        rows.append([name, f"{hit.mean():.4f}", f"{res['confidence'].mean():.4f}",
                     f"{lq.expected_calibration_error(res['confidence'], hit):.3f}",
                     f"{len(gold)}", f"{hit_g.mean():.4f}", f"{res_g['confidence'].mean():.4f}",
                     f"{lq.expected_calibration_error(res_g['confidence'], hit_g):.3f}",
                     res_g.attrs.get("method", "")])
    print(markdown_table(["dataset", "accuracy", "mean confidence", "ECE", "gold tasks", "accuracy (rest)",
                 "mean confidence (rest)", "ECE with gold", "method with gold"], rows))
    for key, title in (("none", "without gold"), ("gold", "with gold")):
        conf, hit = np.concatenate(pooled[key][0]), np.concatenate(pooled[key][1])
        rel = lq.reliability_table(conf, hit)
        print(f"\nReliability, all datasets pooled, {title} (ECE {lq.expected_calibration_error(conf, hit):.3f}):\n")
        print(markdown_table(["confidence bin", "tasks", "mean confidence", "accuracy"],
                    [[f"{r.low:.1f}-{r.high:.1f}", int(r.n), f"{r.confidence:.3f}", f"{r.accuracy:.3f}"]
                     for r in rel.itertuples()]))


# ---- selection ---------------------------------------------------------------------------------


def other_datasets(ten: dict) -> dict:
    """Categorical questions that AutoSelect was not designed on: YouTube spam by WRENCH's 10 labelling
    functions (train split, abstentions dropped), headline valence by sign (Snow et al. 2008: the workers'
    -100..100 ratings and the expert's, 0 dropped), and each of the ten with 3 answers per task kept (a
    seeded draw: the small-project regime), where it had more."""
    out = {}
    wrench = SHARED / "youtube_spam" / "wrench"
    answers = pd.read_csv(wrench / "labels_train.csv", dtype=str).rename(columns={"item": "task"})
    truth = pd.read_csv(wrench / "truth_train.csv", dtype=str).set_index("item")["label"]
    out["YouTube (10 LFs)"] = (answers, truth[truth.index.isin(set(answers["task"]))].rename_axis("task"))
    df, truth = load("snow2008_affect", numeric=True, suffix="_valence")
    df = df[df["label"] != 0].assign(label=lambda d: np.where(d["label"] > 0, "positive", "negative"))
    truth = truth[(truth != 0) & truth.index.isin(set(df["task"]))]
    out["Valence (sign)"] = (df, pd.Series(np.where(truth > 0, "positive", "negative"), index=truth.index))
    rng = np.random.default_rng(0)
    for name, (df, truth) in ten.items():
        if df.groupby("task").size().mean() > 3.5:
            keep = df.assign(r=rng.random(len(df))).sort_values("r").groupby("task").head(3).drop(columns="r")
            out[f"{name}, 3 per task"] = (keep.sort_index(), truth)
    return out


def _ck_best(df: pd.DataFrame, truth: pd.Series) -> tuple[str, float | None]:
    if ck is None:
        return "n/a", None
    best = ("", -1.0)
    for method, (_, theirs) in METHODS.items():
        res, _ = timed(theirs().fit_predict, df)
        if not isinstance(res, Exception) and accuracy(res, truth) > best[1]:
            best = (method, accuracy(res, truth))
    return best


def _selection_rows(datasets: dict, with_ck: bool, panels: dict | None) -> tuple[list[list], dict]:
    rows, sums = [], {"best": [], "ck": [], "default": [], "auto": [], "gap": []}
    for name, (df, truth) in datasets.items():
        singles = {m: accuracy(ours().fit_predict(df), truth) for m, (ours, _) in METHODS.items()}
        default = lq.aggregate(df).reindex(truth.index)
        d_hit = (default["label"] == truth).to_numpy()
        singles["default"] = float(d_hit.mean())
        best = max(singles, key=lambda m: singles[m])
        model, secs = timed(lq.AutoSelect().fit, df)
        probas = model.probas_.reindex(truth.index)
        hit = (probas.idxmax(axis=1) == truth).to_numpy()
        conf = probas.max(axis=1).to_numpy()
        gap = float(hit.mean()) - singles[best]
        ck_name, ck_acc = _ck_best(df, truth) if with_ck else ("not run", None)
        rows.append([name, f"{singles[best]:.4f} ({best})", f"{fmt(ck_acc)} ({ck_name})", f"{singles['default']:.4f}",
                     f"**{hit.mean():.4f}** ({model.chosen_})", f"{100 * gap:+.1f}",
                     f"{lq.expected_calibration_error(default['confidence'], d_hit):.3f}",
                     f"{lq.expected_calibration_error(conf, hit):.3f}", f"{model.temperature_:.2f}", f"{secs:.1f}"])
        for key, value in (("best", singles[best]), ("default", singles["default"]), ("auto", hit.mean()),
                           ("gap", gap)):
            sums[key].append(value)
        if ck_acc is not None:
            sums["ck"].append(ck_acc)
        if panels is not None:
            panels[name] = [("default (aggregate)", default["confidence"].to_numpy(), d_hit),
                            ("AutoSelect", conf, hit)]
        print(f"  done {name}", file=sys.stderr, flush=True)
    return rows, sums


def selection(datasets: dict, svg: bool, peers: bool = True) -> None:
    header = ["dataset", "best single method (ours)", "best crowd-kit method", "default", "AutoSelect (chosen)",
              "points vs best single", "ECE default", "ECE AutoSelect", "temperature", "AutoSelect s"]
    print("\n### Method selection without ground truth: AutoSelect against the best single method\n")
    print("Single methods: MV, Wawa, DS, OneCoinDS, GLAD, MACE and the default (`aggregate`); crowd-kit's six"
          " run in the same process, its best shown. Truth is used only to score, never to choose.\n")
    panels: dict = {}
    rows, sums = _selection_rows(datasets, peers and ck is not None, panels if svg else None)
    rows.append(["**mean**", f"{np.mean(sums['best']):.4f}", fmt(np.mean(sums["ck"]) if sums["ck"] else None),
                 f"{np.mean(sums['default']):.4f}", f"**{np.mean(sums['auto']):.4f}**",
                 f"worst {100 * min(sums['gap']):+.1f}", "", "", "", ""])
    print(markdown_table(header, rows))
    print("\n### The same on datasets AutoSelect was not designed on\n")
    rows, sums = _selection_rows(other_datasets(datasets), False, None)
    rows.append(["**mean**", f"{np.mean(sums['best']):.4f}", "", f"{np.mean(sums['default']):.4f}",
                 f"**{np.mean(sums['auto']):.4f}**", f"worst {100 * min(sums['gap']):+.1f}", "", "", "", ""])
    print(markdown_table(header, rows))
    if svg:
        path = Path(__file__).resolve().parents[1] / "docs" / "img" / "reliability_selection.svg"
        write_reliability_svg(path, panels, "Confidence (x) against accuracy (y), 10 equal bins; dot area ~ tasks"
                              " in the bin; no gold. Written by benchmarks/aggregation.py --only selection --svg.")
        print(f"\nReliability diagrams written to {path.relative_to(path.parents[2])}")


# ---- numeric -----------------------------------------------------------------------------------


def numeric() -> None:
    sets = {t: load("snow2008_affect", numeric=True, suffix=f"_{t}") for t in AFFECT_TASKS}
    sets["N_Emotion (all 7)"] = load("zheng_n_emotion", numeric=True)
    models = {"mean": lq.NumericMean, "median": lq.NumericMedian, "GaussianWorkers": lq.GaussianWorkers}
    print("\n### Numeric answers: MAE against the expert truth (Pearson r in brackets)\n")
    print("crowd-kit has no aggregator for scalar answers, so there is no peer column.\n")
    rows = []
    for name, (df, truth) in sets.items():
        row = [name]
        for model in models.values():
            est = model().fit_predict(df).reindex(truth.index)
            row.append(f"{(est - truth).abs().mean():.2f} ({np.corrcoef(est, truth)[0, 1]:.3f})")
        rows.append(row)
    print(markdown_table(["task"] + list(models), rows))
    print("\n(wordsim: workers answered on 0-10, the expert truth is on 0-4, so only r is meaningful there.)")


# ---- pairwise ----------------------------------------------------------------------------------


def spearman(a: pd.Series, b: pd.Series) -> float:
    return float(np.corrcoef(a.rank(), b.reindex(a.index).rank())[0, 1])


def pairwise(n_boot: int) -> None:
    pairs = load_pairs()
    by_model = pd.DataFrame({
        "pair": pairs["pair"], "worker": pairs["worker"], "left": pairs["left_model"],
        "right": pairs["right_model"],
        "label": np.where(pairs["label"] == "1", pairs["left_model"],
                          np.where(pairs["label"] == "2", pairs["right_model"], "tie"))})
    print(f"\n### PandaLM: model-level scores (log-strength, centred), 95% bootstrap intervals over pairs"
          f" ({n_boot} resamples)\n")
    fits = {"BT (Davidson ties)": lq.BradleyTerry(), "BT (ties as half wins)": lq.BradleyTerry(ties="half"),
            "BT (ties dropped)": lq.BradleyTerry(ties="ignore"), "NoisyBT": lq.NoisyBradleyTerry()}
    cols = {}
    for name, model in fits.items():
        b = lq.bootstrap_scores(model, by_model, n_boot=n_boot, by="pair")
        cols[name] = b.apply(lambda r: f"{r.score:+.3f} [{r.low:+.3f}, {r.high:+.3f}]", axis=1)
    if ck is not None:
        no_ties = by_model[by_model["label"] != "tie"]
        ck_scores = ck.BradleyTerry(n_iter=100).fit(no_ties).scores_
        cols["crowd-kit BT (ties dropped)"] = np.log(ck_scores) - np.log(ck_scores).mean()
        cols["crowd-kit BT (ties dropped)"] = cols["crowd-kit BT (ties dropped)"].map(lambda x: f"{x:+.3f}")
    frame = pd.DataFrame(cols)
    frame = frame.loc[lq.BradleyTerry().fit(by_model).scores_.sort_values(ascending=False).index]
    print(markdown_table(["model"] + list(frame.columns), [[i] + list(r) for i, r in frame.iterrows()]))
    print("\ncrowd-kit 1.4.2's BradleyTerry stops after its second iteration (it keeps `p_old` as an alias of"
          " `p_new`, so the change it measures is always 0), which is why its scores are compressed.")
    model = lq.BradleyTerry().fit(by_model)
    print(f"\nDavidson tie parameter nu = {model.tie_rate_:.3f}; NoisyBT worker reliabilities: "
          + ", ".join(f"{w} {s:.3f}" for w, s in lq.NoisyBradleyTerry().fit(by_model).skills_.items()))

    votes = pd.DataFrame({"task": pairs["pair"], "worker": pairs["worker"], "left": pairs["left"],
                          "right": pairs["right"], "label": pairs["winner"]})
    agg = lq.aggregate(votes)
    counts = pairs.groupby(["pair", "label"]).size().unstack(fill_value=0)
    majority = counts.idxmax(axis=1).map({"1": "left", "2": "right", "0": "tie"})
    agree = float((agg["label"].reindex(majority.index) == majority).mean())
    print(f"\nPer-pair `aggregate` (method {agg.attrs['method']}) agrees with the 3-annotator majority on "
          f"{agree:.4f} of {len(majority)} pairs; mean confidence {agg['confidence'].mean():.4f}.")
    print(f"Agreement: Fleiss' kappa {lq.fleiss_kappa(pairs.rename(columns={'pair': 'task'})):.3f}, "
          f"Krippendorff's alpha (nominal) {lq.krippendorff_alpha(pairs.rename(columns={'pair': 'task'})):.3f}, "
          "Cohen's kappa per pair: " + ", ".join(
              f"{r.worker_a}~{r.worker_b} {r.kappa:.3f}"
              for r in lq.cohen_kappa(pairs.rename(columns={"pair": "task"})).itertuples()))
    synthetic_pairs()


def synthetic_pairs(n_items: int = 100, n_workers: int = 50, n_votes: int = 5000, repeats: int = 5) -> None:
    print(f"\n### Synthetic pairs: Spearman rho with the true scores ({n_items} candidates, scores ~ N(0, 1);"
          f" {n_votes} votes by {n_workers} workers; {repeats} seeds, mean)\n")
    print("Workers: 70% follow Bradley-Terry, 20% click left 80% of the time, 10% answer at random;"
          " no ties (crowd-kit does not model them).\n")
    results: dict[str, list] = {}
    for seed in range(repeats):
        rng = np.random.default_rng(seed)
        true = pd.Series(rng.normal(size=n_items), index=[f"c{i}" for i in range(n_items)])
        kind = rng.choice(3, size=n_workers, p=[0.7, 0.2, 0.1])
        w = rng.integers(0, n_workers, n_votes)
        i, j = rng.integers(0, n_items, n_votes), rng.integers(0, n_items, n_votes)
        keep = i != j
        w, i, j = w[keep], i[keep], j[keep]
        p_left = 1 / (1 + np.exp(-(true.to_numpy()[i] - true.to_numpy()[j])))
        p_left = np.where(kind[w] == 1, 0.8, np.where(kind[w] == 2, 0.5, p_left))
        left_wins = rng.random(len(w)) < p_left
        df = pd.DataFrame({"worker": [f"w{x}" for x in w], "left": true.index[i], "right": true.index[j]})
        df["label"] = np.where(left_wins, df["left"], df["right"])
        fits = {"labelwright BradleyTerry": lambda df=df: lq.BradleyTerry().fit(df).scores_,
                "labelwright NoisyBradleyTerry": lambda df=df: lq.NoisyBradleyTerry().fit(df).scores_}
        if ck is not None:
            fits["crowd-kit BradleyTerry"] = lambda df=df: ck.BradleyTerry(n_iter=100).fit(df).scores_
            fits["crowd-kit NoisyBradleyTerry"] = lambda df=df: ck.NoisyBradleyTerry().fit(df).scores_
        for name, fit in fits.items():
            scores, secs = timed(fit)
            rho = spearman(true, scores) if not isinstance(scores, Exception) else np.nan
            results.setdefault(name, []).append((rho, secs))
    print(markdown_table(["method", "Spearman rho", "seconds per fit"],
                [[k, f"{np.nanmean([r for r, _ in v]):.4f}", f"{np.mean([s for _, s in v]):.2f}"]
                 for k, v in results.items()]))


# ---- speed -------------------------------------------------------------------------------------


def synthetic_labels(n_tasks=100_000, n_workers=1_000, n_classes=5, per_task=10, seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, n_tasks)
    skill = rng.uniform(0.3, 0.95, n_workers)
    skill[rng.random(n_workers) < 0.1] = 1 / n_classes  # 10% spammers
    task = np.repeat(np.arange(n_tasks), per_task)
    worker = np.concatenate([rng.choice(n_workers, per_task, replace=False) for _ in range(n_tasks)])
    right = rng.random(len(task)) < skill[worker]
    wrong = (truth[task] + rng.integers(1, n_classes, len(task))) % n_classes
    label = np.where(right, truth[task], wrong)
    df = pd.DataFrame({"task": task, "worker": worker, "label": label})
    return df, pd.Series(truth, name="label")


def speed(ck_methods: list[str]) -> None:
    df, truth = synthetic_labels()
    print(f"\n### Speed: {len(df):,} answers ({df.task.nunique():,} tasks, {df.worker.nunique():,} workers,"
          f" 5 classes, 10 answers per task, 10% spammers)\n")
    rows = []
    for name, (ours, theirs) in METHODS.items():
        model = ours()
        mine, t_mine = timed(model.fit_predict, df)
        row = [name, f"{t_mine:.2f}", f"{accuracy(mine, truth):.4f}", str(getattr(model, "n_iter_", ""))]
        if ck is not None and name in ck_methods:
            peer = theirs()
            res, t_ck = timed(peer.fit_predict, df)
            row += [f"{t_ck:.2f}", fmt(res if isinstance(res, Exception) else accuracy(res, truth)),
                    str(len(getattr(peer, "loss_history_", [])) or ""), f"{t_ck / t_mine:.1f}x"]
        else:
            row += ["not run", "", "", ""]
        rows.append(row)
        print(f"  done {name}", file=sys.stderr, flush=True)
    agg, t_agg = timed(lq.aggregate, df)
    rows.append(["`aggregate`", f"{t_agg:.2f}", f"{accuracy(agg['label'], truth):.4f}", "", "", "", "", ""])
    print(markdown_table(["method", "labelwright s", "labelwright accuracy", "EM iterations", "crowd-kit s",
                 "crowd-kit accuracy", "crowd-kit EM iterations", "speed-up"], rows))
    print("\nTimes include encoding the table (about 0.07 s here); each fit runs EM to its own stopping rule.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="categorical,calibration,selection,numeric,pairwise,speed",
                        help="comma-separated sections to run")
    parser.add_argument("--svg", action="store_true", help="selection: write reliability diagrams into docs/img/")
    parser.add_argument("--no-peers", action="store_true",
                        help="selection: leave out the crowd-kit column (its six methods take most of the time)")
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples for PandaLM scores")
    parser.add_argument("--ck-speed", default="MV,Wawa,DS,OneCoinDS",
                        help="crowd-kit methods to time on the 1M-answer set (GLAD and MACE take very long)")
    args = parser.parse_args()
    sections = set(args.only.split(","))
    print(f"Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
          f"crowd-kit {crowdkit.__version__ if ck else 'not installed'}")
    datasets = {name: load(folder) for name, folder in CATEGORICAL.items()}
    if "categorical" in sections:
        categorical(datasets)
    if "calibration" in sections:
        calibration(datasets)
    if "selection" in sections:
        selection(datasets, args.svg, peers=not args.no_peers)
    if "numeric" in sections:
        numeric()
    if "pairwise" in sections:
        pairwise(args.bootstrap)
    if "speed" in sections:
        speed(args.ck_speed.split(","))


if __name__ == "__main__":
    main()
