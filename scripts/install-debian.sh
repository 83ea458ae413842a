#!/usr/bin/env bash
# Install a Debian package unless COMMAND is already there: install-debian.sh COMMAND PACKAGE WHY-IF-NOT
# Idempotent. Without root or sudo it says what is lost (WHY-IF-NOT) and exits 0.
#   chromium:   Playwright drives it for the browser tests (it never downloads a browser of its own).
#   bubblewrap: sandboxes the kernels that run model-written cells; without it runs fall back to the runtime guard.
set -euo pipefail
command="$1" package="$2" without="$3"
if command -v "$command" > /dev/null; then
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq "$package" > /dev/null
elif command -v sudo > /dev/null; then
    sudo apt-get update -qq && sudo apt-get install -y -qq "$package" > /dev/null
else
    echo "install-debian: cannot install $package without root; $without" >&2
fi
