#!/bin/sh
# Builds the static release binaries for the Pi with Debian's cross linkers
# (see .cargo/config.toml) and prints each one's size and `file` output.
#
#   scripts/build-release.sh                  # both targets
#   scripts/build-release.sh aarch64-unknown-linux-musl
#
# Needs: rustup target add aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf
#        apt-get install gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf file
# The release profile (Cargo.toml) strips symbols, so the binaries are stripped.
# Set CARGO_TARGET_DIR to build elsewhere; the binaries are at
# ${CARGO_TARGET_DIR:-target}/<triple>/release/livestreamd.
set -eu

cd "$(dirname "$0")/.."
targets=${*:-aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf}
out=${CARGO_TARGET_DIR:-target}

for t in $targets; do
    echo "== cargo build --release --locked --target $t"
    cargo build --release --locked --target "$t"
done

echo
printf '%-34s %10s  %s\n' target bytes file
for t in $targets; do
    bin=$out/$t/release/livestreamd
    size=$(stat -c %s "$bin")
    printf '%-34s %10s  %s\n' "$t" "$size" "$(file -b "$bin")"
    case $(file -b "$bin") in
        *"statically linked"*|*"static-pie linked"*) ;;
        *) echo "error: $bin is not statically linked" >&2; exit 1 ;;
    esac
done
