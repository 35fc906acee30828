//go:build cgo

package seccomp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/agentbox/agentbox/internal/int80"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/sys/unix"
)

// The victim is this test binary re-executed (os/exec's GO_WANT_HELPER_PROCESS
// pattern, gVisor's TestRealDeal): it reads compiled BPF from stdin, Loads it,
// runs one case and prints "errno=N" (0 for success) or "error=...". Cases
// that must be killed never print.
const (
	// victimTimeout bounds one victim: a policy that breaks the runtime
	// (say, async preemption) makes it hang rather than fail.
	victimTimeout = 30 * time.Second
	victimEnv     = "AGENTBOX_SECCOMP_VICTIM"
	victimSelfEnv = "AGENTBOX_SECCOMP_VICTIM_SELF_PID"
)

func TestMain(m *testing.M) {
	if name := os.Getenv(victimEnv); name != "" {
		os.Exit(victimMain(name))
	}
	os.Exit(m.Run())
}

// victimCase runs after Load. prepare, if set, runs before Load, in the same
// process, for what the sandbox does before its filter (pipes, temp dirs).
type victimCase struct {
	prepare func() (any, error)
	run     func(state any) error
}

// glibcThreadFlags is the clone flag word of glibc's pthread_create (after
// clone3's ENOSYS): the Go runtime's thread flags plus CLONE_PARENT_SETTID and
// CLONE_CHILD_CLEARTID.
const glibcThreadFlags = goThreadFlags | 0x00100000 | 0x00200000

// victimExtras are what this victim needs and the sandboxed child does not:
// the victim is this test binary, built with cgo for libseccomp, so glibc's
// pthread_create starts its threads (strace -f of every case shows nothing
// else after Load that Default lacks). They go on top of Default, here and
// nowhere else: the embedded program never allows them, and the victim
// proves the production table and these.
func victimExtras() []Rule {
	return []Rule{
		{Names: []string{"clone"}, Action: Allow, When: []Cond{{Arg: 0, Op: Equal, Value: glibcThreadFlags}},
			Reason: "glibc pthread_create, for cgo's threads (the rest stays EPERM: the pin takes this value in)"},
		{Names: []string{"set_robust_list", "rseq"}, Action: Allow,
			Reason: "glibc registers both at the start of every new thread"},
	}
}

// victimPolicy is Default with victimExtras on top.
func victimPolicy() Policy {
	p := Default()
	return Policy{Rules: append(slices.Clone(p.Rules), victimExtras()...)}
}

func victimMain(name string) int {
	c, ok := victimCases()[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown victim case %q\n", name)
		return 2
	}
	var state any
	var err error
	if c.prepare != nil {
		if state, err = c.prepare(); err != nil {
			fmt.Fprintf(os.Stderr, "prepare: %v\n", err)
			return 2
		}
	}
	// Stage two starts the netpoller before the filter with a timer
	// (startNetpoller: epoll_create1, eventfd2 are not allowed after); so
	// does this timer.
	time.AfterFunc(victimTimeout, func() { os.Exit(3) })
	if err := loadFromStdin(); err != nil {
		fmt.Fprintf(os.Stderr, "load: %v\n", err)
		return 2
	}
	fmt.Println(resultLine(c.run(state)))
	return 0
}

// loadFromStdin installs the program the parent compiled, as the child does
// with the spec's bytes; with victimSelfEnv it compiles SignalSelfOnly itself,
// since only the victim knows its pid.
func loadFromStdin() error {
	bpf, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	if os.Getenv(victimSelfEnv) == "1" {
		if bpf, err = Compile(victimPolicy().SignalSelfOnly(os.Getpid())); err != nil {
			return err
		}
	}
	return Load(bpf)
}

func resultLine(err error) string {
	var errno syscall.Errno
	switch {
	case err == nil:
		return "errno=0"
	case errors.As(err, &errno):
		return fmt.Sprintf("errno=%d", int(errno))
	}
	return "error=" + strings.ReplaceAll(err.Error(), "\n", " ")
}

