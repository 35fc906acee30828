package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/agentbox/agentbox/internal/privtest"
	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/sandbox"
	"github.com/agentbox/agentbox/supervisor/natsd"
	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

// TestMain lets this test binary serve as the sandbox child: a re-executed child never
// returns from Init.
func TestMain(m *testing.M) {
	sandbox.Init()
	os.Exit(m.Run())
}

// patience bounds every wait of these tests: far above what any of them needs, so that
// a slow machine is never red, and a hang still ends with the state it hung in.
const patience = 2 * time.Minute

// harness is what the services of one test share: a real embedded JetStream and the real
// sandbox.
type harness struct {
	t   *testing.T
	srv *natsd.Server
	sb  *sandbox.Sandbox
	log *slog.Logger
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	privtest.RequireRoot(t)
	h := &harness{t: t, log: testLogger(t)}
	srv, err := natsd.Start(natsd.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	h.srv = srv
	sb, err := sandbox.New(sandbox.Config{CacheDir: t.TempDir(), ChildBinary: childBinary(t)})
	if err != nil {
		t.Fatalf("sandbox.New: %v", err)
	}
	t.Cleanup(func() { sb.Close() })
	h.sb = sb
	return h
}

// The children of these tests are agentbox-init, as agentboxd's are in production, not
// this test binary: its package init (nats-server, ...) is large enough to start a GC
// before stage one, whose close_range of inherited fds then closes the Go runtime's own
// epoll fd ("fatal error: runtime: netpoll failed", a sandbox_error). It also lets the
// supervisor run under -race (a cgo build), since only the child must be static.
var child struct {
	once  sync.Once
	bytes []byte
	err   error
}

// childBinary builds cmd/agentbox-init once per test process (static, no VCS stamp: a
// test binary has none either, and the sandbox checks the two are the same build) and
// writes it into t's temp dir; the sandbox seals it into memory at New.
func childBinary(t *testing.T) string {
	t.Helper()
	child.once.Do(func() {
		out := filepath.Join(t.TempDir(), sandbox.ChildName)
		cmd := exec.Command(goTool(), "build", "-buildvcs=false", "-o", out, "./cmd/agentbox-init")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			child.err = fmt.Errorf("build agentbox-init: %v: %s", err, b)
			return
		}
		child.bytes, child.err = os.ReadFile(out)
	})
	if child.err != nil {
		t.Fatal(child.err)
	}
	p := filepath.Join(t.TempDir(), sandbox.ChildName)
	if err := os.WriteFile(p, child.bytes, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// testLogger logs to t while the test runs, and drops what goroutines of a dead service
// say after it ended.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

// testService is a started Service on its own connection to the harness's JetStream.
type testService struct {
	*Service
	nc  *nats.Conn
	obs *countingObserver
}

// baseConfig is small, for fast takeovers.
func baseConfig(host string) Config {
	return Config{HostID: host, Slots: 2, MemoryBudget: 1 << 30, Lease: 2 * time.Second}
}

// startService starts a Service with runner (the harness's sandbox when nil). Its cleanup
// drains it (killing what still runs) and closes its connection.
func startService(t *testing.T, h *harness, cfg Config, runner Runner) *testService {
	t.Helper()
	if runner == nil {
		runner = h.sb
	}
	nc, err := h.srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	obs := &countingObserver{finished: map[outcome.Outcome]int{}}
	if cfg.Logger == nil {
		cfg.Logger = h.log.With("host", cfg.HostID)
	}
	cfg.Observer = obs
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	s, err := New(ctx, nc, runner, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	t.Cleanup(func() { s.Drain(0) })
	return &testService{Service: s, nc: nc, obs: obs}
}

// countingObserver counts what the metrics would.
type countingObserver struct {
	nopObserver
	mu       sync.Mutex
	finished map[outcome.Outcome]int
	retries  int
}

func (o *countingObserver) TaskFinished(x outcome.Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.finished[x]++
}

func (o *countingObserver) Retry(outcome.Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.retries++
}

func (o *countingObserver) retryCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.retries
}

func (o *countingObserver) count(x outcome.Outcome) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.finished[x]
}

// faultRunner wraps the real sandbox to inject faults of ours and to watch the runs: it
// is not a fake, every run that is not an injected fault is a real sandboxed run. A run's
// name is its first argument. The service's self-check (no arguments) goes straight
// through, uncounted.
type faultRunner struct {
	sb Runner
	// failFirst runs end sandbox_error, as our own fault; errFirst more are refused with an
	// error (a spec the sandbox would not start).
	failFirst, errFirst int
	// gate, when set, holds every run until the test sends on it (one send releases one
	// run) or the run's context ends.
	gate chan struct{}
	// hang, when set, runs in place of the task's module: a guest that hangs on this host.
	hang []byte

	started chan string // every run's name, as it starts

	mu        sync.Mutex
	runs      int
	active    int
	maxActive int
	names     []string
}

func newFaultRunner(sb Runner) *faultRunner {
	return &faultRunner{sb: sb, started: make(chan string, 1000)}
}

func (f *faultRunner) Run(ctx context.Context, spec sandbox.Spec) (sandbox.Result, error) {
	if len(spec.Args) == 0 {
		return f.sb.Run(ctx, spec) // the self-check
	}
	name := ""
	if len(spec.Args) > 1 {
		name = spec.Args[1]
	}
	f.mu.Lock()
	f.runs++
	n := f.runs
	f.active++
	f.maxActive = max(f.maxActive, f.active)
	f.names = append(f.names, name)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.active--
		f.mu.Unlock()
	}()
	f.started <- name
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done(): // the real run below sees the ended context and says cancelled
		}
	}
	switch {
	case n <= f.failFirst:
		return sandbox.Result{Outcome: outcome.SandboxError, Message: fmt.Sprintf("injected fault in run %d", n), Limits: spec.Limits}, nil
	case n <= f.failFirst+f.errFirst:
		return sandbox.Result{}, fmt.Errorf("injected refusal of run %d", n)
	}
	if f.hang != nil {
		spec.Module = f.hang
	}
	return f.sb.Run(ctx, spec)
}

