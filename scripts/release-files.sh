#!/usr/bin/env bash
# release-files.sh: gathers what a release publishes, with checksums, from
# what the test command built (scripts/build-release.sh, scripts/build-image.sh).
#
#   scripts/release-files.sh OUTDIR TAG [IMAGE]
#
# OUTDIR gets:
#   livestreamd-TAG-aarch64-unknown-linux-musl      static binaries (Pi 3, 4, 5, Zero 2 W)
#   livestreamd-TAG-armv7-unknown-linux-gnueabihf   (32-bit Raspberry Pi OS)
#   livestream-debian-rpi-arm64-TAG.img.xz, .img.xz.sha256, .img.bmap
#                                                    the SD card image (scripts/lib/publish-image.sh)
#   SHA256SUMS                                       every file above
# IMAGE defaults to artifacts/debian-rpi-arm64/livestream-debian-rpi-arm64.img.zst.
# .github/workflows/release.yml runs it after scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
	sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
fi
out=$1
tag=$2
image=${3:-artifacts/debian-rpi-arm64/livestream-debian-rpi-arm64.img.zst}
case $tag in
*/* | '' | .*) echo "release-files.sh: bad tag '$tag'" >&2; exit 2 ;;
esac
target=${CARGO_TARGET_DIR:-target}

mkdir -p "$out"
for t in aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf; do
	bin=$target/$t/release/livestreamd
	[ -x "$bin" ] || { echo "release-files.sh: $bin is missing (scripts/build-release.sh)" >&2; exit 1; }
	cp "$bin" "$out/livestreamd-$tag-$t"
done
[ -f "$image" ] || { echo "release-files.sh: $image is missing (scripts/build-image.sh debian rpi-arm64)" >&2; exit 1; }
# The image under the release's name, then in the forms people's tools take.
name=$(basename -- "$image")
named=$out/${name%%.img*}-$tag.img${name#*.img}
cp "$image" "$named"
scripts/lib/publish-image.sh "$named" "$out"
rm -f "$named"
(cd "$out" && find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort |
	xargs sha256sum >"$PWD/.SHA256SUMS" && mv .SHA256SUMS SHA256SUMS)
echo "release-files.sh: $out:"
(cd "$out" && ls -l)
