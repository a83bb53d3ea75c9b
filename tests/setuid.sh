#!/bin/sh
# setuid.sh - KMEM_* environment variables are ignored in a set-user-ID
# program (AT_SECURE), as glibc ignores its malloc tunables there, and
# honoured otherwise.  Needs root, to give a copy of tests/tunenv to
# "nobody" with the set-user-ID bit; skipped (77) without root, without
# that user, or where the temporary directory is mounted nosuid.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -u

prog=./tests/tunenv
[ -x "$prog" ] || { echo "setuid: $prog not built"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "setuid: not root; skipped"; exit 77; }
if ! id nobody >/dev/null 2>&1; then
	echo "setuid: no user nobody; skipped"
	exit 77
fi

out=$(KMEM_REAP_INTERVAL=7 "$prog") || { echo "setuid: $prog failed"; exit 1; }
[ "$out" = "secure=0 kmem_reap_interval=7" ] ||
	{ echo "setuid: KMEM_REAP_INTERVAL=7 not taken: $out"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kmem-setuid.XXXXXX") ||
	{ echo "setuid: mktemp failed"; exit 1; }
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp" && cp "$prog" "$tmp/tunenv" && chown nobody "$tmp/tunenv" &&
    chmod 4755 "$tmp/tunenv" || { echo "setuid: cannot set up $tmp"; exit 1; }
out=$(KMEM_REAP_INTERVAL=7 "$tmp/tunenv") ||
	{ echo "setuid: the set-user-ID copy failed"; exit 1; }
case $out in
secure=0*) echo "setuid: $tmp is mounted nosuid; skipped"; exit 77 ;;
"secure=1 kmem_reap_interval=5") ;;
*) echo "setuid: KMEM_REAP_INTERVAL=7 taken by a set-user-ID program: $out"
   exit 1 ;;
esac
echo "setuid: KMEM_* ignored with AT_SECURE, honoured without"
exit 0
