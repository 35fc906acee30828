#!/usr/bin/env bash
# test/vm/run.sh — run privileged test binaries inside a cgroup-v2-only VM.
#
# Boots the host's Debian kernel (/boot/vmlinuz-*-amd64) under qemu (KVM, or
# TCG when /dev/kvm is unusable) with cgroup v1 disabled, from an initramfs
# built here, and runs each given binary as root inside a systemd-like
# delegated cgroup (/sys/fs/cgroup/system.slice/agentbox.service). See
# test/vm/README.md.
#
# Usage:
#   test/vm/run.sh [OPTIONS] [NAME=VALUE...] BINARY[@CWD] [ARGS...] [--- [NAME=VALUE...] BINARY[@CWD] [ARGS...]]...
#
# Options (before the first BINARY):
#   --timeout SECS     hard limit for the whole VM run, boot to poweroff
#                      (default 600 with KVM; TCG multiplies it by 4)
#   --log FILE         serial console log (default: $TMPDIR/agentbox-vm-<time>-<pid>.log)
#   --tree DIR         copy DIR/go.mod and every testdata/ dir under DIR into the
#                      VM at the same absolute paths (repeatable)
#   --copy SRC[:DEST]  copy a file or directory into the VM at DEST (default:
#                      the same absolute path as SRC) (repeatable)
#   --env NAME=VALUE   extra environment for every binary (repeatable)
#   --module NAME      load kernel module NAME (with its dependencies) at boot
#   --mem MB           guest memory (default 2048)
#   --smp N            guest CPUs (default 2)
#   --accel kvm|tcg|auto   (default auto; env AGENTBOX_VM_ACCEL)
#   --kernel-lines N   kernel messages shown after each binary (default 40; 0: all)
#   --quiet            do not stream the console; print the output of failed
#                      binaries after the run
#   --verbose          show kernel boot messages (drops `quiet` from cmdline)
#   --keep             keep the temporary directory (initramfs, init scripts)
#   -h, --help
#
# Environment: AGENTBOX_VM_ACCEL (as --accel), AGENTBOX_VM_TCG_FACTOR (timeout
# multiplier under TCG, default 4), AGENTBOX_VM_BOOT_STALL (seconds a KVM boot
# may show no sign of init before auto mode retries with TCG, default 60),
# AGENTBOX_VM_TRUST_KVM=1 (try KVM even when it is kvm_pvm).
#
# NAME=VALUE words before a BINARY: extra environment for that binary alone (the
# same binary can run twice, each time with its own).
#
# BINARY[@CWD]: the binary is copied into the VM; it runs with CWD as its
# working directory (same absolute path inside the VM; relative CWD is taken
# from the caller's directory; default: the caller's directory). CWD/testdata
# is copied automatically. Shared libraries (ldd) are copied too.
#
# Exit status: 0 only if every binary ran, exited 0 and left its cgroup as it
# found it (no process, child cgroup or enabled controller left behind). 1 on
# test failure, leftovers, timeout or missing result; 2 on usage or host errors.
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: error: $*" >&2; exit 2; }
info() { echo "$prog: $*" >&2; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

TIMEOUT=""
LOG=""
MEM=2048
SMP=2
ACCEL=${AGENTBOX_VM_ACCEL:-auto}
QUIET=0
KLINES=40
VERBOSE=0
KEEP=0
TREES=()
COPIES=()
ENVS=()
MODULES=()

need_arg() { [[ $# -ge 2 ]] || die "option $1 needs an argument"; }
while [[ $# -gt 0 ]]; do
	case $1 in
	--timeout) need_arg "$@"; TIMEOUT=$2; shift 2 ;;
	--log) need_arg "$@"; LOG=$2; shift 2 ;;
	--tree) need_arg "$@"; TREES+=("$2"); shift 2 ;;
	--copy) need_arg "$@"; COPIES+=("$2"); shift 2 ;;
	--env) need_arg "$@"; [[ $2 == [A-Za-z_]*=* ]] || die "--env wants NAME=VALUE, got '$2'"; ENVS+=("$2"); shift 2 ;;
	--module) need_arg "$@"; MODULES+=("$2"); shift 2 ;;
	--mem) need_arg "$@"; MEM=$2; shift 2 ;;
	--smp) need_arg "$@"; SMP=$2; shift 2 ;;
	--accel) need_arg "$@"; ACCEL=$2; shift 2 ;;
	--kernel-lines) need_arg "$@"; KLINES=$2; shift 2 ;;
	--quiet) QUIET=1; shift ;;
	--verbose) VERBOSE=1; shift ;;
	--keep) KEEP=1; shift ;;
	-h|--help) usage; exit 0 ;;
	--) shift; break ;;
	-*) die "unknown option '$1' (see --help)" ;;
	*) break ;;
	esac
