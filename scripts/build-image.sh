#!/bin/sh
# build-image.sh: build a livestreamd SD card image from Debian's packages,
# with Buildroot or with kas/Yocto.
#
#   scripts/build-image.sh debian rpi-arm64 [--output DIR] [--publish] [--dry-run]
#   scripts/build-image.sh buildroot BOARD [--buildroot DIR] [--output DIR] [--release] [--publish] [--dry-run]
#   scripts/build-image.sh yocto MACHINE [--release] [--publish] [--dry-run]
#
# Debian: rpi-arm64 (Pi 3, 4, 400, Zero 2 W), see debian-image/mkimage.sh.
#   Needs root and Debian's mirrors; .debs are cached in
#   /var/cache/livestreamd-image. The image is
#   OUTPUT/livestream-debian-rpi-arm64.img.zst (artifacts/debian-rpi-arm64).
#
# Buildroot boards: raspberrypi4_64, raspberrypi3, raspberrypizero2w
#   Needs a Buildroot checkout (2025.02 or newer): --buildroot DIR or
#   $BUILDROOT_DIR. The image is OUTPUT/images/sdcard.img.
# Yocto machines: raspberrypi4-64, raspberrypi3-64, raspberrypi3
#   Needs kas (pip install kas); kas fetches poky/oe-core, meta-openembedded
#   and meta-raspberrypi. The image is
#   build/tmp/deploy/images/MACHINE/livestream-image-MACHINE.rootfs.wic.bz2
#   (scarthgap names it livestream-image-MACHINE.wic.bz2).
#
# Every image is built from this working tree by default (Buildroot:
# LIVESTREAMD_OVERRIDE_SRCDIR in OUTPUT/local.mk; Yocto: externalsrc, see
# yocto/kas/livestream-base.yml), so the release placeholders (the .hash
# lines, SRCREV) do not stop a first build. --release builds the v0.1.0
# release instead (Buildroot: its tarball; Yocto: yocto/kas/release.yml).
# --publish also writes the image as people's tools take it, beside it:
# NAME.xz, NAME.xz.sha256 and NAME.bmap (scripts/lib/publish-image.sh; the
# release workflow uses it).
# Every command is printed before it runs; --dry-run only prints them.

set -eu

REPO=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
DRY_RUN=0
RELEASE=0
PUBLISH=0
BUILDROOT=${BUILDROOT_DIR:-}
OUTPUT=''

usage() {
	sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'
}

run() {
	echo "+ $*"
	if [ "$DRY_RUN" = 0 ]; then
		"$@"
	fi
}

[ $# -ge 2 ] || {
	usage >&2
	exit 2
}
SYSTEM=$1
TARGET=$2
shift 2
while [ $# -gt 0 ]; do
	case $1 in
	--buildroot)
		[ $# -ge 2 ] || { usage >&2; exit 2; }
		BUILDROOT=$2
		shift
		;;
	--output)
		[ $# -ge 2 ] || { usage >&2; exit 2; }
		OUTPUT=$2
		shift
		;;
	--release) RELEASE=1 ;;
	--publish) PUBLISH=1 ;;
	# the default since images build from the working tree; kept for old scripts
	--local) RELEASE=0 ;;
	--dry-run) DRY_RUN=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage >&2
		exit 2
		;;
	esac
	shift
done

case $SYSTEM in
debian)
	case $TARGET in
	rpi-arm64) ;;
	*)
		echo "build-image.sh: unknown Debian image '$TARGET' (rpi-arm64)" >&2
		exit 2
		;;
	esac
	if [ -n "$OUTPUT" ]; then
		run "$REPO/debian-image/mkimage.sh" --output "$OUTPUT"
	else
		run "$REPO/debian-image/mkimage.sh"
	fi
	IMAGE_OUT="${OUTPUT:-$REPO/artifacts/debian-rpi-arm64}/livestream-debian-rpi-arm64.img.zst"
	;;
buildroot)
	case $TARGET in
	raspberrypi4_64 | raspberrypi3 | raspberrypizero2w) ;;
	*)
		echo "build-image.sh: unknown Buildroot board '$TARGET' (raspberrypi4_64, raspberrypi3, raspberrypizero2w)" >&2
		exit 2
		;;
	esac
	if [ -z "$BUILDROOT" ] || [ ! -f "$BUILDROOT/Makefile" ]; then
		echo "build-image.sh: give a Buildroot checkout with --buildroot DIR or BUILDROOT_DIR, e.g." >&2
		echo "  git clone https://gitlab.com/buildroot.org/buildroot.git" >&2
		exit 2
	fi
	OUTPUT=${OUTPUT:-$REPO/artifacts/buildroot-$TARGET}
	run mkdir -p "$OUTPUT"
	if [ "$RELEASE" = 0 ]; then
		# The package fetches the tree's crates itself before building
		# (LIVESTREAMD_FETCH_CRATES in livestreamd.mk).
		echo "+ echo 'LIVESTREAMD_OVERRIDE_SRCDIR = $REPO' > $OUTPUT/local.mk"
		if [ "$DRY_RUN" = 0 ]; then
			echo "LIVESTREAMD_OVERRIDE_SRCDIR = $REPO" >"$OUTPUT/local.mk"
		fi
	else
		run rm -f "$OUTPUT/local.mk"
	fi
	run make -C "$BUILDROOT" O="$OUTPUT" BR2_EXTERNAL="$REPO/buildroot" "livestreamd_${TARGET}_defconfig"
	run make -C "$BUILDROOT" O="$OUTPUT"
	echo "build-image.sh: image: $OUTPUT/images/sdcard.img"
	IMAGE_OUT="$OUTPUT/images/sdcard.img"
	;;
yocto)
	case $TARGET in
	raspberrypi4-64 | raspberrypi3-64 | raspberrypi3) ;;
	*)
		echo "build-image.sh: unknown Yocto machine '$TARGET' (raspberrypi4-64, raspberrypi3-64, raspberrypi3)" >&2
		exit 2
		;;
	esac
	KAS_FILE="$REPO/yocto/kas/livestream-$TARGET.yml"
	if [ "$RELEASE" = 1 ]; then
		KAS_FILE="$KAS_FILE:$REPO/yocto/kas/release.yml"
	fi
	if [ "$DRY_RUN" = 0 ] && ! command -v kas >/dev/null 2>&1; then
		echo "build-image.sh: kas is not installed (pip install kas)" >&2
		exit 2
	fi
	run kas build "$KAS_FILE"
	echo "build-image.sh: image: build/tmp/deploy/images/$TARGET/livestream-image-$TARGET*.wic.bz2"
	IMAGE_OUT=$(find "build/tmp/deploy/images/$TARGET" -maxdepth 1 -name "livestream-image-$TARGET*.wic.bz2" -type f 2>/dev/null | head -n 1)
	;;
*)
	usage >&2
	exit 2
	;;
esac

# The output step: the image as people's tools take it.
if [ "$PUBLISH" = 1 ]; then
	run "$REPO/scripts/lib/publish-image.sh" "${IMAGE_OUT:-the image}"
fi
