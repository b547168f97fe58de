#!/usr/bin/env bash
# lint-docs.sh: README.md and docs/*.md keep one home for each fact.
#  - every relative link points at a file that exists, and every #anchor at a
#    heading of that file (GitHub's way of turning headings into anchors);
#  - no fenced command block and no table row appears in two of the files;
#  - README.md stays short: at most 150 lines, none over 200 characters.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - README.md docs/*.md <<'PY'
import os, re, sys
files = sys.argv[1:]
bad = []

def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")

def anchors(path):
    out, fenced = set(), False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            out.add(slug(line.lstrip("#")))
    return out

blocks, rows = {}, {}
for f in files:
    text = open(f, encoding="utf-8").read()
    for m in re.finditer(r"\]\(([^)\s]+)\)", text):
        target = m.group(1)
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(os.path.dirname(f), path)) if path else f
        if not os.path.exists(full):
            bad.append(f"{f}: link to {target}: no such file")
        elif anchor and full.endswith(".md") and anchor not in anchors(full):
            bad.append(f"{f}: link to {target}: no such heading")
    for m in re.finditer(r"^```[^\n]*\n(.*?)^```", text, re.S | re.M):
        body = m.group(1).strip()
        if body:
            blocks.setdefault(body, set()).add(f)
    for line in text.splitlines():
        if line.startswith("|") and not re.match(r"^\|[\s\-:|]+\|?$", line) and len(line) > 40:
            rows.setdefault(line.strip(), set()).add(f)
for body, where in blocks.items():
    if len(where) > 1:
        bad.append(f"the same command block in {', '.join(sorted(where))}: {body.splitlines()[0][:70]}")
for row, where in rows.items():
    if len(where) > 1:
        bad.append(f"the same table row in {', '.join(sorted(where))}: {row[:70]}")
readme = open("README.md", encoding="utf-8").read().splitlines()
if len(readme) > 150:
    bad.append(f"README.md: {len(readme)} lines (at most 150)")
for n, line in enumerate(readme, 1):
    if len(line) > 200:
        bad.append(f"README.md:{n}: {len(line)} characters (at most 200)")
for b in bad:
    print("FAIL " + b)
print(f"lint-docs: {len(files)} files, {len(bad)} problem(s)")
sys.exit(1 if bad else 0)
PY
