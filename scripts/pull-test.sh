#!/bin/bash
# pull-test.sh: pull the plug on the Debian image under qemu, again and again,
# and check after each pull that the card boots, streams and lost nothing.
#
#   scripts/pull-test.sh [--pulls N] [--seed S] [--only I] [--stream-minutes M]
#                        [--keep] [IMAGE]
#
# IMAGE: artifacts/debian-rpi-arm64/livestream-debian-rpi-arm64.img.zst by
# default; never changed (each card is a copy grown to 4 GiB). The guest and
# the camera are scripts/boot-test.sh's: qemu-system-aarch64 -M virt (TCG),
# kernel, initrd and cmdline.txt from the card's FAT, ffmpeg on the host
# sending H.264 from 10.5.5.9, /stream.ts read through qemu's forwarding.
#
# A pull is SIGKILL to qemu: the card keeps exactly what the guest had
# written (qemu writes a raw image through the host's page cache). Each pull
# has a phase and a random moment in it, drawn from the seed:
#   boot       a first boot (a fresh card with the user's files), 1 to 45 s
#              after power-on: firmware, kernel, initramfs fsck, early systemd
#   password   a first boot, 0 to 4 s after systemd starts livestream-net, the
#              unit that writes the Wi-Fi password into livestream-network.txt
#              on the FAT: before, during or after the write
#   grow       a first boot, 0 to 2.5 s after systemd starts livestream-growroot
#              (root partition, then the ext4 file system, to the card's end)
#   streaming  a card that has had its first boot, 0 to 30 s after the first
#              video byte
# in that order, round and round. After each pull, what the card holds is
# read from outside (password on the FAT or not, partition and file system
# size), then it boots again and must: reach READY (systemd's "Started
# livestreamd.service") and give the first video byte at the host; show the
# password it has (the same one, if the FAT had one); then power off cleanly
# (QMP system_powerdown), and from outside: both file systems clean
# (fsck.vfat -n, e2fsck -fn), the root partition and file system grown to
# the card, livestream-network.txt the user's file with AP_PASSWORD empty
# (old) or the password shown (new) and every other byte the user's, the
# user's other files on the FAT byte for byte.
#
# One recovery boot also runs tests/image/bootfs.sh, growroot.sh and
# maintenance.sh inside the guest (livestream-bootfs on a loop-mounted FAT32,
# livestream-growroot on a partitioned loop device, with the image's own
# kernel and scripts; then livestream-maintenance on the running system),
# delivered as a tar on a second, read-only disk and started by systemd.run=
# on the kernel command line (with systemd.wants= for the normal boot beside
# it): the boot before the first streaming pull, whose card that pull boots
# again. A boot of a card past its first boot, after a pull while streaming,
# has nothing to repair: from power-on to the first byte nothing may be
# written to the card. The last recovery boot keeps a viewer on /stream.ts
# for M minutes (5) and reads qemu's block statistics of the card (QMP
# query-blockstats) before and after: nothing may be written.
#
# The seed and each pull's phase and moment are printed; --seed S replays a
# run's moments, --only I runs its pull I alone. Needs root and what
# scripts/boot-test.sh needs, plus tar. Ends with "N passed, M failed".

set -euo pipefail

REPO=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
IMAGE="$REPO/artifacts/debian-rpi-arm64/livestream-debian-rpi-arm64.img.zst"
PULLS=8
SEED=''
ONLY=''
STREAM_MIN=5
KEEP=0
while [ $# -gt 0 ]; do
	case $1 in
	--pulls) PULLS=$2; shift ;;
	--seed) SEED=$2; shift ;;
	--only) ONLY=$2; shift ;;
	--stream-minutes) STREAM_MIN=$2; shift ;;
	--keep) KEEP=1 ;;
	-h | --help)
		awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
		exit 0
		;;
	-*)
		echo "pull-test: unknown option $1" >&2
		exit 2
		;;
	*) IMAGE=$1 ;;
	esac
	shift
done
case "$PULLS$STREAM_MIN${SEED:-0}${ONLY:-1}" in
*[!0-9]*)
	echo "pull-test: --pulls, --seed, --only and --stream-minutes take numbers" >&2
	exit 2
	;;
esac
[ "$(id -u)" = 0 ] || { echo "pull-test: needs root" >&2; exit 2; }
for tool in qemu-system-aarch64 mcopy mtype zstd sfdisk e2fsck dumpe2fs fsck.vfat ffmpeg curl python3 tar; do
	command -v "$tool" >/dev/null 2>&1 || { echo "pull-test: $tool is missing (scripts/install-deps.sh image)" >&2; exit 2; }
