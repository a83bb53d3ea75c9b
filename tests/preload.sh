#!/bin/sh
# preload.sh - real programs run the same with libkmem_malloc.so preloaded
# as with the C library's malloc: python3 (sorting and JSON round trips,
# with PYTHONMALLOC=malloc so that every object goes through malloc),
# gcc -O2 compiling a large generated file (cc1 and as inherit the
# preload), perl and sort on a large generated file, bash running 1,000
# background jobs (a SIGCHLD each), a program whose library, linked at
# start, registers fork handlers that allocate, and tests/mtmalloc.
# Each program's output must be identical both ways, and the preloaded runs
# must print no "libkmem:" report.  python3 also runs out of memory under
# ulimit -v (MemoryError, then goes on).  First checks that the preload is
# really in effect (the library is mapped and malloc resolves to it) and
# that the process publishes its statistics region; at the end, that every
# preloaded process removed its region when it exited.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Exit 0: pass; 1: a difference or a failure (one line says which);
# 77: skipped, a tool (python3, gcc, perl, sort, bash, cmp) is missing.
#
# The commands given to run() are expanded by its eval, $V included.
# shellcheck disable=SC2016,SC2034
set -u

builddir=${abs_top_builddir:-${top_builddir:-.}}
builddir=$(cd "$builddir" && pwd) ||
	{ echo "preload: no build directory"; exit 1; }
lib=$builddir/lib/.libs/libkmem_malloc.so
mtmalloc=$builddir/tests/mtmalloc

for tool in python3 gcc perl sort bash cmp; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "preload: $tool not found; skipped"
		exit 77
	fi
done
[ -f "$lib" ] || { echo "preload: $lib not built"; exit 1; }
[ -x "$mtmalloc" ] || { echo "preload: $mtmalloc not built"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kmem-preload.XXXXXX") ||
	{ echo "preload: mktemp failed"; exit 1; }
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

export LC_ALL=C PYTHONHASHSEED=0
unset LD_PRELOAD MALLOC_CHECK_ MALLOC_PERTURB_ PYTHONMALLOC 2>/dev/null || :
unset KMEM_STATS 2>/dev/null || :
KMEM_STATS_DIR=$tmp/stats
export KMEM_STATS_DIR
mkdir "$KMEM_STATS_DIR" || { echo "preload: mkdir failed"; exit 1; }

fail() {
	echo "preload: $*"
	exit 1
}

# The start of a file, on one line.
snip() {
	head -c 300 "$1" | tr '\n' ' '
}

# run NAME 'COMMAND': runs the shell command twice, with $V set to "plain"
# and then, with the preload in its environment, to "kmem"; stdout goes to
# NAME.$V.out and stderr to NAME.$V.err.  Both runs must exit 0, and the
# preloaded one must print no libkmem report.
run() {
	name=$1 cmd=$2 start=$(date +%s)
	base=$tmp/$name
	(V=plain; eval "$cmd") >"$base.plain.out" 2>"$base.plain.err" ||
		fail "$name: failed without the preload:" \
		    "$(snip "$base.plain.err")"
	(V=kmem; LD_PRELOAD=$lib; export LD_PRELOAD; eval "$cmd") \
	    >"$base.kmem.out" 2>"$base.kmem.err" ||
		fail "$name: failed with the preload: $(snip "$base.kmem.err")"
	if grep -q 'libkmem:' "$base.kmem.err"; then
		fail "$name: $(grep -m 1 'libkmem:' "$base.kmem.err")"
	fi
	times="$times $name $(($(date +%s) - start))s"
}

# same NAME SUFFIX: the plain and preloaded runs' NAME.*.SUFFIX are equal.
same() {
	base=$tmp/$1
	cmp -s "$base.plain.$2" "$base.kmem.$2" ||
		fail "$1: $2 differs with the preload:" \
		    "$(cmp "$base.plain.$2" "$base.kmem.$2" 2>&1 | head -n 1)"
}

t0=$(date +%s) times=

# ---------------------------------------------------------------- active?
cat >"$tmp/active.py" <<'PY'
import ctypes, os, sys, time
maps = [l.split() for l in open("/proc/self/maps") if "libkmem_malloc" in l]
if not maps:
    sys.exit("libkmem_malloc.so is not mapped")
addr = ctypes.cast(ctypes.CDLL(None).malloc, ctypes.c_void_p).value
if not [m for m in maps
        if int(m[0].split("-")[0], 16) <= addr < int(m[0].split("-")[1], 16)]:
    sys.exit("malloc at %#x is not in libkmem_malloc.so" % addr)
region = "%s/libkmem.%d" % (os.environ["KMEM_STATS_DIR"], os.getpid())
for i in range(500):
    if os.path.exists(region):
        break
    time.sleep(0.01)
else:
    sys.exit("no statistics region " + region)
print("malloc is libkmem's")
PY
out=$(env LD_PRELOAD="$lib" python3 "$tmp/active.py" 2>&1) ||
	fail "the preload is not in effect: $(echo "$out" | tr '\n' ' ')"
case $out in
*libkmem:*) fail "report while checking the preload: $out" ;;
esac
if python3 "$tmp/active.py" >/dev/null 2>&1; then
	fail "libkmem_malloc.so is mapped without the preload"
