#!/usr/bin/env bash
# Builds the images `cross` runs in, here, from Debian bookworm's packages:
#   localhost/livestreamd-cross/bookworm:minbase     mmdebstrap --variant=minbase, imported
#   localhost/livestreamd-cross/<triple>:bookworm    cross/<triple>.Containerfile on top of it
# No container registry is asked for anything: the base comes from Debian's
# mirror, podman builds with --pull=never and cross/containers.conf forbids
# pulls. An image is kept while its recipe (its Containerfile and the base it
# was built on) is unchanged; --rebuild builds everything again.
#
#   scripts/cross-images.sh [--rebuild] [TARGET...]
#   ( . cross/env.sh && cross build --release --locked --target TARGET )
#
# Needs root (rootful podman, mmdebstrap's root mode), Debian's mirror, and
# apt-get install podman runc mmdebstrap.
set -euo pipefail
cd "$(dirname "$0")/.."
CONTAINERS_CONF=$PWD/cross/containers.conf
export CONTAINERS_CONF

rebuild=0
if [ "${1:-}" = --rebuild ]; then
    rebuild=1
    shift
fi
targets=${*:-aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf}
base=localhost/livestreamd-cross/bookworm:minbase
tmp=$(mktemp -d "${TMPDIR:-/tmp}/livestreamd-cross-images.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

image_id() { podman image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

# Runs "$@" with its output in a log, shown only when it fails.
logged() {
    local log=$tmp/log
    if ! "$@" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "cross-images: failed: $*" >&2
        exit 1
    fi
}

if [ "$rebuild" = 1 ] || [ -z "$(image_id "$base")" ]; then
    echo "== mmdebstrap --variant=minbase bookworm, podman import as $base"
    old=$(image_id "$base")
    SECONDS=0
    logged mmdebstrap --variant=minbase bookworm "$tmp/base.tar"
    logged podman import --change 'CMD ["/bin/bash"]' "$tmp/base.tar" "$base"
    rm -f "$tmp/base.tar"
    if [ -n "$old" ] && [ "$old" != "$(image_id "$base")" ]; then
        podman rmi "$old" >/dev/null 2>&1 || true
    fi
    echo "   ${SECONDS}s"
fi
base_id=$(image_id "$base")

for t in $targets; do
    file=cross/$t.Containerfile
    if [ ! -f "$file" ]; then
        echo "cross-images: no $file" >&2
        exit 1
    fi
    image=localhost/livestreamd-cross/$t:bookworm
    recipe=$( (cat "$file"; echo "$base_id") | sha256sum | cut -c1-16)
    have=$(podman image inspect --format '{{ index .Labels "livestreamd.recipe" }}' "$image" 2>/dev/null || true)
    if [ "$rebuild" = 0 ] && [ "$have" = "$recipe" ]; then
        echo "== $image: up to date (recipe $recipe)"
        continue
    fi
    echo "== podman build -f $file -t $image"
    old=$(image_id "$image")
    SECONDS=0
    # Host networking: apt-get in the build reaches Debian's mirror without a
    # container network (no bridge, no iptables rules).
    logged podman build --pull=never --network=host --build-arg "BASE=$base" \
        --label "livestreamd.recipe=$recipe" -f "$file" -t "$image" cross
    if [ -n "$old" ] && [ "$old" != "$(image_id "$image")" ]; then
        podman rmi "$old" >/dev/null 2>&1 || true
    fi
    echo "   ${SECONDS}s, $(podman image inspect --format '{{.Size}}' "$image" | numfmt --to=si)B"
done
