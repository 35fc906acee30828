package supervisor

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

// TestCancelQueued: a queued task cancelled is final at once and never runs.
func TestCancelQueued(t *testing.T) {
	h := newHarness(t)
	s, r := gated(t, h, oneSlot())
	d := upload(t, s, "a", "hello.wasm")
	ctx := context.Background()
	blocker := submit(t, s, "a", task.SubmitRequest{Module: d, Args: []string{"blocker"}})
	r.nextStart(t)
	victim := submit(t, s, "a", task.SubmitRequest{Module: d, Args: []string{"victim"}})
	after := submit(t, s, "a", task.SubmitRequest{Module: d, Args: []string{"after"}})

	if _, err := s.Cancel(ctx, "b", victim.ID); codeOf(t, err).Code != verdict.NotFound {
		t.Fatalf("another tenant cancelled the task: %v", err)
	}
	rec, err := s.Cancel(ctx, "a", victim.ID)
	if err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if !rec.Final() || rec.Outcome() != outcome.Cancelled || len(rec.Attempts) != 0 {
		t.Fatalf("cancelled record %+v: want final cancelled with no attempt", rec)
	}
	if again, err := s.Cancel(ctx, "a", victim.ID); err != nil || again.Outcome() != outcome.Cancelled {
		t.Fatalf("a second cancel: %+v %v, want the same final record", again, err)
	}
	// The victim's message comes before after's: once after has run, the victim's was
	// delivered and dropped.
	r.release(t)
	if n := r.nextStart(t); n != "after" {
		t.Fatalf("started %s after the blocker, want after", n)
	}
	r.release(t)
	waitFinal(t, s, "a", blocker.ID)
	waitFinal(t, s, "a", after.ID)
	if names, _ := r.seen(); slices.Contains(names, "victim") {
		t.Fatalf("the cancelled task ran: %v", names)
	}
	v, err := s.Verdict(ctx, "a", victim.ID)
	if err != nil || v.Outcome != outcome.Cancelled || v.Warnings == nil {
		t.Fatalf("Verdict: %+v %v, want cancelled", v, err)
	}
	waitFor(t, "the cancel counted once", func() bool { return s.obs.count(outcome.Cancelled) == 1 })
}

// TestCancelRunning: a running guest that spins forever is killed, and the task ends
// cancelled, once.
func TestCancelRunning(t *testing.T) {
	h := newHarness(t)
	r := newFaultRunner(h.sb)
	s := startService(t, h, baseConfig("host-a"), r)
	d := upload(t, s, "a", "loop.wasm")
	ctx := context.Background()
	rec := submit(t, s, "a", task.SubmitRequest{Module: d, Args: []string{"spin"}, Limits: task.Limits{Timeout: "10m"}})
	r.nextStart(t)
	waitState(t, s, "a", rec.ID, task.Running)
	got, err := s.Cancel(ctx, "a", rec.ID)
	if err != nil || got.State != task.Running || !got.CancelRequested {
		t.Fatalf("Cancel: %+v %v, want running with the cancel requested", got, err)
	}
	rec = waitFinal(t, s, "a", rec.ID)
	if rec.Outcome() != outcome.Cancelled || !reflect.DeepEqual(outcomes(rec), []outcome.Outcome{outcome.Cancelled}) {
		t.Fatalf("final %s with attempts %v: want one attempt, cancelled", rec.Outcome(), outcomes(rec))
	}
	v, err := s.Verdict(ctx, "a", rec.ID)
	if err != nil || v.Outcome != outcome.Cancelled || !strings.Contains(v.Message, "cancel") {
		t.Fatalf("Verdict: %+v %v", v, err)
	}
}

