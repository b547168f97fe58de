#!/bin/bash
# tests/image/run.sh: run the image pieces that execute on this machine.
#
#  - livestream-net (the field network script from the rootfs overlay):
#    generates configs from sample boot settings into a temporary root and
#    checks them; bad and missing settings give a clear message and safe
#    defaults; "apply" addresses a veth inside a network namespace, dnsmasq
#    runs there with the generated config and a DHCP client in a second
#    namespace gets a lease (needs root, ip, dnsmasq, busybox; skipped
#    otherwise); "run dhcp" waits for a phone-side interface that appears
#    late (a USB adapter plugged in after boot) instead of failing.
#  - no shared Wi-Fi password: an unset, invalid or old default AP_PASSWORD
#    is replaced by a random one, written into the settings file (BOM, CRLF,
#    symlinks, missing and read-only files) and shown on the consoles.
#  - the overlay's sysctl setting (strict reverse-path filter), applied by
#    systemd-sysctl in a namespace "Pi" with a camera and a phone side, keeps
#    out datagrams a phone forges with the camera's address.
#  - the overlay's systemd units pass systemd-analyze verify.
#  - the Buildroot post-build/post-image scripts on a fake target.
#  - flash-sd.sh refuses non-removable, partition, mounted and unconfirmed
#    targets, and writes a confirmed one.
#  - gen-yocto-crates.sh output format on a sample Cargo.lock.
#
# Everything it creates lives under one temporary directory and in network
# namespaces named lsimg-*-PID; all are removed on exit.

set -u

HERE=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
REPO=$(CDPATH='' cd -- "$HERE/../.." && pwd)
OVERLAY="$REPO/buildroot/board/livestreamd/rootfs-overlay"
NET="$OVERLAY/usr/sbin/livestream-net"
FIX="$HERE/fixtures"

WORK=$(mktemp -d /tmp/lsimg-test.XXXXXX)
NS_AP="lsimg-ap-$$"
NS_PH="lsimg-ph-$$"
NS_PI="lsimg-pi-$$"
NS_CAM="lsimg-cam-$$"
NS_PHONE="lsimg-phone-$$"
DNSMASQ_PID=''
LOOPDEV=''

