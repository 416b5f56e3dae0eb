"""The command line as a newcomer meets it: real processes, their exit codes and what they print.

Database errors are one line naming the database (never its password) and what to check, with exit
status 2; a SQLite path that does not exist is refused by every command that does not create things;
``--db`` works before and after the command, ``demo`` included; printed links use the configured base
URL; ``serve`` on a port in use says so in one line; error lines are never wrapped.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from labelwright.cli import main
from tests.conftest import PG_URL, PgSchema, bearer, require_pg
from tests.server import ServerProcess, free_port

REPO = Path(__file__).resolve().parents[2]
SCHEMA_YAML = """
name: Newcomer
slug: news
id_field: id
fields: [{name: text, type: text}]
questions:
  - {name: label, type: single_choice, options: [pos, neg]}
"""


def lw(*args, env: dict | None = None, cwd=None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m labelwright ARGS`` in a clean environment (no LABELWRIGHT_* from outside, no COLUMNS)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("LABELWRIGHT_") and k != "COLUMNS"}
    base["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "labelwright", *args], check=False, capture_output=True, text=True,
                          env={**base, **(env or {})}, cwd=cwd or REPO, timeout=timeout)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The process failed with status 2 and printed exactly one line, an error, and no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stdout == "", proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def pg_url(user: str = "postgres", password: str | None = None, port: int | None = None,
           database: str = "test") -> str:
    base = make_url(PG_URL)
    auth = user + (f":{password}" if password else "")
    return f"postgresql://{auth}@{base.host}:{port or base.port or 5432}/{database}"


# ---- database errors: one line, exit 2, the database named without its password -------------------


def test_postgresql_bad_port_is_one_line_without_the_password():
    require_pg()
    port = free_port()  # nothing listens there
    line = one_error_line(lw("--db", pg_url(password="s3cret-pw", port=port), "projects", "list"))
    assert f"postgresql://postgres@127.0.0.1:{port}/test" in line and "s3cret" not in line
    assert "nothing is listening" in line and "check --db" in line


def test_postgresql_missing_database_is_one_line():
    require_pg()
    name = "lw_missing_" + uuid.uuid4().hex[:8]
    line = one_error_line(lw("--db", pg_url(database=name), "status", "x"))
    assert f'has no database "{name}"' in line and f"createdb {name}" in line


def test_postgresql_missing_role_is_one_line():
    require_pg()
    role = "lw_nobody_" + uuid.uuid4().hex[:8]
    line = one_error_line(lw("--db", pg_url(user=role, password="pw"), "users", "list"))
    assert f'has no role "{role}"' in line and f"postgresql://{role}@" in line and "pw" not in line.split(role)[0]


def test_sqlite_missing_folder_is_one_line_even_for_init(tmp_path):
    target = tmp_path / "no" / "such" / "lw.db"
    line = one_error_line(lw("--db", str(target), "init"))
    assert f"no folder {target.parent}" in line
    assert not (tmp_path / "no").exists()


def test_sqlite_file_that_is_not_a_database(tmp_path):
    junk = tmp_path / "notes.db"
    junk.write_text("these are my notes, not a database\n" * 50)
    line = one_error_line(lw("--db", str(junk), "projects", "list"))
    assert f"{junk} is not a labelwright database" in line
    assert junk.read_text().startswith("these are my notes")  # untouched


def test_sqlite_path_that_is_a_folder(tmp_path):
    line = one_error_line(lw("--db", str(tmp_path), "projects", "create", "--schema", "x.yaml"))
    # the schema file is missing too; the database is checked after the schema: either is one line
    assert "x.yaml" in line or "is a folder" in line
    schema = tmp_path / "s.yaml"
    schema.write_text(SCHEMA_YAML)
    line = one_error_line(lw("--db", str(tmp_path), "projects", "create", "--schema", str(schema)))
    assert f"{tmp_path} is a folder, not a database file" in line


# ---- only the commands that create things create the database --------------------------------------


def test_a_typo_in_the_path_creates_nothing(tmp_path):
    for args in (["projects", "list"], ["status", "news"], ["users", "list"], ["export", "news", "-o", "x.jsonl"],
                 ["import", "news", "x.jsonl"], ["quality", "news"], ["audit"]):
        typo = tmp_path / "labelwrigth.db"
        line = one_error_line(lw("--db", str(typo), *args, cwd=tmp_path))
        assert line == (f"error: no database at {typo}: run `labelwright init` first, or check --db "
                        "(or LABELWRIGHT_DB)"), args
        assert sorted(p.name for p in tmp_path.iterdir()) == [], args


def test_init_creates_the_database_and_says_so(tmp_path):
    db = tmp_path / "lw.db"
    proc = lw("--db", str(db), "init")
    assert proc.returncode == 0, proc.stderr
    assert f"created a new database at {db}" in proc.stderr and "database ready" in proc.stderr
    again = lw("--db", str(db), "init")
    assert again.returncode == 0 and "created a new database" not in again.stderr
    listed = lw("--db", str(db), "projects", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


@pytest.mark.parametrize("args", [["projects", "create", "--schema", "s.yaml"], ["users", "create", "alice",
                                                                                 "--role", "owner"], ["migrate"]])
def test_the_commands_that_create_things_create_the_file(tmp_path, args):
    (tmp_path / "s.yaml").write_text(SCHEMA_YAML)
    db = tmp_path / "new.db"
    proc = lw("--db", str(db), *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert db.exists() and f"created a new database at {db}" in proc.stderr


def test_commands_on_an_existing_database_and_postgresql_are_unchanged(db_url, tmp_path):
    """On an existing database (and on PostgreSQL, where there is no file) the other commands work."""
    (tmp_path / "s.yaml").write_text(SCHEMA_YAML)
    run = CliRunner()
    assert run.invoke(main, ["--db", db_url, "init"]).exit_code == 0
    res = run.invoke(main, ["--db", db_url, "projects", "create", "--schema", str(tmp_path / "s.yaml")])
    assert res.exit_code == 0, res.output
    res = run.invoke(main, ["--db", db_url, "status", "news", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["items"]["total"] == 0


# ---- --db after the command; demo honours --db and LABELWRIGHT_DB ----------------------------------


def test_db_after_the_command(db_url, tmp_path):
    (tmp_path / "s.yaml").write_text(SCHEMA_YAML)
    run = CliRunner()
    res = run.invoke(main, ["projects", "create", "--schema", str(tmp_path / "s.yaml"), "--db", db_url])
    assert res.exit_code == 0, res.output
    res = run.invoke(main, ["projects", "list", "--json", "--db", db_url])
    assert res.exit_code == 0 and [p["slug"] for p in json.loads(res.output)] == ["news"]
    # in a subgroup, and after the arguments
    res = run.invoke(main, ["users", "create", "ann", "--project", "news", "--db", db_url])
    assert res.exit_code == 0, res.output
    res = run.invoke(main, ["members", "list", "news", "--db", db_url], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "ann" in res.output
    # after the command it wins over the one before (the last word counts)
    res = run.invoke(main, ["--db", str(tmp_path / "other.db"), "projects", "list", "--json", "--db", db_url])
    assert res.exit_code == 0 and json.loads(res.output)[0]["slug"] == "news"
    assert not (tmp_path / "other.db").exists()
    assert "--db" in run.invoke(main, ["import", "--help"]).output


def test_demo_honours_db_before_and_after_the_command(db_url, tmp_path):
    run = CliRunner()
    res = run.invoke(main, ["--db", db_url, "demo", "--no-serve"], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    res = run.invoke(main, ["projects", "list", "--json", "--db", db_url])
    assert sorted(p["slug"] for p in json.loads(res.output)) == ["llm-preference", "youtube-spam"]


def test_demo_honours_labelwright_db_and_writes_nothing_else(tmp_path):
    db = tmp_path / "mine.db"
    proc = lw("demo", "--no-serve", env={"LABELWRIGHT_DB": str(db)}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("mine.db")) == []
    assert "youtube-spam: 300 items" in proc.stderr
    listed = lw("--db", str(db), "projects", "list", "--json")
    assert len(json.loads(listed.stdout)) == 2
    # with neither, the demo keeps its own file in the current folder
    proc = lw("demo", "--no-serve", cwd=tmp_path)
    assert proc.returncode == 0 and (tmp_path / "labelwright-demo.db").exists()


# ---- printed links use the configured base URL ------------------------------------------------------


def _link(output: str, kind: str) -> str:
    return next(w for w in output.split() if f"/{kind}/" in w)


def test_printed_links_use_the_base_url(db_url):
    run = CliRunner()
    env = {"COLUMNS": "80"}
    res = run.invoke(main, ["--db", db_url, "users", "create", "boss", "--role", "owner"], env=env)
    assert res.exit_code == 0 and _link(res.output, "signin").startswith("http://127.0.0.1:8000/signin/")
    res = run.invoke(main, ["--db", db_url, "--base-url", "https://label.example.org/", "users", "link", "boss"],
                     env=env)
    assert res.exit_code == 0 and _link(res.output, "signin").startswith("https://label.example.org/signin/")
    res = run.invoke(main, ["--db", db_url, "users", "create", "ann", "--base-url", "https://a.example/lw"],
                     env=env)
    assert res.exit_code == 0 and _link(res.output, "signin").startswith("https://a.example/lw/signin/")
    res = run.invoke(main, ["--db", db_url, "users", "reset-link", "ann"],
                     env={**env, "LABELWRIGHT_BASE_URL": "https://env.example"})
    assert res.exit_code == 0 and _link(res.output, "reset").startswith("https://env.example/reset/")
    # the command line beats the environment
    res = run.invoke(main, ["--db", db_url, "users", "link", "ann", "--base-url", "https://cli.example"],
                     env={**env, "LABELWRIGHT_BASE_URL": "https://env.example"})
    assert _link(res.output, "signin").startswith("https://cli.example/signin/")


def test_the_server_uses_the_base_url_in_its_links(db_url):
    """`serve --base-url` reaches the server: the invite and new-user links it answers use it."""
    boss = CliRunner().invoke(main, ["--db", db_url, "users", "create", "boss", "--role", "owner"],
                              env={"COLUMNS": "300"})
    token = next(line.split(": ", 1)[1] for line in boss.output.splitlines() if "API token" in line).strip()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABELWRIGHT_")}
    proc = subprocess.Popen([sys.executable, "-m", "labelwright", "serve", "--port", str(port), "--db", db_url,
                             "--base-url", "https://label.example.org"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for(url, proc)
        h = {"Authorization": f"Bearer {token}"}
        r = httpx.post(f"{url}/api/v1/invites", json={"role": "annotator"}, headers=h)
        assert r.status_code == 201 and r.json()["url"].startswith("https://label.example.org/invite/")
        r = httpx.post(f"{url}/api/v1/users", json={"name": "cat", "role": "annotator"}, headers=h)
        assert r.status_code == 201 and r.json()["signin_url"].startswith("https://label.example.org/signin/")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "links use https://label.example.org/" in err


def _wait_for(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("the server did not start")


# ---- serve on a port in use -------------------------------------------------------------------------


def test_serve_on_a_port_in_use_is_one_line_and_creates_nothing(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        db = tmp_path / "lw.db"
        proc = lw("--db", str(db), "serve", "--port", str(port), timeout=60)
        line = one_error_line(proc)
        assert f"port {port} on 127.0.0.1 is already in use" in line and "--port" in line
        assert "serving on" not in proc.stderr and not db.exists()
        line = one_error_line(lw("demo", "--port", str(port), "--db", str(db), timeout=60))
        assert "already in use" in line and not db.exists()


def test_serve_on_an_address_that_is_not_this_machines_is_one_line(tmp_path):
    db = tmp_path / "lw.db"
    line = one_error_line(lw("--db", str(db), "serve", "--host", "192.0.2.1", "--port", "8765", timeout=60))
    assert "cannot listen on 192.0.2.1:8765" in line and "check --host" in line  # TEST-NET-1: nobody's
    line = one_error_line(lw("--db", str(db), "serve", "--host", "no-such-host.invalid", timeout=60))
    assert "cannot listen on no-such-host.invalid:8000: unknown host" in line
    assert not db.exists()


def test_serve_on_a_port_in_use_by_another_labelwright(db_url):
    with ServerProcess(db_url) as server:
        line = one_error_line(lw("--db", db_url, "serve", "--port", str(server.port), timeout=60))
        assert f"port {server.port} on 127.0.0.1 is already in use" in line
        assert httpx.get(f"{server.url}/healthz").status_code == 200  # the first one is unharmed


# ---- error lines are never wrapped ------------------------------------------------------------------


def test_a_long_error_is_one_line_in_a_pipe(tmp_path):
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "and-a-long-database-file-name-too.db"
    proc = lw("--db", str(deep), "projects", "list")  # stderr is a pipe: no terminal width to wrap at
    line = one_error_line(proc)
    assert len(line) > 160 and str(deep) in line


def test_a_long_error_is_one_line_in_process(tmp_path):
    deep = tmp_path / ("x" * 150) / "lw.db"
    res = CliRunner().invoke(main, ["--db", str(deep), "status", "p"])  # no COLUMNS: rich's default 80
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1 and str(deep) in res.output


# ---- export: the format from the extension; CSV and Parquet keep the metadata ------------------------

META_SCHEMA = SCHEMA_YAML + "gold: {field: gold}\n"
META_ITEMS = [
    {"id": "a", "text": "first", "source": "web", "score": 0.5, "tags": ["x", "y"], "nested": {"k": [1, 2]}},
    {"id": "b", "text": "second", "flag": True, "source": "mail"},
    {"id": "c", "text": "third", "gold": {"label": "neg"}},
]


@pytest.fixture
def meta_project(db_url, tmp_path):
    (tmp_path / "s.yaml").write_text(META_SCHEMA)
    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in META_ITEMS))
    run = CliRunner()
    assert run.invoke(main, ["--db", db_url, "projects", "create", "--schema", str(tmp_path / "s.yaml")]).exit_code == 0
    res = run.invoke(main, ["--db", db_url, "import", "news", str(data)])
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    out.mkdir()
    return db_url, out


def _export(db_url, *args):
    return CliRunner().invoke(main, ["--db", db_url, "export", "news", *args], env={"COLUMNS": "80"})


def test_export_takes_the_format_from_the_extension(meta_project):
    db_url, out = meta_project
    for name in ("x.parquet", "x.csv", "x.jsonl", "x.json", "x.PARQUET"):
        res = _export(db_url, "-o", str(out / name))
        assert res.exit_code == 0, res.output
    assert len(pd.read_parquet(out / "x.parquet")) == 3 and len(pd.read_parquet(out / "x.PARQUET")) == 3
    assert len(pd.read_csv(out / "x.csv")) == 3
    for name in ("x.jsonl", "x.json"):
        assert [json.loads(line)["external_id"] for line in (out / name).read_text().splitlines()] == ["a", "b", "c"]
    # a name without a known extension needs --format
    assert _export(db_url, "-o", str(out / "x.txt"), "--format", "csv").exit_code == 0
    assert (out / "x.txt").read_text().startswith("item_id,external_id,")


def test_export_refuses_a_format_that_contradicts_the_extension(meta_project):
    db_url, out = meta_project
    for name, fmt in (("y.parquet", "jsonl"), ("y.csv", "parquet"), ("y.jsonl", "csv")):
        res = _export(db_url, "-o", str(out / name), "--format", fmt)
        assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
        assert f"ends in {Path(name).suffix} but --format is {fmt}" in res.output
    res = _export(db_url, "-o", str(out / "y.txt"))
    assert res.exit_code == 2 and "cannot tell the format from '.txt'" in res.output
    res = _export(db_url, "-o", str(out / "noext"))
    assert res.exit_code == 2 and "cannot tell the format from no extension" in res.output
    assert list(out.iterdir()) == []  # nothing written, no temporary file left


def test_csv_and_parquet_keep_the_metadata_that_jsonl_keeps(meta_project):
    db_url, out = meta_project
    for name in ("m.jsonl", "m.csv", "m.parquet"):
        assert _export(db_url, "-o", str(out / name)).exit_code == 0
    jsonl = {r["external_id"]: r["data"] for r in map(json.loads, (out / "m.jsonl").read_text().splitlines())}
    parquet = pd.read_parquet(out / "m.parquet")
    for frame in (pd.read_csv(out / "m.csv", dtype=str, keep_default_na=False),
                  parquet.astype(object).where(parquet.notna(), "")):
        meta = sorted(c for c in frame.columns if c.startswith("meta."))
        assert meta == ["meta.flag", "meta.id", "meta.nested", "meta.score", "meta.source", "meta.tags"]
        assert list(frame.columns).index("meta.flag") == list(frame.columns).index("data.text") + 1
        rows = {r["external_id"]: r for r in frame.to_dict("records")}
        for ext, data in jsonl.items():
            for key in ("flag", "id", "nested", "score", "source", "tags"):
                cell = rows[ext][f"meta.{key}"]
                if key not in data:
                    assert cell == "", (ext, key)
                elif isinstance(data[key], str):
                    assert cell == data[key]
                else:  # anything but a string is its JSON text
                    assert json.loads(cell) == data[key], (ext, key, cell)
        # gold answers are not item data: no meta.gold column, in any format
        assert not any("gold" in c for c in meta) and "gold" not in jsonl["c"]


# ---- import: repeated ids, empty files, other encodings, Label Studio exports ---------------------


@pytest.fixture
def news(db_url, tmp_path):
    (tmp_path / "s.yaml").write_text(META_SCHEMA)
    res = CliRunner().invoke(main, ["--db", db_url, "projects", "create", "--schema", str(tmp_path / "s.yaml")])
    assert res.exit_code == 0, res.output
    return db_url


def _import(db_url, path, *args):
    return CliRunner().invoke(main, ["--db", db_url, "import", "news", str(path), *args], env={"COLUMNS": "80"})


def _total(db_url) -> int:
    res = CliRunner().invoke(main, ["--db", db_url, "status", "news", "--json"])
    return json.loads(res.output)["items"]["total"]


def test_a_repeated_id_in_one_file_is_an_error_naming_both_lines(news, tmp_path):
    f = tmp_path / "items.jsonl"
    rows = [{"id": "a", "text": "1"}, {"id": "b", "text": "2"}, {"id": "c", "text": "3"},
            {"id": "b", "text": "another b"}, {"id": "a", "text": "again"}]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = _import(news, f)
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    # the first repeat in the file, and where its id was first
    assert f"{f}, line 4, field 'id': the id 'b' is also on line 2" in res.output
    assert "nothing was imported" in res.output and _total(news) == 0
    # a CSV names physical lines (a quoted cell may span two)
    c = tmp_path / "items.csv"
    c.write_text('id,text\nx,"two\nlines"\ny,plain\nx,again\n')
    res = _import(news, c)
    assert res.exit_code == 2 and f"{c}, line 5, field 'id': the id 'x' is also on line 2" in res.output
    # gold answers do not make a repeat acceptable
    g = tmp_path / "gold.jsonl"
    g.write_text(json.dumps({"id": "q", "text": "t", "gold": {"label": "pos"}}) + "\n"
                 + json.dumps({"id": "q", "text": "t", "gold": {"label": "neg"}}) + "\n")
    res = _import(news, g)
    assert res.exit_code == 2 and "the id 'q' is also on line 1" in res.output and _total(news) == 0


def test_ids_already_in_the_project_are_still_skipped(news, tmp_path):
    f = tmp_path / "items.jsonl"
    f.write_text("".join(json.dumps({"id": i, "text": str(i)}) + "\n" for i in range(3)))
    assert "imported 3 new items into news (0 already present)" in _import(news, f).output
    f.write_text("".join(json.dumps({"id": i, "text": str(i)}) + "\n" for i in range(5)))
    assert "imported 2 new items into news (3 already present)" in _import(news, f).output


def test_items_without_ids_repeated_exactly_are_kept_once_and_said(db_url, tmp_path):
    (tmp_path / "s.yaml").write_text(SCHEMA_YAML.replace("id_field: id\n", ""))
    CliRunner().invoke(main, ["--db", db_url, "projects", "create", "--schema", str(tmp_path / "s.yaml")])
    f = tmp_path / "items.jsonl"
    f.write_text('{"text": "same"}\n{"text": "other"}\n{"text": "same"}\n')
    res = _import(db_url, f)
    assert res.exit_code == 0 and "imported 2 new items into news (0 already present, 1 repeated within the " \
                                  "file (same content, kept once))" in res.output
    assert "imported 0 new items into news (2 already present, 1 repeated" in _import(db_url, f).output


@pytest.mark.parametrize("name,text", [("empty.jsonl", ""), ("blank.jsonl", "\n\n"), ("header.csv", "id,text\n"),
                                       ("empty.csv", "")])
def test_an_empty_file_warns(news, tmp_path, name, text):
    f = tmp_path / name
    f.write_text(text)
    res = _import(news, f)
    assert res.exit_code == 0
    assert res.output.strip() == f"warning: {f} holds no items (it is empty, or only a header): nothing was imported"


def test_latin1_names_the_line_and_suggests_encoding(news, tmp_path):
    f = tmp_path / "items.jsonl"
    f.write_bytes(b'{"id": "1", "text": "plain"}\n{"id": "2", "text": "caf\xe9 cr\xe8me"}\n')
    proc = lw("--db", news, "import", "news", str(f))
    line = one_error_line(proc)
    assert f"{f}, line 2: not UTF-8 text (byte 0xe9 at column 25)" in line and "--encoding latin-1" in line
    assert _total(news) == 0
    res = _import(news, f, "--encoding", "latin-1")
    assert res.exit_code == 0 and "imported 2 new items" in res.output
    out = tmp_path / "x.jsonl"
    CliRunner().invoke(main, ["--db", news, "export", "news", "-o", str(out)])
    assert json.loads(out.read_text().splitlines()[1])["data"]["text"] == "café crème"


def test_latin1_csv_names_the_line(news, tmp_path):
    f = tmp_path / "items.csv"
    f.write_bytes(b"id,text\n" + b"".join(b"%d,fine\n" % i for i in range(5000)) + b"x,na\xefve\n")
    res = _import(news, f)
    assert res.exit_code == 2 and f"{f}, line 5002: not UTF-8 text (byte 0xef at column 5)" in res.output
    assert "--encoding latin-1" in res.output and _total(news) == 0
    res = _import(news, f, "--encoding", "cp1252")
    assert res.exit_code == 0 and "imported 5,001 new items" in res.output


def test_encoding_option_is_checked(news, tmp_path):
    f = tmp_path / "items.jsonl"
    f.write_text('{"id": "1", "text": "x"}\n')
    res = _import(news, f, "--encoding", "klingon")
    assert res.exit_code == 2 and "unknown encoding 'klingon'" in res.output
    p = tmp_path / "items.parquet"

    pd.DataFrame([{"id": "1", "text": "x"}]).to_parquet(p)
    res = _import(news, p, "--encoding", "latin-1")
    assert res.exit_code == 2 and "--encoding is for JSONL and CSV" in res.output


def test_a_label_studio_export_is_recognised(news, tmp_path):
    tasks = [{"id": 1, "data": {"text": "great"}, "annotations": [{"result": [{"value": {"choices": ["pos"]}}]}],
              "predictions": []},
             {"id": 2, "data": {"text": "awful"}, "annotations": [], "predictions": []}]
    f = tmp_path / "project-1-at-2026.json"
    f.write_text(json.dumps(tasks, indent=2))
    line = one_error_line(lw("--db", news, "import", "news", str(f)))
    assert f"{f}: this is a Label Studio export" in line and "not JSON Lines" in line
    assert "import-labelstudio" in line and f"jq -c '.[] | .data' {f} > items.jsonl" in line
    # on one line, as Label Studio's "JSON-MIN" writes it, too
    f.write_text(json.dumps(tasks))
    assert "Label Studio export" in _import(news, f).output
    # the command it suggests works (jq's output, written here by Python)
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(t["data"]) + "\n" for t in tasks))
    two = CliRunner().invoke(main, ["--db", news, "import", "news", str(items)])
    assert two.exit_code == 2 and "missing item id" in two.output  # this schema wants ids: said so, too


def test_a_plain_json_array_is_named(news, tmp_path):
    f = tmp_path / "items.json"
    f.write_text(json.dumps([{"id": "1", "text": "x"}]))
    res = _import(news, f)
    assert res.exit_code == 2 and "this is one JSON array, not JSON Lines" in res.output
    assert f"jq -c '.[]' {f} > items.jsonl" in res.output and _total(news) == 0


def test_a_repeated_id_through_the_api_names_both_items(http, owner, spam_project):
    """The API's batch import follows the same rule; the error points at both items of the body."""
    h = bearer(owner[1])
    before = http.get("/api/v1/projects/spam/status", headers=h).json()["items"]["total"]
    r = http.post("/api/v1/projects/spam/items", headers=h,
                  json={"items": [{"id": "n1", "text": "a"}, {"id": "n2", "text": "b"}, {"id": "n1", "text": "c"}]})
    assert r.status_code == 422 and r.json()["field"] == "items[2].id"
    assert "the id 'n1' is also on items[0]" in r.json()["error"]
    assert http.get("/api/v1/projects/spam/status", headers=h).json()["items"]["total"] == before
    r = http.post("/api/v1/projects/spam/items", headers=h, json={"items": [{"id": "n1", "text": "a"}]})
    assert r.status_code == 200 and r.json() == {"received": 1, "inserted": 1, "duplicates": 0, "gold": 0}


