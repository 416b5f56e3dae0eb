"""Users, roles, passwords, API tokens, sign-in links and browser sessions.

Secrets are random 32-byte strings shown once; only their SHA-256 is stored, so a database leak
does not leak a usable token. Passwords are hashed with argon2id, which is slow on purpose (tenths of a
second of CPU and 64 MiB): nothing here hashes while a transaction is open, and callers on the event loop
run the functions that hash (:func:`create_user`, :func:`set_password`, :func:`check_password`,
:func:`replace_password`, :func:`reset_password`) in a worker thread. Password checks that an outsider can
drive go through :mod:`labelwright.services.signin`, which limits them.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import insert, select, update

from labelwright.errors import Conflict, NotFound, Unauthorized, ValidationError
from labelwright.services import audit
from labelwright.services.access import ORG_ROLES, PROJECT_ROLES, RANK
from labelwright.store import Store, lookups
from labelwright.store import tables as t
from labelwright.store.lookups import TokenRow

NAME_RE = re.compile(r"^[A-Za-z0-9_.@\-]{1,64}$")
_hasher = PasswordHasher()


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _user(row) -> User:
    return User(id=row.id, name=row.name, role=row.role)


def create_user(store: Store, name: str, role: str = "annotator", password: str | None = None) -> User:
    if not NAME_RE.match(name or ""):
        raise ValidationError("a user name is 1-64 letters, digits, '_', '.', '@' or '-'", field="name")
    if role not in ORG_ROLES:
        raise ValidationError(f"role must be one of {list(ORG_ROLES)}", field="role")
    password_hash = hash_password(password) if password is not None else None  # before the transaction
    with store.write() as conn:
        if conn.execute(select(t.users.c.id).where(t.users.c.name == name)).first():
            raise Conflict(f"user {name!r} already exists", field="name")
        uid = conn.execute(insert(t.users).values(
            name=name, role=role, disabled=0, created_at=time.time(), password_hash=password_hash,
        ).returning(t.users.c.id)).scalar_one()
    return User(uid, name, role)


def validate_password(password: str) -> None:
    if len(password) < 8:
        raise ValidationError("a password needs at least 8 characters", field="password")


def hash_password(password: str) -> str:
    """The argon2id hash of a new password (checked first). Slow: never inside a transaction."""
    validate_password(password)
    return _hasher.hash(password)


def get_user(store: Store, name: str) -> User:
    with store.read() as conn:
        row = conn.execute(select(t.users).where(t.users.c.name == name)).first()
    if row is None:
        raise NotFound(f"no user named {name!r}")
    return _user(row)


def list_users(store: Store) -> list[dict]:
    with store.read() as conn:
        rows = conn.execute(select(t.users).order_by(t.users.c.id)).all()
    return [{"id": r.id, "name": r.name, "role": r.role, "disabled": bool(r.disabled),
             "has_password": r.password_hash is not None} for r in rows]


def set_password(store: Store, user: User, password: str) -> None:
    """Set ``user``'s password and nothing else (for the owner's tools and tests; a user's own change or
    reset goes through :func:`replace_password`, which also ends sessions and revokes tokens)."""
    password_hash = hash_password(password)
    with store.write() as conn:
        conn.execute(update(t.users).where(t.users.c.id == user.id).values(password_hash=password_hash))


def has_password(store: Store, user: User) -> bool:
    with store.read() as conn:
        return conn.execute(select(t.users.c.password_hash).where(t.users.c.id == user.id)).scalar() is not None


def check_password(store: Store, name: str, password: str) -> User:
    """The user, when ``password`` is theirs; :class:`Unauthorized` otherwise. Unlimited: what an outsider
    can drive goes through :func:`labelwright.services.signin.sign_in`."""
    with store.read() as conn:
        row = conn.execute(select(t.users).where(t.users.c.name == name)).first()
    if row is None or row.password_hash is None or row.disabled:
        _hasher.hash("timing-equaliser")  # do the same work whether or not the user exists
        raise Unauthorized("wrong user name or password")
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise Unauthorized("wrong user name or password") from None
    return _user(row)


def _issue(store: Store, user: User, kind: str, *, ttl: float | None = None, label: str | None = None,
           csrf: str | None = None) -> str:
    secret = secrets.token_urlsafe(32)
    now = time.time()
    with store.write() as conn:
        conn.execute(insert(t.tokens).values(
            user_id=user.id, token_hash=_hash(secret), kind=kind, label=label, csrf=csrf,
            created_at=now, expires_at=now + ttl if ttl else None))
    return secret


def create_api_token(store: Store, user: User, label: str | None = None) -> str:
    return _issue(store, user, "api", label=label)


def create_signin_link_token(store: Store, user: User, hours: int = 72) -> str:
    return _issue(store, user, "signin", ttl=hours * 3600)


def _lookup(conn, secret: str, kind: str):
    if not secret:
        return None
    return conn.execute(
        select(t.tokens.c.id, t.tokens.c.expires_at, t.tokens.c.revoked_at, t.tokens.c.csrf,
               t.users.c.id.label("uid"), t.users.c.name, t.users.c.role, t.users.c.disabled)
        .join(t.users, t.users.c.id == t.tokens.c.user_id)
        .where(t.tokens.c.token_hash == _hash(secret), t.tokens.c.kind == kind)
    ).first()


def _valid(row) -> bool:
    return (row is not None and row.revoked_at is None and not row.disabled
            and (row.expires_at is None or row.expires_at > time.time()))


def user_for_api_token(store: Store, secret: str) -> User:
    # Every API request does this: one plain statement outside a transaction, never cached, so a
    # revoked token or a disabled user is refused from the very next request.
    raw = store.lookup(lookups.API_TOKEN, {"h": _hash(secret)}) if secret else None
    row = None if raw is None else TokenRow._make(raw)
    if (row is None or row.revoked_at is not None or row.disabled
            or (row.expires_at is not None and row.expires_at <= time.time())):
        raise Unauthorized("invalid or revoked API token")
    return User(row.user_id, row.name, row.role)


def redeem_signin_link(store: Store, secret: str, session_days: int) -> tuple[str, Session]:
    """Spend a one-time sign-in link; return a new session's cookie value and the session."""
    with store.write() as conn:
        row = _lookup(conn, secret, "signin")
        if not _valid(row):
            raise Unauthorized("this sign-in link is invalid, used or expired: ask the owner for a new one")
        conn.execute(update(t.tokens).where(t.tokens.c.id == row.id).values(revoked_at=time.time()))
    user = User(row.uid, row.name, row.role)
    return start_session(store, user, session_days)


