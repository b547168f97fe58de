#!/usr/bin/env bash
# Installs what building, the demo and the tests need on a Debian machine.
# Idempotent: installs only what is missing. Needs root for apt.
#   scripts/install-deps.sh          everything (tests, cross builds, linters)
#   scripts/install-deps.sh demo     only what the demo needs
#   scripts/install-deps.sh image    only what the Debian image build and its
#                                    boot test need (debian-image/, scripts/boot-test.sh)
#   scripts/install-deps.sh bench    the tests' packages and the peers the
#                                    benchmarks compare against (VLC, GStreamer)
set -euo pipefail

what=${1:-all}
apt_packages=(ffmpeg curl)
if [ "$what" = bench ]; then
    # benches/adapt_capacity.rs runs VLC (cvlc, as nobody) and GStreamer
    # (udpsrc ! tsparse ! tcpserversink; tsparse is in -bad) beside livestreamd.
    apt_packages+=(vlc-bin vlc-plugin-base gstreamer1.0-tools
        gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)
    what=all
fi
if [ "$what" = all ]; then
    # libc6-dev-armhf-cross: the static armv7 link (crt1.o, libc.a); only a
    # Recommends of gcc-arm-linux-gnueabihf, so --no-install-recommends drops it.
    # python3-venv: the venv of GoPro's SDK for the camera conformance tests (below).
    apt_packages+=(iproute2 nftables procps file shellcheck systemd python3 python3-venv
        gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
        qemu-user-static dnsmasq-base busybox)
    # cross through podman, with images built from Debian's packages
    # (scripts/test-cross-rs.sh); runc, as crun fails on this kind of host.
    apt_packages+=(podman runc mmdebstrap)
fi
if [ "$what" = all ] || [ "$what" = image ]; then
    # The Debian image (mmdebstrap, arm64 through qemu-user, partitions
    # without loop devices) and its boot test (qemu-system-aarch64, below).
    apt_packages+=(mmdebstrap arch-test qemu-user-static dosfstools mtools fdisk
        e2fsprogs zstd file busybox iproute2 python3 gcc-aarch64-linux-gnu)
    # The release's image forms (scripts/lib/publish-image.sh): .img.xz, .bmap.
    apt_packages+=(xz-utils bmap-tools)
fi

# Another apt may hold the lock for a while: wait for it, never break it.
apt_update() {
    local i
    for i in $(seq 1 30); do
        apt-get update -qq && return 0
        echo "install-deps: apt-get update failed (lock held?), retrying in 10 s ($i/30)" >&2
        sleep 10
    done
    return 1
}
apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
    echo "install-deps: apt-get install ${missing[*]}"
    apt_update
    apt_install "${missing[@]}"
fi

if { [ "$what" = all ] || [ "$what" = image ]; } && ! command -v qemu-system-aarch64 >/dev/null 2>&1; then
    # qemu-system-aarch64 for scripts/boot-test.sh, from the same qemu release
    # as an installed qemu-utils: where that came from bookworm-backports
    # (qemu 10), so must qemu-system-arm and its two qemu-system-* siblings.
    [ "$(id -u)" -eq 0 ] || { echo "install-deps: qemu-system-arm is missing (run as root)" >&2; exit 1; }
    qemu=(qemu-system-arm)
    case $(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null) in
    *bpo*)
        bpo=/etc/apt/sources.list.d/bookworm-backports.sources
        if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
            printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' >"$bpo"
        fi
        qemu=(qemu-system-arm/bookworm-backports qemu-system-common/bookworm-backports qemu-system-data/bookworm-backports)
        ;;
    esac
    echo "install-deps: apt-get install ${qemu[*]}"
    apt_update
    apt_install "${qemu[@]}"
fi
if [ "$what" = all ]; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
if [ "$what" = all ] || [ "$what" = image ]; then
    installed=$(rustup target list --installed)
    for t in aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf; do
        grep -qx "$t" <<<"$installed" || rustup target add "$t"
    done
fi
if [ "$what" = all ]; then
    # The Yocto layer's linter, pinned so that CI is repeatable.
    if ! command -v oelint-adv >/dev/null 2>&1; then
        python3 -m pip install -q --disable-pip-version-check oelint-adv==9.11.2
        if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
    fi
    # The workflows' checker (scripts/lint-workflows.sh): GitHub's workflow
    # schema ships inside it, so it needs no network when it runs.
    if ! command -v check-jsonschema >/dev/null 2>&1; then
        python3 -m pip install -q --disable-pip-version-check check-jsonschema==0.39.0
        if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
    fi
fi
if [ "$what" = all ]; then
    # GoPro's official Python SDK (open-gopro) and goprocam, for tests/gopro_sdk.rs: a venv of
    # Debian's python3 holding exactly tests/gopro/requirements.txt (every package pinned,
    # installed without resolving anything else), made again whenever that file changes.
    venv=${LIVESTREAMD_GOPRO_VENV:-/opt/livestreamd/gopro-sdk-venv}
    req="$(cd "$(dirname "$0")/.." && pwd)/tests/gopro/requirements.txt"
    if ! cmp -s "$req" "$venv/requirements.txt"; then
        echo "install-deps: GoPro SDK venv in $venv"
        rm -rf "$venv"
        mkdir -p "$(dirname "$venv")"
        /usr/bin/python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check --no-deps -r "$req"
        "$venv/bin/pip" check >/dev/null
        cp "$req" "$venv/requirements.txt"
    fi
fi
echo "install-deps: $what ready"
