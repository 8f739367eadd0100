#!/bin/sh
# test.sh OUT_DIR: check the rendered site; prints a report, fails on the first problem.
set -eu
out=$1
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
[ -s "$out/index.html" ] || fail "no index.html"
[ -s "$out/VERSION" ] || fail "no VERSION"
pages=0
for page in "$out"/*.html; do
	name=$(basename "$page")
	[ "$name" = index.html ] && continue
	grep -q "href=\"$name\"" "$out/index.html" || fail "index does not link $name"
	grep -q '^<!DOCTYPE html>' "$page" || fail "$name: no doctype"
	grep -q '</html>' "$page" || fail "$name: truncated"
	if grep -q '<script' "$page"; then fail "$name: unescaped markup"; fi
	pages=$((pages + 1))
done
[ "$pages" -gt 0 ] || fail "no pages"
echo "ok: $pages page(s), version $(cat "$out/VERSION")"
