"""Settings: one typed, immutable object, built once (by the CLI, a server process or a test) and passed in.

Every field can come from four sources; the first that gives it wins:

1. the command line: a named option (``--db``, ``--base-url``, ``serve --host/--port/--media-root/
   --secure-cookies``) or ``--set NAME=VALUE`` (on ``labelwright`` or ``labelwright serve``);
2. the environment: ``LABELWRIGHT_<NAME>`` (``LABELWRIGHT_SECURE_COOKIES=1``; ``LABELWRIGHT_DB`` is the
   database too, an older name of ``LABELWRIGHT_DB_URL``); an empty variable counts as unset;
3. a TOML config file of ``name = value`` lines: ``labelwright --config PATH`` or ``LABELWRIGHT_CONFIG``
   (a key that is not a setting is an error naming the file and the key);
4. the default below.

:meth:`Settings.load` reads them (``env=`` replaces ``os.environ``, for tests); ``Settings(name=value, ...)``
is exactly the keywords given and the defaults, nothing read from anywhere. A value that does not fit is a
:class:`SettingError` naming the setting, where the value came from and what is allowed.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from labelwright.errors import LabelwrightError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_DB = "labelwright.db"
ENV_PREFIX = "LABELWRIGHT_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"  # the config file, when --config is not given
LEGACY_DB_ENV = ENV_PREFIX + "DB"  # the database's older variable name, still read (and preferred)
OPTION_NAMES = {"db_url": "--db"}  # a setting's named CLI option when it is not --<name-with-dashes>
DEFAULT = "default"  # the origin of a value nobody gave
PATH_SETTINGS = ("db_url", "media_root", "media_cache_dir")  # relative to a config file's folder there


def normalise_db_url(db: str) -> str:
    """Accept a SQLite path or a SQLAlchemy/PostgreSQL URL and return a SQLAlchemy URL."""
    if db.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + db.split("://", 1)[1]
    if db.startswith(("postgresql+psycopg://", "sqlite://")):
        return db
    if "://" in db:
        raise ValueError(f"unsupported database URL {db!r}: use a SQLite file path or postgresql://...")
    return "sqlite:///" + str(Path(db).expanduser().resolve())


class SettingError(LabelwrightError):
    """A setting's value cannot be used; the message names the setting, its source and what is allowed."""


WHOLE = "a whole number"