def start_session(store: Store, user: User, session_days: int) -> tuple[str, Session]:
    csrf = secrets.token_urlsafe(24)
    secret = _issue(store, user, "session", ttl=session_days * 86400, csrf=csrf)
    return secret, Session(user, csrf)


def session_for_cookie(store: Store, secret: str) -> Session | None:
    with store.read() as conn:
        row = _lookup(conn, secret, "session")
    if not _valid(row):
        return None
    return Session(User(row.uid, row.name, row.role), row.csrf)


def end_session(store: Store, secret: str) -> None:
    with store.write() as conn:
        conn.execute(update(t.tokens).where(t.tokens.c.token_hash == _hash(secret),
                                            t.tokens.c.kind == "session")
                     .values(revoked_at=time.time()))


# ---- account management --------------------------------------------------------------------------


def update_user(store: Store, name: str, *, role: str | None = None, disabled: bool | None = None, by=None) -> dict:
    """Change a user's organisation role or disable / enable them (recorded in the audit log).

    Lowering a role also lowers their project roles to match; disabling revokes nothing but refuses their
    sign-in, sessions and tokens from the next request. The last enabled owner cannot be demoted or disabled."""
    if role is not None and role not in ORG_ROLES:
        raise ValidationError(f"role must be one of {list(ORG_ROLES)}", field="role")
    with store.write() as conn:
        row = conn.execute(select(t.users).where(t.users.c.name == name)).first()
        if row is None:
            raise NotFound(f"no user named {name!r}")
        losing_owner = row.role == "owner" and ((role is not None and role != "owner") or disabled)
        if losing_owner:
            owners = conn.execute(select(t.users.c.id).where(t.users.c.role == "owner", t.users.c.disabled == 0)).all()
            if len(owners) <= 1:
                raise Conflict("this is the only owner; make someone else an owner first", field="role")
        values: dict[str, str | int] = {}
        if role is not None:
            values["role"] = role
        if disabled is not None:
            values["disabled"] = int(disabled)
        if values:
            conn.execute(update(t.users).where(t.users.c.id == row.id).values(**values))
            audit.record(conn, by, "user.update", None, name, {k: v for k, v in (("role", role), ("disabled", disabled))
                                                                if v is not None})
        if role is not None and role != "owner":
            for project_role in PROJECT_ROLES:
                if RANK[project_role] > RANK[role]:
                    conn.execute(update(t.memberships).where(t.memberships.c.user_id == row.id,
                                                             t.memberships.c.role == project_role)
                                 .values(role=role))
    return {"name": name, "role": role or row.role,
            "disabled": bool(disabled if disabled is not None else row.disabled)}


