package supervisor

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentbox/agentbox/supervisor/store"
	"github.com/agentbox/agentbox/supervisor/task"
)

// dispatch is the one loop that fetches work on this host. A message is fetched only
// when a slot is free; the tenant it is fetched for is the next in turn that has queued
// work; and it runs only once its memory fits the budget. While the head task waits for
// memory, nothing else is fetched: a big task is not starved by small ones behind it, and
// the budget is never overcommitted.
func (s *Service) dispatch(ctx context.Context) {
	defer s.loops.Done()
	idle := map[string]time.Time{} // tenant -> no message until then (all in backoff, or taken by another host)
	for ctx.Err() == nil {
		if freed := s.adm.Changed(); !s.adm.HasSlot() {
			// Changed is taken before the check: a release between the two is not missed
			// (with one slot, nothing would ever wake this loop again).
			select {
			case <-freed:
			case <-ctx.Done():
			}
			continue
		}
		changed := s.index.Changed()
		now := time.Now()
		lapsed := s.index.lapsed(now)
		tenant, ok := s.rr.Next(withLapsed(s.index.Tenants(), lapsed), func(t string) bool { return now.After(idle[t]) })
		if !ok {
			if s.idle(ctx, changed, nextWake(idle, now)) {
				clear(idle) // new work may have come for any tenant
			}
			continue
		}
		m, rec, err := s.fetch(ctx, tenant, lapsed[tenant])
		if err != nil || m == nil {
			if err != nil && ctx.Err() == nil {
				s.log.Warn("fetch failed", "tenant", tenant, "err", err)
			}
			idle[tenant] = now.Add(250 * time.Millisecond)
			continue
		}
		delete(idle, tenant)
		s.rr.Served(tenant)
		mem := rec.RunLimits.MemoryBytes
		if !s.admit(ctx, m, mem) {
			if ctx.Err() == nil {
				// More than the whole budget, which a reload shrank since the submit: it
				// waits for the budget to grow again, without holding up the tasks behind.
				m.NakWithDelay(5 * time.Second)
				continue
			}
			m.Nak() // shutting down: the message goes back at once
			return
		}
		s.workers.Add(1)
		go s.work(m, rec, mem)
	}
}

// withLapsed adds to the tenants with queued work those with a lapsed lease to take over.
func withLapsed(tenants []string, lapsed map[string]map[task.Priority]bool) []string {
	for t := range lapsed {
		if !slices.Contains(tenants, t) {
			tenants = append(tenants, t)
		}
	}
	return tenants
}

// fetch takes the tenant's next message, highest priority first, with the record it names.
// It looks at the priorities with queued tasks, and at those with a lapsed lease.
func (s *Service) fetch(ctx context.Context, tenant string, lapsed map[task.Priority]bool) (jetstream.Msg, task.Task, error) {
	for _, p := range task.Priorities {
		if s.index.Queued(tenant, p) == 0 && !lapsed[p] {
			continue
		}
		m, err := s.st.Next(ctx, tenant, p)
		if err != nil || m == nil {
			if err != nil {
				return nil, task.Task{}, err
			}
			continue
		}
		rec, err := s.st.GetTask(ctx, string(m.Data()))
		if err != nil {
			s.orphan(m, err)
			continue
		}
		return m, rec, nil
	}
	return nil, task.Task{}, nil
}

// orphan handles a message whose record cannot be read. A young one is a submit between
// its publish and its create: looked at again very soon. With no record long after, its
// submit died between the two (the client was never told "accepted"): dropped. Any other
// error: delivered again later.
func (s *Service) orphan(m jetstream.Msg, err error) {
	age := store.Age(m, time.Now())
	switch {
	case errors.Is(err, store.ErrNotFound) && age > 2*s.cfg.Lease+time.Minute:
		m.Term()
	case errors.Is(err, store.ErrNotFound) && age < 5*time.Second:
		m.NakWithDelay(10 * time.Millisecond)
	default:
		m.NakWithDelay(time.Second)
	}
}

// admit waits until the task's memory fits, keeping the message's delivery alive. It
// returns false when ctx ends first, or when mem is more than the whole budget.
func (s *Service) admit(ctx context.Context, m jetstream.Msg, mem uint64) bool {
	for {
		freed := s.adm.Changed() // before the try: a release between the two is not missed
		if s.adm.TryAdmit(mem) {
			return true
		}
		if !s.adm.Fits(mem) {
			return false
		}
		wait, cancel := context.WithTimeout(ctx, s.cfg.Lease/3)
		select {
		case <-freed:
		case <-wait.Done():
		}
		cancel()
		if ctx.Err() != nil {
			return false
		}
		if errors.Is(wait.Err(), context.DeadlineExceeded) {
			m.InProgress()
		}
	}
}

// idle waits for a change of the records, the end of the nearest idle mark, or a second
// (which also picks up retries whose backoff ended). It reports whether records changed.
func (s *Service) idle(ctx context.Context, changed <-chan struct{}, until time.Time) bool {
	d := time.Until(until)
	if d <= 0 || d > time.Second {
		d = time.Second
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-changed:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func nextWake(idle map[string]time.Time, now time.Time) time.Time {
	var next time.Time
	for _, t := range idle {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}
