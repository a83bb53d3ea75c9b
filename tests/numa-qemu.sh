#!/bin/sh
# numa-qemu.sh - run the test binaries inside a qemu guest with two NUMA
# nodes, so that the NUMA placement code runs on more than one node.
#
#   tests/numa-qemu.sh [test-binary ...]
#
# Run from the build directory ('make check-numa-qemu' does).  With no
# arguments it runs every tests/check_* ELF executable there.  It needs
# only Debian packages and installs what is missing with apt-get (through
# sudo when not root): qemu-system-x86, busybox-static, cpio and, where
# /boot holds no vmlinuz-*, linux-image-amd64.
#
# An initramfs is built in a temporary directory from busybox, the test
# binaries and every shared library they load (ldd); its /init mounts
# proc, sys, devtmpfs and tmpfs on /dev/shm and /tmp, prints the node
# layout, runs each binary between marker lines
#     @@@ START check_cpu
#     @@@ RESULT check_cpu <exit status> <seconds>s
# and powers off.  The guest boots with -machine q35, 4 CPUs, 2 GiB and
# two NUMA nodes of 1 GiB (CPUs 0-1 and 2-3), under KVM when a guest boots
# under /dev/kvm, else TCG.  The kernel command line adds psi=1 (Debian
# builds PSI in but turns it off by default) so that libkmem's PSI monitor
# runs in the guest too.  The serial console goes to tests/numa-qemu.log.
#
# Exit status: 0 every test passed; 1 a test failed, the guest did not see
# nodes 0-1 or did not report every result; 77 (automake's SKIP) the guest
# cannot be run here at all.
#
# Environment:
#   KMEM_*, CK_*, GLIBC_TUNABLES  passed to the tests in the guest (the
#                       guest sets CK_FORK=yes and, unless given,
#                       KMEM_TEST_SECONDS=1), but KMEM_STATS_DIR
#   NUMA_QEMU_ACCEL     kvm or tcg (default: kvm when /dev/kvm works)
#   NUMA_QEMU_TCG_THREAD  single or multi: TCG's threading (default multi
#                       when the host has more CPUs than the guest's 4)
#   NUMA_QEMU_TIMEOUT   seconds the guest may run (default 300 KVM, 900 TCG)
#   NUMA_QEMU_KERNEL    the guest kernel (default: newest /boot/vmlinuz-*)
#   NUMA_QEMU_LOG       the serial log (default tests/numa-qemu.log)
#   NUMA_QEMU_APPEND    more guest kernel arguments (e.g. loglevel=7)
#   top_srcdir          the source directory, as for the other tests (the
#                       script needs nothing from it)
set -u

me=numa-qemu
: "${top_srcdir:=.}"

say() { printf '%s: %s\n' "$me" "$*"; }
skip() { printf 'SKIP: %s: %s\n' "$me" "$*"; exit 77; }
fail() { printf 'FAIL: %s: %s\n' "$me" "$*"; exit 1; }

# ------------------------------------------------------------------ tools
[ "$(uname -m)" = x86_64 ] || skip "not an x86-64 host ($(uname -m))"

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		return 1
	fi
}

apt_install() {
	command -v apt-get >/dev/null 2>&1 || return 1
	say "installing $* (apt-get)"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -q -y \
	    --no-install-recommends "$@" >&2 && return 0
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 &&
	    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -q -y \
	    --no-install-recommends "$@" >&2
}

