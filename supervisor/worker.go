package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/sandbox"
	"github.com/agentbox/agentbox/supervisor/store"
	"github.com/agentbox/agentbox/supervisor/task"
)

// Causes a run is cancelled with, other than the client's cancel.
var (
	errShutdown  = errors.New("the daemon is shutting down")
	errLeaseLost = errors.New("this host lost the task's lease")
	errCancelled = errors.New("cancelled by the client")
)

// run is one attempt in progress on this host.
type run struct {
	cancel context.CancelCauseFunc
}

func cancelSubject(id string) string { return "agentbox.cancel." + id }

// onCancel kills the local attempt of a task whose cancel was broadcast.
func (s *Service) onCancel(m *nats.Msg) {
	id := strings.TrimPrefix(m.Subject, cancelSubject(""))
	s.mu.Lock()
	r := s.running[id]
	s.mu.Unlock()
	if r != nil {
		r.cancel(errCancelled)
	}
}

// work handles one delivery: it decides from the record what the delivery means, and
// runs an attempt when the task is due.
func (s *Service) work(m jetstream.Msg, rec task.Task, mem uint64) {
	defer s.workers.Done()
	defer s.adm.Release(mem)
	ctx := context.Background() // a worker finishes its writes even while the daemon drains
	now := time.Now().UTC()
	switch {
	case rec.Final():
		m.Ack() // a redelivery of a task already done, or cancelled while queued
		return
	case rec.State == task.Running && now.Before(rec.Lease.Until):
		m.NakWithDelay(rec.Lease.Until.Sub(now) + time.Second) // a live holder has it
		return
	case rec.State == task.Running:
		if !s.takeOver(ctx, m, rec.ID) {
			return
		}
	case rec.NotBefore != nil && now.Before(*rec.NotBefore):
		m.NakWithDelay(rec.NotBefore.Sub(now)) // a retry still in its backoff
		return
	}
	s.attempt(ctx, m, rec.ID)
}

// takeOver ends the attempt of a holder whose lease passed. It reports whether the task
// is queued again, to be started by this delivery.
func (s *Service) takeOver(ctx context.Context, m jetstream.Msg, id string) bool {
	t, err := s.st.Mutate(ctx, id, func(t *task.Task) error {
		_, err := task.LoseLease(t, time.Now().UTC(), false)
		return err
	})
	if err != nil {
		m.NakWithDelay(time.Second)
		return false
	}
	s.obs.LeaseLost()
	s.obs.AttemptFinished(t.Current().Verdict.Outcome)
	if t.Final() {
		s.obs.TaskFinished(t.Outcome())
		m.Ack()
		return false
	}
	s.obs.Retry(t.Current().Verdict.Outcome)
	return true
}

// attempt starts an attempt (a compare-and-set from queued to running), runs it, and
// writes its verdict.
func (s *Service) attempt(ctx context.Context, m jetstream.Msg, id string) {
	t, err := s.st.Mutate(ctx, id, func(t *task.Task) error {
		return task.Start(t, s.cfg.HostID, s.holder, time.Now().UTC(), s.cfg.Lease)
	})
	if err != nil {
		var te *task.ErrTransition
		if errors.As(err, &te) {
			m.NakWithDelay(time.Second) // another holder started it first
		} else {
			s.log.Error("start attempt", "task", id, "err", err)
			m.NakWithDelay(time.Second)
		}
		return
	}
	n := t.Current().N
	s.obs.ObserveQueueWait(t.Current().StartedAt.Sub(t.CreatedAt))
	runCtx, cancel := context.WithCancelCause(context.Background())
	s.mu.Lock()
	s.running[id] = &run{cancel: cancel}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.running, id)
		s.mu.Unlock()
		cancel(nil)
	}()
	stopBeat := s.heartbeat(runCtx, cancel, m, id, n)
	res, started := s.execute(runCtx, t)
	stopBeat()
	s.finish(ctx, m, t, n, res, context.Cause(runCtx), started)
}