done
[[ $# -gt 0 ]] || { usage >&2; die "no BINARY given"; }
[[ -z $TIMEOUT || $TIMEOUT =~ ^[0-9]+$ ]] || die "--timeout wants whole seconds, got '$TIMEOUT'"
[[ $MEM =~ ^[0-9]+$ && $SMP =~ ^[0-9]+$ && $KLINES =~ ^[0-9]+$ ]] || die "--mem, --smp and --kernel-lines want numbers"
case $ACCEL in auto|kvm|tcg) ;; *) die "--accel wants kvm, tcg or auto" ;; esac

# ---- host requirements -----------------------------------------------------
for tool in qemu-system-x86_64:qemu-system-x86 cpio:cpio ldd:libc-bin; do
	command -v "${tool%%:*}" >/dev/null || die "'${tool%%:*}' not found: apt-get install ${tool#*:}"
done
BUSYBOX=""
for b in /bin/busybox /usr/bin/busybox; do [[ -x $b ]] && { BUSYBOX=$b; break; }; done
[[ -n $BUSYBOX ]] || die "busybox not found: apt-get install busybox-static"
if ldd "$BUSYBOX" >/dev/null 2>&1; then
	die "$BUSYBOX is dynamically linked: apt-get install busybox-static"
fi

KERNEL=$(ls -1 /boot/vmlinuz-*-amd64 2>/dev/null | sort -V | tail -n1 || true)
[[ -n $KERNEL && -r $KERNEL ]] || die "no readable /boot/vmlinuz-*-amd64: apt-get install linux-image-amd64"
KVER=${KERNEL#/boot/vmlinuz-}
MODDIR=/lib/modules/$KVER
[[ -d $MODDIR ]] || die "kernel $KVER has no $MODDIR: apt-get install --reinstall linux-image-$KVER (package linux-image-amd64)"

# ---- specs: [NAME=VALUE...] BINARY[@CWD] [ARGS...] separated by --- ----------
# Stored flat: SPEC_BIN[i], SPEC_CWD[i], SPEC_NAME[i], SPEC_ENV[i] and SPEC_ARGS[i] (the
# last two shell-quoted).
sq() { local s=$1; printf "'%s'" "${s//\'/\'\\\'\'}"; }
SPEC_BIN=(); SPEC_CWD=(); SPEC_NAME=(); SPEC_ENV=(); SPEC_ARGS=()
add_spec() {
	local envs=""
	while [[ $1 =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do
		envs+=" $(sq "$1")"; shift
		[[ $# -gt 0 ]] || die "environment '${envs# }' without a BINARY"
	done
	local first=$1; shift
	local bin=$first cwd=$PWD
	if [[ $first == *@* ]]; then bin=${first%%@*}; cwd=${first#*@}; fi
	[[ -n $bin ]] || die "empty BINARY in '$first'"
	[[ $cwd == /* ]] || cwd=$PWD/$cwd
	local abs
	abs=$(realpath -e -- "$bin" 2>/dev/null) || die "binary '$bin' not found"
	[[ -f $abs && -x $abs ]] || die "'$bin' is not an executable file"
	cwd=$(realpath -m -- "$cwd")
	local args="" a
	for a in "$@"; do args+=" $(sq "$a")"; done
	SPEC_BIN+=("$abs"); SPEC_CWD+=("$cwd"); SPEC_NAME+=("$(basename -- "$abs")"); SPEC_ENV+=("${envs# }"); SPEC_ARGS+=("$args")
}
cur=()
for a in "$@"; do
	if [[ $a == --- ]]; then
		[[ ${#cur[@]} -gt 0 ]] || die "empty spec between '---'"
		add_spec "${cur[@]}"; cur=()
	else
		cur+=("$a")
	fi
done
[[ ${#cur[@]} -gt 0 ]] || die "trailing '---' without BINARY"
add_spec "${cur[@]}"
N=${#SPEC_BIN[@]}

# ---- accelerator and timeout ---------------------------------------------------
# KVM must be real hardware virtualization (kvm_intel/kvm_amd). Some nested
# setups expose /dev/kvm backed by kvm_pvm (Pagetable-based VM), which runs
# only guest kernels built for PVM: a stock Debian kernel hangs there before
# printing a line. auto mode uses TCG in that case, and also falls back to
# TCG when a KVM boot stalls (no sign of our init within BOOT_STALL seconds).
kvm_usable() { [[ -c /dev/kvm && -r /dev/kvm && -w /dev/kvm ]] && { : <>/dev/kvm; } 2>/dev/null; }
kvm_provider() {
	local m
	for m in kvm_intel kvm_amd kvm_pvm; do [[ -d /sys/module/$m ]] && { echo "$m"; return; }; done
	echo unknown
}
BOOT_STALL=${AGENTBOX_VM_BOOT_STALL:-60}
FALLBACK=0
if [[ $ACCEL == auto ]]; then
	prov=$(kvm_provider)
	if ! kvm_usable; then
		ACCEL=tcg; info "/dev/kvm is not usable: using TCG (software emulation, slower)"
	elif [[ $prov == kvm_pvm && ${AGENTBOX_VM_TRUST_KVM:-0} != 1 ]]; then
		ACCEL=tcg; info "/dev/kvm is kvm_pvm (nested PVM), which cannot boot a stock kernel: using TCG"
	else
		ACCEL=kvm; FALLBACK=1
	fi
elif [[ $ACCEL == kvm ]] && ! kvm_usable; then
	die "--accel kvm but /dev/kvm is not usable"
fi
BASE_TIMEOUT=${TIMEOUT:-600}
accel_setup() {
	if [[ $ACCEL == kvm ]]; then
		ACCEL_ARGS=(-accel kvm -cpu host); TIMEOUT=$BASE_TIMEOUT
	else
		ACCEL_ARGS=(-accel tcg -cpu max); TIMEOUT=$(( BASE_TIMEOUT * ${AGENTBOX_VM_TCG_FACTOR:-4} ))
	fi
}
accel_setup

# ---- temp dir, cleanup ------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/agentbox-vm.XXXXXX")
QPID=""
cleanup() {
	if [[ -n $QPID ]] && kill -0 "$QPID" 2>/dev/null; then
		kill -TERM "$QPID" 2>/dev/null || true
		sleep 1
		kill -KILL "$QPID" 2>/dev/null || true
	fi
	if [[ $KEEP == 1 ]]; then info "kept $WORK"; else rm -rf -- "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
[[ -n $LOG ]] || LOG=${TMPDIR:-/tmp}/agentbox-vm-$(date +%Y%m%d-%H%M%S)-$$.log
mkdir -p -- "$(dirname -- "$LOG")"
: >"$LOG"

# ---- initramfs -----------------------------------------------------------------------
R=$WORK/root
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,root,newroot,opt/agentbox-vm/bin}
chmod 1777 "$R/tmp"
cp "$BUSYBOX" "$R/bin/busybox"
while read -r applet; do
	[[ -e $R/$applet || -L $R/$applet ]] || ln -s /bin/busybox "$R/$applet"
done < <("$BUSYBOX" --list-full)

# copy_into SRC DEST: copy (dereferencing the top) to $R/DEST, creating parents.
copy_into() {
	local src=$1 dest=$2
	mkdir -p -- "$R$(dirname -- "$dest")"
	cp -a --dereference -- "$src" "$R$dest" 2>/dev/null || cp -aL -- "$src" "$R$dest"
}
# add_libs FILE: copy every shared library FILE needs, at the path ldd reports.
declare -A LIBS_DONE=()
add_libs() {
	local out line path
	out=$(ldd -- "$1" 2>/dev/null) || return 0   # static: nothing to do
	while read -r line; do
		path=""
		if [[ $line =~ =\>\ (/[^ ]+) ]]; then path=${BASH_REMATCH[1]}
		elif [[ $line =~ ^(/[^ ]+)\ \( ]]; then path=${BASH_REMATCH[1]}
		fi
		[[ -n $path && -z ${LIBS_DONE[$path]:-} ]] || continue
		LIBS_DONE[$path]=1
		copy_into "$path" "$path"
	done <<<"$out"
}

INIT_SPECS=""
for ((i = 0; i < N; i++)); do
	idx=$((i + 1))
	vbin=/opt/agentbox-vm/bin/$idx/${SPEC_NAME[i]}   # keeps the binary's own name (argv[0])
	mkdir -p "$R/opt/agentbox-vm/bin/$idx"
	cp -- "${SPEC_BIN[i]}" "$R$vbin"
	chmod 0755 "$R$vbin"
	add_libs "${SPEC_BIN[i]}"
	mkdir -p -- "$R${SPEC_CWD[i]}"
	if [[ -d ${SPEC_CWD[i]}/testdata ]]; then copy_into "${SPEC_CWD[i]}/testdata" "${SPEC_CWD[i]}/testdata"; fi
	INIT_SPECS+="run_one $idx $(sq "${SPEC_NAME[i]}") $(sq "${SPEC_CWD[i]}") $(sq "${SPEC_ENV[i]}") $(sq "$vbin")${SPEC_ARGS[i]}"$'\n'
done
for t in "${TREES[@]}"; do
	t=$(realpath -e -- "$t" 2>/dev/null) || die "--tree: '$t' not found"
	[[ -f $t/go.mod ]] && copy_into "$t/go.mod" "$t/go.mod"
	while IFS= read -r -d '' d; do copy_into "$d" "$d"; done \
		< <(find "$t" \( -name .git -o -name node_modules \) -prune -o -type d -name testdata -print0 -prune)
done
for c in "${COPIES[@]}"; do
	src=${c%%:*}; dest=${c#*:}; [[ $c == *:* ]] || dest=""
	src=$(realpath -e -- "$src" 2>/dev/null) || die "--copy: '${c%%:*}' not found"
	[[ -n $dest ]] || dest=$src
	[[ $dest == /* ]] || die "--copy: DEST must be absolute, got '$dest'"
	copy_into "$src" "$dest"
	if [[ -f $src && -x $src ]]; then add_libs "$src"; fi
done
# make everything we ship readable/executable for unprivileged (mapped) uids
chmod -R go+rX "$R"

MODLOAD=""
if [[ ${#MODULES[@]} -gt 0 ]]; then
	command -v modprobe >/dev/null || die "--module needs modprobe: apt-get install kmod"
	for m in "${MODULES[@]}"; do
		deps=$(modprobe -S "$KVER" --show-depends "$m" 2>&1) || die "--module $m: $deps"
		while read -r kind path _; do
			[[ $kind == insmod ]] || continue
			base=$(basename -- "$path"); base=${base%.xz}; base=${base%.zst}; base=${base%.gz}
			[[ -f $R/lib/modules/$base ]] && continue
			mkdir -p "$R/lib/modules"
			case $path in
			*.xz) xz -dc -- "$path" >"$R/lib/modules/$base" ;;
			*.zst) zstd -dc -- "$path" >"$R/lib/modules/$base" ;;
			*.gz) gzip -dc -- "$path" >"$R/lib/modules/$base" ;;
			*) cp -- "$path" "$R/lib/modules/$base" ;;
			esac
			MODLOAD+="insmod /lib/modules/$base || echo '@@AGENTBOX-VM WARN insmod $base failed'"$'\n'
		done <<<"$deps"
	done
fi

cat >"$R/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$R/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
cat >"$R/etc/hosts" <<'EOF'
127.0.0.1 localhost agentbox-vm
::1 localhost ip6-localhost ip6-loopback
EOF
echo "hosts: files dns" >"$R/etc/nsswitch.conf"
: >"$R/etc/resolv.conf"
if command -v ldconfig >/dev/null && [[ ${#LIBS_DONE[@]} -gt 0 ]]; then ldconfig -r "$R" 2>/dev/null || true; fi

# Stage 1 (PID 1 on the initramfs rootfs): pivot_root(2) refuses to move the
# rootfs, and the sandbox needs pivot_root, so copy everything onto a real
# tmpfs and switch_root into it, as a real initramfs hands over to a disk root.
cat >"$R/init" <<'EOF'
#!/bin/busybox sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
echo "@@AGENTBOX-VM BOOT"
mount -t tmpfs -o mode=0755 rootfs /newroot || { echo '@@AGENTBOX-VM FATAL mount newroot'; poweroff -f; }
for e in /* ; do
	case $e in /newroot|/dev|/proc|/sys|/init) continue ;; esac
	cp -a "$e" /newroot/ || { echo "@@AGENTBOX-VM FATAL copy $e"; poweroff -f; }
done
mkdir -p /newroot/dev /newroot/proc /newroot/sys
mount -o move /dev /newroot/dev
# env -i: the kernel passes unknown cmdline words (edd=off, ...) to init as environment
exec env -i /bin/busybox switch_root /newroot /sbin/agentbox-vm-init
EOF
chmod 0755 "$R/init"

# Stage 2 (PID 1 on the tmpfs root): a small systemd look-alike.
{
	cat <<'EOF'
#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
exec </dev/console >/dev/console 2>&1
fatal() { echo "@@AGENTBOX-VM FATAL $*"; poweroff -f; sleep 10; }
mount -t proc -o nosuid,nodev,noexec proc /proc || fatal "mount proc"
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys || fatal "mount sysfs"
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o nosuid,noexec,gid=5,mode=620,ptmxmode=000 devpts /dev/pts
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm
mount -t mqueue -o nosuid,nodev,noexec mqueue /dev/mqueue
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
[ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin
[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout
[ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr
# a fresh tmpfs on /tmp, keeping what the image put under /tmp (binaries' cwd, --copy)
mkdir -p /run/tmp
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /run/tmp || fatal "mount /tmp"
cp -a /tmp/. /run/tmp/ && rm -rf /tmp/* && mount -o move /run/tmp /tmp || fatal "populate /tmp"
# cgroup v2 alone, with the options systemd uses
mount -t cgroup2 -o nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup \
	|| mount -t cgroup2 -o nosuid,nodev,noexec,relatime,nsdelegate cgroup2 /sys/fs/cgroup \
	|| fatal "mount cgroup2"
# systemd makes every mount shared; the sandbox must cope with that
mount --make-rshared / || echo "@@AGENTBOX-VM WARN cannot make / rshared"
hostname agentbox-vm
ip link set lo up || fatal "loopback"
dmesg -n 1
EOF
	printf '%s' "$MODLOAD"
	cat <<'EOF'
CG=/sys/fs/cgroup
# Like systemd: enable every available controller from the root down to
# system.slice; PID 1 lives in init.scope; the service under test gets its
# own cgroup with all controllers available (Delegate=yes), holding its own
# processes: a non-root leaf, not the root.
enable_all() { for c in $(cat "$1/cgroup.controllers"); do echo "+$c" >"$1/cgroup.subtree_control" 2>/dev/null || echo "@@AGENTBOX-VM WARN cannot enable $c in $1"; done; }
mkdir -p $CG/init.scope $CG/system.slice
echo $$ >$CG/init.scope/cgroup.procs || fatal "move PID 1 to init.scope"
enable_all $CG
enable_all $CG/system.slice
SVC=$CG/system.slice/agentbox.service
EOF
	echo "KLINES=$KLINES"
	cat <<'EOF'

export HOME=/root TMPDIR=/tmp USER=root LOGNAME=root TERM=dumb LANG=C.UTF-8
export CI=true AGENTBOX_IN_VM=1 AGENTBOX_REQUIRE_PRIVILEGED=1 AGENTBOX_REQUIRE_CGROUP2=1
export GOTRACEBACK=all
EOF
	for e in "${ENVS[@]}"; do printf 'export %s\n' "$(sq "$e")"; done
	cat <<'EOF'
uptime_s() { cut -d' ' -f1 /proc/uptime; }
# cleanup_svc NAME [IDX]: kill and remove whatever is left in the service cgroup. After
# binary IDX anything left (processes, child cgroups, controllers still enabled for
# children) is a LEAK, which fails that binary: it must leave its cgroup as it found it.
# Before a binary (no IDX) there is nothing to blame, so it only warns.
cleanup_svc() {
	[ -d $SVC ] || return 0
	tag=WARN
	[ -n "${2:-}" ] && tag="LEAK $2"
	left=$(cat $SVC/cgroup.procs | wc -l)
	for d in $(find $SVC -mindepth 1 -type d); do left=$((left + $(cat $d/cgroup.procs | wc -l))); done
	[ "$left" -gt 0 ] && echo "@@AGENTBOX-VM $tag $1 left $left process(es) behind in its cgroup: killed"
	ctl=$(cat $SVC/cgroup.subtree_control)
	[ -n "$ctl" ] && echo "@@AGENTBOX-VM $tag $1 left controllers enabled for children of its cgroup: $ctl"
	echo 1 >$SVC/cgroup.kill 2>/dev/null
	i=0
	while grep -q '^populated 1' $SVC/cgroup.events && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	sub=$(find $SVC -mindepth 1 -type d | wc -l)
	[ "$sub" -gt 0 ] && echo "@@AGENTBOX-VM $tag $1 left $sub cgroup(s) behind: $(find $SVC -mindepth 1 -type d | sed "s|^$CG||" | tr '\n' ' ' | sed 's/ $//')"
	find $SVC -depth -type d -exec rmdir {} \; 2>/dev/null
	[ -d $SVC ] && echo "@@AGENTBOX-VM WARN could not remove $SVC"
}
run_one() {
	idx=$1 name=$2 cwd=$3 envs=$4 bin=$5
	shift 5
	cleanup_svc "previous"
	mkdir $SVC || fatal "mkdir $SVC"
	dmesg -c >/dev/null
	echo
	echo "@@AGENTBOX-VM BEGIN $idx $name cwd=$cwd${envs:+ env: $envs} t=$(uptime_s)"
	t0=$(uptime_s)
	(
		echo 0 >$SVC/cgroup.procs || { echo "cannot join $SVC"; exit 125; }
		cd "$cwd" || exit 126
		unset OLDPWD
		[ -z "$envs" ] || eval "export $envs"
		exec "$bin" "$@"
	) </dev/null
	rc=$?
	t1=$(uptime_s)
	echo
	k=$(dmesg -c)
	if [ -n "$k" ]; then
		n=$(echo "$k" | wc -l)
		if [ "$KLINES" -gt 0 ] && [ "$n" -gt "$KLINES" ]; then
			echo "$k" | head -n "$KLINES" | sed 's/^/[kernel] /'
			echo "[kernel] ... $((n - KLINES)) more kernel line(s) not shown (run.sh --kernel-lines 0 shows all)"
		else
			echo "$k" | sed 's/^/[kernel] /'
		fi
	fi
	cleanup_svc "$name" "$idx"
	echo "@@AGENTBOX-VM END $idx $name exit=$rc secs=$(awk "BEGIN{printf \"%.2f\", $t1 - $t0}")"
}
echo "@@AGENTBOX-VM READY kernel=$(uname -r) t=$(uptime_s) cgroupfs=0x$(stat -f -c %t $CG) controllers=\"$(cat $CG/system.slice/cgroup.subtree_control)\""
EOF
	printf '%s' "$INIT_SPECS"
	cat <<'EOF'
echo "@@AGENTBOX-VM DONE t=$(uptime_s)"
sync
poweroff -f
sleep 10
EOF
} >"$R/sbin/agentbox-vm-init"
chmod 0755 "$R/sbin/agentbox-vm-init"

(cd "$R" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) >"$WORK/initramfs.cpio" \
	|| die "cpio failed"
INITRD_MB=$(( $(stat -c %s "$WORK/initramfs.cpio") / 1048576 ))

# ---- boot --------------------------------------------------------------------------------
CMDLINE="console=ttyS0 panic=-1 edd=off cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1"
[[ $VERBOSE == 1 ]] || CMDLINE+=" quiet"
if [[ $QUIET == 1 ]]; then CHARDEV="file,id=con,path=$LOG"; else CHARDEV="stdio,id=con,signal=off,logfile=$LOG"; fi
info "kernel $KERNEL, accel $ACCEL$([[ $FALLBACK == 1 ]] && echo " (TCG if it stalls)"), initramfs ${INITRD_MB} MiB, $N binar$([[ $N == 1 ]] && echo y || echo ies), timeout ${TIMEOUT}s, log $LOG"

# boot: run qemu until it exits or TIMEOUT; sets TIMED_OUT, STALLED, QRC, ELAPSED.
boot() {
	: >"$LOG"
	: >"$WORK/qemu.err"
	local start end deadline stall_deadline
	start=$(date +%s.%N)
	qemu-system-x86_64 -nodefaults -no-user-config -nographic -no-reboot \
		"${ACCEL_ARGS[@]}" -m "$MEM" -smp "$SMP" \
		-fw_cfg name=etc/sercon-port,string=0 \
		-kernel "$KERNEL" -initrd "$WORK/initramfs.cpio" -append "$CMDLINE" \
		-chardev "$CHARDEV" -serial chardev:con \
		</dev/null 2>"$WORK/qemu.err" &
	QPID=$!
	TIMED_OUT=0; STALLED=0
	deadline=$(( $(date +%s) + TIMEOUT ))
	stall_deadline=$(( $(date +%s) + BOOT_STALL ))
	while kill -0 "$QPID" 2>/dev/null; do
		local now; now=$(date +%s)
		if [[ $ACCEL == kvm ]] && (( stall_deadline > 0 )); then
			if grep -q '@@AGENTBOX-VM BOOT' "$LOG" 2>/dev/null; then
				stall_deadline=0
			elif (( now >= stall_deadline )); then
				STALLED=1
			fi
		fi
		if (( now >= deadline )); then TIMED_OUT=1; fi
		if (( TIMED_OUT || STALLED )); then
			if (( TIMED_OUT )); then info "TIMEOUT after ${TIMEOUT}s: killing qemu (pid $QPID)"; fi
			kill -TERM "$QPID" 2>/dev/null || true
			for _ in 1 2 3 4 5; do kill -0 "$QPID" 2>/dev/null || break; sleep 1; done
			kill -KILL "$QPID" 2>/dev/null || true
			break
		fi
		sleep 0.5
	done
	QRC=0; wait "$QPID" || QRC=$?
	QPID=""
	end=$(date +%s.%N)
	ELAPSED=$(awk "BEGIN{printf \"%.1f\", $end - $start}")
	grep -v -e 'fw_cfg item names should be prefixed' -e 'terminating on signal' "$WORK/qemu.err" >&2 || true
}
boot
if (( STALLED )); then
	echo
	if (( FALLBACK )); then
		info "no sign of init ${BOOT_STALL}s into a KVM boot: KVM here cannot run this kernel; retrying with TCG"
		ACCEL=tcg; FALLBACK=0; accel_setup
		boot
	else
		info "no sign of init ${BOOT_STALL}s into a KVM boot: KVM here cannot run this kernel (try --accel tcg)"
		FATAL="KVM boot stalled"
	fi
fi

# ---- results ------------------------------------------------------------------------------
declare -A RC=() SECS=() LEAKS=()
WARNS=()
DONE=0; READY=0; FATAL=${FATAL:-}; PANIC=""
while IFS= read -r line; do
	line=${line//$'\r'/}
	case $line in
	*"@@AGENTBOX-VM END "*)
		set -- ${line#*@@AGENTBOX-VM END }
		RC[$1]=${3#exit=}; SECS[$1]=${4#secs=} ;;
	*"@@AGENTBOX-VM WARN "*) WARNS+=("${line#*@@AGENTBOX-VM WARN }") ;;
	*"@@AGENTBOX-VM LEAK "*)
		leak=${line#*@@AGENTBOX-VM LEAK }
		LEAKS[${leak%% *}]+="${LEAKS[${leak%% *}]:+; }${leak#* }" ;;
	*"@@AGENTBOX-VM FATAL "*) FATAL=${line#*@@AGENTBOX-VM FATAL } ;;
	*"@@AGENTBOX-VM READY "*) READY=1 ;;
	*"@@AGENTBOX-VM DONE"*) DONE=1 ;;
	*"Kernel panic - not syncing"*) PANIC=${line#*Kernel panic - not syncing: } ;;
	esac
done <"$LOG"

if [[ $QUIET == 1 ]]; then
	# show the sections of binaries that did not pass
	for ((i = 1; i <= N; i++)); do
		[[ ${RC[$i]:-x} == 0 && -z ${LEAKS[$i]:-} ]] && continue
		echo "----- console output of [$i] ${SPEC_NAME[i-1]} -----"
		tr -d '\r' <"$LOG" | awk -v i="$i" '
			index($0, "@@AGENTBOX-VM BEGIN " i " ") { on = 1 }
			on { print }
			index($0, "@@AGENTBOX-VM END " i " ") { on = 0 }'
	done
fi

echo
echo "===== agentbox cgroup-v2 VM summary ($ACCEL, ${ELAPSED}s boot to poweroff, kernel $KVER) ====="
pass=0; fail=0
for ((i = 1; i <= N; i++)); do
	name=${SPEC_NAME[i-1]}
	[[ -z ${SPEC_ENV[i-1]} ]] || name+=" (${SPEC_ENV[i-1]//\'/})"
	if [[ -z ${RC[$i]:-} ]]; then
		status="FAIL  no result"; fail=$((fail + 1))
		if [[ $TIMED_OUT == 1 ]]; then status+=" (VM timed out)"; fi
	elif [[ ${RC[$i]} == 0 && -n ${LEAKS[$i]:-} ]]; then
		status="FAIL  exit 0 but left cgroup state behind, ${SECS[$i]}s"; fail=$((fail + 1))
	elif [[ ${RC[$i]} == 0 ]]; then
		status="ok    ${SECS[$i]}s"; pass=$((pass + 1))
	else
		status="FAIL  exit ${RC[$i]}, ${SECS[$i]}s"; fail=$((fail + 1))
	fi
	printf '  [%d] %-48s %s\n' "$i" "$name" "$status"
	[[ -z ${LEAKS[$i]:-} ]] || echo "      leak: ${LEAKS[$i]}"
done
for w in "${WARNS[@]}"; do echo "  warning: $w"; done
[[ $READY == 1 ]] || echo "  the VM never reached its test runner (boot or init failure): see $LOG"
[[ -z $FATAL ]] || echo "  fatal: $FATAL"
[[ -z $PANIC ]] || echo "  kernel panic: $PANIC"
[[ $TIMED_OUT == 0 ]] || echo "  the VM was killed after the ${TIMEOUT}s timeout"
[[ $DONE == 1 || $TIMED_OUT == 1 ]] || echo "  the VM stopped before it finished (qemu exit $QRC): see $LOG"
echo "  log: $LOG"
echo "vm: $pass passed, $fail failed"
[[ $fail == 0 && $TIMED_OUT == 0 && $DONE == 1 ]] && exit 0
exit 1