cleanup() {
	if [ -n "$DNSMASQ_PID" ]; then
		kill "$DNSMASQ_PID" 2>/dev/null
		wait "$DNSMASQ_PID" 2>/dev/null
	fi
	ip netns del "$NS_AP" 2>/dev/null
	ip netns del "$NS_PH" 2>/dev/null
	ip netns del "$NS_PI" 2>/dev/null
	ip netns del "$NS_CAM" 2>/dev/null
	ip netns del "$NS_PHONE" 2>/dev/null
	if [ -n "$LOOPDEV" ]; then
		losetup -d "$LOOPDEV" 2>/dev/null
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# pass, fail, skip, check
# shellcheck source=tests/image/checks.sh
. "$HERE/checks.sh"

# has FILE LINE: the file contains exactly this line
has() {
	grep -qxF -- "$2" "$1"
}

lacks() {
	! grep -qF -- "$2" "$1"
}

unhex() {
	printf '%s' "$1" | sed 's/../\\x&/g' | xargs -0 printf '%b'
}

# gen NAME SETTINGS_FILE: run generate into $WORK/NAME, stderr to NAME.err.
# generate may write a password into the settings file, so it works on a
# copy under $WORK/NAME.boot/ (same base name, for the messages); a settings
# file that does not exist is passed as it is.
gen() {
	local root="$WORK/$1" settings=$2
	mkdir -p "$root"
	if [ -e "$2" ]; then
		mkdir -p "$root.boot"
		settings="$root.boot/${2##*/}"
		cp "$2" "$settings"
	fi
	"$NET" generate --root "$root" --settings "$settings" >"$root.out" 2>"$root.err"
}

# is_random_password WORD: the shape random_password gives (3 x 4 letters)
is_random_password() {
	[[ $1 =~ ^[a-km-np-z2-9]{4}-[a-km-np-z2-9]{4}-[a-km-np-z2-9]{4}$ ]]
}

# value KEY FILE: the value of the last KEY= line (CR and BOM removed)
value() {
	sed -n "s/^\(\xef\xbb\xbf\)\{0,1\}$1=//p" "$2" | tr -d '\r' | tail -n 1
}

echo "# livestream-net: generate from sample settings"
R="$WORK/good"
if gen good "$FIX/good-settings.txt"; then
	pass "generate exits 0 on good settings"
else
	fail "generate exits 0 on good settings" "$(cat "$R.err")"
fi
check "no warnings on good settings" lacks "$R.err" "warning"
W="$R/run/livestream-net/wpa_supplicant.conf"
H="$R/run/livestream-net/hostapd.conf"
D="$R/run/livestream-net/dnsmasq.conf"
check "wpa_supplicant: country" has "$W" "country=GB"
check "wpa_supplicant: camera passphrase" has "$W" "$(printf '\tpsk="goprohero#1"')"
check "wpa_supplicant: WPA-PSK" has "$W" "$(printf '\tkey_mgmt=WPA-PSK')"
ssid_hex=$(sed -n 's/^\tssid=//p' "$W")
if [ "$(unhex "$ssid_hex")" = "GP24500123 Hero" ]; then
	pass "wpa_supplicant: ssid hex decodes to the camera SSID"
else
	fail "wpa_supplicant: ssid hex decodes to the camera SSID" "got '$ssid_hex'"
fi
if [ "$(stat -c %a "$W")" = 600 ] && [ "$(stat -c %a "$H")" = 600 ]; then
	pass "files holding passwords are mode 600"
else
	fail "files holding passwords are mode 600" "$(stat -c '%a %n' "$W" "$H")"
fi
check "hostapd: interface" has "$H" "interface=wlan1"
check "hostapd: channel 11" has "$H" "channel=11"
check "hostapd: 2.4 GHz mode" has "$H" "hw_mode=g"
check "hostapd: country" has "$H" "country_code=GB"
check "hostapd: WPA2 passphrase" has "$H" "wpa_passphrase=phones-only 2024"
check "hostapd: WPA2 only" has "$H" "wpa=2"
ap_hex=$(sed -n 's/^ssid2=//p' "$H")
if [ "$(unhex "$ap_hex")" = "Field Stream" ]; then
	pass "hostapd: ssid2 hex decodes to the AP SSID"
else
	fail "hostapd: ssid2 hex decodes to the AP SSID" "got '$ap_hex'"
fi
check "dnsmasq: interface" has "$D" "interface=wlan1"
check "dnsmasq: DHCP range" has "$D" "dhcp-range=192.168.4.2,192.168.4.20,255.255.255.0,12h"
check "dnsmasq: DNS answers every name with the Pi (captive-portal probes)" has "$D" "address=/#/192.168.4.1"
check "dnsmasq: DNS answers the short name" has "$D" "address=/livestream.lan/192.168.4.1"
check "dnsmasq: no upstream DNS" has "$D" "no-resolv"
check "dnsmasq: the Pi is the router (it forwards nothing)" has "$D" "dhcp-option=option:router,192.168.4.1"
check "dnsmasq: the Pi is the DNS server" has "$D" "dhcp-option=option:dns-server,192.168.4.1"
check "wpa_supplicant: no Wi-Fi Direct interface beside the camera's" has "$W" "p2p_disabled=1"
check "networkd: DHCP on the camera link" has "$R/run/systemd/network/10-livestream-camera.network" "Name=wlan0"
check "networkd: camera link uses DHCP" has "$R/run/systemd/network/10-livestream-camera.network" "DHCP=ipv4"
check "networkd: AP link unmanaged" has "$R/run/systemd/network/20-livestream-ap.network" "Unmanaged=yes"
check "networkd: the camera's link is matched before the AP's" test "$(find "$R/run/systemd/network" -name '*.network' -printf '%f\n' | sort | head -n 1)" = 10-livestream-camera.network
check "net.env lists the AP address" has "$R/run/livestream-net/net.env" "AP_ADDRESS=192.168.4.1"
check "generate names the phone URL" grep -qF "http://192.168.4.1:8080/" "$R.err"
if command -v dnsmasq >/dev/null 2>&1; then
	check "dnsmasq --test accepts the generated config" dnsmasq --test --conf-file="$D"
else
	skip "dnsmasq --test (dnsmasq not installed)"
fi
"$NET" show --settings "$FIX/good-settings.txt" >"$WORK/show.out" 2>&1
if grep -qx "AP_PASSWORD=(set)" "$WORK/show.out" && ! grep -q "phones-only" "$WORK/show.out"; then
	pass "show hides passwords"
else
	fail "show hides passwords" "$(cat "$WORK/show.out")"
fi

echo "# livestream-net: Windows-edited file (CRLF, BOM, quotes, spaces)"
R="$WORK/crlf"
printf '\357\273\277# edited on Windows\r\nCAMERA_SSID = "GP-CRLF"\r\nCAMERA_PASSWORD='"'"'pass word 1'"'"'\r\nAP_CHANNEL=36\r\nAP_IFACE=wlan1' >"$WORK/crlf.txt"
gen crlf "$WORK/crlf.txt"
check "CRLF/BOM file: no warnings" lacks "$R.err" "warning"
check "CRLF/BOM file: quoted password unquoted" has "$R/run/livestream-net/wpa_supplicant.conf" "$(printf '\tpsk="pass word 1"')"
check "CRLF/BOM file: channel 36 selects 5 GHz" has "$R/run/livestream-net/hostapd.conf" "hw_mode=a"
check "CRLF/BOM file: last line without newline is read" has "$R/run/livestream-net/hostapd.conf" "interface=wlan1"

echo "# livestream-net: wired alternatives"
R="$WORK/wired"
printf 'CAMERA_IFACE=usb0\nAP_IFACE=eth0\n' >"$WORK/wired.txt"
gen wired "$WORK/wired.txt"
check "eth0 as AP: no hostapd.conf" test ! -e "$R/run/livestream-net/hostapd.conf"
check "eth0 as AP: dnsmasq serves eth0" has "$R/run/livestream-net/dnsmasq.conf" "interface=eth0"
check "usb0 camera: no wpa_supplicant.conf" test ! -e "$R/run/livestream-net/wpa_supplicant.conf"
check "usb0 camera: DHCP on usb0" has "$R/run/systemd/network/10-livestream-camera.network" "Name=usb0"

check "wired phones: network.json says wired" sh -c "python3 -c 'import json, sys; n = json.load(open(sys.argv[1])); sys.exit(not (n[\"access_point\"][\"mode\"] == \"wired\" and n[\"access_point\"][\"ssid\"] is None))' '$R/run/livestream/network.json'"
check "wired phones: livestream-status.txt on the boot partition says where phones connect" grep -q "^Phones: on the cable (eth0), open http://192.168.4.1:8080/" "$WORK/wired.boot/livestream-status.txt"
cp "$WORK/wired.boot/livestream-status.txt" "$WORK/status.before"
touch -d '2000-01-01' "$WORK/wired.boot/livestream-status.txt"
"$NET" generate --root "$R" --settings "$WORK/wired.boot/wired.txt" >/dev/null 2>&1
check "wired phones: an unchanged status file is not written again" test "$(stat -c %Y "$WORK/wired.boot/livestream-status.txt")" = "$(date -d '2000-01-01' +%s)"
printf 'CAMERA_IFACE=usb0\nAP_IFACE=eth0\nCAMERA_SSDI=GP1234\n' >"$WORK/wired-typo.txt"
gen wired-typo "$WORK/wired-typo.txt"
check "a typo in the settings: livestream-status.txt on the boot partition lists it" grep -q "^- .*line 3: unknown setting 'CAMERA_SSDI'" "$WORK/wired-typo.boot/livestream-status.txt"
check "no problem, no problems paragraph in livestream-status.txt" lacks "$WORK/wired.boot/livestream-status.txt" "Problems found"

echo "# livestream-net: the phones' interface chosen at run time (AP_IFACE=auto)"
TEMPLATE="$OVERLAY/usr/share/livestream-net/livestream-network.txt"
check "the shipped settings choose the phones' interface by themselves" has "$TEMPLATE" "AP_IFACE=auto"
check "the shipped settings leave the camera's Wi-Fi empty (a GoPro on USB needs nothing)" has "$TEMPLATE" "CAMERA_SSID="
R="$WORK/auto"
gen auto "$TEMPLATE"
check "auto: no warnings" lacks "$R.err" "warning"
check "auto: hostapd.conf waits for the interface" has "$R/run/livestream-net/hostapd.conf" "interface=auto"
check "auto: dnsmasq.conf waits for the interface" has "$R/run/livestream-net/dnsmasq.conf" "interface=auto"
check "auto: net.env says auto" has "$R/run/livestream-net/net.env" "AP_IFACE=auto"
check "auto, camera not on Wi-Fi: no DHCP client on wlan0 (it may be the access point)" test ! -e "$R/run/systemd/network/10-livestream-camera.network"
check "auto: networkd leaves every Wi-Fi interface but the camera's alone" has "$R/run/systemd/network/20-livestream-ap.network" "Name=wl* ap0"
pw=$(value AP_PASSWORD "$WORK/auto.boot/livestream-network.txt")
NJ="$R/run/livestream/network.json"
if python3 - "$NJ" "$pw" <<'EOF'
import json, sys
n = json.load(open(sys.argv[1]))
ap = n["access_point"]
want = {"state": "starting", "mode": "pending", "interface": None, "ssid": "livestream",
        "password": sys.argv[2], "security": "WPA2", "channel": None}
bad = {k: ap[k] for k in want if ap[k] != want[k]}
bad.update({k: n[k] for k, v in {"address": "192.168.4.1", "short_name": "livestream.lan",
            "page": "http://livestream.lan/", "page_by_address": "http://192.168.4.1:8080/"}.items() if n[k] != v})
if n["camera_link"]["kind"] != "usb":
    bad["camera_link"] = n["camera_link"]
sys.exit(print(bad) if bad else 0)
EOF
then
	pass "auto: network.json: access point pending, name, password, address, short name, page, camera on USB"
else
	fail "auto: network.json: access point pending, name, password, address, short name, page, camera on USB" "$(cat "$NJ")"
fi
check "auto: the log names the page by name and by address" grep -qF "open http://livestream.lan/ or http://192.168.4.1:8080/" "$R.err"
R="$WORK/autocam"
printf 'CAMERA_SSID=GP "quoted" \\ name\nCAMERA_PASSWORD=goprohero\nAP_SSID=Pi "stream"\nAP_PASSWORD=pass"word\\1\n' >"$WORK/autocam.txt"
gen autocam "$WORK/autocam.txt"
check "auto, camera on Wi-Fi: DHCP on the camera's link" has "$R/run/systemd/network/10-livestream-camera.network" "Name=wlan0"
if python3 -c '
import json, sys
n = json.load(open(sys.argv[1]))
ok = (n["camera_link"]["kind"], n["camera_link"]["ssid"], n["access_point"]["ssid"], n["access_point"]["password"]) == \
     ("wifi", "GP \"quoted\" \\ name", "Pi \"stream\"", "pass\"word\\1")
sys.exit(0 if ok else 1)' "$R/run/livestream/network.json"; then
	pass "network.json: names and passwords with quotes and backslashes stay valid JSON"
else
	fail "network.json: names and passwords with quotes and backslashes stay valid JSON" "$(cat "$R/run/livestream/network.json")"
fi
R="$WORK/port"
mkdir -p "$R/etc/livestreamd" "$R/boot"
printf '[server]\nlisten = "0.0.0.0:8080"\n' >"$R/etc/livestreamd/livestreamd.toml"
printf '[camera]\nkind = "auto"\n\n[server]\nmax_viewers = 4\nlisten = "0.0.0.0:9000"\n' >"$R/boot/livestreamd.toml"
cp "$TEMPLATE" "$R/boot/livestream-network.txt"
"$NET" generate --root "$R" >/dev/null 2>"$R.err"
check "the page's port is the daemon's, from the boot partition's override" grep -q '"page_by_address": "http://192.168.4.1:9000/"' "$R/run/livestream/network.json"

echo "# livestream-net: which Wi-Fi chip can run an access point beside a client"
for f in hwsim brcmfmac no-beside; do
	"$NET" wifi --iw-output "$FIX/iw-phy-$f.txt" >"$WORK/wifi-$f.out" 2>&1
done
check "mac80211_hwsim (one combination, one channel): beside a client, on 1 channel" \
	grep -qx "phy0: access point: yes; beside a client: yes (on 1 channel(s) at once)" "$WORK/wifi-hwsim.out"
check "brcmfmac (the Pi's chip): beside a client, on 1 channel (the second combination)" \
	grep -qx "phy0: access point: yes; beside a client: yes (on 1 channel(s) at once)" "$WORK/wifi-brcmfmac.out"
check "no combination: not beside a client" grep -qx "phy1: access point: yes; beside a client: no" "$WORK/wifi-no-beside.out"
check "client and access point sharing one place: not beside a client" grep -qx "phy2: access point: yes; beside a client: no" "$WORK/wifi-no-beside.out"
check "no access point mode: neither" grep -qx "phy3: access point: no; beside a client: no" "$WORK/wifi-no-beside.out"
"$NET" wifi --iw-output - <"$FIX/iw-phy-brcmfmac.txt" >"$WORK/wifi-stdin.out" 2>&1
check "wifi reads iw output from stdin too" cmp "$WORK/wifi-brcmfmac.out" "$WORK/wifi-stdin.out"

echo "# the camera on USB"
USBNET="$OVERLAY/usr/lib/systemd/network/20-livestream-usb-camera.network"
check "every USB network link of a camera (NCM, ECM, RNDIS, CDC subset) gets DHCP" has "$USBNET" "Driver=cdc_ncm cdc_ether rndis_host cdc_subset"
check "the camera's USB link is no default route" has "$USBNET" "UseRoutes=no"

echo "# livestream-net: bad input"
R="$WORK/missing"
if gen missing "$WORK/does-not-exist.txt"; then
	pass "missing settings file: exits 0"
else
	fail "missing settings file: exits 0" "$(cat "$R.err")"
fi
check "missing settings file: says so" grep -qF "no settings file at $WORK/does-not-exist.txt" "$R.err"
check "missing settings file: default AP SSID" has "$R/run/livestream-net/hostapd.conf" "ssid2=$(printf livestream | od -An -tx1 -v | tr -d ' \n')"
pw=$(sed -n 's/^wpa_passphrase=//p' "$R/run/livestream-net/hostapd.conf")
if is_random_password "$pw"; then
	pass "missing settings file: a random AP password ($pw), not a shared default"
else
	fail "missing settings file: a random AP password, not a shared default" "got '$pw'"
fi
check "missing settings file: created with that password" test "$(value AP_PASSWORD "$WORK/does-not-exist.txt")" = "$pw"
check "missing settings file: default address" has "$R/run/livestream-net/net.env" "AP_ADDRESS=192.168.4.1"
check "missing settings file: camera not joined" test ! -e "$R/run/livestream-net/wpa_supplicant.conf"

R="$WORK/garbage"
head -c 4096 /dev/urandom >"$WORK/garbage.txt"
if gen garbage "$WORK/garbage.txt"; then
	pass "binary garbage: exits 0"
else
	fail "binary garbage: exits 0" "$(cat "$R.err")"
fi
check "binary garbage: warns" grep -q "warning" "$R.err"
check "binary garbage: defaults used" has "$R/run/livestream-net/dnsmasq.conf" "interface=auto"
# A line of the garbage that ends in CR makes it a Windows-edited file to
# livestream-net, which then ends the password's line with CRLF too (random
# bytes hold a CR LF about one time in sixteen): the CR is not compared.
if cmp -s -n 4096 "$WORK/garbage.txt" "$WORK/garbage.boot/garbage.txt" && [ "$(tail -n 1 "$WORK/garbage.boot/garbage.txt" | tr -d '\r')" = "AP_PASSWORD=$(sed -n 's/^wpa_passphrase=//p' "$R/run/livestream-net/hostapd.conf")" ]; then
	pass "binary garbage: its bytes kept, the random password appended on a line of its own"
else
	fail "binary garbage: its bytes kept, the random password appended on a line of its own" "$(tail -c 100 "$WORK/garbage.boot/garbage.txt" | od -c | tail -n 3)"
fi

R="$WORK/bad"
gen bad "$FIX/bad-settings.txt"
check "bad values: exits 0" test -s "$R/run/livestream-net/net.env"
check "bad values: short AP password reported with file and line" grep -qF "bad-settings.txt line 4: AP_PASSWORD=(hidden) is not valid" "$R.err"
check "bad values: lower-case country reported" grep -qF "COUNTRY='gb' is not valid" "$R.err"
check "bad values: password not printed" lacks "$R.err" "short"
pw=$(sed -n 's/^wpa_passphrase=//p' "$R/run/livestream-net/hostapd.conf")
if is_random_password "$pw" && [ "$(sed -n 4p "$WORK/bad.boot/bad-settings.txt")" = "AP_PASSWORD=$pw" ]; then
	pass "bad values: a short AP password is replaced by a random one, on its own line (4)"
else
	fail "bad values: a short AP password is replaced by a random one, on its own line (4)" "hostapd: '$pw'; line 4: $(sed -n 4p "$WORK/bad.boot/bad-settings.txt")"
fi
check "bad values: nothing else in the file changed" diff <(sed 4d "$FIX/bad-settings.txt") <(sed 4d "$WORK/bad.boot/bad-settings.txt")
check "bad values: channel 99 reported" grep -qF "AP_CHANNEL='99' is not valid" "$R.err"
check "bad values: channel falls back to 6" has "$R/run/livestream-net/hostapd.conf" "channel=6"
check "bad values: shell in interface name rejected" grep -qF "AP_IFACE='wlan1;reboot' is not valid" "$R.err"
check "bad values: unknown key reported" grep -qF "unknown setting 'AP_SSDI'" "$R.err"
check "bad values: non KEY=value line reported" grep -qF "line 9: not a KEY=value line" "$R.err"
# shellcheck disable=SC2016 # python's text, not the shell's
check "bad values: network.json lists them for the phone's page (problems; a tab from the file made a space)" python3 -c 'import json, sys
p = json.load(open(sys.argv[1]))["problems"]
sys.exit(not (any("unknown setting '"'"'AP_SSDI'"'"'" in x for x in p) and any("line 9: not a KEY=value line" in x for x in p) and any("wl an0" in x for x in p) and not any("short" in x for x in p)))' "$R/run/livestream/network.json"
check "bad values: bad DHCP range falls back to defaults" grep -qF "does not fit" "$R.err"
check "bad values: default DHCP range used" has "$R/run/livestream-net/dnsmasq.conf" "dhcp-range=192.168.4.2,192.168.4.20,255.255.255.0,12h"
check "bad values: command substitution not executed" test ! -e /tmp/lsimg-pwned
ssid_hex=$(sed -n 's/^ssid2=//p' "$R/run/livestream-net/hostapd.conf")
# shellcheck disable=SC2016 # the literal text is what we expect back
if [ "$(unhex "$ssid_hex")" = '$(touch /tmp/lsimg-pwned)' ]; then
	pass "bad values: SSID kept literally, hex-encoded"
else
	fail "bad values: SSID kept literally, hex-encoded" "got $ssid_hex"
fi

R="$WORK/same"
printf 'CAMERA_IFACE=wlan1\nAP_IFACE=wlan1\n' >"$WORK/same.txt"
gen same "$WORK/same.txt"
check "same interface twice: reported" grep -qF "both 'wlan1'" "$R.err"
check "same interface twice: defaults" has "$R/run/livestream-net/net.env" "CAMERA_IFACE=wlan0"

echo "# livestream-net: no shared Wi-Fi password"
TEMPLATE="$OVERLAY/usr/share/livestream-net/livestream-network.txt"
check "the shipped settings leave AP_PASSWORD empty" has "$TEMPLATE" "AP_PASSWORD="
R="$WORK/first"
mkdir -p "$R/sys/class/tty/console" "$R/dev"
echo "ttyFAKE0 tty0" >"$R/sys/class/tty/console/active"
: >"$R/dev/ttyFAKE0"
gen first "$TEMPLATE"
S="$WORK/first.boot/livestream-network.txt"
pw=$(value AP_PASSWORD "$S")
if is_random_password "$pw"; then
	pass "first boot: a random password ($pw) written into livestream-network.txt"
else
	fail "first boot: a random password written into livestream-network.txt" "AP_PASSWORD='$pw'"
fi
check "first boot: hostapd uses it" has "$R/run/livestream-net/hostapd.conf" "wpa_passphrase=$pw"
check "first boot: only the AP_PASSWORD line changed" diff <(grep -v '^AP_PASSWORD=' "$TEMPLATE") <(grep -v '^AP_PASSWORD=' "$S")
check "first boot: the log says where the password is" grep -qF "a random password was written to $S" "$R.err"
check "first boot: the log does not contain the password" lacks "$R.err" "$pw"
check "first boot: no warning" lacks "$R.err" "warning"
check "first boot: the console shows the network and the password" grep -qF "Wi-Fi 'livestream' with the password '$pw'" "$R/dev/ttyFAKE0"
check "first boot: a console without a device node is skipped" test ! -e "$R/dev/tty0"
"$NET" generate --root "$R" --settings "$S" >"$R.out2" 2>"$R.err2"
check "second boot: the password stays" test "$(value AP_PASSWORD "$S")" = "$pw"
check "second boot: hostapd keeps it" has "$R/run/livestream-net/hostapd.conf" "wpa_passphrase=$pw"
check "second boot: nothing written" lacks "$R.err2" "random password"
"$NET" show --settings "$S" >"$WORK/show2.out" 2>&1
check "show hides the generated password" grep -qx "AP_PASSWORD=(set)" "$WORK/show2.out"
"$NET" show --settings "$TEMPLATE" >"$WORK/show3.out" 2>&1
check "show says an unset password will be generated" grep -q "^AP_PASSWORD=(unset" "$WORK/show3.out"
gen second "$TEMPLATE"
pw2=$(value AP_PASSWORD "$WORK/second.boot/livestream-network.txt")
if is_random_password "$pw2" && [ "$pw2" != "$pw" ]; then
	pass "another card gets another password ($pw2)"
else
	fail "another card gets another password" "'$pw' then '$pw2'"
fi

R="$WORK/olddefault"
printf '\357\273\277AP_PASSWORD=livestreamd\r\nAP_SSID=Old Card\r\n' >"$WORK/olddefault.txt"
gen olddefault "$WORK/olddefault.txt"
S="$WORK/olddefault.boot/olddefault.txt"
pw=$(value AP_PASSWORD "$S")
if is_random_password "$pw" && has "$R/run/livestream-net/hostapd.conf" "wpa_passphrase=$pw"; then
	pass "the old shared default 'livestreamd' is replaced by a random password"
else
	fail "the old shared default 'livestreamd' is replaced by a random password" "$(cat "$S")"
fi
if [ "$(head -c 3 "$S" | od -An -tx1 | tr -d ' ')" = efbbbf ] && [ "$(grep -c $'\r$' "$S")" = 2 ]; then
	pass "a Windows-edited file keeps its BOM and CRLF line endings"
else
	fail "a Windows-edited file keeps its BOM and CRLF line endings" "$(od -c "$S" | head -n 4)"
fi

R="$WORK/noline"
printf 'AP_SSID=No Password Line\nAP_CHANNEL=1' >"$WORK/noline.txt"
gen noline "$WORK/noline.txt"
S="$WORK/noline.boot/noline.txt"
pw=$(value AP_PASSWORD "$S")
if is_random_password "$pw" && [ "$(sed -n 2p "$S")" = "AP_CHANNEL=1" ] && [ "$(wc -l <"$S")" = 3 ]; then
	pass "no AP_PASSWORD line (and no final newline): one is appended on its own line"
else
	fail "no AP_PASSWORD line (and no final newline): one is appended on its own line" "$(cat "$S")"
fi

R="$WORK/recreate"
mkdir -p "$R/usr/share/livestream-net" "$WORK/recreate.boot"
cp "$TEMPLATE" "$R/usr/share/livestream-net/"
"$NET" generate --root "$R" --settings "$WORK/recreate.boot/livestream-network.txt" >/dev/null 2>"$R.err"
S="$WORK/recreate.boot/livestream-network.txt"
if [ -f "$S" ] && is_random_password "$(value AP_PASSWORD "$S")" && diff <(grep -v '^AP_PASSWORD=' "$TEMPLATE") <(grep -v '^AP_PASSWORD=' "$S") >/dev/null; then
	pass "a deleted settings file is recreated from the shipped one, with a random password"
else
	fail "a deleted settings file is recreated from the shipped one, with a random password" "$(cat "$R.err")"
fi

R="$WORK/linked"
mkdir -p "$R/boot/firmware"
cp "$TEMPLATE" "$R/boot/firmware/livestream-network.txt"
ln -s firmware/livestream-network.txt "$R/boot/livestream-network.txt"
"$NET" generate --root "$R" >/dev/null 2>"$R.err"
if [ -L "$R/boot/livestream-network.txt" ] && is_random_password "$(value AP_PASSWORD "$R/boot/firmware/livestream-network.txt")"; then
	pass "a symlinked settings file (Debian: /boot -> /boot/firmware) is written through, the link kept"
else
	fail "a symlinked settings file (Debian: /boot -> /boot/firmware) is written through, the link kept" "$(ls -l "$R/boot")"
fi

if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1; then
	R="$WORK/readonly"
	mkdir -p "$R" "$WORK/ro-boot"
	cp "$TEMPLATE" "$WORK/ro-boot/livestream-network.txt"
	# a read-only boot partition, in a private mount namespace (gone on exit)
	# shellcheck disable=SC2016 # expanded by the inner sh
	unshare --mount sh -c 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && "$2" generate --root "$3" --settings "$1/livestream-network.txt"' \
		sh "$WORK/ro-boot" "$NET" "$R" >/dev/null 2>"$R.err"
	pw=$(sed -n 's/^wpa_passphrase=//p' "$R/run/livestream-net/hostapd.conf")
	if is_random_password "$pw" && grep -qF "cannot be written (is the boot partition mounted?): a random password is used for this boot only" "$R.err" &&
		cmp -s "$TEMPLATE" "$WORK/ro-boot/livestream-network.txt"; then
		pass "read-only boot partition: a random password for this boot, said in the log"
	else
		fail "read-only boot partition: a random password for this boot, said in the log" "$(cat "$R.err")"
	fi
else
	skip "read-only boot partition (needs root and unshare)"
fi

R="$WORK/noenv"
mkdir -p "$R"
if "$NET" apply --root "$R" 2>"$R.err"; then
	fail "apply before generate fails"
else
	pass "apply before generate fails"
fi
check "apply before generate says to run generate" grep -qF "run 'livestream-net generate' first" "$R.err"

echo "# livestream-net: apply and DHCP in network namespaces"
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null 2>&1 || ! ip netns add "$NS_AP" 2>/dev/null; then
	skip "network namespace tests (need root and ip netns)"
else
	ip netns add "$NS_PH"
	ip link add lsap0 netns "$NS_AP" type veth peer name lsph0 netns "$NS_PH"
	ip -n "$NS_PH" link set lsph0 up
	ip -n "$NS_AP" link set lo up
	R="$WORK/ns"
	printf 'AP_IFACE=lsap0\nCAMERA_IFACE=lscam0\nAP_ADDRESS=192.168.4.1\n' >"$WORK/ns.txt"
	gen ns "$WORK/ns.txt"
	check "namespace: wired-style AP on a veth gets no hostapd.conf" test ! -e "$R/run/livestream-net/hostapd.conf"
	if ip netns exec "$NS_AP" "$NET" apply --root "$R" 2>"$R.apply.err"; then
		pass "namespace: apply exits 0"
	else
		fail "namespace: apply exits 0" "$(cat "$R.apply.err")"
	fi
	ip netns exec "$NS_AP" "$NET" apply --root "$R" 2>>"$R.apply.err"
	addrs=$(ip -n "$NS_AP" -4 -o addr show dev lsap0 | awk '{print $4}')
	if [ "$addrs" = "192.168.4.1/24" ]; then
		pass "namespace: lsap0 has exactly 192.168.4.1/24 after two applies"
	else
		fail "namespace: lsap0 has exactly 192.168.4.1/24 after two applies" "$addrs"
	fi
	if ip -n "$NS_AP" link show dev lsap0 | grep -q "state UP\|,UP"; then
		pass "namespace: lsap0 is up"
	else
		fail "namespace: lsap0 is up" "$(ip -n "$NS_AP" link show dev lsap0)"
	fi
	route=$(ip -n "$NS_AP" -4 route show 192.168.4.0/24 dev lsap0)
	case $route in
	*"src 192.168.4.1 "*"rto_min lock 10ms quickack 1"*)
		pass "namespace: the route to the phones retransmits after rto_min 10ms, quickack"
		;;
	*) fail "namespace: the route to the phones retransmits after rto_min 10ms, quickack" "$route" ;;
	esac
	R2="$WORK/ns-missing"
	printf 'AP_IFACE=lsnothere0\n' >"$WORK/ns-missing.txt"
	gen ns-missing "$WORK/ns-missing.txt"
	if LIVESTREAM_NET_WAIT=1 ip netns exec "$NS_AP" "$NET" apply --root "$R2" 2>"$R2.apply.err"; then
		fail "namespace: apply on an absent interface fails"
	else
		pass "namespace: apply on an absent interface fails"
	fi
	check "namespace: absent interface is named in the message" grep -qF "interface lsnothere0 did not appear within 1s" "$R2.apply.err"

	if command -v dnsmasq >/dev/null 2>&1 && command -v busybox >/dev/null 2>&1; then
		ip netns exec "$NS_AP" "$NET" run dhcp --root "$R" >"$WORK/dnsmasq.log" 2>&1 &
		DNSMASQ_PID=$!
		cat >"$WORK/udhcpc.sh" <<EOF
