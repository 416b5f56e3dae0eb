# Sourced by demo.sh and test.sh: make ./.venv (with $PYTHON, default python3) and install labelwright
# into it with the extras named in $1 (e.g. "[test]"; empty for none).
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".${1:-}"
