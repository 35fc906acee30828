package load

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentbox/agentbox/supervisor/client"
	"github.com/agentbox/agentbox/supervisor/task"
)

// Tolerances of the leak check: what an idle daemon may show above its baseline. A few
// goroutines and fds come and go with a scrape (the /metrics request itself, the
// JetStream client's timers). Threads are not counted: the Go runtime never gives back a
// thread it made, and it makes one for each goroutine blocked in a system call at once
// (cgroup writes and removals, under the mixed load), a number that varies from batch to
// batch (14, 20, then 43 threads after three batches, with 54 goroutines each time). A
// leaked thread is one stuck in a system call with nothing to do: an idle daemon's
// threads all wait in futex, epoll or a sleep (sample.busyThreads), as many as before.
const (
	slackGoroutines = 10
	slackFDs        = 4
	slackBusy       = 2
)

// agents is AGENTBOX_LOAD_AGENTS, default 120.
func agents(t *testing.T) int {
	t.Helper()
	s := os.Getenv("AGENTBOX_LOAD_AGENTS")
	if s == "" {
		return 120
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("AGENTBOX_LOAD_AGENTS=%q: want a positive number", s)
	}
	return n
}

// startLoaded starts a daemon with a slot and 64 MiB of budget per agent.
func startLoaded(t *testing.T, n int, args ...string) *daemon {
	t.Helper()
	return startDaemon(t, append([]string{"--slots", strconv.Itoa(n), "--memory-budget", fmt.Sprintf("%dMi", n*taskMemoryBytes>>20)}, args...)...)
}

// TestLoadConcurrentAgents runs N agents at once through the daemon (N holders that keep
// their slots until cancelled, which must all be seen running together), then N of the
// mixed kinds at once, checking every verdict and that each task ran exactly once; then
// the daemon and the host must be back at their baseline: no process, cgroup, uid lock,
// mount or scratch of any task left (an idle daemon holds its warm pool and its hot children
// ready, nothing else), goroutines, fds and busy threads within a few of before.
func TestLoadConcurrentAgents(t *testing.T) {
	n := agents(t)
	d := startLoaded(t, n)
	c := d.client()
	digests := pushAll(t, c, append(mixed, holder))

	runMixed(t, d, c, digests, "warmup", len(mixed))
	pre := settle(t, d, "after the warm-up", func(s sample) []string { return s.leftovers() })
	t.Logf("baseline after the warm-up: %s", pre)

	heldAtPeak := runHolders(t, d, c, digests, "holders", n)
	afterHolders := settle(t, d, "after the holders", idleAs(pre))
	t.Logf("after %d holders: %s", n, afterHolders)
	checkLocksFree(t, d, heldAtPeak, afterHolders)

	runMixed(t, d, c, digests, "mixed", n)
	final := settle(t, d, "after the mixed load", idleAs(pre))
	t.Logf("after %d mixed: %s", n, final)
	if final.mounts != pre.mounts {
		t.Logf("the daemon's mount table has %d entries, %d before (none under the test dir; other processes may mount)", final.mounts, pre.mounts)
	}
}

// runMixed runs n tasks of the mixed kinds at once (and the invalid uploads meanwhile) and
// checks every verdict.
func runMixed(t *testing.T, d *daemon, c *client.Client, digests map[string]string, run string, n int) {
	t.Helper()
	start := time.Now()
	subs := submitAll(t, c, digests, run, n, func(i int) kind { return mixed[i%len(mixed)] })
	refused := checkInvalidPushes(c)
	got := finals(t, d, c, run, n)
	passed, failures := check(c, subs, got)
	report(t, fmt.Sprintf("%s (%d tasks of %d kinds, all final %s after the first submit)", run, n, len(mixed), time.Since(start).Round(time.Millisecond)),
		passed, append(failures, refused...))
	d.proxy.closeAll()
}

// runHolders submits n holders, waits until the daemon runs all n at once (its running
// gauge, the listing, and the host: n sandboxed processes, n cgroups, n uid locks), then
// cancels them and checks that each ended cancelled after one attempt. It returns the
// uid lock files held at the peak.
func runHolders(t *testing.T, d *daemon, c *client.Client, digests map[string]string, run string, n int) []string {
	t.Helper()
	memBefore := memAvailable()
	// The daemon is idle: every hot task counted from here on is a holder's, and no holder
	// ends before the cancel.
	hotBase := int64(d.metric("agentbox_hot_tasks_total"))
	start := time.Now()
	subs := submitAll(t, c, digests, run, n, func(int) kind { return holder })
	// The gauge counts a task from its attempt's start, a moment before its child exists:
	// the host must show the n guests too, children running a task in stage two or in a
	// hot child (census.running: a hot child's stage is "hot" whether it waits or runs,
	// and the holder's module gets one from its second run on).
	var peak sample
	waitFor(t, d, fmt.Sprintf("%d running", n), 10*time.Minute, func() bool {
		if d.metric("agentbox_running_tasks") < float64(n) {
			return false
		}
		if cs, err := takeCensus(d); err != nil {
			return false
		} else if r, exact := cs.running(hotBase); !exact || r < n {
			return false
		}
		// The same state again, in full: a hot child may have got ready meanwhile.
		peak = probe(d)
		r, exact := peak.running(hotBase)
		return exact && r >= n
	})
	launch := time.Since(start)
	running := countTasks(t, c, task.Filter{State: task.Running, Labels: map[string]string{"run": run}})
	t.Logf("%d holders running at once %s after the first submit (%.1f ms per agent); at the peak: %s", n, launch.Round(time.Millisecond),
		float64(launch.Microseconds())/1000/float64(n), peak)
	t.Logf("host MemAvailable dropped %.1f MiB: %.2f MiB per live agent (the whole host: other work counts too)",
		mib(memBefore-peak.memAvailKB), mib(memBefore-peak.memAvailKB)/float64(n))
	assertPeak(t, n, running, peak, hotBase)
	cancelAll(t, c, subs)
	got := finals(t, d, c, run, n)
	passed, failures := check(c, subs, got)
	report(t, fmt.Sprintf("%s (%d at once, then cancelled)", run, n), passed, failures)
	d.proxy.closeAll()
	return lockNames(peak.locks)
}