#!/bin/sh
[ "\$1" = bound ] || exit 0
echo "ip=\$ip" >"$WORK/lease"
echo "router=\${router:-}" >>"$WORK/lease"
echo "dns=\${dns:-}" >>"$WORK/lease"
ip addr add "\$ip/\${mask:-24}" dev "\$interface"
EOF
		chmod 755 "$WORK/udhcpc.sh"
		sleep 0.5
		if ip netns exec "$NS_PH" busybox udhcpc -i lsph0 -n -q -f -t 5 -T 1 -s "$WORK/udhcpc.sh" >"$WORK/udhcpc.log" 2>&1 && [ -s "$WORK/lease" ]; then
			pass "namespace: phone gets a DHCP lease from the generated dnsmasq config"
			lease_ip=$(sed -n 's/^ip=//p' "$WORK/lease")
			last=${lease_ip##*.}
			if [ "${lease_ip%.*}" = 192.168.4 ] && [ "$last" -ge 2 ] && [ "$last" -le 20 ]; then
				pass "namespace: leased address $lease_ip is in 192.168.4.2-20"
			else
				fail "namespace: leased address is in 192.168.4.2-20" "$lease_ip"
			fi
			check "namespace: the Pi is the router" grep -qx "router=192.168.4.1" "$WORK/lease"
			check "namespace: the Pi is the DNS server" grep -qx "dns=192.168.4.1" "$WORK/lease"
			check "namespace: phone reaches 192.168.4.1" ip netns exec "$NS_PH" busybox ping -c 1 -W 2 192.168.4.1
			for name in livestream.lan connectivitycheck.gstatic.com captive.apple.com www.msftconnecttest.com; do
				got=$(ip netns exec "$NS_PH" busybox nslookup "$name" 192.168.4.1 2>&1 | awk '/^Address/ && !/#53/ { a = $NF } END { print a }')
				check "namespace: the Pi's DNS answers $name with the Pi (got $got)" test "$got" = 192.168.4.1
			done
			# Port 80 on the phones' side goes to the daemon's port (8080): a
			# listener there sees a phone's connection to 192.168.4.1:80.
			if command -v nft >/dev/null 2>&1; then
				ip netns exec "$NS_AP" python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080)); s.listen(1); s.settimeout(5)
