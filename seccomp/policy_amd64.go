package seccomp

// Linux ABI constants the table conditions on. They are spelled out here,
// not taken from x/sys/unix, so the table builds on every GOOS (it is data;
// only Load and Compile are Linux-only).
const (
	// goThreadFlags is the exact flag word of every clone the Go runtime
	// makes (newosproc): cloneFlags in runtime/os_linux.go, CLONE_VM |
	// CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_SYSVSEM | CLONE_THREAD,
	// plus the CLONE_SETTLS that runtime·clone ORs in on amd64
	// (sys_linux_amd64.s). gVisor's runsc pins the same word.
	goThreadFlags = 0x00000100 | 0x00000200 | 0x00000400 | 0x00000800 | 0x00040000 | 0x00010000 | 0x00080000

	protWrite = 0x2
	protExec  = 0x4

	futexWaitPrivate = 0x80 // FUTEX_WAIT | FUTEX_PRIVATE_FLAG
	futexWakePrivate = 0x81 // FUTEX_WAKE | FUTEX_PRIVATE_FLAG

	madvDontneed   = 4
	madvFree       = 8
	madvHugepage   = 14
	madvNohugepage = 15

	fGetFD = 1
	fSetFD = 2
	fGetFL = 3
	fSetFL = 4

	prSetVMA         = 0x53564d41
	prSetVMAAnonName = 0
	prSetSeccomp     = 22

	seccompSetModeFilter  = 1 // SECCOMP_SET_MODE_FILTER
	seccompFilterFlagSync = 1 // SECCOMP_FILTER_FLAG_TSYNC
)

// Default returns the allowlist for this binary re-executed as the sandboxed
// child: the Go runtime (go1.26, a static build: no cgo, so the runtime makes
// its own threads and glibc is not there) and wazero's compiler engine running
// one WASI preview 1 module with preopened directories. The set was taken
// from strace -f of the child running every module of the test corpus, then
// checked by the security suite, which runs the same child under it.
//
// Not in the table means ENOSYS. Each entry says who needs it. Left out on
// purpose: glibc's clone flags, rseq and set_robust_list, which only a cgo
// build calls once the filter is on (the victim test in this package, a cgo
// binary whose threads glibc starts, adds them back for itself alone); and
// sched_getaffinity, clock_nanosleep, readv, writev, epoll_wait, prlimit64
// reads and the futex bitset ops, which neither build calls by then.
func Default() Policy {
	var rules []Rule
	rules = append(rules, runtimeRules()...)
	rules = append(rules, memoryRules()...)
	rules = append(rules, fileRules()...)
	rules = append(rules, deniedRules()...)
	rules = append(rules, stackRules()...)
	rules = append(rules, killRules()...)
	return Policy{Rules: rules}
}

// stackRules let stage two stack NoNewExec on top of this filter, once, and
// nothing else: exactly seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC),
// the call seccomp.Stack makes. No guest instruction runs before NoNewExec is in
// place, and NoNewExec refuses every seccomp call after it; a filter can only
// narrow what this one allows, and the pinned flags exclude NEW_LISTENER (user
// notification: decisions handed to another process), SPEC_ALLOW (speculation
// mitigations off) and LOG.
func stackRules() []Rule {
	return []Rule{
		{Names: []string{"seccomp"}, Action: Allow,
			When:   []Cond{{Arg: 0, Op: Equal, Value: seccompSetModeFilter}, {Arg: 1, Op: Equal, Value: seccompFilterFlagSync}},
			Reason: "stage two stacks the no-new-exec filter (NoNewExec, TSYNC: every thread) before the guest's first instruction; that filter then refuses seccomp"},
		{Names: []string{"seccomp"}, Action: EPERM,
			When:   []Cond{{Arg: 0, Op: NotEqual, Value: seccompSetModeFilter}},
			Reason: "strict mode, GET_ACTION_AVAIL, GET_NOTIF_SIZES: not needed"},
		{Names: []string{"seccomp"}, Action: EPERM,
			When:   []Cond{{Arg: 0, Op: Equal, Value: seccompSetModeFilter}, {Arg: 1, Op: NotEqual, Value: seccompFilterFlagSync}},
			Reason: "a filter with other flags: NEW_LISTENER (user notification), SPEC_ALLOW, LOG, or on one thread only"},
	}
}

