"""Rebuild the demo slices shipped in labelwright/demo/data from ../shared/datasets.

    python scripts/make_demo_data.py [path/to/shared/datasets]

Deterministic: the same source files give the same slices.
"""

import csv
import json
import random
import sys
from pathlib import Path

src = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "datasets")
dst = Path(__file__).resolve().parents[1] / "labelwright" / "demo" / "data"
dst.mkdir(parents=True, exist_ok=True)
rng = random.Random(20261125)

# 300 YouTube comments, 60 from each of the 5 videos.
rows = list(csv.DictReader(open(src / "youtube_spam" / "items.csv", encoding="utf-8")))
by_video = {}
for r in rows:
    by_video.setdefault(r["video"], []).append(r)
picked = []
for video in sorted(by_video):
    picked += rng.sample(by_video[video], 60)
picked.sort(key=lambda r: r["item"])
with open(dst / "youtube_spam_300.jsonl", "w", encoding="utf-8") as f:
    for r in picked:
        f.write(json.dumps({"id": r["item"], "text": r["text"], "author": r["author"], "video": r["video"],
                            "date": r["date"]}, ensure_ascii=False) + "\n")
# Ground truth is kept apart from the items: annotators are sent item data, never answers.
with open(dst / "youtube_spam_300_truth.csv", "w", encoding="utf-8", newline="") as f:
    w = csv.writer(f)
    w.writerow(["id", "label"])
    for r in picked:
        w.writerow([r["item"], "spam" if r["label"] == "1" else "ham"])

# 200 PandaLM pairs with their prompt and both responses; the three experts' votes kept as metadata.
prompts = {r["prompt"]: r for r in csv.DictReader(open(src / "pandalm_pairwise" / "prompts.csv", encoding="utf-8"))}
responses = {r["item"]: r for r in csv.DictReader(open(src / "pandalm_pairwise" / "responses.csv", encoding="utf-8"))}
info = list(csv.DictReader(open(src / "pandalm_pairwise" / "pair_info.csv", encoding="utf-8")))
votes = {}
for r in csv.DictReader(open(src / "pandalm_pairwise" / "pairs.csv", encoding="utf-8")):
    votes.setdefault(r["pair"], []).append({"1": "A", "2": "B", "0": "tie"}[r["label"]])
chosen = sorted(rng.sample(info, 200), key=lambda r: int(r["pair"]))
with open(dst / "pandalm_200.jsonl", "w", encoding="utf-8") as f:
    for r in chosen:
        p = prompts[r["prompt"]]
        user = p["instruction"] + (("\n\n" + p["input"]) if p["input"].strip() else "")
        f.write(json.dumps({
            "id": f"pandalm-{r['pair']}",
            "conversation": [{"role": "user", "content": user}],
            "response_a": responses[r["left"]]["text"],
            "response_b": responses[r["right"]]["text"],
            "model_a": r["left_model"], "model_b": r["right_model"],
        }, ensure_ascii=False) + "\n")
with open(dst / "pandalm_200_expert_votes.csv", "w", encoding="utf-8", newline="") as f:
    w = csv.writer(f)
    w.writerow(["id", "worker", "choice"])
    for r in chosen:
        for k, v in enumerate(votes[r["pair"]], start=1):
            w.writerow([f"pandalm-{r['pair']}", f"expert{k}", v])
print("wrote", sorted(p.name for p in dst.iterdir()))