// TestCancelInBackoff: a task cancelled while it waits for its retry ends cancelled, and
// its verdict says so, not the failed attempt's.
func TestCancelInBackoff(t *testing.T) {
	h := newHarness(t)
	r := newFaultRunner(h.sb)
	r.failFirst = 1
	r.gate = make(chan struct{}) // a retry that did start waits here, to be killed
	go func() { r.gate <- struct{}{} }()
	s := startService(t, h, baseConfig("host-a"), r)
	d := upload(t, s, "a", "hello.wasm")
	ctx := context.Background()
	rec := submit(t, s, "a", task.SubmitRequest{Module: d, Args: []string{"t"},
		Retry: task.RetryPolicy{BackoffBase: "1m", BackoffMax: "1m"}})
	// Its retry waits up to a minute (full jitter): the cancel almost always finds it
	// queued. Should the retry have started, it is held at the gate and killed: cancelled
	// all the same.
	waitFor(t, "the first attempt failed", func() bool {
		got, err := s.Get(ctx, "a", rec.ID)
		return err == nil && len(got.Attempts) >= 1 && got.Attempts[0].EndedAt != nil
	})
	if _, err := s.Cancel(ctx, "a", rec.ID); err != nil {
		t.Fatal(err)
	}
	rec = waitFinal(t, s, "a", rec.ID)
	if rec.Outcome() != outcome.Cancelled || outcomes(rec)[0] != outcome.SandboxError {
		t.Fatalf("final %s with attempts %v: want cancelled after the sandbox_error", rec.Outcome(), outcomes(rec))
	}
	v, err := s.Verdict(ctx, "a", rec.ID)
	if err != nil || v.Outcome != outcome.Cancelled {
		t.Fatalf("Verdict: %+v %v, want cancelled", v, err)
	}
}

// TestIdempotency: one key, one task, however often and however concurrently it is
// submitted; keys are the tenant's own.
func TestIdempotency(t *testing.T) {
	h := newHarness(t)
	s, _ := gated(t, h, oneSlot())
	ctx := context.Background()
	da, db := upload(t, s, "a", "hello.wasm"), upload(t, s, "b", "hello.wasm")

	first, created, err := s.Submit(ctx, "a", task.SubmitRequest{Module: da, IdempotencyKey: "k1"})
	if err != nil || !created {
		t.Fatalf("first submit: %v %t", err, created)
	}
	second, created, err := s.Submit(ctx, "a", task.SubmitRequest{Module: da, IdempotencyKey: "k1"})
	if err != nil || created || second.ID != first.ID {
		t.Fatalf("second submit: %s created %t %v, want %s not created", second.ID, created, err, first.ID)
	}
	other, created, err := s.Submit(ctx, "b", task.SubmitRequest{Module: db, IdempotencyKey: "k1"})
	if err != nil || !created || other.ID == first.ID {
		t.Fatalf("tenant b with a's key: %s created %t %v, want a task of its own", other.ID, created, err)
	}

	const n = 10
	ids := make([]string, n)
	made := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			rec, c, err := s.Submit(ctx, "a", task.SubmitRequest{Module: da, IdempotencyKey: "k2"})
			ids[i], made[i], errs[i] = rec.ID, c, err
		}()
	}
	close(start)
	wg.Wait()
	createdCount := 0
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("submit %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("concurrent submits of one key got tasks %v", ids)
		}
		if made[i] {
			createdCount++
		}
	}
	if createdCount != 1 {
		t.Fatalf("%d of the concurrent submits created the task, want 1", createdCount)
	}
	waitFor(t, "the index sees a's tasks", func() bool {
		page, err := s.List(ctx, "a", task.Filter{})
		return err == nil && len(page.Tasks) == 2
	})
	page, _ := s.List(ctx, "a", task.Filter{})
	for _, rec := range page.Tasks {
		if rec.ID != first.ID && rec.ID != ids[0] {
			t.Errorf("tenant a has task %s besides its two keys' tasks", rec.ID)
		}
	}
}

