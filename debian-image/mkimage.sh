#!/bin/bash
# debian-image/mkimage.sh: build the Debian-based Raspberry Pi image
# (Pi 3, 4, 400, Zero 2 W; arm64; Debian bookworm's kernel; libx264).
# Normally run as: scripts/build-image.sh debian rpi-arm64
#
#   debian-image/mkimage.sh [--output DIR] [--cache DIR] [--binary FILE] [--keep-work]
#
#   --output DIR   where the image goes (artifacts/debian-rpi-arm64)
#   --cache DIR    downloaded .deb files, kept between runs
#                  (/var/cache/livestreamd-image, or $LIVESTREAM_IMAGE_CACHE)
#   --binary FILE  the static aarch64 livestreamd to put in the image
#                  (default: built by scripts/build-release.sh)
#   --keep-work    keep the root file system directory and partition images
#   --reuse-rootfs skip mmdebstrap and the customize step: use the root file
#                  system a --keep-work run left (to work on what follows)
#
# Output: OUTPUT/livestream-debian-rpi-arm64.img.zst, its .sha256 and the
# list of Debian packages in it (.packages). Needs root (mmdebstrap
# --mode=root, chroot), Debian's mmdebstrap, qemu-user-static, dosfstools,
# mtools, e2fsprogs, fdisk, zstd (scripts/install-deps.sh image).
#
# How: mmdebstrap installs debian-image/packages from Debian's mirrors into a
# directory (arm64, run through qemu-user via binfmt_misc); the customize
# step adds the project's binary, unit, sysusers file and config, the field
# network files shared with the Buildroot and Yocto images
# (buildroot/board/livestreamd/rootfs-overlay), debian-image/rootfs, and
# builds the initramfs once; raspi-firmware's hook fills /boot/firmware.
# Then, without loop devices: a FAT32 file system (mkfs.vfat -C, mcopy), an
# ext4 one (mkfs.ext4 -d), an MBR (sfdisk), dd, zstd.
set -euo pipefail

SELF=$(realpath "$0")
HERE=$(dirname "$SELF")
REPO=$(dirname "$HERE")
OVERLAY="$REPO/buildroot/board/livestreamd/rootfs-overlay"
NAME=livestream-debian-rpi-arm64
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
SECURITY=http://deb.debian.org/debian-security
COMPONENTS="main non-free-firmware"
FAT_START_MIB=4    # like Debian's raspi images: FAT32 RASPIFIRM at 4 MiB
FAT_MIB=252        # kernel, initrd, DTBs, firmware, twice over for an upgrade

say() {
	printf 'mkimage: %s\n' "$*" >&2
}

die() {
	printf 'mkimage: error: %s\n' "$*" >&2
	exit 1
}

# --- the customize step (run by mmdebstrap, inside its mounts) --------------

