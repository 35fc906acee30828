package sched

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// TestAdmissionHammer: many goroutines admit and release tasks of random sizes while the
// bounds change under them. The test keeps its own count of what is held, raised only
// after TryAdmit said yes and lowered before Release: a lower bound of what Admission
// holds, so it passing a bound means Admission overcommitted.
func TestAdmissionHammer(t *testing.T) {
	const (
		slots, budget = 4, 1000
		goroutines    = 16
		rounds        = 2000
	)
	a := NewAdmission(slots, budget)
	var held atomic.Int64   // tasks held, by the test's count
	var memory atomic.Int64 // bytes held, by the test's count
	var admitted atomic.Int64
	var over atomic.Value
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var resizer sync.WaitGroup
	resizer.Add(1)
	go func() { // the bounds shrink and grow back (SIGHUP); never above slots, budget
		defer resizer.Done()
		for i := 0; ctx.Err() == nil; i++ {
			if i%2 == 0 {
				a.Resize(2, budget/2)
			} else {
				a.Resize(slots, budget)
			}
		}
	}()

	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				mem := uint64(rand.IntN(budget / 2))
				changed := a.Changed() // before the try: a release after it is not missed
				if !a.TryAdmit(mem) {
					if i%4 == 0 {
						select {
						case <-changed:
						case <-ctx.Done():
						}
					}
					continue
				}
				admitted.Add(1)
				n, m := held.Add(1), memory.Add(int64(mem))
				if n > slots || m > budget {
					over.CompareAndSwap(nil, [2]int64{n, m})
				}
				used, s, inUse, b := a.Usage()
				if used > slots || inUse > budget || s > slots || b > budget {
					over.CompareAndSwap(nil, [2]int64{int64(used), int64(inUse)})
				}
				held.Add(-1)
				memory.Add(-int64(mem))
				a.Release(mem)
			}
		}()
	}
	wg.Wait()
	cancel()
	resizer.Wait()
	if v := over.Load(); v != nil {
		t.Fatalf("held %v (tasks, bytes) at once, bounds %d slots and %d bytes", v, slots, budget)
	}
	if admitted.Load() == 0 {
		t.Fatal("nothing was ever admitted")
	}
	a.Resize(slots, budget)
	if used, _, inUse, _ := a.Usage(); used != 0 || inUse != 0 {
		t.Fatalf("after every release: %d slots and %d bytes still in use", used, inUse)
	}
}

func TestAdmission(t *testing.T) {
	tests := []struct {
		name   string
		slots  int
		budget uint64
		admit  []uint64 // in order; want says which are admitted
		want   []bool
	}{
		{name: "slots bound", slots: 2, budget: 100, admit: []uint64{1, 1, 1}, want: []bool{true, true, false}},
		{name: "memory bound", slots: 4, budget: 256, admit: []uint64{128, 128, 128}, want: []bool{true, true, false}},
		{name: "exactly the budget", slots: 4, budget: 256, admit: []uint64{256, 0}, want: []bool{true, true}},
		{name: "more than the budget alone", slots: 4, budget: 256, admit: []uint64{257, 1}, want: []bool{false, true}},
		{name: "a small task passes a big one that waits", slots: 4, budget: 256, admit: []uint64{200, 100, 56}, want: []bool{true, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAdmission(tt.slots, tt.budget)
			for i, mem := range tt.admit {
				if got := a.TryAdmit(mem); got != tt.want[i] {
					t.Fatalf("TryAdmit(%d) #%d = %t, want %t", mem, i, got, tt.want[i])
				}
			}
		})
	}
}