// TestLeaseTakeover: a daemon dies (its connection closed, no drain) with a task
// running; once its lease passes, another daemon on the same JetStream runs the task as
// a new attempt, and the history shows the attempt that lost its holder.
func TestLeaseTakeover(t *testing.T) {
	tests := []struct {
		name        string
		host        string // the second daemon's host id; host-a is the dead one's
		lease       time.Duration
		maxAttempts int
		want        []outcome.Outcome
	}{
		{name: "another host", host: "host-b", want: []outcome.Outcome{outcome.SandboxError, outcome.OK}},
		// A restarted daemon knows its predecessor is dead: it takes the task back at once,
		// long before a lease longer than this test's patience would pass.
		{name: "the same host restarted", host: "host-a", lease: time.Hour, want: []outcome.Outcome{outcome.SandboxError, outcome.OK}},
		{name: "no attempt left", host: "host-b", maxAttempts: 1, want: []outcome.Outcome{outcome.SandboxError}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			cfg := baseConfig("host-a")
			if tt.lease != 0 {
				cfg.Lease = tt.lease
			}
			dead, r := gated(t, h, cfg)
			d := upload(t, dead, "a", "hello.wasm")
			rec := submit(t, dead, "a", task.SubmitRequest{Module: d, Args: []string{"t"}, Retry: fast(tt.maxAttempts)})
			r.nextStart(t)
			running := waitState(t, dead, "a", rec.ID, task.Running)
			dead.nc.Close() // the daemon dies: no renewal, no verdict; its run stays held

			cfg.HostID = tt.host
			s := startService(t, h, cfg, nil)
			rec = waitFinal(t, s, "a", rec.ID)
			if got := outcomes(rec); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("attempts %v, want %v", got, tt.want)
			}
			lost := rec.Attempts[0]
			if lost.Host != "host-a" || !strings.Contains(lost.Verdict.Message, "lost its holder") || !strings.Contains(lost.Verdict.Message, running.Lease.Host) {
				t.Errorf("attempt 1 %+v: want host-a's, lost its holder %s", lost, running.Lease.Host)
			}
			if len(rec.Attempts) > 1 && rec.Attempts[1].Host != tt.host {
				t.Errorf("attempt 2 ran on %s, want %s", rec.Attempts[1].Host, tt.host)
			}
			v, err := s.Verdict(context.Background(), "a", rec.ID)
			if err != nil || v.Outcome != tt.want[len(tt.want)-1] {
				t.Fatalf("Verdict: %+v %v", v, err)
			}
		})
	}
}

// TestDrain: a daemon that shuts down kills what still runs after the grace period and
// leaves it queued, with the interrupted attempt in its history; the next daemon runs it.
func TestDrain(t *testing.T) {
	tests := []struct {
		name        string
		maxAttempts int
	}{
		{name: "attempts left", maxAttempts: 3},
		{name: "on its last attempt", maxAttempts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			r := newFaultRunner(h.sb)
			r.hang = moduleBytes(t, "loop.wasm") // on this host, the guest spins until killed
			first := startService(t, h, baseConfig("host-a"), r)
			d := upload(t, first, "a", "hello.wasm")
			rec := submit(t, first, "a", task.SubmitRequest{Module: d, Args: []string{"t"}, Retry: fast(tt.maxAttempts)})
			r.nextStart(t)
			waitState(t, first, "a", rec.ID, task.Running)
			first.Drain(50 * time.Millisecond)

			rec, err := first.Get(context.Background(), "a", rec.ID)
			if err != nil {
				t.Fatal(err)
			}
			if rec.State != task.Queued || len(rec.Attempts) != 1 || rec.Attempts[0].Verdict == nil {
				t.Fatalf("after the drain: %s with attempts %v, want queued with the interrupted attempt", rec.State, outcomes(rec))
			}
			if v := rec.Attempts[0].Verdict; v.Outcome != outcome.SandboxError || !strings.Contains(v.Message, "shut down") {
				t.Errorf("interrupted attempt's verdict %+v: want sandbox_error saying the daemon shut down", v)
			}

			next := startService(t, h, baseConfig("host-b"), nil)
			rec = waitFinal(t, next, "a", rec.ID)
			if got := outcomes(rec); !reflect.DeepEqual(got, []outcome.Outcome{outcome.SandboxError, outcome.OK}) {
				t.Fatalf("attempts %v, want the interrupted one then ok", got)
			}
		})
	}
}

