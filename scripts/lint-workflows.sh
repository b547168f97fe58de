#!/usr/bin/env bash
# lint-workflows.sh: checks .github/workflows/*.yml offline.
#  - against GitHub's workflow schema (check-jsonschema's built-in copy;
#    actionlint cannot be installed here: no binary in its PyPI package, and
#    Debian's Go is too old to build it);
#  - every `run:` step is `bash scripts/NAME.sh ...` of a script that exists,
#    so that what a workflow runs is what runs on a developer's machine.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v check-jsonschema >/dev/null ||
	{ echo "lint-workflows.sh: check-jsonschema is missing (scripts/install-deps.sh)" >&2; exit 1; }
bad=0
for f in .github/workflows/*.yml; do
	if check-jsonschema -q --builtin-schema vendor.github-workflows "$f"; then
		echo "ok   $f: GitHub's workflow schema"
	else
		echo "FAIL $f: GitHub's workflow schema"
		bad=1
	fi
	steps_ok=1
	while IFS= read -r line; do
		cmd=$(sed -E 's/^[[:space:]-]*run:[[:space:]]*//' <<<"$line")
		script=$(sed -nE 's|^bash (scripts/[A-Za-z0-9/_.-]+\.sh)( .*)?$|\1|p' <<<"$cmd")
		if [ -z "$script" ] || [ ! -f "$script" ]; then
			echo "FAIL $f: a step runs \`$cmd\`, not a script of this repository"
			steps_ok=0
			bad=1
		fi
	done < <(grep -E '^[[:space:]-]*run:' "$f")
	if [ "$steps_ok" = 1 ]; then
		echo "ok   $f: every run step calls a script of this repository"
	fi
done
exit "$bad"