// heartbeat renews the lease and the delivery every Lease/3 until stopped. A renewal
// that finds the task cancelled kills the run; one that finds the lease taken kills it
// too: another host owns the task now.
func (s *Service) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, m jetstream.Msg, id string, n int) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(s.cfg.Lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				m.InProgress()
				t, err := s.st.Mutate(context.Background(), id, func(t *task.Task) error {
					return task.Renew(t, s.holder, n, time.Now().UTC(), s.cfg.Lease)
				})
				var te *task.ErrTransition
				switch {
				case errors.As(err, &te):
					cancel(errLeaseLost)
				case err == nil && t.CancelRequested:
					cancel(errCancelled)
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// execute runs the attempt in the sandbox. started is when the guest wrote its first
// byte (zero if it wrote none): the closest outside view of "the guest is running".
func (s *Service) execute(ctx context.Context, t task.Task) (sandbox.Result, time.Time) {
	wasm, err := s.module(ctx, t.Tenant, t.Module)
	if err != nil {
		return s.inputFailed(ctx, t, "module", err), time.Time{}
	}
	var stdin []byte
	if t.StdinBytes > 0 {
		if stdin, err = s.st.Stdin(ctx, t.ID); err != nil {
			return s.inputFailed(ctx, t, "stdin", err), time.Time{}
		}
	}
	first := &firstWrite{}
	spec := sandbox.Spec{Module: wasm, Args: append([]string{"main.wasm"}, t.Args...), Env: t.Env,
		Stdin: bytes.NewReader(stdin), Stdout: first, Limits: t.RunLimits}
	begin := time.Now()
	res, err := s.runner.Run(ctx, spec)
	s.obs.ObserveRun(time.Since(begin))
	if err != nil {
		return s.failed(t, outcome.SandboxError, fmt.Sprintf("the sandbox refused the task on host %s: %v", s.cfg.HostID, err)), time.Time{}
	}
	if at := first.at(); !at.IsZero() {
		s.obs.ObserveSpawn(at.Sub(begin))
	}
	return res, first.at()
}

// inputFailed is the verdict when the task's module or stdin cannot be read: a cancel (or
// a shutdown, or a lost lease) that came first, a module deleted since the submit (the
// caller's doing), or a fault of ours.
func (s *Service) inputFailed(ctx context.Context, t task.Task, what string, err error) sandbox.Result {
	switch {
	case ctx.Err() != nil:
		return s.failed(t, outcome.Cancelled, fmt.Sprintf("cancelled before it started: %v", context.Cause(ctx)))
	case what == "module" && errors.Is(err, store.ErrNotFound):
		return s.failed(t, outcome.InvalidModule, fmt.Sprintf("module %s was deleted after the task was submitted", t.Module))
	}
	return s.failed(t, outcome.SandboxError, fmt.Sprintf("read the task's %s: %v", what, err))
}

func (s *Service) failed(t task.Task, o outcome.Outcome, msg string) sandbox.Result {
	return sandbox.Result{Outcome: o, Message: msg, Limits: t.RunLimits}
}

// module returns a tenant's module bytes, from memory when it ran recently.
func (s *Service) module(ctx context.Context, tenant, digest string) ([]byte, error) {
	key := tenant + "/" + digest
	if b, ok := s.modules.get(key); ok {
		return b, nil
	}
	b, err := s.st.ModuleBytes(ctx, tenant, digest)
	if err != nil {
		return nil, err
	}
	s.modules.put(key, b)
	return b, nil
}

// finish writes the attempt's verdict: the full verdict (with output) first, then the
// record's compare-and-set, then the message's ack (final) or nak with the backoff
// (retry). A holder whose CAS fails lost the task to another and drops its result
// without touching the message, which is the new holder's now.
func (s *Service) finish(ctx context.Context, m jetstream.Msg, t task.Task, n int, res sandbox.Result, cause error, firstOutput time.Time) {
	switch {
	case errors.Is(cause, errLeaseLost):
		s.log.Warn("attempt dropped: the lease was taken over", "task", t.ID, "attempt", n)
		return
	case errors.Is(cause, errShutdown):
		res = s.failed(t, outcome.SandboxError, "interrupted: the daemon on host "+s.cfg.HostID+" shut down during the attempt")
	}
	full := res.Verdict()
	b, _ := json.Marshal(full)
	if err := s.st.PutVerdict(ctx, t.ID, n, b); err != nil {
		s.log.Error("store verdict", "task", t.ID, "attempt", n, "err", err)
		m.NakWithDelay(time.Second) // the lease runs out and the task is taken over
		return
	}
	v := full.WithoutOutput()
	retry := t.RetriesOn(v.Outcome) || errors.Is(cause, errShutdown)
	backoff := s.backoff(t, n)
	if errors.Is(cause, errShutdown) {
		backoff = 0
	}
	var final bool
	rec, err := s.st.Mutate(ctx, t.ID, func(t *task.Task) error {
		var err error
		if errors.Is(cause, errShutdown) {
			final, err = task.Interrupt(t, n, v, time.Now().UTC()) // queued again, attempts left or not
		} else {
			final, err = task.EndAttempt(t, n, v, time.Now().UTC(), retry, time.Now().UTC().Add(backoff))
		}
		if err == nil && !firstOutput.IsZero() {
			at := firstOutput.UTC()
			t.Attempts[n-1].FirstOutputAt = &at
		}
		return err
	})
	if err != nil {
		s.log.Warn("attempt's verdict dropped: the record moved on", "task", t.ID, "attempt", n, "err", err)
		return
	}
	s.obs.AttemptFinished(v.Outcome)
	if final {
		if err := m.DoubleAck(ctx); err != nil {
			s.log.Warn("ack of a final task failed; its redelivery will be acked", "task", t.ID, "err", err)
		}
		s.obs.TaskFinished(rec.Outcome())
		return
	}
	s.obs.Retry(v.Outcome)
	if errors.Is(cause, errShutdown) {
		// A nak sent just before the server stops is not kept: the restarted consumer
		// would wait out the ack wait. A fresh message (published with an ack from
		// JetStream) is there at once; the old one, if its ack is lost too, finds the task
		// not due and does nothing.
		s.republish(ctx, rec, "shutdown")
		m.Ack()
		return
	}
	m.NakWithDelay(backoff)
}

// backoff is exponential with full jitter: uniform in [0, min(max, base·2^(n-1))).
func (s *Service) backoff(t task.Task, n int) time.Duration {
	base, err1 := time.ParseDuration(t.Retry.BackoffBase)
	max, err2 := time.ParseDuration(t.Retry.BackoffMax)
	if err1 != nil || err2 != nil {
		base, max = task.DefaultBackoffBase, task.DefaultBackoffMax
	}
	ceiling := base << min(n-1, 30)
	if ceiling > max || ceiling <= 0 {
		ceiling = max
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

// firstWrite discards the guest's streamed stdout (the Result keeps a capped copy) and
// notes when the first byte came.
type firstWrite struct {
	mu   sync.Mutex
	when time.Time
}

func (f *firstWrite) Write(p []byte) (int, error) {
	f.mu.Lock()
	if f.when.IsZero() && len(p) > 0 {
		f.when = time.Now()
	}
	f.mu.Unlock()
	return len(p), nil
}

func (f *firstWrite) at() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.when
}
