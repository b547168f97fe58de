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

# Panic messages name the source files of the dependencies, which live in
# cargo's home. They are remapped to the paths a `cross build` sees (cross
# mounts cargo's home at /cargo, the project at /project, the target dir at
# /target), so the binaries' bytes do not depend on where cargo's home is and
# match a `cross build` with the same linker (scripts/test-cross-rs.sh checks).
cargo_home=$(cd "${CARGO_HOME:-$HOME/.cargo}" && pwd)
mkdir -p "$out"
remap="\"--remap-path-prefix=$cargo_home=/cargo\", \"--remap-path-prefix=$PWD=/project\", \"--remap-path-prefix=$(cd "$out" && pwd)=/target\""

for t in $targets; do
    echo "== cargo build --release --locked --target $t (paths remapped: $cargo_home -> /cargo)"
    # --config adds to the rustflags in .cargo/config.toml (+crt-static).
    cargo build --release --locked --target "$t" --config "target.$t.rustflags = [$remap]"
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