fi

# ---------------------------------------------------------------- python3
cat >"$tmp/dicts.py" <<'PY'
import hashlib, json, random
rng = random.Random(20240501)
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz")
                 for _ in range(rng.randint(3, 12))) for _ in range(5000)]
rows = []
for i in range(200000):
    rows.append({"id": i,
                 "key": rng.choice(words) + str(rng.randint(0, 999)),
                 "value": rng.random(),
                 "tags": rng.sample(words, rng.randint(0, 5)),
                 "blob": "x" * rng.randint(0, 300)})
rows.sort(key=lambda r: (r["key"], -r["value"], r["id"]))
h = hashlib.sha256()
for start in range(0, len(rows), 20000):
    chunk = rows[start:start + 20000]
    text = json.dumps(chunk, sort_keys=True)
    back = json.loads(text)
    assert back == chunk
    h.update(text.encode())
index = {}
for r in rows:
    index.setdefault(r["key"][:2], []).append(r["id"])
print(len(rows), len(index), sum(len(v) for v in index.values()), h.hexdigest())
PY
run python 'PYTHONMALLOC=malloc python3 "$tmp/dicts.py"'
same python out

# A program that runs out of memory under an address-space limit must get
# MemoryError (malloc returning NULL) and go on, not hang.
cat >"$tmp/oom.py" <<'PY'
x = []
try:
    while True:
        x.append("a" * 1000 + str(len(x)))
except MemoryError:
    del x
    print("MemoryError")
print(len([str(i) for i in range(100000)]))
PY
run pyoom '(ulimit -v 600000 && PYTHONMALLOC=malloc python3 "$tmp/oom.py")'
same pyoom out

# ---------------------------------------------------------------- gcc
perl -e '
	print "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n";
	print "struct s { int a; double b; char c[32]; };\n";
	for my $i (0 .. 249) {
		print "int f$i(struct s *p, int n);\n";
		print "int f$i(struct s *p, int n) {\n\tint acc = $i;\n";
		print "\tfor (int k = 0; k < n; k++) {\n",
		    "\t\tswitch ((k + $i) % 5) {\n";
		for my $c (0 .. 4) {
			my $m = ($i * 7 + $c) % 13 + 1;
			print "\t\tcase $c: acc += p[k].a * $m; ",
			    "p[k].b += acc / (double)$m; break;\n";
		}
		print "\t\t}\n\t\tif (p[k].c[k % 32] == $i % 128)\n",
		    "\t\t\tacc ^= (int)strlen(p[k].c);\n\t}\n";
		print "\tif (acc % 3 == 0) acc += f", $i - 1, "(p, n / 2);\n"
		    if $i > 0;
		print "\treturn acc;\n}\n";
	}
	print "int main(void) {\n\tstruct s *p = calloc(100, sizeof (*p));\n",
	    "\tprintf(\"%d\\n\", f249(p, 100));\n\tfree(p);\n\treturn 0;\n}\n";
' >"$tmp/big.c" || fail "cannot generate big.c"
run gcc 'gcc -O2 -Wall -frandom-seed=kmem -c "$tmp/big.c" -o "$tmp/gcc.$V.o"'
same gcc o
same gcc err

