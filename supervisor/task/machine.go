package task

import (
	"fmt"
	"time"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/verdict"
)

// The state machine. Every change of a record is one of these functions applied to a copy
// read at some revision, then written back with a compare-and-set on that revision: two
// holders can never both win, and the move to Done happens exactly once. Each returns an
// error when the move is not allowed from the record's state, so that a stale worker drops
// its change instead of overwriting a newer one.

// ErrTransition is a move the record's state does not allow.
type ErrTransition struct {
	From State
	Move string
}

func (e *ErrTransition) Error() string {
	return fmt.Sprintf("task in state %s cannot %s", e.From, e.Move)
}

func refuse(t *Task, move string) error { return &ErrTransition{From: t.State, Move: move} }

// Start moves a queued task to running: attempt n+1 begins on host, under holder's lease
// (holder names the daemon's incarnation on that host, so a restarted daemon knows its
// dead predecessor's leases).
func Start(t *Task, host, holder string, now time.Time, lease time.Duration) error {
	if t.State != Queued {
		return refuse(t, "start")
	}
	t.State = Running
	t.NotBefore = nil
	t.Lease = &Lease{Host: holder, Until: now.Add(lease)}
	t.Attempts = append(t.Attempts, Attempt{N: len(t.Attempts) + 1, Host: host, StartedAt: now})
	t.UpdatedAt = now
	return nil
}

// Renew extends holder's lease on its running attempt n.
func Renew(t *Task, holder string, n int, now time.Time, lease time.Duration) error {
	if t.State != Running || t.Lease == nil || t.Lease.Host != holder || t.Current().N != n {
		return refuse(t, "renew "+holder+"'s lease")
	}
	t.Lease.Until = now.Add(lease)
	t.UpdatedAt = now
	return nil
}

// Current is the attempt in progress (the last one), or nil.
func (t *Task) Current() *Attempt {
	if len(t.Attempts) == 0 {
		return nil
	}
	return &t.Attempts[len(t.Attempts)-1]
}

// EndAttempt records v as the verdict of the running attempt n. When retry is true and the
// policy has attempts left, the task goes back to queued until notBefore; otherwise v is
// the final verdict. It refuses an attempt that is no longer the current one (a stale
// holder whose lease was taken over). It reports whether the task is now final.
func EndAttempt(t *Task, n int, v verdict.Verdict, now time.Time, retry bool, notBefore time.Time) (final bool, err error) {
	cur := t.Current()
	if t.State != Running || cur == nil || cur.N != n {
		return false, refuse(t, fmt.Sprintf("end attempt %d", n))
	}
	cur.EndedAt, cur.Verdict = &now, &v
	t.Lease, t.UpdatedAt = nil, now
	if retry && len(t.Attempts) < t.Retry.MaxAttempts && !t.CancelRequested {
		t.State, t.NotBefore = Queued, &notBefore
		return false, nil
	}
	t.State, t.Verdict = Done, &v
	return true, nil
}

// Interrupt ends the running attempt n with v because its daemon shut down under it (a
// drain past its grace period): the task is queued again at once, whether or not its
// policy has attempts left, since neither the guest nor a fault ended the attempt. Only
// a cancel requested meanwhile makes v final. It refuses a stale attempt as EndAttempt.
func Interrupt(t *Task, n int, v verdict.Verdict, now time.Time) (final bool, err error) {
	cur := t.Current()
	if t.State != Running || cur == nil || cur.N != n || t.CancelRequested {
		return EndAttempt(t, n, v, now, false, now) // refuses a stale attempt; final if cancelled
	}
	cur.EndedAt, cur.Verdict = &now, &v
	t.Lease, t.UpdatedAt = nil, now
	t.State, t.NotBefore = Queued, &now
	return false, nil
}

// LoseLease ends a running task whose holder's lease passed (or, with force, whose holder
// is known dead: an earlier incarnation of the daemon now starting): its attempt gets a
// sandbox_error verdict that says so, and the task is queued for the next attempt, or
// final when no attempt is left. The guest never chose that end, so it follows the
// sandbox_error rule of the task's own retry policy.
func LoseLease(t *Task, now time.Time, force bool) (final bool, err error) {
	if t.State != Running || t.Lease == nil || (!force && now.Before(t.Lease.Until)) {
		return false, refuse(t, "lose its lease")
	}
	cur := t.Current()
	v := verdict.Verdict{Outcome: outcome.SandboxError, Limits: t.Limits, Warnings: []string{},
		Message: fmt.Sprintf("attempt %d lost its holder: host %s did not renew its lease, due %s", cur.N, t.Lease.Host, t.Lease.Until.UTC().Format(time.RFC3339))}
	if t.CancelRequested {
		// The client asked for the end the dead holder never wrote.
		v.Outcome = outcome.Cancelled
		v.Message = fmt.Sprintf("cancelled; attempt %d's holder %s died before it wrote the verdict", cur.N, t.Lease.Host)
	}
	return EndAttempt(t, cur.N, v, now, t.RetriesOn(v.Outcome), now)
}

// Cancel ends a queued task at once with a cancelled verdict; a running one is only
// marked (its holder kills it and writes the verdict). A final task is left alone.
func Cancel(t *Task, now time.Time) (final bool, err error) {
	switch t.State {
	case Queued:
		v := verdict.Verdict{Outcome: outcome.Cancelled, Message: "cancelled before it ran", Limits: t.Limits, Warnings: []string{}}
		t.State, t.Verdict, t.NotBefore, t.UpdatedAt = Done, &v, nil, now
		return true, nil
	case Running:
		t.CancelRequested, t.UpdatedAt = true, now
		return false, nil
	}
	return true, refuse(t, "be cancelled")
}

// RetriesOn reports whether the task's policy retries outcome o.
func (t *Task) RetriesOn(o outcome.Outcome) bool {
	for _, r := range t.Retry.RetryOn {
		if r == o {
			return true
		}
	}
	return false
}
