package supervisor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/store"
	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

// TestList: filters by state, outcome and label; cursor pagination walks every task once,
// newest first; another tenant lists none of them.
func TestList(t *testing.T) {
	h := newHarness(t)
	s := startService(t, h, baseConfig("host-a"), nil)
	ctx := context.Background()
	hello, exit3 := upload(t, s, "a", "hello.wasm"), upload(t, s, "a", "exit3.wasm")
	var ids []string
	for i := 0; i < 25; i++ {
		parity := map[bool]string{true: "even", false: "odd"}[i%2 == 0]
		ids = append(ids, submit(t, s, "a", task.SubmitRequest{Module: hello, Labels: map[string]string{"parity": parity, "batch": "1"}}).ID)
	}
	for i := 0; i < 2; i++ {
		ids = append(ids, submit(t, s, "a", task.SubmitRequest{Module: exit3, Labels: map[string]string{"parity": "even"}}).ID)
	}
	for _, id := range ids {
		waitFinal(t, s, "a", id)
	}
	waitFor(t, "the index sees every task final", func() bool {
		page, err := s.List(ctx, "a", task.Filter{State: task.Done, Limit: 100})
		return err == nil && len(page.Tasks) == len(ids)
	})

	tests := []struct {
		name   string
		tenant string
		f      task.Filter
		want   int
	}{
		{name: "everything", tenant: "a", want: 27},
		{name: "done", tenant: "a", f: task.Filter{State: task.Done}, want: 27},
		{name: "queued", tenant: "a", f: task.Filter{State: task.Queued}},
		{name: "running", tenant: "a", f: task.Filter{State: task.Running}},
		{name: "outcome ok", tenant: "a", f: task.Filter{Outcome: outcome.OK}, want: 25},
		{name: "outcome exit", tenant: "a", f: task.Filter{Outcome: outcome.Exit}, want: 2},
		{name: "outcome trap", tenant: "a", f: task.Filter{Outcome: outcome.Trap}},
		{name: "label", tenant: "a", f: task.Filter{Labels: map[string]string{"parity": "even"}}, want: 15},
		{name: "two labels", tenant: "a", f: task.Filter{Labels: map[string]string{"parity": "even", "batch": "1"}}, want: 13},
		{name: "label and outcome", tenant: "a", f: task.Filter{Labels: map[string]string{"parity": "even"}, Outcome: outcome.Exit}, want: 2},
		{name: "a label no task has", tenant: "a", f: task.Filter{Labels: map[string]string{"parity": "none"}}},
		{name: "created since now", tenant: "a", f: task.Filter{Since: time.Now().Add(time.Minute)}},
		{name: "created until now", tenant: "a", f: task.Filter{Until: time.Now().Add(time.Minute)}, want: 27},
		{name: "another tenant", tenant: "b"},
		{name: "another tenant, same filter", tenant: "b", f: task.Filter{State: task.Done}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f
			f.Limit = 10
			seen := map[string]bool{}
			var prev task.Task
			for pages := 0; ; pages++ {
				if pages > 10 {
					t.Fatal("pagination does not end")
				}
				page, err := s.List(ctx, tt.tenant, f)
				if err != nil {
					t.Fatalf("List: %v", err)
				}
				if len(page.Tasks) > 10 || (page.NextCursor != "" && len(page.Tasks) != 10) {
					t.Fatalf("page of %d with cursor %q, limit 10", len(page.Tasks), page.NextCursor)
				}
				for _, rec := range page.Tasks {
					if seen[rec.ID] || rec.Tenant != tt.tenant {
						t.Fatalf("task %s of %s listed twice or to tenant %s", rec.ID, rec.Tenant, tt.tenant)
					}
					seen[rec.ID] = true
					if prev.ID != "" && (rec.ID >= prev.ID || rec.CreatedAt.Truncate(time.Millisecond).After(prev.CreatedAt)) {
						t.Fatalf("task %s (%s) listed after %s (%s): want newest first", rec.ID, rec.CreatedAt, prev.ID, prev.CreatedAt)
					}
					prev = rec
				}
				if page.NextCursor == "" {
					break
				}
				f.Cursor = page.NextCursor
			}
			if len(seen) != tt.want {
				t.Fatalf("listed %d tasks, want %d", len(seen), tt.want)
			}
		})
	}
	if _, err := s.List(ctx, "a", task.Filter{Limit: task.MaxPageLimit + 1}); codeOf(t, err).Field != "limit" {
		t.Errorf("a limit past the most: %v", err)
	}
}

