#!/bin/bash
# scripts/bench/boot-time.sh: power-on -> READY -> first video byte of two
# Debian images in the same run, boots alternating, under qemu as in
# scripts/boot-test.sh (scripts/lib/qemu-guest.sh).
#
#   scripts/bench/boot-time.sh [--rounds N] BASELINE_IMAGE IMAGE
#
# Each round, for each image (the order alternates between rounds): a fresh
# card (the image as flashed, 4 GiB, CAMERA_IFACE=eth0), its first boot to
# the first video byte at the host and a clean power-off, then a second boot
# (the steady state) likewise. Prints every boot and, per image and kind of
# boot, the median; then IMAGE's medians relative to BASELINE_IMAGE's.
# READY is systemd's "Started livestreamd.service" on the console. Needs
# root and what scripts/boot-test.sh needs. Run it under the heavy lock.

set -euo pipefail

REPO=$(CDPATH='' cd -- "$(dirname -- "$0")/../.." && pwd)
ROUNDS=3
while [ $# -gt 0 ]; do
	case $1 in
	--rounds)
		ROUNDS=$2
		shift
		;;
	-h | --help)
		sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) break ;;
	esac
	shift
done
[ $# = 2 ] || { echo "usage: $0 [--rounds N] BASELINE_IMAGE IMAGE" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "boot-time: needs root" >&2; exit 2; }

TOP=$(mktemp -d /tmp/lsboottime.XXXXXX)
cleanup() {
	halt
	rm -rf "$TOP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# shellcheck source=scripts/lib/qemu-guest.sh
. "$REPO/scripts/lib/qemu-guest.sh"

# Each image gets its own directory (base card, boot files, ports).
declare -A DIRS
for which in baseline new; do
	WORK="$TOP/$which"
	mkdir -p "$WORK"
	if [ "$which" = baseline ]; then guest_image "$1"; else guest_image "$2"; fi
	declare -p APPEND FAT_START HPORT UPORT >"$WORK/vars"
	DIRS[$which]=$WORK
done
NAMES=([0]="$(basename "$1") (baseline)" [1]="$(basename "$2")")

# one_boot WHICH KIND: a boot to the first byte and a clean power-off;
# appends "KIND READY BYTE" to WHICH's results
one_boot() {
	local which=$1 kind=$2 t_ready t_byte
	WORK=${DIRS[$which]}
	# shellcheck source=/dev/null
	. "$WORK/vars"
	CARD="$WORK/card.img"
	power_on "$which-$kind" ''
	t_ready=$(wait_log 'Started livestreamd\.service' 300) || t_ready=''
	t_byte=$(first_byte_within 300) || t_byte=''
	if [ -z "$t_ready" ] || [ -z "$t_byte" ]; then
		echo "boot-time: $which $kind boot: no READY or no first byte" >&2
		tail -n 20 "$SERIAL" >&2
		halt
		exit 1
	fi
	sleep 5
	qmp '{"execute": "system_powerdown"}' >/dev/null || true
	local deadline=$((SECONDS + 120))
	while kill -0 "$QEMU_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
	halt
	printf '%s %s %s\n' "$kind" "$(since "$T_ON" "$t_ready")" "$(since "$T_ON" "$t_byte")" | tee -a "$WORK/results" |
		sed "s/^/$which: /; s/ \([0-9.]*\) \([0-9.]*\)$/ boot: power-on -> READY \1 s -> first video byte \2 s/"
}

for r in $(seq 1 "$ROUNDS"); do
	order="baseline new"
	[ $((r % 2)) = 0 ] && order="new baseline"
	for which in $order; do
		WORK=${DIRS[$which]}
		cp --sparse=always "$WORK/base.img" "$WORK/card.img"
		mcopy -n -o -i "$WORK/card.img@@$((FAT_START * 512))" ::livestream-network.txt "$WORK/net.txt"
		sed -i 's/^CAMERA_IFACE=.*/CAMERA_IFACE=eth0/' "$WORK/net.txt"
		mcopy -o -i "$WORK/card.img@@$((FAT_START * 512))" "$WORK/net.txt" ::livestream-network.txt
		echo "# round $r: $which"
		one_boot "$which" first
		one_boot "$which" second
	done
done

median() { # KIND FIELD FILE
	awk -v k="$1" -v f="$2" '$1 == k { print $f }' "$3" | sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
echo
i=0
for which in baseline new; do
	for kind in first second; do
		echo "${NAMES[$i]}: $kind boot, median of $ROUNDS: power-on -> READY $(median "$kind" 2 "${DIRS[$which]}/results") s -> first video byte $(median "$kind" 3 "${DIRS[$which]}/results") s"
	done
	i=$((i + 1))
done
for kind in first second; do
	b=$(median "$kind" 3 "${DIRS[baseline]}/results")
	n=$(median "$kind" 3 "${DIRS[new]}/results")
	echo "$kind boot: first video byte $n s against $b s: $(awk -v b="$b" -v n="$n" 'BEGIN { printf "%+.1f %%", (n - b) / b * 100 }')"
done
