"""Running untrusted code (an item's code and tests) in a sandbox: no network, no files of the host, limits
on time, memory, processes and output.

Nothing from an item ever runs outside it. :func:`run` starts Debian's bubblewrap (``bwrap``) with every
namespace unshared (``--unshare-all``: no network but a loopback of its own, its own process ids, no
view of the host's processes), the system's ``/usr`` read-only and a fresh, size-limited tmpfs as the work
directory holding only the given files (copied in through file descriptors: no directory of the host is
ever bound writable, so nothing written inside can escape). The project, its database, ``/root``,
``/home``, ``/tmp`` and ``/etc`` are simply not there.

Limits:

* **wall clock**: ``time_s``; on the deadline the whole process group of bwrap is killed (bwrap's own
  ``--die-with-parent`` takes the sandbox's process namespace down with it);
* **CPU time** (``RLIMIT_CPU``), **address space** (``RLIMIT_AS``: ``memory_mb``), **file size**
  (``RLIMIT_FSIZE``) and no core files, set by ``prlimit`` before bwrap starts and inherited by everything
  inside;
* **processes** (``RLIMIT_NPROC``: ``max_processes``), set inside the sandbox (``prlimit``), so that the
  count is of the sandbox's own user namespace, not of every process the server's user has. When the
  server runs as root, bwrap is started as ``nobody`` instead: the kernel never limits root's processes;
* **output**: stdout and stderr are each kept up to ``output_bytes`` (the rest is read and dropped).

bwrap missing is :class:`SandboxUnavailable` (with what to install): the code is never run unsandboxed.

Languages: :data:`LANGUAGES` says how a language's program is started (its interpreter, from the system's
``/usr``, never the server's virtual environment); only Python for now. Nothing here imports the rest of
labelwright: the services call it.
"""

from __future__ import annotations

import os
import posixpath
import re
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

WORKDIR = "/work"
NOBODY = 65534
MAX_FILES = 32
MAX_FILE_BYTES = 1 << 20  # the largest file an item may put in (and the largest one a program may write)
TMPFS_BYTES = 16 << 20  # the work directory's size
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}(/[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}){0,3}$")
INSTALL_HINT = "install bubblewrap (Debian: apt-get install bubblewrap) to run code tasks"


class SandboxUnavailable(RuntimeError):
    """bwrap is missing or cannot make a sandbox here (no user namespaces): code is never run without one."""


class SandboxInputError(ValueError):
    """Files or limits that cannot go into a sandbox (a bad file name, a file too large)."""


@dataclass(frozen=True)
class Language:
    """How a language's program runs: ``interpreter`` (a path under ``/usr``) and its arguments before the
    main file, the environment inside, the main file's name."""

    name: str
    interpreter: str
    args: tuple[str, ...] = ()
    main_file: str = "main"
    env: Mapping[str, str] = field(default_factory=dict)

    def command(self, main: str | None = None) -> list[str]:
        return [self.interpreter, *self.args, main or self.main_file]


