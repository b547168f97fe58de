# shellcheck shell=bash
# shellcheck disable=SC2034 # T_ON, ROOT_START, CARD_SECTORS, ...: for the scripts that source this
# scripts/lib/qemu-guest.sh: boot the Debian image's card under
# qemu-system-aarch64 as scripts/boot-test.sh does, for scripts/pull-test.sh
# and scripts/bench/boot-time.sh (sourced).
#
# The caller sets WORK (a directory of its own) and calls guest_image IMAGE
# once: the image is unpacked to $WORK/base.img grown to 4 GiB (a larger
# card), and kernel, initrd and cmdline.txt come from its FAT partition
# (console=ttyAMA0 instead of the Pi's). Then, for each boot, the card is
# $CARD (the caller copies base.img there): power_on starts the camera
# (ffmpeg sending H.264 in MPEG-TS from the qemu user network's host
# address 10.5.5.9, a GoPro's), qemu (the card as a virtio disk "card", a
# QMP socket) and a poll of /stream.ts for the first video byte; wait_log
# waits for a console line; power_off presses the power button; pull kills
# qemu (SIGKILL: the plug pulled); halt stops whatever is left.
# card_writes reads qemu's block statistics of the card.

QEMU_PID=''
CAM_PID=''
READER_PID=''
POLL_PID=''
export MTOOLS_SKIP_CHECK=1
# shellcheck source=scripts/lib/proc.sh
. "$REPO/scripts/lib/proc.sh"

# halt: this boot's camera, first-byte poll and serial reader (qemu is
# pulled or powered off before)
halt() {
	stop_pid "$POLL_PID"
	stop_pid "$QEMU_PID"
	stop_pid "$CAM_PID"
	stop_pid "$READER_PID"
	POLL_PID='' QEMU_PID='' CAM_PID='' READER_PID=''
}

# --- one boot ---------------------------------------------------------------------


# power_on NAME [APPEND_EXTRA [QEMU_ARGS...]]: start the camera, qemu and the
# first-byte poll; T_ON is the host time of power-on
power_on() {
	local name=$1 extra=${2:-}
	shift 2 || shift $#
	SERIAL="$WORK/serial-$name.log"
	: >"$SERIAL"
	rm -f "$WORK/ser.in" "$WORK/ser.out" "$WORK/first-byte" "$WORK/qmp.sock"
	mkfifo "$WORK/ser.in" "$WORK/ser.out"
	# each console line with the host's time, without systemd's colours
	(
		shopt -s extglob
		exec 3<>"$WORK/ser.out"
		while IFS= read -r -u 3 line; do
			line=${line%$'\r'}
			printf '%s %s\n' "$EPOCHREALTIME" "${line//$'\e['*([0-9;])m/}"
		done
	) >>"$SERIAL" &
	READER_PID=$!
	ffmpeg -hide_banner -nostdin -loglevel error -re -f lavfi -i testsrc=size=848x480:rate=30 \
		-c:v libx264 -preset ultrafast -tune zerolatency -pix_fmt yuv420p -g 30 -b:v 3M \
		-f mpegts "udp://127.0.0.1:$UPORT?pkt_size=1316" >"$WORK/camera-$name.log" 2>&1 &
	CAM_PID=$!
	T_ON=$(now)
	qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 \
		-display none -monitor none -no-reboot -serial "pipe:$WORK/ser" \
		-qmp "unix:$WORK/qmp.sock,server=on,wait=off" \
		-kernel "$WORK/vmlinuz" -initrd "$WORK/initrd" -append "$APPEND $extra" \
		-drive "file=$CARD,format=raw,if=none,id=card" -device virtio-blk-pci,drive=card \
		-netdev "user,id=cam,restrict=on,net=10.5.5.0/24,host=10.5.5.9,dhcpstart=10.5.5.100,hostfwd=tcp:127.0.0.1:$HPORT-:8080,hostfwd=udp:127.0.0.1:$UPORT-:8554" \
		-device virtio-net-pci,netdev=cam,romfile=,mac=52:54:00:00:00:01 \
		"$@" >"$WORK/qemu-$name.log" 2>&1 &
	QEMU_PID=$!
	(
		while :; do
			t=$(now)
			out=$(curl -s --max-time 3 -o /dev/null -w '%{size_download} %{time_starttransfer}' "http://127.0.0.1:$HPORT/stream.ts") || true
			if [ "${out%% *}" -gt 0 ] 2>/dev/null; then
				awk -v t="$t" -v s="${out#* }" 'BEGIN { printf "%.6f\n", t + s }' >"$WORK/first-byte"
				exit 0
			fi
			sleep 0.5
		done
	) &
	POLL_PID=$!
}

