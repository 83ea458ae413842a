#!/usr/bin/env bash
# Create .venv and install jupyter_medagent with everything the demo and the tests need.
# Idempotent: re-running only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
# A new venv's pip (23.x) backtracks for many minutes on jupyter-ai's extras.
.venv/bin/python -m pip install -q -U "pip>=25"
# The pinned CPU build first: an unpinned torch would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -c constraints.txt -e ".[lab,test,bench,ray]"
