"""pandas and Hugging Face datasets in and out (labelwright.io.hf), TRL training sets (labelwright.io.trl),
on SQLite and PostgreSQL; every export is loaded by the library that reads it (pandas, ``datasets``, and
TRL's own dataset helpers in a test of its own, skipped, and reported as skipped, where TRL is not
installed: it pulls PyTorch, so it is not in the test extra; see docs/formats/trl.md for the check with
TRL's trainers)."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from labelwright.cli import main
from labelwright.errors import ValidationError
from labelwright.io import hf, trl
from labelwright.io.labelstudio import import_labelstudio
from labelwright.services import access, queue, users
from labelwright.services.items import import_items, item_detail
from labelwright.services.projects import create_project, get_project
from labelwright.store import tables as t

DATA = Path(__file__).parent / "data" / "labelstudio"


def _import(store, name: str):
    import_labelstudio(store, DATA / f"{name}.json", DATA / f"{name}.xml")
    return get_project(store, name)


def _copy(store, project, slug: str):
    spec = json.loads(project.schema.to_json())
    return create_project(store, {**spec, "slug": slug, "name": slug})


def _items(store, project) -> list[tuple]:
    with store.read() as conn:
        ids = conn.execute(select(t.items.c.id).where(t.items.c.project_id == project.id)
                           .order_by(t.items.c.id)).scalars().all()
    details = [item_detail(store, project, i) for i in ids]
    return [(d["data"], d["gold"]) for d in details]


# ---- pandas ------------------------------------------------------------------------------------------------


def test_a_dataframe_has_an_item_a_row_with_gold_answers_and_labels(store):
    p = _import(store, "reviews")
    df = hf.to_pandas(store, p)
    assert list(df.columns[:5]) == ["external_id", "text", "source", "gold", "annotations"]
    assert {"label.sentiment", "confidence.sentiment", "label.topics", "label.stars"} <= set(df.columns)
    assert len(df) == 5
    gold_row = df[df["gold"].notna()].iloc[0]
    assert gold_row["gold"] == {"sentiment": "negative", "topics": ["service", "quality"]}
    assert gold_row["label.sentiment"] == "negative" and gold_row["confidence.sentiment"] == 1.0
    first = df.iloc[0]
    assert {a["annotator"] for a in first["annotations"]} == {"ana@example.com", "ben@example.com", "chen@example.com",
                                                              "llm:reviews.sentiment-v1"}
    assert first["label.sentiment"] == "positive"


def test_a_dataframe_round_trip_keeps_the_items_and_their_gold(store):
    p = _import(store, "reviews")
    q = _copy(store, p, "copy")
    got = hf.from_pandas(store, q, hf.to_pandas(store, p))
    assert got == {"received": 5, "inserted": 5, "duplicates": 0, "gold": 1}
    assert _items(store, q) == _items(store, p)


def test_a_bad_dataframe_row_is_named_and_nothing_lands(store):
    p = _import(store, "reviews")
    q = _copy(store, p, "copy")
    df = pd.DataFrame({"text": ["fine", 3], "gold": [None, {"sentiment": "angry"}]})
    with pytest.raises(ValidationError) as e:
        hf.from_pandas(store, q, df, name="frame")
    assert (e.value.file, e.value.line) == ("frame", 2)
    assert _items(store, q) == []


# ---- Hugging Face datasets ----------------------------------------------------------------------------------


def test_a_saved_dataset_loads_and_imports_back(store, tmp_path):
    p = _import(store, "reviews")
    folder = tmp_path / "reviews-ds"
    assert hf.save_dataset(store, p, folder) == 5
    ds = datasets.load_from_disk(str(folder))
    assert ds.num_rows == 5 and ds.column_names[:3] == ["external_id", "text", "source"]
    assert ds.features["label.stars"].dtype in ("int64", "float64") and ds.features["text"].dtype == "string"
    assert json.loads(next(g for g in ds["gold"] if g)) == {"sentiment": "negative", "topics": ["service", "quality"]}
    q = _copy(store, p, "from-folder")
    assert hf.from_dataset(store, q, folder)["inserted"] == 5
    assert _items(store, q) == _items(store, p)
    r = _copy(store, p, "from-object")
    assert hf.from_dataset(store, r, hf.to_dataset(store, p))["gold"] == 1


def test_a_dataset_of_chat_fields_and_mixed_metadata(store):
    p = create_project(store, {"name": "chat", "fields": [{"name": "conversation", "type": "chat"}],
                               "questions": [{"name": "ok", "type": "single_choice", "options": ["yes", "no"]}]})
    import_items(store, p, enumerate([{"id": "a", "conversation": [{"role": "user", "content": "hi"}], "n": 1},
                                      {"id": "b", "conversation": [{"role": "user", "content": "yo"}], "n": "two"}], 1))
    ds = hf.to_dataset(store, p)
    assert ds[0]["conversation"] == [{"role": "user", "content": "hi"}]
    assert ds["n"] == ["1", '"two"']  # an int and a string in one column: JSON text


def test_a_dataset_dict_needs_a_split(store, tmp_path):
    p = _import(store, "demos")
    ds = datasets.DatasetDict({"train": hf.to_dataset(store, p)})
    ds.save_to_disk(str(tmp_path / "dd"))
    q = _copy(store, p, "copy")
    with pytest.raises(ValidationError, match=r"splits \['train'\]"):
        hf.from_dataset(store, q, tmp_path / "dd")
    assert hf.from_dataset(store, q, tmp_path / "dd", split="train")["inserted"] == 3
    with pytest.raises(ValidationError, match="no dataset folder"):
        hf.from_dataset(store, q, tmp_path / "nowhere")


# ---- TRL -------------------------------------------------------------------------------------------------


def test_preference_rows_follow_the_aggregated_label(store, tmp_path):
    p = _import(store, "preference")
    rows = trl.preference_rows(store, p)
    # Canberra: ana and ben preferred B, chen A, the judge B; the third task is gold (A)
    assert rows == [
        {"prompt": "Name a prime number above 10.", "chosen": "11", "rejected": "12"},
        {"prompt": "What is the capital of Australia?", "chosen": "Canberra", "rejected": "Sydney"},
        {"prompt": "Translate 'merci' to English.", "chosen": "Thank you", "rejected": "Please"},
        {"prompt": "Is 0.1 + 0.2 == 0.3 in binary floating point?", "chosen": "No, it is 0.30000000000000004",
         "rejected": "Yes"}]
    path = tmp_path / "dpo.jsonl"
    path.write_bytes(trl.to_jsonl(rows))
    ds = datasets.load_dataset("json", data_files=str(path), split="train")
    assert ds.column_names == ["prompt", "chosen", "rejected"] and ds.num_rows == 4


def _answer(store, project, who: str, answers_for) -> None:
    user = users.create_user(store, who)
    access.set_member(store, project, who, "annotator")
    while (item := queue.claim_next(store, project, user)) is not None:
        queue.submit(store, item["id"], user, answers_for(item["data"]))


def _chat_preferences(store):
    """A pairwise project whose prompts are chats, answered by two annotators (the second item a tie)."""
    p = create_project(store, {
        "name": "chat pref", "overlap": 2,
        "fields": [{"name": "chat", "type": "chat"}, {"name": "a", "type": "text"}, {"name": "b", "type": "text"}],
        "questions": [{"name": "pref", "type": "pairwise", "a": "a", "b": "b"}]})
    import_items(store, p, enumerate([
        {"id": "1", "chat": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}],
         "a": "4", "b": "5"},
        {"id": "2", "chat": [{"role": "user", "content": "Colour of the sky?"}], "a": "blue", "b": "azure"}], 1))
    _answer(store, p, "ana", lambda d: {"pref": {"choice": "A" if d["a"] == "4" else "tie"}})
    _answer(store, p, "ben", lambda d: {"pref": {"choice": "A" if d["a"] == "4" else "tie"}})
    return p


def test_a_chat_prompt_gives_the_conversational_format_and_ties_are_left_out(store):
    rows = trl.preference_rows(store, _chat_preferences(store))
    assert rows == [{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}],
                     "chosen": [{"role": "assistant", "content": "4"}],
                     "rejected": [{"role": "assistant", "content": "5"}]}]


def test_demonstrations_take_gold_then_reviewed_then_the_first_answer(store, tmp_path):
    p = _import(store, "demos")
    rows = trl.demonstration_rows(store, p, system="You are helpful.")
    assert [r["messages"][-1]["content"] for r in rows] == [
        "Soft rain on the roof\nthe gutters hum a low song\nthe street shines like glass",
        "A hash map stores key-value pairs and finds a value from its key in constant time on average by hashing "
        "the key.", "Bonjour !"]
    assert rows[0]["messages"][:2] == [{"role": "system", "content": "You are helpful."},
                                       {"role": "user", "content": "Write a haiku about rain."}]
    assert len(trl.demonstration_rows(store, p, every_answer=True)) == 4
    path = tmp_path / "sft.jsonl"
    path.write_bytes(trl.to_jsonl(rows))
    ds = datasets.load_dataset("json", data_files=str(path), split="train")
    assert ds.column_names == ["messages"] and ds[1]["messages"][0]["role"] == "system"


def test_trl_reads_the_rows_as_its_trainers_do(store):
    """TRL's own dataset helpers (skipped, and shown as skipped, where TRL is not installed): the standard
    and the conversational preference format, the prompt already apart from the answers, and
    demonstrations as conversations."""
    data_utils = pytest.importorskip("trl.data_utils", reason="TRL is not installed (pip install trl)")
    for rows, conversational in ((trl.preference_rows(store, _import(store, "preference")), False),
                                 (trl.preference_rows(store, _chat_preferences(store)), True),
                                 (trl.demonstration_rows(store, _import(store, "demos")), True)):
        assert rows
        for row in rows:
            assert data_utils.is_conversational(row) == conversational
            if "prompt" in row:
                assert data_utils.maybe_extract_prompt(row) == row


def test_trl_sets_need_the_right_question(store):
    p = _import(store, "reviews")
    with pytest.raises(ValidationError, match="needs one pairwise question; the project has 0"):
        trl.preference_rows(store, p)
    with pytest.raises(ValidationError, match="no text question named 'nope'"):
        trl.demonstration_rows(store, p, question="nope")


def test_the_export_command_writes_trl_and_dataset_files(tmp_path):
    db = str(tmp_path / "lw.db")
    run = CliRunner()
    for name in ("preference", "demos"):
        res = run.invoke(main, ["--db", db, "import-labelstudio", str(DATA / f"{name}.json"), "--config",
                                str(DATA / f"{name}.xml")], catch_exceptions=False)
        assert res.exit_code == 0, res.output
    for fmt, project in (("dpo", "preference"), ("sft", "demos")):
        res = run.invoke(main, ["--db", db, "export", project, "--format", fmt, "-o", str(tmp_path / f"{fmt}.jsonl")],
                         catch_exceptions=False)
        assert res.exit_code == 0, res.output
    assert datasets.load_dataset("json", data_files=str(tmp_path / "dpo.jsonl"), split="train").num_rows == 4
    assert datasets.load_dataset("json", data_files=str(tmp_path / "sft.jsonl"), split="train").num_rows == 3
    res = run.invoke(main, ["--db", db, "export", "demos", "--format", "hf", "-o", str(tmp_path / "demos-ds")],
                     catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert datasets.load_from_disk(str(tmp_path / "demos-ds")).num_rows == 3
    res = run.invoke(main, ["--db", db, "export", "demos", "--format", "hf", "-o", str(tmp_path / "demos-ds")])
    assert res.exit_code == 2 and "--force" in res.output