func raw(nr uintptr, args ...uintptr) error {
	var a [6]uintptr
	copy(a[:], args)
	_, _, errno := unix.RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
	if errno != 0 {
		return errno
	}
	return nil
}

func victimCases() map[string]victimCase {
	return map[string]victimCase{
		"getpid": {run: func(any) error {
			if pid, _, _ := unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0); int(pid) != os.Getpid() {
				return fmt.Errorf("getpid = %d, want %d", pid, os.Getpid())
			}
			return nil
		}},
		"runtime survives": {prepare: preparePipe, run: runtimeWorkload},
		"wazero runs WASI": {prepare: prepareWasm, run: runWasm},
		"socket AF_INET":   {run: func(any) error { return raw(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM, 0) }},
		"socket AF_UNIX":   {run: func(any) error { return raw(unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM, 0) }},
		"unshare":          {run: func(any) error { return raw(unix.SYS_UNSHARE, unix.CLONE_NEWUSER) }},
		"fork via clone":   {run: func(any) error { return raw(unix.SYS_CLONE, uintptr(unix.SIGCHLD)) }},
		"thread in new netns": {run: func(any) error {
			return raw(unix.SYS_CLONE, unix.CLONE_THREAD|unix.CLONE_VM|unix.CLONE_SIGHAND|unix.CLONE_NEWNET)
		}},
		"vfork via clone": {run: func(any) error {
			return raw(unix.SYS_CLONE, unix.CLONE_VM|unix.CLONE_VFORK|uintptr(unix.SIGCHLD))
		}},
		"thread with CLONE_PIDFD":    {run: func(any) error { return raw(unix.SYS_CLONE, goThreadFlags|unix.CLONE_PIDFD) }},
		"thread flags, high bit":     {run: func(any) error { return raw(unix.SYS_CLONE, goThreadFlags|1<<32) }},
		"clone3":                     {run: func(any) error { return raw(unix.SYS_CLONE3, 0, 0) }},
		"futex WAKE_PRIVATE":         {run: func(any) error { return futexOp(futexWakePrivate) }},
		"futex WAIT_BITSET_PRIVATE":  {run: func(any) error { return futexOp(futexWaitBitset | futexPrivate) }},
		"futex LOCK_PI_PRIVATE":      {run: func(any) error { return futexOp(futexLockPI | futexPrivate) }},
		"futex WAKE shared":          {run: func(any) error { return futexOp(futexWake) }},
		"madvise DONTNEED":           {run: func(any) error { return madviseOp(unix.MADV_DONTNEED) }},
		"madvise MERGEABLE":          {run: func(any) error { return madviseOp(unix.MADV_MERGEABLE) }},
		"madvise DONTNEED, high bit": {run: func(any) error { return madviseOp(1<<32 | unix.MADV_DONTNEED) }},
		"unknown number 1000":        {run: func(any) error { return raw(1000) }},
		"newer syscall 462":          {run: func(any) error { return raw(462) }},
		"ioctl TIOCSTI": {run: func(any) error {
			c := byte('x')
			return raw(unix.SYS_IOCTL, 0, unix.TIOCSTI, uintptr(unsafe.Pointer(&c)))
		}},
		"mmap RWX": {run: func(any) error {
			return raw(unix.SYS_MMAP, 0, 4096, unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uintptr(0), 0)
		}},
		"mmap RW": {run: func(any) error {
			return raw(unix.SYS_MMAP, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uintptr(0), 0)
		}},
		"prctl dumpable": {run: func(any) error { return raw(unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, 1) }},
		"prlimit64 set": {run: func(any) error {
			var r unix.Rlimit
			return raw(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_NOFILE, uintptr(unsafe.Pointer(&r)), 0)
		}},
		"prlimit64 get": {run: func(any) error {
			var r unix.Rlimit
			return raw(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_NOFILE, 0, uintptr(unsafe.Pointer(&r)))
		}},
		"execve": {run: func(any) error {
			p, _ := unix.BytePtrFromString("/bin/true")
			return raw(unix.SYS_EXECVE, uintptr(unsafe.Pointer(p)), 0, 0)
		}},
		"memfd_create": {run: func(any) error {
			p, _ := unix.BytePtrFromString("x")
			return raw(unix.SYS_MEMFD_CREATE, uintptr(unsafe.Pointer(p)), 0)
		}},
		"io_uring_setup":     {run: func(any) error { return raw(unix.SYS_IO_URING_SETUP, 1, 0) }},
		"kill parent":        {run: func(any) error { return raw(unix.SYS_KILL, uintptr(os.Getppid()), 0) }},
		"tgkill parent":      {run: func(any) error { return raw(unix.SYS_TGKILL, uintptr(os.Getppid()), uintptr(os.Getppid()), 0) }},
		"kexec_load":         {run: func(any) error { return raw(unix.SYS_KEXEC_LOAD, 0, 0, 0, ^uintptr(0)) }},
		"open_by_handle_at":  {run: func(any) error { return raw(unix.SYS_OPEN_BY_HANDLE_AT, ^uintptr(0), 0, 0) }},
		"x32 getpid":         {run: func(any) error { return raw(0x40000000 | unix.SYS_GETPID) }},
		"i386 getpid":        {run: func(any) error { int80.Syscall(20, 0, 0, 0); return nil }},
		"tsync other thread": {prepare: prepareLockedThread, run: runOnLockedThread},
	}
}