// TestWait: Wait returns once the task is final, and with the current record when its
// context ends first; another tenant's task is not found.
func TestWait(t *testing.T) {
	h := newHarness(t)
	s, r := gated(t, h, oneSlot())
	d := upload(t, s, "a", "hello.wasm")
	ctx := context.Background()
	rec := submit(t, s, "a", task.SubmitRequest{Module: d, Args: []string{"t"}})

	got := make(chan task.Task, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, patience)
		defer cancel()
		w, _ := s.Wait(ctx, "a", rec.ID)
		got <- w
	}()
	r.nextStart(t)
	short, cancel := context.WithCancel(ctx)
	cancel()
	if w, err := s.Wait(short, "a", rec.ID); err != nil || w.State != task.Running {
		t.Fatalf("Wait with an ended context: %s %v, want the running record", w.State, err)
	}
	if _, err := s.Wait(ctx, "b", rec.ID); codeOf(t, err).Code != verdict.NotFound {
		t.Fatalf("Wait by another tenant: %v", err)
	}
	if _, err := s.Wait(ctx, "a", "0123"); codeOf(t, err).Code != verdict.NotFound {
		t.Fatalf("Wait on no task: %v", err)
	}
	r.release(t)
	if w := <-got; !w.Final() || w.Outcome() != outcome.OK {
		t.Fatalf("Wait returned %s %s, want final ok", w.State, w.Outcome())
	}
	if w := waitFinal(t, s, "a", rec.ID); w.Outcome() != outcome.OK {
		t.Fatal("a Wait on a final task")
	}
}

// TestSubscribe: a subscriber gets its own tenant's changes, up to the final one, and
// never another tenant's.
func TestSubscribe(t *testing.T) {
	h := newHarness(t)
	s := startService(t, h, baseConfig("host-a"), nil)
	da, db := upload(t, s, "a", "hello.wasm"), upload(t, s, "b", "hello.wasm")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evA, evB := s.Subscribe(ctx, "a"), s.Subscribe(ctx, "b")

	ta := submit(t, s, "a", task.SubmitRequest{Module: da})
	untilFinal(t, evA, "a", ta.ID)
	tb := submit(t, s, "b", task.SubmitRequest{Module: db})
	// b's channel holds nothing of a's: its first events are b's own task's.
	untilFinal(t, evB, "b", tb.ID)
	cancel()
	for range evA { // closed when the context ends
	}
}

// untilFinal reads events until id's final one; every event must be tenant's.
func untilFinal(t *testing.T, ch <-chan task.Event, tenant, id string) {
	t.Helper()
	var states []task.State
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("events closed after %v", states)
			}
			if e.Task.Tenant != tenant || e.Task.ID != id || e.Type != "task" {
				t.Fatalf("tenant %s got event %s of task %s of tenant %s", tenant, e.Type, e.Task.ID, e.Task.Tenant)
			}
			states = append(states, e.Task.State)
			if e.Task.Final() {
				if states[0] != task.Queued {
					t.Errorf("events %v: want the queued record first", states)
				}
				return
			}
		case <-time.After(patience):
			t.Fatalf("no final event for %s after %v", id, states)
		}
	}
}

// TestIndexSummary: the index's queue depth follows the records, per tenant.
func TestIndexSummary(t *testing.T) {
	h := newHarness(t)
	s, r := gated(t, h, oneSlot())
	d := upload(t, s, "a", "hello.wasm")
	for i := 0; i < 3; i++ {
		submit(t, s, "a", task.SubmitRequest{Module: d, Args: []string{fmt.Sprint(i)}})
	}
	r.nextStart(t)
	waitFor(t, "two queued, one running", func() bool {
		return s.QueueDepth()["a"] == 2 && s.Running() == 1
	})
	for i := 0; i < 3; i++ {
		r.release(t)
		if i < 2 {
			r.nextStart(t)
		}
	}
	waitFor(t, "nothing queued", func() bool { return len(s.QueueDepth()) == 0 })
}

// TestUnwait: a waiter that gave up is dropped, and the others stay until the task ends.
func TestUnwait(t *testing.T) {
	x := newIndex()
	x.apply(store.Change{Task: task.Task{ID: "t1", Tenant: "a", State: task.Running}})
	first, _, _ := x.waitFinal("a", "t1")
	second, _, _ := x.waitFinal("a", "t1")
	x.unwait("t1", first)
	if n := len(x.waiters["t1"]); n != 1 {
		t.Fatalf("%d waiters after one gave up, want 1", n)
	}
	x.apply(store.Change{Task: task.Task{ID: "t1", Tenant: "a", State: task.Done}})
	select {
	case <-second:
	default:
		t.Fatal("the remaining waiter was not woken when the task ended")
	}
	if len(x.waiters) != 0 {
		t.Errorf("waiters left after the end: %v", x.waiters)
	}
}

// TestExpired: retention removes final tasks past the age, then the oldest final ones past
// the count, and never a task that is not final.
func TestExpired(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	x := newIndex()
	add := func(id string, s task.State, age time.Duration) {
		x.apply(store.Change{Task: task.Task{ID: id, Tenant: "a", State: s, UpdatedAt: now.Add(-age)}})
	}
	add("01-old-done", task.Done, 48*time.Hour)
	add("02-old-queued", task.Queued, 48*time.Hour)
	add("03-done", task.Done, time.Hour)
	add("04-done", task.Done, time.Minute)
	add("05-done", task.Done, time.Second)
	add("06-running", task.Running, time.Second)
	s := &Service{index: x, cfg: Config{Retention: 24 * time.Hour, MaxRecords: 2}}
	var got []string
	for _, e := range s.expired(now) {
		got = append(got, e.id)
	}
	want := []string{"01-old-done", "03-done"} // 4 final: the old one by age, then one more by count
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("expired %v, want %v", got, want)
	}
}