# wait_log PATTERN TIMEOUT: the host time of the first serial line of this
# boot matching the extended regexp, or fail after TIMEOUT s (or when qemu
# is gone)
wait_log() {
	local deadline=$((SECONDS + $2)) line
	while [ "$SECONDS" -lt "$deadline" ]; do
		if line=$(grep -m 1 -aE -- "$1" "$SERIAL"); then
			echo "${line%% *}"
			return 0
		fi
		kill -0 "$QEMU_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# qmp JSON: one QMP command; its "return" as JSON on stdout
qmp() {
	python3 - "$WORK/qmp.sock" "$1" <<'PYEOF'
import json
import socket
import sys

s = socket.socket(socket.AF_UNIX)
s.settimeout(30)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()
for cmd in ('{"execute": "qmp_capabilities"}', sys.argv[2]):
    f.write(cmd + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            break
if "error" in r:
    sys.exit("qmp: " + json.dumps(r["error"]))
print(json.dumps(r["return"]))
PYEOF
}

# card_writes: "BYTES OPERATIONS DISCARDED_BYTES" written to the card so far
card_writes() {
	qmp '{"execute": "query-blockstats"}' | python3 -c '
import json, sys
for d in json.load(sys.stdin):
    if d.get("device") == "card":
        s = d["stats"]
        print(s["wr_bytes"], s["wr_operations"], s.get("unmap_bytes", 0))'
}

# pull: SIGKILL to qemu, the plug pulled
pull() {
	kill -9 "$QEMU_PID" 2>/dev/null || true
	wait "$QEMU_PID" 2>/dev/null || true
	QEMU_PID=''
	halt
}

# power_off NAME: the power button (QMP system_powerdown); systemd shuts down
# and qemu exits
power_off() {
	local t0 deadline
	t0=$(now)
	qmp '{"execute": "system_powerdown"}' >/dev/null || true
	deadline=$((SECONDS + 120))
	while kill -0 "$QEMU_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
	if kill -0 "$QEMU_PID" 2>/dev/null; then
		fail "$1: power-off (qemu still running 120 s after the power button)" "$(tail -n 20 "$SERIAL" | cut -d ' ' -f 2-)"
		halt
		return 1
	fi
	halt
	if grep -q 'reboot: Power down' "$SERIAL"; then
		pass "$1: clean power-off in $(since "$t0" "$(now)") s"
	else
		fail "$1: clean power-off" "$(tail -n 20 "$SERIAL" | cut -d ' ' -f 2-)"
	fi
}

# guest_image IMAGE: unpack it, take its boot files; sets BASE, FAT_START,
# ROOT_START, CARD_SECTORS, APPEND, HPORT, UPORT
guest_image() {
	local fat name
	BASE="$WORK/base.img"
	case $1 in
	*.zst) zstd -q -d -c "$1" >"$BASE" ;;
	*) cp --sparse=always "$1" "$BASE" ;;
	esac
	truncate -s 4G "$BASE"
	read -r FAT_START ROOT_START < <(sfdisk -J "$BASE" | python3 -c '
import json, sys
p = json.load(sys.stdin)["partitiontable"]["partitions"]
print(p[0]["start"], p[1]["start"])')
	CARD_SECTORS=$(($(stat -c %s "$BASE") / 512))
	fat="$BASE@@$((FAT_START * 512))"
	mcopy -n -o -i "$fat" ::cmdline.txt "$WORK/cmdline.txt"
	mdir -b -i "$fat" :: >"$WORK/fat.list"
	name=$(grep -m 1 -o 'vmlinuz-[^/]*$' "$WORK/fat.list")
	mcopy -n -o -i "$fat" "::$name" "$WORK/vmlinuz"
	name=$(grep -m 1 -o 'initrd.img-[^/]*$' "$WORK/fat.list")
	mcopy -n -o -i "$fat" "::$name" "$WORK/initrd"
	APPEND="$(tr ' ' '\n' <"$WORK/cmdline.txt" | grep . | grep -v '^console=' | paste -sd ' ') console=ttyAMA0 systemd.show_status=1 systemd.status_unit_format=name"
	HPORT=$(free_port)
	UPORT=$(free_port)
	while [ "$UPORT" = "$HPORT" ]; do UPORT=$(free_port); done
	SERIAL="$WORK/serial.log"
}

# first_byte_within SECONDS: wait for the poll's first video byte; its host
# time on stdout, or fail
first_byte_within() {
	local deadline=$((SECONDS + $1))
	while [ ! -s "$WORK/first-byte" ] && [ "$SECONDS" -lt "$deadline" ] && kill -0 "$QEMU_PID" 2>/dev/null; do sleep 0.2; done
	[ -s "$WORK/first-byte" ] && cat "$WORK/first-byte"
}
