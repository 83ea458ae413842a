#!/usr/bin/env bash
# bubblewrap, which sandboxes the kernels that run model-written cells (Debian package `bubblewrap`).
# Idempotent. Without root it says so and exits 0: runs then fall back to the runtime guard.
set -euo pipefail
if command -v bwrap > /dev/null; then
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq bubblewrap > /dev/null
elif command -v sudo > /dev/null; then
    sudo apt-get update -qq && sudo apt-get install -y -qq bubblewrap > /dev/null
else
    echo "install-sandbox: cannot install bubblewrap without root; kernels will run behind the runtime guard only" >&2
fi
