package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentbox/agentbox/cgroups"
	"github.com/agentbox/agentbox/internal/privtest"
	"github.com/agentbox/agentbox/internal/testhook"
	"github.com/agentbox/agentbox/outcome"
)

func newPooledSandbox(t *testing.T, size int) *Sandbox {
	t.Helper()
	privtest.RequireRoot(t)
	sb, err := New(Config{WarmPool: size})
	if err != nil {
		t.Fatalf("sandbox.New: %v", err)
	}
	t.Cleanup(func() { sb.Close() })
	waitReady(t, sb, size)
	return sb
}

// waitReady waits until the pool holds n ready children.
func waitReady(t testing.TB, sb *Sandbox, n int) {
	t.Helper()
	for sb.PoolStats().Ready != n {
		if f := sb.PoolStats().Failed; f > 0 {
			t.Fatalf("the pool failed to start %d children", f)
		}
		time.Sleep(time.Millisecond)
	}
}

// readyPids lists the pids of the pool's ready children, leaving them in the pool.
func readyPids(sb *Sandbox) []int {
	var pids []int
	for range len(sb.pool.ready) {
		c := <-sb.pool.ready
		pids = append(pids, c.cmd.Process.Pid)
		sb.pool.ready <- c
	}
	return pids
}

// taskGroups lists the sandbox's cgroups that are no warm pool child's: once the pool is
// full again, those are what tasks left behind.
func taskGroups(t *testing.T, sb *Sandbox) []string {
	t.Helper()
	pooled := map[string]bool{}
	if sb.pool != nil {
		waitReady(t, sb, cap(sb.pool.ready))
		for range len(sb.pool.ready) {
			c := <-sb.pool.ready
			pooled[c.group.Name()] = true
			sb.pool.ready <- c
		}
	}
	groups, err := sb.cgroups.Owned()
	if err != nil {
		t.Fatalf("list our cgroups: %v", err)
	}
	return slices.DeleteFunc(groups, func(g string) bool { return pooled[g] })
}

// TestWarmPoolHandsEachChildOneTask: tasks run in the children that waited for them, each
// child takes one task only, and the pool refills with new ones.
func TestWarmPoolHandsEachChildOneTask(t *testing.T) {
	sb := newPooledSandbox(t, 2)
	pooled := readyPids(sb)
	var ran []int
	for i := range 4 {
		// Without seccomp, as in TestPayloadSeesEmptyWorld: the allowlist denies getuid and
		// uname, and this is about the namespaces and the root.
		res, err := sb.Run(testhook.With(context.Background(), testhook.Hooks{Payload: "identity",
			Unsafe: testhook.Unsafe{NoSeccomp: true}, OnStart: func(pid int) { ran = append(ran, pid) }}), Spec{})
		if err != nil || res.Outcome != outcome.OK {
			t.Fatalf("task %d: %v %+v", i, err, res)
		}
		if string(res.Stdout) != "uid=0 gid=0 pid=1 host=agentbox root=[]\n" {
			t.Errorf("task %d in a pooled child sees %q, want the sandbox's view", i, res.Stdout)
		}
	}
	if !slices.Contains(ran, pooled[0]) {
		t.Errorf("tasks ran in %v, none in the first pooled child %d", ran, pooled[0])
	}
	seen := map[int]bool{}
	for _, pid := range ran {
		if seen[pid] {
			t.Errorf("child %d ran two tasks (ran in %v)", pid, ran)
		}
		seen[pid] = true
	}
	waitReady(t, sb, 2)
	for _, pid := range readyPids(sb) {
		if seen[pid] {
			t.Errorf("child %d is back in the pool after its task", pid)
		}
	}
}

// TestWarmPoolTaskLimits: a pooled child waits under the pool's limits; its task runs
// under its own, written to the cgroup at the handoff, whether they are above or below.
func TestWarmPoolTaskLimits(t *testing.T) {
	sb := newPooledSandbox(t, 1)
	for _, lim := range []Limits{
		{MemoryBytes: 96 << 20, CPUs: 0.5, Pids: 17},
		{MemoryBytes: 1 << 30, CPUs: 1, Pids: 200},
	} {
		waitReady(t, sb, 1)
		pooled := readyPids(sb)[0]
		stdin, release := io.Pipe()
		var got map[string]string
		var ran int
		res, err := sb.Run(testhook.With(context.Background(), testhook.Hooks{Payload: "hold", OnStart: func(pid int) {
			ran = pid
			got = cgroupLimitsOf(t, sb, pid)
			release.Close()
		}}), Spec{Limits: lim, Stdin: stdin})
		if err != nil || res.Outcome != outcome.OK {
			t.Fatalf("limits %+v: %v %+v", lim, err, res)
		}
		if ran != pooled {
			t.Fatalf("the task ran in child %d, not the pooled %d", ran, pooled)
		}
		want := map[string]string{"memory": fmt.Sprint(lim.MemoryBytes), "pids": fmt.Sprint(lim.Pids), "cpu": fmt.Sprint(int(lim.CPUs * 100000))}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("limits %+v: the task's cgroup has %s %q, want %q", lim, k, got[k], v)
			}
		}
	}
}

