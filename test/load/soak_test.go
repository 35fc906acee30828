package load

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/agentbox/agentbox/supervisor/client"
)

// Soak settings: AGENTBOX_SOAK=<duration> turns the soak on; AGENTBOX_SOAK_RATE is the
// submit rate bound in tasks per second, AGENTBOX_SOAK_ROUND the tasks between two samples.
const (
	soakSlots     = 16
	soakRate      = 20
	soakRound     = 400
	growRSSKB     = 32 << 10 // RSS may drift this much before a monotonic rise is a leak
	growFDs       = slackFDs
	growGoroutine = slackGoroutines
)

// TestSoak submits the mixed load continuously at a bounded rate for AGENTBOX_SOAK. Every
// round of tasks it lets the daemon drain, checks every verdict, lets it settle (nothing of
// a task left, goroutines and fds back within a few of the baseline) and takes a sample;
// it fails if a round does not settle, or if RSS, fds or goroutines rose at every sample
// by more than a tolerance in all.
func TestSoak(t *testing.T) {
	dur := soakDuration(t)
	rate, round := envInt(t, "AGENTBOX_SOAK_RATE", soakRate), envInt(t, "AGENTBOX_SOAK_ROUND", soakRound)
	// The daemon keeps final records (and their index) up to --max-records: a bound a few
	// rounds deep lets the soak reach its steady state early, so that growth after it is a leak.
	d := startLoaded(t, soakSlots, "--max-records", strconv.Itoa(4*round))
	c := d.client()
	digests := pushAll(t, c, mixed)
	runMixed(t, d, c, digests, "soak-warmup", soakSlots)
	samples := []sample{settle(t, d, "after the warm-up", func(s sample) []string { return s.leftovers() })}
	t.Logf("soak for %s at ≤ %d tasks/s, a sample every %d tasks; baseline: %s", dur, rate, round, samples[0])
	end := time.Now().Add(dur)
	passedAll, failedAll := 0, 0
	for r := 1; time.Now().Before(end); r++ {
		run := fmt.Sprintf("soak-%d", r)
		subs := submitPaced(t, c, digests, run, round, rate)
		passed, failures := check(c, subs, finals(t, d, c, run, round))
		passedAll, failedAll = passedAll+passed, failedAll+len(failures)
		report(t, run, passed, failures)
		d.proxy.closeAll()
		s := settle(t, d, "after "+run, idleAs(samples[0]))
		samples = append(samples, s)
		t.Logf("sample %d (%d tasks): %s", r, r*round, s)
	}
	t.Logf("soak: %d passed, %d failed", passedAll, failedAll)
	checkGrowth(t, samples)
}

func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	s := os.Getenv("AGENTBOX_SOAK")
	if s == "" {
		t.Skip("the soak runs only with AGENTBOX_SOAK=<duration> (make soak DURATION=10m)")
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("AGENTBOX_SOAK=%q: want a duration such as 10m", s)
	}
	return d
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

// submitPaced submits n mixed tasks one at a time at no more than rate per second.
func submitPaced(t *testing.T, c *client.Client, digests map[string]string, run string, n, rate int) []submitted {
	t.Helper()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	subs := make([]submitted, 0, n)
	for i := range n {
		<-tick.C
		k := mixed[i%len(mixed)]
		tk, err := c.Submit(context.Background(), k.request(digests, run, i))
		if err != nil {
			t.Fatalf("submit %d of %s: %v", i, run, err)
		}
		subs = append(subs, submitted{id: tk.ID, kind: k})
	}
	return subs
}

// checkGrowth fails t for a metric that rose at every sample after the first by more
// than its tolerance in all: a leak grows with the tasks, noise does not.
func checkGrowth(t *testing.T, samples []sample) {
	t.Helper()
	if len(samples) < 3 {
		t.Logf("only %d samples: too few to tell a trend (a longer AGENTBOX_SOAK, or a smaller AGENTBOX_SOAK_ROUND)", len(samples))
		return
	}
	series := []struct {
		name string
		tol  int64
		get  func(sample) int64
	}{
		{"RSS kB", growRSSKB, func(s sample) int64 { return s.rssKB }},
		{"fds (but its children's)", growFDs, func(s sample) int64 { return int64(s.ownFDs()) }},
		{"goroutines", growGoroutine, func(s sample) int64 { return int64(s.goroutines) }},
	}
	var threads []int
	for _, s := range samples {
		threads = append(threads, s.threads)
	}
	t.Logf("threads at each sample: %v", threads)
	for _, m := range series {
		var vals []int64
		for _, s := range samples[1:] {
			vals = append(vals, m.get(s))
		}
		t.Logf("%s at each sample: %v", m.name, vals)
		if rising(vals) && vals[len(vals)-1]-vals[0] > m.tol {
			t.Errorf("%s rose at every sample, by %d in all (tolerance %d): a leak", m.name, vals[len(vals)-1]-vals[0], m.tol)
		}
	}
}

// rising reports whether vals never fall and end above where they began.
func rising(vals []int64) bool {
	for i := 1; i < len(vals); i++ {
		if vals[i] < vals[i-1] {
			return false
		}
	}
	return vals[len(vals)-1] > vals[0]
}
