#!/bin/sh
# build-image.sh: build a livestreamd SD card image with Buildroot or kas/Yocto.
#
#   scripts/build-image.sh buildroot BOARD [--buildroot DIR] [--output DIR] [--local] [--dry-run]
#   scripts/build-image.sh yocto MACHINE [--local] [--dry-run]
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
# --local builds the daemon from this working tree instead of the v0.1.0
# release (Buildroot: LIVESTREAMD_OVERRIDE_SRCDIR in OUTPUT/local.mk;
# Yocto: externalsrc, see yocto/kas/local-source.yml).
# Every command is printed before it runs; --dry-run only prints them.

set -eu

REPO=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
DRY_RUN=0
LOCAL=0
BUILDROOT=${BUILDROOT_DIR:-}
OUTPUT=''

usage() {
	sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
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
	--local) LOCAL=1 ;;
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
	if [ "$LOCAL" = 1 ]; then
		echo "+ echo 'LIVESTREAMD_OVERRIDE_SRCDIR = $REPO' > $OUTPUT/local.mk"
		if [ "$DRY_RUN" = 0 ]; then
			echo "LIVESTREAMD_OVERRIDE_SRCDIR = $REPO" >"$OUTPUT/local.mk"
		fi
		echo "build-image.sh: an overridden source is not vendored by Buildroot; fetching crates into its cargo home"
		run env CARGO_HOME="$BUILDROOT/dl/br-cargo-home" cargo fetch --locked --manifest-path "$REPO/Cargo.toml"
	fi
	run make -C "$BUILDROOT" O="$OUTPUT" BR2_EXTERNAL="$REPO/buildroot" "livestreamd_${TARGET}_defconfig"
	run make -C "$BUILDROOT" O="$OUTPUT"
	echo "build-image.sh: image: $OUTPUT/images/sdcard.img"
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
	if [ "$LOCAL" = 1 ]; then
		KAS_FILE="$KAS_FILE:$REPO/yocto/kas/local-source.yml"
		export LIVESTREAMD_SRC="$REPO"
		echo "+ export LIVESTREAMD_SRC=$REPO"
	fi
	if [ "$DRY_RUN" = 0 ] && ! command -v kas >/dev/null 2>&1; then
		echo "build-image.sh: kas is not installed (pip install kas)" >&2
		exit 2
	fi
	run kas build "$KAS_FILE"
	echo "build-image.sh: image: build/tmp/deploy/images/$TARGET/livestream-image-$TARGET*.wic.bz2"
	;;
*)
	usage >&2
	exit 2
	;;
esac
