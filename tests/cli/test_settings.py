"""Every setting can be set from the environment, the command line (--set) and a config file, with clear
errors for values that do not fit; keyword construction reads nothing but the keywords."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from labelwright.app import create_app
from labelwright.services import users
from labelwright.settings import SettingError, Settings, allowed, to_env
from labelwright.store import Store
from tests.conftest import post_login

# A value different from the default for every field, as text (what the environment and --set give).
SAMPLES = {
    "db_url": "/tmp/other.db", "host": "127.0.0.2", "port": "9001", "base_url": "https://label.example.org",
    "media_root": "/tmp", "media_s3_endpoint": "http://minio.local:9000", "media_cache_dir": "/tmp/thumbs",
    "media_allow_private": "1", "media_max_bytes": "1000", "media_max_pixels": "1000", "media_fetch_seconds": "3",
    "secure_cookies": "yes", "session_days": "3", "signin_link_hours": "5",
    "sqlite_synchronous": "NORMAL", "pool_size": "7", "pg_batches": "3", "webhook_worker": "off",
    "max_body_bytes": "2048",
    "max_import_bytes": "4096", "login_failures_per_account": "3", "login_failures_per_address": "9",
    "login_window_seconds": "60", "webhook_allow_private": "1", "statement_timeout_ms": "1234",
    "export_process_items": "5000",
    "assist_worker": "no", "machine_worker": "0", "assist_interval_seconds": "3", "assist_python_models": "my_models",
}


def test_every_setting_has_a_sample_and_a_description():
    assert set(SAMPLES) == set(Settings.model_fields)
    assert [n for n, f in Settings.model_fields.items() if len(f.description or "") < 20] == []


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_setting_comes_from_each_source(name, tmp_path):
    default = getattr(Settings(), name)
    from_env = getattr(Settings.load(env={"LABELWRIGHT_" + name.upper(): SAMPLES[name]}), name)
    assert from_env != default
    assert getattr(Settings.load(env={}, sets=[f"{name}={SAMPLES[name]}"]), name) == from_env
    assert getattr(Settings.load(env={}, **{name: SAMPLES[name]}), name) == from_env
    config = tmp_path / "lw.toml"
    config.write_text(f"{name} = {SAMPLES[name]!r}\n".replace("'", '"'))
    assert getattr(Settings.load(env={}, config_file=config), name) == from_env
    assert getattr(Settings.load(env={"LABELWRIGHT_CONFIG": str(config)}), name) == from_env


def test_keyword_construction_reads_nothing(monkeypatch):
    monkeypatch.setenv("LABELWRIGHT_PORT", "9999")
    monkeypatch.setenv("LABELWRIGHT_DB", "/tmp/elsewhere.db")
    assert Settings().port == 8000 and Settings(port=8001).port == 8001
    assert Settings().db_url == "sqlite:///" + str(Path("labelwright.db").resolve())
    assert Settings.load().port == 9999  # load() is what reads os.environ


def test_the_cli_beats_the_environment_and_to_env_rebuilds_the_same():
    env = {"LABELWRIGHT_SECURE_COOKIES": "0", "LABELWRIGHT_MAX_BODY_BYTES": "100"}
    s = Settings.load(env=env, sets=["secure-cookies=true"])
    assert s.secure_cookies is True and s.max_body_bytes == 100
    assert Settings.load(env=to_env(s)) == s
    assert Settings.load(env={"LABELWRIGHT_DB": "x.db"}).db_url == "sqlite:///" + str(Path("x.db").resolve())
    # the older LABELWRIGHT_DB wins over LABELWRIGHT_DB_URL (what `serve` has always read)
    both = {"LABELWRIGHT_DB": "a.db", "LABELWRIGHT_DB_URL": "b.db"}
    assert Settings.load(env=both).db_url.endswith("/a.db")
    # a named option beats --set, which beats the environment; an empty variable is unset
    s = Settings.load(env={"LABELWRIGHT_PORT": "1", "LABELWRIGHT_HOST": ""}, sets=["port=2"], port=3)
    assert (s.port, s.host) == (3, "127.0.0.1")


def test_values_are_normalised():
    s = Settings(sqlite_synchronous=" normal ", media_root="", base_url=" https://x.example/ ", db_url="postgres://u@h/d")
    assert (s.sqlite_synchronous, s.media_root, s.base_url) == ("NORMAL", None, "https://x.example/")
    assert s.db_url == "postgresql+psycopg://u@h/d" and not s.is_sqlite and s.public_url == "https://x.example"
    assert Settings(media_root="~").media_root == Path.home().resolve()
    assert Settings(host="0.0.0.0", port=81).public_url == "http://127.0.0.1:81"
    assert Settings(assist_python_models=" a, ,b ").python_models == ("a", "b")
    s = Settings(port=1)
    assert s.with_(port=2).port == 2 and s.port == 1
    with pytest.raises(SettingError, match="port must be"):
        s.with_(port=0)
    with pytest.raises(ValidationError, match="frozen"):
        s.port = 5  # type: ignore[misc]


@pytest.mark.parametrize("name,value,message", [
    ("port", "eighty", "port must be a whole number from 1 to 65535, not 'eighty'"),
    ("port", "0", "port must be a whole number from 1 to 65535, not '0'"),
    ("port", "65536", "port must be a whole number from 1 to 65535, not '65536'"),
    ("port", "8000.5", "port must be a whole number from 1 to 65535"),
    ("secure_cookies", "maybe", "secure_cookies must be true or false (1/0, yes/no, on/off), not 'maybe'"),
    ("sqlite_synchronous", "fast", "sqlite_synchronous must be one of FULL, NORMAL, OFF, EXTRA, not 'fast'"),
    ("pool_size", "0", "pool_size must be a whole number of at least 1, not '0'"),
    ("pg_batches", "17", "pg_batches must be a whole number from 1 to 16, not '17'"),
    ("max_body_bytes", "-1", "max_body_bytes must be a whole number of at least 1"),
    ("statement_timeout_ms", "-5", "statement_timeout_ms must be a whole number of at least 0"),
    ("export_process_items", "-1", "export_process_items must be a whole number of at least 0"),
    ("db_url", "mysql://h/d", "db_url must be a SQLite file path or a postgresql://"),
    ("base_url", "label.example.org", "base_url must be empty or an http:// or https:// address"),
])
def test_bad_values_name_the_setting_the_source_and_what_is_allowed(name, value, message):
    var = "LABELWRIGHT_" + name.upper()
    with pytest.raises(SettingError) as e:
        Settings.load(env={var: value})
    assert str(e.value).startswith(f"environment variable {var}: {message}")
    with pytest.raises(SettingError) as e:
        Settings.load(env={}, sets=[f"{name}={value}"])
    assert str(e.value).startswith(f"--set {name}: {message}")
    with pytest.raises(SettingError) as e:
        Settings(**{name: value})
    assert str(e.value).startswith(message)


def test_a_boolean_is_not_a_number(tmp_path):
    config = tmp_path / "lw.toml"
    config.write_text("# a comment\n\nport = true\n")
    with pytest.raises(SettingError, match=rf"^config file {config}, line 3: port must be a whole number"):
        Settings.load(env={}, config_file=config)


def test_unknown_settings_are_refused_from_every_source_but_the_environment(tmp_path):
    with pytest.raises(SettingError, match=r"^--set prot: unknown setting 'prot'; known: db_url, host, port"):
        Settings.load(env={}, sets=["prot=1"])
    with pytest.raises(SettingError, match="^unknown setting 'prot'"):
        Settings(prot=1)
    with pytest.raises(SettingError, match="write NAME=VALUE"):
        Settings.load(env={}, sets=["port"])
    # other LABELWRIGHT_ variables (the tests' and benchmarks' own) are not settings, and not an error
    assert Settings.load(env={"LABELWRIGHT_TEST_PG": "x", "LABELWRIGHT_PROT": "1"}) == Settings()


def test_allowed_describes_every_setting():
    assert all(allowed(name) for name in Settings.model_fields)
    assert [n for n in Settings.model_fields if allowed(n) == "text"] == ["host", "assist_python_models"]


def test_secure_cookies_from_the_environment_reach_the_cookie(tmp_path, monkeypatch):
    db = tmp_path / "lw.db"
    monkeypatch.setenv("LABELWRIGHT_DB", str(db))
    monkeypatch.setenv("LABELWRIGHT_SECURE_COOKIES", "1")
    monkeypatch.setenv("LABELWRIGHT_WEBHOOK_WORKER", "0")
    store = Store(f"sqlite:///{db}")
    store.migrate()
    users.create_user(store, "olive", "owner", "owner-password")
    store.close()
    app = create_app()  # no settings given: Settings.load() reads the environment
    with TestClient(app, base_url="https://127.0.0.1:8000") as http:
        r = post_login(http, "olive", "owner-password", follow_redirects=False)
        assert r.status_code == 303, r.text
        cookie = [v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("lw_session=")][0]
        assert "Secure" in cookie and "HttpOnly" in cookie


def test_a_sign_in_limit_of_zero_turns_it_off_and_a_negative_one_is_refused():
    """docs/operations.md: 0 turns a sign-in limit off (services/signin.py honours it); below 0 is an error."""
    off = Settings.load(env={"LABELWRIGHT_LOGIN_FAILURES_PER_ACCOUNT": "0",
                             "LABELWRIGHT_LOGIN_FAILURES_PER_ADDRESS": "0"})
    assert (off.login_failures_per_account, off.login_failures_per_address) == (0, 0)
    with pytest.raises(SettingError, match="LABELWRIGHT_LOGIN_FAILURES_PER_ACCOUNT"):
        Settings.load(env={"LABELWRIGHT_LOGIN_FAILURES_PER_ACCOUNT": "-1"})
