#!/bin/bash
# tests/image/bootfs.sh: livestream-bootfs, the one writer of the FAT boot
# partition, run for real.
#
#   tests/image/bootfs.sh [--bootfs PATH] [--require-vfat]
#
#  1. On a plain directory (any machine): a new file, a replacement, the same
#     bytes again (no rename), binary content kept byte for byte, bad names
#     and too much content refused with the old file intact, a stale
#     temporary removed, 20 concurrent writers (each file ends as one
#     writer's whole content).
#  2. On a FAT32 file system made with mkfs.vfat, loop-mounted read-only as
#     the boot partition is (needs root, the kernel's vfat and losetup; the
#     boot test runs this part inside the booted image, with the image's own
#     livestream-bootfs and kernel): the write lands, the partition is
#     read-only again after, the same bytes again write nothing to the device
#     (/sys/block/loopN/stat), a partition the caller made read-write stays
#     so, concurrent writers, a full partition (error, old file intact, read-
#     only again), "rw"/"ro", and fsck.vfat finds it clean after each part.
#  3. The moments of a power cut inside the rename (needs python3, mtools,
#     fsck.fat): the directory states a cut can leave are made on a FAT32
#     image, fsck.fat -a repairs them as it does at boot, and the file is the
#     old or the new one; a temporary kept in the top directory instead could
#     cost the file its content (the reason for .livestream-tmp).
# --require-vfat fails part 2 instead of skipping it when vfat cannot be
# mounted. Ends with "N passed, M failed, K skipped".

set -u

HERE=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
REPO=$(CDPATH='' cd -- "$HERE/../.." && pwd)
BOOTFS="$REPO/buildroot/board/livestreamd/rootfs-overlay/usr/sbin/livestream-bootfs"
REQUIRE_VFAT=0
while [ $# -gt 0 ]; do
	case $1 in
	--bootfs)
		BOOTFS=$2
		shift
		;;
	--require-vfat) REQUIRE_VFAT=1 ;;
	*)
		echo "usage: $0 [--bootfs PATH] [--require-vfat]" >&2
		exit 2
		;;
	esac
	shift
done

# pass, fail, skip, check
# shellcheck source=tests/image/checks.sh
. "$HERE/checks.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lsbootfs.XXXXXX")
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
# the tests' own lock and staging place, so that a test never waits for (or
# on) the system's writer
export LIVESTREAM_BOOTFS_LOCK="$WORK/lock" LIVESTREAM_BOOTFS_STAGE="$WORK"

# bw DIR NAME [ARGS]: livestream-bootfs write, content on stdin, stderr kept
bw() {
	local dir=$1 name=$2
	shift 2
	"$BOOTFS" write --dir "$dir" "$name" "$@" 2>"$WORK/bw.err"
}

# pattern TAG SIZE: SIZE bytes that say which writer made them
pattern() {
	yes "$1" | head -c "$2"
}

# concurrent DIR: 16 writers of one name and 4 of others at once; every
# file ends as exactly one writer's content and every writer succeeds
concurrent() {
	local dir=$1 i pids=() bad=0 ok
	for i in $(seq 1 16); do
		pattern "writer-$i-of-the-same-file" $((20000 + i * 3000)) >"$WORK/c$i"
		bw "$dir" same.txt <"$WORK/c$i" 2>/dev/null &
		pids+=($!)
	done
	for i in 1 2 3 4; do
		pattern "other-$i" 5000 | "$BOOTFS" write --dir "$dir" "other-$i.txt" 2>/dev/null &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i" || bad=$((bad + 1))
	done
	ok=0
	for i in $(seq 1 16); do
		cmp -s "$WORK/c$i" "$dir/same.txt" && ok=1
	done
	for i in 1 2 3 4; do
		cmp -s <(pattern "other-$i" 5000) "$dir/other-$i.txt" || bad=$((bad + 1))
	done
	[ "$bad" = 0 ] && [ "$ok" = 1 ] && [ -z "$(ls -A "$dir/.livestream-tmp")" ]
}

