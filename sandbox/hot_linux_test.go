package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/agentbox/agentbox/internal/privtest"
	"github.com/agentbox/agentbox/internal/testhook"
	"github.com/agentbox/agentbox/outcome"
)

func newHotSandbox(t *testing.T, size int) *Sandbox {
	t.Helper()
	privtest.RequireRoot(t)
	sb, err := New(Config{CacheDir: t.TempDir(), HotModules: size})
	if err != nil {
		t.Fatalf("sandbox.New: %v", err)
	}
	t.Cleanup(func() { sb.Close() })
	return sb
}

// hotPid waits until a hot child is ready for the module (under lim's memory) and
// returns its pid.
func hotPid(t *testing.T, sb *Sandbox, mod []byte, lim Limits) int {
	t.Helper()
	k := hotKey{digest: (&task{spec: Spec{Module: mod}}).digest(), memory: lim.withDefaults().MemoryBytes}
	for {
		sb.hot.mu.Lock()
		c := sb.hot.ready[k]
		_, warming := sb.hot.warming[k]
		sb.hot.mu.Unlock()
		if c != nil {
			return c.cmd.Process.Pid
		}
		if !warming {
			t.Fatalf("no hot child ready or warming for %s (failed: %d)", k.digest, sb.PoolStats().HotFailed)
		}
		time.Sleep(time.Millisecond)
	}
}

// warmHot runs mod twice, after which it has a hot child, and returns that child's pid
// once it is ready.
func warmHot(t *testing.T, sb *Sandbox, mod []byte) int {
	t.Helper()
	runIn(t, sb, Spec{Module: mod})
	runIn(t, sb, Spec{Module: mod})
	return hotPid(t, sb, mod, Limits{})
}

// waitHot waits until n hot children are ready.
func waitHot(t testing.TB, sb *Sandbox, n int) {
	t.Helper()
	for sb.PoolStats().HotReady != n {
		if f := sb.PoolStats().HotFailed; f > 0 {
			t.Fatalf("%d hot children failed to load", f)
		}
		time.Sleep(time.Millisecond)
	}
}

// runIn runs spec and returns the result and the pid of the child it ran in.
func runIn(t *testing.T, sb *Sandbox, spec Spec) (Result, int) {
	t.Helper()
	var pid int
	res, err := sb.Run(testhook.With(context.Background(), testhook.Hooks{OnStart: func(p int) { pid = p }}), spec)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res, pid
}

// TestHotChildRunsItsTask: a module's second run warms a hot child, the third runs in it
// with its own args, env and stdin, posture reported, and a new child warms for the next.
func TestHotChildRunsItsTask(t *testing.T) {
	sb := newHotSandbox(t, 3)
	echo := module(t, "echo.wasm")
	for i := range 2 {
		if res, _ := runIn(t, sb, Spec{Module: echo}); res.Outcome != outcome.OK {
			t.Fatalf("run %d: %+v", i, res)
		}
	}
	hotOne := hotPid(t, sb, echo, Limits{})
	res, ran := runIn(t, sb, Spec{Module: echo, Stdin: strings.NewReader("to the hot one\n")})
	if ran != hotOne {
		t.Fatalf("the third run ran in child %d, not the hot %d", ran, hotOne)
	}
	if res.Outcome != outcome.OK || string(res.Stdout) != "to the hot one\n" {
		t.Errorf("in the hot child: %+v, stdout %q", res, res.Stdout)
	}
	if res.Posture == nil {
		t.Error("a task in a hot child reports no posture")
	}
	if st := sb.PoolStats(); st.HotUsed != 1 || st.HotFailed != 0 {
		t.Errorf("PoolStats after one hot task: %+v, want 1 used and none failed", st)
	}
	if next := hotPid(t, sb, echo, Limits{}); next == hotOne {
		t.Errorf("child %d is hot again after its task", next)
	}
	for _, tt := range []struct {
		mod  string
		spec Spec
		want string
	}{
		{"args.wasm", Spec{Args: []string{"prog", "a b"}}, "prog\na b\n"},
		{"env.wasm", Spec{Env: []string{"K=v"}}, "K=v\n"},
	} {
		tt.spec.Module = module(t, tt.mod)
		runIn(t, sb, tt.spec)
		runIn(t, sb, tt.spec)
		want := hotPid(t, sb, tt.spec.Module, Limits{})
		if res, ran := runIn(t, sb, tt.spec); ran != want || res.Outcome != outcome.OK || string(res.Stdout) != tt.want {
			t.Errorf("%s in hot child %d (ran in %d): %+v, stdout %q, want %q", tt.mod, want, ran, res, res.Stdout, tt.want)
		}
	}
}

