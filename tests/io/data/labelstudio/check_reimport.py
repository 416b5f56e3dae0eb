"""Import labelwright's Label Studio export into a running Label Studio and check the annotations arrive.

For each project of this folder: import it into labelwright (a throw-away SQLite database), export it with
``labelwright.io.labelstudio.export_tasks``, create two Label Studio projects (one with the config the export
writes, one with the original config), import the export into each through the REST API
(``POST /api/projects/<id>/import``), read each back (``/export?exportType=JSON``) and compare: the number of
tasks, annotations, predictions, ground truths and cancelled (skipped) annotations, every result's
``from_name`` and ``value``, and which Label Studio user each annotation belongs to. Run it with labelwright's
Python against the server make.py used (its admin token: make.py enables legacy tokens)::

    python tests/io/data/labelstudio/check_reimport.py --token <admin API token>
"""

from __future__ import annotations

import argparse
import json
import tempfile
import urllib.request
from pathlib import Path

from labelwright.io.labelstudio import export_tasks, import_labelstudio
from labelwright.services.projects import get_project
from labelwright.store import Store

HERE = Path(__file__).resolve().parent
NAMES = ["reviews", "preference", "demos", "ranking", "entities", "boxes", "detection"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8089")
    ap.add_argument("--token", required=True)
    args = ap.parse_args()

    def call(method: str, path: str, body=None):
        req = urllib.request.Request(args.url + path, data=None if body is None else json.dumps(body).encode(),
                                     method=method, headers={"Authorization": f"Token {args.token}",
                                                             "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def results(tasks):
        return sorted(json.dumps([(r["from_name"], r["value"]) for r in a["result"]], sort_keys=True)
                      for t in tasks for a in t["annotations"])

    def count(tasks, key, flag=None):
        return sum(bool(a[flag]) if flag else 1 for t in tasks for a in t[key])

    store = Store(f"sqlite:///{tempfile.mkdtemp()}/check.db")
    store.migrate()
    ok = True
    for name in NAMES:
        report = import_labelstudio(store, HERE / f"{name}.json", HERE / f"{name}.xml")
        tasks, config, _ = export_tasks(store, get_project(store, report.project))
        for which, cfg in (("ours", config), ("original", (HERE / f"{name}.xml").read_text())):
            pid = call("POST", "/api/projects/", {"title": f"reimport {name} {which}", "label_config": cfg})["id"]
            call("POST", f"/api/projects/{pid}/import", tasks)
            back = call("GET", f"/api/projects/{pid}/export?exportType=JSON&download_all_tasks=true")
            checks = {"tasks": (len(back), len(tasks)), "annotations": (count(back, "annotations"),
                                                                        count(tasks, "annotations")),
                      "predictions": (count(back, "predictions"), count(tasks, "predictions")),
                      "ground_truth": (count(back, "annotations", "ground_truth"),
                                       count(tasks, "annotations", "ground_truth")),
                      "cancelled": (count(back, "annotations", "was_cancelled"),
                                    count(tasks, "annotations", "was_cancelled"))}
            same = results(back) == results(tasks) and all(a == b for a, b in checks.values())
            ok &= same
            users = sorted({a["completed_by"] for t in back for a in t["annotations"]})
            print(f"{name:10s} {which:8s} " + " ".join(f"{k} {a}/{b}" for k, (a, b) in checks.items())
                  + f" results-equal {results(back) == results(tasks)} users {users} {'OK' if same else 'MISMATCH'}")
    print("ALL OK" if ok else "SOME MISMATCH")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