open(sys.argv[1], "w").close()
try:
    c, _ = s.accept(); print(c.getsockname()[1], c.recv(100).decode().split("\r\n")[0])
except socket.timeout:
    print("none")
' "$WORK/listen.ready" >"$WORK/redirect.out" 2>&1 &
				listener=$!
				for _ in $(seq 1 50); do [ -e "$WORK/listen.ready" ] && break; sleep 0.1; done
				printf 'GET /generate_204 HTTP/1.1\r\n\r\n' | ip netns exec "$NS_PH" busybox nc -w 2 192.168.4.1 80 >/dev/null 2>&1
				wait "$listener"
				check "namespace: port 80 on the phones' side reaches the daemon's port 8080 ($(cat "$WORK/redirect.out"))" \
					grep -qx "8080 GET /generate_204 HTTP/1.1" "$WORK/redirect.out"
				check "namespace: the redirect is on the phones' interface only" sh -c "ip netns exec '$NS_AP' nft list table ip livestream_portal | grep -q 'iifname \"lsap0\" tcp dport 80 redirect to :8080'"
			else
				skip "port 80 redirect (nft not installed)"
			fi
		else
			fail "namespace: phone gets a DHCP lease from the generated dnsmasq config" "$(cat "$WORK/udhcpc.log" "$WORK/dnsmasq.log")"
		fi
		kill "$DNSMASQ_PID" 2>/dev/null
		wait "$DNSMASQ_PID" 2>/dev/null
		DNSMASQ_PID=''

		# The phone side plugged in after boot (a USB adapter): "run dhcp"
		# waits for it with one message, without exiting (so systemd neither
		# fails nor restarts the unit), then addresses it and serves DHCP.
		ip -n "$NS_AP" link del lsap0
		R3="$WORK/ns-late"
		printf 'AP_IFACE=lslate0\nCAMERA_IFACE=lscam0\n' >"$WORK/ns-late.txt"
		gen ns-late "$WORK/ns-late.txt"
		ip netns exec "$NS_AP" "$NET" run dhcp --root "$R3" >"$WORK/late.log" 2>&1 &
		DNSMASQ_PID=$!
		sleep 3
		if kill -0 "$DNSMASQ_PID" 2>/dev/null; then
			pass "namespace: run dhcp waits for an absent interface instead of failing (3 s)"
		else
			fail "namespace: run dhcp waits for an absent interface instead of failing (3 s)" "$(cat "$WORK/late.log")"
		fi
		check "namespace: one message while waiting" test "$(grep -c 'waiting for lslate0' "$WORK/late.log")" = 1
		ip link add lslate0 netns "$NS_AP" type veth peer name lslateph0 netns "$NS_PH"
		ip -n "$NS_PH" link set lslateph0 up
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			[ "$(ip -n "$NS_AP" -4 -o addr show dev lslate0 | awk '{print $4}')" = 192.168.4.1/24 ] && break
			sleep 0.5
		done
		check "namespace: the late interface gets 192.168.4.1/24" test "$(ip -n "$NS_AP" -4 -o addr show dev lslate0 | awk '{print $4}')" = 192.168.4.1/24
		rm -f "$WORK/lease"
		sleep 0.5
		if ip netns exec "$NS_PH" busybox udhcpc -i lslateph0 -n -q -f -t 5 -T 1 -s "$WORK/udhcpc.sh" >"$WORK/udhcpc.log" 2>&1 && [ -s "$WORK/lease" ]; then
			pass "namespace: a phone on the late interface gets a lease"
		else
			fail "namespace: a phone on the late interface gets a lease" "$(cat "$WORK/udhcpc.log" "$WORK/late.log")"
		fi
		kill "$DNSMASQ_PID" 2>/dev/null
		wait "$DNSMASQ_PID" 2>/dev/null
		DNSMASQ_PID=''
		if LIVESTREAM_NET_WAIT=1 ip netns exec "$NS_AP" "$NET" run dhcp --root "$R2" >"$WORK/late2.log" 2>&1; then
			fail "namespace: with LIVESTREAM_NET_WAIT, run dhcp gives up" "$(cat "$WORK/late2.log")"
		else
			check "namespace: with LIVESTREAM_NET_WAIT, run dhcp gives up naming the interface" grep -qF "interface lsnothere0 did not appear within 1s" "$WORK/late2.log"
		fi
		# AP_IFACE=auto: "run dhcp" waits for livestream-ap's choice (ap.env),
		# then serves the interface named there.
		R4="$WORK/ns-auto"
		printf 'AP_IFACE=auto\n' >"$WORK/ns-auto.txt"
		gen ns-auto "$WORK/ns-auto.txt"
		ip netns exec "$NS_AP" "$NET" run dhcp --root "$R4" >"$WORK/auto-dhcp.log" 2>&1 &
		DNSMASQ_PID=$!
		sleep 2
		check "namespace: auto: run dhcp waits for livestream-ap's choice, with one message" \
			test "$(grep -c "waiting for livestream-ap to choose the phones' interface" "$WORK/auto-dhcp.log")" = 1
		printf 'AP_RUN_IFACE=lslate0\nAP_RUN_MODE=own-chip\n' >"$R4/run/livestream-net/ap.env"
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			[ "$(ip -n "$NS_AP" -4 -o addr show dev lslate0 | awk '{print $4}')" = 192.168.4.1/24 ] && break
			sleep 0.5
		done
		rm -f "$WORK/lease"
		if ip netns exec "$NS_PH" busybox udhcpc -i lslateph0 -n -q -f -t 5 -T 1 -s "$WORK/udhcpc.sh" >"$WORK/udhcpc.log" 2>&1 && [ -s "$WORK/lease" ]; then
			pass "namespace: auto: the chosen interface is served (a phone gets a lease there)"
		else
			fail "namespace: auto: the chosen interface is served" "$(cat "$WORK/udhcpc.log" "$WORK/auto-dhcp.log")"
		fi
		kill "$DNSMASQ_PID" 2>/dev/null
		wait "$DNSMASQ_PID" 2>/dev/null
		DNSMASQ_PID=''
	else
		skip "namespace DHCP lease (needs dnsmasq and busybox)"
	fi
	ip netns del "$NS_AP"
	ip netns del "$NS_PH"
	if ip netns list | grep -q "lsimg-"; then
		fail "namespaces removed"
	else
		pass "namespaces removed"
	fi