// TestTwoHosts: two live daemons on one JetStream share the work; with no host lost,
// every task runs exactly once. A cancel sent to one reaches the task running on the other.
func TestTwoHosts(t *testing.T) {
	h := newHarness(t)
	ra, rb := newFaultRunner(h.sb), newFaultRunner(h.sb)
	a := startService(t, h, baseConfig("host-a"), ra)
	b := startService(t, h, baseConfig("host-b"), rb)
	ctx := context.Background()
	d := upload(t, a, "t", "hello.wasm")
	const n = 20
	var ids []string
	for i := 0; i < n; i++ {
		via := a
		if i%2 == 1 {
			via = b
		}
		ids = append(ids, submit(t, via, "t", task.SubmitRequest{Module: d, Args: []string{fmt.Sprint(i)}}).ID)
	}
	for _, id := range ids {
		rec := waitFinal(t, a, "t", id)
		if rec.Outcome() != outcome.OK || len(rec.Attempts) != 1 {
			t.Errorf("task %s: %s in %d attempts, want ok in one", id, rec.Outcome(), len(rec.Attempts))
		}
	}
	na, _ := ra.seen()
	nb, _ := rb.seen()
	runs := map[string]int{}
	for _, name := range append(na, nb...) {
		runs[name]++
	}
	for i := 0; i < n; i++ {
		if runs[fmt.Sprint(i)] != 1 {
			t.Errorf("task %d ran %d times", i, runs[fmt.Sprint(i)])
		}
	}

	spin := upload(t, a, "t", "loop.wasm")
	rec := submit(t, a, "t", task.SubmitRequest{Module: spin, Args: []string{"spin"}, Limits: task.Limits{Timeout: "10m"}})
	rec = waitState(t, a, "t", rec.ID, task.Running)
	other := a
	if rec.Current().Host == "host-a" {
		other = b
	}
	if _, err := other.Cancel(ctx, "t", rec.ID); err != nil {
		t.Fatal(err)
	}
	if rec = waitFinal(t, other, "t", rec.ID); rec.Outcome() != outcome.Cancelled || len(rec.Attempts) != 1 {
		t.Fatalf("cancelled from the other host: %s in %d attempts", rec.Outcome(), len(rec.Attempts))
	}
}

// TestStaleHolderDropsItsResult: while a holder runs attempt 1, the task is taken from it
// (as another host does once the lease passed, here forced through the record). The
// holder's next renewal finds out, kills its run and drops its result: attempt 1 keeps
// the takeover's verdict, and attempt 2, which needs the one slot back, ends the task.
func TestStaleHolderDropsItsResult(t *testing.T) {
	h := newHarness(t)
	s, r := gated(t, h, oneSlot())
	d := upload(t, s, "a", "hello.wasm")
	ctx := context.Background()
	rec := submit(t, s, "a", task.SubmitRequest{Module: d, Args: []string{"t"}, Retry: fast(0)})
	r.nextStart(t)
	waitState(t, s, "a", rec.ID, task.Running)
	if _, err := s.st.Mutate(ctx, rec.ID, func(t *task.Task) error {
		_, err := task.LoseLease(t, time.Now().UTC(), true)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	r.nextStart(t) // attempt 2: the stale run ended, or the one slot would still be taken
	r.release(t)
	rec = waitFinal(t, s, "a", rec.ID)
	if got := outcomes(rec); !reflect.DeepEqual(got, []outcome.Outcome{outcome.SandboxError, outcome.OK}) {
		t.Fatalf("attempts %v, want the taken-over one and ok", got)
	}
	if v := rec.Attempts[0].Verdict; !strings.Contains(v.Message, "lost its holder") {
		t.Errorf("attempt 1's verdict %q was overwritten by its stale holder", v.Message)
	}
	if names, _ := r.seen(); len(names) != 2 {
		t.Errorf("runs %v, want 2", names)
	}
}
