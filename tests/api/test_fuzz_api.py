"""schemathesis over the API's OpenAPI document: no request, however malformed, gets a 5xx.

Every operation of ``/api/v1/openapi.json`` is sent requests generated from its schema, in-process over
ASGI, by an owner and by an annotator (two runs), against a seeded project so that path parameters are
often real ids and names (a random slug only ever reaches the 404 branch). The check is schemathesis'
``not_a_server_error``; every operation runs, and the failures of all of them are reported together.

Bounded for CI (``FUZZ_EXAMPLES`` examples per operation, derandomized, fewer on PostgreSQL). Set
``LABELWRIGHT_FUZZ_EXAMPLES`` to run longer, e.g. ``LABELWRIGHT_FUZZ_EXAMPLES=200 pytest tests/api/test_fuzz_api.py``.
"""

from __future__ import annotations

import os

import hypothesis.strategies as st
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.modes import GenerationMode

from labelwright.app import create_app
from labelwright.services import gold as gold_svc
from labelwright.services import invites, queue, users, webhooks
from labelwright.services.items import add_items
from labelwright.services.projects import create_project
from labelwright.settings import Settings
from tests.conftest import SPAM_SCHEMA, join

FUZZ_EXAMPLES = int(os.environ.get("LABELWRIGHT_FUZZ_EXAMPLES", "0"))
# Operations that may cut the run's own credentials off run last, in this order, so the others run authenticated.
_LAST = ("/api/v1/me/password", "/api/v1/users/{name}", "/api/v1/tokens/{token_id}")


def _examples(dialect: str) -> int:
    if FUZZ_EXAMPLES:
        return FUZZ_EXAMPLES if dialect == "sqlite" else max(1, FUZZ_EXAMPLES // 4)
    return 6 if dialect == "sqlite" else 2


def _seed(store) -> dict:
    """An owner, an annotator, a project with items, answers, gold, an invite and a webhook: real ids."""
    own = users.create_user(store, "olive", "owner", "owner-password")
    ann = users.create_user(store, "ann", "annotator", "ann-password")
    project = create_project(store, SPAM_SCHEMA, created_by=own.id)
    add_items(store, project, [{"id": f"c{i}", "text": f"comment {i}"} for i in range(12)])
    join(store, "ann")
    first = queue.claim_next(store, project, ann)
    assert first is not None
    annotation, _ = queue.submit(store, first["id"], ann, {"spam": "spam"})
    second = queue.claim_next(store, project, ann)  # a live lease: submit, skip and release have work
    assert second is not None
    gold_svc.set_gold(store, project, second["id"] + 1, {"spam": "ham"}, user=own)
    _, invite = invites.create_invite(store, own, project=project)
    _, hook = webhooks.create_webhook(store, "http://127.0.0.1:9/hook", project, ["annotation.submitted"],
                                      by=own, allow_private=True)
    return {"owner": (own, users.create_api_token(store, own)), "annotator": (ann, users.create_api_token(store, ann)),
            "ids": {"project": project.slug, "name": "ann", "item_id": second["id"],
                    "annotation_id": annotation["id"], "invite_id": invite["id"], "webhook_id": hook["id"],
                    "delivery_id": 1, "question_id": 1, "check_id": 1}}


@pytest.mark.parametrize("role", ["owner", "annotator"])
def test_no_server_error_anywhere(store, db_url, role):
    seeded = _seed(store)
    app = create_app(Settings(db_url=db_url, assist_worker=False, machine_worker=False, webhook_worker=False),
                     store=store)
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    user, token = seeded[role]
    if role == "owner":
        seeded["ids"]["token_id"] = 1
    headers = {"Authorization": f"Bearer {token}"}
    real = seeded["ids"]
    order = {path: k for k, path in enumerate(_LAST, start=1)}
    operations = sorted((r.ok() for r in schema.get_all_operations()), key=lambda op: order.get(op.path, 0))
    assert len(operations) > 50
    failures = []

    for operation in operations:
        named = [p.name for p in operation.path_parameters]
        ours = {k: real[k] for k in named if k in real}
        # Valid and invalid requests (schemathesis' positive and negative modes), each with generated path
        # parameters and with the seeded ones (a random slug or id only ever reaches the 404 branch).
        strategies = []
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategies.append(operation.as_strategy(mode))
            if ours:
                strategies.append(operation.as_strategy(mode, path_parameters=ours))

        @given(case=st.one_of(strategies))
        @hsettings(max_examples=_examples(store.dialect), derandomize=not FUZZ_EXAMPLES, database=None,
                   deadline=None, phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def run(case):
            response = case.call(headers=headers)
            case.validate_response(response, checks=[not_a_server_error])

        try:
            run()
        except (FailureGroup, AssertionError) as e:
            failures.append(f"{operation.method.upper()} {operation.path}: {str(e)[:1500]}")
    assert not failures, "\n\n".join(failures)