// assertPeak checks that the n holders were really running together: listed running, and
// each a live sandboxed process of the daemon's, in its own cgroup, with its own uid.
// hotBase is agentbox_hot_tasks_total before the holders (census.running).
func assertPeak(t *testing.T, n, running int, peak sample, hotBase int64) {
	t.Helper()
	if running != n {
		t.Errorf("%d holders listed running at the peak, want %d", running, n)
	}
	if guests, exact := peak.running(hotBase); guests < n || !exact {
		t.Errorf("%d guests below the daemon at the peak (%d in stage two, %d in hot children; %d hot children in all, %d of them ready; told apart exactly: %v), want at least %d (one per task)",
			guests, peak.guests, peak.hotTasks-hotBase, peak.hot, peak.hotReady, exact, n)
	}
	t.Logf("at the peak %d holders ran in stage two, %d in hot children", peak.guests, peak.hotTasks-hotBase)
	if g := groupNames(peak.cgroups); g < n {
		t.Errorf("%d task cgroups at the peak, want at least %d", g, n)
	}
	if len(peak.locks) < n {
		t.Errorf("%d uid locks held by the daemon at the peak, want at least %d", len(peak.locks), n)
	}
	// os/exec's Wait alone would hold one OS thread per running task in waitid(2).
	if peak.inWait > 0 {
		t.Errorf("%d of the daemon's %d threads sit in wait(2) at the peak, want none (sandbox awaitExit)", peak.inWait, peak.threads)
	}
}

// groupNames counts distinct group names across hierarchies (v1 has one dir per controller).
func groupNames(dirs []string) int {
	seen := map[string]bool{}
	for _, d := range dirs {
		seen[d[strings.LastIndexByte(d, '/')+1:]] = true
	}
	return len(seen)
}

// lockNames strips the holder from heldLocks' entries.
func lockNames(held []string) []string {
	var out []string
	for _, h := range held {
		name, _, _ := strings.Cut(h, " ")
		out = append(out, name)
	}
	return out
}

// cancelAll cancels every task of subs, sixteen at a time.
func cancelAll(t *testing.T, c *client.Client, subs []submitted) {
	t.Helper()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	for _, s := range subs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := c.Cancel(context.Background(), s.id); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Sprintf("cancel %s: %v", s.id, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		t.Error(e)
	}
}

// idleAs is the settled condition after a load: nothing of a task left, goroutines, fds
// (but those the children it holds account for: see sample.ownFDs) and busy threads
// within the slack of pre.
func idleAs(pre sample) func(sample) []string {
	return func(s sample) []string {
		bad := s.leftovers()
		if s.goroutines > pre.goroutines+slackGoroutines {
			bad = append(bad, fmt.Sprintf("goroutines %d, baseline %d (+%d allowed)", s.goroutines, pre.goroutines, slackGoroutines))
		}
		if s.ownFDs() > pre.ownFDs()+slackFDs {
			bad = append(bad, fmt.Sprintf("fds %d besides the %d its children hold, baseline %d besides %d (+%d allowed)",
				s.ownFDs(), s.childFDs, pre.ownFDs(), pre.childFDs, slackFDs))
		}
		if s.busyThreads > pre.busyThreads+slackBusy {
			bad = append(bad, fmt.Sprintf("%d threads busy in a system call, baseline %d (+%d allowed)", s.busyThreads, pre.busyThreads, slackBusy))
		}
		return bad
	}
}

// settle probes d until bad finds nothing, and fails t with what it last found after two
// minutes: a leak never settles, a slow machine only settles later.
func settle(t *testing.T, d *daemon, when string, bad func(sample) []string) sample {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		s := probe(d)
		found := bad(s)
		if len(found) == 0 {
			return s
		}
		if time.Now().After(deadline) {
			t.Errorf("%s, the daemon did not settle in 2m: %s\n(%s)", when, strings.Join(found, "; "), s)
			if len(s.children) > 0 {
				t.Logf("left processes:\n%s", describe(s.children))
			}
			return s
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// describe lists pids with their command lines.
func describe(pids []int) string {
	var b strings.Builder
	for _, p := range pids {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		fmt.Fprintf(&b, "  %d %s\n", p, strings.ReplaceAll(string(cmd), "\x00", " "))
	}
	return b.String()
}

// checkLocksFree asks the kernel whether each uid lock held at the peak can be taken now;
// one that cannot must be held by some other agentbox, or by this daemon for a child of
// its warm pool or a hot child (idle.held() of them at most: uids are taken lowest first,
// so the pool's refill and the hot children take some of the peak's).
func checkLocksFree(t *testing.T, d *daemon, names []string, idle sample) {
	t.Helper()
	busy := 0
	for _, name := range names {
		free, err := flockFree(name)
		if err != nil {
			t.Errorf("flock %s: %v", name, err)
		}
		if !free {
			busy++
		}
	}
	if busy > 0 {
		held, _ := heldLocks([]int{d.pid()})
		if len(held) > idle.held() {
			t.Errorf("uid locks still held by the daemon: %v, more than one for each of its warm pool's %d children and its %d hot children",
				held, idle.poolReady, idle.hotReady)
		}
		t.Logf("%d of the %d uid locks of the peak are held by other processes now", busy, len(names))
	}
}
