#!/usr/bin/env bash
# flash-sd.sh: write a livestreamd image to an SD card, carefully.
#
#   scripts/flash-sd.sh [--dry-run] [--yes] IMAGE DEVICE
#
# IMAGE is sdcard.img (Buildroot), *.wic (Yocto) or
# livestream-debian-rpi-arm64.img.xz / .img.zst (Debian), optionally compressed
# (.gz, .bz2, .xz, .zst). DEVICE is the whole card, e.g. /dev/sdb or
# /dev/mmcblk0, never a partition.
#
# Before writing: IMAGE.sha256 (written beside every image the build makes,
# and published with each release), when present, must match, and a
# compressed image must decompress whole, so a truncated or damaged download
# never reaches the card. After writing: the card is read back (bypassing the
# page cache) and compared with what was written; any difference is an error.
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

set -euo pipefail

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

IMAGE.sha256, when present, is checked before anything is written, and the
card is read back and compared afterwards.

List candidate cards with: lsblk -d -o NAME,SIZE,RM,TRAN,MODEL
EOF
}

refuse() {
	printf '%s: refusing: %s\n' "$PROG" "$*" >&2
	exit 1
}

# A failure once writing has begun: the card is not usable.
refuse_after() {
	printf '%s: FAILED: %s\n' "$PROG" "$*" >&2
	printf '%s: the card is not usable as it is; write it again\n' "$PROG" >&2
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
tmp=$(mktemp -d "${TMPDIR:-/tmp}/flash-sd.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

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

# The image itself, before anything is written.
if [ -f "$IMAGE.sha256" ]; then
	want=$(awk '{ print $1; exit }' "$IMAGE.sha256")
	have=$(sha256sum "$IMAGE" | cut -d' ' -f1)
	[ "$want" = "$have" ] ||
		refuse "$IMAGE does not match $IMAGE.sha256 (a truncated or damaged download?): expected $want, got $have"
	CHECKSUM="matches $IMAGE.sha256"
else
	CHECKSUM="no $IMAGE.sha256 beside it: not checked"
fi
if [ -n "$DECOMPRESS" ]; then
	# Decompressing to nowhere reads it whole: a truncated file fails here.
	raw_bytes=$($DECOMPRESS "$IMAGE" 2>"$tmp/decompress.err" | wc -c) ||
		refuse "$IMAGE does not decompress whole ($(tr '\n' ' ' <"$tmp/decompress.err"))"
else
	raw_bytes=$(stat -c %s "$IMAGE")
fi
[ "$raw_bytes" -le $((size_sectors * 512)) ] ||
	refuse "the image ($((raw_bytes / 1048576)) MiB) is larger than $DEVICE (${size_mb} MiB)"

echo "$PROG: image:  $IMAGE"
echo "$PROG: checksum: $CHECKSUM"
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

# The write, and what went to the card: its SHA-256 and its length.
source_stream() {
	if [ -n "$DECOMPRESS" ]; then $DECOMPRESS "$IMAGE"; else cat "$IMAGE"; fi
}
echo "$PROG: writing..."
source_stream | tee >(sha256sum >"$tmp/written.sha256") |
	dd of="$REAL" bs=4M iflag=fullblock conv=fsync 2>"$tmp/dd.log" ||
	refuse_after "writing failed: $(tail -n 2 "$tmp/dd.log" | tr '\n' ' ')"
sync
# tee's process substitution may still be writing its sum.
for _ in $(seq 50); do [ -s "$tmp/written.sha256" ] && break; sleep 0.1; done
written=$(sed -n 's/^\([0-9][0-9]*\) bytes.*/\1/p' "$tmp/dd.log")
[ -n "$written" ] || refuse_after "dd did not say how much it wrote: $(cat "$tmp/dd.log")"

echo "$PROG: reading the card back to compare ($written bytes)..."
# O_DIRECT reads the card, not the page cache; a regular file (the test
# hook) may live where O_DIRECT is not supported.
direct=,direct
[ -b "$REAL" ] || direct=
# Drop the device's cached pages as well where O_DIRECT alone may not.
if [ -b "$REAL" ]; then blockdev --flushbufs "$REAL" 2>/dev/null || true; fi
dd if="$REAL" bs=4M iflag=count_bytes,fullblock$direct count="$written" status=none |
	sha256sum >"$tmp/read.sha256" ||
	refuse_after "cannot read the card back"
if [ "$(cut -d' ' -f1 "$tmp/written.sha256")" != "$(cut -d' ' -f1 "$tmp/read.sha256")" ]; then
	refuse_after "the card does not hold what was written (read back $(cut -c1-16 "$tmp/read.sha256"), wrote $(cut -c1-16 "$tmp/written.sha256")): a failing card or reader; try another"
fi
echo "$PROG: verified: the card holds the image (sha256 $(cut -c1-16 "$tmp/written.sha256")…)"
echo "$PROG: done; you can remove the card"
