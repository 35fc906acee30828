//go:build linux

package security

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentbox/agentbox/internal/testhook"
	"github.com/agentbox/agentbox/sandbox"
)

// Layer names: the wall that stops an attack.
const (
	lSeccomp   = "seccomp"
	lUserns    = "user namespace"
	lPidns     = "pid namespace"
	lNetns     = "net namespace"
	lMountns   = "mount namespace / empty root"
	lPids      = "cgroup pids"
	lMemory    = "cgroup memory"
	lRlimit    = "rlimit"
	lWazero    = "wazero"
	lSupervise = "supervisor"
	lCaps      = "capabilities"
	lNoDump    = "not dumpable + RLIMIT_CORE 0"
)

// quick bounds payload rows that should answer at once: a hang fails in 10 s, not 30.
var quick = sandbox.Limits{Timeout: 10 * time.Second}

// attacks is the attack suite as data. TestAttacks runs every row; each invariant test runs
// its own; TestAttackTableDoc keeps docs/SECURITY.md equal to it.
var attacks = []attack{
	// 1. Filesystem: the guest sees only its preopens; the process sees an empty read-only root.
	{Name: "open /proc/self/exe for write", Invariant: 1, From: "payload", payload: "proc-self-exe", limits: quick,
		What: "overwrite the supervisor's binary through /proc (runc CVE-2019-5736)", Expect: "ENOENT", Layer: lMountns},
	{Name: "mount a tmpfs", Invariant: 1, From: "payload", payload: "mount-tmpfs", limits: quick,
		What: "mount(2) over the root", Expect: "EPERM", Layer: lSeccomp},
	{Name: "fsopen cgroup and fsconfig", Invariant: 1, From: "payload", payload: "fsopen-cgroup", limits: quick,
		What: "new mount API: a cgroup fs context to set release_agent", Expect: "fsopen EPERM, fsconfig EPERM", Layer: lSeccomp},
	{Name: "cgroup release_agent", Invariant: 1, From: "payload", payload: "release-agent", limits: quick,
		What: "write a host command into a v1 release_agent, or mount cgroupfs to find one", Expect: "open ENOENT, mount EPERM", Layer: lMountns},
	{Name: "fd walk from /", Invariant: 1, From: "payload", payload: "fd-walk-root", limits: quick, setup: withUnsafe(noLandlock, nil),
		What: `openat(fd, "..") 64 times from the root, Landlock off (with it, opening / is EACCES)`, Expect: "ends at /: []", Layer: lMountns},
	{Name: "fd walk from a preopen", Invariant: 1, From: "payload", payload: "fd-walk-dir", limits: quick, setup: withUnsafe(noLandlock, withWritableDir),
		What: `openat(fd, "..") 64 times from the preopen's directory, Landlock off (with it, the first ".." is EACCES)`, Expect: "ends at /: [dirs]", Layer: lMountns},
	{Name: "plant a symlink in the output dir", Invariant: 1, From: "payload", payload: "plant-symlink", limits: quick, setup: withWritableDir,
		What: "symlinkat(\"/etc/shadow\", \"/dirs/0/evil\"): a link the host follows when it ships the output", Expect: "EPERM", Layer: lSeccomp,
		check: noHostEntry("evil")},
	{Name: "linkat with flags", Invariant: 1, From: "payload", payload: "plant-links", limits: quick, setup: withWritableDir,
		What: "linkat with AT_EMPTY_PATH (an fd) and AT_SYMLINK_FOLLOW; a plain hard link in the preopen", Expect: "AT_EMPTY_PATH EPERM, AT_SYMLINK_FOLLOW EPERM, plain ok", Layer: lSeccomp},
	{Name: "chdir .. then getcwd", Invariant: 1, From: "payload", payload: "chdir-up", limits: quick,
		What: `chdir("..") 64 times, then getcwd`, Expect: "chdir ENOSYS, getcwd ENOSYS", Layer: lSeccomp},
	{Name: "chroot", Invariant: 1, From: "payload", payload: "chroot", limits: quick,
		What: "chroot(2), the first step of the classic chroot escape", Expect: "EPERM", Layer: lSeccomp},
	{Name: "write the root", Invariant: 1, From: "payload", payload: "write-root", limits: quick,
		What: "create a file and a directory in the root tmpfs (to fill it)", Expect: "creat EROFS, mkdir EROFS", Layer: lMountns},
	{Name: "write past RLIMIT_FSIZE", Invariant: 1, From: "payload", payload: "fsize", args: []string{"/dirs/0/big"},
		limits: sandbox.Limits{Timeout: 10 * time.Second, FileSizeBytes: 1 << 20}, setup: withWritableDir,
		What: "fill the host disk through a writable preopen (limit 1 MiB)", Expect: "EFBIG at 1048576", Layer: lRlimit,
		check: fileSizeCapped(1 << 20)},
	{Name: "exhaust descriptors", Invariant: 1, From: "payload", payload: "fd-exhaust", limits: quick,
		What: "dup, dup3, fcntl(F_DUPFD), then openat until refused", Expect: "dup ENOSYS, dup3 ENOSYS, F_DUPFD EPERM, openat EMFILE after fd 255", Layer: lRlimit},
	{Name: "mknod a block device", Invariant: 1, From: "payload", payload: "mknod-device", limits: quick,
		What: "a node for the host's disk (8:0)", Expect: "EPERM", Layer: lSeccomp},
	{Name: "open_by_handle_at", Invariant: 1, From: "payload", payload: "open-by-handle", limits: quick,
		What: "the 'shocker' escape: open host files by handle", Expect: "killed: SIGSYS", Layer: lSeccomp},
	{Name: "inherited host descriptors", Invariant: 1, From: "payload", payload: "fd-scan", limits: quick, setup: plantHostFDs,
		What:   "a host directory and file the supervisor holds without O_CLOEXEC, looked for among fds 0..1023 (runc CVE-2024-21626)",
		Expect: "0 fifo, 1 fifo, 2 fifo, 3 anon, 4 fifo, 5 anon; planted none", Layer: lCloseFDs},
	{Name: "write a read-only preopen", Invariant: 1, From: "payload", payload: "ro-create", limits: quick, setup: withReadOnlyDir,
		What: "create a file and a directory in a read-only --dir of mode 0777, by raw syscalls", Expect: "creat EROFS, mkdir EROFS", Layer: lBindFlags,
		check: preopenUntouched},
	{Name: "guest path_open ../", Invariant: 1, From: "module", module: suiteModule("openpath.wasm"), wasiErrno: true,
		args: []string{"../outside/secret"}, setup: escapeFixture, check: noSecretLeak,
		What: "a file next to the preopen, by ../", Expect: "WASI EPERM", Layer: lWazero},
	{Name: "guest follows host absolute symlink", Invariant: 1, From: "module", module: suiteModule("openpath.wasm"), wasiErrno: true,
		args: []string{"abslink"}, setup: escapeFixture, check: noSecretLeak,
		What: "a symlink the host made in the preopen, to an absolute host path outside", Expect: "WASI ENOENT", Layer: lMountns},
	{Name: "guest follows host relative symlink", Invariant: 1, From: "module", module: suiteModule("openpath.wasm"), wasiErrno: true,
		args: []string{"rellink"}, setup: escapeFixture, check: noSecretLeak,
		What: "a symlink the host made in the preopen, to ../outside/secret", Expect: "WASI ENOENT", Layer: lMountns},
	{Name: "guest follows symlink to /etc", Invariant: 1, From: "module", module: suiteModule("openpath.wasm"), wasiErrno: true,
		args: []string{"etclink"}, setup: escapeFixture,
		What: "a symlink in the preopen to /etc/hostname", Expect: "WASI ENOENT", Layer: lMountns},
	{Name: "guest absolute path", Invariant: 1, From: "module", module: suiteModule("openpath.wasm"), wasiErrno: true,
		args: []string{"/etc/passwd"}, setup: escapeFixture,
		What: "path_open of /etc/passwd against the preopen", Expect: "WASI EPERM", Layer: lWazero},
	{Name: "guest without preopens", Invariant: 1, From: "module", module: suiteModule("openpath.wasm"), wasiErrno: true,
		args: []string{"secret"},
		What: "path_open on fd 3 when no directory was given", Expect: "WASI EBADF", Layer: lWazero},
	{Name: "guest path_symlink", Invariant: 1, From: "module", module: suiteModule("symlink.wasm"), wasiErrno: true,
		setup: withWritableDir, check: noLinkOnHost,
		What: "plant link -> ../../../etc/passwd in a writable preopen (wazero#2321)", Expect: "WASI EPERM", Layer: lWazero},

	// 2. Syscalls: an allowlist; denied calls fail, dangerous ones kill, foreign ABIs kill.
	{Name: "unshare CLONE_NEWUSER", Invariant: 2, From: "payload", payload: "unshare-newuser", limits: quick,
		What: "a nested user namespace, to regain capabilities", Expect: "EPERM", Layer: lSeccomp},
	{Name: "setns", Invariant: 2, From: "payload", payload: "setns-net", limits: quick,
		What: "join another namespace by fd", Expect: "EPERM", Layer: lSeccomp},
	{Name: "clone CLONE_NEWUSER", Invariant: 2, From: "payload", payload: "clone-newuser", limits: quick,
		What: "a child process in a new user namespace", Expect: "EPERM", Layer: lSeccomp},
	{Name: "clone thread CLONE_NEWNET", Invariant: 2, From: "payload", payload: "clone-thread-newnet", limits: quick,
		What: "a thread (allowed) with a namespace flag (not)", Expect: "EPERM", Layer: lSeccomp},
	{Name: "clone3", Invariant: 2, From: "payload", payload: "clone3", limits: quick,
		What: "clone3, whose flags seccomp cannot see", Expect: "ENOSYS", Layer: lSeccomp},
	{Name: "clone flags outside the pin", Invariant: 2, From: "payload", payload: "clone-flags", limits: quick,
		What:   "the Go runtime's thread flags plus CLONE_PIDFD, plus CLONE_PARENT; CLONE_VM|CLONE_VFORK",
		Expect: "thread+CLONE_PIDFD EPERM, thread+CLONE_PARENT EPERM, CLONE_VM|CLONE_VFORK EPERM", Layer: lSeccomp},
	{Name: "futex ops beyond wait and wake", Invariant: 2, From: "payload", payload: "futex-ops", limits: quick,
		What:   "bitset wait and wake, a PI lock (past CVEs), then the runtime's own private wake",
		Expect: "WAIT_BITSET EPERM, WAKE_BITSET EPERM, LOCK_PI EPERM, WAKE_PRIVATE ok", Layer: lSeccomp},
	{Name: "execve", Invariant: 2, From: "payload", payload: "execve", limits: quick,
		What: "run /bin/sh", Expect: "EPERM", Layer: lSeccomp},
	{Name: "execveat", Invariant: 2, From: "payload", payload: "execveat", limits: quick,
		What: "exec a descriptor (AT_EMPTY_PATH)", Expect: "EPERM", Layer: lSeccomp},
	{Name: "memfd_create", Invariant: 2, From: "payload", payload: "memfd-create", limits: quick,
		What: "an anonymous file to exec or map", Expect: "EPERM", Layer: lSeccomp},
	{Name: "mmap RWX", Invariant: 2, From: "payload", payload: "mmap-rwx", limits: quick,
		What: "writable+executable memory", Expect: "EPERM", Layer: lSeccomp},
	{Name: "io_uring_setup", Invariant: 2, From: "payload", payload: "io-uring-setup", limits: quick,
		What: "io_uring, whose ops bypass seccomp", Expect: "EPERM", Layer: lSeccomp},
	{Name: "bpf", Invariant: 2, From: "payload", payload: "bpf", limits: quick,
		What: "load a BPF program", Expect: "EPERM", Layer: lSeccomp},
	{Name: "keyctl", Invariant: 2, From: "payload", payload: "keyctl", limits: quick,
		What: "join the session keyring (keyrings are not namespaced)", Expect: "EPERM", Layer: lSeccomp},
	{Name: "add_key", Invariant: 2, From: "payload", payload: "add-key", limits: quick,
		What: "add a key to the session keyring", Expect: "EPERM", Layer: lSeccomp},
	{Name: "ptrace", Invariant: 2, From: "payload", payload: "ptrace", limits: quick,
		What: "PTRACE_TRACEME", Expect: "EPERM", Layer: lSeccomp},
	{Name: "process_vm_writev", Invariant: 2, From: "payload", payload: "process-vm-writev", limits: quick,
		What: "write another process's memory", Expect: "EPERM", Layer: lSeccomp},
	{Name: "x32 syscall number", Invariant: 2, From: "payload", payload: "x32-getpid", limits: quick,
		What: "getpid with bit 30 set (x32 ABI)", Expect: "killed: SIGSYS", Layer: lSeccomp},
	{Name: "int 0x80", Invariant: 2, From: "payload", payload: "int80-getpid", limits: quick,
		What: "i386 getpid through int $0x80 (an assembly stub in the binary: no page can be made executable)", Expect: "killed: SIGSYS", Layer: lSeccomp},
	{Name: "RW page flipped to RX", Invariant: 2, From: "payload", payload: "mprotect-rw-rx", limits: quick,
		What: "native shellcode in two calls: write a RW page, mprotect it R|X, jump (W^X alone allows it)", Expect: "mprotect RX EPERM", Layer: lNoNewExec},
	{Name: "map code directly", Invariant: 2, From: "payload", payload: "map-exec", limits: quick,
		What: "an anonymous R|X mmap; a RW page made R|X by pkey_mprotect", Expect: "mmap R|X EPERM, pkey_mprotect R|X EPERM", Layer: lNoNewExec},
	{Name: "stack a filter as the sandbox does", Invariant: 2, From: "payload", payload: "stack-filter", limits: quick,
		What: "seccomp(SET_MODE_FILTER, TSYNC), the one call the first filter allows; prctl(PR_SET_SECCOMP)", Expect: "seccomp TSYNC EPERM, prctl EPERM", Layer: lNoNewExec},
	{Name: "ioctl TIOCSTI", Invariant: 2, From: "payload", payload: "tiocsti", limits: quick,
		What: "inject input into a terminal", Expect: "EPERM", Layer: lSeccomp},
	{Name: "ioctl TIOCSTI high bit", Invariant: 2, From: "payload", payload: "tiocsti-highbit", limits: quick,
		What: "TIOCSTI | 1<<32, past filters that compare 32 bits", Expect: "EPERM", Layer: lSeccomp},
	{Name: "prctl raises", Invariant: 2, From: "payload", payload: "prctl-raise", limits: quick,
		What: "PR_SET_DUMPABLE 1, raise an ambient cap, PR_SET_KEEPCAPS", Expect: "dumpable EPERM, ambient EPERM, keepcaps EPERM", Layer: lSeccomp},
	{Name: "setrlimit raises", Invariant: 2, From: "payload", payload: "setrlimit-raise", limits: quick,
		What: "RLIMIT_NOFILE to 1Mi by setrlimit and prlimit64", Expect: "setrlimit EPERM, prlimit64 EPERM", Layer: lSeccomp},
	{Name: "seccomp allow-all filter", Invariant: 2, From: "payload", payload: "seccomp-allow-all", limits: quick,
		What: "install another filter (seccomp(2) and prctl)", Expect: "seccomp EPERM, prctl EPERM", Layer: lSeccomp},
	{Name: "denied call from 32 threads", Invariant: 2, From: "payload", payload: "threads-32-denied", limits: quick,
		What: "socket() on 32 OS threads at once (TSYNC)", Expect: "EPERM x32", Layer: lSeccomp},
	{Name: "unknown syscall number", Invariant: 2, From: "payload", payload: "unknown-syscall", limits: quick,
		What: "syscall 1000", Expect: "ENOSYS", Layer: lSeccomp},
	{Name: "kexec_load", Invariant: 2, From: "payload", payload: "kexec-load", limits: quick,
		What: "replace the host kernel", Expect: "killed: SIGSYS", Layer: lSeccomp},
	{Name: "uname", Invariant: 2, From: "payload", payload: "uname", limits: quick,
		What: "what the kernel version reveals", Expect: "ENOSYS", Layer: lSeccomp},
	{Name: "sysinfo", Invariant: 2, From: "payload", payload: "sysinfo", limits: quick,
		What: "host memory and process count", Expect: "ENOSYS", Layer: lSeccomp},
	{Name: "guest WASI huge pointers", Invariant: 2, From: "module", module: suiteModule("hugeptr.wasm"), wasiErrno: true,
		What: "fd_write/fd_read with (ptr,len) far outside linear memory", Expect: "WASI EFAULT", Layer: lWazero},
	{Name: "guest imports a host function", Invariant: 2, From: "module", module: sharedModule("badimport.wasm"),
		What: "import env.nope: anything beyond WASI preview 1", Expect: "outcome invalid_module", Layer: lWazero},

	// 3. Network.
	{Name: "AF_INET connect to host listener", Invariant: 3, From: "payload", payload: "inet-connect", limits: quick, setup: hostListener,
		What: "reach a listener the test opened on the host's 127.0.0.1", Expect: "socket EPERM", Layer: lSeccomp},
	{Name: "AF_INET6 socket", Invariant: 3, From: "payload", payload: "inet6-udp", limits: quick,
		What: "a UDP socket", Expect: "socket EPERM", Layer: lSeccomp},
	{Name: "AF_NETLINK", Invariant: 3, From: "payload", payload: "netlink", limits: quick,
		What: "a route netlink socket (configure interfaces)", Expect: "socket EPERM", Layer: lSeccomp},
	{Name: "AF_PACKET", Invariant: 3, From: "payload", payload: "packet-socket", limits: quick,
		What: "a raw packet socket", Expect: "socket EPERM", Layer: lSeccomp},
	{Name: "socketpair", Invariant: 3, From: "payload", payload: "socketpair", limits: quick,
		What: "a unix socket pair (fd passing)", Expect: "socketpair EPERM", Layer: lSeccomp},
	{Name: "guest sock_accept", Invariant: 3, From: "module", module: suiteModule("sockaccept.wasm"), wasiErrno: true,
		What: "WASI's only socket call, on fd 3", Expect: "WASI EBADF", Layer: lWazero},

	// 4. Agent to agent.
	{Name: "abstract unix socket to another task", Invariant: 4, From: "payload", payload: "abstract-unix", limits: quick,
		setup: abstractNeighbour,
		What:  "connect to @agentbox-victim, bound by a running task", Expect: "socket EPERM", Layer: lSeccomp},
	{Name: "kill(-1, SIGKILL)", Invariant: 4, From: "payload", payload: "kill-all", limits: quick,
		What: "signal every process it may", Expect: "EPERM", Layer: lSeccomp},
	{Name: "kill(pid, 0) scan", Invariant: 4, From: "payload", payload: "kill-scan", limits: quick,
		What: "probe pids 2..1000", Expect: "EPERM x999", Layer: lSeccomp},
	{Name: "signal another task", Invariant: 4, From: "payload", payload: "signal-task", limits: quick, setup: sleepingNeighbour,
		What: "SIGKILL and pidfd_open on a running task's host pid", Expect: "kill EPERM, pidfd_open EPERM", Layer: lSeccomp},
	{Name: "tgkill another process", Invariant: 4, From: "payload", payload: "tgkill-other", limits: quick,
		What: "tgkill(2, 2, SIGKILL): tgkill is allowed for pid 1 only", Expect: "EPERM", Layer: lSeccomp},
	{Name: "sethostname", Invariant: 4, From: "payload", payload: "sethostname", limits: quick,
		What: "rename the (own UTS namespace's) host", Expect: "ENOSYS", Layer: lSeccomp},
	{Name: "guest proc_raise", Invariant: 4, From: "module", module: suiteModule("raise.wasm"), wasiErrno: true,
		What: "proc_raise(SIGKILL)", Expect: "WASI ENOSYS", Layer: lWazero},

	// 5. Timing.
	{Name: "guest clocks quantised", Invariant: 5, From: "module", module: sharedModule("clock.wasm"),
		limits: sandbox.Limits{ClockResolution: 10 * time.Millisecond}, observe: quantised(10 * time.Millisecond),
		What: "clock_res_get and clock_time_get, monotonic and realtime", Expect: "quantised to 10ms", Layer: lWazero},
	{Name: "guest monotonic origin", Invariant: 5, From: "module", module: sharedModule("clock.wasm"), observe: monotonicOrigin,
		What: "the host's uptime through clock_time_get(monotonic)", Expect: "counts from the task's start", Layer: lWazero},
	{Name: "guest shared memory", Invariant: 5, From: "module", module: sharedModule("sharedmem.wasm"),
		What: "a shared memory (a timer thread's counter)", Expect: "outcome invalid_module", Layer: lWazero},
	{Name: "guest atomics", Invariant: 5, From: "module", module: sharedModule("atomics.wasm"),
		What: "atomic instructions", Expect: "outcome invalid_module", Layer: lWazero},
	{Name: "perf_event_open", Invariant: 5, From: "payload", payload: "perf-event-open", limits: quick,
		What: "hardware counters, a precise timer for side channels", Expect: "EPERM", Layer: lSeccomp},
	{Name: "userfaultfd", Invariant: 5, From: "payload", payload: "userfaultfd", limits: quick,
		What: "stall kernel copies to win races", Expect: "EPERM", Layer: lSeccomp},
	{Name: "madvise outside the runtime's advice", Invariant: 5, From: "payload", payload: "madvise-other", limits: quick,
		What:   "MADV_MERGEABLE (KSM merges equal pages across tasks: a side channel), MADV_DONTFORK; then MADV_DONTNEED",
		Expect: "MADV_MERGEABLE EPERM, MADV_DONTFORK EPERM, MADV_DONTNEED ok", Layer: lSeccomp},

	// 6. Fork bombs.
	{Name: "fork", Invariant: 6, From: "payload", payload: "fork", limits: quick,
		What: "fork(2)", Expect: "EPERM", Layer: lSeccomp},
	{Name: "vfork", Invariant: 6, From: "payload", payload: "vfork", limits: quick,
		What: "vfork(2)", Expect: "EPERM", Layer: lSeccomp},
	{Name: "fork via clone", Invariant: 6, From: "payload", payload: "fork-via-clone", limits: quick,
		What: "clone(SIGCHLD): a process, not a thread", Expect: "EPERM", Layer: lSeccomp},
	{Name: "thread bomb", Invariant: 6, From: "payload", payload: "thread-bomb",
		limits: sandbox.Limits{Timeout: 20 * time.Second, Pids: 32},
		What:   "LockOSThread goroutines, a thread each, until pids.max (32)", Expect: "outcome pids_limit", Layer: lPids,
		check: messageHas("exited with status 2")},
	{Name: "guest wasi-threads", Invariant: 6, From: "module", module: suiteModule("threadspawn.wasm"),
		What: "import wasi thread-spawn", Expect: "outcome invalid_module", Layer: lWazero},

	// 7. Memory.
	{Name: "native memory past the limit", Invariant: 7, From: "payload", payload: "mem-hog",
		limits: sandbox.Limits{MemoryBytes: 64 << 20, Timeout: 30 * time.Second},
		What:   "allocate and touch 1 MiB at a time, keep it all (limit 64 MiB)", Expect: "outcome memory_limit", Layer: lMemory,
		check: messageHas("OOM-killed")},
	{Name: "forged ok, then OOM", Invariant: 7, From: "payload", payload: "forge-then-hog",
		limits: sandbox.Limits{MemoryBytes: 64 << 20, Timeout: 30 * time.Second},
		What:   "write an ok report to the result pipe, then allocate past the limit", Expect: "outcome memory_limit", Layer: lSupervise,
		check: both(notForged, messageHas("OOM-killed"))},
	{Name: "guest memory.grow past the limit", Invariant: 7, From: "module", module: sharedModule("growmem.wasm"),
		limits: sandbox.Limits{MemoryBytes: 64 << 20},
		What:   "grow 1 MiB at a time (limit 64 MiB)", Expect: "outcome memory_limit", Layer: lWazero,
		check: messageHas("67108864")},
	{Name: "guest 4 GiB initial memory", Invariant: 7, From: "module", module: suiteModule("hugemin.wasm"),
		What: "a memory whose minimum is the whole wasm32 space", Expect: "outcome memory_limit", Layer: lWazero},
	{Name: "guest table.grow 4e9", Invariant: 7, From: "module", module: sharedModule("tablegrow.wasm"),
		What: "grow a table by 4e9 entries (32 GB of Go heap)", Expect: "outcome ok", Layer: lWazero},
	{Name: "guest data segment out of bounds", Invariant: 7, From: "module", module: suiteModule("oobdata.wasm"),
		What: "a data segment that ends past its memory", Expect: "outcome invalid_module", Layer: lWazero},
	{Name: "guest 200k functions", Invariant: 7, From: "module", module: generated(func() []byte { return manyFunctions(200000) }),
		What: "cheap to send, costly to compile", Expect: "outcome ok", Layer: lWazero},
	// The compile has its own budget, never the guest's: a module too costly to compile is
	// invalid_module naming the compile limit, on a fast host and a slow one alike. The
	// generous timeout leaves memory as the only limit that can stop this one.
	{Name: "guest 1M functions", Invariant: 7, From: "module", module: generated(func() []byte { return manyFunctions(1000000) }),
		compile: sandbox.CompileLimits{MemoryBytes: 64 << 20, Timeout: 30 * time.Minute},
		What:    "an 8 MB module whose compile needs more than a 64 MiB compile budget", Expect: "outcome invalid_module", Layer: lMemory,
		check: messageHas("compile memory limit of 64Mi")},
	{Name: "guest 20k nested blocks", Invariant: 7, From: "module", module: generated(func() []byte { return deepNesting(20000) }),
		What: "deep nesting against a recursive validator", Expect: "outcome ok", Layer: lWazero},
	// Compile time grows faster than linearly with nesting depth (10k: 0.3 s, 20k: 1.6 s):
	// a 200 KB module outlasts any reasonable compile budget, and passing it is the module's
	// fault (a 3 s budget: no machine compiles this within it).
	{Name: "guest 100k nested blocks", Invariant: 7, From: "module", module: generated(func() []byte { return deepNesting(100000) }),
		compile: sandbox.CompileLimits{Timeout: 3 * time.Second},
		What:    "a 200 KB module of nested blocks: super-linear compile time", Expect: "outcome invalid_module", Layer: lSupervise,
		check: messageHas("compile time limit of 3s")},
	// wazero's decoder makes a slice of every declared local, so without a bound this
	// 23-byte module would kill the child's Go runtime ("fatal error: runtime: out of
	// memory"); wasm.vetModule refuses local counts past MaxFunctionLocals first.
	{Name: "guest 2^32-1 locals", Invariant: 7, From: "module", module: generated(hugeLocals),
		What: "one function declaring 4 billion locals (wazero allocates them at decode)", Expect: "outcome invalid_module", Layer: lWazero},

	// 8. CPU and output.
	{Name: "native spin past the wall clock", Invariant: 8, From: "payload", payload: "spin",
		limits: sandbox.Limits{Timeout: time.Second}, What: "a busy loop, timeout 1s", Expect: "outcome timeout", Layer: lSupervise},
	{Name: "native spin past CPU time", Invariant: 8, From: "payload", payload: "spin",
		limits: sandbox.Limits{CPUTime: time.Second, Timeout: 10 * time.Second}, What: "a busy loop, --cpu-time 1s", Expect: "outcome cpu_limit", Layer: lSupervise},
	{Name: "raise own priority", Invariant: 8, From: "payload", payload: "setpriority", limits: quick,
		What: "nice -20 and pin to a CPU", Expect: "setpriority EPERM, sched_setaffinity EPERM", Layer: lSeccomp},
	{Name: "10 GiB to stdout", Invariant: 8, From: "payload", payload: "flood",
		limits: sandbox.Limits{OutputBytes: 1 << 20, Timeout: 20 * time.Second},
		What:   "write 10 GiB with no newline (cap 1 MiB)", Expect: "outcome output_limit", Layer: lSupervise,
		check: stdoutExactly(1 << 20)},
	{Name: "endless stderr", Invariant: 8, From: "payload", payload: "flood-stderr",
		limits: sandbox.Limits{OutputBytes: 1 << 20, Timeout: 20 * time.Second},
		What:   "write stderr (never stdout) without end (cap 1 MiB)", Expect: "outcome output_limit", Layer: lSupervise,
		check: stderrExactly(1 << 20)},
	{Name: "forged ok, then output flood", Invariant: 8, From: "payload", payload: "forge-then-flood",
		limits: sandbox.Limits{OutputBytes: 1 << 20, Timeout: 20 * time.Second},
		What:   "write an ok report to the result pipe, then stdout past the cap (1 MiB)", Expect: "outcome output_limit", Layer: lSupervise,
		check: both(notForged, stdoutExactly(1<<20))},
	{Name: "guest loop past the wall clock", Invariant: 8, From: "module", module: sharedModule("loop.wasm"),
		limits: sandbox.Limits{Timeout: time.Second}, What: "an endless loop, timeout 1s", Expect: "outcome timeout", Layer: lSupervise},
	{Name: "guest loop past CPU time", Invariant: 8, From: "module", module: sharedModule("loop.wasm"),
		limits: sandbox.Limits{CPUTime: time.Second, Timeout: 10 * time.Second}, What: "an endless loop, --cpu-time 1s", Expect: "outcome cpu_limit", Layer: lSupervise},
	{Name: "guest output flood", Invariant: 8, From: "module", module: sharedModule("spam.wasm"),
		limits: sandbox.Limits{OutputBytes: 4096}, What: "write stdout forever (cap 4 KiB)", Expect: "outcome output_limit", Layer: lWazero,
		check: stdoutExactly(4096)},

	// 9. Cleanup, and every way a module can end (none of them sandbox_error).
	{Name: "abort leaves no core", Invariant: 9, From: "payload", payload: "abort", args: []string{"/dirs/0"},
		limits: quick, setup: withWritableDir,
		What: "SIGABRT, then a real SIGSEGV, with default actions", Expect: "outcome sandbox_error", Layer: lNoDump,
		check: noCore},
	{Name: "native sleeper killed at timeout", Invariant: 9, From: "payload", payload: "sleep-forever",
		limits: sandbox.Limits{Timeout: time.Second}, What: "outlive the task", Expect: "outcome timeout", Layer: lSupervise},
	{Name: "guest sleeper killed at timeout", Invariant: 9, From: "module", module: suiteModule("sleeper.wasm"),
		limits: sandbox.Limits{Timeout: time.Second}, What: "poll_oneoff for 60 s", Expect: "outcome timeout", Layer: lSupervise},
	{Name: "guest cancelled", Invariant: 9, From: "module", module: sharedModule("loop.wasm"), cancel: true,
		What: "the caller cancels a running loop", Expect: "outcome cancelled", Layer: lSupervise},
	{Name: "guest returns", Invariant: 9, From: "module", module: sharedModule("hello.wasm"),
		What: "a normal end", Expect: "outcome ok", Layer: lWazero},
	{Name: "guest exit 3", Invariant: 9, From: "module", module: sharedModule("exit3.wasm"),
		What: "proc_exit(3)", Expect: "outcome exit 3", Layer: lWazero},
	{Name: "guest proc_exit 0xffffffff", Invariant: 9, From: "module", module: generated(func() []byte { return procExit(0xffffffff) }),
		What: "wazero's reserved 'context cancelled' code", Expect: "outcome exit 4294967295", Layer: lWazero},
	{Name: "guest proc_exit 0xefbeadde", Invariant: 9, From: "module", module: generated(func() []byte { return procExit(0xefbeadde) }),
		What: "wazero's reserved 'deadline exceeded' code", Expect: "outcome exit 4022250974", Layer: lWazero},
	{Name: "guest unreachable", Invariant: 9, From: "module", module: sharedModule("trap.wasm"),
		What: "a trap", Expect: "outcome trap", Layer: lWazero},
	{Name: "guest stack overflow", Invariant: 9, From: "module", module: sharedModule("stackoverflow.wasm"),
		What: "unbounded recursion", Expect: "outcome trap", Layer: lWazero},
	{Name: "malformed: garbage", Invariant: 9, From: "module", module: sharedModule("invalid.wasm"),
		What: "bytes that are not wasm", Expect: "outcome invalid_module", Layer: lWazero},
	{Name: "malformed: truncated", Invariant: 9, From: "module", module: generated(truncatedModule),
		What: "a module cut inside its code section", Expect: "outcome invalid_module", Layer: lWazero},
	{Name: "malformed: section past end", Invariant: 9, From: "module", module: generated(sectionPastEnd),
		What: "a section claiming 4 GiB", Expect: "outcome invalid_module", Layer: lWazero},
	{Name: "malformed: bad version", Invariant: 9, From: "module", module: generated(badVersion),
		What: "wasm magic, version 0xffffffff", Expect: "outcome invalid_module", Layer: lWazero},
	{Name: "malformed: ELF", Invariant: 9, From: "module", module: generated(elfBytes),
		What: "a native binary submitted as a module", Expect: "outcome invalid_module", Layer: lWazero},
}

