#!/bin/sh
# demo.sh - the demonstration (make demo) in a short mode: kmemdemo runs
# the key-value server core on libkmem for a few seconds while kmemstat
# watches it, then on malloc, and prints both.  Checks that it exits 0,
# that the kmemstat view it printed names the demo's caches, and that it
# printed the comparison.  First, that a bad -d, -t or -k gets one line and
# exit 2 before anything runs (also from kmemdemo --serve), and that -h
# prints the usage on standard output and exits 0.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Exit 0: pass; 1: a failure (one line says which).
set -u

builddir=${abs_top_builddir:-${top_builddir:-.}}
builddir=$(cd "$builddir" && pwd) ||
	{ echo "demo.sh: no build directory"; exit 1; }
demo=$builddir/cmd/kmemdemo/kmemdemo
[ -x "$demo" ] || { echo "demo.sh: $demo not built"; exit 1; }

out=$(mktemp "${TMPDIR:-/tmp}/kmemdemo-test.XXXXXX") ||
	{ echo "demo.sh: mktemp failed"; exit 1; }
trap 'rm -f "$out"' EXIT
trap 'exit 1' HUP INT TERM

for args in "-d 1" "-d x" "-t 0" "-t 65" "-t 4294967297" "-t 2x" "-k 0" \
    "-k -5" "-k 100000001" "-k 18446744073709551617" "--serve -t 4294967297" \
    "--serve -k -18446744073709551615" "--serve -t ''"; do
	# shellcheck disable=SC2086
	eval "\"\$demo\" $args" >"$out" 2>&1
	rc=$?
	if [ "$rc" -ne 2 ] || [ "$(wc -l <"$out")" -ne 1 ]; then
		cat "$out"
		echo "demo.sh: kmemdemo $args: exit $rc, $(wc -l <"$out")" \
		    "lines, want exit 2 and one line"
		exit 1
	fi
done

"$demo" -h >"$out" 2>/dev/null
rc=$?
if [ "$rc" -ne 0 ] || ! grep -q '^usage: kmemdemo' "$out"; then
	cat "$out"
	echo "demo.sh: kmemdemo -h: exit $rc, want the usage and exit 0"
	exit 1
fi

"$demo" -d 3 -k 50000 >"$out" 2>&1
rc=$?
cat "$out"
[ "$rc" -eq 0 ] || { echo "demo.sh: kmemdemo exited $rc"; exit 1; }
grep -q '^CACHE .*HIT%' "$out" ||
	{ echo "demo.sh: no kmemstat -m view in the output"; exit 1; }
for c in kv_conn kv_node kv_req_256 kv_req_768 kv_req_1536 kv_req_2560; do
	grep -q "^$c " "$out" ||
		{ echo "demo.sh: the kmemstat view does not name $c"; exit 1; }
done
grep -q '^requests per second  *[0-9][0-9]* *[0-9][0-9]* ' "$out" ||
	{ echo "demo.sh: no throughput line"; exit 1; }
grep -q '^peak RSS (MiB)  *[0-9]' "$out" ||
	{ echo "demo.sh: no memory line"; exit 1; }
echo "demo.sh: ok"
exit 0
