#!/bin/sh
# manpages.sh - every function that libkmem.so exports has a man page,
# man/man3/<function>.3 (a page of its own or a '.so' link to the page
# that documents it), whose NAME section names the function, and every
# man page is listed in Makefile.am so that it is installed and shipped.
set -u
top=${top_srcdir:-.}
build=${abs_top_builddir:-.}
lib=$build/lib/.libs/libkmem.so
if ! command -v nm >/dev/null 2>&1; then
	echo "manpages.sh: no nm here; skipped"; exit 77
fi
if [ ! -f "$lib" ]; then
	echo "manpages.sh: no $lib (a static-only build?); skipped"; exit 77
fi
syms=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TWi]$/ { print $3 }' |
	sed 's/@.*//' | sort -u)
if [ -z "$syms" ]; then
	echo "manpages.sh: nm found no functions in $lib"; exit 1
fi
status=0
n=0
for sym in $syms; do
	n=$((n + 1))
	page=man/man3/$sym.3
	if [ ! -f "$top/$page" ]; then
		echo "$sym: exported by libkmem.so but $page is missing"
		status=1
		continue
	fi
	grep -q "[[:space:]]$page\([[:space:]]\|\$\)" "$top/Makefile.am" ||
		{ echo "$page: not listed in Makefile.am"; status=1; }
	body=$page
	first=$(head -n 1 "$top/$page")
	case $first in
	.so\ *) body=man/${first#.so } ;;
	esac
	if [ ! -f "$top/$body" ]; then
		echo "$page: links to missing $body"; status=1; continue
	fi
	# The NAME section: from '.SH NAME' to the next '.SH'.
	names=$(awk '/^\.SH/ { on = ($2 == "NAME") ; next } on' "$top/$body")
	echo "$names" | grep -q "\(^\|[ ,]\)$sym\([ ,]\|\$\)" ||
		{ echo "$body: NAME does not name $sym"; status=1; }
done
# Every page in the tree is installed.
for page in "$top"/man/man*/*.[0-9]; do
	rel=${page#"$top"/}
	grep -q "[[:space:]]$rel\([[:space:]]\|\$\)" "$top/Makefile.am" ||
		{ echo "$rel: not listed in Makefile.am"; status=1; }
done
[ $status -eq 0 ] && echo "man pages: all $n exported functions documented"
exit $status
