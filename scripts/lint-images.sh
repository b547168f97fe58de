#!/bin/bash
# lint-images.sh: CI entry for the image recipes (issue 7).
#
#   scripts/lint-images.sh            run every check below
#   scripts/lint-images.sh --br-format FILE...
#                                     only the Buildroot formatting check
#
# Checks:
#   1. shellcheck on every shell script under scripts/, buildroot/, tests/image/,
#      debian-image/
#   2. oelint-adv on yocto/meta-livestream for each release in LAYERSERIES_COMPAT
#   3. Buildroot formatting rules (a re-implementation of the utils/check-package
#      rules that apply to our files; Buildroot itself cannot be fetched in CI)
#   4. every file the recipes install or reference exists in the repository
#      (systemd/livestreamd.service, configs/livestreamd.toml, LICENSE and
#      Cargo.lock come from the main tree: missing is only tolerated when
#      there is no Cargo.toml, i.e. on the images branch alone)
#   5. livestreamd-crates.inc is what scripts/gen-yocto-crates.sh makes from
#      Cargo.lock (when Cargo.lock exists)
#   6. tests/image/run.sh (needs root for the network namespace tests)
# Needs: bash, python3, shellcheck, oelint-adv, systemd (systemd-analyze),
# iproute2, dnsmasq, busybox. Ends with "N passed, M failed".

# The grep/sed/case patterns below match literal $(VAR) and ${VAR} text in
# recipes, so single quotes are meant.
# shellcheck disable=SC2016

set -u

REPO=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
# shellcheck source=tests/image/checks.sh
. "$REPO/tests/image/checks.sh"
ok() { pass "$@"; }
bad() { fail "$@"; }

