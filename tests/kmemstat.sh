#!/bin/sh
# kmemstat.sh - kmemstat(1) against live processes: tests/statload, a
# process with several caches under load, publishes its region in a
# directory of the test's own (KMEM_STATS_DIR); kmemstat lists it, prints
# its caches with the numbers of kmem_cache_stats (-p, -j, -m compared in
# python3), its classes, task queues and tunables (-c, -q, -T), repeats
# with rates (interval count), sees caches appear and disappear, and makes
# it reap (-r).  Then every error: no such process, no region (a process
# without libkmem, KMEM_STATS=0), permission denied, another version, a
# truncated, corrupt or stale region; the cleanup of dead processes'
# regions; usage errors; KMEM_STATS, KMEM_STATS_INTERVAL and
# KMEM_STATS_DIR, good and bad.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Exit 0: pass; 1: a failure (one line says which); 77: skipped (no
# python3).
set -u

builddir=${abs_top_builddir:-${top_builddir:-.}}
builddir=$(cd "$builddir" && pwd) ||
	{ echo "kmemstat.sh: no build directory"; exit 1; }
kmemstat=$builddir/cmd/kmemstat/kmemstat
statload=$builddir/tests/statload

if ! command -v python3 >/dev/null 2>&1; then
	echo "kmemstat.sh: python3 not found; skipped"
	exit 77
fi
[ -x "$kmemstat" ] || { echo "kmemstat.sh: $kmemstat not built"; exit 1; }
[ -x "$statload" ] || { echo "kmemstat.sh: $statload not built"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kmemstat-test.XXXXXX") ||
	{ echo "kmemstat.sh: mktemp failed"; exit 1; }
chmod 755 "$tmp"
dir=$tmp/shm
mkdir "$dir" && chmod 755 "$dir" || { echo "kmemstat.sh: mkdir"; exit 1; }
spid= others= launch=
cleanup() {
	[ -n "$spid" ] && kill "$spid" 2>/dev/null
	for p in $others; do kill "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

export LC_ALL=C KMEM_STATS_DIR="$dir"
# No aging: a process at rest keeps exactly the numbers it had.
export KMEM_REAP_INTERVAL=0
unset KMEM_STATS KMEM_STATS_INTERVAL LD_PRELOAD 2>/dev/null || :
t0=$(date +%s)

fail() {
	echo "kmemstat.sh: $*"
	exit 1
}

# ---------------------------------------------------------------- helpers
# start [VAR=value ...]: statload (run by $launch, if set), commands on
# fd 3, answers on fd 4; sets $spid and $pid.
start() {
	rm -f "$tmp/in" "$tmp/out"
	mkfifo "$tmp/in" "$tmp/out" || fail "mkfifo failed"
	# shellcheck disable=SC2086
	env "$@" $launch "$statload" <"$tmp/in" >"$tmp/out" 2>"$tmp/err" &
	spid=$!
	exec 3>"$tmp/in" 4<"$tmp/out"
	read -r word pid <&4 || fail "statload did not start: $(cat "$tmp/err")"
	[ "$word" = ready ] || fail "statload: $word $pid"
}

# cmd LINE: one command to statload; its answer must start with "ok".
cmd() {
	echo "$*" >&3
	read -r answer <&4 || fail "statload died on '$*': $(cat "$tmp/err")"
	case $answer in
	ok*) ;;
	*) fail "statload: $*: $answer" ;;
	esac
}

stop() {
	cmd quit
	exec 3>&- 4<&-
	wait "$spid"
	status=$?
	spid=
	[ $status -eq 0 ] || fail "statload exited with status $status"
}

# wait_for PATH: until it exists (5 s at most).
wait_for() {
	i=0
	while [ ! -e "$1" ]; do
		i=$((i + 1))
		[ $i -le 100 ] || fail "$1 did not appear"
		sleep 0.05
	done
}

# expect_error STATUS PATTERN COMMAND...: the command fails with exit
# STATUS and one line on stderr that contains PATTERN.
expect_error() {
	want=$1 pattern=$2
	shift 2
	"$@" >"$tmp/stdout" 2>"$tmp/stderr"
	got=$?
	[ $got -eq "$want" ] ||
		fail "'$*' exited $got, not $want: $(cat "$tmp/stderr")"
	[ "$(wc -l <"$tmp/stderr")" -eq 1 ] ||
		fail "'$*' wrote not one line: $(cat "$tmp/stderr")"
	grep -q -- "$pattern" "$tmp/stderr" ||
		fail "'$*': expected '$pattern', got: $(cat "$tmp/stderr")"
}

# ok COMMAND...: exits 0 with nothing on stderr; stdout in $tmp/stdout.
ok() {
	"$@" >"$tmp/stdout" 2>"$tmp/stderr" ||
		fail "'$*' failed: $(cat "$tmp/stderr")"
	[ ! -s "$tmp/stderr" ] || fail "'$*' complained: $(cat "$tmp/stderr")"
}

cat >"$tmp/check.py" <<'PY'
import json, re, sys

def die(msg):
    sys.exit(msg)

def lines(path):
    return [json.loads(l) for l in open(path) if l.strip()]

def one_json(path):
    text = open(path).read()
    docs = [json.loads(l) for l in text.splitlines() if l.strip()]
    if len(docs) != 1:
        die("%s: %d JSON documents, expected 1" % (path, len(docs)))
    return docs[0]

def caches_by_name(doc):
    return {c["name"]: c for c in doc["caches"]}

