"""`serve --workers N` (labelwright.serving): N processes on one port, each with its own SO_REUSEPORT socket,
connections spread over all of them, settings given to them as an object (not through the environment), a
dead worker started again, SIGTERM stopping everything."""

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

START_TIMEOUT_S = 240  # spawned workers import the whole app; slow on a busy CI machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return out


def _workers(pid: int) -> list[int]:
    """The server processes (multiprocessing also starts a resource tracker, which listens on nothing)."""
    return [c for c in _children(pid) if _listening_inodes(c)]


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


def _tcp(port: int, state: str) -> set[int]:
    """Inodes of the IPv4 TCP sockets on local port ``port`` in ``state`` (0A listening, 01 established)."""
    out = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if int(parts[1].split(":")[1], 16) == port and parts[3] == state:
                out.add(int(parts[9]))
    return out


_port_of_test = {"port": 0}


def _listening_inodes(pid: int) -> set[int]:
    return _socket_inodes(pid) & _tcp(_port_of_test["port"], "0A")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _wait(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    _port_of_test["port"] = port
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABELWRIGHT_")}
    env.update(LABELWRIGHT_WEBHOOK_WORKER="0", LABELWRIGHT_ASSIST_WORKER="0", LABELWRIGHT_MACHINE_WORKER="0")
    proc = subprocess.Popen([sys.executable, "-m", "labelwright", "--db", str(tmp_path / "lw.db"), "serve",
                             "--port", str(port), "--workers", "2", "--set", "max_body_bytes=300"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: len(_workers(proc.pid)) == 2 and _healthy(url), START_TIMEOUT_S, "two workers")
        yield proc, url, port
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_workers_share_the_port_and_the_connections(server):
    proc, url, port = server
    workers = _workers(proc.pid)
    assert len(workers) == 2
    # each worker listens on a socket of its own (SO_REUSEPORT), not one inherited from the parent
    listening = [_listening_inodes(w) for w in workers]
    assert all(len(s) == 1 for s in listening) and listening[0] != listening[1]
    assert not (_socket_inodes(proc.pid) & _tcp(port, "0A"))
    # keep-alive connections are spread over both processes by the kernel (32 connections: the chance
    # that one process gets fewer than 4 is below one in a million)
    conns = []
    for _ in range(32):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/healthz")
        assert c.getresponse().read() is not None
        conns.append(c)
    established = _tcp(port, "01")
    held = [len(_socket_inodes(w) & established) for w in workers]
    assert sum(held) == 32 and min(held) >= 4, held
    for c in conns:
        c.close()


def test_settings_reach_the_workers_without_the_environment(server):
    proc, url, _port = server
    for w in _workers(proc.pid):
        with open(f"/proc/{w}/environ", "rb") as f:
            assert b"LABELWRIGHT_MAX_BODY_BYTES" not in f.read()
    for _ in range(8):  # whichever worker answers applies --set max_body_bytes=300
        req = urllib.request.Request(url + "/api/v1/projects", data=b"x" * 1000, method="POST",
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 413


def test_a_dead_worker_is_replaced_and_sigterm_stops_all(server):
    proc, url, _port = server
    first = _workers(proc.pid)
    os.kill(first[0], signal.SIGKILL)
    _wait(lambda: len(_workers(proc.pid)) == 2 and first[0] not in _workers(proc.pid), START_TIMEOUT_S,
          "a new worker")
    assert _healthy(url)
    workers = _workers(proc.pid)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert not any(os.path.exists(f"/proc/{w}") and _children(proc.pid) for w in workers)
    assert not _healthy(url)