// TestHotChildTaskLimits: a hot child waits under the pool's limits and runs its task
// under the task's, in the cgroup and the rlimits, each wall meeting its guest.
func TestHotChildTaskLimits(t *testing.T) {
	sb := newHotSandbox(t, 4)
	tests := []struct {
		name   string
		mod    string
		limits Limits
		want   outcome.Outcome
	}{
		{"cpu time", "loop.wasm", Limits{CPUTime: 300 * time.Millisecond, CPUs: 0.5, Pids: 17}, outcome.CPULimit},
		{"wall clock", "loop.wasm", Limits{Timeout: 300 * time.Millisecond, MemoryBytes: 128 << 20}, outcome.Timeout},
		{"output", "spam.wasm", Limits{OutputBytes: 1000, FileSizeBytes: 1 << 20}, outcome.OutputLimit},
		{"memory", "growmem.wasm", Limits{MemoryBytes: 64 << 20}, outcome.MemoryLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := Spec{Module: module(t, tt.mod), Limits: tt.limits}
			for range 2 {
				if res, _ := runIn(t, sb, spec); res.Outcome != tt.want {
					t.Fatalf("in a fresh child: %+v, want %s", res, tt.want)
				}
			}
			want := hotPid(t, sb, spec.Module, tt.limits)
			lim := tt.limits.withDefaults()
			var cg map[string]string
			var rl string
			res, err := sb.Run(testhook.With(context.Background(), testhook.Hooks{OnStart: func(pid int) {
				if pid == want {
					cg = cgroupLimitsOf(t, sb, pid)
					b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
					rl = string(b)
				}
			}}), spec)
			if err != nil || res.Outcome != tt.want {
				t.Fatalf("in the hot child: %v %+v, want %s", err, res, tt.want)
			}
			if tt.want == outcome.OutputLimit && (!res.StdoutTruncated || strings.Contains(res.Message, "the task was killed")) {
				// The guest-side cap (the task's, handed over by Prepare) stops the guest at
				// the limit; the supervisor's kill means the child kept the pool's.
				t.Errorf("output limit in the hot child: %q (truncated %t), want the guest's own stop at the task's cap", res.Message, res.StdoutTruncated)
			}
			if cg == nil {
				t.Fatalf("the task did not run in the hot child %d", want)
			}
			for k, v := range map[string]string{"memory": fmt.Sprint(lim.MemoryBytes), "pids": fmt.Sprint(lim.Pids), "cpu": fmt.Sprint(int(lim.CPUs * 100000))} {
				if cg[k] != v {
					t.Errorf("the hot child's cgroup has %s %q, want %q", k, cg[k], v)
				}
			}
			if got := softLimit(rl, "Max file size"); got != fmt.Sprint(lim.FileSizeBytes) {
				t.Errorf("the hot child's RLIMIT_FSIZE is %s, want the task's %d", got, lim.FileSizeBytes)
			}
			if got := softLimit(rl, "Max cpu time"); (lim.CPUTime > 0) == (got == "unlimited") {
				t.Errorf("the hot child's RLIMIT_CPU is %s for a CPU-time limit of %s", got, lim.CPUTime)
			}
		})
	}
}

