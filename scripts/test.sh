#!/usr/bin/env bash
# The full test suite, as CI runs it: the sidebar's Jest tests, the layer contracts (pyproject.toml), then pytest
# (server, browser and all).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"  # jlpm comes with JupyterLab
(cd labextension && jlpm install > /dev/null && jlpm test --silent)
.venv/bin/lint-imports
.venv/bin/python -m pytest -q