# Buildroot formatting rules, checked file by file. Rules (verified against
# Buildroot's utils/check-package, see docs/IMAGES.md): common text rules
# (trailing whitespace, consecutive/last empty lines, newline at EOF, ASCII,
# not executable), .mk header block and package-prefixed variables and tab
# indentation in define blocks, Config.in indentation, attribute order and
# help text layout, .hash field format, defconfig BR2_DOWNLOAD_FORCE_CHECK_HASHES
# and line syntax, external.desc name.
br_format() {
	python3 - "$@" <<'PYEOF'
import os
import re
import sys

errors = []


def err(path, lineno, msg):
    errors.append("%s:%s: %s" % (path, lineno, msg))


def common(path, lines, raw, ascii_only):
    if os.access(path, os.X_OK):
        err(path, 0, "file does not need to be executable")
    prev_empty = False
    for i, line in enumerate(lines, 1):
        if line != line.rstrip():
            err(path, i, "line contains trailing whitespace")
        empty = line.strip() == ""
        if empty and prev_empty:
            err(path, i, "consecutive empty lines")
        prev_empty = empty
        if ascii_only and any(ord(c) > 127 for c in line):
            err(path, i, "line contains UTF-8 characters")
    if lines and lines[-1].strip() == "":
        err(path, len(lines), "empty line at end of file")
    if raw and not raw.endswith("\n"):
        err(path, len(lines), "missing newline at end of file")


def check_mk(path, lines):
    pkg = os.path.basename(path)[:-3]
    upper = pkg.replace("-", "_").upper()
    header = ["#" * 80, "#", "# " + pkg, "#", "#" * 80, ""]
    for i, want in enumerate(header, 1):
        got = lines[i - 1] if len(lines) >= i else None
        if i == 3:
            if got is None or not got.startswith("# "):
                err(path, i, "header: should be '# <package name>'")
        elif got != want:
            err(path, i, "header: expected %r" % want)
    var = re.compile(r"^(define\s+)?([A-Z0-9_]+_[A-Z0-9_]+)")
    prefix = re.compile(r"^(HOST_)?%s_[A-Z0-9_]+$" % re.escape(upper))
    in_define = False
    backslash = False
    for i, line in enumerate(lines, 1):
        if re.match(r"^\s*define\s", line):
            in_define = True
        elif re.match(r"^\s*endef\b", line):
            in_define = False
        elif in_define and line.strip() and not line.lstrip().startswith("#"):
            if not line.startswith("\t"):
                err(path, i, "expected indent with tabs")
        elif not in_define and not backslash and line.startswith("\t"):
            err(path, i, "unexpected indent with tabs")
        backslash = line.endswith("\\") and not line.startswith("#")
        m = var.match(line)
        if m and not prefix.match(m.group(2)):
            err(path, i, "variable not properly prefixed: %s -> %s_XXXX" % (m.group(2), upper))
        if re.match(r"^\s*(else\s+)?ifn?def\s", line):
            err(path, i, "use ifeq ($(SYMBOL),y) instead of ifdef/ifndef")
        if re.match(r"^[^#].*[^$]\$\{\w+\}", line):
            err(path, i, "use $() to delimit variables, not ${}")
        if re.match(r"^.*(  |\t ?)\\$", line):
            err(path, i, "use only one space before backslash")
        if re.match(r"^%s_SOURCE\s*=\s*%s-\$\(%s_VERSION\)\.tar\.gz" % (upper, re.escape(pkg), upper), line):
            err(path, i, "remove default value of _SOURCE variable")


def check_config(path, lines):
    indented = ("bool", "default", "depends", "help", "prompt", "select", "string")
    unindented = ("choice", "comment", "config", "endchoice", "endif", "endmenu",
                  "if", "menu", "menuconfig", "source")
    order = {"bool": 1, "prompt": 1, "string": 1, "default": 2, "depends": 3,
             "select": 4, "help": 5}
    state = 0
    in_help = False
    first_help = False
    for i, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped == "" or stripped.startswith("#"):
            continue
        if in_help and line.startswith("\t  "):
            body = line[3:]
            if re.match(r"^(http|https|git)://\S*$", body.strip()):
                pass
            elif len(body) > 62:
                err(path, i, "help text: <tab><2 spaces><62 chars>")
            elif first_help and body.startswith(" "):
                err(path, i, "help text: first line must not start with a space")
            first_help = False
            continue
        word = stripped.split()[0]
        if word in unindented:
            in_help = False
            state = 0
            if line != line.lstrip():
                err(path, i, "should not be indented")
            continue
        if word in indented:
            if not line.startswith("\t" + word):
                err(path, i, "should be indented with one tab")
            if word == "help":
                in_help = True
                first_help = True
        new = order.get(word)
        if new is not None:
            if state > new:
                err(path, i, "attributes order: type, default, depends on, select, help")
            state = new
        if re.match(r"^\tdefault n$", line.split("#")[0].rstrip()):
            err(path, i, "boolean symbols default to 'n', so 'default n' is redundant")


def check_hash(path, lines):
    sizes = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}
    for i, line in enumerate(lines, 1):
        if line.strip() == "" or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 3:
            err(path, i, "expected three fields")
            continue
        if fields[0] not in sizes:
            err(path, i, "unexpected type of hash")
        elif not re.match(r"^[0-9A-Fa-f]{%d}$" % sizes[fields[0]], fields[1]):
            err(path, i, "hash size does not match type")
        if line != "%s  %s  %s" % tuple(fields):
            err(path, i, "separation does not match expectation (two spaces)")


def check_defconfig(path, lines):
    if "BR2_DOWNLOAD_FORCE_CHECK_HASHES=y" not in lines:
        err(path, 0, "missing BR2_DOWNLOAD_FORCE_CHECK_HASHES")
    seen = {}
    for i, line in enumerate(lines, 1):
        m = re.match(r"^(BR2_[A-Za-z0-9_]+)=(y|\".*\"|[0-9]+|0x[0-9a-fA-F]+)$", line) or \
            re.match(r"^# (BR2_[A-Za-z0-9_]+) is not set$", line)
        if not m:
            err(path, i, "not a savedefconfig line")
            continue
        if m.group(1) in seen:
            err(path, i, "%s already set on line %d" % (m.group(1), seen[m.group(1)]))
        seen[m.group(1)] = i


