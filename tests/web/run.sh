#!/usr/bin/env bash
# The browser tests: the phone's page in three engines, none of them downloaded:
#   chromium  Debian's chromium, driven by playwright-core
#   firefox   Debian's firefox-esr, driven by puppeteer-core over WebDriver BiDi
#   webkit    Debian's WebKitGTK (MiniBrowser) through webkit2gtk-driver, on Xvfb
# Installs what is missing (Debian packages, the npm lock file), builds the
# daemon, runs node's test runner one engine at a time, and prints what each
# engine verified and what it cannot do here.
#   bash tests/web/run.sh [ENGINE...]              (as root for apt; ffmpeg must be installed)
#   bash tests/web/run.sh bench [SECONDS] [ENGINE...]   lag behind live per engine, into benches/RESULTS.md
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

mode="test"
if [ "${1:-}" = bench ]; then
    mode=bench
    shift
    seconds=60
    if [[ "${1:-}" =~ ^[0-9]+$ ]]; then seconds=$1; shift; fi
fi
engines=("$@")
[ ${#engines[@]} -gt 0 ] || engines=(chromium firefox webkit)
for e in "${engines[@]}"; do
    case "$e" in chromium | firefox | webkit) ;; *) echo "tests/web: unknown engine $e" >&2; exit 2 ;; esac
done

# Debian packages: the browsers, the WebKit driver and a virtual display, the
# GStreamer plugins WebKitGTK decodes H.264 with (avdec_h264, h264parse), fonts,
# zbarimg (reads the page's QR codes back).
packages=(chromium firefox-esr webkit2gtk-driver xvfb gstreamer1.0-libav gstreamer1.0-plugins-bad
    gstreamer1.0-gl libgl1-mesa-dri fonts-dejavu-core zbar-tools)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "tests/web: missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})" >&2
        exit 1
    fi
    echo "tests/web: apt-get install ${missing[*]}"
    # Someone else may hold the dpkg lock: wait for it rather than fail.
    apt_get() { apt-get -o DPkg::Lock::Timeout=600 "$@"; }
    for try in 1 2 3; do
        if apt_get update -qq && DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
            break
        fi
        [ "$try" -lt 3 ] || exit 1
        echo "tests/web: apt-get failed, retrying in 20 s" >&2
        sleep 20
    done
fi
chromium --version 2>/dev/null || true
firefox-esr --version 2>/dev/null || true
echo "WebKitGTK $(dpkg-query -W -f='${Version}' libwebkit2gtk-4.1-0)"
echo "node $(node --version)"

cd "$here"
npm ci --no-audit --no-fund

# Node and everything it starts (daemons, browsers, drivers, Xvfb) run in a
# session of their own, ended as a whole when it is done or this script ends.
pid=
# shellcheck disable=SC2317 # called by in_session and the trap
cleanup() {
    [ -n "$pid" ] || return 0
    kill -TERM -- "-$pid" 2>/dev/null || true
    sleep 1
    kill -KILL -- "-$pid" 2>/dev/null || true
    pid=
}
trap cleanup EXIT
trap 'exit 130' INT TERM
in_session() {
    local rc=0
    setsid "$@" &
    pid=$!
    wait "$pid" || rc=$?
    cleanup
    return "$rc"
}

rc=0
if [ "$mode" = bench ]; then
    (cd "$repo" && cargo build --release --locked)
    LIVESTREAMD_BIN="$repo/target/release/livestreamd" \
        in_session node bench.mjs --seconds "$seconds" --engines "$(IFS=,; echo "${engines[*]}")" || rc=$?
    exit "$rc"
fi

(cd "$repo" && cargo build --locked)
files=()
for e in "${engines[@]}"; do
    files+=("$e.test.mjs")
    rm -f "$repo/artifacts/web-$e.json"
done
start=$SECONDS
in_session node --test --test-concurrency=1 "${files[@]}" || rc=$?
node summary.mjs "${engines[@]}"
echo "tests/web: $((SECONDS - start)) s for ${engines[*]}"
exit "$rc"
