"""The settings' sources through the real command line: a config file < the environment < the command line,
`labelwright settings` showing each value's source, and a bad value from any source as one line, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import labelwright.cli_server as cli_server
from labelwright.cli import main

REPO = Path(__file__).resolve().parents[2]
CLEAN = {k: v for k, v in os.environ.items() if not k.startswith("LABELWRIGHT_")}


def shown(args: list[str], env: dict[str, str] | None = None) -> dict[str, dict]:
    res = CliRunner().invoke(main, [*args, "settings", "--json"], env=env)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def error_line(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    """Run the real `labelwright` process: status 2, one line on stderr, no traceback; that line."""
    proc = subprocess.run([sys.executable, "-m", "labelwright", *args], capture_output=True, text=True,
                          env={**CLEAN, **(env or {})}, cwd=cwd or REPO, timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0].removeprefix("error: ")


def test_file_then_environment_then_command_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "conf" / "lw.toml"
    config.parent.mkdir()
    config.write_text('# labelwright settings\nport = 9001\nhost = "127.0.0.5"\nsecure_cookies = true\n'
                      'db_url = "data/lw.db"\nsession_days = 3\nbase_url = "https://file.example"\n')
    env = {**CLEAN, "LABELWRIGHT_PORT": "9002", "LABELWRIGHT_SESSION_DAYS": "4"}
    got = shown(["--config", str(config), "--set", "session_days=5", "--base-url", "https://cli.example"], env)
    assert got["host"] == {"value": "127.0.0.5", "source": f"config file {config}, line 3"}
    assert got["secure_cookies"] == {"value": True, "source": f"config file {config}, line 4"}
    # a relative SQLite path in the file is relative to the file's folder, not to where the command runs
    assert got["db_url"]["value"] == str(config.parent / "data" / "lw.db")
    assert got["port"] == {"value": 9002, "source": "environment variable LABELWRIGHT_PORT"}
    assert got["session_days"] == {"value": 5, "source": "--set session_days"}
    assert got["base_url"] == {"value": "https://cli.example", "source": "--base-url"}
    assert got["pool_size"] == {"value": 20, "source": "default"}
    # LABELWRIGHT_CONFIG names the file when --config does not; --config wins over it
    other = tmp_path / "other.toml"
    other.write_text("port = 7000\n")
    assert shown([], {**CLEAN, "LABELWRIGHT_CONFIG": str(other)})["port"]["value"] == 7000
    assert shown(["--config", str(config)], {**CLEAN, "LABELWRIGHT_CONFIG": str(other)})["port"]["value"] == 9001
    # --db after the command beats the environment and the file
    res = CliRunner().invoke(main, ["--config", str(config), "settings", "--json", "--db", "x.db"],
                             env={**CLEAN, "LABELWRIGHT_DB": "y.db"})
    assert json.loads(res.stdout)["db_url"] == {"value": str(tmp_path / "x.db"), "source": "--db"}


def test_settings_never_shows_a_database_password():
    got = shown(["--db", "postgresql://ann:s3cret@db.example:5432/lw"], CLEAN)
    assert got["db_url"]["value"] == "postgresql://ann@db.example:5432/lw"
    res = CliRunner().invoke(main, ["--db", "postgresql://ann:s3cret@db.example/lw", "settings"], env=CLEAN)
    assert res.exit_code == 0 and "s3cret" not in res.output and "LABELWRIGHT" not in res.output


def test_a_config_file_can_hold_a_postgresql_url(tmp_path):
    config = tmp_path / "lw.toml"
    config.write_text('db_url = "postgresql://u@h:5433/d"\nmedia_root = "media"\n')
    got = shown(["--config", str(config)], CLEAN)
    assert got["db_url"]["value"] == "postgresql://u@h:5433/d"
    assert got["media_root"]["value"] == str(tmp_path / "media")


@pytest.mark.parametrize("where", ["file", "env", "set", "option"])
def test_a_bad_value_from_each_source_is_one_line(tmp_path, where):
    config = tmp_path / "lw.toml"
    config.write_text("# ok\nport = 0\n" if where == "file" else "")
    args, env = ["--config", str(config)], {}
    if where == "env":
        env = {"LABELWRIGHT_PORT": "eighty"}
    elif where == "set":
        args += ["--set", "port=-1"]
    elif where == "option":
        args = [*args, "serve", "--port", "70000", "--db", str(tmp_path / "lw.db")]
    line = error_line([*args] if where == "option" else [*args, "settings"], env)
    source, value = {"file": (f"config file {config}, line 2", "0"),
                     "env": ("environment variable LABELWRIGHT_PORT", "'eighty'"),
                     "set": ("--set port", "'-1'"), "option": ("--port", "70000")}[where]
    assert line == f"{source}: port must be a whole number from 1 to 65535, not {value}"
    assert not (tmp_path / "lw.db").exists()  # nothing was created before the settings were checked


@pytest.mark.parametrize("content,message", [
    ("prot = 8000\n", "config file {f}, line 1: unknown setting 'prot'; known: db_url, host, port,"),
    ('port = 8000\n"sesion_days" = 3\n', "config file {f}, line 2: unknown setting 'sesion_days'; known:"),
    ("[labelwright]\nport = 8000\n", "config file {f}, line 1: [labelwright] is a table; settings are plain"),
    ("port = \n", "config file {f}: not valid TOML: "),
    ("port = 8000\nport = 8001\n", "config file {f}: not valid TOML: "),
])
def test_a_bad_config_file_names_the_file_and_the_key(tmp_path, content, message):
    config = tmp_path / "lw.toml"
    config.write_text(content)
    assert error_line(["--config", str(config), "settings"]).startswith(message.format(f=config))


def test_a_missing_config_file_is_one_line(tmp_path):
    missing = tmp_path / "nope.toml"
    assert error_line(["--config", str(missing), "settings"]) == f"no config file {str(missing)!r} (from --config): " \
                                                               "check the path"
    line = error_line(["settings"], {"LABELWRIGHT_CONFIG": str(missing)})
    assert line == f"no config file {str(missing)!r} (from LABELWRIGHT_CONFIG): check the path"
    assert error_line(["--set", "nothing", "settings"]).startswith("--set 'nothing': write NAME=VALUE")


def test_serve_builds_its_settings_from_every_source(tmp_path, monkeypatch):
    """`serve`'s named options and --set (its own and the group's) reach the settings it serves with."""
    seen = {}

    def fake_serve(obj, workers, log_level="warning"):  # stands in for starting the server processes
        seen["settings"], seen["workers"] = obj.settings, workers
    monkeypatch.setattr(cli_server, "_serve", fake_serve)
    config = tmp_path / "lw.toml"
    config.write_text("login_window_seconds = 30\nmax_body_bytes = 1\nport = 1\n")
    db = tmp_path / "lw.db"
    res = CliRunner().invoke(main, ["--config", str(config), "--set", "max_body_bytes=2", "--db", str(db), "serve",
                                    "--port", "9123", "--secure-cookies", "--set", "max_body_bytes=4096",
                                    "--media-root", str(tmp_path), "--workers", "2"],
                             env={**CLEAN, "LABELWRIGHT_HOST": "127.0.0.9"})
    assert res.exit_code == 0, res.output
    s = seen["settings"]
    assert (s.port, s.host, s.secure_cookies, s.max_body_bytes, s.login_window_seconds, s.media_root) == \
        (9123, "127.0.0.9", True, 4096, 30, tmp_path)
    assert s.db_url == f"sqlite:///{db}" and seen["workers"] == 2


def test_demo_uses_the_database_of_the_config_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "lw.toml"
    config.write_text('db_url = "from-config.db"\nbase_url = "https://demo.example"\n')
    res = CliRunner().invoke(main, ["--config", str(config), "demo", "--no-serve"], env=CLEAN)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "from-config.db").exists() and not (tmp_path / "labelwright-demo.db").exists()
    assert "https://demo.example/signin/" in res.output
