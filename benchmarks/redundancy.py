"""Adaptive redundancy against a fixed 5 answers per item, replaying real crowd answers.

    .venv/bin/python benchmarks/redundancy.py [--seeds 5] [--datasets D_PosSent,S_Dog,...]

For every categorical dataset with ground truth, items with at least 5 recorded answers are kept. Each
item's answers are shuffled (as if workers arrived in random order). The baseline takes the first 5 and
majority-votes. Adaptive redundancy (labelwright.quality.adaptive.replay) gives every item ``min``
answers, then, round after round, one more answer to each item whose posterior (worker confusion
matrices fitted by ``fit_skills`` on the answers collected so far, no ground truth) is below
``confidence``, up to ``max`` or until the item's recorded answers run out. Printed: answers used
(relative to the baseline) and accuracy, medians over seeds, for the issue's setting (2..7, 0.95) and for
a sweep, with the cheapest setting that matches the baseline's accuracy (chosen with the truth, so an
optimistic pick; the sweep itself is the honest picture).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.quality_data import CATEGORICAL, load  # noqa: E402
from labelwright.quality.adaptive import (  # noqa: E402
    AdaptivePolicy,
    BudgetPolicy,
    _accuracy,
    fixed_majority,
    replay,
    replay_budget,
    replay_tuned,
)

SETTINGS = ([AdaptivePolicy(2, 7, c) for c in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)]
            + [AdaptivePolicy(2, 5, c) for c in (0.7, 0.8, 0.9)])
ISSUE_SETTING = AdaptivePolicy(2, 7, 0.95)


def _row(head: str, label: str, base_used: float, base_acc: float, seeds: int, run) -> tuple[float, float]:
    """One setting, ``run(seed=s)`` over the seeds: prints its line, returns (answers relative to fixed 5,
    accuracy), medians."""
    t0 = time.perf_counter()
    runs = [run(seed=s) for s in range(seeds)]
    used = statistics.median(r.answers_used for r in runs)
    acc = statistics.median(r.accuracy for r in runs)
    print(f"{head} {label:<14} {used:>8.0f} {used / base_used:>10.2f} {acc:>6.3f} {base_acc:>14.3f}"
          f"   ({time.perf_counter() - t0:.1f} s)")
    return used / base_used, acc


def others() -> dict[str, tuple[pd.DataFrame, pd.Series]]:
    """Seven binary questions from Snow et al. (2008)'s headline ratings (100 headlines, 10 workers each),
    the workers' ratings and the expert's cut the same way: valence by sign (0 dropped), and each of six
    emotions (0-100) as strong (30 or more) or weak."""
    out = {}
    df, truth = load("snow2008_affect", numeric=True, suffix="_valence")
    df = df[df["label"] != 0].assign(label=lambda d: np.where(d["label"] > 0, "positive", "negative"))
    truth = truth[truth != 0]
    out["valence"] = (df, pd.Series(np.where(truth > 0, "positive", "negative"), index=truth.index))
    for emotion in ("anger", "disgust", "fear", "joy", "sadness", "surprise"):
        df, truth = load("snow2008_affect", numeric=True, suffix=f"_{emotion}")
        out[emotion] = (df.assign(label=np.where(df["label"] >= 30, "strong", "weak")),
                        pd.Series(np.where(truth >= 30, "strong", "weak"), index=truth.index))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5, help="random answer orders per dataset (medians reported)")
    ap.add_argument("--model", default="confusion", choices=("confusion", "one_coin"),
                    help="skill model of fit_skills (one_coin: the earlier model, for comparison)")
    ap.add_argument("--datasets", default="", help="comma-separated names (default: all with >= 5 answers/item)")
    ap.add_argument("--budget", type=float, default=2.5,
                    help="answers per item on average for the budget policy (2.5: half of fixed 5)")
    ap.add_argument("--no-sweep", action="store_true", help="only the issue's setting and the budget policy")
    ap.add_argument("--pause-below", type=float, default=0.25,
                    help="also run the budget policy pausing weak annotators (redundancy.pause_below; default 0.25)")
    ap.add_argument("--no-tuned", action="store_true", help="skip the threshold tuned on gold (3-4 minutes)")
    ap.add_argument("--gold-share", type=float, default=0.1,
                    help="share of the items with truth taken as gold for the tuned threshold (default 0.1; "
                         "at least 20 items)")
    ap.add_argument("--others", action="store_true",
                    help="instead of the nine, the Snow et al. (2008) affect ratings made binary (see others()): "
                         "data the stronger-half rule was not chosen on")
    args = ap.parse_args()
    data = others() if args.others else {n: load(CATEGORICAL[n]) for n in (
        args.datasets.split(",") if args.datasets else CATEGORICAL)}
    rows, seconds = [], []
    print(f"{'dataset':<10} {'items':>6} {'setting':<14} {'answers':>8} {'vs fixed-5':>10} {'acc':>6} "
          f"{'fixed-5 MV acc':>14}")
    for name, (answers, truth) in data.items():
        counts = answers.groupby("task").size()
        keep = counts[counts >= 5].index
        answers = answers[answers["task"].isin(keep)]
        truth = truth[truth.index.isin(keep)]
        if len(truth) < 50 and not args.others:
            print(f"{name:<10} skipped: only {len(truth)} items with truth and >= 5 answers")
            continue
        base = [fixed_majority(answers, truth, 5, seed=s) for s in range(args.seeds)]
        base_used = statistics.median(b.answers_used for b in base)
        base_acc = statistics.median(b.accuracy for b in base)
        best = None
        fit = {"model": args.model}
        head = f"{name:<10} {len(keep):>6}"
        for policy in ([ISSUE_SETTING] if args.no_sweep else SETTINGS):
            label = f"{policy.min_answers}..{policy.max_answers} @{policy.confidence}"
            ratio, acc = _row(head, label, base_used, base_acc, args.seeds,
                              partial(replay, answers, truth, policy, fit_kwargs=fit))
            if acc >= base_acc and (best is None or ratio < best[1]):
                best = (label, ratio, acc)
            if policy == ISSUE_SETTING:
                issue = (ratio, acc)
        bp = BudgetPolicy(budget=args.budget)
        budget = _row(head, f"budget {args.budget}", base_used, base_acc, args.seeds,
                      partial(replay_budget, answers, truth, bp, fit_kwargs=fit))
        paused = (*_row(head, f"+pause {args.pause_below:g}", base_used, base_acc, args.seeds,
                        partial(replay_budget, answers, truth, bp, fit_kwargs=fit, pause_below=args.pause_below)),
                  *_row(head, f"2..7@.95+p{args.pause_below:g}", base_used, base_acc, args.seeds,
                        partial(replay, answers, truth, ISSUE_SETTING, fit_kwargs=fit, pause_below=args.pause_below)))
        second = (*_row(head, "+stronger half", base_used, base_acc, args.seeds,
                        partial(replay_budget, answers, truth, bp, fit_kwargs=fit, second_opinions="stronger_half")),
                  *_row(head, f"+half+p{args.pause_below:g}", base_used, base_acc, args.seeds,
                        partial(replay_budget, answers, truth, bp, fit_kwargs=fit, pause_below=args.pause_below,
                                second_opinions="stronger_half")),
                  *_row(head, "2..7@.95+half", base_used, base_acc, args.seeds,
                        partial(replay, answers, truth, ISSUE_SETTING, fit_kwargs=fit,
                                second_opinions="stronger_half")))
        seconds.append((name, base_acc, issue, second))
        if args.no_tuned:
            rows.append((name, base_acc, issue, best, budget, None, paused))
            sys.stdout.flush()
            continue
        t0 = time.perf_counter()
        tuned = [replay_tuned(answers, truth, gold_share=args.gold_share, seed=s) for s in range(args.seeds)]
        t_used = statistics.median(r.answers_used for r, _ in tuned) / base_used
        t_acc = statistics.median(r.accuracy for r, _ in tuned)
        t_base = statistics.median(_accuracy(b.labels, truth.drop(r.gold)) for b, (r, _) in zip(base, tuned))
        picks = ", ".join("untuned" if t.confidence is None else f"{t.confidence:g}" for _, t in tuned)
        t_answers = statistics.median(r.answers_used for r, _ in tuned)
        print(f"{name:<10} {len(keep):>6} {'tuned on gold':<14} {t_answers:>8.0f} {t_used:>10.2f} {t_acc:>6.3f} "
              f"{t_base:>14.3f}   (confidence {picks}; {tuned[0][1].gold_items} gold items; "
              f"{time.perf_counter() - t0:.1f} s)")
        rows.append((name, base_acc, issue, best, budget, (t_used, t_acc, t_base, picks), paused))
        sys.stdout.flush()
    print("\nsummary: answers relative to fixed 5 + majority vote (lower is better)")
    print(f"{'dataset':<10} {'fixed-5 acc':>11} {'2..7@0.95 answers':>18} {'acc':>6} {'cheapest matching':>20} "
          f"{'answers':>8} {'acc':>6} {'budget: answers':>16} {'acc':>6}")
    met = met_tuned = met_paused = 0
    for name, base_acc, (ratio, acc), best, (b_ratio, b_acc), _, _ in rows:
        b = f"{best[0]:>20} {best[1]:>8.2f} {best[2]:>6.3f}" if best else f"{'none matches':>20} {'':>8} {'':>6}"
        ok = b_acc >= base_acc and b_ratio <= 0.5
        met += ok
        print(f"{name:<10} {base_acc:>11.3f} {ratio:>18.2f} {acc:>6.3f} {b} {b_ratio:>16.2f} {b_acc:>6.3f}"
              f"{'  (matches fixed 5 with half the answers or fewer)' if ok else ''}")
    print(f"\nbudget {args.budget:g}, pausing annotators below {args.pause_below:g} of the way from chance to "
          "the crowd")
    print(f"{'dataset':<10} {'fixed-5 acc':>11} {'answers':>8} {'acc':>6}   {'2..7@0.95 answers':>18} {'acc':>6}"
          f"   {'(without pausing)':>18}")
    for name, base_acc, (ratio, acc), _, _, _, (p_ratio, p_acc, q_ratio, q_acc) in rows:
        ok = p_acc >= base_acc and p_ratio <= 0.5
        met_paused += ok
        note = "  (budget: matches fixed 5 with half the answers or fewer)" if ok else ""
        print(f"{name:<10} {base_acc:>11.3f} {p_ratio:>8.2f} {p_acc:>6.3f}   {q_ratio:>18.2f} {q_acc:>6.3f}"
              f"   {ratio:>11.2f} {acc:>6.3f}{note}")
    print(f"budget policy with pausing: on {met_paused} of {len(rows)} datasets")
    print(f"\nsecond opinions from the stronger half (redundancy.second_opinions), budget {args.budget:g}")
    print(f"{'dataset':<10} {'fixed-5 acc':>11} {'answers':>8} {'acc':>6}   {'+pausing':>8} {'acc':>6}"
          f"   {'2..7@0.95 answers':>18} {'acc':>6}   {'(anyone)':>11} {'acc':>6}")
    met_half = met_half_paused = 0
    for name, base_acc, (ratio, acc), (h_ratio, h_acc, hp_ratio, hp_acc, q_ratio, q_acc) in seconds:
        ok, ok_p = h_acc >= base_acc and h_ratio <= 0.5, hp_acc >= base_acc and hp_ratio <= 0.5
        met_half += ok
        met_half_paused += ok_p
        note = "  (budget: matches fixed 5 with half the answers or fewer)" if ok else ""
        print(f"{name:<10} {base_acc:>11.3f} {h_ratio:>8.2f} {h_acc:>6.3f}   {hp_ratio:>8.2f} {hp_acc:>6.3f}"
              f"   {q_ratio:>18.2f} {q_acc:>6.3f}   {ratio:>11.2f} {acc:>6.3f}{note}")
    print(f"budget policy, second opinions from the stronger half: on {met_half} of {len(seconds)} datasets "
          f"({met_half_paused} with pausing too)")
    if args.no_tuned:
        print(f"budget policy: fixed-5 accuracy with at most half the answers on {met} of {len(rows)} datasets")
        return
    print(f"\ntuned on gold ({args.gold_share:.0%} of the items with truth; answers include the gold items'; "
          "accuracy on the other items)")
    print(f"{'dataset':<10} {'fixed-5 acc':>11} {'answers':>8} {'acc':>6} {'confidence per order':>24}")
    for name, _, _, _, _, (t_used, t_acc, t_base, picks), _ in rows:
        ok = t_acc >= t_base and t_used <= 0.5
        met_tuned += ok
        print(f"{name:<10} {t_base:>11.3f} {t_used:>8.2f} {t_acc:>6.3f} {picks:>24}"
              f"{'  (matches fixed 5 with half the answers or fewer)' if ok else ''}")
    print(f"budget policy: fixed-5 accuracy with at most half the answers on {met} of {len(rows)} datasets")
    print(f"threshold tuned on gold: on {met_tuned} of {len(rows)} datasets")


if __name__ == "__main__":
    main()
