"""Who may do what: one function per action, each the whole rule for that action.

Every handler (an API route or a page) that needs more than a signed-in caller calls exactly one of these
before it does anything, with the project as the request named it (slug or id). Each returns what the
handler needs next (a :class:`Grant`: the project and the caller's role there; or the user) or raises:

* a project that does not exist is :class:`~labelwright.errors.NotFound`;
* a caller who is not an active member of it (not a member, or blocked) is
  :class:`~labelwright.errors.Forbidden` naming the project as they named it (see
  :mod:`labelwright.services.access` for why), and so is a member whose role is too low.

The roles and the membership rules themselves live in :mod:`labelwright.services.access`; this module says
which role each action needs. Things reached by their own id alone (an item, an annotation) are checked where
the service finds their project, with :func:`labelwright.services.access.require` (a refusal there is a 404:
nobody learns that the thing exists). docs/architecture.md, "Access", has the table.

Each action carries the least role it needs in ``needs`` (``member``, ``reviewer``, ``manager`` in the
project; ``org-manager`` or ``owner`` in the organisation): :func:`actions` lists them, and the tests check
every route calls one of the level its entry in the access matrix says.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, TypeVar

from labelwright.errors import Forbidden
from labelwright.services import access
from labelwright.services import webhooks as webhooks_svc
from labelwright.services.projects import Project
from labelwright.services.users import User
from labelwright.store import Store

F = TypeVar("F", bound=Callable)

# the matrix's names for the least role an action needs -> the role in access.RANK
_LEVELS = {"member": "annotator", "reviewer": "reviewer", "manager": "manager",
           "org-manager": "manager", "owner": "owner"}


class Grant(NamedTuple):
    """What a project action allows: the project, and the caller's role in it (``owner`` for owners)."""

    project: Project
    role: str

    def allows(self, action: Callable) -> bool:
        """Whether this role in this project also allows project ``action`` (for what an answer shows, e.g.
        the gold settings in a project's description: ``grant.allows(policy.see_gold)``)."""
        return role_allows(self.role, action)


def role_allows(role: str | None, action: Callable) -> bool:
    """Whether a caller with ``role`` in a project (``owner`` for owners; None: not an active member) may
    do project ``action`` there: for what a page shows (the project list's links) and for checks made where
    a thing reached by its own id finds its project (``role`` from :func:`labelwright.services.access.require`)."""
    return role is not None and access.RANK[role] >= access.RANK[_LEVELS[action.needs]]  # type: ignore[attr-defined]


def allows(action: Callable, *args) -> bool:
    """Whether ``action(*args)`` lets the caller through: for what a page or an answer shows, never instead
    of calling the action where the request needs it."""
    try:
        action(*args)
    except Forbidden:
        return False
    return True


def _needs(level: str) -> Callable[[F], F]:
    """Mark an action with the least role it needs (one of :data:`_LEVELS`)."""
    if level not in _LEVELS:
        raise ValueError(f"unknown level {level!r}")

    def mark(fn: F) -> F:
        fn.needs = level  # type: ignore[attr-defined]
        return fn
    return mark


def actions() -> dict[str, str]:
    """Every action of this module and the least role it needs: ``{"annotate": "member", ...}``."""
    return {name: fn.needs for name, fn in globals().items() if callable(fn) and hasattr(fn, "needs")}


def _in_project(store: Store, user: User, ref: int | str, level: str) -> Grant:
    project, role = access.project_for(store, ref, user, _LEVELS[level])
    return Grant(project, role)


def _in_org(user: User, level: str) -> User:
    access.require_org(user, _LEVELS[level])
    return user


# ---- in a project ----------------------------------------------------------------------------------


@_needs("member")
def view_project(store: Store, user: User, ref: int | str) -> Grant:
    """Read a project's description and schema (gold settings only for its managers: see ``Grant.role``)."""
    return _in_project(store, user, ref, "member")


@_needs("member")
def annotate(store: Store, user: User, ref: int | str) -> Grant:
    """Label in a project: claim items, answer them, see and amend one's own recent answers, take its
    qualification test."""
    return _in_project(store, user, ref, "member")


@_needs("reviewer")
def review(store: Store, user: User, ref: int | str) -> Grant:
    """Review others' answers (accept, fix, reject), answer questions about decisions, work the check queue;
    this sees other annotators' labels."""
    return _in_project(store, user, ref, "reviewer")


@_needs("reviewer")
def view_quality(store: Store, user: User, ref: int | str) -> Grant:
    """See a project's quality: agreement, each annotator's accuracy, the consensus and items in doubt."""
    return _in_project(store, user, ref, "reviewer")


@_needs("manager")
def manage_project(store: Store, user: User, ref: int | str) -> Grant:
    """Run a project: progress, settings, expiry, items, members, blocks and pauses, messages, more answers,
    pay, invites and webhooks for it, its audit log, its machine annotators and assistant."""
    return _in_project(store, user, ref, "manager")


@_needs("manager")
def see_gold(store: Store, user: User, ref: int | str) -> Grant:
    """See and set the project's gold items and their answers (never shown to annotators)."""
    return _in_project(store, user, ref, "manager")


@_needs("manager")
def export(store: Store, user: User, ref: int | str) -> Grant:
    """Export every answer in the project, with who gave it."""
    return _in_project(store, user, ref, "manager")


# ---- in the organisation ---------------------------------------------------------------------------


@_needs("org-manager")
def create_project(user: User) -> User:
    """Create a project (a manager becomes its manager)."""
    return _in_org(user, "org-manager")


@_needs("org-manager")
def invite(user: User) -> User:
    """Create and list invite links (the invite service bounds the roles a manager may hand out; an invite to
    a project needs :func:`manage_project` there too)."""
    return _in_org(user, "org-manager")


@_needs("owner")
def see_model_errors(user: User) -> User:
    """Read what a model endpoint (an LLM annotator's, the assistant's) answered on an error: its URL may point
    anywhere, so the text is for owners (and the server's log); others get a summary."""
    if not user.is_owner:
        raise Forbidden("only an owner sees what a model endpoint answered")
    return user


@_needs("owner")
def manage_users(user: User) -> User:
    """List, create, change and disable users, and see anyone's API tokens."""
    return _in_org(user, "owner")


@_needs("owner")
def read_audit(user: User) -> User:
    """Read the whole audit log (a project's managers read their project's with :func:`manage_project`)."""
    return _in_org(user, "owner")


@_needs("manager")
def manage_webhooks(store: Store, user: User) -> set[int] | None:
    """Webhooks in general: the ids of the projects whose webhooks the caller manages (None: every one, and
    the webhooks for every project: owners). A caller who manages no project is refused."""
    managed = webhooks_svc.managed_project_ids(store, user)
    if managed is not None and not managed:
        raise Forbidden("webhooks are managed by owners and project managers; you manage no project")
    return managed


@_needs("owner")
def manage_global_webhooks(user: User) -> User:
    """Add a webhook for every project (one that names no project)."""
    if not user.is_owner:
        raise Forbidden("only an owner can add a webhook for every project: name a project you manage")
    return user


@_needs("manager")
def manage_webhook(store: Store, user: User, webhook_id: int) -> dict:
    """One webhook (returned): owners manage all, a project's managers their project's. Anyone else learns
    neither its project nor whether it is one for every project."""
    hook = webhooks_svc.get_webhook(store, webhook_id)
    managed = webhooks_svc.managed_project_ids(store, user)
    if managed is not None and hook["project_id"] not in managed:
        raise Forbidden(f"only an owner or a manager of its project can manage webhook {webhook_id}")
    return hook