// TestAttacks runs every row of the table and asserts its Expect exactly.
func TestAttacks(t *testing.T) {
	runRows(t, attacks)
}

// TestAttackTableShape keeps the table honest: unique names, known invariants and sources,
// and both a module row and a payload row for every invariant.
func TestAttackTableShape(t *testing.T) {
	if len(attacks) < 40 {
		t.Errorf("%d attacks, want at least 40", len(attacks))
	}
	seen := map[string]bool{}
	from := map[int]map[string]bool{}
	for _, a := range attacks {
		switch {
		case seen[a.Name]:
			t.Errorf("duplicate attack name %q", a.Name)
		case a.Invariant < 1 || a.Invariant > 9:
			t.Errorf("%s: invariant %d", a.Name, a.Invariant)
		case a.From == "payload" && attackPayloads[a.payload] == nil && wallPayloads[a.payload] == nil && argPayloads[a.payload] == nil &&
			execPayloads[a.payload] == nil:
			t.Errorf("%s: no payload %q", a.Name, a.payload)
		case a.From == "module" && a.module == nil:
			t.Errorf("%s: no module", a.Name)
		case a.From != "payload" && a.From != "module":
			t.Errorf("%s: from %q", a.Name, a.From)
		case a.What == "" || a.Expect == "" || a.Layer == "":
			t.Errorf("%s: empty What, Expect or Layer", a.Name)
		}
		seen[a.Name] = true
		if from[a.Invariant] == nil {
			from[a.Invariant] = map[string]bool{}
		}
		from[a.Invariant][a.From] = true
	}
	for inv := 1; inv <= 9; inv++ {
		if !from[inv]["payload"] || !from[inv]["module"] {
			t.Errorf("invariant %d: payload row %t, module row %t; want both", inv, from[inv]["payload"], from[inv]["module"])
		}
	}
}