# A statically linked busybox: ldd calls it "not a dynamic executable".
static_busybox() {
	for b in /bin/busybox /usr/bin/busybox; do
		if [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1; then
			echo "$b"
			return 0
		fi
	done
	return 1
}

newest_kernel() {
	# shellcheck disable=SC2012 # names are plain vmlinuz-<version>
	ls -d /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1
}

need=
command -v qemu-system-x86_64 >/dev/null 2>&1 || need="$need qemu-system-x86"
static_busybox >/dev/null || need="$need busybox-static"
command -v cpio >/dev/null 2>&1 || need="$need cpio"
kernel=${NUMA_QEMU_KERNEL:-$(newest_kernel)}
[ -n "$kernel" ] || need="$need linux-image-amd64"
if [ -n "$need" ]; then
	# shellcheck disable=SC2086 # a list of package names
	apt_install $need || say "could not install$need"
fi
command -v qemu-system-x86_64 >/dev/null 2>&1 ||
	skip "qemu-system-x86_64 not found and could not be installed (qemu-system-x86)"
busybox=$(static_busybox) ||
	skip "no static busybox and could not install busybox-static"
command -v cpio >/dev/null 2>&1 || skip "cpio not found and could not be installed"
kernel=${NUMA_QEMU_KERNEL:-$(newest_kernel)}
if [ -n "${NUMA_QEMU_KERNEL:-}" ] && ! [ -f "$kernel" ]; then
	skip "NUMA_QEMU_KERNEL=$kernel is not a file"
elif [ -z "$kernel" ] || ! [ -f "$kernel" ]; then
	skip "no kernel in /boot and could not install linux-image-amd64"
fi
for t in ldd gzip timeout awk; do
	command -v "$t" >/dev/null 2>&1 || skip "$t not found"
done

# ------------------------------------------------------------------ tests
is_elf() {
	[ -f "$1" ] && [ "$(od -An -tx1 -N4 "$1" 2>/dev/null | tr -d ' \n')" = 7f454c46 ]
}

if [ $# -eq 0 ]; then
	for f in tests/check_*; do
		[ -x "$f" ] && is_elf "$f" && set -- "$@" "$f"
	done
	[ $# -gt 0 ] || fail "no tests/check_* executables in $(pwd) (run 'make check' first, or name the binaries)"
fi
names=
for f in "$@"; do
	if ! is_elf "$f" || ! [ -x "$f" ]; then
		fail "$f is not an executable ELF file (a libtool wrapper?)"
	fi
	n=$(basename "$f")
	case " $names " in
	*" $n "*) fail "two test binaries are named $n" ;;
	esac
	names="${names:+$names }$n"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/numa-qemu.XXXXXX") || fail "mktemp failed"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
root=$tmp/root
mkdir -p "$root/bin" "$root/etc" "$root/proc" "$root/sys" "$root/dev" \
    "$root/tmp" "$root/root" "$root/tests" || fail "cannot populate $root"

if [ -d tests ]; then
	log=${NUMA_QEMU_LOG:-$(pwd)/tests/numa-qemu.log}
else
	log=${NUMA_QEMU_LOG:-$(pwd)/numa-qemu.log}
fi

true 2>/dev/null >"$log" || fail "cannot write the serial log $log"

# ------------------------------------------------------------------ initramfs
cp "$busybox" "$root/bin/busybox" || fail "cannot copy $busybox"
ln -s busybox "$root/bin/sh"

# Copy one file to the same path under $root, following symbolic links.
copy_file() {
	[ -e "$root$1" ] && return 0
	mkdir -p "$root$(dirname "$1")" && cp -L "$1" "$root$1"
}

libdirs=
for f in "$@"; do
	cp "$f" "$root/tests/" || fail "cannot copy $f"
	deps=$(ldd "$f" 2>&1) || fail "ldd $f failed: $deps"
	missing=$(printf '%s\n' "$deps" | awk '/=> not found/ { printf " %s", $1 }')
	[ -z "$missing" ] || fail "$f needs libraries ldd cannot find:$missing"
	for lib in $(printf '%s\n' "$deps" | awk '
	    $2 == "=>" && $3 ~ /^\// { print $3; next }
	    $1 ~ /^\// { print $1 }'); do
		copy_file "$lib" || fail "cannot copy $lib"
		d=$(dirname "$lib")
		case ":$libdirs:" in
		*":$d:"*) ;;
		*) libdirs="${libdirs:+$libdirs:}$d" ;;
		esac
	done
done
# Libraries loaded at run time, which ldd does not list: glibc loads
# libgcc_s to unwind threads (pthread_exit, pthread_cancel), and libkmem
# loads libnuma on a machine with more than one node (lib/cpu.c).
for name in libgcc_s.so.1 libnuma.so.1; do
	lib=$(ldconfig -p 2>/dev/null | awk -v n="$name" \
	    '$1 == n && /x86-64/ { print $NF; exit }')
	[ -n "$lib" ] && [ -f "$lib" ] || continue
	copy_file "$lib" || fail "cannot copy $lib"
	d=$(dirname "$lib")
	case ":$libdirs:" in
	*":$d:"*) ;;
	*) libdirs="${libdirs:+$libdirs:}$d" ;;
	esac
done

# The little of /etc that libc looks at.
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files\n' >"$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"
printf 'numa-guest\n' >"$root/etc/hostname"

# The tests' environment: defaults, then what the host passes through.
shq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
{
	echo "export PATH=/bin"
	echo "export HOME=/root"
	echo "export LD_LIBRARY_PATH=$(shq "$libdirs")"
	echo "export KMEM_TEST_SECONDS=1"
	for v in $(env | sed -n 's/^\(KMEM_[A-Za-z0-9_]*\)=.*/\1/p; s/^\(CK_[A-Za-z0-9_]*\)=.*/\1/p; s/^\(GLIBC_TUNABLES\)=.*/\1/p'); do
		# A directory of the host's does not exist in the guest.
		[ "$v" = CK_FORK ] || [ "$v" = KMEM_STATS_DIR ] && continue
		eval "val=\${$v}"
		# shellcheck disable=SC2154 # set by the eval
		echo "export $v=$(shq "$val")"
	done
	echo "export CK_FORK=yes"
} >"$root/etc/test.env"