// NoNewExec returns the filter stage two stacks on Sandboxed once the guest is
// compiled (or its code loaded from the cache) and before it is instantiated,
// so before its first instruction: a denylist (Otherwise: Allow; the filter
// below still decides everything else) that refuses every new executable
// mapping and every further filter. wazero maps code only while compiling
// (mmap RW, then mprotect RX), so after that nothing legitimate asks for
// PROT_EXEC, and a guest that escaped wazero cannot turn a page it wrote into
// code (RW then RX, which W^X alone allows). gVisor's runsc stacks
// DenyNewExecMappings for the same reason.
func NoNewExec() Policy {
	var rules []Rule
	for _, name := range []string{"mmap", "mprotect", "pkey_mprotect"} {
		rules = append(rules, Rule{Names: []string{name}, Action: EPERM,
			When:   []Cond{{Arg: 2, Op: MaskedEqual, Mask: protExec, Value: protExec}},
			Reason: "no new executable mapping once the guest's code is in place (map RW, write, flip to RX)"})
	}
	rules = append(rules,
		Rule{Names: []string{"seccomp"}, Action: EPERM,
			Reason: "no further filter: this one is the last (the filter below allows exactly the call that installed it)"},
		Rule{Names: []string{"prctl"}, Action: EPERM, When: []Cond{{Arg: 0, Op: Equal, Value: prSetSeccomp}},
			Reason: "PR_SET_SECCOMP, the older door to the same (already EPERM below)"},
	)
	return Policy{Rules: rules, Otherwise: Allow}
}

// runtimeRules are what the Go runtime needs once it is running: threads,
// locks, signals, sleeps, the netpoller. Its start-up calls (arch_prctl,
// sched_getaffinity, reading RLIMIT_NOFILE) run before stage two installs the
// filter, and so do epoll_create1 and eventfd2, once (stage two's startNetpoller).
// sysmon would call sched_getaffinity again every second to update
// GOMAXPROCS, but not when the environment sets it, as the child's does.
func runtimeRules() []Rule {
	return []Rule{
		{Names: []string{"clone"}, Action: Allow, When: []Cond{{Arg: 0, Op: Equal, Value: goThreadFlags}},
			Reason: "new OS threads: Go newosproc's exact flags (CLONE_VM, FS, FILES, SIGHAND, SYSVSEM, THREAD, SETTLS)"},
		{Names: []string{"clone"}, Action: EPERM, When: []Cond{{Arg: 0, Op: NotListed}},
			Reason: "any other flags: fork (invariant 6), CLONE_VFORK, CLONE_PIDFD, CLONE_PARENT, CLONE_NEW* namespaces…"},
		{Names: []string{"clone3"}, Action: ENOSYS,
			Reason: "its flags sit in memory seccomp cannot read; the Go runtime never calls it, glibc falls back to clone on ENOSYS"},
		{Names: []string{"exit", "exit_group"}, Action: Allow, Reason: "thread exit and process exit"},
		{Names: []string{"futex"}, Action: Allow, When: []Cond{{Arg: 1, Op: Equal, Value: futexWaitPrivate}},
			Reason: "Go runtime futexsleep (locks, notes, timers): FUTEX_WAIT_PRIVATE"},
		{Names: []string{"futex"}, Action: Allow, When: []Cond{{Arg: 1, Op: Equal, Value: futexWakePrivate}},
			Reason: "Go runtime futexwakeup: FUTEX_WAKE_PRIVATE"},
		{Names: []string{"futex"}, Action: EPERM, When: []Cond{{Arg: 1, Op: NotListed}},
			Reason: "every other op: requeue and PI (past CVEs), bitset, shared (non-private) waits"},
		{Names: []string{"gettid", "getpid"}, Action: Allow,
			Reason: "Go runtime: thread ids for signalM/tgkill and lock ranking"},
		{Names: []string{"sched_yield"}, Action: Allow, Reason: "Go runtime osyield in spin loops"},
		{Names: []string{"rt_sigaction", "rt_sigprocmask", "sigaltstack"}, Action: Allow,
			Reason: "Go runtime signal setup on every new M (minit) and around clone"},
		{Names: []string{"rt_sigreturn"}, Action: Allow, Reason: "return from every signal handler (SIGURG preemption)"},
		{Names: []string{"restart_syscall"}, Action: Allow,
			Reason: "kernel restarts nanosleep/futex interrupted by a signal through it"},
		{Names: []string{"tgkill"}, Action: Allow,
			Reason: "Go runtime preempts its own threads (SIGURG) and raise(); see Policy.SignalSelfOnly to pin the pid"},
		{Names: []string{"nanosleep"}, Action: Allow,
			Reason: "Go runtime usleep (sysmon, spinning Ms); time.Sleep and WASI poll_oneoff wait on timers instead"},
		{Names: []string{"clock_gettime", "gettimeofday"}, Action: Allow,
			Reason: "fallbacks when the vDSO cannot answer; WASI clock_time_get"},
		{Names: []string{"getrandom"}, Action: Allow, Reason: "Go runtime seed, crypto/rand, WASI random_get"},
		{Names: []string{"epoll_ctl", "epoll_pwait"}, Action: Allow,
			Reason: "Go netpoller (its epoll_create1 and eventfd2 run once, before the filter, in stage two's startNetpoller)"},
		{Names: []string{"ppoll"}, Action: Allow, Reason: "wazero poll_oneoff on stdin (sysfs poll_linux.go)"},
		{Names: []string{"prlimit64"}, Action: EPERM,
			When:   []Cond{{Arg: 2, Op: NotEqual, Value: 0}},
			Reason: "limits are set by the sandbox before the filter, never by the guest (reads are unlisted: ENOSYS)"},
		{Names: []string{"prctl"}, Action: Allow,
			When:   []Cond{{Arg: 0, Op: Equal, Value: prSetVMA}, {Arg: 1, Op: Equal, Value: prSetVMAAnonName}},
			Reason: "Go runtime names its anonymous mappings (harmless; fails with EINVAL on older kernels)"},
		{Names: []string{"prctl"}, Action: EPERM,
			When:   []Cond{{Arg: 0, Op: NotEqual, Value: prSetVMA}},
			Reason: "no dumpable/securebits/no_new_privs changes, no PR_SET_MM"},
		{Names: []string{"prctl"}, Action: EPERM,
			When:   []Cond{{Arg: 0, Op: Equal, Value: prSetVMA}, {Arg: 1, Op: NotEqual, Value: prSetVMAAnonName}},
			Reason: "other PR_SET_VMA operations"},
	}
}

