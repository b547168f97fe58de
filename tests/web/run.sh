#!/usr/bin/env bash
# The browser test: Debian's Chromium, driven by playwright-core (no browser
# download), opens the page of a demo daemon and checks that it plays live.
# Installs what is missing (chromium from apt, playwright-core from the lock
# file), builds the daemon, and runs node's test runner.
#   bash tests/web/run.sh        (as root for apt; ffmpeg must be installed)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

if ! [ -x /usr/bin/chromium ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "tests/web: chromium is missing (apt-get install chromium)" >&2
        exit 1
    fi
    echo "tests/web: apt-get install chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
chromium --version 2>/dev/null || true
node --version

(cd "$repo" && cargo build --locked)
cd "$here"
npm ci --no-audit --no-fund
node --test --test-concurrency=1
