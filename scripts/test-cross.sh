#!/bin/bash
# Runs the cross-built release binaries under qemu-user, for real:
#   --version; check-config on the shipped config (exit 0) and on a bad file
#   (exit 2, file:line:col); and an end-to-end run: the emulated daemon runs
#   `demo` (supervising the HOST's ffmpeg as a simulated GoPro and as its
#   encoder), a host curl reads /stream.ts, ffprobe finds H.264 at 320x180,
#   SIGTERM ends it with exit 0 and no ffmpeg left behind.
#
#   scripts/build-release.sh && scripts/test-cross.sh [TARGET...]
#
# The binaries tested are the ones build-release.sh made
# (${CARGO_TARGET_DIR:-target}/<triple>/release/livestreamd); this script
# builds nothing, and it runs each binary through qemu explicitly, never
# through binfmt or a host build.
# Needs: qemu-user-static, ffmpeg (with libx264), ffprobe, curl, file.
set -u

cd "$(dirname "$0")/.." || exit 1
targets=${*:-aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf}
out=${CARGO_TARGET_DIR:-target}
# Emulation is slow: generous limits.
START_TIMEOUT=${START_TIMEOUT:-90}

# shellcheck source=scripts/lib/checks.sh
. scripts/lib/checks.sh

tmp=$(mktemp -d "${TMPDIR:-/tmp}/livestreamd-cross.XXXXXX")
daemon_pid=
listener=
children=
stop_all() {
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -KILL "$daemon_pid" 2>/dev/null
        wait "$daemon_pid" 2>/dev/null
    fi
    daemon_pid=
    for c in $children; do kill -KILL "$c" 2>/dev/null; done
    children=
    if [ -n "$listener" ]; then
        kill "$listener" 2>/dev/null
        wait "$listener" 2>/dev/null
        listener=
    fi
}
trap 'stop_all; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

free_port() { # $1 = tcp|udp
    python3 -c "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_STREAM if sys.argv[1]=='tcp' else socket.SOCK_DGRAM); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])" "$1"
}

qemu_for() {
    case $1 in
        aarch64-*) echo qemu-aarch64-static ;;
        armv7-*|arm-*) echo qemu-arm-static ;;
        *) echo "no qemu for $1" >&2; return 1 ;;
    esac
}

arch_word() {
    case $1 in
        aarch64-*) echo "ARM aarch64" ;;
        *) echo "32-bit LSB executable, ARM" ;;
    esac
}

cat >"$tmp/bad.toml" <<'TOML'
[server]
listen = "0.0.0.0:8080"
max_viewer = 3
TOML

