// Package supervisor is agentboxd's service: it accepts tasks and modules for tenants,
// keeps them in JetStream (package store), runs each task through the sandbox when the
// scheduler admits it (package sched), retries by the task's policy, and gives every
// accepted task exactly one final verdict: the move to done is one compare-and-set on
// the task's record, and a holder that lost its lease loses that race. Execution is
// at-least-once: a task whose holder died is run again, as a new attempt in its history.
// The HTTP API (package api) and metrics (package metrics) sit on top of Service.
package supervisor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/sandbox"
	"github.com/agentbox/agentbox/supervisor/sched"
	"github.com/agentbox/agentbox/supervisor/store"
)

// Runner runs tasks in the sandbox; *sandbox.Sandbox is the one production Runner. Tests
// wrap it to inject faults, never to replace it.
type Runner interface {
	Run(ctx context.Context, spec sandbox.Spec) (sandbox.Result, error)
	Prepare(ctx context.Context, module []byte) (sandbox.Result, error)
}

// Observer receives what the metrics count; *metrics.Metrics is one.
type Observer interface {
	AttemptFinished(o outcome.Outcome)
	TaskFinished(o outcome.Outcome)
	Retry(reason outcome.Outcome)
	Submitted()
	Rejected(code string)
	ObserveQueueWait(d time.Duration)
	ObserveSpawn(d time.Duration)
	ObserveRun(d time.Duration)
	LeaseLost()
}

// Config is the service's configuration. Zero fields take the defaults below.
type Config struct {
	// HostID names this host in leases and attempts (default: the hostname).
	HostID string
	// Slots bounds the tasks running at once on this host (default: the CPU count).
	Slots int
	// MemoryBudget bounds the sum of the running tasks' memory limits (default 50% of RAM
	// is the daemon's choice; here 4Gi).
	MemoryBudget uint64
	// Lease is how long a holder may go without renewing before its task is taken over.
	Lease time.Duration
	// MaxQueuedPerTenant and MaxQueued bound the queue (429 past them).
	MaxQueuedPerTenant int
	MaxQueued          int
	// Retention: final tasks older than this are deleted, and so are the oldest final
	// ones past MaxRecords.
	Retention  time.Duration
	MaxRecords int
	// MaxModuleBytes bounds an upload (default sandbox.DefaultMaxModuleBytes).
	MaxModuleBytes uint64
	// Logger (default: slog's default).
	Logger *slog.Logger
	// Observer (default: counts nothing).
	Observer Observer
}

// Defaults.
const (
	DefaultMemoryBudget       = 4 << 30
	DefaultLease              = 30 * time.Second
	DefaultMaxQueuedPerTenant = 10_000
	DefaultMaxQueued          = 100_000
	DefaultRetention          = 7 * 24 * time.Hour
	DefaultMaxRecords         = 100_000
)

func (c Config) withDefaults() (Config, error) {
	if c.HostID == "" {
		c.HostID = hostname()
	}
	if c.Slots == 0 {
		c.Slots = runtime.NumCPU()
	}
	if c.MemoryBudget == 0 {
		c.MemoryBudget = DefaultMemoryBudget
	}
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.MaxQueuedPerTenant == 0 {
		c.MaxQueuedPerTenant = DefaultMaxQueuedPerTenant
	}
	if c.MaxQueued == 0 {
		c.MaxQueued = DefaultMaxQueued
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.MaxRecords == 0 {
		c.MaxRecords = DefaultMaxRecords
	}
	if c.MaxModuleBytes == 0 {
		c.MaxModuleBytes = sandbox.DefaultMaxModuleBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	switch {
	case c.Slots < 1:
		return c, fmt.Errorf("slots %d: at least 1", c.Slots)
	case c.MemoryBudget < 32<<20:
		return c, fmt.Errorf("memory budget %d bytes: at least 32Mi (one task's least)", c.MemoryBudget)
	case c.Lease < time.Second:
		return c, fmt.Errorf("lease %s: at least 1s", c.Lease)
	}
	return c, nil
}

// Service is the daemon's service. Start it, serve it, Drain it.
type Service struct {
	cfg    Config
	log    *slog.Logger
	obs    Observer
	st     *store.Store
	nc     *nats.Conn
	runner Runner
	index  *index
	adm    *sched.Admission
	rr     sched.RoundRobin
	// holder names this incarnation in leases: HostID/random, so that a restarted daemon
	// knows the leases of its dead predecessor on this host.
	holder  string
	modules *moduleCache
	prepare chan struct{} // bounds concurrent upload compiles (each has the compile budget)

	mu      sync.Mutex
	running map[string]*run // by task id, this host's attempts
	limits  tenantLimits

	cancelSub *nats.Subscription
	stop      context.CancelFunc // ends dispatch, reconciler and janitor
	workers   sync.WaitGroup
	loops     sync.WaitGroup
	selfCheck error
}

type tenantLimits struct{ perTenant, total int }

// New opens the service's JetStream resources. nc is the connection (in-process to the
// embedded server, or to a cluster); runner is the sandbox.
func New(ctx context.Context, nc *nats.Conn, runner Runner, cfg Config) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	js, err := jetstreamOf(nc)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, js, store.Config{Lease: cfg.Lease, Retention: cfg.Retention,
		MaxAckPending: cfg.MaxQueuedPerTenant + cfg.Slots + 1024, Replicas: replicasOf(ctx, js)})
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: cfg.Logger, obs: cfg.Observer, st: st, nc: nc, runner: runner, index: newIndex(),
		adm: sched.NewAdmission(cfg.Slots, cfg.MemoryBudget), holder: cfg.HostID + "/" + randomHex(4),
		modules: newModuleCache(256 << 20), prepare: make(chan struct{}, 2), running: map[string]*run{},
		limits: tenantLimits{cfg.MaxQueuedPerTenant, cfg.MaxQueued}}
	return s, nil
}

