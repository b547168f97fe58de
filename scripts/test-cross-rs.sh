#!/usr/bin/env bash
# The `cross build` docs/CROSS_AND_SYSTEMD.md tells users to run, run here for both targets:
# cross 0.2.5 from crates.io, podman, and images built here from Debian's
# packages, so that no container registry is needed (or asked).
#
#   1. installs what it needs: Debian packages and rustup targets
#      (scripts/install-deps.sh), cross 0.2.5 into $CROSS_ROOT (a folder of its
#      own; ~/.cargo/bin is not touched), the images (scripts/cross-images.sh);
#   2. with cross/env.sh sourced, runs those commands
#        cross build --release --locked --target aarch64-unknown-linux-musl
#        cross build --release --locked --target armv7-unknown-linux-gnueabihf
#      into target/cross-rs (scripts/build-release.sh's binaries stay apart);
#   3. checks each binary was linked in its container, runs it under qemu-user
#      (scripts/test-cross.sh), and compares it with scripts/build-release.sh's:
#      the same size is required, identical bytes are reported;
#   4. cross test --locked --lib --features qemu-user on both targets;
#   5. checks that the host's Rust toolchains are exactly as they were.
# Ends with `N passed, M failed`; exits non-zero on any failure.
#
#   scripts/test-cross-rs.sh [TARGET...]
#
# Run as root (rootful podman). From nothing (cross compiled, the images
# built, every crate compiled twice for each target) it needs about 6 minutes
# of CPU time on 2 cores; measured here 8-10 minutes while other builds loaded
# the machine (load average 6-7); with cross and the images in place, 30 s when
# nothing needs compiling, about 2 minutes after a change to the sources.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf)
CROSS_VERSION=0.2.5
CROSS_ROOT=${CROSS_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/livestreamd/cross-$CROSS_VERSION}
release_dir=$(realpath -m "${CARGO_TARGET_DIR:-target}")
cross_dir=$(realpath -m "${CARGO_TARGET_DIR:-target}/cross-rs")

# shellcheck source=scripts/lib/checks.sh
. scripts/lib/checks.sh
tmp=$(mktemp -d "${TMPDIR:-/tmp}/livestreamd-cross-rs.XXXXXX")
cross_pid=
# An interrupted run leaves no `cargo install` behind.
trap 'if [ -n "$cross_pid" ]; then pkill -P "$cross_pid"; kill "$cross_pid"; fi 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
started=$SECONDS

# Runs a step with its output in $tmp/NAME.log: one line with its time when it
# works, the log's tail when it does not. $1 = NAME, the rest = the command.
step() {
    local name=$1 t0=$SECONDS rc=0
    shift
    "$@" >"$tmp/$name.log" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "     $name: $((SECONDS - t0)) s"
    else
        echo "     $name: exit $rc after $((SECONDS - t0)) s; last lines of its output:"
        tail -n 30 "$tmp/$name.log" | sed 's/^/     | /'
    fi
    return "$rc"
}

# What a cross run must not change: the toolchains, their components and
# channel manifests (a `rustup toolchain add` over an installed channel
# updates it), the default toolchain's rustc.
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
toolchain_state() {
    rustup toolchain list
    rustup target list --installed
    rustc -Vv
    cargo -V
    sha256sum "$rustup_home"/toolchains/*/lib/rustlib/components \
        "$rustup_home"/toolchains/*/lib/rustlib/multirust-channel-manifest.toml 2>/dev/null
}

echo "== install: Debian packages and rustup targets, cross $CROSS_VERSION, images"
if ! step install-deps scripts/install-deps.sh all; then
    echo "error: scripts/install-deps.sh failed" >&2
    exit 1
fi
toolchain_state >"$tmp/toolchain.before"
# Containers of our images that were not there before this run (one left by an
# earlier, interrupted run is not this run's fault): ID, image, status, command.
our_containers() {
    podman ps -a --no-trunc --format '{{.ID}} {{.Image}} {{.Status}} {{.Command}}' 2>/dev/null |
        grep ' localhost/livestreamd-cross/' || true
}
our_containers | cut -d' ' -f1 >"$tmp/containers.before"
new_containers() { our_containers | grep -v -F -f "$tmp/containers.before" || true; }
# cross compiles for a minute while the images are built from the mirror.
# (Not `cross --version` to see whether it is there: without cross/env.sh,
# cross 0.2.5 would try to update the host's toolchain even for that.)
if cargo install --list --root "$CROSS_ROOT" 2>/dev/null | grep -q "^cross v$CROSS_VERSION:"; then
    echo "     cross $CROSS_VERSION: already in $CROSS_ROOT"
