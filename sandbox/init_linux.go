package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/seccomp"
	"github.com/agentbox/agentbox/wasm"
)

// Init must be the first call in main (and in TestMain of any test that spawns tasks). In
// the supervisor it returns at once; in a re-executed sandbox child it sets the child up,
// runs the guest and exits, never returning.
func Init(opts ...InitOption) {
	if len(os.Args) != 3 || os.Args[1] != initArg {
		return
	}
	var cfg initConfig
	for _, o := range opts {
		o(&cfg)
	}
	// Stage one changes per-thread state (capabilities, securebits) and then execs from
	// this very thread, so it must not migrate.
	runtime.LockOSThread()
	var err error
	switch os.Args[2] {
	case stageSetup:
		err = stageOne()
	case stageGuest:
		err = stageTwo(cfg)
	case stageHot:
		err = hotStage(cfg)
	case stageProbe:
		os.Exit(0) // `agentbox check`: the namespaces were created, nothing more to do
	case stageSpeculation:
		os.Exit(speculationProbe())
	default:
		err = fmt.Errorf("unknown init stage %q", os.Args[2])
	}
	report(wireResult{Outcome: outcome.SandboxError, Message: "sandbox child: " + err.Error()})
	os.Exit(1)
}

// reportOnce writes the result pipe at most once: the guest's end and the CPU-time signal
// race to it.
var reportOnce sync.Once

// report sends the verdict to the supervisor.
func report(r wireResult) {
	reportOnce.Do(func() {
		f := os.NewFile(fdResult, "result")
		f.Write(encodeResult(r))
		f.Close()
	})
}

// stageOne runs as root of the new user namespace, with every capability in it: it waits
// for its task (the supervisor places it in its cgroup first, and a pooled child waits
// there until a task comes), builds the empty root, sets rlimits, drops every capability
// and execs stage two from the sealed binary.
func stageOne() error {
	raw, spec, trees, err := receiveTask()
	if err != nil {
		return err
	}
	// posture is what the best-effort steps achieved, the last thing stage one reports.
	var posture Posture
	steps := []struct {
		name string
		do   func() error
	}{
		{"close inherited fds", func() error {
			if spec.Unsafe.KeepInheritedFDs {
				return nil
			}
			return closeInherited(fdExe + 1)
		}},
		{"oom_score_adj", func() error { return os.WriteFile("/proc/self/oom_score_adj", []byte("1000"), 0) }},
		{"hostname", func() error { return unix.Sethostname([]byte("agentbox")) }},
		{"time namespace", func() (err error) { // before mounts: it writes /proc/self
			posture.TimeNamespace, err = newTimeNamespace()
			return err
		}},
		{"mounts", func() error { return setupRoot(spec, trees) }},
		{"rlimits", func() error { return setRlimits(spec.Limits) }},
		{"capabilities", func() error {
			if spec.Unsafe.KeepCapabilities {
				return nil
			}
			return dropCapabilities()
		}},
		{"no_new_privs", func() error { return unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }},
		{"speculation control", func() error {
			if !spec.AllowSpeculation {
				restrictSpeculation() // best effort: the host's kernel and CPU decide what is possible
			}
			posture.StoreBypass = speculationState(unix.PR_SPEC_STORE_BYPASS)
			posture.IndirectBranch = speculationState(unix.PR_SPEC_INDIRECT_BRANCH)
			return nil
		}},
		{"spec for stage two", func() error {
			if spec.Hot {
				return nil // stage two reads its own frame from the socket, which stays
			}
			return respec(raw)
		}},
		{"landlock", func() (err error) { // last of the walls: see landlock_linux.go
			posture.LandlockABI, err = enterLandlock(spec)
			return err
		}},
		// Last: the guest runs only after this line is in the pipe (wirePosture).
		{"report posture", func() error { return writeAll(fdResult, encodePosture(posture)) }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("stage one, %s: %w", s.name, err)
		}
	}
	if spec.Hot {
		return execSelf(spec.Limits, stageHot)
	}
	return execSelf(spec.Limits, stageGuest)
}

