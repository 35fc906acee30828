package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentbox/agentbox/internal/privtest"
	"github.com/agentbox/agentbox/internal/testhook"
	"github.com/agentbox/agentbox/outcome"
)

func newTestSandbox(t *testing.T, cacheDir string) *Sandbox {
	t.Helper()
	privtest.RequireRoot(t)
	sb, err := New(Config{CacheDir: cacheDir, WarmPool: privtest.WarmPool(t)})
	if err != nil {
		t.Fatalf("sandbox.New: %v", err)
	}
	t.Cleanup(func() { sb.Close() })
	return sb
}

func module(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "modules", name))
	if err != nil {
		t.Fatalf("test module: %v", err)
	}
	return b
}

func TestRunOutcomes(t *testing.T) {
	sb := newTestSandbox(t, "")
	tests := []struct {
		name    string
		module  string
		payload string
		limits  Limits
		want    outcome.Outcome
		code    uint32
		msg     string // fragment of the message
		stdout  string // exact stdout when set
	}{
		{name: "ok", module: "hello.wasm", want: outcome.OK, stdout: "hello from wasm\n"},
		{name: "exit code kept", module: "exit3.wasm", want: outcome.Exit, code: 3},
		{name: "a sleep after the filter", module: "sleep.wasm", want: outcome.OK},
		{name: "unreachable", module: "trap.wasm", want: outcome.Trap, msg: "unreachable"},
		{name: "out of bounds", module: "oob.wasm", want: outcome.Trap, msg: "out of bounds"},
		{name: "stack overflow", module: "stackoverflow.wasm", want: outcome.Trap, msg: "stack"},
		{name: "garbage bytes", module: "invalid.wasm", want: outcome.InvalidModule},
		{name: "no _start", module: "nostart.wasm", want: outcome.InvalidModule, msg: "_start"},
		{name: "unknown import", module: "badimport.wasm", want: outcome.InvalidModule, msg: "nope"},
		{name: "shared memory", module: "sharedmem.wasm", want: outcome.InvalidModule},
		{name: "memory past 64Mi", module: "growmem.wasm", limits: Limits{MemoryBytes: 64 << 20}, want: outcome.MemoryLimit, msg: "limit 67108864 bytes"},
		{name: "output cap", module: "spam.wasm", limits: Limits{OutputBytes: 4096}, want: outcome.OutputLimit, msg: "4096"},
		{name: "wall timeout", module: "loop.wasm", limits: Limits{Timeout: time.Second}, want: outcome.Timeout, msg: "1s"},
		{name: "cpu time", module: "loop.wasm", limits: Limits{CPUTime: time.Second, Timeout: 20 * time.Second}, want: outcome.CPULimit, msg: "CPU-time limit of 1s"},
		{name: "escaped flood meets the outer cap", payload: "flood", limits: Limits{OutputBytes: 1 << 20}, want: outcome.OutputLimit, msg: "stdout"},
		{name: "escaped spin meets the outer timeout", payload: "spin", limits: Limits{Timeout: time.Second}, want: outcome.Timeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := Spec{Limits: tt.limits}
			if tt.module != "" {
				spec.Module = module(t, tt.module)
			}
			res, err := sb.Run(testhook.With(context.Background(), testhook.Hooks{Payload: tt.payload}), spec)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.Outcome != tt.want || res.ExitCode != tt.code || !strings.Contains(res.Message, tt.msg) {
				t.Fatalf("got %s (code %d) %q; want %s (code %d) with %q\nstderr: %s", res.Outcome, res.ExitCode, res.Message, tt.want, tt.code, tt.msg, res.Stderr)
			}
			if tt.stdout != "" && string(res.Stdout) != tt.stdout {
				t.Fatalf("stdout = %q, want %q", res.Stdout, tt.stdout)
			}
		})
	}
}

