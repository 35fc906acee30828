package supervisor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"time"

	"github.com/agentbox/agentbox/internal/units"
	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/store"
	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

// The methods the API serves. Every error they return is a *verdict.Error: the caller's
// to fix (invalid_argument, not_found, too_large, queue_full) or ours (setup_failed).

// PutModule validates and compiles wasm in a sandboxed child (never in this process),
// then stores it for tenant under its digest. An invalid module is refused with the
// reason; a module the tenant already has is returned as it is.
func (s *Service) PutModule(ctx context.Context, tenant string, wasm []byte) (task.Module, error) {
	if uint64(len(wasm)) > s.cfg.MaxModuleBytes {
		return task.Module{}, verdict.Errorf(verdict.TooLarge, "module", fmt.Sprint(len(wasm)),
			"module is %d bytes, more than the daemon's --max-module-size %s", len(wasm), units.FormatSize(s.cfg.MaxModuleBytes))
	}
	sum := sha256.Sum256(wasm)
	digest := hex.EncodeToString(sum[:])
	if m, err := s.st.ModuleInfo(ctx, tenant, digest); err == nil {
		return m, nil
	}
	if err := s.validate(ctx, wasm); err != nil {
		return task.Module{}, err
	}
	m, err := s.st.PutModule(ctx, tenant, digest, wasm)
	if err != nil {
		return task.Module{}, internal(err)
	}
	return m, nil
}

// validate runs the sandboxed compile, at most two at a time: each has the compile budget.
func (s *Service) validate(ctx context.Context, wasm []byte) error {
	select {
	case s.prepare <- struct{}{}:
		defer func() { <-s.prepare }()
	case <-ctx.Done():
		return internal(ctx.Err())
	}
	res, err := s.runner.Prepare(ctx, wasm)
	switch {
	case err != nil:
		return verdict.Errorf(verdict.InvalidArgument, "module", "", "module refused: %w", err)
	case res.Outcome == outcome.InvalidModule:
		return verdict.Errorf(verdict.InvalidArgument, "module", "", "invalid module: %s", res.Message)
	case res.Outcome != outcome.OK:
		return verdict.Errorf(verdict.SetupFailed, "module", "", "the sandboxed compile of the module failed (%s): %s", res.Outcome, res.Message)
	}
	return nil
}

// GetModule describes one of tenant's modules.
func (s *Service) GetModule(ctx context.Context, tenant, digest string) (task.Module, error) {
	m, err := s.st.ModuleInfo(ctx, tenant, digest)
	return m, moduleErr(err, digest)
}

// ListModules lists tenant's modules.
func (s *Service) ListModules(ctx context.Context, tenant string) ([]task.Module, error) {
	ms, err := s.st.ListModules(ctx, tenant)
	if err != nil {
		return nil, internal(err)
	}
	return ms, nil
}

// DeleteModule removes one of tenant's modules. Tasks already queued that name it end as
// invalid_module when they come to run.
func (s *Service) DeleteModule(ctx context.Context, tenant, digest string) error {
	s.modules.drop(tenant + "/" + digest)
	return moduleErr(s.st.DeleteModule(ctx, tenant, digest), digest)
}

func moduleErr(err error, digest string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return verdict.Errorf(verdict.NotFound, "digest", digest, "no module %s: upload it with POST /v1/modules", digest)
	}
	return internal(err)
}

// internal wraps a fault of ours.
func internal(err error) error {
	return verdict.Errorf(verdict.SetupFailed, "", "", "internal error: %w", err)
}

// Submit accepts a task: checked, its module present, the queue below its bounds. The
// dispatch message is published before the record is created, so that every record that
// exists has a message: a crash between the two leaves a message without a record, which
// its delivery drops, and the client, which got no answer, was never told "accepted".
func (s *Service) Submit(ctx context.Context, tenant string, req task.SubmitRequest) (task.Task, bool, error) {
	t, err := s.accept(ctx, tenant, req)
	if err != nil {
		var ve *verdict.Error
		if errors.As(err, &ve) {
			s.obs.Rejected(string(ve.Code))
		}
		return task.Task{}, false, err
	}
	if req.IdempotencyKey != "" {
		if prev, ok, err := s.claimKey(ctx, tenant, req.IdempotencyKey, t.ID); err != nil {
			return task.Task{}, false, err
		} else if !ok {
			return prev, false, nil
		}
	}
	if err := s.enqueue(ctx, &t, req.Stdin); err != nil {
		return task.Task{}, false, err
	}
	s.obs.Submitted()
	return t, true, nil
}

