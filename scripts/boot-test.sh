#!/bin/bash
# boot-test.sh: boot the Debian-based Raspberry Pi image under
# qemu-system-aarch64 (TCG, -M virt, cortex-a72, 2 CPUs, 1 GiB) and check it
# from outside, as a camera, a phone and a technician on the serial console.
#
#   scripts/boot-test.sh [--keep] [--pulls N] [IMAGE]
#
# IMAGE: artifacts/debian-rpi-arm64/livestream-debian-rpi-arm64.img.zst by
# default (.img.zst or .img). The image is never changed: the test works on a
# copy grown to 4 GiB, like a larger SD card. The kernel, initrd and
# cmdline.txt come from the copy's FAT partition (mcopy); console=ttyAMA0
# replaces the Pi's consoles. The camera is ffmpeg on the host sending
# livestreamd demo's test pattern (848x480, 30 fps, H.264 in MPEG-TS, 7 TS
# packets a datagram) into a qemu user network (restrict=on) whose host
# address is 10.5.5.9, a GoPro's address on its own Wi-Fi, so the daemon sees
# the camera's address; the guest's eth0 gets 10.5.5.100 by DHCP from it.
#
# Boot 1, first boot, no phone-side interface (AP_IFACE=wlan1 is absent),
# camera on eth0 (CAMERA_IFACE=eth0), a bad livestreamd.toml on the boot
# partition:
#   - systemd starts livestreamd and it reports READY, within seconds of
#     basic.target (it waits for no network);
#   - the bad boot-partition config is logged with file:line:column and the
#     shipped config streams: /healthz 200, /stream.ts H.264 at the shipped
#     start rung, frames flowing, from the camera's address 10.5.5.9;
#   - a random Wi-Fi password is written into livestream-network.txt on the
#     FAT (read back from outside) and shown on the console;
#   - the units for the absent adapter wait with one message, no restarts;
#     systemctl --failed lists nothing but units that need Wi-Fi hardware;
#   - the root partition and file system grew to the end of the card;
#   - power-off is clean (both file systems clean, checked from outside).
# Boot 2, a phone on the access-point side (AP_IFACE=eth1: a tap moved into
# a network namespace) and a good override with a fixed rung:
#   - the phone gets a DHCP lease from the image's dnsmasq (192.168.4.2-20)
#     and reads /stream.ts from 192.168.4.1:8080: H.264 at the configured
#     rung with its frame rate; the host reads the same;
#   - the password from boot 1 stays; clean power-off again.
# Prints power-on -> systemd -> READY -> first video byte for both boots.
# Then scripts/pull-test.sh pulls the plug N times (8; --pulls 0: none) at
# seeded random moments of first boots and of streaming, and checks after
# each that the card boots, streams and lost nothing, and that nothing is
# written to the card while it streams (its own header says how).
#
# Needs root, qemu-system-aarch64 (qemu-system-arm), mtools, zstd, fdisk,
# e2fsprogs, dosfstools, ffmpeg/ffprobe, curl, busybox (udhcpc), iproute2
# (scripts/install-deps.sh image). Everything it makes (a temporary
# directory, a tap, a namespace, qemu, ffmpeg) is removed on exit; --keep
# keeps the directory (serial logs, captures).

set -euo pipefail

REPO=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
IMAGE="$REPO/artifacts/debian-rpi-arm64/livestream-debian-rpi-arm64.img.zst"
KEEP=0
PULLS=8
while [ $# -gt 0 ]; do
	case $1 in
	--keep) KEEP=1 ;;
	--pulls)
		PULLS=$2
		shift
		;;
	-h | --help)
		sed -n '2,48p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	-*)
		echo "boot-test: unknown option $1" >&2
		exit 2
		;;
	*) IMAGE=$1 ;;
	esac
	shift
done

[ "$(id -u)" = 0 ] || { echo "boot-test: needs root (a tap and a network namespace)" >&2; exit 2; }
for tool in qemu-system-aarch64 mcopy zstd sfdisk e2fsck fsck.vfat ffmpeg ffprobe curl busybox ip python3; do
	command -v "$tool" >/dev/null 2>&1 || { echo "boot-test: $tool is missing (scripts/install-deps.sh image)" >&2; exit 2; }