cat >"$root/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/shm /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /tmp
exec </dev/console >/dev/console 2>&1
hostname numa-guest
echo "@@@ KERNEL \$(uname -r)"
echo "@@@ CPUS online=\$(cat /sys/devices/system/cpu/online)"
echo "@@@ NODES online=\$(cat /sys/devices/system/node/online 2>/dev/null)"
for n in /sys/devices/system/node/node[0-9]*; do
	[ -d "\$n" ] || continue
	mem=\$(awk '/MemTotal/ { t = \$4 } /MemFree/ { f = \$4 }
	    END { printf "%d MiB, %d MiB free", t / 1024, f / 1024 }' "\$n/meminfo")
	echo "@@@ NODE \${n##*/node} cpus=\$(cat "\$n/cpulist") mem=\$mem"
done
[ -e /proc/pressure/memory ] && echo "@@@ PSI yes" || echo "@@@ PSI no"
. /etc/test.env
cd /tests
for t in $names; do
	echo "@@@ START \$t"
	t0=\$(cut -d' ' -f1 /proc/uptime)
	./"\$t" </dev/null
	rc=\$?
	t1=\$(cut -d' ' -f1 /proc/uptime)
	echo "@@@ RESULT \$t \$rc \$(awk -v a="\$t0" -v b="\$t1" 'BEGIN { printf "%.1f", b - a }')s"
done
echo "@@@ DONE"
sync
poweroff -f
EOF
chmod 755 "$root/init"

initrd=$tmp/initrd.gz
(cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$initrd" ||
	fail "cannot build the initramfs"

if [ -r "$kernel" ]; then
	vmlinuz=$kernel
else
	vmlinuz=$tmp/vmlinuz
	as_root cat "$kernel" >"$vmlinuz" 2>/dev/null ||
		skip "cannot read $kernel (not root, no sudo)"
fi

# ------------------------------------------------------------------ boot
# /dev/kvm can be there and accept a VM yet not run one (nested
# virtualization without VMX/SVM exposed): the kernel then hangs right after
# its real-mode setup.  So KVM is used only when a tiny guest, the same
# kernel with an /init that prints a line and powers off, boots under it.
kvm_works() {
	[ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
	probe=$tmp/probe
	mkdir -p "$probe/bin" && cp "$busybox" "$probe/bin/busybox" &&
	    printf '#!/bin/busybox sh\n/bin/busybox echo @@@ KVM-PROBE-OK\n/bin/busybox poweroff -f\n' \
	    >"$probe/init" && chmod 755 "$probe/init" || return 1
	(cd "$probe" && find . | cpio -o -H newc -R 0:0 --quiet) |
	    gzip -1 >"$tmp/probe.gz" || return 1
	timeout 30 qemu-system-x86_64 -machine q35 -enable-kvm -cpu host \
	    -m 256M -smp 1 -nographic -no-reboot -nodefaults -serial stdio \
	    -kernel "$vmlinuz" -initrd "$tmp/probe.gz" \
	    -append "console=ttyS0 panic=-1 quiet" </dev/null \
	    >"$tmp/probe.log" 2>&1
	grep -q '^@@@ KVM-PROBE-OK' "$tmp/probe.log"
}
accel=${NUMA_QEMU_ACCEL:-}
if [ -z "$accel" ]; then
	if kvm_works; then
		accel=kvm
	else
		accel=tcg
		if ! [ -c /dev/kvm ]; then
			say "no /dev/kvm; using TCG (slow)"
		elif ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
			say "/dev/kvm is not usable by $(id -un); using TCG (slow)"
		else
			say "/dev/kvm is there but a guest does not boot under it; using TCG (slow)"
		fi
	fi
fi
case $accel in
kvm) accel_args="-enable-kvm -cpu host"; accel=KVM; tmo=${NUMA_QEMU_TIMEOUT:-300} ;;
tcg)
	# Multi-threaded TCG runs each vCPU on a host thread; with fewer host
	# CPUs than vCPUs, guest spinlock holders are preempted by spinning
	# vCPUs and mmap-heavy threaded tests run ~30x slower (check_vmem:
	# 60 s, against 2 s single-threaded on a 2-CPU host).
	tcg_thread=${NUMA_QEMU_TCG_THREAD:-}
	if [ -z "$tcg_thread" ]; then
		if [ "$(nproc 2>/dev/null || echo 1)" -gt 4 ]; then
			tcg_thread=multi
		else
			tcg_thread=single
		fi
	fi
	case $tcg_thread in
	single | multi) ;;
	*) fail "NUMA_QEMU_TCG_THREAD must be single or multi, not '$tcg_thread'" ;;
	esac
	accel_args="-accel tcg,thread=$tcg_thread -cpu max"
	accel="TCG, $tcg_thread-threaded"
	tmo=${NUMA_QEMU_TIMEOUT:-900}
	;;