# ---------------------------------------------------------------- perl, sort
perl -e '
	srand(7);
	my @w = map {
		join "", map { chr(97 + int(rand(26))) } 1 .. 2 + int(rand(9))
	} 1 .. 20000;
	for my $i (1 .. 500000) {
		my $n = 1 + int(rand(8));
		print int(rand(1e9)), " ",
		    join(" ", map { $w[int(rand(@w))] } 1 .. $n), "\n";
	}
' >"$tmp/words.txt" || fail "cannot generate words.txt"
cat >"$tmp/count.pl" <<'PL'
use strict;
use warnings;
my (%count, %first, $lines, $sum);
$lines = $sum = 0;
while (my $line = <STDIN>) {
	chomp $line;
	my ($num, @words) = split / /, $line;
	$lines++;
	$sum = ($sum + $num) % 1000000007;
	for my $w (@words) {
		$first{$w} //= $lines;
		$count{$w}++;
	}
}
my @top = sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count;
print "$lines lines, ", scalar(@top), " words, sum $sum\n";
print "$_ $count{$_} $first{$_}\n" for @top;
my $joined = join ",", map { scalar reverse $_ } sort keys %count;
print length($joined), "\n";
PL
run perl 'perl "$tmp/count.pl" <"$tmp/words.txt"'
same perl out
run sort 'sort -S 64M --parallel=2 "$tmp/words.txt"'
same sort out
run sortn 'sort -n -S 64M --parallel=2 -k1,1 -k2 "$tmp/words.txt"'
same sortn out

# ---------------------------------------------------------------- bash
# Background jobs: each one that ends sends bash a SIGCHLD, whose handler
# edits bash's job table.  When libkmem's threads did not block signals,
# the handler also ran on them, at the same time as bash's own code, and
# bash crashed within these 1,000 jobs every time.
cat >"$tmp/jobs.sh" <<'SH'
for i in $(seq 1000); do
	/bin/true &
	if [ $((i % 50)) = 0 ]; then wait; fi
done
wait
echo "$i jobs"
SH
run bash 'bash "$tmp/jobs.sh"'
same bash out

# ---------------------------------------------------------------- atfork
# A library linked at start registers, in its constructor, fork handlers
# that allocate.  That constructor runs before libkmem_malloc.so's (a
# preloaded library is initialised last), yet libkmem's handlers must be
# registered first: its prepare handler, which takes every libkmem lock,
# then runs after the library's, and its child handler, which releases
# them, before.  Registered after, both of the library's handlers
# deadlocked in fork().
cat >"$tmp/atfork.c" <<'C'
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
static void *kept;
static void
churn(void)
{
	for (size_t i = 1; i < 64; i++) {
		void *p = malloc(i * 1000);
		memset(p, 1, 8);
		free(p);
	}
}
static void prepare(void) { churn(); kept = malloc(300000); }
static void parent(void) { free(kept); }
static void child(void) { free(kept); churn(); }
__attribute__((constructor)) static void
init(void)
{
	pthread_atfork(prepare, parent, child);
}
C
cat >"$tmp/atforkmain.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int
main(void)
{
	for (int i = 0; i < 5; i++) {
		pid_t pid = fork();
		int st;
		if (pid == 0) {
			free(malloc(100));
			_exit(0);
		}
		if (pid < 0 || waitpid(pid, &st, 0) != pid || st != 0)
			return (1);
	}
	printf("5 forks\n");
	return (0);
}
C
gcc -shared -fPIC -o "$tmp/libatfork.so" "$tmp/atfork.c" -lpthread &&
    gcc -o "$tmp/atforkmain" "$tmp/atforkmain.c" -Wl,--no-as-needed \
    -L"$tmp" -latfork -Wl,-rpath,"$tmp" ||
	fail "cannot build the atfork program"
run atfork 'timeout 60 "$tmp/atforkmain"'
same atfork out

# ---------------------------------------------------------------- mtmalloc
run mtmalloc '"$mtmalloc"'
same mtmalloc out

# ---------------------------------------------------------------- regions
left=$(ls -A "$KMEM_STATS_DIR")
[ -z "$left" ] || fail "statistics regions left behind: $left"

echo "preload: python3, gcc, perl, sort, bash, atfork and mtmalloc agree with" \
    "and without libkmem_malloc.so in $(($(date +%s) - t0)) s:$times"
exit 0
