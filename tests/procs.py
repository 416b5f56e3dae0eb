"""Processes as /proc shows them (Linux), for tests that check no child process is left behind."""

from __future__ import annotations

import os


def state(pid: int) -> str | None:
    """The process's state letter (R, S, Z for a zombie...), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet waited for by its parent, does not count)."""
    return state(pid) not in (None, "Z")


def children(pid: int) -> set[int]:
    """The direct children of ``pid``, zombies included."""
    out: set[int] = set()
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out |= {int(c) for c in f.read().split()}
        except FileNotFoundError:
            continue
    return out


def descendants(pid: int) -> set[int]:
    """Every running process below ``pid`` (children, their children...)."""
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {c for p in frontier for c in children(p) if alive(c)} - found
        found |= frontier
    return found
