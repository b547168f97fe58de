#!/bin/bash
# tests/image/growroot.sh: debian-image's livestream-growroot on a loop
# device, run for real (needs root, losetup with partition scanning, sfdisk,
# partx, the kernel's ext4; skipped otherwise).
#
# A 256 MiB "card" with an MBR, a small first partition and a 48 MiB ext4
# second one, mounted read-only as the image mounts its root:
#   - a first run grows the partition to the card's end and the file system
#     to the partition (the file system's own files intact, e2fsck clean),
#     and leaves it mounted read-only;
#   - a second run reads and writes nothing: 0 sectors written to the card;
#   - resumed: a card whose partition was grown but not its file system (a
#     cut between the two steps) gets the file system grown.
# This host's kernel has no MBR partition support (no partitions on a loop
# device): scripts/pull-test.sh runs this inside the booted image, with the
# image's own livestream-growroot (--growroot PATH) and --require (fail
# instead of skipping). Ends with "N passed, M failed, K skipped".
#
#   tests/image/growroot.sh [--growroot PATH] [--require]

set -u

HERE=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
REPO=$(CDPATH='' cd -- "$HERE/../.." && pwd)
GROW="$REPO/debian-image/rootfs/usr/sbin/livestream-growroot"
REQUIRE=0
while [ $# -gt 0 ]; do
	case $1 in
	--growroot)
		GROW=$2
		shift
		;;
	--require) REQUIRE=1 ;;
	*)
		echo "usage: $0 [--growroot PATH] [--require]" >&2
		exit 2
		;;
	esac
	shift
done
# shellcheck source=tests/image/checks.sh
. "$HERE/checks.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lsgrow.XXXXXX")
MNT="$WORK/mnt"
LOOP=''
cleanup() {
	if [ -n "$LOOP" ]; then
		umount "$MNT" 2>/dev/null
		losetup -d "$LOOP" 2>/dev/null
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

writes_of() { # sectors written to the whole loop device so far
	awk '{ print $7 }' "/sys/block/${LOOP#/dev/}/stat"
}
fs_mib() {
	dumpe2fs -h "${LOOP}p2" 2>/dev/null | awk -F: '/^Block count/ { c = $2 } /^Block size/ { s = $2 } END { printf "%.0f", c * s / 1048576 }'
}
part_mib() {
	echo $(($(cat "/sys/class/block/${LOOP#/dev/}p2/size") / 2048))
}
opts() {
	findmnt -n -o OPTIONS "$MNT"
}

# card: the MBR, partition 2 of 48 MiB at 8 MiB, ext4 with a file in it
card() {
	rm -f "$WORK/card.img"
	truncate -s 256M "$WORK/card.img"
	printf 'label: dos\nstart=2048, size=14336, type=c\nstart=16384, size=98304, type=83\n' | sfdisk --quiet "$WORK/card.img"
	head -c 1000000 /dev/urandom >"$WORK/payload"
	mkdir -p "$WORK/tree"
	cp "$WORK/payload" "$WORK/tree/payload"
	mkfs.ext4 -q -F -L TESTROOT -d "$WORK/tree" -E offset=$((16384 * 512)) "$WORK/card.img" 48M
}

attach() {
	LOOP=$(losetup --find --show --partscan "$WORK/card.img") || return 1
	[ -b "${LOOP}p2" ] || sleep 1
	[ -b "${LOOP}p2" ]
}

detach() {
	umount "$MNT" 2>/dev/null
	losetup -d "$LOOP"
	LOOP=''
}

why=''
[ "$(id -u)" = 0 ] || why="needs root"
for tool in losetup sfdisk partx resize2fs dumpe2fs mkfs.ext4 findmnt; do
	command -v "$tool" >/dev/null 2>&1 || why="$tool is missing"
done
echo "# livestream-growroot on a loop device"
if [ -z "$why" ]; then
	mkdir -p "$MNT"
	card
	if ! attach; then
		why="no loop device with partitions"
		[ -z "$LOOP" ] || losetup -d "$LOOP"
		LOOP=''
	elif ! mount -o ro "${LOOP}p2" "$MNT" 2>/dev/null; then
		why="cannot mount ext4 here"
		detach
	fi
fi
if [ -n "$why" ] && [ "$REQUIRE" = 1 ]; then
	fail "livestream-growroot: $why"
elif [ -n "$why" ]; then
	skip "livestream-growroot: $why (the pull test runs this in the booted image)"
else
	if LIVESTREAM_GROWROOT_MOUNT=$MNT "$GROW" >"$WORK/out" 2>&1; then
		pass "first run exits 0: $(paste -sd ' ' "$WORK/out")"
	else
		fail "first run exits 0" "$(cat "$WORK/out")"
	fi
	check "the partition reaches the card's end ($(part_mib) MiB)" test $(($(cat "/sys/class/block/${LOOP#/dev/}p2/start") + $(cat "/sys/class/block/${LOOP#/dev/}p2/size"))) -ge $((256 * 2048 - 2048))
	check "the file system fills the partition ($(fs_mib) of $(part_mib) MiB)" test $(($(part_mib) - $(fs_mib))) -le 8
	check "mounted read-only again ($(opts))" grep -qE '(^|,)ro(,|$)' <<<"$(opts)"
	check "the file system's files are intact" cmp "$WORK/payload" "$MNT/payload"
	before=$(writes_of)
	LIVESTREAM_GROWROOT_MOUNT=$MNT "$GROW" >"$WORK/out2" 2>&1
	rc=$?
	sync
	after=$(writes_of)
	if [ "$rc" = 0 ] && [ "$before" = "$after" ] && [ ! -s "$WORK/out2" ]; then
		pass "a second run (every later boot) writes nothing and says nothing: 0 sectors written"
	else
		fail "a second run (every later boot) writes nothing and says nothing" "exit $rc; sectors $before -> $after; $(cat "$WORK/out2")"
	fi
	umount "$MNT"
	check "e2fsck -fn: clean" e2fsck -fn "${LOOP}p2"
	detach

	# resumed: the partition grown, the file system not (a cut between)
	card
	printf ', +\n' | sfdisk --quiet --force -N 2 "$WORK/card.img"
	attach
	mount -o ro "${LOOP}p2" "$MNT"
	small=$(fs_mib)
	if LIVESTREAM_GROWROOT_MOUNT=$MNT "$GROW" >"$WORK/out3" 2>&1 && [ $(($(part_mib) - $(fs_mib))) -le 8 ]; then
		pass "a cut between the two steps is resumed: the file system grown from $small to $(fs_mib) MiB ($(paste -sd ' ' "$WORK/out3"))"
	else
		fail "a cut between the two steps is resumed" "$(cat "$WORK/out3")"
	fi
	check "the file system's files are intact after the resumed grow" cmp "$WORK/payload" "$MNT/payload"
	umount "$MNT"
	check "e2fsck -fn: clean after the resumed grow" e2fsck -fn "${LOOP}p2"
	detach
fi

echo
echo "$PASS passed, $FAIL failed, $SKIP skipped"
[ "$FAIL" -eq 0 ]
