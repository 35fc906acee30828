package bench

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkConcurrentScaling launches n live agents at once through agentboxd (n slots,
// 64 MiB each): one op submits n holders, waits until the host shows all n in stage two
// (the guest starting in its full sandbox), then cancels them and checks every verdict
// (cancelled, one attempt). It reports the launch time (first submit to all n live), the
// rate, and the daemon's submit→attempt start of each task, p50 and p99. The daemon keeps
// its default warm pool; "1000-warm-pool" is the 1,000 again with a pool as large as the
// burst, full before each launch (its filling is not timed: it is done ahead of the tasks,
// which is the point of a pool).
func BenchmarkConcurrentScaling(b *testing.B) {
	for _, n := range []int{1, 2, 8, 32, 100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchScaling(b, n, 0) })
	}
	b.Run("1000-warm-pool", func(b *testing.B) { benchScaling(b, 1000, 1000) })
}

// benchScaling launches n holders; pool > 0 gives the daemon a warm pool of that size.
func benchScaling(b *testing.B, n, pool int) {
	var args []string
	if pool > 0 {
		args = []string{"--warm-pool", fmt.Sprint(pool), "--warm-pool-refill", "2"}
	}
	d, c, digest := holderDaemon(b, n, args...)
	full := func() {
		if pool > 0 {
			waitState(b, fmt.Sprintf("warm pool of %d full", pool), 10*time.Minute, 250*time.Millisecond,
				func() bool { return d.metric(b, "agentbox_warm_pool_ready") >= float64(pool) })
		}
	}
	ids, _ := launchHolders(b, d, c, digest, 1) // warm: the compiled code, the page cache
	cancelHolders(b, d, c, ids)
	launch := &series{key: "launch", name: fmt.Sprintf("%d live agents: first submit to all live", n)}
	start := &series{key: "start", name: fmt.Sprintf("%d live agents: submit→attempt start", n)}
	var wrong []string
	b.StopTimer()
	full()
	b.StartTimer()
	for range b.N {
		ids, took := launchHolders(b, d, c, digest, n)
		launch.add(took, -1)
		b.StopTimer()
		finals, bad := cancelHolders(b, d, c, ids)
		wrong = append(wrong, bad...)
		for _, s := range attemptStarts(finals) {
			start.add(s, -1)
		}
		full()
		b.StartTimer()
	}
	b.StopTimer()
	if len(wrong) > 0 {
		b.Errorf("%d wrong verdicts: %s", len(wrong), strings.Join(wrong[:min(len(wrong), 10)], "; "))
	}
	p50 := quantile(launch.wall, 0.5)
	launch.report(b)
	start.report(b)
	b.ReportMetric(float64(n)/p50.Seconds(), "agents/s")
	b.ReportMetric(float64(len(wrong)), "wrong-verdicts")
	record(b, map[string]float64{"agents": float64(n), "agents_per_s": float64(n) / p50.Seconds(),
		"wrong_verdicts": float64(len(wrong)), "launch_p50_ms": ms(p50)}, launch, start)
}
