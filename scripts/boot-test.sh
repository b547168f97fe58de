#!/bin/bash
# boot-test.sh: boot the Debian-based Raspberry Pi image under
# qemu-system-aarch64 (TCG, -M virt, cortex-a72, 2 CPUs, 1 GiB) and check it
# from outside, as a GoPro, a phone and a technician on the serial console:
# the field in a box.
#
#   scripts/boot-test.sh [--keep] [--pulls N] [IMAGE]
#
# IMAGE: artifacts/debian-rpi-arm64/livestream-debian-rpi-arm64.img.zst by
# default (.img.zst or .img). The image is never changed: the test works on a
# copy grown to 4 GiB, like a larger SD card, into which it puts (debugfs)
# tests/image/field/: a test-only unit that loads mac80211_hwsim (simulated
# Wi-Fi radios) before the field network starts and moves every radio but
# the Pi's first one into network namespaces, and a phone. The kernel,
# initrd and cmdline.txt come from the copy's FAT partition (mcopy);
# console=ttyAMA0 replaces the Pi's consoles. The host reaches the daemon
# through a qemu user network (the guest's 10.0.2.15, set by the test unit;
# no camera or phone traffic goes there). The camera is `livestreamd
# fake-gopro` (Open GoPro) on the host, in a network namespace with its own
# DHCP server, behind a tap: bridged to a simulated GoPro access point in
# the guest (boot 2), or as the guest's USB network device (boot 1).
#
# Boot 1, first boot, GoPro on USB, nothing configured in
# livestream-network.txt, a bad livestreamd.toml on the boot partition;
# two radios (the Pi's, the phone's):
#   - the camera is a USB network device (qemu-xhci + usb-net on a host tap)
#     whose DHCP server is the camera at 172.24.156.51 (a GoPro's USB
#     address); the image brings the link up by DHCP and the daemon finds
#     the camera there;
#   - systemd starts livestreamd and it reports READY, within seconds of
#     basic.target (it waits for no network);
#   - the bad boot-partition config is logged with file:line:column and the
#     shipped config streams: /healthz 200, /stream.ts H.264 at the shipped
#     start rung, frames flowing, from the camera's address;
#   - a random Wi-Fi password is written into livestream-network.txt on the
#     FAT (read back from outside) and shown on the console;
#   - with the camera not on Wi-Fi, the Pi's own radio (wlan0) is the
#     phones' access point: said on the console, in /status (network) and
#     in livestream-status.txt on the FAT;
#   - the phone joins with the password from the FAT, gets an address, the
#     Pi as router and DNS, livestream.lan resolves to the Pi, the captive-
#     portal probes of Android, Apple, Windows and Firefox are redirected to
#     the page, the page loads, and /stream.ts (by name, port 80) carries
#     H.264 at the start rung;
#   - systemctl --failed is empty; the root partition and file system grew
#     to the end of the card; power-off is clean (both file systems clean,
#     checked from outside).
# Boot 2, the same card, GoPro on Wi-Fi: the user writes the camera's SSID
# and password into livestream-network.txt (as the README says) and an
# override pinning the last rung into livestreamd.toml; three radios, each
# advertising one interface combination (one channel at a time, like the
# Pi's own chip): the Pi's, the GoPro's (an access point on channel 11,
# bridged to the host's camera at 10.5.5.9), the phone's:
#   - one chip, camera on Wi-Fi: the phones' access point runs beside the
#     camera's connection (ap0) on the camera's channel, not AP_CHANNEL;
#   - the Pi joins the GoPro, the daemon streams from 10.5.5.9; the phone as
#     in boot 1, at the pinned rung with its frame rate;
#   - the password from boot 1 stays; clean power-off again.
# Prints power-on -> systemd -> READY -> camera found -> first video byte at
# the phone (over the simulated radio) and at the host, for both boots.
#
# Needs root, qemu-system-aarch64 (qemu-system-arm), mtools, zstd, fdisk,
# e2fsprogs (debugfs), dosfstools, ffmpeg/ffprobe, curl, iproute2, dnsmasq,
# python3, cargo (the host's livestreamd for fake-gopro)
# (scripts/install-deps.sh image). Everything it makes (a temporary
# directory, taps, namespaces, qemu, the camera) is removed on exit; --keep
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
		sed -n '2,66p' "$0" | sed 's/^# \{0,1\}//'
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

