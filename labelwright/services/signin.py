"""Sign-in attempts: every password check an outsider can drive, limited per account and per address.

The sign-in form (:func:`sign_in`) and the password changes of the API and the account page
(:func:`change_password`) check a password here. Each check first counts the failures of the last
``window_seconds`` for the account (the user name tried, whether or not it exists) and for the client
address: at ``per_account`` or ``per_address`` of them the check is refused with :class:`TooManyAttempts`
before the password is looked at, right or wrong. Otherwise the check records itself (name, user, address,
time) in ``signin_failures`` before it hashes, and a right password deletes the account's rows again: a
row is a failure, or a check still running, so parallel guesses count as soon as they start.

The counts live in the database, so every server process shares them. Counting and recording are one
write transaction (on SQLite, writes are serialised; on PostgreSQL it also takes a transaction-scoped
advisory lock), so parallel attempts cannot slip past a limit together. Rows older than the window are
deleted as new ones come. A limit of 0 turns that limit off.

argon2 is slow on purpose: callers on the event loop run these functions in a worker thread, and no
transaction is open while a password is hashed or verified.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, insert, literal_column, select

from labelwright.errors import TooManyAttempts, Unauthorized, ValidationError
from labelwright.services import users
from labelwright.services.users import User
from labelwright.store import Store, locks
from labelwright.store import tables as t
from labelwright.store.sql import window_wait


@dataclass(frozen=True)
class Limits:
    """At most ``per_account`` failures per account and ``per_address`` per client address within
    ``window_seconds`` (settings ``login_failures_per_account``, ``login_failures_per_address``,
    ``login_window_seconds``); 0 turns a limit off."""

    per_account: int = 10
    per_address: int = 50
    window_seconds: int = 900

    @classmethod
    def from_settings(cls, settings) -> Limits:
        return cls(settings.login_failures_per_account, settings.login_failures_per_address,
                   settings.login_window_seconds)


def sign_in(store: Store, name: str, password: str, address: str, limits: Limits, *, now: float | None = None) -> User:
    """The user whose name and password these are; :class:`TooManyAttempts` (nothing checked) over a
    limit, :class:`Unauthorized` for a wrong name or password (which counts)."""
    now = time.time() if now is None else now
    attempt = _begin(store, name, address, limits, now)
    try:
        user = users.check_password(store, name, password)
    except Unauthorized:
        raise  # the attempt's row stays: a failure
    except BaseException:
        _forget(store, "id", attempt)  # the check broke, the password was not wrong
        raise
    _forget(store, "account", name)
    return user


def change_password(store: Store, user: User, current: str | None, new: str, address: str, limits: Limits, *,
                    keep_session: str | None = None, keep_tokens: bool = False) -> None:
    """Set ``user``'s password to ``new`` once ``current`` is checked, within the limits (a wrong one counts
    against the account). ``current`` None is for a first password: only an account without one may skip
    it. Every session but ``keep_session`` ends; every API token is revoked unless ``keep_tokens``."""
    users.validate_password(new)  # before anything is counted
    if current is None:
        if users.has_password(store, user):
            raise ValidationError("enter your current password", field="current")
    else:
        try:
            sign_in(store, user.name, current, address, limits)
        except Unauthorized:
            raise Unauthorized("the current password is wrong", field="current") from None
    users.replace_password(store, user, new, keep_session=keep_session, keep_tokens=keep_tokens)


def _begin(store: Store, name: str, address: str, limits: Limits, now: float) -> int:
    since = now - limits.window_seconds
    f, u = t.signin_failures, t.users
    with store.write() as conn:
        if store.dialect == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(literal_column(locks.SIGNIN), 0)))
        conn.execute(delete(f).where(f.c.created_at <= since))
        wait = max(_wait(conn, "account", name, limits.per_account, limits.window_seconds, now),
                   _wait(conn, "address", address, limits.per_address, limits.window_seconds, now))
        if not wait:
            return conn.execute(insert(f).values(
                account=name, user_id=select(u.c.id).where(u.c.name == name).scalar_subquery(), address=address,
                created_at=now).returning(f.c.id)).scalar_one()
    minutes = max(1, math.ceil(wait / 60))
    raise TooManyAttempts(f"too many failed sign-ins for this account or from this address: try again in "
                          f"{minutes} minute{'s' if minutes > 1 else ''}", retry_after=wait)


def _wait(conn: Connection, column: str, value: str, limit: int, window: int, now: float) -> int:
    """Seconds until ``column = value`` is under ``limit`` failures again (0: it is now)."""
    if limit <= 0:
        return 0
    f = t.signin_failures
    return window_wait(conn, f, f.c[column] == value, limit, window, now)


def _forget(store: Store, column: str, value) -> None:
    f = t.signin_failures
    with store.write() as conn:
        conn.execute(delete(f).where(f.c[column] == value))
