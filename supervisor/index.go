package supervisor

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/store"
	"github.com/agentbox/agentbox/supervisor/task"
)

// index is the daemon's in-memory view of every task record, fed by a watch of the KV
// bucket (so it sees other hosts' changes too). Listing, queue depth, fairness, waits and
// events read it; the records themselves stay in JetStream, and it keeps only a summary
// of each.
type index struct {
	mu      sync.RWMutex
	byID    map[string]*entry
	queued  map[string]map[task.Priority]int // tenant -> priority -> queued tasks
	running map[string]*entry                // running tasks by id, for takeovers
	loaded  bool
	changed chan struct{} // closed and replaced on every change
	waiters map[string][]chan struct{}
	subs    map[*subscriber]struct{}
}

// entry is the summary of one record.
type entry struct {
	id, tenant string
	state      task.State
	outcome    outcome.Outcome
	labels     map[string]string
	priority   task.Priority
	created    time.Time
	updated    time.Time
	notBefore  time.Time
	lease      *task.Lease
	attempts   int
}

type subscriber struct {
	tenant string
	ch     chan task.Event
}

func newIndex() *index {
	return &index{byID: map[string]*entry{}, queued: map[string]map[task.Priority]int{}, running: map[string]*entry{},
		changed: make(chan struct{}), waiters: map[string][]chan struct{}{}, subs: map[*subscriber]struct{}{}}
}

func summarize(t *task.Task) *entry {
	e := &entry{id: t.ID, tenant: t.Tenant, state: t.State, outcome: t.Outcome(), labels: t.Labels,
		priority: t.Priority, created: t.CreatedAt, updated: t.UpdatedAt, lease: t.Lease, attempts: len(t.Attempts)}
	if t.NotBefore != nil {
		e.notBefore = *t.NotBefore
	}
	return e
}

// feed applies the watch's changes until the channel closes.
func (x *index) feed(changes <-chan store.Change) {
	for c := range changes {
		x.apply(c)
	}
}

func (x *index) apply(c store.Change) {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch {
	case c.Ready:
		x.loaded = true
	case c.Deleted:
		x.remove(c.Task.ID)
	default:
		x.remove(c.Task.ID)
		e := summarize(&c.Task)
		x.byID[e.id] = e
		if e.state == task.Queued {
			x.count(e, 1)
		}
		if e.state == task.Running {
			x.running[e.id] = e
		}
		if e.state == task.Done {
			for _, w := range x.waiters[e.id] {
				close(w)
			}
			delete(x.waiters, e.id)
		}
		x.publish(c.Task)
	}
	close(x.changed)
	x.changed = make(chan struct{})
}

func (x *index) remove(id string) {
	if old, ok := x.byID[id]; ok {
		if old.state == task.Queued {
			x.count(old, -1)
		}
		delete(x.byID, id)
		delete(x.running, id)
	}
}

// lapsed lists, by tenant, the priorities of running tasks whose lease passed before now.
// Their holder died: their message comes back once its ack wait passes, and must be
// fetched to be taken over even when the tenant has nothing queued.
func (x *index) lapsed(now time.Time) map[string]map[task.Priority]bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := map[string]map[task.Priority]bool{}
	for _, e := range x.running {
		if e.lease != nil && now.After(e.lease.Until) {
			if out[e.tenant] == nil {
				out[e.tenant] = map[task.Priority]bool{}
			}
			out[e.tenant][e.priority] = true
		}
	}
	return out
}

func (x *index) count(e *entry, d int) {
	m := x.queued[e.tenant]
	if m == nil {
		m = map[task.Priority]int{}
		x.queued[e.tenant] = m
	}
	m[e.priority] += d
	if m[e.priority] == 0 {
		delete(m, e.priority)
	}
	if len(m) == 0 {
		delete(x.queued, e.tenant)
	}
}