// maxHandoffFDs bounds the descriptors of one handoff: the module and one tree per --dir,
// plus the cache.
const maxHandoffFDs = 1 + MaxDirs + 1

// receiveTask waits on fdSpec for the handoff (taskByte): the module and the directory
// trees, then the spec. The module goes to fdModule, over its placeholder; the trees keep
// the numbers they arrived on, which only stage one uses (setupRoot closes them).
func receiveTask() (raw []byte, spec wireSpec, trees []int, err error) {
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4*maxHandoffFDs))
	var n, oobn, flags int
	for {
		n, oobn, flags, _, err = unix.Recvmsg(fdSpec, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, spec, nil, fmt.Errorf("receive the task: %w", err)
	}
	fds, perr := unixRights(oob[:oobn])
	defer func() {
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
		}
	}()
	switch {
	case perr != nil:
		return nil, spec, fds, fmt.Errorf("receive the task: %w", perr)
	case n == 0:
		return nil, spec, fds, errors.New("receive the task: the supervisor closed the spec socket first")
	case buf[0] != taskByte:
		return nil, spec, fds, fmt.Errorf("receive the task: byte %q, want %q", buf[0], taskByte)
	case flags&unix.MSG_CTRUNC != 0:
		return nil, spec, fds, fmt.Errorf("receive the task: more than %d descriptors", maxHandoffFDs)
	}
	if raw, err = readFrame(fdReader(fdSpec), maxSpecBytes); err != nil {
		return nil, spec, fds, fmt.Errorf("read spawn spec: %w", err)
	}
	if spec, err = decodeSpec(raw); err != nil {
		return nil, spec, fds, err
	}
	if len(fds) != 1+spec.bindCount() {
		return nil, spec, fds, fmt.Errorf("receive the task: %d descriptors for a spec with %d trees, want the module and each tree", len(fds), spec.bindCount())
	}
	if err = unix.Dup3(fds[0], fdModule, 0); err != nil {
		return nil, spec, fds, fmt.Errorf("module to fd %d: %w", fdModule, err)
	}
	unix.Close(fds[0])
	return raw, spec, fds[1:], nil
}

// unixRights lists the descriptors of every SCM_RIGHTS message in oob.
func unixRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for i := range msgs {
		r, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			return fds, err
		}
		fds = append(fds, r...)
	}
	return fds, nil
}

// fdReader reads a descriptor with no os.File around it: fdSpec is replaced (respec)
// while stage one runs, and an os.File's finalizer would close the new one.
type fdReader int

func (f fdReader) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(int(f), p)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// writeAll writes b to the descriptor fd, which stays open (report closes it).
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// closeInherited makes every descriptor from first up close at the exec into stage two,
// so that the guest's process holds exactly the contract's (runc CVE-2024-21626). Not
// closed here and now: the Go runtime's own poller descriptor is among them once anything
// used the poller (a timer in some package's init, a pipe), and closing it under the
// runtime kills the child at sysmon's next poll ("fatal error: runtime: netpoll failed",
// seen in about one run in five under load). Stage one runs no untrusted code.
func closeInherited(first int) error {
	err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err != unix.EINVAL {
		return err
	}
	// Linux 5.10 has close_range but not CLOSE_RANGE_CLOEXEC (5.11): mark them one by one.
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list inherited fds: %w", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < first {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && err != unix.EBADF {
			return fmt.Errorf("mark fd %d close-on-exec: %w", fd, err)
		}
	}
	return nil
}

// setupRoot gives the child an empty, read-only tmpfs as its root, with only the preopened
// directories and the compile cache bound into it. There is no /proc, /sys or /dev.
func setupRoot(s wireSpec, trees []int) error {
	binds := s.bindPoints()
	for i := range binds {
		binds[i].fd = trees[i]
	}
	defer func() {
		for _, b := range binds {
			unix.Close(b.fd)
		}
	}()
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	const locked = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if err := unix.Mount("agentbox", newRootDir, "tmpfs", locked, "size=64k,nr_inodes=128,mode=0755"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", newRootDir, err)
	}
	for _, b := range binds {
		if err := bindInto(b); err != nil {
			return err
		}
	}
	return pivot()
}