def check_desc(path, lines):
    names = [l for l in lines if l.startswith("name:")]
    if len(names) != 1 or not re.match(r"^name: +[A-Za-z0-9_]+$", names[0]):
        err(path, 1, "external.desc needs one 'name: [A-Za-z0-9_]+' line")


for path in sys.argv[1:]:
    with open(path, encoding="utf-8", errors="replace") as f:
        raw = f.read()
    lines = raw.split("\n")
    if raw.endswith("\n"):
        lines = lines[:-1]
    base = os.path.basename(path)
    if base == "external.desc":
        common(path, lines, raw, True)
        check_desc(path, lines)
    elif base == "external.mk":
        common(path, lines, raw, True)
    elif base.endswith(".mk"):
        common(path, lines, raw, True)
        check_mk(path, lines)
    elif re.search(r"Config\.\S*$", base):
        common(path, lines, raw, True)
        check_config(path, lines)
    elif base.endswith(".hash"):
        common(path, lines, raw, False)
        check_hash(path, lines)
    elif re.search(r"(^|/)configs/[^/]+_defconfig$", path):
        common(path, lines, raw, False)
        check_defconfig(path, lines)
    else:
        errors.append("%s:0: no Buildroot formatting rules for this file" % path)

for e in errors:
    print(e)
sys.exit(1 if errors else 0)
PYEOF
}

if [ "${1:-}" = "--br-format" ]; then
	shift
	br_format "$@"
	exit $?
fi

cd "$REPO" || exit 1

echo "# 1. shellcheck"
if ! command -v shellcheck >/dev/null 2>&1; then
	bad "shellcheck is not installed"
else
	while IFS= read -r f; do
		case $(head -n 1 "$f") in
		'#!/bin/sh'* | '#!/bin/bash'* | '#!/usr/bin/env sh'* | '#!/usr/bin/env bash'*)
			if out=$(shellcheck --external-sources "$f" 2>&1); then
				ok "shellcheck $f"
			else
				bad "shellcheck $f"
				printf '%s\n' "$out" | sed 's/^/       /'
			fi
			;;
		esac
	done < <(find scripts buildroot tests/image debian-image -type f 2>/dev/null | sort)
fi

echo "# 2. oelint-adv"
if ! command -v oelint-adv >/dev/null 2>&1; then
	bad "oelint-adv is not installed (pip install oelint-adv)"
else
	releases=$(sed -n 's/^LAYERSERIES_COMPAT_livestream *= *"\(.*\)"/\1/p' yocto/meta-livestream/conf/layer.conf)
	[ -n "$releases" ] || bad "no LAYERSERIES_COMPAT_livestream in layer.conf"
	mapfile -t recipes < <(cd yocto && find meta-livestream -name '*.bb' -o -name '*.bbappend' | sort)
	for rel in $releases; do
		# run from yocto/ so that yocto/.oelint.cfg applies
		if out=$(cd yocto && oelint-adv --quiet --release "$rel" "${recipes[@]}" 2>&1) && [ -z "$out" ]; then
			ok "oelint-adv --release $rel (${#recipes[@]} recipes, no findings)"
		else
			bad "oelint-adv --release $rel"
			printf '%s\n' "$out" | sed 's/^/       /'
		fi
	done
fi

echo "# 3. Buildroot formatting (check-package rules)"
mapfile -t brfiles < <(find buildroot -type f \( -name '*.mk' -o -name 'Config.in*' -o -name '*.hash' -o -name 'external.desc' -o -path '*/configs/*_defconfig' \) | sort)
for f in "${brfiles[@]}"; do
	if out=$(br_format "$f"); then
		ok "buildroot format $f"
	else
		bad "buildroot format $f"
		printf '%s\n' "$out" | sed 's/^/       /'
	fi
done

