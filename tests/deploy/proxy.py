"""What the reverse-proxy tests (nginx, Caddy) share: finding the proxy's binary, waiting for it, and the
work sent through it, so that both proxies are held to the same checks."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable

import httpx
import pytest

# the server processes behind a proxy run no background workers: the tests count requests
ENV = {"LABELWRIGHT_WEBHOOK_WORKER": "0", "LABELWRIGHT_ASSIST_WORKER": "0", "LABELWRIGHT_MACHINE_WORKER": "0"}


def binary_or_skip(path: str | None, name: str, package: str) -> str:
    """The proxy's binary; without one, a skip here and a failure in CI (.ci/run installs it)."""
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required in CI (apt-get install {package}; see .ci/run)")
        pytest.skip(f"no {name} binary here (apt-get install {package})")
    return path


def wait_for(base: str, proxy: subprocess.Popen, name: str, why: Callable[[], str]) -> None:
    """Until ``base``/healthz answers through the proxy (20 s); ``why()`` says what the proxy logged."""
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proxy.poll() is None, why()
        assert time.monotonic() < deadline, f"{name} did not answer"
        time.sleep(0.1)


def label_through(base: str, seeded: dict, names: list[str], headers: dict | None = None) -> dict:
    """Each of ``names`` takes and answers 5 items through the proxy; the project counts all 20. Returns
    the owner's headers."""
    slug, submitted = seeded["project"], 0
    for name in names:
        with httpx.Client(base_url=f"{base}/api/v1", timeout=30,
                          headers={"Authorization": f"Bearer {seeded['annotators'][name]}", **(headers or {})}) as c:
            for _ in range(5):
                item = c.post(f"/projects/{slug}/next")
                assert item.status_code == 200, item.text
                r = c.post(f"/items/{item.json()['id']}/annotations", json={"answers": {"spam": "ham"}})
                assert r.status_code == 201, r.text
                submitted += 1
    owner = {"Authorization": f"Bearer {seeded['owner']}"}
    progress = httpx.get(f"{base}/api/v1/projects/{slug}/status", headers=owner, timeout=30)
    assert progress.status_code == 200 and progress.json()["annotations"] == submitted == 20, progress.text
    return owner


def check_body_limits(base: str, slug: str, owner: dict, times: int = 1) -> None:
    """An import may be larger than 1 MiB (max_import_bytes), any other request may not: 413 (``times``
    tries, for a proxy whose answer to an oversize body has varied)."""
    big = [{"id": f"big{i}", "text": "x" * 1000} for i in range(1500)]  # ~1.5 MB of JSON
    r = httpx.post(f"{base}/api/v1/projects/{slug}/items", json={"items": big}, headers=owner, timeout=60)
    assert r.status_code in (200, 201), r.text
    for _ in range(times):
        r = httpx.post(f"{base}/api/v1/projects/{slug}/next", content=b"x" * ((1 << 20) + 1), headers=owner,
                       timeout=60)
        assert r.status_code == 413, (r.status_code, r.text)