done
[ -f "$IMAGE" ] || { echo "pull-test: no image at $IMAGE (scripts/build-image.sh debian rpi-arm64)" >&2; exit 2; }
[ -n "$SEED" ] || SEED=$(od -An -tu4 -N4 /dev/urandom | tr -d ' ')

WORK=$(mktemp -d /tmp/lspull.XXXXXX)
START=$SECONDS

cleanup() {
	halt
	if [ "$KEEP" = 1 ]; then
		echo "pull-test: kept $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# pass, fail, skip, check
# shellcheck source=tests/image/checks.sh
. "$REPO/tests/image/checks.sh"
# guest_image, power_on, wait_log, pull, power_off, halt, card_writes, ...
# shellcheck source=scripts/lib/qemu-guest.sh
. "$REPO/scripts/lib/qemu-guest.sh"

# --- the image and the user's files -------------------------------------------

echo "# pull-test: seed $SEED, $PULLS pulls (replay: scripts/pull-test.sh --seed $SEED --pulls $PULLS [--only I])"
guest_image "$IMAGE"
CARD="$WORK/card.img"
FAT="$CARD@@$((FAT_START * 512))"
mcopy -n -o -i "$BASE@@$((FAT_START * 512))" ::livestream-network.txt "$WORK/shipped-network.txt"
mcopy -n -o -i "$BASE@@$((FAT_START * 512))" ::livestreamd.toml "$WORK/user.toml"

# The user's settings as a Windows laptop leaves them (CRLF), with the camera
# on the wired eth0 and a note of their own; and a file of their own.
sed -e 's/^CAMERA_IFACE=.*/CAMERA_IFACE=eth0/' -e 's/$/\r/' "$WORK/shipped-network.txt" >"$WORK/user-network.txt"
printf '# my note: the camera is on the roof\r\n' >>"$WORK/user-network.txt"
head -c 30000 /dev/urandom >"$WORK/user-notes.bin"
grep -q $'^AP_PASSWORD=\r$' "$WORK/user-network.txt" || { echo "pull-test: the shipped livestream-network.txt has no empty AP_PASSWORD line" >&2; exit 2; }

# fresh_card: the image as flashed, with the user's files on the FAT
fresh_card() {
	cp --sparse=always "$BASE" "$CARD"
	mcopy -o -i "$FAT" "$WORK/user-network.txt" ::livestream-network.txt
	mcopy -o -i "$FAT" "$WORK/user-notes.bin" ::my-notes.bin
	PASSWORD=''
	FIRST_BOOT_DONE=0
}

# The tests the first recovery boot runs inside the guest, on a read-only
# second disk (a tar read by tar -xf /dev/vdb).
tar -C "$REPO/tests/image" -cf "$WORK/tests.tar" bootfs.sh growroot.sh maintenance.sh checks.sh
GUEST_TEST="systemd.run=\"/bin/sh -c 'mkdir -p /run/t && tar -xf /dev/vdb -C /run/t && export TMPDIR=/run && { bash /run/t/bootfs.sh --require-vfat --bootfs /usr/sbin/livestream-bootfs; bash /run/t/growroot.sh --require --growroot /usr/sbin/livestream-growroot; bash /run/t/maintenance.sh --in-image; } >/dev/console 2>&1'\" systemd.run_success_action=none systemd.run_failure_action=none systemd.wants=multi-user.target"

# --- the card from outside --------------------------------------------------------

# card_state: partition, file system and password as the card holds them now
# (read only; a file system a pull interrupted may need its journal replayed)
card_state() {
	local size blocks pw
	read -r P2_START P2_SIZE < <(sfdisk -J "$CARD" | python3 -c '
import json, sys
p = json.load(sys.stdin)["partitiontable"]["partitions"][1]
print(p["start"], p["size"])')
	blocks=$(dumpe2fs -h "$CARD?offset=$((P2_START * 512))" 2>/dev/null | awk -F: '/^Block count/ { c = $2 } /^Block size/ { s = $2 } END { printf "%.0f", c * s / 1048576 }')
	size=$((P2_SIZE / 2048))
	pw=$(mtype -i "$FAT" ::livestream-network.txt 2>/dev/null | tr -d '\r' | sed -n 's/^AP_PASSWORD=//p' | tail -n 1)
	FAT_PASSWORD=$pw
	echo "password on the FAT: ${pw:-none}; root partition $size MiB, file system $blocks MiB"
}

# outside_checks NAME: after a clean power-off
outside_checks() {
	local name=$1 got
	card_state >/dev/null
	dd if="$CARD" of="$WORK/fat.part" bs=512 skip="$FAT_START" count=$((ROOT_START - FAT_START)) conv=sparse status=none
	check "$name: the FAT is clean (fsck.vfat -n)" fsck.vfat -n "$WORK/fat.part"
	rm -f "$WORK/fat.part"
	check "$name: the root file system is clean (e2fsck -fn)" e2fsck -fn "$CARD?offset=$((P2_START * 512))"
	check "$name: the root partition reaches the end of the card ($((P2_SIZE / 2048)) MiB)" test $((P2_START + P2_SIZE)) = "$CARD_SECTORS"
	blocks=$(dumpe2fs -h "$CARD?offset=$((P2_START * 512))" 2>/dev/null | awk -F: '/^Block count/ { c = $2 } /^Block size/ { s = $2 } END { printf "%.0f", c * s }')
	check "$name: the root file system fills its partition ($((blocks / 1048576)) MiB)" test $((P2_SIZE * 512 - blocks)) -lt $((8 * 1048576))
	mcopy -n -o -i "$FAT" ::livestream-network.txt "$WORK/network-now.txt"
	got=$(tr -d '\r' <"$WORK/network-now.txt" | sed -n 's/^AP_PASSWORD=//p')
	if [[ $got =~ ^[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}$ ]] && [ "$got" = "$PASSWORD" ] &&
		cmp -s <(sed 's/^AP_PASSWORD=.*\r$/AP_PASSWORD=\r/' "$WORK/network-now.txt") "$WORK/user-network.txt"; then
		pass "$name: livestream-network.txt is the user's, with the password shown ($got) and every other byte as they wrote it"
	else
		fail "$name: livestream-network.txt is the user's, with the password shown (${PASSWORD:-none}) and every other byte as they wrote it" "$(od -c "$WORK/network-now.txt" | tail -n 8)"
	fi
	check "$name: the user's other file on the FAT is intact (my-notes.bin)" cmp "$WORK/user-notes.bin" <(mtype -i "$FAT" ::my-notes.bin)
	check "$name: livestreamd.toml on the FAT is intact" cmp "$WORK/user.toml" <(mtype -i "$FAT" ::livestreamd.toml)
}

# --- the pulls --------------------------------------------------------------------

# pull I: "PHASE OFFSET_MS" from the seed
moments() {
	python3 - "$SEED" "$PULLS" <<'PYEOF'
import random
import sys

seed, pulls = int(sys.argv[1]), int(sys.argv[2])
r = random.Random(seed)
span = {"boot": (1000, 45000), "password": (0, 4000), "grow": (0, 2500), "streaming": (0, 30000)}
phases = ["boot", "password", "grow", "streaming"]
for i in range(pulls):
    p = phases[i % 4]
    lo, hi = span[p]
    print(p, r.randint(lo, hi))
PYEOF
}
mapfile -t MOMENTS < <(moments)
# The tests inside the guest run in the boot after the first pull whose
# card the next pull takes on (a streaming pull: it boots that card again,
# after livestream-maintenance, and must write nothing); else the first.
GUEST_AT=1
for i in $(seq 1 $((PULLS - 1))); do
	if [ "${MOMENTS[$i]%% *}" = streaming ]; then
		GUEST_AT=$i
		break
	fi
done
[ -z "$ONLY" ] || GUEST_AT=$ONLY
PULLED=0
SURVIVED=0
FIRST_BYTES=()
READYS=()
PASSWORD=''
FIRST_BOOT_DONE=0
SUMMARY=()

for i in $(seq 1 "$PULLS"); do
	read -r phase ms <<<"${MOMENTS[$((i - 1))]}"
	[ -z "$ONLY" ] || [ "$ONLY" = "$i" ] || continue
	offset=$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 1000 }')
	echo "# pull $i/$PULLS: $phase, +$offset s ($(($((SECONDS - START)) / 60)) min into the run)"
	if [ "$phase" = streaming ] && [ "$FIRST_BOOT_DONE" = 1 ]; then
		card="the card after its first boot"
	else
		fresh_card
		card="a fresh card"
	fi
	power_on "pull$i-a" ''
	case $phase in
	boot) event=power-on t_event=$T_ON ;;
	password)
		event="systemd starts livestream-net"
		t_event=$(wait_log 'Starting livestream-net\.service' 300) || t_event=''
		;;
	grow)
		event="systemd starts livestream-growroot"
		t_event=$(wait_log 'Starting livestream-growroot\.service' 300) || t_event=''
		;;
	streaming)
		event="the first video byte"
		t_event=''
		deadline=$((SECONDS + 300))
		while [ ! -s "$WORK/first-byte" ] && [ "$SECONDS" -lt "$deadline" ] && kill -0 "$QEMU_PID" 2>/dev/null; do sleep 0.2; done
		[ -s "$WORK/first-byte" ] && t_event=$(cat "$WORK/first-byte")
		;;
	esac
	if [ -z "$t_event" ]; then
		fail "pull $i: $event (never seen on this boot)" "$(tail -n 20 "$SERIAL" | cut -d ' ' -f 2-)"
		pull
		continue
	fi
	target=$(awk -v t="$t_event" -v o="$offset" 'BEGIN { printf "%.6f", t + o }')
	while awk -v t="$target" -v n="$(now)" 'BEGIN { exit !(n < t) }'; do sleep 0.02; done
	t_pull=$(now)
	pull
	PULLED=$((PULLED + 1))
	# what the console showed before the pull
	seen=''
	grep -qaE 'Finished livestream-growroot\.service' "$SERIAL" && seen="$seen grow finished;"
	grep -qaE "with the password '" "$SERIAL" && seen="$seen password shown;"
	grep -qaE 'Started livestreamd\.service' "$SERIAL" && seen="$seen READY;"
	card_state >"$WORK/state"
	state=$(cat "$WORK/state")
	echo "pull $i: $phase on $card, at +$(since "$t_event" "$t_pull") s after $event ($(since "$T_ON" "$t_pull") s after power-on);${seen:- nothing of note on the console;} after it: $state"
	SUMMARY+=("pull $i $phase +$(since "$t_event" "$t_pull") s after $event: $state")
	if [ -n "$FAT_PASSWORD" ] && [ -n "$PASSWORD" ] && [ "$FAT_PASSWORD" != "$PASSWORD" ]; then
		fail "pull $i: the password on the FAT is the one shown before ($PASSWORD)" "$FAT_PASSWORD"
	fi
	[ -z "$FAT_PASSWORD" ] || PASSWORD=$FAT_PASSWORD

	# the recovery boot
	name="pull $i, boot after"
	extra=''
	qargs=()
	if [ "$i" = "$GUEST_AT" ]; then
		extra=$GUEST_TEST
		qargs=(-drive "file=$WORK/tests.tar,format=raw,if=none,id=tests,readonly=on" -device "virtio-blk-pci,drive=tests")
	fi
	power_on "pull$i-b" "$extra" "${qargs[@]}"
	ok=1
	t_sys=$(wait_log 'Welcome to .*Debian' 240) || { fail "$name: systemd starts" "$(tail -n 30 "$SERIAL" | cut -d ' ' -f 2-)"; ok=0; }
	t_ready=''
	if [ "$ok" = 1 ]; then
		t_ready=$(wait_log 'Started livestreamd\.service' 300) || { fail "$name: livestreamd reports READY" "$(grep -a livestreamd "$SERIAL" | tail -n 10 | cut -d ' ' -f 2-)"; ok=0; }
	fi
	t_byte=''
	if [ "$ok" = 1 ]; then
		deadline=$((SECONDS + 240))
		while [ ! -s "$WORK/first-byte" ] && [ "$SECONDS" -lt "$deadline" ] && kill -0 "$QEMU_PID" 2>/dev/null; do sleep 0.2; done
		t_byte=$(cat "$WORK/first-byte" 2>/dev/null || true)
		if [ -n "$t_byte" ]; then
			pass "$name: power-on -> systemd $(since "$T_ON" "$t_sys") s -> READY $(since "$T_ON" "$t_ready") s -> first video byte $(since "$T_ON" "$t_byte") s"
			if [ "$card" != "a fresh card" ]; then
				# a card past its first boot, pulled while nothing was being
				# written: this boot has nothing to repair and writes nothing
				read -r w o d < <(card_writes)
				check "$name: nothing written to the card from power-on to the first byte ($w bytes in $o writes, $d discarded)" test "$w$o$d" = 000
			fi
			FIRST_BYTES+=("$(since "$T_ON" "$t_byte")")
			READYS+=("$(since "$T_ON" "$t_ready")")
		else
			fail "$name: a first video byte at the host"
			ok=0
		fi
	fi
	if [ "$ok" = 1 ]; then
		shown=$(grep -a -m 1 -oE "with the password '[a-z0-9-]+'" "$SERIAL" | cut -d"'" -f2 || true)
		if [ -z "$PASSWORD" ] && [[ $shown =~ ^[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}$ ]]; then
			PASSWORD=$shown
			pass "$name: a new password is shown ($shown)"
		elif [ -n "$PASSWORD" ] && [ "$shown" = "$PASSWORD" ]; then
			pass "$name: the password already on the FAT is kept and shown ($shown)"
		else
			fail "$name: the password shown is the one on the FAT" "shown '$shown', on the FAT '${PASSWORD:-none}'"
		fi
		if [ "$i" = "$GUEST_AT" ]; then
			# three summary lines: tests/image/bootfs.sh, growroot.sh, maintenance.sh
			deadline=$((SECONDS + 300))
			while [ "$(grep -a -c -E '^[0-9.]+ [0-9]+ passed, [0-9]+ failed' "$SERIAL")" -lt 3 ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 1; done
			n=0
			for what in "tests/image/bootfs.sh (livestream-bootfs on a loop-mounted FAT32)" "tests/image/growroot.sh (livestream-growroot on a partitioned loop device)" \
				"tests/image/maintenance.sh (livestream-maintenance; the next boot of this card is pull $((i + 1))'s)"; do
				n=$((n + 1))
				line=$(grep -a -E '^[0-9.]+ [0-9]+ passed, [0-9]+ failed' "$SERIAL" | sed -n "${n}p" | cut -d ' ' -f 2-)
				if [[ $line =~ ^[0-9]+\ passed,\ 0\ failed ]]; then
					pass "$name: $what in the guest, with the image's kernel and script: $line"
				else
					fail "$name: $what in the guest" "$(grep -aE '^[0-9.]+ (FAIL|skip|       )' "$SERIAL" | cut -d ' ' -f 2-)
${line:-no summary line}"
				fi
			done
		fi
		if [ "$i" = "$PULLS" ] || [ -n "$ONLY" ]; then
			# steady state: M minutes of streaming, nothing written
			sleep 10
			read -r w0 o0 d0 < <(card_writes)
			t0=$(now)
			got=$(curl -s --max-time $((STREAM_MIN * 60)) -o /dev/null -w '%{size_download}' "http://127.0.0.1:$HPORT/stream.ts" || true)
			read -r w1 o1 d1 < <(card_writes)
			STREAM_LINE="$(since "$t0" "$(now)") s of streaming ($((got / 1000)) kB to the viewer): $((w1 - w0)) bytes in $((o1 - o0)) writes and $((d1 - d0)) bytes discarded on the card (from power-on to the window's start: $w0 bytes in $o0 writes)"
			if [ "$((w1 - w0))" = 0 ] && [ "$((o1 - o0))" = 0 ] && [ "$((d1 - d0))" = 0 ] && [ "${got:-0}" -gt $((STREAM_MIN * 60 * 20000)) ]; then
				pass "$name: $STREAM_LINE"
			else
				fail "$name: nothing written to the card during $STREAM_MIN minutes of streaming" "$STREAM_LINE"
			fi
		fi
		power_off "$name" || ok=0
	else
		pull
	fi
	if [ "$ok" = 1 ]; then
		FIRST_BOOT_DONE=1
		before=$FAIL
		outside_checks "$name"
		[ "$FAIL" != "$before" ] || SURVIVED=$((SURVIVED + 1))
	fi
done

echo
echo "pull-test: seed $SEED; $SURVIVED of $PULLED pulls survived (booted, streamed, powered off clean, both file systems clean, the user's files intact)"
for line in "${SUMMARY[@]}"; do echo "  $line"; done
[ "${#FIRST_BYTES[@]}" = 0 ] || echo "boots after a pull: power-on -> READY $(printf '%s\n' "${READYS[@]}" | sort -n | paste -sd ' ') s; -> first video byte $(printf '%s\n' "${FIRST_BYTES[@]}" | sort -n | paste -sd ' ') s"
[ -z "${STREAM_LINE:-}" ] || echo "steady state: $STREAM_LINE"
echo "pull-test: $((SECONDS - START)) s"
echo "$PASS passed, $FAIL failed, $SKIP skipped"
[ "$FAIL" -eq 0 ]
