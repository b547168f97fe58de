#!/usr/bin/env bash
# The test command: installs what is missing, then runs every check and test.
# Run as root: the adaptive-quality tests build network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh all

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --locked --all-targets --all-features -- -D warnings
echo "== cargo test (as root: the network-namespace tests are on)"
cargo test --locked --features netns-tests -- --test-threads="${TEST_THREADS:-2}"

echo "== static aarch64 and armv7 builds, run under qemu-user"
scripts/build-release.sh
scripts/test-cross.sh
echo "== the documented cross build and cross test (docs/CROSS_AND_SYSTEMD.md), through podman with images from Debian's packages"
scripts/test-cross-rs.sh
echo "== systemd unit"
scripts/verify-unit.sh
echo "== GitHub workflows (schema; steps call this repository's scripts)"
scripts/lint-workflows.sh
echo "== README and docs (links, one home per fact)"
scripts/lint-docs.sh
echo "== image recipes, overlay scripts"
scripts/lint-images.sh
echo "== the phone's web page in Chromium, Firefox ESR and WebKitGTK"
bash tests/web/run.sh
echo "== the Debian Raspberry Pi image: built (.debs cached in /var/cache/livestreamd-image), booted under qemu"
scripts/build-image.sh debian rpi-arm64
scripts/boot-test.sh
