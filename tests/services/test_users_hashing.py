"""Passwords are stored as argon2id hashes with the library's default (RFC 9106 low-memory) cost, whatever the
tests use for speed (tests/conftest.py swaps in the cheapest parameters for everything else)."""

from __future__ import annotations

import subprocess
import sys


def test_the_server_hashes_with_argon2id_at_the_default_cost():
    code = ("from argon2 import PasswordHasher, extract_parameters\n"
            "from labelwright.services import users\n"
            "h = users.hash_password('a-long-enough-password-1')\n"
            "p, d = extract_parameters(h), PasswordHasher()\n"
            "assert h.startswith('$argon2id$'), h\n"
            "assert (p.time_cost, p.memory_cost, p.parallelism) == (d.time_cost, d.memory_cost, d.parallelism), p\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