// memoryRules let the runtime and wazero manage memory, never writable and
// executable at once (W^X): wazero maps code RW, writes it, then mprotects
// it RX; nothing in the child ever asks for both.
func memoryRules() []Rule {
	rules := []Rule{
		{Names: []string{"munmap"}, Action: Allow, Reason: "Go heap scavenger and wazero code/memory release"},
		{Names: []string{"madvise"}, Action: Allow, When: []Cond{{Arg: 2, Op: Equal, Value: madvDontneed}},
			Reason: "Go scavenger (sysUnused: GODEBUG madvdontneed=1 is Linux's default) and sysFault"},
		{Names: []string{"madvise"}, Action: Allow, When: []Cond{{Arg: 2, Op: Equal, Value: madvFree}},
			Reason: "Go scavenger under madvdontneed=0, falling back to MADV_DONTNEED"},
		{Names: []string{"madvise"}, Action: Allow, When: []Cond{{Arg: 2, Op: Equal, Value: madvHugepage}},
			Reason: "Go runtime: huge pages for heap metadata (sysHugePage)"},
		{Names: []string{"madvise"}, Action: Allow, When: []Cond{{Arg: 2, Op: Equal, Value: madvNohugepage}},
			Reason: "Go runtime: sysNoHugePage (metadata, GODEBUG disablethp)"},
		{Names: []string{"madvise"}, Action: EPERM, When: []Cond{{Arg: 2, Op: NotListed}},
			Reason: "other advice: MADV_MERGEABLE (KSM, a cross-tenant side channel), HWPOISON, DONTFORK, COLLAPSE…; wazero uses none"},
	}
	for _, name := range []string{"mmap", "mprotect"} {
		rules = append(rules,
			Rule{Names: []string{name}, Action: Allow, When: []Cond{{Arg: 2, Op: MaskedEqual, Mask: protExec, Value: 0}},
				Reason: "Go heap, goroutine and thread stacks, wazero linear memory: not executable"},
			Rule{Names: []string{name}, Action: Allow, When: []Cond{{Arg: 2, Op: MaskedEqual, Mask: protWrite, Value: 0}},
				Reason: "wazero compiler engine makes its finished code read+exec"},
			Rule{Names: []string{name}, Action: EPERM, When: []Cond{{Arg: 2, Op: MaskedEqual, Mask: protWrite | protExec, Value: protWrite | protExec}},
				Reason: "W^X: no writable and executable mapping"},
		)
	}
	return rules
}

