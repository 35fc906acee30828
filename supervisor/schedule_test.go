package supervisor

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

// gated is a one-slot service whose runs each wait for the test's release.
func gated(t *testing.T, h *harness, cfg Config) (*testService, *faultRunner) {
	t.Helper()
	r := newFaultRunner(h.sb)
	r.gate = make(chan struct{})
	return startService(t, h, cfg, r), r
}

func oneSlot() Config {
	cfg := baseConfig("host-a")
	cfg.Slots = 1
	return cfg
}

// TestFairness: tenant a's backlog of 20 delays tenant b's one task by at most one task
// per slot, and each tenant's own tasks start in the order submitted.
func TestFairness(t *testing.T) {
	h := newHarness(t)
	s, r := gated(t, h, oneSlot())
	da, db := upload(t, s, "a", "hello.wasm"), upload(t, s, "b", "hello.wasm")
	var ids []string
	for i := 1; i <= 20; i++ {
		ids = append(ids, submit(t, s, "a", task.SubmitRequest{Module: da, Args: []string{fmt.Sprintf("a%d", i)}}).ID)
	}
	starts := []string{r.nextStart(t)}
	b := submit(t, s, "b", task.SubmitRequest{Module: db, Args: []string{"b1"}})
	ids = append(ids, b.ID)
	waitFor(t, "the index sees b's task", func() bool { return s.index.Queued("b", task.Normal) == 1 })
	for len(starts) < 21 {
		r.release(t)
		starts = append(starts, r.nextStart(t))
	}
	r.release(t)

	bAt := -1
	var aOrder []string
	for i, n := range starts {
		if n == "b1" {
			bAt = i
		} else {
			aOrder = append(aOrder, n)
		}
	}
	// b submitted after start 0: it must be start 1 or 2.
	if bAt < 1 || bAt > 2 {
		t.Errorf("b's task was start %d of %v, want within the 2 starts after its submission", bAt, starts)
	}
	for i, n := range aOrder {
		if n != fmt.Sprintf("a%d", i+1) {
			t.Fatalf("a's tasks started in the order %v, want a1..a20", aOrder)
		}
	}
	for _, id := range ids {
		if rec := waitFinal(t, s, tenantOf(id, b.ID), id); rec.Outcome() != outcome.OK {
			t.Errorf("task %s: %s", id, rec.Outcome())
		}
	}
}

func tenantOf(id, bID string) string {
	if id == bID {
		return "b"
	}
	return "a"
}

// TestPriority: within one tenant, a high task submitted after five normal ones starts
// before the normal ones still queued, which keep their order.
func TestPriority(t *testing.T) {
	h := newHarness(t)
	s, r := gated(t, h, oneSlot())
	d := upload(t, s, "a", "hello.wasm")
	for i := 1; i <= 5; i++ {
		submit(t, s, "a", task.SubmitRequest{Module: d, Args: []string{fmt.Sprintf("n%d", i)}})
	}
	starts := []string{r.nextStart(t)}
	submit(t, s, "a", task.SubmitRequest{Module: d, Args: []string{"high"}, Priority: task.High})
	submit(t, s, "a", task.SubmitRequest{Module: d, Args: []string{"low"}, Priority: task.Low})
	waitFor(t, "the index sees the high and low tasks", func() bool {
		return s.index.Queued("a", task.High) == 1 && s.index.Queued("a", task.Low) == 1
	})
	for len(starts) < 7 {
		r.release(t)
		starts = append(starts, r.nextStart(t))
	}
	r.release(t)
	want := []string{"n1", "high", "n2", "n3", "n4", "n5", "low"}
	if !reflect.DeepEqual(starts, want) {
		t.Errorf("started %v, want %v", starts, want)
	}
}

// TestAdmission: with 4 slots but a 256Mi budget, tasks of 128Mi run two at a time, never
// three, and all complete; a task bigger than the whole budget is refused at submit.
func TestAdmission(t *testing.T) {
	h := newHarness(t)
	cfg := baseConfig("host-a")
	cfg.Slots, cfg.MemoryBudget = 4, 256<<20
	s, r := gated(t, h, cfg)
	d := upload(t, s, "a", "hello.wasm")

	_, _, err := s.Submit(context.Background(), "a", task.SubmitRequest{Module: d, Limits: task.Limits{Memory: "257Mi"}})
	if ve := codeOf(t, err); ve.Code != verdict.InvalidArgument || ve.Field != "limits.memory" || ve.Value != "257Mi" {
		t.Errorf("a task above the budget: %+v, want invalid_argument on limits.memory 257Mi", ve)
	}

	const n = 6
	var ids []string
	for i := 0; i < n; i++ {
		ids = append(ids, submit(t, s, "a", task.SubmitRequest{Module: d, Args: []string{fmt.Sprint(i)}, Limits: task.Limits{Memory: "128Mi"}}).ID)
	}
	// Two start with no release: the budget holds two (the slots would hold four). Then
	// each end lets exactly the next one in.
	r.nextStart(t)
	r.nextStart(t)
	for started := 2; started < n; started++ {
		if inUse, budget := s.Memory(); inUse > budget {
			t.Fatalf("memory in use %d over the budget %d", inUse, budget)
		}
		r.release(t)
		r.nextStart(t)
	}
	r.release(t)
	r.release(t)
	for _, id := range ids {
		if rec := waitFinal(t, s, "a", id); rec.Outcome() != outcome.OK {
			t.Errorf("task %s: %s %s", id, rec.Outcome(), rec.Verdict.Message)
		}
	}
	if _, most := r.seen(); most != 2 {
		t.Errorf("%d tasks ran at once, want 2 (the budget's worth)", most)
	}
	// A worker gives its slot back after its last write.
	waitFor(t, "every slot and byte given back", func() bool {
		used, _ := s.Slots()
		inUse, _ := s.Memory()
		return used == 0 && inUse == 0
	})
}