echo "# 4. files the recipes install exist"
MAIN_TREE=0
[ -f Cargo.toml ] && MAIN_TREE=1
LEAD_FILES="systemd/livestreamd.service configs/livestreamd.toml LICENSE Cargo.lock"
need() { # need PATH WHY
	local p=$1 why=$2
	if [ -e "$p" ]; then
		ok "exists: $p ($why)"
	else
		case " $LEAD_FILES " in
		*" $p "*)
			if [ "$MAIN_TREE" = 1 ]; then
				bad "missing: $p ($why)"
			else
				ok "pending: $p ($why) comes from the main tree; no Cargo.toml here, so not required yet"
			fi
			;;
		*) bad "missing: $p ($why)" ;;
		esac
	fi
}
# Buildroot package: $(@D)/PATH is the repository root of the release tarball
while IFS= read -r p; do
	need "$p" "buildroot/package/livestreamd/livestreamd.mk"
done < <(grep -o '\$(@D)/[A-Za-z0-9_./-]*' buildroot/package/livestreamd/livestreamd.mk | sed 's|^\$(@D)/||' | sort -u)
need LICENSE "LIVESTREAMD_LICENSE_FILES"
need Cargo.lock "cargo-package builds with --locked"
# Buildroot defconfigs: paths inside this br2-external tree
while IFS= read -r p; do
	need "buildroot/$p" "defconfig reference"
done < <(grep -ho '\$(BR2_EXTERNAL_LIVESTREAMD_PATH)/[A-Za-z0-9_./-]*' buildroot/configs/*_defconfig | sed 's|^\$(BR2_EXTERNAL_LIVESTREAMD_PATH)/||' | sort -u)
for s in buildroot/board/livestreamd/post-build.sh buildroot/board/livestreamd/post-image.sh buildroot/board/livestreamd/rootfs-overlay/usr/sbin/livestream-net; do
	if [ -x "$s" ]; then ok "executable: $s"; else bad "not executable: $s"; fi
done
# Yocto recipes: ${S}/PATH is the repository root, ${OVERLAY}/PATH the overlay
OVERLAY_DIR=buildroot/board/livestreamd/rootfs-overlay
while IFS= read -r line; do
	file=${line%%:*}
	ref=${line#*:}
	case $ref in
	'${S}/'*) need "${ref#\$\{S\}/}" "$file" ;;
	'${OVERLAY}/'*) need "$OVERLAY_DIR/${ref#\$\{OVERLAY\}/}" "$file" ;;
	esac
done < <(grep -o '\${\(S\|OVERLAY\)}/[A-Za-z0-9_./$-]*' -r yocto/meta-livestream --include='*.bb' --include='*.inc' | sed 's|\$unit|livestream-net|' | sort -u)
for u in livestream-net livestream-camera livestream-ap livestream-dhcp; do
	need "$OVERLAY_DIR/usr/lib/systemd/system/$u.service" "livestream-net recipe and overlay"
	if grep -q "$u.service" yocto/meta-livestream/recipes-connectivity/livestream-net/livestream-net_0.1.0.bb; then
		ok "yocto SYSTEMD_SERVICE lists $u.service"
	else
		bad "yocto SYSTEMD_SERVICE lacks $u.service"
	fi
done
for inc in livestreamd-crates.inc livestreamd-source.inc; do
	need "yocto/meta-livestream/recipes-multimedia/livestreamd/$inc" "required by the recipes"
done

echo "# 5. livestreamd-crates.inc matches Cargo.lock"
if [ -f Cargo.lock ]; then
	if out=$(scripts/gen-yocto-crates.sh --check 2>&1); then
		ok "livestreamd-crates.inc is up to date"
	else
		bad "livestreamd-crates.inc is stale (scripts/gen-yocto-crates.sh --write)"
		printf '%s\n' "$out" | sed 's/^/       /'
	fi
elif [ "$MAIN_TREE" = 1 ]; then
	bad "Cargo.lock is missing in the main tree"
else
	ok "pending: no Cargo.lock on this branch; the generator is tested in tests/image"
fi

echo "# 6. tests/image/run.sh"
if out=$(tests/image/run.sh 2>&1); then
	ok "tests/image/run.sh ($(printf '%s\n' "$out" | tail -n 1))"
else
	bad "tests/image/run.sh"
	printf '%s\n' "$out" | grep -v '^ok ' | sed 's/^/       /'
fi

echo
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