cmd = sys.argv[1]
if cmd == "match":
    # match STATS JSON: every cache's kmem_cache_stats numbers, as published
    stats, doc = lines(sys.argv[2]), one_json(sys.argv[3])
    by = caches_by_name(doc)
    n = 0
    for s in stats:
        if "class" in s:
            continue
        c = by.get(s["name"])
        if c is None:
            die("cache %s missing from kmemstat -j" % s["name"])
        for k, v in s.items():
            if c.get(k) != v:
                die("%s.%s: kmemstat %s, kmem_cache_stats %s"
                    % (s["name"], k, c.get(k), v))
        n += 1
    if n < 4:
        die("only %d caches compared" % n)
    for c in doc["caches"]:
        if c["obj_inuse"] != c["alloc"] - c["free"]:
            die("%s: obj_inuse != alloc - free" % c["name"])
        chunk = -(-c["obj_size"] // c["obj_align"]) * c["obj_align"]
        if c["mem_inuse"] != c["obj_inuse"] * chunk:
            die("%s: mem_inuse %d" % (c["name"], c["mem_inuse"]))
    for k, v in doc["totals"].items():
        want = len(doc["caches"]) if k == "caches" else \
            sum(c[k] for c in doc["caches"])
        if v != want:
            die("totals.%s: %d, the caches add up to %d" % (k, v, want))
    if doc["pid"] != int(sys.argv[4]) or doc["command"] != "statload":
        die("pid or command wrong: %s %s" % (doc["pid"], doc["command"]))
elif cmd == "classes":
    # classes STATS JSON: the classes in use, as kmem_alloc_class_stats says
    stats, doc = lines(sys.argv[2]), one_json(sys.argv[3])
    by = {c["name"]: c for c in doc["classes"]}
    n = 0
    for s in stats:
        if "class" not in s:
            continue
        c = by.get(s["name"])
        if c is None or c["class"] != s["class"]:
            die("class %s missing or misplaced" % s["name"])
        for k, v in s.items():
            if c.get(k) != v:
                die("%s.%s: kmemstat %s, kmem_alloc_class_stats %s"
                    % (s["name"], k, c.get(k), v))
        n += 1
    if n < 3:
        die("only %d classes compared" % n)
elif cmd == "text":
    # text TABLE JSON: the text table says what the JSON says
    doc = one_json(sys.argv[3])
    by = caches_by_name(doc)
    rows = {}
    total = None
    for l in open(sys.argv[2]):
        f = l.split()
        if f and f[0] in by:
            rows[f[0]] = f
        elif f and f[0] == "TOTAL":
            total = f
    if set(rows) != set(by):
        die("text rows %s, JSON caches %s" % (sorted(rows), sorted(by)))
    for name, f in rows.items():
        c = by[name]
        want = [c["obj_size"], c["obj_inuse"], c["obj_cached"],
                c["obj_total"]]
        if [int(x) for x in f[1:5]] != want:
            die("%s: text %s, JSON %s" % (name, f[1:5], want))
        if int(f[7]) != c["slab_total"] or int(f[12]) != c["alloc"] or \
                int(f[13]) != c["alloc_fail"] or int(f[15]) != c["obj_deadlock"]:
            die("%s: text row %s disagrees with JSON" % (name, f))
    if total is None or int(total[2]) != doc["totals"]["obj_inuse"]:
        die("TOTAL row %s" % total)
elif cmd == "sorted":
    # sorted TABLE KEY: rows in KEY's order
    names, vals = [], []
    col = {"name": 0, "inuse": 2}[sys.argv[3]]
    for l in open(sys.argv[2]):
        f = l.split()
        if len(f) == 16 and f[0] not in ("CACHE", "TOTAL", "process"):
            names.append(f[0])
            vals.append(f[col] if col == 0 else int(f[col]))
    want = sorted(vals) if col == 0 else sorted(vals, reverse=True)
    if not vals or vals != want:
        die("not sorted by %s: %s" % (sys.argv[3], vals))
    if len(sys.argv) > 4 and len(vals) != int(sys.argv[4]):
        die("%d rows, -n asked for %s" % (len(vals), sys.argv[4]))
elif cmd == "has":
    # has JSON NAME [yes|no]: whether the cache is listed
    names = caches_by_name(one_json(sys.argv[2]))
    if (sys.argv[3] in names) != (sys.argv[4] == "yes"):
        die("cache %s: listed %s" % (sys.argv[3], sys.argv[3] in names))
elif cmd == "field":
    # field JSON CACHE KEY: print a cache's field
    print(caches_by_name(one_json(sys.argv[2]))[sys.argv[3]][sys.argv[4]])
elif cmd == "header":
    # header JSON KEY: print a header field
    print(one_json(sys.argv[2])[sys.argv[3]])
elif cmd == "list":
    # list JSON PID: the listing (a JSON array) has the process
    procs = json.load(open(sys.argv[2]))
    if not [p for p in procs if p["pid"] == int(sys.argv[3]) and
            p["command"] == "statload" and p["caches"] >= 1]:
        die("process %s not listed: %s" % (sys.argv[3], procs))
elif cmd == "interval":
    # interval TEXT: two samples, the second with rates, statload busy
    text = open(sys.argv[2]).read()
    samples = text.split("\nprocess ")
    if len(samples) != 2 or "ALLOC/s" not in samples[1] or \
            "ALLOCS" not in samples[0]:
        die("not two samples, the second with rates: %r" % text[:300])
    rows = [l.split() for l in samples[1].splitlines()
            if l.startswith("statload_small ")]
    if not rows or float(rows[0][12]) <= 0:
        die("no allocation rate for statload_small: %s" % rows)
elif cmd == "jsonl":
    # jsonl FILE N: N JSON lines, publishes not decreasing
    docs = [json.loads(l) for l in open(sys.argv[2])]
    if len(docs) != int(sys.argv[3]):
        die("%d JSON lines, expected %s" % (len(docs), sys.argv[3]))
    if docs[-1]["publishes"] <= docs[0]["publishes"]:
        die("publishes did not advance with -w")
elif cmd == "patch":
    # patch SRC DST key=value...: a copy of a region, altered
    data = bytearray(open(sys.argv[2], "rb").read())
    data[16:24] = bytes(8)      # seq: even, whenever the copy was taken
    for kv in sys.argv[4:]:
        k, v = kv.split("=")
        v = int(v, 0)
        if k == "pid":
            data[32:40] = v.to_bytes(8, "little", signed=True)
        elif k == "proc_start":
            data[40:48] = v.to_bytes(8, "little")
        elif k == "version":
            data[8:12] = v.to_bytes(4, "little")
        elif k == "magic":
            data[0:8] = v.to_bytes(8, "little")
        elif k == "truncate":
            del data[v:]
        elif k == "caches_offset":
            data[128:132] = v.to_bytes(4, "little")
        elif k == "name_unterminated":
            off = int.from_bytes(data[128:132], "little")
            data[off:off + 32] = b"x" * 32
        else:
            die("unknown patch " + k)
    open(sys.argv[3], "wb").write(bytes(data))
elif cmd == "swap":
    # swap KMEMSTAT STALE NEW: while the list reads the stale region
    # STALE (kept busy by an odd seq), NEW, locked as a live region is,
    # is renamed in under its name; the list must leave NEW there
    import fcntl, os, subprocess, time
    stale, new = sys.argv[3], sys.argv[4]
    old = os.open(stale, os.O_RDWR)
    os.pwrite(old, (1).to_bytes(8, "little"), 16)
    lock = os.open(new, os.O_RDONLY)
    fcntl.flock(lock, fcntl.LOCK_EX)
    ino = os.fstat(lock).st_ino
    p = subprocess.Popen([sys.argv[2]], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    fds = "/proc/%d/fd" % p.pid
    for i in range(5000):
        try:
            if any(os.readlink(fds + "/" + f) == stale
                   for f in os.listdir(fds)):
                break
        except OSError:
            pass
        if p.poll() is not None:
            die("kmemstat ended before reading %s" % stale)
        time.sleep(0.001)
    else:
        die("kmemstat did not open %s" % stale)
    os.rename(new, stale)
    os.pwrite(old, (2).to_bytes(8, "little"), 16)
    err = p.communicate()[1].decode()
    if p.returncode != 0:
        die("kmemstat failed: " + err)
    if not os.path.exists(stale) or os.stat(stale).st_ino != ino:
        die("the new region under %s was removed: %s" % (stale, err))
else:
    die("unknown check " + cmd)
PY
check() {
	python3 "$tmp/check.py" "$@" || fail "check $1 failed"
}

# ---------------------------------------------------------------- live
start
region=$dir/libkmem.$pid
wait_for "$region"
[ "$(stat -c %a "$region")" = 600 ] ||
	fail "$region has mode $(stat -c %a "$region"), not 600"

# The list shows it, as text and as JSON; -d overrides KMEM_STATS_DIR.
ok "$kmemstat"
awk -v p="$pid" '$1 == p && $2 == "statload" { f = 1 } END { exit !f }' \
    "$tmp/stdout" || fail "kmemstat does not list $pid: $(cat "$tmp/stdout")"
ok env KMEM_STATS_DIR=/nonexistent "$kmemstat" -d "$dir" -j
cp "$tmp/stdout" "$tmp/list.json"
check list "$tmp/list.json" "$pid"

# Under load: two samples a second apart, the second with rates.
echo "load 1800" >&3
ok "$kmemstat" -w -p "$pid" 1 2
cp "$tmp/stdout" "$tmp/interval.txt"
read -r answer <&4 || fail "statload died under load: $(cat "$tmp/err")"
[ "$answer" = "ok load" ] || fail "load: $answer"
check interval "$tmp/interval.txt"

# At rest: kmemstat's numbers are kmem_cache_stats's, text and JSON.
cmd settle
cmd stats "$tmp/stats1"
ok "$kmemstat" -w -j -p "$pid"
cp "$tmp/stdout" "$tmp/caches.json"
check match "$tmp/stats1" "$tmp/caches.json" "$pid"
ok "$kmemstat" -p "$pid"
cp "$tmp/stdout" "$tmp/caches.txt"
check text "$tmp/caches.txt" "$tmp/caches.json"
ok "$kmemstat" -j -c -p "$pid"
cp "$tmp/stdout" "$tmp/classes.json"
check classes "$tmp/stats1" "$tmp/classes.json"
# -m, the magazine view, at rest: the same counters as the JSON.
ok "$kmemstat" -p "$pid" -m
cp "$tmp/stdout" "$tmp/mags.txt"
python3 -c 'import json, sys
d = json.load(open(sys.argv[2]))
lines = open(sys.argv[1]).read().splitlines()
assert lines[1].split() == ["CACHE", "SIZE", "INUSE", "CACHED", "MEMTOTAL",
    "ALLOCS", "FREES", "HIT%", "DEPOT", "DCONT", "CTORS"], lines[1]
rows = {l.split()[0]: l.split() for l in lines[2:]}
for c in d["caches"]:
    r = rows[c["name"]]
    ops = c["alloc"] + c["free"]
    hits = c["mag_alloc_hits"] + c["mag_free_hits"]
    assert int(r[1]) == c["obj_size"] and int(r[2]) == c["obj_inuse"], r
    assert int(r[5]) == c["alloc"] and int(r[6]) == c["free"], r
    if c["mag_size"] == 0:
        assert r[7] == "-", r
    elif ops:
        assert abs(float(r[7]) - 100.0 * hits / ops) <= 0.05, r
    assert int(r[8]) == ops - hits and int(r[9]) == c["depot_contention"], r
    assert int(r[10]) == c["ctor_calls"], r
assert rows["TOTAL"][5] == str(sum(c["alloc"] for c in d["caches"]))
assert any(c["mag_size"] and c["mag_alloc_hits"] for c in d["caches"])' \
    "$tmp/mags.txt" "$tmp/caches.json" || fail "-m: $(cat "$tmp/mags.txt")"

# Sorting and limits.
ok "$kmemstat" -p "$pid" -s name
check sorted "$tmp/stdout" name
ok "$kmemstat" -p "$pid" -s inuse -n 3
check sorted "$tmp/stdout" inuse 3
# Two JSON lines with -w: a publish each.
ok "$kmemstat" -w -j -p "$pid" 1 2
check jsonl "$tmp/stdout" 2

# Classes (zsmalloc's columns), task queues, tunables.
ok "$kmemstat" -p "$pid" -c
head -n 2 "$tmp/stdout" | tail -n 1 | grep -q \
    '^class  *size almost_full almost_empty obj_allocated  *obj_used pages_used pages_per_slab freeable pages_carved$' ||
	fail "-c header: $(head -n 2 "$tmp/stdout")"
grep -q '^ *Total ' "$tmp/stdout" || fail "-c has no Total row"
ok "$kmemstat" -p "$pid" -q
# Dynamic: 1 to 4 threads of at most 4.
grep -q '^kmem_taskq  *[1-4]  *4 ' "$tmp/stdout" ||
	fail "-q: no kmem_taskq with at most 4 threads: $(cat "$tmp/stdout")"
ok "$kmemstat" -p "$pid" -T
grep -q '^kmem_stats  *1  *1  *0\.\.1$' "$tmp/stdout" ||
	fail "-T: kmem_stats: $(cat "$tmp/stdout")"
grep -q '^kmem_reap_interval  *0  *5  *0\.\.3600$' "$tmp/stdout" ||
	fail "-T: kmem_reap_interval from the environment: $(cat "$tmp/stdout")"
grep -q '^kmem_percpu  *[a-z]*  *rseq  *rseq|lock$' "$tmp/stdout" ||
	fail "-T: kmem_percpu: $(cat "$tmp/stdout")"
ok "$kmemstat" -p "$pid" -j -T -q
python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))
assert {t["name"] for t in d["tunables"]} >= {"kmem_stats", "kmem_stats_interval"}
assert d["taskqs"][0]["name"] == "kmem_taskq" and "caches" not in d' \
    "$tmp/stdout" || fail "-j -T -q: $(cat "$tmp/stdout")"