// fileRules serve wazero's WASI implementation over preopened directories,
// stdio and the contract's pipes. Which paths exist is the mount namespace's
// business (an empty read-only root plus the preopens), not the filter's.
func fileRules() []Rule {
	return []Rule{
		{Names: []string{"read", "pread64"}, Action: Allow,
			Reason: "WASI fd_read/fd_pread; module bytes, spec pipe; any fd, since preopened files get fresh numbers"},
		{Names: []string{"write", "pwrite64"}, Action: Allow,
			Reason: "WASI fd_write/fd_pwrite on stdio and preopened files; the result pipe"},
		{Names: []string{"openat", "close"}, Action: Allow, Reason: "WASI path_open/fd_close within preopens; os.File"},
		{Names: []string{"lseek"}, Action: Allow, Reason: "WASI fd_seek and fd_readdir rewind"},
		{Names: []string{"fstat", "newfstatat"}, Action: Allow,
			Reason: "WASI fd_filestat_get/path_filestat_get, fd_fdstat_get (isatty by mode), os.Stat"},
		{Names: []string{"getdents64"}, Action: Allow, Reason: "WASI fd_readdir"},
		{Names: []string{"fsync", "fdatasync"}, Action: Allow, Reason: "WASI fd_sync/fd_datasync"},
		{Names: []string{"ftruncate"}, Action: Allow, Reason: "WASI fd_filestat_set_size, path_open with O_TRUNC"},
		{Names: []string{"utimensat"}, Action: Allow, Reason: "WASI fd_filestat_set_times/path_filestat_set_times"},
		{Names: []string{"mkdirat", "unlinkat"}, Action: Allow,
			Reason: "WASI path_create_directory, path_remove_directory, path_unlink_file"},
		{Names: []string{"renameat", "readlinkat"}, Action: Allow, Reason: "WASI path_rename, path_readlink"},
		{Names: []string{"linkat"}, Action: Allow, When: []Cond{{Arg: 4, Op: Equal, Value: 0}},
			Reason: "WASI path_link (os.Link passes flags 0: never AT_SYMLINK_FOLLOW or AT_EMPTY_PATH)"},
		{Names: []string{"linkat"}, Action: EPERM, When: []Cond{{Arg: 4, Op: NotEqual, Value: 0}},
			Reason: "AT_EMPTY_PATH links an open fd anywhere; AT_SYMLINK_FOLLOW links a symlink's target"},
		{Names: []string{"symlinkat"}, Action: EPERM,
			Reason: "nothing legitimate makes one (wasm/fs.go refuses WASI path_symlink): a link left in a preopen is followed by the host"},
		{Names: []string{"fcntl"}, Action: Allow, When: []Cond{{Arg: 1, Op: Equal, Value: fGetFD}},
			Reason: "os.NewFile and close-on-exec checks"},
		{Names: []string{"fcntl"}, Action: Allow, When: []Cond{{Arg: 1, Op: Equal, Value: fSetFD}},
			Reason: "close-on-exec on fds wazero opens"},
		{Names: []string{"fcntl"}, Action: Allow, When: []Cond{{Arg: 1, Op: Equal, Value: fGetFL}},
			Reason: "os.NewFile (kind detection), WASI fd_fdstat_get"},
		{Names: []string{"fcntl"}, Action: Allow, When: []Cond{{Arg: 1, Op: Equal, Value: fSetFL}},
			Reason: "syscall.SetNonblock for the netpoller, WASI fd_fdstat_set_flags"},
		{Names: []string{"fcntl"}, Action: EPERM, When: []Cond{{Arg: 1, Op: Equal, Value: 0}},
			Reason: "F_DUPFD: not needed"},
		{Names: []string{"fcntl"}, Action: EPERM, When: []Cond{{Arg: 1, Op: Greater, Value: fSetFL}},
			Reason: "locks, leases, F_SETOWN (SIGIO to other processes), F_SETPIPE_SZ…: not needed"},
	}
}

