package daemon

import (
	"context"
	"strings"
	"testing"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/task"
)

// TestCrashLoop kills agentboxd with SIGKILL again and again while tasks flow, then checks
// that every accepted task has exactly one final verdict, and that every re-run is an
// attempt in its history. Restarts alternate between the same host id (the new daemon
// reclaims its dead predecessor's leases at once) and another one (the dead host's leases
// run out, and JetStream redelivers their messages).
func TestCrashLoop(t *testing.T) {
	const rounds, perRound = 4, 12
	d := startDaemon(t, options{args: []string{"--lease", "2s", "--slots", "2"}})
	ctx := context.Background()
	digest := push(t, d.client(""), countModule)
	policy := task.RetryPolicy{MaxAttempts: 10, BackoffBase: "1ms", BackoffMax: "50ms"}
	var accepted []string
	for round := 0; round < rounds; round++ {
		c := d.client("")
		for i := 0; i < perRound; i++ {
			tk, err := c.Submit(ctx, task.SubmitRequest{Module: digest, Retry: policy})
			if err != nil {
				t.Fatalf("round %d: submit: %v", round, err)
			}
			accepted = append(accepted, tk.ID)
		}
		waitRunning(t, c)
		d.crash()
		if round%2 == 1 {
			d.args = append(d.args, "--host-id", "test-host-"+string(rune('a'+round)))
		}
		d.restart()
	}
	c := d.client("")
	verdicts := map[string]task.Task{}
	for _, id := range accepted {
		verdicts[id] = waitFinal(t, c, id)
	}
	// One more crash and restart: a final verdict never changes.
	d.crash()
	d.restart()
	c = d.client("")
	reruns := 0
	for _, id := range accepted {
		now, err := c.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		checkHistory(t, verdicts[id], now)
		reruns += len(now.Attempts) - 1
	}
	t.Logf("%d tasks accepted across %d crashes, all final once; %d re-runs, each an attempt in its history", len(accepted), rounds+1, reruns)
}

// waitRunning waits until some task runs, so that the crash lands mid-task.
func waitRunning(t *testing.T, c interface {
	List(context.Context, task.Filter) (task.Page, error)
}) {
	t.Helper()
	for {
		page, err := c.List(context.Background(), task.Filter{State: task.Running, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Tasks) > 0 {
			return
		}
	}
}

// checkHistory: the task is final with one verdict, unchanged since first seen; its last
// attempt gave that verdict; every earlier attempt ended because its holder was lost.
func checkHistory(t *testing.T, first, now task.Task) {
	t.Helper()
	if !now.Final() || now.Verdict == nil {
		t.Errorf("task %s: %s with verdict %v after the crashes", now.ID, now.State, now.Verdict)
		return
	}
	if now.Outcome() != outcome.OK {
		t.Errorf("task %s: final %s (%s), want ok", now.ID, now.Outcome(), now.Verdict.Message)
	}
	if first.Verdict.Outcome != now.Verdict.Outcome || first.Verdict.Message != now.Verdict.Message || len(first.Attempts) != len(now.Attempts) {
		t.Errorf("task %s: final verdict changed from %+v (%d attempts) to %+v (%d attempts)", now.ID, first.Verdict, len(first.Attempts), now.Verdict, len(now.Attempts))
	}
	for i, a := range now.Attempts {
		if a.Verdict == nil {
			t.Errorf("task %s attempt %d has no verdict", now.ID, a.N)
			continue
		}
		if a.N != i+1 {
			t.Errorf("task %s attempt %d numbered %d", now.ID, i+1, a.N)
		}
		last := i == len(now.Attempts)-1
		if last && a.Verdict.Outcome != now.Verdict.Outcome {
			t.Errorf("task %s: last attempt %s, final %s", now.ID, a.Verdict.Outcome, now.Verdict.Outcome)
		}
		if !last && (a.Verdict.Outcome != outcome.SandboxError || !strings.Contains(a.Verdict.Message, "lost its holder")) {
			t.Errorf("task %s attempt %d: %s %q, want a lost holder", now.ID, a.N, a.Verdict.Outcome, a.Verdict.Message)
		}
	}
}
