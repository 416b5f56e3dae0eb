"""The command line, run the way a user runs it."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner

import labelwright.cli_items as cli_items
from labelwright.cli import main
from labelwright.services import export, queue, users
from labelwright.services.projects import get_project
from labelwright.store import Store

SCHEMA_YAML = """
name: CLI test
slug: cli
overlap: 1
id_field: id
fields: [{name: text, type: text}]
questions:
  - {name: label, type: single_choice, options: [pos, neg]}
"""


def run(db, *args, ok=True):
    res = CliRunner().invoke(main, ["--db", db, *args], catch_exceptions=False)
    if ok:
        assert res.exit_code == 0, res.output
    return res


@pytest.fixture
def db(db_url):
    return db_url


def test_help_lists_every_command():
    res = CliRunner().invoke(main, ["--help"])
    for cmd in ("serve", "demo", "projects", "import", "export", "users", "status", "migrate"):
        assert cmd in res.output
    res = CliRunner().invoke(main, ["export", "--help"])
    assert "--format" in res.output and "Output file" in res.output


def test_project_import_label_export_cycle(db, tmp_path):
    schema = tmp_path / "s.yaml"
    schema.write_text(SCHEMA_YAML)
    assert "created project cli" in run(db, "projects", "create", "--schema", str(schema)).output
    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps({"id": i, "text": f"t{i}"}) + "\n" for i in range(20)))
    assert "imported 20 new items" in run(db, "import", "cli", str(data)).output
    assert "imported 0 new items into cli (20 already present)" in run(db, "import", "cli", str(data)).output
    out = run(db, "users", "create", "ann", "--project", "cli").output
    assert "API token (shown once):" in out and "/signin/" in out


    store = Store(db if "://" in db else f"sqlite:///{db}", pool_size=2)
    try:
        p = get_project(store, "cli")
        ann = users.get_user(store, "ann")
        for _ in range(5):
            item = queue.claim_next(store, p, ann)
            queue.submit(store, item["id"], ann, {"label": "pos"}, active_ms=2000)
    finally:
        store.close()

    status = json.loads(run(db, "status", "cli", "--json").output)
    assert status["items"] == {"total": 20, "done": 5, "in_progress": 0, "waiting": 15, "gold": 0}
    assert "ann" in run(db, "status", "cli").output
    for fmt in ("jsonl", "csv", "parquet"):
        out_file = tmp_path / f"out.{fmt}"
        run(db, "export", "cli", "--format", fmt, "-o", str(out_file))
        assert out_file.exists() and not (tmp_path / f"out.{fmt}.part").exists()
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(lines) == 20 and json.loads(lines[0])["majority"]["label"]["label"] == "pos"
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == 20
    listing = json.loads(run(db, "projects", "list", "--json").output)
    assert listing[0]["slug"] == "cli"


def test_bad_import_prints_file_line_field_and_exits_2(db, tmp_path):
    schema = tmp_path / "s.yaml"
    schema.write_text(SCHEMA_YAML)
    run(db, "projects", "create", "--schema", str(schema))
    data = tmp_path / "bad.jsonl"
    data.write_text('{"id": 1, "text": "ok"}\n{"id": 2, "txt": "typo"}\n')
    res = run(db, "import", "cli", str(data), ok=False)
    assert res.exit_code == 2
    assert f"{data}, line 2, field 'text': missing required field" in " ".join(res.output.split())
    assert json.loads(run(db, "status", "cli", "--json").output)["items"]["total"] == 0


def test_bad_schema_and_unknown_project(db, tmp_path):
    schema = tmp_path / "s.yaml"
    schema.write_text("name: x\nfields: [{name: a}]\nquestions: [{name: q, type: rating, min: 3, max: 1}]\n")
    res = run(db, "projects", "create", "--schema", str(schema), ok=False)
    assert res.exit_code == 2 and "max (1) must be greater than min (3)" in res.output
    run(db, "init")  # the refused schema created nothing, not even the database
    res = run(db, "export", "nope", "-o", str(tmp_path / "x.jsonl"), ok=False)
    assert res.exit_code == 2 and "no project 'nope'" in res.output


@pytest.fixture
def small_project(db, tmp_path):
    schema = tmp_path / "s.yaml"
    schema.write_text(SCHEMA_YAML)
    run(db, "projects", "create", "--schema", str(schema))
    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps({"id": i, "text": f"t{i}"}) + "\n" for i in range(3)))
    run(db, "import", "cli", str(data))
    out = tmp_path / "out"
    out.mkdir()
    return out


def test_export_never_follows_a_planted_part_file(db, small_project, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    planted = small_project / "x.jsonl.part"
    planted.symlink_to(victim)
    run(db, "export", "cli", "-o", str(small_project / "x.jsonl"))
    assert victim.read_text() == "precious" and planted.is_symlink() and planted.resolve() == victim.resolve()
    assert len((small_project / "x.jsonl").read_text().splitlines()) == 3
    assert not (small_project / "x.jsonl").is_symlink()
    assert sorted(f.name for f in small_project.iterdir()) == ["x.jsonl", "x.jsonl.part"]  # no temporary file left


def test_export_replaces_a_file_only_with_force(db, small_project):
    target = small_project / "x.csv"
    target.write_text("keep me")
    res = CliRunner().invoke(main, ["--db", db, "export", "cli", "--format", "csv", "-o", str(target)],
                             env={"COLUMNS": "1000"})  # one line, unless a narrow terminal wraps it
    assert res.exit_code == 2 and target.read_text() == "keep me"
    assert len(res.output.strip().splitlines()) == 1 and "exists: pass --force" in res.output
    run(db, "export", "cli", "--format", "csv", "-o", str(target), "--force")
    assert target.read_text().startswith("item_id,") and len(target.read_text().splitlines()) == 4
    assert [f.name for f in small_project.iterdir()] == ["x.csv"]
    os.chmod(target, 0o644)
    run(db, "export", "cli", "--format", "parquet", "-o", str(small_project / "x.parquet"))
    assert len(pd.read_parquet(small_project / "x.parquet")) == 3
    assert (small_project / "x.parquet").stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_export_into_a_missing_folder_is_one_line(db, small_project):
    res = CliRunner().invoke(main, ["--db", db, "export", "cli", "-o", str(small_project / "nope" / "x.jsonl")],
                             env={"COLUMNS": "1000"})
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1 and "no folder" in res.output


def test_a_failed_export_leaves_the_target_as_it_was(db, small_project, monkeypatch):
    def broken(store, project, workers=1):
        yield b"half a line"
        raise RuntimeError("disk full")

    monkeypatch.setattr(cli_items, "jsonl_lines", broken)  # what `export` writes with
    target = small_project / "x.jsonl"
    target.write_text("the old export")
    res = CliRunner().invoke(main, ["--db", db, "export", "cli", "-o", str(target), "--force"])
    assert isinstance(res.exception, RuntimeError)
    assert target.read_text() == "the old export" and [f.name for f in small_project.iterdir()] == ["x.jsonl"]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_export_workers_write_the_same_file(db, small_project, monkeypatch, fmt):
    """``export --workers N`` makes the chunks in N forked processes: the same file as one process, and a
    worker's failure fails the command and leaves no file."""
    monkeypatch.setattr(export, "CHUNK", 1)  # 3 items: 3 chunks
    files = {}
    for n in ("1", "2", "3"):
        target = small_project / f"w{n}.{fmt}"
        res = CliRunner().invoke(main, ["--db", db, "export", "cli", "-o", str(target), "--workers", n])
        assert res.exit_code == 0, res.output
        files[n] = target.read_bytes()
    assert files["2"] == files["1"] == files["3"] and len(files["1"]) > 100

    def fail(conn, dialect, project_id, items):
        if items[0][0] != min_id and os.getpid() != parent:
            raise OSError("the disk went away")
        return []
    parent = os.getpid()
    store = Store(db)
    try:
        min_id = export._chunk_ranges(store, get_project(store, "cli"), 1)[0][1]
    finally:
        store.close()
    monkeypatch.setattr(export, "_annotation_rows", fail)
    target = small_project / f"broken.{fmt}"
    res = CliRunner().invoke(main, ["--db", db, "export", "cli", "-o", str(target), "--workers", "2"])
    assert res.exit_code != 0 and "the disk went away" in str(res.exception)
    assert not target.exists() and not [f for f in small_project.iterdir() if f.name.startswith(".broken")]
    res = CliRunner().invoke(main, ["--db", db, "export", "cli", "-o", str(target), "--workers", "0"])
    assert res.exit_code == 2 and "--workers" in res.output


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_export_to_standard_output(db, small_project, fmt):
    """``-o -``: the same bytes as the file, nothing else on standard output (how the server runs its large
    exports, labelwright.services.export_process)."""
    run(db, "export", "cli", "-o", str(small_project / f"x.{fmt}"))
    cmd = [sys.executable, "-m", "labelwright", "--db", db, "export", "cli", "--format", fmt, "-o", "-"]
    done = subprocess.run(cmd, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == (small_project / f"x.{fmt}").read_bytes()


def test_export_to_standard_output_refuses_a_folder_format_and_stops_quietly_on_a_closed_pipe(db, tmp_path):
    res = CliRunner().invoke(main, ["--db", db, "export", "cli", "--format", "coco", "-o", "-"])
    assert res.exit_code == 2 and "-o - (standard output) takes jsonl, csv or parquet" in res.output
    schema = tmp_path / "s.yaml"
    schema.write_text(SCHEMA_YAML)
    run(db, "projects", "create", "--schema", str(schema))
    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps({"id": i, "text": f"long text {i} " * 50}) + "\n" for i in range(3000)))
    run(db, "import", "cli", str(data))  # an export of 1.5 MB: more than a pipe holds
    cmd = [sys.executable, "-m", "labelwright", "--db", db, "export", "cli", "-o", "-", "--workers", "2"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        assert child.stdout.read(100).startswith(b'{"item_id":')
        child.stdout.close()  # `| head -c 100`
        _, err = child.communicate(timeout=120)
    assert child.returncode == 1 and err == b""  # no traceback, no "Exception ignored" at exit


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_bad_database_url():
    res = CliRunner().invoke(main, ["--db", "mysql://x", "projects", "list"])
    assert res.exit_code == 2 and res.output == ("error: --db: db_url must be a SQLite file path or a "
                                                 "postgresql://user@host:port/dbname URL, not 'mysql://x'\n")


def test_demo_builds_projects_from_shipped_data(tmp_path):
    db = tmp_path / "demo.db"
    proc = subprocess.run([sys.executable, "-m", "labelwright", "demo", "--db", str(db), "--no-serve"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "youtube-spam: 300 items" in proc.stderr and "llm-preference: 200 items" in proc.stderr
    assert "http://127.0.0.1:8000/signin/" in proc.stderr
    # a second run adds nothing and prints a fresh link
    proc = subprocess.run([sys.executable, "-m", "labelwright", "demo", "--db", str(db), "--no-serve"],
                          capture_output=True, text=True, timeout=120)
    assert "youtube-spam: 300 items" in proc.stderr
