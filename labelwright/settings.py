"""Settings: one immutable object built by the CLI (or a test) and passed to every factory.

Every field can be set three ways, in this order of precedence: a CLI option (``labelwright serve
--set NAME=VALUE``, or the named options such as ``--host``), the environment
(``LABELWRIGHT_<NAME>``, e.g. ``LABELWRIGHT_SECURE_COOKIES=1``), and the default below.
:meth:`Settings.from_env` reads the environment (pass ``env=`` to read another mapping) and casts each
value to the field's type, with an error naming the variable when it cannot.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Mapping

DEFAULT_DB = "labelwright.db"
ENV_PREFIX = "LABELWRIGHT_"
_OFF = ("0", "false", "no", "off")
_ON = ("1", "true", "yes", "on")


def normalise_db_url(db: str) -> str:
    """Accept a SQLite path or a SQLAlchemy/PostgreSQL URL and return a SQLAlchemy URL."""
    if db.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + db.split("://", 1)[1]
    if db.startswith(("postgresql+psycopg://", "sqlite://")):
        return db
    if "://" in db:
        raise ValueError(f"unsupported database URL {db!r}: use a SQLite file path or postgresql://...")
    return "sqlite:///" + str(Path(db).expanduser().resolve())


class SettingError(ValueError):
    """A setting's value cannot be used (names the setting and the source)."""


@dataclass(frozen=True)
class Settings:
    db_url: str = field(default_factory=lambda: normalise_db_url(DEFAULT_DB))
    host: str = "127.0.0.1"
    port: int = 8000
    # Public base URL used in printed sign-in links; derived from host/port when empty.
    base_url: str = ""
    # Directory that image fields given as relative file paths are served from (None: no local images).
    media_root: Path | None = None
    # Cookie flags: set secure_cookies when serving over HTTPS.
    secure_cookies: bool = False
    session_days: int = 14
    signin_link_hours: int = 72
    # SQLite durability: FULL fsyncs every commit; NORMAL survives process crashes but not power loss.
    sqlite_synchronous: str = "FULL"
    pool_size: int = 20
    # Run the webhook delivery worker (a background thread in each server process) with the app;
    # env LABELWRIGHT_WEBHOOK_WORKER=0 turns it off (events still queue, for a worker elsewhere).
    webhook_worker: bool = True
    # Run the assist worker (features, the assistant's training and predictions, auto-labelling) and the
    # machine-annotator worker (LLMs answering the queue) in each server process; 0 turns either off.
    assist_worker: bool = True
    machine_worker: bool = True
    # Seconds between the assist worker's passes over the assisted projects.
    assist_interval_seconds: int = 10
    # Packages (comma-separated) whose modules a project's assist.model may name as python:package.module:attr.
    # Empty: no python: models (the server would import and call code a schema names).
    assist_python_models: str = ""

    @property
    def python_models(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.assist_python_models.split(",") if p.strip())
    # ---- limits (docs/operations.md, "Security") ---------------------------------------------------
    # Largest request body, in bytes, on every route but item imports; a larger one is answered 413
    # before it is read.
    max_body_bytes: int = 1 << 20
    # Largest body of an item import through the API (POST /api/v1/projects/{p}/items).
    max_import_bytes: int = 64 << 20
    # Sign-in attempts: at most this many failures per account, and per client address, within
    # login_window_seconds; more are answered 429 until the window has passed.
    login_failures_per_account: int = 10
    login_failures_per_address: int = 50
    login_window_seconds: int = 900
    # Webhooks may be delivered to private, loopback and link-local addresses only when this is on.
    webhook_allow_private: bool = False
    # PostgreSQL: the longest any one statement may run, in milliseconds (0: no limit).
    statement_timeout_ms: int = 30_000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> "Settings":
        """Settings from ``LABELWRIGHT_<NAME>`` variables (``env``, default ``os.environ``), with
        ``overrides`` (not None) taking precedence."""
        env = os.environ if env is None else env
        values = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = cast(f.name, raw, f"environment variable {ENV_PREFIX + f.name.upper()}")
        if env.get("LABELWRIGHT_DB"):  # the CLI's --db has always read this name
            values["db_url"] = normalise_db_url(env["LABELWRIGHT_DB"])
        for name, value in overrides.items():
            if value is None:
                continue
            if name not in _FIELD_TYPES:
                raise SettingError(f"unknown setting {name!r}")
            values[name] = cast(name, value, "option") if isinstance(value, str) else value
        if "db_url" in values:
            values["db_url"] = normalise_db_url(str(values["db_url"]))
        return cls(**values)

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    @property
    def public_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")


_FIELD_TYPES = {f.name: str(f.type) for f in fields(Settings)}


def cast(name: str, raw: str, source: str = "value"):
    """``raw`` (text) as the type of setting ``name``; :class:`SettingError` names ``source`` if it is not."""
    kind = _FIELD_TYPES.get(name)
    if kind is None:
        raise SettingError(f"unknown setting {name!r}; known: {', '.join(sorted(_FIELD_TYPES))}")
    text = raw.strip()
    if kind == "bool":
        if text.lower() in _ON:
            return True
        if text.lower() in _OFF:
            return False
        raise SettingError(f"{source}: {name} must be true or false (1/0, yes/no, on/off), not {raw!r}")
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise SettingError(f"{source}: {name} must be a whole number, not {raw!r}") from None
    if kind.startswith("Path"):
        return Path(text).expanduser().resolve() if text else None
    return text


def parse_assignments(pairs) -> dict:
    """``["name=value", ...]`` (the CLI's ``--set``) as ``{name: typed value}``."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip().replace("-", "_").lower()
        if not sep:
            raise SettingError(f"--set {pair!r}: write NAME=VALUE")
        out[name] = cast(name, value, f"--set {name}")
    return out


def to_env(settings: Settings) -> dict[str, str]:
    """The environment that makes :meth:`Settings.from_env` rebuild ``settings`` (for worker processes)."""
    out = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        if value is None:
            continue
        out[ENV_PREFIX + f.name.upper()] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    out.pop(ENV_PREFIX + "DB_URL", None)
    out[ENV_PREFIX + "DB"] = settings.db_url
    return out
