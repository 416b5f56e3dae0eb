# ruff: noqa: E501 - the tables of annotations below read best one annotator a line
"""Make the Label Studio files of this folder with a real Label Studio (see README.md).

Run against a Label Studio started on ``--url`` whose data folder is ``--data-dir``:

    python3 -m venv /tmp/ls-venv && /tmp/ls-venv/bin/pip install label-studio==1.23.2
    LABEL_STUDIO_USERNAME=admin@example.com LABEL_STUDIO_PASSWORD=adminpass123 \\
        /tmp/ls-venv/bin/label-studio start --no-browser --port 8089 --data-dir /tmp/ls-data &
    /tmp/ls-venv/bin/python tests/io/data/labelstudio/make.py --data-dir /tmp/ls-data

It makes the annotators (ana, ben, chen) and their API tokens through Label Studio's own Django shell (the
open-source edition has no API to create users), enables legacy API tokens, then creates one project per
config in ``PROJECTS`` through the REST API, imports its tasks, has each annotator post their annotations
with their own token, marks ground truths, posts predictions, and writes the project's JSON export
(an export snapshot with the annotators' e-mail addresses; for ``reviews`` also the plain
``/api/projects/<id>/export?exportType=JSON`` download, whose annotators are bare user ids) and its config here. Only the standard library is used.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEOPLE = {"admin@example.com": "Admin", "ana@example.com": "Ana", "ben@example.com": "Ben",
          "chen@example.com": "Chen"}

USERS_SCRIPT = """
import json
from organizations.models import Organization, OrganizationMember
from rest_framework.authtoken.models import Token
from users.models import User
org = Organization.objects.first()
org.jwt.legacy_api_tokens_enabled = True
org.jwt.save()
out = {}
for email, first in %r.items():
    u = User.objects.filter(email=email).first()
    if u is None:
        u = User.objects.create_user(email=email, password="labelpass123", username=email, first_name=first)
        OrganizationMember.objects.get_or_create(user=u, organization=org)
        u.active_organization = org
        u.save()
    out[email] = Token.objects.get_or_create(user=u)[0].key
print("TOKENS" + json.dumps(out))
"""


def choices(name, to, *values, multiple=False):
    return {"from_name": name, "to_name": to, "type": "choices", "value": {"choices": list(values)}}


def rating(name, to, n):
    return {"from_name": name, "to_name": to, "type": "rating", "value": {"rating": n}}


def textarea(name, to, *texts):
    return {"from_name": name, "to_name": to, "type": "textarea", "value": {"text": list(texts)}}


def pairwise(name, side):  # the Pairwise tag names itself as to_name (as its editor does)
    return {"from_name": name, "to_name": name, "type": "pairwise", "value": {"selected": side}}


def ranker(name, to, *ids):  # a Ranker without buckets keeps the order under "_" (as its editor does)
    return {"from_name": name, "to_name": to, "type": "ranker", "value": {"ranker": {"_": list(ids)}}}


def span(name, to, text, start, end, label):
    return {"from_name": name, "to_name": to, "type": "labels", "id": f"s{start}",
            "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]}}


def box(name, to, x, y, w, h, label, size=(640, 480)):
    return {"from_name": name, "to_name": to, "type": "rectanglelabels", "id": f"b{x}", "original_width": size[0],
            "original_height": size[1], "image_rotation": 0,
            "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0, "rectanglelabels": [label]}}


REVIEWS = ["The battery lasts two days and the price was fair.", "Support never answered my e-mails.",
           "Arrived on time. Nothing special.", "Broke after a week; the refund took a month.",
           "Lovely quality, friendly shop, will buy again."]

PROJECTS = {
    "reviews": {
        "config": """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text" choice="single" required="true">
    <Choice value="positive"/>
    <Choice value="negative"/>
    <Choice value="neutral"/>
  </Choices>
  <Choices name="topics" toName="text" choice="multiple">
    <Choice value="price"/>
    <Choice value="service"/>
    <Choice value="quality"/>
  </Choices>
  <Rating name="stars" toName="text" maxRating="5"/>
  <TextArea name="summary" toName="text" rows="2"/>