// bindInto attaches a detached mount tree from the supervisor at its place beneath the new
// root. Its flags (read-only, nosuid, nodev, noexec) were set before it was handed over.
func bindInto(b bindPoint) error {
	target := newRootDir + b.mount
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", b.mount, err)
	}
	if err := unix.MoveMount(b.fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount fd %d to %s: %w", b.fd, b.mount, err)
	}
	return nil
}

// pivot makes the tmpfs the root and detaches the host's, using the pivot_root(".", ".")
// idiom from runc (no put_old directory needed), then makes the root read-only.
func pivot() error {
	if err := unix.Chdir(newRootDir); err != nil {
		return fmt.Errorf("chdir new root: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	const ro = unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if err := unix.Mount("", "/", "", ro, ""); err != nil {
		return fmt.Errorf("remount / read-only: %w", err)
	}
	return nil
}

// setRlimits bounds what the per-process kernel limits can bound. Memory, CPU share and
// pids are the cgroup's job; these cover files and cores.
func setRlimits(l Limits) error {
	limits := []struct {
		name     string
		resource int
		value    uint64
	}{
		{"NOFILE", unix.RLIMIT_NOFILE, 256},
		{"FSIZE", unix.RLIMIT_FSIZE, l.FileSizeBytes},
		{"CORE", unix.RLIMIT_CORE, 0},
		{"MEMLOCK", unix.RLIMIT_MEMLOCK, 0},
		{"MSGQUEUE", unix.RLIMIT_MSGQUEUE, 0},
	}
	if l.CPUTime > 0 {
		// RLIMIT_CPU counts the process's CPU time since it started, and the exec does not
		// reset it: what stage one used (a pooled child's long wait) is not the task's.
		// It is the coarse backstop; the cgroup's count, read every 20 ms with the
		// handoff's use set aside, is the limit a task meets first.
		secs := cpuLimitSeconds(l.CPUTime, processCPU())
		limits = append(limits, struct {
			name     string
			resource int
			value    uint64
		}{"CPU", unix.RLIMIT_CPU, secs})
	}
	for _, r := range limits {
		lim := unix.Rlimit{Cur: r.value, Max: r.value}
		if r.resource == unix.RLIMIT_CPU {
			lim.Max = r.value + 1 // SIGXCPU at the soft limit, SIGKILL a second later
		}
		if err := unix.Setrlimit(r.resource, &lim); err != nil {
			return fmt.Errorf("RLIMIT_%s=%d: %w", r.name, r.value, err)
		}
	}
	return nil
}

// cpuLimitSeconds is the RLIMIT_CPU soft limit for a task's CPU-time limit in a process
// that used used before it: whole seconds, rounded up, never below the two together.
func cpuLimitSeconds(limit, used time.Duration) uint64 {
	return uint64((limit + used + time.Second - 1) / time.Second)
}

// processCPU is the CPU time this process has used so far, user and system.
func processCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Securebits (linux/securebits.h; not in x/sys).
const (
	secbitNoRoot             = 1 << 0
	secbitNoRootLocked       = 1 << 1
	secbitNoSetuidFixup      = 1 << 2
	secbitNoSetuidFixupLock  = 1 << 3
	secbitKeepCapsLocked     = 1 << 5
	secbitNoCapAmbientRaise  = 1 << 6
	secbitNoCapAmbientLocked = 1 << 7
)

// dropCapabilities empties this thread's bounding, ambient, inheritable, permitted and
// effective sets and locks root out of regaining them on exec. These are per-thread; the
// exec that follows gives the whole new image this one thread's state, which is why stage
// two starts with no capabilities on any thread.
func dropCapabilities() error {
	bits := secbitNoRoot | secbitNoRootLocked | secbitNoSetuidFixupLock | secbitKeepCapsLocked |
		secbitNoCapAmbientRaise | secbitNoCapAmbientLocked
	if err := unix.Prctl(unix.PR_SET_SECUREBITS, uintptr(bits), 0, 0, 0); err != nil {
		return fmt.Errorf("securebits: %w", err)
	}
	for c := 0; ; c++ {
		if _, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0); err != nil {
			break // past the last capability this kernel knows
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("drop cap %d from bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient caps: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset to empty: %w", err)
	}
	return nil
}

// respec puts the spec bytes on fdSpec as a sealed memfd for stage two.
func respec(raw []byte) error {
	f, err := sealedMemfd("agentbox-spec", bytes.NewReader(raw))
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Dup3(int(f.Fd()), fdSpec, 0)
}

// execSelf replaces this process with stage two (or a hot child's), from the sealed binary (there is no /proc
// any more, so execveat on the descriptor, AT_EMPTY_PATH), in an environment sized to the
// task's limits: stage one's own may be a pooled child's, sized to the pool's.
func execSelf(l Limits, stage string) error {
	argv, err := syscall.SlicePtrFromStrings(childArgs(stage))
	if err != nil {
		return err
	}
	envv, err := syscall.SlicePtrFromStrings(childEnv(l))
	if err != nil {
		return err
	}
	empty, _ := unix.BytePtrFromString("")
	_, _, errno := unix.Syscall6(unix.SYS_EXECVEAT, fdExe, uintptr(unsafe.Pointer(empty)),
		uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&envv[0])), unix.AT_EMPTY_PATH, 0)
	return fmt.Errorf("execveat stage %s: %w", stage, errno)
}