else
    # --debug: the same cross, compiled with half the CPU (35 s instead of 85 s);
    # it only starts containers, its own speed does not matter.
    step cargo-install-cross cargo install --locked --debug cross --version "=$CROSS_VERSION" \
        --root "$CROSS_ROOT" &
    cross_pid=$!
fi
images_ok=1
step cross-images scripts/cross-images.sh "${targets[@]}" || images_ok=0
if [ -n "$cross_pid" ]; then
    rc=0
    wait "$cross_pid" || rc=$?
    cross_pid=
    if [ "$rc" -ne 0 ]; then
        echo "error: cargo install cross failed" >&2
        exit 1
    fi
fi
if [ "$images_ok" = 0 ]; then
    echo "error: scripts/cross-images.sh failed" >&2
    exit 1
fi
pass "install: cross $CROSS_VERSION and the images ready in $((SECONDS - started)) s"

echo "== scripts/build-release.sh (the binaries to compare with)"
check "build-release.sh" step build-release scripts/build-release.sh "${targets[@]}"

# The containers have no network (cross/containers.conf): cargo there takes
# every crate, dev-dependencies too, from the host's cargo home.
check "cargo fetch --locked" step cargo-fetch cargo fetch --locked

# docs/CROSS_AND_SYSTEMD.md's commands, in the environment cross/env.sh describes.
host_path=$PATH
# shellcheck source=cross/env.sh
. cross/env.sh
PATH=$CROSS_ROOT/bin:$PATH
export CARGO_TARGET_DIR=$cross_dir

for t in "${targets[@]}"; do
    echo "== cross build --release --locked --target $t"
    check "$t: cross build" step "cross-build-$t" cross build --release --locked --target "$t"
    bin=$cross_dir/$t/release/livestreamd
    # cargo inside the container writes its dep-info with the container's
    # paths: proof that cross did not fall back to the host's cargo.
    check "$t: linked in its container (dep-info names /project/src/main.rs)" \
        grep -q "^/target/$t/release/livestreamd: .*/project/src/main.rs" "$bin.d"
    ref=$release_dir/$t/release/livestreamd
    if [ -f "$bin" ] && [ -f "$ref" ]; then
        a=$(stat -c %s "$bin")
        b=$(stat -c %s "$ref")
        if cmp -s "$bin" "$ref"; then
            same="identical bytes"
        else
            same="$(cmp -l "$bin" "$ref" | wc -l) bytes differ"
        fi
        check "$t: $a bytes from cross, $b from build-release.sh ($same)" test "$a" = "$b"
    else
        check "$t: both binaries exist" false
    fi
done

echo "== scripts/test-cross.sh on the cross binaries (qemu-user)"
check "test-cross.sh on cross's binaries" step test-cross scripts/test-cross.sh "${targets[@]}"
grep -E '^(ok|FAIL) ' "$tmp/test-cross.log" | sed 's/^/     /'

for t in "${targets[@]}"; do
    echo "== cross test --locked --lib --features qemu-user --target $t"
    rc=0
    step "cross-test-$t" cross test --locked --lib --features qemu-user --target "$t" || rc=$?
    result=$(grep -m1 '^test result:' "$tmp/cross-test-$t.log")
    if [ "$rc" -eq 0 ] && [ -n "$result" ]; then
        pass "$t: cross test: $result"
    else
        fail "$t: cross test: exit $rc, ${result:-no test result}"
    fi
    grep -E '^test .* \.\.\. ignored' "$tmp/cross-test-$t.log" | sed 's/^/     /'
done

echo "== after"
# cross runs its containers with `podman run --rm`, and podman removes an exited
# one in a cleanup process of its own, which may finish after `run` returns (or,
# on a loaded machine, fail): allow it 30 s. A container still running is a
# failure; one that exited and was not removed is podman's, said and removed.
leftover=
for _ in $(seq 30); do
    leftover=$(new_containers)
    [ -z "$leftover" ] && break
    sleep 1
done
running=$(echo "$leftover" | grep -v -E '^[^ ]+ [^ ]+ (Exited|Created)' || true)
check "no container of cross still running${running:+: $(echo "$running" | tr '\n' ';')}" test -z "$running"
if [ -n "$leftover" ]; then
    echo "     podman had not removed these 30 s after they ended (removing them now):"
    while read -r line; do echo "     | $line"; done <<<"$leftover"
    for id in $(echo "$leftover" | cut -d' ' -f1); do podman rm -f "$id" >/dev/null 2>&1; done
fi
(PATH=$host_path && toolchain_state) >"$tmp/toolchain.after" 2>&1
check "host toolchains unchanged ($(rustc -V))" diff "$tmp/toolchain.before" "$tmp/toolchain.after"
echo "     $((SECONDS - started)) s in all"
summary
