#!/usr/bin/env bash
# Sets up .venv with the pinned dependencies (the system libraries Qt needs are installed by hand:
# README, "Start on a fresh machine").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade "pip==26.3" >/dev/null
.venv/bin/python -m pip install -q -e ".[dev]"
# the app's own modules compiled once: an editable install leaves that to Python's first import,
# which writes nothing where PYTHONDONTWRITEBYTECODE is set (then every start compiles them
# again: 0.05 s of inspector classify's 0.3 s start-up); a stale file is compiled anew as usual
.venv/bin/python -m compileall -q inspector training || { echo "setup: cannot compile the app's modules (above)" >&2; exit 1; }
echo "setup: done. Start the app with .venv/bin/inspector, or run 'source .venv/bin/activate' first" \
     "so that the README's inspector and python commands use this environment."
