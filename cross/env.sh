# shellcheck shell=sh
# Source from the repository's root, in the shell (or subshell) that runs
# cross, to build with podman and the locally built images
# (scripts/cross-images.sh) instead of the ghcr.io ones Cross.toml pins:
#
#   ( . cross/env.sh && cross build --release --locked --target armv7-unknown-linux-gnueabihf )
#
# Nothing outside this shell is changed: no file under /etc, no toolchain.

if [ ! -f cross/containers.conf ]; then
    echo "cross/env.sh: source it from the repository's root" >&2
    return 1
fi

# A docker client without a daemon may be on PATH: cross must use podman.
export CROSS_CONTAINER_ENGINE=podman
# runc instead of crun, ulimits this host allows, never a pull (see the file).
CONTAINERS_CONF=$PWD/cross/containers.conf
export CONTAINERS_CONF
# The local images, built from Debian's packages; these win over Cross.toml.
export CROSS_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_IMAGE=localhost/livestreamd-cross/aarch64-unknown-linux-musl:bookworm
export CROSS_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_IMAGE=localhost/livestreamd-cross/armv7-unknown-linux-gnueabihf:bookworm
# cross 0.2.5 otherwise checks the targets through rustup and installs the
# rust-src component even when the target is installed: install the targets
# beforehand (rustup target add), cross only uses them.
export CROSS_CUSTOM_TOOLCHAIN=1
# rustup's proxies must not install a toolchain either.
export RUSTUP_AUTO_INSTALL=0
# cross 0.2.5 misreads current rustup's toolchain list and would update the
# host's toolchain on every run: cross/bin/rustup answers for it.
PATH=$PWD/cross/bin:$PATH
export PATH
