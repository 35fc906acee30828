package supervisor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/natsd"
	"github.com/agentbox/agentbox/supervisor/natsd/natsdtest"
	"github.com/agentbox/agentbox/supervisor/store"
	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

// BenchmarkRetryLogic is what one retry of a failed attempt costs the daemon, beside the
// attempt itself: "backoff" is the jittered delay (exponential, full jitter, from the
// record's policy strings); "decide" is finish's decision in memory (does the policy retry
// this outcome, the backoff, the attempt ended and the task queued again, then the next
// attempt started); "through-store" is the same two moves as the daemon writes them, each
// a compare-and-set of the record on an embedded JetStream (fsync on every write).
func BenchmarkRetryLogic(b *testing.B) {
	var s Service // backoff reads only the record
	failed := verdict.Verdict{Outcome: outcome.SandboxError, Message: "spawn failed", Warnings: []string{}}
	b.Run("backoff", func(b *testing.B) {
		t := retryRecord("r")
		b.ReportAllocs()
		for n := 1; b.Loop(); n++ {
			if d := s.backoff(*t, n%task.MaxMaxAttempts+1); d < 0 || d > task.DefaultBackoffMax {
				b.Fatalf("backoff %v outside [0, %v]", d, task.DefaultBackoffMax)
			}
		}
	})
	b.Run("decide", func(b *testing.B) {
		t := retryRecord("r")
		b.ReportAllocs()
		for b.Loop() {
			if len(t.Attempts) == t.Retry.MaxAttempts {
				t = retryRecord("r")
			}
			if err := retryOnce(&s, t, failed); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("through-store", func(b *testing.B) {
		st := retryStore(b)
		ctx := context.Background()
		var t *task.Task
		fresh := func(i int) {
			t = retryRecord(fmt.Sprintf("r%d", i))
			if err := st.CreateTask(ctx, t); err != nil {
				b.Fatal(err)
			}
		}
		fresh(0)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if len(t.Attempts) == t.Retry.MaxAttempts {
				b.StopTimer()
				fresh(i)
				b.StartTimer()
			}
			rec, err := st.Mutate(ctx, t.ID, func(t *task.Task) error { return retryOnce(&s, t, failed) })
			if err != nil {
				b.Fatal(err)
			}
			t = &rec
		}
	})
}

// retryOnce ends t's running attempt with v, queued again after its backoff as finish
// does, then starts the next attempt as the dispatch does.
func retryOnce(s *Service, t *task.Task, v verdict.Verdict) error {
	n := t.Current().N
	now := time.Now().UTC()
	final, err := task.EndAttempt(t, n, v, now, t.RetriesOn(v.Outcome), now.Add(s.backoff(*t, n)))
	if err != nil || final {
		return fmt.Errorf("attempt %d of %d: final %v, %v", n, t.Retry.MaxAttempts, final, err)
	}
	return task.Start(t, "bench-host", "bench-host/1", now, DefaultLease)
}

// retryRecord is a task running its first attempt, whose policy retries sandbox_error up
// to the most attempts allowed.
func retryRecord(id string) *task.Task {
	now := time.Now().UTC()
	t := &task.Task{ID: id, Tenant: "default", State: task.Queued, Priority: task.Normal, CreatedAt: now, UpdatedAt: now,
		Module: "a3f1c0d2e4b5a6978812345678901234567890abcdef0123456789abcdef0123",
		Retry: task.RetryPolicy{MaxAttempts: task.MaxMaxAttempts, RetryOn: []outcome.Outcome{outcome.SandboxError},
			BackoffBase: task.DefaultBackoffBase.String(), BackoffMax: task.DefaultBackoffMax.String()},
		Attempts: []task.Attempt{}}
	task.Start(t, "bench-host", "bench-host/1", now, DefaultLease)
	return t
}

// retryStore opens the daemon's store on an embedded JetStream in a temporary dir.
func retryStore(b *testing.B) *store.Store {
	b.Helper()
	js := natsdtest.JetStream(b, natsd.Options{})
	st, err := store.Open(context.Background(), js, store.Config{Lease: DefaultLease, MaxAckPending: 1000, Retention: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	return st
}
