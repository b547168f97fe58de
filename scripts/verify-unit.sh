#!/bin/sh
# Checks systemd/livestreamd.service with `systemd-analyze verify` (and the
# sysusers snippet with systemd-sysusers --dry-run). verify refuses an ExecStart=
# whose binary does not exist, so a copy of the unit is verified with
# /usr/bin/livestreamd rewritten to a real binary: $1, or the host debug build
# (built here if missing). Any warning fails the check.
#
#   scripts/verify-unit.sh [path/to/livestreamd]
set -eu

cd "$(dirname "$0")/.."
bin=${1:-}
if [ -z "$bin" ]; then
    cargo build --locked --quiet
    bin=${CARGO_TARGET_DIR:-target}/debug/livestreamd
fi
bin=$(realpath "$bin")
[ -x "$bin" ] || { echo "error: $bin is not executable" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/livestreamd-unit.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

grep -q '^ExecStart=/usr/bin/livestreamd ' systemd/livestreamd.service ||
    { echo "error: ExecStart= no longer starts /usr/bin/livestreamd" >&2; exit 1; }
sed "s|^ExecStart=/usr/bin/livestreamd |ExecStart=$bin |" \
    systemd/livestreamd.service >"$tmp/livestreamd.service"

# --man=no: verify would otherwise look for man pages named in Documentation=.
if ! systemd-analyze verify --man=no "$tmp/livestreamd.service" >"$tmp/out" 2>&1; then
    cat "$tmp/out" >&2
    echo "FAIL systemd-analyze verify systemd/livestreamd.service" >&2
    exit 1
fi
if [ -s "$tmp/out" ]; then
    cat "$tmp/out" >&2
    echo "FAIL systemd-analyze verify printed warnings" >&2
    exit 1
fi
echo "ok   systemd-analyze verify systemd/livestreamd.service (ExecStart -> $bin)"

mkdir -p "$tmp/root/etc"
touch "$tmp/root/etc/passwd" "$tmp/root/etc/group"
if systemd-sysusers --root="$tmp/root" --dry-run "$PWD/systemd/livestreamd.sysusers" >"$tmp/out" 2>&1 &&
    grep -q "livestreamd" "$tmp/out"; then
    echo "ok   systemd-sysusers --dry-run systemd/livestreamd.sysusers: $(grep -m1 livestreamd "$tmp/out")"
else
    cat "$tmp/out" >&2
    echo "FAIL systemd-sysusers systemd/livestreamd.sysusers" >&2
    exit 1
fi
