#!/usr/bin/env bash
# Debian's Chromium for the end-to-end tests (Playwright drives it; it never downloads a browser of its own).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq chromium > /dev/null
elif command -v sudo > /dev/null; then
    sudo apt-get update -qq && sudo apt-get install -y -qq chromium > /dev/null
else
    echo "install-browser: cannot install chromium without root; the browser tests will be skipped" >&2
fi
