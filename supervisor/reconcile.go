package supervisor

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/sandbox"
	"github.com/agentbox/agentbox/supervisor/task"
)

// selfCheckModule is the smallest WASI command: one function, exported as _start, that
// returns at once. The daemon runs it through the real sandbox at start: /readyz is
// green only when a task can really run here.
var selfCheckModule = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: () -> ()
	0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
	0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00, // export "_start" = func 0
	0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code section: an empty body
}

func (s *Service) checkSandbox(ctx context.Context) error {
	res, err := s.runner.Run(ctx, sandbox.Spec{Module: selfCheckModule, Limits: sandbox.Limits{Timeout: 2 * time.Minute}})
	if err != nil {
		return err
	}
	if res.Outcome != outcome.OK {
		return fmt.Errorf("a trivial module ended %s: %s", res.Outcome, res.Message)
	}
	return nil
}

// reclaimPredecessor ends, at start, the attempts that an earlier incarnation of this
// daemon on this host left running: it is dead (we hold its host id now), so its leases
// are void before their time. Each task gets a fresh dispatch message, since the old
// delivery stays with the dead incarnation until its ack wait passes.
func (s *Service) reclaimPredecessor(ctx context.Context) {
	mine := s.cfg.HostID + "/"
	stale := s.index.snapshot(func(e *entry) bool {
		return e.state == task.Running && e.lease != nil && strings.HasPrefix(e.lease.Host, mine) && e.lease.Host != s.holder
	})
	for _, e := range stale {
		t, err := s.st.Mutate(ctx, e.id, func(t *task.Task) error {
			if t.Lease == nil || !strings.HasPrefix(t.Lease.Host, mine) || t.Lease.Host == s.holder {
				return &task.ErrTransition{From: t.State, Move: "be reclaimed"}
			}
			_, err := task.LoseLease(t, time.Now().UTC(), true)
			return err
		})
		if err != nil {
			continue
		}
		s.obs.LeaseLost()
		s.obs.AttemptFinished(t.Current().Verdict.Outcome)
		if t.Final() {
			s.obs.TaskFinished(t.Outcome())
			continue
		}
		s.obs.Retry(t.Current().Verdict.Outcome)
		s.republish(ctx, t, "restart")
	}
	if len(stale) > 0 {
		s.log.Info("reclaimed the attempts of this host's previous daemon", "tasks", len(stale))
	}
}

func (s *Service) republish(ctx context.Context, t task.Task, why string) {
	msgID := fmt.Sprintf("%s/%s/%d", t.ID, why, len(t.Attempts))
	if err := s.st.Enqueue(ctx, t.Tenant, t.Priority, t.ID, msgID); err != nil {
		s.log.Warn("republish", "task", t.ID, "err", err)
	}
}

// reconcile is the safety net behind redelivery: a running task whose lease passed long
// ago, with no delivery taking it over (its message was acknowledged by a holder that then
// lost the record, say), gets a new message. A duplicate is harmless: a delivery of a task
// that is not due does nothing.
func (s *Service) reconcile(ctx context.Context) {
	defer s.loops.Done()
	tick := time.NewTicker(s.cfg.Lease)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cutoff := time.Now().Add(-2 * s.cfg.Lease)
		for _, e := range s.index.snapshot(func(e *entry) bool {
			return e.state == task.Running && e.lease != nil && e.lease.Until.Before(cutoff)
		}) {
			s.republish(ctx, task.Task{ID: e.id, Tenant: e.tenant, Priority: e.priority, Attempts: make([]task.Attempt, e.attempts)}, "reconcile")
		}
	}
}

// janitor bounds the records: final tasks past the retention age go, and the oldest
// final ones past MaxRecords.
func (s *Service) janitor(ctx context.Context) {
	defer s.loops.Done()
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, e := range s.expired(time.Now()) {
			if ctx.Err() != nil {
				return
			}
			if err := s.st.DeleteTask(ctx, e.id); err == nil {
				s.st.DeleteBlobs(ctx, e.id, e.attempts)
			}
		}
	}
}

// expired lists the final tasks retention removes.
func (s *Service) expired(now time.Time) []entry {
	final := s.index.snapshot(func(e *entry) bool { return e.state == task.Done })
	sort.Slice(final, func(i, j int) bool { return final[i].id < final[j].id }) // oldest first
	cutoff := now.Add(-s.cfg.Retention)
	var out []entry
	for i, e := range final {
		if e.updated.Before(cutoff) || len(final)-i > s.cfg.MaxRecords {
			out = append(out, e)
		}
	}
	return out
}