func TestAdmissionWakes(t *testing.T) {
	a := NewAdmission(1, 100)
	if !a.TryAdmit(60) || a.HasSlot() {
		t.Fatal("the one slot is not taken")
	}
	if !a.Fits(100) || a.Fits(101) {
		t.Fatal("Fits does not compare with the budget")
	}
	// Changed is taken before the release it must see: Wait alone takes it when called,
	// and misses a release that came just before (callers check, then wait on the channel
	// they took before checking).
	changed := a.Changed()
	a.Release(60)
	<-changed // closed by the release
	if !a.HasSlot() || !a.TryAdmit(100) {
		t.Fatal("the released slot and memory are not free")
	}
	a.Release(100)
	changed = a.Changed()
	a.Resize(2, 50)
	<-changed // closed by the resize
	if a.Fits(60) {
		t.Fatal("Fits after the budget shrank")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Wait(ctx); err == nil {
		t.Fatal("Wait on an ended context returned nil")
	}
}

func TestReleaseMoreThanHeldPanics(t *testing.T) {
	a := NewAdmission(2, 100)
	a.TryAdmit(10)
	defer func() {
		if recover() == nil {
			t.Fatal("a release of more than was admitted did not panic")
		}
	}()
	a.Release(20)
}

func TestRoundRobinNext(t *testing.T) {
	all := func(string) bool { return true }
	tests := []struct {
		name    string
		tenants []string
		last    string
		ready   func(string) bool
		want    string
		ok      bool
	}{
		{name: "first turn goes to the first by name", tenants: []string{"c", "a", "b"}, want: "a", ok: true},
		{name: "the one after the last served", tenants: []string{"c", "a", "b"}, last: "a", want: "b", ok: true},
		{name: "wraps around", tenants: []string{"c", "a", "b"}, last: "c", want: "a", ok: true},
		{name: "alone, served again", tenants: []string{"a"}, last: "a", want: "a", ok: true},
		{name: "the last served has no work now", tenants: []string{"a", "c"}, last: "b", want: "c", ok: true},
		{name: "the last served is after everyone", tenants: []string{"a", "c"}, last: "d", want: "a", ok: true},
		{name: "not ready ones are passed", tenants: []string{"a", "b", "c"}, last: "a", ready: func(t string) bool { return t != "b" }, want: "c", ok: true},
		{name: "the last served comes last", tenants: []string{"a", "b"}, last: "a", ready: func(t string) bool { return t == "a" }, want: "a", ok: true},
		{name: "none ready", tenants: []string{"a", "b"}, ready: func(string) bool { return false }},
		{name: "no tenants", tenants: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready := tt.ready
			if ready == nil {
				ready = all
			}
			r := RoundRobin{}
			if tt.last != "" {
				r.Served(tt.last)
			}
			in := append([]string(nil), tt.tenants...)
			got, ok := r.Next(tt.tenants, ready)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Next = %q, %t; want %q, %t", got, ok, tt.want, tt.ok)
			}
			for i := range in {
				if in[i] != tt.tenants[i] {
					t.Fatal("Next reordered the caller's slice")
				}
			}
		})
	}
}

// TestRoundRobinFairness: whatever the backlog of each, tenants with work are served in
// turn, and one that gets work joins the rotation at its place without waiting a lap.
func TestRoundRobinFairness(t *testing.T) {
	tests := []struct {
		name    string
		backlog map[string]int   // tasks queued per tenant at the start
		join    map[int][]string // after that many services, these tenants get one task
		want    string           // the tenants served, in order
	}{
		{name: "equal backlogs", backlog: map[string]int{"a": 2, "b": 2, "c": 2}, want: "abcabc"},
		{name: "a big backlog does not starve a small one", backlog: map[string]int{"a": 6, "b": 1}, want: "abaaaaa"},
		{name: "a tenant that comes late is served within one turn", backlog: map[string]int{"a": 5}, join: map[int][]string{2: {"b"}}, want: "aabaaa"},
		{name: "a tenant that comes late before the last served", backlog: map[string]int{"b": 3, "c": 3}, join: map[int][]string{3: {"a"}}, want: "bcbcabc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			queued := map[string]int{}
			for k, v := range tt.backlog {
				queued[k] = v
			}
			var r RoundRobin
			var got []byte
			for served := 0; ; served++ {
				for _, j := range tt.join[served] {
					queued[j]++
				}
				var tenants []string
				for k, n := range queued {
					if n > 0 {
						tenants = append(tenants, k)
					}
				}
				next, ok := r.Next(tenants, func(string) bool { return true })
				if !ok {
					break
				}
				r.Served(next)
				queued[next]--
				got = append(got, next...)
			}
			if string(got) != tt.want {
				t.Errorf("served %s, want %s", got, tt.want)
			}
		})
	}
}
