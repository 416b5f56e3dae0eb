"""deploy/nginx.conf, run for real: two ``labelwright serve`` processes on one database behind nginx (its own
prefix and configuration under tmp_path, on a free port), annotators working through it, and both
servers answering. The site file is used as shipped; only its ports and listen address are swapped in.
Skipped where there is no nginx binary, except in CI (.ci/run installs it), where that is a failure."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.conftest import SPAM_SCHEMA
from tests.server import REPO, ServerProcess, free_port, seed

pytestmark = pytest.mark.slow

SITE = REPO / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)),
                                      None)
ENV = {"LABELWRIGHT_WEBHOOK_WORKER": "0", "LABELWRIGHT_ASSIST_WORKER": "0", "LABELWRIGHT_MACHINE_WORKER": "0"}


def site_for(ports: list[int], listen: int) -> str:
    """deploy/nginx.conf with its upstream servers on ``ports`` and listening on 127.0.0.1:``listen``."""
    text = SITE.read_text()
    servers = re.findall(r"^\s*server 127\.0\.0\.1:\d+ .*;$", text, flags=re.M)
    assert len(servers) >= 2, "deploy/nginx.conf should list its upstream servers one per line"
    template = servers[0]
    text = text.replace(servers[0], "\n".join(re.sub(r":\d+", f":{p}", template, count=1) for p in ports), 1)
    for line in servers[1:]:
        text = text.replace(line + "\n", "", 1)
    assert "    listen 80;" in text
    return text.replace("    listen 80;", f"    listen 127.0.0.1:{listen};", 1)


def main_conf(tmp: Path) -> str:
    temp = "".join(f"    {kind}_temp_path {tmp}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                          "scgi"))
    return (f"master_process off;\ndaemon off;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log warn;\n"
            "events { worker_connections 256; }\n"
            "http {\n" + temp +
            "    log_format upstreams '$upstream_addr $status $request_method $uri';\n"
            f"    access_log {tmp}/access.log upstreams;\n"
            f"    include {tmp}/site.conf;\n}}\n")


@pytest.fixture
def nginx_binary():
    if NGINX is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is required in CI (apt-get install nginx-light; see .ci/run)")
        pytest.skip("no nginx binary here (apt-get install nginx-light)")
    return NGINX


def test_the_site_file_is_valid(nginx_binary, tmp_path):
    (tmp_path / "site.conf").write_text(site_for([free_port(), free_port()], free_port()))
    (tmp_path / "nginx.conf").write_text(main_conf(tmp_path))
    r = subprocess.run([nginx_binary, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_annotating_through_nginx_reaches_both_servers(nginx_binary, db_url, tmp_path):
    names = [f"ann{i}" for i in range(4)]
    seeded = seed(db_url, SPAM_SCHEMA, [{"id": f"c{i}", "text": f"comment {i}"} for i in range(40)], names)
    slug = seeded["project"]
    with ServerProcess(db_url, extra_env=ENV) as a, ServerProcess(db_url, extra_env=ENV) as b:
        port = free_port()
        (tmp_path / "site.conf").write_text(site_for([a.port, b.port], port))
        (tmp_path / "nginx.conf").write_text(main_conf(tmp_path))
        nginx = subprocess.Popen([nginx_binary, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 20
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert nginx.poll() is None, nginx.stderr.read() if nginx.stderr else ""
                assert time.monotonic() < deadline, "nginx did not answer"
                time.sleep(0.1)
            submitted = 0
            for name in names:
                with httpx.Client(base_url=f"{base}/api/v1", timeout=30,
                                  headers={"Authorization": f"Bearer {seeded['annotators'][name]}"}) as c:
                    for _ in range(5):
                        item = c.post(f"/projects/{slug}/next")
                        assert item.status_code == 200, item.text
                        r = c.post(f"/items/{item.json()['id']}/annotations", json={"answers": {"spam": "ham"}})
                        assert r.status_code == 201, r.text
                        submitted += 1
            owner = {"Authorization": f"Bearer {seeded['owner']}"}
            progress = httpx.get(f"{base}/api/v1/projects/{slug}/status", headers=owner, timeout=30)
            assert progress.status_code == 200 and progress.json()["annotations"] == submitted == 20, progress.text

            # bodies: an import may be larger than 1 MiB (max_import_bytes), any other request may not
            big = [{"id": f"big{i}", "text": "x" * 1000} for i in range(1500)]  # ~1.5 MB of JSON
            r = httpx.post(f"{base}/api/v1/projects/{slug}/items", json={"items": big}, headers=owner, timeout=60)
            assert r.status_code in (200, 201), r.text
            r = httpx.post(f"{base}/api/v1/projects/{slug}/next", content=b"x" * ((1 << 20) + 1),
                           headers=owner, timeout=60)
            assert r.status_code == 413
        finally:
            nginx.terminate()
            nginx.wait(timeout=30)
    served = Counter(line.split()[0] for line in (tmp_path / "access.log").read_text().splitlines()
                     if line.split()[0] != "-")
    assert set(served) == {f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"}, served
    assert min(served.values()) >= 10, served  # least_conn spreads the work; neither server idles