// stageTwo runs with no capabilities, no_new_privs and an empty read-only root: it reads
// its inputs, installs the seccomp filter and runs the guest (or a test payload).
func stageTwo(cfg initConfig) error {
	spec, module, err := readInputs(false)
	if err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("set not dumpable: %w", err)
	}
	startNetpoller()
	watchCPU(spec.Limits)
	payload, err := cfg.payload(spec)
	if err != nil {
		return err
	}
	if err := installFilter(spec); err != nil {
		return err
	}
	if payload != nil {
		return runPayload(payload, spec)
	}
	report(runGuest(spec, module))
	os.Exit(0)
	return nil
}

// readInputs reads and closes the spec and module descriptors and the binary's. A hot
// child reads its spec as the second frame on the socket, which stays open for its task.
func readInputs(hot bool) (wireSpec, []byte, error) {
	moduleFile := os.NewFile(fdModule, "module")
	defer moduleFile.Close()
	unix.Close(fdExe)
	var raw []byte
	var err error
	if hot {
		raw, err = readFrame(fdReader(fdSpec), maxSpecBytes)
	} else {
		specFile := os.NewFile(fdSpec, "spec")
		raw, err = readCapped(specFile, maxSpecBytes)
		specFile.Close()
	}
	if err != nil {
		return wireSpec{}, nil, fmt.Errorf("read spec: %w", err)
	}
	spec, err := decodeSpec(raw)
	if err != nil {
		return spec, nil, err
	}
	module, err := io.ReadAll(moduleFile)
	if err != nil {
		return spec, nil, fmt.Errorf("read module: %w", err)
	}
	return spec, module, nil
}

// installFilter loads the seccomp program. A spec without one is refused: the sandbox never
// runs a guest unfiltered unless a negative-control test asked for exactly that.
func installFilter(spec wireSpec) error {
	if spec.Unsafe.NoSeccomp {
		return unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
	}
	if len(spec.Filter) == 0 {
		return errors.New("refusing to run without a seccomp filter")
	}
	if err := seccomp.Load(spec.Filter); err != nil {
		return fmt.Errorf("install seccomp filter: %w", err)
	}
	return nil
}

// payload is the native payload spec names, nil if it names none.
func (cfg initConfig) payload(spec wireSpec) (Payload, error) {
	if spec.Payload == "" {
		return nil, nil
	}
	if p := cfg.payloads[spec.Payload]; p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("no native payload %q is registered in this binary", spec.Payload)
}

