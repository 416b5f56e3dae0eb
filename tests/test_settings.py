"""Every setting can be set from the environment and from the command line (serve --set), with clear
errors for values that do not fit; the worker processes of `serve` rebuild exactly the same settings."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from labelwright.settings import SettingError, Settings, cast, parse_assignments, to_env

# A value different from the default for every field, as text (what the environment and --set give).
SAMPLES = {
    "db_url": "/tmp/other.db", "host": "127.0.0.2", "port": "9001", "base_url": "https://label.example.org",
    "media_root": "/tmp", "secure_cookies": "yes", "session_days": "3", "signin_link_hours": "5",
    "sqlite_synchronous": "NORMAL", "pool_size": "7", "webhook_worker": "off", "max_body_bytes": "2048",
    "max_import_bytes": "4096", "login_failures_per_account": "3", "login_failures_per_address": "9",
    "login_window_seconds": "60", "webhook_allow_private": "1", "statement_timeout_ms": "1234",
    "assist_worker": "no", "machine_worker": "0", "assist_interval_seconds": "3", "assist_python_models": "my_models",
}


def test_every_setting_has_a_sample():
    assert set(SAMPLES) == {f.name for f in dataclasses.fields(Settings)}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_setting_comes_from_the_environment(name):
    default = getattr(Settings(), name)
    got = getattr(Settings.from_env(env={"LABELWRIGHT_" + name.upper(): SAMPLES[name]}), name)
    assert got != default and got == getattr(Settings.from_env(**parse_assignments([f"{name}={SAMPLES[name]}"])),
                                             name)


def test_the_cli_beats_the_environment_and_workers_rebuild_the_same():
    env = {"LABELWRIGHT_SECURE_COOKIES": "0", "LABELWRIGHT_MAX_BODY_BYTES": "100"}
    s = Settings.from_env(env=env, **parse_assignments(["secure-cookies=true"]))
    assert s.secure_cookies is True and s.max_body_bytes == 100
    assert Settings.from_env(env=to_env(s)) == s
    assert Settings.from_env(env={"LABELWRIGHT_DB": "x.db"}).db_url == "sqlite:///" + str(Path("x.db").resolve())


@pytest.mark.parametrize("name,value,message", [
    ("port", "eighty", "port must be a whole number"),
    ("secure_cookies", "maybe", "secure_cookies must be true or false"),
    ("no_such_thing", "1", "unknown setting"),
])
def test_bad_values_are_named(name, value, message):
    with pytest.raises(SettingError, match=message):
        cast(name, value, "test")
    if name != "no_such_thing":
        with pytest.raises(SettingError, match="LABELWRIGHT_" + name.upper()):
            Settings.from_env(env={"LABELWRIGHT_" + name.upper(): value})


def test_secure_cookies_from_the_environment_reach_the_cookie(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from labelwright.app import create_app
    from labelwright.services import users
    from labelwright.store import Store
    from tests.conftest import post_login

    db = tmp_path / "lw.db"
    monkeypatch.setenv("LABELWRIGHT_DB", str(db))
    monkeypatch.setenv("LABELWRIGHT_SECURE_COOKIES", "1")
    monkeypatch.setenv("LABELWRIGHT_WEBHOOK_WORKER", "0")
    store = Store(f"sqlite:///{db}")
    store.migrate()
    users.create_user(store, "olive", "owner", "owner-password")
    store.close()
    app = create_app()  # settings from the environment, as `serve`'s worker processes build them
    with TestClient(app, base_url="https://127.0.0.1:8000") as http:
        r = post_login(http, "olive", "owner-password", follow_redirects=False)
        assert r.status_code == 303, r.text
        cookie = [v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("lw_session=")][0]
        assert "Secure" in cookie and "HttpOnly" in cookie


def test_serve_passes_every_option_to_the_server(tmp_path, monkeypatch):
    """`serve --set` and the named options end up in the Settings the app is built with."""
    from click.testing import CliRunner

    import labelwright.cli as cli

    seen = {}

    def fake_run(app, **kwargs):  # stands in for uvicorn.run: build the app the workers would build
        seen["settings"] = Settings.from_env()
        seen["kwargs"] = kwargs
    monkeypatch.setattr("uvicorn.run", fake_run)
    # serve writes the settings into the environment for its worker processes: give it a copy
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if not k.startswith("LABELWRIGHT_")})
    db = tmp_path / "lw.db"
    res = CliRunner().invoke(cli.main, ["--db", str(db), "serve", "--port", "9123", "--secure-cookies",
                                        "--set", "max_body_bytes=4096", "--set", "login_window_seconds=30"])
    assert res.exit_code == 0, res.output
    s = seen["settings"]
    assert (s.port, s.secure_cookies, s.max_body_bytes, s.login_window_seconds) == (9123, True, 4096, 30)
    assert s.db_url == f"sqlite:///{db}" and seen["kwargs"]["port"] == 9123
    bad = CliRunner().invoke(cli.main, ["--db", str(db), "serve", "--set", "port=x"])
    assert bad.exit_code == 2 and "port must be a whole number" in bad.output
