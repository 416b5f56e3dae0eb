#!/usr/bin/env bash
# Set up labelwright in ./.venv and run it on a demo project (SQLite, nothing else needed).
#   bash scripts/demo.sh [extra `labelwright demo` options, e.g. --port 8080]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh ""
exec .venv/bin/labelwright demo "$@"