fi

echo "# reverse-path filter: a phone that forges the camera's address"
SYSCTL_CONF="$OVERLAY/usr/lib/sysctl.d/60-livestream-net.conf"
SYSTEMD_SYSCTL=$(command -v /usr/lib/systemd/systemd-sysctl /lib/systemd/systemd-sysctl | head -n 1)
if [ "$(id -u)" != 0 ] || [ -z "$SYSTEMD_SYSCTL" ] || ! command -v python3 >/dev/null 2>&1 || ! ip netns add "$NS_PI" 2>/dev/null; then
	skip "reverse-path filter (needs root, ip netns, systemd-sysctl, python3)"
else
	ip netns add "$NS_CAM"
	ip netns add "$NS_PHONE"
	# The Pi: wlan0 towards the camera's Wi-Fi, wlan1 the access point.
	ip link add lsrpcam netns "$NS_PI" type veth peer name lsrpcam1 netns "$NS_CAM"
	ip link add lsrpap netns "$NS_PI" type veth peer name lsrpph1 netns "$NS_PHONE"
	ip -n "$NS_PI" addr add 10.5.5.100/24 dev lsrpcam
	ip -n "$NS_PI" addr add 192.168.4.1/24 dev lsrpap
	ip -n "$NS_CAM" addr add 10.5.5.9/24 dev lsrpcam1
	ip -n "$NS_PHONE" addr add 192.168.4.2/24 dev lsrpph1
	# The forger: the camera's address on its own interface.
	ip -n "$NS_PHONE" addr add 10.5.5.9/32 dev lsrpph1
	for ns_if in "$NS_PI lsrpcam" "$NS_PI lsrpap" "$NS_PI lo" "$NS_CAM lsrpcam1" "$NS_PHONE lsrpph1"; do
		# shellcheck disable=SC2086 # two words: namespace and interface
		set -- $ns_if
		ip -n "$1" link set "$2" up
	done
	# count_datagrams: datagrams on the Pi's port 8554 from 10.5.5.9 while
	# the camera (through wlan0) and the forger (through wlan1) send 20 each,
	# as "camera forged".
	count_datagrams() {
		ip netns exec "$NS_PI" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 8554))
