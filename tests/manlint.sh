#!/bin/sh
# manlint.sh - every man page formats without a warning (groff -ww) and,
# where mandoc is installed, passes mandoc -Tlint.  '.so' link pages are
# checked to point at a page that exists.
set -u
top=${top_srcdir:-.}
cd "$top/man" || exit 99
status=0
for page in man*/*.[0-9]; do
	first=$(head -n 1 "$page")
	case $first in
	.so\ *)
		target=${first#.so }
		[ -f "$target" ] || { echo "$page: links to missing $target"; status=1; }
		continue ;;
	esac
	out=$(groff -t -ww -z -man "$page" 2>&1)
	if [ -n "$out" ]; then
		echo "$page: groff: $out"; status=1
	fi
	if command -v mandoc >/dev/null 2>&1; then
		# STYLE-level notes are advice; warnings and errors fail.
		out=$(mandoc -Tlint -Wwarning "$page" 2>&1)
		if [ -n "$out" ]; then
			echo "$page: mandoc: $out"; status=1
		fi
	fi
done
[ $status -eq 0 ] && echo "man pages: clean"
exit $status
