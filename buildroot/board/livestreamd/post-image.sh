#!/bin/sh
# Post-image script for the livestreamd Buildroot images.
#
# Copies the editable daemon configuration and the field network settings
# into the files that go onto the FAT boot partition, then hands over to
# Buildroot's own Raspberry Pi post-image script, which builds sdcard.img
# with genimage from everything in $BINARIES_DIR/rpi-firmware.
#
# Buildroot runs post-image scripts from its top directory with
# $BINARIES_DIR and $TARGET_DIR set; extra arguments are passed through.

set -eu

: "${BINARIES_DIR:?post-image.sh: BINARIES_DIR is not set (run it from Buildroot)}"
: "${TARGET_DIR:?post-image.sh: TARGET_DIR is not set (run it from Buildroot)}"

BOOT_STAGING="$BINARIES_DIR/rpi-firmware"
RPI_POST_IMAGE="${LIVESTREAMD_RPI_POST_IMAGE:-board/raspberrypi/post-image.sh}"

mkdir -p "$BOOT_STAGING"
for pair in \
	"etc/livestreamd/livestreamd.toml:livestreamd.toml" \
	"usr/share/livestream-net/livestream-network.txt:livestream-network.txt"; do
	src="$TARGET_DIR/${pair%%:*}"
	dst="$BOOT_STAGING/${pair#*:}"
	if [ ! -f "$src" ]; then
		echo "post-image.sh: $src is missing; is BR2_PACKAGE_LIVESTREAMD enabled and the overlay set?" >&2
		exit 1
	fi
	install -m 0644 "$src" "$dst"
	echo "post-image.sh: boot partition gets ${pair#*:}"
done

exec "$RPI_POST_IMAGE" "$@"
