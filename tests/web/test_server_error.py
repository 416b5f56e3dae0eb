"""An unexpected error (a bug) answers with a styled page or JSON carrying a log reference, never a traceback."""

from __future__ import annotations

import logging
import re

from fastapi.testclient import TestClient

from tests.conftest import post_login


def _boom():
    raise RuntimeError("secret-internal-detail")


def test_a_bug_on_a_page_answers_a_styled_500_with_a_reference(app, owner, caplog):
    app.add_api_route("/projects/boom/page", _boom, methods=["GET"])
    with TestClient(app, base_url="http://127.0.0.1:8000", raise_server_exceptions=False) as http:
        assert post_login(http, "olive", "owner-password", follow_redirects=False).status_code == 303
        with caplog.at_level(logging.ERROR, logger="labelwright"):
            r = http.get("/projects/boom/page")
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("text/html")
    assert '<link rel="stylesheet" href="/static/' in r.text  # the site's own look, not a bare line
    assert "Something went wrong on our side" in r.text
    assert "olive" in r.text  # the signed-in header still shows who is signed in
    assert "secret-internal-detail" not in r.text and "Traceback" not in r.text
    assert "Content-Security-Policy" in r.headers
    ref = re.search(r"Error reference: <code>([0-9a-f]{8})</code>", r.text).group(1)
    logged = [rec for rec in caplog.records if ref in rec.getMessage()]
    assert logged and logged[0].exc_info and "secret-internal-detail" in str(logged[0].exc_info[1])


def test_a_bug_in_the_api_answers_json_with_a_reference(app, caplog):
    app.add_api_route("/api/v1/boom", _boom, methods=["GET"])
    with TestClient(app, raise_server_exceptions=False) as http, caplog.at_level(logging.ERROR, logger="labelwright"):
        r = http.get("/api/v1/boom")
    assert r.status_code == 500
    body = r.json()
    assert set(body) == {"error", "reference"} and "secret-internal-detail" not in r.text
    assert any(body["reference"] in rec.getMessage() for rec in caplog.records)
