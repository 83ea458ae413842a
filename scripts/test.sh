#!/usr/bin/env bash
# The full test suite, as CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest -q