// softLimit is the soft limit of the line named name in a /proc/<pid>/limits.
func softLimit(limits, name string) string {
	for _, l := range strings.Split(limits, "\n") {
		if rest, ok := strings.CutPrefix(l, name); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				return f[0]
			}
		}
	}
	return ""
}

// TestHotChildOnlyForItsKey: a task unlike the one its module's hot child was made for (a
// memory limit of its own, a preopened directory, a negative control) runs in a child
// of its own and leaves the hot child waiting.
func TestHotChildOnlyForItsKey(t *testing.T) {
	sb := newHotSandbox(t, 2)
	hello := module(t, "hello.wasm")
	hotOne := warmHot(t, sb, hello)
	for name, run := range map[string]func() (Result, int){
		"memory": func() (Result, int) { return runIn(t, sb, Spec{Module: hello, Limits: Limits{MemoryBytes: 200 << 20}}) },
		"dir": func() (Result, int) {
			return runIn(t, sb, Spec{Module: hello, Dirs: []Dir{{HostPath: t.TempDir(), GuestPath: "/d"}}})
		},
		"unsafe": func() (Result, int) {
			var pid int
			res, err := sb.Run(testhook.With(context.Background(), testhook.Hooks{Unsafe: testhook.Unsafe{NoLandlock: true},
				OnStart: func(p int) { pid = p }}), Spec{Module: hello})
			if err != nil {
				t.Fatal(err)
			}
			return res, pid
		},
	} {
		res, ran := run()
		if res.Outcome != outcome.OK || ran == hotOne {
			t.Errorf("%s: %+v in child %d; the hot child is %d", name, res, ran, hotOne)
		}
	}
	if got := hotPid(t, sb, hello, Limits{}); got != hotOne {
		t.Errorf("the hot child is now %d, want %d still waiting", got, hotOne)
	}
}

// TestHotChildrenKeepTheMostRun: with room for one digest, a module takes the hot child's
// place only once it has run twice as often as the module that holds it, and the child it
// replaced is gone with its cgroup.
func TestHotChildrenKeepTheMostRun(t *testing.T) {
	sb := newHotSandbox(t, 1)
	hello, echo := module(t, "hello.wasm"), module(t, "echo.wasm")
	old := warmHot(t, sb, hello)
	for range 3 { // echo's 3 runs against hello's 2: not enough
		runIn(t, sb, Spec{Module: echo})
	}
	if got := hotPid(t, sb, hello, Limits{}); got != old {
		t.Fatalf("hello's hot child is %d, want %d kept", got, old)
	}
	runIn(t, sb, Spec{Module: echo}) // the 4th: twice hello's
	hotPid(t, sb, echo, Limits{})
	// The replaced child is released beside the tasks: wait for it to be gone.
	for until := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		owned, err := sb.cgroups.Owned()
		if err == nil && len(owned) == 1 && !alive(old) {
			break
		}
		if time.Now().After(until) {
			t.Fatalf("with one hot child the sandbox owns cgroups %v (%v), want 1; the replaced child %d alive: %t", owned, err, old, alive(old))
		}
	}
	if st := sb.PoolStats(); st.HotReady != 1 || st.HotSize != 1 {
		t.Errorf("PoolStats: %+v, want one hot child of one", st)
	}
}

