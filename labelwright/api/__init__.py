"""REST API under ``/api/v1``: thin handlers that check access (:mod:`labelwright.services.policy`) and call
the services. One module per noun; this one only assembles their routers.

Authentication and the CSRF header: :mod:`labelwright.api.deps`. Request bodies: :mod:`labelwright.api.models`.
"""

from __future__ import annotations

from fastapi import APIRouter

from labelwright.api import (
    account,
    annotate,
    assist,
    items,
    machines,
    members,
    pay,
    projects,
    review,
    rules,
    run,
    users,
    webhooks,
)


def build_router() -> APIRouter:
    r = APIRouter(prefix="/api/v1")
    for noun in (account, users, projects, members, items, annotate, run, review, pay, machines, assist, webhooks,
                 rules):
        r.include_router(noun.build_router())
    return r