// TestQueueBounds: past a tenant's bound, or the daemon's, a submit is refused with
// queue_full; the other tenant is bounded only by the total.
func TestQueueBounds(t *testing.T) {
	tests := []struct {
		name      string
		perTenant int
		total     int
		queued    map[string]int // queued before the refusals, besides a's running one
		refused   string         // the tenant refused next
		accepted  string         // a tenant still accepted after, "" none
	}{
		{name: "per tenant", perTenant: 3, total: 100, queued: map[string]int{"a": 3}, refused: "a", accepted: "b"},
		{name: "total", perTenant: 100, total: 3, queued: map[string]int{"a": 2, "b": 1}, refused: "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t) // a JetStream of its own: nothing queued by another row
			cfg := oneSlot()
			cfg.HostID = "host-" + tt.name
			cfg.MaxQueuedPerTenant, cfg.MaxQueued = tt.perTenant, tt.total
			s, r := gated(t, h, cfg)
			d := map[string]string{"a": upload(t, s, "a", "hello.wasm"), "b": upload(t, s, "b", "hello.wasm")}
			submit(t, s, "a", task.SubmitRequest{Module: d["a"], Args: []string{"running"}})
			r.nextStart(t) // running, so no longer queued
			total := 0
			for _, tenant := range []string{"a", "b"} {
				for i := 0; i < tt.queued[tenant]; i++ {
					submit(t, s, tenant, task.SubmitRequest{Module: d[tenant], Args: []string{"queued"}})
					total++
				}
			}
			waitFor(t, "the index counts every queued task", func() bool {
				sum := 0
				for _, n := range s.QueueDepth() {
					sum += n
				}
				return sum == total
			})
			for i := 0; i < 2; i++ {
				_, _, err := s.Submit(context.Background(), tt.refused, task.SubmitRequest{Module: d[tt.refused]})
				if ve := codeOf(t, err); ve.Code != verdict.QueueFull {
					t.Fatalf("submit %d past the bound: %+v, want queue_full", i+1, ve)
				}
			}
			if tt.accepted != "" {
				submit(t, s, tt.accepted, task.SubmitRequest{Module: d[tt.accepted]})
			}
		})
	}
}

// TestResizeBelowQueuedTask: a reload that shrinks the memory budget below a queued
// task's memory leaves that task queued until the budget grows again, and does not hold
// up the tasks behind it.
func TestResizeBelowQueuedTask(t *testing.T) {
	h := newHarness(t)
	cfg := oneSlot()
	cfg.MemoryBudget = 512 << 20
	s, r := gated(t, h, cfg)
	d := upload(t, s, "a", "hello.wasm")
	first := submit(t, s, "a", task.SubmitRequest{Module: d, Args: []string{"first"}, Limits: task.Limits{Memory: "64Mi"}})
	r.nextStart(t)
	big := submit(t, s, "a", task.SubmitRequest{Module: d, Args: []string{"big"}, Limits: task.Limits{Memory: "256Mi"}})
	small := submit(t, s, "a", task.SubmitRequest{Module: d, Args: []string{"small"}, Limits: task.Limits{Memory: "64Mi"}})
	waitFor(t, "the index sees both queued", func() bool { return s.QueueDepth()["a"] == 2 })
	s.Resize(1, 200<<20, DefaultMaxQueuedPerTenant, DefaultMaxQueued)
	r.release(t)
	if n := r.nextStart(t); n != "small" {
		t.Fatalf("started %s after the budget shrank, want small (big no longer fits)", n)
	}
	r.release(t)
	waitFinal(t, s, "a", first.ID)
	waitFinal(t, s, "a", small.ID)
	if rec, _ := s.Get(context.Background(), "a", big.ID); rec.State != task.Queued {
		t.Fatalf("big is %s, want still queued", rec.State)
	}
	s.Resize(1, 512<<20, DefaultMaxQueuedPerTenant, DefaultMaxQueued)
	if n := r.nextStart(t); n != "big" {
		t.Fatalf("started %s, want big once the budget grew", n)
	}
	r.release(t)
	if rec := waitFinal(t, s, "a", big.ID); rec.Outcome() != outcome.OK {
		t.Fatalf("big: %s", rec.Outcome())
	}
}
