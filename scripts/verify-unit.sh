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
# --set-clock needs CAP_SYS_TIME (bounding and ambient), the @clock system
# calls, and no ProtectClock= (which forbids setting the clock).
if grep -q '^ExecStart=.* --set-clock' systemd/livestreamd.service; then
    for want in '^CapabilityBoundingSet=.*CAP_SYS_TIME' '^AmbientCapabilities=.*CAP_SYS_TIME' '^SystemCallFilter=.*@clock'; do
        grep -q "$want" systemd/livestreamd.service ||
            { echo "error: ExecStart= has --set-clock but the unit lacks $want" >&2; exit 1; }
    done
    if grep -q '^ProtectClock=yes' systemd/livestreamd.service; then
        echo "error: ExecStart= has --set-clock but ProtectClock=yes forbids it" >&2
        exit 1
    fi
    echo "ok   --set-clock: CAP_SYS_TIME, @clock, no ProtectClock="
fi
# The binary takes the unit's command line.
args=$(sed -n 's|^ExecStart=/usr/bin/livestreamd ||p' systemd/livestreamd.service)
# shellcheck disable=SC2086 # the unit's words, split as systemd splits them
if ! "$bin" $args --check-args >"$tmp/out" 2>&1; then
    cat "$tmp/out" >&2
    echo "FAIL livestreamd does not take the unit's ExecStart= arguments: $args" >&2
    exit 1
fi
echo "ok   livestreamd takes the unit's arguments: $args"
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
