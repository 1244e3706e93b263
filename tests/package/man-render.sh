#!/usr/bin/env bash
# Every man page renders without a warning from man or groff:
#   man-render.sh PAGE...
set -euo pipefail
fails=0
for page in "$@"; do
	name=$(basename "$page")
	w=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null || echo "man failed: $?")
	w+=$(groff -man -ww -z -Tutf8 "$page" 2>&1 || echo "groff failed: $?")
	# a page that renders nothing is not a page
	lines=$(MANWIDTH=80 man -l "$page" 2>/dev/null | wc -l)
	if [[ -n "$w" ]]; then
		echo "not ok - $name renders with warnings:"
		sed 's/^/    /' <<<"$w"
		fails=$((fails + 1))
	elif ((lines < 20)); then
		echo "not ok - $name renders only $lines lines"
		fails=$((fails + 1))
	else
		echo "ok - $name renders without warnings ($lines lines)"
	fi
done
((fails == 0))