// --- checks ---

// noHostEntry checks that the task left no name in its first preopen on the host.
func noHostEntry(name string) func(*testing.T, job, sandbox.Result) {
	return func(t *testing.T, j job, _ sandbox.Result) {
		if _, err := os.Lstat(filepath.Join(j.Dirs[0].HostPath, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("the task left %s in its preopen on the host (lstat: %v)", name, err)
		}
	}
}

func messageHas(fragment string) func(*testing.T, job, sandbox.Result) {
	return func(t *testing.T, _ job, res sandbox.Result) {
		if !strings.Contains(res.Message, fragment) {
			t.Fatalf("message %q lacks %q", res.Message, fragment)
		}
	}
}

func stdoutExactly(n int) func(*testing.T, job, sandbox.Result) {
	return func(t *testing.T, _ job, res sandbox.Result) {
		if len(res.Stdout) != n || !res.StdoutTruncated {
			t.Fatalf("stdout %d bytes (truncated %t), want exactly the cap %d, truncated", len(res.Stdout), res.StdoutTruncated, n)
		}
	}
}

// fileSizeCapped: the file on the host stopped at the limit.
func fileSizeCapped(n int64) func(*testing.T, job, sandbox.Result) {
	return func(t *testing.T, j job, _ sandbox.Result) {
		st, err := os.Stat(filepath.Join(j.Dirs[0].HostPath, "big"))
		if err != nil || st.Size() != n {
			t.Fatalf("host file: %v, size %d; want %d", err, sizeOf(st), n)
		}
	}
}

func sizeOf(st os.FileInfo) int64 {
	if st == nil {
		return -1
	}
	return st.Size()
}

// noCore: the child died of SIGSEGV (after SIGABRT was ignored) and left no core file in
// the only place it could write, nor in the supervisor's working directory.
func noCore(t *testing.T, j job, res sandbox.Result) {
	if !strings.Contains(res.Message, "killed by signal segmentation fault") {
		t.Fatalf("message %q: want death by SIGSEGV", res.Message)
	}
	if f, ok := lastFinding(res.Stdout); !ok || f.Result != "SIGABRT ignored by pid 1" {
		t.Fatalf("stdout %q: want the payload's note that SIGABRT was ignored", res.Stdout)
	}
	for _, dir := range []string{j.Dirs[0].HostPath, "."} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "core") {
				t.Fatalf("core file %s in %s", e.Name(), dir)
			}
		}
	}
}

// --- neighbours ---

// abstractNeighbour starts a task (without seccomp, so it can) that listens on an abstract
// unix socket, and names it to the attacker.
func abstractNeighbour(t *testing.T, sb *sandbox.Sandbox, j *job) {
	name := "agentbox-victim"
	neighbour(t, sb, "abstract-victim", []string{name}, testhook.Unsafe{NoSeccomp: true})
	j.Args = append(j.Args, name)
}

// sleepingNeighbour starts a task that sleeps and gives its host pid to the attacker.
func sleepingNeighbour(t *testing.T, sb *sandbox.Sandbox, j *job) {
	pid := neighbour(t, sb, "sleep-forever", nil, testhook.Unsafe{})
	j.Args = append(j.Args, strconv.Itoa(pid))
}