done
[ -f "$IMAGE" ] || { echo "boot-test: no image at $IMAGE (scripts/build-image.sh debian rpi-arm64)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/lsboot.XXXXXX)
NS="lsbt-ph-$$"
TAP="lsbt$$"
QEMU_PID=''
CAM_PID=''
READER_PID=''
POLL_PID=''
export MTOOLS_SKIP_CHECK=1

stop_pid() {
	local _
	if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
		kill "$1" 2>/dev/null || true
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$1" 2>/dev/null || break
			sleep 0.5
		done
		kill -9 "$1" 2>/dev/null || true
		wait "$1" 2>/dev/null || true
	fi
}

cleanup() {
	stop_pid "$POLL_PID"
	stop_pid "$CAM_PID"
	stop_pid "$QEMU_PID"
	stop_pid "$READER_PID"
	exec 7>&- 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
	ip link del "$TAP" 2>/dev/null || true
	if [ "$KEEP" = 1 ]; then
		echo "boot-test: kept $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# pass, fail, skip, check
# shellcheck source=tests/image/checks.sh
. "$REPO/tests/image/checks.sh"

now() {
	echo "$EPOCHREALTIME"
}

# seconds between two $EPOCHREALTIME stamps, one decimal
since() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'
}

free_port() { # a free TCP and UDP port on 127.0.0.1
	local p
	for p in $(shuf -i 20000-60000 -n 50); do
		if ! ss -Htuln "sport = :$p" | grep -q .; then
			echo "$p"
			return
		fi
	done
	return 1
}

# --- the card -----------------------------------------------------------------

echo "# the card: a copy of $(basename "$IMAGE"), grown to 4 GiB"
CARD="$WORK/card.img"
case $IMAGE in
*.zst) zstd -q -d -c "$IMAGE" >"$CARD" ;;
*) cp --sparse=always "$IMAGE" "$CARD" ;;
esac
IMAGE_BYTES=$(stat -c %s "$CARD")
truncate -s 4G "$CARD"
# partition starts (sectors) from the MBR
read -r FAT_START ROOT_START ROOT_SECTORS < <(sfdisk -J "$CARD" | python3 -c '
import json, sys
p = json.load(sys.stdin)["partitiontable"]["partitions"]
print(p[0]["start"], p[1]["start"], p[1]["size"])')
FAT="$CARD@@$((FAT_START * 512))"
fat_get() { mcopy -n -o -i "$FAT" "::$1" "$2"; }
fat_put() { mcopy -o -i "$FAT" "$1" "::$2"; }
mdir -b -i "$FAT" :: >"$WORK/fat.list"
KERNEL_NAME=$(grep -m 1 -o 'vmlinuz-[^/]*$' "$WORK/fat.list")
INITRD_NAME=$(grep -m 1 -o 'initrd.img-[^/]*$' "$WORK/fat.list")
fat_get "$KERNEL_NAME" "$WORK/vmlinuz"
fat_get "$INITRD_NAME" "$WORK/initrd"
fat_get cmdline.txt "$WORK/cmdline.txt"
fat_get livestreamd.toml "$WORK/shipped.toml"
fat_get livestream-network.txt "$WORK/network.txt"
check "FAT holds the kernel, initrd and cmdline.txt ($KERNEL_NAME, $INITRD_NAME)" test -s "$WORK/vmlinuz" -a -s "$WORK/initrd" -a -s "$WORK/cmdline.txt"
check "cmdline.txt mounts RASPIROOT by label" grep -q 'root=LABEL=RASPIROOT' "$WORK/cmdline.txt"
# the Pi's cmdline with qemu's console instead of the Pi's
APPEND="$(tr ' ' '\n' <"$WORK/cmdline.txt" | grep . | grep -v '^console=' | paste -sd ' ') console=ttyAMA0 systemd.show_status=1 systemd.status_unit_format=name"

# The camera below sends this picture: a passthrough rung that states no
# figures shows it as it is.
CAM_W=848 CAM_H=480 CAM_FPS=30
# The shipped config's start rung and the rung boot 2 pins (the last one).
ladder() { # CONFIG INDEX -> "WIDTH HEIGHT FPS"
	awk -v want="$2" -v cw="$CAM_W" -v ch="$CAM_H" -v cf="$CAM_FPS" '
	BEGIN { v["width"] = cw; v["height"] = ch; v["fps"] = cf }
	/^\[\[ladder\]\]/ { n++; on = 1; next }
	/^\[/ { on = 0 }
	on && n - 1 == want && /^(width|height|fps) *=/ { v[$1] = $3 }
	END { print v["width"], v["height"], v["fps"] }' "$1"
}
START_RUNG=$(sed -n 's/^start_rung *= *\([0-9]*\).*/\1/p' "$WORK/shipped.toml")
RUNGS=$(grep -c '^\[\[ladder\]\]' "$WORK/shipped.toml")
read -r SHIP_W SHIP_H SHIP_FPS < <(ladder "$WORK/shipped.toml" "$START_RUNG")
PIN=$((RUNGS - 1))
read -r PIN_W PIN_H PIN_FPS < <(ladder "$WORK/shipped.toml" "$PIN")

# --- one boot -------------------------------------------------------------------

HPORT=$(free_port)
UPORT=$(free_port)
while [ "$UPORT" = "$HPORT" ]; do UPORT=$(free_port); done
SERIAL="$WORK/serial.log"

# wait_log PATTERN TIMEOUT: the host time of the first serial line matching
# the extended regexp PATTERN (from this boot), or fail after TIMEOUT s
wait_log() {
	local deadline=$((SECONDS + $2)) line
	while [ "$SECONDS" -lt "$deadline" ]; do
		if line=$(grep -m 1 -E -- "$1" "$SERIAL"); then
			echo "${line%% *}"
			return 0
		fi
		if ! kill -0 "$QEMU_PID" 2>/dev/null; then
			return 1
		fi
		sleep 0.5
	done
	return 1
}

# guest TIMEOUT COMMAND: run COMMAND in the root shell on the serial console;
# its output on stdout, its exit status as ours
guest() {
	local n=${EPOCHREALTIME/./} deadline=$((SECONDS + $1)) end
	printf 'echo @@B""EGIN-%s@@; %s; echo @@E""ND-%s@@ $?\n' "$n" "$2" "$n" >&7
	while ! end=$(grep -m 1 -E "^[0-9.]+ @@END-$n@@ [0-9]+$" "$SERIAL"); do
		if [ "$SECONDS" -ge "$deadline" ] || ! kill -0 "$QEMU_PID" 2>/dev/null; then
			echo "(no answer from the guest within $1 s to: $2)"
			return 124
		fi
		sleep 0.3
	done
	sed -n "/^[0-9.]* @@BEGIN-$n@@\$/,/^[0-9.]* @@END-$n@@ /p" "$SERIAL" | sed '1d;$d' | cut -d ' ' -f 2-
	return "${end##* }"
}

# boot NAME EXTRA_QEMU_ARGS...: power on; sets T_ON, T_SYSTEMD, T_READY,
# T_BYTE (host clock) and logs in on the serial console
boot() {
	local name=$1
	shift
	SERIAL="$WORK/serial-$name.log"
	: >"$SERIAL"
	rm -f "$WORK/ser.in" "$WORK/ser.out" "$WORK/first-byte"
	mkfifo "$WORK/ser.in" "$WORK/ser.out"
	(
		exec 3<>"$WORK/ser.out"
		while IFS= read -r -u 3 line; do
			printf '%s %s\n' "$EPOCHREALTIME" "${line%$'\r'}"
		done
	) >>"$SERIAL" &
	READER_PID=$!
	exec 7<>"$WORK/ser.in"
	# the camera: livestreamd demo's ffmpeg pipeline (src/demo.rs), into the
	# guest's UDP port 8554 through qemu
	ffmpeg -hide_banner -nostdin -loglevel error -re -f lavfi -i "testsrc=size=${CAM_W}x${CAM_H}:rate=$CAM_FPS" \
		-c:v libx264 -preset ultrafast -tune zerolatency -pix_fmt yuv420p -g 30 -b:v 3M \
		-f mpegts "udp://127.0.0.1:$UPORT?pkt_size=1316" >"$WORK/camera-$name.log" 2>&1 &
	CAM_PID=$!
	T_ON=$(now)
	qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 \
		-display none -monitor none -no-reboot -serial "pipe:$WORK/ser" \
		-kernel "$WORK/vmlinuz" -initrd "$WORK/initrd" -append "$APPEND" \
		-drive "file=$CARD,format=raw,if=none,id=card" -device virtio-blk-pci,drive=card \
		-netdev "user,id=cam,restrict=on,net=10.5.5.0/24,host=10.5.5.9,dhcpstart=10.5.5.100,hostfwd=tcp:127.0.0.1:$HPORT-:8080,hostfwd=udp:127.0.0.1:$UPORT-:8554" \
		-device virtio-net-pci,netdev=cam,romfile=,mac=52:54:00:00:00:01 \
		"$@" >"$WORK/qemu-$name.log" 2>&1 &
	QEMU_PID=$!
	# the first byte of /stream.ts at the host, polled from power-on
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
	T_SYSTEMD=$(wait_log 'Welcome to .*Debian' 240) || { fail "$name: systemd starts (no 'Welcome to' on the console)" "$(tail -n 30 "$SERIAL")"; return 1; }
	# log in on the serial console: root, no password (the local console only)
	wait_log 'livestream ttyAMA0$' 300 >/dev/null || { fail "$name: a login prompt on the serial console" "$(tail -n 20 "$SERIAL")"; return 1; }
	# twice if need be: input sent while getty starts can be lost
	local try
	for try in 1 2; do
		sleep $((try * 2))
		printf '\nroot\n' >&7
		sleep $((try * 3))
		# a plain sh without line editing, prompt or echo: only the
		# commands' output between the markers of guest()
		printf 'exec env PS1= TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 /bin/sh\n' >&7
		sleep 1
		printf 'stty -echo\n' >&7
		guest 60 'true' >/dev/null && break
	done
	if guest 30 'true' >/dev/null; then
		pass "$name: root login on the serial console"
	else
		fail "$name: root login on the serial console" "$(tail -n 20 "$SERIAL")"
		return 1
	fi
	# READY: systemd's own record (Type=notify: active = READY=1 received),
	# placed on the host's clock by systemd's start (the 'Welcome' line)
	if ! guest 300 'until systemctl -q is-active livestreamd || systemctl -q is-failed livestreamd; do sleep 1; done; systemctl -q is-active livestreamd' >/dev/null; then
		fail "$name: livestreamd reports READY" "$(guest 30 'systemctl status livestreamd --no-pager -n 30')"
		return 1
	fi
	local out userspace ready
	out=$(guest 120 'systemctl show -p UserspaceTimestampMonotonic --value; systemctl show -p ActiveEnterTimestampMonotonic --value livestreamd.service')
	read -r userspace ready < <(grep -E '^[0-9]+$' <<<"$out" | paste -sd ' ')
	T_READY=$(awk -v t="$T_SYSTEMD" -v u="$userspace" -v r="$ready" 'BEGIN { printf "%.6f", t + (r - u) / 1e6 }')
	local deadline=$((SECONDS + 180))
	while [ ! -s "$WORK/first-byte" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.5; done
	T_BYTE=$(cat "$WORK/first-byte" 2>/dev/null || echo '')
	stop_pid "$POLL_PID"
	POLL_PID=''
	[ -n "$T_BYTE" ] || { fail "$name: a first byte of /stream.ts at the host"; return 1; }
	pass "$name: power-on -> systemd $(since "$T_ON" "$T_SYSTEMD") s -> READY $(since "$T_ON" "$T_READY") s -> first video byte at the host $(since "$T_ON" "$T_BYTE") s"
}

# halt: stop this boot's qemu, camera and readers (after a failure)
halt() {
	stop_pid "$POLL_PID"
	stop_pid "$QEMU_PID"
	stop_pid "$CAM_PID"
	stop_pid "$READER_PID"
	POLL_PID='' QEMU_PID='' CAM_PID='' READER_PID=''
	exec 7>&-
}

# power_off NAME: systemctl poweroff in the guest; qemu must exit
power_off() {
	local t0 deadline from
	from=$(wc -l <"$SERIAL")
	t0=$(now)
	printf 'systemctl poweroff\n' >&7
	deadline=$((SECONDS + 120))
	while kill -0 "$QEMU_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
	if kill -0 "$QEMU_PID" 2>/dev/null; then
		fail "$1: power-off (qemu still running after 120 s)" "$(tail -n 20 "$SERIAL")"
		halt
		return 1
	fi
	halt
	if grep -q 'reboot: Power down' "$SERIAL"; then
		pass "$1: clean power-off in $(since "$t0" "$(now)") s (reboot: Power down)"
	else
		fail "$1: clean power-off" "$(tail -n 20 "$SERIAL")"
	fi
	# Not counted: journald's watchdog ping to PID 1 refused once PID 1 has
	# begun its final shutdown (systemd's own race, seen once under qemu; no
	# unit of ours is involved).
	if tail -n +$((from + 1)) "$SERIAL" | grep -E 'FAILED|Failed (un)?mount|Failed to' |
		grep -v 'systemd-journald\[[0-9]*\]: Failed to send WATCHDOG=1 notification message' >"$WORK/shutdown-failures"; then
		fail "$1: no failure while shutting down" "$(cat "$WORK/shutdown-failures")"
	else
		pass "$1: no failure while shutting down"
	fi
}

# stream_check NAME FILE W H FPS: an MPEG-TS capture is H.264 at WxH with
# frames at about FPS
stream_check() {
	local name=$1 file=$2 w=$3 h=$4 fps=$5 info got n first last rate
	# sed, not head: head exits after a line and ffprobe, still writing its
	# decoder's complaints, dies of SIGPIPE, which pipefail makes fatal.
	info=$(ffprobe -v error -select_streams v:0 -show_entries stream=codec_name,width,height -of csv=p=0 "$file" 2>&1 | sed -n 1p)
	got="$(cut -d, -f1 <<<"$info") $(cut -d, -f2 <<<"$info")x$(cut -d, -f3 <<<"$info")"
	if [ "$got" = "h264 ${w}x${h}" ]; then
		pass "$name: H.264 ${w}x${h}"
	else
		fail "$name: H.264 ${w}x${h}" "got: $info"
	fi
	ffprobe -v error -select_streams v:0 -show_entries packet=pts_time -of default=noprint_wrappers=1:nokey=1 "$file" 2>/dev/null |
		grep -E '^[0-9]+\.[0-9]+$' >"$file.pts" || true
	n=$(wc -l <"$file.pts")
	first=$(sort -n "$file.pts" | sed -n 1p)
	last=$(sort -n "$file.pts" | tail -n 1)
	rate=$(awk -v n="$n" -v a="$first" -v b="$last" 'BEGIN { if (n > 1 && b > a) printf "%.1f", (n - 1) / (b - a); else print 0 }')
	if awk -v r="$rate" -v f="$fps" 'BEGIN { exit !(r >= 0.8 * f && r <= 1.2 * f) }'; then
		pass "$name: $n frames at $rate fps (rung: $fps)"
	else
		fail "$name: frames at about $fps fps" "$n frames, $rate fps"
	fi
	RATE=$rate
}

# --- boot 1 ---------------------------------------------------------------------

echo "# boot 1: first boot, no phone-side interface, camera on eth0, a bad livestreamd.toml on the boot partition"
sed 's/^CAMERA_IFACE=.*/CAMERA_IFACE=eth0/' "$WORK/network.txt" >"$WORK/network1.txt"
fat_put "$WORK/network1.txt" livestream-network.txt
sed 's/^max_viewers = .*/max_viewers = sixteen/' "$WORK/shipped.toml" >"$WORK/bad.toml"
BAD_LINE=$(grep -n '^max_viewers = sixteen' "$WORK/bad.toml" | cut -d: -f1)
fat_put "$WORK/bad.toml" livestreamd.toml

if boot boot1; then
	B1="power-on -> systemd $(since "$T_ON" "$T_SYSTEMD") s -> READY $(since "$T_ON" "$T_READY") s -> first video byte $(since "$T_ON" "$T_BYTE") s"
	# In the guest's clock (microseconds since boot): systemd's start,
	# basic.target (normal services may start), the boot partition mounted
	# (livestreamd reads its override there), livestreamd started, READY.
	out=$(guest 120 'systemctl show -p UserspaceTimestampMonotonic --value; systemctl show -p ActiveEnterTimestampMonotonic --value basic.target boot-firmware.mount; systemctl show -p InactiveExitTimestampMonotonic -p ActiveEnterTimestampMonotonic --value livestreamd.service' || true)
	read -r userspace basic fat started ready < <(grep -E '^[0-9]+$' <<<"$out" | paste -sd ' ')
	if [ -n "${ready:-}" ] && awk -v b="$basic" -v f="$fat" -v s="$started" -v r="$ready" 'BEGIN { m = b > f ? b : f; exit !(s >= m && s - m < 10e6 && r > s && r - s < 30e6) }'; then
		pass "boot1: with no phone-side interface, livestreamd starts $(awk -v b="$basic" -v f="$fat" -v s="$started" 'BEGIN { m = b > f ? b : f; printf "%.1f", (s - m) / 1e6 }') s after basic.target and the boot partition (at $(awk -v u="$userspace" -v b="$basic" 'BEGIN { printf "%.1f", (b - u) / 1e6 }') and $(awk -v u="$userspace" -v f="$fat" 'BEGIN { printf "%.1f", (f - u) / 1e6 }') s of systemd) and is READY $(awk -v s="$started" -v r="$ready" 'BEGIN { printf "%.1f", (r - s) / 1e6 }') s later ($(awk -v u="$userspace" -v r="$ready" 'BEGIN { printf "%.1f", (r - u) / 1e6 }') s after systemd started)"
	else
		fail "boot1: livestreamd starts within 10 s of basic.target and the boot partition, and is READY within 30 s" "$out"
	fi
	out=$(guest 120 'systemd-analyze critical-chain livestreamd.service' || true)
	if grep -qE 'network\.target|livestream-(dhcp|ap|net)\.service' <<<"$out"; then
		fail "boot1: livestreamd's start waits for no network unit" "$out"
	else
		pass "boot1: livestreamd's start waits for no network unit"
	fi
	out=$(guest 120 'journalctl -b -u livestreamd -o cat --no-pager | grep -E "bad config|configuration:"' || true)
	if grep -qE "bad config, ignored: /boot/livestreamd.toml:$BAD_LINE:[0-9]+: " <<<"$out" &&
		grep -qF "configuration: /etc/livestreamd/livestreamd.toml" <<<"$out"; then
		pass "boot1: the bad boot-partition config is logged with file:line:column, the shipped one is used"
	else
		fail "boot1: the bad boot-partition config is logged with file:line:column, the shipped one is used" "$out"
	fi
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$HPORT/healthz" || true)
	check "boot1: /healthz 200 (got $code)" test "$code" = 200
	curl -s --max-time 12 -o "$WORK/boot1.ts" "http://127.0.0.1:$HPORT/stream.ts" || true
	stream_check "boot1: /stream.ts at the shipped start rung" "$WORK/boot1.ts" "$SHIP_W" "$SHIP_H" "$SHIP_FPS"
	B1_RATE=$RATE
	sender=$(curl -s --max-time 10 "http://127.0.0.1:$HPORT/status" | python3 -c 'import json, sys; print(json.load(sys.stdin)["source"].get("sender") or "")' 2>&1 || true)
	check "boot1: the camera's datagrams come from its address 10.5.5.9 (got $sender)" test "${sender%:*}" = 10.5.5.9
	# the access point's password: written to the FAT, shown on the console
	PW=$(grep -m 1 -oE "with the password '[a-z0-9-]+'" "$SERIAL" | cut -d"'" -f2)
	if [[ $PW =~ ^[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}$ ]]; then
		pass "boot1: a random Wi-Fi password is shown on the console ($PW)"
	else
		fail "boot1: a random Wi-Fi password is shown on the console" "$(grep 'livestream:' "$SERIAL" | tail -n 5)"
	fi
	out=$(guest 120 'systemctl --failed --plain --no-legend; echo; systemctl show -p NRestarts livestream-ap livestream-dhcp; journalctl -b -o cat -u livestream-ap -u livestream-dhcp --no-pager | grep -c "waiting for wlan1"' || true)
	failed=$(sed '/^$/q' <<<"$out" | awk 'NF { print $1 }' | grep -vxE 'livestream-(ap|camera|dhcp)\.service' || true)
	if [ -z "$failed" ]; then
		pass "boot1: systemctl --failed: nothing but units that need Wi-Fi hardware ($(sed '/^$/q' <<<"$out" | awk 'NF { print $1 }' | paste -sd ' ' | sed 's/^$/none/'))"
	else
		fail "boot1: systemctl --failed: nothing but units that need Wi-Fi hardware" "$out"
	fi
	if [ "$(grep -c '^NRestarts=0$' <<<"$out")" = 2 ] && [ "$(tail -n 1 <<<"$out")" = 2 ]; then
		pass "boot1: livestream-ap and livestream-dhcp wait for the absent wlan1 with one message each, no restarts"
	else
		fail "boot1: livestream-ap and livestream-dhcp wait for the absent wlan1 with one message each, no restarts" "$out"
	fi
	out=$(guest 120 'journalctl -b -o cat -u livestream-growroot --no-pager | grep "grown from"' || true)
	check "boot1: the root partition grows to the card on first boot (${out#*: })" grep -q 'grown from' <<<"$out"
	out=$(guest 60 'cat /proc/sys/net/ipv4/conf/all/rp_filter /proc/sys/net/ipv4/conf/default/rp_filter' || true)
	rp=$(tr -d '\r' <<<"$out" | paste -sd ' ')
	check "boot1: strict reverse-path filter (all, default), so no phone passes for the camera ($rp)" test "$rp" = "1 1"
	power_off boot1
else
	B1='did not boot'
	halt
fi

echo "# after boot 1, from outside"
fat_get livestream-network.txt "$WORK/network1-after.txt"
check "the password on the console is in livestream-network.txt on the FAT" grep -qx "AP_PASSWORD=${PW:-none}" "$WORK/network1-after.txt"
check "nothing else in livestream-network.txt changed" diff <(grep -v '^AP_PASSWORD=' "$WORK/network1.txt") <(grep -v '^AP_PASSWORD=' "$WORK/network1-after.txt")
# file systems: clean after the power-off, the root one grown to the card
read -r P2_START P2_SIZE < <(sfdisk -J "$CARD" | python3 -c '
import json, sys
p = json.load(sys.stdin)["partitiontable"]["partitions"][1]
print(p["start"], p["size"])')
card_sectors=$(($(stat -c %s "$CARD") / 512))
check "the root partition ends at the end of the card ($((P2_SIZE / 2048)) MiB, was $((ROOT_SECTORS / 2048)) MiB)" test $((P2_START + P2_SIZE)) = "$card_sectors"
fs_check() { # NAME
	dd if="$CARD" of="$WORK/fat.part" bs=512 skip="$FAT_START" count=$((ROOT_START - FAT_START)) conv=sparse status=none
	check "$1: the FAT file system is clean" fsck.vfat -n "$WORK/fat.part"
	dd if="$CARD" of="$WORK/root.part" bs=1M iflag=skip_bytes skip=$((P2_START * 512)) conv=sparse status=none
	check "$1: the root file system is clean (e2fsck -fn)" e2fsck -fn "$WORK/root.part"
	blocks=$(dumpe2fs -h "$WORK/root.part" 2>/dev/null | awk -F: '/^Block count/ { c = $2 } /^Block size/ { s = $2 } END { printf "%.0f", c * s }')
	check "$1: the root file system fills its partition ($((blocks / 1048576)) MiB)" test $((P2_SIZE * 512 - blocks)) -lt $((8 * 1048576))
	rm -f "$WORK/fat.part" "$WORK/root.part"
}
fs_check "after boot 1"

# --- boot 2 ---------------------------------------------------------------------

echo "# boot 2: a phone on the access-point side (eth1), a fixed ${PIN_W}x${PIN_H}@${PIN_FPS} rung in livestreamd.toml"
sed 's/^AP_IFACE=.*/AP_IFACE=eth1/' "$WORK/network1-after.txt" >"$WORK/network2.txt"
fat_put "$WORK/network2.txt" livestream-network.txt
sed -e "s/^start_rung = .*/start_rung = $PIN/" -e 's/^mode = "auto"/mode = "fixed"/' "$WORK/shipped.toml" >"$WORK/pinned.toml"
if ! grep -qx "start_rung = $PIN" "$WORK/pinned.toml" || ! grep -qx 'mode = "fixed"' "$WORK/pinned.toml"; then
	fail "could not pin the rung in the test's livestreamd.toml"
fi
fat_put "$WORK/pinned.toml" livestreamd.toml
ip netns add "$NS"
ip tuntap add dev "$TAP" mode tap
ip link set "$TAP" up
if boot boot2 -netdev "tap,id=phone,ifname=$TAP,script=no,downscript=no" -device virtio-net-pci,netdev=phone,romfile=,mac=52:54:00:00:00:02; then
	B2="power-on -> systemd $(since "$T_ON" "$T_SYSTEMD") s -> READY $(since "$T_ON" "$T_READY") s -> first video byte $(since "$T_ON" "$T_BYTE") s"
	# the phone: the tap, in its own namespace, gets an address by DHCP
	ip link set "$TAP" netns "$NS"
	ip -n "$NS" link set lo up
	ip -n "$NS" link set "$TAP" up
	cat >"$WORK/udhcpc.sh" <<EOF
#!/bin/sh
[ "\$1" = bound ] || exit 0
echo "\$ip \${router:-none} \${dns:-none}" >"$WORK/lease"
ip addr add "\$ip/\${mask:-24}" dev "\$interface"
EOF
	chmod 755 "$WORK/udhcpc.sh"
	if ip netns exec "$NS" busybox udhcpc -i "$TAP" -n -q -f -t 30 -T 2 -s "$WORK/udhcpc.sh" >"$WORK/udhcpc.log" 2>&1 && [ -s "$WORK/lease" ]; then
		read -r lease_ip lease_router lease_dns <"$WORK/lease"
		last=${lease_ip##*.}
		if [ "${lease_ip%.*}" = 192.168.4 ] && [ "$last" -ge 2 ] && [ "$last" -le 20 ] && [ "$lease_router" = none ] && [ "$lease_dns" = none ]; then
			pass "boot2: the phone gets $lease_ip from the image's dnsmasq (no gateway, no DNS)"
		else
			fail "boot2: the phone gets an address in 192.168.4.2-20 with no gateway and no DNS" "$(cat "$WORK/lease")"
		fi
	else
		fail "boot2: the phone gets a DHCP lease" "$(cat "$WORK/udhcpc.log")"
	fi
	ip netns exec "$NS" curl -s --max-time 12 -o "$WORK/phone.ts" "http://192.168.4.1:8080/stream.ts" || true
	stream_check "boot2: the phone reads /stream.ts from 192.168.4.1:8080" "$WORK/phone.ts" "$PIN_W" "$PIN_H" "$PIN_FPS"
	B2_RATE=$RATE
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$HPORT/healthz" || true)
	check "boot2: /healthz 200 (got $code)" test "$code" = 200
	check "boot2: the console names the phones' wired link and address" grep -qF "livestream: phones on eth1 open http://192.168.4.1:8080/" "$SERIAL"
	out=$(guest 120 'systemctl --failed --plain --no-legend' || true)
	if [ -z "$(awk 'NF { print $1 }' <<<"$out")" ]; then
		pass "boot2: systemctl --failed is empty"
	else
		fail "boot2: systemctl --failed is empty" "$out"
	fi
	power_off boot2
else
	B2='did not boot'
	halt
fi
fs_check "after boot 2"
check "the password stays across boots" grep -qx "AP_PASSWORD=${PW:-none}" <(mtype -i "$FAT" ::livestream-network.txt | tr -d '\r')

if [ "$PULLS" -gt 0 ]; then
	echo "# pulling the plug: scripts/pull-test.sh --pulls $PULLS"
	if "$REPO/scripts/pull-test.sh" --pulls "$PULLS" "$IMAGE"; then
		pass "pull-test: $PULLS pulls survived, nothing written to the card while streaming"
	else
		fail "pull-test (its seed and each pull's moment are above)"
	fi
fi

echo
echo "image: $(basename "$IMAGE") ($(stat -c %s "$IMAGE" | awk '{ printf "%.0f", $1 / 1e6 }') MB, $((IMAGE_BYTES / 1048576)) MiB raw)"
echo "boot 1 (first boot, no phone side, bad boot config): $B1; ${B1_RATE:-?} fps at ${SHIP_W}x${SHIP_H}"
echo "boot 2 (phone on eth1, fixed rung): $B2; ${B2_RATE:-?} fps at ${PIN_W}x${PIN_H}"
echo "$PASS passed, $FAIL failed, $SKIP skipped"
[ "$FAIL" -eq 0 ]