*) fail "NUMA_QEMU_ACCEL must be kvm or tcg, not '$accel'" ;;
esac

say "kernel $kernel, $accel, timeout ${tmo}s, tests: $names"
say "serial log: $log"
start=$(date +%s)
# shellcheck disable=SC2086 # accel_args is a list of options
timeout "$tmo" qemu-system-x86_64 -machine q35 $accel_args \
    -m 2G -smp 4,sockets=2,cores=2,threads=1 \
    -object memory-backend-ram,id=m0,size=1G \
    -object memory-backend-ram,id=m1,size=1G \
    -numa node,nodeid=0,cpus=0-1,memdev=m0 \
    -numa node,nodeid=1,cpus=2-3,memdev=m1 \
    -nographic -no-reboot -nodefaults -serial stdio \
    -kernel "$vmlinuz" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 quiet psi=1${NUMA_QEMU_APPEND:+ $NUMA_QEMU_APPEND}" \
    </dev/null >"$log" 2>&1
qrc=$?
secs=$(($(date +%s) - start))

# ------------------------------------------------------------------ results
clean=$tmp/serial.txt
# Drop carriage returns and terminal escapes (the firmware clears the
# screen), and start each marker line at its marker.
esc=$(printf '\033')
tr -d '\r' <"$log" |
	sed "s/${esc}\[[0-9;?]*[A-Za-z]//g; s/${esc}c//g; s/^.*\(@@@ \)/\1/" >"$clean"
field() { sed -n "s/^@@@ $1 //p" "$clean" | head -n 1; }

case $qrc in
0) say "guest ran for ${secs}s ($accel)" ;;
124) say "guest timed out after ${tmo}s ($accel)" ;;
*) say "qemu exited with status $qrc after ${secs}s ($accel)" ;;
esac
if ! grep -q '^@@@ KERNEL ' "$clean"; then
	tail -n 20 "$clean" | sed 's/^/  | /'
	fail "the guest never ran /init (qemu status $qrc); serial log: $log"
fi

online=$(sed -n 's/^@@@ NODES online=//p' "$clean" | head -n 1)
say "guest kernel $(field KERNEL), CPUs $(sed -n 's/^@@@ CPUS online=//p' "$clean" | head -n 1), nodes online: ${online:-none}, PSI: $(field PSI)"
sed -n 's/^@@@ NODE \([0-9]*\) /  node \1: /p' "$clean"

status=0
why=
if [ "$online" != 0-1 ]; then
	say "ERROR: the guest must see NUMA nodes 0-1; it saw '${online:-none}'"
	status=1
	why="the guest saw NUMA nodes '${online:-none}', not 0-1"
fi
failed=
for n in $names; do
	res=$(sed -n "s/^@@@ RESULT $n //p" "$clean" | head -n 1)
	if [ -z "$res" ]; then
		if grep -q "^@@@ START $n\$" "$clean"; then
			printf '  %-16s NO RESULT (crashed or hung)\n' "$n"
		else
			printf '  %-16s NOT RUN\n' "$n"
		fi
		failed="$failed $n"
		continue
	fi
	rc=${res%% *}
	if [ "$rc" = 0 ]; then
		printf '  %-16s PASS  (%s)\n' "$n" "${res#* }"
	else
		printf '  %-16s FAIL  exit %s (%s)\n' "$n" "$rc" "${res#* }"
		failed="$failed $n"
		# The test's own output, between its markers.
		sed -n "/^@@@ START $n\$/,/^@@@ RESULT $n /p" "$clean" |
			sed '1d;$d' | tail -n 40 | sed 's/^/    | /'
	fi
done
if [ -n "$failed" ]; then
	status=1
	why="${why:+$why; }failed or not reported in the guest:$failed"
fi
if [ $status -ne 0 ]; then
	fail "$why (serial log: $log)"
fi
say "PASS: all $(echo "$names" | wc -w) test binaries passed on 2 NUMA nodes ($accel, ${secs}s; serial log: $log)"
exit 0