// runPayload runs a payload where the guest would start, behind both filters, reports its
// exit and exits. A payload stands for a guest that escaped wazero: its code is already
// mapped (it is this binary's).
func runPayload(payload Payload, spec wireSpec) error {
	if err := sealExec(spec); err != nil {
		return err
	}
	code := payload(spec.Args, os.Stdin, os.Stdout, os.Stderr)
	report(exitResult(uint32(code)))
	os.Exit(0)
	return nil
}

// sealExec stacks the no-new-exec filter on the one installFilter loaded: from here on no
// thread can map anything executable or install another filter. It runs once the guest's
// code is mapped and before its first instruction; the compile-only child never calls it,
// since compiling needs new executable mappings.
func sealExec(spec wireSpec) error {
	if spec.Unsafe.NoSeccomp || spec.Unsafe.NoExecSeal {
		return nil
	}
	if err := seccomp.Stack(seccomp.NoNewExecFilter()); err != nil {
		return fmt.Errorf("stack the no-new-exec seccomp filter: %w", err)
	}
	return nil
}

// startNetpoller makes the Go runtime create its epoll instance and wakeup eventfd now,
// while the allowlist does not yet apply: it creates them on the first timer, and
// epoll_create1 and eventfd2 are not in the allowlist, so a guest's first sleep after the
// filter would kill the child ("netpollinit failed"). A timer that never fires is enough.
func startNetpoller() {
	time.AfterFunc(time.Hour, func() {}).Stop()
}

// watchCPU reports the CPU-time limit from inside when RLIMIT_CPU's soft limit sends
// SIGXCPU; the supervisor also kills from outside on the cgroup's count. The wall clock
// has no inner twin: the supervisor's deadline starts before this child does, so its kill
// always comes first (make mutate showed an inner timer was never the one that fired).
func watchCPU(l Limits) {
	if l.CPUTime <= 0 {
		return
	}
	xcpu := make(chan os.Signal, 1)
	signal.Notify(xcpu, syscall.SIGXCPU)
	go func() {
		<-xcpu
		report(wireResult{Outcome: outcome.CPULimit, Message: fmt.Sprintf("CPU-time limit of %s reached", l.CPUTime)})
		os.Exit(0)
	}()
}

// runGuest compiles and runs the module under wazero, or only compiles it into the cache.
func runGuest(spec wireSpec, module []byte) wireResult {
	ctx := context.Background()
	cfg := wasmConfig(spec)
	cfg.BeforeGuest = func() error { return sealExec(spec) } // Run calls it; a compile-only child never runs
	prog, err := wasm.Compile(ctx, module, cfg)
	if err != nil {
		return compileFailure(err)
	}
	if spec.CompileOnly {
		return wireResult{Outcome: outcome.OK, Message: "compiled"}
	}
	return guestResult(prog.Run(ctx))
}

// compileFailure is the verdict for a module wasm.Compile refused.
func compileFailure(err error) wireResult {
	var werr *wasm.Error
	if errors.As(err, &werr) {
		return wireResult{Outcome: werr.Outcome, Message: werr.Message}
	}
	return wireResult{Outcome: outcome.SandboxError, Message: err.Error()}
}

func guestResult(r wasm.Result) wireResult {
	return wireResult{Outcome: r.Outcome, ExitCode: r.ExitCode, Message: r.Message,
		StdoutTruncated: r.StdoutTruncated, StderrTruncated: r.StderrTruncated}
}

// hotTaskFD is where a hot child's stage two keeps its task socket: above what the runtime
// takes for itself before the task comes.
const hotTaskFD = 16

