"""labelwright.io.forked.in_order: pieces made by forked processes come back in order, a worker's error
reaches the caller in its place, and no worker outlives the call (stopped early or not)."""

import os
import time

import pytest

from labelwright.io.forked import WorkerError, aside, default_workers, in_order
from tests.procs import children


def _piece(j: int) -> bytes:
    time.sleep(0.002 * (j % 3))  # workers finish out of order
    return f"{j}:{os.getpid()}|".encode() * (j % 5 + 1) + b"x" * (70_000 if j % 4 == 0 else 0)  # past a pipe's buffer


@pytest.mark.parametrize("workers", [1, 2, 3, 7])
def test_pieces_come_back_in_order_made_by_several_processes(workers):
    before = children(os.getpid())
    got = list(in_order(20, _piece, workers))
    assert [g.split(b"|")[0].split(b":")[0] for g in got] == [str(j).encode() for j in range(20)]
    pids = {int(g.split(b"|")[0].split(b":")[1]) for g in got}
    assert len(pids) == (1 if workers == 1 else workers)
    assert (os.getpid() in pids) == (workers == 1)
    for j, g in enumerate(got):  # each piece whole, as its worker made it (one past a pipe's buffer)
        pid = g.split(b"|")[0].split(b":")[1].decode()
        assert g == f"{j}:{pid}|".encode() * (j % 5 + 1) + b"x" * (70_000 if j % 4 == 0 else 0)
    assert children(os.getpid()) == before  # every worker waited for


def test_a_workers_error_reaches_the_caller_in_its_place():
    def make(j: int) -> bytes:
        if j == 5:
            raise ValueError("bad chunk 5")
        return str(j).encode()

    before = children(os.getpid())
    got = []
    with pytest.raises(WorkerError, match="ValueError: bad chunk 5"):
        for piece in in_order(12, make, 3):
            got.append(piece)
    assert got == [b"0", b"1", b"2", b"3", b"4"]
    assert children(os.getpid()) == before


def test_a_caller_that_stops_early_leaves_no_worker_behind():
    before = children(os.getpid())
    pieces = in_order(1000, lambda j: b"y" * 100_000, 2)  # workers block on full pipes
    assert next(pieces) == b"y" * 100_000
    pieces.close()
    assert children(os.getpid()) == before


def test_start_runs_once_in_each_worker():
    def start():
        os.environ["LW_TEST_STARTED"] = str(int(os.environ.get("LW_TEST_STARTED", "0")) + 1)

    got = list(in_order(6, lambda j: f"{os.getpid()}={os.environ['LW_TEST_STARTED']}".encode(), 2, start))
    assert {g.split(b"=")[1] for g in got} == {b"1"}
    assert "LW_TEST_STARTED" not in os.environ  # set in the workers only
    assert 1 <= default_workers(4) <= 4 and default_workers(1) == 1


def test_stop_runs_in_each_worker_after_its_last_piece_and_after_an_error(tmp_path):
    def stop():
        (tmp_path / f"stopped-{os.getpid()}").write_text("1")

    def make(j: int) -> bytes:
        if j == 3:
            raise RuntimeError("no")
        return b"."

    list(in_order(4, lambda j: b".", 2, stop=stop))
    assert len(list(tmp_path.iterdir())) == 2  # both workers
    with pytest.raises(WorkerError):
        list(in_order(6, make, 2, stop=stop))
    assert len(list(tmp_path.iterdir())) >= 3  # the failing worker's, before its error went out


def test_aside_runs_in_another_process_while_the_caller_works_on(tmp_path):
    parent = os.getpid()
    marks = tmp_path / "started"
    result = aside(lambda: f"{os.getpid()} {marks.read_text()}".encode(),
                   start=lambda: marks.write_text("started"))
    time.sleep(0.05)  # the caller's own work
    pid, started = result().decode().split()
    assert int(pid) != parent and started == "started"


def test_aside_hands_its_error_to_the_caller_and_leaves_no_process():
    def broken() -> bytes:
        raise OSError("the disk went away")

    before = children(os.getpid())
    result = aside(broken)
    with pytest.raises(WorkerError, match="OSError: the disk went away"):
        result()
    assert children(os.getpid()) == before  # waited for: not even a zombie left