// accept checks a request and builds its record.
func (s *Service) accept(ctx context.Context, tenant string, req task.SubmitRequest) (task.Task, error) {
	r, err := task.Resolve(req, runtime.NumCPU())
	if err != nil {
		return task.Task{}, err
	}
	if !s.adm.Fits(r.Limits.MemoryBytes) {
		_, _, _, budget := s.adm.Usage()
		return task.Task{}, verdict.Errorf(verdict.InvalidArgument, "limits.memory", units.FormatSize(r.Limits.MemoryBytes),
			"limits.memory %s is more than this daemon's whole memory budget %s: it could never run", units.FormatSize(r.Limits.MemoryBytes), units.FormatSize(budget))
	}
	if _, err := s.st.ModuleInfo(ctx, tenant, req.Module); err != nil {
		return task.Task{}, verdict.Errorf(verdict.NotFound, "module", req.Module, "no module %s for this tenant: upload it first (POST /v1/modules, agentbox module push)", req.Module)
	}
	if err := s.checkQueue(tenant); err != nil {
		return task.Task{}, err
	}
	now := time.Now().UTC()
	return task.Task{ID: newID(now), Tenant: tenant, State: task.Queued, Module: req.Module, Args: req.Args, Env: req.Env,
		Limits: r.Limits.Verdict(), RunLimits: r.Limits, Retry: r.Retry, Labels: req.Labels, Priority: r.Priority,
		IdempotencyKey: req.IdempotencyKey, StdinBytes: len(req.Stdin), CreatedAt: now, UpdatedAt: now, Attempts: []task.Attempt{}}, nil
}

func (s *Service) checkQueue(tenant string) error {
	s.mu.Lock()
	l := s.limits
	s.mu.Unlock()
	mine, all := s.index.queuedCounts(tenant)
	switch {
	case mine >= l.perTenant:
		return verdict.Errorf(verdict.QueueFull, "", fmt.Sprint(mine), "this tenant has %d tasks queued, the most it may: retry later", mine)
	case all >= l.total:
		return verdict.Errorf(verdict.QueueFull, "", fmt.Sprint(all), "the daemon has %d tasks queued, the most it takes: retry later", all)
	}
	return nil
}

func (s *Service) enqueue(ctx context.Context, t *task.Task, stdin []byte) error {
	if len(stdin) > 0 {
		if err := s.st.PutStdin(ctx, t.ID, stdin); err != nil {
			return internal(err)
		}
	}
	if err := s.st.Enqueue(ctx, t.Tenant, t.Priority, t.ID, t.ID); err != nil {
		return internal(err)
	}
	if err := s.st.CreateTask(ctx, t); err != nil {
		return internal(err)
	}
	return nil
}

// claimKey makes key name task id for tenant, or returns the task that already holds it.
// A holder with no record yet is a submit in flight: wait for its record a little; one
// that never got one (it died before) gives the key up.
func (s *Service) claimKey(ctx context.Context, tenant, key, id string) (task.Task, bool, error) {
	sum := sha256.Sum256([]byte(tenant + "\x00" + key))
	k := hex.EncodeToString(sum[:])
	holder, claimed, err := s.st.ClaimIdempotencyKey(ctx, k, id)
	if err != nil || claimed {
		return task.Task{}, claimed, maybeInternal(err)
	}
	for i := 0; i < 100; i++ {
		t, err := s.st.GetTask(ctx, holder)
		if err == nil && t.Tenant == tenant {
			return t, false, nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return task.Task{}, false, internal(err)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return task.Task{}, false, internal(ctx.Err())
		}
	}
	return task.Task{}, true, maybeInternal(s.st.ReplaceIdempotencyKey(ctx, k, id))
}

func maybeInternal(err error) error {
	if err == nil {
		return nil
	}
	return internal(err)
}

// Get reads one of tenant's tasks.
func (s *Service) Get(ctx context.Context, tenant, id string) (task.Task, error) {
	t, err := s.st.GetTask(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.Tenant != tenant) {
		return task.Task{}, notFound(id)
	}
	if err != nil {
		return task.Task{}, internal(err)
	}
	return t, nil
}

func notFound(id string) error {
	return verdict.Errorf(verdict.NotFound, "id", id, "no task %s", id)
}