// Start loads the index, checks the sandbox with a real run, and starts dispatching.
// It returns once the service is ready to serve.
func (s *Service) Start(ctx context.Context) error {
	loopCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	changes, err := s.st.WatchTasks(loopCtx, func(err error) { s.log.Error("task record skipped", "err", err) })
	if err != nil {
		stop()
		return err
	}
	go s.index.feed(changes)
	if err := s.waitLoaded(ctx); err != nil {
		stop()
		return err
	}
	if s.cancelSub, err = s.nc.Subscribe(cancelSubject("*"), s.onCancel); err != nil {
		stop()
		return fmt.Errorf("subscribe to cancels: %w", err)
	}
	s.selfCheck = s.checkSandbox(ctx)
	if s.selfCheck != nil {
		s.log.Error("sandbox self-check failed", "err", s.selfCheck)
	}
	s.reclaimPredecessor(ctx)
	s.loops.Add(3)
	go s.dispatch(loopCtx)
	go s.reconcile(loopCtx)
	go s.janitor(loopCtx)
	return nil
}

func (s *Service) waitLoaded(ctx context.Context) error {
	for {
		changed := s.index.Changed() // before the check: a change between the two is not missed
		if s.index.Loaded() {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("load task records: %w", ctx.Err())
		}
	}
}

// Ready reports whether the service can take work: JetStream answers and the sandbox
// self-check passed.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.st.Ping(ctx); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if s.selfCheck != nil {
		return fmt.Errorf("sandbox self-check: %w", s.selfCheck)
	}
	return nil
}

// Resize changes slots, memory budget and queue bounds live (SIGHUP).
func (s *Service) Resize(slots int, budget uint64, perTenant, total int) {
	s.adm.Resize(slots, budget)
	s.mu.Lock()
	s.limits = tenantLimits{perTenant, total}
	s.mu.Unlock()
}

// Drain stops fetching new tasks and waits up to grace for the running ones. Those still
// running then are killed and queued again for the next start, as attempts that the
// shutdown interrupted. Drain returns when every worker has written its last record.
func (s *Service) Drain(grace time.Duration) {
	if s.stop != nil {
		s.stop()
	}
	s.loops.Wait()
	done := make(chan struct{})
	go func() { s.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		s.mu.Lock()
		for _, r := range s.running {
			r.cancel(errShutdown)
		}
		s.mu.Unlock()
		<-done
	}
	if s.cancelSub != nil {
		s.cancelSub.Unsubscribe()
	}
	// Acks and naks are sent asynchronously: make sure the last ones reached the server,
	// or an interrupted task would wait out its ack wait instead of running at once.
	if err := s.nc.FlushTimeout(5 * time.Second); err != nil {
		s.log.Warn("flush at drain", "err", err)
	}
}

// Usage of the scheduler, for metrics.
func (s *Service) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.running)
}

// Slots reports slots in use and their bound.
func (s *Service) Slots() (inUse, total int) {
	used, slots, _, _ := s.adm.Usage()
	return used, slots
}

// Memory reports the memory budget in use and its bound.
func (s *Service) Memory() (inUse, budget uint64) {
	_, _, m, b := s.adm.Usage()
	return m, b
}

// QueueDepth is queued tasks per tenant.
func (s *Service) QueueDepth() map[string]int { return s.index.QueueDepth() }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newID makes a task id that sorts by creation time: 12 hex digits of milliseconds, then
// 10 random ones.
func newID(now time.Time) string {
	return fmt.Sprintf("%012x%s", now.UnixMilli(), randomHex(5))
}

type nopObserver struct{}

func (nopObserver) AttemptFinished(outcome.Outcome) {}
func (nopObserver) TaskFinished(outcome.Outcome)    {}
func (nopObserver) Retry(outcome.Outcome)           {}
func (nopObserver) Submitted()                      {}
func (nopObserver) Rejected(string)                 {}
func (nopObserver) ObserveQueueWait(time.Duration)  {}
func (nopObserver) ObserveSpawn(time.Duration)      {}
func (nopObserver) ObserveRun(time.Duration)        {}
func (nopObserver) LeaseLost()                      {}
