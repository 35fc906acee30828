package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/natsd"
	"github.com/agentbox/agentbox/supervisor/natsd/natsdtest"
	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

// newStore opens a store on a real embedded JetStream of its own.
func newStore(t *testing.T) *Store {
	t.Helper()
	js := natsdtest.JetStream(t, natsd.Options{})
	st, err := Open(context.Background(), js, Config{Lease: 2 * time.Second, MaxAckPending: 1000, Retention: time.Hour})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return st
}

func newTask(id string) *task.Task {
	now := time.Now().UTC()
	return &task.Task{ID: id, Tenant: "a", State: task.Queued, Priority: task.Normal, CreatedAt: now, UpdatedAt: now,
		Retry:    task.RetryPolicy{MaxAttempts: 3, RetryOn: []outcome.Outcome{outcome.SandboxError}},
		Attempts: []task.Attempt{}}
}

func TestOpenTwice(t *testing.T) {
	st := newStore(t)
	if _, err := Open(context.Background(), st.JetStream(), st.cfg); err != nil {
		t.Fatalf("a second Open of the same resources (a restart, a second host): %v", err)
	}
	if err := st.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestTaskRecord(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	rec := newTask("t1")
	if err := st.CreateTask(ctx, rec); err != nil || rec.Revision == 0 {
		t.Fatalf("CreateTask: %v (revision %d)", err, rec.Revision)
	}
	if err := st.CreateTask(ctx, newTask("t1")); err == nil {
		t.Fatal("a second CreateTask of the same id succeeded")
	}
	got, err := st.GetTask(ctx, "t1")
	if err != nil || got.Revision != rec.Revision || got.State != task.Queued {
		t.Fatalf("GetTask: %+v %v", got, err)
	}
	stale := got
	got.Labels = map[string]string{"k": "v"}
	if err := st.UpdateTask(ctx, &got); err != nil {
		t.Fatalf("UpdateTask: %v", err)
	}
	stale.Labels = map[string]string{"k": "stale"}
	if err := st.UpdateTask(ctx, &stale); !errors.Is(err, ErrConflict) {
		t.Fatalf("UpdateTask at an old revision: %v, want ErrConflict", err)
	}
	if _, err := st.GetTask(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetTask of no record: %v, want ErrNotFound", err)
	}
	if _, err := st.Mutate(ctx, "nope", func(*task.Task) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Mutate of no record: %v, want ErrNotFound", err)
	}
	if err := st.DeleteTask(ctx, "t1"); err != nil {
		t.Fatalf("DeleteTask: %v", err)
	}
	if _, err := st.GetTask(ctx, "t1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetTask after delete: %v, want ErrNotFound", err)
	}
}

