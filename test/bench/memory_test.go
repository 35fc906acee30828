package bench

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// BenchmarkMemoryPerAgent is the host memory one live, idle agent costs through agentboxd:
// n holders (AGENTBOX_BENCH_MEMORY_AGENTS, default 100) live at once and idle (their CPU
// time has stopped moving), measured two ways against the idle daemon just before:
//   - memavail: the drop in the host's MemAvailable, over n (everything on the host counts,
//     other work included);
//   - pss+kmem: what the tasks hold, added up: each child's PSS (its private pages and its
//     share of shared ones, the one sealed child binary among them), the kernel memory
//     charged to each task's cgroup, and the daemon's own growth in PSS, over n.
//
// The parts are reported too (pss, kmem, daemon), and cgroup: the tasks' cgroups' whole
// usage (user, kernel and page cache), for reference.
func BenchmarkMemoryPerAgent(b *testing.B) {
	n := memoryAgents(b)
	d, c, digest := holderDaemon(b, n)
	ids, _ := launchHolders(b, d, c, digest, n) // warm: the daemon's threads, the page cache
	cancelHolders(b, d, c, ids)
	var m memorySample
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		availBefore, daemonBefore := memAvailableBytes(), pssBytes(d.pid())
		b.StartTimer()
		ids, _ := launchHolders(b, d, c, digest, n)
		b.StopTimer()
		live := waitIdle(b, d, n)
		m = m.add(measureAgents(b, d, live, availBefore, daemonBefore))
		if _, wrong := cancelHolders(b, d, c, ids); len(wrong) > 0 {
			b.Errorf("%d wrong verdicts: %v", len(wrong), wrong[:min(len(wrong), 10)])
		}
		b.StartTimer()
	}
	b.StopTimer()
	per := m.perAgent(n * b.N)
	for _, v := range per {
		b.ReportMetric(v.bytes, v.name+"-B/agent")
	}
	values := map[string]float64{"agents": float64(n)}
	for _, v := range per {
		values[v.name+"_bytes_per_agent"] = v.bytes
	}
	record(b, values, &series{key: "memory", name: fmt.Sprintf("%d idle live agents", n)})
}

func memoryAgents(b *testing.B) int {
	s := os.Getenv("AGENTBOX_BENCH_MEMORY_AGENTS")
	if s == "" {
		return 100
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("AGENTBOX_BENCH_MEMORY_AGENTS=%q: want a positive number", s)
	}
	return n
}

// memorySample is one round's totals, in bytes.
type memorySample struct {
	memAvail, pss, kmem, daemon, cgroup int64
}

func (m memorySample) add(o memorySample) memorySample {
	return memorySample{m.memAvail + o.memAvail, m.pss + o.pss, m.kmem + o.kmem, m.daemon + o.daemon, m.cgroup + o.cgroup}
}

type perAgent struct {
	name  string
	bytes float64
}

func (m memorySample) perAgent(agents int) []perAgent {
	per := func(v int64) float64 { return float64(v) / float64(agents) }
	return []perAgent{
		{"memavail", per(m.memAvail)},
		{"pss+kmem", per(m.pss + m.kmem + m.daemon)},
		{"pss", per(m.pss)},
		{"kmem", per(m.kmem)},
		{"daemon", per(m.daemon)},
		{"cgroup", per(m.cgroup)},
	}
}

// waitIdle waits until n holders are live and their CPU time, all told, has stopped
// moving (at most a tick per 20 agents over a quarter second: every guest is asleep in
// poll_oneoff), and returns their pids.
func waitIdle(b *testing.B, d *daemon, n int) []int {
	b.Helper()
	var live []int
	_, last := stageTwo(d.pid())
	waitState(b, fmt.Sprintf("%d holders idle", n), 2*time.Minute, 250*time.Millisecond, func() bool {
		var ticks int64
		live, ticks = stageTwo(d.pid())
		idle := len(live) >= n && ticks-last <= int64(max(1, n/20))
		last = ticks
		return idle
	})
	return live
}

// measureAgents takes the round's totals with the holders live and idle.
func measureAgents(b *testing.B, d *daemon, live []int, availBefore, daemonBefore int64) memorySample {
	b.Helper()
	m := memorySample{memAvail: availBefore - memAvailableBytes(), daemon: pssBytes(d.pid()) - daemonBefore}
	for _, pid := range live {
		m.pss += pssBytes(pid)
	}
	groups, kernel, usage, err := taskMemory(d.pid())
	if err != nil {
		b.Fatalf("task cgroups: %v", err)
	}
	if groups < len(live) {
		b.Fatalf("%d task memory cgroups for %d live agents", groups, len(live))
	}
	m.kmem, m.cgroup = kernel, usage
	return m
}
