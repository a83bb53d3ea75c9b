#!/bin/sh
# debug-preload.sh - KMEM_DEBUG under LD_PRELOAD=libkmem_malloc.so: a
# double free (of a block above the largest class too), a write after
# free, an overrun, the free or realloc of a
# pointer inside a block and the realloc of a freed block (a double free too),
# committed through the C library's malloc, free and realloc
# (tests/debugmalloc), are each reported, naming
# the class cache and the block, and the process aborts (or goes on with
# noabort); ordinary multithreaded work runs without a report; with
# debugging off the same programs do not crash.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Exit 0: pass; 1: a failure (one line says which).
set -u

builddir=${abs_top_builddir:-${top_builddir:-.}}
builddir=$(cd "$builddir" && pwd) ||
	{ echo "debug-preload: no build directory"; exit 1; }
lib=$builddir/lib/.libs/libkmem_malloc.so
prog=$builddir/tests/debugmalloc
[ -f "$lib" ] || { echo "debug-preload: $lib not built"; exit 1; }
[ -x "$prog" ] || { echo "debug-preload: $prog not built"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kmem-dbgpre.XXXXXX") ||
	{ echo "debug-preload: mktemp failed"; exit 1; }
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
unset LD_PRELOAD KMEM_DEBUG 2>/dev/null || :
KMEM_STATS=0
export KMEM_STATS

fail() {
	echo "debug-preload: $*"
	[ -f "$tmp/err" ] && sed 's/^/    /' "$tmp/err" | head -40
	exit 1
}

# run DEBUG MODE: the program, preloaded; status in $rc, stderr in $tmp/err.
run() {
	(
		ulimit -c 0
		if [ -n "$1" ]; then
			KMEM_DEBUG=$1
			export KMEM_DEBUG
		fi
		LD_PRELOAD=$lib exec "$prog" "$2"
	) >"$tmp/out" 2>"$tmp/err"
	rc=$?
	addr=$(sed -n 's/^ADDR //p' "$tmp/err" | head -1)
	[ -n "$addr" ] || fail "$2 ($1): no ADDR line"
}

# expect KIND: the report names a kmem_alloc class and the block.
expect() {
	grep -q "KMEM_DEBUG: $1: cache kmem_alloc_[0-9]*, buffer $addr" \
	    "$tmp/err" || fail "$mode ($debug): no '$1' report for $addr"
}

for mode in double waf overrun inside reinside realloc; do
	case $mode in
	double|realloc) kind="double free" ;;
	waf) kind="write after free" ;;
	overrun) kind="redzone overwritten" ;;
	inside|reinside) kind="free of a pointer inside a buffer" ;;
	esac
	debug=guards,audit
	run "$debug" $mode
	[ "$rc" -eq 134 ] || fail "$mode ($debug): exit status $rc, not 134 (SIGABRT)"
	expect "$kind"
	case $mode in
	*inside) ;;
	*) grep -q "last allocated by thread" "$tmp/err" ||
	    fail "$mode ($debug): no allocation stack" ;;
	esac
	debug=guards,noabort
	run "$debug" $mode
	[ "$rc" -eq 0 ] || fail "$mode ($debug): exit status $rc, not 0"
	expect "$kind"
	grep -q survived "$tmp/out" || fail "$mode ($debug): did not go on"
	debug=
	run "" $mode
	[ "$rc" -eq 0 ] || fail "$mode (no debug): exit status $rc"
	! grep -q KMEM_DEBUG "$tmp/err" || fail "$mode (no debug): a report"
	if [ $mode = inside ] || [ $mode = reinside ]; then
		fn=free
		[ $mode = inside ] || fn=realloc
		grep -q "$fn($addr): 8 bytes into object" "$tmp/err" ||
		    fail "$mode (no debug): no one-line report"
	fi
done

# A block above the largest class freed twice: a double free of no cache's
# (it was reported as an address inside a large block).
mode=bigdouble
for debug in guards,audit guards,noabort; do
	run "$debug" $mode
	case $debug in
	*noabort) [ "$rc" -eq 0 ] || fail "$mode ($debug): exit status $rc" ;;
	*) [ "$rc" -eq 134 ] || fail "$mode ($debug): exit status $rc" ;;
	esac
	grep -q "KMEM_DEBUG: double free: cache (none), buffer $addr: free" \
	    "$tmp/err" || fail "$mode ($debug): no 'double free' report"
done
# Without debugging, one line that says so (it said: not allocated by
# libkmem_malloc).
debug=
run "" $mode
[ "$rc" -eq 0 ] || fail "$mode (no debug): exit status $rc"
grep -q "free($addr): a block above the classes, freed already; ignored" \
    "$tmp/err" || fail "$mode (no debug): no one-line report"

for debug in guards,audit guards,audit=64,noabort none; do
	mode=ok
	run "$debug" ok
	[ "$rc" -eq 0 ] || fail "ok ($debug): exit status $rc"
	! grep -q "libkmem:" "$tmp/err" || fail "ok ($debug): a report"
	grep -qx ok "$tmp/out" || fail "ok ($debug): no output"
done
# leaks: what is still allocated at exit (stdio's buffer, thread stacks'
# TLS) is listed with its stack, and nothing else is reported.
debug=all
run "$debug" ok
[ "$rc" -eq 0 ] || fail "ok ($debug): exit status $rc"
grep -q "KMEM_DEBUG: leak: cache kmem_alloc_[0-9]*, buffer 0x" "$tmp/err" ||
    fail "ok ($debug): no leak listed at exit"
grep -q "allocated by thread" "$tmp/err" ||
    fail "ok ($debug): no allocation stack"
! grep "KMEM_DEBUG:" "$tmp/err" | grep -qv leak ||
    fail "ok ($debug): a report other than leaks"
echo "debug-preload: ok"
exit 0