// TestMutateHammer: 20 writers race to end the same task. Exactly one move out of the
// state they all read wins; every later attempt is refused by the state machine (not by
// the CAS alone), and the final verdict, once written, never changes: a watcher sees
// every revision after the first final one carry the same verdict.
func TestMutateHammer(t *testing.T) {
	const writers = 20
	tests := []struct {
		name string
		// setup prepares the record all writers read.
		setup func(*task.Task)
		// move is writer i's change.
		move func(i int, t *task.Task) (final bool, err error)
		from task.State // the state exactly one writer moves it out of
	}{
		{
			name:  "end attempt against cancel of a running task",
			setup: func(t *task.Task) { task.Start(t, "h", "h/1", time.Now().UTC(), time.Minute) },
			move: func(i int, t *task.Task) (bool, error) {
				if i%2 == 1 {
					return task.Cancel(t, time.Now().UTC()) // marks a running task, ends a queued one
				}
				v := verdict.Verdict{Outcome: outcome.OK, Message: fmt.Sprintf("writer %d", i), Warnings: []string{}}
				return task.EndAttempt(t, 1, v, time.Now().UTC(), false, time.Time{})
			},
			from: task.Running,
		},
		{
			name:  "start against cancel of a queued task",
			setup: func(*task.Task) {},
			move: func(i int, t *task.Task) (bool, error) {
				if i%2 == 1 {
					return task.Cancel(t, time.Now().UTC())
				}
				return false, task.Start(t, "h", fmt.Sprintf("h/%d", i), time.Now().UTC(), time.Minute)
			},
			from: task.Queued,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			st := newStore(t)
			rec := newTask("t1")
			tt.setup(rec)
			if err := st.CreateTask(ctx, rec); err != nil {
				t.Fatal(err)
			}
			watchCtx, stopWatch := context.WithCancel(ctx)
			changes, err := st.WatchTasks(watchCtx, func(err error) { t.Errorf("watch: %v", err) })
			if err != nil {
				t.Fatal(err)
			}
			// The watcher collects every revision until the one the test names last.
			until := make(chan uint64, 1)
			seen := make(chan []task.Task, 1)
			go func() {
				var all []task.Task
				var target, last uint64
				for target == 0 || last < target {
					select {
					case c, ok := <-changes:
						if !ok {
							seen <- all
							return
						}
						if !c.Ready {
							all = append(all, c.Task)
							last = max(last, c.Task.Revision)
						}
					case target = <-until:
					}
				}
				seen <- all
			}()

			type result struct {
				from  task.State // the state the written move read
				to    task.State // and the one it wrote
				final bool
				err   error
			}
			results := make([]result, writers)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := 0; i < writers; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					var from, to task.State
					var final bool
					_, err := st.Mutate(ctx, "t1", func(t *task.Task) error {
						from = t.State // the last call is the one written
						var err error
						final, err = tt.move(i, t)
						to = t.State
						return err
					})
					results[i] = result{from, to, final, err}
				}()
			}
			close(start)
			wg.Wait()

			out, finals := 0, 0
			var winner int
			for i, r := range results {
				var te *task.ErrTransition
				switch {
				case r.err == nil && r.from == tt.from && r.to != tt.from:
					out++
					winner = i
				case r.err != nil && !errors.As(r.err, &te):
					t.Errorf("writer %d: %v, want success or an *ErrTransition", i, r.err)
				}
				if r.err == nil && r.final {
					finals++
				}
			}
			if out != 1 || finals > 1 {
				t.Fatalf("%d writers moved the task out of %s and %d made it final, want exactly 1 and at most 1: %+v", out, tt.from, finals, results)
			}
			got, err := st.GetTask(ctx, "t1")
			if err != nil {
				t.Fatal(err)
			}
			if tt.from == task.Running {
				// Whoever ended the attempt is the one final verdict; marks came before it.
				if !got.Final() || got.Verdict.Message != fmt.Sprintf("writer %d", winner) {
					t.Fatalf("final record %+v: want the verdict of writer %d", got, winner)
				}
			}
			if tt.from == task.Queued && got.Final() != (winner%2 == 1) {
				t.Fatalf("final %t, want %t (writer %d won)", got.Final(), winner%2 == 1, winner)
			}

			// Later writers, the winner included, never change a final verdict.
			if got.Final() {
				for i := 0; i < writers; i++ {
					if _, err := st.Mutate(ctx, "t1", func(t *task.Task) error { _, err := tt.move(i, t); return err }); err == nil {
						t.Fatalf("writer %d changed a final record", i)
					}
				}
			}
			// One more write, so that the watcher has seen everything before it stops.
			last, _ := st.GetTask(ctx, "t1")
			last.UpdatedAt = time.Now().UTC()
			if err := st.UpdateTask(ctx, &last); err != nil {
				t.Fatal(err)
			}
			until <- last.Revision
			var all []task.Task
			select {
			case all = <-seen:
			case <-time.After(time.Minute): // a hang, reported as one
				t.Fatalf("the watcher never saw revision %d", last.Revision)
			}
			stopWatch()
			var finalV *verdict.Verdict
			for _, s := range all {
				if s.Final() && finalV == nil {
					finalV = s.Verdict
				}
				if finalV != nil && (!s.Final() || !reflect.DeepEqual(s.Verdict, finalV)) {
					t.Fatalf("revision %d: state %s verdict %+v after the final verdict %+v", s.Revision, s.State, s.Verdict, finalV)
				}
			}
		})
	}
}

