#!/usr/bin/env bash
# The full test suite, as CI runs it: lint (ruff, eslint, prettier, stylelint), the layer contracts
# (import-linter, pyproject.toml), the sidebar's Jest tests, then pytest
# (server, browser and all).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"  # jlpm comes with JupyterLab
ruff check .
.venv/bin/lint-imports
(cd labextension && jlpm install > /dev/null && jlpm lint:check && jlpm test --silent)
.venv/bin/python -m pytest -q
