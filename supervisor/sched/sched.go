// Package sched decides what runs next on this host: admission (a slot free and the
// task's memory within the budget, so the host never overcommits) and fairness (tenants
// served in turn, so one tenant's backlog delays another's task by at most one task per
// slot). It holds no tasks and knows nothing of JetStream: the daemon asks it whom to
// fetch from, and tells it what started and ended.
package sched

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Admission counts slots and memory in use against their bounds.
type Admission struct {
	mu       sync.Mutex
	slots    int
	budget   uint64
	used     int
	inUse    uint64
	released chan struct{} // closed and replaced on every release or resize
}

// NewAdmission returns an Admission with the given bounds.
func NewAdmission(slots int, budget uint64) *Admission {
	return &Admission{slots: slots, budget: budget, released: make(chan struct{})}
}

// TryAdmit takes a slot and mem bytes of the budget if both are free.
func (a *Admission) TryAdmit(mem uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.used >= a.slots || a.inUse+mem > a.budget {
		return false
	}
	a.used++
	a.inUse += mem
	return true
}

// Release gives back what TryAdmit took.
func (a *Admission) Release(mem uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.used == 0 || mem > a.inUse {
		panic(fmt.Sprintf("sched: release of %d bytes with %d slots and %d bytes in use", mem, a.used, a.inUse))
	}
	a.used--
	a.inUse -= mem
	a.wake()
}

// Resize changes the bounds (SIGHUP). Tasks already admitted keep running; new ones wait
// until they fit the new bounds.
func (a *Admission) Resize(slots int, budget uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.slots, a.budget = slots, budget
	a.wake()
}

func (a *Admission) wake() {
	close(a.released)
	a.released = make(chan struct{})
}

// Changed returns a channel closed at the next release or resize.
func (a *Admission) Changed() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.released
}

// HasSlot reports whether a slot is free (memory aside).
func (a *Admission) HasSlot() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.used < a.slots
}

// Fits reports whether mem could ever be admitted under the current budget.
func (a *Admission) Fits(mem uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return mem <= a.budget
}

// Usage reports slots and memory in use and their bounds.
func (a *Admission) Usage() (used, slots int, inUse, budget uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.used, a.slots, a.inUse, a.budget
}

// Wait blocks until the next release or resize, or ctx's end.
func (a *Admission) Wait(ctx context.Context) error {
	select {
	case <-a.Changed():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RoundRobin serves tenants in turn: after tenant t is served, every other tenant with
// work is offered a turn before t again.
type RoundRobin struct {
	last string // the tenant served last; "" before the first
}

// Next returns the first tenant after the one served last, in name order and wrapping
// around, for which ready is true. Tenants are given by the caller (those with queued
// work), so a tenant that appears later joins the rotation at its place in the order.
func (r *RoundRobin) Next(tenants []string, ready func(string) bool) (string, bool) {
	if len(tenants) == 0 {
		return "", false
	}
	sorted := append([]string(nil), tenants...)
	sort.Strings(sorted)
	start := sort.SearchStrings(sorted, r.last)
	if start < len(sorted) && sorted[start] == r.last {
		start++
	}
	for i := range sorted {
		t := sorted[(start+i)%len(sorted)]
		if ready(t) {
			return t, true
		}
	}
	return "", false
}

// Served records that t was served.
func (r *RoundRobin) Served(t string) { r.last = t }