// futex(2) operations the victim tries beyond the runtime's two.
const (
	futexWake       = 1
	futexLockPI     = 6
	futexWaitBitset = 9
	futexPrivate    = 0x80
)

// futexOp calls futex(2) with op and val 1 on a word that holds 0, so that
// no op blocks when the filter lets it through: a wait answers EAGAIN (the
// word is not 1), a wake wakes nobody, a PI lock finds no owner and takes it.
func futexOp(op uintptr) error {
	word := uint32(0)
	defer runtime.KeepAlive(&word)
	return raw(unix.SYS_FUTEX, uintptr(unsafe.Pointer(&word)), op, 1, 0, 0, ^uintptr(0))
}

// madviseOp gives advice on a fresh anonymous page.
func madviseOp(advice uintptr) error {
	page, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("mmap: %w", err)
	}
	defer unix.Munmap(page)
	return raw(unix.SYS_MADVISE, uintptr(unsafe.Pointer(&page[0])), 4096, advice)
}

// preparePipe makes the pipe the workload reads through the netpoller:
// pipe2 is not allowed after the filter, as in the real child.
func preparePipe() (any, error) {
	r, w, err := os.Pipe()
	return [2]*os.File{r, w}, err
}

// runtimeWorkload exercises what the Go runtime does on its own: many
// goroutines, GC, new OS threads (LockOSThread), timers, async preemption of
// a tight loop (tgkill SIGURG) and netpoller reads with deadlines.
func runtimeWorkload(state any) error {
	pipe := state.([2]*os.File)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			_ = make([]byte, 64<<10+i)
			time.Sleep(time.Millisecond)
		})
	}
	for range 8 {
		wg.Go(func() {
			runtime.LockOSThread()
			time.Sleep(5 * time.Millisecond)
		})
	}
	gcWhileSpinning()
	wg.Wait()
	return pipeRoundTrip(pipe[0], pipe[1])
}

// gcWhileSpinning runs GCs while a goroutine spins in a loop with no
// function call, so the stop-the-world can only succeed by async preemption:
// a SIGURG the runtime sends with tgkill. Without it the whole process
// stalls (timers too), and the parent's victimTimeout kills it.
func gcWhileSpinning() {
	var stop atomic.Bool
	spinning := make(chan struct{})
	go func() {
		close(spinning)
		for !stop.Load() {
		}
	}()
	<-spinning
	for range 3 {
		runtime.GC()
	}
	stop.Store(true)
}