// cgroupLimitsOf reads the memory, pids and CPU quota of pid's cgroup.
func cgroupLimitsOf(t *testing.T, sb *Sandbox, pid int) map[string]string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatalf("cgroup of %d: %v", pid, err)
	}
	defer f.Close()
	paths := map[string]string{} // controller ("" on v2) → path
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		for _, c := range strings.Split(parts[1], ",") {
			paths[c] = parts[2]
		}
	}
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		return strings.TrimSpace(string(b))
	}
	if sb.cgroups.Mode() == cgroups.Unified {
		d := filepath.Join("/sys/fs/cgroup", paths[""])
		quota, _, _ := strings.Cut(read(filepath.Join(d, "cpu.max")), " ")
		return map[string]string{"memory": read(filepath.Join(d, "memory.max")), "pids": read(filepath.Join(d, "pids.max")), "cpu": quota}
	}
	return map[string]string{
		"memory": read(filepath.Join("/sys/fs/cgroup/memory", paths["memory"], "memory.limit_in_bytes")),
		"pids":   read(filepath.Join("/sys/fs/cgroup/pids", paths["pids"], "pids.max")),
		"cpu":    read(filepath.Join("/sys/fs/cgroup/cpu", paths["cpu"], "cpu.cfs_quota_us")),
	}
}

// TestWarmPoolDeadChild: a pooled child that died while it waited costs its task nothing:
// take finds it dead and discards it (a death between take and the handoff fails the
// handoff instead, to the same end), and the task runs in a child started for it.
func TestWarmPoolDeadChild(t *testing.T) {
	sb := newPooledSandbox(t, 1)
	c := <-sb.pool.ready
	dead := c.cmd.Process.Pid
	c.cmd.Process.Kill()
	awaitExit(dead)
	sb.pool.ready <- c
	var ran int
	res, err := sb.Run(testhook.With(context.Background(), testhook.Hooks{Payload: "identity", OnStart: func(pid int) { ran = pid }}), Spec{})
	if err != nil || res.Outcome != outcome.OK {
		t.Fatalf("after a dead pooled child: %v %+v", err, res)
	}
	if ran == dead || ran == 0 {
		t.Errorf("the task ran in child %d; the dead one was %d", ran, dead)
	}
}

// TestWarmPoolCloseLeavesNothing: closing the pool ends its children and removes their
// cgroups.
func TestWarmPoolCloseLeavesNothing(t *testing.T) {
	sb := newPooledSandbox(t, 3)
	pids := readyPids(sb)
	if owned, err := sb.cgroups.Owned(); err != nil || len(owned) != 3 {
		t.Fatalf("with 3 pooled children the sandbox owns cgroups %v (%v), want 3", owned, err)
	}
	sb.pool.close()
	if owned, err := sb.cgroups.Owned(); err != nil || len(owned) != 0 {
		t.Errorf("after the pool's close the sandbox still owns cgroups %v (%v)", owned, err)
	}
	for _, pid := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pooled child %d still exists after the pool's close (%v)", pid, err)
		}
	}
	sb.pool.close() // a second close (the sandbox's Close makes a third) is a no-op
}

// TestWarmPoolTaskCleanup: a task in a pooled child leaves nothing when it is killed: its
// processes and its cgroup (the pool's, until the handoff) go with the verdict.
func TestWarmPoolTaskCleanup(t *testing.T) {
	sb := newPooledSandbox(t, 1)
	c := <-sb.pool.ready
	group, pid := c.group.Name(), c.cmd.Process.Pid
	sb.pool.ready <- c
	res, err := sb.Run(testhook.With(context.Background(), testhook.Hooks{Payload: "spin"}), Spec{Limits: Limits{Timeout: 200 * time.Millisecond}})
	if err != nil || res.Outcome != outcome.Timeout {
		t.Fatalf("spin in a pooled child: %v %+v", err, res)
	}
	if alive(pid) {
		t.Errorf("pooled child %d still runs after its task's timeout", pid)
	}
	if left := taskGroups(t, sb); len(left) != 0 {
		t.Errorf("after the task our cgroups are %v besides the pool's, want none (the task's was %s)", left, group)
	}
}

