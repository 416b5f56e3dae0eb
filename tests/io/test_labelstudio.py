"""Label Studio import and export, on files a real Label Studio 1.23.2 made (tests/io/data/labelstudio/make.py).

The suite cannot start Label Studio (too heavy); our export is checked against the structure of the real
files instead, and by importing it back. The check that Label Studio itself imports our export is
tests/io/data/labelstudio/check_reimport.py, run against a live server (see the folder's README).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from labelwright.cli import main
from labelwright.errors import Conflict, ValidationError
from labelwright.io.labelstudio import RAW_KEY, export_tasks, import_labelstudio, import_tasks
from labelwright.io.labelstudio_config import CONTROLS, NOT_YET, config_for, map_config, parse_config
from labelwright.services import machines
from labelwright.services.items import item_detail
from labelwright.services.projects import create_project, get_project, list_projects
from labelwright.store import tables as t

DATA = Path(__file__).parent / "data" / "labelstudio"


def _load(name: str) -> list:
    return json.loads((DATA / f"{name}.json").read_text())


def _config(name: str) -> str:
    return (DATA / f"{name}.xml").read_text()


def _import(store, name: str, **kw):
    return import_labelstudio(store, DATA / f"{name}.json", DATA / f"{name}.xml", **kw)


def _by_ext(store, project) -> dict:
    with store.read() as conn:
        rows = conn.execute(select(t.items.c.id, t.items.c.external_id).where(t.items.c.project_id == project.id))
        return {ext: item_detail(store, project, i) for i, ext in rows}


# ---- the config ------------------------------------------------------------------------------------------


def test_every_equivalent_tag_becomes_a_question():
    reviews = map_config(parse_config(_config("reviews")), _load("reviews"))
    assert [(q["name"], q["type"]) for q in reviews.questions()] == [
        ("sentiment", "single_choice"), ("topics", "multiple_choice"), ("stars", "rating"), ("summary", "text")]
    assert reviews.controls["sentiment"].question["required"] is True  # required="true" in the config
    assert reviews.controls["topics"].question["required"] is False  # Label Studio's default
    assert reviews.controls["stars"].question["max"] == 5 and reviews.unmapped == []
    # the objects are named "left"/"right" but show $response_a/$response_b: the fields are the data keys
    pref = map_config(parse_config(_config("preference")), _load("preference"))
    assert pref.questions()[0] | {"required": False} == {
        "name": "preference", "type": "pairwise", "a": "response_a", "b": "response_b", "rationale": "none",
        "required": False}
    ranking = map_config(parse_config(_config("ranking")), _load("ranking"))
    assert ranking.questions()[0]["candidates"] == ["items_1", "items_2", "items_3"]


def test_spans_and_boxes_map():
    spans = map_config(parse_config(_config("entities")), _load("entities"))
    assert spans.unmapped == [] and spans.questions()[0] == {
        "name": "entities", "type": "spans", "field": "text", "labels": ["PER", "ORG"], "allow_overlap": True,
        "required": False}
    boxes = map_config(parse_config(_config("boxes")), _load("boxes"))
    assert boxes.unmapped == [] and boxes.questions()[0] == {
        "name": "objects", "type": "boxes", "field": "image", "labels": ["cat", "dog"], "width_field": "image_width",
        "height_field": "image_height", "required": False}
    assert NOT_YET == {} and "RectangleLabels" in CONTROLS


def test_span_offsets_are_counted_as_the_browser_counts_them():
    """Label Studio's offsets are JavaScript's (UTF-16): an emoji counts twice there, once in Python."""
    b = map_config(parse_config(_config("entities")), []).controls["entities"]
    data = {"text": "\U0001F600 Ada met Bob"}
    spans = b.control.answer({"start": 3, "end": 6, "labels": ["PER"]}, b, data)
    assert spans == [{"start": 2, "end": 5, "label": "PER"}] and data["text"][2:5] == "Ada"
    assert b.control.value(spans, b, data) == [{"start": 3, "end": 6, "text": "Ada", "labels": ["PER"]}]


def test_other_tags_are_reported_with_their_reason():
    xml = """<View><Text name="t" value="$text"/>
      <Choices name="ok" toName="t"><Choice value="a"/><Choice value="b"/></Choices>
      <Choices name="dyn" toName="t" value="$options"/>
      <Choices name="region" toName="t" perRegion="true"><Choice value="a"/><Choice value="b"/></Choices>
      <Number name="n" toName="t"/><Audio name="audio" value="$audio"/>
      <Ranker name="r" toName="l"><Bucket name="good"/></Ranker><List name="l" value="$items"/></View>"""
    tasks = [{"data": {"text": "x", "items": [{"id": "1"}, {"id": "2"}]}}]
    m = map_config(parse_config(xml), tasks)
    assert list(m.controls) == ["ok"]
    reasons = {u.name: u.reason for u in m.unmapped}
    assert set(reasons) == {"dyn", "region", "n", "audio", "r"}
    assert "0 choices" in reasons["dyn"] and "per region" in reasons["region"]
    assert "Buckets" in reasons["r"] and "no labelwright question type" in reasons["n"]


@pytest.mark.parametrize("xml,message", [
    ('<!DOCTYPE v [<!ENTITY a "aaaa">]><View><Text name="t" value="&a;"/></View>', "DOCTYPE"),
    ("<View><Text name='t'", "not well-formed XML"),
    ("<Config/>", "starts with <View>"),
])
def test_unsafe_or_broken_configs_are_refused(xml, message):
    with pytest.raises(ValidationError, match=message) as e:
        parse_config(xml, file="label_config.xml")
    assert e.value.file == "label_config.xml"


# ---- import ----------------------------------------------------------------------------------------------


def test_import_brings_people_annotations_skips_gold_and_predictions(store):
    report = _import(store, "reviews")
    assert (report.project, report.items, report.annotations, report.skipped, report.gold, report.predictions) == (
        "reviews", 5, 8, 1, 1, 3)
    assert report.people == ["admin@example.com", "ana@example.com", "ben@example.com", "chen@example.com"]
    assert report.machines == ["llm:reviews.sentiment-v1"] and report.unmapped == []
    p = get_project(store, "reviews")
    assert p.overlap == 4  # three people and a prediction on the first task
    items = _by_ext(store, p)
    tasks = _load("reviews")
    first = items[str(tasks[0]["id"])]
    by = {a["annotator"]: a for a in first["annotations"]}
    assert by["ana@example.com"]["answers"] == {"sentiment": "positive", "topics": ["price", "quality"],
                                                "stars": 5, "summary": "long battery, fair price"}
    assert by["ana@example.com"]["active_ms"] == 12500  # lead_time 12.5 s
    assert by["llm:reviews.sentiment-v1"]["answers"] == {"sentiment": "positive"}
    assert first["data"] == {"text": tasks[0]["data"]["text"], "source": "shop"}
    # the ground truth is the item's gold answer; the annotation stays too
    truth = items[str(tasks[3]["id"])]
    assert truth["gold"] == {"sentiment": "negative", "topics": ["service", "quality"]}  # in option order
    assert "admin@example.com" in {a["annotator"] for a in truth["annotations"]}
    with store.read() as conn:
        skips = conn.execute(select(t.users.c.name, t.items.c.external_id).select_from(
            t.skips.join(t.users, t.users.c.id == t.skips.c.user_id).join(t.items, t.items.c.id == t.skips.c.item_id))
            .where(t.skips.c.project_id == p.id)).all()
        members = conn.execute(select(func.count()).where(t.memberships.c.project_id == p.id)).scalar()
        done = dict(conn.execute(select(t.items.c.external_id, t.items.c.n_done).where(
            t.items.c.project_id == p.id)).all())
    assert skips == [("ana@example.com", str(tasks[2]["id"]))]
    assert members == 5  # four people and the machine annotator
    assert done == {str(task["id"]): len([a for a in task["annotations"] if not a["was_cancelled"]])
                    + len(task["predictions"]) for task in tasks}
    machine = machines.list_machine_annotators(store, p)
    assert [(m["user"], m["kind"], m["enabled"], m["items_answered"]) for m in machine] == [
        ("llm:reviews.sentiment-v1", "labelstudio", False, 3)]


def test_the_plain_export_names_people_by_id_and_says_predictions_are_missing(store):
    report = import_labelstudio(store, DATA / "reviews-plain.json", DATA / "reviews.xml", slug="plain")
    assert report.people == ["ls-user-1", "ls-user-2", "ls-user-3", "ls-user-4"]
    assert report.predictions == 0 and report.predictions_without_results == 3 and report.annotations == 8


def test_pairwise_and_ranking_answers(store):
    _import(store, "preference")
    _import(store, "ranking")
    pref = _by_ext(store, get_project(store, "preference"))
    tasks = _load("preference")
    assert {a["annotator"]: a["answers"]["preference"]["choice"] for a in pref[str(tasks[1]["id"])]["annotations"]} == {
        "ana@example.com": "B", "ben@example.com": "B", "chen@example.com": "A", "llm:preference.judge-7b": "B"}
    ranks = _by_ext(store, get_project(store, "ranking"))
    first = ranks[str(_load("ranking")[0]["id"])]
    assert first["data"]["items_2"] == "10 sorting tricks\n\nA blog post"
    # ana's order docs, qa, blog: the first, third and second entries of the list
    assert {a["annotator"]: a["answers"]["rank"] for a in first["annotations"]}["ana@example.com"] == [
        "items_1", "items_3", "items_2"]


def test_spans_become_one_answer_per_person(store):
    report = _import(store, "entities")
    assert report.raw_results == 0 and report.annotations == 3 and report.unmapped == []
    tasks = _load("entities")
    items = _by_ext(store, get_project(store, "entities"))
    second = {a["annotator"]: a["answers"] for a in items[str(tasks[1]["id"])]["annotations"]}
    assert second == {"ana@example.com": {"entities": [{"start": 20, "end": 34, "label": "ORG"}]},
                      "ben@example.com": {"relevant": "no"}}
    assert tasks[1]["data"]["text"][20:34] == "Remington Rand"


def test_rectangles_become_boxes_in_the_images_pixels_and_go_back_in_percent(store):
    """Label Studio keeps a rectangle in percent of the image (``original_width`` x ``original_height`` on
    the result); labelwright in the image's pixels, with the size kept in the item's data."""
    report = _import(store, "boxes")
    assert report.raw_results == 0 and report.annotations == 2
    p = get_project(store, "boxes")
    first = _by_ext(store, p)[str(_load("boxes")[0]["id"])]
    assert first["data"]["image_width"] == 640 and first["data"]["image_height"] == 480
    assert first["annotations"][0]["answers"] == {
        "objects": [{"x": 64.0, "y": 96.0, "w": 192.0, "h": 192.0, "label": "cat"}], "quality": "sharp"}
    tasks, config, warnings = export_tasks(store, p)
    assert warnings == [] and '<RectangleLabels name="objects" toName="image">' in config
    box = next(r for r in tasks[0]["annotations"][0]["result"] if r["from_name"] == "objects")
    real = next(r for r in _load("boxes")[0]["annotations"][0]["result"] if r["from_name"] == "objects")
    assert {k: box[k] for k in ("type", "to_name", "original_width", "original_height", "image_rotation")} == {
        k: real[k] for k in ("type", "to_name", "original_width", "original_height", "image_rotation")}
    assert box["value"] == real["value"]


def test_boxes_by_several_people_on_images_of_two_sizes_with_gold_and_a_detector(store):
    """detection.json (made by Label Studio 1.23.2): three people, a ground truth, a skip, a detector's
    prediction, images of 640x480 and 800x600."""
    report = _import(store, "detection")
    assert (report.annotations, report.predictions, report.skipped, report.raw_results) == (4, 1, 1, 0)
    p = get_project(store, "detection")
    assert p.schema.question("objects").width_field == "photo_width"
    first, second = (_by_ext(store, p)[str(t["id"])] for t in _load("detection"))
    assert (first["data"]["photo_width"], first["data"]["photo_height"]) == (640, 480)
    assert (second["data"]["photo_width"], second["data"]["photo_height"]) == (800, 600)
    mine = {a["annotator"]: a["answers"]["objects"] for a in first["annotations"]}
    assert mine["ana@example.com"] == [{"x": 80.0, "y": 192.0, "w": 160.0, "h": 96.0, "label": "car"},
                                       {"x": 384.0, "y": 144.0, "w": 48.0, "h": 168.0, "label": "person"}]
    assert first["gold"] == {"objects": mine["ana@example.com"]}  # the ground truth
    theirs = {a["annotator"].replace("llm:detection.", ""): a["answers"]["objects"] for a in second["annotations"]}
    assert theirs["chen@example.com"][0] == {"x": 10.0, "y": 3.0, "w": 390.0, "h": 297.0, "label": "car"}
    assert theirs["detector-v2"] == [{"x": 16.0, "y": 6.0, "w": 376.0, "h": 288.0, "label": "car"}]


def test_a_rectangle_without_the_images_size_or_outside_it_is_refused(store):
    def no_size(tasks):
        for k in ("original_width", "original_height"):
            del tasks[0]["annotations"][0]["result"][0][k]
    with pytest.raises(ValidationError, match="original_width and original_height") as e:
        import_tasks(store, _broken("boxes", no_size), _config("boxes"), slug="b1")
    assert e.value.field == "tasks[0].annotations[0].result[0].value"

    def outside(tasks):
        tasks[0]["annotations"][0]["result"][0]["value"]["x"] = 80  # 80% + 30% of the width
    with pytest.raises(ValidationError, match="goes past the image's width of 640 pixels") as e:
        import_tasks(store, _broken("boxes", outside), _config("boxes"), slug="b2")
    assert e.value.field == "tasks[0].annotations[0].objects.0.w"


def test_results_that_do_not_map_are_kept_and_reported(store):
    def polygon(tasks):  # a control the config does not have: kept raw, written back
        tasks[0]["annotations"][0]["result"].append(
            {"from_name": "outline", "to_name": "image", "type": "polygonlabels",
             "value": {"points": [[1, 1], [5, 1], [5, 5]], "polygonlabels": ["cat"]}})
    report = import_tasks(store, _broken("boxes", polygon), _config("boxes"), slug="raw")
    assert report.raw_results == 1 and report.annotations == 2 and report.unknown_controls == ["outline"]
    items = _by_ext(store, get_project(store, "raw"))
    raw = items[str(_load("boxes")[0]["id"])]["data"][RAW_KEY]
    assert raw[0]["annotator"] == "ana@example.com"
    assert raw[0]["result"][0]["value"]["polygonlabels"] == ["cat"]


def _broken(name: str, change) -> list:
    tasks = _load(name)
    change(tasks)
    return tasks


@pytest.mark.parametrize("change,field,message", [
    (lambda ts: ts[1]["annotations"][0]["result"][0]["value"].update(choices=["angry"]),
     "tasks[1].annotations[0].sentiment", "not an option"),
    (lambda ts: ts[0]["annotations"][1]["result"][1]["value"].update(rating=4.5),
     "tasks[0].annotations[1].result[1].value", "whole number"),
    (lambda ts: ts[2]["data"].update(text=7), "tasks[2].data.text", None),
    (lambda ts: ts[0]["annotations"][0].update(completed_by="ana"), "tasks[0].annotations[0].completed_by", None),
    (lambda ts: ts.append("not a task"), "tasks[5]", "'data' object"),
    (lambda ts: ts.append(ts[0]), "tasks[5].id", r"tasks\[0\] has the same id"),
])
def test_a_bad_record_names_its_place_and_imports_nothing(store, change, field, message):
    with pytest.raises(ValidationError, match=message) as e:
        import_tasks(store, _broken("reviews", change), _config("reviews"), name="broken", file="export.json")
    assert e.value.field == field and e.value.file == "export.json"
    assert list_projects(store) == []
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.users)).scalar() == 0


def test_results_of_controls_the_config_lacks_are_kept_and_named(store):
    tasks = _load("demos")
    tasks[0]["annotations"][0]["result"].append({"from_name": "ghost", "to_name": "prompt", "type": "choices",
                                                 "value": {"choices": ["boo"]}})
    report = import_tasks(store, tasks, _config("demos"), name="ghosts")
    assert report.unknown_controls == ["ghost"] and report.raw_results == 1 and report.annotations == 4
    data = _by_ext(store, get_project(store, "ghosts"))[str(tasks[0]["id"])]["data"]
    assert data[RAW_KEY][0]["result"][0]["from_name"] == "ghost"


def test_a_second_import_with_the_same_slug_is_refused_whole(store):
    _import(store, "demos")
    with pytest.raises(Conflict, match="already exists"):
        _import(store, "demos")
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.items)).scalar() == 3


def test_a_config_that_does_not_fit_the_export_is_refused(store):
    with pytest.raises(ValidationError, match=r"shows \$image, but no task has 'image'"):
        import_labelstudio(store, DATA / "reviews.json", DATA / "boxes.xml")


# ---- export ----------------------------------------------------------------------------------------------


def _shapes(tasks: list) -> dict:
    """{from_name: (type, to_name, sorted value keys)} over every annotation and prediction result."""
    out = {}
    for task in tasks:
        for a in [*task["annotations"], *task["predictions"]]:
            for r in a["result"]:
                out[r["from_name"]] = (r["type"], r["to_name"], sorted(r["value"]))
    return out


@pytest.mark.parametrize("name", ["reviews", "preference", "demos", "ranking", "entities", "boxes", "detection"])
def test_the_export_has_the_structure_of_label_studios_own(store, name):
    _import(store, name)
    tasks, config, warnings = export_tasks(store, get_project(store, name))
    real = _load(name)
    assert warnings == []
    sizes = {"image_width", "image_height", "photo_width", "photo_height"}  # the image's size, kept at import
    assert [{k: v for k, v in task["data"].items() if k not in sizes} for task in tasks] == [
        task["data"] for task in real]
    ours, theirs = _shapes(tasks), _shapes(real)
    if name == "ranking":  # our config names the List after its data key ("items"), the original "results"
        assert ours["rank"][1] == "items" and theirs["rank"][1] == "results"
        ours["rank"] = theirs["rank"]
    assert ours == theirs
    for mine, orig in zip(tasks, real):
        people = sorted(a["completed_by"]["email"] for a in mine["annotations"] if "completed_by" in a)
        assert people == sorted(a["completed_by"]["email"] for a in orig["annotations"])
        for flag in ("ground_truth", "was_cancelled"):
            assert sum(a[flag] for a in mine["annotations"]) == sum(a[flag] for a in orig["annotations"])
        assert [p["model_version"] for p in mine["predictions"]] == [p["model_version"] for p in orig["predictions"]]
    # and the config we write maps back to the same questions
    again = map_config(parse_config(config), tasks)
    assert [q["name"] for q in again.questions()] == [q.name for q in get_project(store, name).schema.questions]


@pytest.mark.parametrize("name", ["reviews", "preference", "ranking", "entities", "boxes", "detection"])
def test_the_export_imports_back_with_the_same_answers(store, name):
    _import(store, name)
    p = get_project(store, name)
    tasks, config, _ = export_tasks(store, p)
    for i, task in enumerate(tasks):
        task["id"] = i + 1
    import_tasks(store, tasks, _config(name), slug=f"{name}-again", name="again")
    q = get_project(store, f"{name}-again")

    def answers(project):  # a machine annotator is named after its project
        return sorted((d["data"].get("text") or d["data"].get("prompt") or d["data"].get("query"),
                       a["annotator"].replace(f"{project.slug}.", ""), json.dumps(a["answers"], sort_keys=True))
                      for d in _by_ext(store, project).values() for a in d["annotations"])
    assert answers(q) == answers(p)
    assert sorted(json.dumps(d["gold"]) for d in _by_ext(store, q).values()) == sorted(
        json.dumps(d["gold"]) for d in _by_ext(store, p).values())


def test_a_labelwright_project_exports_with_a_config_of_its_own(store):
    schema = {"name": "native", "fields": [{"name": "prompt", "type": "text"}, {"name": "a", "type": "markdown"},
                                           {"name": "b", "type": "markdown"}],
              "questions": [{"name": "pref", "type": "pairwise", "a": "a", "b": "b"},
                            {"name": "order", "type": "ranking", "candidates": ["a", "b"]},
                            {"name": "score", "type": "rating", "min": 0, "max": 3}]}
    p = create_project(store, schema)
    config, mapping = config_for(p.schema)
    assert '<Pairwise name="pref" toName="a,b"' in config and '<List name="order_list" value="$order_list"' in config
    assert [u.name for u in mapping.unmapped] == ["score"]  # a rating from 0 has no Label Studio form


# ---- the command line ------------------------------------------------------------------------------------


def test_the_commands(tmp_path):
    db = str(tmp_path / "lw.db")
    run = CliRunner()
    res = run.invoke(main, ["--db", db, "import-labelstudio", str(DATA / "boxes.json"), "--config",
                            str(DATA / "boxes.xml"), "--slug", "ner"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "created project ner: 2 items, 2 annotations by 2 people (2 new)" in res.output
    assert "not mapped" not in res.output
    out = tmp_path / "ner.json"
    res = run.invoke(main, ["--db", db, "export", "ner", "--format", "labelstudio", "-o", str(out)],
                     catch_exceptions=False)
    assert res.exit_code == 0, res.output
    exported = json.loads(out.read_text())
    assert len(exported) == 2 and (tmp_path / "ner.label_config.xml").read_text().startswith("<View>")
    res = run.invoke(main, ["--db", db, "export", "ner", "--format", "labelstudio", "-o", str(out)])
    assert res.exit_code == 2 and "exists" in res.output
    res = run.invoke(main, ["--db", db, "import-labelstudio", str(DATA / "boxes.json"), "--config",
                            str(tmp_path / "missing.xml")])
    assert res.exit_code == 2 and "missing.xml: cannot read the config" in res.output
