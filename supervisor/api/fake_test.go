package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

// fake is an in-memory Backend for the HTTP mapping only: it scopes everything by tenant
// as the service does, refuses what the service would refuse, and lets a test inject an
// error or a subscription.
type fake struct {
	mu      sync.Mutex
	modules map[string]task.Module // tenant/digest
	tasks   map[string]task.Task   // id
	output  map[string]verdict.Verdict
	keys    map[string]string // tenant/idempotency key -> id
	next    int
	changed chan struct{}  // closed and replaced on every change (Wait watches it)
	waiters map[string]int // Waits blocked on each task

	submitErr error             // Submit returns it when set
	readyErr  error             // Ready returns it
	tenants   []string          // the tenant of every call, in order
	subs      chan subscription // every Subscribe, for the test to feed
	now       func() time.Time
}

type subscription struct {
	ctx    context.Context
	tenant string
	ch     chan task.Event
}

var testTime = time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC)

func newFake() *fake {
	return &fake{
		modules: map[string]task.Module{}, tasks: map[string]task.Task{},
		output: map[string]verdict.Verdict{}, keys: map[string]string{},
		changed: make(chan struct{}), waiters: map[string]int{}, subs: make(chan subscription, 8),
		now: func() time.Time { return testTime },
	}
}

func (f *fake) seen(tenant string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tenants = append(f.tenants, tenant)
}

func (f *fake) lastTenant() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.tenants) == 0 {
		return ""
	}
	return f.tenants[len(f.tenants)-1]
}

func (f *fake) PutModule(ctx context.Context, tenant string, wasm []byte) (task.Module, error) {
	f.seen(tenant)
	if !bytes.HasPrefix(wasm, []byte("\x00asm")) {
		return task.Module{}, verdict.Errorf(verdict.InvalidArgument, "body", "", "not a wasm module: no \\0asm magic")
	}
	sum := sha256.Sum256(wasm)
	m := task.Module{Digest: hex.EncodeToString(sum[:]), Tenant: tenant, Bytes: uint64(len(wasm)), CreatedAt: f.now()}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.modules[tenant+"/"+m.Digest] = m
	return m, nil
}

func (f *fake) GetModule(ctx context.Context, tenant, digest string) (task.Module, error) {
	f.seen(tenant)
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.modules[tenant+"/"+digest]
	if !ok {
		return m, verdict.Errorf(verdict.NotFound, "digest", digest, "no module %s", digest)
	}
	return m, nil
}