// deniedRules are deliberate denials (EPERM): things a library might probe
// and should see fail cleanly, and the usual container-escape primitives.
func deniedRules() []Rule {
	return []Rule{
		{Names: []string{"socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
			"sendto", "recvfrom", "sendmsg", "recvmsg", "getsockopt", "setsockopt", "shutdown"}, Action: EPERM,
			Reason: "no network and no abstract unix sockets (invariants 3 and 4)"},
		{Names: []string{"ioctl"}, Action: EPERM,
			Reason: "neither Go nor wazero uses it on pipes or files (strace); TIOCSTI injection, driver surface"},
		{Names: []string{"unshare", "setns"}, Action: EPERM, Reason: "namespaces are set up by the sandbox, once"},
		{Names: []string{"mount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount",
			"fspick", "move_mount", "open_tree", "mount_setattr"}, Action: EPERM,
			Reason: "the mount tree is fixed before the filter (invariant 1)"},
		{Names: []string{"execve", "execveat", "fork", "vfork"}, Action: EPERM,
			Reason: "no new programs or processes (invariant 6)"},
		{Names: []string{"kill", "tkill", "pidfd_open", "pidfd_send_signal", "pidfd_getfd"}, Action: EPERM,
			Reason: "no signals or fd theft across processes (invariant 4); the runtime uses tgkill"},
		{Names: []string{"ptrace", "process_vm_readv", "process_vm_writev", "kcmp"}, Action: EPERM,
			Reason: "no inspection of other processes"},
		{Names: []string{"keyctl", "add_key", "request_key"}, Action: EPERM,
			Reason: "kernel keyrings are not namespaced"},
		{Names: []string{"bpf", "perf_event_open", "userfaultfd"}, Action: EPERM,
			Reason: "large kernel attack surface, exploit building blocks (userfaultfd stalls kernel copies)"},
		{Names: []string{"io_uring_setup", "io_uring_enter", "io_uring_register"}, Action: EPERM,
			Reason: "io_uring bypasses this filter for the ops it runs and has a long CVE list"},
		{Names: []string{"memfd_create", "memfd_secret"}, Action: EPERM,
			Reason: "no anonymous executable files (and W^X would be moot with shared mappings)"},
		{Names: []string{"setrlimit", "setpriority", "sched_setaffinity", "sched_setscheduler", "sched_setattr"}, Action: EPERM,
			Reason: "limits and scheduling are set by the sandbox"},
		{Names: []string{"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
			"setfsuid", "setfsgid", "setgroups", "capset"}, Action: EPERM,
			Reason: "credentials are dropped by the sandbox before the filter"},
		{Names: []string{"mknod", "mknodat", "name_to_handle_at"}, Action: EPERM,
			Reason: "no device nodes; file handles lead to open_by_handle_at"},
		{Names: []string{"personality", "syslog", "quotactl", "acct"}, Action: EPERM,
			Reason: "no ABI switches, kernel log, quotas or accounting"},
		{Names: []string{"modify_ldt"}, Action: EPERM, Reason: "16-bit segments: old exploit surface, unused"},
	}
}

// killRules are calls only an escape attempt would make: the process dies.
func killRules() []Rule {
	return []Rule{
		{Names: []string{"kexec_load", "kexec_file_load", "reboot"}, Action: KillProcess,
			Reason: "replaces or stops the host kernel"},
		{Names: []string{"init_module", "finit_module", "delete_module"}, Action: KillProcess,
			Reason: "loads code into the host kernel"},
		{Names: []string{"swapon", "swapoff"}, Action: KillProcess, Reason: "host memory configuration"},
		{Names: []string{"iopl", "ioperm"}, Action: KillProcess, Reason: "raw hardware port access"},
		{Names: []string{"open_by_handle_at"}, Action: KillProcess,
			Reason: "the 'shocker' escape: opens host files by handle, past the mount namespace"},
		{Names: []string{"settimeofday", "clock_settime", "clock_adjtime", "adjtimex"}, Action: KillProcess,
			Reason: "host clock is not namespaced"},
		{Names: []string{"uselib", "lookup_dcookie", "_sysctl"}, Action: KillProcess,
			Reason: "obsolete calls with exploit history"},
	}
}
