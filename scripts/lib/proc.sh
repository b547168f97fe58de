# shellcheck shell=bash
# scripts/lib/proc.sh: small helpers of the boot scripts (scripts/boot-test.sh,
# scripts/lib/qemu-guest.sh), sourced.

# stop_pid PID: SIGTERM, 5 s to go, then SIGKILL; reaps it when it is our child
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

now() {
	echo "$EPOCHREALTIME"
}

since() { # seconds between two $EPOCHREALTIME stamps, one decimal
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'
}

# free_port: a TCP/UDP port nobody listens on, below the ephemeral range
free_port() {
	local p
	for p in $(shuf -i 20000-32000 -n 50); do
		if ! ss -Htuln "sport = :$p" | grep -q .; then
			echo "$p"
			return
		fi
	done
	return 1
}
