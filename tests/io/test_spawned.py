"""labelwright.io.spawned: a child's standard output relayed in blocks; its failures, before and after its
first block, as ChildFailed with its standard error; a reader that stops early kills it and what it forked."""

from __future__ import annotations

import os
import random
import sys
import time

import pytest

from labelwright.io.spawned import BLOCK, ChildFailed, stream_output
from tests.procs import alive

ENV = dict(os.environ)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_the_output_comes_through_whole_in_blocks():
    n = 3 * BLOCK + 12345
    payload = random.Random(7).randbytes(n)
    code = f"import random, sys; sys.stdout.buffer.write(random.Random(7).randbytes({n}))"
    blocks = list(stream_output(python(code), ENV))
    assert b"".join(blocks) == payload
    assert len(blocks) > 1 and all(0 < len(b) <= BLOCK for b in blocks)


def test_the_environment_is_the_one_given():
    out = b"".join(stream_output(python("import os, sys; sys.stdout.write(os.environ['LW_X'])"),
                                 {**ENV, "LW_X": "given"}))
    assert out == b"given"


def test_a_failure_before_any_output_raises_with_the_childs_standard_error():
    code = "import sys; sys.stderr.write('x' * 9000 + 'no such project'); sys.exit(3)"
    with pytest.raises(ChildFailed, match=r"exit status 3\): x+no such project$") as caught:
        stream_output(python(code), ENV)
    assert len(str(caught.value)) < 4100  # the tail of its standard error, not all of it


def test_a_failure_after_some_output_comes_after_the_blocks():
    code = "import sys; sys.stdout.buffer.write(b'a' * 100); sys.stdout.flush(); sys.stderr.write('broke'); sys.exit(2)"
    blocks = stream_output(python(code), ENV)
    got = b""
    with pytest.raises(ChildFailed, match="exit status 2.*broke"):
        for block in blocks:
            got += block
    assert got == b"a" * 100


def test_an_empty_output_is_not_an_error():
    assert list(stream_output(python("pass"), ENV)) == []


@pytest.mark.parametrize("blocks_read", [0, 1, 3])
def test_a_reader_that_stops_early_kills_the_child_and_what_it_forked(tmp_path, blocks_read):
    """The child forks a worker (as ``labelwright export`` does), writes its pid, then writes for ever. The
    reader closes after some blocks, or before reading any (a client gone before the first byte was sent)."""
    pids = tmp_path / "pids"
    code = (f"import os, sys, time\n"
            f"w = os.fork()\n"
            f"if w == 0:\n    time.sleep(600); os._exit(0)\n"
            f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{w}}')\n"
            f"while True:\n    sys.stdout.buffer.write(b'x' * 65536)\n")
    blocks = stream_output(python(code), ENV)
    for _ in range(blocks_read):
        assert next(blocks)
    child, worker = map(int, pids.read_text().split())
    assert alive(child) and alive(worker)
    blocks.close()  # what the response does when the connection closes (labelwright.api.streaming)
    blocks.close()  # twice is harmless
    deadline = time.monotonic() + 10
    while alive(worker) and time.monotonic() < deadline:  # the worker is reaped by init, a moment later
        time.sleep(0.05)
    assert not alive(child) and not alive(worker)


def test_a_command_that_cannot_start_is_an_ordinary_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        stream_output([str(tmp_path / "no-such-program")], ENV)


def test_on_end_is_called_once_however_the_child_ends(tmp_path):
    ended = []
    out = stream_output(python("print('x' * 10)"), ENV, on_end=lambda: ended.append("done"))
    assert ended == [] and b"".join(out) == b"x" * 10 + b"\n" and ended == ["done"]
    out.close()
    assert ended == ["done"]
    with pytest.raises(ChildFailed):
        stream_output(python("import sys; sys.exit(4)"), ENV, on_end=lambda: ended.append("failed early"))
    assert ended[-1] == "failed early"
    late = stream_output(python("import sys; print('a', flush=True); sys.exit(5)"), ENV,
                         on_end=lambda: ended.append("failed late"))
    with pytest.raises(ChildFailed):
        list(late)
    assert ended[-1] == "failed late"
    forever = stream_output(python("import sys\nwhile True: sys.stdout.write('y' * 65536)"), ENV,
                            on_end=lambda: ended.append("killed"))
    forever.close()
    forever.close()
    assert ended[-1] == "killed"
    with pytest.raises(FileNotFoundError):
        stream_output([str(tmp_path / "none")], ENV, on_end=lambda: ended.append("never started"))
    assert ended == ["done", "failed early", "failed late", "killed", "never started"]