// TestTimeoutKillsTheTask: a timeout verdict means the task is gone, not merely reported.
// How soon the verdict comes is the timeout's own business (and a benchmark's), not an
// assertion here: a slower machine must not turn this red; a kill that never takes hangs
// Run, which the test binary's own -timeout reports with every goroutine.
func TestTimeoutKillsTheTask(t *testing.T) {
	sb := newTestSandbox(t, "")
	pid := 0
	ctx := testhook.With(context.Background(), testhook.Hooks{OnStart: func(p int) { pid = p }})
	res, _ := sb.Run(ctx, Spec{Module: module(t, "loop.wasm"), Limits: Limits{Timeout: time.Second}})
	if res.Outcome != outcome.Timeout || !strings.Contains(res.Message, "1s") {
		t.Fatalf("outcome %s %q, want timeout naming 1s", res.Outcome, res.Message)
	}
	if pid == 0 {
		t.Fatal("OnStart never saw the run child: the check below would prove nothing")
	}
	if alive(pid) {
		t.Fatalf("after the timeout verdict the task's child %d still runs", pid)
	}
	if groups := taskGroups(t, sb); len(groups) != 0 {
		t.Fatalf("after the timeout verdict our cgroups are %v besides the warm pool's; want none", groups)
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// inStageTwo polls until pid has finished its setup and runs the guest (its argv names
// stage two and its filter is on). It gives up once pid is gone, or after a generous
// deadline: it waits for a state, never for a duration.
func inStageTwo(pid int) bool {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && alive(pid); time.Sleep(5 * time.Millisecond) {
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		status, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if string(cmdline) == "agentbox-sandbox\x00"+initArg+"\x002\x00" && strings.Contains(string(status), "\nSeccomp:\t2\n") {
			return true
		}
	}
	return false
}

// TestCancel cancels a task whose guest is running (its child reached stage two).
func TestCancel(t *testing.T) {
	sb := newTestSandbox(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started, running := make(chan int, 1), make(chan bool, 1)
	go func() {
		running <- inStageTwo(<-started)
		cancel()
	}()
	hooks := testhook.Hooks{OnStart: func(pid int) { started <- pid }}
	res, _ := sb.Run(testhook.With(ctx, hooks), Spec{Module: module(t, "loop.wasm")})
	close(started) // OnStart is called within Run only: a task that never started reads pid 0
	if !<-running {
		t.Fatalf("the guest never ran before the verdict %s %q", res.Outcome, res.Message)
	}
	if res.Outcome != outcome.Cancelled {
		t.Fatalf("outcome %s %q, want cancelled", res.Outcome, res.Message)
	}
}

func TestPayloadSeesEmptyWorld(t *testing.T) {
	sb := newTestSandbox(t, "")
	// Without seccomp: the allowlist denies getuid and uname (ENOSYS), and this test is about
	// the namespaces and the root, which hold with or without the filter.
	hooks := testhook.Hooks{Payload: "identity", Unsafe: testhook.Unsafe{NoSeccomp: true}}
	res, _ := sb.Run(testhook.With(context.Background(), hooks), Spec{})
	if res.Outcome != outcome.OK {
		t.Fatalf("outcome %s %q", res.Outcome, res.Message)
	}
	want := "uid=0 gid=0 pid=1 host=agentbox root=[]\n"
	if string(res.Stdout) != want {
		t.Fatalf("payload saw %q, want %q", res.Stdout, want)
	}
}

func TestStdinAndArgs(t *testing.T) {
	sb := newTestSandbox(t, "")
	res, _ := sb.Run(context.Background(), Spec{Module: module(t, "echo.wasm"), Stdin: strings.NewReader("ping\n")})
	if res.Outcome != outcome.OK || string(res.Stdout) != "ping\n" {
		t.Fatalf("echo: %s %q stdout %q", res.Outcome, res.Message, res.Stdout)
	}
}

func TestStreamingWriters(t *testing.T) {
	sb := newTestSandbox(t, "")
	var out bytes.Buffer
	res, _ := sb.Run(context.Background(), Spec{Module: module(t, "hello.wasm"), Stdout: &out})
	if res.Outcome != outcome.OK || out.String() != "hello from wasm\n" {
		t.Fatalf("streamed %q, outcome %s", out.String(), res.Outcome)
	}
}

func TestConcurrentTasksAndCleanup(t *testing.T) {
	sb := newTestSandbox(t, "")
	const n = 16
	var wg sync.WaitGroup
	results := make([]Result, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _ = sb.Run(context.Background(), Spec{Module: module(t, "hello.wasm")})
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.Outcome != outcome.OK || string(r.Stdout) != "hello from wasm\n" {
			t.Errorf("task %d: %s %q stdout %q", i, r.Outcome, r.Message, r.Stdout)
		}
	}
	if groups := taskGroups(t, sb); len(groups) != 0 {
		t.Fatalf("after all tasks ended, our cgroups are %v besides the warm pool's; want none left", groups)
	}
}

func TestCompileCache(t *testing.T) {
	dir := t.TempDir()
	sb := newTestSandbox(t, dir)
	mod := module(t, "hello.wasm")
	for i := range 2 {
		res, _ := sb.Run(context.Background(), Spec{Module: mod})
		if res.Outcome != outcome.OK || string(res.Stdout) != "hello from wasm\n" {
			t.Fatalf("run %d with cache: %s %q", i, res.Outcome, res.Message)
		}
		if i == 1 && res.Usage.CompileMS != 0 {
			t.Fatalf("second run of a digest compiled again (%d ms): want the cached code", res.Usage.CompileMS)
		}
	}
	entries, _ := filepath.Glob(filepath.Join(dir, engine(), "sha256-*"))
	if len(entries) != 1 {
		t.Fatalf("cache entries %v, want exactly one", entries)
	}
	err := filepath.Walk(entries[0], func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		if st.Uid != 0 || info.Mode().Perm()&0o222 != 0 {
			return fmt.Errorf("%s: uid %d mode %v; want root-owned and read-only", p, st.Uid, info.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	scratch, _ := os.ReadDir(filepath.Join(dir, "scratch"))
	if len(scratch) != 0 {
		t.Fatalf("scratch left behind: %v", scratch)
	}
	// The first run of a digest is two children (compile, then run): stdin belongs to the run.
	res, _ := sb.Run(context.Background(), Spec{Module: module(t, "echo.wasm"), Stdin: strings.NewReader("ping\n")})
	if res.Outcome != outcome.OK || string(res.Stdout) != "ping\n" {
		t.Fatalf("echo on a cache miss: %s %q stdout %q", res.Outcome, res.Message, res.Stdout)
	}
	res, _ = sb.Run(context.Background(), Spec{Module: module(t, "invalid.wasm")})
	if res.Outcome != outcome.InvalidModule {
		t.Fatalf("invalid module through the cache path: %s %q", res.Outcome, res.Message)
	}
}

// TestCheckReportsCgroupMode: `agentbox check` must name the hierarchy this host really
// has (the suite runs on a v1 host and in a cgroup-v2 VM).
func TestCheckReportsCgroupMode(t *testing.T) {
	privtest.RequireRoot(t)
	var fs unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &fs); err != nil {
		t.Fatal(err)
	}
	want := "cgroup v1"
	if fs.Type == unix.CGROUP2_SUPER_MAGIC {
		want = "cgroup v2"
	}
	r := CheckConfig(Config{CacheDir: t.TempDir()})
	if !r.Ready {
		t.Fatalf("check: not ready on the suite's own host: %+v", r.Items)
	}
	for _, it := range r.Items {
		if it.Name == "cgroups" {
			if !it.OK || !strings.HasPrefix(it.Detail, want) {
				t.Fatalf("cgroups item %+v; want ok and %q", it, want)
			}
			return
		}
	}
	t.Fatal("check has no cgroups item")
}

// TestWaitHoldsNoThread: a supervisor waiting for its running tasks holds no OS thread in
// wait(2) for them (awaitExit waits in the network poller): with n tasks running, no thread
// of this process is inside waitid or wait4.
func TestWaitHoldsNoThread(t *testing.T) {
	sb := newTestSandbox(t, "")
	const n = 12
	ready := make(chan struct{}, n)
	var wg sync.WaitGroup
	var stdins []*io.PipeWriter
	results := make([]Result, n)
	ended := make(chan int, n)
	for i := range n {
		pr, pw := io.Pipe()
		stdins = append(stdins, pw)
		t.Cleanup(func() { pw.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := testhook.With(context.Background(), testhook.Hooks{Payload: "hold"})
			out := lineWatcher{line: "ready\n", seen: ready}
			results[i], _ = sb.Run(ctx, Spec{Stdin: pr, Stdout: &out})
			ended <- i
		}()
	}
	for range n { // every task runs its payload and waits on stdin
		select {
		case <-ready:
		case i := <-ended:
			t.Fatalf("task %d ended before it said ready: %s %q, stderr %q", i, results[i].Outcome, results[i].Message, results[i].Stderr)
		}
	}
	if waiting := threadsInWait(t); len(waiting) > 0 {
		t.Errorf("with %d tasks running, threads %v of this process sit in wait(2)", n, waiting)
	}
	for _, pw := range stdins {
		pw.Close()
	}
	wg.Wait()
	for i, r := range results {
		if r.Outcome != outcome.OK {
			t.Errorf("task %d: %s %q", i, r.Outcome, r.Message)
		}
	}
}

// lineWatcher signals seen once its stream has carried line.
type lineWatcher struct {
	mu   sync.Mutex
	buf  []byte
	line string
	done bool
	seen chan<- struct{}
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if !w.done && strings.Contains(string(w.buf), w.line) {
		w.done = true
		w.seen <- struct{}{}
	}
	return len(p), nil
}

// threadsInWait lists the threads of this process blocked in waitid or wait4, from
// /proc/self/task/*/syscall (its first field is the number of the call a thread is in).
func threadsInWait(t *testing.T) []string {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var waiting []string
	for _, e := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + e.Name() + "/syscall")
		if err != nil {
			continue // the thread ended
		}
		f := strings.Fields(string(b))
		if len(f) > 0 && (f[0] == strconv.Itoa(unix.SYS_WAITID) || f[0] == strconv.Itoa(unix.SYS_WAIT4)) {
			waiting = append(waiting, e.Name()+": "+f[0])
		}
	}
	return waiting
}