func pipeRoundTrip(r, w *os.File) error {
	go func() { time.Sleep(10 * time.Millisecond); _, _ = w.Write([]byte("ping")) }()
	if err := r.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "ping" {
		return fmt.Errorf("pipe read %q: %w", buf, err)
	}
	return nil
}

type wasmState struct {
	root     string
	module   []byte
	dir      string
	cacheDir string
}

func prepareWasm() (any, error) {
	module, err := os.ReadFile("testdata/fsops.wasm")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "seccomp-victim-")
	if err != nil {
		return nil, err
	}
	return wasmState{root: dir, module: module, dir: filepath.Join(dir, "pre"), cacheDir: filepath.Join(dir, "cache")}, os.Mkdir(filepath.Join(dir, "pre"), 0o755)
}

// runWasm compiles and runs fsops.wasm under the filter with wazero's
// compiler engine, a file compilation cache and a preopened directory, as
// the child does; the module exits with step*100+errno if any WASI call fails.
func runWasm(state any) error {
	s := state.(wasmState)
	defer os.RemoveAll(s.root)
	ctx := context.Background()
	cache, err := wazero.NewCompilationCacheWithDir(s.cacheDir)
	if err != nil {
		return fmt.Errorf("compilation cache: %w", err)
	}
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCompilationCache(cache).WithCloseOnContextDone(true))
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	var stdout bytes.Buffer
	cfg := wazero.NewModuleConfig().WithStdout(&stdout).WithStderr(io.Discard).WithStdin(os.Stdin).
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().
		WithFSConfig(wazero.NewFSConfig().WithDirMount(s.dir, "/"))
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = r.InstantiateWithConfig(ctx, s.module, cfg)
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("fsops exited %d (step %d, WASI errno %d)", exit.ExitCode(), exit.ExitCode()/100, exit.ExitCode()%100)
	}
	if err == nil && stdout.String() != "hello\n" {
		err = fmt.Errorf("stdout %q, want %q", stdout.String(), "hello\n")
	}
	return err
}

// lockedThread is a goroutine wired to its own OS thread before Load, which
// runs requests afterwards: TSYNC must have filtered that thread too.
type lockedThread struct {
	tid  int
	reqs chan func() error
	errs chan error
}

func prepareLockedThread() (any, error) {
	lt := &lockedThread{reqs: make(chan func() error), errs: make(chan error)}
	ready := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		lt.tid = unix.Gettid()
		close(ready)
		for f := range lt.reqs {
			lt.errs <- f()
		}
	}()
	<-ready
	return lt, nil
}

func runOnLockedThread(state any) error {
	lt := state.(*lockedThread)
	if unix.Gettid() == lt.tid {
		return errors.New("case runs on the locked thread itself; TSYNC not exercised")
	}
	lt.reqs <- func() error { return raw(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM, 0) }
	return <-lt.errs
}

// i386Available reports whether int $0x80 works at all here (kernels built
// without IA32 emulation, or booted with ia32_emulation=0, answer SIGSEGV
// before seccomp sees the call).
func i386Available(t *testing.T) bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestInt80Probe$")
	cmd.Env = append(os.Environ(), "AGENTBOX_SECCOMP_INT80_PROBE=1")
	return cmd.Run() == nil
}

func TestInt80Probe(t *testing.T) {
	if os.Getenv("AGENTBOX_SECCOMP_INT80_PROBE") != "1" {
		t.Skip("helper for i386Available")
	}
	int80.Syscall(20, 0, 0, 0)
}