</View>""",
        "tasks": [{"text": t, "source": "shop"} for t in REVIEWS],
        # task index -> [(annotator, result or "skip", ground truth, lead time)]
        "annotations": {
            0: [("ana", [choices("sentiment", "text", "positive"), choices("topics", "text", "price", "quality"),
                         rating("stars", "text", 5), textarea("summary", "text", "long battery, fair price")], False, 12.5),
                ("ben", [choices("sentiment", "text", "positive"), rating("stars", "text", 4)], False, 8.0),
                ("chen", [choices("sentiment", "text", "neutral"), choices("topics", "text", "price")], False, 20.25)],
            1: [("ana", [choices("sentiment", "text", "negative"), choices("topics", "text", "service"),
                         rating("stars", "text", 1)], False, 6.0),
                ("ben", [choices("sentiment", "text", "negative"), rating("stars", "text", 2)], False, 5.5)],
            2: [("ana", "skip", False, 3.0),
                ("ben", [choices("sentiment", "text", "neutral"), rating("stars", "text", 3)], False, 9.0)],
            3: [("admin", [choices("sentiment", "text", "negative"), choices("topics", "text", "quality", "service")],
                 True, 15.0),
                ("chen", [choices("sentiment", "text", "negative")], False, 7.0)],
        },
        "predictions": {0: ("sentiment-v1", 0.91, [choices("sentiment", "text", "positive")]),
                        1: ("sentiment-v1", 0.66, [choices("sentiment", "text", "neutral")]),
                        4: ("sentiment-v1", 0.97, [choices("sentiment", "text", "positive")])},
    },
    "preference": {
        "config": """<View>
  <Header value="Prompt"/>
  <Text name="question" value="$prompt"/>
  <Text name="left" value="$response_a"/>
  <Text name="right" value="$response_b"/>
  <Pairwise name="preference" toName="left,right"/>
</View>""",
        "tasks": [
            {"prompt": "Name a prime number above 10.", "response_a": "11", "response_b": "12"},
            {"prompt": "What is the capital of Australia?", "response_a": "Sydney", "response_b": "Canberra"},
            {"prompt": "Translate 'merci' to English.", "response_a": "Thank you", "response_b": "Please"},
            {"prompt": "Is 0.1 + 0.2 == 0.3 in binary floating point?", "response_a": "No, it is 0.30000000000000004",
             "response_b": "Yes"},
        ],
        "annotations": {
            0: [("ana", [pairwise("preference", "left")], False, 4.0), ("ben", [pairwise("preference", "left")], False, 3.0)],
            1: [("ana", [pairwise("preference", "right")], False, 5.0), ("ben", [pairwise("preference", "right")], False, 6.0),
                ("chen", [pairwise("preference", "left")], False, 2.0)],
            2: [("ana", [pairwise("preference", "left")], False, 3.5), ("admin", [pairwise("preference", "left")], True, 2.0)],
            3: [("ben", [pairwise("preference", "left")], False, 7.0), ("chen", "skip", False, 1.0)],
        },
        "predictions": {1: ("judge-7b", 0.8, [pairwise("preference", "right")])},
    },
    "demos": {
        "config": """<View>
  <Text name="prompt" value="$prompt"/>
  <TextArea name="response" toName="prompt" required="true" maxSubmissions="1"/>
</View>""",
        "tasks": [{"prompt": "Write a haiku about rain."}, {"prompt": "Explain what a hash map is in one sentence."},
                  {"prompt": "Say hello in French."}],
        "annotations": {
            0: [("ana", [textarea("response", "prompt", "Soft rain on the roof\nthe gutters hum a low song\nthe street "
                                                         "shines like glass")], False, 60.0)],
            1: [("ben", [textarea("response", "prompt", "A hash map stores key-value pairs and finds a value from its "
                                                         "key in constant time on average by hashing the key.")], False, 45.0),
                ("chen", [textarea("response", "prompt", "It maps keys to values using a hash function.")], False, 30.0)],
            2: [("ana", [textarea("response", "prompt", "Bonjour !")], False, 5.0)],
        },
        "predictions": {},
    },
    "ranking": {
        "config": """<View>
  <Text name="query" value="$query"/>
  <List name="results" value="$items" title="Search results"/>
  <Ranker name="rank" toName="results"/>