e2e() { # $1 = target, $2 = qemu, $3 = binary
    local t=$1 qemu=$2 bin=$3 udp http cfg log
    udp=$(free_port udp)
    http=$(free_port tcp)
    cfg=$tmp/$t.toml
    log=$tmp/$t.log
    cat >"$cfg" <<TOML
[source]
url = "udp://127.0.0.1:$udp"

[encoder]
preset = "ultrafast"

[[ladder]]
width = 320
height = 180
fps = 15
bitrate_kbps = 300

[server]
listen = "127.0.0.1:$http"
TOML
    # A notify socket, as systemd gives: the emulated daemon must send READY=1
    # and WATCHDOG=1 through it (the listener keeps the first 3 s of datagrams).
    rm -f "$tmp/notify.sock" "$tmp/notify.txt"
    python3 - "$tmp/notify.sock" "$tmp/notify.txt" "$START_TIMEOUT" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(0.5)
out, end = [], time.time() + float(sys.argv[3])
while time.time() < end:
    try:
        msg = s.recv(4096).decode()
    except socket.timeout:
        continue
    out.append(msg.replace("\n", " | "))
    if msg.startswith("READY=1"):
        end = time.time() + 3
open(sys.argv[2], "w").write("\n".join(out) + "\n")
PY
    listener=$!
    local n=0
    while [ ! -S "$tmp/notify.sock" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
    NOTIFY_SOCKET=$tmp/notify.sock WATCHDOG_USEC=1000000 \
        "$qemu" "$bin" demo --config "$cfg" --size 320x180 --fps 15 2>"$log" &
    daemon_pid=$!
    local waited=0
    until curl -fs --max-time 2 "http://127.0.0.1:$http/healthz" >/dev/null; do
        sleep 1
        waited=$((waited + 1))
        if ! kill -0 "$daemon_pid" 2>/dev/null || [ $waited -ge "$START_TIMEOUT" ]; then
            fail "$t: e2e: not healthy after ${waited}s"
            sed 's/^/    /' "$log"
            stop_all
            return
        fi
    done
    pass "$t: e2e: /healthz 200 after ${waited}s under $qemu"
    children=$(pgrep -P "$daemon_pid" | tr '\n' ' ')

    curl -s --max-time 4 -o "$tmp/$t.ts" "http://127.0.0.1:$http/stream.ts"
    # MPEG-TS lists the stream under its program too: take the first line.
    local probe frames
    probe=$(ffprobe -v error -select_streams v:0 -show_entries stream=codec_name,width,height \
        -of csv=p=0 "$tmp/$t.ts" 2>&1 | sed -n '/./{p;q}')
    frames=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames \
        -of csv=p=0 "$tmp/$t.ts" 2>/dev/null | sed -n '/./{p;q}')
    if [ "$probe" = "h264,320,180" ] && [ "${frames:-0}" -gt 15 ]; then
        pass "$t: e2e: viewer got $(stat -c %s "$tmp/$t.ts") bytes in 4 s; ffprobe: $probe, $frames frames decoded"
    else
        fail "$t: e2e: ffprobe said '$probe', ${frames:-0} frames (expected h264,320,180 and > 15 frames)"
    fi

    # The emulated daemon's children are the host's ffmpeg: the demo camera and the encoder.
    local n=0 c
    for c in $children; do
        case $(cat "/proc/$c/comm" 2>/dev/null) in ffmpeg) n=$((n + 1)) ;; esac
    done
    if [ "$n" -ge 2 ]; then
        pass "$t: e2e: supervising $n host ffmpeg processes ($children)"
    else
        fail "$t: e2e: expected 2 ffmpeg children, found '$children'"
    fi

    wait "$listener"
    listener=
    if grep -q "^READY=1" "$tmp/notify.txt" && [ "$(grep -c "WATCHDOG=1" "$tmp/notify.txt")" -ge 4 ]; then
        pass "$t: e2e: sd_notify READY=1 then $(grep -c "WATCHDOG=1" "$tmp/notify.txt") WATCHDOG=1 in 3 s; $(grep -m1 -o "STATUS=source live[^|]*" "$tmp/notify.txt")"
    else
        fail "$t: e2e: notify socket got: $(cat "$tmp/notify.txt")"
    fi

    kill -TERM "$daemon_pid"
    local rc=0
    wait "$daemon_pid" || rc=$?
    daemon_pid=
    if [ "$rc" -eq 0 ]; then
        pass "$t: e2e: exit 0 after SIGTERM"
    else
        fail "$t: e2e: exit $rc after SIGTERM"
        sed 's/^/    /' "$log"
    fi
    local left=
    for c in $children; do
        if [ -e "/proc/$c" ] && [ "$(cut -d' ' -f3 "/proc/$c/stat" 2>/dev/null)" != Z ]; then
            left="$left $c"
        fi
    done
    left="$left $(pgrep -f "127.0.0.1:$udp" | tr '\n' ' ')"
    if [ -z "${left// /}" ]; then
        pass "$t: e2e: no ffmpeg left"
    else
        fail "$t: e2e: left running:$left"
    fi
    children=
}

for t in $targets; do
    bin=$out/$t/release/livestreamd
    if [ ! -x "$bin" ]; then
        fail "$t: $bin missing (run scripts/build-release.sh first)"
        continue
    fi
    qemu=$(qemu_for "$t") || { fail "$t: no qemu"; continue; }
    desc=$(file -b "$bin")
    case $desc in
        *"$(arch_word "$t")"*"statically linked"*) pass "$t: file: $desc" ;;
        *) fail "$t: file: $desc (expected a static $(arch_word "$t") binary)" ;;
    esac

    # The version, the commit and the target it was built for.
    v=$("$qemu" "$bin" --version 2>&1)
    case $v in
    "livestreamd $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1) (commit "*", $t)")
        pass "$t: --version: $v" ;;
    *) fail "$t: --version: $v (expected the version, a commit and $t)" ;;
    esac

    if "$qemu" "$bin" check-config configs/livestreamd.toml >/dev/null 2>"$tmp/err"; then
        pass "$t: check-config configs/livestreamd.toml: exit 0"
    else
        fail "$t: check-config configs/livestreamd.toml: $(cat "$tmp/err")"
    fi

    rc=0
    "$qemu" "$bin" check-config "$tmp/bad.toml" >/dev/null 2>"$tmp/err" || rc=$?
    if [ "$rc" -eq 2 ] && grep -q "$tmp/bad.toml:3:1: unknown field \`max_viewer\`" "$tmp/err"; then
        pass "$t: check-config bad.toml: exit 2, $(head -c 60 "$tmp/err" | sed "s|$tmp/||")..."
    else
        fail "$t: check-config bad.toml: exit $rc, $(cat "$tmp/err")"
    fi

    e2e "$t" "$qemu" "$bin"
done

summary