def test_a_bad_setting_in_the_environment_is_one_line(tmp_path):
    db = tmp_path / "lw.db"
    assert lw("--db", str(db), "init").returncode == 0
    line = one_error_line(lw("--db", str(db), "users", "list", env={"LABELWRIGHT_PORT": "eighty"}))
    assert line == ("error: environment variable LABELWRIGHT_PORT: port must be a whole number from 1 to 65535, "
                    "not 'eighty'")


def test_serve_never_prints_the_database_password():
    """`serve` names its database on start: without the password (PostgreSQL here trusts any password)."""
    require_pg()

    schema = PgSchema()
    try:
        url = schema.url.replace("postgres@", "postgres:hunter2-secret@", 1)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LABELWRIGHT_")}
        proc = subprocess.Popen([sys.executable, "-m", "labelwright", "--db", url, "serve", "--port", str(port)],
                                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            _wait_for(f"http://127.0.0.1:{port}", proc)
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=20)
        assert "serving on" in err and "postgresql://postgres@" in err and "hunter2" not in err
    finally:
        schema.drop()


def test_brackets_in_names_are_printed_as_they_are(news, tmp_path):
    """Error lines are not Rich markup: a file called data[raw].jsonl is named as it is."""
    f = tmp_path / "data[raw].jsonl"
    f.write_text('{"id": "1"}\n')
    res = _import(news, f)
    assert res.exit_code == 2 and f"{f}, line 1, field 'text': missing required field" in res.output
    empty = tmp_path / "[bold]empty.jsonl"
    empty.write_text("")
    assert f"warning: {empty} holds no items" in _import(news, empty).output


def test_export_names_the_file_it_wrote_as_it_is(meta_project):
    db_url, out = meta_project
    target = out / "labels[v2].csv"
    res = _export(db_url, "-o", str(target))
    assert res.exit_code == 0 and f"wrote {target} (" in res.output and target.exists()