// Verdict is the final verdict of one of tenant's tasks, with its output, exactly as
// `agentbox run --json` prints it.
func (s *Service) Verdict(ctx context.Context, tenant, id string) (verdict.Verdict, error) {
	t, err := s.Get(ctx, tenant, id)
	if err != nil {
		return verdict.Verdict{}, err
	}
	if !t.Final() {
		return verdict.Verdict{}, verdict.Errorf(verdict.NotFound, "id", id, "task %s has no verdict yet: it is %s (wait for it: GET /v1/tasks/%s/wait)", id, t.State, id)
	}
	if last := t.Current(); last == nil || last.Verdict == nil || !reflect.DeepEqual(*last.Verdict, *t.Verdict) {
		// The verdict is no attempt's: cancelled before it ran, or while a retry waited
		// for its backoff. No output.
		return *t.Verdict, nil
	}
	b, err := s.st.Verdict(ctx, id, len(t.Attempts))
	if errors.Is(err, store.ErrNotFound) {
		return *t.Verdict, nil // an attempt that lost its holder: ended by the record alone, no output
	}
	if err != nil {
		return verdict.Verdict{}, internal(err)
	}
	var v verdict.Verdict
	if err := json.Unmarshal(b, &v); err != nil {
		return verdict.Verdict{}, internal(fmt.Errorf("decode verdict of %s: %w", id, err))
	}
	return v, nil
}

// List lists tenant's tasks, newest first, a page at a time.
func (s *Service) List(ctx context.Context, tenant string, f task.Filter) (task.Page, error) {
	if f.Limit <= 0 {
		f.Limit = task.DefaultPageLimit
	}
	if f.Limit > task.MaxPageLimit {
		return task.Page{}, verdict.Errorf(verdict.InvalidArgument, "limit", fmt.Sprint(f.Limit), "limit %d: at most %d", f.Limit, task.MaxPageLimit)
	}
	ids := s.index.match(tenant, f)
	page := task.Page{Tasks: []task.Task{}}
	for _, id := range ids {
		if len(page.Tasks) == f.Limit {
			page.NextCursor = page.Tasks[len(page.Tasks)-1].ID
			break
		}
		t, err := s.st.GetTask(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted by retention since the index saw it
		}
		if err != nil {
			return task.Page{}, internal(err)
		}
		page.Tasks = append(page.Tasks, t)
	}
	return page, nil
}

// Cancel cancels one of tenant's tasks: a queued one is final at once and never runs; a
// running one is killed by its holder, wherever it runs, and ends cancelled.
func (s *Service) Cancel(ctx context.Context, tenant, id string) (task.Task, error) {
	if _, err := s.Get(ctx, tenant, id); err != nil {
		return task.Task{}, err
	}
	t, err := s.st.Mutate(ctx, id, func(t *task.Task) error {
		_, err := task.Cancel(t, time.Now().UTC())
		return err
	})
	var te *task.ErrTransition
	switch {
	case errors.As(err, &te):
		return s.Get(ctx, tenant, id) // already final: cancelling is a no-op
	case err != nil:
		return task.Task{}, internal(err)
	}
	if t.State == task.Running {
		if err := s.nc.Publish(cancelSubject(id), nil); err != nil {
			s.log.Warn("cancel not broadcast; the holder sees it at its next renewal", "task", id, "err", err)
		}
	} else if t.Final() {
		s.obs.TaskFinished(outcome.Cancelled)
	}
	return t, nil
}

// Wait returns tenant's task once it is final, or its current record when ctx ends
// first (a long-poll's timeout is not an error).
func (s *Service) Wait(ctx context.Context, tenant, id string) (task.Task, error) {
	for {
		changed := s.index.Changed()
		done, final, known := s.index.waitFinal(tenant, id)
		if known {
			return s.waitKnown(ctx, tenant, id, done, final)
		}
		// Not in the index yet: a task just created (here or on another host), or none.
		// Its record says which; a live one is waited for until the index has it.
		t, err := s.Get(ctx, tenant, id)
		if err != nil || t.Final() {
			return t, err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return t, nil
		}
	}
}

func (s *Service) waitKnown(ctx context.Context, tenant, id string, done <-chan struct{}, final bool) (task.Task, error) {
	if !final {
		select {
		case <-done:
		case <-ctx.Done():
			s.index.unwait(id, done)
		}
	}
	return s.Get(context.WithoutCancel(ctx), tenant, id)
}

// Subscribe streams every change of tenant's tasks until ctx ends.
func (s *Service) Subscribe(ctx context.Context, tenant string) <-chan task.Event {
	return s.index.subscribe(ctx, tenant)
}