// publish hands a change to the tenant's subscribers. A subscriber too slow to keep up is
// dropped (its channel closed), never waited for: one stuck SSE client must not stall the
// index for everyone. The client reconnects and reads the current state.
func (x *index) publish(t task.Task) {
	for s := range x.subs {
		if s.tenant != t.Tenant {
			continue
		}
		select {
		case s.ch <- task.Event{Type: "task", Task: t}:
		default:
			delete(x.subs, s)
			close(s.ch)
		}
	}
}

// Changed returns a channel closed at the next change.
func (x *index) Changed() <-chan struct{} {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.changed
}

// Loaded reports whether the initial records have all been read.
func (x *index) Loaded() bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.loaded
}

// QueueDepth is the number of queued tasks per tenant.
func (x *index) QueueDepth() map[string]int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make(map[string]int, len(x.queued))
	for t, m := range x.queued {
		for _, n := range m {
			out[t] += n
		}
	}
	return out
}

// queuedCounts returns one tenant's queued tasks and everyone's.
func (x *index) queuedCounts(tenant string) (mine, all int) {
	for t, n := range x.QueueDepth() {
		all += n
		if t == tenant {
			mine = n
		}
	}
	return mine, all
}

// Queued reports how many of a tenant's tasks of priority p are queued.
func (x *index) Queued(tenant string, p task.Priority) int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.queued[tenant][p]
}

// Tenants lists the tenants with queued tasks.
func (x *index) Tenants() []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]string, 0, len(x.queued))
	for t := range x.queued {
		out = append(out, t)
	}
	return out
}

// final reports whether task id is final, registering a waiter closed when it becomes so
// if it is not. known is false when the index has no such task (for this tenant).
func (x *index) waitFinal(tenant, id string) (done <-chan struct{}, final, known bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	e, ok := x.byID[id]
	if !ok || e.tenant != tenant {
		return nil, false, false
	}
	if e.state == task.Done {
		return nil, true, true
	}
	ch := make(chan struct{})
	x.waiters[id] = append(x.waiters[id], ch)
	return ch, false, true
}

// unwait drops a waiter that gave up (its long-poll timed out), so that waiting on a task
// that stays unfinished for long does not pile up channels.
func (x *index) unwait(id string, done <-chan struct{}) {
	x.mu.Lock()
	defer x.mu.Unlock()
	ws := x.waiters[id]
	for i, w := range ws {
		if (<-chan struct{})(w) == done {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(x.waiters, id)
	} else {
		x.waiters[id] = ws
	}
}

// subscribe registers a subscriber to a tenant's changes until ctx ends.
func (x *index) subscribe(ctx context.Context, tenant string) <-chan task.Event {
	s := &subscriber{tenant: tenant, ch: make(chan task.Event, 1024)}
	x.mu.Lock()
	x.subs[s] = struct{}{}
	x.mu.Unlock()
	go func() {
		<-ctx.Done()
		x.mu.Lock()
		defer x.mu.Unlock()
		if _, ok := x.subs[s]; ok {
			delete(x.subs, s)
			close(s.ch)
		}
	}()
	return s.ch
}

// match selects a tenant's entries for a listing, newest first (ids sort by creation).
func (x *index) match(tenant string, f task.Filter) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var ids []string
	for id, e := range x.byID {
		if e.tenant == tenant && e.matches(f) && (f.Cursor == "" || id < f.Cursor) {
			ids = append(ids, id)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ids)))
	return ids
}

func (e *entry) matches(f task.Filter) bool {
	switch {
	case f.State != "" && e.state != f.State,
		f.Outcome != "" && e.outcome != f.Outcome,
		!f.Since.IsZero() && e.created.Before(f.Since),
		!f.Until.IsZero() && !e.created.Before(f.Until):
		return false
	}
	for k, v := range f.Labels {
		if e.labels[k] != v {
			return false
		}
	}
	return true
}

// snapshot copies the entries a scan needs (reconciler, janitor) without holding the lock
// while it writes to JetStream.
func (x *index) snapshot(keep func(*entry) bool) []entry {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []entry
	for _, e := range x.byID {
		if keep(e) {
			out = append(out, *e)
		}
	}
	return out
}