echo "# livestream-bootfs on a plain directory"
D="$WORK/plain"
mkdir -p "$D"
if printf 'AP_SSID=one\n' | bw "$D" livestream-network.txt && [ "$(cat "$D/livestream-network.txt")" = AP_SSID=one ]; then
	pass "a new file is written"
else
	fail "a new file is written" "$(cat "$WORK/bw.err")"
fi
check "the message names the file and its size" grep -qF "livestream-network.txt: written (12 bytes)" "$WORK/bw.err"
printf 'AP_SSID=two\r\nAP_PASSWORD=abcd-efgh-jkmn\r\n' | bw "$D" livestream-network.txt
check "a file is replaced" test "$(tr -d '\r' <"$D/livestream-network.txt" | paste -sd ' ')" = "AP_SSID=two AP_PASSWORD=abcd-efgh-jkmn"
inode=$(stat -c %i "$D/livestream-network.txt")
printf 'AP_SSID=two\r\nAP_PASSWORD=abcd-efgh-jkmn\r\n' | bw "$D" livestream-network.txt
if grep -qF "unchanged, nothing written" "$WORK/bw.err" && [ "$(stat -c %i "$D/livestream-network.txt")" = "$inode" ]; then
	pass "the same bytes again: nothing written (same inode)"
else
	fail "the same bytes again: nothing written (same inode)" "$(cat "$WORK/bw.err")"
fi
printf 'x' | bw "$D" quiet.txt --quiet
check "--quiet says nothing" test ! -s "$WORK/bw.err"
head -c 70000 /dev/urandom >"$WORK/binary"
printf '\0\r\n' >>"$WORK/binary"
bw "$D" binary.bin <"$WORK/binary"
check "binary content kept byte for byte (NUL, CR, no final newline)" cmp "$WORK/binary" "$D/binary.bin"
for name in ../escape.txt .hidden a/b '' "$(printf 'x%.0s' $(seq 1 65))" 'sp ace' "$(printf 'nl\nx')"; do
	printf 'bad\n' | bw "$D" "$name"
	rc=$?
	shown=$(printf '%s' "$name" | tr '\n' '?' | cut -c 1-20)
	if { [ "$rc" = 1 ] && grep -qE 'not a plain file name|longer than 64' "$WORK/bw.err"; } || { [ -z "$name" ] && [ "$rc" = 2 ]; }; then
		pass "refuses the name '$shown' (exit $rc)"
	else
		fail "refuses the name '$shown'" "exit $rc: $(cat "$WORK/bw.err")"
	fi
done
check "nothing was written outside the directory" test ! -e "$WORK/escape.txt"
if head -c $((4194304 + 1)) /dev/zero | bw "$D" livestream-network.txt; then
	fail "refuses more than 4 MiB"
else
	if grep -qF "larger than 4194304 bytes" "$WORK/bw.err" && grep -q '^AP_PASSWORD=abcd-efgh-jkmn' "$D/livestream-network.txt"; then
		pass "refuses more than 4 MiB, the old file intact"
	else
		fail "refuses more than 4 MiB, the old file intact" "$(cat "$WORK/bw.err")"
	fi
fi
: >"$D/.livestream-tmp/livestream-network.txt"
printf 'stale\n' >"$D/.livestream-tmp/left-by-a-power-cut.txt"
printf 'AP_SSID=three\n' | bw "$D" livestream-network.txt
check "temporaries a power cut left are removed at the next write" test -z "$(ls -A "$D/.livestream-tmp")"
check "no staging file is left in the staging place" test -z "$(find "$WORK" -maxdepth 1 -name 'livestream-bootfs.*')"
check "20 concurrent writers: each file is one writer's whole content, all succeed" concurrent "$D"

# --- FAT32, loop-mounted read-only -----------------------------------------

# writes_of DEV: sectors written to the block device so far
writes_of() {
	awk '{ print $7 }' "/sys/block/${1#/dev/}/stat"
}

# opts MNT: the mount's own options (ro or rw first)
opts() {
	awk -v d="$1" '$5 == d { print $6 }' /proc/self/mountinfo
}

vfat_ok=1
why=''
if [ "$(id -u)" != 0 ]; then
	vfat_ok=0 why="needs root"