class Settings(BaseSettings):
    """Every setting of a labelwright installation (docs/operations.md, "Settings", lists them)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid", validate_default=True)

    db_url: str = Field(DEFAULT_DB, description=(
        "The database: a SQLite file path (relative to the current folder, or to the config file's folder "
        "in a config file) or a postgresql://user@host:port/dbname URL. Environment: LABELWRIGHT_DB "
        "(or LABELWRIGHT_DB_URL); command line: --db."))
    host: str = Field("127.0.0.1", description="The address `serve` listens on (0.0.0.0: every interface).")
    port: int = Field(8000, ge=1, le=65535, description="The port `serve` listens on.")
    base_url: str = Field("", description=(
        "The server's public address, the start of every link labelwright prints or answers "
        "(https://label.example.org); empty: http://HOST:PORT."))
    media_root: Path | None = Field(None, description=(
        "Folder that image fields given as relative file paths are served from; unset: no local images."))
    media_s3_endpoint: str = Field("", description=(
        "Where s3://bucket/key image references are read: {endpoint}/{bucket}/{key} (a public bucket or MinIO, "
        "e.g. https://s3.eu-west-1.amazonaws.com); empty: s3:// references are not resolved."))
    media_cache_dir: Path | None = Field(None, description=(
        "Folder where image thumbnails are cached (never the database); unset: "
        "$XDG_CACHE_HOME/labelwright/thumbnails (~/.cache/labelwright/thumbnails)."))
    media_allow_private: bool = Field(False, description=(
        "Let the server fetch remote images (for thumbnails) from private, loopback and link-local addresses."))
    media_max_bytes: int = Field(20 << 20, ge=1, description=(
        "Largest remote image, in bytes, the server fetches to make a thumbnail."))
    media_max_pixels: int = Field(50_000_000, ge=1, description=(
        "Largest image, in pixels (width times height), the server decodes to make a thumbnail."))
    media_fetch_seconds: int = Field(10, ge=1, description=(
        "Seconds the server waits for a remote image it fetches to make a thumbnail."))
    secure_cookies: bool = Field(False, description="Mark session cookies Secure (set it when serving over HTTPS).")
    session_days: int = Field(14, ge=1, description="How many days a browser session lasts.")
    signin_link_hours: int = Field(72, ge=1, description="How many hours a one-time sign-in link works.")
    sqlite_synchronous: Literal["FULL", "NORMAL", "OFF", "EXTRA"] = Field("FULL", description=(
        "SQLite durability: FULL fsyncs every commit; NORMAL survives a crash of the process but not of the "
        "machine; OFF and EXTRA as in SQLite's PRAGMA synchronous."))
    pool_size: int = Field(20, ge=1, description="Most database connections one server process opens.")
    pg_batches: int = Field(2, ge=1, le=16, description=(
        "PostgreSQL: how many batches of claims and submissions one server process runs at once (each in its "
        "own transaction on its own connection)."))
    webhook_worker: bool = Field(True, description=(
        "Run the webhook delivery worker in each server process (off: events still queue, for a worker "
        "elsewhere: `labelwright webhooks worker`)."))
    assist_worker: bool = Field(True, description=(
        "Run the project assistant's worker (features, training, predictions, auto-labelling) in each server "
        "process."))
    machine_worker: bool = Field(True, description=(
        "Run the worker that lets LLM machine annotators answer the queue in each server process."))
    assist_interval_seconds: int = Field(10, ge=1, description="Seconds between the assist worker's passes.")
    assist_python_models: str = Field("", description=(
        "Packages (comma-separated) whose modules a project's assist.model may name as "
        "python:package.module:attr; empty: no python: models."))
    max_body_bytes: int = Field(1 << 20, ge=1, description=(
        "Largest request body, in bytes, on every route but item imports (larger: 413 before it is read)."))
    max_import_bytes: int = Field(64 << 20, ge=1, description=(
        "Largest body, in bytes, of an item import through the API."))
    login_failures_per_account: int = Field(10, ge=0, description=(
        "Failed sign-ins per account within login_window_seconds before more are answered 429 (0: no limit)."))
    login_failures_per_address: int = Field(50, ge=0, description=(
        "Failed sign-ins per client address within login_window_seconds before more are answered 429 (0: no limit)."))
    login_window_seconds: int = Field(900, ge=1, description="The window, in seconds, of the sign-in limits.")
    webhook_allow_private: bool = Field(False, description=(
        "Allow webhooks to private, loopback and link-local addresses."))
    statement_timeout_ms: int = Field(30_000, ge=0, description=(
        "PostgreSQL: the longest one statement may run, in milliseconds (0: no limit)."))
    export_process_items: int = Field(200_000, ge=0, description=(
        "A jsonl, csv or parquet export from the server (the API, the browser) of a project with at least this "
        "many items is made by `labelwright export -o -` in a child process, which makes its chunks on several "
        "cores and keeps the server's memory flat; smaller projects are exported in the server process, which "
        "saves the child's start (about 2 s). 0: always a child process."))

    def __init__(self, _origins: Mapping[str, str] | None = None, **values: Any) -> None:
        """``Settings(port=8001)``: those values and the defaults. ``_origins`` (what :meth:`load` passes)
        says where each value came from, for the error message."""
        try:
            super().__init__(**values)
        except ValidationError as e:
            raise _error(e, _origins or {}, values) from None

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # constructing reads nothing: load() gathers the environment and the file, so both are injectable
        return (init_settings,)

    # ---- validators ----------------------------------------------------------------------------

    @field_validator("db_url")
    @classmethod
    def _db_url(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("empty")
        return normalise_db_url(value.strip())

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = value.strip()
        if value and not re.match(r"https?://[^/\s]+", value):
            raise ValueError("not an http(s) address")
        return value

    @field_validator("media_s3_endpoint")
    @classmethod
    def _s3_endpoint(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not re.match(r"https?://[^/\s]+", value):
            raise ValueError("not an http(s) address")
        return value

    @field_validator("media_root", "media_cache_dir", mode="before")
    @classmethod
    def _media_root(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip() or None
        return value if value is None else Path(value).expanduser().resolve()

    @field_validator("*", mode="before")
    @classmethod
    def _not_a_bool(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name and cls.model_fields[info.field_name].annotation is int:
            raise ValueError("a boolean")  # a TOML `port = true` is not port 1
            raise ValueError("a boolean")
        return value

    @field_validator("sqlite_synchronous", mode="before")
    @classmethod
    def _synchronous(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    # ---- sources -------------------------------------------------------------------------------

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, config_file: str | Path | None = None, *,
             sets: Iterable[str] = (), **options: Any) -> Settings:
        """The settings from every source (the module's docstring has the order). ``env`` replaces
        ``os.environ``; ``config_file`` replaces ``LABELWRIGHT_CONFIG``; ``sets`` are ``--set`` assignments
        (``"NAME=VALUE"``) and ``options`` the named CLI options by setting name (None: not given)."""
        return cls.load_traced(env, config_file, sets=sets, **options)[0]

    @classmethod
    def load_traced(cls, env: Mapping[str, str] | None = None, config_file: str | Path | None = None, *,
                    sets: Iterable[str] = (), **options: Any) -> tuple[Settings, dict[str, str]]:
        """:meth:`load`, and where each setting came from (``"default"``, ``"environment variable X"``,
        ``"config file F, line N"``, ``"--port"``, ``"--set port"``)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        origins: dict[str, str] = {}
        layers = [read_config_file(config_file, "--config") if config_file is not None
                  else read_config_file(env[CONFIG_ENV], CONFIG_ENV) if env.get(CONFIG_ENV) else {},
                  read_environment(env), read_assignments(sets)]
        layers.append({name: (value, OPTION_NAMES.get(name, "--" + name.replace("_", "-")))
                       for name, value in options.items() if value is not None})
        for layer in layers:  # lowest precedence first
            for name, (value, origin) in layer.items():
                if name not in cls.model_fields:
                    raise SettingError(f"{origin}: unknown setting {name!r}; known: {', '.join(cls.model_fields)}")
                values[name], origins[name] = value, origin
        settings = cls(_origins=origins, **values)
        return settings, {name: origins.get(name, DEFAULT) for name in cls.model_fields}

    def with_(self, **changes: Any) -> Settings:
        """A copy with ``changes`` (validated like any other value)."""
        return type(self)(**{**self.model_dump(), **changes})

    # ---- derived -------------------------------------------------------------------------------

    @property
    def python_models(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.assist_python_models.split(",") if p.strip())

    @property
    def public_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def thumbnail_dir(self) -> Path:
        """Where thumbnails are cached: ``media_cache_dir``, else the user's cache folder (read when asked)."""
        if self.media_cache_dir is not None:
            return self.media_cache_dir
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(cache) / "labelwright" / "thumbnails"

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")


Layer = dict[str, tuple[Any, str]]  # setting name -> (value, where it came from)


def read_environment(env: Mapping[str, str]) -> Layer:
    """The ``LABELWRIGHT_<NAME>`` variables of ``env`` that name a setting (empty ones are unset)."""
    out: Layer = {}
    for name in Settings.model_fields:
        var = ENV_PREFIX + name.upper()
        if env.get(var, "") != "":
            out[name] = (env[var], f"environment variable {var}")
    if env.get(LEGACY_DB_ENV, "") != "":
        out["db_url"] = (env[LEGACY_DB_ENV], f"environment variable {LEGACY_DB_ENV}")
    return out


def read_config_file(path: str | Path, given_by: str) -> Layer:
    """The settings in the TOML file ``path`` (named by ``given_by``: ``--config`` or the variable).

    Relative paths in it (a SQLite ``db_url``, ``media_root``) are relative to the file's folder."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingError(f"no config file {str(file)!r} (from {given_by}): check the path") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SettingError(f"cannot read the config file {str(file)!r} (from {given_by}): {e}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SettingError(f"config file {file}: not valid TOML: {e}") from None
    out: Layer = {}
    for key, value in data.items():
        line = next((n for n, row in enumerate(text.splitlines(), 1)
                     if re.match(rf"""\s*\[?\s*["']?{re.escape(key)}["']?\s*[=\]]""", row)), None)
        where = f"config file {file}" + (f", line {line}" if line else "")
        if isinstance(value, dict):
            raise SettingError(f"{where}: [{key}] is a table; settings are plain `name = value` lines at the top")
        if key not in Settings.model_fields:
            raise SettingError(f"{where}: unknown setting {key!r}; known: {', '.join(Settings.model_fields)}")
        if key in PATH_SETTINGS and isinstance(value, str) and value and "://" not in value:
            value = str(file.parent / Path(value).expanduser())
        out[key] = (value, where)
    return out


def read_assignments(pairs: Iterable[str]) -> Layer:
    """``["name=value", ...]`` (the CLI's ``--set``); a name may use dashes (``max-body-bytes``)."""
    out: Layer = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip().replace("-", "_").lower()
        if not sep or not name:
            raise SettingError(f"--set {pair!r}: write NAME=VALUE, e.g. --set max_body_bytes=2097152")
        out[name] = (value, f"--set {name}")
    return out


def allowed(name: str) -> str:
    """What setting ``name`` accepts, in words (for error messages and the docs)."""
    field = Settings.model_fields[name]
    kind = field.annotation
    if kind is bool:
        return "true or false (1/0, yes/no, on/off)"
    if kind is int:
        low = next((m.ge for m in field.metadata if hasattr(m, "ge")), None)
        high = next((m.le for m in field.metadata if hasattr(m, "le")), None)
        if low is not None and high is not None:
            return f"{WHOLE} from {low} to {high}"
        return f"{WHOLE} of at least {low}" if low is not None else WHOLE
    if name == "sqlite_synchronous":
        return "one of FULL, NORMAL, OFF, EXTRA"
    if name == "db_url":
        return "a SQLite file path or a postgresql://user@host:port/dbname URL"
    if name == "base_url":
        return "empty or an http:// or https:// address"
    if name in ("media_root", "media_cache_dir"):
        return "a folder path (empty: none)"
    if name == "media_s3_endpoint":
        return "empty or an http:// or https:// address"
    return "text"


def _error(e: ValidationError, origins: Mapping[str, str], values: Mapping[str, Any]) -> SettingError:
    err = e.errors()[0]
    name = str(err["loc"][0]) if err.get("loc") else "?"
    origin = f"{origins[name]}: " if name in origins else ""
    if err["type"] == "extra_forbidden":
        return SettingError(f"{origin}unknown setting {name!r}; known: {', '.join(Settings.model_fields)}")
    given = values.get(name, err.get("input"))
    return SettingError(f"{origin}{name} must be {allowed(name)}, not {given!r}")


def to_env(settings: Settings) -> dict[str, str]:
    """The environment that makes :meth:`Settings.load` rebuild ``settings``."""
    out: dict[str, str] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        out[ENV_PREFIX + name.upper()] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    out.pop(ENV_PREFIX + "DB_URL", None)
    out[LEGACY_DB_ENV] = settings.db_url
    return out