func TestWarmPoolConfig(t *testing.T) {
	privtest.RequireRoot(t)
	for _, cfg := range []Config{{WarmPool: -1}, {WarmPool: 8, UIDCount: 8}, {WarmPool: 2, WarmPoolRefill: 3}, {WarmPool: 2, WarmPoolRefill: -1}} {
		if sb, err := New(cfg); err == nil {
			sb.Close()
			t.Errorf("New(%+v) accepted the pool", cfg)
		} else if !errors.Is(err, ErrBadLimit) {
			t.Errorf("New(%+v): %v, want ErrBadLimit", cfg, err)
		}
	}
}

// firstWrite records when its first byte came.
type firstWrite struct{ at time.Time }

func (f *firstWrite) Write(p []byte) (int, error) {
	if f.at.IsZero() {
		f.at = time.Now()
	}
	return len(p), nil
}

// BenchmarkWarmPool runs the hello module (compiled code cached) in a sandbox without a
// warm pool, in one with a pool of 4 and in one that also keeps hot children, in turn, in
// this process: the supervisor's side of one task, Run to the guest's first byte (guest
// start) and to the verdict, p50 of each. Every pool is at rest before each run, as
// between bursts: full, and the module's hot child loaded.
func BenchmarkWarmPool(b *testing.B) {
	privtest.RequireRoot(b)
	hello := module(b, "hello.wasm")
	type way struct {
		name   string
		sb     *Sandbox
		start  []time.Duration
		finish []time.Duration
	}
	var ways []*way
	for _, cfg := range []struct {
		name      string
		pool, hot int
	}{{"pool0", 0, 0}, {"pool4", 4, 0}, {"hot", 4, 4}} {
		sb, err := New(Config{CacheDir: b.TempDir(), WarmPool: cfg.pool, HotModules: cfg.hot})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { sb.Close() })
		ways = append(ways, &way{name: cfg.name, sb: sb})
	}
	run := func(w *way) {
		out := &firstWrite{}
		begin := time.Now()
		res, err := w.sb.Run(context.Background(), Spec{Module: hello, Stdout: out})
		if err != nil || res.Outcome != outcome.OK {
			b.Fatalf("%s: %v %+v", w.name, err, res)
		}
		w.start = append(w.start, out.at.Sub(begin))
		w.finish = append(w.finish, time.Since(begin))
	}
	for _, w := range ways {
		run(w) // the compile, and the cache's first read
		run(w) // the second run, after which the module has a hot child
		w.start, w.finish = nil, nil
	}
	b.ResetTimer()
	// Every way at rest, not only the next: a pool's refill or a hot child's warm-up after
	// one way's run would otherwise run beside the next way's.
	rest := func() {
		for _, w := range ways {
			if w.sb.pool != nil {
				waitReady(b, w.sb, cap(w.sb.pool.ready))
			}
			if w.sb.hot != nil {
				waitHot(b, w.sb, 1)
			}
		}
	}
	for range b.N {
		for _, w := range ways {
			rest()
			run(w)
		}
	}
	b.StopTimer()
	p50 := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2].Microseconds()) / 1000
	}
	for _, w := range ways {
		b.ReportMetric(p50(w.start), w.name+"-guest-start-p50-ms")
		b.ReportMetric(p50(w.finish), w.name+"-verdict-p50-ms")
	}
}

// TestStartChildFailureReleases: a child that cannot be started (here its cgroup's name is
// taken) is an error, and leaves its uid free and nothing else behind. Without a warm pool,
// whose filler could take the uid between the test's release and its squat.
func TestStartChildFailureReleases(t *testing.T) {
	sb := newPooledSandbox(t, 0)
	sl, err := sb.slots.acquire()
	if err != nil {
		t.Fatal(err)
	}
	uid := sl.uid
	sl.release()
	squatter, err := sb.cgroups.Create(fmt.Sprintf("task-%d", uid), cgroups.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Delete()
	if c, err := sb.startChild(poolLimits, testhook.Unsafe{}); err == nil {
		c.release()
		t.Fatalf("startChild succeeded with uid %d's cgroup taken", uid)
	}
	again, err := sb.slots.acquire()
	if err != nil {
		t.Fatal(err)
	}
	defer again.release()
	if again.uid != uid {
		t.Errorf("after the failed start the lowest free uid is %d, want %d back", again.uid, uid)
	}
}