s.settimeout(20.0)
open(sys.argv[1], "w").close()
got = {b"camera": 0, b"forged": 0}
try:
    while True:
        data, (ip, _) = s.recvfrom(2048)
        if data == b"done":
            break
        if ip == "10.5.5.9" and data in got:
            got[data] += 1
except socket.timeout:
    pass
print(got[b"camera"], got[b"forged"])
' "$WORK/rp.ready" >"$WORK/rp.count" &
		local listener=$!
		for _ in $(seq 1 50); do [ -e "$WORK/rp.ready" ] && break; sleep 0.1; done
		ip netns exec "$NS_CAM" python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); [s.sendto(b"camera", ("10.5.5.100", 8554)) for _ in range(20)]'
		ip netns exec "$NS_PHONE" python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.5.5.9", 0)); [s.sendto(b"forged", ("192.168.4.1", 8554)) for _ in range(20)]'
		# Both have sent (however slowly python started under load): the
		# camera's side, which every mode lets in, ends the count.
		ip netns exec "$NS_CAM" python3 -c 'import socket, time; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); time.sleep(0.3); s.sendto(b"done", ("10.5.5.100", 8554))'
		wait "$listener"
		rm -f "$WORK/rp.ready"
		cat "$WORK/rp.count"
	}
	# As systemd's 50-default.conf leaves it: loose (2), the forger gets in.
	for k in all default lsrpcam lsrpap; do
		ip netns exec "$NS_PI" sh -c "echo 2 > /proc/sys/net/ipv4/conf/$k/rp_filter"
	done
	loose=$(count_datagrams)
	check "reverse-path filter: loose mode lets the forged datagrams in (the check can fail: $loose)" test "$loose" = "20 20"
	if ip netns exec "$NS_PI" "$SYSTEMD_SYSCTL" "$SYSCTL_CONF" 2>"$WORK/rp.err"; then
		pass "reverse-path filter: systemd-sysctl applies $(basename "$SYSCTL_CONF")"
	else
		fail "reverse-path filter: systemd-sysctl applies $(basename "$SYSCTL_CONF")" "$(cat "$WORK/rp.err")"
	fi
	strict=$(count_datagrams)
	check "reverse-path filter: with the overlay's setting the camera's datagrams arrive and the forged ones do not ($strict)" test "$strict" = "20 0"
	ip netns del "$NS_PI"
	ip netns del "$NS_CAM"
	ip netns del "$NS_PHONE"
fi

echo "# systemd units in the overlay"
if command -v systemd-analyze >/dev/null 2>&1; then
	VR="$WORK/verify-root"
	mkdir -p "$VR/usr/lib/systemd"
	for d in /usr/lib/systemd/system /lib/systemd/system; do
		if [ -d "$d" ]; then
			cp -a "$d" "$VR/usr/lib/systemd/"
			break
		fi
	done
	cp -a "$OVERLAY/." "$VR/"
	cp -a "$REPO/debian-image/rootfs/." "$VR/"
	for unit in "$OVERLAY"/usr/lib/systemd/system/*.service "$REPO"/debian-image/rootfs/usr/lib/systemd/system/*.service; do
		u=${unit##*/}
		check "systemd-analyze verify $u" systemd-analyze verify --root="$VR" --man=no "$u"
	done
else
	skip "systemd-analyze verify (systemd not installed)"
fi
check "99-default.link masks predictable names (wlan0/wlan1 stay)" test "$(readlink "$OVERLAY/etc/systemd/network/99-default.link")" = /dev/null

echo "# Buildroot board scripts"
T="$WORK/br-target"
mkdir -p "$T/etc"
printf '/dev/root / ext2 rw,noauto 0 1\n' >"$T/etc/fstab"
check "post-build.sh runs" "$REPO/buildroot/board/livestreamd/post-build.sh" "$T"
check "post-build.sh: fstab mounts the first partition at /boot" grep -qE '^/dev/mmcblk0p1[[:space:]]+/boot[[:space:]]+vfat' "$T/etc/fstab"
check "post-build.sh: /boot is read-only, checked at boot (passno 2)" grep -qE '^/dev/mmcblk0p1[[:space:]]+/boot[[:space:]]+vfat[[:space:]]+ro,[^[:space:]]*[[:space:]]+0[[:space:]]+2$' "$T/etc/fstab"
"$REPO/buildroot/board/livestreamd/post-build.sh" "$T"
if [ "$(grep -c '/boot' "$T/etc/fstab")" = 1 ]; then
	pass "post-build.sh: running twice adds /boot once"
else
	fail "post-build.sh: running twice adds /boot once" "$(cat "$T/etc/fstab")"
