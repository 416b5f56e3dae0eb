"""LabelModel against Snorkel 0.10's LabelModel and majority vote, in the same process.

    python -m venv /tmp/snorkel-venv && /tmp/snorkel-venv/bin/pip install "snorkel==0.10.*"
    PYTHONPATH=. /tmp/snorkel-venv/bin/python benchmarks/label_model.py

Snorkel needs torch, which labelwright does not, so it lives in its own virtual environment; labelwright's
quality package needs only numpy and pandas, which that environment has, so both run in one process.
Without Snorkel the Snorkel rows read "n/a".

Sections (Markdown tables):

* youtube: the WRENCH "youtube" labelling functions (10 rules) in shared/datasets/youtube_spam/wrench.
  WRENCH's protocol: fit on train (ids 0-1585; the 100 rows DyGen appended are dropped), predict the
  250 test comments (valid: 120), including the comments every rule abstained on. Accuracy and F1 of
  the spam class (1). Ties (and all-abstain comments under a uniform balance) go to the first class, ham,
  for every method alike. "selected on valid" picks each method's setting by valid accuracy (then F1).
* trec: TREC question classification (6 classes) with 13 keyword/regex rules written for this
  benchmark (shared/datasets has no other WRENCH set): fit on train (4,952), valid = 500 questions of the
  train split set aside (seeded) for choosing settings, as WRENCH's own TREC split has; scored on test (500).
* crowds: the binary crowdsourcing sets, their workers treated as people (LabelModel(people=...)) and,
  for Snorkel, as labelling functions that abstain where a worker gave no answer.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.polarity_rules import POLARITY_RULES
from benchmarks.quality_data import SHARED, load, markdown_table, rule_votes
from benchmarks.trec_rules import TREC_RULES
from labelwright import quality as lq

warnings.filterwarnings("ignore")
try:
    import snorkel
    from snorkel.labeling.model import LabelModel as SnorkelLabelModel
except ImportError:  # the Snorkel rows then read n/a
    snorkel = None

WRENCH = SHARED / "youtube_spam" / "wrench"
TRAIN_IDS = 1586  # WRENCH's train split; ids 1586-1685 are duplicates DyGen appended
OURS = {
    "LabelModel() (defaults: class_balance='votes')": {},
    "LabelModel(class_balance='uniform')": {"class_balance": "uniform"},
    "LabelModel(abstain_weight=0)": {"abstain_weight": 0.0},
    "LabelModel(abstain_weight=1)": {"abstain_weight": 1.0},
    "LabelModel(class_balance='estimate')": {"class_balance": "estimate"},
    "LabelModel(better_than_chance=False)": {"better_than_chance": False},
}
SNORKEL = {  # name -> fit keywords; seed fixed so runs repeat
    "Snorkel LabelModel (defaults: 100 epochs)": {"seed": 123},
    "Snorkel LabelModel (tutorial: 500 epochs)": {"n_epochs": 500, "seed": 123},
}
SNORKEL_GRID = [{"n_epochs": e, "lr": lr, "l2": l2, "seed": 123}
                for e in (100, 500, 1000) for lr in (0.01, 0.001) for l2 in (0.0, 0.1)]
OURS_GRID = [{"abstain_weight": w, "class_balance": b}
             for w in (0.0, 0.5, 1.0) for b in ("votes", "uniform", "estimate")]


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")),
                "unknown")


def scores(pred: np.ndarray, truth: np.ndarray, positive=1) -> tuple[float, float]:
    """Accuracy and the F1 of the ``positive`` class."""
    tp = int(((pred == positive) & (truth == positive)).sum())
    fp = int(((pred == positive) & (truth != positive)).sum())
    fn = int(((pred != positive) & (truth == positive)).sum())
    return float((pred == truth).mean()), (2 * tp / (2 * tp + fp + fn) if tp else 0.0)


# ---- YouTube (WRENCH) ------------------------------------------------------------------------------


def youtube_split(split: str) -> tuple[pd.DataFrame, pd.Series, np.ndarray, list[str]]:
    """The long table of votes, the truth (every comment), Snorkel's label matrix and the rules' order."""
    raw = json.loads((WRENCH / f"{split}.json").read_text())
    ids = [i for i in raw if split != "train" or int(i) < TRAIN_IDS]
    matrix = np.array([raw[i]["weak_labels"] for i in ids])
    truth = pd.Series([raw[i]["label"] for i in ids], index=[int(i) for i in ids], name="label")
    votes = pd.read_csv(WRENCH / f"labels_{split}.csv").rename(columns={"item": "task"})
    votes = votes[votes["task"].isin(truth.index)].reset_index(drop=True)
    rules = ["keyword_my", "keyword_subscribe", "keyword_link", "keyword_please", "keyword_song",
             "regex_check_out", "short_comment", "has_person_nlp", "textblob_polarity", "textblob_subjectivity"]
    return votes, truth, matrix, rules


def majority(matrix: np.ndarray, k: int = 2, rng: np.random.Generator | None = None) -> np.ndarray:
    counts = np.stack([(matrix == c).sum(axis=1) for c in range(k)], axis=1).astype(float)
    if rng is not None:
        counts += rng.random(counts.shape) * 1e-3  # random tie-break
    return counts.argmax(axis=1)


def youtube() -> None:
    train, y_train, m_train, rules = youtube_split("train")
    splits = {name: youtube_split(name) for name in ("valid", "test")}
    # the long table and the matrix must say the same thing
    check = majority(m_train)
    assert len(train) == int((m_train >= 0).sum()), "labels_train.csv and train.json disagree"
    rows = []

    def report(name: str, predict, seconds: float, train_pred=None) -> None:
        row = [name]
        for split in ("valid", "test"):
            _, truth, matrix, _ = splits[split]
            acc, f1 = scores(predict(split), truth.to_numpy())
            row += [f"{acc:.4f}", f"{f1:.4f}"] if split == "test" else [f"{acc:.4f}"]
        row.append("-" if train_pred is None else f"{scores(train_pred, y_train.to_numpy())[0]:.4f}")
        row.append(f"{seconds:.2f}")
        rows.append(row)

    report("Majority vote (ties to ham)", lambda s: majority(splits[s][2]), 0.0, check)
    rng = np.random.default_rng(0)
    mv_random = {s: [scores(majority(splits[s][2], rng=rng), splits[s][1].to_numpy()) for _ in range(200)]
                 for s in splits}
    valid_acc = np.mean([a for a, _ in mv_random["valid"]])
    test_acc, test_f1 = np.mean(mv_random["test"], axis=0)
    rows.append(["Majority vote (random ties, mean of 200)", f"{valid_acc:.4f}", f"{test_acc:.4f}", f"{test_f1:.4f}",
                 "-", "0.00"])
    fitted = {}
    for name, kwargs in OURS.items():
        start = time.perf_counter()
        model = lq.LabelModel(**kwargs).fit(train, tasks=y_train.index)
        seconds = time.perf_counter() - start
        fitted[name] = model
        report(name, lambda s, m=model: m.predict(splits[s][0], tasks=splits[s][1].index)
               .reindex(splits[s][1].index).to_numpy(), seconds, model.labels_.reindex(y_train.index).to_numpy())
    best = _select_ours(train, y_train, splits)
    report(f"LabelModel selected on valid ({best[1]})", best[0], best[2])
    if snorkel is None:
        rows += [[name, "n/a", "n/a", "n/a", "n/a", "n/a"] for name in SNORKEL]
    else:
        for name, kwargs in SNORKEL.items():
            model, seconds = _snorkel_fit(m_train, kwargs)
            report(name, lambda s, m=model: m.predict_proba(splits[s][2]).argmax(axis=1), seconds,
                   model.predict_proba(m_train).argmax(axis=1))
        model, setting, seconds = _select_snorkel(m_train, splits)
        report(f"Snorkel selected on valid ({setting})",
               lambda s, m=model: m.predict_proba(splits[s][2]).argmax(axis=1), seconds,
               model.predict_proba(m_train).argmax(axis=1))
    version = getattr(snorkel, "__version__", "not installed") if snorkel else "not installed"
    print(f"\n### YouTube spam, WRENCH's 10 labelling functions (snorkel {version})\n")
    print(f"Fit on train ({len(y_train)} comments, {int((m_train >= 0).any(axis=1).sum())} with a vote), "
          f"scored on valid ({len(splits['valid'][1])}) and test ({len(splits['test'][1])}); spam F1 on test; "
          "train = accuracy on the training comments themselves; seconds = one fit (selection: all fits).\n")
    print(markdown_table(["method", "valid acc.", "test acc.", "test spam F1", "train acc.", "seconds"], rows))
    analysis = lq.lf_analysis(train, gold=y_train, tasks=y_train.index).reindex(rules)
    model = fitted["LabelModel() (defaults: class_balance='votes')"]
    analysis["skill (model)"] = model.skills_.reindex(rules)
    print(f"\n`lf_analysis` on train (coverage of any rule: {analysis.attrs['coverage']:.3f}):\n")
    print(markdown_table(["rule", "polarity", "coverage", "overlap", "conflict", "gold acc.", "modelled acc."],
                [[r, a.polarity, f"{a.coverage:.3f}", f"{a.overlap:.3f}", f"{a.conflict:.3f}",
                  f"{a.gold_accuracy:.3f}", f"{a['skill (model)']:.3f}"] for r, a in analysis.iterrows()]))


def _valid_key(pred: np.ndarray, truth: pd.Series) -> tuple[float, float]:
    return scores(pred, truth.to_numpy())


def _select_ours(train, y_train, splits):
    start, best = time.perf_counter(), None
    for kwargs in OURS_GRID:
        model = lq.LabelModel(**kwargs).fit(train, tasks=y_train.index)
        votes, truth, _, _ = splits["valid"]
        key = _valid_key(model.predict(votes, tasks=truth.index).reindex(truth.index).to_numpy(), truth)
        if best is None or key > best[0]:
            best = (key, kwargs, model)
    assert best is not None
    model = best[2]
    setting = ", ".join(f"{k}={v!r}" for k, v in best[1].items())
    return (lambda s: model.predict(splits[s][0], tasks=splits[s][1].index).reindex(splits[s][1].index).to_numpy(),
            setting, time.perf_counter() - start)


def _snorkel_fit(matrix: np.ndarray, kwargs: dict, cardinality: int = 2):
    start = time.perf_counter()
    model = SnorkelLabelModel(cardinality=cardinality, verbose=False)
    model.fit(matrix, progress_bar=False, **kwargs)
    return model, time.perf_counter() - start


def _select_snorkel(m_train, splits):
    start, best = time.perf_counter(), None
    _, truth, matrix, _ = splits["valid"]
    for kwargs in SNORKEL_GRID:
        model, _ = _snorkel_fit(m_train, kwargs)
        key = _valid_key(model.predict_proba(matrix).argmax(axis=1), truth)
        if best is None or key > best[0]:
            best = (key, kwargs, model)
    assert best is not None
    setting = ", ".join(f"{k}={v}" for k, v in best[1].items() if k != "seed")
    return best[2], setting, time.perf_counter() - start


# ---- rule sets written for this benchmark: TREC questions and movie-review polarity -------------------

TREC_VALID = 500  # WRENCH's TREC has a 500-question valid split; ours is drawn (seeded) from the train split
POLARITY_VALID, POLARITY_TEST = 500, 1000  # rt_polarity has no split: both drawn (seeded), the rest is train


def trec() -> None:
    items = pd.read_csv(SHARED / "trec_question_classification" / "items.csv")
    train = items[items["split"] == "train"]
    valid_ids = np.random.default_rng(0).choice(train["item"].to_numpy(), TREC_VALID, replace=False)
    split = {"train": train[~train["item"].isin(valid_ids)], "valid": train[train["item"].isin(valid_ids)],
             "test": items[items["split"] == "test"]}
    rule_set(f"TREC questions (6 coarse classes), {len(TREC_RULES)} rules written for this benchmark",
             f"valid = {TREC_VALID} of the train split's questions set aside (seeded)", split, TREC_RULES)


def polarity() -> None:
    items = pd.read_csv(SHARED / "rt_polarity" / "items.csv")
    order = np.random.default_rng(0).permutation(len(items))
    split = {"train": items.iloc[order[POLARITY_VALID + POLARITY_TEST:]],
             "valid": items.iloc[order[:POLARITY_VALID]],
             "test": items.iloc[order[POLARITY_VALID:POLARITY_VALID + POLARITY_TEST]]}
    rule_set(f"Movie-review sentence polarity (rt_polarity), {len(POLARITY_RULES)} rules written for this "
             "benchmark", f"valid ({POLARITY_VALID}) and test ({POLARITY_TEST}) drawn at random (seeded)", split,
             POLARITY_RULES, positive=1)


def rule_set(title: str, how_split: str, split: dict[str, pd.DataFrame], rules_by_name: dict,
             positive=None) -> None:
    """Apply keyword/regex rules to ``split``'s texts; fit on train, score train, valid and test.

    ``positive``: also report the F1 of that class on test (binary sets)."""
    items = pd.concat(split.values(), ignore_index=True)
    votes = rule_votes(items, rules_by_name)
    classes = sorted(items["label"].unique())
    truth = {name: part.set_index("item")["label"] for name, part in split.items()}
    part_votes = {name: votes[votes["task"].isin(truth[name].index)] for name in split}
    table_rows = []

    def accuracy(pred, part):
        return float((np.asarray(pred) == truth[part].to_numpy()).mean())

    def report(name, predict, seconds):
        preds = {part: np.asarray(predict(part)) for part in ("train", "valid", "test")}
        row = [name] + [f"{accuracy(preds[part], part):.4f}" for part in ("train", "valid", "test")]
        voted = truth["test"].index.isin(part_votes["test"]["task"])
        row.append(f"{float((preds['test'][voted] == truth['test'].to_numpy()[voted]).mean()):.4f}")
        if positive is not None:
            row.append(f"{scores(preds['test'], truth['test'].to_numpy(), positive)[1]:.4f}")
        table_rows.append(row + [f"{seconds:.2f}"])

    def majority_labels(part):
        labels = lq.MajorityVote().fit_predict(part_votes[part]).reindex(truth[part].index)
        return labels.fillna(classes[0]).to_numpy()

    def ours(model):
        return lambda p: model.predict(part_votes[p], tasks=truth[p].index).reindex(truth[p].index)

    report("Majority vote (ties to the first class; no vote: the first class)", majority_labels, 0.0)
    settings = {"LabelModel() (defaults: class_balance='votes')": {},
                "LabelModel(class_balance='uniform')": {"class_balance": "uniform"},
                "LabelModel(class_balance='estimate')": {"class_balance": "estimate"},
                "LabelModel(abstain_weight=0)": {"abstain_weight": 0.0},
                "LabelModel(abstain_weight=1)": {"abstain_weight": 1.0}}
    default = None
    for name, kwargs in settings.items():
        start = time.perf_counter()
        model = lq.LabelModel(**kwargs).fit(part_votes["train"], tasks=truth["train"].index, classes=classes)
        report(name, ours(model), time.perf_counter() - start)
        default = default or model
    start, best = time.perf_counter(), None
    for kwargs in OURS_GRID:
        model = lq.LabelModel(**kwargs).fit(part_votes["train"], tasks=truth["train"].index, classes=classes)
        key = accuracy(ours(model)("valid"), "valid")
        if best is None or key > best[0]:
            best = (key, kwargs, model)
    assert best is not None
    setting = ", ".join(f"{k}={v!r}" for k, v in best[1].items())
    report(f"LabelModel selected on valid ({setting})", ours(best[2]), time.perf_counter() - start)
    if snorkel is not None:
        code = {c: i for i, c in enumerate(classes)}
        rules = list(rules_by_name)
        matrices = {}
        for part in split:
            matrix = np.full((len(truth[part]), len(rules)), -1)
            v = part_votes[part]
            matrix[truth[part].index.get_indexer(v["task"]), [rules.index(r) for r in v["worker"]]] = \
                v["label"].map(code).to_numpy()
            matrices[part] = matrix

        def theirs(model):
            return lambda p: np.array(classes)[model.predict_proba(matrices[p]).argmax(axis=1)]

        for name, kwargs in SNORKEL.items():
            model, seconds = _snorkel_fit(matrices["train"], kwargs, cardinality=len(classes))
            report(name, theirs(model), seconds)
        start, best = time.perf_counter(), None
        for kwargs in SNORKEL_GRID:
            model, _ = _snorkel_fit(matrices["train"], kwargs, cardinality=len(classes))
            key = accuracy(theirs(model)("valid"), "valid")
            if best is None or key > best[0]:
                best = (key, kwargs, model)
        assert best is not None
        setting = ", ".join(f"{k}={v}" for k, v in best[1].items() if k != "seed")
        report(f"Snorkel selected on valid ({setting})", theirs(best[2]), time.perf_counter() - start)
    coverage = truth["train"].index.isin(part_votes["train"]["task"]).mean()
    print(f"\n### {title}\n")
    print(f"Fit on train ({len(truth['train'])} texts, {coverage:.1%} with a vote); {how_split}; scored on "
          f"train, valid ({len(truth['valid'])}) and test ({len(truth['test'])}); accuracy"
          + (f", and F1 of class {positive!r} on test" if positive is not None else "") + ".\n")
    print(markdown_table(["method", "train acc.", "valid acc.", "test acc.", "test acc. where a rule voted"]
                + (["test F1"] if positive is not None else []) + ["seconds"], table_rows))
    assert default is not None
    analysis = lq.lf_analysis(part_votes["train"], gold=truth["train"], tasks=truth["train"].index)
    print("\n`lf_analysis` on train, with the default LabelModel's modelled accuracy of each rule:\n")
    print(markdown_table(["rule", "label", "coverage", "overlap", "conflict", "gold acc.", "modelled acc."],
                [[r, a.polarity, f"{a.coverage:.3f}", f"{a.overlap:.3f}", f"{a.conflict:.3f}",
                  f"{a.gold_accuracy:.3f}", f"{default.skills_[r]:.3f}"] for r, a in analysis.iterrows()]))


# ---- crowds as people --------------------------------------------------------------------------------

CROWDS = {"D_Product": "zheng_d_product", "D_PosSent": "zheng_d_sentiment", "Bluebirds": "welinder_bluebirds",
          "SP": "sp_sentence_polarity"}


def crowds() -> None:
    rows = []
    for name, folder in CROWDS.items():
        df, truth = load(folder)
        df = df.drop_duplicates(["task", "worker"])
        row = [name]
        people = df["worker"].unique()
        for method in (lq.MajorityVote(), lq.DawidSkene(), lq.LabelModel(class_balance="estimate"), lq.LabelModel()):
            start = time.perf_counter()
            labels = (method.fit_predict(df, people=people) if isinstance(method, lq.LabelModel)
                      else method.fit_predict(df))
            row.append(f"{(labels.reindex(truth.index) == truth).mean():.4f} ({time.perf_counter() - start:.2f} s)")
        if snorkel is None:
            row.append("n/a")
        else:
            tasks = pd.Index(sorted(df["task"].unique()))
            workers = pd.Index(sorted(df["worker"].unique()))
            classes = pd.Index(sorted(df["label"].unique()))
            matrix = np.full((len(tasks), len(workers)), -1)
            matrix[tasks.get_indexer(df["task"]), workers.get_indexer(df["worker"])] = classes.get_indexer(df["label"])
            model, seconds = _snorkel_fit(matrix, {"seed": 123}, cardinality=len(classes))
            labels = pd.Series(classes[model.predict_proba(matrix).argmax(axis=1)], index=tasks)
            row.append(f"{(labels.reindex(truth.index) == truth).mean():.4f} ({seconds:.2f} s)")
        rows.append(row)
        print(f"  done {name}", file=sys.stderr, flush=True)
    print("\n### Binary crowds, workers as people: accuracy (seconds per fit)\n")
    print(markdown_table(["dataset", "MajorityVote", "DawidSkene", "LabelModel(class_balance='estimate')",
                 "LabelModel() (defaults: votes)", "Snorkel LabelModel (defaults)"], rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="youtube,trec,polarity,crowds",
                        help="comma-separated sections: youtube, trec, polarity, crowds")
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}; Python {platform.python_version()}; numpy {np.__version__}; "
          f"snorkel {getattr(snorkel, '__version__', 'not installed') if snorkel else 'not installed'}")
    sections = {"youtube": youtube, "trec": trec, "polarity": polarity, "crowds": crowds}
    for name in args.only.split(","):
        sections[name.strip()]()


if __name__ == "__main__":
    main()
