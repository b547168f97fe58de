#!/bin/sh
# Post-build script for the livestreamd Buildroot images.
#
# Called by Buildroot with the target directory as $1 (also $TARGET_DIR),
# after the raspberrypi board's own post-build script. It mounts the FAT boot
# partition (the first partition of the SD card) at /boot, where the user
# edits livestreamd.toml and livestream-network.txt: read-only, like the
# root file system (BR2_TARGET_GENERIC_REMOUNT_ROOTFS_RW is off; /var is a
# tmpfs filled from Buildroot's factory), so that a pulled plug finds both
# consistent. livestream-bootfs makes it read-write for the moment of a
# write; fsck.fat (passno 2, dosfstools) repairs what a cut left, at boot,
# before it is mounted.

set -eu

TARGET="${1:-${TARGET_DIR:-}}"
if [ -z "$TARGET" ] || [ ! -d "$TARGET" ]; then
	echo "post-build.sh: usage: post-build.sh TARGET_DIR" >&2
	exit 1
fi

BOOT_LINE='/dev/mmcblk0p1	/boot	vfat	ro,nofail,noatime,umask=0022	0	2'

mkdir -p "$TARGET/boot"
touch "$TARGET/etc/fstab"
if ! grep -Eq '^[^#[:space:]]+[[:space:]]+/boot[[:space:]]' "$TARGET/etc/fstab"; then
	printf '%s\n' "$BOOT_LINE" >>"$TARGET/etc/fstab"
fi