# Caches created and destroyed at run time appear and disappear.
cmd create statload_tmp 100
ok "$kmemstat" -w -j -p "$pid"
check has "$tmp/stdout" statload_tmp yes
cmd destroy statload_tmp
ok "$kmemstat" -w -j -p "$pid"
check has "$tmp/stdout" statload_tmp no

# Thousands of caches, some destroyed and others created between two
# reports: each rate is its cache's allocations over the interval (the
# cache found in the previous report by its id), a new cache's counted
# from zero.  many_<i> allocates 100 * (i % 4 + 1) objects between the
# reports (and twice as many before), so ALLOC/s / (i % 4 + 1) is one
# value for all.  Skipped if the machine is too slow to do the work
# within the interval.
cmd many many_a 2000 200
cmd many many_b 500 200
"$kmemstat" -w -p "$pid" -s name 4 2 >"$tmp/many.txt" 2>"$tmp/stderr" &
kpid=$!
i=0
until grep -q "^TOTAL" "$tmp/many.txt"; do
	i=$((i + 1))
	[ $i -le 200 ] || fail "kmemstat -p $pid 4 2: no first sample"
	sleep 0.05
done
cmd unmany many_b
cmd many many_a 2000 100
cmd many many_c 500 100
late=$(grep -c "^TOTAL" "$tmp/many.txt")
wait "$kpid" || fail "kmemstat -p $pid 4 2, many caches: $(cat "$tmp/stderr")"
if [ "$late" -eq 1 ]; then
	python3 -c 'import sys
