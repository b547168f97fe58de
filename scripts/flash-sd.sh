#!/bin/sh
# flash-sd.sh: write a livestreamd image to an SD card, carefully.
#
#   scripts/flash-sd.sh [--dry-run] [--yes] IMAGE DEVICE
#
# IMAGE is sdcard.img (Buildroot), *.wic (Yocto) or
# livestream-debian-rpi-arm64.img.zst (Debian), optionally compressed
# (.gz, .bz2, .xz, .zst). DEVICE is the whole card, e.g. /dev/sdb or
# /dev/mmcblk0, never a partition.
#
# It refuses to write to:
#   - anything that is not a block device,
#   - a partition instead of a whole disk,
#   - a disk the kernel does not report as removable (internal disks, loop
#     devices, NVMe, ...), except an SD card in a built-in card slot,
#   - a disk with any mounted or swap-enabled partition,
# and asks you to type the device name before writing (--yes skips the
# question; without a terminal and without --yes it refuses).
#
# Test hooks (for tests/image/run.sh only): LIVESTREAM_FLASH_SYSFS replaces
# /sys, LIVESTREAM_FLASH_MOUNTS and LIVESTREAM_FLASH_SWAPS replace
# /proc/self/mounts and /proc/swaps, LIVESTREAM_FLASH_ALLOW_FILE=1 accepts a
# regular file as DEVICE (its checks then come from the fake sysfs).

set -eu

PROG=flash-sd.sh
SYSFS=${LIVESTREAM_FLASH_SYSFS:-/sys}
MOUNTS=${LIVESTREAM_FLASH_MOUNTS:-/proc/self/mounts}
SWAPS=${LIVESTREAM_FLASH_SWAPS:-/proc/swaps}
ALLOW_FILE=${LIVESTREAM_FLASH_ALLOW_FILE:-0}

DRY_RUN=0
ASSUME_YES=0

usage() {
	cat <<'EOF'
Usage: scripts/flash-sd.sh [--dry-run] [--yes] IMAGE DEVICE

  IMAGE    sdcard.img / *.wic / *.img, optionally .gz .bz2 .xz .zst compressed
  DEVICE   the whole SD card, e.g. /dev/sdb or /dev/mmcblk0
  --dry-run  check everything and print the write command, write nothing
  --yes      do not ask for confirmation (the safety checks still apply)

List candidate cards with: lsblk -d -o NAME,SIZE,RM,TRAN,MODEL
EOF
}

refuse() {
	printf '%s: refusing: %s\n' "$PROG" "$*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case $1 in
	--dry-run) DRY_RUN=1 ;;
	--yes | -y) ASSUME_YES=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	--)
		shift
		break
		;;
	-*)
		usage >&2
		exit 2
		;;
	*) break ;;
	esac
	shift
done
[ $# -eq 2 ] || {
	usage >&2
	exit 2
}
IMAGE=$1
DEVICE=$2

if [ ! -f "$IMAGE" ] || [ ! -r "$IMAGE" ]; then
	refuse "image $IMAGE does not exist or is not readable"
fi

case $IMAGE in
*.gz) DECOMPRESS="gzip -dc" ;;
*.bz2) DECOMPRESS="bzip2 -dc" ;;
*.xz) DECOMPRESS="xz -dc" ;;
*.zst) DECOMPRESS="zstd -dc" ;;
*) DECOMPRESS="" ;;
esac

if [ -b "$DEVICE" ]; then
	:
elif [ "$ALLOW_FILE" = 1 ] && [ -f "$DEVICE" ]; then
	:
else
	refuse "$DEVICE is not a block device"
fi

# Resolve symlinks such as /dev/disk/by-id/... to the kernel name.
REAL=$(readlink -f "$DEVICE")
NAME=${REAL##*/}
BLOCK="$SYSFS/class/block/$NAME"
[ -d "$BLOCK" ] || refuse "no $BLOCK; is $DEVICE a disk?"

if [ -e "$BLOCK/partition" ]; then
	refuse "$DEVICE is a partition; give the whole card (for example /dev/sdb, not /dev/sdb1)"
fi

removable=$(cat "$BLOCK/removable" 2>/dev/null || echo 0)
sd_slot=0
case $NAME in
mmcblk*)
	if [ "$(cat "$BLOCK/device/type" 2>/dev/null || true)" = SD ]; then
		sd_slot=1
	fi
	;;
esac
if [ "$removable" != 1 ] && [ "$sd_slot" != 1 ]; then
	refuse "$DEVICE is not a removable disk (removable=$removable); this script only writes SD cards and USB card readers"
fi

# Mounted or swapping: the disk itself or any partition on it.
parts="$NAME"
for p in "$BLOCK"/"$NAME"*; do
	[ -e "$p/partition" ] && parts="$parts ${p##*/}"
done
for part in $parts; do
	if awk -v d="/dev/$part" '$1 == d { found = 1 } END { exit !found }' "$MOUNTS" 2>/dev/null; then
		where=$(awk -v d="/dev/$part" '$1 == d { print $2; exit }' "$MOUNTS")
		refuse "/dev/$part is mounted on $where; unmount it first (umount /dev/$part)"
	fi
	if awk -v d="/dev/$part" 'NR > 1 && $1 == d { found = 1 } END { exit !found }' "$SWAPS" 2>/dev/null; then
		refuse "/dev/$part is in use as swap"
	fi
done

size_sectors=$(cat "$BLOCK/size" 2>/dev/null || echo 0)
size_mb=$((size_sectors / 2048))
model=$(cat "$BLOCK/device/model" 2>/dev/null || echo unknown)
model=$(printf '%s' "$model" | tr -s ' ')
[ "$size_sectors" -gt 0 ] || refuse "$DEVICE has size 0; is a card inserted?"

if [ -n "$DECOMPRESS" ]; then
	WRITE_CMD="$DECOMPRESS '$IMAGE' | dd of='$REAL' bs=4M conv=fsync"
else
	WRITE_CMD="dd if='$IMAGE' of='$REAL' bs=4M conv=fsync"
fi

echo "$PROG: image:  $IMAGE"
echo "$PROG: target: $REAL ($model, ${size_mb} MiB, removable)"
echo "$PROG: command: $WRITE_CMD"

if [ "$DRY_RUN" = 1 ]; then
	echo "$PROG: dry run, nothing written"
	exit 0
fi

if [ "$ASSUME_YES" != 1 ]; then
	if [ ! -t 0 ] && [ "${LIVESTREAM_FLASH_ASK_STDIN:-0}" != 1 ]; then
		refuse "no terminal to ask for confirmation; use --yes if you are sure"
	fi
	printf '%s: ALL DATA ON %s WILL BE LOST. Type %s to continue: ' "$PROG" "$REAL" "$NAME"
	answer=''
	read -r answer || true
	if [ "$answer" != "$NAME" ]; then
		echo "$PROG: not confirmed, nothing written" >&2
		exit 1
	fi
fi

if [ -n "$DECOMPRESS" ]; then
	$DECOMPRESS "$IMAGE" | dd of="$REAL" bs=4M conv=fsync
else
	dd if="$IMAGE" of="$REAL" bs=4M conv=fsync
fi
sync
echo "$PROG: done; you can remove the card"