else
	for tool in losetup mkfs.vfat fsck.vfat mount umount; do
		command -v "$tool" >/dev/null 2>&1 || { vfat_ok=0 why="$tool is missing"; }
	done
fi
if [ "$vfat_ok" = 1 ]; then
	mkdir -p "$MNT"
	rm -f "$WORK/fat.img"
	if ! mkfs.vfat -C -F 32 -s 1 -n TESTBOOT "$WORK/fat.img" 40960 >/dev/null 2>&1; then
		vfat_ok=0 why="mkfs.vfat failed"
	elif ! LOOP=$(losetup --find --show "$WORK/fat.img" 2>/dev/null) || [ -z "$LOOP" ]; then
		vfat_ok=0 why="no loop device" LOOP=''
	elif ! mount -t vfat -o rw "$LOOP" "$MNT" 2>/dev/null; then
		vfat_ok=0 why="this kernel cannot mount vfat"
	fi
fi
echo "# livestream-bootfs on FAT32 (mkfs.vfat, loop-mounted read-only like the boot partition)"
if [ "$vfat_ok" = 0 ]; then
	if [ "$REQUIRE_VFAT" = 1 ]; then
		fail "FAT32 part ($why)"
	else
		skip "FAT32 part: $why (the boot test runs it in the booted image)"
	fi
else
	printf 'AP_SSID=old\r\nAP_PASSWORD=\r\n' >"$MNT/livestream-network.txt"
	umount "$MNT"
	check "the file system is clean before" fsck.vfat -n "$LOOP"
	mount -t vfat -o ro,noatime "$LOOP" "$MNT"
	check "mounted read-only ($(opts "$MNT"))" grep -q '^ro' <<<"$(opts "$MNT")"
	if printf 'AP_SSID=old\r\nAP_PASSWORD=pw12-pw34-pw56\r\n' | bw "$MNT" livestream-network.txt; then
		pass "write on the read-only FAT exits 0"
	else
		fail "write on the read-only FAT exits 0" "$(cat "$WORK/bw.err")"
	fi
	check "the new content is there" grep -q '^AP_PASSWORD=pw12-pw34-pw56' "$MNT/livestream-network.txt"
	check "read-only again after the write ($(opts "$MNT"))" grep -q '^ro' <<<"$(opts "$MNT")"
	check "no temporary left" test -z "$(ls -A "$MNT/.livestream-tmp")"
	before=$(writes_of "$LOOP")
	printf 'AP_SSID=old\r\nAP_PASSWORD=pw12-pw34-pw56\r\n' | bw "$MNT" livestream-network.txt
	sync
	after=$(writes_of "$LOOP")
	if [ "$before" = "$after" ] && grep -qF unchanged "$WORK/bw.err" && grep -q '^ro' <<<"$(opts "$MNT")"; then
		pass "the same bytes again: 0 sectors written to the device, still read-only"
	else
		fail "the same bytes again: 0 sectors written to the device, still read-only" "sectors $before -> $after; $(cat "$WORK/bw.err"); $(opts "$MNT")"
	fi
	before=$(writes_of "$LOOP")
	printf 'status one\n' | bw "$MNT" livestream-status.txt
	after=$(writes_of "$LOOP")
	pass "a new small file costs $((after - before)) sectors written (data, directory, FAT, the dirty flag set and cleared)"
	umount "$MNT"
	check "clean after the writes (fsck.vfat -n)" fsck.vfat -n "$LOOP"
	mount -t vfat -o rw,noatime "$LOOP" "$MNT"
	printf 'written while rw\n' | bw "$MNT" livestream-status.txt
	check "a partition mounted read-write (maintenance) stays read-write ($(opts "$MNT"))" grep -q '^rw' <<<"$(opts "$MNT")"
	"$BOOTFS" ro --dir "$MNT" 2>/dev/null
	check "livestream-bootfs ro: read-only ($(opts "$MNT"))" grep -q '^ro' <<<"$(opts "$MNT")"
	"$BOOTFS" rw --dir "$MNT" 2>/dev/null
	check "livestream-bootfs rw: read-write ($(opts "$MNT"))" grep -q '^rw' <<<"$(opts "$MNT")"
	"$BOOTFS" ro --dir "$MNT" 2>/dev/null
	check "20 concurrent writers on the FAT: each file is one writer's whole content, all succeed" concurrent "$MNT"
	check "read-only after the concurrent writers ($(opts "$MNT"))" grep -q '^ro' <<<"$(opts "$MNT")"
	# a full partition: the write fails, the old file stays, read-only again
	mount -o remount,rw "$MNT"
	dd if=/dev/zero of="$MNT/filler" bs=1M 2>/dev/null
	sync
	mount -o remount,ro "$MNT"
	if pattern full 1048576 | bw "$MNT" livestream-network.txt; then
		fail "a full partition: the write fails" "$(cat "$WORK/bw.err")"
	else
		pass "a full partition: the write fails ($(tail -n 1 "$WORK/bw.err"))"
	fi
	check "a full partition: the old file is intact" grep -q '^AP_PASSWORD=pw12-pw34-pw56' "$MNT/livestream-network.txt"
	check "a full partition: read-only again ($(opts "$MNT"))" grep -q '^ro' <<<"$(opts "$MNT")"
	mount -o remount,rw "$MNT"
	rm -f "$MNT/filler"
	mount -o remount,ro "$MNT"
	umount "$MNT"
	check "clean at the end (fsck.vfat -n)" fsck.vfat -n "$LOOP"
	losetup -d "$LOOP"
	LOOP=''