def list_tokens(store: Store, user: User) -> list[dict]:
    """The user's API tokens (never their secrets): id, label, created, expiry, revoked."""
    with store.read() as conn:
        rows = conn.execute(select(t.tokens).where(t.tokens.c.user_id == user.id, t.tokens.c.kind == "api")
                            .order_by(t.tokens.c.id)).all()
    return [{"id": r.id, "label": r.label, "created_at": r.created_at, "expires_at": r.expires_at,
             "revoked_at": r.revoked_at, "active": r.revoked_at is None} for r in rows]


def revoke_token(store: Store, token_id: int, by: User) -> None:
    """Revoke an API token: the caller's own, or anyone's for an owner. Refused from the next request."""
    with store.write() as conn:
        row = conn.execute(select(t.tokens.c.user_id, t.tokens.c.revoked_at)
                           .where(t.tokens.c.id == token_id, t.tokens.c.kind == "api")).first()
        if row is None or (row.user_id != by.id and not by.is_owner):
            raise NotFound(f"no API token {token_id} of yours")
        if row.revoked_at is None:
            conn.execute(update(t.tokens).where(t.tokens.c.id == token_id).values(revoked_at=time.time()))
            audit.record(conn, by, "token.revoke", None, str(token_id))


def replace_password(store: Store, user: User, password: str, *, keep_session: str | None = None,
                     keep_tokens: bool = False) -> None:
    """A new password the user chose (a change, or a first password after a sign-in link): every session
    but ``keep_session`` (a cookie secret) ends, and every API token is revoked unless ``keep_tokens``,
    in one transaction with the new hash. See :func:`labelwright.services.signin.change_password`."""
    password_hash = hash_password(password)
    with store.write() as conn:
        _store_password(conn, user, password_hash, "password.change", keep_session, keep_tokens)


def _store_password(conn, user: User, password_hash: str, action: str, keep_session: str | None,
                    keep_tokens: bool) -> None:
    conn.execute(update(t.users).where(t.users.c.id == user.id).values(password_hash=password_hash))
    _end_sessions(conn, user, keep_session)
    revoked = 0
    if not keep_tokens:
        revoked = conn.execute(update(t.tokens).where(t.tokens.c.user_id == user.id, t.tokens.c.kind == "api",
                                                      t.tokens.c.revoked_at.is_(None))
                               .values(revoked_at=time.time())).rowcount
    audit.record(conn, user, action, None, user.name, {"tokens_revoked": revoked})


def _end_sessions(conn, user: User, keep_secret: str | None) -> None:
    keep = _hash(keep_secret) if keep_secret else ""
    conn.execute(update(t.tokens).where(t.tokens.c.user_id == user.id, t.tokens.c.kind == "session",
                                        t.tokens.c.revoked_at.is_(None), t.tokens.c.token_hash != keep)
                 .values(revoked_at=time.time()))


def create_reset_link_token(store: Store, user: User, hours: int = 24) -> str:
    """A one-use password-reset link (the CLI prints it for the owner to pass on)."""
    return _issue(store, user, "reset", ttl=hours * 3600)


def reset_password(store: Store, secret: str, password: str, session_days: int, *,
                   keep_tokens: bool = False) -> tuple[str, Session]:
    """Spend a reset link: set the password, end every session, revoke every API token unless
    ``keep_tokens``, and start a new session."""
    stale = Unauthorized("this reset link is invalid, used or expired: ask the owner for a new one")
    if not reset_link_is_valid(store, secret):
        raise stale  # before hashing: a made-up link costs no argon2 work
    password_hash = hash_password(password)
    with store.write() as conn:
        row = _lookup(conn, secret, "reset")
        if not _valid(row):
            raise stale
        conn.execute(update(t.tokens).where(t.tokens.c.id == row.id).values(revoked_at=time.time()))
        user = User(row.uid, row.name, row.role)
        _store_password(conn, user, password_hash, "password.reset", None, keep_tokens)
    return start_session(store, user, session_days)


def reset_link_is_valid(store: Store, secret: str) -> bool:
    with store.read() as conn:
        return _valid(_lookup(conn, secret, "reset"))