func (f *fake) ListModules(ctx context.Context, tenant string) ([]task.Module, error) {
	f.seen(tenant)
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []task.Module
	for _, m := range f.modules {
		if m.Tenant == tenant {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out, nil
}

func (f *fake) DeleteModule(ctx context.Context, tenant, digest string) error {
	if _, err := f.GetModule(ctx, tenant, digest); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.modules, tenant+"/"+digest)
	return nil
}

func (f *fake) Submit(ctx context.Context, tenant string, req task.SubmitRequest) (task.Task, bool, error) {
	f.seen(tenant)
	if f.submitErr != nil {
		return task.Task{}, false, f.submitErr
	}
	res, err := task.Resolve(req, 4)
	if err != nil {
		return task.Task{}, false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.modules[tenant+"/"+req.Module]; !ok {
		return task.Task{}, false, verdict.Errorf(verdict.NotFound, "module", req.Module, "no module %s for this tenant", req.Module)
	}
	if id, ok := f.keys[tenant+"/"+req.IdempotencyKey]; ok && req.IdempotencyKey != "" {
		return f.tasks[id], false, nil
	}
	f.next++
	t := task.Task{ID: fmt.Sprintf("t%d", f.next), Tenant: tenant, State: task.Queued, Module: req.Module,
		Args: req.Args, Env: req.Env, Labels: req.Labels, Priority: res.Priority, Retry: res.Retry,
		IdempotencyKey: req.IdempotencyKey, StdinBytes: len(req.Stdin), CreatedAt: f.now(), UpdatedAt: f.now(),
		Limits: verdict.Limits{Memory: "256Mi", MemoryBytes: res.Limits.MemoryBytes, CPUs: res.Limits.CPUs,
			Pids: res.Limits.Pids, Timeout: res.Limits.Timeout.String(), OutputLimit: "1Mi", ClockResolution: "1ms"},
		Revision: 1}
	f.tasks[t.ID] = t
	if req.IdempotencyKey != "" {
		f.keys[tenant+"/"+req.IdempotencyKey] = t.ID
	}
	f.changedLocked()
	return t, true, nil
}

func (f *fake) changedLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fake) Get(ctx context.Context, tenant, id string) (task.Task, error) {
	f.seen(tenant)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.getLocked(tenant, id)
}

func (f *fake) getLocked(tenant, id string) (task.Task, error) {
	t, ok := f.tasks[id]
	if !ok || t.Tenant != tenant {
		return task.Task{}, verdict.Errorf(verdict.NotFound, "id", id, "no task %s", id)
	}
	return t, nil
}

func (f *fake) Verdict(ctx context.Context, tenant, id string) (verdict.Verdict, error) {
	t, err := f.Get(ctx, tenant, id)
	if err != nil {
		return verdict.Verdict{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.output[id]
	if !t.Final() || !ok {
		return v, verdict.Errorf(verdict.NotFound, "id", id, "task %s has no verdict yet: it is %s", id, t.State)
	}
	return v, nil
}

func (f *fake) List(ctx context.Context, tenant string, flt task.Filter) (task.Page, error) {
	f.seen(tenant)
	f.mu.Lock()
	defer f.mu.Unlock()
	var p task.Page
	for _, t := range f.tasks {
		if t.Tenant == tenant && (flt.State == "" || flt.State == t.State) {
			p.Tasks = append(p.Tasks, t)
		}
	}
	sort.Slice(p.Tasks, func(i, j int) bool { return p.Tasks[i].ID < p.Tasks[j].ID })
	if flt.Limit > 0 && len(p.Tasks) > flt.Limit {
		p.Tasks, p.NextCursor = p.Tasks[:flt.Limit], "c"+p.Tasks[flt.Limit].ID
	}
	return p, nil
}

func (f *fake) Cancel(ctx context.Context, tenant, id string) (task.Task, error) {
	f.seen(tenant)
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.getLocked(tenant, id)
	if err != nil {
		return t, err
	}
	if _, err := task.Cancel(&t, f.now()); err == nil {
		f.tasks[id] = t
		f.changedLocked()
	}
	return t, nil
}

// Wait returns when the task is final or ctx ends, as the service does.
func (f *fake) Wait(ctx context.Context, tenant, id string) (task.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		t, err := f.getLocked(tenant, id)
		if err != nil || t.Final() {
			return t, err
		}
		changed := f.changed
		f.waiters[id]++
		f.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-changed:
		}
		f.mu.Lock()
		f.waiters[id]--
		if ctx.Err() != nil {
			t, err := f.getLocked(tenant, id)
			return t, err
		}
	}
}

// waiting reports whether a Wait is blocked on task id.
func (f *fake) waiting(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waiters[id] > 0
}

func (f *fake) Subscribe(ctx context.Context, tenant string) <-chan task.Event {
	f.seen(tenant)
	ch := make(chan task.Event)
	f.subs <- subscription{ctx: ctx, tenant: tenant, ch: ch}
	return ch
}

func (f *fake) Ready(ctx context.Context) error { return f.readyErr }

// finish makes task id final with outcome ok and output, with one attempt: the richest
// record there is, for schema checks.
func (f *fake) finish(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tasks[id]
	code := uint32(0)
	out := "hello\n"
	end := f.now().Add(time.Second)
	v := verdict.Verdict{Outcome: outcome.OK, Message: "the guest exited 0", ExitCode: &code,
		Usage: verdict.Usage{WallMS: 3, CPUMS: 2, PeakMemoryBytes: 1 << 20}, Limits: t.Limits}
	t.Attempts = append(t.Attempts, task.Attempt{N: 1, Host: "h1", StartedAt: f.now(), EndedAt: &end, Verdict: &v})
	t.State, t.Verdict, t.UpdatedAt, t.Revision = task.Done, &v, end, t.Revision+2
	withOut := v
	withOut.Stdout, withOut.Stderr = &out, new(string)
	f.output[id] = withOut
	f.tasks[id] = t
	f.changedLocked()
}

// running moves task id to running under a lease, for schema checks of that shape.
func (f *fake) running(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tasks[id]
	if err := task.Start(&t, "h1", "h1-1", f.now(), time.Minute); err != nil {
		panic(err)
	}
	f.tasks[id] = t
	f.changedLocked()
}
