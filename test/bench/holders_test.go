package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/client"
	"github.com/agentbox/agentbox/supervisor/task"
)

// Live agents through the daemon: test/load's holder module sleeps in poll_oneoff until
// cancelled, so n of them stay live together for as long as the benchmark looks at them.
// "Live" is what the host shows, never a guess of time: the daemon's child in stage two.

// holderMemory is each holder's memory limit; a daemon for n of them has n slots and n
// times this budget.
const holderMemory = 64 << 20

// holderDaemon starts a daemon with n slots and the holders' budget, and uploads the
// holder module.
func holderDaemon(b *testing.B, n int, args ...string) (*daemon, *client.Client, string) {
	b.Helper()
	bin := agentboxBinary(b)
	// No hot children: a burst of one module takes at most one (launchHolders counts the
	// live agents in stage two, and a hot child's argv says "hot"), and an idle one would
	// be counted as an agent's memory.
	d := startDaemon(b, filepath.Dir(bin), append([]string{"--slots", strconv.Itoa(n), "--memory-budget", fmt.Sprintf("%dMi", n*holderMemory>>20),
		"--hot-modules", "0"}, args...)...)
	c := d.client(b)
	return d, c, d.push(b, c, holderWasm)
}

// launchHolders submits n holders (in batches, as `agentbox submit --batch` does) and
// returns their ids once all n are live, with the time from the first submit to then.
func launchHolders(b *testing.B, d *daemon, c *client.Client, digest string, n int) ([]string, time.Duration) {
	b.Helper()
	const batch = 200
	start := time.Now()
	var ids []string
	for lo := 0; lo < n; lo += batch {
		var rs []task.SubmitRequest
		for range min(batch, n-lo) {
			rs = append(rs, task.SubmitRequest{Module: digest, Limits: task.Limits{Memory: "64Mi", Timeout: "1h"}})
		}
		results, err := c.SubmitBatch(context.Background(), rs)
		if err != nil {
			b.Fatalf("submit %d holders: %v", len(rs), err)
		}
		for _, r := range results {
			if r.Task == nil {
				b.Fatalf("holder refused: %v", r.Error)
			}
			ids = append(ids, r.Task.ID)
		}
	}
	poll := 50 * time.Millisecond
	if n >= 100 {
		poll = 250 * time.Millisecond // scanning /proc costs the host as much as a spawn
	}
	waitState(b, fmt.Sprintf("%d holders live", n), 10*time.Minute, poll, func() bool {
		live, _ := stageTwo(d.pid())
		return len(live) >= n
	})
	return ids, time.Since(start)
}

// cancelHolders cancels every holder, waits for every final record and for the host to
// show none of them left; it returns the records and the ones whose verdict is wrong (a
// holder must end cancelled, after exactly one attempt).
func cancelHolders(b *testing.B, d *daemon, c *client.Client, ids []string) (finals []task.Task, wrong []string) {
	b.Helper()
	var mu sync.Mutex
	parallel(len(ids), 16, func(i int) {
		if _, err := c.Cancel(context.Background(), ids[i]); err != nil {
			mu.Lock()
			wrong = append(wrong, fmt.Sprintf("cancel %s: %v", ids[i], err))
			mu.Unlock()
		}
	})
	finals = make([]task.Task, len(ids))
	parallel(len(ids), 64, func(i int) {
		final, err := c.Wait(context.Background(), ids[i])
		mu.Lock()
		defer mu.Unlock()
		finals[i] = final
		if err != nil || final.Outcome() != outcome.Cancelled || len(final.Attempts) != 1 {
			wrong = append(wrong, fmt.Sprintf("%s: %s after %d attempts, %v", ids[i], final.Outcome(), len(final.Attempts), err))
		}
	})
	waitState(b, "no holder left on the host", 2*time.Minute, 50*time.Millisecond, func() bool {
		live, _ := stageTwo(d.pid())
		return len(live) == 0
	})
	return finals, wrong
}

// attemptStarts is each record's submit→attempt start, as the daemon recorded it.
func attemptStarts(finals []task.Task) []time.Duration {
	var out []time.Duration
	for _, t := range finals {
		if len(t.Attempts) > 0 {
			out = append(out, t.Attempts[0].StartedAt.Sub(t.CreatedAt))
		}
	}
	return out
}

// parallel calls f(0..n-1), at most k at once.
func parallel(n, k int, f func(i int)) {
	sem := make(chan struct{}, k)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}

// waitState polls until ok, failing b with what it waited for after patience.
func waitState(b *testing.B, what string, patience, poll time.Duration, ok func() bool) {
	b.Helper()
	deadline := time.Now().Add(patience)
	for !ok() {
		if time.Now().After(deadline) {
			b.Fatalf("not %s after %v", what, patience)
		}
		time.Sleep(poll)
	}
}