# pi_config MAIN CHANGES: MAIN with [encoder] preset and every [[ladder]]
# table replaced by those of CHANGES (debian-image/config-changes.toml).
pi_config() {
	local preset ladder
	preset=$(awk '/^\[/ { s = $0 } s == "[encoder]" && /^preset *=/ { print; exit }' "$2")
	ladder=$(awk '/^\[\[ladder\]\]/ { on = 1 } on' "$2")
	if [ -z "$preset" ] || [ -z "$ladder" ]; then
		die "$2 has no [encoder] preset or no [[ladder]]"
	fi
	awk -v preset="$preset" -v ladder="$ladder" '
	/^\[/ && !/^\[\[ladder\]\]/ {
		if (skipping) print ""
		skipping = 0
		section = $0
	}
	/^\[\[ladder\]\]/ {
		if (!done) print ladder
		done = 1
		skipping = 1
	}
	skipping { next }
	section == "[encoder]" && /^preset *=/ { print preset; next }
	{ print }
	END { if (!done) exit 1 }' "$1"
}

customize() {
	local root=$1 bin=$2 config=$3 unit
	say "customize: project files"
	# The field network, from the same files as the Buildroot and Yocto images.
	cp -a "$OVERLAY/." "$root/"
	cp -a "$HERE/rootfs/." "$root/"
	install -D -m 0755 "$bin" "$root/usr/bin/livestreamd"
	# livestreamd under this name is `livestreamd report --to-boot`: the
	# diagnosis as livestream-report.txt on the boot partition (through
	# livestream-bootfs, as root, on the console; no maintenance mode needed)
	ln -sf livestreamd "$root/usr/bin/livestream-report"
	install -D -m 0644 "$REPO/systemd/livestreamd.service" "$root/usr/lib/systemd/system/livestreamd.service"
	install -D -m 0644 "$REPO/systemd/livestreamd.sysusers" "$root/usr/lib/sysusers.d/livestreamd.conf"
	install -D -m 0644 "$config" "$root/etc/livestreamd/livestreamd.toml"
	# The FAT partition is /boot/firmware (raspi-firmware's place); the unit
	# and livestream-net read /boot/livestreamd.toml and
	# /boot/livestream-network.txt, as on the other images.
	install -D -m 0644 "$config" "$root/boot/firmware/livestreamd.toml"
	install -m 0644 "$OVERLAY/usr/share/livestream-net/livestream-network.txt" "$root/boot/firmware/livestream-network.txt"
	ln -sf firmware/livestreamd.toml "$root/boot/livestreamd.toml"
	ln -sf firmware/livestream-network.txt "$root/boot/livestream-network.txt"
	chroot "$root" systemd-sysusers

	say "customize: units"
	# The units the shared preset names (livestreamd, the field network,
	# wpa_supplicant's D-Bus service off), as that file says.
	mapfile -t preset_units < <(awk '$1 == "enable" || $1 == "disable" { print $2 }' "$OVERLAY"/usr/lib/systemd/system-preset/*.preset)
	systemctl --root="$root" preset "${preset_units[@]}"
	systemctl --root="$root" enable systemd-networkd.service livestream-growroot.service
	# hostapd runs as livestream-ap; nothing needs network-online.target; an
	# appliance without internet has no use for apt's daily timers.
	systemctl --root="$root" disable hostapd.service systemd-networkd-wait-online.service \
		apt-daily.timer apt-daily-upgrade.timer
	# An appliance never stops at boot to ask for a locale or a password.
	systemctl --root="$root" mask systemd-firstboot.service
	# A read-only card (docs/RELIABILITY.md): no weekly fstrim (discards on
	# the card), no LVM scrubbing (e2scrub; there is no LVM) nor its reaper
	# at every boot, no daily copy of dpkg's database into /var/backups.
	systemctl --root="$root" disable fstrim.timer e2scrub_all.timer e2scrub_reap.service dpkg-db-backup.timer
	for unit in livestreamd livestream-net livestream-camera livestream-ap livestream-dhcp systemd-networkd livestream-growroot; do
		[ "$(systemctl --root="$root" is-enabled "$unit.service")" = enabled ] || die "$unit.service is not enabled"
	done

	say "customize: read-only root (docs/RELIABILITY.md)"
	# /etc/machine-id empty: systemd puts a new one in RAM at each boot (a
	# read-only root) and never takes the boot for a first boot (which would
	# try to write presets into /etc).
	: >"$root/etc/machine-id"
	# No battery-backed clock on a Pi: systemd starts the clock at no earlier
	# than this file's time, the image's build.
	touch "$root/usr/lib/clock-epoch"
	# /var is a tmpfs (etc/fstab): it starts empty at each boot.
	grep -qE '^tmpfs[[:space:]]+/var[[:space:]]' "$root/etc/fstab" || die "etc/fstab has no tmpfs on /var"

	say "customize: root login on the local console without a password (as Debian's raspi images and Buildroot's default; no network login)"
	chroot "$root" passwd --quiet --delete root

	say "customize: raspi-firmware settings and the initramfs"
	# LABEL= works on any card reader and under qemu; CMA=0 leaves cma= out
	# of cmdline.txt (headless, and a fixed 64M is wrong on the Pi 4);
	# serial console and HDMI, boot messages on HDMI.
	sed -i -e 's/^#\{0,1\}ROOTPART=.*/ROOTPART=LABEL=RASPIROOT/' \
		-e 's/^#\{0,1\}CMA=.*/CMA=0/' \
		-e 's/^#\{0,1\}CONSOLES=.*/CONSOLES="ttyS1,115200 tty0"/' "$root/etc/default/raspi-firmware"
	grep -qx 'ROOTPART=LABEL=RASPIROOT' "$root/etc/default/raspi-firmware" || die "could not set ROOTPART in /etc/default/raspi-firmware"
	rm -f "$root/usr/sbin/update-initramfs"
	chroot "$root" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs
	chroot "$root" update-initramfs -c -k all
	grep -q 'root=LABEL=RASPIROOT' "$root/boot/firmware/cmdline.txt" || die "raspi-firmware did not write cmdline.txt with root=LABEL=RASPIROOT"
	# raspi-firmware writes "rw" and then /etc/default/raspi-extra-cmdline:
	# the last of ro/rw wins, for the kernel and for the initramfs.
	[ "$(tr ' ' '\n' <"$root/boot/firmware/cmdline.txt" | grep -xE 'ro|rw' | tail -n 1)" = ro ] ||
		die "cmdline.txt does not end with ro (etc/default/raspi-extra-cmdline): $(cat "$root/boot/firmware/cmdline.txt")"
	# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
	chroot "$root" dpkg-query -W -f '${Package} ${Version}\n' >"$root/.packages"
}

if [ "${1:-}" = --customize ]; then
	shift
	customize "$@"
	exit 0
fi

# --- the build ----------------------------------------------------------------

OUT="$REPO/artifacts/debian-rpi-arm64"
CACHE=${LIVESTREAM_IMAGE_CACHE:-/var/cache/livestreamd-image}
BIN=''
KEEP=0
REUSE=0
while [ $# -gt 0 ]; do
	case $1 in
	--output) OUT=$2; shift ;;
	--cache) CACHE=$2; shift ;;
	--binary) BIN=$2; shift ;;
	--keep-work) KEEP=1 ;;
	--reuse-rootfs) REUSE=1 KEEP=1 ;;
	-h | --help)
		sed -n '2,20p' "$SELF" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
	shift