func TestWatchTasks(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := newStore(t)
	for _, id := range []string{"t1", "t2"} {
		if err := st.CreateTask(ctx, newTask(id)); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := st.WatchTasks(ctx, func(err error) { t.Errorf("watch: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	var initial []string
	for c := range ch {
		if c.Ready {
			break
		}
		initial = append(initial, c.Task.ID)
	}
	if !reflect.DeepEqual(initial, []string{"t1", "t2"}) {
		t.Fatalf("initial records %v, want t1 t2 then the ready mark", initial)
	}
	if _, err := st.Mutate(ctx, "t1", func(t *task.Task) error { _, err := task.Cancel(t, time.Now()); return err }); err != nil {
		t.Fatal(err)
	}
	if c := <-ch; c.Task.ID != "t1" || !c.Task.Final() || c.Deleted {
		t.Fatalf("change %+v, want t1 final", c)
	}
	if err := st.DeleteTask(ctx, "t2"); err != nil {
		t.Fatal(err)
	}
	if c := <-ch; c.Task.ID != "t2" || !c.Deleted {
		t.Fatalf("change %+v, want t2 deleted", c)
	}
	cancel()
	for range ch { // closes when the watch ends
	}
}

func TestWatchEmptyIsReady(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := newStore(t).WatchTasks(ctx, func(error) {})
	if err != nil {
		t.Fatal(err)
	}
	if c := <-ch; !c.Ready {
		t.Fatalf("first change of an empty bucket %+v, want the ready mark", c)
	}
}

// TestClaimIdempotencyKeyConcurrent: ten submits of one key at once; one claims it, and
// every other learns the winner's id.
func TestClaimIdempotencyKeyConcurrent(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	const n = 10
	type claim struct {
		holder  string
		claimed bool
		err     error
	}
	claims := make([]claim, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			h, ok, err := st.ClaimIdempotencyKey(ctx, "key", fmt.Sprintf("id-%d", i))
			claims[i] = claim{h, ok, err}
		}()
	}
	close(start)
	wg.Wait()
	var winner string
	for i, c := range claims {
		if c.err != nil {
			t.Fatalf("claim %d: %v", i, c.err)
		}
		if c.claimed {
			if winner != "" {
				t.Fatalf("two claims won: %s and %s", winner, c.holder)
			}
			winner = fmt.Sprintf("id-%d", i)
			if c.holder != winner {
				t.Fatalf("winner %d told holder %s", i, c.holder)
			}
		}
	}
	if winner == "" {
		t.Fatal("no claim won")
	}
	for i, c := range claims {
		if c.holder != winner {
			t.Errorf("claim %d told holder %s, want %s", i, c.holder, winner)
		}
	}
	if err := st.ReplaceIdempotencyKey(ctx, "key", "id-new"); err != nil {
		t.Fatal(err)
	}
	if h, ok, err := st.ClaimIdempotencyKey(ctx, "key", "id-late"); err != nil || ok || h != "id-new" {
		t.Fatalf("claim after replace: %s %t %v, want id-new held", h, ok, err)
	}
}

// TestQueue: a tenant's priority is its own subject and consumer: a fetch sees only its
// messages, in publish order, and a republish with the same message id is dropped.
func TestQueue(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	pub := []struct {
		tenant string
		p      task.Priority
		id     string
	}{
		{"a", task.Normal, "a-n1"}, {"a", task.High, "a-h1"}, {"b", task.Normal, "b-n1"},
		{"a", task.Normal, "a-n2"}, {"a", task.Low, "a-l1"}, {"a", task.Normal, "a-n3"},
	}
	for _, m := range pub {
		if err := st.Enqueue(ctx, m.tenant, m.p, m.id, m.id); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Enqueue(ctx, "a", task.Normal, "a-n1", "a-n1"); err != nil { // a duplicate
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		tenant string
		p      task.Priority
		want   []string
	}{
		{name: "a normal, FIFO, no duplicate", tenant: "a", p: task.Normal, want: []string{"a-n1", "a-n2", "a-n3"}},
		{name: "a high", tenant: "a", p: task.High, want: []string{"a-h1"}},
		{name: "a low", tenant: "a", p: task.Low, want: []string{"a-l1"}},
		{name: "b normal", tenant: "b", p: task.Normal, want: []string{"b-n1"}},
		{name: "b high: none", tenant: "b", p: task.High},
		{name: "c: none, never seen", tenant: "c", p: task.Normal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for {
				m, err := st.Next(ctx, tt.tenant, tt.p)
				if err != nil {
					t.Fatalf("Next: %v", err)
				}
				if m == nil {
					break
				}
				got = append(got, string(m.Data()))
				if err := m.DoubleAck(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("fetched %v, want %v", got, tt.want)
			}
		})
	}
}

// TestQueueRedelivery: a nak puts the message back; one neither acked nor marked in
// progress comes back after the lease (AckWait), to another fetcher.
func TestQueueRedelivery(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	if err := st.Enqueue(ctx, "a", task.Normal, "t1", "t1"); err != nil {
		t.Fatal(err)
	}
	m, err := st.Next(ctx, "a", task.Normal)
	if err != nil || m == nil {
		t.Fatalf("Next: %v %v", m, err)
	}
	if age := Age(m, time.Now()); age < 0 || age > time.Hour {
		t.Errorf("age %s of a message just published", age)
	}
	if again, _ := st.Next(ctx, "a", task.Normal); again != nil {
		t.Fatal("a message in flight was delivered twice")
	}
	m.Nak()
	m = nextWithin(t, st, "a", "t1")
	// Abandon it, as a holder that died: it comes back once its AckWait passes.
	m = nextWithin(t, st, "a", "t1")
	if md, _ := m.Metadata(); md.NumDelivered < 3 {
		t.Errorf("delivered %d times, want 3", md.NumDelivered)
	}
	m.DoubleAck(ctx)
}

func nextWithin(t *testing.T, st *Store, tenant, want string) jetstream.Msg {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		m, err := st.Next(context.Background(), tenant, task.Normal)
		if err != nil {
			t.Fatal(err)
		}
		if m != nil {
			if string(m.Data()) != want {
				t.Fatalf("got %s, want %s", m.Data(), want)
			}
			return m
		}
		time.Sleep(20 * time.Millisecond) // polling, not asserting on time
	}
	t.Fatalf("%s not redelivered", want)
	return nil
}

// TestModulesPerTenant: tenant b cannot see, read, list or delete a's module, and learns
// nothing of it.
func TestModulesPerTenant(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	const d = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	wasm := []byte("\x00asm\x01\x00\x00\x00")
	m, err := st.PutModule(ctx, "a", d, wasm)
	if err != nil || m.Tenant != "a" || m.Digest != d || m.Bytes != uint64(len(wasm)) {
		t.Fatalf("PutModule: %+v %v", m, err)
	}
	tests := []struct {
		name string
		do   func() error
	}{
		{name: "info", do: func() error { _, err := st.ModuleInfo(ctx, "b", d); return err }},
		{name: "bytes", do: func() error { _, err := st.ModuleBytes(ctx, "b", d); return err }},
		{name: "delete", do: func() error { return st.DeleteModule(ctx, "b", d) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); !errors.Is(err, ErrNotFound) {
				t.Fatalf("tenant b: %v, want ErrNotFound", err)
			}
		})
	}
	if ms, err := st.ListModules(ctx, "b"); err != nil || len(ms) != 0 {
		t.Fatalf("tenant b lists %+v (%v), want none", ms, err)
	}
	if ms, err := st.ListModules(ctx, "a"); err != nil || len(ms) != 1 || ms[0].Digest != d || ms[0].Tenant != "a" {
		t.Fatalf("tenant a lists %+v (%v), want its module", ms, err)
	}
	if b, err := st.ModuleBytes(ctx, "a", d); err != nil || string(b) != string(wasm) {
		t.Fatalf("tenant a reads %q (%v)", b, err)
	}
	if err := st.DeleteModule(ctx, "a", d); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ModuleInfo(ctx, "a", d); !errors.Is(err, ErrNotFound) {
		t.Fatalf("info after delete: %v, want ErrNotFound", err)
	}
	if ms, err := st.ListModules(ctx, "a"); err != nil || len(ms) != 0 {
		t.Fatalf("tenant a lists %+v (%v) after delete, want none", ms, err)
	}
	if _, err := st.PutModule(ctx, "a", d, wasm); err != nil {
		t.Fatalf("upload again after delete: %v", err)
	}
	if _, err := st.ModuleInfo(ctx, "a", d); err != nil {
		t.Fatalf("info after the second upload: %v", err)
	}
}

func TestBlobs(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	if _, err := st.Verdict(ctx, "t1", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no verdict yet: %v, want ErrNotFound", err)
	}
	if err := st.PutVerdict(ctx, "t1", 1, []byte(`{"outcome":"ok"}`)); err != nil {
		t.Fatal(err)
	}
	if err := st.PutVerdict(ctx, "t1", 2, []byte(`{"outcome":"trap"}`)); err != nil {
		t.Fatal(err)
	}
	if err := st.PutStdin(ctx, "t1", []byte("in")); err != nil {
		t.Fatal(err)
	}
	if b, err := st.Verdict(ctx, "t1", 1); err != nil || string(b) != `{"outcome":"ok"}` {
		t.Fatalf("verdict 1: %s %v", b, err)
	}
	if b, err := st.Stdin(ctx, "t1"); err != nil || string(b) != "in" {
		t.Fatalf("stdin: %s %v", b, err)
	}
	st.DeleteBlobs(ctx, "t1", 2)
	st.DeleteBlobs(ctx, "t1", 2) // missing ones are fine
	for n := 1; n <= 2; n++ {
		if _, err := st.Verdict(ctx, "t1", n); !errors.Is(err, ErrNotFound) {
			t.Errorf("verdict %d after delete: %v", n, err)
		}
	}
	if _, err := st.Stdin(ctx, "t1"); err == nil {
		t.Error("stdin after delete")
	}
}
