"""deploy/Caddyfile, run for real: two ``labelwright serve`` processes on one database behind Caddy (its own
configuration, storage and log under tmp_path, plain HTTP on a free port, no admin endpoint), annotators
working through it, and both servers answering. The site is used as shipped; only its address and the
ports of its processes are swapped in. Caddy's debug log names the process each request went to and the
headers it was sent with. Skipped where there is no caddy binary, except in CI (.ci/run installs it),
where that is a failure. The same checks as tests/deploy/test_deploy_nginx.py, and a process stopping."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.conftest import SPAM_SCHEMA
from tests.deploy.proxy import ENV, binary_or_skip, check_body_limits, label_through, wait_for
from tests.server import REPO, ServerProcess, free_port, seed

pytestmark = pytest.mark.slow

SITE = REPO / "deploy" / "Caddyfile"
CADDY = shutil.which("caddy") or next((p for p in ("/usr/bin/caddy", "/usr/local/bin/caddy") if os.path.exists(p)),
                                      None)
SPOOFED = "203.0.113.7"  # an X-Forwarded-For a client makes up; Caddy must not pass it on


def site_for(ports: list[int], listen: int) -> str:
    """deploy/Caddyfile with its processes on ``ports``, serving plain HTTP as http://127.0.0.1:``listen``."""
    text = SITE.read_text()
    assert re.findall(r"^(\S+) \{$", text, flags=re.M) == ["labels.example.org"], \
        "deploy/Caddyfile should hold one site, labels.example.org"
    text = text.replace("labels.example.org {", f"http://127.0.0.1:{listen} {{", 1)
    upstreams = re.findall(r"^\s*reverse_proxy((?: 127\.0\.0\.1:\d+){2,}) \{$", text, flags=re.M)
    assert len(upstreams) == 1, "deploy/Caddyfile should list its processes on its one reverse_proxy line"
    return text.replace(f"reverse_proxy{upstreams[0]} {{",
                        "reverse_proxy " + " ".join(f"127.0.0.1:{p}" for p in ports) + " {", 1)


def main_conf(tmp: Path) -> str:
    """Global options: no admin endpoint, listen on 127.0.0.1 only, certificates storage and the log (at
    debug level, where reverse_proxy logs each round trip) under ``tmp``; then the site."""
    return ("{\n\tadmin off\n\tdefault_bind 127.0.0.1\n\tgrace_period 10s\n"
            f"\tstorage file_system {tmp}/storage\n"
            f"\tlog {{\n\t\toutput file {tmp}/caddy.log\n\t\tformat json\n\t\tlevel DEBUG\n\t}}\n}}\n"
            f"import {tmp}/site.caddy\n")


def caddy_env(tmp: Path) -> dict:
    """Caddy's home, data and config directories (its autosave.json) under ``tmp``."""
    return dict(os.environ, HOME=str(tmp / "home"), XDG_DATA_HOME=str(tmp / "data"),
                XDG_CONFIG_HOME=str(tmp / "config"))


def write_config(tmp: Path, ports: list[int], listen: int) -> Path:
    (tmp / "site.caddy").write_text(site_for(ports, listen))
    (tmp / "Caddyfile").write_text(main_conf(tmp))
    return tmp / "Caddyfile"


@pytest.fixture
def caddy_binary():
    return binary_or_skip(CADDY, "caddy", "caddy")


def test_the_site_file_is_valid(caddy_binary, tmp_path):
    config = write_config(tmp_path, [free_port(), free_port()], free_port())
    r = subprocess.run([caddy_binary, "validate", "--config", str(config), "--adapter", "caddyfile"],
                       capture_output=True, text=True, timeout=30, env=caddy_env(tmp_path))
    assert r.returncode == 0, r.stderr
    r = subprocess.run([caddy_binary, "fmt", str(SITE)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout == SITE.read_text(), "deploy/Caddyfile is not as `caddy fmt` writes it"


def test_annotating_through_caddy_reaches_both_servers(caddy_binary, db_url, tmp_path):
    names = [f"ann{i}" for i in range(4)]
    seeded = seed(db_url, SPAM_SCHEMA, [{"id": f"c{i}", "text": f"comment {i}"} for i in range(40)], names)
    slug = seeded["project"]
    with ServerProcess(db_url, extra_env=ENV) as a, ServerProcess(db_url, extra_env=ENV) as b:
        port = free_port()
        config = write_config(tmp_path, [a.port, b.port], port)
        with open(tmp_path / "caddy.out", "wb") as out:
            caddy = subprocess.Popen([caddy_binary, "run", "--config", str(config), "--adapter", "caddyfile"],
                                     stdout=out, stderr=subprocess.STDOUT, env=caddy_env(tmp_path))
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(base, caddy, "caddy", lambda: (tmp_path / "caddy.out").read_text(errors="replace"))
            owner = label_through(base, seeded, names, {"X-Forwarded-For": SPOOFED})
            # answered by Caddy before the body is read, every time (not 502): five tries
            check_body_limits(base, slug, owner, times=5)
            # ... and exactly 1 MiB is not too large (Caddy's "1MB" is 1,000,000 bytes)
            with httpx.Client(base_url=f"{base}/api/v1", timeout=30,
                              headers={"Authorization": f"Bearer {seeded['annotators']['ann0']}"}) as c:
                item = c.post(f"/projects/{slug}/next")
                assert item.status_code == 200, item.text
                body = json.dumps({"answers": {"spam": "spam"}}).encode()
                r = c.post(f"/items/{item.json()['id']}/annotations", content=body.ljust(1 << 20),
                           headers={"Content-Type": "application/json"})
                assert r.status_code == 201, r.text

            # one process stops (a restart): Caddy sends its requests to the other one
            b.stop()
            with httpx.Client(base_url=f"{base}/api/v1", timeout=30,
                              headers={"Authorization": f"Bearer {seeded['annotators']['ann1']}"}) as c:
                for _ in range(5):
                    assert httpx.get(f"{base}/healthz", timeout=30).status_code == 200
                    r = c.post(f"/projects/{slug}/next")
                    assert r.status_code == 200, r.text
        finally:
            caddy.terminate()
            caddy.wait(timeout=30)
    trips = [json.loads(line) for line in (tmp_path / "caddy.log").read_text().splitlines()
             if '"upstream roundtrip"' in line]
    answered = [t for t in trips if "status" in t]
    for trip in answered:
        sent = trip["request"]
        # sign-in limits count per client address: labelwright is told the real one, and the scheme
        assert sent["host"] == f"127.0.0.1:{port}", sent
        assert sent["headers"].get("X-Forwarded-For") == ["127.0.0.1"], sent
        assert sent["headers"].get("X-Forwarded-Proto") == ["http"], sent
    served = Counter(t["upstream"] for t in answered)
    assert set(served) == {f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"}, served
    assert min(served.values()) >= 10, served  # least_conn spreads the work; neither server idles
