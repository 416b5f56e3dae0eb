"""Errors shared by every layer. Handlers turn them into HTTP responses, the CLI into messages."""

from __future__ import annotations

import secrets

INTERNAL_ERROR = "internal error: the server's log has the details"


def log_unexpected(log, exc: BaseException, method: str, path: str) -> str:
    """Log an unexpected error (a bug) with its traceback under a short reference, which the answer shows
    (and nothing of the traceback): the person can quote it."""
    ref = secrets.token_hex(4)
    log.error("unexpected error %s on %s %s", ref, method, path, exc_info=exc)
    return ref


class LabelwrightError(Exception):
    status = 400

    def __init__(self, message: str, *, field: str | None = None, file: str | None = None,
                 line: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.file = file
        self.line = line

    def where(self) -> str:
        parts = []
        if self.file:
            parts.append(str(self.file))
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.field:
            parts.append(f"field {self.field!r}")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        return f"{where}: {self.message}" if where else self.message

    def to_dict(self) -> dict:
        out: dict[str, str | int] = {"error": self.message}
        if self.field is not None:
            out["field"] = self.field
        if self.file is not None:
            out["file"] = str(self.file)
        if self.line is not None:
            out["line"] = self.line
        return out


class ValidationError(LabelwrightError):
    """Input that does not fit a schema: a project schema, an item or an answer."""

    status = 422


class NotFound(LabelwrightError):
    status = 404


class Conflict(LabelwrightError):
    status = 409


class Forbidden(LabelwrightError):
    status = 403


class Unauthorized(LabelwrightError):
    status = 401


class Busy(LabelwrightError):
    """The server could not finish in time (a claim lost too many races, a statement timed out): try again."""

    status = 503


class TooManyAttempts(LabelwrightError):
    """Too many failed attempts lately: refused without looking, until ``retry_after`` seconds have passed."""

    status = 429

    def __init__(self, message: str, *, retry_after: int, field: str | None = None):
        super().__init__(message, field=field)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
