#!/bin/bash
# tests/image/checks.sh: the ok/FAIL/skip lines and their counts, sourced by
# tests/image/run.sh and scripts/boot-test.sh. Each ends with
#   echo "$PASS passed, $FAIL failed, $SKIP skipped"

PASS=0
FAIL=0
SKIP=0

pass() {
	PASS=$((PASS + 1))
	echo "ok   - $1"
}

# fail NAME [DETAILS]: DETAILS are printed indented below
fail() {
	FAIL=$((FAIL + 1))
	echo "FAIL - $1"
	if [ $# -gt 1 ]; then
		printf '%s\n' "$2" | sed 's/^/       /'
	fi
}

skip() {
	SKIP=$((SKIP + 1))
	echo "skip - $1"
}

# check NAME COMMAND...: pass if the command succeeds, else fail with its output
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		pass "$name"
	else
		fail "$name" "$out"
	fi
}
