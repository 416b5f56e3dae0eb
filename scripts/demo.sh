#!/usr/bin/env bash
# Set up labelwright in ./.venv and run it on a demo project (SQLite, nothing else needed).
#   bash scripts/demo.sh [extra `labelwright demo` options, e.g. --port 8080]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/labelwright demo "$@"