// hotStage is stage two of a hot child (wireSpec.Hot): with the same walls as stageTwo,
// filter included, it loads its module's compiled code from the read-only cache before
// any task exists, says so (readyByte) and waits on fdSpec for the task's spec. The task
// brings only what the compile does not use (wasm.Program.Prepare): args, env, output and
// CPU-time limits, the clock. The supervisor has written the rest of its limits to the
// cgroup and the rlimits (prlimit) before sending it, and the spec must be one this child
// was made for (hotFor). The exec seal, the guest's first instruction and the one task
// come after, as in stageTwo.
func hotStage(cfg initConfig) error {
	warm, module, err := readInputs(true)
	if err != nil {
		return err
	}
	// The task's socket moves out of the way, so that the runtime's own descriptors (the
	// netpoller's, below) take the numbers they take in stageTwo, and the guest's process
	// holds the very same set once the socket is closed.
	sock, err := unix.FcntlInt(fdSpec, unix.F_DUPFD_CLOEXEC, hotTaskFD)
	if err != nil {
		return fmt.Errorf("hot child: move the task socket: %w", err)
	}
	unix.Close(fdSpec)
	payload, err := cfg.payload(warm)
	if err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("set not dumpable: %w", err)
	}
	startNetpoller()
	if err := installFilter(warm); err != nil {
		return err
	}
	ctx := context.Background()
	var prog *wasm.Program
	if payload == nil { // a payload stands for the guest: as in stageTwo, nothing is compiled
		if prog, err = wasm.Compile(ctx, module, wasmConfig(warm)); err != nil {
			// The verdict stageTwo's compile would give; the supervisor sees the socket
			// close without readyByte and discards this child (or, in the security
			// suite's hot mode, makes it the task's verdict).
			report(compileFailure(err))
			os.Exit(0)
		}
	}
	module = nil // the compiled code is what stays
	if err := writeAll(sock, []byte{readyByte}); err != nil {
		return fmt.Errorf("hot child: say ready: %w", err)
	}
	raw, err := readFrame(fdReader(sock), maxSpecBytes)
	unix.Close(sock) // the guest's process holds exactly the contract's descriptors
	if err != nil {
		return fmt.Errorf("hot child: read the task: %w", err)
	}
	spec, err := decodeSpec(raw)
	if err != nil {
		return err
	}
	if err := spec.hotFor(warm); err != nil {
		return err
	}
	runtime.GOMAXPROCS(goMaxProcs(spec.Limits))
	debug.SetMemoryLimit(int64(goMemLimit(spec.Limits)))
	watchCPU(spec.Limits)
	if payload != nil {
		return runPayload(payload, spec)
	}
	wcfg := wasmConfig(spec)
	wcfg.BeforeGuest = func() error { return sealExec(spec) }
	if err := prog.Prepare(wcfg); err != nil {
		return fmt.Errorf("hot child: %w", err)
	}
	report(guestResult(prog.Run(ctx)))
	os.Exit(0)
	return nil
}

// wasmConfig maps the spawn spec onto wazero's view: preopens at their mount points.
func wasmConfig(spec wireSpec) wasm.Config {
	cfg := wasm.Config{
		Args: spec.Args, Env: spec.Env,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		OutputLimit:     int64(spec.Limits.OutputBytes),
		MemoryLimit:     spec.Limits.MemoryBytes,
		ClockResolution: spec.Limits.ClockResolution,
	}
	for i, d := range spec.Dirs {
		cfg.Preopens = append(cfg.Preopens, wasm.Preopen{HostPath: dirMount(i), GuestPath: d.GuestPath, ReadOnly: d.ReadOnly})
	}
	if spec.CacheMode != cacheNone {
		cfg.CacheDir = cacheMount
	}
	if spec.CompileOnly {
		// The guest's memory is checked by the run that follows, against the guest's limit;
		// the compile only needs the module to be a wasm32 one.
		cfg.MemoryLimit = 0
	}
	return cfg
}

// exitResult is the verdict for a guest or payload that ended with code.
func exitResult(code uint32) wireResult {
	if code == 0 {
		return wireResult{Outcome: outcome.OK, Message: "exited 0"}
	}
	return wireResult{Outcome: outcome.Exit, ExitCode: code, Message: fmt.Sprintf("guest exited with code %d", code)}
}