#: the languages :func:`run` knows, by name
LANGUAGES: dict[str, Language] = {
    "python": Language("python", "/usr/bin/python3", args=("-E", "-s", "-B", "-X", "utf8"), main_file="main.py",
                       env={"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "PYTHONHASHSEED": "0"}),
}


@dataclass(frozen=True)
class RunResult:
    """What a run did. ``exit_code`` is None when the program was killed (``killed_reason`` says why:
    ``time limit``, ``cpu time limit``, ``memory limit`` or ``signal N``); ``timed_out`` is the wall clock's
    kill; ``truncated`` when output past ``output_bytes`` was dropped."""

    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool
    killed_reason: str | None
    duration_ms: int
    truncated: bool = False

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def bwrap_path() -> str:
    """Where bwrap is (on ``PATH``), or :class:`SandboxUnavailable`."""
    found = shutil.which("bwrap")
    if found is None:
        raise SandboxUnavailable(f"the code sandbox needs bwrap, which is not installed: {INSTALL_HINT}")
    return found


def available() -> bool:
    """Whether bwrap is installed (a run may still fail where user namespaces are off)."""
    try:
        bwrap_path()
    except SandboxUnavailable:
        return False
    return True


def check_files(files: Mapping[str, str]) -> None:
    """Refuse names that are not plain relative paths (no ``..``, no leading ``/``) and files too large."""
    if len(files) > MAX_FILES:
        raise SandboxInputError(f"at most {MAX_FILES} files, got {len(files)}")
    for name, text in files.items():
        if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name.split("/"):
            raise SandboxInputError(f"file name {name!r}: use letters, digits, '_', '-', '.' and at most 3 "
                                    "folders, no '..' and no leading '/'")
        if not isinstance(text, str):
            raise SandboxInputError(f"file {name!r}: expected text, got {type(text).__name__}")
        if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
            raise SandboxInputError(f"file {name!r} is larger than {MAX_FILE_BYTES} bytes")


def _system_binds() -> list[str]:
    """Read-only binds of the system: /usr, and /bin, /lib* as the host has them (links into /usr on a
    merged-/usr Debian, directories elsewhere); /etc/alternatives where a link of /usr points into it."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    if os.path.isdir("/etc/alternatives"):
        args += ["--ro-bind", "/etc/alternatives", "/etc/alternatives"]
    return args


def _outer_limits(time_s: float, memory_mb: int) -> list[str]:
    """``prlimit`` before bwrap: CPU time, address space, file size, no core files (inherited inside).
    ``prlimit`` rather than a ``preexec_fn``, which is unsafe in a threaded server."""
    cpu = max(1, int(time_s + 0.999))
    return ["/usr/bin/prlimit", f"--cpu={cpu}:{cpu + 1}", f"--as={memory_mb << 20}", f"--fsize={MAX_FILE_BYTES}",
            "--core=0", "--"]


def _memfd(name: str, text: str) -> int:
    fd = os.memfd_create(f"sandbox-{posixpath.basename(name)}", 0)
    os.write(fd, text.encode("utf-8", "surrogatepass"))  # memfd writes are whole
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def command_line(files_fds: Mapping[str, int], command: Sequence[str], *, time_s: float, memory_mb: int,
                 max_processes: int, env: Mapping[str, str]) -> list[str]:
    """The bwrap command line (for the tests and the curious)."""
    args = [*_outer_limits(time_s, memory_mb), bwrap_path(),
            "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            *_system_binds(), "--proc", "/proc", "--dev", "/dev",
            "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp", "--size", str(TMPFS_BYTES), "--tmpfs", WORKDIR]
    made = {WORKDIR}
    for name, fd in files_fds.items():
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = posixpath.join(WORKDIR, *parts[:i])
            if d not in made:
                args += ["--dir", d]
                made.add(d)
        args += ["--file", str(fd), posixpath.join(WORKDIR, name)]
    args += ["--remount-ro", "/", "--chdir", WORKDIR, "--clearenv"]  # the root's own tmpfs: read-only
    for key, value in {"PATH": "/usr/bin:/bin", "HOME": WORKDIR, "LANG": "C.UTF-8", **env}.items():
        args += ["--setenv", key, value]
    args += ["--", "/usr/bin/prlimit", f"--nproc={max_processes}", "--", *command]
    return args


def run(files: Mapping[str, str], command: Sequence[str], *, time_s: float = 5.0, memory_mb: int = 256,
        max_processes: int = 16, output_bytes: int = 64_000, env: Mapping[str, str] | None = None) -> RunResult:
    """Run ``command`` (its program a path under ``/usr``, e.g. :data:`LANGUAGES`' interpreters) in a
    fresh sandbox whose work directory holds only ``files`` (name -> text), and wait for it, at most
    ``time_s`` seconds of wall clock. See the module's description for what is shut out and limited."""
    if not 0 < time_s <= 600:
        raise SandboxInputError(f"time_s must be between 0 and 600 seconds, got {time_s}")
    if not 32 <= memory_mb <= 64 * 1024:
        raise SandboxInputError(f"memory_mb must be between 32 and 65536, got {memory_mb}")
    if not 1 <= max_processes <= 4096:
        raise SandboxInputError(f"max_processes must be between 1 and 4096, got {max_processes}")
    if not command:
        raise SandboxInputError("command is empty")
    check_files(files)
    fds = {name: _memfd(name, text) for name, text in files.items()}
    try:
        args = command_line(fds, command, time_s=time_s, memory_mb=memory_mb, max_processes=max_processes,
                            env=env or {})
        return _run(args, tuple(fds.values()), time_s=time_s, output_bytes=output_bytes)
    finally:
        for fd in fds.values():
            os.close(fd)


def run_language(language: str, files: Mapping[str, str], main: str | None = None, **limits) -> RunResult:
    """Run ``main`` (default: the language's main file) of ``files`` with the language's interpreter."""
    lang = LANGUAGES.get(language)
    if lang is None:
        raise SandboxInputError(f"no language {language!r}; known: {sorted(LANGUAGES)}")
    return run(files, lang.command(main), env=lang.env, **limits)


def _run(args: list[str], fds: tuple[int, ...], *, time_s: float, output_bytes: int) -> RunResult:
    start = time.monotonic()
    deadline = start + time_s
    # root's processes are never counted against RLIMIT_NPROC: as root, bwrap starts as nobody
    who = {"user": NOBODY, "group": NOBODY, "extra_groups": []} if os.geteuid() == 0 else {}
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                pass_fds=fds, start_new_session=True, close_fds=True, **who)  # type: ignore[call-overload]
    except FileNotFoundError as e:
        raise SandboxUnavailable(f"the code sandbox could not start {args[0]}: {e}; {INSTALL_HINT}") from e
    kept = {"stdout": bytearray(), "stderr": bytearray()}
    truncated = timed_out = False
    assert proc.stdout is not None and proc.stderr is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
        sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            for key, _ in sel.select(timeout=min(left, 0.5)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf = kept[key.data]
                room = output_bytes - len(buf)
                if len(chunk) > room:
                    truncated = True
                if room > 0:
                    buf += chunk[:room]
    if timed_out:
        _kill(proc)
    try:
        returncode = proc.wait(timeout=max(0.1, deadline - time.monotonic()) + 1)
    except subprocess.TimeoutExpired:  # output closed but still running (a child closed its pipes)
        timed_out = True
        _kill(proc)
        returncode = proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    duration_ms = int((time.monotonic() - start) * 1000)
    stdout = kept["stdout"].decode("utf-8", "replace")
    stderr = kept["stderr"].decode("utf-8", "replace")
    if returncode == 1 and stderr.startswith("bwrap:"):  # bwrap's own failure, not the program's
        raise SandboxUnavailable(f"bwrap could not make a sandbox here: {stderr.strip()} (user namespaces "
                                 "must be allowed: sysctl kernel.unprivileged_userns_clone=1)")
    exit_code, reason = _outcome(returncode, stderr, timed_out)
    return RunResult(exit_code=exit_code, stdout=stdout, stderr=stderr, timed_out=timed_out,
                     killed_reason=reason, duration_ms=duration_ms, truncated=truncated)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _outcome(returncode: int, stderr: str, timed_out: bool) -> tuple[int | None, str | None]:
    """(exit code, why it was killed). bwrap passes the program's exit status on, a signal as 128 + N."""
    if timed_out:
        return None, "time limit"
    if returncode < 0:  # bwrap itself killed (the CPU limit reaches it too)
        returncode = 128 - returncode
    if returncode > 128:
        sig = returncode - 128
        if sig in (signal.SIGXCPU, signal.SIGKILL) and "MemoryError" not in stderr:
            return None, "cpu time limit" if sig == signal.SIGXCPU else f"signal {sig}"
        return None, f"signal {sig}"
    if "MemoryError" in stderr.rsplit("\n", 3)[-1] or stderr.rstrip().endswith("MemoryError"):
        return returncode, "memory limit"
    return returncode, None


__all__ = ["LANGUAGES", "Language", "RunResult", "SandboxInputError", "SandboxUnavailable", "available", "run",
           "run_language"]
