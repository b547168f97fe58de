#!/usr/bin/env bash
# Installs what building, the demo and the tests need on a Debian machine.
# Idempotent: installs only what is missing. Needs root for apt.
#   scripts/install-deps.sh          everything (tests, cross builds, linters)
#   scripts/install-deps.sh demo     only what the demo needs
set -euo pipefail

what=${1:-all}
apt_packages=(ffmpeg curl)
if [ "$what" = all ]; then
    apt_packages+=(iproute2 nftables procps file shellcheck systemd python3
        gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf qemu-user-static
        dnsmasq-base busybox)
    # cross through podman, with images built from Debian's packages
    # (scripts/test-cross-rs.sh); runc, as crun fails on this kind of host.
    apt_packages+=(podman runc mmdebstrap)
fi

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
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$what" = all ]; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
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
fi
echo "install-deps: $what ready"
