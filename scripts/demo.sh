#!/usr/bin/env bash
# The demo: a simulated GoPro (ffmpeg test pattern over UDP) feeding the daemon.
# Open the printed URL in VLC, mpv, ffplay or a browser. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh demo
exec cargo run --release --locked -- demo "$@"
