#!/bin/sh
# report.sh - bench/report, the performance report (make bench), in its
# quick mode into a directory of the test's own: it exits 0, and its
# results.json parses and holds every benchmark, every allocator of the
# allocator benchmarks, medians within their spread, and the CSV files and
# summary.md it names; the plots are there when gnuplot is.  Then
# --replot redraws from the JSON, and --readme rewrites only what lies
# between the markers of a copy of README.md.  First, that each benchmark
# and bench/report give one line and a nonzero exit for a bad argument
# (NaN, trailing letters, a negative count, kmembench's --child by hand).
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Exit 0: pass; 1: a failure (one line says which); 77: skipped (no
# python3).
set -u

builddir=${abs_top_builddir:-${top_builddir:-.}}
builddir=$(cd "$builddir" && pwd) ||
	{ echo "report.sh: no build directory"; exit 1; }
srcdir=${top_srcdir:-.}
srcdir=$(cd "$srcdir" && pwd) ||
	{ echo "report.sh: no source directory"; exit 1; }

if ! command -v python3 >/dev/null 2>&1; then
	echo "report.sh: python3 not found; skipped"
	exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/report-test.XXXXXX") ||
	{ echo "report.sh: mktemp failed"; exit 1; }
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

fail() {
	echo "report.sh: $*"
	exit 1
}

# Exit wanted, program (in bench/ of the build tree, or bench/report), args.
while read -r want prog args; do
	case $prog in
	report) set -- python3 "$srcdir/bench/report" ;;
	*) set -- "$builddir/bench/$prog" ;;
	esac
	# shellcheck disable=SC2086
	"$@" $args >"$tmp/bad" 2>&1
	rc=$?
	if [ "$rc" -ne "$want" ] || [ "$(wc -l <"$tmp/bad")" -ne 1 ]; then
		cat "$tmp/bad"
		fail "$prog $args: exit $rc, $(wc -l <"$tmp/bad") lines," \
		    "want exit $want and one line"
	fi
done <<EOF
2 objpool_bench -d nan
2 objpool_bench -d 1s
2 kmembench -d nan
2 kmembench -r 2x
2 kmembench --child glibc
2 kmembench -a ,
2 classmem -a ,
2 growbench -m 1x
2 growbench -r -1
2 reallocbench -m 5q
2 reallocbench -r -3
2 kmem_memory -n -1
2 kmem_memory -- -1
1 report --replot --out /dev/null/x
EOF
echo '{}' >"$tmp/results.json"
python3 "$srcdir/bench/report" --replot --out "$tmp" >"$tmp/bad" 2>&1
rc=$?
[ "$rc" -eq 1 ] && [ "$(wc -l <"$tmp/bad")" -eq 1 ] ||
	{ cat "$tmp/bad"; fail "--replot of a JSON without benchmarks:" \
	    "exit $rc, want 1 and one line"; }
rm -f "$tmp/results.json" "$tmp/bad"

python3 "$srcdir/bench/report" --quick --builddir "$builddir" \
    --out "$tmp/out" >"$tmp/log" 2>&1 ||
	{ cat "$tmp/log"; fail "bench/report --quick failed"; }
cat "$tmp/log"

check() {
	python3 - "$tmp/out" "$@" <<'PY'
import csv, json, os, shutil, sys
out = sys.argv[1]
res = json.load(open(os.path.join(out, "results.json")))
b = res["benchmarks"]
want = ["objpool", "kmembench", "growbench", "kmem_memory", "classmem",
        "realloc", "kvdemo"]
assert sorted(b) == sorted(want), sorted(b)
peers = {"glibc", "jemalloc", "mimalloc", "tcmalloc"}
alloc = {
    "kmembench": peers | {"libkmem", "libkmem-malloc"},
    "growbench": peers | {"libkmem", "libkmem-no-ahead"},
    "classmem": peers | {"libkmem", "libkmem-no-ahead", "libkmem-malloc",
                         "zsmalloc"},
    "realloc": peers | {"libkmem-malloc"},
    "kvdemo": peers | {"libkmem", "libkmem-malloc"},
}
value = {"kmembench": "ns_per_pair", "classmem": "pages",
         "realloc": "ms", "kvdemo": "mops_per_sec", "objpool": "mhits_per_sec"}
for name in want:
    rows = b[name]["rows"]
    assert rows, name + ": no rows"
    if name in alloc:
        got = {r["allocator"] for r in rows}
        assert got == alloc[name], (name, sorted(got))
    if name in value:
        v = value[name]
        for r in rows:
            assert r[v] > 0 and r["min"] <= r[v] <= r["max"], (name, r)
    with open(os.path.join(out, name + ".csv")) as f:
        assert len(list(csv.DictReader(f))) == len(rows), name + ".csv"
sc = {(r["scenario"], r["threads"]) for r in b["kmembench"]["rows"]}
assert {s for s, t in sc} == {"pair", "lifo", "xfer", "ctor"}, sc
assert {"p50_ns", "p99_ns", "p999_ns"} <= set(b["growbench"]["rows"][0])
assert {p for p in ("glibc", "jemalloc", "mimalloc", "tcmalloc")} <= \
    set(res["machine"]["peer_versions"])
assert res["quick"] is True and res["machine"]["cpus_online"] >= 1
md = open(os.path.join(out, "summary.md")).read()
for word in ("kmembench", "kvdemo", "growbench", "classmem",
             "reallocbench", "kmem_memory", "objpool"):
    assert "**" + word + "**" in md, word
if shutil.which("gnuplot"):
    for p in ("kmembench_t1", "kmembench_threads", "growbench_latency",
              "classmem_pages", "kvdemo", "realloc", "objpool"):
        png = os.path.join(out, p + ".png")
        assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n", png
        assert p + ".png" in res["plots"], p
PY
}
check || fail "results.json: $(head -c 2000 "$tmp/out/results.json")"

# --replot: the same outputs again from results.json alone.
rm -f "$tmp/out"/*.csv "$tmp/out"/*.png "$tmp/out/summary.md"
python3 "$srcdir/bench/report" --replot --out "$tmp/out" >"$tmp/log" 2>&1 ||
	{ cat "$tmp/log"; fail "--replot failed"; }
check || fail "--replot did not redraw everything"

# --readme rewrites between the markers of README.md, and nothing else.
# It writes next to the script, so it runs on a copy of both.
mkdir "$tmp/src" "$tmp/src/bench"
cp "$srcdir/bench/report" "$tmp/src/bench/report"
printf 'head\n<!-- perf:begin -->\nOLD-SECTION\n<!-- perf:end -->\ntail\n' \
    >"$tmp/src/README.md"
python3 "$tmp/src/bench/report" --replot --readme --out "$tmp/out" \
    >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "--readme failed"; }
readme=$tmp/src/README.md
python3 - "$readme" <<'PY' || fail "--readme: $(cat "$readme")"
import sys
t = open(sys.argv[1]).read()
assert t.startswith("head\n<!-- perf:begin -->\n") and t.endswith(
    "<!-- perf:end -->\ntail\n"), t[:200]
assert "OLD-SECTION" not in t and "| libkmem |" in t and "--quick" in t
assert "make bench" in t and "kvdemo" in t
PY
# Bad options are one-line errors.
python3 "$srcdir/bench/report" --only nosuch --out "$tmp/x" >"$tmp/log" 2>&1 &&
	fail "--only nosuch succeeded"
grep -q "no benchmark 'nosuch'" "$tmp/log" || fail "--only: $(cat "$tmp/log")"
echo "report.sh: ok"
exit 0