samples = open(sys.argv[1]).read().split("\nprocess ")
assert len(samples) == 2 and "ALLOC/s" in samples[1], samples[1][:300]
rows = [l.split() for l in samples[1].splitlines()[2:]]
rates = {r[0]: float(r[12]) for r in rows if r[0].startswith("many_")}
want = {"many_%s%d" % (p, i) for p in "ac" for i in range(2000 if p == "a"
    else 500)}
assert set(rates) == want, sorted(set(rates) ^ want)[:10]
per = {n: r / (int(n[6:]) % 4 + 1) for n, r in rates.items()}
v = sorted(per.values())[len(per) // 2]
bad = [(n, rates[n]) for n in rates
    if abs(rates[n] - v * (int(n[6:]) % 4 + 1)) > 1.5]
assert v > 0 and not bad, (v, bad[:10])' "$tmp/many.txt" ||
		fail "rates of many caches: $(head -c 2000 "$tmp/many.txt")"
else
	echo "kmemstat.sh: statload too slow: rates of many caches not checked"
fi
cmd unmany many_

# -j: a name that is not UTF-8 (a surrogate, an overlong form, a code
# point past U+10FFFF) is valid UTF-8 JSON, each bad byte U+FFFD.
bad=$(printf 'bad\355\240\200\340\200\200\364\220\200\200')
cmd create "$bad" 100
ok "$kmemstat" -w -j -p "$pid"
python3 -c 'import json, sys
d = json.loads(open(sys.argv[1], "rb").read().decode("utf-8"))
assert "bad" + "\ufffd" * 10 in [c["name"] for c in d["caches"]]' \
    "$tmp/stdout" || fail "-j, a name not UTF-8: $(od -c "$tmp/stdout")"
cmd destroy "$bad"
# A table shows control characters as '?', C1 ones too (U+009B is CSI to
# a terminal, and so is the byte 0x9B, not UTF-8, in an 8-bit mode): the
# process names its caches, and the terminal may be root's.
c1=$(printf 'c1\302\2332J\233m\001x\303\251')
cmd create "$c1" 100
ok "$kmemstat" -w -p "$pid"
grep -q "^c1?2J?m?x$(printf '\303\251') " "$tmp/stdout" &&
    ! grep -q "$(printf '\233')" "$tmp/stdout" ||
	fail "a name with C1 controls: $(od -c "$tmp/stdout" | head -20)"
ok "$kmemstat" -w -j -p "$pid"
python3 -c 'import json, sys
b = open(sys.argv[1], "rb").read()
assert b"\xc2\x9b" not in b and b"\\u009b" in b, b
d = json.loads(b.decode("utf-8"))
assert "c1\x9b2J\ufffdm\x01x\xe9" in [c["name"] for c in d["caches"]]' \
    "$tmp/stdout" || fail "-j, a name with C1 controls: $(cat "$tmp/stdout")"
cmd destroy "$c1"

# -r: freed objects sit in magazines and empty slabs until a reap.
cmd free statload_medium 100
cmd settle
ok "$kmemstat" -w -j -p "$pid"
cached=$(check field "$tmp/stdout" statload_medium obj_cached)
slabs=$(check field "$tmp/stdout" statload_medium slab_total)
[ "$cached" -gt 0 ] && [ "$slabs" -gt 0 ] ||
	fail "statload_medium holds $cached cached objects, $slabs slabs"
ok "$kmemstat" -p "$pid" -r
grep -q "^process $pid (statload) reaped: slabs [0-9]* -> [0-9]*" \
    "$tmp/stdout" || fail "-r said: $(cat "$tmp/stdout")"
ok "$kmemstat" -j -p "$pid"
[ "$(check field "$tmp/stdout" statload_medium slab_total)" -eq 0 ] &&
    [ "$(python3 -c 'import json,sys
print(json.load(open(sys.argv[1]))["totals"]["obj_cached"])' \
    "$tmp/stdout")" -eq 0 ] ||
	fail "after -r: $(cat "$tmp/stdout")"
cmd stats "$tmp/stats2"
check match "$tmp/stats2" "$tmp/stdout" "$pid"

# A -d whose region path is longer than PATH_MAX (the directory itself
# is fine: "/" repeated, then $dir) is said to be so, not cut short.
long=$(printf '/%.0s' $(seq 4080))$dir
expect_error 1 "libkmem.$pid: File name too long" "$kmemstat" -d "$long" \
    -p "$pid"

# The id of one of its threads (kmem_taskq's) is not taken for a process
# that does not use libkmem.  (An idle thread may exit meanwhile: then
# another try.)
for try in 1 2 3 4 5; do
	tid=$(ls "/proc/$pid/task" | grep -vx "$pid" | head -n 1)
	[ -n "$tid" ] || fail "statload $pid has no thread but its main one"
	"$kmemstat" -p "$tid" >"$tmp/stdout" 2>"$tmp/stderr"
	rc=$?
	grep -q "^kmemstat: no process $tid$" "$tmp/stderr" || break
done
[ $rc -eq 1 ] && grep -qx \
    "kmemstat: $tid is a thread of process $pid, not a process id" \
    "$tmp/stderr" || fail "-p $tid (a thread): exit $rc: $(cat "$tmp/stderr")"

# A copy of a live region, for the error cases below.
cp "$region" "$tmp/region.bin"

# Normal exit removes the region.
stop
[ ! -e "$region" ] || fail "$region left behind after a normal exit"

# An exec into a new image (the same pid) between two samples: the
# second sample's rates are the new image's counts over the interval, not
# differences with the old image's counters, even where a cache has its
# old id (the same address: no address randomization, setarch -R).
if setarch -R true 2>/dev/null; then
	launch="setarch -R"
	start
	launch=
	cmd load 1500
	cmd settle
	"$kmemstat" -w -p "$pid" 2 2 >"$tmp/exec.txt" 2>"$tmp/stderr" &
	kpid=$!
	i=0
	until grep -q "^TOTAL" "$tmp/exec.txt"; do
		i=$((i + 1))
		[ $i -le 100 ] || fail "kmemstat -p $pid 2 2: no first sample"
		sleep 0.05
	done
	echo exec >&3
	read -r word npid <&4 || fail "statload died on exec: $(cat "$tmp/err")"
	[ "$word $npid" = "ready $pid" ] || fail "statload exec: $word $npid"
	cmd load 200
	wait "$kpid" || fail "kmemstat -p $pid 2 2 across an exec failed: \
$(cat "$tmp/stderr")"
	check interval "$tmp/exec.txt"
	stop
fi
# An exec whose new image starts libkmem 1.5 s later: the report due
# meanwhile waits for the new image's region rather than die on the old
# one, stale until then.
start
wait_for "$dir/libkmem.$pid"
"$kmemstat" -p "$pid" 1 3 >"$tmp/exec.txt" 2>"$tmp/stderr" &
kpid=$!
i=0
until grep -q "^TOTAL" "$tmp/exec.txt"; do
	i=$((i + 1))
	[ $i -le 100 ] || fail "kmemstat -p $pid 1 3: no first sample"
	sleep 0.05
done
echo exec 1500 >&3
read -r word npid <&4 || fail "statload died on exec: $(cat "$tmp/err")"
[ "$word $npid" = "ready $pid" ] || fail "statload exec: $word $npid"
wait "$kpid" || fail "kmemstat -p $pid 1 3 across a late exec failed: \
$(cat "$tmp/stderr")"
[ "$(grep -c "^TOTAL" "$tmp/exec.txt")" -eq 3 ] ||
	fail "kmemstat -p $pid 1 3 across a late exec: $(cat "$tmp/exec.txt")"
stop

# An exec while -w waits for the old image to publish (kmemstat's
# request seen in the region, the exec sent at once, before the old
# image's next pass): -w follows the new image's region, as the interval
# mode does, rather than wait 5 s on the old one and fail.
start
wait_for "$dir/libkmem.$pid"
"$kmemstat" -w -j -p "$pid" >"$tmp/wexec.json" 2>"$tmp/stderr" &
kpid=$!
python3 -c 'import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
req = lambda: int.from_bytes(os.pread(fd, 8, 208), "little")
done = lambda: int.from_bytes(os.pread(fd, 8, 216), "little")
for i in range(50000):
    if req() != done():
        break
    time.sleep(0.0001)
else:
    sys.exit("no publish request")
os.write(3, b"exec 1500\n")' "$dir/libkmem.$pid" ||
	fail "-w across an exec: kmemstat sent no request"
read -r word npid <&4 || fail "statload died on exec: $(cat "$tmp/err")"
[ "$word $npid" = "ready $pid" ] || fail "statload exec: $word $npid"
wait "$kpid" || fail "kmemstat -w -p $pid across an exec failed: \
$(cat "$tmp/stderr")"
[ "$(check header "$tmp/wexec.json" publishes)" -le 2 ] ||
	fail "kmemstat -w across an exec: not the new image's region"
stop

# ---------------------------------------------------------------- errors
true &
dead=$!
wait "$dead"
sleep 600 &     # killed on exit; long enough for a loaded machine
sleeper=$!
others="$sleeper"

expect_error 1 "no process $dead" "$kmemstat" -p "$dead"
# A process that has exited, its parent not waiting for it (a zombie):
# one line that says so, at once, -w too, whether it removed its region
# (exit) or left it (killed).
printf '#!/bin/sh\nexec 3<&0\n"$@" <&3 3<&- &\nexec sleep 600\n' \
    >"$tmp/orphan.sh"
for how in quit kill; do
	launch="sh $tmp/orphan.sh"
	start
	launch=
	wait_for "$dir/libkmem.$pid"
	if [ $how = quit ]; then cmd quit; else kill -9 "$pid"; fi
	i=0
	until [ "$(cut -d ' ' -f 3 "/proc/$pid/stat")" = Z ]; do
		i=$((i + 1))
		[ $i -le 100 ] || fail "statload $pid ($how) is no zombie"
		sleep 0.05
	done
	for w in "" -w; do
		t=$(date +%s)
		expect_error 1 "^kmemstat: process $pid (statload) has exited" \
		    "$kmemstat" $w -p "$pid"
		[ $(($(date +%s) - t)) -le 2 ] ||
			fail "kmemstat $w -p $pid, a zombie: not at once"
	done
	exec 3>&- 4<&-
	kill "$spid"
	wait "$spid" 2>/dev/null
	spid=
done
expect_error 1 "publishes no statistics region" "$kmemstat" -p "$sleeper"
# A -d that does not exist is what is wrong, not the process.
expect_error 1 "^kmemstat: cannot read $tmp/nodir: No such file or directory$" \
    "$kmemstat" -d "$tmp/nodir" -p "$sleeper"

# KMEM_STATS=0: no region.
start KMEM_STATS=0
cmd load 200
cmd settle
[ ! -e "$dir/libkmem.$pid" ] || fail "KMEM_STATS=0 published a region"
expect_error 1 "publishes no statistics region" "$kmemstat" -p "$pid"
[ ! -s "$tmp/err" ] || fail "KMEM_STATS=0: $(cat "$tmp/err")"
stop

# The command name is the process's to choose (argv[0], prctl): -r and
# the error messages show its control characters as '?', as the tables.
esc=$(printf 'sl\033[2J')
ln -s "$statload" "$tmp/$esc" || fail "ln -s failed"
saved=$statload
statload=$tmp/$esc
start
wait_for "$dir/libkmem.$pid"
ok "$kmemstat" -p "$pid" -r
grep -q "^process $pid (sl?\[2J) reaped: " "$tmp/stdout" ||
	fail "-r, a command with ESC: $(od -c "$tmp/stdout" | head -5)"
stop
start KMEM_STATS=0
statload=$saved
expect_error 1 "process $pid (sl?\[2J) publishes no statistics region" \
    "$kmemstat" -p "$pid"
stop

# Permission denied: root reads everything, so another user tries; else
# a region of mode 000.
fake=$dir/libkmem.$sleeper
if [ "$(id -u)" -eq 0 ]; then
	if command -v setpriv >/dev/null 2>&1 &&
	    setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null
	then
		start
		wait_for "$dir/libkmem.$pid"
		cp "$kmemstat" "$tmp/kmemstat" && chmod 755 "$tmp/kmemstat"
		expect_error 1 "permission denied" setpriv --reuid=65534 \
		    --regid=65534 --clear-groups "$tmp/kmemstat" -d "$dir" \
		    -p "$pid"
		expect_error 1 "permission denied" setpriv --reuid=65534 \
		    --regid=65534 --clear-groups "$tmp/kmemstat" -d "$dir" \
		    -p "$pid" -r
		stop
	else
		echo "kmemstat.sh: running as root without setpriv:" \
		    "permission denied not tested"
	fi
else
	check patch "$tmp/region.bin" "$fake" "pid=$sleeper"
	chmod 000 "$fake"
	expect_error 1 "permission denied" "$kmemstat" -p "$sleeper"
	rm -f "$fake"
fi

# A file that another user put under a process's name (the directory is
# writable by all, as /dev/shm is) is not that process's region, even
# locked and valid: -p refuses it, the list skips it with a line.
if [ "$(id -u)" -eq 0 ]; then
	check patch "$tmp/region.bin" "$fake" "pid=$sleeper"
	chown 65534 "$fake" || fail "chown 65534 $fake"
	python3 -c 'import fcntl, sys, time
f = open(sys.argv[1])
fcntl.flock(f, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(600)' "$fake" >"$tmp/locked" &
	holder=$!
	others="$others $holder"
	i=0
	until grep -q locked "$tmp/locked"; do
		i=$((i + 1))
		[ $i -le 100 ] || fail "$fake: no lock"
		sleep 0.05
	done
	expect_error 1 "libkmem.$sleeper: not the region of process $sleeper \
(sleep): the file belongs to user 65534, the process to another" \
	    "$kmemstat" -p "$sleeper"
	"$kmemstat" >"$tmp/stdout" 2>"$tmp/stderr" ||
		fail "kmemstat with another user's file: $(cat "$tmp/stderr")"
	grep -q "libkmem.$sleeper: not the region of process $sleeper" \
	    "$tmp/stderr" || fail "list: $(cat "$tmp/stderr")"
	! awk -v p="$sleeper" '$1 == p' "$tmp/stdout" | grep -q . ||
		fail "list shows another user's file: $(cat "$tmp/stdout")"
	kill "$holder"
	wait "$holder" 2>/dev/null
	rm -f "$fake"
fi

# Other versions, truncated and corrupt regions, under a live process's
# name; then a valid region that no process holds: stale.
check patch "$tmp/region.bin" "$fake" "pid=$sleeper" version=2
expect_error 1 "region version 2; this reader knows version 1" \
    "$kmemstat" -p "$sleeper"
check patch "$tmp/region.bin" "$fake" "pid=$sleeper" truncate=100
expect_error 1 "truncated: 100 bytes" "$kmemstat" -p "$sleeper"
check patch "$tmp/region.bin" "$fake" "pid=$sleeper" truncate=300
expect_error 1 "truncated: 300 bytes, the region says" \
    "$kmemstat" -p "$sleeper"
: >"$fake"
expect_error 1 "truncated: 0 bytes" "$kmemstat" -p "$sleeper"
check patch "$tmp/region.bin" "$fake" "pid=$sleeper" magic=0x1234
expect_error 1 "not a libkmem statistics region" "$kmemstat" -p "$sleeper"
check patch "$tmp/region.bin" "$fake" "pid=$sleeper" caches_offset=0xfffff0
expect_error 1 "corrupt: caches at offset" "$kmemstat" -p "$sleeper"
check patch "$tmp/region.bin" "$fake" "pid=$sleeper" name_unterminated=1
expect_error 1 "corrupt: a record's name is not terminated" \
    "$kmemstat" -p "$sleeper"
check patch "$tmp/region.bin" "$fake" "pid=$dead"
expect_error 1 "corrupt: it is the region of process $dead" \
    "$kmemstat" -p "$sleeper"
check patch "$tmp/region.bin" "$fake" "pid=$sleeper" proc_start=0
expect_error 1 "is stale: process $sleeper (statload) no longer publishes" \
    "$kmemstat" -p "$sleeper"
check patch "$tmp/region.bin" "$fake" "pid=$sleeper" proc_start=1
expect_error 1 "is stale: process $sleeper is not the one that published" \
    "$kmemstat" -p "$sleeper"
head -c 5000 /dev/urandom >"$fake"
expect_error 1 "$fake: " "$kmemstat" -p "$sleeper"
expect_error 1 "$fake: " "$kmemstat" -p "$sleeper" -r

# The list skips the stale region of a live process and removes the
# regions of dead processes (ours): pid gone, or reused (another start
# time), and files of a region being created by a process now gone.
check patch "$tmp/region.bin" "$fake" "pid=$sleeper" proc_start=0
check patch "$tmp/region.bin" "$dir/libkmem.$dead" "pid=$dead"
: >"$dir/.libkmem.$dead.new"
"$kmemstat" >"$tmp/stdout" 2>"$tmp/stderr" ||
	fail "kmemstat failed: $(cat "$tmp/stderr")"
[ ! -e "$dir/libkmem.$dead" ] && [ ! -e "$dir/.libkmem.$dead.new" ] ||
	fail "the regions of dead process $dead were not removed"
grep -q "removed $dir/libkmem.$dead: process $dead is gone" "$tmp/stderr" ||
	fail "no word of the removal: $(cat "$tmp/stderr")"
[ -e "$fake" ] || fail "a live process's stale region was removed"
[ "$(wc -l <"$tmp/stdout")" -eq 1 ] ||
	fail "stale regions listed: $(cat "$tmp/stdout")"
check patch "$tmp/region.bin" "$fake" "pid=$sleeper" proc_start=1
"$kmemstat" >"$tmp/stdout" 2>"$tmp/stderr" ||
	fail "kmemstat failed: $(cat "$tmp/stderr")"
[ ! -e "$fake" ] || fail "a region of a reused pid was not removed"
# The same for a user's region whose pid another user's process now has
# (here root's sleeper): stale, so removed by its owner's list, not
# skipped as a file that another user put under that process's name.
if [ "$(id -u)" -eq 0 ] && setpriv --reuid=65534 --regid=65534 \
    --clear-groups true 2>/dev/null; then
	check patch "$tmp/region.bin" "$fake" "pid=$sleeper" proc_start=1
	chown 65534 "$fake" || fail "chown 65534 $fake"
	chmod 1777 "$dir"
	setpriv --reuid=65534 --regid=65534 --clear-groups "$kmemstat" \
	    >"$tmp/stdout" 2>"$tmp/stderr" ||
		fail "kmemstat as user 65534 failed: $(cat "$tmp/stderr")"
	chmod 755 "$dir"
	[ ! -e "$fake" ] || fail "a region of a pid that another user's \
process reused was not removed: $(cat "$tmp/stderr")"
	grep -q "removed $fake: process $sleeper is gone" "$tmp/stderr" ||
		fail "no word of the removal: $(cat "$tmp/stderr")"
fi
# A region renamed in under the name of a stale one (the reused pid's
# new process publishing) while the list reads the stale one: the list
# removes the stale file it read, or nothing, never the new region.
check patch "$tmp/region.bin" "$fake" "pid=$sleeper" proc_start=1
check patch "$tmp/region.bin" "$tmp/new.bin" "pid=$sleeper"
check swap "$kmemstat" "$fake" "$tmp/new.bin"
rm -f "$fake"
# A corrupt region of a live process: a warning, the rest listed.
check patch "$tmp/region.bin" "$fake" "pid=$sleeper" version=9
"$kmemstat" >"$tmp/stdout" 2>"$tmp/stderr" ||
	fail "kmemstat failed: $(cat "$tmp/stderr")"
grep -q "^kmemstat: $fake: region version 9" "$tmp/stderr" ||
	fail "no warning for a corrupt region: $(cat "$tmp/stderr")"
rm -f "$fake"

# Usage errors: exit 2.
for args in "-x" "-p abc" "-p 0" "-s bogus" "-n x" "-p 1 0" "-c" \
    "-r" "-p 1 -r 1" "1 2 3" "-m" "-p 1 -m -c" "-p 1 -m -r" \
    "-s name" "-n 2" "-p 1 -r -s name" "-p 1 -r -n 2" "-p 1 -r -n 0"; do
	# shellcheck disable=SC2086
	"$kmemstat" $args >/dev/null 2>&1
	[ $? -eq 2 ] || fail "kmemstat $args: not a usage error"
done
"$kmemstat" -d "" >/dev/null 2>"$tmp/stderr"
[ $? -eq 2 ] && grep -q "^kmemstat: -d: expected a directory" "$tmp/stderr" ||
	fail "kmemstat -d '': not a usage error: $(cat "$tmp/stderr")"

# Output that cannot be written is an error (exit 1), not lost.
if [ -w /dev/full ]; then
	for args in "-V" "-h" "-d $dir" "-d $dir -j"; do
		# shellcheck disable=SC2086
		"$kmemstat" $args >/dev/full 2>"$tmp/stderr"
		rc=$?
		[ $rc -eq 1 ] && [ "$(wc -l <"$tmp/stderr")" -eq 1 ] &&
		    grep -q "^kmemstat: standard output: " "$tmp/stderr" ||
			fail "kmemstat $args >/dev/full: exit $rc: $(cat "$tmp/stderr")"
	done
fi

# ---------------------------------------------------------------- tunables
start KMEM_STATS=7
wait_for "$dir/libkmem.$pid"
grep -q "^libkmem: KMEM_STATS='7' rejected: expected an integer in 0..1" \
    "$tmp/err" || fail "KMEM_STATS=7: $(cat "$tmp/err")"
stop

start KMEM_STATS_INTERVAL=3
wait_for "$dir/libkmem.$pid"
ok "$kmemstat" -j -p "$pid"
[ "$(check header "$tmp/stdout" interval)" -eq 3 ] ||
	fail "KMEM_STATS_INTERVAL=3: $(cat "$tmp/stdout")"
[ ! -s "$tmp/err" ] || fail "KMEM_STATS_INTERVAL=3: $(cat "$tmp/err")"
stop

# -r says what the reap freed: "before" is the process at the request,
# not its last publish (an hour old here, from before any load).
start KMEM_STATS_INTERVAL=3600
wait_for "$dir/libkmem.$pid"
cmd load 300
cmd free statload_medium 100
cmd settle
ok "$kmemstat" -p "$pid" -r
slabs=$(sed -n 's/^process [0-9]* (statload) reaped: slabs \([0-9]*\) -> \([0-9]*\),.*/\1 \2/p' \
    "$tmp/stdout")
[ -n "$slabs" ] && [ "${slabs% *}" -gt "${slabs#* }" ] ||
	fail "-r with KMEM_STATS_INTERVAL=3600: $(cat "$tmp/stdout")"
stop

start KMEM_STATS_INTERVAL=0
wait_for "$dir/libkmem.$pid"
grep -q "^libkmem: KMEM_STATS_INTERVAL='0' rejected" "$tmp/err" ||
	fail "KMEM_STATS_INTERVAL=0: $(cat "$tmp/err")"
ok "$kmemstat" -j -p "$pid"
[ "$(check header "$tmp/stdout" interval)" -eq 1 ] ||
	fail "KMEM_STATS_INTERVAL=0 was not rejected"
stop

: >"$tmp/afile"
for bad in "$tmp/nonexistent:No such file or directory" \
    "$tmp/afile:not a directory" "relative/dir:not an absolute path"; do
	start KMEM_STATS_DIR="${bad%%:*}"
	cmd load 100
	[ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q \
	    "^libkmem: KMEM_STATS_DIR='${bad%%:*}' rejected: ${bad#*:}; statistics are not published$" \
	    "$tmp/err" || fail "KMEM_STATS_DIR=${bad%%:*}: $(cat "$tmp/err")"
	stop
done
[ -z "$(ls -A "$dir")" ] || fail "files left in $dir: $(ls -A "$dir")"

# A full KMEM_STATS_DIR (a tmpfs of 8 KiB, where a user namespace lets us
# mount one): the region cannot be sized, which is reported; the process
# must not die of SIGBUS writing pages the tmpfs cannot give.
mkdir "$tmp/full"
if unshare -rm sh -c 'mount -t tmpfs tmpfs "$1"' sh "$tmp/full" \
    2>/dev/null; then
	printf 'load 400\nquit\n' | unshare -rm sh -c \
	    'mount -t tmpfs -o size=8k tmpfs "$1" && KMEM_STATS_DIR="$1" "$2"' \
	    sh "$tmp/full" "$statload" >"$tmp/full.out" 2>"$tmp/full.err"
	rc=$?
	[ "$rc" -eq 0 ] ||
	    fail "full KMEM_STATS_DIR: exit $rc: $(cat "$tmp/full.err")"
	grep -q "cannot size it (No space left on device)" "$tmp/full.err" ||
	    fail "full KMEM_STATS_DIR: $(cat "$tmp/full.err")"
fi

echo "kmemstat: lists, -p/-j match kmem_cache_stats, -c -q -T, intervals," \
    "-w, -r, caches come and go, every error case, tunables:" \
    "$(($(date +%s) - t0)) s"
exit 0
