#!/usr/bin/env bash
# publish-image.sh: an SD card image in the forms people's tools take.
#
#   scripts/lib/publish-image.sh IMAGE [OUTDIR]
#
# IMAGE is a raw image (sdcard.img, *.wic) or one compressed with zstd, xz,
# gzip or bzip2. Writes into OUTDIR (default: IMAGE's directory), for NAME =
# IMAGE's name without its compression suffix (…img or …wic):
#   NAME.xz         Raspberry Pi Imager, balenaEtcher, bmaptool, flash-sd.sh
#   NAME.xz.sha256  its checksum (flash-sd.sh checks it; `sha256sum -c`)
#   NAME.bmap       bmaptool's block map: `bmaptool copy NAME.xz /dev/sdX`
#                   writes only the blocks that hold data, and checks them
# The raw image is unpacked sparse into a temporary directory beside OUTDIR
# and removed after. Needs xz, bmaptool (Debian: xz-utils, bmap-tools) and
# the image's decompressor.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
fi
IMAGE=$1
OUT=${2:-$(dirname -- "$IMAGE")}
[ -f "$IMAGE" ] || { echo "publish-image.sh: no image $IMAGE" >&2; exit 1; }
for tool in xz bmaptool sha256sum; do
	command -v "$tool" >/dev/null || { echo "publish-image.sh: $tool is missing (apt-get install xz-utils bmap-tools)" >&2; exit 1; }
done
base=$(basename -- "$IMAGE")
case $base in
*.zst) NAME=${base%.zst} unpack=(zstd -dqc) ;;
*.xz) NAME=${base%.xz} unpack=(xz -dc) ;;
*.gz) NAME=${base%.gz} unpack=(gzip -dc) ;;
*.bz2) NAME=${base%.bz2} unpack=(bzip2 -dc) ;;
*) NAME=$base unpack=(cat) ;;
esac
mkdir -p "$OUT"
tmp=$(mktemp -d "$OUT/.publish.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Sparse: the zeros of the unused card area take no disk, and bmaptool
# tells data from holes by the file's own block map.
"${unpack[@]}" "$IMAGE" | dd of="$tmp/$NAME" bs=64K iflag=fullblock conv=sparse status=none
bmaptool -q create -o "$OUT/$NAME.bmap" "$tmp/$NAME"
xz -T0 -6 -c "$tmp/$NAME" >"$tmp/$NAME.xz"
mv "$tmp/$NAME.xz" "$OUT/$NAME.xz"
(cd "$OUT" && sha256sum "$NAME.xz" >"$NAME.xz.sha256")
echo "publish-image.sh: $OUT/$NAME.xz ($(($(stat -c %s "$OUT/$NAME.xz") / 1000000)) MB), $NAME.xz.sha256, $NAME.bmap"