</View>""",
        "tasks": [
            {"query": "python list sort", "items": [
                {"id": "docs", "title": "Sorting HOW TO", "body": "list.sort() and sorted()"},
                {"id": "blog", "title": "10 sorting tricks", "body": "A blog post"},
                {"id": "qa", "title": "How do I sort a list of dicts?", "body": "Use key=itemgetter(...)"}]},
            {"query": "sqlite upsert", "items": [
                {"id": "a", "title": "UPSERT", "body": "INSERT ... ON CONFLICT DO UPDATE"},
                {"id": "b", "title": "REPLACE", "body": "INSERT OR REPLACE deletes the row first"},
                {"id": "c", "title": "Triggers", "body": "CREATE TRIGGER"}]},
        ],
        "annotations": {
            0: [("ana", [ranker("rank", "results", "docs", "qa", "blog")], False, 10.0),
                ("ben", [ranker("rank", "results", "qa", "docs", "blog")], False, 11.0)],
            1: [("ana", [ranker("rank", "results", "a", "b", "c")], False, 8.0)],
        },
        "predictions": {},
    },
    "entities": {
        "config": """<View>
  <Labels name="entities" toName="text">
    <Label value="PER"/>
    <Label value="ORG"/>
  </Labels>
  <Text name="text" value="$text"/>
  <Choices name="relevant" toName="text">
    <Choice value="yes"/>
    <Choice value="no"/>
  </Choices>
</View>""",
        "tasks": [{"text": "Ada Lovelace wrote for Babbage."}, {"text": "Grace Hopper joined Remington Rand."}],
        "annotations": {
            0: [("ana", [span("entities", "text", "Ada Lovelace wrote for Babbage.", 0, 12, "PER"),
                         choices("relevant", "text", "yes")], False, 14.0)],
            1: [("ana", [span("entities", "text", "Grace Hopper joined Remington Rand.", 20, 34, "ORG")], False, 9.0),
                ("ben", [choices("relevant", "text", "no")], False, 3.0)],
        },
        "predictions": {},
    },
    "boxes": {
        "config": """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="objects" toName="image">
    <Label value="cat"/>
    <Label value="dog"/>
  </RectangleLabels>
  <Choices name="quality" toName="image">
    <Choice value="sharp"/>
    <Choice value="blurry"/>
  </Choices>
</View>""",
        "tasks": [{"image": "https://example.org/images/1.jpg"}, {"image": "https://example.org/images/2.jpg"}],
        "annotations": {
            0: [("ana", [box("objects", "image", 10, 20, 30, 40, "cat"), choices("quality", "image", "sharp")], False, 20.0)],
            1: [("ben", [choices("quality", "image", "blurry")], False, 4.0)],
        },
        "predictions": {},
    },
    "detection": {  # boxes by three people on images of two sizes, a ground truth, a skip, a detector's boxes
        "config": """<View>
  <Image name="photo" value="$photo"/>
  <RectangleLabels name="objects" toName="photo">
    <Label value="car"/>
    <Label value="person"/>
  </RectangleLabels>
</View>""",
        "tasks": [{"photo": "https://example.org/street/1.jpg"}, {"photo": "https://example.org/street/2.jpg"}],
        "annotations": {
            0: [("ana", [box("objects", "photo", 12.5, 40, 25, 20, "car"),
                         box("objects", "photo", 60, 30, 7.5, 35, "person")], True, 31.0),
                ("ben", [box("objects", "photo", 13, 41, 24, 19, "car")], False, 12.0),
                ("chen", "skip", False, 2.0)],
            1: [("ana", [box("objects", "photo", 0, 0, 50, 50, "car", (800, 600))], False, 8.0),
                ("chen", [box("objects", "photo", 1.25, 0.5, 48.75, 49.5, "car", (800, 600)),
                          box("objects", "photo", 70, 10, 10, 80, "person", (800, 600))], False, 15.0)],
        },
        "predictions": {1: ("detector-v2", 0.8, [box("objects", "photo", 2, 1, 47, 48, "car", (800, 600))])},
    },
}


class Api:
    def __init__(self, url: str, tokens: dict[str, str]):
        self.url = url.rstrip("/")
        self.tokens = tokens

    def call(self, method: str, path: str, body=None, who: str = "admin@example.com"):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Token {self.tokens[who]}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
        return json.loads(raw) if raw else None


def users_and_tokens(python: str, data_dir: str) -> dict[str, str]:
    """Create the people through Label Studio's Django shell; return {email: API token}."""
    manage = subprocess.run([python, "-c", "import label_studio, os; print(os.path.dirname(label_studio.__file__))"],
                            capture_output=True, text=True, check=True).stdout.strip()
    done = subprocess.run([python, "manage.py", "shell"], input=USERS_SCRIPT % PEOPLE, capture_output=True,
                          text=True, cwd=manage, timeout=300, check=True,
                          env={"LABEL_STUDIO_BASE_DATA_DIR": data_dir, "DJANGO_SETTINGS_MODULE":
                               "core.settings.label_studio", "PATH": "/usr/bin:/bin"})
    line = next(x for x in done.stdout.splitlines() if x.startswith("TOKENS"))
    return json.loads(line[len("TOKENS"):])