// TestHotChildWarmsAfterItsTask: a hot child's replacement is not warmed while its task
// runs (a warm-up beside the task slows it), and its module keeps its place meanwhile; the
// next warms when the task is done, or at once when another task of the module comes
// meanwhile and runs without a hot child.
func TestHotChildWarmsAfterItsTask(t *testing.T) {
	sb := newHotSandbox(t, 1)
	echo, hello := module(t, "echo.wasm"), module(t, "hello.wasm")
	hotOne := warmHot(t, sb, echo)
	held := func() int {
		sb.hot.mu.Lock()
		defer sb.hot.mu.Unlock()
		return len(sb.hot.warming) + len(sb.hot.ready)
	}
	// The first task reads its stdin until we close it.
	stdin, feed := io.Pipe()
	type ran struct {
		res Result
		err error
	}
	started, done := make(chan int, 1), make(chan ran, 1)
	go func() {
		ctx := testhook.With(context.Background(), testhook.Hooks{OnStart: func(p int) { started <- p }})
		res, err := sb.Run(ctx, Spec{Module: echo, Stdin: stdin})
		done <- ran{res, err}
	}()
	t.Cleanup(func() { feed.Close(); <-done }) // a failed check still ends the task
	select {
	case pid := <-started:
		if pid != hotOne {
			t.Fatalf("the task ran in child %d, not the hot %d", pid, hotOne)
		}
	case r := <-done:
		done <- r
		t.Fatalf("the task ended before it started: %+v, %v", r.res, r.err)
	}
	if n := held(); n != 0 {
		t.Fatalf("%d hot children ready or warming while the hot one's task runs, want none", n)
	}
	// Another module run twice meanwhile does not take the place echo keeps.
	runIn(t, sb, Spec{Module: hello})
	runIn(t, sb, Spec{Module: hello})
	if n := held(); n != 0 {
		t.Fatalf("%d hot children ready or warming after hello's runs, want none: echo's place is kept", n)
	}
	// A second task of echo meanwhile runs without one, and warms the next.
	res, second := runIn(t, sb, Spec{Module: echo, Stdin: strings.NewReader("second\n")})
	if second == hotOne || res.Outcome != outcome.OK || string(res.Stdout) != "second\n" {
		t.Fatalf("the second task (child %d): %+v, stdout %q", second, res, res.Stdout)
	}
	next := hotPid(t, sb, echo, Limits{})
	feed.Write([]byte("first\n"))
	feed.Close()
	first := <-done
	done <- first // for the cleanup
	if first.err != nil || first.res.Outcome != outcome.OK || string(first.res.Stdout) != "first\n" {
		t.Fatalf("the hot child's task: %+v, %v", first.res, first.err)
	}
	// Its end warms nothing more: the next is there already.
	if got := hotPid(t, sb, echo, Limits{}); got != next || held() != 1 {
		t.Errorf("after the hot task ended: hot child %d (want %d kept), %d ready or warming (want 1)", got, next, held())
	}
	// With no other task meanwhile, the task's end warms the next.
	runIn(t, sb, Spec{Module: echo})
	if got := hotPid(t, sb, echo, Limits{}); got == next {
		t.Errorf("child %d is hot again after its task", got)
	}
}

// TestHotCloseLeavesNothing: closing the sandbox ends its hot children and removes their
// cgroups.
func TestHotCloseLeavesNothing(t *testing.T) {
	sb := newHotSandbox(t, 2)
	hello := module(t, "hello.wasm")
	pid := warmHot(t, sb, hello)
	sb.hot.close()
	if owned, err := sb.cgroups.Owned(); err != nil || len(owned) != 0 {
		t.Errorf("after close the sandbox still owns cgroups %v (%v)", owned, err)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("hot child %d still exists after close (%v)", pid, err)
	}
	if res, _ := runIn(t, sb, Spec{Module: hello}); res.Outcome != outcome.OK || !bytes.Equal(res.Stdout, []byte("hello from wasm\n")) {
		t.Errorf("a task after the hot children closed: %+v", res)
	}
}

func TestHotConfig(t *testing.T) {
	privtest.RequireRoot(t)
	for _, cfg := range []Config{{HotModules: -1}, {HotModules: 4, WarmPool: 4, UIDCount: 8}} {
		if sb, err := New(cfg); err == nil {
			sb.Close()
			t.Errorf("New(%+v) accepted it", cfg)
		} else if !errors.Is(err, ErrBadLimit) {
			t.Errorf("New(%+v): %v, want ErrBadLimit", cfg, err)
		}
	}
}