// TestVictim loads the compiled Default() policy, plus victimExtras, in a
// re-executed copy of this binary and checks, for each case, the exact errno
// or the SIGSYS death. No root is needed: NO_NEW_PRIVS lets any process
// install a filter.
func TestVictim(t *testing.T) {
	defaultOrSkip(t)
	bpf, err := Compile(victimPolicy())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		selfPID  bool
		want     syscall.Errno
		wantKill bool
	}{
		{name: "getpid"},
		{name: "runtime survives"},
		{name: "runtime survives", selfPID: true},
		{name: "wazero runs WASI"},
		{name: "socket AF_INET", want: unix.EPERM},
		{name: "socket AF_UNIX", want: unix.EPERM},
		{name: "unshare", want: unix.EPERM},
		{name: "fork via clone", want: unix.EPERM},
		{name: "thread in new netns", want: unix.EPERM},
		{name: "vfork via clone", want: unix.EPERM},
		{name: "thread with CLONE_PIDFD", want: unix.EPERM},
		{name: "thread flags, high bit", want: unix.EPERM},
		{name: "clone3", want: unix.ENOSYS},
		{name: "futex WAKE_PRIVATE"},
		{name: "futex WAIT_BITSET_PRIVATE", want: unix.EPERM},
		{name: "futex LOCK_PI_PRIVATE", want: unix.EPERM},
		{name: "futex WAKE shared", want: unix.EPERM},
		{name: "madvise DONTNEED"},
		{name: "madvise MERGEABLE", want: unix.EPERM},
		{name: "madvise DONTNEED, high bit", want: unix.EPERM},
		{name: "unknown number 1000", want: unix.ENOSYS},
		{name: "newer syscall 462", want: unix.ENOSYS},
		{name: "ioctl TIOCSTI", want: unix.EPERM},
		{name: "mmap RWX", want: unix.EPERM},
		{name: "mmap RW"},
		{name: "prctl dumpable", want: unix.EPERM},
		{name: "prlimit64 set", want: unix.EPERM},
		{name: "prlimit64 get", want: unix.ENOSYS},
		{name: "execve", want: unix.EPERM},
		{name: "memfd_create", want: unix.EPERM},
		{name: "io_uring_setup", want: unix.EPERM},
		{name: "kill parent", want: unix.EPERM},
		{name: "tgkill parent", selfPID: true, want: unix.EPERM},
		{name: "tsync other thread", want: unix.EPERM},
		{name: "kexec_load", wantKill: true},
		{name: "open_by_handle_at", wantKill: true},
		{name: "x32 getpid", wantKill: true},
		{name: "i386 getpid", wantKill: true},
	}
	for _, tt := range tests {
		name := tt.name
		if tt.selfPID {
			name += " (SignalSelfOnly)"
		}
		t.Run(name, func(t *testing.T) {
			if tt.name == "i386 getpid" && !i386Available(t) {
				t.Skip("int $0x80 faults even without a filter: no IA32 emulation in this kernel")
			}
			out, status, err := runVictim(t, tt.name, tt.selfPID, bpf)
			if tt.wantKill {
				if status.Signaled() && status.Signal() == syscall.SIGSYS {
					return
				}
				t.Fatalf("want death by SIGSYS; got status %v, err %v, output %q", status, err, out)
			}
			if want := fmt.Sprintf("errno=%d", int(tt.want)); err != nil || out != want {
				t.Fatalf("got %q (err %v), want %q (%v)", out, err, want, tt.want)
			}
		})
	}
}

func runVictim(t *testing.T, name string, selfPID bool, bpf []byte) (string, syscall.WaitStatus, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), victimTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), victimEnv+"="+name)
	if selfPID {
		cmd.Env = append(cmd.Env, victimSelfEnv+"=1")
	}
	cmd.Stdin = bytes.NewReader(bpf)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if stderr.Len() > 0 {
		t.Logf("victim stderr: %s", stderr.String())
	}
	var status syscall.WaitStatus
	if cmd.ProcessState != nil {
		status = cmd.ProcessState.Sys().(syscall.WaitStatus)
	}
	return strings.TrimSpace(stdout.String()), status, err
}