fi
check "post-build.sh: /boot exists in the target" test -d "$T/boot"
BIN="$WORK/br-images"
TOP="$WORK/br-top"
mkdir -p "$BIN/rpi-firmware" "$TOP/board/raspberrypi" "$T/etc/livestreamd" "$T/usr/share/livestream-net"
printf '# stand-in for the daemon config\n' >"$T/etc/livestreamd/livestreamd.toml"
cp "$OVERLAY/usr/share/livestream-net/livestream-network.txt" "$T/usr/share/livestream-net/"
printf '#!/bin/sh\necho "rpi post-image $*" >"%s/rpi-called"\n' "$WORK" >"$TOP/board/raspberrypi/post-image.sh"
chmod 755 "$TOP/board/raspberrypi/post-image.sh"
if (cd "$TOP" && BINARIES_DIR="$BIN" TARGET_DIR="$T" "$REPO/buildroot/board/livestreamd/post-image.sh" extra-arg >"$WORK/post-image.log" 2>&1); then
	pass "post-image.sh runs"
else
	fail "post-image.sh runs" "$(cat "$WORK/post-image.log")"
fi
check "post-image.sh: livestreamd.toml staged for the boot partition" cmp "$T/etc/livestreamd/livestreamd.toml" "$BIN/rpi-firmware/livestreamd.toml"
check "post-image.sh: livestream-network.txt staged for the boot partition" cmp "$OVERLAY/usr/share/livestream-net/livestream-network.txt" "$BIN/rpi-firmware/livestream-network.txt"
check "post-image.sh: hands over to Buildroot's rpi post-image with the arguments" grep -qx "rpi post-image extra-arg" "$WORK/rpi-called"
rm -f "$T/etc/livestreamd/livestreamd.toml"
if (cd "$TOP" && BINARIES_DIR="$BIN" TARGET_DIR="$T" "$REPO/buildroot/board/livestreamd/post-image.sh" >"$WORK/post-image2.log" 2>&1); then
	fail "post-image.sh fails when the daemon config is missing"
else
	pass "post-image.sh fails when the daemon config is missing"
fi

echo "# flash-sd.sh refusals"
FLASH="$REPO/scripts/flash-sd.sh"
FS="$WORK/fake-sys"
IMG="$WORK/sdcard.img"
CARD="$WORK/fakesd"
head -c 65536 /dev/urandom >"$IMG"
mkcard() { # mkcard REMOVABLE
	rm -rf "$FS"
	mkdir -p "$FS/class/block/fakesd/device" "$FS/class/block/fakesd/fakesd1"
	echo "$1" >"$FS/class/block/fakesd/removable"
	echo 62333952 >"$FS/class/block/fakesd/size"
	echo "SD Reader" >"$FS/class/block/fakesd/device/model"
	echo 1 >"$FS/class/block/fakesd/fakesd1/partition"
	mkdir -p "$FS/class/block/fakesd1"
	echo 1 >"$FS/class/block/fakesd1/partition"
	head -c 65536 /dev/zero >"$CARD"
}
: >"$WORK/mounts"
: >"$WORK/swaps"
flash() {
	LIVESTREAM_FLASH_SYSFS="$FS" LIVESTREAM_FLASH_MOUNTS="$WORK/mounts" LIVESTREAM_FLASH_SWAPS="$WORK/swaps" \
		LIVESTREAM_FLASH_ALLOW_FILE=1 "$FLASH" "$@"
}
untouched() {
	cmp -s "$CARD" <(head -c 65536 /dev/zero)
}
mkcard 0
if flash --yes "$IMG" "$CARD" >"$WORK/f.out" 2>&1; then
	fail "refuses a non-removable disk" "$(cat "$WORK/f.out")"
else
	if grep -q "not a removable disk" "$WORK/f.out" && untouched; then
		pass "refuses a non-removable disk"
	else
		fail "refuses a non-removable disk" "$(cat "$WORK/f.out")"
	fi
fi
mkcard 1
cp "$CARD" "$WORK/fakesd1"
if flash --yes "$IMG" "$WORK/fakesd1" >"$WORK/f.out" 2>&1; then
	fail "refuses a partition" "$(cat "$WORK/f.out")"
else
	if grep -q "is a partition" "$WORK/f.out"; then
		pass "refuses a partition"
	else
		fail "refuses a partition" "$(cat "$WORK/f.out")"
	fi
fi
printf '/dev/fakesd1 /media/card vfat rw 0 0\n' >"$WORK/mounts"
if flash --yes "$IMG" "$CARD" >"$WORK/f.out" 2>&1; then
	fail "refuses a disk with a mounted partition" "$(cat "$WORK/f.out")"
else
	if grep -q "/dev/fakesd1 is mounted on /media/card" "$WORK/f.out" && untouched; then
		pass "refuses a disk with a mounted partition"
	else
		fail "refuses a disk with a mounted partition" "$(cat "$WORK/f.out")"
	fi
fi
: >"$WORK/mounts"
if flash "$IMG" "$CARD" </dev/null >"$WORK/f.out" 2>&1; then
	fail "refuses without a terminal and without --yes" "$(cat "$WORK/f.out")"
else
	if grep -q "no terminal" "$WORK/f.out" && untouched; then
		pass "refuses without a terminal and without --yes"
	else
		fail "refuses without a terminal and without --yes" "$(cat "$WORK/f.out")"
	fi
fi
if echo sdb | LIVESTREAM_FLASH_ASK_STDIN=1 flash "$IMG" "$CARD" >"$WORK/f.out" 2>&1; then
	fail "a wrong confirmation writes nothing" "$(cat "$WORK/f.out")"
else
	if grep -q "not confirmed" "$WORK/f.out" && untouched; then
		pass "a wrong confirmation writes nothing"
	else
		fail "a wrong confirmation writes nothing" "$(cat "$WORK/f.out")"
	fi
fi
if flash --dry-run "$IMG" "$CARD" >"$WORK/f.out" 2>&1 && grep -q "dry run" "$WORK/f.out" && untouched; then
	pass "--dry-run prints the command and writes nothing"
else
	fail "--dry-run prints the command and writes nothing" "$(cat "$WORK/f.out")"
fi
if echo fakesd | LIVESTREAM_FLASH_ASK_STDIN=1 flash "$IMG" "$CARD" >"$WORK/f.out" 2>&1 && cmp -s "$IMG" "$CARD"; then
	pass "a confirmed removable card is written with the image"
else
	fail "a confirmed removable card is written with the image" "$(cat "$WORK/f.out")"
fi
gzip -c "$IMG" >"$IMG.gz"
mkcard 1
if flash --yes "$IMG.gz" "$CARD" >"$WORK/f.out" 2>&1 && cmp -s "$IMG" "$CARD"; then
	pass "a compressed image is decompressed onto the card"
else
	fail "a compressed image is decompressed onto the card" "$(cat "$WORK/f.out")"
fi
zstd -q -c "$IMG" >"$WORK/livestream-debian-rpi-arm64.img.zst"
mkcard 1
if flash --yes "$WORK/livestream-debian-rpi-arm64.img.zst" "$CARD" >"$WORK/f.out" 2>&1 && cmp -s "$IMG" "$CARD"; then
	pass "the Debian image (.img.zst) is decompressed onto the card"
else
	fail "the Debian image (.img.zst) is decompressed onto the card" "$(cat "$WORK/f.out")"
fi
# The image is checked before anything is written, the card read back after.
expect_refused() { # expect_refused NAME WANT ARGS...: refused with WANT, card untouched
	local name=$1 want=$2
	shift 2
	mkcard 1
	if flash --yes "$@" "$CARD" >"$WORK/f.out" 2>&1; then
		fail "$name" "$(cat "$WORK/f.out")"
	elif grep -q "$want" "$WORK/f.out" && untouched; then
		pass "$name"
	else
		fail "$name" "$(cat "$WORK/f.out")"
	fi
}
Z="$WORK/livestream-debian-rpi-arm64.img.zst"
(cd "$WORK" && sha256sum "${Z##*/}" >"$Z.sha256")
mkcard 1
if flash --yes "$Z" "$CARD" >"$WORK/f.out" 2>&1 && cmp -s "$IMG" "$CARD" &&
	grep -q "checksum: matches" "$WORK/f.out" && grep -q "verified: the card holds the image" "$WORK/f.out"; then
	pass "a matching .sha256 is checked, the card is read back and verified"
else
	fail "a matching .sha256 is checked, the card is read back and verified" "$(cat "$WORK/f.out")"