done

[ "$(id -u)" = 0 ] || die "needs root (mmdebstrap --mode=root, chroot)"
for tool in mmdebstrap mkfs.vfat mcopy mkfs.ext4 sfdisk zstd sha256sum; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: scripts/install-deps.sh image"
done

START=$(date +%s)
step() {
	say "[$(($(date +%s) - START)) s] $*"
}

WORK="$OUT/work"
BINFMT_MOUNTED=0
BINFMT_REGISTERED=0
cleanup() {
	# mmdebstrap unmounts what it mounted; after an interruption, make sure.
	if [ -d "$WORK/rootfs" ]; then
		{ findmnt -rn -o TARGET | grep -F "$WORK/rootfs/" || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
	fi
	if [ "$KEEP" = 0 ]; then
		rm -rf "$WORK"
	fi
	if [ "$BINFMT_REGISTERED" = 1 ]; then
		echo -1 >/proc/sys/fs/binfmt_misc/qemu-aarch64 || true
	fi
	if [ "$BINFMT_MOUNTED" = 1 ]; then
		umount /proc/sys/fs/binfmt_misc || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'say "failed at line $LINENO: $BASH_COMMAND"' ERR

# arm64 programs (dpkg's maintainer scripts, update-initramfs) run through
# qemu-user: binfmt_misc must be mounted and qemu-aarch64 registered (with
# the F flag, so that it works inside the chroot). Undone on exit if done here.
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
	mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
	BINFMT_MOUNTED=1
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
	conf=/usr/lib/binfmt.d/qemu-aarch64.conf
	[ -r "$conf" ] || die "$conf is missing (apt-get install qemu-user-static)"
	cat "$conf" >/proc/sys/fs/binfmt_misc/register
	BINFMT_REGISTERED=1
fi

if [ -z "$BIN" ]; then
	step "the static aarch64 livestreamd (scripts/build-release.sh)"
	"$REPO/scripts/build-release.sh" aarch64-unknown-linux-musl >&2
	BIN="${CARGO_TARGET_DIR:-$REPO/target}/aarch64-unknown-linux-musl/release/livestreamd"
fi
[ -x "$BIN" ] || die "$BIN is not an executable"
file -b "$BIN" | grep -q 'ARM aarch64.*static' || die "$BIN is not a static aarch64 binary: $(file -b "$BIN")"

R="$WORK/rootfs"
if [ "$REUSE" = 1 ]; then
	[ -f "$WORK/packages.txt" ] || die "no root file system of a --keep-work run in $WORK"
	rm -rf "$WORK/initrd" "$WORK/fat.img" "$WORK/root.img"
else
	rm -rf "$WORK"
fi
mkdir -p "$WORK" "$CACHE/debs"

step "the daemon's configuration: configs/livestreamd.toml with debian-image/config-changes.toml"
pi_config "$REPO/configs/livestreamd.toml" "$HERE/config-changes.toml" >"$WORK/livestreamd.toml" ||
	die "configs/livestreamd.toml has no [[ladder]] table to replace"
# The result must be valid, and must say what config-changes.toml says.
qemu-aarch64-static "$BIN" check-config "$WORK/livestreamd.toml" >"$WORK/effective.toml" ||
	die "the image's livestreamd.toml does not pass check-config: $(cat "$WORK/effective.toml")"
want=$(grep -v '^#' "$HERE/config-changes.toml" | sed -n '/^\[\[ladder\]\]/,$p' | grep .)
got=$(sed -n '/^\[\[ladder\]\]/,/^\[server\]/p' "$WORK/effective.toml" | grep -v '^\[server\]' | grep .)
[ "$want" = "$got" ] || die "the effective ladder is not config-changes.toml's:
$got"
grep -qx "$(awk '/^\[/ { s = $0 } s == "[encoder]" && /^preset *=/ { print; exit }' "$HERE/config-changes.toml")" "$WORK/effective.toml" ||
	die "the effective preset is not config-changes.toml's"

if [ "$REUSE" = 0 ]; then
	step "Debian $SUITE arm64 with debian-image/packages (mmdebstrap; .debs cached in $CACHE/debs)"
	packages=$(grep -v '^#' "$HERE/packages" | grep . | paste -sd, -)
	q() { printf '%q' "$1"; }
	mirrors=(
		"deb $MIRROR $SUITE $COMPONENTS"
		"deb $MIRROR $SUITE-updates $COMPONENTS"
		"deb $SECURITY $SUITE-security $COMPONENTS"
	)
	# update-initramfs is diverted to a no-op while packages are installed (the
	# kernel and every trigger would each build an initramfs under qemu-user);
	# the customize step builds it once. docs, manuals and translations are
	# left out (copyright files kept). The hooks' "$1" is mmdebstrap's: the root.
	# shellcheck disable=SC2016
	mmdebstrap --mode=root --variant=minbase --architectures=arm64 \
		--components="${COMPONENTS// /,}" --include="$packages" \
		--dpkgopt=force-unsafe-io \
		--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
		--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
		--skip=essential/unlink \
		--setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
		--setup-hook="sync-in $(q "$CACHE/debs") /var/cache/apt/archives/" \
		--essential-hook='chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs' \
		--essential-hook='printf "#!/bin/sh\necho update-initramfs: deferred to the end of the image build\n" >"$1/usr/sbin/update-initramfs" && chmod 755 "$1/usr/sbin/update-initramfs"' \
		--customize-hook="sync-out /var/cache/apt/archives $(q "$CACHE/debs")" \
		--customize-hook="$(q "$SELF") --customize \"\$1\" $(q "$(realpath "$BIN")") $(q "$WORK/livestreamd.toml")" \
		"$SUITE" "$R" "${mirrors[@]}" >&2
	mv "$R/.packages" "$WORK/packages.txt"
	# Nothing may be left running in, or mounted on, the root file system
	# (mmdebstrap could not unmount /proc once, 'target is busy').
	for p in /proc/[0-9]*; do
		case $(readlink "$p/root" 2>/dev/null) in
		"$R" | "$R"/*)
			say "left running in the chroot, stopped: ${p#/proc/} $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)"
			kill -9 "${p#/proc/}" 2>/dev/null || true
			;;
		esac
	done
	{ findmnt -rn -o TARGET | grep -F "$R/" || true; } | sort -r | while read -r m; do umount "$m" || umount -l "$m"; done
	if findmnt -rn -o TARGET | grep -qF "$R/"; then
		die "something is still mounted under $R"
	fi
	# The FAT partition's files, out of the root file system
	rm -rf "$WORK/fat"
	mkdir -p "$WORK/fat"
	mv "$R/boot/firmware/"* "$WORK/fat/"
fi

step "checking the initramfs covers every board's SD card"
kver=$(basename "$(find "$R/usr/lib/modules" -mindepth 1 -maxdepth 1 -type d -print -quit)")
initrd="$WORK/fat/initrd.img-$kver"
[ -f "$initrd" ] || die "no $initrd"
mkdir -p "$WORK/initrd"
zstd -dc "$initrd" | (cd "$WORK/initrd" && busybox cpio -id 2>/dev/null) || die "cannot unpack $initrd"
# The SD card path of the Pi 3 / Zero 2 W (sdhost, Arasan SDHCI) and the
# Pi 4 / 400 (emmc2 and its I/O voltage regulator on the firmware GPIOs), by
# device tree compatible: a driver that is a module (the kernel's
# modules.alias names it) must be in the initramfs; one that is not must be
# built into the kernel (the compatible string is in its image). Checked
# here; booting on the boards is not.
kernel="$WORK/fat/vmlinuz-$kver"
for compat in brcm,bcm2835-sdhost brcm,bcm2835-sdhci brcm,bcm2711-emmc2 regulator-gpio raspberrypi,firmware-gpio; do
	mod=$(awk -v p="of:N*T*C$compat" '$1 == "alias" && $2 == p { print $3; exit }' "$R/usr/lib/modules/$kver/modules.alias")
	if [ -n "$mod" ]; then
		find "$WORK/initrd/lib/modules/$kver" -name '*.ko*' -printf '%f\n' | sed 's/\.ko.*//; y/-/_/' | grep -qx "$mod" ||
			die "the initramfs lacks $mod for '$compat' (debian-image/rootfs/etc/initramfs-tools/hooks/livestream-modules)"
	else
		grep -qaF "$compat" "$kernel" || die "no driver for '$compat' in the kernel or its modules"
	fi
done
for dtb in bcm2837-rpi-3-b bcm2837-rpi-3-b-plus bcm2711-rpi-4-b bcm2711-rpi-400 bcm2837-rpi-zero-2-w; do
	[ -f "$WORK/fat/$dtb.dtb" ] || die "raspi-firmware did not copy $dtb.dtb"
done

step "FAT32 boot partition (RASPIFIRM, ${FAT_MIB} MiB): firmware, kernel, initrd, DTBs, livestreamd.toml, livestream-network.txt"
[ -z "$(ls -A "$R/boot/firmware")" ] || die "$R/boot/firmware is not empty"
mkfs.vfat -C -F 32 -n RASPIFIRM "$WORK/fat.img" $((FAT_MIB * 1024)) >/dev/null
mcopy -s -p -m -i "$WORK/fat.img" "$WORK/fat/"* ::/
# livestream-bootfs's place for its temporary files (hidden on a laptop; it
# makes the directory itself if a user deletes it)
mmd -i "$WORK/fat.img" ::/.livestream-tmp
mattrib -i "$WORK/fat.img" +h ::/.livestream-tmp

step "ext4 root partition (RASPIROOT)"
used_mib=$(du -s -x -m "$R" | cut -f1)
# room for the first boot and a few updates; it grows to the card at first boot
root_mib=$(((used_mib * 115 / 100 + 256 + 3) / 4 * 4))
mkfs.ext4 -q -F -L RASPIROOT -m 1 -E root_owner=0:0 -d "$R" "$WORK/root.img" "${root_mib}M"

step "MBR image"
IMG="$WORK/$NAME.img"
total_mib=$((FAT_START_MIB + FAT_MIB + root_mib))
rm -f "$IMG"
truncate -s "${total_mib}M" "$IMG"
sfdisk --quiet "$IMG" <<EOF
label: dos
unit: sectors
start=$((FAT_START_MIB * 2048)), size=$((FAT_MIB * 2048)), type=c, bootable
start=$(((FAT_START_MIB + FAT_MIB) * 2048)), size=$((root_mib * 2048)), type=83
EOF
dd if="$WORK/fat.img" of="$IMG" bs=1M seek="$FAT_START_MIB" conv=notrunc,sparse status=none
dd if="$WORK/root.img" of="$IMG" bs=1M seek=$((FAT_START_MIB + FAT_MIB)) conv=notrunc,sparse status=none

step "compressing (zstd)"
mkdir -p "$OUT"
zstd -q -f -T0 -9 "$IMG" -o "$OUT/$NAME.img.zst"
(cd "$OUT" && sha256sum "$NAME.img.zst" >"$NAME.img.zst.sha256")
cp "$WORK/packages.txt" "$OUT/$NAME.packages"
raw=$(stat -c %s "$IMG")
packed=$(stat -c %s "$OUT/$NAME.img.zst")
secs=$(($(date +%s) - START))
say "image: $OUT/$NAME.img.zst"
say "size: $((packed / 1000000)) MB compressed, $((raw / 1048576)) MiB raw ($total_mib MiB: FAT $FAT_MIB MiB, root $root_mib MiB, $used_mib MiB used); sha256 in $NAME.img.zst.sha256"
say "built in $((secs / 60)) min $((secs % 60)) s"
say "write it with: scripts/flash-sd.sh $OUT/$NAME.img.zst /dev/sdX; boot-test it with: scripts/boot-test.sh $OUT/$NAME.img.zst"