def make_project(api: Api, name: str, spec: dict) -> int:
    project = api.call("POST", "/api/projects/", {"title": f"labelwright {name}", "label_config": spec["config"]})
    pid = project["id"]
    api.call("POST", f"/api/projects/{pid}/import", spec["tasks"])
    tasks = api.call("GET", f"/api/tasks/?project={pid}&page_size=100")["tasks"]
    ids = [t["id"] for t in sorted(tasks, key=lambda t: t["id"])]
    for index, anns in spec["annotations"].items():
        for who, result, truth, lead in anns:
            email = f"{who}@example.com"
            body = ({"result": [], "was_cancelled": True, "lead_time": lead} if result == "skip"
                    else {"result": result, "lead_time": lead})
            ann = api.call("POST", f"/api/tasks/{ids[index]}/annotations/", body, who=email)
            if truth:
                api.call("PATCH", f"/api/annotations/{ann['id']}/", {"ground_truth": True}, who=email)
    for index, (version, score, result) in spec["predictions"].items():
        api.call("POST", "/api/predictions/", {"task": ids[index], "result": result, "score": score,
                                               "model_version": version})
    return pid


def export(api: Api, pid: int, people: bool = True) -> list:
    """The project's JSON export; with ``people``, an export snapshot whose annotations carry their author
    (``completed_by`` as id, e-mail and names) and their predictions in full, instead of the bare ids of
    the plain download."""
    if not people:
        return api.call("GET", f"/api/projects/{pid}/export?exportType=JSON&download_all_tasks=true")
    snap = api.call("POST", f"/api/projects/{pid}/exports/", {
        "title": "labelwright", "serialization_options": {"annotations__completed_by": {"only_id": False},
                                                    "predictions": {"only_id": False}}})
    for _ in range(60):
        if api.call("GET", f"/api/projects/{pid}/exports/{snap['id']}")["status"] == "completed":
            break
        time.sleep(0.5)
    return api.call("GET", f"/api/projects/{pid}/exports/{snap['id']}/download?exportType=JSON")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8089")
    ap.add_argument("--data-dir", required=True, help="Label Studio's --data-dir")
    ap.add_argument("--python", default="/tmp/ls-venv/bin/python", help="the Python that has label-studio")
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--only", nargs="*", help="make only these projects (the others' files stay as they are)")
    args = ap.parse_args()
    tokens = users_and_tokens(args.python, args.data_dir)
    api = Api(args.url, tokens)
    version = api.call("GET", "/api/version")
    out = Path(args.out)
    for name, spec in PROJECTS.items():
        if args.only and name not in args.only:
            continue
        pid = make_project(api, name, spec)
        (out / f"{name}.xml").write_text(spec["config"] + "\n")
        (out / f"{name}.json").write_text(json.dumps(export(api, pid), indent=1, ensure_ascii=False) + "\n")
        if name == "reviews":  # the plain download too: annotators as bare user ids
            (out / f"{name}-plain.json").write_text(json.dumps(export(api, pid, people=False), indent=1,
                                                               ensure_ascii=False) + "\n")
        print(f"{name}: project {pid}", file=sys.stderr)
    print(f"Label Studio {version.get('release') or version}", file=sys.stderr)


if __name__ == "__main__":
    main()