func (f *faultRunner) Prepare(ctx context.Context, module []byte) (sandbox.Result, error) {
	return f.sb.Prepare(ctx, module)
}

func (f *faultRunner) seen() (names []string, maxActive int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.names...), f.maxActive
}

// nextStart is the name of the next run to start.
func (f *faultRunner) nextStart(t *testing.T) string {
	t.Helper()
	select {
	case n := <-f.started:
		return n
	case <-time.After(patience):
		t.Fatal("no run started")
		return ""
	}
}

// release lets one held run go on.
func (f *faultRunner) release(t *testing.T) {
	t.Helper()
	select {
	case f.gate <- struct{}{}:
	case <-time.After(patience):
		t.Fatal("no run to release")
	}
}

// moduleBytes reads a test module: testdata/modules/NAME, or a path from the repo root.
func moduleBytes(t *testing.T, name string) []byte {
	t.Helper()
	path := filepath.Join("..", "testdata", "modules", name)
	if filepath.Dir(name) != "." {
		path = filepath.Join("..", name)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// upload puts a test module for tenant through the service (a real sandboxed compile).
func upload(t *testing.T, s *testService, tenant, name string) string {
	t.Helper()
	m, err := s.PutModule(context.Background(), tenant, moduleBytes(t, name))
	if err != nil {
		t.Fatalf("PutModule %s: %v", name, err)
	}
	return m.Digest
}

func submit(t *testing.T, s *testService, tenant string, req task.SubmitRequest) task.Task {
	t.Helper()
	rec, created, err := s.Submit(context.Background(), tenant, req)
	if err != nil || !created {
		t.Fatalf("Submit: %v (created %t)", err, created)
	}
	return rec
}

// fast is a retry policy with backoffs too short to wait for.
func fast(maxAttempts int, on ...outcome.Outcome) task.RetryPolicy {
	return task.RetryPolicy{MaxAttempts: maxAttempts, RetryOn: on, BackoffBase: "1ms", BackoffMax: "5ms"}
}

// waitFinal waits for a task's verdict.
func waitFinal(t *testing.T, s *testService, tenant, id string) task.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	rec, err := s.Wait(ctx, tenant, id)
	if err != nil {
		t.Fatalf("Wait %s: %v", id, err)
	}
	if !rec.Final() {
		t.Fatalf("task %s not final after %s: %+v", id, patience, rec)
	}
	return rec
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitState polls a task's record until it is in state.
func waitState(t *testing.T, s *testService, tenant, id string, state task.State) task.Task {
	t.Helper()
	var rec task.Task
	waitFor(t, fmt.Sprintf("task %s %s", id, state), func() bool {
		var err error
		rec, err = s.Get(context.Background(), tenant, id)
		return err == nil && rec.State == state
	})
	return rec
}

// codeOf is the code of a *verdict.Error, failing the test for any other error.
func codeOf(t *testing.T, err error) *verdict.Error {
	t.Helper()
	var ve *verdict.Error
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v (%T), want a *verdict.Error", err, err)
	}
	return ve
}

// outcomes lists the outcomes of a task's attempts.
func outcomes(rec task.Task) []outcome.Outcome {
	var out []outcome.Outcome
	for _, a := range rec.Attempts {
		if a.Verdict == nil {
			out = append(out, "")
			continue
		}
		out = append(out, a.Verdict.Outcome)
	}
	return out
}
