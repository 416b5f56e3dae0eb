"""The project quality summary (service, API, CLI) on real answers from the shared WSD dataset."""

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from labelwright.cli import main
from labelwright.errors import ValidationError
from labelwright.quality import select_proba
from labelwright.services import users
from labelwright.services.export import jsonl_lines
from labelwright.services.items import add_items
from labelwright.services.labels import project_labels
from labelwright.services.projects import create_project, update_settings
from labelwright.services.quality import project_quality
from labelwright.store import loads
from tests.conftest import SHARED, bearer, join, post_login, seed_answer

WSD = SHARED / "snow2008_wsd" / "labels.csv"


@pytest.fixture
def wsd_project(store, owner):
    """30 items of Snow et al.'s word-sense task with their 10 real answers each, plus one fast clicker."""
    if not WSD.exists():
        pytest.skip(f"shared datasets not found at {WSD}")
    answers = pd.read_csv(WSD, dtype=str)
    items = sorted(answers["item"].unique())[:30]
    answers = answers[answers["item"].isin(items)]
    answers = answers[answers.groupby("item").cumcount() < 7]  # 7 real answers, room for the clicker
    p = create_project(store, {
        "name": "WSD", "slug": "wsd", "overlap": 9, "id_field": "id",
        "fields": [{"name": "text"}],
        "questions": [{"name": "sense", "type": "single_choice", "options": ["1", "2", "3"]},
                      {"name": "note", "type": "text", "required": False}]})
    add_items(store, p, [{"id": i, "text": f"item {i}"} for i in items])
    ids = {i: n + 1 for n, i in enumerate(items)}  # item ids follow import order
    workers = {}
    for _, row in answers.iterrows():
        if row["worker"] not in workers:
            workers[row["worker"]] = users.create_user(store, f"w{len(workers)}", "annotator")
            join(store, workers[row["worker"]].name, [p])
        u = workers[row["worker"]]
        seed_answer(store, ids[row["item"]], u, {"sense": row["label"]}, active_ms=8000)
    clicker = users.create_user(store, "clicker", "annotator")
    join(store, "clicker", [p])
    for i in items:
        seed_answer(store, ids[i], clicker, {"sense": "3"}, active_ms=300)
    return p


def test_summary_on_real_answers(store, wsd_project):
    q = project_quality(store, wsd_project, doubt_limit=5)
    sense = q["questions"][0]
    assert sense["name"] == "sense" and sense["summarised"]
    assert 0.5 < sense["percent_agreement"] <= 1 and sense["krippendorff_alpha"] is not None
    assert sense["confusion"]["labels"] == ["1", "2", "3"]
    assert sum(map(sum, sense["confusion"]["counts"])) == sense["answers"]
    assert q["questions"][1] == {"name": "note", "type": "text", "summarised": False,
                                 "reason": "text answers are not aggregated"}
    flagged = [a["annotator"] for a in q["annotators"] if a["likely_spammer"]]
    assert flagged[0] == "clicker"
    clicker = next(a for a in q["annotators"] if a["annotator"] == "clicker")
    assert any("median 0.3 s" in r for r in clicker["reasons"])
    assert len(q["items_in_doubt"]) == 5
    conf = [d["confidence"] for d in q["items_in_doubt"]]
    assert conf == sorted(conf)


def test_empty_project_summary(store, spam_project):
    q = project_quality(store, spam_project)
    assert q["annotations"] == 0 and q["questions"] == [] and q["annotators"] == []


def test_api_and_cli(http, store, owner, make_annotator, wsd_project, db_url):
    _, tok = make_annotator("nosy")
    assert http.get("/api/v1/projects/wsd/quality", headers=bearer(tok)).status_code == 403
    r = http.get("/api/v1/projects/wsd/quality?doubt=3", headers=bearer(owner[1]))
    assert r.status_code == 200 and len(r.json()["items_in_doubt"]) == 3
    res = CliRunner().invoke(main, ["--db", db_url, "quality", "wsd", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["questions"][0]["name"] == "sense"
    res = CliRunner().invoke(main, ["--db", db_url, "quality", "wsd"], env={"COLUMNS": "200"})
    assert "clicker" in res.output and "Krippendorff" in res.output


def test_quality_page(http, store, owner, make_annotator, wsd_project):
    make_annotator("nosy", password="nosy-password")
    post_login(http, "nosy", "nosy-password")
    assert http.get("/projects/wsd/quality").status_code == 403
    http.cookies.clear()
    post_login(http, "olive", "owner-password")
    r = http.get("/projects/wsd/quality")
    assert r.status_code == 200
    assert "Confusion: sense" in r.text and "likely spammer" in r.text and "clicker" in r.text
    assert 'href="/projects/wsd/quality"' in http.get("/projects/wsd").text


def test_truth_inference_auto_names_its_method_and_reason_everywhere(http, store, owner, wsd_project):
    """``truth_inference: auto`` (a setting of a running project): AutoSelect fits each categorical question;
    the labels are its labels, and the quality summary, the page and the export name the method it chose
    and why. The default names no reason."""
    default = project_quality(store, wsd_project)["questions"][0]
    assert not default["method"].startswith("AutoSelect") and default["method_reason"] is None
    p = update_settings(store, wsd_project, {"truth_inference": "auto"}, by=owner[0])
    assert p.schema.truth_inference == "auto"
    sense = project_quality(store, p)["questions"][0]
    assert sense["method"].startswith("AutoSelect: ") and len(sense["method_reason"]) > 40
    # the labels are AutoSelect's on the stored answers
    ql = project_labels(store, p, keep_answers=True)["sense"]
    direct = select_proba(ql.answers[["task", "worker", "label"]])
    assert direct.attrs["method"] == sense["method"] == ql.method
    assert ql.values == direct.idxmax(axis=1).reindex(ql.tasks).tolist()
    lines = [loads(line) for line in b"".join(jsonl_lines(store, p)).splitlines()]
    assert {line["aggregate"]["sense"]["method"] for line in lines} == {sense["method"]}
    post_login(http, "olive", "owner-password")
    page = http.get("/projects/wsd/quality").text
    assert f"Why <code>{sense['method']}</code> for sense:" in page
    with pytest.raises(ValidationError, match="truth_inference"):
        update_settings(store, p, {"truth_inference": "best"}, by=owner[0])
