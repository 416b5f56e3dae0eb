#!/usr/bin/env bash
# Set up ./.venv with labelwright and its test tools, then run the whole test suite.
#   bash scripts/test.sh [pytest options]
# PostgreSQL tests use LABELWRIGHT_TEST_PG (default postgresql://postgres@127.0.0.1:5432/test); without a
# server they are skipped and the summary says so (with CI set they fail instead). Browser tests need
# Debian's chromium at /usr/bin/chromium (installed here when missing and we are root).
# The tests run in LABELWRIGHT_TEST_WORKERS pytest-xdist workers (default 2; 0 runs them in this process),
# a test module at a time per worker, each worker on its own PostgreSQL database (tests/conftest.py);
# an -n/--numprocesses among the options wins. Much of the suite waits on server processes, browsers and
# clocks, time that a second worker uses even on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh "[test]"
# TRL's dataset helpers (tests/io/test_hf_trl.py) need neither torch nor accelerate, which TRL's own
# requirements pull in (gigabytes of wheels): TRL goes in without its dependencies, next to transformers
# (in the test extra), which runs without torch for what the tests use.
.venv/bin/python -m pip install --quiet --no-deps "trl>=1.0,<2"
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium for the browser tests"
    apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
  else
    echo "NOTE: /usr/bin/chromium is missing and cannot be installed here: browser tests will be skipped"
  fi
fi
command -v bwrap >/dev/null || { [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null && { apt-get install -y -q bubblewrap >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q bubblewrap >/dev/null; }; }; } || echo "NOTE: bwrap (bubblewrap) is missing: sandbox tests will be skipped"
workers=(-n "${LABELWRIGHT_TEST_WORKERS:-2}" --dist loadscope --no-loadscope-reorder)
for arg in "$@"; do
  case "$arg" in -n*|--numprocesses*|no:xdist) workers=() ;; esac
done
exec .venv/bin/python -m pytest -p no:cacheprovider "${workers[@]}" "$@"