[ "$(id -u)" = 0 ] || { echo "boot-test: needs root (taps and network namespaces)" >&2; exit 2; }
for tool in qemu-system-aarch64 mcopy zstd sfdisk e2fsck debugfs fsck.vfat ffmpeg ffprobe curl ip dnsmasq python3 cargo; do
	command -v "$tool" >/dev/null 2>&1 || { echo "boot-test: $tool is missing (scripts/install-deps.sh image)" >&2; exit 2; }
done
[ -f "$IMAGE" ] || { echo "boot-test: no image at $IMAGE (scripts/build-image.sh debian rpi-arm64)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/lsboot.XXXXXX)
NS_CAM="lsbt-cam-$$"
TAP_CAM="lsbtc$$"
QEMU_PID=''
CAM_PID=''
DHCP_PID=''
READER_PID=''
POLL_PID=''
export MTOOLS_SKIP_CHECK=1
FIELD="$REPO/tests/image/field"
# The camera's addresses: a GoPro's own Wi-Fi, and its USB link
# (172.2X.1YZ.51, X, Y, Z from its serial number).
WIFI_CAM=10.5.5.9
USB_CAM=172.24.156.51
# The simulated GoPro's Wi-Fi, as a user copies it from the camera's menu;
# its channel is not the access point's default (AP_CHANNEL=6).
GOPRO_SSID=GP24500456
GOPRO_PASSWORD='pie-7Kx-Lqw'
GOPRO_CHANNEL=11
MGMT_MAC=52:54:00:00:00:01
GOPRO_MAC=52:54:00:00:00:0b

cleanup() {
	stop_pid "$POLL_PID"
	stop_pid "$CAM_PID"
	stop_pid "$DHCP_PID"
	stop_pid "$QEMU_PID"
	stop_pid "$READER_PID"
	exec 7>&- 2>/dev/null || true
	ip netns del "$NS_CAM" 2>/dev/null || true
	ip link del "$TAP_CAM" 2>/dev/null || true
	if [ "$KEEP" = 1 ]; then
		echo "boot-test: kept $WORK"
	else
		rm -rf "$WORK"
	fi
}
# shellcheck source=scripts/lib/proc.sh
. "$REPO/scripts/lib/proc.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

# pass, fail, skip, check
# shellcheck source=tests/image/checks.sh
. "$REPO/tests/image/checks.sh"

# The host's livestreamd, for the camera emulator.
echo "# the camera emulator: the host's livestreamd (cargo build)"
cargo build --locked --quiet --bin livestreamd --manifest-path "$REPO/Cargo.toml" >"$WORK/cargo.log" 2>&1 ||
	{ cat "$WORK/cargo.log"; echo "boot-test: cannot build livestreamd for the host" >&2; exit 2; }
HOSTBIN="${CARGO_TARGET_DIR:-$REPO/target}/debug/livestreamd"
# fake-gopro names a model (--model) or, before that, an API (--kind).
if "$HOSTBIN" fake-gopro --help 2>&1 | grep -q -- '--model'; then
	CAM_MODEL=(--model hero12)
else
	CAM_MODEL=(--kind open-gopro)
fi

# --- the card -----------------------------------------------------------------

echo "# the card: a copy of $(basename "$IMAGE"), grown to 4 GiB, with the test's field in it"
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

# The test's field in the copy's root file system (debugfs, offline): the
# unit that brings up the simulated radios, the phone, and the phone's
# resolv.conf (ip netns exec binds /etc/netns/phone/resolv.conf).
ROOTFS="$CARD?offset=$((ROOT_START * 512))"
# rootfs_put FILE DEST: replace DEST in the copy's root file system with FILE.
# rm and write in separate debugfs runs: in one run, write reuses the freed
# inode with its old size (the guest then read a file cut to the old length).
rootfs_put() {
	debugfs -w -R "rm $2" "$ROOTFS" >/dev/null 2>&1
	debugfs -w -R "write $1 $2" "$ROOTFS" >"$WORK/debugfs.log" 2>&1
	debugfs -R "cat $2" "$ROOTFS" 2>/dev/null | cmp -s - "$1" &&
		[ "$(debugfs -R "stat $2" "$ROOTFS" 2>/dev/null | grep -o 'Size: [0-9]*' | head -n 1)" = "Size: $(stat -c %s "$1")" ]
}
# fieldtest_conf LINES...: the test unit's settings for the next boot
fieldtest_conf() {
	printf '%s\n' "$@" >"$WORK/fieldtest.conf"
	rootfs_put "$WORK/fieldtest.conf" /etc/livestream-fieldtest.conf
}
{
	echo "write $FIELD/fieldtest /usr/local/sbin/fieldtest"
	echo "sif /usr/local/sbin/fieldtest mode 0100755"
	for u in livestream-fieldtest livestream-fieldtest-phone; do
		echo "write $FIELD/$u.service /etc/systemd/system/$u.service"
	done
	echo "mkdir /etc/systemd/system/sysinit.target.wants"
	echo "symlink /etc/systemd/system/sysinit.target.wants/livestream-fieldtest.service /etc/systemd/system/livestream-fieldtest.service"
	echo "symlink /etc/systemd/system/multi-user.target.wants/livestream-fieldtest-phone.service /etc/systemd/system/livestream-fieldtest-phone.service"
	echo "mkdir /etc/netns"
	echo "mkdir /etc/netns/phone"
	echo "symlink /etc/netns/phone/resolv.conf /run/fieldtest/phone-resolv.conf"
} | debugfs -w -f - "$ROOTFS" >"$WORK/debugfs.log" 2>&1
check "the test's field is in the copy (fieldtest and its units)" \
	sh -c "debugfs -R 'stat /usr/local/sbin/fieldtest' '$ROOTFS' 2>/dev/null | grep -q 'Mode:  0755' &&
		debugfs -R 'ls /etc/systemd/system/sysinit.target.wants' '$ROOTFS' 2>/dev/null | grep -q livestream-fieldtest.service"

# The camera (fake-gopro's default test pattern) sends this picture: a
# passthrough rung that states no figures shows it as it is.
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
# The shipped config's camera kind: before "auto" (the camera found by
# itself, at 10.5.5.9 or a USB link's peer), the test names the camera.
SHIP_KIND=$(awk '/^\[/ { s = $0 } s == "[camera]" && /^kind *=/ { gsub(/"/, "", $3); print $3 }' "$WORK/shipped.toml")
SHIP_KIND=${SHIP_KIND:-auto}
# camera_kind CONFIG ADDRESS: CONFIG with the camera named, unless the
# shipped config finds it by itself
camera_kind() {
	if [ "$SHIP_KIND" = auto ]; then
		cat "$1"
	else
		awk -v a="$2" '
		/^\[/ { s = $0 }
		s == "[camera]" && /^kind *=/ { print "kind = \"open-gopro\""; print "address = \"" a "\""; next }
		{ print }' "$1"
	fi
}

# --- one boot -------------------------------------------------------------------

HPORT=$(free_port)
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

# camera_up ADDRESS RANGE: the camera's side on the host, once qemu holds its
# tap: the tap in a namespace at ADDRESS/24, a DHCP server for the Pi
# (RANGE) and the camera emulator at ADDRESS:8080.
camera_up() {
	local name=$1 addr=$2 range=$3
	# qemu has opened the tap once it has a carrier (it is up, see boot)
	for _ in $(seq 1 300); do
		ip link show "$TAP_CAM" 2>/dev/null | grep -q NO-CARRIER || break
		sleep 0.1
	done
	if ip link show "$TAP_CAM" | grep -q NO-CARRIER; then
		fail "$name: qemu opens the camera's tap" "$(cat "$WORK/qemu-$name.log")"
	fi
	ip netns add "$NS_CAM"
	ip link set "$TAP_CAM" netns "$NS_CAM"
	ip -n "$NS_CAM" link set lo up
	ip -n "$NS_CAM" addr add "$addr/24" dev "$TAP_CAM"
	ip -n "$NS_CAM" link set "$TAP_CAM" up
	ip netns exec "$NS_CAM" dnsmasq --keep-in-foreground --port=0 --interface="$TAP_CAM" --bind-interfaces \
		--dhcp-range="$range,255.255.255.0,1h" --dhcp-authoritative --dhcp-leasefile="$WORK/camera-$name.leases" \
		--pid-file="$WORK/camera-dnsmasq.pid" --log-dhcp >"$WORK/camera-dhcp-$name.log" 2>&1 &
	DHCP_PID=$!
	ip netns exec "$NS_CAM" "$HOSTBIN" fake-gopro "${CAM_MODEL[@]}" --http "$addr:8080" --size "${CAM_W}x$CAM_H" --fps "$CAM_FPS" \
		--record "$WORK/camera-$name.jsonl" >"$WORK/camera-$name.log" 2>&1 &
	CAM_PID=$!
}

# boot NAME CAMERA_ADDRESS DHCP_RANGE EXTRA_QEMU_ARGS...: power on with the
# camera's tap; sets T_ON, T_SYSTEMD, T_READY, T_CAMERA (camera found: /status
# names how it was found, or the camera first answered), T_BYTE (first byte of /stream.ts at the host) on
# the host's clock, and logs in on the serial console
boot() {
	local name=$1 cam=$2 range=$3
	shift 3
	SERIAL="$WORK/serial-$name.log"
	: >"$SERIAL"
	rm -f "$WORK/ser.in" "$WORK/ser.out" "$WORK/first-byte" "$WORK/camera-found"
	mkfifo "$WORK/ser.in" "$WORK/ser.out"
	(
		exec 3<>"$WORK/ser.out"
		while IFS= read -r -u 3 line; do
			printf '%s %s\n' "$EPOCHREALTIME" "${line%$'\r'}"
		done
	) >>"$SERIAL" &
	READER_PID=$!
	exec 7<>"$WORK/ser.in"
	ip tuntap add dev "$TAP_CAM" mode tap
	ip link set "$TAP_CAM" up
	T_ON=$(now)
	qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 \
		-display none -monitor none -no-reboot -serial "pipe:$WORK/ser" \
		-kernel "$WORK/vmlinuz" -initrd "$WORK/initrd" -append "$APPEND" \
		-drive "file=$CARD,format=raw,if=none,id=card" -device virtio-blk-pci,drive=card \
		-netdev "user,id=mgmt,restrict=on,hostfwd=tcp:127.0.0.1:$HPORT-10.0.2.15:8080" \
		-device "virtio-net-pci,netdev=mgmt,romfile=,mac=$MGMT_MAC" \
		-netdev "tap,id=cam,ifname=$TAP_CAM,script=no,downscript=no" \
		"$@" >"$WORK/qemu-$name.log" 2>&1 &
	QEMU_PID=$!
	camera_up "$name" "$cam" "$range"
	# from power-on: the daemon's first answer from the camera, and the
	# first byte of /stream.ts at the host
	(
		while [ ! -s "$WORK/camera-found" ] || [ ! -s "$WORK/first-byte" ]; do
			t=$(now)
			if [ ! -s "$WORK/camera-found" ] &&
				curl -s --max-time 2 "http://127.0.0.1:$HPORT/status" | grep -qE '"found_by": "|"last_ok_unix": [0-9]'; then
				echo "$t" >"$WORK/camera-found"
			fi
			if [ ! -s "$WORK/first-byte" ]; then
				out=$(curl -s --max-time 3 -o /dev/null -w '%{size_download} %{time_starttransfer}' "http://127.0.0.1:$HPORT/stream.ts") || true
				if [ "${out%% *}" -gt 0 ] 2>/dev/null; then
					awk -v t="$t" -v s="${out#* }" 'BEGIN { printf "%.6f\n", t + s }' >"$WORK/first-byte"
				fi
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
	local out ready
	out=$(guest 120 'systemctl show -p UserspaceTimestampMonotonic --value; systemctl show -p ActiveEnterTimestampMonotonic --value livestreamd.service')
	read -r USERSPACE ready < <(grep -E '^[0-9]+$' <<<"$out" | paste -sd ' ')
	T_READY=$(guest_time "$(awk -v r="$ready" 'BEGIN { printf "%.6f", r / 1e6 }')")
	local deadline=$((SECONDS + 180))
	while { [ ! -s "$WORK/first-byte" ] || [ ! -s "$WORK/camera-found" ]; } && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.5; done
	T_BYTE=$(cat "$WORK/first-byte" 2>/dev/null || echo '')
	T_CAMERA=$(cat "$WORK/camera-found" 2>/dev/null || echo '')
	stop_pid "$POLL_PID"
	POLL_PID=''
	[ -n "$T_CAMERA" ] || fail "$name: the daemon finds the camera (/status camera.found_by or last_ok_unix)" "$(curl -s --max-time 5 "http://127.0.0.1:$HPORT/status" | python3 -c 'import json, sys; print(json.load(sys.stdin)["camera"])' 2>&1)"
	[ -n "$T_BYTE" ] || { fail "$name: a first byte of /stream.ts at the host"; return 1; }
	pass "$name: power-on -> systemd $(since "$T_ON" "$T_SYSTEMD") s -> READY $(since "$T_ON" "$T_READY") s -> camera found ${T_CAMERA:+$(since "$T_ON" "$T_CAMERA")} s -> first video byte at the host $(since "$T_ON" "$T_BYTE") s"
}

# guest_time SECONDS: a time on the guest's clock (seconds since its kernel
# started) on the host's clock, through systemd's start (USERSPACE, in us)
# and the host's time of its 'Welcome' line
guest_time() {
	awk -v t="$T_SYSTEMD" -v u="$USERSPACE" -v g="$1" 'BEGIN { printf "%.6f", t + g - u / 1e6 }'
}

# halt: stop this boot's qemu, camera and readers (after a failure)
halt() {
	stop_pid "$POLL_PID"
	stop_pid "$QEMU_PID"
	stop_pid "$CAM_PID"
	stop_pid "$DHCP_PID"
	stop_pid "$READER_PID"
	POLL_PID='' QEMU_PID='' CAM_PID='' DHCP_PID='' READER_PID=''
	exec 7>&-
	ip netns del "$NS_CAM" 2>/dev/null || true
	ip link del "$TAP_CAM" 2>/dev/null || true
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

# status_field EXPR: a field of /status (python expression on s), via the host
status_field() {
	curl -s --max-time 10 "http://127.0.0.1:$HPORT/status" |
		python3 -c "import json, sys; s = json.load(sys.stdin); print($1)" 2>&1 || true
}

# phone_checks NAME W H: the simulated phone's results (fieldtest phone),
# read over the serial console: joined with the FAT's password, lease,
# DNS, captive-portal probes, the page, /stream.ts. Sets T_PHONE.
# link_field NAME "ssid S freq F": the value after NAME (iw prints the
# fields in its own order)
link_field() {
	awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' <<<"$2"
}

phone_checks() {
	local name=$1 w=$2 h=$3 res lease probes
	guest 420 'while ! grep -q "^phone_done=\|^failed=" /run/fieldtest/result; do sleep 2; done' >/dev/null
	res=$(guest 60 'cat /run/fieldtest/result' || true)
	printf '%s\n' "$res" >"$WORK/phone-$name.result"
	r() { sed -n "s/^$1=//p" "$WORK/phone-$name.result" | tail -n 1; }
	if [ -n "$(r failed)" ]; then
		fail "$name: the phone" "$(r failed)
$(guest 60 'tail -n 20 /run/fieldtest/log; tail -n 15 /run/fieldtest/phone-wpa.log' || true)"
	fi
	if [ -n "$(r phone_joined)" ]; then
		pass "$name: the phone joins '$(link_field ssid "$(r phone_link)")' (freq $(link_field freq "$(r phone_link)")) with the password the first boot wrote to the FAT"
	else
		fail "$name: the phone joins the access point"
	fi
	read -r -a lease <<<"$(r phone_lease)"
	if [[ ${lease[0]:-} =~ ^192\.168\.4\.([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -ge 2 ] && [ "${BASH_REMATCH[1]}" -le 20 ] &&
		[ "${lease[1]:-}" = 192.168.4.1 ] && [ "${lease[2]:-}" = 192.168.4.1 ]; then
		pass "$name: the phone gets ${lease[0]} by DHCP, the Pi as router and DNS"
	else
		fail "$name: the phone gets an address in 192.168.4.2-20, the Pi as router and DNS" "$(r phone_lease)"
	fi
	check "$name: the Pi's DNS answers livestream.lan (got $(r dns_short)) and the probes' names (got $(r dns_probe))" \
		test "$(r dns_short) $(r dns_probe)" = "192.168.4.1 192.168.4.1"
	probes=$(grep '^probe_' "$WORK/phone-$name.result" | cut -d= -f2-)
	if [ "$(grep -c ' 302 http://livestream.lan/$' <<<"$probes")" = 4 ]; then
		pass "$name: the captive-portal probes (Android, Apple, Windows, Firefox) are sent to http://livestream.lan/"
	else
		fail "$name: the captive-portal probes are sent to http://livestream.lan/" "$probes"
	fi
	check "$name: the page the probes lead to loads ($(r page))" grep -qE '^livestream.lan 200 [1-9]' <<<"$(r page)"
	check "$name: the phone's /stream.ts (by name, port 80) is H.264 ${w}x${h} ($(r video))" \
		grep -qE "^h264,$w,$h,[1-9][0-9]*$" <<<"$(r video)"
	T_PHONE=''
	if [ -n "$(r first_byte)" ]; then
		T_PHONE=$(guest_time "$(r first_byte)")
	fi
}

# --- boot 1 ---------------------------------------------------------------------

echo "# boot 1: first boot, GoPro on USB, nothing in livestream-network.txt, a bad livestreamd.toml on the boot partition"
sed 's/^max_viewers = .*/max_viewers = sixteen/' "$WORK/shipped.toml" >"$WORK/bad.toml"
BAD_LINE=$(grep -n '^max_viewers = sixteen' "$WORK/bad.toml" | cut -d: -f1)
fat_put "$WORK/bad.toml" livestreamd.toml
if [ "$SHIP_KIND" != auto ]; then
	# Until the daemon finds the camera by itself, the image's own config names it.
	camera_kind "$WORK/shipped.toml" "$USB_CAM" >"$WORK/image-usb.toml"
	rootfs_put "$WORK/image-usb.toml" /etc/livestreamd/livestreamd.toml || fail "the image's config names the camera" "$(cat "$WORK/debugfs.log")"
	echo "(the shipped config has kind = \"$SHIP_KIND\": this boot's image config names the camera, open-gopro at $USB_CAM)"
fi
check "boot1: the test unit's settings (USB camera, two radios)" fieldtest_conf SCENARIO=usb RADIOS=2 "MGMT_MAC=$MGMT_MAC"

if boot boot1 "$USB_CAM" "${USB_CAM%.*}.52,${USB_CAM%.*}.60" -device qemu-xhci -device "usb-net,netdev=cam,mac=52:54:00:00:00:0c"; then
	B1="power-on -> systemd $(since "$T_ON" "$T_SYSTEMD") s -> READY $(since "$T_ON" "$T_READY") s -> camera found ${T_CAMERA:+$(since "$T_ON" "$T_CAMERA")} s -> first video byte $(since "$T_ON" "$T_BYTE") s at the host"
	# In the guest's clock (microseconds since boot): systemd's start,
	# basic.target (normal services may start), the boot partition mounted
	# (livestreamd reads its override there), livestreamd started, READY.
	out=$(guest 120 'systemctl show -p UserspaceTimestampMonotonic --value; systemctl show -p ActiveEnterTimestampMonotonic --value basic.target boot-firmware.mount; systemctl show -p InactiveExitTimestampMonotonic -p ActiveEnterTimestampMonotonic --value livestreamd.service' || true)
	read -r userspace basic fat started ready < <(grep -E '^[0-9]+$' <<<"$out" | paste -sd ' ')
	if [ -n "${ready:-}" ] && awk -v b="$basic" -v f="$fat" -v s="$started" -v r="$ready" 'BEGIN { m = b > f ? b : f; exit !(s >= m && s - m < 10e6 && r > s && r - s < 30e6) }'; then
		pass "boot1: livestreamd starts $(awk -v b="$basic" -v f="$fat" -v s="$started" 'BEGIN { m = b > f ? b : f; printf "%.1f", (s - m) / 1e6 }') s after basic.target and the boot partition (at $(awk -v u="$userspace" -v b="$basic" 'BEGIN { printf "%.1f", (b - u) / 1e6 }') and $(awk -v u="$userspace" -v f="$fat" 'BEGIN { printf "%.1f", (f - u) / 1e6 }') s of systemd) and is READY $(awk -v s="$started" -v r="$ready" 'BEGIN { printf "%.1f", (r - s) / 1e6 }') s later ($(awk -v u="$userspace" -v r="$ready" 'BEGIN { printf "%.1f", (r - u) / 1e6 }') s after systemd started)"
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
	# the camera's USB link: up by DHCP, with nothing configured
	# shellcheck disable=SC2016 # expanded by the guest's shell
	out=$(guest 60 'for d in /sys/class/net/*/device/driver; do i=${d#/sys/class/net/}; i=${i%%/*}; echo "$i $(basename "$(readlink "$d")") $(ip -4 -o addr show dev "$i" | awk "{ print \$4 }")"; done' || true)
	usb=$(grep -E ' (cdc_ncm|cdc_ether|rndis_host|cdc_subset) ' <<<"$out" || true)
	check "boot1: the camera's USB link is up by DHCP with nothing configured ($usb)" grep -qE " ${USB_CAM%.*}\.[0-9]+/24$" <<<"$usb"
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$HPORT/healthz" || true)
	check "boot1: /healthz 200 (got $code)" test "$code" = 200
	curl -s --max-time 12 -o "$WORK/boot1.ts" "http://127.0.0.1:$HPORT/stream.ts" || true
	stream_check "boot1: /stream.ts at the shipped start rung" "$WORK/boot1.ts" "$SHIP_W" "$SHIP_H" "$SHIP_FPS"
	B1_RATE=$RATE
	sender=$(status_field 's["source"].get("sender") or ""')
	check "boot1: the camera's datagrams come from its USB address $USB_CAM (got $sender)" test "${sender%:*}" = "$USB_CAM"
	# the access point's password: written to the FAT, shown on the console
	PW=$(grep -m 1 -oE "with the password '[a-z0-9-]+'" "$SERIAL" | cut -d"'" -f2)
	if [[ $PW =~ ^[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}$ ]]; then
		pass "boot1: a random Wi-Fi password is shown on the console ($PW)"
	else
		fail "boot1: a random Wi-Fi password is shown on the console" "$(grep 'livestream:' "$SERIAL" | tail -n 5)"
	fi
	# the phones' access point: the Pi's own radio, said everywhere
	check "boot1: the console says the phones' Wi-Fi is on wlan0 and why" \
		grep -qE "livestream: phones' Wi-Fi on wlan0, channel 6: the camera is not on Wi-Fi" "$SERIAL"
	net=$(status_field '" ".join(str(x) for x in (s["network"]["access_point"]["mode"], s["network"]["access_point"]["interface"], s["network"]["access_point"]["ssid"], s["network"]["access_point"]["password"], s["network"]["page"], s["network"]["camera_link"]["kind"]))')
	check "boot1: /status network: the Pi's own Wi-Fi for the phones, name, password, page, camera on USB ($net)" \
		test "$net" = "own-chip wlan0 livestream ${PW:-none} http://livestream.lan/ usb"
	phone_checks boot1 "$SHIP_W" "$SHIP_H"
	B1_PHONE=${T_PHONE:+$(since "$T_ON" "$T_PHONE")}
	out=$(guest 120 'systemctl --failed --plain --no-legend' || true)
	if [ -z "$(awk 'NF { print $1 }' <<<"$out")" ]; then
		pass "boot1: systemctl --failed is empty"
	else
		fail "boot1: systemctl --failed is empty" "$out"
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
check "the password on the console is in livestream-network.txt on the FAT" grep -qx "AP_PASSWORD=${PW:-none}" <(tr -d '\r' <"$WORK/network1-after.txt")
check "nothing else in livestream-network.txt changed" diff <(grep -v '^AP_PASSWORD=' "$WORK/network.txt") <(grep -v '^AP_PASSWORD=' "$WORK/network1-after.txt")
fat_get livestream-status.txt "$WORK/status1.txt" 2>/dev/null || : >"$WORK/status1.txt"
check "livestream-status.txt on the FAT says what the phones join and why" \
	sh -c "tr -d '\r' <'$WORK/status1.txt' | grep -q '^Phones: join the Wi-Fi \"livestream\"' && grep -q 'the camera is not on Wi-Fi' '$WORK/status1.txt'"
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

echo "# boot 2: GoPro on Wi-Fi ('$GOPRO_SSID', channel $GOPRO_CHANNEL) and one Wi-Fi chip, a fixed ${PIN_W}x${PIN_H}@${PIN_FPS} rung in livestreamd.toml"
# What the README tells a user to write for a camera on Wi-Fi.
tr -d '\r' <"$WORK/network1-after.txt" |
	sed -e "s/^CAMERA_SSID=.*/CAMERA_SSID=$GOPRO_SSID/" -e "s/^CAMERA_PASSWORD=.*/CAMERA_PASSWORD=$GOPRO_PASSWORD/" >"$WORK/network2.txt"
fat_put "$WORK/network2.txt" livestream-network.txt
sed -e "s/^start_rung = .*/start_rung = $PIN/" -e 's/^mode = "auto"/mode = "fixed"/' "$WORK/shipped.toml" >"$WORK/pinned.toml"
if ! grep -qx "start_rung = $PIN" "$WORK/pinned.toml" || ! grep -qx 'mode = "fixed"' "$WORK/pinned.toml"; then
	fail "could not pin the rung in the test's livestreamd.toml"
fi
camera_kind "$WORK/pinned.toml" "$WIFI_CAM" >"$WORK/pinned2.toml"
fat_put "$WORK/pinned2.toml" livestreamd.toml
check "boot2: the test unit's settings (GoPro on Wi-Fi, three radios)" fieldtest_conf SCENARIO=wifi RADIOS=3 \
	"MGMT_MAC=$MGMT_MAC" "GOPRO_MAC=$GOPRO_MAC" "GOPRO_SSID=$GOPRO_SSID" "GOPRO_PASSWORD=$GOPRO_PASSWORD" "GOPRO_CHANNEL=$GOPRO_CHANNEL"
if boot boot2 "$WIFI_CAM" "${WIFI_CAM%.*}.100,${WIFI_CAM%.*}.120" -device "virtio-net-pci,netdev=cam,romfile=,mac=$GOPRO_MAC"; then
	B2="power-on -> systemd $(since "$T_ON" "$T_SYSTEMD") s -> READY $(since "$T_ON" "$T_READY") s -> camera found ${T_CAMERA:+$(since "$T_ON" "$T_CAMERA")} s -> first video byte $(since "$T_ON" "$T_BYTE") s at the host"
	out=$(guest 60 'iw phy phy0 info' || true)
	combos=$(awk '/valid interface combinations:/ { on = 1; next } on && /^\t[^\t]/ { on = 0 } on && /\* #\{/ { n++ } END { print n + 0 }' <<<"$out")
	chans=$(grep -o '#channels <= [0-9]*' <<<"$out" | head -n 1)
	check "boot2: the Pi's radio advertises one interface combination ($combos, $chans), as the Pi's own chip" test "$combos $chans" = "1 #channels <= 1"
	out=$(guest 60 'iw dev' || true)
	ap=$(awk '/Interface / { i = $2 } /type / { t[i] = $2 } /channel / { c[i] = $2 } END { print t["ap0"], c["ap0"], t["wlan0"], c["wlan0"] }' <<<"$out")
	check "boot2: one chip, camera on Wi-Fi: the access point ap0 runs beside the camera's connection on its channel $GOPRO_CHANNEL (ap0, wlan0: $ap)" \
		test "$ap" = "AP $GOPRO_CHANNEL managed $GOPRO_CHANNEL"
	check "boot2: the console says the access point is beside the camera's connection and why" \
		grep -qE "livestream: phones' Wi-Fi on ap0, channel $GOPRO_CHANNEL: the camera is on Wi-Fi and there is one Wi-Fi chip" "$SERIAL"
	net=$(status_field '" ".join(str(x) for x in (s["network"]["access_point"]["mode"], s["network"]["access_point"]["interface"], s["network"]["access_point"]["channel"], s["network"]["camera_link"]["kind"], s["network"]["camera_link"]["ssid"]))')
	check "boot2: /status network: beside the camera, ap0, the camera's channel, camera on Wi-Fi ($net)" \
		test "$net" = "beside-camera ap0 $GOPRO_CHANNEL wifi $GOPRO_SSID"
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$HPORT/healthz" || true)
	check "boot2: /healthz 200 (got $code)" test "$code" = 200
	sender=$(status_field 's["source"].get("sender") or ""')
	check "boot2: the camera's datagrams come from its Wi-Fi address $WIFI_CAM (got $sender)" test "${sender%:*}" = "$WIFI_CAM"
	curl -s --max-time 12 -o "$WORK/boot2.ts" "http://127.0.0.1:$HPORT/stream.ts" || true
	stream_check "boot2: /stream.ts at the pinned rung" "$WORK/boot2.ts" "$PIN_W" "$PIN_H" "$PIN_FPS"
	B2_RATE=$RATE
	phone_checks boot2 "$PIN_W" "$PIN_H"
	B2_PHONE=${T_PHONE:+$(since "$T_ON" "$T_PHONE")}
	link=$(sed -n 's/^phone_link=//p' "$WORK/phone-boot2.result" | tail -n 1)
	check "boot2: the phone is on the camera's channel ($link)" \
		test "$(link_field freq "$link")" = $((2407 + 5 * GOPRO_CHANNEL))
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
echo "boot 1 (first boot, GoPro on USB, phones on the Pi's own Wi-Fi, bad boot config): $B1, ${B1_PHONE:-?} s at the phone; ${B1_RATE:-?} fps at ${SHIP_W}x${SHIP_H}"
echo "boot 2 (GoPro on Wi-Fi, one chip: access point beside it, fixed rung): $B2, ${B2_PHONE:-?} s at the phone; ${B2_RATE:-?} fps at ${PIN_W}x${PIN_H}"
echo "$PASS passed, $FAIL failed, $SKIP skipped"
[ "$FAIL" -eq 0 ]