fi

# --- a power cut inside the rename ------------------------------------------

# fatdir IMAGE OP ARGS: edit FAT32 directory entries the way a power cut
# inside vfat's rename leaves them.
#   show PATH                     print "start size" of PATH's entry
#   point PATH START SIZE         make PATH's entry point at START, SIZE
#   delete PATH                   mark PATH's entries (long name too) deleted
fatdir() {
	python3 - "$@" <<'PYEOF'
import struct
import sys

img, op, path = sys.argv[1], sys.argv[2], sys.argv[3]
f = open(img, "r+b")
bs = f.read(512)
bps, spc, rsvd, nfats = struct.unpack_from("<HBHB", bs, 11)
fatsz, root = struct.unpack_from("<I", bs, 36)[0], struct.unpack_from("<I", bs, 44)[0]
data = (rsvd + nfats * fatsz) * bps
csize = spc * bps


def nxt(c):
    f.seek(rsvd * bps + 4 * c)
    return struct.unpack("<I", f.read(4))[0] & 0x0FFFFFFF


def entries(cluster):
    """(offset, raw) of each 32-byte entry of the directory at cluster"""
    while 2 <= cluster < 0x0FFFFFF8:
        base = data + (cluster - 2) * csize
        for i in range(0, csize, 32):
            f.seek(base + i)
            yield base + i, f.read(32)
        cluster = nxt(cluster)


def find(cluster, name):
    """offsets of the long-name entries and the short entry of name"""
    lfn = []
    for off, e in entries(cluster):
        if e[0] == 0:
            break
        if e[0] == 0xE5:
            lfn = []
            continue
        if e[11] == 0x0F:
            lfn.append((off, e))
            continue
        chars = b""
        for _, l in reversed(lfn):
            chars += l[1:11] + l[14:26] + l[28:32]
        long = chars.decode("utf-16-le").split("\0")[0]
        short = (e[0:8].rstrip() + (b"." + e[8:11].rstrip() if e[8:11].strip() else b"")).decode("ascii", "replace")
        if name in (long, short) or name.upper() == short:
            return [o for o, _ in lfn], off, e
        lfn = []
    raise SystemExit("no entry " + name)


cluster = root
parts = path.strip("/").split("/")
for p in parts[:-1]:
    _, _, e = find(cluster, p)
    cluster = (struct.unpack_from("<H", e, 20)[0] << 16) | struct.unpack_from("<H", e, 26)[0]
lfns, off, e = find(cluster, parts[-1])
start = (struct.unpack_from("<H", e, 20)[0] << 16) | struct.unpack_from("<H", e, 26)[0]
size = struct.unpack_from("<I", e, 28)[0]
if op == "show":
    print(start, size)
elif op == "point":
    s, n = int(sys.argv[4]), int(sys.argv[5])
    f.seek(off + 20)
    f.write(struct.pack("<H", s >> 16))
    f.seek(off + 26)
    f.write(struct.pack("<HI", s & 0xFFFF, n))
elif op == "delete":
    for o in lfns + [off]:
        f.seek(o)
        f.write(b"\xe5")
f.close()
PYEOF
}