fi
head -c 20000 "$Z" >"$WORK/cut.img.zst"
expect_refused "a truncated download is refused before writing" "does not decompress whole" "$WORK/cut.img.zst"
cp "$Z" "$WORK/cut.img.zst"
(cd "$WORK" && sha256sum livestream-debian-rpi-arm64.img.zst | sed 's/livestream-debian-rpi-arm64/cut/' >"$WORK/cut.img.zst.sha256")
printf 'x' | dd of="$WORK/cut.img.zst" bs=1 seek=100 conv=notrunc status=none
expect_refused "an image that does not match its .sha256 is refused before writing" "does not match" "$WORK/cut.img.zst"
rm -f "$WORK/cut.img.zst" "$WORK/cut.img.zst.sha256"
echo 100 >"$FS/class/block/fakesd/size"
if flash --yes "$IMG" "$CARD" >"$WORK/f.out" 2>&1; then
	fail "an image larger than the card is refused" "$(cat "$WORK/f.out")"
elif grep -q "larger than" "$WORK/f.out" && untouched; then
	pass "an image larger than the card is refused"
else
	fail "an image larger than the card is refused" "$(cat "$WORK/f.out")"
fi
echo "# publish-image.sh: the release image for Raspberry Pi Imager, balenaEtcher, bmaptool"
if command -v bmaptool >/dev/null 2>&1; then
	P="$WORK/publish"
	mkdir -p "$P"
	# 8 MiB, mostly holes, data at 1 MiB and 5 MiB, as a card image is.
	truncate -s 8M "$P/card.img"
	head -c 65536 /dev/urandom | dd of="$P/card.img" bs=64K seek=16 conv=notrunc status=none
	head -c 65536 /dev/urandom | dd of="$P/card.img" bs=64K seek=80 conv=notrunc status=none
	zstd -q -c "$P/card.img" >"$P/card.img.zst"
	if "$REPO/scripts/lib/publish-image.sh" "$P/card.img.zst" "$P/out" >"$WORK/p.out" 2>&1; then
		check "publish-image.sh: the .xz is the image" cmp -s "$P/card.img" <(xz -dc "$P/out/card.img.xz")
		check "publish-image.sh: the .sha256 checks" bash -c "cd '$P/out' && sha256sum --quiet -c card.img.xz.sha256"
		truncate -s 8M "$P/target"
		if bmaptool copy --bmap "$P/out/card.img.bmap" "$P/out/card.img.xz" "$P/target" >"$WORK/b.out" 2>&1 &&
			cmp -s "$P/card.img" "$P/target"; then
			pass "bmaptool copy writes the published image with its .bmap"
		else
			fail "bmaptool copy writes the published image with its .bmap" "$(cat "$WORK/b.out")"
		fi
		check "publish-image.sh: the .bmap maps only the data (128 KiB of 8 MiB)" \
			grep -q "<MappedBlocksCount> *32 *</MappedBlocksCount>" "$P/out/card.img.bmap"
		mkcard 1
		if flash --yes "$P/out/card.img.xz" "$CARD" >"$WORK/f.out" 2>&1 && cmp -s "$P/card.img" "$CARD" &&
			grep -q "checksum: matches" "$WORK/f.out"; then
			pass "flash-sd.sh writes the published .img.xz, its .sha256 checked"
		else
			fail "flash-sd.sh writes the published .img.xz, its .sha256 checked" "$(cat "$WORK/f.out")"
		fi
		check "publish-image.sh leaves no temporary files" test -z "$(find "$P/out" -name '.publish.*')"
	else
		fail "publish-image.sh runs" "$(cat "$WORK/p.out")"
	fi
else
	skip "publish-image.sh (needs bmaptool: apt-get install bmap-tools)"
fi
if "$FLASH" --yes "$IMG" "$CARD" >"$WORK/f.out" 2>&1; then
	fail "refuses a regular file without the test hook" "$(cat "$WORK/f.out")"
else
	if grep -q "not a block device" "$WORK/f.out"; then
		pass "refuses a regular file without the test hook"
	else
		fail "refuses a regular file without the test hook" "$(cat "$WORK/f.out")"
	fi
fi
if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null 2>&1 && head -c 1048576 /dev/zero >"$WORK/loop.img" &&
	LOOPDEV=$(losetup --find --show "$WORK/loop.img" 2>/dev/null) && [ -n "$LOOPDEV" ]; then
	if "$FLASH" --dry-run "$IMG" "$LOOPDEV" >"$WORK/f.out" 2>&1; then
		fail "refuses a real non-removable block device ($LOOPDEV)" "$(cat "$WORK/f.out")"
	else
		if grep -q "not a removable disk" "$WORK/f.out"; then
			pass "refuses a real non-removable block device ($LOOPDEV)"
		else
			fail "refuses a real non-removable block device ($LOOPDEV)" "$(cat "$WORK/f.out")"
		fi
	fi
	losetup -d "$LOOPDEV"
	LOOPDEV=''
else
	skip "real loop device refusal (needs root and losetup)"
fi

echo "# Buildroot formatting checker (scripts/lint-images.sh --br-format)"
NEG="$WORK/brneg"
mkdir -p "$NEG/package/livestreamd" "$NEG/configs"
BRW="$REPO/buildroot"
sed '1d; s/^LIVESTREAMD_LICENSE = MIT/FOO_LICENSE = MIT/' "$BRW/package/livestreamd/livestreamd.mk" >"$NEG/package/livestreamd/livestreamd.mk"
sed 's/^\tbool/    bool/' "$BRW/package/livestreamd/Config.in" >"$NEG/package/livestreamd/Config.in"
printf 'sha256 %064d x-cargo6.tar.gz\nsha256  abc  LICENSE\n' 0 >"$NEG/package/livestreamd/livestreamd.hash"
grep -v FORCE_CHECK "$BRW/configs/livestreamd_raspberrypi3_defconfig" >"$NEG/configs/x_defconfig"
"$REPO/scripts/lint-images.sh" --br-format "$NEG"/package/livestreamd/* "$NEG"/configs/* >"$WORK/brneg.out" 2>&1
for want in "livestreamd.mk:1: header" "not properly prefixed: FOO_LICENSE" "Config.in:2: should be indented with one tab" \
	"livestreamd.hash:1: separation" "livestreamd.hash:2: hash size" "missing BR2_DOWNLOAD_FORCE_CHECK_HASHES"; do
	check "format checker reports: $want" grep -qF "$want" "$WORK/brneg.out"
done
check "format checker passes the real package files" "$REPO/scripts/lint-images.sh" --br-format "$BRW"/package/livestreamd/* "$BRW"/configs/* "$BRW"/Config.in "$BRW"/external.mk "$BRW"/external.desc

echo "# livestream-bootfs: tests/image/bootfs.sh (its FAT32 part runs in the booted image: scripts/pull-test.sh)"
if out=$(bash "$HERE/bootfs.sh" 2>&1); then
	pass "tests/image/bootfs.sh: $(tail -n 1 <<<"$out")"
else
	fail "tests/image/bootfs.sh" "$(grep -vE '^(ok|#)' <<<"$out")"
fi

echo "# livestream-growroot: tests/image/growroot.sh (needs MBR partitions on a loop device; the pull test runs it in the booted image)"
if out=$(bash "$HERE/growroot.sh" 2>&1); then
	pass "tests/image/growroot.sh: $(tail -n 1 <<<"$out")"
else
	fail "tests/image/growroot.sh" "$(grep -vE '^(ok|#)' <<<"$out")"
fi

echo "# gen-yocto-crates.sh"
GEN="$REPO/scripts/gen-yocto-crates.sh"
if "$GEN" "$FIX/Cargo.lock" livestreamd >"$WORK/crates.inc" 2>"$WORK/crates.err"; then
	pass "generator runs on the sample Cargo.lock"
else
	fail "generator runs on the sample Cargo.lock" "$(cat "$WORK/crates.err")"
fi
check "generator output matches the expected .inc byte for byte" cmp "$FIX/expected-crates.inc" "$WORK/crates.inc"
if "$GEN" "$WORK/does-not-exist.lock" livestreamd >/dev/null 2>"$WORK/crates.err"; then
	fail "generator fails on a missing Cargo.lock"
else
	pass "generator fails on a missing Cargo.lock"
fi

echo
echo "$PASS passed, $FAIL failed, $SKIP skipped"
[ "$FAIL" -eq 0 ]
