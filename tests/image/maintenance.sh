#!/bin/bash
# tests/image/maintenance.sh: livestream-maintenance inside the booted
# Debian image (scripts/pull-test.sh runs it there; it changes the running
# system's mounts, so it refuses to run anywhere else).
#
#   tests/image/maintenance.sh --in-image
#
# Before: / read-only, /var a tmpfs without dpkg's database, the boot
# partition read-only. After `livestream-maintenance`: / read-write, the
# card's /var (dpkg's database) in place, the boot partition read-write, a
# file can be written in /usr/local and on the boot partition (both removed
# again), `livestream-maintenance status` says so, a second call says it is
# already on. That the next boot is read-only again is shown by the pull
# test: the next boot of this card writes nothing. Ends with "N passed, M
# failed, K skipped".

set -u

HERE=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
# shellcheck source=tests/image/checks.sh
. "$HERE/checks.sh"

if [ "${1:-}" != --in-image ] || [ ! -x /usr/sbin/livestream-maintenance ] || [ "$(id -u)" != 0 ]; then
	echo "tests/image/maintenance.sh: runs inside the booted image only, as root, with --in-image" >&2
	exit 2
fi

opts() {
	findmnt -n -o OPTIONS "$1"
}
is_ro() {
	grep -qE '(^|,)ro(,|$)' <<<"$(opts "$1")"
}
BOOT=/boot/firmware

echo "# livestream-maintenance in the booted image"
check "before: / is read-only ($(opts /))" is_ro /
check "before: /var is in RAM ($(findmnt -n -o FSTYPE /var))" test "$(findmnt -n -o FSTYPE /var)" = tmpfs
check "before: dpkg's database is not in the RAM /var" test ! -e /var/lib/dpkg/status
check "before: the boot partition is read-only ($(opts "$BOOT"))" is_ro "$BOOT"
check "before: status says off" grep -q 'is off' <<<"$(livestream-maintenance status)"
if out=$(livestream-maintenance 2>&1); then
	pass "livestream-maintenance exits 0"
else
	fail "livestream-maintenance exits 0" "$out"
fi
check "it says until when" grep -q 'until the next boot' <<<"$out"
check "after: / is read-write ($(opts /))" bash -c "! grep -qE '(^|,)ro(,|\$)' <<<'$(opts /)'"
check "after: the card's /var is in place (dpkg's database)" test -s /var/lib/dpkg/status
check "after: the boot partition is read-write ($(opts "$BOOT"))" bash -c "! grep -qE '(^|,)ro(,|\$)' <<<'$(opts "$BOOT")'"
if echo test >/usr/local/livestream-maintenance-test && rm /usr/local/livestream-maintenance-test; then
	pass "after: a file can be written in /usr/local"
else
	fail "after: a file can be written in /usr/local"
fi
if echo test >"$BOOT/maintenance-test.txt" && rm "$BOOT/maintenance-test.txt"; then
	pass "after: a file can be written on the boot partition"
else
	fail "after: a file can be written on the boot partition"
fi
check "status says on" grep -q 'is on since' <<<"$(livestream-maintenance status)"
check "a second call says it is already on" grep -q 'already on' <<<"$(livestream-maintenance 2>&1)"
sync

echo
echo "$PASS passed, $FAIL failed, $SKIP skipped"
[ "$FAIL" -eq 0 ]
