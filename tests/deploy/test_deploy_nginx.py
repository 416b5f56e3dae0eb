"""deploy/nginx.conf, run for real: two ``labelwright serve`` processes on one database behind nginx (its own
prefix and configuration under tmp_path, on a free port), annotators working through it, and both
servers answering. The site file is used as shipped; only its ports and listen address are swapped in.
Skipped where there is no nginx binary, except in CI (.ci/run installs it), where that is a failure."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import SPAM_SCHEMA
from tests.deploy.proxy import ENV, binary_or_skip, check_body_limits, label_through, wait_for
from tests.server import REPO, ServerProcess, free_port, seed

pytestmark = pytest.mark.slow

SITE = REPO / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)),
                                      None)


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
    return binary_or_skip(NGINX, "nginx", "nginx-light")


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
            wait_for(base, nginx, "nginx", lambda: nginx.stderr.read() if nginx.stderr else "")
            owner = label_through(base, seeded, names)
            check_body_limits(base, slug, owner)
        finally:
            nginx.terminate()
            nginx.wait(timeout=30)
    served = Counter(line.split()[0] for line in (tmp_path / "access.log").read_text().splitlines()
                     if line.split()[0] != "-")
    assert set(served) == {f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"}, served
    assert min(served.values()) >= 10, served  # least_conn spreads the work; neither server idles
