# shellcheck shell=bash
# Counted checks for the test scripts (sourced): each check prints `ok   ...`
# or `FAIL ...`; `summary` prints `N passed, M failed` and fails when a check
# failed or none ran.
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
# check DESCRIPTION COMMAND [ARG...]: passes when the command succeeds.
check() {
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}
summary() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
}
