"""Settings: one immutable object built by the CLI (or a test) and passed to every factory."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_DB = "labelwright.db"
_OFF = ("0", "false", "no", "off")


def normalise_db_url(db: str) -> str:
    """Accept a SQLite path or a SQLAlchemy/PostgreSQL URL and return a SQLAlchemy URL."""
    if db.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + db.split("://", 1)[1]
    if db.startswith(("postgresql+psycopg://", "sqlite://")):
        return db
    if "://" in db:
        raise ValueError(f"unsupported database URL {db!r}: use a SQLite file path or postgresql://...")
    return "sqlite:///" + str(Path(db).expanduser().resolve())


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

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        env = os.environ
        values = {}
        if env.get("LABELWRIGHT_DB"):
            values["db_url"] = normalise_db_url(env["LABELWRIGHT_DB"])
        if env.get("LABELWRIGHT_MEDIA_ROOT"):
            values["media_root"] = Path(env["LABELWRIGHT_MEDIA_ROOT"])
        if env.get("LABELWRIGHT_WEBHOOK_WORKER"):
            values["webhook_worker"] = env["LABELWRIGHT_WEBHOOK_WORKER"].strip().lower() not in _OFF
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "db_url" in overrides and overrides["db_url"] is not None:
            values["db_url"] = normalise_db_url(overrides["db_url"])
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