# cut_state TMPDIR STATE: a FAT32 image holding livestream-network.txt (old)
# and TMPDIR/livestream-network.txt (new), left as STATE says; fsck.fat -a
# (what systemd-fsck runs at boot); prints the file's content after.
cut_state() {
	local tmpdir=$1 state=$2 img="$WORK/cut.img" t n
	rm -f "$img"
	mkfs.vfat -C -F 32 -s 1 -n CUT "$img" 65536 >/dev/null
	pattern old-password 3000 >"$WORK/old"
	pattern new-password 5000 >"$WORK/new"
	if [ "$tmpdir" = top ]; then
		# the temporary first: its entry comes before the file's
		mcopy -i "$img" "$WORK/new" ::/livestream-network.new
		mcopy -i "$img" "$WORK/old" ::/livestream-network.txt
		t=/livestream-network.new
	else
		mcopy -i "$img" "$WORK/old" ::/livestream-network.txt
		mmd -i "$img" ::/.livestream-tmp
		mcopy -i "$img" "$WORK/new" ::/.livestream-tmp/livestream-network.txt
		t=/.livestream-tmp/livestream-network.txt
	fi
	read -r n _ < <(fatdir "$img" show "$t")
	case $state in
	entry-rewritten) # the file's entry points at the new data; the temporary's not yet deleted
		fatdir "$img" point /livestream-network.txt "$n" 5000 ;;
	temp-deleted) # the temporary's entry deleted first; the file's not yet rewritten
		fatdir "$img" delete "$t" ;;
	old-not-freed) # both entries written; the old data's clusters not yet freed
		fatdir "$img" point /livestream-network.txt "$n" 5000
		fatdir "$img" delete "$t" ;;
	esac
	fsck.fat -a "$img" >"$WORK/fsck.out" 2>&1
	MTOOLS_SKIP_CHECK=1 mtype -i "$img" ::/livestream-network.txt >"$WORK/after" 2>/dev/null
	if fsck.fat -n "$img" >/dev/null 2>&1; then CLEAN=1; else CLEAN=0; fi
}

echo "# a power cut inside the rename: what fsck.fat -a (at the next boot) leaves"
if command -v python3 >/dev/null 2>&1 && command -v mcopy >/dev/null 2>&1 && command -v fsck.fat >/dev/null 2>&1 && command -v mkfs.vfat >/dev/null 2>&1; then
	for state in entry-rewritten temp-deleted old-not-freed; do
		cut_state subdir "$state"
		want=new
		[ "$state" = temp-deleted ] && want=old
		if cmp -s "$WORK/after" "$WORK/$want" && [ "$CLEAN" = 1 ]; then
			pass "cut with $state: the file is the $want one, fsck.fat -a leaves it clean"
		else
			fail "cut with $state: the file is the $want one, fsck.fat -a leaves it clean" "$(wc -c <"$WORK/after") bytes; clean=$CLEAN; $(cat "$WORK/fsck.out")"
		fi
	done
	cut_state top entry-rewritten
	if [ ! -s "$WORK/after" ] && grep -q 'share clusters' "$WORK/fsck.out"; then
		pass "why .livestream-tmp: a temporary ahead of the file in the top directory would leave it empty ($(grep -m 1 Truncating "$WORK/fsck.out" | sed 's/^ *//'))"
	else
		fail "why .livestream-tmp: a temporary ahead of the file in the top directory would leave it empty" "$(wc -c <"$WORK/after") bytes; $(cat "$WORK/fsck.out")"
	fi
else
	skip "power cut states (needs python3, mtools, dosfstools)"
fi

echo
echo "$PASS passed, $FAIL failed, $SKIP skipped"
[ "$FAIL" -eq 0 ]
