"""Spans in and out: CoNLL-2003 and spaCy DocBin exports imported back as gold (labelwright.io.spans_import),
on SQLite and PostgreSQL; the malformed files an import refuses; ``export`` without ``-o``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from labelwright.cli import main
from labelwright.errors import ValidationError
from labelwright.io import conll, spacy_docbin, spans_import
from labelwright.services.export import iter_items
from labelwright.services.gold import gold_answers
from labelwright.services.items import import_items, item_detail
from labelwright.services.projects import create_project
from tests.questions.test_spans import IDS, SCHEMA, texts, truth

LABELS = ["PER", "LOC", "ORG"]


def _project(store, slug: str):
    return create_project(store, {**SCHEMA, "slug": slug, "name": slug})


def _labelled(store, slug: str = "ents"):
    """A spans project with the six TREC questions, each with its true spans as gold."""
    t = texts()
    p = _project(store, slug)
    import_items(store, p, enumerate([{"id": i, "text": t[i], "gold": {"ents": truth(t, i)}} for i in IDS], 1))
    return p


def _gold_by_text(store, project) -> dict[str, list]:
    return {item_detail(store, project, i)["data"]["text"]: g["ents"] for i, g in gold_answers(store, project).items()}


def test_a_conll_export_imports_back_as_the_same_gold(store, tmp_path):
    src = _labelled(store)
    path = tmp_path / "ents.conll"
    path.write_bytes(conll.conll_export(store, src).to_bytes())
    dst = _project(store, "again")
    report = spans_import.import_conll(store, dst, path)
    assert report["inserted"] == 6 and report["gold"] == 6
    t = texts()
    assert _gold_by_text(store, dst) == {t[i]: truth(t, i) for i in IDS} == _gold_by_text(store, src)
    assert conll.conll_export(store, dst).to_bytes() == path.read_bytes()  # and out again, line for line


def test_a_docbin_export_imports_back_as_the_same_gold(store, tmp_path):
    pytest.importorskip("spacy")
    src = _labelled(store)
    path = tmp_path / "ents.spacy"
    path.write_bytes(spacy_docbin.doc_bin(store, src).to_bytes())
    dst = _project(store, "again")
    assert spans_import.import_docbin(store, dst, path)["gold"] == 6
    assert _gold_by_text(store, dst) == _gold_by_text(store, src)
    with pytest.raises(ValidationError, match="not a spaCy DocBin file"):
        spans_import.import_docbin(store, dst, _write(tmp_path, "x.spacy", "Ann B-PER\n"))


def _write(tmp_path, name: str, body: str):
    path = tmp_path / name
    path.write_text(body)
    return path


def test_iob1_and_bio_tags_docstart_and_tabs(tmp_path):
    path = _write(tmp_path, "mixed.conll", (
        "-DOCSTART- -X- -X- O\n\n"
        "Ann -X- _ I-PER\nmet -X- _ O\nBob -X- _ I-PER\nLee -X- _ I-PER\nBea -X- _ B-PER\nin -X- _ O\n"
        "New -X- _ I-LOC\nYork -X- _ I-LOC\nUN -X- _ I-ORG\n\n\n"
        "-DOCSTART- -X- -X- O\n"
        "Paris\tB-LOC\nrocks\tO\n"))
    s1, s2 = spans_import.read_conll(path, LABELS)
    assert s1.line == 3 and s1.text == "Ann met Bob Lee Bea in New York UN"
    assert [(s1.text[s["start"]:s["end"]], s["label"]) for s in s1.spans] == [
        ("Ann", "PER"), ("Bob Lee", "PER"), ("Bea", "PER"), ("New York", "LOC"), ("UN", "ORG")]
    assert (s2.line, s2.text, s2.spans) == (15, "Paris rocks", [{"start": 0, "end": 5, "label": "LOC"}])


@pytest.mark.parametrize("body,line,message", [
    ("Ann B-PER\nsaid\n", 2, "token 'said' has no tag"),
    ("Ann B-PER\nsaid X-PER\n", 2, "token 'said' has the tag 'X-PER': a tag is O, B-LABEL or I-LABEL"),
    ("Ann B-\n", 1, "token 'Ann' has the tag 'B-'"),
    ("Ann B-PER\n\nIBM I-COMPANY\n", 3, "token 'IBM' has the label 'COMPANY', which the spans question does not"),
])
def test_a_malformed_line_is_named_and_nothing_lands(store, tmp_path, body, line, message):
    p = _project(store, "ents")
    path = _write(tmp_path, "bad.conll", body)
    with pytest.raises(ValidationError) as e:
        spans_import.import_conll(store, p, path)
    assert (e.value.file, e.value.line) == (str(path), line) and message in e.value.message
    assert list(iter_items(store, p)) == []


def test_an_empty_file_or_one_that_is_not_text_is_refused(tmp_path, store):
    p = _project(store, "ents")
    with pytest.raises(ValidationError, match="holds no sentences"):
        spans_import.import_conll(store, p, _write(tmp_path, "empty.conll", "-DOCSTART- -X- -X- O\n\n"))
    path = tmp_path / "latin1.conll"
    path.write_bytes("Zoë B-PER\n".encode("latin-1"))
    with pytest.raises(ValidationError, match="not UTF-8 text"):
        spans_import.import_conll(store, p, path)


def test_items_already_there_are_matched_by_their_text_and_marked_gold(store, tmp_path):
    p = _project(store, "ents")
    import_items(store, p, enumerate([{"id": "a", "text": "Ann met Bob"}, {"id": "b", "text": "nobody here"}], 1))
    path = _write(tmp_path, "g.conll", "Ann B-PER\nmet O\nBob B-PER\n\nnobody O\nhere O\n\nnewcomers O\n"
                                       "\nAnn B-PER\nmet O\nBob B-PER\n")  # a text given twice, alike
    report = spans_import.import_conll(store, p, path)
    assert (report["inserted"], report["duplicates"], report["gold"]) == (1, 2, 3)
    assert [item_detail(store, p, i)["external_id"] for i in sorted(gold_answers(store, p))][:2] == ["a", "b"]
    again = spans_import.import_conll(store, p, path)  # the new text's id comes from its text: matched too
    assert (again["inserted"], again["duplicates"]) == (0, 3)
    path.write_text("Ann B-PER\nmet O\nBob O\n\nAnn B-PER\nmet O\nBob B-PER\n")
    with pytest.raises(ValidationError, match=r"line 5: the same text is tagged differently here and at line 1"):
        spans_import.import_conll(store, p, path)
    assert _gold_by_text(store, p) == {"Ann met Bob": [{"start": 0, "end": 3, "label": "PER"},
                                                       {"start": 8, "end": 11, "label": "PER"}],
                                       "nobody here": [], "newcomers": []}


# ---- the command line ------------------------------------------------------------------------------


def _labelled_by_cli(run: CliRunner, db: str, tmp_path) -> None:
    """The six TREC questions with their gold spans, in a new SQLite file, through the command line."""
    schema = _write(tmp_path, "s.json", json.dumps(SCHEMA))
    t = texts()
    items = _write(tmp_path, "items.jsonl", "".join(
        json.dumps({"id": i, "text": t[i], "gold": {"ents": truth(t, i)}}) + "\n" for i in IDS))
    for args in (["projects", "create", "--schema", str(schema)], ["import", "ents", str(items)]):
        res = run.invoke(main, ["--db", db, *args], catch_exceptions=False)
        assert res.exit_code == 0, res.output


def test_export_without_o_writes_beside_and_says_where(tmp_path, monkeypatch):
    db = str(tmp_path / "lw.db")
    run = CliRunner()
    _labelled_by_cli(run, db, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for fmt, name in ((None, "ents.jsonl"), ("labelstudio", "ents.json"), ("conll", "ents.conll"),
                      ("spacy", "ents.spacy"), ("csv", "ents.csv")):
        res = run.invoke(main, ["--db", db, "export", "ents", *(["--format", fmt] if fmt else [])],
                         catch_exceptions=False)
        assert res.exit_code == 0, res.output
        assert f"wrote {name} (" in res.output and (work / name).stat().st_size > 0
    assert sorted(f.name for f in work.iterdir()) == ["ents.conll", "ents.csv", "ents.json", "ents.jsonl",
                                                       "ents.label_config.xml", "ents.spacy"]
    assert len((work / "ents.jsonl").read_text().splitlines()) == 6
    res = run.invoke(main, ["--db", db, "export", "ents", "--format", "conll"])
    assert res.exit_code == 2 and "--force" in res.output  # the default name is never silently replaced


def test_import_reads_conll_and_docbin_files_as_gold(tmp_path, monkeypatch):
    db = str(tmp_path / "lw.db")
    run = CliRunner()
    _labelled_by_cli(run, db, tmp_path)
    monkeypatch.chdir(tmp_path)
    schema = _write(tmp_path, "again.json", json.dumps({**SCHEMA, "slug": "again", "name": "again"}))
    for args in (["export", "ents", "--format", "conll"], ["export", "ents", "--format", "spacy"],
                 ["projects", "create", "--schema", str(schema)]):
        assert run.invoke(main, ["--db", db, *args], catch_exceptions=False).exit_code == 0
    res = run.invoke(main, ["--db", db, "import", "again", "ents.conll"], catch_exceptions=False)
    assert res.exit_code == 0 and "imported 6 new items into again (0 already present, 6 with gold" in res.output
    res = run.invoke(main, ["--db", db, "import", "again", "ents.spacy", "--question", "ents"],
                     catch_exceptions=False)
    assert res.exit_code == 0 and "imported 0 new items into again (6 already present, 6 with gold" in res.output
    _write(tmp_path, "bad.txt", "Ann B-PER\nIBM B-COMPANY\n")
    res = run.invoke(main, ["--db", db, "import", "again", "bad.txt", "--format", "conll"])
    assert res.exit_code == 2 and "bad.txt, line 2" in res.output and "'COMPANY'" in res.output
    res = run.invoke(main, ["--db", db, "import", "again", "missing.conll"])
    assert res.exit_code == 2 and "missing.conll: cannot read the file" in res.output


# ---- the docs page ---------------------------------------------------------------------------------

PAGE = Path(__file__).resolve().parents[2] / "docs" / "formats" / "conll-spacy.md"


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"^ *```{kind}\n(.*?)^ *```", PAGE.read_text(), re.S | re.M)


def test_the_docs_worked_example_holds(store, tmp_path, monkeypatch):
    p = create_project(store, yaml.safe_load(_blocks("yaml")[0]))
    rows = re.findall(r"^\| (q\d) \| `(.*?)` \| `(.*?)` \|$", PAGE.read_text(), re.M)
    gold = {ext: [json.loads(g)] for ext, _, g in rows}
    import_items(store, p, enumerate([{"id": ext, "text": text, "gold": {"ents": gold[ext]}}
                                      for ext, text, _ in rows], 1))
    assert [text[g[0]["start"]:g[0]["end"]] for (ext, text, _), g in zip(rows, gold.values())] == [
        "Ozzy Osbourne", "Chesapeake Bay"]
    body = conll.conll_export(store, p).to_bytes()
    assert body.decode() == _blocks("text")[0]
    monkeypatch.chdir(tmp_path)
    Path("names.conll").write_bytes(body)
    fresh = create_project(store, {**yaml.safe_load(_blocks("yaml")[0]), "slug": "fresh"})
    assert spans_import.import_conll(store, fresh, "names.conll") == {
        "received": 2, "inserted": 2, "duplicates": 0, "gold": 2}
    assert _gold_by_text(store, fresh) == {text: gold[ext] for ext, text, _ in rows}
    bad = "".join(f"{w} O\n" for w in "Ann said on Monday that".split()) + "she O\nIBM B-COMPANY\n"
    Path("names.conll").write_text(bad)
    with pytest.raises(ValidationError) as e:
        spans_import.import_conll(store, fresh, "names.conll")
    assert str(e.value) == _blocks("text")[1].strip()
    pytest.importorskip("spacy")
    Path("names.spacy").write_bytes(spacy_docbin.doc_bin(store, p).to_bytes())
    code = _blocks("python")[0]
    scope: dict = {}
    exec(code, scope)  # the page's example, as written
    found = eval(code.strip().splitlines()[-1].split("#")[0], scope)
    assert repr(found) == code.strip().splitlines()[-1].split("# ")[1]


def test_a_docbin_span_with_an_unknown_label_names_the_doc(store, tmp_path):
    spacy = pytest.importorskip("spacy")
    from spacy.tokens import DocBin  # noqa: PLC0415 - optional (the spacy extra)

    nlp = spacy.blank("xx")
    docs = [nlp.make_doc("Ann met Bob"), nlp.make_doc("IBM hired Ann")]
    docs[0].ents = [docs[0].char_span(0, 3, label="PER")]
    docs[1].spans["sc"] = [docs[1].char_span(0, 3, label="COMPANY"), docs[1].char_span(10, 13, label="PER")]
    path = tmp_path / "bad.spacy"
    path.write_bytes(DocBin(docs=docs).to_bytes())
    p = _project(store, "ents")
    with pytest.raises(ValidationError, match=r"bad.spacy, doc 2: the span 'IBM' has the label 'COMPANY'"):
        spans_import.import_docbin(store, p, path)
    assert list(iter_items(store, p)) == []
    docs[1].spans["sc"] = [docs[1].char_span(0, 3, label="ORG")]  # the group wins over doc.ents
    path.write_bytes(DocBin(docs=docs).to_bytes())
    spans_import.import_docbin(store, p, path)
    assert _gold_by_text(store, p) == {"Ann met Bob": [{"start": 0, "end": 3, "label": "PER"}],
                                       "IBM hired Ann": [{"start": 0, "end": 3, "label": "ORG"}]}
