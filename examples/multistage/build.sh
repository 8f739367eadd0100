#!/bin/sh
# build.sh SRC_DIR OUT_DIR [CACHE_DIR]: render every SRC_DIR/*.txt (first line: title,
# the rest: paragraphs separated by blank lines) to OUT_DIR/<name>.html, plus an index.
set -eu
src=$1
out=$2
cache=${3:-}
title=${SITE_TITLE:-site}
mkdir -p "$out"

escape() {
	sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g'
}

render() { # render FILE NAME
	page_title=$(head -n 1 "$1" | escape)
	printf '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
	printf '<title>%s - %s</title></head>\n<body>\n<h1>%s</h1>\n' "$page_title" "$title" "$page_title"
	tail -n +2 "$1" | escape | awk '
		/^[[:space:]]*$/ { if (p) { print "</p>"; p = 0 } next }
		{ if (!p) { printf "<p>"; p = 1 } else printf " "; printf "%s", $0 }
		END { if (p) print "</p>" }'
	printf '<p><a href="index.html">back</a></p>\n</body></html>\n'
}

index=$out/index.html
{
	printf '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>%s</title></head>\n' "$title"
	printf '<body>\n<h1>%s</h1>\n<ul>\n' "$title"
} >"$index"
rendered=0
reused=0
for f in "$src"/*.txt; do
	name=$(basename "$f" .txt)
	key=""
	if [ -n "$cache" ]; then
		key=$(cat "$f" build.sh | md5sum | cut -d' ' -f1)
	fi
	if [ -n "$key" ] && [ -f "$cache/$key.html" ]; then
		cp "$cache/$key.html" "$out/$name.html"
		reused=$((reused + 1))
	else
		render "$f" >"$out/$name.html"
		[ -z "$key" ] || cp "$out/$name.html" "$cache/$key.html"
		rendered=$((rendered + 1))
	fi
	printf '<li><a href="%s.html">%s</a></li>\n' "$name" "$(head -n 1 "$f" | escape)" >>"$index"
done
printf '</ul>\n</body></html>\n' >>"$index"
echo "build.sh: $rendered page(s) rendered, $reused reused from the cache"
